"""Plan operations that may need approval: enrolment by rule, changes to a plan (a new version) and
bulk beneficiary status changes. Checkers see counts, a sample or a diff; the change runs, once
approved, as the maker, through the same services."""

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError

from schemes.rules.nodes import to_json
from sites.scoping import scope_for
from workflows.operations import Operation, Prepared, register

from . import services, targeting
from .catalogues import candidate_catalogue
from .models import BenefitPlan, PlanStatus


def _plan(payload):
    plan = BenefitPlan.objects.filter(pk=payload.get("plan")).first()
    if plan is None:
        raise PermissionDenied(f"No benefit plan with id {payload.get('plan')}.")
    return plan


# --- enrolment ----------------------------------------------------------------------------------

def prepare_enrol(payload, by):
    plan = _plan(payload)
    if plan.status != PlanStatus.ACTIVE:
        raise ValidationError(f"{plan} is {plan.get_status_display().lower()}: only an active plan enrols.")
    catalogue = candidate_catalogue(plan)
    rule = to_json(services.criteria_node(payload.get("rule"), catalogue))
    scoring = targeting.validate_scoring(payload["scoring"], catalogue) if payload.get("scoring") else None
    preview = services.enrolment_preview(plan=plan, rule=rule, target_status=payload.get("target_status"), by=by,
                                         scoring=scoring)
    counts = {"Matching the criteria": preview["matching"], "Already enrolled": preview["already_enrolled"],
              "Would be added": preview["would_add"], "Above the plan's maximum": preview["over_maximum"]}
    if scoring:
        counts = {"Qualifying by score and criteria": counts.pop("Matching the criteria"), **counts}
    if not preview["would_add"]:
        raise ValidationError("Nobody would be added: everyone matching is enrolled already, or nobody matches.")
    if preview["over_maximum"]:
        raise ValidationError(f"{preview['over_maximum']:,} more than the plan's maximum would be enrolled: narrow "
                              "the criteria, or raise the maximum first.")
    return Prepared(
        payload={"plan": plan.pk, "rule": rule, "target_status": payload["target_status"], "scoring": scoring,
                 "text": payload.get("text") or (payload["rule"] if isinstance(payload["rule"], str) else ""),
                 "maker": by.pk},
        summary={"title": f"Enrol {preview['would_add']:,} as {payload['target_status'].lower()} in {plan}",
                 "diff": [], "sensitive": [], "counts": counts, "sample": preview["sample"]},
        # The enrolment covers the maker's locations: checkers of those locations decide it.
        location=scope_for(by).root(),
        version=preview["fingerprint"],
    )


def execute_enrol(payload, maker):
    added = services.enrolment_execute(plan=_plan(payload), rule=payload["rule"],
                                       target_status=payload["target_status"], by=maker,
                                       scoring=payload.get("scoring"))
    return {"added": added}


def _maker(payload):
    return get_user_model().objects.filter(pk=payload.get("maker")).first()


def enrol_version(payload):
    """Who would be enrolled now: if others than the checkers were shown (people registered, enrolled
    or changed meanwhile), the request is void and the maker submits it again."""
    plan, maker = BenefitPlan.objects.filter(pk=payload.get("plan")).first(), _maker(payload)
    if plan is None or maker is None:
        return "gone"
    return services.enrolment_preview(plan=plan, rule=payload["rule"], target_status=payload["target_status"],
                                      by=maker, scoring=payload.get("scoring"))["fingerprint"]


ENROL = register(Operation(name="plans.enrol", label="Enrol people in a benefit plan", prepare=prepare_enrol,
                           execute=execute_enrol, version=enrol_version, default_requires_approval=True))


# --- plan changes -------------------------------------------------------------------------------

def prepare_change(payload, by):
    plan = _plan(payload)
    if not by.has_perm("plans.change_benefitplan"):
        raise PermissionDenied("You may not change benefit plans.")
    services.check_plan_changes(plan)
    change = {key: payload[key] for key in ("plan_fields", "schema", "cutoffs")}
    diff = services.plan_change_diff(plan, change)
    if not diff:
        raise ValidationError("Nothing would change: no request was made.")
    services.plan_change_check(_plan(payload), change)  # refused now, not after the checkers approve
    return Prepared(
        payload={"plan": plan.pk, **change},
        summary={"title": f"Change {plan} (a new version)", "diff": diff, "sensitive": []},
        version=services.plan_version(plan),
    )


def execute_change(payload, maker):
    plan = services.plan_change(plan=_plan(payload), change=payload, by=maker, approved=True)
    return {"revision": plan.latest_revision_id}


def change_version(payload):
    plan = BenefitPlan.objects.filter(pk=payload.get("plan")).first()
    return services.plan_version(plan) if plan else "gone"


CHANGE = register(Operation(name="plans.change", label="Change an active benefit plan", prepare=prepare_change,
                            execute=execute_change, version=change_version, default_requires_approval=True))


# --- bulk status changes ------------------------------------------------------------------------

def prepare_bulk_status(payload, by):
    plan = _plan(payload)
    action, reason = payload.get("action"), (payload.get("reason") or "").strip()
    statuses, ids = list(payload.get("statuses") or []), list(payload.get("ids") or [])
    services.check_status_action(action, reason)
    preview = services.bulk_status_preview(plan=plan, action=action, by=by, statuses=statuses, ids=ids)
    return Prepared(
        payload={"plan": plan.pk, "action": action, "reason": reason, "statuses": statuses, "ids": ids,
                 "maker": by.pk},
        summary={"title": f"{action.capitalize()} {preview['applies']:,} beneficiaries of {plan}",
                 "diff": [], "sensitive": [],
                 "counts": {"Selected": preview["selected"], f"Would become {preview['target'].lower()}":
                            preview["applies"], "Left as they are (another status)":
                            preview["selected"] - preview["applies"]},
                 "reason": reason},
        location=scope_for(by).root(),
        version=preview["fingerprint"],
    )


def execute_bulk_status(payload, maker):
    return services.beneficiaries_change_status(
        plan=_plan(payload), action=payload["action"], reason=payload["reason"], by=maker,
        statuses=payload.get("statuses") or (), ids=payload.get("ids") or ())


def bulk_status_version(payload):
    """Which beneficiaries the change would move now: void if others than the checkers were shown."""
    plan, maker = BenefitPlan.objects.filter(pk=payload.get("plan")).first(), _maker(payload)
    if plan is None or maker is None:
        return "gone"
    return services.bulk_status_preview(plan=plan, action=payload["action"], by=maker,
                                        statuses=payload.get("statuses") or (), ids=payload.get("ids") or ())[
        "fingerprint"]


BULK_STATUS = register(Operation(name="plans.bulk_status", label="Change the status of many beneficiaries",
                                 prepare=prepare_bulk_status, execute=execute_bulk_status,
                                 version=bulk_status_version, default_requires_approval=True))
