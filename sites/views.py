from django.core.exceptions import PermissionDenied
from django.urls import path
from wagtail.admin.auth import require_admin_access
from wagtail.admin.urls import reports as wagtail_reports
from wagtail.admin.views.reports.audit_logging import LogEntriesView

from .audit import audit_details, is_event
from .masking import can_view_sensitive
from .spreadsheets import SafeSpreadsheetExportMixin


class AuditTrailView(SafeSpreadsheetExportMixin, LogEntriesView):
    """Wagtail's site history, readable only with `sites.view_audit` and exported formula-safe, with
    each entry's details (what was exported, with which filters; what changed) on the page, shortened,
    and in full in the export."""

    page_title = "Audit trail"
    index_url_name = "mizani_site_history"
    index_results_url_name = "mizani_site_history_results"
    results_template_name = "sites/audit_trail_results.html"
    export_filename = "audit-trail"
    list_export = [*LogEntriesView.list_export, "details"]
    export_headings = {**LogEntriesView.export_headings, "details": "Details"}

    def dispatch(self, request, *args, **kwargs):
        if not request.user.has_perm("sites.view_audit"):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)

    def decorate_paginated_queryset(self, queryset):
        entries = super().decorate_paginated_queryset(queryset)
        show_sensitive = can_view_sensitive(self.request.user)
        for entry in entries:
            entry.details = audit_details(entry.data, show_sensitive=show_sensitive)
            if is_event(entry):
                entry.edit_url = None  # an event is not a change to the settings it is logged on
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
