"""The upload pipeline: receive a file, check it whole in a job (staging, errors, counts, the error
file), submit it for approval (operation bulk.import), import it in a resumable job, or discard it.
Each import kind is a module with the same functions (see `individuals`)."""

import csv
import io
import re
import uuid
from concurrent.futures import ThreadPoolExecutor, as_completed
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.template.defaultfilters import filesizeformat
from django.utils import timezone

from schemes.payments.models import PayrollStatus
from schemes.plans.models import BenefitPlan, PlanType
from schemes.registry.models import RegistryField
from sites.audit import audit
from sites.fields import ascii_digits
from sites.masking import can_view_sensitive, mask
from sites.refusals import permission_refusal
from sites.scoping import scope_for
from sites.spreadsheets import safe_cell, unescaped_cell
from workflows.services import job_start

from . import beneficiaries, individuals, locations, reconciliation
from .files import FileProblem, header_key, open_table, sanitise_file_name
from .models import PLAN_KINDS, STAGING, StagedError, Upload, UploadKind, UploadStatus
from .staging import merge_pending_index_entries, refresh_statistics, release_empty

IMPORTERS = {UploadKind.INDIVIDUALS: individuals.IMPORTER, UploadKind.BENEFICIARIES: beneficiaries.ENROLMENTS,
             UploadKind.BENEFICIARY_UPDATES: beneficiaries.UPDATES, UploadKind.LOCATIONS: locations.IMPORTER,
             UploadKind.RECONCILIATION: reconciliation.IMPORTER}
NEW_PEOPLE = ["registry.add_individual", "registry.add_household", "registry.add_membership"]
VALIDATE_JOB, IMPORT_JOB = "bulk.validate", "bulk.import"
# What an upload's counts mean, in the order the upload page and the approval show them.
COUNT_LABELS = {
    "rows": "Rows in the file", "valid": "Rows to import", "errors": "Rows with errors (not imported)",
    "creates": "New records", "matched": "Registered people or households enrolled",
    "enrolments": "Enrolments", "updates": "Updates",
    "moves": "Moves (locations moved to another parent, with all under them)",
    "unchanged": "Rows that change nothing",
    "households": "Households",
    "first_member_heads": "Households whose first member becomes head (the file names no head)",
    "first_member_primaries": "Households whose first member becomes primary recipient (the file names no "
                              "recipient)",
    "members_without_role": "Household members whose role becomes Member (the file gives them none)",
    "possible_duplicates": "Possible duplicates of registered people",
    "possible_duplicates_in_file": "Possible duplicates within the file (same names and date of birth)",
    "sex_not_recorded": "People to register with sex not recorded (the file leaves it empty)",
    "over_maximum": "Above the plan's maximum",
    "fail_criteria": "Rows not imported: not meeting the plan's criteria for potential beneficiaries",
    "leave_criteria": "Beneficiaries who would no longer meet the plan's criteria for their status (updated anyway: "
                      "check them before activating)",
    "skipped": "Rows not imported: their national ID or household code was registered since the check",
    "paid": "Lines to mark paid", "paid_amount": "Amount of the lines to mark paid",
    "unpaid": "Lines to mark unpaid (left for a follow-up payroll)", "unpaid_amount": "Amount of the lines to mark unpaid",
}


def counts_shown(upload):
    """[(label, text)] of the upload's counts as pages and requests show them: thousands separated,
    amounts with the payroll's currency."""
    currency = f" {upload.payroll.currency}" if upload.payroll_id else ""
    shown = []
    for key, label in {**COUNT_LABELS, "imported": "Imported"}.items():
        if key in upload.counts:
            value = upload.counts[key]
            shown.append((label, f"{Decimal(value):,.2f}{currency}" if key.endswith("_amount") else f"{value:,}"))
    return shown


def changes_nothing(upload):
    """A checked file whose valid rows are all already so (an update or reconciliation file sent again)."""
    counts = upload.counts
    return bool(counts.get("valid")) and counts.get("unchanged", 0) >= counts["valid"]


def result_text(upload, *, awaiting_approval=False):
    """What came of the upload, as its page and the history say it: a checked file with nothing to
    import, or whose import waits for approval, and rows skipped at import are said."""
    counts = upload.counts
    if upload.status == UploadStatus.READY:
        if changes_nothing(upload):
            errors = counts.get("errors", 0)
            if errors:
                return (f"Checked: nothing to import: {errors:,} row{'' if errors == 1 else 's'} with errors, "
                        "the others already so")
            return "Checked: nothing to import, every row is already so"
        if counts.get("valid") == 0:
            return "Checked: nothing to import, every row has an error"
        if awaiting_approval:
            return "Checked: its import is waiting for approval"
    if upload.status == UploadStatus.IMPORTED and counts.get("skipped"):
        return f"Imported, {counts['skipped']:,} rows skipped (registered since the check)"
    return upload.get_status_display()


def kind_permissions(kind, plan=None):
    """What a kind needs besides bulk.add_upload: the permissions of the records it writes."""
    if kind == UploadKind.INDIVIDUALS:
        return NEW_PEOPLE
    if kind == UploadKind.LOCATIONS:
        return ["sites.import_location"]
    if kind == UploadKind.RECONCILIATION:
        return ["payments.reconcile_payroll"]
    model_name = plan.beneficiary_model._meta.model_name
    if kind == UploadKind.BENEFICIARY_UPDATES:
        return [f"plans.change_{model_name}"]
    new_people = NEW_PEOPLE if model_name == "beneficiary" else []
    return [f"plans.add_{model_name}", *new_people]


def kinds_for(user):
    """The kinds of file `user` may upload (for a plan kind: into some plan type)."""
    allowed = []
    for kind in UploadKind.values:
        if kind in PLAN_KINDS:
            needs = [kind_permissions(kind, plan) for plan in (BenefitPlan(plan_type=t) for t in PlanType.values)]
        else:
            needs = [kind_permissions(kind)]
        if user.has_perm("bulk.add_upload") and any(all(user.has_perm(name) for name in names) for names in needs):
            allowed.append(kind)
    return allowed


def _require(user, permissions):
    missing = [name for name in permissions if not user.has_perm(name)]
    if missing:
        raise permission_refusal(missing[0])


def upload_dir():
    path = Path(settings.MEDIA_ROOT) / "uploads"
    path.mkdir(parents=True, exist_ok=True)
    return path


def stored_path(upload):
    return upload_dir() / upload.stored_name


def error_file_path(upload):
    return upload_dir() / f"{Path(upload.stored_name).stem}-errors.csv"


def upload_receive(*, kind, file, by, plan=None, payroll=None):
    """Store the file under a generated name and start checking it (a job). Returns the Upload.
    Beneficiary files name their plan; a reconciliation file its payroll, which must be approved."""
    if (kind in PLAN_KINDS) != (plan is not None):
        raise ValidationError("Choose the plan the file is for." if plan is None else "Only beneficiary files name a plan.")
    if (kind == UploadKind.RECONCILIATION) != (payroll is not None):
        raise ValidationError("Choose the payroll the file reconciles." if payroll is None else
                              "Only reconciliation files name a payroll.")
    _require(by, ["bulk.add_upload", *kind_permissions(kind, plan)])
    if payroll is not None and payroll.status != PayrollStatus.APPROVED:
        raise ValidationError(f"{payroll} {payroll.status_phrase}: only an approved payroll is reconciled.")
    if file.size > settings.MIZANI_IMPORT_MAX_BYTES:
        raise ValidationError(f"The file is {filesizeformat(file.size)}; the limit is "
                              f"{filesizeformat(settings.MIZANI_IMPORT_MAX_BYTES)}. Split it into smaller files.")
    original = sanitise_file_name(file.name or "")
    stored = f"{uuid.uuid4().hex}{Path(original).suffix.lower()[:8]}"
    with open(upload_dir() / stored, "wb") as target:
        for chunk in file.chunks():
            target.write(chunk)
    with transaction.atomic():
        upload = Upload.objects.create(kind=kind, plan=plan, payroll=payroll, stored_name=stored, original_name=original,
                                       size=file.size, uploaded_by=by, scope_root=scope_for(by).root())
        upload.validation_job = job_start(kind=VALIDATE_JOB, params={"upload": upload.pk},
                                          idempotency_key=f"bulk-validate-{upload.pk}", by=by)
        upload.save(update_fields=["validation_job"])
        audit(upload, "mizani.upload", by=by, data={"kind": kind, "file": original, "size": file.size,
                                                     **({"payroll": payroll.pk} if payroll else {})})
    return upload


def validate(upload, progress):
    """The validation job's work: stage every row, check the set, count, write the error file. A
    file-level problem refuses the upload (nothing staged stays); a crash restarts from scratch."""
    importer = IMPORTERS[upload.kind]
    importer.clear(upload)
    refresh_statistics(importer.READS)
    try:
        table = open_table(stored_path(upload), importer.columns(upload.plan), original_name=upload.original_name,
                           max_rows=settings.MIZANI_IMPORT_MAX_ROWS)
        progress(0, None, "Reading and checking each row")
        with transaction.atomic():
            rows = importer.stage(upload, table, upload.uploaded_by)
            if not rows:
                raise FileProblem("The file has a header but no data rows.")
            progress(rows, rows, "Checking the file as a whole")
            importer.check(upload)
            _name_columns_as_headed(upload, table)
            counts = importer.counts(upload)
            upload = Upload.objects.select_for_update().get(pk=upload.pk)
            upload.counts = counts
            upload.unused_columns = _unused_columns(table)
            upload.has_error_file = write_error_file(upload, importer)
            upload.validated()
            upload.save()
    except FileProblem as problem:
        with transaction.atomic():
            importer.clear(upload)
            upload = Upload.objects.select_for_update().get(pk=upload.pk)
            upload.refuse(problem.message)
            upload.save()
        release_empty(STAGING)  # a refused file's rows were rolled back: dead until VACUUM
    return {"status": upload.status, **upload.counts}


def _name_columns_as_headed(upload, table):
    """The whole-file checks name columns by our names (national_id); the clerk's file heads them its
    own way (NIN, Household ID): every message names the column as the file does. One statement per
    column headed otherwise, over this upload's errors only."""
    for name, index in table.mapping.items():
        header = table.headers[index]
        if header != name and name not in table.headers:
            StagedError.objects.filter(upload_id=upload.pk, column=name).update(column=header)


ERROR_FILE_COLUMNS = ("row", "errors")  # after the file's own: its row number there, what is wrong


def _unused_columns(table):
    """The file's columns matching nothing, but for the two an error file adds after the file's own:
    a corrected error file is sent back as it is."""
    unknown = table.unknown
    if tuple(header_key(header) for header in table.headers[-2:]) == ERROR_FILE_COLUMNS:
        unknown = [header for header in unknown if header_key(header) not in ERROR_FILE_COLUMNS]
    return unknown


def write_error_file(upload, importer):
    """The file's rows that have errors, as they were, with an `errors` column (formula-safe). One
    pass over the file merged with the errors in row order: memory stays flat."""
    errors = (StagedError.objects.filter(upload_id=upload.pk).order_by("row_number", "pk")
              .values_list("row_number", "column", "message", "code").iterator(chunk_size=5000))
    pending = next(errors, None)
    if pending is None:
        return False
    table = open_table(stored_path(upload), importer.columns(upload.plan), original_name=upload.original_name)
    with open(error_file_path(upload), "w", encoding="utf-8-sig", newline="") as target:
        writer = csv.writer(target, delimiter=_error_file_delimiter(upload, importer, table))
        writer.writerow([safe_cell(h) for h in [*table.headers, *ERROR_FILE_COLUMNS]])
        for row_number, cells, _problem in table.rows():
            found = []
            while pending is not None and pending[0] == row_number:
                message = f"{pending[3]}: {pending[2]}" if pending[3] else pending[2]
                found.append(f"{pending[1]}: {message}" if pending[1] else message)
                pending = next(errors, None)
            if found:
                writer.writerow([safe_cell(c) for c in [*cells, row_number, "; ".join(found)]])
            if pending is None:
                break
    return True


def masked_error_file(upload):
    """The error file as a user who may not see sensitive data reads it: the cells of the sensitive
    columns (national ID, phone, sensitive registry and plan attributes) masked as exports mask them,
    and so are those values where the row's messages quote them. Yields the CSV's bytes."""
    importer = IMPORTERS[upload.kind]
    sensitive = _sensitive_header_keys(importer.columns(upload.plan), upload.plan)
    delimiter = _error_file_delimiter(upload, importer)
    with open(error_file_path(upload), encoding="utf-8-sig", newline="") as source:
        reader = csv.reader(source, delimiter=delimiter)
        headers = next(reader)
        own = len(headers) - len(ERROR_FILE_COLUMNS)
        hidden = [index for index, header in enumerate(headers[:own]) if header_key(header) in sensitive]
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter=delimiter)
        buffer.write("\ufeff")
        writer.writerow(headers)
        for row in reader:
            for index in hidden:
                # Masked as read, before the escaping the file was written with ("'+2547..." is the
                # cell "+2547...", which the messages quote): the escaping is redone on the masked value.
                if value := unescaped_cell(row[index]).strip():
                    for written in {value, ascii_digits(value)}:  # a phone's message quotes its ASCII digits
                        row[-1] = row[-1].replace(written, mask(written))
                    row[index] = safe_cell(mask(value))
            writer.writerow(row)
            if buffer.tell() > 1 << 16:
                yield buffer.getvalue().encode("utf-8")
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue().encode("utf-8")


# A message that quotes a cell's value starts with it, then says what is wrong with it (sites.fields,
# registry.models.phone_problem, bulk.individuals): the value runs to the last quote followed by one of
# those sayings, so an apostrophe in the value (O'Brien) does not end it early.
QUOTED_VALUE = re.compile(r"'(.*)'(?= (?:does not|is not|has more|was turned|looks like) )", re.DOTALL)
QUOTED_TEXT = re.compile(r"'([^']*)'")


def _masked_message(message):
    """`message` with the value it quotes masked; a message of another shape has each quoted text masked."""
    if quoted := QUOTED_VALUE.match(message):
        return f"'{mask(quoted.group(1))}'{message[quoted.end():]}"
    return QUOTED_TEXT.sub(lambda quoted: f"'{mask(quoted.group(1))}'", message)


def errors_shown_to(user, upload, limit):
    """The upload's first `limit` row errors for its page: for a user who may not see sensitive data,
    the values quoted in the messages of sensitive columns (a pattern's or a choice's refusal quotes
    the cell) are masked as the error file masks them."""
    errors = list(StagedError.objects.filter(upload_id=upload.pk).order_by("row_number", "pk").values(
        "row_number", "column", "code", "message")[:limit])
    if can_view_sensitive(user):
        return errors
    importer = IMPORTERS[upload.kind]
    sensitive = _sensitive_header_keys(importer.columns(upload.plan), upload.plan)
    for error in errors:
        if header_key(error["column"]) in sensitive:
            error["message"] = _masked_message(error["message"])
    return errors


def sample_shown_to(user, upload):
    """The upload's sample for its page: an update file's changes of sensitive fields shown as they are
    to a user who may see sensitive data. The approval request keeps its own copy, without them."""
    importer = IMPORTERS[upload.kind]
    if upload.kind == UploadKind.BENEFICIARY_UPDATES and can_view_sensitive(user):
        return importer.sample(upload, sensitive_shown=True)
    return importer.sample(upload)


def _error_file_delimiter(upload, importer, table=None):
    """The upload's own delimiter (a semicolon file comes from an Excel that opens semicolons); a
    comma for a workbook."""
    table = table or open_table(stored_path(upload), importer.columns(upload.plan), original_name=upload.original_name)
    return table.delimiter or ","


def _sensitive_header_keys(columns, plan):
    names = {"national_id", "phone", *RegistryField.objects.filter(sensitive=True).values_list("name", flat=True)}
    if plan is not None:
        names.update(plan.fields.filter(sensitive=True).values_list("name", flat=True))
    return {header_key(text) for column in columns if column.name in names for text in (column.name, *column.aliases)}


def upload_discard(*, upload, by):
    with transaction.atomic():
        upload = Upload.objects.select_for_update().get(pk=upload.pk)
        if by.pk != upload.uploaded_by_id and not by.is_superuser:
            raise PermissionDenied("Only the person who uploaded a file can discard it.")
        upload.discard(timezone.now())
        upload.save()
        IMPORTERS[upload.kind].clear(upload)
        audit(upload, "mizani.upload_discard", by=by, data={})
    release_empty(STAGING)
    return upload


def check_importable(upload, mode, by):
    """What submitting (and, again, importing) needs: a checked upload, something to import, the
    permissions, and in all-or-nothing mode no row in error."""
    _require(by, ["bulk.add_upload", *kind_permissions(upload.kind, upload.plan)])
    if upload.status != UploadStatus.READY:
        raise ValidationError(f"This upload is {upload.get_status_display().lower()}: it cannot be imported.")
    if mode not in ("VALID_ROWS", "ALL_OR_NOTHING"):
        raise ValidationError("Choose to import the valid rows or nothing.")
    if mode == "ALL_OR_NOTHING" and upload.counts.get("errors"):
        raise ValidationError(f"{upload.counts['errors']:,} rows have errors: nothing would be imported. Correct "
                              "the file, or import the valid rows only.")
    if not upload.counts.get("valid"):
        raise ValidationError("No row of this file can be imported.")
    problem = IMPORTERS[upload.kind].problems(upload)
    if problem:
        raise ValidationError(problem)


def import_start(*, upload, mode, by):
    """Start the import (called by the approved request, as the maker)."""
    with transaction.atomic():
        upload = Upload.objects.select_for_update().get(pk=upload.pk)
        if upload.kind == UploadKind.RECONCILIATION:
            # The payroll under a share lock until the import's job is queued: a close waits for this
            # transaction, then sees the job and refuses (payments.services.refuse_close_while_importing).
            reconciliation.engine.lock_approved(upload.payroll)
        check_importable(upload, mode, by)
        upload.start_import(mode)
        upload.import_job = job_start(kind=IMPORT_JOB, params={"upload": upload.pk},
                                      idempotency_key=f"bulk-import-{upload.pk}", by=by)
        upload.save()
    return upload.import_job


def run_import(upload, job, progress):
    """The import job: what comes first once (households, ids), then the rows in chunks; each chunk
    commits with its mark in the job's state, so after a crash the job imports only the chunks not
    marked. On PostgreSQL several chunks run at once (see _import_chunks)."""
    importer = IMPORTERS[upload.kind]
    span = importer.row_span(upload)
    if span is None:
        raise ValidationError("The checked rows of this upload are gone (the database was restarted since "
                              "the check): upload the file again.")
    first, last = span
    total = upload.counts.get("valid", 0)
    state = dict(job.result or {})
    refresh_statistics(importer.READS)
    if not state.get("prepared"):
        try:
            with transaction.atomic():
                state.update(importer.prepare_import(upload))
                state["id_base"] = importer.reserve_ids(upload, last)
                state["prepared"], state["done"], state["imported"] = True, [], 0
                _save_state(job, state)
                progress(0, total, "Importing")
        except ValidationError as refused:
            # Refused by the import's own check (the records changed since the file's): the upload says why.
            with transaction.atomic():
                refused_upload = Upload.objects.select_for_update().get(pk=upload.pk)
                refused_upload.fail("; ".join(refused.messages), timezone.now())
                refused_upload.save()
            raise
    done = set(state["done"])
    chunks = [(start, min(start + importer.CHUNK - 1, last)) for start in range(first, last + 1, importer.CHUNK)
              if start not in done]
    for imported in _import_chunks(importer, upload, job, chunks, state["id_base"]):
        progress(imported, total, importer.progress_text(imported))
    merge_pending_index_entries(importer.READS)  # the tables it fills are among those it reads
    state = _load_state(job)
    created = {key: state[key] for key in ("households", "locations") if key in state}
    with transaction.atomic():
        upload = Upload.objects.select_for_update().get(pk=upload.pk)
        skipped = total - state["imported"] if importer.SKIPS_REGISTERED_MEANWHILE else 0
        upload.counts = {**upload.counts, "imported": state["imported"],
                         **{f"{key}_created": value for key, value in created.items()},
                         **({"skipped": skipped} if skipped > 0 else {})}
        upload.imported(timezone.now())
        upload.save()
        importer.finish(upload, state["imported"], job.started_by, state["id_base"])
        importer.clear(upload)
        audit(upload, "mizani.import", by=job.started_by, data={
            "kind": upload.kind, "plan": upload.plan_id, "file": upload.original_name, "mode": upload.mode,
            "imported": state["imported"], **created, "rows_with_errors": upload.counts.get("errors", 0)})
    release_empty(STAGING)
    return {"imported": state["imported"], **created}


def _import_chunks(importer, upload, job, chunks, id_base):
    """Import `chunks` ((first, last) row numbers), yielding the running count as each commits. On
    PostgreSQL, unless the caller holds a transaction (whose rows other connections cannot see),
    MIZANI_IMPORT_CONNECTIONS chunks run at once, each on its own connection: the database's work
    (index upkeep) then uses that many cores. Elsewhere, one after another."""

    def one(chunk):
        with transaction.atomic():
            count = importer.import_chunk(upload, *chunk, id_base)
            return _mark_chunk(job, chunk[0], count)

    workers = settings.MIZANI_IMPORT_CONNECTIONS
    if connection.vendor != "postgresql" or connection.in_atomic_block or workers < 2:
        for chunk in chunks:
            yield one(chunk)
        return

    def on_own_connection(chunk):
        try:
            return one(chunk)
        finally:
            connection.close()  # this thread's connection

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mizani-import")
    futures = [pool.submit(on_own_connection, chunk) for chunk in chunks]
    try:
        for future in as_completed(futures):
            yield future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _mark_chunk(job, start, count):
    """Mark a chunk done in the job's state, in the chunk's transaction (the job's row lock orders the
    chunks finishing at once). Returns the rows imported so far."""
    from workflows.models import Job

    state = dict(Job.objects.select_for_update().only("result").get(pk=job.pk).result)
    state["done"], state["imported"] = [*state["done"], start], state["imported"] + count
    Job.objects.filter(pk=job.pk).update(result=state)
    return state["imported"]


def _load_state(job):
    from workflows.models import Job

    job.result = Job.objects.only("result").get(pk=job.pk).result
    return dict(job.result)


def _save_state(job, state):
    """The import's resume point, written in the chunk's transaction (with its rows)."""
    from workflows.models import Job

    Job.objects.filter(pk=job.pk).update(result=state)
    job.result = state
