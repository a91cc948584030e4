from django.core.exceptions import PermissionDenied
from wagtail.admin.auth import require_admin_access
from wagtail.admin.views.reports.aging_pages import AgingPagesView
from wagtail.admin.views.reports.audit_logging import LogEntriesView
from wagtail.admin.views.reports.locked_pages import LockedPagesView
from wagtail.admin.views.reports.page_types_usage import PageTypesUsageReportView
from wagtail.admin.views.reports.workflows import WorkflowTasksView, WorkflowView

from .spreadsheets import SafeSpreadsheetExportMixin


class AuditTrailView(SafeSpreadsheetExportMixin, LogEntriesView):
    """Wagtail's site history, readable only with `sites.view_audit` and exported formula-safe."""

    page_title = "Audit trail"
    index_url_name = "mizani_site_history"
    index_results_url_name = "mizani_site_history_results"
    export_filename = "audit-trail"

    def dispatch(self, request, *args, **kwargs):
        if not request.user.has_perm("sites.view_audit"):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)


site_history = require_admin_access(AuditTrailView.as_view())
site_history_results = require_admin_access(AuditTrailView.as_view(results_only=True))


def _formula_safe(view_class):
    return require_admin_access(type(view_class.__name__, (SafeSpreadsheetExportMixin, view_class), {}).as_view())


# Wagtail's own reports export what editors typed (page titles, comments): formula-safe, with the BOM,
# like every other export. Their index URLs (where ?export= is served) route here first.
WAGTAIL_REPORTS = {
    "locked/": _formula_safe(LockedPagesView),
    "workflow/": _formula_safe(WorkflowView),
    "workflow_tasks/": _formula_safe(WorkflowTasksView),
    "aging-pages/": _formula_safe(AgingPagesView),
    "page-types-usage/": _formula_safe(PageTypesUsageReportView),
}

