"""Importing a checked upload as an approval operation: the checker sees the counts (rows to create,
rows with errors, possible duplicates, households) and a sample; once approved the import runs as
the maker, in its own resumable job."""

from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from workflows.models import ApprovalRequest, RequestStatus
from workflows.operations import Operation, Prepared, register

from . import services
from .models import Upload


def _upload(payload, by=None):
    upload = Upload.objects.filter(pk=payload.get("upload")).first()
    if upload is None or (by is not None and upload.uploaded_by_id != by.pk):
        raise PermissionDenied(f"No upload {payload.get('upload')} of yours.")
    return upload


def prepare(payload, by):
    upload = _upload(payload, by)
    mode = payload.get("mode")
    services.check_importable(upload, mode, by)
    if services.changes_nothing(upload):
        # Nothing for a checker to decide (the import itself would be a no-op: imports are idempotent).
        raise ValidationError("Every row of this file is already so: importing it would change nothing.")
    if requests_under_way(upload).exists():
        raise ValidationError("This upload is already waiting for approval or being imported.")
    counts = upload.counts
    importer = services.IMPORTERS[upload.kind]
    target = f" into {upload.plan}" if upload.plan_id else f" reconciling {upload.payroll}" if upload.payroll_id else ""
    rows = "the valid rows" if mode == "VALID_ROWS" else "all rows (none has an error)"
    return Prepared(
        payload={"upload": upload.pk, "mode": mode},
        summary={"title": f"Import {counts.get('valid', 0):,} rows of {upload.original_name}{target}",
                 "diff": [], "sensitive": [],
                 "counts": {"Import": rows, **dict(services.counts_shown(upload))},
                 "link": {"url": reverse("bulk_upload:inspect", args=[upload.pk]),
                          "label": "The upload: its counts, rows with errors and error file"},
                 "sample": [{"id": None, "name": f"Row {row['row_number']}: {row['summary']}"}
                            for row in importer.sample(upload)]},
        location=upload.scope_root,
        version=upload.status,
    )


UNDER_WAY = [RequestStatus.PENDING, RequestStatus.APPROVED, RequestStatus.EXECUTING]


def requests_under_way(upload):
    """The upload's import requests waiting for a decision or approved and not yet applied."""
    return ApprovalRequest.objects.filter(operation="bulk.import", payload__upload=upload.pk, status__in=UNDER_WAY)


def awaiting_approval(upload_ids):
    """The ids, among `upload_ids`, of uploads whose import is asked for and not yet applied."""
    return set(ApprovalRequest.objects.filter(operation="bulk.import", payload__upload__in=list(upload_ids),
                                              status__in=UNDER_WAY).values_list("payload__upload", flat=True))


def execute(payload, maker):
    job = services.import_start(upload=_upload(payload), mode=payload["mode"], by=maker)
    return {"job": job.pk}


def version(payload):
    upload = Upload.objects.filter(pk=payload.get("upload")).first()
    if upload is None:
        return "gone"
    # A reconciliation file whose lines were reconciled since its check: its request is void, nothing applied.
    importer_version = getattr(services.IMPORTERS[upload.kind], "version", None)
    return upload.status + (importer_version(upload) if importer_version else "")


IMPORT = register(Operation(name="bulk.import", label="Import a file", prepare=prepare, execute=execute,
                            version=version, default_requires_approval=True))
