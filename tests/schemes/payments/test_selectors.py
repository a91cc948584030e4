"""Payment selectors: totals broken down at the level just below the viewer's own locations."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from schemes.payments import selectors, services
from schemes.payments.models import PaymentCycle, PaymentPoint, Payroll, PayrollTotal
from sites.scoping import scope_for
from tests.factories import UserFactory
from tests.schemes.payments.conftest import enrol, household_of
from tests.sql import assert_no_not_in_subquery

pytestmark = pytest.mark.django_db


def test_a_national_user_sees_totals_per_region_not_per_village(approved_payroll, accountant, geo):
    assert scope_for(accountant).breakdown_depth() == 1
    assert selectors.totals_by_location(approved_payroll, accountant) == [
        {"location": geo.region.name, "status": "DUE", "label": "Still due", "lines": 4, "total": Decimal("3400.00")}]


def test_a_district_user_sees_their_districts_next_level(approved_payroll, geo):
    district_b = UserFactory(role="Accountant", locations=[geo.district_b])

    assert scope_for(district_b).breakdown_depth() == 3
    assert selectors.totals_by_location(approved_payroll, district_b) == [
        {"location": geo.ward_b.name, "status": "DUE", "label": "Still due", "lines": 1, "total": Decimal("600.00")}]


@pytest.fixture
def unplaced(people, benefit_plan):
    """A single person registered without a location, enrolled before the payroll is generated (600)."""
    return enrol(benefit_plan, household_of(1, location=None))


def test_lines_without_a_location_come_last(unplaced, approved_payroll, accountant, geo):
    assert selectors.totals_by_location(approved_payroll, accountant) == [
        {"location": geo.region.name, "status": "DUE", "label": "Still due", "lines": 4, "total": Decimal("3400.00")},
        {"location": "", "status": "DUE", "label": "Still due", "lines": 1, "total": Decimal("600.00")}]


def test_the_diff_counts_by_anti_joins(approved_payroll, payment_plan, cycles, accountant,
                                       django_capture_on_commit_callbacks):
    following = PaymentCycle.objects.get(code="CG-2025-03")
    with django_capture_on_commit_callbacks(execute=True):
        payroll = services.payroll_generate_start(payment_plan=payment_plan, cycle=following, by=accountant)

    with CaptureQueriesContext(connection) as captured:
        diff = selectors.payroll_diff(Payroll.objects.get(pk=payroll.pk), accountant, sample=5)

    assert diff["previous"] == approved_payroll and (diff["new"], diff["removed"]) == (0, 0)
    assert_no_not_in_subquery(captured)  # two payrolls of a million lines


def test_sums_of_amounts_are_to_the_cent_whatever_the_database_adds_them_in(accountant, payment_plan, cycles, geo):
    """SQLite adds amounts in binary floating point (0.10 + 0.20 is 0.30000000000000004 there): the totals
    a payroll's screens show are money again, to the cent."""
    payroll = Payroll.objects.create(name="sums", payment_plan=payment_plan, cycle=cycles[1],
                                     parameters={"currency": "TZS"})
    for location, amount in ((geo.village_a, "0.10"), (geo.village_b, "0.20")):
        PayrollTotal.objects.create(payroll=payroll, location=location, status="DUE", flagged_over_limit=True,
                                    lines=1, amount=Decimal(amount))

    by_status = selectors.totals_by_status(payroll, accountant)
    flagged = selectors.over_limit(selectors.totals_for(accountant, payroll))

    assert [str(row["total"]) for row in by_status] == ["0.30"]
    assert str(flagged["total"]) == "0.30"
    assert [str(row["total"]) for row in selectors.totals_by_location(payroll, accountant)] == ["0.30"]


def test_overlapping_points_are_paired_covering_first(geo, superuser):
    provider = services.provider_create(fields={"code": "BANK", "name": "Bank"}, by=superuser)

    def point(code, location):
        return PaymentPoint.objects.create(code=code, name=code, provider=provider, location=location)

    for code, location in (("R", geo.region), ("V", geo.village_a), ("V2", geo.village_a)):
        point(code, location)
    ward, other = point("W", geo.ward_a), point("B", geo.village_b)

    pairs = {(covering.code, covered.code) for covering, covered in selectors.overlapping_points(
        PaymentPoint.objects.all())}

    assert pairs == {("R", "W"), ("R", "V"), ("R", "V2"), ("R", "B"), ("W", "V"), ("W", "V2"), ("V", "V2")}
    assert selectors.overlapping_points(PaymentPoint.objects.filter(pk__in=[ward.pk, other.pk])) == []


# --- what closing a benefit plan leaves open; the cycles a payment plan can be paid in ----------------


def test_payrolls_left_open_are_the_plans_payrolls_to_submit_or_waiting(approved_payroll, payment_plan, accountant,
                                                                        superuser, payroll_workflow,
                                                                        django_capture_on_commit_callbacks):
    later, latest = PaymentCycle.objects.get(code="CG-2025-03"), PaymentCycle.objects.get(code="CG-2025-05")
    with django_capture_on_commit_callbacks(execute=True):
        to_submit = services.payroll_generate_start(payment_plan=payment_plan, cycle=later, by=accountant)
        waiting = services.payroll_generate_start(payment_plan=payment_plan, cycle=latest, by=accountant)
    services.payroll_submit(payroll=Payroll.objects.get(pk=waiting.pk), by=accountant)

    assert list(selectors.payrolls_left_open(payment_plan.benefit_plan)) == [
        Payroll.objects.get(pk=to_submit.pk), Payroll.objects.get(pk=waiting.pk)]  # not the approved one


@pytest.fixture
def monthly_plan(benefit_plan, superuser):
    return services.payment_plan_create(fields={
        "code": "CG-MONTHLY", "name": "Child grant monthly", "benefit_plan": benefit_plan, "formula": "100",
        "periodicity": 1, "currency": "TZS", "target_statuses": ["ACTIVE"]}, by=superuser)


def test_a_payment_plan_is_offered_only_the_cycles_of_its_periodicity_by_date(monthly_plan, cycles, superuser):
    import datetime

    monthly = services.cycle_schedule_generate(prefix="EG", first_start=datetime.date(2025, 1, 31), periodicity=1,
                                               count=4, by=superuser)
    odd = services.cycle_create(code="ODD", start_date=datetime.date(2025, 1, 1),
                                end_date=datetime.date(2025, 1, 20), by=superuser)

    offered = list(selectors.cycles_to_pay(superuser, monthly_plan))

    assert offered == monthly  # 31 Jan to 27 Feb, 28 Feb to 30 Mar...: months, whichever day they start
    assert not set(offered) & set(cycles) and odd not in offered  # two-month cycles, a cycle of 20 days


def test_closed_cycles_paid_ones_and_those_outside_the_plans_validity_are_not_offered(
        payment_plan, cycles, people, accountant, superuser, django_capture_on_commit_callbacks):
    import datetime

    first, second, third = cycles
    with django_capture_on_commit_callbacks(execute=True):
        services.payroll_generate_start(payment_plan=payment_plan, cycle=first, by=accountant)
    services.cycle_change_status(cycle=third, action="open", by=superuser)
    services.cycle_change_status(cycle=third, action="close", by=superuser)

    assert list(selectors.cycles_to_pay(accountant, payment_plan)) == [second]
    assert list(selectors.cycles_to_pay(accountant, payment_plan, unpaid_only=False)) == [first, second]
    payment_plan.benefit_plan.valid_to = datetime.date(2025, 2, 28)
    payment_plan.benefit_plan.save()
    assert list(selectors.cycles_to_pay(accountant, payment_plan)) == []


def test_the_nearest_open_cycle_is_preselected(cycles, superuser):
    import datetime

    first, second, third = cycles
    assert selectors.nearest_open_cycle(cycles, datetime.date(2025, 3, 10)) == second  # none open: the one to come
    for cycle in (first, third):
        services.cycle_change_status(cycle=cycle, action="open", by=superuser)
    cycles = list(PaymentCycle.objects.filter(pk__in=[c.pk for c in cycles]).order_by("start_date"))

    assert selectors.nearest_open_cycle(cycles, datetime.date(2025, 5, 15)) == third  # open, and today in it
    assert selectors.nearest_open_cycle(cycles, datetime.date(2025, 3, 10)) == third  # the open one nearest
