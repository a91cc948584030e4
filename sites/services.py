"""Changes to the platform's own data: the location tree."""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import ProtectedError

from .audit import audit
from .refusals import require_permission


@transaction.atomic
def location_delete(*, location, by):
    require_permission(by, "sites.delete_location")
    try:
        audit(location, "wagtail.delete", by=by, data={"code": location.code, "name": location.name})
        location.delete()
    except ProtectedError:
        raise ValidationError(
            f"{location} still has sub-locations or registered records; move them first."
        ) from None
