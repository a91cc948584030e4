from django.conf import settings
from django.urls import include, path
from django.views.generic import RedirectView
from wagtail import urls as wagtail_urls
from wagtail.admin import urls as wagtailadmin_urls

from sites import views as site_views

urlpatterns = [
    # Wagtail's site-wide history lists every model's log entries; only auditors may read it.
    path("admin/reports/site-history/", site_views.site_history, name="mizani_site_history"),
    path("admin/reports/site-history/results/", site_views.site_history_results,
         name="mizani_site_history_results"),
    *[path(f"admin/reports/{route}", view, name=f"mizani_report_{route.strip('/').replace('-', '_')}")
      for route, view in site_views.WAGTAIL_REPORTS.items()],
    path("admin/", include(wagtailadmin_urls)),
    path("api/v1/", include("config.api_urls")),
    path("", RedirectView.as_view(pattern_name="wagtailadmin_home", permanent=False)),
]

if settings.DEBUG:
    from django.conf.urls.static import static

    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)

urlpatterns += [path("pages/", include(wagtail_urls))]
