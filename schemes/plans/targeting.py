"""Targeting by score (proxy means test): a formula in the rules language gives each person or
household a score; those at or below the cut-off of their location qualify. A cut-off set on a
location applies to everything under it; the deepest one above a record wins; elsewhere the plan's
default cut-off applies, and with none the record does not qualify.

`scoring` (what enrolment and simulation take): {"formula": <AST JSON or text>,
"cutoffs": {"<location id>": "<decimal>"}, "default_cutoff": "<decimal>" or None}.
`validate_scoring` returns it normalised (formula as checked AST JSON, with its text under
"formula_text" when it was given as text)."""

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Case, Count, IntegerField, Q, Value, When
from django.db.models.functions import Cast, StrIndex, Substr
from django.db.models.lookups import IsNull

from schemes.rules import sql
from schemes.rules.catalogue import NUMBER, NUMBER_FIELD
from schemes.rules.compiler import compile_rule, to_sql
from schemes.rules.errors import RuleError
from schemes.rules.nodes import from_json, to_json
from sites.models import Location
from sites.scoping import scope_for

from . import services
from .catalogues import candidate_catalogue
from .models import BeneficiaryStatus

SAMPLE_SIZE = 10
SUBJECT_LOCATION_PATH = "location__path"  # people and households both hang from `location`
# What a cut-off may be: the plan's cut-off column (18 digits, 4 of them decimals), in plain digits.
CUTOFF_FORMAT = re.compile(r"-?[0-9]{1,14}(\.[0-9]{1,4})?")
LOCATION_ID = re.compile(r"[0-9]{1,18}")
NO_LOCATION = "No location"


def may_enrol(user, plan):
    return user.has_perm(f"plans.add_{plan.beneficiary_model._meta.model_name}")


def may_simulate(user, plan):
    """Simulating shows who would be enrolled, in the user's locations: those who enrol, and those who
    set the plan's score formula and cut-offs (who may change the plan), may simulate."""
    return may_enrol(user, plan) or user.has_perm("plans.change_benefitplan")


def regions_for(user):
    """The regions (root locations) a user's simulation reports on: all of them with national
    scope, else those holding the user's locations."""
    scope = scope_for(user)
    if scope.national:
        return Location.objects.filter(parent__isnull=True).order_by("name")
    return Location.objects.filter(pk__in={int(path.strip("/").split("/")[0]) for path in scope.paths},
                                   parent__isnull=True).order_by("name")


# --- the parts of a scoring -------------------------------------------------------------------


def score_node(formula, catalogue):
    """The formula (text or AST JSON), checked to give a number over `catalogue`."""
    if not formula or not isinstance(formula, (str, dict)):
        raise ValidationError({"formula": ["Write a score formula."]})
    try:
        node = from_json(formula) if isinstance(formula, dict) else formula
        return compile_rule(node, catalogue, expect=NUMBER)
    except RuleError as error:
        raise ValidationError({"formula": [str(error)]}) from None


def _cutoff(value, key, what):
    """A cut-off as Decimal, or ValidationError under `key` naming `what` was wrong."""
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite() or not CUTOFF_FORMAT.fullmatch(format(number, "f")):
        raise ValidationError({key: [f"{what}: '{value}' is not a number of at most 14 digits and 4 decimals."]})
    return number


def _default_cutoff(scoring):
    value = scoring.get("default_cutoff")
    return None if value in (None, "") else _cutoff(value, "default_cutoff", "Default cut-off")


def _location_cutoffs(scoring):
    """{location id: Decimal}; a blank cut-off means none is set there."""
    given = scoring.get("cutoffs") or {}
    if not isinstance(given, dict):
        raise ValidationError({"cutoffs": ["Cut-offs are given per location id."]})
    cutoffs = {}
    for key, value in given.items():  # one per location with a cut-off: a handful, not people
        if value in (None, ""):
            continue
        if not LOCATION_ID.fullmatch(str(key)):
            raise ValidationError({"cutoffs": [f"'{key}' is not a location id."]})
        cutoffs[int(key)] = _cutoff(value, "cutoffs", f"Cut-off of location {key}")
    return cutoffs


def _location_paths(location_ids):
    paths = dict(Location.objects.filter(pk__in=location_ids).values_list("pk", "path"))
    missing = sorted(set(location_ids) - set(paths))
    if missing:
        raise ValidationError({"cutoffs": [f"No location with id {', '.join(map(str, missing))}."]})
    return paths


def validate_scoring(scoring, catalogue):
    """`scoring` checked and normalised: the formula as AST JSON, cut-offs as decimal strings keyed
    by the ids of existing locations. ValidationError names the part that is wrong."""
    if not isinstance(scoring, dict):
        raise ValidationError({"formula": ["The scoring must give a formula and its cut-offs."]})
    formula = scoring.get("formula")
    node = score_node(formula, catalogue)
    cutoffs = _location_cutoffs(scoring)
    _location_paths(cutoffs)  # refuses the ids of locations that do not exist
    default = _default_cutoff(scoring)
    return {
        "formula": to_json(node),
        "formula_text": formula if isinstance(formula, str) else scoring.get("formula_text", ""),
        "cutoffs": {str(pk): format(value, "f") for pk, value in cutoffs.items()},
        "default_cutoff": None if default is None else format(default, "f"),
    }


def plan_scoring(plan):
    """The scoring saved on the plan (formula, cut-offs per location, default), None without a formula."""
    formula = plan.score_formula or {}
    if not (formula.get("rule") or formula.get("text")):
        return None
    return {
        "formula": formula.get("rule") or formula["text"],
        "formula_text": formula.get("text", ""),
        "cutoffs": {str(cutoff.location_id): str(cutoff.cutoff) for cutoff in plan.cutoffs.all()},
        "default_cutoff": None if plan.score_cutoff is None else str(plan.score_cutoff),
    }


# --- SQL --------------------------------------------------------------------------------------


def cutoff_expression(scoring, location_path):
    """Each row's cut-off, as a SQL CASE over `location_path` (the lookup path to the row's location
    path, e.g. "location__path"): the deepest location with a cut-off above the row, else the default,
    else NULL. A row without a location gets the default."""
    cutoffs = _location_cutoffs(scoring)
    paths = _location_paths(cutoffs)
    # Deepest first: the first matching WHEN is the nearest cut-off above the row.
    deepest_first = sorted(cutoffs, key=lambda pk: paths[pk].count("/"), reverse=True)
    return Case(
        *(When(Q(**{f"{location_path}__startswith": paths[pk]}), then=sql.literal(cutoffs[pk], NUMBER))
          for pk in deepest_first),
        default=sql.literal(_default_cutoff(scoring), NUMBER),
        output_field=NUMBER_FIELD,
    )


def _qualifies(node, catalogue, scoring, location_path=SUBJECT_LOCATION_PATH):
    """score <= cut-off, as a condition that is never NULL: an unknown score or no cut-off is no."""
    score = to_sql(node, catalogue, NUMBER)
    return sql.IsTrue(sql.Infix(score, cutoff_expression(scoring, location_path), op="<="))


def qualifying(queryset, *, plan, scoring, catalogue=None):
    """The people or households of `queryset` (the plan's subjects) whose score is at or below their
    cut-off, as one filter on the same statement."""
    catalogue = catalogue or candidate_catalogue(plan)
    node = score_node(scoring.get("formula"), catalogue)
    return queryset.filter(_qualifies(node, catalogue, scoring))


def _region_id(location_path):
    """The root location's id: the first segment of a materialised path ("/12/40/301/" -> 12)."""
    after_slash = Substr(location_path, 2)
    return Cast(Substr(location_path, 2, StrIndex(after_slash, Value("/")) - 1), IntegerField())


# --- simulation -------------------------------------------------------------------------------


def _percent(part, whole):
    if not whole:
        return None
    return (Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def _region_cutoff(scoring, region_id):
    value = scoring["cutoffs"].get(str(region_id), scoring["default_cutoff"])
    return None if value is None else Decimal(value)


def simulate(*, plan, rule, scoring, by, target_status=BeneficiaryStatus.POTENTIAL, amount=None):
    """What enrolling by `rule` and `scoring` would give in `by`'s locations, before anything is
    submitted: how many meet the criteria, how many of them qualify by score and how many could not
    be scored (the formula gives no value: a value it reads is missing, or it divides by zero for
    them), per region (root location) with coverage and cut-off; how those qualifying stand in the plan (enrolled already,
    would be added, or graduated or rejected earlier: not enrolled again); the cost at `amount` for
    each of those enrolled already or added; and a sample of those qualifying.
    Counts are one grouped statement; a region's `cutoff` is the one set on the region itself (deeper
    locations may set their own), else the default. `scoring` comes back normalised, as enrolment
    would take it."""
    if not may_simulate(by, plan):
        raise PermissionDenied(f"You may neither enrol in {plan} nor change it, so you may not simulate its "
                               "enrolment.")
    catalogue = candidate_catalogue(plan)
    scoring = validate_scoring(scoring, catalogue)
    node = score_node(scoring["formula"], catalogue)
    matching, _ = services.enrolment_candidates(plan=plan, rule=rule, target_status=target_status, by=by)
    qualifies = _qualifies(node, catalogue, scoring)
    unscored = IsNull(to_sql(node, catalogue, NUMBER), True)

    groups = list(
        matching.annotate(region_id=_region_id(SUBJECT_LOCATION_PATH)).order_by().values("region_id")
        .annotate(matching=Count("pk"), qualifying=Count("pk", filter=Q(qualifies)),
                  unscored=Count("pk", filter=Q(unscored))))
    names = dict(Location.objects.filter(pk__in=[g["region_id"] for g in groups if g["region_id"]])
                 .values_list("pk", "name"))
    by_region = sorted(
        ({"region": names.get(group["region_id"], NO_LOCATION), "id": group["region_id"],
          "matching": group["matching"], "qualifying": group["qualifying"], "unscored": group["unscored"],
          "coverage_percent": _percent(group["qualifying"], group["matching"]),
          "cutoff": _region_cutoff(scoring, group["region_id"])} for group in groups),
        key=lambda row: (row["id"] is None, row["region"]))
    matching_count = sum(row["matching"] for row in by_region)
    qualifying_count = sum(row["qualifying"] for row in by_region)
    standing = services.enrolment_standing(plan, matching.filter(qualifies))
    beneficiaries = standing["already_enrolled"] + standing["would_add"]
    sample = (matching.filter(qualifies).annotate(score=to_sql(node, catalogue, NUMBER))
              .order_by("pk")[:SAMPLE_SIZE])
    return {
        "matching": matching_count,
        "qualifying": qualifying_count,
        "unscored": sum(row["unscored"] for row in by_region),
        "coverage_percent": _percent(qualifying_count, matching_count),
        "by_region": by_region,
        **{key: standing[key] for key in ("already_enrolled", "would_add", "graduated_earlier", "rejected_earlier")},
        "cost": None if amount is None else beneficiaries * Decimal(str(amount)),
        "sample": [{"id": record.pk, "name": str(record), "score": record.score} for record in sample],
        "scoring": scoring,
        "plan_rule": services.status_rule_text(plan, target_status),
    }
