"""Changes to the platform's own data: the location tree."""

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import ProtectedError

from .audit import audit


def _require_permission(user, permission):
    if not user.has_perm(permission):
        raise PermissionDenied(f"You do not have the permission '{permission}'.")


@transaction.atomic
def location_delete(*, location, by):
    _require_permission(by, "sites.delete_location")
    try:
        audit(location, "wagtail.delete", by=by, data={"code": location.code, "name": location.name})
        location.delete()
    except ProtectedError:
        raise ValidationError(
            f"{location} still has sub-locations or registered records; move them first."
        ) from None
