from wagtail import hooks

from .viewsets import UploadViewSet


@hooks.register("register_admin_viewset")
def register_upload_viewset():
    return UploadViewSet("bulk_upload", url_prefix="uploads")
