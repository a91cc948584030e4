"""Role presets. Groups are created once with these permissions; administrators may edit them after."""

from django.contrib.auth.models import Group, Permission
from django.db import transaction

ADMIN_ACCESS = "wagtailadmin.access_admin"
REGISTRY_READ = ["registry.view_individual", "registry.view_household", "registry.view_membership",
                 "sites.view_location", "plans.view_benefitplan", "plans.view_beneficiary",
                 "plans.view_householdbeneficiary"]
BENEFICIARY_WRITE = ["plans.add_beneficiary", "plans.change_beneficiary", "plans.add_householdbeneficiary",
                     "plans.change_householdbeneficiary"]
PLAN_DESIGN = ["plans.add_benefitplan", "plans.change_benefitplan", "plans.add_planfield",
               "plans.change_planfield", "plans.delete_planfield", "plans.view_planfield", "plans.view_plancutoff",
               "plans.add_plancutoff", "plans.change_plancutoff", "plans.delete_plancutoff"]
REGISTRY_WRITE = [
    "registry.add_individual", "registry.change_individual", "registry.delete_individual",
    "registry.add_household", "registry.change_household", "registry.delete_household",
    "registry.add_membership", "registry.change_membership", "registry.delete_membership",
]
SENSITIVE = "registry.view_sensitive_data"
# Clerks review the duplicate queue, dismiss pairs and ask for merges (and their undoing); checkers
# approve those requests and read the queue to judge them.
DUPLICATES_READ = ["registry.view_duplicatecandidate", "registry.view_merge"]
DUPLICATES_WORK = ["registry.scan_duplicates", "registry.change_duplicatecandidate", "registry.merge_individual"]
UPLOADS = ["bulk.add_upload", "bulk.view_upload"]
# Accountants run cycles and payrolls, export them for providers and reconcile them (uploading the
# providers' files); checkers read payrolls to approve them; scheme administrators design payment
# plans (formulas).
PAYMENTS_READ = ["payments.view_paymentplan", "payments.view_paymentcycle", "payments.view_paymentprovider",
                 "payments.view_paymentpoint", "payments.view_payroll", "payments.view_paymentline"]
PAYMENTS_WORK = ["payments.add_paymentcycle", "payments.change_paymentcycle", "payments.add_paymentprovider",
                 "payments.change_paymentprovider", "payments.add_paymentpoint", "payments.change_paymentpoint",
                 "payments.add_payroll", "payments.change_payroll", "payments.export_payroll",
                 "payments.reconcile_payroll"]
PAYMENT_PLAN_DESIGN = ["payments.add_paymentplan", "payments.change_paymentplan", *PAYMENTS_READ]
# Accountants issue and revoke providers' API tokens. A token acts as its provider's service user,
# the one holder of the provider role: it reads approved payrolls' lines and reconciles them, through
# the provider API only (no admin access, no password), within the provider's payment points.
PROVIDER_TOKENS = "payments.manage_provider_token"
PROVIDER_API = ["payments.view_payroll", "payments.view_paymentline", "payments.reconcile_payroll"]

ROLE_PERMISSIONS = {
    "System administrator": [
        ADMIN_ACCESS, *REGISTRY_READ, SENSITIVE,
        "auth.add_user", "auth.change_user", "auth.delete_user", "auth.view_user",
        "auth.add_group", "auth.change_group", "auth.delete_group", "auth.view_group",
        "sites.add_location", "sites.change_location", "sites.delete_location", "sites.import_location",
        "sites.add_useraccess", "sites.change_useraccess", "sites.view_useraccess", "sites.view_audit",
        "sites.change_organisationsettings", *UPLOADS,
    ],
    "Scheme administrator": [
        ADMIN_ACCESS, *REGISTRY_READ,
        "registry.add_registryfield", "registry.change_registryfield", "registry.delete_registryfield",
        "registry.view_registryfield",
        # Deleting a member role stays refused for the built-in ones and one members hold (delete_problem).
        "registry.add_memberrole", "registry.change_memberrole", "registry.delete_memberrole",
        "registry.view_memberrole",
        "workflows.add_workflowdefinition", "workflows.change_workflowdefinition",
        "workflows.delete_workflowdefinition", "workflows.view_workflowdefinition",
        *PLAN_DESIGN, "bulk.view_upload", *PAYMENT_PLAN_DESIGN,
    ],
    "Clerk": [ADMIN_ACCESS, *REGISTRY_READ, *REGISTRY_WRITE, *BENEFICIARY_WRITE, SENSITIVE, *UPLOADS,
              *DUPLICATES_READ, *DUPLICATES_WORK],
    "Checker": [ADMIN_ACCESS, *REGISTRY_READ, SENSITIVE, "bulk.view_upload", *DUPLICATES_READ, *PAYMENTS_READ],
    "Accountant": [ADMIN_ACCESS, *REGISTRY_READ, *PAYMENTS_READ, *PAYMENTS_WORK, PROVIDER_TOKENS, *UPLOADS],
    # Managers read the programme's dashboards and reports (registry, payments, uploads), in their locations.
    "Manager": [ADMIN_ACCESS, *REGISTRY_READ, *PAYMENTS_READ, "bulk.view_upload"],
    "Viewer": [ADMIN_ACCESS, *REGISTRY_READ],
    "Payment provider (API)": PROVIDER_API,
}


def _permissions(names):
    wanted = {tuple(name.split(".", 1)) for name in names}
    found = Permission.objects.filter(
        content_type__app_label__in={app for app, _ in wanted},
        codename__in={code for _, code in wanted},
    ).select_related("content_type")
    by_key = {(p.content_type.app_label, p.codename): p for p in found}
    missing = wanted - set(by_key)
    if missing:
        raise LookupError(f"Unknown permissions for role presets: {sorted(missing)}")
    return list(by_key.values())


@transaction.atomic
def ensure_roles(*, reset=False):
    """Create missing role groups with their preset permissions, and give existing groups the preset
    permissions they were never given (a later release's). What administrators removed stays
    removed unless `reset` is asked for. Returns the groups created or reset."""
    from .models import RolePreset

    created = []
    for name, permission_names in ROLE_PERMISSIONS.items():
        group, was_created = Group.objects.get_or_create(name=name)
        preset, _ = RolePreset.objects.get_or_create(group=group)
        if was_created or reset:
            group.permissions.set(_permissions(permission_names))
            created.append(name)
        else:
            new = sorted(set(permission_names) - set(preset.granted))
            if new:
                group.permissions.add(*_permissions(new))
        preset.granted = sorted(set(permission_names) | (set() if reset else set(preset.granted)))
        preset.save()
    return created
