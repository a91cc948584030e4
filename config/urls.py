from django.conf import settings
from django.urls import include, path
from django.views.generic import RedirectView
from wagtail import urls as wagtail_urls
from wagtail.admin import urls as wagtailadmin_urls

from sites import views as site_views

urlpatterns = [
    # Wagtail's reports, exported formula-safe; the site-wide history (every model's log entries)
    # only for auditors. Ahead of Wagtail's admin, which declares the same paths.
    path("admin/reports/", include(site_views.wagtail_report_urls())),
    path("admin/", include(wagtailadmin_urls)),
    path("api/v1/", include("config.api_urls")),
    path("", RedirectView.as_view(pattern_name="wagtailadmin_home", permanent=False)),
]

if settings.DEBUG:
    from django.conf.urls.static import static

    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)

urlpatterns += [path("pages/", include(wagtail_urls))]
