"""Payments fixtures: an active individual plan in district A and B, its payment plan, cycles, and an
accountant (national scope) with checkers to decide."""

import datetime
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group

from schemes.payments import services
from schemes.payments.models import PaymentCycle
from schemes.plans.models import Beneficiary, BenefitPlan
from tests.factories import HouseholdFactory, IndividualFactory, MembershipFactory, UserFactory
from workflows.models import ApprovalRule, WorkflowDefinition, WorkflowStep

FORMULA = "500 + (200 if children_under_5 > 0 else 0) + 100 * min(household_size, 4)"
CYCLE_START = datetime.date(2025, 1, 1)


@pytest.fixture
def accountant(db):
    return UserFactory(username="accountant", role="Accountant", national=True)


@pytest.fixture
def checkers(db):
    group = Group.objects.get(name="Checker")
    return [UserFactory(username=f"checker{n}", role="Checker", national=True) for n in (1, 2)], group


@pytest.fixture
def payroll_workflow(checkers):
    """One checker approves payrolls below 1,000,000; from there, two."""
    _users, group = checkers
    small = WorkflowDefinition.objects.create(operation="payments.approve_payroll", min_total=0)
    WorkflowStep.objects.create(definition=small, group=group, rule=ApprovalRule.ANY)
    large = WorkflowDefinition.objects.create(operation="payments.approve_payroll",
                                              min_total=Decimal("1000000"))
    WorkflowStep.objects.create(definition=large, group=group, rule=ApprovalRule.ALL)
    return small, large


@pytest.fixture
def benefit_plan(db):
    plan = BenefitPlan.objects.create(code="CG", name="Child grant", currency="TZS")
    plan.activate()
    plan.save()
    return plan


def household_of(size, *, location, under_5=0):
    """A household of `size` people (`under_5` of them small children); returns its head."""
    household = HouseholdFactory(location=location)
    members = []
    for number in range(size):
        dob = datetime.date(2024, 6, 1) if number >= size - under_5 else datetime.date(1985, 1, 1)
        person = IndividualFactory(dob=dob, location=location)
        MembershipFactory(household=household, individual=person,
                          role_id="HEAD" if number == 0 else "SON")
        members.append(person)
    return members[0]


def enrol(plan, person, status="ACTIVE"):
    from django.utils import timezone

    now = timezone.now()
    return Beneficiary.objects.create(plan=plan, individual=person, status=status, enrolled_at=now,
                                      status_changed_at=now)


@pytest.fixture
def people(geo, member_roles, benefit_plan):
    """Four active beneficiaries (three in district A, one in B) and one suspended. The formula pays
    "three" 800, "five_with_baby" 500 + 200 + 400 = 1100 (above the 1000 limit: flagged), "six" 900
    (size capped at 4), "single_b" 600: 3400 in all; the suspended one nothing."""
    heads = {
        "three": household_of(3, location=geo.village_a),
        "five_with_baby": household_of(5, location=geo.village_a, under_5=1),
        "six": household_of(6, location=geo.village_a),
        "single_b": household_of(1, location=geo.village_b),
        "suspended": household_of(2, location=geo.village_a),
    }
    beneficiaries = {name: enrol(benefit_plan, head, "SUSPENDED" if name == "suspended" else "ACTIVE")
                     for name, head in heads.items()}
    return beneficiaries


@pytest.fixture
def payment_plan(benefit_plan, superuser):
    return services.payment_plan_create(fields={
        "code": "CG-PAY", "name": "Child grant payments", "benefit_plan": benefit_plan, "formula": FORMULA,
        "ceiling_per_beneficiary": Decimal("1200.00"), "limit_per_transaction": Decimal("1000.00"),
        "periodicity": 2, "currency": "TZS", "target_statuses": ["ACTIVE"]}, by=superuser)


@pytest.fixture
def cycles(superuser):
    return services.cycle_schedule_generate(prefix="CG", first_start=CYCLE_START, periodicity=2, count=3,
                                            by=superuser)


@pytest.fixture
def cycle(cycles):
    return PaymentCycle.objects.get(code="CG-2025-01")



@pytest.fixture
def approved_payroll(payment_plan, cycle, people, accountant, checkers, payroll_workflow,
                     django_capture_on_commit_callbacks):
    """The cycle's payroll, generated and approved by a checker (lines: three 800 and six 900 in
    district A, five_with_baby 1100 in A above the limit and not released, single_b 600 in B)."""
    from schemes.payments.models import Payroll
    from workflows.services import approval_decide

    with django_capture_on_commit_callbacks(execute=True):
        payroll = services.payroll_generate_start(payment_plan=payment_plan, cycle=cycle, by=accountant)
    with django_capture_on_commit_callbacks(execute=True):
        request = services.payroll_submit(payroll=Payroll.objects.get(pk=payroll.pk), by=accountant)
    with django_capture_on_commit_callbacks(execute=True):
        approval_decide(request=request, verdict="approve", by=checkers[0][0])
    return Payroll.objects.get(pk=payroll.pk)


def line_of(payroll, beneficiary):
    from schemes.payments.models import PaymentLine

    return PaymentLine.objects.get(payroll=payroll, beneficiary_id=beneficiary.pk)
