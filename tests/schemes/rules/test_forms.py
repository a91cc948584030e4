"""The rule form field and its widget: what a form gets back, the errors people read, the initial
values it takes, and a rendering that the Content-Security-Policy allows (no inline script or style,
the fields in a data attribute, the script and style sheet as static files)."""

import json
import re

import pytest
from django import forms
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from schemes.plans.models import BenefitPlan
from schemes.rules.forms import RuleBuilderWidget, RuleField, set_rules_user
from schemes.rules.nodes import to_json
from schemes.rules.parser import MAX_TEXT, parse
from schemes.rules.subjects import SUBJECTS, Subject, register_subject
from tests.factories import IndividualFactory, RegistryFieldFactory, UserFactory

pytestmark = pytest.mark.django_db


class CriteriaForm(forms.Form):
    criteria = RuleField("individual", required=False, label="Who qualifies")
    formula = RuleField(expect="number", required=False)
    needed = RuleField()


def bound(**data):
    return CriteriaForm(data={"criteria": "", "formula": "", "needed": "age >= 0", **data})


@pytest.fixture
def children_field(db):
    return RegistryFieldFactory(name="children", label="Children", field_type="integer")


def test_a_rule_cleans_to_its_text_and_ast(children_field):
    form = bound(criteria="  (age >= 18 and\r\n children > 2) ")
    assert form.is_valid(), form.errors
    assert form.cleaned_data["criteria"] == {"text": "(age >= 18 and\n children > 2)",
                                             "rule": to_json(parse("age >= 18 and children > 2"))}


def test_an_empty_optional_rule_is_none_and_a_required_one_is_missing():
    form = bound(criteria="  ", needed="\n")
    assert not form.is_valid()
    assert form.errors == {"needed": ["This field is required."]}
    empty = bound()
    assert empty.is_valid() and empty.cleaned_data["criteria"] is None


@pytest.mark.parametrize("text, error", [
    ("age >= 'x'", "At character 1: '>=' compares a number with text."),
    ("age > 1 and colour == 1", "At character 13: Unknown field 'colour'."),
    ("(age > 1 and\r\n    a.b)", "At character 18: Attribute access (a.b) is not allowed in a rule."),
    ("a" * (MAX_TEXT + 1), f"The expression is longer than {MAX_TEXT} characters."),
])
def test_errors_name_the_character_and_the_plain_message(text, error):
    form = bound(criteria=text)
    assert not form.is_valid()
    assert form.errors["criteria"][0].startswith(error)


def test_the_expected_type_is_checked(children_field):
    assert bound(formula="children * 100").is_valid()
    form = bound(formula="children > 1")
    assert not form.is_valid()
    assert "must give a number, but it gives yes/no" in form.errors["formula"][0]
    assert "must give yes/no" in bound(criteria="children * 100").errors["criteria"][0]


@pytest.mark.parametrize("initial, shown", [
    ({"text": "age >= 18", "rule": to_json(parse("age >= 18"))}, "age >= 18"),
    ({"rule": to_json(parse("age >= 18 and sex in ['F']"))}, 'age >= 18 and sex in ["F"]'),
    ("age > 60", "age > 60"),
    (None, ""),
    ({}, ""),
])
def test_initial_values_are_stored_rules_or_text(initial, shown):
    form = CriteriaForm(initial={"criteria": initial})
    html = str(form["criteria"])
    assert re.search(r"<textarea[^>]*>\n" + re.escape(escape(shown)) + "</textarea>", html), html
    assert not form["criteria"].field.has_changed(initial, shown)
    assert form["criteria"].field.has_changed(initial, shown + " and age < 99")


def builder_fields(form, name):
    root = re.search(r"<div class=\"rule-builder\"[^>]*>", str(form[name])).group(0)
    return json.loads(re.search(r'data-fields="([^"]*)"', root).group(1).replace("&quot;", '"'))


@pytest.mark.parametrize("role, allowed", [("Clerk", True), ("Viewer", False), (None, False)])
def test_sensitive_fields_are_offered_and_accepted_only_for_users_who_may_see_them(role, allowed):
    RegistryFieldFactory(name="bank_account", label="Bank account", field_type="text", sensitive=True)
    form = bound(criteria='bank_account == "ACC1"')
    if role:  # without a user, no one may name them
        set_rules_user(form, UserFactory(role=role, national=True))

    assert form.is_valid() is allowed
    assert any(field["name"] == "bank_account" for field in builder_fields(form, "criteria")) is allowed
    if not allowed:
        assert form.errors["criteria"] == ["At character 1: 'bank_account' is sensitive: only users who may see "
                                           "sensitive data can use it in a rule."]


def test_the_widget_renders_without_inline_script_or_style(children_field):
    html = str(CriteriaForm(initial={"criteria": "age > 1"})["criteria"])
    assert "<script" not in html and "style=" not in html and " on" not in re.sub(r'"[^"]*"', '""', html)
    root = re.search(r"<div class=\"rule-builder\"[^>]*>", html).group(0)
    fields = json.loads(re.search(r'data-fields="([^"]*)"', root).group(1).replace("&quot;", '"'))
    assert {"name": "children", "label": "Children", "type": "number", "choices": []} in fields
    assert {"name": "age", "label": "Age (years)", "type": "number", "choices": []} in fields
    assert {"name": "sex", "label": "Sex", "type": "text", "choices": ["F", "M", "O"]} in fields
    assert 'data-subject="individual"' in root and 'data-check-url="/admin/rules/check/"' in root
    assert 'data-expect="boolean"' in root and 'data-subject-label="Individuals"' in root
    assert f'maxlength="{MAX_TEXT}"' in html and 'id="id_criteria"' in html and "required" not in html
    assert ">Builder</button>" in html and ">Text</button>" in html
    assert '<output class="rule-builder__count" data-count for="id_criteria"' in html


def test_a_rule_whose_builder_shows_incomplete_conditions_is_refused_naming_them(children_field):
    """QA: clearing the value of age >= 65 in the builder saved the rule as none (everyone qualifies)."""
    one = bound(criteria="", **{"criteria-incomplete": json.dumps(["Age (years) ≥ (no value)"])})
    two = bound(criteria="children > 2", **{"criteria-incomplete": json.dumps(["Age (years) ≥ (no value)",
                                                                                "Sex = (no value)"])})

    assert not one.is_valid() and not two.is_valid()
    assert one.errors == {"criteria": ["This condition is incomplete: Age (years) ≥ (no value). Give it a value or "
                                       "remove it."]}
    assert two.errors["criteria"] == ["2 conditions are incomplete: Age (years) ≥ (no value); Sex = (no value). "
                                      "Give each a value or remove it."]
    assert 'name="criteria"' in str(two["criteria"]) and "children &gt; 2</textarea>" in str(two["criteria"])
    assert bound(criteria="children > 2", **{"criteria-incomplete": ""}).is_valid()


def test_the_builder_has_a_place_for_its_incomplete_conditions_a_formula_none():
    html = str(CriteriaForm()["criteria"]) + str(CriteriaForm()["formula"])
    assert html.count("data-incomplete") == 1
    assert '<input type="hidden" name="criteria-incomplete" data-incomplete disabled>' in html


def test_a_formula_has_no_builder():
    html = str(CriteriaForm()["formula"])
    assert "data-builder" not in html and "data-mode" not in html
    assert 'data-expect="number"' in html


def test_the_script_and_style_sheet_are_static_files():
    media = CriteriaForm().media
    assert media._js == ["rules/rule_builder.js"]
    assert media._css == {"all": ["rules/rule_builder.css"]}
    assert isinstance(CriteriaForm().fields["criteria"].widget, RuleBuilderWidget)


def test_subjects_can_be_registered_once_by_name():
    household = Subject("Households", catalogue=lambda argument: None, queryset_for=lambda user, argument: None)
    try:
        register_subject("household_test", household)
        register_subject("household_test", household)  # the same again: harmless
        assert SUBJECTS["household_test"] is household
        with pytest.raises(ValueError, match="already registered"):
            register_subject("household_test", Subject("Other", catalogue=lambda argument: None, queryset_for=lambda user, argument: None))
    finally:
        SUBJECTS.pop("household_test", None)


# --- openIMIS filter strings, wherever a rule is typed ----------------------------------------

@pytest.mark.parametrize("typed, text", [
    ("children__gte__integer=3", "children >= 3"),
    ("children__gte__integer=3\r\nsex__iexact__string=\"f\"", 'children >= 3 and lower(sex) == "f"'),
    ('["children__gte__integer=3", "sex__exact__string=\\"F\\""]', 'children >= 3 and sex == "F"'),
])
def test_openimis_filters_are_stored_as_the_rule_they_mean(children_field, typed, text):
    form = bound(criteria=typed)
    assert form.is_valid(), form.errors
    assert form.cleaned_data["criteria"] == {"text": text, "rule": to_json(parse(text))}


def test_our_language_is_stored_as_written(children_field):
    form = bound(criteria="children>=3")
    assert form.is_valid(), form.errors
    assert form.cleaned_data["criteria"]["text"] == "children>=3"


@pytest.mark.parametrize("typed, error", [
    ("children__between__integer=3",
     "'children__between__integer=3': 'between' is not an openIMIS lookup; use exact, lt, lte, gt, gte."),
    ("children__gte__float=3",
     "'children__gte__float=3': 'float' is not an openIMIS type; use string, integer, decimal, date, boolean."),
    ('children__gte__integer="three"', "'children__gte__integer=\"three\"': '\"three\"' is not a number."),
    ("children__gte__integer=3\nchildren > 1", "'children > 1' is not an openIMIS filter "
                                                "<field>__<lookup>__<type>=<value>."),
    ("children__gte__integer=3\r\nsalary__gt__decimal=1", "At character 26: Unknown field 'salary'."),
    ("sex__exact__string=X", "At character 1: 'X' is not one of the choices of sex: F, M, O."),
])
def test_bad_openimis_filters_are_refused_naming_the_filter(children_field, typed, error):
    form = bound(criteria=typed)
    assert not form.is_valid()
    assert form.errors["criteria"][0].startswith(error), form.errors["criteria"][0]


def test_an_openimis_formula_is_refused_as_giving_yes_or_no(children_field):
    form = bound(formula="children__gte__integer=3")
    assert not form.is_valid()
    assert "must give a number, but it gives yes/no" in form.errors["formula"][0]


@pytest.fixture
def registry(geo):
    RegistryFieldFactory(name="income", field_type="decimal")
    RegistryFieldFactory(name="educated_level", field_type="choice", choices=["primary", "secondary"])
    for name, income, level in (("Amina", "150000", "primary"), ("Baraka", "99999.99", "primary"),
                                ("Chausiku", "250000", "secondary")):
        IndividualFactory(first_name=name, location=geo.village_a, attributes={"income": income,
                                                                               "educated_level": level})
    return Client()


def listed(client, user, criteria):
    client.force_login(user)
    response = client.get(reverse("registry_individual:index"), {"criteria": criteria})
    assert response.status_code == 200
    return response, sorted(person.first_name for person in response.context["object_list"])


@pytest.mark.parametrize("criteria, names", [
    ("income__gte__decimal=100000", ["Amina", "Chausiku"]),
    ('income__gte__decimal=100000\neducated_level__iexact__string="PRIMARY"', ["Amina"]),
    ('["income__lt__decimal=200000", "educated_level__exact__string=\\"primary\\""]', ["Amina", "Baraka"]),
    ("income >= 100000", ["Amina", "Chausiku"]),
])
def test_the_registry_lists_criteria_filter_reads_openimis_filters(registry, clerk_a, criteria, names):
    _, found = listed(registry, clerk_a, criteria)
    assert found == names


def test_the_registry_lists_criteria_filter_shows_an_openimis_filters_meaning(registry, clerk_a):
    response, found = listed(registry, clerk_a, "income__gte__decimal=100000")
    assert found == ["Amina", "Chausiku"]
    assert "income &gt;= 100000" in response.content.decode()  # the active filter, in our language


def test_the_registry_lists_criteria_filter_names_a_bad_openimis_filter(registry, clerk_a):
    response, found = listed(registry, clerk_a, "income__between__decimal=1")
    assert found == []
    assert ("Criteria: &#x27;income__between__decimal=1&#x27;: &#x27;between&#x27; is not an openIMIS lookup; use "
            "exact, lt, lte, gt, gte.") in response.content.decode()


def test_a_plans_criteria_typed_as_openimis_filters_are_saved_as_the_rule_they_mean(children_field):
    designer = UserFactory(role="Scheme administrator", national=True)
    client = Client()
    client.force_login(designer)
    management = {f"{prefix}-{key}": value for prefix in ("fields", "cutoffs")
                  for key, value in (("TOTAL_FORMS", "0"), ("INITIAL_FORMS", "0"), ("MIN_NUM_FORMS", "0"),
                                     ("MAX_NUM_FORMS", "1000"))}
    form = {"code": "CG", "name": "Child grant", "plan_type": "INDIVIDUAL", "currency": "TZS", "description": "",
            "institution": "", "max_beneficiaries": "100", "criteria_potential": "children__gte__integer=2",
            "criteria_active": '["children__gte__integer=2", "sex__iexact__string=\\"f\\""]',
            "score_formula_text": "", "score_cutoff": "", **management}

    refused = client.post(reverse("plans_plan:add"), {**form, "criteria_potential": "children__gte__string=2"})
    assert refused.status_code == 200
    assert refused.context["form"].errors["criteria_potential"] == [
        "'children__gte__string=2': 'gte' does not apply to string; use exact, iexact, istartswith, icontains."]

    client.post(reverse("plans_plan:add"), form)
    plan = BenefitPlan.objects.get(code="CG")
    assert plan.criteria == {
        "POTENTIAL": {"text": "children >= 2", "rule": to_json(parse("children >= 2"))},
        "ACTIVE": {"text": 'children >= 2 and lower(sex) == "f"',
                   "rule": to_json(parse('children >= 2 and lower(sex) == "f"'))},
    }
