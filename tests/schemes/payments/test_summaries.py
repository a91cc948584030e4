"""A payroll's totals and changes, kept so that its screens never add up its lines: written when it is
sealed, moved with the lines by every reconciliation path, counted again when the previous cycle's
payroll changes; always the same as what the lines say."""

import threading
from collections import defaultdict
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from schemes.payments import selectors, services
from schemes.payments.models import (
    ChangeKind,
    PaymentCycle,
    PaymentLine,
    Payroll,
    PayrollChange,
    PayrollTotal,
)
from schemes.payments.reconciliation import reconcile_batch
from tests.factories import UserFactory
from tests.schemes.bulk.test_reconciliation import file_row, import_now, receive
from tests.schemes.payments.conftest import enrol, household_of, line_of
from workflows.models import WorkflowDefinition

pytestmark = pytest.mark.django_db


def kept(payroll):
    """{(location, status, flagged): (lines, amount)} of the payroll's totals that are not zero."""
    return {(row.location_id, row.status, row.flagged_over_limit): (row.lines, row.amount)
            for row in PayrollTotal.objects.filter(payroll=payroll) if row.lines}


def from_lines(payroll):
    """The same, added up from the lines."""
    sums = defaultdict(lambda: (0, Decimal("0.00")))
    for line in PaymentLine.objects.filter(payroll=payroll):
        lines, amount = sums[line.location_id, line.status, line.flagged_over_limit]
        sums[line.location_id, line.status, line.flagged_over_limit] = (lines + 1, amount + line.amount)
    return dict(sums)


def test_sealing_writes_the_totals_of_the_lines(approved_payroll, geo):
    assert kept(approved_payroll) == from_lines(approved_payroll) == {
        (geo.village_a.pk, "DUE", False): (2, Decimal("1700.00")),
        (geo.village_a.pk, "DUE", True): (1, Decimal("1100.00")),
        (geo.village_b.pk, "DUE", False): (1, Decimal("600.00"))}
    assert PayrollTotal.objects.filter(payroll=approved_payroll).count() == 3 * 4  # every status, zero too


def test_a_reconciliation_batch_moves_the_totals_with_the_lines(approved_payroll, people, accountant, geo):
    reconcile_batch(payroll=approved_payroll, by=accountant, rows=[
        {"code": line_of(approved_payroll, people["three"]).code, "paid": True, "receipt": "R-1"},
        {"code": line_of(approved_payroll, people["single_b"]).code, "paid": False, "receipt": ""}])

    assert kept(approved_payroll) == from_lines(approved_payroll) == {
        (geo.village_a.pk, "PAID", False): (1, Decimal("800.00")),
        (geo.village_a.pk, "DUE", False): (1, Decimal("900.00")),
        (geo.village_a.pk, "DUE", True): (1, Decimal("1100.00")),
        (geo.village_b.pk, "UNPAID", False): (1, Decimal("600.00"))}
    again = reconcile_batch(payroll=approved_payroll, by=accountant, rows=[
        {"code": line_of(approved_payroll, people["three"]).code, "paid": True, "receipt": "R-1"}])
    assert again["unchanged"] == 1 and kept(approved_payroll) == from_lines(approved_payroll)


def test_a_reconciliation_file_and_the_closing_move_the_totals(approved_payroll, people, accountant,
                                                               django_capture_on_commit_callbacks):
    WorkflowDefinition.objects.create(operation="bulk.import", requires_approval=False)
    upload = receive(accountant, approved_payroll, [
        file_row(approved_payroll, line_of(approved_payroll, people["six"])),
        file_row(approved_payroll, line_of(approved_payroll, people["three"]), paid="No", receipt="")],
        django_capture_on_commit_callbacks)
    import_now(upload, accountant, django_capture_on_commit_callbacks)
    assert kept(approved_payroll) == from_lines(approved_payroll)
    assert selectors.lines_in_status(approved_payroll.totals.all(), "PAID") == 1

    services.payroll_close(payroll=approved_payroll, mark_due_unpaid=True, by=accountant)

    assert kept(approved_payroll) == from_lines(approved_payroll)
    assert selectors.lines_in_status(approved_payroll.totals.all(), "UNPAID") == 3


def test_lines_without_a_location_are_kept_apart(people, benefit_plan, approved_payroll_with_unplaced, accountant):
    payroll = approved_payroll_with_unplaced
    unplaced = PaymentLine.objects.get(payroll=payroll, location__isnull=True)
    reconcile_batch(payroll=payroll, by=accountant, rows=[{"code": unplaced.code, "paid": True, "receipt": "R"}])
    assert kept(payroll) == from_lines(payroll)
    assert kept(payroll)[None, "PAID", False] == (1, Decimal("600.00"))


@pytest.fixture
def approved_payroll_with_unplaced(people, benefit_plan, request):
    enrol(benefit_plan, household_of(1, location=None))
    return request.getfixturevalue("approved_payroll")


def test_the_page_reads_totals_scoped_like_the_lines(approved_payroll, geo):
    district_b = UserFactory(role="Accountant", locations=[geo.district_b])
    assert selectors.totals_by_status(approved_payroll, district_b) == [
        {"status": "DUE", "label": "Still due", "lines": 1, "total": Decimal("600.00")}]
    assert selectors.over_limit(selectors.totals_for(district_b, approved_payroll)) == {
        "count": 0, "total": Decimal("0.00")}
    viewer = UserFactory(role="Viewer", national=True)
    assert not viewer.has_perm("payments.view_paymentline")
    assert selectors.totals_by_status(approved_payroll, viewer) == []


# --- changes against the previous cycle -------------------------------------------------------------


def generate(payment_plan, code, accountant, capture):
    with capture(execute=True):
        payroll = services.payroll_generate_start(payment_plan=payment_plan,
                                                  cycle=PaymentCycle.objects.get(code=code), by=accountant)
    return Payroll.objects.get(pk=payroll.pk)


@pytest.fixture
def next_cycle_changed(approved_payroll, people, superuser):
    """Before the next cycle: single_b (B) suspended, the suspended one (A, a household of two: 700)
    reinstated."""
    from schemes.plans.services import beneficiary_change_status

    beneficiary_change_status(beneficiary=people["single_b"], action="suspend", reason="moved", by=superuser)
    beneficiary_change_status(beneficiary=people["suspended"], action="reinstate", by=superuser)
    return approved_payroll


def test_changes_are_counted_when_sealed_and_read_without_the_lines(
        next_cycle_changed, payment_plan, accountant, geo, django_capture_on_commit_callbacks):
    payroll = generate(payment_plan, "CG-2025-03", accountant, django_capture_on_commit_callbacks)

    assert payroll.compared_with == next_cycle_changed and payroll.compared_at is not None
    counted = {(row.kind, row.location_id): (row.lines, row.amount, row.previous_amount)
               for row in PayrollChange.objects.filter(payroll=payroll)}
    assert counted == {(ChangeKind.NEW, geo.village_a.pk): (1, Decimal("700.00"), Decimal("0.00")),
                       (ChangeKind.REMOVED, geo.village_b.pk): (1, Decimal("0.00"), Decimal("600.00"))}
    with CaptureQueriesContext(connection) as captured:
        diff = selectors.payroll_diff(payroll, accountant)
    assert (diff["new"], diff["removed"], diff["changed"]) == (1, 1, 0)
    assert diff["amounts"]["new"]["now"] == Decimal("700.00")
    assert diff["amounts"]["removed"]["before"] == Decimal("600.00")
    assert not [query for query in captured.captured_queries if "payments_paymentline" in query["sql"]]

    district_b = UserFactory(role="Accountant", locations=[geo.district_b])
    scoped = selectors.payroll_diff(payroll, district_b, sample=5)
    assert (scoped["new"], scoped["removed"], scoped["changed"]) == (0, 1, 0)
    assert [line.location_id for line in scoped["samples"]["removed"]] == [geo.village_b.pk]


def test_changed_amounts_are_counted_where_the_line_is(approved_payroll, payment_plan, accountant, superuser, geo,
                                                       django_capture_on_commit_callbacks):
    services.payment_plan_change(payment_plan=payment_plan, by=superuser,
                                 fields={"formula": "600 + 100 * min(household_size, 4)"})
    payroll = generate(payment_plan, "CG-2025-03", accountant, django_capture_on_commit_callbacks)

    diff = selectors.payroll_diff(payroll)
    live = {kind: diff[kind] for kind in ("new", "removed", "changed")}
    assert live == {"new": 0, "removed": 0, "changed": 4}
    changed = PayrollChange.objects.filter(payroll=payroll, kind=ChangeKind.CHANGED)
    assert {row.location_id: row.lines for row in changed} == {geo.village_a.pk: 3, geo.village_b.pk: 1}
    assert diff["amounts"]["changed"] == {"before": Decimal("3400.00"), "now": Decimal("3600.00")}


def test_an_earlier_cycle_sealed_later_has_the_next_payroll_compared_again(
        next_cycle_changed, payment_plan, accountant, django_capture_on_commit_callbacks):
    third = generate(payment_plan, "CG-2025-05", accountant, django_capture_on_commit_callbacks)
    assert third.compared_with == next_cycle_changed

    second = generate(payment_plan, "CG-2025-03", accountant, django_capture_on_commit_callbacks)

    third.refresh_from_db()
    assert second.compared_with == next_cycle_changed and third.compared_with == second
    assert selectors.payroll_diff(third)["new"] == 0


def test_rejecting_the_previous_payroll_compares_the_next_with_the_one_before(
        next_cycle_changed, payment_plan, accountant, checkers, django_capture_on_commit_callbacks):
    from workflows.services import approval_decide

    second = generate(payment_plan, "CG-2025-03", accountant, django_capture_on_commit_callbacks)
    third = generate(payment_plan, "CG-2025-05", accountant, django_capture_on_commit_callbacks)
    assert third.compared_with == second
    with django_capture_on_commit_callbacks(execute=True):
        request = services.payroll_submit(payroll=second, by=accountant)
    with django_capture_on_commit_callbacks(execute=True):
        approval_decide(request=request, verdict="reject", by=checkers[0][0], comment="wrong formula")

    third.refresh_from_db()
    assert third.compared_with == next_cycle_changed
    assert selectors.payroll_diff(third)["previous"] == next_cycle_changed


def test_stale_changes_are_counted_from_the_lines(next_cycle_changed, payment_plan, accountant,
                                                  django_capture_on_commit_callbacks):
    payroll = generate(payment_plan, "CG-2025-03", accountant, django_capture_on_commit_callbacks)
    Payroll.objects.filter(pk=payroll.pk).update(compared_at=None)  # as before changes were kept
    PayrollChange.objects.filter(payroll=payroll).delete()

    diff = selectors.payroll_diff(Payroll.objects.get(pk=payroll.pk), accountant)

    assert (diff["new"], diff["removed"], diff["changed"]) == (1, 1, 0)


@pytest.mark.skipif(settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
                    reason="concurrent transactions: PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_batches_at_once_move_the_same_totals_exactly(people, benefit_plan, geo, accountant, request):
    """Two batches at once, each moving lines in both villages (the totals rows they update cross):
    both apply, neither deadlocks, and the totals still equal the lines."""
    placed = [household_of(1, location=geo.village_a if n % 2 else geo.village_b) for n in range(12)]
    for head in placed:
        enrol(benefit_plan, head)
    payroll = request.getfixturevalue("approved_payroll")
    lines = list(PaymentLine.objects.filter(payroll=payroll, recipient__in=placed).order_by("pk"))
    results, start = [], threading.Barrier(2)

    def batch(rows):
        try:
            start.wait()
            results.append(reconcile_batch(payroll=payroll, by=accountant, rows=rows))
        finally:
            connection.close()

    for round_lines in (lines[0:4], lines[4:8], lines[8:12]):
        first = [{"code": line.code, "paid": True, "receipt": f"R{line.pk}"} for line in round_lines[:2]]
        second = [{"code": line.code, "paid": False, "receipt": ""} for line in reversed(round_lines[2:])]
        threads = [threading.Thread(target=batch, args=(rows,)) for rows in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert sorted((result["paid"], result["unpaid"]) for result in results) == [(0, 2)] * 3 + [(2, 0)] * 3
    assert kept(payroll) == from_lines(payroll)


def test_missing_totals_are_counted_again_when_lines_move(approved_payroll, people, accountant):
    """A payroll sealed while totals were not kept yet (or a row lost): the next move recounts them."""
    PayrollTotal.objects.filter(payroll=approved_payroll, status="PAID").delete()

    reconcile_batch(payroll=approved_payroll, by=accountant, rows=[
        {"code": line_of(approved_payroll, people["three"]).code, "paid": True, "receipt": "R-1"}])

    assert kept(approved_payroll) == from_lines(approved_payroll)
    assert PayrollTotal.objects.filter(payroll=approved_payroll).count() == 3 * 4


def test_a_move_updates_the_totals_without_counting_the_lines_again(approved_payroll, people, accountant):
    with CaptureQueriesContext(connection) as captured:
        reconcile_batch(payroll=approved_payroll, by=accountant, rows=[
            {"code": line_of(approved_payroll, people["three"]).code, "paid": True, "receipt": "R-1"},
            {"code": line_of(approved_payroll, people["single_b"]).code, "paid": False, "receipt": ""}])

    assert not [query for query in captured.captured_queries if "INSERT INTO" in query["sql"]
                and "payments_payrolltotal" in query["sql"]]
    assert kept(approved_payroll) == from_lines(approved_payroll)


def test_the_next_payroll_is_compared_again_each_time_its_previous_one_changes(
        next_cycle_changed, payment_plan, accountant, checkers, django_capture_on_commit_callbacks):
    """P1 rejected (P2 against P0), P1' sealed (P2 against P1'), P1' rejected: P2 against P0 again."""
    from workflows.services import approval_decide

    def reject(payroll):
        with django_capture_on_commit_callbacks(execute=True):
            request = services.payroll_submit(payroll=payroll, by=accountant)
        with django_capture_on_commit_callbacks(execute=True):
            approval_decide(request=request, verdict="reject", by=checkers[0][0], comment="again")

    first_try = generate(payment_plan, "CG-2025-03", accountant, django_capture_on_commit_callbacks)
    third = generate(payment_plan, "CG-2025-05", accountant, django_capture_on_commit_callbacks)
    reject(first_try)
    second_try = generate(payment_plan, "CG-2025-03", accountant, django_capture_on_commit_callbacks)
    third.refresh_from_db()
    assert third.compared_with == second_try

    reject(second_try)

    third.refresh_from_db()
    assert third.compared_with == next_cycle_changed
