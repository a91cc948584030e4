from django.db.models import Count

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
