"""What a service's refusal says to the person who asked."""

from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied

# What each permission a service checks lets a person do, as a refusal names it: a refusal never names
# the permission's internal code.
PERMISSION_PHRASES = {
    "bulk.add_upload": "upload files",
    "payments.add_paymentcycle": "add payment cycles",
    "payments.add_paymentplan": "add payment plans",
    "payments.add_paymentpoint": "add payment points",
    "payments.add_paymentprovider": "add payment providers",
    "payments.add_payroll": "generate payrolls",
    "payments.change_paymentcycle": "change payment cycles",
    "payments.change_paymentplan": "change payment plans",
    "payments.change_paymentpoint": "change payment points",
    "payments.change_paymentprovider": "change payment providers",
    "payments.change_payroll": "change payrolls",
    "payments.manage_provider_token": "manage payment providers' API tokens",
    "payments.reconcile_payroll": "reconcile payrolls",
    "plans.add_beneficiary": "enrol people in plans",
    "plans.add_householdbeneficiary": "enrol households in plans",
    "plans.change_beneficiary": "change beneficiaries",
    "plans.change_benefitplan": "change benefit plans",
    "plans.change_householdbeneficiary": "change household beneficiaries",
    "plans.change_planfield": "change plan schemas",
    "registry.add_household": "register households",
    "registry.add_individual": "register people",
    "registry.add_membership": "add people to households",
    "registry.change_duplicatecandidate": "review possible duplicates",
    "registry.change_household": "change households",
    "registry.change_individual": "change people's records",
    "registry.delete_household": "delete or restore households",
    "registry.delete_individual": "delete or restore people's records",
    "registry.merge_individual": "merge duplicate records",
    "registry.scan_duplicates": "scan the registry for duplicates",
    "sites.delete_location": "delete locations",
    "sites.import_location": "import locations",
}


def refusal_message(error):
    """A ValidationError's messages (or any error's text) as one line for a flash message."""
    return " ".join(getattr(error, "messages", [str(error)]))


def permission_refusal(permission):
    """The refusal of a person whose role lacks `permission` ("app_label.codename"), in plain English."""
    phrase = PERMISSION_PHRASES.get(permission)
    if phrase:
        return PermissionDenied(f"Your role does not allow you to {phrase}.")
    app_label, _, codename = permission.partition(".")
    name = Permission.objects.filter(content_type__app_label=app_label, codename=codename).values_list(
        "name", flat=True).first()
    if not name:
        return PermissionDenied("Your role does not allow this.")
    return PermissionDenied(f"Your role does not allow this: {name.removeprefix('Can ')}.")


def require_permission(user, permission):
    if not user.has_perm(permission):
        raise permission_refusal(permission)
