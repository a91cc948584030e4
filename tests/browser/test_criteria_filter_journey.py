"""The "Criteria" filter on the individuals list in a real browser: a district-A clerk writes a rule in
the filter menu, the list shows only the people it selects (in district A only), the active filter
names the rule, and the CSV the page offers carries the same criteria; a rule that does not check
shows the parser's message instead of a list. No CSP violation, console error or failed request."""

import datetime
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import TIMEOUT_MS, BrowserProblems, screenshot, signed_in_page
from tests.factories import IndividualFactory, RegistryFieldFactory, UserFactory

pytestmark = pytest.mark.browser
RULE = "children >= 3 and sex == \"F\""


@pytest.fixture
def people(geo):
    RegistryFieldFactory(name="children", label="Children", field_type="integer")
    adult = datetime.date(1985, 1, 1)
    for name, sex, children, village in (
            ("Amina", "F", 3, geo.village_a), ("Baraka", "M", 4, geo.village_a),
            ("Chausiku", "F", 5, geo.village_a), ("Doto", "F", 1, geo.village_a),
            ("Zawadi", "F", 6, geo.village_b)):  # district B: never listed for this clerk
        IndividualFactory(first_name=name, last_name="Mollel", sex=sex, dob=adult, location=village,
                          attributes={"children": children})


def test_criteria_filter_on_the_individuals_list(live_server, browser, people, geo, screenshots):
    UserFactory(username="criteria_clerk", role="Clerk", locations=[geo.district_a])
    origin, problems = live_server.url, BrowserProblems()
    expect.set_options(timeout=TIMEOUT_MS)
    page = signed_in_page(browser, origin, problems, "criteria_clerk")
    page.goto(f"{origin}/admin/registry/individuals/")
    results = page.locator("#listing-results")
    expect(results).to_contain_text("Baraka")

    page.get_by_role("button", name="Show filters").click()
    page.locator("[data-w-drilldown-target=toggle][aria-controls=drilldown-id_criteria]").click()
    criteria = page.locator("textarea[name=criteria]")
    page.locator("[data-rule-builder]:has(textarea[name=criteria]) [data-mode=text]").click()
    criteria.fill(RULE)
    expect(results).not_to_contain_text("Baraka")
    expect(results).to_contain_text("Amina")
    expect(results).to_contain_text("Chausiku")
    expect(results).not_to_contain_text("Doto")
    expect(results).not_to_contain_text("Zawadi")
    # The builder's live count is limited to the clerk's district too.
    expect(page.locator("[data-rule-builder]:has(textarea[name=criteria]) [data-count]")).to_contain_text(": 2")
    screenshot(page, screenshots / "exports-criteria-filter.png")
    screenshot(page, "/tmp/exports-criteria-filter.png")

    # The page's CSV download carries the same criteria.
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Actions").click()
    csv_link = page.get_by_role("link", name="Download CSV")
    assert parse_qs(urlparse(csv_link.get_attribute("href")).query)["criteria"] == [RULE]

    # A rule that does not check: the parser's message, no list.
    page.goto(f"{origin}/admin/registry/individuals/?criteria=childrn+>=+3")
    expect(results).to_contain_text("Criteria: At character 1: Unknown field 'childrn'")
    expect(results).not_to_contain_text("Amina")
    screenshot(page, "/tmp/exports-criteria-invalid.png")

    assert not problems.ours(), problems.ours()


def test_criteria_in_the_builder_on_a_plans_beneficiary_list(live_server, browser, geo, screenshots):
    """Filtered to one plan, the builder offers the plan's own fields; the rule opens in it."""
    from django.utils import timezone

    from schemes.plans.models import Beneficiary, BenefitPlan, PlanField

    plan = BenefitPlan.objects.create(code="CG-X", name="Child grant (exports)", status="ACTIVE")
    PlanField.objects.create(plan=plan, name="grade", label="School grade", field_type="integer")
    now = timezone.now()
    for name, grade, village in (("Amina", 5, geo.village_a), ("Baraka", 2, geo.village_a),
                                 ("Zawadi", 6, geo.village_b)):
        Beneficiary.objects.create(plan=plan, individual=IndividualFactory(first_name=name, location=village),
                                   attributes={"grade": grade}, enrolled_at=now, status_changed_at=now)
    UserFactory(username="criteria_officer", role="Clerk", locations=[geo.district_a])
    origin, problems = live_server.url, BrowserProblems()
    expect.set_options(timeout=TIMEOUT_MS)
    page = signed_in_page(browser, origin, problems, "criteria_officer")
    page.goto(f"{origin}/admin/plans/beneficiaries/?plan={plan.pk}&criteria=grade+%3E%3D+4")
    results = page.locator("#listing-results")
    expect(results).to_contain_text("Amina")
    expect(results).not_to_contain_text("Baraka")
    expect(results).not_to_contain_text("Zawadi")

    page.get_by_role("button", name="Show filters").click()
    page.locator("[data-w-drilldown-target=toggle][aria-controls=drilldown-id_criteria]").click()
    builder = page.locator("[data-rule-builder]:has(textarea[name=criteria])")
    expect(builder.locator("[data-mode=builder]")).to_have_attribute("aria-pressed", "true")
    expect(builder.locator("[data-builder] select:has(option[value=grade])")).to_have_value("grade")
    screenshot(page, screenshots / "exports-beneficiaries-criteria.png")
    screenshot(page, "/tmp/exports-beneficiaries-criteria.png")
    assert not problems.ours(), problems.ours()
