from django.core.exceptions import PermissionDenied
from django.urls import path
from wagtail.admin.auth import require_admin_access
from wagtail.admin.urls import reports as wagtail_reports
from wagtail.admin.views.reports.audit_logging import LogEntriesView
from wagtail.coreutils import get_content_type_label

from .audit import entry_details, event_subject, is_event, may_read_audit_trail, sensitive_names
from .masking import can_view_sensitive
from .spreadsheets import SafeSpreadsheetExportMixin

# Wagtail's export columns of an entry's object ID and type, exported as decorate_paginated_queryset
# gives them: an event's are not the settings' it is logged on.
EXPORTED_AS = {"object_id": "record_id", "content_type": "record_type"}


class AuditTrailView(SafeSpreadsheetExportMixin, LogEntriesView):
    """Wagtail's site history, readable only with `sites.view_audit` and exported formula-safe, with
    each entry's details (what was exported, with which filters; what changed) on the page, shortened,
    and in full in the export."""

    page_title = "Audit trail"
    index_url_name = "mizani_site_history"
    index_results_url_name = "mizani_site_history_results"
    results_template_name = "sites/audit_trail_results.html"
    export_filename = "audit-trail"
    list_export = [EXPORTED_AS.get(field, field) for field in LogEntriesView.list_export] + ["details"]
    export_headings = {**{EXPORTED_AS.get(field, field): heading
                          for field, heading in LogEntriesView.export_headings.items()}, "details": "Details"}

    def dispatch(self, request, *args, **kwargs):
        # The trail covers every location (what changed, who was exported): national readers only.
        if not may_read_audit_trail(request.user):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)

    def decorate_paginated_queryset(self, queryset):
        entries = super().decorate_paginated_queryset(queryset)
        show_sensitive = can_view_sensitive(self.request.user)
        hidden_names = frozenset() if show_sensitive else sensitive_names()
        for entry in entries:
            entry.details = entry_details(entry, show_sensitive=show_sensitive, hidden_names=hidden_names)
            if is_event(entry):
                # An event is not a change to the settings it is logged on: it reads as what it was
                # about, with no record ID and no link to the settings.
                entry.edit_url = entry.record_id = None
                entry.record_type = event_subject(entry)
            else:
                entry.record_id, entry.record_type = entry.object_id, get_content_type_label(entry.content_type)
        return entries


# Wagtail's report views we change beyond their export.
REPORT_VIEWS = {LogEntriesView: AuditTrailView}


def _formula_safe(view_class):
    if issubclass(view_class, SafeSpreadsheetExportMixin):
        return view_class
    return type(view_class.__name__, (SafeSpreadsheetExportMixin, view_class), {})


def wagtail_report_urls():
    """Wagtail's reports export what editors typed (page titles, comments): formula-safe, with the
    BOM, like every other export. Both URLs of each report serve ?export= (the index, and the results
    its filters reload), so every URL Wagtail declares for its reports, current and future, is routed
    here first: same path, the same view made formula-safe, named `mizani_<Wagtail's name>`."""
    urls = []
    for pattern in wagtail_reports.urlpatterns:
        # Wagtail's decorators keep as_view()'s attributes on the view they wrap.
        view_class = _formula_safe(REPORT_VIEWS.get(pattern.callback.view_class, pattern.callback.view_class))
        view = require_admin_access(view_class.as_view(**pattern.callback.view_initkwargs))
        urls.append(path(str(pattern.pattern), view, name=f"mizani_{pattern.name}"))
    return urls
