from django.db.models import Q

from sites.scoping import scope_for

from .models import Upload


def uploads_for(user, *, include_deleted=True):
    """The user's own uploads, and those made within the user's locations (an upload is placed at
    its uploader's locations)."""
    if not user.has_perm("bulk.view_upload"):
        return Upload.objects.none()
    scope = scope_for(user)
    queryset = Upload.objects.select_related("uploaded_by")
    return queryset if scope.national else queryset.filter(scope.q("scope_root") | Q(uploaded_by=user))
