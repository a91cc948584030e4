"""Dashboards fixtures: the payments world of tests/schemes/payments (beneficiaries in districts A
and B, an approved payroll), managers and accountants of each district, and an empty metrics cache."""

import pytest
from django.core.cache import cache

from schemes.payments import services
from schemes.payments.models import Payroll
from tests.factories import UserFactory
from tests.schemes.payments import conftest as payments
from workflows.services import approval_decide

# The payments world's fixtures, shared (pytest finds fixtures by name in this module).
accountant, benefit_plan, checkers, cycle, cycles, payment_plan, payroll_workflow, people = (
    payments.accountant, payments.benefit_plan, payments.checkers, payments.cycle, payments.cycles,
    payments.payment_plan, payments.payroll_workflow, payments.people)


@pytest.fixture(autouse=True)
def empty_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def manager_a(geo):
    return UserFactory(username="manager_a", role="Manager", locations=[geo.district_a])


@pytest.fixture
def manager_b(geo):
    return UserFactory(username="manager_b", role="Manager", locations=[geo.district_b])


@pytest.fixture
def accountant_a(geo):
    return UserFactory(username="accountant_a", role="Accountant", locations=[geo.district_a])


@pytest.fixture
def accountant_b(geo):
    return UserFactory(username="accountant_b", role="Accountant", locations=[geo.district_b])


@pytest.fixture
def approved_payroll(payment_plan, cycle, people, accountant, checkers, payroll_workflow,
                     django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        payroll = services.payroll_generate_start(payment_plan=payment_plan, cycle=cycle, by=accountant)
    with django_capture_on_commit_callbacks(execute=True):
        request = services.payroll_submit(payroll=Payroll.objects.get(pk=payroll.pk), by=accountant)
    with django_capture_on_commit_callbacks(execute=True):
        approval_decide(request=request, verdict="approve", by=checkers[0][0])
    return Payroll.objects.get(pk=payroll.pk)
