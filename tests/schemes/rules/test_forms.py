"""The rule form field and its widget: what a form gets back, the errors people read, the initial
values it takes, and a rendering that the Content-Security-Policy allows (no inline script or style,
the fields in a data attribute, the script and style sheet as static files)."""

import json
import re

import pytest
from django import forms
from django.utils.html import escape

from schemes.rules.forms import RuleBuilderWidget, RuleField, set_rules_user
from schemes.rules.nodes import to_json
from schemes.rules.parser import MAX_TEXT, parse
from schemes.rules.subjects import SUBJECTS, Subject, register_subject
from tests.factories import RegistryFieldFactory, UserFactory

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
