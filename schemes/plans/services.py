"""Changes to plans and beneficiaries. Enrolment is one INSERT ... SELECT compiled from the rules AST."""

import dataclasses
import datetime
import json
from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Exists, F, OuterRef, Sum
from django.db.models.fields.json import KeyTransform
from django.utils import timezone

from schemes.registry.selectors import YOUR_LOCATIONS, household_named, person_named
from schemes.rules.compiler import compile_rule, to_sql
from schemes.rules.errors import RuleError
from schemes.rules.nodes import FieldRef, Node, from_json
from sites.audit import audit, audit_many
from sites.fields import checks_changed, checks_text, places_text, values_refused, without_anchors
from sites.masking import can_view_sensitive, mask
from sites.models import Location
from sites.refusals import require_permission
from sites.scoping import scope_for
from workflows.models import Decision, Verdict

from . import targeting
from .catalogues import candidate_catalogue, subjects_for
from .models import LIVE_STATUSES, BeneficiaryStatus, BenefitPlan, PlanStatus, PlanType
from .selectors import locations_by_tree

ENROL_TARGETS = (BeneficiaryStatus.POTENTIAL, BeneficiaryStatus.ACTIVE)
SAMPLE_SIZE = 10


def criteria_node(rule, catalogue):
    """A rule given as text or as its JSON AST, checked to give yes/no."""
    try:
        node = from_json(rule) if isinstance(rule, dict) else rule
        return compile_rule(node, catalogue, expect="boolean")
    except RuleError as error:
        raise ValidationError({"criteria": [str(error)]}) from None


def status_rule(plan, status, catalogue):
    """The plan's own rule for `status` beneficiaries (its criteria for potential or for active ones),
    compiled over `catalogue`; None where the plan has none. A rule that no longer checks (a field it
    names was deleted since) refuses the enrolment rather than being skipped."""
    entry = (plan.criteria or {}).get(status)
    if not entry:
        return None
    try:
        return compile_rule(from_json(entry["rule"]), catalogue, expect="boolean")
    except RuleError as error:
        raise ValidationError(f"The plan's rule for {BeneficiaryStatus(status).label.lower()} beneficiaries no "
                              f"longer checks: {error.message} Edit the plan to correct it.") from None


def status_rule_text(plan, status):
    """"The plan's rule for active beneficiaries also applies: <text>", or "" where it has none."""
    text = plan.criteria_text(status)
    return (f"The plan's rule for {BeneficiaryStatus(status).label.lower()} beneficiaries also applies: {text}"
            if text else "")


def enrolment_candidates(*, plan, rule, target_status, by, scoring=None):
    """(matching, candidates): people or households (by plan type) in the user's locations who meet
    the rule and the plan's own rule for `target_status` (where it has one: enrolling as active must
    not bypass the plan's rule for active beneficiaries), and, with `scoring`, qualify by score (see
    targeting); and those of them never enrolled in the plan. Whoever graduated (terminal) or was
    rejected stays out: enrolment by criteria does not bring them back."""
    catalogue = candidate_catalogue(plan)
    node = criteria_node(rule, catalogue)
    matching = subjects_for(plan, by).filter(to_sql(node, catalogue))
    plan_rule = status_rule(plan, target_status, catalogue)
    if plan_rule is not None:
        matching = matching.filter(to_sql(plan_rule, catalogue))
    if scoring:
        matching = targeting.qualifying(matching, plan=plan, scoring=scoring, catalogue=catalogue)
    return matching, matching.exclude(_enrolment_of(plan))


def _enrolment_of(plan, statuses=()):
    """EXISTS: the outer person (or household) has an enrolment in `plan` (in one of `statuses`, or
    in any). Filtered or excluded on, it is a semi- or anti-join: not NOT IN, which a plan's million
    enrolments would turn into a scan per candidate."""
    model = plan.beneficiary_model
    rows = model.objects.filter(plan=plan, **{model.SUBJECT: OuterRef("pk")})
    return Exists(rows.filter(status__in=statuses) if statuses else rows)


def enrolment_standing(plan, subjects):
    """How `subjects` (people or households of the plan's type) stand in the plan, each counted once:
    never enrolled (an enrolment would add them), enrolled now, or gone: graduated earlier, else
    rejected earlier (neither is enrolled again)."""
    adding = subjects.exclude(_enrolment_of(plan)).aggregate(n=Count("pk"), ids=Sum("pk"))
    gone = subjects.exclude(_enrolment_of(plan, LIVE_STATUSES))
    graduated = gone.filter(_enrolment_of(plan, [BeneficiaryStatus.GRADUATED])).count()
    rejected = gone.filter(_enrolment_of(plan, [BeneficiaryStatus.REJECTED])).exclude(
        _enrolment_of(plan, [BeneficiaryStatus.GRADUATED])).count()
    total = subjects.count()
    return {
        "matching": total,
        "already_enrolled": total - adding["n"] - graduated - rejected,
        "graduated_earlier": graduated,
        "rejected_earlier": rejected,
        "would_add": adding["n"],
        "fingerprint": _fingerprint(adding),
    }


def _permission(model, verb):
    return f"plans.{verb}_{model._meta.model_name}"


def enrolment_preview(*, plan, rule, target_status, by, scoring=None, readers=None):
    """Counts (see enrolment_standing) and a sample of those who would be added (see enrolment_sample),
    before anything is submitted. The sample is written for `by`, or for `readers` (a request's, as
    schemes.registry.approvals.Readers: named within its location, sensitive values masked for all)."""
    require_permission(by, _permission(plan.beneficiary_model, "add"))
    _check_target_status(target_status)
    check_plan_valid_today(plan, "enrol anyone")
    matching, candidates = enrolment_candidates(plan=plan, rule=rule, target_status=target_status, by=by,
                                                scoring=scoring)
    standing = enrolment_standing(plan, matching)
    over = 0
    if plan.max_beneficiaries is not None:
        over = max(0, plan.live_beneficiaries + standing["would_add"] - plan.max_beneficiaries)
    catalogue = candidate_catalogue(plan)
    plan_rule = status_rule(plan, target_status, catalogue)
    read_by = [criteria_node(rule, catalogue), *([plan_rule] if plan_rule is not None else []),
               *([targeting.score_node(scoring["formula"], catalogue)] if scoring else [])]
    if readers is None:
        scope, outside, show_sensitive = scope_for(by), YOUR_LOCATIONS, can_view_sensitive(by)
    else:
        scope, outside, show_sensitive = readers.scope, readers.outside, False
    fields = fields_read(read_by)
    return {**standing, "over_maximum": over, "plan_rule": status_rule_text(plan, target_status),
            "sample_fields": [catalogue[name].label for name in fields],
            "sample": enrolment_sample(plan, candidates, fields, catalogue, scope=scope, outside=outside,
                                       show_sensitive=show_sensitive)}


def fields_read(nodes):
    """The names of the fields the rules `nodes` read, in the order they first appear."""
    names = []

    def visit(value):
        if isinstance(value, FieldRef):
            if value.name not in names:
                names.append(value.name)
        elif isinstance(value, Node):
            for field in dataclasses.fields(value):
                visit(getattr(value, field.name))
        elif isinstance(value, tuple):
            for item in value:
                visit(item)

    for node in nodes:
        visit(node)
    return names


def enrolment_sample(plan, candidates, fields, catalogue, *, scope, outside=YOUR_LOCATIONS, show_sensitive):
    """The first of `candidates` (by id) as a checker judges them: the person, or the household and its
    head, named only where `scope` allows their location (else "outside `outside`"), their location,
    and the values of `fields` (what the criteria read), a sensitive one masked unless `show_sensitive`.
    Each row: id, name, location, values [[label, value]], and `summary`: all of it in one line. One
    statement reads the rows and their values (aliases of our own: a field's name is user text), one
    the households' heads."""
    aliases = {f"criteria_value_{index}": name for index, name in enumerate(fields)}
    records = list(candidates.select_related("location").annotate(
        **{alias: catalogue.sql(name) for alias, name in aliases.items()}).order_by("pk")[:SAMPLE_SIZE])
    heads = _heads(records) if plan.plan_type == PlanType.HOUSEHOLD else {}
    sample = []
    for record in records:
        if plan.plan_type == PlanType.HOUSEHOLD:
            head = heads.get(record.pk)
            name = household_named(record, scope, outside=outside) + (
                f", head {person_named(head, scope, outside=outside)}" if head else ", no head")
        else:
            name = person_named(record, scope, outside=outside)
        location = record.location.name if record.location else "no location"
        values = [[catalogue[field].label, _sample_value(getattr(record, alias),
                                                         hidden=catalogue[field].sensitive and not show_sensitive)]
                  for alias, field in aliases.items()]
        sample.append({"id": record.pk, "name": name, "location": location, "values": values,
                       "summary": "; ".join([name, location, *(f"{label}: {value}" for label, value in values)])})
    return sample


def _heads(households):
    """{household id: its head (a live person, with their location)} for `households`."""
    from schemes.registry.models import MemberRole, Membership

    memberships = Membership.objects.filter(household__in=[household.pk for household in households],
                                            role_id=MemberRole.HEAD, individual__deleted_at__isnull=True)
    return {membership.household_id: membership.individual
            for membership in memberships.select_related("individual__location")}


def _sample_value(value, *, hidden):
    """A value as the sample shows it: numbers without trailing zeros, yes/no, dates as YYYY-MM-DD."""
    if value is None:
        return "unknown"
    if isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, (int, float, Decimal)):
        text = format(Decimal(str(value)).normalize(), "f")
    elif isinstance(value, datetime.date):
        text = value.isoformat()
    else:
        text = str(value)
    return mask(text) if hidden else text


def enrolment_fingerprint(*, plan, rule, target_status, by, scoring=None):
    """Who an enrolment would add now, in a few characters (see _fingerprint)."""
    _, candidates = enrolment_candidates(plan=plan, rule=rule, target_status=target_status, by=by, scoring=scoring)
    return _fingerprint(candidates.aggregate(n=Count("pk"), ids=Sum("pk")))


def _check_target_status(target_status):
    if target_status not in ENROL_TARGETS:
        raise ValidationError({"target_status": [f"Enrol as {' or '.join(ENROL_TARGETS)}."]})


def plan_ended(plan):
    """Whether the plan's validity ended before today."""
    return plan.valid_to is not None and plan.valid_to < timezone.localdate()


def check_plan_valid_today(plan, doing):
    """Refuse `doing` ("enrol anyone", "be activated") to a plan whose validity ended."""
    if plan_ended(plan):
        raise ValidationError(f"{plan} was valid until {plan.valid_to:%Y-%m-%d}: it can no longer {doing}. "
                              "Extend its validity first (edit the plan).")


def enrolment_execute(*, plan, rule, target_status, by, scoring=None, approval=None):
    """Enrol everyone the rule selects (in `by`'s locations) in one statement. All or nothing: above
    the plan's maximum the database refuses the count and nothing is enrolled. Who enrolled them is
    in the plan's audit entry, which names the instant they were enrolled at (each beneficiary's own
    history finds it by its `enrolled_at`: one entry per person would cost more than the enrolment),
    not on each row (a per-row user reference costs a check per row). `approval`: the id of the
    approved request applying it, named in the entry with who approved it."""
    require_permission(by, _permission(plan.beneficiary_model, "add"))
    _check_target_status(target_status)
    with transaction.atomic():
        plan = BenefitPlan.objects.select_for_update().get(pk=plan.pk)
        if plan.status != PlanStatus.ACTIVE:
            raise ValidationError(f"{plan} is {plan.get_status_display().lower()}: only an active plan enrols.")
        check_plan_valid_today(plan, "enrol anyone")
        _, candidates = enrolment_candidates(plan=plan, rule=rule, target_status=target_status, by=by,
                                             scoring=scoring)
        select_sql, params = candidates.order_by().values(candidate_id=F("pk")).query.sql_with_params()
        now = timezone.now()
        model = plan.beneficiary_model
        table = connection.ops.quote_name(model._meta.db_table)
        subject = connection.ops.quote_name(f"{model.SUBJECT}_id")
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (plan_id, {subject}, status, attributes, reason, enrolled_at, "
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
                                                  "criteria": rule if isinstance(rule, dict) else str(rule),
                                                  "plan_rule": plan.criteria_text(target_status) or None,
                                                  "scoring": scoring or None, "enrolled_at": now.isoformat(),
                                                  **_approval_data(approval)})
    return added


def _audit_each(model, action, *, by, data, where, params):
    """One audit entry per beneficiary of `model` that `where` selects (its table aliased `b`), each
    holding `data`: one INSERT ... SELECT (sites.audit.audit_many), for each one's own history."""
    table = connection.ops.quote_name(model._meta.db_table)
    as_json = "CAST(%s AS jsonb)" if connection.vendor == "postgresql" else "json(%s)"
    return audit_many(model, action, by=by, rows_sql=f"SELECT b.id AS id, {as_json} AS data FROM {table} b WHERE {where}",
                      params=[json.dumps(data), *params])


def _approval_data(approval):
    """{"request": its id, "approved_by": the usernames of those who approved it} of the approval request
    (an id) that applies a change; {} for a change applied without one."""
    if approval is None:
        return {}
    approvers = Decision.objects.filter(request_id=approval, verdict=Verdict.APPROVE).order_by("step", "pk")
    return {"request": approval, "approved_by": list(approvers.values_list("user__username", flat=True))}


CLOSING_REASON = "The plan was closed."


def check_plan_close(*, plan, by):
    """Closing moves the plan's beneficiaries in every location: it takes the permission to change
    plans and national scope, and an active plan."""
    require_permission(by, "plans.change_benefitplan")
    if not scope_for(by).national:
        raise PermissionDenied("Closing a plan moves its beneficiaries in every location: it takes national scope.")
    if plan.status != PlanStatus.ACTIVE:
        raise ValidationError(f"{plan} is {plan.get_status_display().lower()}: only an active plan is closed.")


def plan_close_counts(plan):
    """{status: how many of the plan's beneficiaries have it}, in every location, every status named."""
    counts = dict(plan.beneficiaries_of_type().order_by().values_list("status").annotate(n=Count("pk")))
    return {status: counts.get(status, 0) for status in BeneficiaryStatus.values}


@transaction.atomic
def plan_close(*, plan, by):
    """Close an active plan (operation `plans.close`, once approved): its remaining beneficiaries leave
    it in one statement per transition, along the transitions' own paths: active and suspended ones
    graduate; potential ones, who cannot graduate, are rejected; both with CLOSING_REASON."""
    plan = BenefitPlan.objects.select_for_update().get(pk=plan.pk)
    check_plan_close(plan=plan, by=by)
    plan.close()
    now = timezone.now()
    moved = {}
    for action in ("graduate", "reject"):
        sources, target = transition_sources(plan.beneficiary_model, action)
        moved[target] = plan.beneficiaries_of_type().filter(status__in=sources).update(
            status=target, reason=CLOSING_REASON, status_changed_at=now, status_changed_by=by)
    plan.live_beneficiaries = 0
    plan.save(update_fields=["status", "live_beneficiaries", "updated_at"])
    audit(plan, "mizani.plan_status", by=by, data={"status": plan.status,
                                                    "graduated": moved[BeneficiaryStatus.GRADUATED],
                                                    "rejected": moved[BeneficiaryStatus.REJECTED]})
    return plan


def check_plan_activate(*, plan, by):
    """Activating takes the permission to change plans, a draft, and a validity not ended."""
    require_permission(by, "plans.change_benefitplan")
    if plan.status != PlanStatus.DRAFT:
        raise ValidationError(f"{plan} is {plan.get_status_display().lower()}: only a draft is activated.")
    check_plan_valid_today(plan, "be activated")


def plan_activation_counts(plan, by):
    """What the plan starts from once active, as its confirmation page shows it: its schema fields,
    its regional cut-offs, and the people (or households) in `by`'s locations meeting its criteria
    for potential beneficiaries now: "none" where it has none (enrolment by criteria then asks for them),
    "unchecked" where they no longer check (its page says why)."""
    criteria = (plan.criteria or {}).get(BeneficiaryStatus.POTENTIAL)
    meeting = "none"
    if criteria:
        catalogue = candidate_catalogue(plan)
        try:
            node = criteria_node(criteria["rule"], catalogue)
        except ValidationError:
            meeting = "unchecked"
        else:
            meeting = subjects_for(plan, by).filter(to_sql(node, catalogue)).count()
    return {"fields": plan.fields.count(), "cutoffs": plan.cutoffs.count(), "meeting_criteria": meeting}


@transaction.atomic
def plan_activate(*, plan, by):
    plan = BenefitPlan.objects.select_for_update().get(pk=plan.pk)
    check_plan_activate(plan=plan, by=by)
    plan.activate()
    plan.save(update_fields=["status", "updated_at"])
    audit(plan, "mizani.plan_status", by=by, data={"status": plan.status})
    return plan


# --- beneficiary statuses ---------------------------------------------------------------------

STATUS_ACTIONS = ("activate", "suspend", "reinstate", "graduate", "reject")
REASON_REQUIRED = {"suspend", "graduate", "reject"}
LEAVING = {"graduate", "reject"}  # the beneficiary stops counting towards the plan's maximum


def _check_action(action):
    if action not in STATUS_ACTIONS:
        raise ValidationError(f"'{action}' is not a beneficiary status change.")


def check_status_action(action, reason):
    _check_action(action)
    reason = (reason or "").strip()
    if action in REASON_REQUIRED and not reason:
        raise ValidationError({"reason": [f"Say why ({action})."]})
    return reason


def beneficiary_check_status(*, beneficiary, action, reason=None, by):
    """The status `action` would give `beneficiary` (read anew), refused as the change itself would be:
    scope, the reason where the transition needs one (unless None: not asked yet, as on the
    confirmation page), the transitions open from its status, permission.
    Returns (beneficiary, reason, the status it would have)."""
    model = type(beneficiary)
    beneficiary = model.objects.select_related(model.SUBJECT, "plan").get(pk=beneficiary.pk)
    if not scope_for(by).allows(beneficiary.subject.location):
        raise model.DoesNotExist(f"No beneficiary with id {beneficiary.pk}.")
    _check_action(action)
    reason = "" if reason is None else check_status_action(action, reason)
    transitions = {t.name: t.target for t in beneficiary.get_available_status_transitions()}
    if action not in transitions:
        raise ValidationError(f"A {beneficiary.get_status_display().lower()} beneficiary can "
                              f"{' or '.join(transitions) if transitions else 'no longer change status'}, "
                              f"not {action}.")
    require_permission(by, _permission(model, "change"))
    return beneficiary, reason, BeneficiaryStatus(transitions[action])


@transaction.atomic
def beneficiary_change_status(*, beneficiary, action, reason="", by):
    """Move one beneficiary (of either kind) through a transition."""
    model = type(beneficiary)
    model.objects.select_for_update().filter(pk=beneficiary.pk).first()
    beneficiary, reason, _ = beneficiary_check_status(beneficiary=beneficiary, action=action, reason=reason or "",
                                                      by=by)
    before = beneficiary.status
    transition = getattr(beneficiary, action)
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


def beneficiary_status_version(beneficiary):
    """Its status and when it last changed: a request made on another status is void."""
    stamp = beneficiary.status_changed_at.isoformat() if beneficiary.status_changed_at else ""
    return f"{beneficiary.status}:{stamp}"


def beneficiary_check_attributes(*, beneficiary, attributes, by):
    """The plan data `attributes` would give `beneficiary` (read anew), cleaned by the plan's schema, and
    the names of the fields that change; refused as the change itself would be (permission, scope, the
    schema, a `unique` value another live beneficiary holds). Returns (beneficiary, cleaned, changed)."""
    model = type(beneficiary)
    require_permission(by, _permission(model, "change"))
    beneficiary = model.objects.select_related(model.SUBJECT, "plan").get(pk=beneficiary.pk)
    if not scope_for(by).allows(beneficiary.subject.location):
        raise model.DoesNotExist(f"No beneficiary with id {beneficiary.pk}.")
    schema = beneficiary.plan.schema()
    cleaned = schema.clean(attributes, stored=beneficiary.attributes)
    errors = unique_values_held(beneficiary.plan, schema.definitions, cleaned, holder=beneficiary)
    if errors:
        raise ValidationError(errors)
    before = beneficiary.attributes
    changed = sorted(name for name in before.keys() | cleaned.keys() if before.get(name) != cleaned.get(name))
    return beneficiary, cleaned, changed


@transaction.atomic
def beneficiary_update_attributes(*, beneficiary, attributes, by):
    """Set a beneficiary's plan data, validated by the plan's schema; a `unique` field's value is
    refused when another live beneficiary of the plan holds it (checked under the plan's lock, so two
    edits cannot both pass; someone who left the plan frees theirs)."""
    model = type(beneficiary)
    BenefitPlan.objects.select_for_update().filter(pk=beneficiary.plan_id).first()
    model.objects.select_for_update().filter(pk=beneficiary.pk).first()
    beneficiary, cleaned, changed = beneficiary_check_attributes(beneficiary=beneficiary, attributes=attributes, by=by)
    before = beneficiary.attributes
    beneficiary.attributes = cleaned
    beneficiary.save(update_fields=["attributes"])
    audit(beneficiary, "mizani.beneficiary_attributes", by=by, data={
        "changed": changed, "changes": attribute_changes(beneficiary.plan, before, cleaned, changed)})
    return beneficiary


def attribute_changes(plan, before, after, changed):
    """{field name: [old, new]} of the plan data that changed, as the audit trail keeps it: a sensitive
    field's values masked (the trail outlives the record and is read by many)."""
    sensitive = set(plan.fields.filter(sensitive=True).values_list("name", flat=True))
    return {name: [_audit_value(before.get(name), name in sensitive), _audit_value(after.get(name), name in sensitive)]
            for name in changed}


def _audit_value(value, sensitive):
    return mask(str(value)) if sensitive and value is not None else value


def unique_values_held(plan, definitions, attributes, *, holder):
    """{field name: [message]} for each `unique` field whose value in `attributes` (plan data of
    `holder`) another live beneficiary of the plan holds. Call it under the plan's lock."""
    others = type(holder).objects.filter(plan=plan, status__in=LIVE_STATUSES).exclude(pk=holder.pk)
    errors = {}
    for definition in definitions:
        value = attributes.get(definition.name)
        # The key as a transform, never `attributes__<name>`: a field named like a lookup would be read as one.
        if definition.unique and value is not None and others.alias(
                held=KeyTransform(definition.name, "attributes")).filter(held=value).exists():
            errors[definition.name] = [f"Another beneficiary of {plan.code} already has {definition.label} {value}."]
    return errors


# --- enrolling a rejected person (or household) again ---------------------------------------------

def reenrolment_check(*, beneficiary, by):
    """The rejected enrolment `beneficiary`, read anew with its subject and plan, if its person (or
    household) may be enrolled in the plan again: one at a time, the deliberate correction of a
    rejection made by mistake (enrolment by criteria, simulation and files leave whoever was rejected
    out). Refused: without the permission to enrol, outside `by`'s locations, in a plan that does not
    enrol now, for a graduate (graduation is final) and for anyone enrolled or rejected since."""
    model = type(beneficiary)
    require_permission(by, _permission(model, "add"))
    rejected = model.objects.select_related(model.SUBJECT, "plan", "status_changed_by").get(pk=beneficiary.pk)
    subject, plan = rejected.subject, rejected.plan
    if not scope_for(by).allows(subject.location):
        raise model.DoesNotExist(f"No beneficiary with id {rejected.pk}.")
    if rejected.status != BeneficiaryStatus.REJECTED:
        raise ValidationError(f"{subject} is {rejected.get_status_display().lower()} in {plan}: only a rejected "
                              "enrolment is enrolled again.")
    if plan.status != PlanStatus.ACTIVE:
        raise ValidationError(f"{plan} is {plan.get_status_display().lower()}: only an active plan enrols.")
    check_plan_valid_today(plan, "enrol anyone")
    others = dict(model.objects.filter(plan=plan, **{model.SUBJECT: subject}).exclude(pk=rejected.pk)
                  .values_list("pk", "status"))
    if BeneficiaryStatus.GRADUATED in others.values():
        raise ValidationError(f"{subject} graduated from {plan}: graduation is final, they are not enrolled again.")
    if any(status in LIVE_STATUSES for status in others.values()):
        raise ValidationError(f"{subject} is enrolled in {plan} already.")
    if any(pk > rejected.pk for pk in others):
        raise ValidationError(f"{subject} was rejected from {plan} again since: enrol them again from their latest "
                              "rejection.")
    return rejected


def reenrolment_reason(reason):
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": ["Say why they are enrolled again (what was wrong with the rejection)."]})
    return reason


def reenrolment_version(beneficiary):
    """The enrolments of the rejected beneficiary's subject in its plan, in a few characters: an
    approval is void when they changed (enrolled again otherwise) since the checkers were shown."""
    model = type(beneficiary)
    subject = f"{model.SUBJECT}_id"
    enrolments = model.objects.filter(plan_id=beneficiary.plan_id, **{subject: getattr(beneficiary, subject)})
    return _fingerprint(enrolments.aggregate(n=Count("pk"), ids=Sum("pk")))


def check_reenrolment_fits(plan, rejected):
    """Refuse enrolling the subject of `rejected` again where the plan is at its maximum, or where a
    unique value of the plan data they would bring back is another live beneficiary's now."""
    held = unique_values_held(plan, plan.schema().definitions, rejected.attributes, holder=rejected)
    if held:
        raise ValidationError([f"{message[0]} Change it in the rejected enrolment's plan data first."
                               for message in held.values()])
    if plan.max_beneficiaries is not None and plan.live_beneficiaries >= plan.max_beneficiaries:
        raise ValidationError(f"{plan} has its maximum of {plan.max_beneficiaries:,} beneficiaries: raise the "
                              "maximum first.")


@transaction.atomic
def beneficiary_reenrol(*, beneficiary, reason, by):
    """Enrol the person (or household) of a rejected enrolment again, as potential (operation
    `plans.enrol` with `reenrol`, once approved): a new enrolment with the plan data they had, the
    rejected one kept as it is. Within the plan's maximum; a unique value another beneficiary holds
    now is refused, naming the field."""
    reason = reenrolment_reason(reason)
    plan = BenefitPlan.objects.select_for_update().get(pk=beneficiary.plan_id)  # the count and unique values
    rejected = reenrolment_check(beneficiary=beneficiary, by=by)
    check_reenrolment_fits(plan, rejected)
    model, now = type(rejected), timezone.now()
    try:
        with transaction.atomic():
            enrolled = model.objects.create(plan=plan, **{model.SUBJECT: rejected.subject},
                                            attributes=rejected.attributes, enrolled_at=now, status_changed_at=now,
                                            status_changed_by=by)
    except IntegrityError:  # one live enrolment per plan: a file enrolled them meanwhile
        raise ValidationError(f"{rejected.subject} was enrolled in {plan} meanwhile.") from None
    BenefitPlan.objects.filter(pk=plan.pk).update(live_beneficiaries=F("live_beneficiaries") + 1)
    audit(enrolled, "mizani.beneficiary_status", by=by, data={
        "from": BeneficiaryStatus.REJECTED, "to": enrolled.status, "reason": reason, "rejected_enrolment": rejected.pk})
    audit(plan, "mizani.enrol", by=by, data={"added": 1, "status": enrolled.status, "reason": reason,
                                              "enrolled_again": {"rejected": rejected.pk, "beneficiary": enrolled.pk}})
    return enrolled


def transition_sources(model, action):
    """The statuses `action` leaves from, and the one it reaches, read from the model's transition."""
    transitions = getattr(model, action)._django_fsm.transitions
    targets = {t.target for t in transitions.values()}
    return sorted(transitions), targets.pop()


def bulk_status_selection(*, plan, by, statuses=(), ids=()):
    """The plan's beneficiaries a bulk status change would act on: in `by`'s locations, in
    `statuses` (all when empty), among `ids` (all when empty)."""
    from .selectors import beneficiaries_of_plan_for

    queryset = beneficiaries_of_plan_for(by, plan)
    if statuses:
        queryset = queryset.filter(status__in=statuses)
    if ids:
        queryset = queryset.filter(pk__in=ids)
    return queryset


def bulk_status_preview(*, plan, action, by, statuses=(), ids=()):
    """How many of the selection the transition applies to, and how many it must leave as they are."""
    require_permission(by, _permission(plan.beneficiary_model, "change"))
    check_status_action(action, "-")
    sources, target = transition_sources(plan.beneficiary_model, action)
    selection = bulk_status_selection(plan=plan, by=by, statuses=statuses, ids=ids)
    applying = selection.filter(status__in=sources).aggregate(n=Count("pk"), ids=Sum("pk"))
    selected = selection.count()
    return {"selected": selected, "applies": applying["n"], "unchanged": selected - applying["n"], "target": target,
            "from": sources, "fingerprint": _fingerprint(applying)}


def _fingerprint(aggregate):
    """Which records a change would touch, in a few characters (their count and the sum of their ids):
    an approval is void when it would touch others than the checkers were shown."""
    return f"{aggregate['n']}:{aggregate['ids'] or 0}"


@transaction.atomic
def beneficiaries_change_status(*, plan, action, reason="", by, statuses=(), ids=(), approval=None):
    """One transition for many beneficiaries, in one UPDATE per status it leaves from: only those in
    the transition's source statuses move (the others are counted and left as they are), as the
    single-row path would. Each one moved gets its own history entry, as one change of status
    (mizani.beneficiary_status) gives, naming `approval` (the approved request's id) where given."""
    model = plan.beneficiary_model
    require_permission(by, _permission(model, "change"))
    reason = check_status_action(action, reason)
    plan = BenefitPlan.objects.select_for_update().get(pk=plan.pk)
    sources, target = transition_sources(model, action)
    selection = bulk_status_selection(plan=plan, by=by, statuses=statuses, ids=ids)
    selected = selection.count()
    moved, now, approved = 0, timezone.now(), _approval_data(approval)
    stamp = model._meta.get_field("status_changed_at")
    for index, source in enumerate(sources):
        # Each source status moves at its own instant (a microsecond apart): the rows each UPDATE moved,
        # and the status they left, are found again by it for their history entries.
        at = now + datetime.timedelta(microseconds=index)
        moved += model.objects.filter(pk__in=selection.filter(status=source).values("pk")).update(
            status=target, reason="" if action == "reinstate" else reason, status_changed_at=at, status_changed_by=by)
        _audit_each(model, "mizani.beneficiary_status", by=by,
                    data={"from": source, "to": target, "reason": reason, **approved},
                    where="b.plan_id = %s AND b.status = %s AND b.status_changed_at = %s "
                          "AND b.status_changed_by_id = %s",
                    params=[plan.pk, target, stamp.get_db_prep_value(at, connection), by.pk])
    if action in LEAVING and moved:
        BenefitPlan.objects.filter(pk=plan.pk).update(live_beneficiaries=F("live_beneficiaries") - moved)
    audit(plan, "mizani.beneficiary_status_bulk", by=by, data={
        "action": action, "to": target, "moved": moved, "left_unchanged": selected - moved, "reason": reason,
        "statuses": list(statuses), "ids": len(ids)})
    return {"moved": moved, "left_unchanged": selected - moved}


# --- changes to a plan (versions) ---------------------------------------------------------------

PLAN_CHANGE_FIELDS = ("code", "name", "plan_type", "description", "institution", "valid_from", "valid_to",
                      "max_beneficiaries", "ceiling_per_beneficiary", "currency", "criteria", "score_formula",
                      "score_cutoff")
# The plan's child rows a change carries: payload key -> (child relation, its fields).
CHILD_ROWS = {"schema": ("fields", ("name", "label", "field_type", "required", "unique", "min_value", "max_value",
                                    "decimal_places", "pattern", "choices", "help_text", "sensitive", "sort_order")),
              "cutoffs": ("cutoffs", ("location", "cutoff", "sort_order"))}
# Payload values compared as decimals: a form's or a JSON Schema's "1.5" is the stored "1.5000".
DECIMAL_VALUES = {"ceiling_per_beneficiary", "score_cutoff", "min_value", "max_value", "cutoff"}
SCHEMA_REORDERED = "Schema fields reordered"


def plan_change_payload(plan):
    """A plan (as saved, or as edited: unsaved, its schema and cut-offs in memory) as JSON: what
    `plans.change` carries to the checkers and applies once approved."""
    data = json.loads(json.dumps(plan.serializable_data(), cls=DjangoJSONEncoder))
    payload = {"plan_fields": {name: data.get(name) for name in PLAN_CHANGE_FIELDS}}
    for key, (relation, names) in CHILD_ROWS.items():
        payload[key] = [{name: row.get(name) for name in names if name in row} for row in data.get(relation, [])]
    return payload


def _proposed_plan(plan, change):
    """The plan as `change` would leave it, in memory."""
    data = plan.serializable_data()
    data.update(change["plan_fields"])
    for key, (relation, _) in CHILD_ROWS.items():
        # New rows each version: a version's schema and cut-offs replace the previous ones whole.
        data[relation] = [{**row, "pk": None} for row in change.get(key, [])]
    return BenefitPlan.from_serializable_data(data)


def _rule_texts(value):
    """Rules as the text people wrote (criteria per status, or a formula)."""
    if not value:
        return ""
    if "text" in value:
        return value["text"]
    return "; ".join(f"{_status_label(status)}: {entry.get('text', '')}" for status, entry in sorted(value.items()))


def _status_label(status):
    """A status as people read it ("Potential"); one no longer known, as stored."""
    return BeneficiaryStatus(status).label if status in BeneficiaryStatus.values else status


def bound_text(value):
    """A field's bound as people write it: 1 and 10, 2.5 (stored with four decimals: 1.0000)."""
    number = Decimal(str(value))
    return format(number.quantize(1) if number == number.to_integral_value() else number.normalize(), "f")


def _describe_row(row):
    if row is None:
        return "—"
    # Everything a field checks or hides: a checker must see a bound, pattern or masking change.
    details = [flag for flag in ("required", "unique", "sensitive") if row.get(flag)]
    details += [f"{label} {bound_text(row[key])}" for key, label in (("min_value", "min"), ("max_value", "max"))
                if row.get(key) not in (None, "")]
    if row.get("decimal_places") is not None:
        details.append(places_text(row["decimal_places"]))
    if row.get("pattern"):
        details.append(f"pattern {row['pattern']}")
    if row.get("choices"):
        details.append("choices " + " / ".join(map(str, row["choices"])))
    return f"{row.get('label') or row['name']} ({', '.join([row['field_type'], *details])})"


def plan_change_diff(plan, change):
    """[[what, before, after]] for every difference `change` makes to the plan as saved (see
    _as_stored): a schema whose fields only changed places is one row, the order before and after."""
    current, proposed = _as_stored(plan_change_payload(plan)), _as_stored(change)
    diff = []
    for name in PLAN_CHANGE_FIELDS:
        if current["plan_fields"].get(name) == proposed["plan_fields"].get(name):
            continue
        before, after = current["plan_fields"].get(name), proposed["plan_fields"].get(name)
        if name in ("criteria", "score_formula"):
            before, after = _rule_texts(before), _rule_texts(after)
        elif name == "plan_type":
            before, after = (PlanType(value).label if value in PlanType.values else value for value in (before, after))
        label = str(BenefitPlan._meta.get_field(name).verbose_name).capitalize()
        diff.append([label, "—" if before in (None, "") else str(before), "—" if after in (None, "") else str(after)])
    old = {row["name"]: row for row in current["schema"]}
    new = {row["name"]: row for row in proposed["schema"]}
    for name in sorted(old.keys() | new.keys()):
        if old.get(name) != new.get(name):
            diff.append([f"Schema field {name}", _describe_row(old.get(name)), _describe_row(new.get(name))])
    kept_before, kept_after = [name for name in old if name in new], [name for name in new if name in old]
    if kept_before != kept_after:
        diff.append([SCHEMA_REORDERED, ", ".join(old), ", ".join(new)])
    old, new = current["cutoffs"], proposed["cutoffs"]
    ids = old.keys() | new.keys()
    named = {location.pk: name for location, name in locations_by_tree(Location.objects.filter(pk__in=ids))}
    for location in [*named, *sorted(ids - named.keys())]:  # in the tree's order; one deleted since, by id
        before, after = old.get(location), new.get(location)
        if before != after:
            diff.append([f"Cut-off in {named.get(location, location)}", "—" if before is None else str(before),
                         "—" if after is None else str(after)])
    return diff


def _as_stored(payload):
    """A change payload as what the plan would store, to compare two: decimals by value, patterns
    without their outer anchors (a value matches its pattern whole: ^a$ checks what a does), the schema
    as its rows in order (sort_order only orders them: 0, 1, 2 and 0, 5, 9 are one order), cut-offs
    by location (nothing reads their order: they are shown in the tree's order). A key left out is
    one left empty: a change asked for before a setting existed (decimal places) names no change to it."""
    def values(row):
        return {key: Decimal(str(value)) if key in DECIMAL_VALUES and value not in (None, "")
                else without_anchors(value) if key == "pattern" and value else value
                for key, value in row.items() if key != "sort_order" and value is not None}

    schema = sorted(payload.get("schema", []), key=lambda row: (row.get("sort_order") or 0, row["name"]))
    return {"plan_fields": values(payload["plan_fields"]), "schema": [values(row) for row in schema],
            "cutoffs": {row["location"]: values(row)["cutoff"] for row in payload.get("cutoffs", [])}}


def schema_change_impact(plan, change):
    """{what: how many}: what `change` does to the data the plan's beneficiaries (every status and
    location: a rejected one's data comes back with them) hold, per schema field it touches. Values the
    new definition refuses (a choice removed, another type, format or bounds), values missing where
    the field becomes required, and values of a removed field (kept in storage, no longer shown or
    used). Nothing is rewritten. One statement per field: missing and removed values are counted in
    SQL, refused ones by sites.fields.values_refused."""
    beneficiaries = plan.beneficiaries_of_type()
    old = {field.name: field for field in plan.fields.all()}
    new = {field.name: field for field in _proposed_plan(plan, change).fields.all()}
    if not beneficiaries.exists():
        return {}
    impact = {}
    for name in sorted(old.keys() - new.keys()):
        impact[f"{old[name]}: field removed: beneficiaries holding a value (kept in storage, no longer shown or "
               "used)"] = beneficiaries.filter(attributes__has_key=name).count()
    for name, field in new.items():
        before = old.get(name)
        if field.required and not (before and before.required):
            impact[f"{field}: now required: beneficiaries without a value"] = beneficiaries.exclude(
                attributes__has_key=name).count()
        changed = checks_changed(before, field) if before else []
        if changed:
            impact[f"{field}: beneficiaries holding a value it no longer accepts ({checks_text(before, field, changed)})"
                   ] = values_refused(beneficiaries, field).count
    return impact


def plan_version(plan):
    """What a `plans.change` request was made against: the plan's latest version and its status."""
    return f"{plan.latest_revision_id or 0}:{plan.status}"


ACTIVE_PLAN_CHANGE_SCOPE = ("Changing an active plan affects its beneficiaries in every location: it takes a user "
                            "with national scope.")


def check_plan_changes(plan, by):
    """Every way of changing a plan (a save, a schema import, a `plans.change` request and its
    execution) asks this first, so a closed plan is refused before anything is applied or submitted.
    An active plan's change (schema, criteria, formula...) reaches its beneficiaries in every location,
    and the request counts the data it affects in all of them: it takes national scope, as closing
    does. A draft has no beneficiaries: whoever may change plans edits it."""
    if plan.status == PlanStatus.CLOSED:
        raise ValidationError(f"{plan} is closed: it no longer changes.")
    if plan.status == PlanStatus.ACTIVE and not scope_for(by).national:
        raise PermissionDenied(ACTIVE_PLAN_CHANGE_SCOPE)


def plan_lock_for_change(plan, *, by, approved=False):
    """The plan, locked for a change by `by`. Only a draft changes directly: its status was read before
    this lock, so a plan activated meanwhile is refused rather than changed without approval. An
    approved `plans.change` applies to the active plan it was made for. Call it inside the change's
    transaction."""
    plan = BenefitPlan.objects.select_for_update().get(pk=plan.pk)
    check_plan_changes(plan, by)
    if not approved and plan.status != PlanStatus.DRAFT:
        raise ValidationError(f"{plan} was activated meanwhile, so nothing was changed: save again to "
                              "submit the change for approval.")
    return plan


@transaction.atomic
def plan_change(*, plan, change, by, approved=False):
    """Apply a change (fields, criteria, scoring, schema, cut-offs) and record it as a new version:
    to a draft, or (`approved`, run by the `plans.change` request) to an active plan. A change that
    would store what the plan has (its schema in the same order) records nothing."""
    require_permission(by, "plans.change_benefitplan")
    plan = plan_lock_for_change(plan, by=by, approved=approved)
    if _as_stored(plan_change_payload(plan)) == _as_stored(change):
        return plan  # saved unchanged (a form, a schema imported again): no new version
    diff = plan_change_diff(plan, change)
    plan = plan_change_check(plan, change)
    plan.save()
    revision = plan.save_revision(user=by, clean=False)  # cleaned above; status is protected
    audit(plan, "mizani.plan_change", by=by, data={"revision": revision.pk, "diff": diff})
    return plan


def plan_change_check(plan, change):
    """`plan` as `change` would leave it, checked for everything applying it would refuse (type,
    fields, bounds, the maximum against the live beneficiaries, schema rows, rules), unsaved: asked
    when a change is submitted, so a checker never approves what cannot be applied, and again then."""
    proposed = _proposed_plan(plan, change)
    if proposed.plan_type != plan.plan_type and plan.beneficiaries_of_type().exists():
        raise ValidationError({"plan_type": ["The plan has beneficiaries: its type cannot change."]})
    for name in PLAN_CHANGE_FIELDS:
        setattr(plan, name, getattr(proposed, name))
    plan.full_clean(exclude=["latest_revision", "status"])
    for _, (relation, _names) in CHILD_ROWS.items():
        rows = list(getattr(proposed, relation).all())
        for row in rows:
            row.full_clean(exclude=["plan"])
        setattr(plan, relation, rows)
    _check_rules(plan)
    return plan


def _check_rules(plan):
    """Criteria and score formula still check against what the plan's rules may name."""
    catalogue = candidate_catalogue(plan)
    for entry in (plan.criteria or {}).values():
        criteria_node(entry["rule"], catalogue)
    if plan.score_formula:
        targeting.score_node(plan.score_formula["rule"], catalogue)
