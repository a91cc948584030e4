from .models import Location, UserAccess
from .scoping import scope_for


def locations_for(user, *, include_deleted=True):
    """Locations at or under the user's assignments (all of them for national scope)."""
    if not user.has_perm("sites.view_location"):
        return Location.objects.none()
    return scope_for(user).locations().select_related("parent")


def user_access_for(user, *, include_deleted=True):
    if not user.has_perm("sites.view_useraccess"):
        return UserAccess.objects.none()
    return UserAccess.objects.select_related("user").prefetch_related("locations")
