"""A payroll's reconciliation file through the one pipeline: the openIMIS columns, every error code in
the error file (named by column, with the row as it was), the same file twice changes nothing,
refused unless the payroll is approved (at upload and again at import), nothing written before the
import, the payroll closed afterwards."""

import csv
import io
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from wagtail.models import ModelLogEntry

from schemes.bulk import services
from schemes.bulk.models import StagedReconciliation, Upload, UploadKind, UploadStatus
from schemes.payments.models import LineStatus, PaymentLine, Payroll, PayrollStatus
from schemes.payments.reconciliation import HEADERS, reconcile_batch
from tests.factories import UserFactory
from tests.schemes.payments.conftest import line_of
from tests.schemes.plans.test_views import client_for
from workflows.models import WorkflowDefinition
from workflows.services import approval_submit

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def imports_without_approval(db):
    WorkflowDefinition.objects.create(operation="bulk.import", requires_approval=False)


def file_row(payroll, line, paid="Yes", receipt="R-1"):
    person = line.recipient
    return [payroll.name, payroll.get_status_display(), person.first_name, person.last_name, person.dob.isoformat(),
            line.code, line.get_status_display(), str(line.amount), "Cash", receipt, paid]


def csv_file(rows, header=HEADERS, name="reconciliation.csv"):
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return SimpleUploadedFile(name, out.getvalue().encode("utf-8"), content_type="text/csv")


def receive(user, payroll, rows, capture, **kwargs):
    with capture(execute=True):
        upload = services.upload_receive(kind=UploadKind.RECONCILIATION, payroll=payroll,
                                         file=csv_file(rows, **kwargs), by=user)
    return Upload.objects.get(pk=upload.pk)


def import_now(upload, user, capture, mode="VALID_ROWS"):
    with capture(execute=True):
        with capture(execute=True):
            approval_submit(operation="bulk.import", by=user, payload={"upload": upload.pk, "mode": mode})
    upload.refresh_from_db()
    return upload


def errors_of(upload, header=HEADERS):
    """{code cell: errors cell} of the error file."""
    text = services.error_file_path(upload).read_text(encoding="utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == [*header, "row", "errors"]
    return {row["Code"]: row["errors"] for row in rows}


def lines(payroll):
    return {line.beneficiary_id: line for line in PaymentLine.objects.filter(payroll=payroll)}


def test_paid_and_unpaid_rows_are_applied_after_the_import(approved_payroll, people, accountant,
                                                           django_capture_on_commit_callbacks):
    three, six = line_of(approved_payroll, people["three"]), line_of(approved_payroll, people["six"])
    upload = receive(accountant, approved_payroll, [file_row(approved_payroll, three, receipt="MP-1"),
                                                    file_row(approved_payroll, six, paid="No", receipt="")],
                     django_capture_on_commit_callbacks)

    assert upload.status == UploadStatus.READY, upload.problem
    assert upload.counts == {"rows": 2, "valid": 2, "errors": 0, "paid": 1, "unpaid": 1, "unchanged": 0,
                             "paid_amount": "800.00", "unpaid_amount": "900.00",
                             "payroll_due_lines": 4}  # what tells whether the counts still hold
    assert set(PaymentLine.objects.filter(payroll=approved_payroll).values_list("status", flat=True)) == {"DUE"}

    upload = import_now(upload, accountant, django_capture_on_commit_callbacks)

    assert upload.status == UploadStatus.IMPORTED and upload.counts["imported"] == 2
    after = lines(approved_payroll)
    assert (after[people["three"].pk].status, after[people["three"].pk].receipt) == (LineStatus.PAID, "MP-1")
    assert after[people["three"].pk].paid_on == upload.finished_at.date()
    assert after[people["six"].pk].status == LineStatus.UNPAID
    assert after[people["single_b"].pk].status == LineStatus.DUE
    entry = ModelLogEntry.objects.get(action="mizani.reconcile", object_id=str(approved_payroll.pk),
                                      data__has_key="file")
    assert entry.data["source"] == "file" and entry.data["paid"] == 1 and entry.data["rows_skipped"] == 0
    assert (entry.data["paid_amount"], entry.data["unpaid_amount"]) == ("800.00", "900.00")
    chunk = ModelLogEntry.objects.get(action="mizani.reconcile", data__has_key="chunk")
    assert (chunk.data["paid"], chunk.data["unpaid"], chunk.data["paid_amount"]) == (1, 1, "800.00")
    assert not StagedReconciliation.objects.filter(upload_id=upload.pk).exists()


def test_the_same_file_twice_changes_nothing(approved_payroll, people, accountant, django_capture_on_commit_callbacks):
    rows = [file_row(approved_payroll, line_of(approved_payroll, people["three"]), receipt="MP-1"),
            file_row(approved_payroll, line_of(approved_payroll, people["six"]), paid="No", receipt="")]
    import_now(receive(accountant, approved_payroll, rows, django_capture_on_commit_callbacks), accountant,
               django_capture_on_commit_callbacks)
    before = list(PaymentLine.objects.filter(payroll=approved_payroll).order_by("pk").values())

    again = receive(accountant, approved_payroll, rows, django_capture_on_commit_callbacks)
    assert (again.counts["unchanged"], again.counts["paid"], again.counts["unpaid"], again.counts["errors"]) == (
        2, 0, 0, 0)
    with pytest.raises(ValidationError, match="importing it would change nothing"):
        import_now(again, accountant, django_capture_on_commit_callbacks)
    page = client_for(accountant).get(reverse("bulk_upload:inspect", args=[again.pk])).content.decode()
    assert "Checked: nothing to import, every row is already so" in page and "Submit the import" not in page
    with django_capture_on_commit_callbacks(execute=True):
        services.import_start(upload=again, mode="VALID_ROWS", by=accountant)
    again.refresh_from_db()

    assert again.status == UploadStatus.IMPORTED and again.counts["imported"] == 0
    assert list(PaymentLine.objects.filter(payroll=approved_payroll).order_by("pk").values()) == before


def test_every_bad_row_is_in_the_error_file_with_its_code_and_column(
        approved_payroll, people, accountant, payment_plan, cycles, django_capture_on_commit_callbacks):
    from schemes.payments import services as payments
    from schemes.payments.models import PaymentCycle

    with django_capture_on_commit_callbacks(execute=True):
        other = payments.payroll_generate_start(payment_plan=payment_plan, by=accountant,
                                                cycle=PaymentCycle.objects.get(code="CG-2025-03"))
    foreign = PaymentLine.objects.filter(payroll=other).first()
    three, six = line_of(approved_payroll, people["three"]), line_of(approved_payroll, people["six"])
    flagged, single_b = line_of(approved_payroll, people["five_with_baby"]), line_of(approved_payroll,
                                                                                     people["single_b"])
    missing = file_row(approved_payroll, three)
    missing[5] = "PL999999999"
    upload = receive(accountant, approved_payroll, [
        file_row(approved_payroll, single_b, receipt="OK-1"),   # row 2: fine
        missing,                                                # row 3
        file_row(approved_payroll, foreign),                    # row 4
        file_row(approved_payroll, three, paid="Maybe"),        # row 5
        file_row(approved_payroll, six, receipt=""),            # row 6
        file_row(approved_payroll, flagged),                    # row 7: above the limit, not released
    ], django_capture_on_commit_callbacks)

    assert upload.status == UploadStatus.READY, upload.problem
    assert (upload.counts["valid"], upload.counts["errors"]) == (1, 5)
    errors = errors_of(upload)
    assert errors == {
        "PL999999999": "Code: benefit_consumption_not_found: No payment line has this code.",
        foreign.code: f"Code: benefit_consumption_not_in_payroll: This line is not in payroll {approved_payroll}.",
        three.code: "Paid: paid_column_invalid_value: Paid must be Yes or No.",
        six.code: "Receipt: receipt_required: A paid line needs its receipt.",
        flagged.code: "Paid: status_not_matching: This line is above the transaction limit and was not released "
                      "for payment: it was not sent for payment, and nothing here changes it.",
    }

    upload = import_now(upload, accountant, django_capture_on_commit_callbacks)
    after = lines(approved_payroll)
    assert after[people["single_b"].pk].status == LineStatus.PAID
    assert {after[people[name].pk].status for name in ("three", "six", "five_with_baby")} == {LineStatus.DUE}


def test_all_or_nothing_imports_nothing_when_a_row_has_an_error(approved_payroll, people, accountant,
                                                                django_capture_on_commit_callbacks):
    upload = receive(accountant, approved_payroll, [
        file_row(approved_payroll, line_of(approved_payroll, people["three"])),
        file_row(approved_payroll, line_of(approved_payroll, people["six"]), paid="")],
        django_capture_on_commit_callbacks)
    with pytest.raises(ValidationError, match="nothing would be imported"):
        approval_submit(operation="bulk.import", by=accountant, payload={"upload": upload.pk,
                                                                         "mode": "ALL_OR_NOTHING"})
    assert set(PaymentLine.objects.filter(payroll=approved_payroll).values_list("status", flat=True)) == {"DUE"}


def test_a_line_twice_in_the_file_and_a_line_outside_the_uploaders_locations(
        approved_payroll, people, geo, django_capture_on_commit_callbacks):
    accountant_a = UserFactory(role="Accountant", locations=[geo.district_a])
    three = line_of(approved_payroll, people["three"])
    single_b = line_of(approved_payroll, people["single_b"])
    upload = receive(accountant_a, approved_payroll, [
        file_row(approved_payroll, three), file_row(approved_payroll, three, receipt="R-2"),
        file_row(approved_payroll, single_b)], django_capture_on_commit_callbacks)

    text = services.error_file_path(upload).read_text(encoding="utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [row["errors"] for row in rows] == [
        "Code: benefit_consumption_duplicated: This line is on more than one row.",
        "Code: benefit_consumption_duplicated: This line is on more than one row.",
        "Code: benefit_consumption_outside_locations: This line is outside your locations."]


def test_a_payroll_not_approved_is_refused_at_upload_and_at_import(
        approved_payroll, people, accountant, django_capture_on_commit_callbacks):
    upload = receive(accountant, approved_payroll, [file_row(approved_payroll, line_of(approved_payroll,
                                                                                        people["three"]))],
                     django_capture_on_commit_callbacks)
    Payroll.objects.filter(pk=approved_payroll.pk).update(status=PayrollStatus.RECONCILED)
    approved_payroll.refresh_from_db()

    with pytest.raises(ValidationError, match="only an approved payroll is reconciled"):
        receive(accountant, approved_payroll, [], django_capture_on_commit_callbacks)
    with pytest.raises(ValidationError, match="only an approved payroll is reconciled"):
        approval_submit(operation="bulk.import", by=accountant, payload={"upload": upload.pk, "mode": "VALID_ROWS"})
    assert set(PaymentLine.objects.filter(payroll=approved_payroll).values_list("status", flat=True)) == {"DUE"}


def test_a_file_for_a_pending_payroll_is_refused(payment_plan, cycle, people, accountant,
                                                django_capture_on_commit_callbacks):
    from schemes.payments import services as payments

    with django_capture_on_commit_callbacks(execute=True):
        payroll = payments.payroll_generate_start(payment_plan=payment_plan, cycle=cycle, by=accountant)
    payroll.refresh_from_db()
    with pytest.raises(ValidationError, match="is still to be submitted for approval: only an approved payroll"):
        receive(accountant, payroll, [], django_capture_on_commit_callbacks)
    assert not Upload.objects.exists()


def test_a_missing_column_refuses_the_file(approved_payroll, people, accountant, django_capture_on_commit_callbacks):
    header = [h for h in HEADERS if h != "Paid"]
    upload = receive(accountant, approved_payroll, [["x"] * len(header)], django_capture_on_commit_callbacks,
                     header=header)
    assert upload.status == UploadStatus.REFUSED and 'Required column missing: "Paid"' in upload.problem


def test_a_paid_date_column_sets_the_paid_date(approved_payroll, people, accountant,
                                               django_capture_on_commit_callbacks):
    three = line_of(approved_payroll, people["three"])
    approved_on = timezone.localdate(approved_payroll.decided_at).isoformat()
    upload = receive(accountant, approved_payroll, [[*file_row(approved_payroll, three), approved_on]],
                     django_capture_on_commit_callbacks, header=[*HEADERS, "Paid Date"])
    import_now(upload, accountant, django_capture_on_commit_callbacks)
    three.refresh_from_db()
    assert three.paid_on.isoformat() == approved_on


def test_another_amount_or_a_paid_date_before_the_approval_is_a_row_error_naming_the_column(
        approved_payroll, people, accountant, django_capture_on_commit_callbacks):
    three, six = line_of(approved_payroll, people["three"]), line_of(approved_payroll, people["six"])
    single_b = line_of(approved_payroll, people["single_b"])
    paid_less, bad_amount = file_row(approved_payroll, three), file_row(approved_payroll, six)
    paid_less[7], bad_amount[7] = "80.00", "1,5"
    approved_on = timezone.localdate(approved_payroll.decided_at)
    upload = receive(accountant, approved_payroll, [
        [*paid_less, ""], [*bad_amount, ""],
        [*file_row(approved_payroll, single_b), "2019-05-01"],
    ], django_capture_on_commit_callbacks, header=[*HEADERS, "Paid Date"])

    assert (upload.counts["valid"], upload.counts["errors"]) == (0, 3)
    assert errors_of(upload, header=[*HEADERS, "Paid Date"]) == {
        three.code: "Amount: amount_not_matching: This row says 80.00; the line's amount is 800.00 TZS.",
        six.code: "Amount: amount_invalid: '1,5' is not an amount: digits and a dot, like 1234.50.",
        single_b.code: f"Paid Date: paid_date_invalid: This is before payroll {approved_payroll} was approved for "
                       f"payment ({approved_on.isoformat()}): a line is paid on that day or later.",
    }
    said = StagedReconciliation.objects.filter(upload_id=upload.pk, said_amount__isnull=False)
    assert sorted(said.values_list("said_amount", flat=True)) == [Decimal("80.00"), Decimal("600.00")]

    services.upload_discard(upload=upload, by=accountant)
    assert not StagedReconciliation.objects.filter(upload_id=upload.pk).exists()  # cleared with the file's rows
    assert {line.status for line in lines(approved_payroll).values()} == {LineStatus.DUE}


def test_only_a_user_who_may_reconcile_uploads_a_reconciliation(approved_payroll, geo,
                                                                django_capture_on_commit_callbacks):
    from django.core.exceptions import PermissionDenied

    clerk = UserFactory(role="Clerk", national=True)
    with pytest.raises(PermissionDenied, match="Your role does not allow you to reconcile payrolls"):
        receive(clerk, approved_payroll, [], django_capture_on_commit_callbacks)


def test_the_upload_screens(client, approved_payroll, people, accountant, django_capture_on_commit_callbacks):
    three = line_of(approved_payroll, people["three"])
    client.force_login(accountant)
    form = client.get(reverse("bulk_upload:new") + f"?kind=RECONCILIATION&payroll={approved_payroll.pk}")
    assert form.status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("bulk_upload:new"), {
            "kind": "RECONCILIATION", "payroll": approved_payroll.pk,
            "file": csv_file([file_row(approved_payroll, three, receipt="MP-9"),
                              file_row(approved_payroll, three, paid="x")])})
    upload = Upload.objects.get()
    assert response["Location"] == reverse("bulk_upload:inspect", args=[upload.pk])
    page = client.get(response["Location"]).content.decode()
    assert "benefit_consumption_duplicated" in page and "paid_column_invalid_value" in page
    assert str(approved_payroll) in page
    payroll_page = client.get(reverse("payments_payroll:inspect", args=[approved_payroll.pk])).content.decode()
    assert "Upload a reconciliation file" in payroll_page and "reconciliation.csv" in payroll_page
    template = client.get(reverse("bulk_upload:template") + "?kind=RECONCILIATION")
    assert template.content.decode("utf-8-sig").strip() == ",".join(HEADERS)


def test_closing_waits_for_a_file_waiting_for_approval_then_for_its_import_job(
        approved_payroll, people, accountant, checkers, django_capture_on_commit_callbacks):
    """A provider's paid file waiting for its import's approval is not overtaken by closing (which would
    mark its lines unpaid first); once approved, its queued job holds closing off; once that job failed,
    closing goes ahead."""
    from schemes.payments import services as payments
    from workflows.models import ApprovalRule, Job, JobStatus, WorkflowStep

    definition = WorkflowDefinition.objects.get(operation="bulk.import")
    definition.requires_approval = True
    definition.save()
    WorkflowStep.objects.create(definition=definition, group=checkers[1], rule=ApprovalRule.ANY)
    upload = receive(accountant, approved_payroll, [file_row(approved_payroll, line_of(approved_payroll,
                                                                                          people["three"]))],
                     django_capture_on_commit_callbacks)
    approval_submit(operation="bulk.import", by=accountant, payload={"upload": upload.pk, "mode": "VALID_ROWS"})
    with pytest.raises(ValidationError, match="waiting for the approval of its import"):
        payments.payroll_close(payroll=approved_payroll, mark_due_unpaid=True, by=accountant)

    services.import_start(upload=upload, mode="VALID_ROWS", by=accountant)  # as the approval would: queued
    upload.refresh_from_db()
    assert upload.status == UploadStatus.IMPORTING and upload.import_job.status == JobStatus.QUEUED
    with pytest.raises(ValidationError, match="being imported"):
        payments.payroll_close(payroll=approved_payroll, mark_due_unpaid=True, by=accountant)

    Job.objects.filter(pk=upload.import_job_id).update(status=JobStatus.FAILED)
    assert payments.payroll_close(payroll=approved_payroll, mark_due_unpaid=True, by=accountant).status == \
        PayrollStatus.RECONCILED


def test_an_import_does_not_start_once_the_payroll_is_closed(
        approved_payroll, people, accountant, django_capture_on_commit_callbacks):
    """import_start re-reads the payroll under a share lock (a close cannot slip in between)."""
    from schemes.payments import services as payments

    upload = receive(accountant, approved_payroll, [file_row(approved_payroll, line_of(approved_payroll,
                                                                                          people["three"]))],
                     django_capture_on_commit_callbacks)
    payments.payroll_close(payroll=approved_payroll, mark_due_unpaid=True, by=accountant)
    with pytest.raises(ValidationError, match="only an approved payroll is reconciled"):
        services.import_start(upload=upload, mode="VALID_ROWS", by=accountant)
    assert Upload.objects.get(pk=upload.pk).status == UploadStatus.READY


def test_a_file_checked_before_another_reconciliation_is_refused_at_submission(
        approved_payroll, people, accountant, django_capture_on_commit_callbacks):
    from schemes.payments.reconciliation import reconcile_batch

    three, six = line_of(approved_payroll, people["three"]), line_of(approved_payroll, people["six"])
    upload = receive(accountant, approved_payroll, [file_row(approved_payroll, three, receipt="FILE"),
                                                    file_row(approved_payroll, six, receipt="FILE-6")],
                     django_capture_on_commit_callbacks)
    reconcile_batch(payroll=approved_payroll, by=accountant, rows=[  # a provider's batch meanwhile
        {"code": six.code, "paid": True, "receipt": "API-6", "paid_on": None}])

    with pytest.raises(ValidationError, match="1 of the lines this file would mark paid or unpaid were reconciled since"):
        approval_submit(operation="bulk.import", by=accountant, payload={"upload": upload.pk, "mode": "VALID_ROWS"})
    assert line_of(approved_payroll, people["three"]).status == LineStatus.DUE


def test_files_of_other_lines_stay_importable_after_one_is_imported(approved_payroll, people, accountant,
                                                                   django_capture_on_commit_callbacks):
    three, six = line_of(approved_payroll, people["three"]), line_of(approved_payroll, people["six"])
    first = receive(accountant, approved_payroll, [file_row(approved_payroll, three, receipt="A-3")],
                    django_capture_on_commit_callbacks)
    second = receive(accountant, approved_payroll, [file_row(approved_payroll, six, receipt="B-6")],
                     django_capture_on_commit_callbacks)

    import_now(first, accountant, django_capture_on_commit_callbacks)
    second = import_now(second, accountant, django_capture_on_commit_callbacks)

    assert second.counts["imported"] == 1
    assert {line_of(approved_payroll, people[name]).status for name in ("three", "six")} == {LineStatus.PAID}


def test_a_line_that_moved_once_the_import_started_is_skipped_and_the_audit_says_so(
        approved_payroll, people, accountant, django_capture_on_commit_callbacks):
    from schemes.payments.reconciliation import reconcile_batch
    from workflows.services import job_run

    three, six = line_of(approved_payroll, people["three"]), line_of(approved_payroll, people["six"])
    upload = receive(accountant, approved_payroll, [file_row(approved_payroll, three, receipt="FILE"),
                                                    file_row(approved_payroll, six, receipt="FILE-6")],
                     django_capture_on_commit_callbacks)
    assert (upload.counts["paid"], upload.counts["paid_amount"]) == (2, "1700.00")
    job = services.import_start(upload=upload, mode="VALID_ROWS", by=accountant)  # queued, not yet run
    reconcile_batch(payroll=approved_payroll, by=accountant, rows=[  # a provider's batch meanwhile
        {"code": six.code, "paid": True, "receipt": "API-6", "paid_on": None}])

    job_run(job.pk)
    upload.refresh_from_db()

    assert upload.counts["imported"] == 1
    entry = ModelLogEntry.objects.get(action="mizani.reconcile", data__has_key="file")
    assert (entry.data["lines_changed"], entry.data["rows_skipped"]) == (1, 1)
    assert (entry.data["paid"], entry.data["paid_amount"]) == (1, "800.00")
    assert entry.data["checked"]["paid_amount"] == "1700.00"
    assert line_of(approved_payroll, people["six"]).receipt == "API-6"


def test_the_page_of_a_checked_file_counts_its_lines_again_only_once_the_payroll_moved(
        client, approved_payroll, people, accountant, monkeypatch, django_capture_on_commit_callbacks):
    """The counts shown are never stale, but a view of a file whose payroll has not moved since the
    check reads its totals only, not the file's rows."""
    from schemes.payments import reconciliation as engine

    three, six = line_of(approved_payroll, people["three"]), line_of(approved_payroll, people["six"])
    single = line_of(approved_payroll, people["single_b"])
    upload = receive(accountant, approved_payroll, [file_row(approved_payroll, three, receipt="FILE"),
                                                    file_row(approved_payroll, six, receipt="FILE-6")],
                     django_capture_on_commit_callbacks)
    counted = []
    real_counts = engine.counts
    monkeypatch.setattr(engine, "counts", lambda key, payroll: counted.append(key) or real_counts(key, payroll))
    client.force_login(accountant)
    url = reverse("bulk_upload:inspect", args=[upload.pk])

    unmoved = client.get(url).content.decode()
    assert counted == [] and "reconciled since it was checked" not in unmoved

    reconcile_batch(payroll=approved_payroll, by=accountant, rows=[  # another line: the file's counts hold
        {"code": single.code, "paid": True, "receipt": "API-1", "paid_on": None}])
    counted.clear()
    other_line = client.get(url).content.decode()
    assert counted == [upload.pk] and "reconciled since it was checked" not in other_line

    reconcile_batch(payroll=approved_payroll, by=accountant, rows=[  # one of the file's lines
        {"code": six.code, "paid": True, "receipt": "API-6", "paid_on": None}])
    counted.clear()
    moved = client.get(url).content.decode()
    assert counted == [upload.pk]
    assert "1 of the lines this file would mark paid or unpaid were reconciled since it was checked" in moved


def imports_need_a_checker(checkers):
    from workflows.models import ApprovalRule, WorkflowStep

    definition = WorkflowDefinition.objects.get(operation="bulk.import")
    definition.requires_approval = True
    definition.save()
    WorkflowStep.objects.create(definition=definition, group=checkers[1], rule=ApprovalRule.ANY)


def test_a_file_whose_lines_another_import_waiting_for_approval_reconciles_is_refused_at_submission(
        client, approved_payroll, people, accountant, checkers, django_capture_on_commit_callbacks):
    imports_need_a_checker(checkers)
    three, six = line_of(approved_payroll, people["three"]), line_of(approved_payroll, people["six"])
    rows = [file_row(approved_payroll, three, receipt="MP-3")]
    first = receive(accountant, approved_payroll, rows, django_capture_on_commit_callbacks, name="first.csv")
    approval_submit(operation="bulk.import", by=accountant, payload={"upload": first.pk, "mode": "VALID_ROWS"})
    again = receive(accountant, approved_payroll, rows, django_capture_on_commit_callbacks, name="again.csv")

    with pytest.raises(ValidationError, match=r"1 of the lines this file would mark paid or unpaid are in first.csv "
                                              r"\(uploaded by .*\), whose import is waiting for approval"):
        approval_submit(operation="bulk.import", by=accountant, payload={"upload": again.pk, "mode": "VALID_ROWS"})
    client.force_login(accountant)
    page = client.get(reverse("bulk_upload:inspect", args=[again.pk])).content.decode()
    assert "whose import is waiting for approval: the same lines would be reconciled twice" in page
    assert services.IMPORTERS[UploadKind.RECONCILIATION].problems(first) == ""  # the first keeps its lines
    other = receive(accountant, approved_payroll, [file_row(approved_payroll, six, receipt="MP-6")],
                    django_capture_on_commit_callbacks, name="other.csv")
    approval_submit(operation="bulk.import", by=accountant, payload={"upload": other.pk, "mode": "VALID_ROWS"})


def test_a_second_request_for_lines_imported_meanwhile_no_longer_holds_its_version(
        approved_payroll, people, accountant, django_capture_on_commit_callbacks):
    """Two requests of the same file, asked for at once: once the first is imported, the second's version
    (what its approval holds to) changed, so the engine voids it, nothing applied, instead of failing."""
    importer = services.IMPORTERS[UploadKind.RECONCILIATION]
    rows = [file_row(approved_payroll, line_of(approved_payroll, people["three"]), receipt="MP-3")]
    first = receive(accountant, approved_payroll, rows, django_capture_on_commit_callbacks, name="first.csv")
    second = receive(accountant, approved_payroll, rows, django_capture_on_commit_callbacks, name="second.csv")
    assert importer.version(second) == ""

    import_now(first, accountant, django_capture_on_commit_callbacks)
    second.refresh_from_db()

    assert importer.version(second) == ", 1 lines reconciled since the check"
    assert "were reconciled since it was checked" in importer.problems(second)


def test_the_payroll_page_says_what_each_reconciliation_file_did(
        client, approved_payroll, people, accountant, checkers, django_capture_on_commit_callbacks):
    import re

    three, six = line_of(approved_payroll, people["three"]), line_of(approved_payroll, people["six"])
    imported = import_now(receive(accountant, approved_payroll, [file_row(approved_payroll, three, receipt="MP-3")],
                                  django_capture_on_commit_callbacks, name="imported.csv"),
                          accountant, django_capture_on_commit_callbacks)
    same_again = receive(accountant, approved_payroll, [file_row(approved_payroll, three, receipt="MP-3"),
                                                        file_row(approved_payroll, six, paid="maybe")],
                         django_capture_on_commit_callbacks, name="again.csv")
    imports_need_a_checker(checkers)
    waiting = receive(accountant, approved_payroll, [file_row(approved_payroll, six, paid="No", receipt="")],
                      django_capture_on_commit_callbacks, name="waiting.csv")
    approval_submit(operation="bulk.import", by=accountant, payload={"upload": waiting.pk, "mode": "VALID_ROWS"})
    assert imported.status == UploadStatus.IMPORTED and same_again.status == UploadStatus.READY

    client.force_login(accountant)
    page = client.get(reverse("payments_payroll:inspect", args=[approved_payroll.pk])).content.decode()

    table = re.search(r'data-testid="reconciliations">.*?</table>', page, re.S).group(0)
    rows = {name: (result, counted) for name, result, counted in re.findall(
        r">(\w+\.csv)</a>.*?</td><td>[^<]*</td><td>([^<]*)</td><td>([^<]*)</td>", table)}
    assert rows == {
        "waiting.csv": ("Checked: its import is waiting for approval",
                        "Checked, not imported: 0 to mark paid, 1 to mark unpaid, 0 no change, 0 with errors"),
        "again.csv": ("Checked: nothing to import: 1 row with errors, the others already so",
                      "Checked, not imported: 0 to mark paid, 0 to mark unpaid, 1 no change, 1 with errors"),
        "imported.csv": ("Imported", "Imported: 1 line reconciled (checked: 1 to mark paid, 0 unpaid), 0 no change, "
                                     "0 with errors")}


def test_the_lines_a_file_moves_show_their_amounts_as_money(approved_payroll, people, accountant,
                                                          django_capture_on_commit_callbacks):
    upload = receive(accountant, approved_payroll, [file_row(approved_payroll, line_of(approved_payroll,
                                                                                          people["three"]))],
                     django_capture_on_commit_callbacks)

    assert [row["amount"] for row in services.IMPORTERS[UploadKind.RECONCILIATION].sample(upload)] == ["800.00 TZS"]
