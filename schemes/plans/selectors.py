from django.db.models import BooleanField, Case, Count, F, IntegerField, OuterRef, Subquery, Value, When
from django.db.models.functions import Coalesce, Concat
from wagtail.models import ModelLogEntry

from schemes.registry.models import Household, MemberRole, Membership
from schemes.registry.selectors import households_with_size
from schemes.rules.compiler import compile_rule, to_sql
from schemes.rules.errors import RuleError
from schemes.rules.nodes import from_json
from schemes.rules.sql import IsTrue
from sites.masking import can_view_sensitive, mask
from sites.models import Location
from sites.scoping import scope_for

from .catalogues import beneficiary_catalogue, candidate_catalogue
from .models import LIVE_STATUSES, Beneficiary, BeneficiaryStatus, BenefitPlan, HouseholdBeneficiary, PlanType


def plans_for(user, *, include_deleted=True):
    """Plans are programme-wide content: every user who may view plans sees them all (their
    beneficiaries, not the plans, are limited to the user's locations)."""
    if not user.has_perm("plans.view_benefitplan"):
        return BenefitPlan.objects.none()
    return BenefitPlan.objects.all()


def _beneficiaries_of(model, user):
    if not user.has_perm(f"plans.view_{model._meta.model_name}"):
        return model.objects.none()
    return scope_for(user).filter(model.objects.all(), field=f"{model.SUBJECT}__location")


def beneficiaries_for(user, *, include_deleted=True):
    return _beneficiaries_of(Beneficiary, user)


def household_beneficiaries_for(user, *, include_deleted=True):
    return _beneficiaries_of(HouseholdBeneficiary, user)


def beneficiaries_of_plan_for(user, plan):
    """The plan's beneficiaries (people or households, by plan type) in the user's locations."""
    return _beneficiaries_of(plan.beneficiary_model, user).filter(plan=plan)


def status_counts(plan, user):
    """{status: count} of the plan's beneficiaries in the user's locations."""
    rows = beneficiaries_of_plan_for(user, plan).values("status").annotate(n=Count("pk")).order_by()
    return {row["status"]: row["n"] for row in rows}


def with_live_count(plans, user):
    """Annotate `live_count`: each plan's live beneficiaries (potential, active, suspended) in the
    user's locations; for a national user, the plan-wide figure the plan keeps."""
    if scope_for(user).national:
        return plans.annotate(live_count=F("live_beneficiaries"))

    def live(model):
        counted = _beneficiaries_of(model, user).filter(plan=OuterRef("pk"), status__in=LIVE_STATUSES).order_by()
        return Coalesce(Subquery(counted.values("plan").annotate(n=Count("pk")).values("n"),
                                 output_field=IntegerField()), 0)

    return plans.annotate(live_count=Case(When(plan_type=PlanType.HOUSEHOLD, then=live(HouseholdBeneficiary)),
                                          default=live(Beneficiary), output_field=IntegerField()))


def plans_of_household(household, user):
    return household_beneficiaries_for(user).filter(household=household).select_related("plan").order_by(
        "plan__code")


def with_export_columns(queryset, user):
    """Annotate what a beneficiaries export says of each person or household beyond its name, each
    one SQL expression (nothing read row by row): `location_code` and `location_name`; for a person,
    `household_code`; for a household, `head_name` and `size` (its live members, as the registry counts
    them). A household or head outside the user's locations is not named, as on the registry's lists."""
    subject = queryset.model.SUBJECT
    scope = scope_for(user)
    queryset = queryset.annotate(location_code=F(f"{subject}__location__code"),
                                 location_name=F(f"{subject}__location__name"))
    if subject == "individual":
        household = scope.filter(Membership.objects.filter(individual=OuterRef("individual_id")),
                                 field="household__location").values("household__code")[:1]
        return queryset.annotate(household_code=Subquery(household))
    head = scope.filter(Membership.objects.filter(household=OuterRef("household_id"), role_id=MemberRole.HEAD),
                        field="individual__location").annotate(
        full=Concat("individual__first_name", Value(" "), "individual__last_name")).values("full")[:1]
    size = households_with_size(Household.objects.filter(pk=OuterRef("household_id"))).values("size")[:1]
    return queryset.annotate(head_name=Subquery(head), size=Subquery(size))


def with_criteria_check(queryset, plan):
    """Annotate `meets_criteria`: whether each beneficiary still meets the plan's criteria for their
    status, their plan attributes included; None where the plan has none for that status, or where
    its criteria no longer check (a field they name was deleted: see rule_problems). One SQL
    expression, no loop."""
    catalogue = beneficiary_catalogue(plan)
    branches = []
    for status, entry in (plan.criteria or {}).items():
        try:
            node = compile_rule(from_json(entry["rule"]), catalogue, expect="boolean")
        except RuleError:
            continue
        branches.append(When(status=status, then=IsTrue(to_sql(node, catalogue, "boolean"))))
    if not branches:
        return queryset.annotate(meets_criteria=Value(None, output_field=BooleanField()))
    return queryset.annotate(meets_criteria=Case(*branches, default=Value(None), output_field=BooleanField()))


def meets_criteria_as(beneficiary, status):
    """Whether `beneficiary` meets its plan's criteria for `status` (e.g. before it is activated): None
    where the plan has none for that status, or they no longer check."""
    entry = (beneficiary.plan.criteria or {}).get(status)
    if entry is None:
        return None
    catalogue = beneficiary_catalogue(beneficiary.plan)
    try:
        node = compile_rule(from_json(entry["rule"]), catalogue, expect="boolean")
    except RuleError:
        return None
    return type(beneficiary).objects.filter(pk=beneficiary.pk).annotate(
        meets=IsTrue(to_sql(node, catalogue, "boolean"))).values_list("meets", flat=True).first()


def rule_problems(plan):
    """What no longer checks in the plan's saved rules (e.g. a field they name was deleted since), as
    sentences for the plan page."""
    catalogue = candidate_catalogue(plan)
    rules = [(f"The criteria for {status.lower()} beneficiaries no longer check", entry, "boolean")
             for status, entry in sorted((plan.criteria or {}).items())]
    if plan.score_formula:
        rules.append(("The score formula no longer checks", plan.score_formula, "number"))
    problems = []
    for what, entry, expect in rules:
        try:
            compile_rule(from_json(entry["rule"]), catalogue, expect=expect)
        except RuleError as error:
            problems.append(f"{what}: {error.message} Edit the plan to correct it.")
    return problems


# --- locations, as the plan's pages and forms list them -------------------------------------------

TREE_SEPARATOR = " › "


def location_name_paths(locations):
    """{location id: [the names from its region down to it]} for `locations` (Location rows). The
    stored path is made of ids: these names are what the tree is read and sorted by."""
    locations = list(locations)
    names = {location.pk: location.name for location in locations}
    ids = {location.pk: [int(part) for part in location.path.strip("/").split("/") if part] for location in locations}
    missing = {pk for path in ids.values() for pk in path} - names.keys()
    names.update(Location.objects.filter(pk__in=missing).values_list("pk", "name"))
    return {pk: [names[ancestor] for ancestor in path] for pk, path in ids.items()}


def tree_order(name_path):
    """A sort key: the tree, by name at every level (a region before its districts)."""
    return [name.casefold() for name in name_path]


def locations_by_tree(locations):
    """[(location, "Region › District › Ward")], ordered as the tree by name."""
    locations = list(locations)
    paths = location_name_paths(locations)
    return [(location, TREE_SEPARATOR.join(paths[location.pk]))
            for location in sorted(locations, key=lambda location: (tree_order(paths[location.pk]), location.pk))]


# --- versions ----------------------------------------------------------------------------------

def plan_versions(plan, limit=10):
    """The plan's latest saved versions, newest first, as its administrators name them: numbered
    from 1 for this plan (a revision's id counts every revision of every model), when, by whom, and
    what changed (the fields of the `mizani.plan_change` entry that saved it)."""
    total = plan.revisions.count()
    revisions = list(plan.revisions.select_related("user").order_by("-created_at", "-pk")[:limit])
    changes = {
        entry.data.get("revision"): [row[0] for row in entry.data.get("diff", [])]
        for entry in ModelLogEntry.objects.for_instance(plan).filter(
            action="mizani.plan_change", data__revision__in=[revision.pk for revision in revisions])
    }
    return [{"number": total - index, "saved": revision.created_at, "by": revision.user,
             "changed": "Created" if total - index == 1 else ", ".join(changes.get(revision.pk, []))}
            for index, revision in enumerate(revisions)]


# --- a beneficiary's history ---------------------------------------------------------------------

def beneficiary_history(beneficiary, user, limit=8):
    """The beneficiary's latest audit entries, newest first, each with `changes`: for a change of plan
    data, [(label, old, new)] per field (see plan_data_changes)."""
    entries = list(ModelLogEntry.objects.for_instance(beneficiary).select_related("user")
                   .order_by("-timestamp", "-pk")[:limit])
    enrolment = enrolment_entry(beneficiary)
    if enrolment is not None:
        enrolment.message = enrolled_by_criteria(enrolment.data)
        entries = sorted([*entries, enrolment], key=lambda entry: (entry.timestamp, entry.pk), reverse=True)[:limit]
    definitions = beneficiary.plan.schema().by_name
    for entry in entries:
        entry.changes = plan_data_changes(entry, definitions, show_sensitive=can_view_sensitive(user))
    return entries


def enrolment_entry(beneficiary):
    """The plan's entry of the enrolment by criteria that enrolled `beneficiary`, or None: it writes one
    entry, on the plan, naming the instant its beneficiaries were enrolled at (services.enrolment_execute)."""
    return (ModelLogEntry.objects.for_instance(beneficiary.plan).select_related("user")
            .filter(action="mizani.enrol", data__enrolled_at=beneficiary.enrolled_at.isoformat()).first())


def enrolled_by_criteria(data):
    """An enrolment by criteria as the beneficiary's history reads it: "Enrolled by criteria as potential
    (request 3, approved by checker_a)"."""
    status = BeneficiaryStatus(data["status"]).label.lower() if data.get("status") in BeneficiaryStatus.values else ""
    request = data.get("request")
    approvers = ", ".join(data.get("approved_by") or [])
    by_request = f" (request {request}{f', approved by {approvers}' if approvers else ''})" if request else ""
    return f"Enrolled by criteria{f' as {status}' if status else ''}{by_request}"


def plan_data_changes(entry, definitions, *, show_sensitive):
    """[(label, old, new)] of a `mizani.beneficiary_attributes` entry, labelled by the plan's schema
    (`definitions` by name; a field deleted since keeps its name). The trail keeps a sensitive field's
    values masked; a field made sensitive since is masked here for a reader who may not see it, and so
    is a field deleted since (it may have been made sensitive before it went). An entry written before
    the values were kept names the fields alone (old and new None)."""
    if entry.action != "mizani.beneficiary_attributes":
        return []
    data = entry.data or {}
    changes = data.get("changes") or {name: [None, None] for name in data.get("changed", [])}
    rows = []
    for name, (old, new) in changes.items():
        definition = definitions.get(name)
        hidden = (definition is None or definition.sensitive) and not show_sensitive
        rows.append((definition.label if definition else name, _shown(old, hidden, definition), _shown(new, hidden, definition)))
    return rows


def _shown(value, hidden, definition):
    if value is None:
        return None
    if hidden:
        return mask(str(value))
    if definition is not None:
        return definition.display_text(value)
    if isinstance(value, bool):
        return "Yes" if value else "No"
    return value
