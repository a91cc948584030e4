"""The rule builder in a real browser, on the plan form's "potential beneficiaries" criteria: the
rule opens in the builder, rows and an OR group write the rule's text, the live count follows (in
the user's locations only), a rule the builder cannot show stays in text with a message, a typing
error names its character; no CSP violation, console error or failed request on the way.

Skipped until the plan form's criteria field is a RuleField (its widget carries data-rule-builder)."""

import datetime

import pytest
from playwright.sync_api import expect

from schemes.plans.models import BenefitPlan
from schemes.rules.catalogue import individual_catalogue
from schemes.rules.compiler import compile_rule
from schemes.rules.nodes import to_json
from tests.browser.helpers import TIMEOUT_MS, BrowserProblems, screenshot, signed_in_page
from tests.factories import IndividualFactory, RegistryFieldFactory, UserFactory

pytestmark = pytest.mark.browser
FIELD = "criteria_potential"


@pytest.fixture
def plan(geo):
    RegistryFieldFactory(name="children", label="Children", field_type="integer")
    adult, child = datetime.date(1985, 1, 1), datetime.date(2015, 1, 1)
    for name, sex, dob, children, village in (
            ("Amina", "F", adult, 3, geo.village_a), ("Baraka", "M", adult, 1, geo.village_a),
            ("Chausiku", "F", adult, 4, geo.village_a), ("Dotto", "M", child, 2, geo.village_a),
            ("Zawadi", "F", adult, 5, geo.village_b)):  # district B: never counted for this designer
        IndividualFactory(first_name=name, last_name="Mollel", sex=sex, dob=dob, location=village,
                          attributes={"children": children})
    rule = compile_rule("children >= 2", individual_catalogue(), expect="boolean")
    return BenefitPlan.objects.create(code="CG-B", name="Child grant (builder)",
                                      criteria={"POTENTIAL": {"text": "children >= 2", "rule": to_json(rule)}})


def test_the_rule_builder_on_the_plan_form(live_server, browser, plan, geo, screenshots):
    UserFactory(username="designer_a", role="Scheme administrator", locations=[geo.district_a])
    origin, problems = live_server.url, BrowserProblems()
    expect.set_options(timeout=TIMEOUT_MS)
    page = signed_in_page(browser, origin, problems, "designer_a")
    page.goto(f"{origin}/admin/plans/edit/{plan.pk}/")

    builder = page.locator(f"[data-rule-builder]:has(textarea[name={FIELD}])")
    if not builder.count():
        pytest.skip(f"the plan form's {FIELD} is not a RuleField yet")
    text = builder.locator(f"textarea[name={FIELD}]")
    count = builder.locator("[data-count]")
    message = builder.locator("[data-message]")
    conditions = builder.locator("[data-builder] > fieldset")

    # The stored rule opens in the builder, its count limited to district A.
    expect(builder.get_by_role("button", name="Builder")).to_have_attribute("aria-pressed", "true")
    first = conditions.locator(".rule-builder__row").first
    expect(first.get_by_label("Field")).to_have_value("children")
    expect(first.get_by_label("Operator")).to_have_value(">=")
    expect(first.get_by_label("Value")).to_have_value("2")
    expect(count).to_have_text("Possible beneficiaries matching, in your locations: 3")
    expect(text).to_have_js_property("readOnly", True)

    # A second condition: the text and the count follow.
    conditions.get_by_role("button", name="Add condition").last.click()
    second = conditions.locator(".rule-builder__row").nth(1)
    expect(second.get_by_label("Field")).to_be_focused()
    second.get_by_label("Field").select_option(label="Age (years)")
    second.get_by_label("Operator").select_option(label="≥")
    second.get_by_label("Value").fill("18")
    expect(text).to_have_value("children >= 2 and age >= 18")
    expect(count).to_have_text("Possible beneficiaries matching, in your locations: 2")

    # An OR group inside the AND.
    conditions.get_by_role("button", name="Add group").last.click()
    group = conditions.locator("fieldset")
    expect(group.get_by_label("Match")).to_have_value("or")
    group_first = group.locator(".rule-builder__row").first
    group_first.get_by_label("Field").select_option(label="First name")
    group_first.get_by_label("Operator").select_option(label="is one of")
    group_first.get_by_label("Values, separated by commas").fill('Amina, O"Brien')
    group.get_by_role("button", name="Add condition").click()
    group_second = group.locator(".rule-builder__row").nth(1)
    group_second.get_by_label("Field").select_option(label="Sex")
    group_second.get_by_label("Value").select_option("M")  # the catalogue's choices for sex
    expect(text).to_have_value('children >= 2 and age >= 18 and (first_name in ["Amina", "O\\"Brien"] or sex == "M")')
    expect(count).to_have_text("Possible beneficiaries matching, in your locations: 1")
    screenshot(page, screenshots / "rule_builder.png")

    # A condition left half-done is named, left out of the text and submitted beside it: the form refuses it.
    group_second.get_by_label("Value").select_option("")
    expect(message).to_have_text("1 condition is incomplete: give it a value or remove it before saving.")
    expect(text).to_have_value('children >= 2 and age >= 18 and first_name in ["Amina", "O\\"Brien"]')
    expect(builder.locator("[data-incomplete]")).to_have_value('["Sex = (no value)"]')
    group_second.get_by_role("button", name="Remove condition").click()
    expect(group.get_by_role("button", name="Add condition")).to_be_focused()
    expect(message).to_be_hidden()
    expect(builder.locator("[data-incomplete]")).to_be_disabled()

    # Text mode: arithmetic cannot be shown in the builder, so it stays text, with the reason.
    builder.get_by_role("button", name="Text").click()
    expect(text).to_have_js_property("readOnly", False)
    text.fill("children * 2 > 5")
    expect(count).to_have_text("Possible beneficiaries matching, in your locations: 2")
    builder.get_by_role("button", name="Builder").click()
    expect(message).to_contain_text("parts the builder cannot show")
    expect(builder.get_by_role("button", name="Text")).to_have_attribute("aria-pressed", "true")

    # A mistake names its character; once fixed, the builder shows the rule.
    text.fill("children >= 'two'")
    expect(message).to_have_text("At character 1: '>=' compares a number with text.")
    expect(count).to_have_text("")
    text.fill("sex == 'F' and children >= 4")
    builder.get_by_role("button", name="Builder").click()
    expect(builder.get_by_role("button", name="Builder")).to_have_attribute("aria-pressed", "true")
    expect(conditions.locator(".rule-builder__row")).to_have_count(2)
    expect(conditions.locator(".rule-builder__row").first.get_by_label("Value")).to_have_value("F")
    expect(count).to_have_text("Possible beneficiaries matching, in your locations: 1")

    # "is one of" a field's choices: tick boxes.
    sex = conditions.locator(".rule-builder__row").first
    sex.get_by_label("Operator").select_option(label="is one of")
    sex.get_by_label("F", exact=True).check()
    sex.get_by_label("O", exact=True).check()
    expect(text).to_have_value('sex in ["F", "O"] and children >= 4')
    expect(count).to_have_text("Possible beneficiaries matching, in your locations: 1")
    screenshot(page, screenshots / "rule_builder_from_text.png")

    assert not problems.ours(), problems.ours()
