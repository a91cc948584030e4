"""The reports' admin views (dashboards/reports.py says what each shows).

The two lists are ScopedIndexViews: a scoped selector, Wagtail's filters, sorting and pagination, and
the project's export (every cell through safe_cell, CSV streamed, XLSX bounded, audited with the
filters and the row count). The upload history is the uploads list's own view (bulk's
UploadIndexView) with the report's columns and a period filter, not a second listing of uploads. The
two aggregates render a metric's Table and download it as CSV.
"""

import django_filters
from django.core.exceptions import PermissionDenied
from django.urls import path, reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.views import View
from django_filters.widgets import SuffixedMultiWidget
from wagtail.admin.filters import WagtailFilterSet
from wagtail.admin.ui.tables import Column, TitleColumn
from wagtail.admin.views.generic.base import WagtailAdminTemplateMixin
from wagtail.admin.widgets.button import Button
from wagtail.permission_policies import ModelPermissionPolicy

from schemes.bulk.models import Upload, UploadKind, UploadStatus
from schemes.bulk.selectors import uploads_for
from schemes.bulk.views import UploadFilterSet, UploadIndexView
from sites.audit import audit_event
from sites.scoping import scope_for
from sites.spreadsheets import csv_response
from sites.viewsets import ScopedIndexView
from workflows.models import ApprovalRequest
from workflows.operations import operation_choices, operation_label

from . import reports
from .forms import LOCATION_FILTER_DEPTH, DashboardFilterForm, DateInput
from .metrics import Filters, compute, get_metric
from .rendering import NO_DATA, NOTHING_YET, format_number
from .selectors import APPROVAL_AGES, approval_age_q, openable_pending_requests_for
from .views import refuse_export, unusable_filters_message

REPORTS_BREADCRUMB = {"url": "", "label": "Reports"}


class ReportAccessMixin:
    """Refuses (PermissionDenied) a user who may not read the report's metric."""

    report = None

    def dispatch(self, request, *args, **kwargs):
        if not self.report.allowed(request.user):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)


def _scoped_locations(request):
    return scope_for(request.user).locations().filter(depth__lte=LOCATION_FILTER_DEPTH).order_by("path")


# --- pending approvals ------------------------------------------------------------------------------


class PendingApprovalFilterSet(WagtailFilterSet):
    operation = django_filters.ChoiceFilter(choices=operation_choices, label="Operation")
    age = django_filters.ChoiceFilter(choices=list(APPROVAL_AGES.items()), method="filter_age",
                                      label="Waiting for")
    location = django_filters.ModelChoiceFilter(queryset=_scoped_locations, method="filter_location",
                                                label="Location (and below)")

    class Meta:
        model = ApprovalRequest
        fields = []

    def filter_age(self, queryset, name, value):
        return queryset.filter(approval_age_q(value)) if value else queryset

    def filter_location(self, queryset, name, location):
        return queryset.filter(location__path__startswith=location.path) if location else queryset


def _pending_requests(user, include_deleted=True):
    return openable_pending_requests_for(user).select_related("maker", "waiting_group", "location")


def _title(request):
    """The request's own title where the viewer may open it; else no more than the report's other columns
    say (a title may name the people concerned)."""
    return request.title if request.may_open else f"Request {request.pk}"


def _inspect_url(request):
    return reverse("workflows_approvals:inspect", args=[request.pk]) if request.may_open else None


def _step(request):
    step = request.step
    if step is None:
        return ""
    return f"{request.current_step + 1} of {len(request.steps)}: {step.get('group', '')}"


def _place(location):
    return f"{location.name} ({location.code})" if location else "All locations"


class PendingApprovalsReportView(ReportAccessMixin, ScopedIndexView):
    report = reports.PENDING_APPROVALS
    model = ApprovalRequest
    page_title = reports.PENDING_APPROVALS.label
    header_icon = "tasks"
    filterset_class = PendingApprovalFilterSet
    default_ordering = "created_at"  # the longest waiting first
    paginate_by = 50
    export_filename = "pending-approvals"
    list_export = ["id", "title", "operation", "maker", "maker_name", "created_at", "age_days", "step",
                   "location_code", "location", "total"]
    export_headings = {"id": "Request", "title": "Request title", "operation": "Operation", "maker": "Asked by",
                       "maker_name": "Asked by (name)", "created_at": "Submitted", "age_days": "Age (days)",
                       "step": "Step", "location_code": "Location code", "location": "Location",
                       "total": "Total"}

    @cached_property
    def columns(self):
        return [
            TitleColumn("title", label="Request", accessor=_title, get_url=_inspect_url),
            Column("operation", label="Operation", accessor="operation_label", sort_key="operation"),
            Column("maker", label="Asked by", accessor=lambda request: request.maker.get_full_name()
                   or request.maker.get_username()),
            Column("created_at", label="Submitted", sort_key="created_at",
                   accessor=lambda request: f"{timezone.localtime(request.created_at):%Y-%m-%d %H:%M}"),
            Column("age", label="Age (days)", accessor=lambda request: reports.age_in_days(request.created_at)),
            Column("step", label="Step", accessor=_step),
            Column("location", label="Location", accessor=lambda request: _place(request.location)),
            Column("total", label="Total", accessor=lambda request: format_number(request.total, "money")),
        ]

    def to_row_dict(self, request):
        location = request.location
        return {"id": request.pk, "title": _title(request), "operation": operation_label(request.operation),
                "maker": request.maker.get_username(), "maker_name": request.maker.get_full_name(),
                "created_at": request.created_at, "age_days": reports.age_in_days(request.created_at),
                "step": _step(request), "location_code": location.code if location else "",
                "location": location.name if location else "All locations", "total": request.total}

    def get_breadcrumbs_items(self):
        return [*self.breadcrumbs_items, REPORTS_BREADCRUMB, {"url": "", "label": self.page_title}]


# --- upload history ---------------------------------------------------------------------------------


class NativeDateRangeWidget(django_filters.widgets.DateRangeWidget):
    """Two browser date pickers (Wagtail's date widget starts itself with an inline script, which the
    Content-Security-Policy refuses)."""

    def __init__(self, attrs=None):
        SuffixedMultiWidget.__init__(self, (DateInput(), DateInput()), attrs)


class UploadHistoryFilterSet(UploadFilterSet):
    kind = django_filters.ChoiceFilter(choices=UploadKind.choices)
    status = django_filters.ChoiceFilter(choices=UploadStatus.choices, label="Result")
    uploaded = django_filters.DateFromToRangeFilter(
        field_name="created_at", label="Uploaded between", widget=NativeDateRangeWidget(), method="filter_period")

    class Meta(UploadFilterSet.Meta):
        pass

    def filter_period(self, queryset, name, value):
        """The dashboards' period (any date, the calendar's first and last days included), in the site's
        time zone: the field gives the days' local start and end."""
        return queryset.filter(Filters(start=value.start and value.start.date(),
                                       end=value.stop and value.stop.date()).datetime_q(name))


COUNT_COLUMNS = {"rows": "Rows", "valid": "Rows to import", "errors": "Rows with errors", "imported": "Imported"}


def _counts_text(upload):
    """The counts in one cell of the listing (the CSV has a column each)."""
    counts = upload.counts
    parts = [f"{counts['rows']:,} in the file" if "rows" in counts else "",
             f"{counts['valid']:,} to import" if "valid" in counts else "",
             f"{counts['errors']:,} with errors" if counts.get("errors") else "",
             f"{counts['imported']:,} imported" if "imported" in counts else ""]
    return ", ".join(part for part in parts if part)


class UploadHistoryReportView(ReportAccessMixin, UploadIndexView):
    report = reports.UPLOAD_HISTORY
    page_title = reports.UPLOAD_HISTORY.label
    header_icon = "upload"
    filterset_class = UploadHistoryFilterSet
    export_filename = "upload-history"
    list_export = ["id", "original_name", "kind", "plan", "payroll", "uploaded_by", "created_at", "finished_at",
                   "status", *COUNT_COLUMNS, "error_file"]
    export_headings = {"id": "Upload", "original_name": "File", "kind": "Kind", "plan": "Plan",
                       "payroll": "Payroll", "uploaded_by": "Uploaded by", "created_at": "Uploaded",
                       "finished_at": "Finished", "status": "Result", **COUNT_COLUMNS, "error_file": "Error file"}

    @cached_property
    def columns(self):
        listing = [column for column in super().columns if column.name not in ("rows", "errors")]
        return [*listing, Column("counts", label="Rows", accessor=_counts_text),
                Column("error_file", label="Error file", accessor=self.error_file_link)]

    def error_file_url(self, upload):
        return reverse("bulk_upload:errors", args=[upload.pk]) if upload.has_error_file else ""

    def error_file_link(self, upload):
        url = self.error_file_url(upload)
        return format_html('<a href="{}" download>Rows with errors</a>', url) if url else ""

    def to_row_dict(self, upload):
        url = self.error_file_url(upload)
        return {"id": upload.pk, "original_name": upload.original_name, "kind": upload.get_kind_display(),
                "plan": upload.plan.code if upload.plan_id else "",
                "payroll": upload.payroll.name if upload.payroll_id else "",
                "uploaded_by": upload.uploaded_by.get_username(), "created_at": upload.created_at,
                "finished_at": upload.finished_at, "status": upload.get_status_display(),
                **{key: upload.counts.get(key) for key in COUNT_COLUMNS},
                "error_file": self.request.build_absolute_uri(url) if url else ""}

    def get_base_queryset(self):
        return super().get_base_queryset().select_related("plan", "payroll")

    def get_breadcrumbs_items(self):
        return [*self.breadcrumbs_items, REPORTS_BREADCRUMB, {"url": "", "label": self.page_title}]


# --- aggregates: a dashboards metric as a table -----------------------------------------------------


# The Filters (metrics.Metric.filters_used) each of the form's fields sets.
FILTER_OF_FIELD = {"plan": "plan", "location": "location", "start": "period", "end": "period"}


class ReportFilterForm(DashboardFilterForm):
    """The dashboards' filters (plan, location within the user's, period) without a page's defaults."""

    def __init__(self, data, *, user):
        super().__init__(data, user=user, page=None)

    @classmethod
    def defaults(cls, page):
        return {}


class MetricReportView(ReportAccessMixin, WagtailAdminTemplateMixin, View):
    template_name = "dashboards/reports/metric_report.html"

    def get(self, request):
        self.form = ReportFilterForm(request.GET, user=request.user)
        filters = self.form.filters()
        table = compute(self.report.metric, request.user, filters)
        if table is None:
            raise PermissionDenied
        table = reports.SHAPES[self.report.slug](table)
        if request.GET.get("export") == "csv":
            if refusal := unusable_filters_message(self.form):
                return refuse_export(request, request.path, refusal)
            return self.csv_response(table)
        return self.render_to_response(self.get_context_data(table=table))

    def csv_response(self, table):
        # An aggregate: a few rows per plan or cycle, written at once.
        response = csv_response(f'{self.report.slug.replace("_", "-")}.csv', table.as_csv())
        audit_event("mizani.export", by=self.request.user, title=(
            f"{self.report.label} export (CSV), {len(table.rows):,} row{'' if len(table.rows) == 1 else 's'}"), data={
            "what": f"report: {self.report.label}", "report": self.report.slug, "metric": self.report.metric,
            "format": "csv", "rows": len(table.rows), "filters": self.applied_filters()})
        return response

    def applied_filters(self):
        """The filters the numbers were computed with: the form's fields the metric reads, without a choice
        the form refused (the page drops it; an export with one is refused). Other parameters of the
        query are no filters."""
        form = self.form
        used = get_metric(self.report.metric).filters_used
        filters = {name: form.data[name] for name in form.FIELDS
                   if name in form.fields and FILTER_OF_FIELD[name] in used and form.data.get(name)
                   and name not in form.errors}
        location = form.cleaned_data.get("location") if "location" in filters else None
        if location:  # read by people, not by id
            filters.update({"location_code": location.code, "location_name": location.name})
        return filters

    def get_page_title(self):
        return self.report.label

    def get_header_icon(self):
        return self.report.icon

    def get_breadcrumbs_items(self):
        return [*self.breadcrumbs_items, REPORTS_BREADCRUMB, {"url": "", "label": self.report.label}]

    @cached_property
    def csv_url(self):
        params = self.request.GET.copy()
        params["export"] = "csv"
        return f"{self.request.path}?{params.urlencode()}"

    def get_header_more_buttons(self):
        return [Button("Download CSV", url=self.csv_url, icon_name="download", priority=100)]

    def get_context_data(self, *, table, **kwargs):
        context = super().get_context_data(**kwargs)
        kinds = [column.kind for column in table.columns]
        context.update({
            "report": self.report, "form": self.form, "columns": table.columns,
            "rows": [_cells(row, kinds) for row in table.rows],
            "totals": _cells(reports.totals_row(table), kinds) if len(table.rows) > 1 else None,
            "csv_url": self.csv_url, "empty_text": NO_DATA if self.applied_filters() else NOTHING_YET})
        return context


def _cells(row, kinds):
    return [{"text": format_number(value, kind) if kind in ("number", "money") else (value or ""),
             "number": kind in ("number", "money")} for value, kind in zip(row, kinds, strict=True)]


# --- URLs -------------------------------------------------------------------------------------------


def _list_view(view_class, report, **kwargs):
    return view_class.as_view(index_url_name=report.url_name, index_results_url_name=f"{report.url_name}_results",
                              **kwargs)


pending_approvals_kwargs = {"selector": _pending_requests}
upload_history_kwargs = {"model": Upload, "selector": uploads_for, "inspect_url_name": "bulk_upload:inspect",
                         "permission_policy": ModelPermissionPolicy(Upload), "any_permission_required": None,
                         "permission_required": "view"}


urlpatterns = [
    path("pending-approvals/", _list_view(PendingApprovalsReportView, reports.PENDING_APPROVALS,
                                          **pending_approvals_kwargs), name="pending_approvals"),
    path("pending-approvals/results/", _list_view(PendingApprovalsReportView, reports.PENDING_APPROVALS,
                                                  results_only=True, **pending_approvals_kwargs),
         name="pending_approvals_results"),
    path("upload-history/", _list_view(UploadHistoryReportView, reports.UPLOAD_HISTORY, **upload_history_kwargs),
         name="upload_history"),
    path("upload-history/results/", _list_view(UploadHistoryReportView, reports.UPLOAD_HISTORY, results_only=True,
                                               **upload_history_kwargs), name="upload_history_results"),
    path("beneficiaries-by-plan/", MetricReportView.as_view(report=reports.BENEFICIARIES_BY_PLAN),
         name="beneficiaries_by_plan"),
    path("payments-due-vs-paid/", MetricReportView.as_view(report=reports.PAYMENTS_DUE_VS_PAID),
         name="payments_due_vs_paid"),
]
