"""What a plan's rules may name. Criteria and scores are written once per plan and read in two places:
over the people or households who could enrol (the plan's attributes do not exist for them yet: NULL)
and over the plan's beneficiaries (their plan attributes included)."""

from schemes.registry.selectors import households_for, individuals_for
from schemes.rules.catalogue import (
    attribute_spec,
    household_catalogue,
    individual_catalogue,
    unknown_yet_spec,
)

from .models import PlanType


def _plan_attributes(plan):
    return [attribute_spec(field) for field in plan.fields.all()] if plan.pk else []


def _subject_catalogue(plan, today):
    if plan.plan_type == PlanType.HOUSEHOLD:
        return household_catalogue(today=today)
    return individual_catalogue(today=today)


def candidate_catalogue(plan, *, today=None):
    """Rules over the plan's possible subjects (people or households)."""
    return _subject_catalogue(plan, today).extended([unknown_yet_spec(a) for a in _plan_attributes(plan)])


def beneficiary_catalogue(plan, *, today=None):
    """Rules over the plan's beneficiaries: their subject's fields and the plan's attributes."""
    subject = plan.beneficiary_model.SUBJECT
    rooted = _subject_catalogue(plan, today).rooted(f"{subject}__", lambda record: getattr(record, subject))
    return rooted.extended(_plan_attributes(plan))


def subjects_for(plan, user):
    """The people or households (by plan type) the user may see."""
    return households_for(user) if plan.plan_type == PlanType.HOUSEHOLD else individuals_for(user)
