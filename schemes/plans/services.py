"""Changes to plans and beneficiaries. Enrolment is one INSERT ... SELECT compiled from the rules AST."""

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django_fsm import has_transition_perm

from schemes.registry.selectors import individuals_for
from schemes.rules.catalogue import individual_catalogue
from schemes.rules.compiler import compile_rule, to_sql
from schemes.rules.errors import RuleError
from schemes.rules.nodes import from_json, to_json
from sites.audit import audit
from sites.scoping import scope_for

from .models import LIVE_STATUSES, Beneficiary, BeneficiaryStatus, BenefitPlan, PlanStatus

ENROL_TARGETS = (BeneficiaryStatus.POTENTIAL, BeneficiaryStatus.ACTIVE)
SAMPLE_SIZE = 10


def _require_permission(user, permission):
    if not user.has_perm(permission):
        raise PermissionDenied(f"You do not have the permission '{permission}'.")


def criteria_node(rule, catalogue):
    """A rule given as text or as its JSON AST, checked to give yes/no."""
    try:
        node = from_json(rule) if isinstance(rule, dict) else rule
        return compile_rule(node, catalogue, expect="boolean")
    except RuleError as error:
        raise ValidationError({"criteria": [str(error)]}) from None


def enrolment_candidates(*, plan, rule, by, catalogue=None):
    """(matching, candidates): people in the user's locations who meet the rule, and those of them
    not enrolled in the plan yet."""
    catalogue = catalogue or individual_catalogue()
    node = criteria_node(rule, catalogue)
    matching = individuals_for(by).filter(to_sql(node, catalogue))
    enrolled = Beneficiary.objects.filter(plan=plan, status__in=LIVE_STATUSES).values("individual_id")
    return matching, matching.exclude(pk__in=enrolled)


def enrolment_preview(*, plan, rule, target_status, by):
    """Counts and a sample before anything is submitted."""
    _require_permission(by, "plans.add_beneficiary")
    if target_status not in ENROL_TARGETS:
        raise ValidationError({"target_status": [f"Enrol as {' or '.join(ENROL_TARGETS)}."]})
    matching, candidates = enrolment_candidates(plan=plan, rule=rule, by=by)
    matching_count = matching.count()
    to_add = candidates.count()
    over = 0
    if plan.max_beneficiaries is not None:
        over = max(0, plan.live_beneficiaries + to_add - plan.max_beneficiaries)
    return {
        "matching": matching_count,
        "already_enrolled": matching_count - to_add,
        "would_add": to_add,
        "over_maximum": over,
        "sample": [{"id": p.pk, "name": str(p)} for p in candidates.order_by("pk")[:SAMPLE_SIZE]],
    }


def enrolment_execute(*, plan, rule, target_status, by):
    """Enrol everyone the rule selects (in `by`'s locations) in one statement. All or nothing: above
    the plan's maximum the database refuses the count and nothing is enrolled. Who enrolled them is
    in the plan's audit entry, not on each row (a per-row user reference costs a check per row)."""
    _require_permission(by, "plans.add_beneficiary")
    if target_status not in ENROL_TARGETS:
        raise ValidationError({"target_status": [f"Enrol as {' or '.join(ENROL_TARGETS)}."]})
    with transaction.atomic():
        plan = BenefitPlan.objects.select_for_update().get(pk=plan.pk)
        if plan.status != PlanStatus.ACTIVE:
            raise ValidationError(f"{plan} is {plan.get_status_display().lower()}: only an active plan enrols.")
        _, candidates = enrolment_candidates(plan=plan, rule=rule, by=by)
        select_sql, params = candidates.order_by().values(candidate_id=F("pk")).query.sql_with_params()
        now = timezone.now()
        table = connection.ops.quote_name(Beneficiary._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (plan_id, individual_id, status, attributes, reason, enrolled_at, "
                f"status_changed_at, status_changed_by_id) "
                f"SELECT %s, candidate.candidate_id, %s, %s, '', %s, %s, NULL FROM ({select_sql}) candidate",
                [plan.pk, target_status, "{}", now, now, *params],
            )
            added = cursor.rowcount
        try:
            with transaction.atomic():
                BenefitPlan.objects.filter(pk=plan.pk).update(live_beneficiaries=F("live_beneficiaries") + added)
        except IntegrityError:
            raise ValidationError(
                f"Enrolling {added:,} would take {plan} above its maximum of {plan.max_beneficiaries:,}; "
                "nothing was enrolled.") from None
        audit(plan, "mizani.enrol", by=by, data={"added": added, "status": target_status,
                                                  "criteria": rule if isinstance(rule, dict) else str(rule)})
    return added


@transaction.atomic
def plan_close(*, plan, by):
    """Close an active plan: its remaining beneficiaries leave it in one statement per status, along
    the transitions' own paths (active or suspended graduate; potential ones are rejected)."""
    _require_permission(by, "plans.change_benefitplan")
    plan = BenefitPlan.objects.select_for_update().get(pk=plan.pk)
    plan.close()
    now = timezone.now()
    live = Beneficiary.objects.filter(plan=plan)
    graduated = live.filter(status__in=[BeneficiaryStatus.ACTIVE, BeneficiaryStatus.SUSPENDED]).update(
        status=BeneficiaryStatus.GRADUATED, reason="The plan was closed.", status_changed_at=now,
        status_changed_by=by)
    rejected = live.filter(status=BeneficiaryStatus.POTENTIAL).update(
        status=BeneficiaryStatus.REJECTED, reason="The plan was closed.", status_changed_at=now,
        status_changed_by=by)
    plan.live_beneficiaries = 0
    plan.save()
    audit(plan, "mizani.plan_status", by=by, data={"status": plan.status, "graduated": graduated,
                                                    "rejected": rejected})
    return plan


@transaction.atomic
def plan_activate(*, plan, by):
    _require_permission(by, "plans.change_benefitplan")
    plan = BenefitPlan.objects.select_for_update().get(pk=plan.pk)
    plan.activate()
    plan.save()
    audit(plan, "mizani.plan_status", by=by, data={"status": plan.status})
    return plan


# --- beneficiary statuses ---------------------------------------------------------------------

REASON_REQUIRED = {"suspend", "graduate", "reject"}
LEAVING = {"graduate", "reject"}  # the beneficiary stops counting towards the plan's maximum


@transaction.atomic
def beneficiary_change_status(*, beneficiary, action, reason="", by):
    """Move one beneficiary through a transition (activate, suspend, reinstate, graduate, reject)."""
    beneficiary = Beneficiary.objects.select_for_update().select_related("individual", "plan").get(pk=beneficiary.pk)
    if not scope_for(by).allows(beneficiary.individual.location):
        raise Beneficiary.DoesNotExist(f"No beneficiary with id {beneficiary.pk}.")
    transition = getattr(beneficiary, action, None) if action in (
        "activate", "suspend", "reinstate", "graduate", "reject") else None
    if transition is None:
        raise ValidationError(f"'{action}' is not a beneficiary status change.")
    allowed = [t.name for t in beneficiary.get_available_status_transitions()]
    if action not in allowed:
        raise ValidationError(f"A {beneficiary.get_status_display().lower()} beneficiary can "
                              f"{' or '.join(allowed) if allowed else 'no longer change status'}, not {action}.")
    if not has_transition_perm(transition, by):
        raise PermissionDenied("You may not change beneficiary statuses.")
    reason = (reason or "").strip()
    if action in REASON_REQUIRED and not reason:
        raise ValidationError({"reason": [f"Say why ({action})."]})
    before = beneficiary.status
    if action in REASON_REQUIRED:
        transition(reason)
    else:
        transition()
    beneficiary.status_changed_at = timezone.now()
    beneficiary.status_changed_by = by
    beneficiary.save()
    if action in LEAVING:
        BenefitPlan.objects.filter(pk=beneficiary.plan_id).update(live_beneficiaries=F("live_beneficiaries") - 1)
    audit(beneficiary, "mizani.beneficiary_status", by=by, data={"from": before, "to": beneficiary.status,
                                                                 "reason": reason})
    return beneficiary


def rule_json(text, catalogue=None):
    """Text of a rule as its stored JSON form (checked)."""
    return to_json(criteria_node(text, catalogue or individual_catalogue()))
