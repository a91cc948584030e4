import csv
from pathlib import Path

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, Http404, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_http_methods, require_POST
from wagtail.admin.filters import WagtailFilterSet
from wagtail.admin.ui.tables import Column, TitleColumn

from schemes.payments.models import Payroll
from schemes.payments.selectors import payrolls_for
from schemes.plans.models import BenefitPlan
from schemes.plans.selectors import plans_for
from sites.audit import audit
from sites.masking import can_view_sensitive
from sites.refusals import refusal_message
from sites.spreadsheets import CSV_CONTENT_TYPE, csv_response, safe_cell, xlsx_response
from sites.viewsets import ScopedIndexView, ScopedInspectView
from workflows.models import ApprovalRequest
from workflows.services import approval_submit

from . import column_notes, selectors, services
from .approvals import awaiting_approval, requests_under_way
from .files import sanitise_file_name
from .forms import SubmitForm, UploadForm
from .models import PLAN_KINDS, Upload, UploadKind, UploadStatus

ERRORS_SHOWN = 20  # on the upload's page; the error file has them all
TEMPLATE_PLANS = 20  # plans whose templates the upload page lists when it is not for one plan


class UploadFilterSet(WagtailFilterSet):
    """The plans and payrolls offered as filters are those the user may read (payroll names are not a
    clerk's to see)."""

    class Meta:
        model = Upload
        fields = ["kind", "status", "plan", "payroll"]

    def __init__(self, *args, request=None, **kwargs):
        super().__init__(*args, request=request, **kwargs)
        user = getattr(request, "user", None)
        self.filters["plan"].queryset = plans_for(user) if user else BenefitPlan.objects.none()
        self.filters["payroll"].queryset = payrolls_for(user) if user else Payroll.objects.none()


class UploadIndexView(ScopedIndexView):
    """Upload history: who, when, which file, what came of it."""

    default_ordering = "-created_at"
    filterset_class = UploadFilterSet
    list_export = ["id", "kind", "plan", "payroll", "original_name", "uploaded_by", "created_at", "status", "rows",
                   "valid", "errors", "imported", "problem"]
    export_headings = {"id": "ID", "kind": "Kind", "plan": "Plan", "payroll": "Payroll", "original_name": "File",
                       "uploaded_by": "By", "created_at": "When", "status": "Result", "rows": "Rows in the file",
                       "valid": "Rows to import", "errors": "Rows with errors", "imported": "Imported",
                       "problem": "Why the file was refused"}
    COUNTED = ("rows", "valid", "errors", "imported")

    def to_row_dict(self, item):
        """As people read them: labels, not codes; the time as the other exports write it (the
        organisation's, to the second); the counts one per column."""
        return {"id": item.pk, "kind": item.get_kind_display(), "plan": item.plan.code if item.plan_id else "",
                "payroll": item.payroll.name if item.payroll_id else "", "original_name": item.original_name,
                "uploaded_by": str(item.uploaded_by), "created_at": item.created_at, "status": self.result(item),
                **{key: item.counts.get(key) for key in self.COUNTED}, "problem": item.problem}

    def paginate_queryset(self, queryset, page_size):
        paginated = super().paginate_queryset(queryset, page_size)
        self._awaiting = awaiting_approval([upload.pk for upload in paginated[2]])
        return paginated

    def result(self, upload):
        awaiting = getattr(self, "_awaiting", None)
        if awaiting is None:  # an export: not paginated
            awaiting = self._awaiting = awaiting_approval(self.get_queryset().filter(
                status=UploadStatus.READY).values_list("pk", flat=True))
        return services.result_text(upload, awaiting_approval=upload.pk in awaiting)

    @property
    def columns(self):
        inspect = self.inspect_url_name
        return [
            TitleColumn("original_name", label="File", get_url=lambda obj: reverse(inspect, args=[obj.pk])),
            Column("kind", label="Kind", accessor="get_kind_display"),
            Column("plan", label="Plan or payroll", accessor=lambda obj: obj.plan.code if obj.plan_id else
                   obj.payroll.name if obj.payroll_id else ""),
            Column("uploaded_by", label="By", accessor="uploaded_by"),
            Column("created_at", label="When", sort_key="created_at",
                   accessor=lambda obj: f"{timezone.localtime(obj.created_at):%Y-%m-%d %H:%M}"),
            Column("status", label="Result", accessor=self.result, sort_key="status"),
            Column("rows", label="Rows", accessor=lambda obj: obj.counts.get("rows", "")),
            Column("errors", label="Rows with errors", accessor=lambda obj: obj.counts.get("errors", "")),
        ]


class UploadRecordView(ScopedInspectView):
    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        upload = self.object
        user = self.request.user
        job = upload.import_job if upload.status in (UploadStatus.IMPORTING, UploadStatus.IMPORTED) else \
            upload.validation_job
        pending = ApprovalRequest.objects.filter(operation="bulk.import", payload__upload=upload.pk).order_by("-pk")
        is_uploader = user.pk == upload.uploaded_by_id
        under_way = requests_under_way(upload).exists()
        importer = services.IMPORTERS[upload.kind]
        sample = services.sample_shown_to(user, upload) if upload.status == UploadStatus.READY else []
        problem = importer.problems(upload) if upload.status == UploadStatus.READY else ""
        nothing_to_import = upload.status == UploadStatus.READY and (
            upload.counts.get("valid") == 0 or services.changes_nothing(upload))
        context.update({
            "upload": upload,
            "job": job,
            "sample": sample,
            "sample_duplicates": any("possible_duplicate_of" in row for row in sample),
            "sample_headings": importer.SAMPLE_HEADINGS,
            "counts": services.counts_shown(upload),
            "problem": problem,
            "errors": services.errors_shown_to(user, upload, ERRORS_SHOWN) if upload.status == UploadStatus.READY
            else [],
            "requests": list(pending[:5]),
            "nothing_to_import": nothing_to_import,
            "result": services.result_text(upload, awaiting_approval=under_way),
            "can_submit": is_uploader and upload.status == UploadStatus.READY and not under_way and not nothing_to_import
                          and not problem,
            "can_discard": _can_discard(user, upload),
            "submit_form": SubmitForm(),
        })
        return context


def _can_discard(user, upload):
    """Its uploader, while no import of it is asked for or running."""
    return (user.pk == upload.uploaded_by_id and not requests_under_way(upload).exists()
            and upload.status in (UploadStatus.READY, UploadStatus.REFUSED, UploadStatus.FAILED))


def upload_new(request):
    """The upload form; `?kind=` and `?plan=` (or `?payroll=`) preselect what the file holds (the plan
    and payroll pages link here)."""
    kinds = services.kinds_for(request.user)
    if not kinds:
        raise PermissionDenied
    form = UploadForm(request.POST or None, request.FILES or None, user=request.user, kinds=kinds,
                      initial={"kind": request.GET.get("kind"), "plan": request.GET.get("plan"),
                               "payroll": request.GET.get("payroll")})
    if request.method == "POST" and form.is_valid():
        try:
            upload = services.upload_receive(kind=form.cleaned_data["kind"], file=form.cleaned_data["file"],
                                             plan=form.cleaned_data["plan"], payroll=form.cleaned_data["payroll"],
                                             by=request.user)
        except (ValidationError, PermissionDenied) as error:
            form.add_error(None, refusal_message(error))
        else:
            messages.success(request, "File received: it is being checked.")
            return redirect("bulk_upload:inspect", upload.pk)
    plan = form.plan_initial()
    # A plan's files take its schema: each plan's own templates, unless the form is for one plan.
    plans = [plan] if plan else list(plans_for(request.user).order_by("code")[:TEMPLATE_PLANS])
    url = reverse("bulk_upload:template")

    def links(kind, query):
        """The CSV template's URL, and the workbook's with notes on each column where there is one."""
        link = f"{url}?{query}"
        return link, f"{link}&format=xlsx" if kind in column_notes.KINDS else ""

    templates = [(label, *links(kind, f"kind={kind}")) for kind, label in UploadKind.choices
                 if kind in kinds and kind not in PLAN_KINDS]
    templates += [(f"{label}: {each}", *links(kind, f"kind={kind}&plan={each.pk}")) for each in plans
                  for kind, label in UploadKind.choices if kind in kinds and kind in PLAN_KINDS]
    return TemplateResponse(request, "bulk/upload_new.html", {
        "form": form, "page_title": "Upload a file", "header_icon": "upload", "templates": templates})


def _upload(request, pk):
    return get_object_or_404(selectors.uploads_for(request.user), pk=pk)


@require_POST
def upload_submit(request, pk):
    upload = _upload(request, pk)
    form = SubmitForm(request.POST)
    try:
        if not form.is_valid():
            raise ValidationError("Choose to import the valid rows or nothing.")
        approval = approval_submit(operation="bulk.import", by=request.user,
                                   payload={"upload": upload.pk, "mode": form.cleaned_data["mode"]})
    except (ValidationError, PermissionDenied) as error:
        messages.error(request, refusal_message(error))
        return redirect("bulk_upload:inspect", upload.pk)
    messages.success(request, "Import submitted: it runs once approved (at once where approval is off).")
    return redirect("workflows_approvals:inspect", approval.pk)


@require_http_methods(["GET", "POST"])
def upload_discard(request, pk):
    """GET: what discarding throws away, to confirm; POST: the upload is discarded."""
    upload = _upload(request, pk)
    if request.method == "GET":
        if not _can_discard(request.user, upload):
            messages.error(request, "This upload cannot be discarded: only its uploader can, and not once its "
                                    "import is submitted, under way or done.")
            return redirect("bulk_upload:inspect", upload.pk)
        return TemplateResponse(request, "bulk/upload_discard.html", {
            "upload": upload, "counts": services.counts_shown(upload), "page_title": f"Discard {upload.original_name}",
            "header_icon": "upload"})
    try:
        services.upload_discard(upload=upload, by=request.user)
    except (ValidationError, PermissionDenied) as error:
        messages.error(request, refusal_message(error))
    else:
        messages.success(request, "Upload discarded: nothing was imported.")
    return redirect("bulk_upload:inspect", upload.pk)


def error_file(request, pk):
    """The rows with errors, as in the file, with an errors column."""
    upload = _upload(request, pk)
    path = services.error_file_path(upload)
    if not upload.has_error_file or not path.exists():
        raise Http404("This upload has no error file.")
    audit(upload, "mizani.export", by=request.user, data={"what": "error file", "rows": upload.counts.get("errors")})
    filename = f"errors-{Path(upload.original_name).stem}.csv"
    if not can_view_sensitive(request.user):
        response = StreamingHttpResponse(services.masked_error_file(upload), content_type=CSV_CONTENT_TYPE)
        response["Content-Disposition"] = content_disposition_header(True, filename)
        return response
    # Written with the BOM already (services.write_error_file): served as it is.
    return FileResponse(open(path, "rb"), as_attachment=True, filename=filename, content_type=CSV_CONTENT_TYPE)


def template(request):
    """An empty file with the columns an upload of `?kind=` (for `?plan=`) takes, from today's schemas;
    `?format=xlsx`: a workbook with a sheet of notes on each column (the kinds of column_notes)."""
    kind = request.GET.get("kind", UploadKind.INDIVIDUALS)
    if kind not in UploadKind.values or not request.user.has_perm("bulk.add_upload"):
        raise Http404
    plan = None
    if kind in PLAN_KINDS:
        plan = plans_for(request.user).filter(pk=request.GET.get("plan") or None).first()
        if plan is None:
            raise Http404("Choose a plan.")
    name = sanitise_file_name(f"{plan.code}-{kind}" if plan else kind).lower()
    headers = services.IMPORTERS[kind].template_headers(plan)
    if request.GET.get("format") == "xlsx":
        if kind not in column_notes.KINDS:
            raise Http404("This template is a CSV file only.")
        notes = column_notes.template_notes(kind, plan, request.user, headers)
        return xlsx_response(f"{name}-template.xlsx", [("Data", [headers]), ("Notes", [column_notes.HEADINGS, *notes])])
    response = csv_response(f"{name}-template.csv")
    csv.writer(response).writerow([safe_cell(h) for h in headers])
    return response
