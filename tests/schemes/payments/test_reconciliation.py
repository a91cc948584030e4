"""The reconciliation engine through its API entry point (reconcile_batch): every error code, all or
nothing per batch, idempotence, refused unless approved, scope and provider, the payroll frozen for
every other path (the model, querysets and, on PostgreSQL, the trigger)."""

import datetime
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from wagtail.models import ModelLogEntry

from schemes.payments import services
from schemes.payments.models import (
    FrozenPayroll,
    LineStatus,
    PaymentLine,
    Payroll,
    PayrollStatus,
)
from schemes.payments.reconciliation import reconcile_batch
from tests.factories import UserFactory
from tests.schemes.payments.conftest import line_of

pytestmark = pytest.mark.django_db
REFUSED = (FrozenPayroll, DatabaseError)
TODAY = timezone.localdate().isoformat()  # the test payrolls are approved today: paid from today on


def row(line, paid=True, receipt="R-1", paid_on=None):
    return {"code": line.code, "paid": paid, "receipt": receipt, "paid_on": paid_on}


def statuses(payroll):
    return dict(PaymentLine.objects.filter(payroll=payroll).values_list("beneficiary_id", "status"))


def test_paid_and_unpaid_rows_move_their_lines(approved_payroll, people, accountant):
    three, six = line_of(approved_payroll, people["three"]), line_of(approved_payroll, people["six"])
    day = timezone.localdate()

    result = reconcile_batch(payroll=approved_payroll, by=accountant, rows=[
        row(three, receipt="MP-001", paid_on=day), row(six, paid=False, receipt="")])

    assert result == {"paid": 1, "unpaid": 1, "unchanged": 0, "errors": []}
    three.refresh_from_db()
    six.refresh_from_db()
    assert (three.status, three.receipt, three.paid_on) == (LineStatus.PAID, "MP-001", day)
    assert (six.status, six.receipt, six.paid_on) == (LineStatus.UNPAID, "", None)
    assert three.amount == Decimal("800.00")  # nothing else moves
    entry = ModelLogEntry.objects.filter(action="mizani.reconcile").get()
    assert entry.data["source"] == "api" and entry.data["paid_amount"] == "800.00"


def test_without_a_paid_date_the_line_is_paid_today(approved_payroll, people, accountant):
    three = line_of(approved_payroll, people["three"])
    reconcile_batch(payroll=approved_payroll, by=accountant, rows=[row(three)])
    three.refresh_from_db()
    assert three.paid_on == timezone.localdate()


def test_the_same_batch_twice_changes_nothing(approved_payroll, people, accountant):
    rows = [row(line_of(approved_payroll, people["three"]), receipt="MP-1"),
            row(line_of(approved_payroll, people["six"]), paid=False, receipt="")]
    reconcile_batch(payroll=approved_payroll, by=accountant, rows=rows)
    before = list(PaymentLine.objects.filter(payroll=approved_payroll).order_by("pk").values())

    again = reconcile_batch(payroll=approved_payroll, by=accountant, rows=rows)

    assert again == {"paid": 0, "unpaid": 0, "unchanged": 2, "errors": []}
    assert list(PaymentLine.objects.filter(payroll=approved_payroll).order_by("pk").values()) == before


def error_codes(result):
    return [(error["row"], error["code"]) for error in result["errors"]]


def test_each_error_has_its_code_and_nothing_of_the_batch_is_applied(
        approved_payroll, people, accountant, payment_plan, cycles, django_capture_on_commit_callbacks):
    from schemes.payments.models import PaymentCycle

    other_cycle = PaymentCycle.objects.get(code="CG-2025-03")
    with django_capture_on_commit_callbacks(execute=True):
        other = services.payroll_generate_start(payment_plan=payment_plan, cycle=other_cycle, by=accountant)
    three, six = line_of(approved_payroll, people["three"]), line_of(approved_payroll, people["six"])
    foreign = PaymentLine.objects.filter(payroll=other).first()
    flagged = line_of(approved_payroll, people["five_with_baby"])

    result = reconcile_batch(payroll=approved_payroll, by=accountant, rows=[
        row(three),                                                         # 1: fine alone
        {"code": "PL999999999", "paid": True, "receipt": "X", "paid_on": None},  # 2
        row(foreign),                                                       # 3
        {"code": six.code, "paid": "maybe", "receipt": "", "paid_on": None},  # 4
        row(six, receipt=""),                                               # 5 (and 4: six twice)
        row(flagged),                                                       # 6: above the limit, held
        {"code": "", "paid": True, "receipt": "R", "paid_on": "31/02/2025"},  # 7
    ])

    assert set(error_codes(result)) == {
        (2, "benefit_consumption_not_found"), (3, "benefit_consumption_not_in_payroll"),
        (4, "paid_column_invalid_value"), (4, "benefit_consumption_duplicated"),
        (5, "receipt_required"), (5, "benefit_consumption_duplicated"), (6, "status_not_matching"),
        (7, "benefit_consumption_not_found"), (7, "paid_date_invalid")}
    messages = {(e["row"], e["code"]): e["message"] for e in result["errors"]}
    assert messages[(2, "benefit_consumption_not_found")] == "code: No payment line has this code."
    assert messages[(4, "paid_column_invalid_value")] == "paid: Paid must be Yes or No."
    assert messages[(5, "receipt_required")] == "receipt: A paid line needs its receipt."
    assert "31/02/2025" in messages[(7, "paid_date_invalid")]
    assert (result["paid"], result["unpaid"]) == (0, 0)
    assert set(statuses(approved_payroll).values()) == {LineStatus.DUE}  # row 1 was not applied either


def test_a_row_paying_another_amount_than_its_lines_is_refused_naming_both(approved_payroll, people, accountant):
    three, six = line_of(approved_payroll, people["three"]), line_of(approved_payroll, people["six"])
    single_b = line_of(approved_payroll, people["single_b"])

    result = reconcile_batch(payroll=approved_payroll, by=accountant, rows=[
        {**row(three), "amount": "80.00"}, {**row(six, paid=False), "amount": "900.01"},
        {**row(single_b), "amount": "600.00"}])

    assert result["errors"] == [
        {"row": 1, "code": "amount_not_matching", "message": "amount: This row says 80.00; the line's amount is 800.00 TZS."},
        {"row": 2, "code": "amount_not_matching", "message": "amount: This row says 900.01; the line's amount is 900.00 TZS."}]
    assert set(statuses(approved_payroll).values()) == {LineStatus.DUE}  # nothing of the batch applied

    same = reconcile_batch(payroll=approved_payroll, by=accountant, rows=[
        {**row(three), "amount": "800"}, {**row(six, paid=False), "amount": Decimal("900.00")},
        {**row(single_b), "amount": "٦٠٠.٠٠"}])  # Arabic-Indic digits
    assert (same["paid"], same["unpaid"], same["errors"]) == (2, 1, [])


def test_the_amounts_a_row_is_refused_for_read_with_thousands_separated(approved_payroll, people, accountant):
    three = line_of(approved_payroll, people["three"])

    result = reconcile_batch(payroll=approved_payroll, by=accountant, rows=[{**row(three), "amount": "1234567.80"}])

    assert result["errors"] == [{"row": 1, "code": "amount_not_matching",
                                 "message": "amount: This row says 1,234,567.80; the line's amount is 800.00 TZS."}]


@pytest.mark.parametrize("amount, message", [
    ("NaN", "'NaN' is not an amount: digits and a dot, like 1234.50."),
    ("Infinity", "'Infinity' is not an amount: digits and a dot, like 1234.50."),
    ("8e2", "'8e2' is not an amount: digits and a dot, like 1234.50."),
    ("800,00", "'800,00' is not an amount: digits and a dot, like 1234.50."),
    ("-800.00", "-800.00 is negative: give the amount paid."),
    ("800.001", "800.001 has more than two decimals."),
    ("10000000000000000", "10000000000000000 is above the largest amount a line holds (9,999,999,999,999,999.99)."),
    (800.0, "Give the amount as text, like 1234.50."),
])
def test_an_amount_that_is_not_one_is_a_row_error(approved_payroll, people, accountant, amount, message):
    three = line_of(approved_payroll, people["three"])
    result = reconcile_batch(payroll=approved_payroll, by=accountant, rows=[{**row(three), "amount": amount}])
    assert result["errors"] == [{"row": 1, "code": "amount_invalid", "message": f"amount: {message}"}]


def test_the_amount_of_a_line_outside_the_users_locations_is_not_told(approved_payroll, people, geo):
    accountant_b = UserFactory(role="Accountant", locations=[geo.district_b])
    result = reconcile_batch(payroll=approved_payroll, by=accountant_b, rows=[
        {**row(line_of(approved_payroll, people["three"])), "amount": "1.00"}])
    assert error_codes(result) == [(1, "benefit_consumption_outside_locations")]


def test_a_paid_date_before_the_payroll_was_approved_or_in_the_future_is_refused(approved_payroll, people,
                                                                                 accountant):
    today = timezone.localdate(approved_payroll.decided_at)
    three, six = line_of(approved_payroll, people["three"]), line_of(approved_payroll, people["six"])
    single_b = line_of(approved_payroll, people["single_b"])

    result = reconcile_batch(payroll=approved_payroll, by=accountant, rows=[
        row(three, paid_on="1990-01-01"), row(six, paid_on=today - datetime.timedelta(days=1)),
        row(single_b, paid_on=(today + datetime.timedelta(days=2)).isoformat())])

    before = (f"paid_on: This is before payroll {approved_payroll} was approved for payment ({today.isoformat()}): "
              "a line is paid on that day or later.")
    assert result["errors"] == [
        {"row": 1, "code": "paid_date_invalid", "message": before},
        {"row": 2, "code": "paid_date_invalid", "message": before},
        {"row": 3, "code": "paid_date_invalid",
         "message": f"paid_on: {(today + datetime.timedelta(days=2)).isoformat()} is in the future."}]
    assert set(statuses(approved_payroll).values()) == {LineStatus.DUE}
    assert reconcile_batch(payroll=approved_payroll, by=accountant, rows=[row(three, paid_on=today)])["paid"] == 1


def test_a_status_that_does_not_allow_the_change_is_status_not_matching(approved_payroll, people, accountant):
    three, six = line_of(approved_payroll, people["three"]), line_of(approved_payroll, people["six"])
    reconcile_batch(payroll=approved_payroll, by=accountant, rows=[row(three, receipt="A"), row(six, paid=False)])

    result = reconcile_batch(payroll=approved_payroll, by=accountant, rows=[
        row(three, receipt="B"), row(six, receipt="C")])

    assert error_codes(result) == [(1, "status_not_matching"), (2, "status_not_matching")]
    assert result["errors"][0]["message"] == "paid: This line is paid already, with another receipt."
    assert "follow-up payroll" in result["errors"][1]["message"]
    three.refresh_from_db()
    assert three.receipt == "A"


def test_refused_unless_the_payroll_is_approved(payment_plan, cycle, people, accountant,
                                               django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        payroll = services.payroll_generate_start(payment_plan=payment_plan, cycle=cycle, by=accountant)
    payroll.refresh_from_db()
    assert payroll.status == PayrollStatus.GENERATED
    line = PaymentLine.objects.filter(payroll=payroll).first()
    with pytest.raises(ValidationError, match="only an approved payroll is reconciled"):
        reconcile_batch(payroll=payroll, by=accountant, rows=[row(line)])
    assert PaymentLine.objects.get(pk=line.pk).status == LineStatus.DUE


def test_it_takes_the_permission(approved_payroll, people, geo):
    viewer = UserFactory(role="Viewer", national=True)
    with pytest.raises(PermissionDenied):
        reconcile_batch(payroll=approved_payroll, by=viewer, rows=[row(line_of(approved_payroll, people["three"]))])


def test_a_district_accountant_reconciles_only_their_lines(approved_payroll, people, geo):
    accountant_b = UserFactory(role="Accountant", locations=[geo.district_b])
    result = reconcile_batch(payroll=approved_payroll, by=accountant_b, rows=[
        row(line_of(approved_payroll, people["single_b"])), row(line_of(approved_payroll, people["three"]))])
    assert error_codes(result) == [(2, "benefit_consumption_outside_locations")]


def test_a_line_without_a_location_is_outside_a_district_accountants_locations(people, benefit_plan, geo, request):
    from tests.schemes.payments.conftest import enrol, household_of

    enrol(benefit_plan, household_of(1, location=None))
    payroll = request.getfixturevalue("approved_payroll")
    unplaced = PaymentLine.objects.get(payroll=payroll, location__isnull=True)
    accountant_b = UserFactory(role="Accountant", locations=[geo.district_b])

    result = reconcile_batch(payroll=payroll, by=accountant_b, rows=[row(unplaced)])

    assert error_codes(result) == [(1, "benefit_consumption_outside_locations")]
    assert PaymentLine.objects.get(pk=unplaced.pk).status == LineStatus.DUE


def test_lines_outside_the_users_locations_are_told_nothing_more(
        approved_payroll, people, accountant, geo, payment_plan, cycles, django_capture_on_commit_callbacks):
    """A district-B accountant learns of district A's lines only that they are outside: not their
    receipts, statuses, holds or payrolls."""
    from schemes.payments.models import PaymentCycle

    with django_capture_on_commit_callbacks(execute=True):
        other = services.payroll_generate_start(payment_plan=payment_plan, by=accountant,
                                                cycle=PaymentCycle.objects.get(code="CG-2025-03"))
    three = line_of(approved_payroll, people["three"])
    reconcile_batch(payroll=approved_payroll, by=accountant, rows=[row(three, receipt="SECRET")])
    accountant_b = UserFactory(role="Accountant", locations=[geo.district_b])

    result = reconcile_batch(payroll=approved_payroll, by=accountant_b, rows=[
        row(three, receipt="GUESS"),                                  # paid already, another receipt
        row(three, paid=False),                                       # (and twice)
        row(line_of(approved_payroll, people["five_with_baby"])),     # held
        row(line_of(other, people["six"])),                           # another payroll's
        row(line_of(other, people["single_b"]))])                     # their own district, another payroll

    outside = "code: This line is outside your locations."
    assert sorted((e["row"], e["code"], e["message"]) for e in result["errors"]) == [
        (1, "benefit_consumption_duplicated", "code: This line is on more than one row."),
        (1, "benefit_consumption_outside_locations", outside),
        (2, "benefit_consumption_duplicated", "code: This line is on more than one row."),
        (2, "benefit_consumption_outside_locations", outside),
        (3, "benefit_consumption_outside_locations", outside),
        (4, "benefit_consumption_outside_locations", outside),
        (5, "benefit_consumption_not_in_payroll", f"code: This line is not in payroll {approved_payroll}.")]


def test_a_held_line_changes_by_no_row(approved_payroll, people, accountant, geo):
    """Above the limit and not released: never sent. A provider does not find it; anyone else is refused,
    Paid Yes or No."""
    held = line_of(approved_payroll, people["five_with_baby"])
    provider = services.provider_create(fields={"code": "MP", "name": "M-Pay"}, by=accountant)
    services.point_create(fields={"code": "MP-A", "name": "A", "provider": provider, "location": geo.district_a},
                          by=accountant)
    for paid in (True, False):
        refused = reconcile_batch(payroll=approved_payroll, by=accountant, provider=provider,
                                  rows=[row(held, paid=paid)])
        assert error_codes(refused) == [(1, "benefit_consumption_not_found")]
        refused = reconcile_batch(payroll=approved_payroll, by=accountant, rows=[row(held, paid=paid)])
        assert error_codes(refused) == [(1, "status_not_matching")]
        assert "not released for payment" in refused["errors"][0]["message"]
    assert line_of(approved_payroll, people["five_with_baby"]).status == LineStatus.DUE


def test_a_provider_finds_only_the_lines_under_its_payment_points(approved_payroll, people, accountant, geo):
    provider = services.provider_create(fields={"code": "MP", "name": "M-Pay"}, by=accountant)
    services.point_create(fields={"code": "MP-B", "name": "B", "provider": provider, "location": geo.district_b},
                          by=accountant)
    single_b, three = line_of(approved_payroll, people["single_b"]), line_of(approved_payroll, people["three"])

    refused = reconcile_batch(payroll=approved_payroll, by=accountant, provider=provider,
                              rows=[row(single_b), row(three)])
    assert error_codes(refused) == [(2, "benefit_consumption_not_found")]

    done = reconcile_batch(payroll=approved_payroll, by=accountant, provider=provider, rows=[row(single_b)])
    assert done["paid"] == 1


def test_a_batch_does_not_analyze_the_shared_staging_table(approved_payroll, people, accountant):
    """ANALYZE is for a file's million rows; in every batch's transaction it would only cost."""
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        reconcile_batch(payroll=approved_payroll, by=accountant, rows=[row(line_of(approved_payroll, people["three"]))])
    assert not [query for query in queries if "ANALYZE" in query["sql"].upper()]


def test_an_empty_batch_changes_nothing(approved_payroll, accountant):
    assert reconcile_batch(payroll=approved_payroll, by=accountant, rows=[]) == {
        "paid": 0, "unpaid": 0, "unchanged": 0, "errors": []}


def test_no_staged_row_is_left_behind(approved_payroll, people, accountant):
    from schemes.bulk.models import StagedError, StagedReconciliation

    three = line_of(approved_payroll, people["three"])
    reconcile_batch(payroll=approved_payroll, by=accountant, rows=[{**row(three), "amount": "800.00"}])
    reconcile_batch(payroll=approved_payroll, by=accountant, rows=[{"code": "nope", "paid": True, "receipt": "x",
                                                                    "amount": "1.00"}])
    assert not StagedReconciliation.objects.exists() and not StagedError.objects.exists()


# --- the payroll stays frozen for every other path ------------------------------------------------------


def test_no_other_path_moves_a_line_of_an_approved_payroll(approved_payroll, people):
    lines = PaymentLine.objects.filter(payroll=approved_payroll)
    for change in ({"amount": Decimal("1.00")}, {"status": LineStatus.PAID, "receipt": "R"},
                   {"status": LineStatus.UNPAID}):
        with pytest.raises(REFUSED), transaction.atomic():
            lines.update(**change)
    line = line_of(approved_payroll, people["three"])
    line.paid_on = datetime.date(2025, 1, 2)
    with pytest.raises(REFUSED), transaction.atomic():
        line.save()
    line = line_of(approved_payroll, people["three"])
    line.receipt = "R"
    with pytest.raises(REFUSED), transaction.atomic():
        PaymentLine.objects.bulk_update([line], ["receipt"])
    assert set(lines.values_list("status", flat=True)) == {LineStatus.DUE}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the triggers are PostgreSQL's")
def test_the_database_lets_only_reconciliation_move_a_line(approved_payroll, people, accountant):
    pk = approved_payroll.pk
    for statement in (f"UPDATE payments_paymentline SET status = 'PAID', receipt = 'R', paid_on = '2025-01-02' "
                      f"WHERE payroll_id = {pk}",
                      f"UPDATE payments_paymentline SET amount = 1 WHERE payroll_id = {pk}"):
        with pytest.raises(DatabaseError, match="payroll_(reconciliation_only|sealed)"), transaction.atomic(), \
                connection.cursor() as cursor:
            cursor.execute(statement)
    # Even with the setting naming the payroll: only DUE -> PAID with receipt and date, or DUE -> UNPAID;
    # amounts never; and only the payroll it names, which must be approved.
    for setting, statement in (
            (pk, f"UPDATE payments_paymentline SET status = 'PAID' WHERE payroll_id = {pk}"),
            (pk, f"UPDATE payments_paymentline SET status = 'CANCELLED' WHERE payroll_id = {pk}"),
            (pk, f"UPDATE payments_paymentline SET status = 'UNPAID', amount = 1 WHERE payroll_id = {pk}"),
            (pk + 1000, f"UPDATE payments_paymentline SET status = 'UNPAID' WHERE payroll_id = {pk}")):
        with pytest.raises(DatabaseError, match="payroll_(reconciliation_only|sealed)"), transaction.atomic(), \
                connection.cursor() as cursor:
            cursor.execute("SELECT set_config('mizani.reconciliation', %s, true)", [str(setting)])
            cursor.execute(statement)
    reconcile_batch(payroll=approved_payroll, by=accountant, rows=[row(line_of(approved_payroll, people["three"]))])
    with connection.cursor() as cursor:  # the setting does not outlive reconciliation's statements
        cursor.execute("SELECT current_setting('mizani.reconciliation', true)")
        assert cursor.fetchone()[0] in (None, "")
    assert PaymentLine.objects.filter(payroll=approved_payroll, status=LineStatus.PAID).count() == 1
    # A closed payroll: not even with the setting naming it.
    Payroll.objects.filter(pk=pk).update(status=PayrollStatus.RECONCILED)
    with pytest.raises(DatabaseError, match="payroll_reconciliation_only"), transaction.atomic(), \
            connection.cursor() as cursor:
        cursor.execute("SELECT set_config('mizani.reconciliation', %s, true)", [str(pk)])
        cursor.execute(f"UPDATE payments_paymentline SET status = 'UNPAID' WHERE payroll_id = {pk} AND status = 'DUE'")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the triggers are PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_a_new_connection_cannot_move_a_sealed_payrolls_lines(payment_plan, cycle, people, accountant, checkers,
                                                              payroll_workflow):
    """A session that never set `mizani.reconciliation` reads it as NULL: the guard must still fire."""
    import psycopg

    from workflows.services import approval_decide

    payroll = services.payroll_generate_start(payment_plan=payment_plan, cycle=cycle, by=accountant)
    request = services.payroll_submit(payroll=Payroll.objects.get(pk=payroll.pk), by=accountant)
    settings, pk = connection.settings_dict, payroll.pk

    def refused_on_a_new_connection():
        with psycopg.connect(dbname=settings["NAME"], user=settings["USER"], password=settings["PASSWORD"] or None,
                             host=settings["HOST"] or None, port=settings["PORT"] or None) as fresh:
            assert fresh.execute("SELECT current_setting('mizani.reconciliation', true)").fetchone()[0] is None
            for statement in (f"UPDATE payments_paymentline SET status = 'PAID', receipt = 'R', paid_on = '2025-01-02' "
                              f"WHERE payroll_id = {pk} AND status = 'DUE'",
                              f"UPDATE payments_paymentline SET status = 'UNPAID' WHERE payroll_id = {pk}"):
                with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="payroll_reconciliation_only"):
                    fresh.execute(statement)
                fresh.rollback()

    assert Payroll.objects.get(pk=pk).status == PayrollStatus.PENDING_APPROVAL
    assert PaymentLine.objects.filter(payroll_id=pk).count() == 4
    refused_on_a_new_connection()
    approval_decide(request=request, verdict="approve", by=checkers[0][0])
    assert Payroll.objects.get(pk=pk).status == PayrollStatus.APPROVED
    refused_on_a_new_connection()
    assert set(PaymentLine.objects.filter(payroll_id=pk).values_list("status", flat=True)) == {LineStatus.DUE}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="two connections at once")
@pytest.mark.django_db(transaction=True)
def test_of_two_batches_at_once_on_a_line_the_second_is_told_it_moved(
        payment_plan, cycle, people, accountant, checkers, payroll_workflow, monkeypatch):
    """The first batch checked the line while due and waits before applying; the second, sent meanwhile
    with another receipt, must not answer 200 with nothing applied: it answers status_not_matching."""
    import threading
    import time

    from schemes.payments import reconciliation
    from workflows.services import approval_decide

    payroll = services.payroll_generate_start(payment_plan=payment_plan, cycle=cycle, by=accountant)
    request = services.payroll_submit(payroll=Payroll.objects.get(pk=payroll.pk), by=accountant)
    approval_decide(request=request, verdict="approve", by=checkers[0][0])
    payroll, three = Payroll.objects.get(pk=payroll.pk), line_of(payroll, people["three"])
    first_checked, go_on = threading.Event(), threading.Event()
    check = reconciliation.check

    def check_then_wait(*args, **kwargs):
        check(*args, **kwargs)
        if threading.current_thread().name == "first":
            first_checked.set()
            go_on.wait(10)

    monkeypatch.setattr(reconciliation, "check", check_then_wait)
    results = {}

    def batch(receipt):
        try:
            results[receipt] = reconcile_batch(payroll=payroll, by=accountant, rows=[row(three, receipt=receipt)])
        finally:
            connection.close()

    first = threading.Thread(target=batch, args=("FIRST",), name="first")
    second = threading.Thread(target=batch, args=("SECOND",), name="second")
    first.start()
    assert first_checked.wait(10)
    second.start()
    time.sleep(0.5)  # the second batch as far as it gets while the first waits
    go_on.set()
    first.join(10)
    second.join(10)

    assert results["FIRST"] == {"paid": 1, "unpaid": 0, "unchanged": 0, "errors": []}
    assert error_codes(results["SECOND"]) == [(1, "status_not_matching")]
    three.refresh_from_db()
    assert (three.status, three.receipt) == (LineStatus.PAID, "FIRST")


def test_a_closed_payroll_is_no_longer_reconciled(approved_payroll, people, accountant):
    from schemes.payments.models import Payroll

    Payroll.objects.filter(pk=approved_payroll.pk).update(status=PayrollStatus.RECONCILED)
    with pytest.raises(ValidationError, match="reconciled: only an approved payroll"):
        reconcile_batch(payroll=approved_payroll, by=accountant, rows=[row(line_of(approved_payroll, people["three"]))])



# --- closing the payroll through approval -----------------------------------------------------------------


@pytest.fixture
def close_workflow(checkers):
    from workflows.models import ApprovalRule, WorkflowDefinition, WorkflowStep

    definition = WorkflowDefinition.objects.create(operation="payments.close_payroll")
    WorkflowStep.objects.create(definition=definition, group=checkers[1], rule=ApprovalRule.ANY)
    return definition


def settle_all_but_the_held_line(payroll, people, accountant):
    """five_with_baby's line (above the limit, not released) was never sent: it stays due."""
    return reconcile_batch(payroll=payroll, by=accountant, rows=[
        row(line_of(payroll, people["three"]), receipt="A"), row(line_of(payroll, people["single_b"]), receipt="B"),
        row(line_of(payroll, people["six"]), paid=False)])


def test_closing_with_lines_still_due_is_refused_unless_they_are_marked_unpaid(
        approved_payroll, people, accountant, close_workflow):
    settle_all_but_the_held_line(approved_payroll, people, accountant)
    with pytest.raises(ValidationError, match="1 line of .* is still due"):
        services.payroll_close_submit(payroll=approved_payroll, by=accountant)

    request = services.payroll_close_submit(payroll=approved_payroll, mark_due_unpaid=True, by=accountant)

    counts = request.summary["counts"]
    assert counts["Paid: lines"] == 2 and counts["Paid: total (TZS)"] == "1,400.00"
    assert counts["Failed (unpaid), left for a follow-up payroll: lines"] == 1
    assert counts["Still due, marked failed (unpaid) on closing: total (TZS)"] == "1,100.00"
    assert all(key.count(":") == 1 for key in counts)  # "<status words>: lines", never a second colon
    assert request.summary["title"] == (f"Close payroll {approved_payroll} (reconciled): 4 lines, paid 2, failed "
                                        "(unpaid) 1, still due 1 (marked failed on closing)")
    with pytest.raises(ValidationError, match="already waiting"):
        services.payroll_close_submit(payroll=approved_payroll, mark_due_unpaid=True, by=accountant)


def test_a_checker_closes_it_and_the_maker_cannot(approved_payroll, people, accountant, checkers, close_workflow,
                                                  django_capture_on_commit_callbacks):
    from workflows.services import approval_decide

    settle_all_but_the_held_line(approved_payroll, people, accountant)
    request = services.payroll_close_submit(payroll=approved_payroll, mark_due_unpaid=True, by=accountant)
    with pytest.raises(PermissionDenied):
        approval_decide(request=request, verdict="approve", by=accountant)
    approved_payroll.refresh_from_db()
    assert approved_payroll.status == PayrollStatus.APPROVED

    with django_capture_on_commit_callbacks(execute=True):
        approval_decide(request=request, verdict="approve", by=checkers[0][1])

    approved_payroll.refresh_from_db()
    assert approved_payroll.status == PayrollStatus.RECONCILED
    assert statuses(approved_payroll)[people["six"].pk] == LineStatus.UNPAID
    entry = ModelLogEntry.objects.get(action="mizani.payroll_closed")
    assert entry.data["marked_unpaid"] == 1 and entry.data["paid"] == {"lines": 2, "amount": "1400.00"}
    with pytest.raises(ValidationError, match="reconciled: only an approved payroll"):
        reconcile_batch(payroll=approved_payroll, by=accountant, rows=[row(line_of(approved_payroll, people["six"]))])


def test_a_reconciliation_after_the_request_voids_it(approved_payroll, people, accountant, checkers, close_workflow,
                                                    django_capture_on_commit_callbacks):
    from workflows.services import approval_decide

    request = services.payroll_close_submit(payroll=approved_payroll, mark_due_unpaid=True, by=accountant)
    settle_all_but_the_held_line(approved_payroll, people, accountant)
    with django_capture_on_commit_callbacks(execute=True):
        approval_decide(request=request, verdict="approve", by=checkers[0][1])
    request.refresh_from_db()
    approved_payroll.refresh_from_db()
    assert request.status == "VOID" and approved_payroll.status == PayrollStatus.APPROVED


def test_the_payroll_page_offers_upload_and_closing(client, approved_payroll, people, accountant, close_workflow):
    from django.urls import reverse

    client.force_login(accountant)
    page = client.get(reverse("payments_payroll:inspect", args=[approved_payroll.pk])).content.decode()
    assert f"?kind=RECONCILIATION&amp;payroll={approved_payroll.pk}" in page
    assert "4 lines are still due" in page
    response = client.post(reverse("payments_payroll:close", args=[approved_payroll.pk]), {"mark_due_unpaid": "on"})
    from workflows.models import ApprovalRequest

    request = ApprovalRequest.objects.get(operation="payments.close_payroll")
    assert response["Location"] == reverse("workflows_approvals:inspect", args=[request.pk])
    assert request.payload == {"payroll": approved_payroll.pk, "mark_due_unpaid": True}


def test_a_viewer_gets_no_reconciliation_or_closing(client, approved_payroll, geo):
    from django.urls import reverse

    viewer = UserFactory(role="Checker", national=True)
    client.force_login(viewer)
    page = client.get(reverse("payments_payroll:inspect", args=[approved_payroll.pk])).content.decode()
    assert "Upload a reconciliation file" not in page and "Submit the closing" not in page
    client.post(reverse("payments_payroll:close", args=[approved_payroll.pk]), {"mark_due_unpaid": "on"})
    from workflows.models import ApprovalRequest

    assert not ApprovalRequest.objects.filter(operation="payments.close_payroll").exists()


# --- cycles --------------------------------------------------------------------------------------------------


def test_a_cycle_opens_and_closes_but_not_while_a_payroll_waits(client, payment_plan, cycle, people, accountant,
                                                                 django_capture_on_commit_callbacks):
    from django.urls import reverse

    client.force_login(accountant)
    client.post(reverse("payments_cycle:open", args=[cycle.pk]))
    cycle.refresh_from_db()
    assert cycle.status == "OPEN"
    with django_capture_on_commit_callbacks(execute=True):
        payroll = services.payroll_generate_start(payment_plan=payment_plan, cycle=cycle, by=accountant)

    response = client.post(reverse("payments_cycle:close", args=[cycle.pk]), follow=True)
    cycle.refresh_from_db()
    assert cycle.status == "OPEN" and "waiting for approval" in response.content.decode()

    from schemes.payments.models import Payroll

    Payroll.objects.filter(pk=payroll.pk).update(status=PayrollStatus.REJECTED)
    client.post(reverse("payments_cycle:close", args=[cycle.pk]))
    cycle.refresh_from_db()
    assert cycle.status == "CLOSED"
    entries = ModelLogEntry.objects.filter(action="mizani.payment_cycle", object_id=str(cycle.pk)).order_by("pk")
    assert [entry.data["status"] for entry in entries if "status" in entry.data] == ["OPEN", "CLOSED"]
    page = client.get(reverse("payments_cycle:inspect", args=[cycle.pk])).content.decode()
    assert "Open the cycle" not in page and "Close the cycle" not in page


def test_a_viewer_cannot_open_a_cycle(client, cycle, geo):
    from django.urls import reverse

    client.force_login(UserFactory(role="Checker", national=True))
    client.post(reverse("payments_cycle:open", args=[cycle.pk]))
    cycle.refresh_from_db()
    assert cycle.status == "PLANNED"


def test_odd_values_are_row_errors_not_crashes(approved_payroll, people, accountant):
    three = line_of(approved_payroll, people["three"])
    result = reconcile_batch(payroll=approved_payroll, by=accountant, rows=[
        {"code": None, "paid": "Yes", "receipt": None},
        {"code": "PL²", "paid": "No", "receipt": ""},
        {"code": f" {three.code.lower()} ", "paid": " yes ", "receipt": " R-1 ", "paid_on": TODAY},
        {"code": three.code, "paid": 1, "receipt": "x" * 101, "paid_on": datetime.date(2999, 1, 1)}])
    assert set(error_codes(result)) == {
        (1, "benefit_consumption_not_found"), (1, "receipt_required"), (2, "benefit_consumption_not_found"),
        (3, "benefit_consumption_duplicated"), (4, "benefit_consumption_duplicated"),
        (4, "paid_column_invalid_value"), (4, "receipt_invalid"), (4, "paid_date_invalid")}
    with pytest.raises(ValidationError, match="list of objects"):
        reconcile_batch(payroll=approved_payroll, by=accountant, rows="PL1,Yes")


def test_a_lower_case_code_and_spaces_are_read_as_the_export_wrote_them(approved_payroll, people, accountant):
    three = line_of(approved_payroll, people["three"])
    result = reconcile_batch(payroll=approved_payroll, by=accountant, rows=[
        {"code": f" {three.code.lower()} ", "paid": " yes ", "receipt": " R-1 ", "paid_on": TODAY}])
    assert result["paid"] == 1
    three.refresh_from_db()
    assert (three.receipt, three.paid_on.isoformat()) == ("R-1", TODAY)


def test_no_closing_while_a_reconciliation_files_import_job_is_live(approved_payroll, accountant, close_workflow):
    """The live job counts, not the upload's status: a failed or cancelled import does not block closing."""
    from schemes.bulk.models import Upload, UploadKind, UploadStatus
    from workflows.models import Job, JobStatus

    job = Job.objects.create(kind="bulk.import", idempotency_key="bulk-import-test")
    Upload.objects.create(kind=UploadKind.RECONCILIATION, payroll=approved_payroll, stored_name="r.csv",
                          original_name="r.csv", uploaded_by=accountant, status=UploadStatus.IMPORTING,
                          import_job=job)
    for status in (JobStatus.QUEUED, JobStatus.RUNNING):
        Job.objects.filter(pk=job.pk).update(status=status)
        with pytest.raises(ValidationError, match="being imported"):
            services.payroll_close_submit(payroll=approved_payroll, mark_due_unpaid=True, by=accountant)
        with pytest.raises(ValidationError, match="being imported"):
            services.payroll_close(payroll=approved_payroll, mark_due_unpaid=True, by=accountant)
    for status in (JobStatus.FAILED, JobStatus.CANCELLED):
        Job.objects.filter(pk=job.pk).update(status=status)
        with transaction.atomic():
            services.payroll_close(payroll=approved_payroll, mark_due_unpaid=True, by=accountant)
            assert Payroll.objects.get(pk=approved_payroll.pk).status == PayrollStatus.RECONCILED
            transaction.set_rollback(True)
