"""Demo approval workflows: edits and deletions of registered people, enrolments, plan changes and bulk
status changes need a Checker's approval."""

from django.contrib.auth.models import Group

from .models import ApprovalRule, WorkflowDefinition, WorkflowStep

DEMO_WORKFLOWS = {
    "registry.change_individual": "A change to a registered person is applied once a checker approves it.",
    "registry.delete_individual": "Deleting a registered person needs a checker's approval.",
    "plans.enrol": "An enrolment by criteria runs once a checker approves it.",
    "plans.change": "A change to an active plan (criteria, schema, targeting) is a new version once approved.",
    "plans.bulk_status": "A status change of many beneficiaries at once needs a checker's approval.",
}


def ensure_demo_workflows():
    """Create the demo definitions that do not exist yet; returns how many were created."""
    checkers = Group.objects.get(name="Checker")
    created = 0
    for operation, description in DEMO_WORKFLOWS.items():
        if WorkflowDefinition.objects.filter(operation=operation).exists():
            continue
        definition = WorkflowDefinition.objects.create(operation=operation, description=description)
        WorkflowStep.objects.create(definition=definition, group=checkers, rule=ApprovalRule.ANY, sort_order=0)
        definition.save_revision(log_action=True)
        created += 1
    return created
