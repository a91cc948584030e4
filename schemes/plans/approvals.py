"""Plan operations that may need approval: enrolment by rule, changes to a plan (a new version),
closing a plan and bulk beneficiary status changes. Checkers see counts, a sample or a diff; the
change runs, once approved, as the maker, through the same services."""

import hashlib
import json
from decimal import Decimal, InvalidOperation

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from schemes.payments.templatetags.payments_money import money
from schemes.registry.approvals import Readers
from schemes.rules.catalogue import NUMBER
from schemes.rules.compiler import to_sql
from schemes.rules.nodes import from_json, to_json
from schemes.rules.text import to_text
from sites.models import Location
from sites.scoping import scope_for
from workflows.models import ApprovalRequest, RequestStatus
from workflows.operations import Operation, Prepared, register

from . import services, targeting
from .catalogues import candidate_catalogue, subjects_for
from .models import (
    LIVE_STATUSES,
    Beneficiary,
    BeneficiaryStatus,
    BenefitPlan,
    HouseholdBeneficiary,
    PlanStatus,
)
from .selectors import beneficiaries_for, household_beneficiaries_for, locations_by_tree, meets_criteria_as


def _plan(payload):
    plan = BenefitPlan.objects.filter(pk=payload.get("plan")).first()
    if plan is None:
        raise PermissionDenied(f"No benefit plan with id {payload.get('plan')}.")
    return plan


# --- enrolment ----------------------------------------------------------------------------------

ENROL_OPERATION = "plans.enrol"
ENROL_GRADUATED = "Graduated earlier, not enrolled again"
ENROL_REJECTED = "Rejected earlier, not enrolled again"


def prepare_enrol(payload, by):
    plan = _plan(payload)
    if payload.get("reenrol"):
        return prepare_reenrol(plan, payload, by)
    if plan.status != PlanStatus.ACTIVE:
        raise ValidationError(f"{plan} is {plan.get_status_display().lower()}: only an active plan enrols.")
    catalogue = candidate_catalogue(plan)
    node = services.criteria_node(payload.get("rule"), catalogue)
    rule = to_json(node)
    scoring = targeting.validate_scoring(payload["scoring"], catalogue) if payload.get("scoring") else None
    amount = _simulated_amount(payload.get("amount"))
    # The enrolment covers the maker's locations: checkers of those locations decide it, and its
    # sample names no one outside them (schemes.registry.approvals.Readers).
    location = scope_for(by).root()
    preview = services.enrolment_preview(plan=plan, rule=rule, target_status=payload.get("target_status"), by=by,
                                         scoring=scoring, readers=Readers(location))
    text = payload.get("text") or (payload["rule"] if isinstance(payload["rule"], str) else to_text(node))
    plan_rule = plan.criteria_text(payload["target_status"])
    status = BeneficiaryStatus(payload["target_status"]).label.lower()  # checked by the preview
    # What the checkers decide on: the rule typed, the plan's own rule for the status (which applies
    # too) and the area, before the counts they produce.
    described = {"Criteria typed": text,
                 f"The plan's rule for {status} beneficiaries (also applies)":
                     plan_rule or "none",
                 "Locations covered": enrolment_area(by)}
    counts = {"Matching the criteria": preview["matching"], "Already enrolled": preview["already_enrolled"],
              ENROL_GRADUATED: preview["graduated_earlier"], ENROL_REJECTED: preview["rejected_earlier"],
              "Would be added": preview["would_add"], "Above the plan's maximum": preview["over_maximum"]}
    sample = [{"id": row["id"], "name": row["summary"]} for row in preview["sample"]]
    if scoring:
        described.update(scoring_described(scoring))
        counts = {"Qualifying by score and criteria": counts.pop("Matching the criteria"), **counts}
        scores = _sample_scores(plan, scoring, catalogue, by, [row["id"] for row in sample])
        sample = [{**row, "score": scores.get(row["id"])} for row in sample]
    if amount is not None:
        # The simulation's estimate, as the maker saw it: what those enrolled and added would cost.
        beneficiaries = preview["already_enrolled"] + preview["would_add"]
        counts.update({"Amount per beneficiary (simulated)": money(amount, plan.currency),
                       "Cost at that amount (enrolled already and added)": money(beneficiaries * amount,
                                                                                 plan.currency)})
    counts = {**described, **counts}
    if not preview["would_add"]:
        raise ValidationError("Nobody would be added: nobody matches, or everyone matching is enrolled already or "
                              "left the plan earlier (graduated or rejected).")
    if preview["over_maximum"]:
        raise ValidationError(f"{preview['over_maximum']:,} more than the plan's maximum would be enrolled: narrow "
                              "the criteria, or raise the maximum first.")
    return Prepared(
        payload={"plan": plan.pk, "rule": rule, "target_status": payload["target_status"], "scoring": scoring,
                 "text": text, "maker": by.pk},
        summary={"title": f"Enrol {preview['would_add']:,} as {status} in {plan}",
                 "diff": [], "sensitive": [], "counts": counts, "sample": sample},
        location=location,
        version=preview["fingerprint"],
    )


def _simulated_amount(value):
    """The amount per beneficiary a simulation's cost was estimated at (schemes.plans.targeting), or None."""
    if value in (None, ""):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite() or amount < 0:
        raise ValidationError({"amount": [f"The amount per beneficiary '{value}' is not an amount of 0 or more."]})
    return amount


def scoring_described(scoring):
    """A scoring (targeting.validate_scoring's) as the checkers read it: the formula, then the cut-offs
    by location in tree order and the default."""
    formula = scoring.get("formula_text") or to_text(from_json(scoring["formula"]))
    cutoffs = scoring.get("cutoffs") or {}
    located = locations_by_tree(Location.objects.filter(pk__in=[int(pk) for pk in cutoffs]))
    default = scoring.get("default_cutoff")
    return {"Score formula (qualify: a score at or below the cut-off)": formula,
            "Cut-offs by location (and the locations within)":
                "; ".join(f"{name}: {services.bound_text(cutoffs[str(location.pk)])}" for location, name in located)
                or "none",
            "Default cut-off (elsewhere)": services.bound_text(default) if default is not None
            else "none: elsewhere nobody qualifies"}


def _sample_scores(plan, scoring, catalogue, by, ids):
    """{id: score as text} of the sample's people or households; masked when the formula reads a
    sensitive field, as the sample's values are (its readers are every checker)."""
    node = targeting.score_node(scoring["formula"], catalogue)
    hidden = any(catalogue[name].sensitive for name in services.fields_read([node]))
    scores = subjects_for(plan, by).filter(pk__in=ids).annotate(score=to_sql(node, catalogue, NUMBER))
    return {pk: services._sample_value(score, hidden=hidden) for pk, score in scores.values_list("pk", "score")}


def enrolment_area(by):
    """The locations an enrolment by `by` covers (their scope), as the checkers read it: "All
    locations", or each of theirs by its place in the tree ("Region A › District A")."""
    scope = scope_for(by)
    if scope.national:
        return "All locations"
    named = [name for _, name in locations_by_tree(Location.objects.filter(path__in=scope.paths))]
    return "; ".join(named) + " (and the locations within)" if named else "None"


def execute_enrol(payload, maker):
    if payload.get("reenrol"):
        enrolled = services.beneficiary_reenrol(beneficiary=_rejected(_plan(payload), payload),
                                                reason=payload.get("reason"), by=maker)
        return {"added": 1, "beneficiary": enrolled.pk}
    added = services.enrolment_execute(plan=_plan(payload), rule=payload["rule"],
                                       target_status=payload["target_status"], by=maker,
                                       scoring=payload.get("scoring"), approval=payload.get("request"))
    return {"added": added}


def _maker(payload):
    return get_user_model().objects.filter(pk=payload.get("maker")).first()


def enrol_version(payload):
    """Who would be enrolled now: if others than the checkers were shown (people registered, enrolled
    or changed meanwhile), the request is void and the maker submits it again."""
    plan, maker = BenefitPlan.objects.filter(pk=payload.get("plan")).first(), _maker(payload)
    if plan is None or maker is None:
        return "gone"
    if payload.get("reenrol"):
        rejected = plan.beneficiary_model.objects.filter(pk=payload["reenrol"], plan=plan).first()
        return services.reenrolment_version(rejected) if rejected else "gone"
    return services.enrolment_fingerprint(plan=plan, rule=payload["rule"], target_status=payload["target_status"],
                                          by=maker, scoring=payload.get("scoring"))


# One rejected person (or household) enrolled again: the same operation, so the checkers of
# enrolments decide it, shown the rejection it corrects.

def _rejected(plan, payload):
    rejected = plan.beneficiary_model.objects.filter(pk=payload.get("reenrol"), plan=plan).first()
    if rejected is None:
        raise PermissionDenied(f"No beneficiary with id {payload.get('reenrol')} in {plan}.")
    return rejected


def rejection_text(rejected):
    """"Rejected on 2026-03-02 by clerk: “Duplicate application”", as the maker and the checkers read it
    (the day in the site's time zone, as every date shown)."""
    by = f" by {rejected.status_changed_by.get_username()}" if rejected.status_changed_by else ""
    return f"Rejected on {timezone.localdate(rejected.status_changed_at):%Y-%m-%d}{by}: “{rejected.reason}”"


def prepare_reenrol(plan, payload, by):
    from .views import beneficiary_namespace  # the views import this module

    rejected = services.reenrolment_check(beneficiary=_rejected(plan, payload), by=by)
    reason = services.reenrolment_reason(payload.get("reason"))
    if ApprovalRequest.objects.filter(operation=ENROL_OPERATION, payload__reenrol=rejected.pk,
                                      status=RequestStatus.PENDING).exists():
        raise ValidationError(f"Enrolling {rejected.subject} again is already waiting for a decision.")
    services.check_reenrolment_fits(plan, rejected)  # refused now, not after the checkers approve
    return Prepared(
        payload={"plan": plan.pk, "reenrol": rejected.pk, "reason": reason, "maker": by.pk},
        summary={"title": f"Enrol {rejected.subject} again in {plan} (rejected earlier)",
                 "diff": [["Enrolment", rejection_text(rejected), "Potential (a new enrolment)"],
                          ["Why enrol again", "—", reason]],
                 "sensitive": [], "counts": {"Would be added": 1},
                 "link": {"url": reverse(f"{beneficiary_namespace(plan)}:inspect", args=[rejected.pk]),
                          "label": "The rejected enrolment"}},
        location=rejected.subject.location,
        version=services.reenrolment_version(rejected),
    )


ENROL = register(Operation(name=ENROL_OPERATION, label="Enrol people in a benefit plan", prepare=prepare_enrol,
                           execute=execute_enrol, version=enrol_version, default_requires_approval=True))


# --- plan changes -------------------------------------------------------------------------------

CHANGE_OPERATION = "plans.change"
DATA_IMPACT_PREFIX = "Data held: "


def prepare_change(payload, by):
    plan = _plan(payload)
    if not by.has_perm("plans.change_benefitplan"):
        raise PermissionDenied("You may not change benefit plans.")
    services.check_plan_changes(plan, by)
    change = {key: payload[key] for key in ("plan_fields", "schema", "cutoffs")}
    diff = services.plan_change_diff(plan, change)
    if not diff:
        raise ValidationError("Nothing would change: no request was made.")
    services.plan_change_check(_plan(payload), change)  # refused now, not after the checkers approve
    # Checkers see what the schema change does to the data beneficiaries hold (nothing is rewritten).
    impact = services.schema_change_impact(plan, change)
    return Prepared(
        payload={"plan": plan.pk, **change},
        summary={"title": f"Change {plan} (a new version)", "diff": diff, "sensitive": [],
                 "counts": {DATA_IMPACT_PREFIX + what: count for what, count in impact.items()}},
        version=services.plan_version(plan),
    )


def change_data_impact(summary):
    """The lines of a `plans.change` summary saying what it does to the data beneficiaries hold, with
    a count above zero."""
    return [f"{what}: {count:,}" for what, count in (summary.get("counts") or {}).items()
            if what.startswith(DATA_IMPACT_PREFIX) and count]


def execute_change(payload, maker):
    plan = services.plan_change(plan=_plan(payload), change=payload, by=maker, approved=True)
    return {"revision": plan.latest_revision_id}


def change_version(payload):
    plan = BenefitPlan.objects.filter(pk=payload.get("plan")).first()
    return services.plan_version(plan) if plan else "gone"


CHANGE = register(Operation(name=CHANGE_OPERATION, label="Change an active benefit plan", prepare=prepare_change,
                            execute=execute_change, version=change_version, default_requires_approval=True))


# --- closing a plan -----------------------------------------------------------------------------

CLOSE_PLAN = "plans.close"


def prepare_close(payload, by):
    plan = _plan(payload)
    services.check_plan_close(plan=plan, by=by)
    if ApprovalRequest.objects.filter(operation=CLOSE_PLAN, payload__plan=plan.pk,
                                      status=RequestStatus.PENDING).exists():
        raise ValidationError(f"The closing of {plan} is already waiting for a decision.")
    counts = services.plan_close_counts(plan)
    graduating = counts[BeneficiaryStatus.ACTIVE] + counts[BeneficiaryStatus.SUSPENDED]
    return Prepared(
        payload={"plan": plan.pk},
        summary={"title": f"Close {plan}: {graduating:,} beneficiaries graduate, "
                          f"{counts[BeneficiaryStatus.POTENTIAL]:,} potential rejected",
                 "diff": [["Status", plan.get_status_display(), PlanStatus.CLOSED.label]], "sensitive": [],
                 "counts": close_counts(counts)},
        version=close_version(payload),
    )


def close_counts(counts):
    """What closing does to the plan's beneficiaries (every location), as the checkers and the maker's
    confirmation page show it."""
    return {
        "Active: graduate": counts[BeneficiaryStatus.ACTIVE],
        "Suspended: graduate": counts[BeneficiaryStatus.SUSPENDED],
        "Potential: rejected (a potential beneficiary cannot graduate)": counts[BeneficiaryStatus.POTENTIAL],
        "Graduated or rejected earlier: unchanged": counts[BeneficiaryStatus.GRADUATED]
        + counts[BeneficiaryStatus.REJECTED],
    }


def execute_close(payload, maker):
    plan = services.plan_close(plan=_plan(payload), by=maker)
    return {"status": plan.status}


def close_version(payload):
    """The plan's status and its beneficiaries by status: void if others would move than the checkers saw."""
    plan = BenefitPlan.objects.filter(pk=payload.get("plan")).first()
    if plan is None:
        return "gone"
    counts = services.plan_close_counts(plan)
    return ":".join([plan.status, *(str(counts[status]) for status in LIVE_STATUSES)])


CLOSE = register(Operation(name=CLOSE_PLAN, label="Close a benefit plan (its beneficiaries leave it)",
                           prepare=prepare_close, execute=execute_close, version=close_version,
                           default_requires_approval=True))


# --- bulk status changes ------------------------------------------------------------------------

def prepare_bulk_status(payload, by):
    plan = _plan(payload)
    action, reason = payload.get("action"), (payload.get("reason") or "").strip()
    statuses, ids = list(payload.get("statuses") or []), list(payload.get("ids") or [])
    services.check_status_action(action, reason)
    preview = services.bulk_status_preview(plan=plan, action=action, by=by, statuses=statuses, ids=ids)
    target = BeneficiaryStatus(preview["target"]).label.lower()
    return Prepared(
        payload={"plan": plan.pk, "action": action, "reason": reason, "statuses": statuses, "ids": ids,
                 "maker": by.pk},
        summary={"title": f"{action.capitalize()} {preview['applies']:,} beneficiaries of {plan}",
                 "diff": [], "sensitive": [],
                 "counts": {"Selected": preview["selected"], f"Would become {target}": preview["applies"],
                            "Left as they are (another status)": preview["selected"] - preview["applies"]},
                 "reason": reason},
        location=scope_for(by).root(),
        version=preview["fingerprint"],
    )


def execute_bulk_status(payload, maker):
    return services.beneficiaries_change_status(
        plan=_plan(payload), action=payload["action"], reason=payload["reason"], by=maker,
        statuses=payload.get("statuses") or (), ids=payload.get("ids") or (), approval=payload.get("request"))


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


# --- one beneficiary: its plan data, its status ---------------------------------------------------
# Both can change what the next payroll pays (an amount formula reads the plan data; only active
# beneficiaries are paid), like the same changes made by a file or for many at once.

BENEFICIARY_DATA = "plans.beneficiary_data"
BENEFICIARY_STATUS = "plans.beneficiary_status"
_BENEFICIARY_MODELS = {model._meta.model_name: model for model in (Beneficiary, HouseholdBeneficiary)}


def _beneficiary(payload, by):
    """The payload's beneficiary, in `by`'s locations (None: any location, the approved change)."""
    model = _BENEFICIARY_MODELS.get(payload.get("model"))
    if model is None:
        raise PermissionDenied(f"'{payload.get('model')}' is not a kind of beneficiary.")
    queryset = model.objects.all() if by is None else (
        household_beneficiaries_for(by) if model is HouseholdBeneficiary else beneficiaries_for(by))
    beneficiary = queryset.select_related("plan", model.SUBJECT).filter(pk=payload.get("beneficiary")).first()
    if beneficiary is None:
        raise PermissionDenied(f"No beneficiary with id {payload.get('beneficiary')} in your locations.")
    return beneficiary


def _beneficiary_link(beneficiary):
    from .views import beneficiary_namespace  # the views import this module

    return {"url": reverse(f"{beneficiary_namespace(type(beneficiary))}:inspect", args=[beneficiary.pk]),
            "label": f"The enrolment of {beneficiary.subject} in {beneficiary.plan}"}


def _refuse_second_beneficiary_request(operation, beneficiary, doing):
    pending = ApprovalRequest.objects.filter(
        operation=operation, payload__model=type(beneficiary)._meta.model_name, payload__beneficiary=beneficiary.pk,
        status=RequestStatus.PENDING).first()
    if pending is not None:
        raise ValidationError(f"Request {pending.pk} ({doing} of {beneficiary.subject}) is already waiting for a "
                              "decision: it must be decided (or cancelled) before another is submitted.")


def _shown(value):
    return "—" if value in (None, "") else str(value)


def prepare_beneficiary_data(payload, by):
    beneficiary, cleaned, changed = services.beneficiary_check_attributes(
        beneficiary=_beneficiary(payload, by), attributes=payload.get("attributes") or {}, by=by)
    if not changed:
        raise ValidationError("Nothing would change: every value is the one already recorded.")
    _refuse_second_beneficiary_request(BENEFICIARY_DATA, beneficiary, "a change of plan data")
    definitions = {definition.name: definition for definition in beneficiary.plan.schema().definitions}
    labels = {name: definitions[name].label if name in definitions else name for name in changed}
    return Prepared(
        payload={"model": type(beneficiary)._meta.model_name, "beneficiary": beneficiary.pk, "attributes": cleaned},
        summary={"title": f"Change the plan data of {beneficiary.subject} in {beneficiary.plan}",
                 "diff": [[labels[name], _shown(beneficiary.attributes.get(name)), _shown(cleaned.get(name))]
                          for name in changed],
                 "sensitive": sorted(labels[name] for name in changed
                                     if name in definitions and definitions[name].sensitive),
                 "link": _beneficiary_link(beneficiary)},
        location=beneficiary.subject.location,
        version=beneficiary_data_version(payload),
    )


def execute_beneficiary_data(payload, maker):
    beneficiary = services.beneficiary_update_attributes(beneficiary=_beneficiary(payload, None),
                                                         attributes=payload["attributes"], by=maker)
    return {"beneficiary": beneficiary.pk}


def beneficiary_data_version(payload):
    """Its plan data now: a request made on other values is void."""
    model = _BENEFICIARY_MODELS.get(payload.get("model"))
    attributes = model.objects.filter(pk=payload.get("beneficiary")).values_list("attributes", flat=True).first() \
        if model else None
    if attributes is None:
        return "gone"
    return hashlib.sha256(json.dumps(attributes, sort_keys=True, default=str).encode()).hexdigest()


BENEFICIARY_DATA_OPERATION = register(Operation(
    name=BENEFICIARY_DATA, label="Change one beneficiary's plan data", prepare=prepare_beneficiary_data,
    execute=execute_beneficiary_data, version=beneficiary_data_version, default_requires_approval=True))


def prepare_beneficiary_status(payload, by):
    action = payload.get("action")
    beneficiary, reason, target = services.beneficiary_check_status(
        beneficiary=_beneficiary(payload, by), action=action, reason=payload.get("reason"), by=by)
    _refuse_second_beneficiary_request(BENEFICIARY_STATUS, beneficiary, "a status change")
    diff = [["Status", beneficiary.get_status_display(), target.label]]
    if reason:
        diff.append(["Reason", _shown(beneficiary.reason), reason])
    counts = {}
    if action == "activate" and meets_criteria_as(beneficiary, BeneficiaryStatus.ACTIVE) is False:
        counts["Meets the plan's criteria for active beneficiaries"] = "No"
    return Prepared(
        payload={"model": type(beneficiary)._meta.model_name, "beneficiary": beneficiary.pk, "action": action,
                 "reason": reason},
        summary={"title": f"{action.capitalize()} {beneficiary.subject} in {beneficiary.plan}", "diff": diff,
                 "sensitive": [], "counts": counts, "reason": reason, "link": _beneficiary_link(beneficiary)},
        location=beneficiary.subject.location,
        version=services.beneficiary_status_version(beneficiary),
    )


def execute_beneficiary_status(payload, maker):
    beneficiary = services.beneficiary_change_status(beneficiary=_beneficiary(payload, None),
                                                     action=payload["action"], reason=payload.get("reason"),
                                                     by=maker)
    return {"beneficiary": beneficiary.pk, "status": beneficiary.status}


def beneficiary_status_version(payload):
    model = _BENEFICIARY_MODELS.get(payload.get("model"))
    beneficiary = model.objects.filter(pk=payload.get("beneficiary")).first() if model else None
    return services.beneficiary_status_version(beneficiary) if beneficiary else "gone"


BENEFICIARY_STATUS_OPERATION = register(Operation(
    name=BENEFICIARY_STATUS, label="Change one beneficiary's status (activate, suspend, reinstate, graduate, "
                                   "reject)",
    prepare=prepare_beneficiary_status, execute=execute_beneficiary_status, version=beneficiary_status_version,
    default_requires_approval=True))
