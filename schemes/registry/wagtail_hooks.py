from django.urls import path, reverse
from wagtail import hooks
from wagtail.admin.menu import MenuItem

from sites.scoping import scope_for

from . import views
from .components import HouseholdsSummaryItem, IndividualsSummaryItem
from .viewsets import RegistrySetupViewSetGroup, RegistryViewSetGroup

# What merging and reviewing duplicates writes to the audit trail (sites/audit.py writes the entries).
DUPLICATE_AUDIT_ACTIONS = {
    "mizani.merge": ("Merge", "Merged a duplicate record into this one"),
    "mizani.merged": ("Merged as a duplicate", "Merged into another record as its duplicate (and deleted)"),
    "mizani.unmerge": ("Merge undone", "Undid a merge of duplicate records"),
    "mizani.duplicate_dismiss": ("Not a duplicate", "Marked a possible duplicate as two different people"),
    "mizani.duplicate_reopen": ("Reopened", "Put a pair marked as not a duplicate back in the review queue"),
}


@hooks.register("register_log_actions")
def register_duplicate_audit_actions(actions):
    for action, (label, message) in DUPLICATE_AUDIT_ACTIONS.items():
        actions.register_action(action, label, message)


@hooks.register("register_admin_viewset")
def register_registry_viewsets():
    return [RegistryViewSetGroup(), RegistrySetupViewSetGroup()]


@hooks.register("construct_homepage_summary_items")
def registry_summary(request, items):
    # The registry replaces Wagtail's pages/images/documents counts on the home page.
    items[:] = [IndividualsSummaryItem(request), HouseholdsSummaryItem(request)]


@hooks.register("register_admin_urls")
def registry_urls():
    return [path("registry/maintenance/", views.maintenance, name="registry_maintenance")]


class MaintenanceMenuItem(MenuItem):
    def is_shown(self, request):
        return request.user.has_perm("registry.change_individual") and scope_for(request.user).national


@hooks.register("register_admin_menu_item")
def maintenance_menu_item():
    return MaintenanceMenuItem("Registry maintenance", reverse("registry_maintenance"), icon_name="cogs",
                               order=970)
