import pytest
from django.contrib.auth.models import Group

from schemes.plans.approvals import BENEFICIARY_DATA, BENEFICIARY_STATUS
from workflows.models import WorkflowDefinition, WorkflowStep


@pytest.fixture
def beneficiary_approval_off(db):
    """A single beneficiary's plan data and status change at once (their workflows turn approval off)."""
    for operation in (BENEFICIARY_DATA, BENEFICIARY_STATUS):
        WorkflowDefinition.objects.create(operation=operation, requires_approval=False)


@pytest.fixture
def beneficiary_approval_on(db):
    """A single beneficiary's plan data and status change once a Checker approves them."""
    for operation in (BENEFICIARY_DATA, BENEFICIARY_STATUS):
        definition = WorkflowDefinition.objects.create(operation=operation)
        WorkflowStep.objects.create(definition=definition, group=Group.objects.get(name="Checker"), sort_order=0)
