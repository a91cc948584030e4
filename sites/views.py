from django.core.exceptions import PermissionDenied
from django.urls import path
from wagtail.admin.auth import require_admin_access
from wagtail.admin.urls import reports as wagtail_reports
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
