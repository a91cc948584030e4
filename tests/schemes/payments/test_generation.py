"""Payroll generation: one statement compiled from the formula, every line frozen with its inputs,
sealed with the exact count, Decimal total and hash; idempotent; an empty selection pays nobody."""

import datetime
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, connection, transaction
from django.db.models import Sum

from schemes.payments import generation, services
from schemes.payments.models import PaymentLine, Payroll, PayrollStatus
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=False)


def amounts(payroll):
    return {line.beneficiary_id: line.amount for line in PaymentLine.objects.filter(payroll=payroll)}


def generate(payment_plan, cycle, by):
    payroll = services.payroll_generate_start(payment_plan=payment_plan, cycle=cycle, by=by)
    return Payroll.objects.get(pk=payroll.pk)


@pytest.fixture
def generate_now(django_capture_on_commit_callbacks):
    """Generate, running the job the request's commit hands to the worker."""
    def run(payment_plan, cycle, by):
        with django_capture_on_commit_callbacks(execute=True):
            payroll = services.payroll_generate_start(payment_plan=payment_plan, cycle=cycle, by=by)
        return Payroll.objects.get(pk=payroll.pk)
    return run


def test_the_generation_jobs_last_message_shows_the_total_with_thousands_separated(payment_plan, cycle, people,
                                                                                    accountant, generate_now):
    from workflows.models import Job

    payroll = generate_now(payment_plan, cycle, accountant)

    assert Job.objects.get(pk=payroll.job_id).message == "4 lines, total 3,400.00 TZS"


def test_the_formula_pays_each_active_beneficiary_its_amount_with_the_inputs_used(
        payment_plan, cycle, people, accountant, generate_now):
    payroll = generate_now(payment_plan, cycle, accountant)

    assert payroll.status == PayrollStatus.GENERATED
    assert amounts(payroll) == {people["three"].pk: Decimal("800.00"), people["five_with_baby"].pk: Decimal("1100.00"),
                                people["six"].pk: Decimal("900.00"), people["single_b"].pk: Decimal("600.00")}
    line = PaymentLine.objects.get(payroll=payroll, beneficiary_id=people["six"].pk)
    assert line.inputs == {"children_under_5": 0, "household_size": 6}
    assert line.recipient_id == people["six"].individual_id
    assert line.location_id == people["six"].individual.location_id
    flagged = set(PaymentLine.objects.filter(payroll=payroll, flagged_over_limit=True).values_list(
        "beneficiary_id", flat=True))
    assert flagged == {people["five_with_baby"].pk}


def test_the_seal_holds_the_exact_count_total_and_hash(payment_plan, cycle, people, accountant, generate_now):
    payroll = generate_now(payment_plan, cycle, accountant)

    lines = PaymentLine.objects.filter(payroll=payroll)
    assert payroll.line_count == lines.count() == 4
    assert payroll.total == Decimal("3400.00")
    assert isinstance(payroll.total, Decimal)
    assert payroll.total == lines.aggregate(total=Sum("amount"))["total"]
    expected = generation.seal_digest_python(lines.order_by("beneficiary_id").values_list("beneficiary_id", "amount"))
    assert payroll.seal_hash == expected


def test_the_ceiling_caps_a_line_and_rounding_is_half_to_even(payment_plan, cycle, people, accountant, generate_now,
                                                               superuser):
    services.payment_plan_change(payment_plan=payment_plan, by=superuser, fields={
        "formula": "household_size * 100.125 + (0.005 if household_size == 6 else 0)",
        "ceiling_per_beneficiary": Decimal("600.00")})
    payroll = generate_now(payment_plan, cycle, accountant)

    # 3 * 100.125 = 300.375 -> 300.38 (half to even: 7 is odd); 1 * 100.125 -> 100.12 (2 is even);
    # 5 * 100.125 = 500.625 -> 500.62; 6 people: 600.755 -> capped at 600.00.
    assert amounts(payroll) == {people["three"].pk: Decimal("300.38"), people["single_b"].pk: Decimal("100.12"),
                                people["five_with_baby"].pk: Decimal("500.62"), people["six"].pk: Decimal("600.00")}
    for beneficiary_id, amount in amounts(payroll).items():
        raw = {people[name].pk: size for name, size in
               (("three", 3), ("single_b", 1), ("five_with_baby", 5), ("six", 6))}[beneficiary_id]
        python = generation.line_amount(Decimal("100.125") * raw + (Decimal("0.005") if raw == 6 else 0),
                                        ceiling=Decimal("600.00"))
        assert python == amount


def test_criteria_selecting_nobody_give_an_empty_payroll_never_everyone(payment_plan, cycle, people, accountant,
                                                                         generate_now, superuser):
    services.payment_plan_change(payment_plan=payment_plan, by=superuser, fields={"criteria": "household_size > 50"})
    payroll = generate_now(payment_plan, cycle, accountant)

    assert payroll.status == PayrollStatus.GENERATED
    assert (payroll.line_count, payroll.total) == (0, Decimal("0.00"))
    assert not PaymentLine.objects.filter(payroll=payroll).exists()


def test_criteria_limit_who_is_paid(payment_plan, cycle, people, accountant, generate_now, superuser):
    services.payment_plan_change(payment_plan=payment_plan, by=superuser, fields={"criteria": "children_under_5 >= 1"})
    payroll = generate_now(payment_plan, cycle, accountant)

    assert set(amounts(payroll)) == {people["five_with_baby"].pk}


def test_a_second_generate_for_the_plan_and_cycle_returns_the_same_payroll(payment_plan, cycle, people, accountant,
                                                                           generate_now):
    first = generate_now(payment_plan, cycle, accountant)
    second = generate_now(payment_plan, cycle, accountant)

    assert second.pk == first.pk
    assert Payroll.objects.filter(payment_plan=payment_plan, cycle=cycle).count() == 1
    assert PaymentLine.objects.filter(payroll=first).count() == 4


def test_running_the_generation_again_changes_nothing(payment_plan, cycle, people, accountant, generate_now):
    payroll = generate_now(payment_plan, cycle, accountant)

    again = services.payroll_generate(payroll.pk)

    assert again == {"payroll": payroll.pk, "status": PayrollStatus.GENERATED, "lines": 4, "total": "3400.00"}
    assert PaymentLine.objects.filter(payroll=payroll).count() == 4


def test_the_database_refuses_a_second_live_payroll_for_a_plan_and_cycle(payment_plan, cycle, people, accountant):
    payroll = generate(payment_plan, cycle, accountant)

    with pytest.raises(IntegrityError), transaction.atomic():
        Payroll.objects.create(name="again", payment_plan=payment_plan, cycle=cycle)
    assert Payroll.objects.filter(cycle=cycle).count() == 1
    assert payroll.status == PayrollStatus.GENERATING


def test_the_database_refuses_a_duplicate_line(payment_plan, cycle, people, accountant):
    payroll = generate(payment_plan, cycle, accountant)  # not run: still generating
    PaymentLine.objects.create(payroll=payroll, beneficiary_id=people["six"].pk, amount=Decimal("1.00"))

    with pytest.raises(IntegrityError), transaction.atomic():
        PaymentLine.objects.create(payroll=payroll, beneficiary_id=people["six"].pk, amount=Decimal("2.00"))


def test_a_failed_generation_frees_the_plan_and_cycle(payment_plan, cycle, people, accountant, generate_now,
                                                      monkeypatch):
    def broken(formula, **kwargs):
        return "INSERT INTO nowhere (beneficiary_id) SELECT 1", []

    monkeypatch.setattr(generation.Formula, "insert_sql", broken)
    failed = generate_now(payment_plan, cycle, accountant)
    assert failed.status == PayrollStatus.FAILED
    assert "nowhere" in failed.error
    monkeypatch.undo()

    again = generate_now(payment_plan, cycle, accountant)

    assert again.pk != failed.pk
    assert again.status == PayrollStatus.GENERATED
    assert not PaymentLine.objects.filter(payroll=failed).exists()


def test_an_amount_too_large_for_a_line_refuses_the_payroll_saying_how_many_and_the_largest_allowed(
        payment_plan, cycle, people, accountant, generate_now, superuser):
    services.payment_plan_change(payment_plan=payment_plan, by=superuser, fields={
        "formula": "100000000000000000 * household_size", "ceiling_per_beneficiary": None})

    failed = generate_now(payment_plan, cycle, accountant)

    assert failed.status == PayrollStatus.FAILED
    assert failed.error == ("4 lines would be above the largest amount a payment line holds (9,999,999,999,999,999.99 "
                            "TZS): nothing was written. Correct the formula, or set a ceiling per beneficiary.")
    assert not PaymentLine.objects.filter(payroll=failed).exists()


def test_a_ceiling_brings_a_formula_result_too_large_for_a_line_down(payment_plan, cycle, people, accountant,
                                                                    generate_now, superuser):
    services.payment_plan_change(payment_plan=payment_plan, by=superuser, fields={
        "formula": "100000000000000000 * household_size + 0.005"})

    payroll = generate_now(payment_plan, cycle, accountant)

    assert payroll.status == PayrollStatus.GENERATED, payroll.error
    assert set(amounts(payroll).values()) == {Decimal("1200.00")}
    assert payroll.total == Decimal("4800.00")


def test_a_formula_dividing_by_a_value_that_is_zero_for_someone_leaves_them_out(
        payment_plan, cycle, people, accountant, generate_now, superuser):
    services.payment_plan_change(payment_plan=payment_plan, by=superuser,
                                 fields={"formula": "1200 / (household_size - 3)"})

    payroll = generate_now(payment_plan, cycle, accountant)

    # "three" (3 people) divides by zero: no amount, no line; single_b (1 person) gets -600: no line either.
    assert amounts(payroll) == {people["five_with_baby"].pk: Decimal("600.00"), people["six"].pk: Decimal("400.00")}
    assert (payroll.line_count, payroll.total) == (2, Decimal("1000.00"))


def test_a_payroll_takes_the_permission_and_national_scope(payment_plan, cycle, geo):
    viewer = UserFactory(role="Viewer", national=True)
    district_accountant = UserFactory(role="Accountant", locations=[geo.district_a])

    with pytest.raises(PermissionDenied):
        services.payroll_generate_start(payment_plan=payment_plan, cycle=cycle, by=viewer)
    with pytest.raises(PermissionDenied, match="national scope"):
        services.payroll_generate_start(payment_plan=payment_plan, cycle=cycle, by=district_accountant)
    assert not Payroll.objects.exists()


def test_generation_is_one_insert_statement(payment_plan, cycle, people, accountant):
    from django.test.utils import CaptureQueriesContext

    payroll = generate(payment_plan, cycle, accountant)
    with CaptureQueriesContext(connection) as queries:
        services.payroll_generate(payroll.pk)

    table = connection.ops.quote_name("payments_paymentline")
    inserts = [q["sql"] for q in queries.captured_queries if f"INSERT INTO {table}" in q["sql"]]
    assert len(inserts) == 1


def test_a_household_plan_pays_each_household_through_its_primary_recipient_else_its_head(
        geo, member_roles, accountant, superuser, generate_now):
    from django.utils import timezone

    from schemes.payments.models import PaymentCycle
    from schemes.plans.models import BenefitPlan, HouseholdBeneficiary
    from schemes.registry.models import Individual, Membership
    from tests.schemes.payments.conftest import household_of

    plan = BenefitPlan.objects.create(code="HS", name="Household support", plan_type="HOUSEHOLD")
    plan.activate()
    plan.save()
    heads = {size: household_of(size, location=geo.village_a, under_5=1 if size == 4 else 0) for size in (2, 4)}
    named = Membership.objects.filter(household=heads[4].membership.household).exclude(role_id="HEAD").first()
    Membership.objects.filter(pk=named.pk).update(recipient_type="PRIMARY")
    emptied = household_of(1, location=geo.village_a)
    Individual.objects.filter(pk=emptied.pk).update(deleted_at=timezone.now())
    now = timezone.now()
    enrolled = {size: HouseholdBeneficiary.objects.create(plan=plan, household=head.membership.household,
                                                          status="ACTIVE", enrolled_at=now, status_changed_at=now)
                for size, head in {**heads, 1: emptied}.items()}
    payment_plan = services.payment_plan_create(by=superuser, fields={
        "code": "HS-PAY", "name": "Household support payments", "benefit_plan": plan,
        "formula": "100 + 100 * household_size + 50 * children_under_5", "target_statuses": ["ACTIVE"]})
    cycle = services.cycle_create(code="HS-1", start_date=PaymentCycle._meta.get_field("start_date").to_python(
        "2025-01-01"), end_date=PaymentCycle._meta.get_field("end_date").to_python("2025-01-31"), by=superuser)

    payroll = generate_now(payment_plan, cycle, accountant)

    lines = {line.beneficiary_id: line for line in PaymentLine.objects.filter(payroll=payroll)}
    assert {pk: line.amount for pk, line in lines.items()} == {enrolled[2].pk: Decimal("300.00"),
                                                               enrolled[4].pk: Decimal("550.00")}
    assert {pk: line.recipient_id for pk, line in lines.items()} == {enrolled[2].pk: heads[2].pk,
                                                                     enrolled[4].pk: named.individual_id}
    assert lines[enrolled[4].pk].inputs == {"children_under_5": 1, "household_size": 4}
    assert (payroll.line_count, payroll.total) == (2, Decimal("850.00"))
    formula = generation.Formula(benefit_plan=plan, formula=payment_plan.formula, criteria=None,
                                 today=timezone.localdate())
    outcome = formula.outcome(statuses=["ACTIVE"], ceiling=None)
    assert (outcome["selected"], outcome["paid"], outcome["no_recipient"], outcome["left_out"]) == (3, 2, 1, 1)


# --- who is left out, and why (recorded when sealed) -------------------------------------------------


def test_a_payroll_records_who_in_the_statuses_paid_got_no_line_and_why(payment_plan, cycle, people, accountant,
                                                                        generate_now, superuser, geo):
    from tests.factories import IndividualFactory
    from tests.schemes.payments.conftest import enrol

    alone = enrol(payment_plan.benefit_plan, IndividualFactory(location=geo.village_a))  # no household: size unknown
    services.payment_plan_change(payment_plan=payment_plan, by=superuser,
                                 fields={"formula": "1200 / (household_size - 3)"})

    payroll = generate_now(payment_plan, cycle, accountant)

    # Five active: "alone" reads an unknown size, "three" divides by zero, single_b gets -600; the
    # suspended one is not in the statuses paid.
    assert set(amounts(payroll)) == {people["five_with_baby"].pk, people["six"].pk}
    assert alone.pk not in amounts(payroll)
    assert payroll.left_out == {"criteria_not_met": 0, "unknown": 1, "no_value": 1, "not_positive": 1,
                                "no_recipient": 0, "unknown_inputs": ["household_size"]}
    assert payroll.left_out_text == (
        "3 active beneficiaries left out: a value the formula reads is unknown (household_size) for 1; the formula "
        "gives no value though every value it reads is known (a division by zero) for 1; the formula gives zero or "
        "less for 1")


def test_a_payroll_says_one_reason_alone_and_the_criteria_not_met(payment_plan, cycle, people, accountant,
                                                                  generate_now, superuser):
    services.payment_plan_change(payment_plan=payment_plan, by=superuser, fields={"criteria": "household_size < 6"})

    payroll = generate_now(payment_plan, cycle, accountant)

    assert payroll.line_count == 3
    assert payroll.left_out["criteria_not_met"] == 1
    assert payroll.left_out_text == "1 active beneficiary left out: the payment plan's criteria are not met"


def test_a_payroll_paying_everyone_in_the_statuses_paid_leaves_nobody_out(payment_plan, cycle, people, accountant,
                                                                          generate_now):
    payroll = generate_now(payment_plan, cycle, accountant)

    assert (payroll.line_count, payroll.left_out, payroll.left_out_text) == (4, {}, "")


def test_a_household_with_no_live_member_to_pay_is_counted_left_out(geo, member_roles, accountant, superuser,
                                                                    generate_now):
    from django.utils import timezone

    from schemes.plans.models import BenefitPlan, HouseholdBeneficiary
    from schemes.registry.models import Individual
    from tests.schemes.payments.conftest import household_of

    plan = BenefitPlan.objects.create(code="HS", name="Household support", plan_type="HOUSEHOLD")
    plan.activate()
    plan.save()
    paid, emptied = household_of(2, location=geo.village_a), household_of(1, location=geo.village_a)
    Individual.objects.filter(pk=emptied.pk).update(deleted_at=timezone.now())
    now = timezone.now()
    for head in (paid, emptied):
        HouseholdBeneficiary.objects.create(plan=plan, household=head.membership.household, status="ACTIVE",
                                            enrolled_at=now, status_changed_at=now)
    payment_plan = services.payment_plan_create(by=superuser, fields={
        "code": "HS-PAY", "name": "Household support payments", "benefit_plan": plan,
        "formula": "100 + 100 * household_size", "target_statuses": ["ACTIVE", "SUSPENDED"]})
    cycle = services.cycle_create(code="HS-1", start_date=datetime.date(2025, 1, 1),
                                  end_date=datetime.date(2025, 1, 31), by=superuser)

    payroll = generate_now(payment_plan, cycle, accountant)

    assert payroll.line_count == 1
    assert payroll.left_out_text == ("1 active or suspended beneficiary left out: no live member of the household "
                                     "to pay")
