"""A payroll's reconciliation file (the openIMIS template our payroll export writes, with Receipt and
Paid filled in by the provider; an optional "Paid Date" column) as a pipeline importer. The Amount
column, when there, must be each line's amount (a row paying another amount is an error).

Only the file is read here: staging, checks, error codes and the statements that apply the rows are
the reconciliation engine's (schemes.payments.reconciliation), which the provider API's batches use
too, so a file and a batch are judged and applied the same way. The upload names its payroll."""

from decimal import Decimal

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db.models import Count, Exists, OuterRef
from wagtail.models import ModelLogEntry

from schemes.payments import reconciliation as engine
from schemes.payments import selectors as payroll_selectors
from schemes.payments.models import LineStatus, PaymentLine, Payroll, PayrollStatus
from schemes.payments.templatetags.payments_money import money
from sites.audit import audit

from .files import Column
from .models import StagedReconciliation, Upload, UploadStatus
from .staging import analyze

CHUNK = 500_000  # rows applied per transaction (one UPDATE); a million-row file: two, on two connections at once
_REQUIRED = {"Code", "Receipt", "Paid"}
COLUMNS = [Column(header, required=header in _REQUIRED) for header in engine.HEADERS] + [
    Column(engine.PAID_DATE_HEADER, ("paid on", "paid_on", "date paid", "payment date"))]
# Kept with the check's counts (not shown): the payroll's due lines then, what tells whether they still hold.
DUE_WHEN_CHECKED = "payroll_due_lines"


class Importer:
    CHUNK = CHUNK
    READS = (PaymentLine,)
    SKIPS_REGISTERED_MEANWHILE = False

    def columns(self, plan):
        return COLUMNS

    def template_headers(self, plan):
        return list(engine.HEADERS)

    def stage(self, upload, table, user):
        mapping = table.mapping
        code, paid, receipt = mapping["Code"], mapping["Paid"], mapping["Receipt"]
        paid_on, amount = mapping.get(engine.PAID_DATE_HEADER), mapping.get(engine.FILE_NAMES.amount)

        def rows():
            for row_number, cells, problem in table.rows():
                yield (row_number, cells[code], cells[paid], cells[receipt], "" if paid_on is None else cells[paid_on],
                       "" if amount is None else cells[amount],
                       (problem.column or "", problem.message) if problem else None)

        return engine.stage_rows(upload.pk, rows(), engine.FILE_NAMES)

    def check(self, upload):
        engine.check(upload.pk, upload.payroll, upload.uploaded_by, names=engine.FILE_NAMES)

    def counts(self, upload):
        """The engine's counts, with the payroll's due lines as they were: read first, so that a line
        moving while the rows are counted makes the two differ (never the reverse)."""
        due = self._due_lines(upload.payroll)
        return {**engine.counts(upload.pk, upload.payroll), DUE_WHEN_CHECKED: due}

    @staticmethod
    def _due_lines(payroll):
        """The payroll's lines still due, from its totals (a few rows, moved in the same transaction as
        the lines by every reconciliation writer; a line never becomes due again)."""
        return payroll_selectors.lines_in_status(payroll.totals.all(), LineStatus.DUE)

    SAMPLE_HEADINGS = ()  # its own table (schemes/bulk/templates/bulk/upload_record.html)

    def sample(self, upload, size=10):
        """The first rows that move a line (none when the file changes nothing)."""
        counts = upload.counts
        if not counts.get("paid") and not counts.get("unpaid"):
            return []
        due = PaymentLine.objects.filter(pk=OuterRef("line_id"), payroll_id=upload.payroll_id, status=LineStatus.DUE)
        rows = list(StagedReconciliation.objects.filter(Exists(due), upload_id=upload.pk, valid=True)
                    .order_by("row_number").values("row_number", "code", "line_id", "paid", "receipt", "paid_on")[:size])
        lines = PaymentLine.objects.select_related("recipient").in_bulk([row["line_id"] for row in rows])
        for row in rows:
            line = lines[row["line_id"]]
            row["recipient"] = str(line.recipient) if line.recipient_id else ""
            row["amount"] = money(line.amount, upload.payroll.currency)
            row["outcome_label"] = "paid" if row["paid"] else "unpaid"
            # What the approval's sample shows: "Row 3: PL000000012 Jane Doe: paid (R-1)".
            row["summary"] = f"{row['code']} {row['recipient']}: {row['outcome_label']}" + (
                f" ({row['receipt']})" if row["paid"] else "")
        return rows

    def problems(self, upload):
        payroll = upload.payroll
        payroll.refresh_from_db(fields=["status"])
        if payroll.status != PayrollStatus.APPROVED:
            return f"{payroll} {payroll.status_phrase}: only an approved payroll is reconciled."
        if upload.status == UploadStatus.READY and (moved := self._moved_since_check(upload)):
            return (f"{moved:,} of the lines this file would mark paid or unpaid were reconciled since it was "
                    "checked (by another file or a provider's batch): the counts shown no longer hold. Upload the "
                    "file again to check it against the payroll as it is now.")
        if upload.status == UploadStatus.READY and (claimed := self._claimed_by_another_request(upload)):
            other, lines = claimed
            return (f"{lines:,} of the lines this file would mark paid or unpaid are in {other.original_name} "
                    f"(uploaded by {other.uploaded_by} on {other.created_at:%Y-%m-%d %H:%M}), whose import is waiting "
                    "for approval: the same lines would be reconciled twice. Let that import be decided (or cancel "
                    "it) and upload this file again.")
        return ""

    def version(self, upload):
        """What the import's approval request holds to (with the upload's status): the file's lines
        reconciled since the check (another file imported, a provider's batch) make the request void,
        nothing applied, instead of a failed import."""
        moved = self._moved_since_check(upload) if upload.status == UploadStatus.READY else 0
        return f", {moved} lines reconciled since the check" if moved else ""

    @staticmethod
    def _claimed_by_another_request(upload):
        """(another upload, how many lines) when another reconciliation file of the payroll, whose import
        waits for approval, moves lines this one would move; None otherwise, and for a file whose own
        import is asked for already (the first request keeps its lines)."""
        from .approvals import awaiting_approval

        others = Upload.objects.filter(payroll_id=upload.payroll_id, status=UploadStatus.READY).exclude(pk=upload.pk)
        awaiting = awaiting_approval(others.values_list("pk", flat=True))
        if not awaiting or awaiting_approval([upload.pk]):
            return None
        due = PaymentLine.objects.filter(payroll_id=upload.payroll_id, status=LineStatus.DUE, pk__in=(
            StagedReconciliation.objects.filter(upload_id=upload.pk, valid=True).values("line_id")))
        shared = (StagedReconciliation.objects.filter(upload_id__in=awaiting, valid=True, line_id__in=due.values("pk"))
                  .order_by().values("upload_id").annotate(lines=Count("line_id")).order_by("upload_id").first())
        if shared is None:
            return None
        return Upload.objects.select_related("uploaded_by").get(pk=shared["upload_id"]), shared["lines"]

    def _moved_since_check(self, upload):
        """How many of the lines the check counted to move (still due then) are no longer due: asked
        on the upload's page, at submission and when the import starts. Counted again (one pass, as the
        check's counts) only when some line of the payroll stopped being due since the check. A line
        moving after that is skipped by the import, and audited."""
        checked = upload.counts
        if checked.get(DUE_WHEN_CHECKED) == self._due_lines(upload.payroll):
            return 0
        now = engine.counts(upload.pk, upload.payroll)
        return sum(checked.get(key, 0) for key in ("paid", "unpaid")) - now["paid"] - now["unpaid"]

    def prepare_import(self, upload):
        problem = self.problems(upload)
        if problem:
            raise ValidationError(problem)
        return {}

    def reserve_ids(self, upload, last_row):
        return 0

    def import_chunk(self, upload, first_row, last_row, id_base):
        """One UPDATE. What it moved (counts, and amounts from the statement itself) is audited with the
        chunk: a line that moved since the check (a provider's batch meanwhile) is skipped, so fewer
        lines may move than the file's counts say."""
        applied = engine.apply(upload.pk, upload.payroll, first_row, last_row)
        audit(upload.payroll, "mizani.reconcile", by=upload.uploaded_by, data={
            "source": "file", "upload": upload.pk, "chunk": [first_row, last_row], **applied._asdict()})
        return applied.paid + applied.unpaid

    def row_span(self, upload):
        return engine.row_span(upload.pk)

    def finish(self, upload, imported, by, id_base):
        """The file's audit: what moved (the chunks' sums), the rows skipped because their line was no
        longer due, and what the check counted."""
        counts = upload.counts
        analyze([PaymentLine])  # the statuses of up to millions of lines changed: lists filter on them
        chunks = ModelLogEntry.objects.filter(
            action="mizani.reconcile", content_type=ContentType.objects.get_for_model(Payroll),
            object_id=str(upload.payroll_id), data__upload=upload.pk, data__has_key="chunk").values_list("data", flat=True)
        moved = {"paid": 0, "unpaid": 0, "paid_amount": Decimal(0), "unpaid_amount": Decimal(0)}
        for chunk in chunks:
            for key in moved:
                moved[key] += Decimal(chunk[key]) if key.endswith("amount") else chunk[key]
        planned = (counts.get("paid") or 0) + (counts.get("unpaid") or 0)
        audit(upload.payroll, "mizani.reconcile", by=by, data={
            "source": "file", "upload": upload.pk, "file": upload.original_name, "lines_changed": imported,
            "rows_skipped": max(planned - imported, 0), "paid": moved["paid"], "unpaid": moved["unpaid"],
            "paid_amount": engine.money(moved["paid_amount"]), "unpaid_amount": engine.money(moved["unpaid_amount"]),
            "unchanged": counts.get("unchanged"), "checked": {
                key: counts.get(key) for key in ("paid", "unpaid", "paid_amount", "unpaid_amount")},
            "rows_with_errors": counts.get("errors", 0)})

    def clear(self, upload):
        engine.clear(upload.pk)

    def progress_text(self, count):
        return f"{count:,} lines reconciled"


IMPORTER = Importer()
