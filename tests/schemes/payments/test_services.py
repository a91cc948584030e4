"""Payment plans, cycles, the payroll's approval (amount bands), rejection kept for audit, the frozen
payroll on every path, follow-ups, the diff to the previous cycle and the formula tester."""

import datetime
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DatabaseError, connection, transaction
from wagtail.models import ModelLogEntry

from schemes.payments import selectors, services
from schemes.payments.models import (
    FrozenPayroll,
    LineStatus,
    PaymentCycle,
    PaymentLine,
    Payroll,
    PayrollStatus,
)
from schemes.payments.reconciliation import reconcile_batch
from schemes.registry.selectors import person_payments
from tests.factories import UserFactory
from workflows.services import approval_decide, definition_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def sealed(payment_plan, cycle, people, accountant, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        payroll = services.payroll_generate_start(payment_plan=payment_plan, cycle=cycle, by=accountant)
    return Payroll.objects.get(pk=payroll.pk)


def approve(payroll, accountant, checker, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        request = services.payroll_submit(payroll=payroll, by=accountant)
    with django_capture_on_commit_callbacks(execute=True):
        approval_decide(request=request, verdict="approve", by=checker)
    return Payroll.objects.get(pk=payroll.pk)


# --- plans and cycles -----------------------------------------------------------------------------


def test_a_formula_that_does_not_give_a_number_is_refused(benefit_plan, superuser):
    with pytest.raises(ValidationError) as error:
        services.payment_plan_create(by=superuser, fields={
            "code": "X", "name": "X", "benefit_plan": benefit_plan, "formula": "household_size > 2",
            "target_statuses": ["ACTIVE"]})
    assert "formula" in error.value.message_dict
    with pytest.raises(ValidationError, match="Unknown field"):
        services.payment_plan_create(by=superuser, fields={
            "code": "X", "name": "X", "benefit_plan": benefit_plan, "formula": "salary * 2",
            "target_statuses": ["ACTIVE"]})


def test_a_formula_dividing_by_zero_is_refused_saying_so(benefit_plan, superuser):
    with pytest.raises(ValidationError) as error:
        services.payment_plan_create(by=superuser, fields={
            "code": "X", "name": "X", "benefit_plan": benefit_plan, "formula": "1000 / 0",
            "target_statuses": ["ACTIVE"]})
    assert error.value.message_dict["formula"] == [
        "Division by zero: this divisor is always 0, so the rule would give no value for anyone. (line 1, column 8)"]


@pytest.mark.parametrize("given, stored", [("TZS", "TZS"), ("usd", "USD"), (" Kes ", "KES")])
def test_a_currency_is_its_iso_code_in_capitals(payment_plan, superuser, given, stored):
    services.payment_plan_change(payment_plan=payment_plan, fields={"currency": given}, by=superuser)
    payment_plan.refresh_from_db()
    assert payment_plan.currency == stored


@pytest.mark.parametrize("given", ["US", "USDX", "U$D", "123", "", None, "ÜSD"])
def test_a_currency_that_is_not_a_code_is_refused_saying_what_is_expected(payment_plan, superuser, given):
    with pytest.raises(ValidationError) as error:
        services.payment_plan_change(payment_plan=payment_plan, fields={"currency": given}, by=superuser)
    assert error.value.message_dict["currency"] == [
        f"'{given}' is not a currency code: give its ISO 4217 code, three letters such as USD, EUR, KES or TZS."]
    payment_plan.refresh_from_db()
    assert payment_plan.currency == "TZS"


def test_a_payroll_keeps_the_currency_it_was_generated_in(sealed, payment_plan, superuser, accountant, checkers,
                                                          payroll_workflow, people,
                                                          django_capture_on_commit_callbacks):
    services.payment_plan_change(payment_plan=payment_plan, fields={"currency": "USD"}, by=superuser)
    approved = approve(sealed, accountant, checkers[0][0], django_capture_on_commit_callbacks)

    assert approved.currency == "TZS"
    assert {line.currency for line in approved.lines.all()} == {"TZS"}
    person = PaymentLine.objects.get(payroll=approved, beneficiary_id=people["three"].pk).recipient
    assert [row["currency"] for row in person_payments(person, accountant).totals] == ["TZS"]


def test_the_schedule_follows_the_periodicity(cycles):
    assert [(c.code, c.start_date, c.end_date) for c in sorted(cycles, key=lambda c: c.start_date)] == [
        ("CG-2025-01", datetime.date(2025, 1, 1), datetime.date(2025, 2, 28)),
        ("CG-2025-03", datetime.date(2025, 3, 1), datetime.date(2025, 4, 30)),
        ("CG-2025-05", datetime.date(2025, 5, 1), datetime.date(2025, 6, 30)),
    ]


def test_a_schedule_overlapping_existing_codes_creates_nothing(cycles, superuser):
    with pytest.raises(ValidationError, match="CG-2025-05"):
        services.cycle_schedule_generate(prefix="CG", first_start=datetime.date(2025, 5, 1), periodicity=2,
                                         count=3, by=superuser)
    assert PaymentCycle.objects.count() == 3


def test_the_formula_tester_shows_inputs_and_amounts_without_writing(payment_plan, people, accountant, superuser):
    result = services.formula_test(by=superuser, fields={
        "benefit_plan": payment_plan.benefit_plan, "formula": payment_plan.formula_text,
        "ceiling_per_beneficiary": Decimal("1000.00"), "limit_per_transaction": Decimal("850.00"),
        "target_statuses": ["ACTIVE"]})

    assert result["outcome"] == {"selected": 4, "paid": 4, "left_out": 0, "unknown": 0, "not_positive": 0,
                                 "no_recipient": 0, "too_large": 0}
    by_id = {row["beneficiary"].pk: row for row in result["rows"]}
    assert by_id[people["five_with_baby"].pk]["inputs"] == {"children_under_5": Decimal(1), "household_size": Decimal(5)}
    assert by_id[people["five_with_baby"].pk]["amount"] == Decimal("1000.00")  # 1100 capped
    assert by_id[people["six"].pk]["over_limit"] is True
    assert people["suspended"].pk not in by_id
    assert not Payroll.objects.exists()


def test_the_formula_tester_counts_who_the_formula_leaves_out_in_the_users_locations(payment_plan, people, geo,
                                                                                    superuser):
    district_a = UserFactory(role="Accountant", locations=[geo.district_a])
    fields = {"benefit_plan": payment_plan.benefit_plan, "formula": "1200 / (household_size - 3)",
              "target_statuses": ["ACTIVE"]}

    everyone = services.formula_test(by=superuser, fields=fields)
    in_a = services.formula_test(by=district_a, fields=fields)

    # "three" (3 people) divides by zero: no value; single_b (1 person, district B): -600, zero or less.
    assert everyone["outcome"] == {"selected": 4, "paid": 2, "left_out": 2, "unknown": 1, "not_positive": 1,
                                   "no_recipient": 0, "too_large": 0}
    assert in_a["outcome"] == {"selected": 3, "paid": 2, "left_out": 1, "unknown": 1, "not_positive": 0,
                               "no_recipient": 0, "too_large": 0}
    three = next(row for row in everyone["rows"] if row["beneficiary"].pk == people["three"].pk)
    assert (three["result"], three["amount"]) == (None, None)


def test_the_formula_tester_counts_amounts_too_large_for_a_line(payment_plan, people, superuser):
    result = services.formula_test(by=superuser, fields={
        "benefit_plan": payment_plan.benefit_plan, "formula": "1000000000000000 * 100",
        "target_statuses": ["ACTIVE"]})

    assert result["outcome"]["too_large"] == 4
    assert {row["too_large"] for row in result["rows"]} == {True}
    assert {row["amount"] for row in result["rows"]} == {Decimal("100000000000000000")}


def test_sql_and_python_give_every_line_the_same_amount(sealed, people):
    from schemes.payments.generation import Formula, line_amount

    formula = Formula(benefit_plan=sealed.payment_plan.benefit_plan, formula=sealed.formula["formula"],
                      criteria=sealed.formula["criteria"], today=sealed.cycle.start_date)
    for line in PaymentLine.objects.filter(payroll=sealed):
        beneficiary = next(b for b in people.values() if b.pk == line.beneficiary_id)
        inputs, raw = formula.evaluate(beneficiary)
        assert line_amount(raw, ceiling=Decimal("1200.00")) == line.amount
        assert {name: Decimal(value) for name, value in line.inputs.items()} == inputs


# --- approval ----------------------------------------------------------------------------------------


def test_approval_applies_once_the_checker_approves(sealed, accountant, checkers, payroll_workflow,
                                                    django_capture_on_commit_callbacks):
    checker = checkers[0][0]
    with django_capture_on_commit_callbacks(execute=True):
        request = services.payroll_submit(payroll=sealed, by=accountant)

    assert Payroll.objects.get(pk=sealed.pk).status == PayrollStatus.PENDING_APPROVAL
    assert request.total == Decimal("3400.00")
    assert request.summary["counts"]["Lines"] == 4
    assert request.summary["counts"]["Lines above the transaction limit"] == 1

    with django_capture_on_commit_callbacks(execute=True):
        approval_decide(request=request, verdict="approve", by=checker)

    assert Payroll.objects.get(pk=sealed.pk).status == PayrollStatus.APPROVED


def test_amount_bands_pick_the_workflow_by_the_payroll_total(payroll_workflow):
    small, large = payroll_workflow
    assert definition_for("payments.approve_payroll", Decimal("3400.00")) == small
    assert definition_for("payments.approve_payroll", Decimal("2500000.00")) == large


def test_the_maker_cannot_approve_their_own_payroll(sealed, accountant, checkers, payroll_workflow):
    from django.core.exceptions import PermissionDenied

    accountant.groups.add(checkers[1])
    request = services.payroll_submit(payroll=sealed, by=accountant)
    with pytest.raises(PermissionDenied):
        approval_decide(request=request, verdict="approve", by=accountant)


def test_rejection_keeps_the_payroll_and_its_lines_and_frees_the_cycle(
        sealed, accountant, checkers, payroll_workflow, payment_plan, cycle, django_capture_on_commit_callbacks):
    request = services.payroll_submit(payroll=sealed, by=accountant)
    approval_decide(request=request, verdict="reject", by=checkers[0][0], comment="Wrong cycle")

    rejected = Payroll.objects.get(pk=sealed.pk)
    assert rejected.status == PayrollStatus.REJECTED
    assert rejected.reason == "Wrong cycle"
    assert PaymentLine.objects.filter(payroll=rejected).count() == 4
    with django_capture_on_commit_callbacks(execute=True):
        again = services.payroll_generate_start(payment_plan=payment_plan, cycle=cycle, by=accountant)
    assert again.pk != rejected.pk
    assert Payroll.objects.get(pk=again.pk).status == PayrollStatus.GENERATED


def test_a_payroll_waiting_for_a_decision_is_not_submitted_twice(sealed, accountant, payroll_workflow):
    services.payroll_submit(payroll=sealed, by=accountant)
    with pytest.raises(ValidationError, match="is waiting for approval: only a generated payroll"):
        services.payroll_submit(payroll=sealed, by=accountant)


def test_refusals_on_a_payroll_still_to_submit_read_as_one_sentence(sealed, accountant):
    """The GENERATED label ("Generated: to submit for approval") is not spliced into a sentence."""
    with pytest.raises(ValidationError) as approving:
        services.payroll_approve(payroll=sealed)
    with pytest.raises(ValidationError) as closing:
        services.payroll_close(payroll=sealed, by=accountant)
    with pytest.raises(ValidationError) as reconciling:
        reconcile_batch(payroll=sealed, by=accountant, rows=[])

    assert approving.value.messages == [f"{sealed} is still to be submitted for approval: it cannot be approved."]
    assert closing.value.messages == [
        f"{sealed} is still to be submitted for approval: only an approved payroll is closed."]
    assert reconciling.value.messages == [
        f"{sealed} is still to be submitted for approval: only an approved payroll is reconciled."]


@pytest.fixture
def empty(payment_plan, cycle, people, accountant, superuser, django_capture_on_commit_callbacks):
    """The cycle's payroll sealed with no lines: its criteria select nobody."""
    services.payment_plan_change(payment_plan=payment_plan, by=superuser, fields={"criteria": "household_size > 50"})
    with django_capture_on_commit_callbacks(execute=True):
        payroll = services.payroll_generate_start(payment_plan=payment_plan, cycle=cycle, by=accountant)
    return Payroll.objects.get(pk=payroll.pk)


def test_a_payroll_with_nobody_to_pay_goes_to_no_checker(empty, accountant, payroll_workflow):
    from workflows.models import ApprovalRequest

    assert (empty.status, empty.line_count) == (PayrollStatus.GENERATED, 0)
    with pytest.raises(ValidationError, match=r"has no lines: when it was generated, no beneficiary in the statuses "
                                              r"paid met the criteria .* discard it, which frees cycle CG-2025-01"):
        services.payroll_submit(payroll=empty, by=accountant)
    assert not ApprovalRequest.objects.exists()


def test_a_payroll_with_nobody_to_pay_is_discarded_and_frees_its_cycle(empty, payment_plan, cycle, accountant,
                                                                       superuser, django_capture_on_commit_callbacks):
    from wagtail.models import ModelLogEntry

    discarded = services.payroll_discard(payroll=empty, by=accountant)

    assert (discarded.status, discarded.reason) == (PayrollStatus.REJECTED, "Discarded: no lines, nobody to pay.")
    assert ModelLogEntry.objects.filter(action="mizani.payroll_rejected", object_id=str(empty.pk)).exists()
    services.payment_plan_change(payment_plan=payment_plan, by=superuser, fields={"criteria": ""})
    with django_capture_on_commit_callbacks(execute=True):
        again = services.payroll_generate_start(payment_plan=payment_plan, cycle=cycle, by=accountant)
    assert again.pk != empty.pk and Payroll.objects.get(pk=again.pk).line_count == 4


def test_a_payroll_with_lines_is_not_discarded(sealed, accountant):
    with pytest.raises(ValidationError) as refused:
        services.payroll_discard(payroll=sealed, by=accountant)
    assert refused.value.messages == [
        f"{sealed} has 4 lines and is still to be submitted for approval: only a generated payroll with no lines, "
        "or one whose benefit plan is no longer active, is discarded (one with lines is rejected by its checkers)."]
    assert Payroll.objects.get(pk=sealed.pk).status == PayrollStatus.GENERATED


def test_discarding_takes_national_scope(empty, geo):
    with pytest.raises(PermissionDenied, match="national scope"):
        services.payroll_discard(payroll=empty, by=UserFactory(role="Accountant", locations=[geo.district_a]))
    assert Payroll.objects.get(pk=empty.pk).status == PayrollStatus.GENERATED


# --- an approved payroll never changes ----------------------------------------------------------------


@pytest.fixture
def approved(sealed, accountant, checkers, payroll_workflow, django_capture_on_commit_callbacks):
    payroll = approve(sealed, accountant, checkers[0][0], django_capture_on_commit_callbacks)
    assert payroll.status == PayrollStatus.APPROVED
    return payroll


REFUSED = (FrozenPayroll, DatabaseError)


def test_an_approved_payrolls_lines_refuse_queryset_updates_and_deletes(approved):
    lines = PaymentLine.objects.filter(payroll=approved)
    with pytest.raises(REFUSED), transaction.atomic():
        lines.update(amount=Decimal("1.00"))
    with pytest.raises(REFUSED), transaction.atomic():
        lines.delete()
    with pytest.raises(REFUSED), transaction.atomic():
        line = lines.first()
        line.amount = Decimal("2.00")
        PaymentLine.objects.bulk_update([line], ["amount"])
    with pytest.raises(REFUSED), transaction.atomic():
        line = lines.first()
        line.amount = Decimal("2.00")
        line.save()
    with pytest.raises(REFUSED), transaction.atomic():
        lines.first().delete()
    assert sum(lines.values_list("amount", flat=True)) == Decimal("3400.00")


def test_an_approved_payrolls_seal_refuses_every_change(approved):
    with pytest.raises(REFUSED), transaction.atomic():
        Payroll.objects.filter(pk=approved.pk).update(total=Decimal("1.00"))
    with pytest.raises(REFUSED), transaction.atomic():
        payroll = Payroll.objects.get(pk=approved.pk)
        payroll.line_count = 99
        payroll.save()
    with pytest.raises(REFUSED), transaction.atomic():
        Payroll.objects.get(pk=approved.pk).delete()
    with pytest.raises(REFUSED), transaction.atomic():
        PaymentLine.objects.create(payroll=approved, beneficiary_id=10**9, amount=Decimal("5.00"))
    assert Payroll.objects.get(pk=approved.pk).total == Decimal("3400.00")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the triggers are PostgreSQL's")
def test_the_database_refuses_raw_sql_changes_to_an_approved_payroll(approved):
    for statement in (f"UPDATE payments_paymentline SET amount = 1 WHERE payroll_id = {approved.pk}",
                      f"DELETE FROM payments_paymentline WHERE payroll_id = {approved.pk}",
                      f"UPDATE payments_payroll SET total = 1 WHERE id = {approved.pk}",
                      f"UPDATE payments_payroll SET status = 'GENERATING' WHERE id = {approved.pk}",
                      f"DELETE FROM payments_payroll WHERE id = {approved.pk}",
                      f"INSERT INTO payments_paymentline (payroll_id, beneficiary_id, amount, inputs, "
                      f"flagged_over_limit, status, receipt) VALUES ({approved.pk}, 999999, 1, '{{}}', false, 'DUE', '')"):
        with pytest.raises(DatabaseError, match="payroll_(sealed|kept)"), transaction.atomic(), \
                connection.cursor() as cursor:
            cursor.execute(statement)
    # Reconciliation's columns too, unless reconciliation writes them (tests/schemes/payments/test_reconciliation.py).
    with pytest.raises(DatabaseError, match="payroll_reconciliation_only"), transaction.atomic(), \
            connection.cursor() as cursor:
        cursor.execute("UPDATE payments_paymentline SET status = 'PAID', receipt = 'R1', paid_on = '2025-01-02' "
                       "WHERE payroll_id = %s", [approved.pk])
    assert set(PaymentLine.objects.filter(payroll=approved).values_list("status", flat=True)) == {"DUE"}


# --- follow-ups and the diff ----------------------------------------------------------------------------


def test_a_follow_up_waits_for_the_closing_and_pays_every_unpaid_line_at_its_frozen_amount(
        approved, accountant, people, django_capture_on_commit_callbacks):
    line = PaymentLine.objects.get(payroll=approved, beneficiary_id=people["six"].pk)
    reconcile_batch(payroll=approved, by=accountant, rows=[{"code": line.code, "paid": False, "receipt": ""}])
    with pytest.raises(ValidationError, match="close the payroll first"):
        services.payroll_follow_up_start(payroll=approved, by=accountant)
    assert not Payroll.objects.filter(follow_up_of=approved).exists()

    services.payroll_close(payroll=approved, mark_due_unpaid=True, by=accountant)  # the rest: unpaid too
    with django_capture_on_commit_callbacks(execute=True):
        follow_up = services.payroll_follow_up_start(payroll=approved, by=accountant)
    follow_up = Payroll.objects.get(pk=follow_up.pk)

    assert follow_up.follow_up_of_id == approved.pk
    assert (follow_up.line_count, follow_up.total) == (approved.line_count, approved.total)  # none left behind
    assert sorted(follow_up.lines.values_list("beneficiary_id", "amount", "status")) == sorted(
        (beneficiary, amount, LineStatus.DUE) for beneficiary, amount in approved.lines.values_list(
            "beneficiary_id", "amount"))
    assert services.payroll_follow_up_start(payroll=approved, by=accountant).pk == follow_up.pk


def test_no_payroll_lands_in_a_closed_cycle(approved, accountant, cycle, payment_plan, superuser):
    services.payroll_close(payroll=approved, mark_due_unpaid=True, by=accountant)
    services.cycle_change_status(cycle=cycle, action="close", leave_unpaid=True, by=superuser)  # opened by its payroll
    other_plan = services.payment_plan_create(
        fields={**{name: getattr(payment_plan, name) for name in services.PLAN_FIELDS}, "code": "CG-OTHER"},
        by=superuser)

    with pytest.raises(ValidationError, match="is closed"):
        services.payroll_follow_up_start(payroll=approved, by=accountant)
    with pytest.raises(ValidationError, match="is closed"):
        services.payroll_generate_start(payment_plan=other_plan, cycle=cycle, by=accountant)
    assert list(Payroll.objects.filter(cycle=cycle)) == [approved]


def test_the_diff_shows_new_removed_and_changed_beneficiaries(
        approved, payment_plan, cycles, people, accountant, superuser, django_capture_on_commit_callbacks):
    from schemes.plans.services import beneficiary_change_status

    beneficiary_change_status(beneficiary=people["single_b"], action="suspend", reason="moved", by=superuser)
    beneficiary_change_status(beneficiary=people["suspended"], action="reinstate", by=superuser)
    services.payment_plan_change(payment_plan=payment_plan, by=superuser,
                                 fields={"formula": "500 + 200 * children_under_5 + 100 * min(household_size, 4)"})
    following = PaymentCycle.objects.get(code="CG-2025-03")
    with django_capture_on_commit_callbacks(execute=True):
        payroll = services.payroll_generate_start(payment_plan=payment_plan, cycle=following, by=accountant)

    diff = selectors.payroll_diff(Payroll.objects.get(pk=payroll.pk), sample=5)

    assert diff["previous"] == approved
    assert (diff["new"], diff["removed"], diff["changed"]) == (1, 1, 0)
    assert [line.beneficiary_id for line in diff["samples"]["new"]] == [people["suspended"].pk]
    assert [line.beneficiary_id for line in diff["samples"]["removed"]] == [people["single_b"].pk]


# --- found in a walk through the payments screens ---------------------------------------------------


def test_a_payroll_for_a_cycle_overlapping_one_already_paid_is_refused(sealed, payment_plan, accountant, superuser):
    """A duplicate cycle (or a schedule made twice) would pay the same people twice for the same days."""
    paid = sealed.cycle
    twin = services.cycle_create(code="DUP", start_date=paid.start_date, end_date=paid.end_date, by=superuser)
    overlapping = services.cycle_create(code="HALF", start_date=paid.end_date, end_date=paid.end_date + datetime.timedelta(
        days=20), by=superuser)

    for cycle in (twin, overlapping):
        with pytest.raises(ValidationError, match="whose dates overlap cycle .*would pay the same beneficiaries twice"):
            services.payroll_generate_start(payment_plan=payment_plan, cycle=cycle, by=accountant)
    assert Payroll.objects.filter(payment_plan=payment_plan).count() == 1


def test_a_follow_up_does_not_pay_a_person_removed_from_the_registry(approved, accountant, people,
                                                                    django_capture_on_commit_callbacks):
    from schemes.registry.models import Individual

    services.payroll_close(payroll=approved, mark_due_unpaid=True, by=accountant)
    removed = PaymentLine.objects.filter(payroll=approved).first()
    Individual.objects.filter(pk=removed.recipient_id).update(deleted_at=datetime.datetime.now(datetime.UTC))
    with django_capture_on_commit_callbacks(execute=True):
        follow_up = services.payroll_follow_up_start(payroll=approved, by=accountant)

    recipients = set(PaymentLine.objects.filter(payroll_id=follow_up.pk).values_list("recipient_id", flat=True))
    assert removed.recipient_id not in recipients and len(recipients) == approved.line_count - 1


def test_payment_points_may_not_cover_the_same_people(geo, superuser):
    from schemes.payments.models import PaymentProvider

    mpesa = PaymentProvider.objects.create(code="MPESA", name="M-Pesa")
    airtel = PaymentProvider.objects.create(code="AIRTEL", name="Airtel")
    services.point_create(fields={"code": "P-A", "name": "District A", "provider": mpesa,
                                  "location": geo.district_a}, by=superuser)

    for location in (geo.village_a, geo.district_a, geo.region):  # under it, the same, above it
        with pytest.raises(ValidationError, match="already covers"):
            services.point_create(fields={"code": "P-X", "name": "Overlap", "provider": airtel, "location": location},
                                  by=superuser)
    services.point_create(fields={"code": "P-B", "name": "District B", "provider": airtel,
                                  "location": geo.district_b}, by=superuser)


def test_a_schedule_past_the_calendars_end_is_refused_not_a_server_error(superuser):
    with pytest.raises(ValidationError, match="past the year 9999"):
        services.cycle_schedule_generate(prefix="FAR", first_start=datetime.date(9999, 6, 1), periodicity=2, count=6,
                                         by=superuser)
    assert not PaymentCycle.objects.filter(code__startswith="FAR").exists()


# --- a payroll generated is to submit; waiting for approval once a request exists -------------------


def test_a_generated_payroll_waits_for_nobody_until_submitted(sealed, accountant, checkers, payroll_workflow):
    from workflows.models import ApprovalRequest

    assert sealed.status == PayrollStatus.GENERATED
    assert sealed.get_status_display() == "Generated: to submit for approval"
    assert not ApprovalRequest.objects.exists()

    request = services.payroll_submit(payroll=sealed, by=accountant)

    submitted = Payroll.objects.get(pk=sealed.pk)
    assert (submitted.status, submitted.get_status_display()) == (PayrollStatus.PENDING_APPROVAL,
                                                                   "Waiting for approval")
    assert request.status == "PENDING" and request.payload == {"payroll": sealed.pk}


def test_a_refused_submission_leaves_the_payroll_to_submit(sealed, accountant):
    with pytest.raises(ValidationError, match="No approval workflow is configured"):
        services.payroll_submit(payroll=sealed, by=accountant)  # no workflow defined
    assert Payroll.objects.get(pk=sealed.pk).status == PayrollStatus.GENERATED


def test_a_cancelled_request_leaves_the_payroll_to_submit_again(sealed, accountant, checkers, payroll_workflow,
                                                                 django_capture_on_commit_callbacks):
    from workflows.services import approval_cancel

    request = services.payroll_submit(payroll=sealed, by=accountant)
    approval_cancel(request=request, by=accountant)

    assert Payroll.objects.get(pk=sealed.pk).status == PayrollStatus.GENERATED
    with django_capture_on_commit_callbacks(execute=True):
        again = services.payroll_submit(payroll=Payroll.objects.get(pk=sealed.pk), by=accountant)
    with django_capture_on_commit_callbacks(execute=True):
        approval_decide(request=again, verdict="approve", by=checkers[0][0])
    assert Payroll.objects.get(pk=sealed.pk).status == PayrollStatus.APPROVED


def payroll_history(payroll):
    """(action, user, data) of the payroll's own audit entries, oldest first."""
    return [(entry.action, entry.user, entry.data) for entry in ModelLogEntry.objects.filter(
        content_type__model="payroll", object_id=str(payroll.pk)).order_by("pk")]


def test_submitting_and_cancelling_are_in_the_payrolls_own_history(sealed, accountant, payroll_workflow):
    from workflows.services import approval_cancel

    request = services.payroll_submit(payroll=sealed, by=accountant)
    approval_cancel(request=request, by=accountant)

    history = payroll_history(sealed)
    assert history[-2:] == [
        ("mizani.payroll_submitted", accountant, {"request": request.pk, "lines": 4, "total": format(sealed.total, "f")}),
        ("mizani.payroll_withdrawn", accountant, {"request": request.pk, "request_status": "CANCELLED", "why": ""}),
    ]


def test_a_void_request_withdraws_the_payroll_with_its_reason_and_no_user(sealed, accountant, payroll_workflow):
    request = services.payroll_submit(payroll=sealed, by=accountant)
    request.void("The record changed after the request was submitted; nothing was applied.")
    request.save()  # as approval_execute does

    assert Payroll.objects.get(pk=sealed.pk).status == PayrollStatus.GENERATED
    assert payroll_history(sealed)[-1] == ("mizani.payroll_withdrawn", None, {
        "request": request.pk, "request_status": "VOID",
        "why": "The record changed after the request was submitted; nothing was applied."})


def test_a_payroll_submitted_with_approval_off_is_approved(sealed, accountant, django_capture_on_commit_callbacks):
    from workflows.models import WorkflowDefinition

    WorkflowDefinition.objects.create(operation="payments.approve_payroll",
                                      requires_approval=False)
    with django_capture_on_commit_callbacks(execute=True):
        request = services.payroll_submit(payroll=sealed, by=accountant)

    request.refresh_from_db()
    assert (request.status, Payroll.objects.get(pk=sealed.pk).status) == ("EXECUTED", PayrollStatus.APPROVED)


def test_a_cycle_does_not_close_on_a_payroll_still_to_submit(sealed, cycle, superuser):
    with pytest.raises(ValidationError, match="being generated, to submit or waiting for approval"):
        services.cycle_change_status(cycle=cycle, action="close", by=superuser)


@pytest.mark.parametrize(("moves", "action", "refusal"), [
    ((), "close", "Cycle CG-2025-01 is planned: it can be closed once it is open."),
    (("open",), "open", "Cycle CG-2025-01 is open already."),
    (("open", "close"), "open", "Cycle CG-2025-01 is closed: it cannot be opened again."),
    (("open", "close"), "close", "Cycle CG-2025-01 is closed already."),
])
def test_a_cycle_refuses_a_move_it_cannot_make_in_one_plain_sentence(cycle, superuser, moves, action, refusal):
    for move in moves:
        services.cycle_change_status(cycle=cycle, action=move, by=superuser)

    with pytest.raises(ValidationError) as refused:
        services.cycle_change_status(cycle=cycle, action=action, by=superuser)

    assert refused.value.messages == [refusal]


def test_a_cycle_is_only_opened_or_closed(cycle, superuser):
    with pytest.raises(ValueError, match="opens or closes"):
        services.cycle_change_status(cycle=cycle, action="delete", by=superuser)


def test_the_approval_request_says_who_is_left_out_and_why(payment_plan, cycle, people, accountant, superuser,
                                                           payroll_workflow, geo, django_capture_on_commit_callbacks):
    from tests.factories import IndividualFactory
    from tests.schemes.payments.conftest import enrol

    enrol(payment_plan.benefit_plan, IndividualFactory(location=geo.village_a))  # in no household
    services.payment_plan_change(payment_plan=payment_plan, by=superuser, fields={"formula": "100 * household_size"})
    with django_capture_on_commit_callbacks(execute=True):
        payroll = services.payroll_generate_start(payment_plan=payment_plan, cycle=cycle, by=accountant)

    request = services.payroll_submit(payroll=Payroll.objects.get(pk=payroll.pk), by=accountant)

    left_out = "1 active beneficiary left out: a value the formula reads is unknown (household_size)"
    assert request.summary["title"] == f"Approve payroll {payroll} for payment: 4 lines, 1,500.00 TZS; {left_out}"
    assert request.summary["counts"]["Left out (no line)"] == left_out
    assert request.summary["counts"]["Total (TZS)"] == "1,500.00"


# --- a cycle moves with its payrolls ------------------------------------------------------------------


def test_a_planned_cycle_opens_with_its_first_payroll(payment_plan, cycle, people, accountant,
                                                      django_capture_on_commit_callbacks):
    from wagtail.models import ModelLogEntry

    from schemes.payments.models import CycleStatus

    assert cycle.status == CycleStatus.PLANNED
    with django_capture_on_commit_callbacks(execute=True):
        services.payroll_generate_start(payment_plan=payment_plan, cycle=cycle, by=accountant)

    assert PaymentCycle.objects.get(pk=cycle.pk).status == CycleStatus.OPEN
    entry = ModelLogEntry.objects.get(action="mizani.payment_cycle", object_id=str(cycle.pk), user=accountant)
    assert entry.data == {"status": "OPEN", "opened_by_payroll": True}
    assert PaymentCycle.objects.exclude(pk=cycle.pk).filter(status=CycleStatus.OPEN).count() == 0


def test_the_upgrade_reads_payrolls_never_submitted_as_generated_and_opens_their_cycles(
        sealed, cycle, accountant, payroll_workflow):
    """Migration 0009: sealed payrolls read "Waiting for approval" whether submitted or not."""
    import importlib

    from django.apps import apps

    from schemes.payments.models import CycleStatus

    upgrade = importlib.import_module("schemes.payments.migrations.0009_generated_status_left_out")
    submitted = services.payroll_generate_start(
        payment_plan=services.payment_plan_create(fields={**{name: getattr(sealed.payment_plan, name) for name in
                                                             services.PLAN_FIELDS}, "code": "CG-OTHER"},
                                                  by=UserFactory(is_superuser=True)),
        cycle=cycle, by=accountant)
    services.payroll_generate(submitted.pk)
    services.payroll_submit(payroll=Payroll.objects.get(pk=submitted.pk), by=accountant)
    Payroll.objects.filter(pk=sealed.pk).update(status=PayrollStatus.PENDING_APPROVAL)  # as sealed before 0009
    PaymentCycle.objects.filter(pk=cycle.pk).update(status=CycleStatus.PLANNED)

    upgrade.not_submitted_as_generated(apps, None)

    assert Payroll.objects.get(pk=sealed.pk).status == PayrollStatus.GENERATED
    assert Payroll.objects.get(pk=submitted.pk).status == PayrollStatus.PENDING_APPROVAL
    assert PaymentCycle.objects.get(pk=cycle.pk).status == CycleStatus.OPEN
    assert PaymentCycle.objects.filter(status=CycleStatus.PLANNED).count() == 2  # the others have no payroll


# --- a benefit plan no longer active pays no payroll ------------------------------------------------


def close_benefit_plan(payment_plan):
    """Close the payment plan's benefit plan (as plans.close does once approved; its beneficiaries then
    graduate: here they stay as they were, so that only the plan's status refuses the payroll)."""
    from schemes.plans.models import BenefitPlan

    plan = BenefitPlan.objects.get(pk=payment_plan.benefit_plan_id)
    plan.close()
    plan.save()
    return plan


def test_no_payroll_is_generated_for_a_closed_benefit_plan(payment_plan, cycle, people, accountant):
    close_benefit_plan(payment_plan)

    with pytest.raises(ValidationError) as refused:
        services.payroll_generate_start(payment_plan=payment_plan, cycle=cycle, by=accountant)

    assert refused.value.messages == [
        "Child grant (CG) is closed: its payrolls are no longer paid, and no payroll is generated for it."]
    assert not Payroll.objects.exists()


def test_a_payroll_generated_before_its_plan_closed_is_not_submitted_but_discarded(sealed, accountant,
                                                                                  payroll_workflow):
    from workflows.models import ApprovalRequest

    close_benefit_plan(sealed.payment_plan)

    with pytest.raises(ValidationError) as refused:
        services.payroll_submit(payroll=sealed, by=accountant)
    assert refused.value.messages == [
        f"Child grant (CG) is closed: its payrolls are no longer paid; discard {sealed}."]
    assert not ApprovalRequest.objects.exists()
    assert Payroll.objects.get(pk=sealed.pk).status == PayrollStatus.GENERATED

    discarded = services.payroll_discard(payroll=sealed, by=accountant)
    assert (discarded.status, discarded.reason) == (PayrollStatus.REJECTED, "Discarded: Child grant (CG) is closed.")


def test_a_payroll_whose_plan_closed_while_the_checkers_decided_is_not_approved(
        sealed, accountant, checkers, payroll_workflow, django_capture_on_commit_callbacks):
    from workflows.models import RequestStatus

    with django_capture_on_commit_callbacks(execute=True):
        request = services.payroll_submit(payroll=sealed, by=accountant)
    close_benefit_plan(sealed.payment_plan)
    with django_capture_on_commit_callbacks(execute=True):
        approval_decide(request=request, verdict="approve", by=checkers[0][0])

    request.refresh_from_db()
    assert request.status == RequestStatus.FAILED
    assert request.error == f"Child grant (CG) is closed: its payrolls are no longer paid; discard {sealed}."
    # Back to submit (which is refused), and discarded.
    assert Payroll.objects.get(pk=sealed.pk).status == PayrollStatus.GENERATED
    assert services.payroll_discard(payroll=sealed, by=accountant).status == PayrollStatus.REJECTED


def test_the_generation_job_fails_a_payroll_whose_plan_closed_before_it_ran(payment_plan, cycle, people, accountant,
                                                                           django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        started = services.payroll_generate_start(payment_plan=payment_plan, cycle=cycle, by=accountant)
    close_benefit_plan(payment_plan)
    with pytest.raises(ValidationError):
        services.payroll_generate(started.pk)
    assert callbacks  # the job was queued: run as the worker would, it fails the payroll saying why
    for callback in callbacks:
        callback()

    failed = Payroll.objects.get(pk=started.pk)
    assert failed.status == PayrollStatus.FAILED and not failed.lines.exists()
    assert "Child grant (CG) is closed: its payrolls are no longer paid" in failed.error


def test_an_approved_payroll_of_a_closed_plan_is_still_reconciled_and_closed(approved, accountant, people):
    from tests.schemes.payments.conftest import line_of

    close_benefit_plan(approved.payment_plan)
    line = line_of(approved, people["three"])

    outcome = reconcile_batch(payroll=approved, by=accountant, rows=[
        {"code": line.code, "paid": True, "receipt": "R-1", "paid_on": None}])

    assert outcome["paid"] == 1
    assert PaymentLine.objects.get(pk=line.pk).status == "PAID"
    closed = services.payroll_close(payroll=approved, mark_due_unpaid=True, by=accountant)
    assert closed.status == PayrollStatus.RECONCILED


def test_a_closed_plans_reconciled_payroll_gets_no_follow_up(approved, accountant):
    services.payroll_close(payroll=approved, mark_due_unpaid=True, by=accountant)
    close_benefit_plan(approved.payment_plan)

    with pytest.raises(ValidationError, match=r"Child grant \(CG\) is closed: its payrolls are no longer paid"):
        services.payroll_follow_up_start(payroll=Payroll.objects.get(pk=approved.pk), by=accountant)
    assert not Payroll.objects.filter(follow_up_of=approved).exists()


def test_a_plan_change_reads_amounts_as_money_and_statuses_by_their_labels(payment_plan):
    diff = services.payment_plan_diff(payment_plan, {
        "ceiling_per_beneficiary": Decimal("60000"), "target_statuses": ["ACTIVE", "SUSPENDED"], "periodicity": 1})

    assert diff == [["Ceiling per beneficiary", "1,200.00 TZS", "60,000.00 TZS"],
                    ["Periodicity", "Every two months", "Every month"],
                    ["Statuses paid", "Active", "Active, Suspended"]]


def test_the_payroll_request_shows_its_total_as_money(sealed, accountant, payroll_workflow):
    request = services.payroll_submit(payroll=sealed, by=accountant)

    assert request.summary["total_shown"] == "3,400.00 TZS"


def test_a_formula_given_as_openimis_filters_is_kept_as_the_rule_it_means():
    from schemes.payments.services import _rule
    from schemes.rules.parser import parse

    text = "number_of_children__gte__integer=3"
    assert _rule(text, parse(text))["text"] == "number_of_children >= 3"


def test_a_cycle_does_not_close_while_a_payroll_of_it_can_still_be_paid(approved, accountant, cycle, superuser):
    with pytest.raises(ValidationError, match=r"Cycle CG-2025-01 has payrolls approved and not yet closed "
                                              r"\(CG-PAY CG-2025-01\): their lines can still be paid"):
        services.cycle_change_status(cycle=cycle, action="close", by=superuser)
    services.payroll_close(payroll=approved, mark_due_unpaid=True, by=accountant)

    with pytest.raises(ValidationError, match=r"Payrolls of cycle CG-2025-01 have unpaid lines and no follow-up "
                                              r"payroll \(CG-PAY CG-2025-01\): once the cycle is closed"):
        services.cycle_change_status(cycle=cycle, action="close", by=superuser)
    cycle.refresh_from_db()
    assert cycle.status == "OPEN"

    services.cycle_change_status(cycle=cycle, action="close", leave_unpaid=True, by=superuser)
    entry = ModelLogEntry.objects.filter(action="mizani.payment_cycle", object_id=str(cycle.pk)).latest("pk")
    assert entry.data == {"status": "CLOSED", "left_unpaid": ["CG-PAY CG-2025-01"]}


def test_a_cycle_waits_for_the_follow_up_of_its_unpaid_lines(approved, accountant, cycle, superuser, checkers,
                                                              django_capture_on_commit_callbacks):
    services.payroll_close(payroll=approved, mark_due_unpaid=True, by=accountant)
    with django_capture_on_commit_callbacks(execute=True):
        follow_up = services.payroll_follow_up_start(payroll=approved, by=accountant)
    follow_up = approve(Payroll.objects.get(pk=follow_up.pk), accountant, checkers[0][0],
                        django_capture_on_commit_callbacks)

    with pytest.raises(ValidationError, match=r"approved and not yet closed \(CG-PAY CG-2025-01 follow-up\)"):
        services.cycle_change_status(cycle=cycle, action="close", by=superuser)
    services.payroll_close(payroll=follow_up, mark_due_unpaid=True, by=accountant)
    # The first payroll's unpaid lines went to the follow-up: only the follow-up's are left unpaid.
    assert list(services.payrolls_left_unpaid(cycle)) == [follow_up]
    with pytest.raises(ValidationError, match=r"no follow-up payroll \(CG-PAY CG-2025-01 follow-up\)"):
        services.cycle_change_status(cycle=cycle, action="close", by=superuser)


def test_why_unpaid_lines_get_no_follow_up(approved, accountant, cycle, superuser):
    assert services.follow_up_refusal(approved) == (
        "Only a closed (reconciled) payroll's unpaid lines can be paid again: close the payroll first.")
    services.payroll_close(payroll=approved, mark_due_unpaid=True, by=accountant)
    approved.refresh_from_db()
    assert services.follow_up_refusal(approved) == ""

    services.cycle_change_status(cycle=cycle, action="close", leave_unpaid=True, by=superuser)
    approved.refresh_from_db()
    assert services.follow_up_refusal(approved) == (
        "Cycle CG-2025-01 is closed, its unpaid lines left unpaid when it was closed: no payroll, a follow-up "
        "included, is made for it any more.")
