from django.db.models import BooleanField, Case, Count, Exists, OuterRef, Value, When

from schemes.registry.models import Individual
from schemes.rules.catalogue import individual_catalogue
from schemes.rules.compiler import compile_rule, to_sql
from schemes.rules.nodes import from_json
from schemes.rules.sql import IsTrue
from sites.scoping import scope_for

from .models import Beneficiary, BenefitPlan


def plans_for(user, *, include_deleted=True):
    """Plans are programme-wide content: every user who may view plans sees them all (their
    beneficiaries, not the plans, are limited to the user's locations)."""
    if not user.has_perm("plans.view_benefitplan"):
        return BenefitPlan.objects.none()
    return BenefitPlan.objects.all()


def beneficiaries_for(user, *, include_deleted=True):
    if not user.has_perm("plans.view_beneficiary"):
        return Beneficiary.objects.none()
    return scope_for(user).filter(Beneficiary.objects.all(), field="individual__location")


def status_counts(plan, user):
    """{status: count} of the plan's beneficiaries in the user's locations."""
    rows = beneficiaries_for(user).filter(plan=plan).values("status").annotate(n=Count("pk")).order_by()
    return {row["status"]: row["n"] for row in rows}


def plans_of_person(individual, user):
    return beneficiaries_for(user).filter(individual=individual).select_related("plan").order_by("plan__code")


def with_criteria_check(queryset, plan):
    """Annotate `meets_criteria`: whether each beneficiary still meets the plan's criteria for their
    status (None where the plan has none for that status). One SQL expression, no loop."""
    catalogue = individual_catalogue()
    branches = []
    for status, entry in (plan.criteria or {}).items():
        node = compile_rule(from_json(entry["rule"]), catalogue, expect="boolean")
        meets = Exists(Individual.objects.filter(pk=OuterRef("individual_id")).filter(
            IsTrue(to_sql(node, catalogue, "boolean"))))
        branches.append(When(status=status, then=meets))
    if not branches:
        return queryset.annotate(meets_criteria=Value(None, output_field=BooleanField()))
    return queryset.annotate(meets_criteria=Case(*branches, default=Value(None), output_field=BooleanField()))
