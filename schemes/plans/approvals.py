"""Enrolment by rule as an approval operation: the checker sees the counts and a sample; the
enrolment runs, once approved, as the maker, in the job that applies the request."""

from django.core.exceptions import PermissionDenied

from schemes.rules.catalogue import individual_catalogue
from schemes.rules.nodes import to_json
from sites.scoping import scope_for
from workflows.operations import Operation, Prepared, register

from . import services
from .models import BenefitPlan


def _plan(payload):
    plan = BenefitPlan.objects.filter(pk=payload.get("plan")).first()
    if plan is None:
        raise PermissionDenied(f"No benefit plan with id {payload.get('plan')}.")
    return plan


def prepare(payload, by):
    plan = _plan(payload)
    catalogue = individual_catalogue()
    rule = to_json(services.criteria_node(payload.get("rule"), catalogue))
    preview = services.enrolment_preview(plan=plan, rule=rule, target_status=payload.get("target_status"), by=by)
    return Prepared(
        payload={"plan": plan.pk, "rule": rule, "target_status": payload["target_status"],
                 "text": payload.get("text") or (payload["rule"] if isinstance(payload["rule"], str) else "")},
        summary={"title": f"Enrol {preview['would_add']:,} as {payload['target_status'].lower()} in {plan}",
                 "diff": [], "sensitive": [],
                 "counts": {"Matching the criteria": preview["matching"],
                            "Already enrolled": preview["already_enrolled"],
                            "Would be added": preview["would_add"],
                            "Above the plan's maximum": preview["over_maximum"]},
                 "sample": preview["sample"]},
        # The enrolment covers the maker's locations: checkers of those locations decide it.
        location=scope_for(by).root(),
    )


def execute(payload, maker):
    added = services.enrolment_execute(plan=_plan(payload), rule=payload["rule"],
                                       target_status=payload["target_status"], by=maker)
    return {"added": added}


def version(payload):
    """The enrolment is computed again when it runs (whoever meets the rule then, not yet enrolled),
    so nothing the approvers saw can go stale in a way that would make it wrong: never void."""
    return ""


ENROL = register(Operation(name="plans.enrol", label="Enrol people in a benefit plan", prepare=prepare,
                           execute=execute, version=version, default_requires_approval=True))
