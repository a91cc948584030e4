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


def reserved_field_names(plan_type):
    """Names a plan's own field cannot take: its rules would read the registry's field instead."""
    from .models import BenefitPlan

    return set(_subject_catalogue(BenefitPlan(plan_type=plan_type), None).names())


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


def plan_for_rules(argument):
    """The plan a rules subject "plan:<id>.<type>" names (id 0: a plan not saved yet), with the type
    the form has chosen. LookupError for anything else."""
    from .models import BenefitPlan

    plan_id, _, plan_type = (argument or "").partition(".")
    if not plan_id.isdigit() or plan_type not in PlanType.values:
        raise LookupError(f"'{argument}' does not name a plan.")
    plan = BenefitPlan.objects.filter(pk=int(plan_id)).first() if int(plan_id) else BenefitPlan()
    if plan is None:
        raise LookupError(f"No plan with id {plan_id}.")
    plan.plan_type = plan_type
    return plan


def plan_rules_subject(plan, plan_type=None):
    """The rules subject of a plan's criteria and scores, for rule fields and their live count."""
    return f"plan:{plan.pk or 0}.{plan_type or plan.plan_type}"
