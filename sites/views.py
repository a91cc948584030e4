from django.core.exceptions import PermissionDenied
from wagtail.admin.auth import require_admin_access
from wagtail.admin.views.reports.audit_logging import LogEntriesView

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
