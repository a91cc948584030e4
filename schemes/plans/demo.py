"""Demo benefit plans: an active child grant for people, an active household support plan targeted by
a proxy means test with a cut-off per region, and a draft pension. Existing plans are left as they are."""

from decimal import Decimal

from django.db.models import Q

from schemes.rules.compiler import compile_rule
from schemes.rules.nodes import to_json
from sites.models import Location

from .catalogues import candidate_catalogue
from .models import (
    Beneficiary,
    BenefitPlan,
    HouseholdBeneficiary,
    PlanCutoff,
    PlanField,
    PlanStatus,
    PlanType,
)

PHONE = r"^\+\d{2,3}\d+$"
DEMO_PLANS = [
    {"code": "CG-01", "name": "Child Grant", "plan_type": PlanType.INDIVIDUAL, "status": PlanStatus.ACTIVE,
     "institution": "Ministry of Social Welfare", "currency": "TZS", "ceiling_per_beneficiary": Decimal("60000"),
     "description": "A monthly grant to carers of young children in low-income households.",
     "criteria": {"POTENTIAL": "children_under_5 >= 1 and income < 150000",
                  "ACTIVE": "children_under_5 >= 1 and income < 150000"},
     "fields": [("guardian_phone", "Guardian's phone", "text", {"pattern": PHONE, "sensitive": True}),
                ("clinic_card", "Clinic card number", "text", {"unique": True}),
                ("children_enrolled", "Children enrolled", "integer", {"min_value": 1, "max_value": 12})]},
    {"code": "HS-01", "name": "Household Support", "plan_type": PlanType.HOUSEHOLD, "status": PlanStatus.ACTIVE,
     "institution": "Social Action Fund", "currency": "TZS", "max_beneficiaries": 200000,
     "description": "Cash transfers to poor households, targeted by a proxy means test.",
     "criteria": {"POTENTIAL": "household_size >= 2"},
     "score": "monthly_income / household_size / 1000 - 4 * children_under_5 - 3 * elderly_in_household"
              " + (10 if dwelling_type == 'permanent' else 0)",
     "score_cutoff": Decimal("15"), "regional_cutoff": Decimal("20"),
     "fields": [("bank_account", "Bank account", "text", {"unique": True, "sensitive": True}),
                ("enrolment_round", "Enrolment round", "choice", {"choices": ["2026-A", "2026-B"]})]},
    {"code": "EP-01", "name": "Elderly Pension", "plan_type": PlanType.INDIVIDUAL, "status": PlanStatus.DRAFT,
     "institution": "Ministry of Social Welfare", "currency": "TZS",
     "description": "A universal pension from 65 (being designed).", "criteria": {"POTENTIAL": "age >= 65"},
     "fields": []},
]


def _rule(text, plan, expect):
    return {"text": text, "rule": to_json(compile_rule(text, candidate_catalogue(plan), expect=expect))}


def ensure_demo_plans():
    """Create the demo plans that do not exist yet; returns how many were created."""
    created = 0
    for spec in DEMO_PLANS:
        # Codes and names are unique whatever their case: a plan someone made meanwhile keeps its own.
        if BenefitPlan.objects.filter(Q(code__iexact=spec["code"]) | Q(name__iexact=spec["name"])).exists():
            continue
        plan = BenefitPlan.objects.create(
            code=spec["code"], name=spec["name"], plan_type=spec["plan_type"], institution=spec["institution"],
            currency=spec["currency"], description=spec["description"],
            max_beneficiaries=spec.get("max_beneficiaries"),
            ceiling_per_beneficiary=spec.get("ceiling_per_beneficiary"), score_cutoff=spec.get("score_cutoff"))
        PlanField.objects.bulk_create([
            PlanField(plan=plan, name=name, label=label, field_type=field_type, sort_order=order, **extra)
            for order, (name, label, field_type, extra) in enumerate(spec["fields"])])
        plan.criteria = {status: _rule(text, plan, "boolean") for status, text in spec["criteria"].items()}
        if spec.get("score"):
            plan.score_formula = _rule(spec["score"], plan, "number")
            region = Location.objects.filter(parent__isnull=True).order_by("path").first()
            if region:
                PlanCutoff.objects.create(plan=plan, location=region, cutoff=spec["regional_cutoff"])
        if spec["status"] == PlanStatus.ACTIVE:
            plan.activate()
        plan.save()
        plan.save_revision(clean=False)
        created += 1
    return created


def enrol_demo_beneficiaries(by):
    """Enrol, in each active demo plan still without beneficiaries, those its criteria (and score)
    select: the child grant's as active, the household support's as potential. Returns {code: added}."""
    from . import services, targeting

    added = {}
    for plan in BenefitPlan.objects.filter(code__in=[spec["code"] for spec in DEMO_PLANS], status=PlanStatus.ACTIVE):
        if plan.beneficiaries_of_type().exists():
            continue
        status = "ACTIVE" if plan.plan_type == PlanType.INDIVIDUAL else "POTENTIAL"
        added[plan.code] = services.enrolment_execute(
            plan=plan, rule=plan.criteria[status if status in plan.criteria else "POTENTIAL"]["rule"],
            target_status=status, by=by, scoring=targeting.plan_scoring(plan))
    return added


def forget_demo_beneficiaries(**kwargs):
    """Before a demo reset empties the registry: every enrolment goes, and every plan counts none."""
    for model in (Beneficiary, HouseholdBeneficiary):
        model.objects.all().delete()
    BenefitPlan.objects.update(live_beneficiaries=0)
