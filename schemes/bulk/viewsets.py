from django.urls import path

from sites.viewsets import ScopedModelViewSet

from . import selectors, views
from .models import Upload


class UploadViewSet(ScopedModelViewSet):
    """Uploads: the history, each upload's page (checks, counts, error file, submit or discard) and a
    form for a new one. Uploads change only through the pipeline's services."""

    model = Upload
    selector = staticmethod(selectors.uploads_for)
    icon = "upload"
    menu_label = "Uploads"
    menu_order = 130
    add_to_admin_menu = True
    inspect_view_enabled = True
    index_view_class = views.UploadIndexView
    inspect_view_class = views.UploadRecordView
    inspect_template_name = "bulk/upload_record.html"
    add_to_reference_index = False
    export_filename = "uploads"
    form_fields = ["original_name"]  # required by ModelViewSet; no add or edit view is served

    def get_common_view_kwargs(self, **kwargs):
        return super().get_common_view_kwargs(**{
            **kwargs, "edit_url_name": None, "delete_url_name": None, "usage_url_name": None,
            "add_url_name": self.get_url_name("new")})

    def get_urlpatterns(self):
        kept = {"index", "index_results", "inspect", "history", "history_results"}
        return [pattern for pattern in super().get_urlpatterns() if pattern.name in kept] + [
            path("new/", views.upload_new, name="new"),
            path("submit/<int:pk>/", views.upload_submit, name="submit"),
            path("discard/<int:pk>/", views.upload_discard, name="discard"),
            path("errors/<int:pk>/", views.error_file, name="errors"),
            path("template/", views.template, name="template"),
        ]
