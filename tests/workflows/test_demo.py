import pytest

from schemes.payments.demo import WORKFLOWS as PAYMENT_WORKFLOWS
from workflows.demo import ensure_demo_workflows
from workflows.models import WorkflowDefinition
from workflows.operations import registered_operations

pytestmark = pytest.mark.django_db


def test_the_demo_can_submit_every_operation_that_needs_approval_by_default():
    # Without a definition such an operation is refused ("No approval workflow is configured"): a demo
    # clerk could not import any file before bulk.import had one.
    ensure_demo_workflows()
    ensure_demo_workflows(PAYMENT_WORKFLOWS)

    defined = set(WorkflowDefinition.objects.filter(steps__isnull=False).values_list("operation", flat=True))
    needing = {operation.name for operation in registered_operations().values()
               if operation.default_requires_approval}
    assert needing - defined == set()


def test_demo_workflows_are_created_once():
    assert "bulk.import" in ensure_demo_workflows()
    assert ensure_demo_workflows() == []
