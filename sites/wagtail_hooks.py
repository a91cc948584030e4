from django import forms
from django.db import models
from django.templatetags.static import static
from django.urls import path, reverse
from django.utils.html import format_html
from wagtail import hooks
from wagtail.admin.forms.models import register_form_field_override
from wagtail.admin.menu import MenuItem
from wagtail.admin.viewsets.model import ModelViewSetGroup
from wagtail.log_actions import LogFormatter

from . import admin_views, selectors
from .audit import ACTIONS, may_read_audit_trail
from .choosers import location_chooser_viewset
from .models import Location, UserAccess
from .users import GUARDED_BULK_ACTIONS
from .viewsets import ScopedModelViewSet


class EnrolledByFile(LogFormatter):
    """Names the file, as the person's history reads it ("Enrolled by file households-march.csv")."""

    label = ACTIONS["mizani.enrol_file"][0]

    def format_message(self, log_entry):
        return f"Enrolled by file {log_entry.data.get('file', '')}".strip()


class BeneficiaryStatusChanged(LogFormatter):
    """From and to, the reason, and the approved request where one applied it (a change in bulk)."""

    label = ACTIONS["mizani.beneficiary_status"][0]

    def format_message(self, log_entry):
        data = log_entry.data or {}
        text = f"Status changed from {_status_text(data.get('from'))} to {_status_text(data.get('to'))}"
        return text + (f": {data['reason']}" if data.get("reason") else "") + _by_request(data)


def _status_text(status):
    """A beneficiary status as stored ("ACTIVE") as a history reads it ("active")."""
    return (status or "unknown").lower()


def _by_request(data):
    """" (request 3, approved by checker_a)" where an approved request applied the change, else ""."""
    if not data.get("request"):
        return ""
    approvers = ", ".join(data.get("approved_by") or [])
    return f" (request {data['request']}{f', approved by {approvers}' if approvers else ''})"


def _changed(data):
    """The membership's fields a merge or its undoing changed ("role and recipient type")."""
    return " and ".join(name.replace("_", " ") for name in sorted(data.get("changes") or {}))


class MemberAdded(LogFormatter):
    """A member the undoing of a merge brought back reads as such."""

    label, message = ACTIONS["mizani.member_add"]

    def format_message(self, log_entry):
        data = log_entry.data or {}
        if "merge_undone" not in data:
            return self.message
        text = f"Member returned by undoing a merge: individual {data.get('individual')}"
        if changed := _changed(data):
            text += f"; individual {data.get('kept')}'s {changed} back as before the merge"
        return text


class MemberChanged(LogFormatter):
    """A household place passing between duplicate records reads as the merge, or its undoing, that
    moved it, not as a change of role."""

    label, message = ACTIONS["mizani.member_change"]

    def format_message(self, log_entry):
        data = log_entry.data or {}
        if "replaces" not in data:
            return self.message
        individual, replaced = data.get("individual"), data.get("replaces")
        if "merge_undone" in data:
            return (f"Membership returned by undoing a merge: individual {individual} took back its place from "
                    f"individual {replaced}")
        if "merged_into" in data:
            return (f"Membership moved by a merge to the record kept: individual {individual} took the place of "
                    f"its duplicate, individual {replaced}")
        # Written before entries said which of the two moved it.
        return (f"Membership moved by a merge or its undoing: individual {individual} took the place of "
                f"individual {replaced}")


class MemberRemoved(LogFormatter):
    """A member a merge took away (merged into another record) reads as such."""

    label, message = ACTIONS["mizani.member_remove"]

    def format_message(self, log_entry):
        data = log_entry.data or {}
        if "merged_into" not in data:
            return self.message
        text = (f"Member removed by a merge: individual {data.get('individual')}, merged into individual "
                f"{data['merged_into']}")
        if changed := _changed(data):
            text += f", who took over their {changed}"
        return text


# Actions whose message depends on the entry's data; the others read as ACTIONS says.
FORMATTERS = {"mizani.enrol_file": EnrolledByFile, "mizani.beneficiary_status": BeneficiaryStatusChanged,
              "mizani.member_add": MemberAdded,
              "mizani.member_change": MemberChanged, "mizani.member_remove": MemberRemoved}


@hooks.register("register_log_actions")
def register_audit_actions(actions):
    for action, (label, message) in ACTIONS.items():
        if action in FORMATTERS:
            actions.register_action(action)(FORMATTERS[action])
        else:
            actions.register_action(action, label, message)


for bulk_action in GUARDED_BULK_ACTIONS:
    # Registered after Wagtail's own (order 1): same action type, so these replace them.
    hooks.register("register_bulk_action", bulk_action, order=1)


@hooks.register("insert_global_admin_js")
def date_chooser_starter():
    # Starts Wagtail's date and time pickers, whose own inline scripts the CSP refuses
    # (sites/templates/wagtailadmin/widgets/*_input.html).
    return format_html('<script src="{}" defer></script>', static("mizani/date_chooser_init.js"))


@hooks.register("insert_global_admin_css")
def mizani_admin_css():
    return format_html('<link rel="stylesheet" href="{}">', static("mizani/admin.css"))


class LocationViewSet(ScopedModelViewSet):
    model = Location
    selector = staticmethod(selectors.locations_for)
    icon = "site"
    menu_label = "Locations"
    index_view_class = admin_views.LocationIndexView
    delete_view_class = admin_views.LocationDeleteView
    form_fields = ["code", "name", "parent"]
    list_filter = ["depth"]
    export_filename = "locations"

    def get_urlpatterns(self):
        return super().get_urlpatterns() + [path("import/", admin_views.location_import, name="import")]


class UserAccessViewSet(ScopedModelViewSet):
    model = UserAccess
    selector = staticmethod(selectors.user_access_for)
    icon = "lock"
    menu_label = "User access"
    list_display = ["user", "national_scope"]
    list_filter = ["national_scope"]
    form_fields = ["user", "national_scope", "locations"]


class PlatformViewSetGroup(ModelViewSetGroup):
    menu_label = "Platform"
    menu_icon = "cogs"
    menu_order = 900
    items = (LocationViewSet("sites_location", url_prefix="platform/locations"),
             UserAccessViewSet("sites_useraccess", url_prefix="platform/user-access"))


@hooks.register("register_admin_viewset")
def register_platform_viewsets():
    return PlatformViewSetGroup()


@hooks.register("register_admin_viewset")
def register_location_chooser():
    return location_chooser_viewset


class AuditTrailMenuItem(MenuItem):
    def is_shown(self, request):
        return may_read_audit_trail(request.user)


@hooks.register("register_admin_menu_item")
def register_audit_trail_menu_item():
    return AuditTrailMenuItem("Audit trail", reverse("mizani_site_history"), icon_name="history", order=950)


@hooks.register("construct_help_menu")
def hide_wagtails_own_guides(request, menu_items):
    # Wagtail's release notes and editor guide (on wagtail.org) are not a scheme's staff's help.
    menu_items[:] = [item for item in menu_items
                     if item.name != "editor-guide" and not item.name.startswith("whats-new-in-wagtail")]


@hooks.register("construct_reports_menu")
def hide_wagtail_site_history(request, menu_items):
    # The same view is reached through "Audit trail", for auditors only.
    menu_items[:] = [item for item in menu_items if item.name != "site-history"]


class NativeDateInput(forms.DateInput):
    """The browser's own date picker for the models' date fields: ISO dates, nothing to start."""

    input_type = "date"

    def __init__(self, attrs=None):
        super().__init__(attrs=attrs, format="%Y-%m-%d")


register_form_field_override(models.DateField, override={"widget": NativeDateInput})
