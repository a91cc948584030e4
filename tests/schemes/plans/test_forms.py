"""The plan's form: its criteria never wider than the builder shows; its cut-offs as people write them
(10, 2.5), one per location said in words, and none without a score formula to apply them to."""

import json
from decimal import Decimal

import pytest
from django.urls import reverse

from schemes.plans.models import BenefitPlan, PlanCutoff
from schemes.rules.nodes import to_json
from schemes.rules.parser import parse
from tests.factories import UserFactory
from tests.schemes.plans.test_views import client_for, formset, plan_form

pytestmark = pytest.mark.django_db


@pytest.fixture
def designer(db):
    return UserFactory(role="Scheme administrator", national=True)


def plan_data(**overrides):
    """A new plan's form, its criteria empty (they name no registry field here)."""
    return plan_form(**{"criteria_potential": "", **overrides})


def cutoff_rows(*rows):
    data = formset("cutoffs", total=len(rows))
    for index, (location, cutoff) in enumerate(rows):
        data.update({f"cutoffs-{index}-location": str(location.pk), f"cutoffs-{index}-cutoff": cutoff,
                     f"cutoffs-{index}-ORDER": str(index + 1)})
    return data


def test_a_location_given_two_cut_offs_is_refused_in_words(designer, geo):
    """QA: Django's "Please correct the duplicate data for plan and location" was shown."""
    response = client_for(designer).post(reverse("plans_plan:add"), plan_data(
        score_formula_text="age", **cutoff_rows((geo.region, "10"), (geo.region, "20"))))

    cutoffs = response.context["form"].formsets["cutoffs"]
    assert response.status_code == 200 and not BenefitPlan.objects.exists()
    assert cutoffs.non_form_errors() == ["A location has two cut-offs: keep one."]
    assert [form.non_field_errors() for form in cutoffs.forms] == [[], ["This location already has a cut-off."]]
    assert "duplicate data" not in response.content.decode()


@pytest.mark.parametrize("cutoffs", [{"score_cutoff": "10"}, "region"])
def test_cut_offs_without_a_score_formula_are_refused(designer, geo, cutoffs):
    """QA: they were saved silently, and meant nothing."""
    data = cutoffs if isinstance(cutoffs, dict) else cutoff_rows((geo.region, "10"))

    response = client_for(designer).post(reverse("plans_plan:add"), plan_data(**data))

    assert response.context["form"].errors["score_formula_text"] == [
        "Cut-offs mean nothing without a score formula: write the formula, or clear the cut-offs."]
    assert not BenefitPlan.objects.exists()


def test_cut_offs_with_a_formula_are_saved(designer, geo):
    client_for(designer).post(reverse("plans_plan:add"), plan_data(
        score_formula_text="age", score_cutoff="60", **cutoff_rows((geo.region, "2.5"))))

    plan = BenefitPlan.objects.get()
    assert (plan.score_formula["text"], plan.score_cutoff) == ("age", Decimal("60"))
    assert list(plan.cutoffs.values_list("cutoff", flat=True)) == [Decimal("2.5")]


def test_cut_offs_are_shown_as_people_write_them(designer, geo):
    """QA: a cut-off of 10 was shown as 10.0000, in the plan's form and on the simulation page."""
    plan = BenefitPlan.objects.create(code="CG", name="Child grant", score_cutoff=Decimal("10"),
                                      score_formula={"text": "age", "rule": {"field": "age"}})
    PlanCutoff.objects.create(plan=plan, location=geo.region, cutoff=Decimal("2.5"))
    PlanCutoff.objects.create(plan=plan, location=geo.village_a, cutoff=Decimal("30"))
    client = client_for(designer)

    edit = client.get(reverse("plans_plan:edit", args=[plan.pk])).content.decode()
    simulation = client.get(reverse("plans_plan:simulate", args=[plan.pk])).content.decode()

    assert 'name="score_cutoff" value="10"' in edit
    assert 'value="2.5"' in edit and 'value="30"' in edit and ".0000" not in edit
    assert 'name="default_cutoff" value="10"' in simulation and ".0000" not in simulation


def test_a_criteria_condition_left_incomplete_in_the_builder_refuses_the_save(designer):
    """QA: clearing the value of age >= 65 and saving saved the rule as none: everyone qualified."""
    plan = BenefitPlan.objects.create(code="CG", name="Child grant", criteria={"POTENTIAL": {
        "text": "age >= 65", "rule": to_json(parse("age >= 65"))}})
    url = reverse("plans_plan:edit", args=[plan.pk])

    response = client_for(designer).post(url, plan_data(
        criteria_potential="", **{"criteria_potential-incomplete": json.dumps(["Age (years) ≥ (no value)"])}))

    assert response.context["form"].errors["criteria_potential"] == [
        "This condition is incomplete: Age (years) ≥ (no value). Give it a value or remove it."]
    plan.refresh_from_db()
    assert plan.criteria["POTENTIAL"]["text"] == "age >= 65"


def test_the_plan_page_shows_cut_offs_as_people_write_them(designer, geo):
    plan = BenefitPlan.objects.create(code="CG", name="Child grant", score_cutoff=Decimal("10"),
                                      score_formula={"text": "age", "rule": {"field": "age"}})
    PlanCutoff.objects.create(plan=plan, location=geo.region, cutoff=Decimal("2.5"))

    page = client_for(designer).get(reverse("plans_plan:inspect", args=[plan.pk])).content.decode()

    assert "<dt>Cut-off elsewhere</dt><dd>10</dd>" in page
    assert f"<dt>Cut-off in {geo.region.name}</dt><dd>2.5</dd>" in page and ".0000" not in page
