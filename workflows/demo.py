"""Demo approval workflows: edits and deletions of registered people, household member changes, merges, enrolments, plan changes,
plan closings, status changes (of one beneficiary or many), a beneficiary's plan data and file imports need a Checker's approval (payments add theirs: see
schemes/payments/demo.py)."""

from django.contrib.auth.models import Group

from .models import ApprovalRule, WorkflowDefinition, WorkflowStep

DEMO_WORKFLOWS = {
    "registry.change_individual": "A change to a registered person is applied once a checker approves it.",
    "registry.delete_individual": "Deleting a registered person needs a checker's approval.",
    "registry.change_household_members": "A change of a household's members (who heads it, who receives its "
                                         "payments) needs a checker's approval.",
    "plans.enrol": "An enrolment by criteria runs once a checker approves it.",
    "plans.change": "A change to an active plan (criteria, schema, targeting) is a new version once approved.",
    "plans.bulk_status": "A status change of many beneficiaries at once needs a checker's approval.",
    "plans.beneficiary_status": "A status change of one beneficiary (activate, suspend, reinstate, graduate, "
                                "reject) needs a checker's approval.",
    "plans.beneficiary_data": "A change of one beneficiary's plan data (what amount formulas read) needs a "
                              "checker's approval.",
    "plans.close": "Closing a plan (its beneficiaries graduate, potential ones are rejected) needs a checker's "
                   "approval.",
    "bulk.import": "A checked file (people, beneficiaries, locations, reconciliation) is imported once a checker "
                   "approves it.",
    "registry.merge": "Merging two records of one person needs a checker's approval.",
    "registry.unmerge": "Undoing a merge needs a checker's approval.",
}


def ensure_demo_workflows(workflows=None):
    """Create the demo definitions (one Checker step, any one checker) of `workflows` ({operation:
    description}, default DEMO_WORKFLOWS) that do not exist yet; returns the operations created."""
    checkers = Group.objects.get(name="Checker")
    created = []
    for operation, description in (workflows or DEMO_WORKFLOWS).items():
        if WorkflowDefinition.objects.filter(operation=operation).exists():
            continue
        definition = WorkflowDefinition.objects.create(operation=operation, description=description)
        WorkflowStep.objects.create(definition=definition, group=checkers, rule=ApprovalRule.ANY, sort_order=0)
        definition.save_revision(log_action=True)
        created.append(operation)
    return created
