import csv

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_POST
from wagtail.admin.ui.tables import Column, TitleColumn

from sites.audit import audit
from sites.viewsets import ScopedIndexView, ScopedInspectView
from workflows.models import ApprovalRequest
from workflows.services import approval_submit

from . import selectors, services
from .forms import SubmitForm, UploadForm
from .models import UploadKind, UploadStatus


def _messages_of(error):
    return " ".join(getattr(error, "messages", [str(error)]))


class UploadIndexView(ScopedIndexView):
    """Upload history: who, when, which file, what came of it."""

    default_ordering = "-created_at"
    list_filter = ["kind", "status"]
    list_export = ["id", "kind", "original_name", "uploaded_by", "created_at", "status", "counts"]

    @property
    def columns(self):
        inspect = self.inspect_url_name
        return [
            TitleColumn("original_name", label="File", get_url=lambda obj: reverse(inspect, args=[obj.pk])),
            Column("kind", label="Kind", accessor="get_kind_display"),
            Column("uploaded_by", label="By", accessor="uploaded_by"),
            Column("created_at", label="When", accessor=lambda obj: f"{obj.created_at:%Y-%m-%d %H:%M}",
                   sort_key="created_at"),
            Column("status", label="Result", accessor="get_status_display", sort_key="status"),
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
        context.update({
            "upload": upload,
            "job": job,
            "sample": services.IMPORTERS[upload.kind].sample(upload) if upload.status == UploadStatus.READY else [],
            "requests": list(pending[:5]),
            "can_submit": is_uploader and upload.status == UploadStatus.READY,
            "can_discard": is_uploader and upload.status in (UploadStatus.READY, UploadStatus.REFUSED,
                                                            UploadStatus.FAILED),
            "submit_form": SubmitForm(),
        })
        return context


def upload_new(request):
    if not request.user.has_perm("bulk.add_upload"):
        raise PermissionDenied
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            upload = services.upload_receive(kind=form.cleaned_data["kind"], file=form.cleaned_data["file"],
                                             by=request.user)
        except (ValidationError, PermissionDenied) as error:
            form.add_error(None, _messages_of(error))
        else:
            messages.success(request, "File received: it is being checked.")
            return redirect("bulk_upload:inspect", upload.pk)
    return TemplateResponse(request, "bulk/upload_new.html", {
        "form": form, "page_title": "Upload a file", "header_icon": "upload",
        "templates": [(label, reverse("bulk_upload:template") + f"?kind={kind}") for kind, label in UploadKind.choices]})


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
        messages.error(request, _messages_of(error))
        return redirect("bulk_upload:inspect", upload.pk)
    messages.success(request, "Import submitted: it runs once approved (at once where approval is off).")
    return redirect("workflows_approvals:inspect", approval.pk)


@require_POST
def upload_discard(request, pk):
    upload = _upload(request, pk)
    try:
        services.upload_discard(upload=upload, by=request.user)
    except (ValidationError, PermissionDenied) as error:
        messages.error(request, _messages_of(error))
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
    return FileResponse(open(path, "rb"), as_attachment=True, filename=f"errors-{upload.original_name}.csv",
                        content_type="text/csv")


def template(request):
    """An empty file with the columns an upload of `?kind=` takes (from the schema of today)."""
    kind = request.GET.get("kind", UploadKind.INDIVIDUALS)
    if kind not in UploadKind.values or not request.user.has_perm("bulk.add_upload"):
        raise Http404
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{kind.lower()}-template.csv"'
    response.write("\ufeff")
    csv.writer(response).writerow(services.IMPORTERS[kind].template_headers())
    return response
