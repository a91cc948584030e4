from django.urls import path, reverse
from wagtail import hooks
from wagtail.admin.menu import MenuItem
from wagtail.log_actions import LogFormatter

from sites.scoping import scope_for

from . import views
from .approvals import labelled_diff
from .components import HouseholdsSummaryItem, IndividualsSummaryItem
from .models import Individual, RegistryField
from .viewsets import RegistrySetupViewSetGroup, RegistryViewSetGroup

# What merging and reviewing duplicates writes to the audit trail (sites/audit.py writes the entries).
DUPLICATE_AUDIT_ACTIONS = {
    "mizani.merge": ("Merge", "Merged a duplicate record into this one"),
    "mizani.merged": ("Merged as a duplicate", "Merged into another record as its duplicate (and deleted)"),
    "mizani.unmerge": ("Merge undone", "Undid a merge of duplicate records"),
    "mizani.duplicate_dismiss": ("Not a duplicate", "Marked a possible duplicate as two different people"),
    "mizani.duplicate_reopen": ("Reopened", "Put a pair marked as not a duplicate back in the review queue"),
}


def _labels(names):
    """A person's fields, named as in a change ("national_id", "attributes.income"), by their labels."""
    return [row[0] for row in labelled_diff(Individual, RegistryField.Target.INDIVIDUAL,
                                             {name: [None, None] for name in names})]


class MergeEntry(LogFormatter):
    """A merge's or its undoing's entry on a person, naming fields by their labels, never by the names
    its data keeps them under (values stay as written: sensitive ones masked)."""

    def __init__(self):
        self.label, self.message = DUPLICATE_AUDIT_ACTIONS[self.action]

    def labelled_changes(self, log_entry):
        """[(label, old, new)] for the record's changed values, as the record's history lists them: in the
        order the change was written in (by name), which PostgreSQL's jsonb does not keep."""
        changes = dict(sorted(((log_entry.data or {}).get("changes") or {}).items()))
        return [tuple(row) for row in labelled_diff(Individual, RegistryField.Target.INDIVIDUAL, changes)]

    def readable_data(self, log_entry):
        """The entry's data as the audit trail's details read it: labels for field names."""
        data = dict(log_entry.data or {})
        if data.get("changes"):
            data["changes"] = {label: [old, new] for label, old, new in self.labelled_changes(log_entry)}
        if isinstance(data.get("moved"), dict) and data["moved"].get("filled"):
            data["moved"] = {**data["moved"], "filled": _labels(data["moved"]["filled"])}
        for key in ("filled_taken_back", "filled_changed_since_stay"):
            if data.get(key):
                data[key] = _labels(data[key])
        return data


class Merged(MergeEntry):
    action = "mizani.merge"

    def format_message(self, log_entry):
        data = log_entry.data or {}
        text = f"Merged a duplicate record (individual {data.get('merged')}) into this one"
        if filled := _labels((data.get("moved") or {}).get("filled") or []):
            text += f"; filled from it: {', '.join(filled)}"
        return text


class MergedAway(MergeEntry):
    action = "mizani.merged"

    def format_message(self, log_entry):
        return f"Merged into individual {(log_entry.data or {}).get('kept')} as its duplicate (and deleted)"


class Unmerged(MergeEntry):
    action = "mizani.unmerge"

    def format_message(self, log_entry):
        data = log_entry.data or {}
        if "merged" not in data:  # the entry of the record brought back
            return f"Undid the merge of this record into individual {data.get('kept')}: it is registered again"
        text = f"Undid the merge of a duplicate record (individual {data['merged']}) into this one"
        if taken_back := _labels(data.get("filled_taken_back") or []):
            text += f"; taken back from this record: {', '.join(taken_back)}"
        if stay := _labels(data.get("filled_changed_since_stay") or []):
            text += f"; filled by the merge but changed since, so kept: {', '.join(stay)}"
        return text


@hooks.register("register_log_actions")
def register_duplicate_audit_actions(actions):
    formatters = {formatter.action: formatter for formatter in (Merged, MergedAway, Unmerged)}
    for action, (label, message) in DUPLICATE_AUDIT_ACTIONS.items():
        if action in formatters:
            actions.register_action(action)(formatters[action])
        else:
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
