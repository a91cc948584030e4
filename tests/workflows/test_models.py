"""Workflow steps refuse, when saved, what no request could ever complete."""

import pytest
from django.core.exceptions import ValidationError

from tests.factories import UserFactory
from workflows.models import ApprovalRule, WorkflowDefinition, WorkflowStep

from .conftest import CHANGE_INDIVIDUAL

pytestmark = pytest.mark.django_db


def step_errors(definition, group, rule, count=None):
    """The validation errors of a step ({field: [messages]}), {} when it may be saved."""
    try:
        WorkflowStep(definition=definition, group=group, rule=rule, count=count).full_clean()
    except ValidationError as error:
        return error.message_dict
    return {}


@pytest.fixture
def definition(make_workflow):
    return make_workflow(CHANGE_INDIVIDUAL)


def test_a_step_asking_more_approvals_than_its_group_has_members_is_refused(definition, checker_group, checker_1,
                                                                           checker_2):
    errors = step_errors(definition, checker_group, ApprovalRule.COUNT, 5)

    assert errors == {"count": ["'Checker' has 2 active member(s): this step could never get 5 approvals."]}
    assert step_errors(definition, checker_group, ApprovalRule.COUNT, 2) == {}
    assert step_errors(definition, checker_group, ApprovalRule.ALL) == {}


def test_inactive_members_do_not_count(definition, checker_group, checker_1, checker_2):
    checker_2.is_active = False
    checker_2.save()

    assert "1 active member(s)" in step_errors(definition, checker_group, ApprovalRule.COUNT, 2)["count"][0]


@pytest.mark.parametrize("rule", [ApprovalRule.ANY, ApprovalRule.ALL])
def test_a_step_whose_group_has_no_active_member_is_refused(definition, checker_group, rule, geo):
    UserFactory(username="gone", role="Checker", locations=[geo.district_a], is_active=False)

    assert step_errors(definition, checker_group, rule) == {
        "group": ["'Checker' has no active members: nobody could approve this step."]}


def test_an_amount_band_is_refused_on_an_operation_without_totals_and_below_zero(fake_operation):
    without_total, _ = fake_operation(carries_total=False)
    with_total, _ = fake_operation()

    def band_errors(operation, min_total):
        try:
            WorkflowDefinition(operation=operation, min_total=min_total).full_clean()
        except ValidationError as error:
            return error.message_dict
        return {}

    assert list(band_errors(without_total, 700)) == ["min_total"]
    assert list(band_errors(with_total, -10)) == ["min_total"]
    assert band_errors(without_total, 0) == band_errors(with_total, 700) == {}


def test_the_operations_carrying_a_total_are_the_payrolls():
    """Amount bands select a workflow by a request's total: only these operations have one."""
    from workflows.operations import registered_operations

    operations = registered_operations()
    assert {name for name in ("payments.approve_payroll", "payments.release_over_limit", "payments.close_payroll",
                              "plans.enrol", "plans.bulk_status", "bulk.import") if operations[name].carries_total} == {
        "payments.approve_payroll", "payments.release_over_limit", "payments.close_payroll"}
