"""A programme in a real browser: a scheme administrator defines a plan and its criteria; an
officer previews and submits an enrolment; a checker approves it (Huey runs in-process in tests);
the officer suspends and reinstates a beneficiary."""

import datetime

import pytest
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from schemes.plans.models import Beneficiary, BeneficiaryStatus, BenefitPlan
from tests.browser.helpers import TIMEOUT_MS, BrowserProblems, screenshot, signed_in_page
from tests.factories import IndividualFactory, RegistryFieldFactory, UserFactory
from workflows.models import WorkflowDefinition, WorkflowStep

pytestmark = pytest.mark.browser


@pytest.fixture
def world(geo):
    RegistryFieldFactory(name="children", label="Children", field_type="integer")
    definition = WorkflowDefinition.objects.create(operation="plans.enrol")
    WorkflowStep.objects.create(definition=definition, group=Group.objects.get(name="Checker"), sort_order=0)
    # One beneficiary's status changes at once here (approval off for it).
    WorkflowDefinition.objects.create(operation="plans.beneficiary_status", requires_approval=False)
    born = datetime.date(1990, 1, 1)
    for name, children in (("Amina", 3), ("Baraka", 1), ("Chausiku", 4)):
        IndividualFactory(first_name=name, last_name="Mollel", dob=born, location=geo.village_a,
                          attributes={"children": children})
    return {
        "designer": UserFactory(username="designer", role="Scheme administrator", national=True),
        "officer": UserFactory(username="officer", role="Clerk", locations=[geo.district_a]),
        "checker": UserFactory(username="checker", role="Checker", locations=[geo.district_a]),
    }


def text_mode(page, field):
    """Write a rule field as text (it opens in the builder)."""
    page.locator(f"[data-rule-builder]:has(textarea[name={field}])").get_by_role("button", name="Text").click()


def test_a_plan_from_definition_to_beneficiaries(live_server, browser, world, screenshots):
    origin, problems = live_server.url, BrowserProblems()
    expect.set_options(timeout=TIMEOUT_MS)

    designer = signed_in_page(browser, origin, problems, "designer")
    designer.goto(f"{origin}/admin/plans/new/")
    designer.fill("#id_code", "CG-1")
    designer.fill("#id_name", "Child grant")
    designer.fill("#id_currency", "TZS")
    text_mode(designer, "criteria_potential")
    designer.fill("#id_criteria_potential", "children >= 'two'")
    designer.get_by_role("button", name="Create").click()
    expect(designer.locator(".error-message", has_text="compares a number with text")).to_be_visible()
    text_mode(designer, "criteria_potential")
    designer.fill("#id_criteria_potential", "children >= 2")
    designer.get_by_role("button", name="Create").click()
    plan = BenefitPlan.objects.get(code="CG-1")
    designer.goto(f"{origin}/admin/plans/inspect/{plan.pk}/")
    designer.get_by_role("link", name="Activate the plan…").click()
    designer.get_by_role("button", name="Activate").click()
    expect(designer.get_by_test_id("plan-status")).to_have_text("Active")
    screenshot(designer, screenshots / "plan_page.png")

    officer = signed_in_page(browser, origin, problems, "officer")
    officer.goto(f"{origin}/admin/plans/enrol/{plan.pk}/")
    expect(officer.locator("#id_rule")).to_have_value("children >= 2")
    officer.get_by_role("button", name="Preview").click()
    expect(officer.get_by_test_id("preview")).to_contain_text("Would be added")
    screenshot(officer, screenshots / "plan_enrol_preview.png")
    officer.get_by_role("button", name="Submit for approval").click()
    expect(officer.get_by_text("Enrolment sent for approval")).to_be_visible()
    assert not Beneficiary.objects.exists()

    checker = signed_in_page(browser, origin, problems, "checker")
    checker.get_by_role("link", name="Approvals (1)").click()
    checker.get_by_role("link", name="Enrol 2 as potential in Child grant (CG-1)").click()
    checker.get_by_role("button", name="Approve").click()
    expect(checker.get_by_test_id("status")).to_have_text("Applied")
    assert set(Beneficiary.objects.values_list("individual__first_name", flat=True)) == {"Amina", "Chausiku"}

    beneficiary = Beneficiary.objects.get(individual__first_name="Amina")
    officer.goto(f"{origin}/admin/plans/beneficiaries/inspect/{beneficiary.pk}/")
    officer.get_by_role("link", name="Activate…").click()
    expect(officer.get_by_test_id("status-change")).to_contain_text("Potential → Active")
    officer.get_by_role("button", name="Activate").click()
    expect(officer.get_by_test_id("beneficiary-status")).to_have_text("Active")
    officer.get_by_role("link", name="Suspend…").click()
    officer.fill("#id_reason", "Missed two health visits")
    officer.get_by_role("button", name="Suspend").click()
    expect(officer.get_by_test_id("beneficiary-status")).to_have_text("Suspended")
    officer.get_by_role("link", name="Reinstate…").click()
    officer.get_by_role("button", name="Reinstate").click()
    expect(officer.get_by_test_id("beneficiary-status")).to_have_text("Active")
    screenshot(officer, screenshots / "plan_beneficiary.png")

    assert Beneficiary.objects.get(pk=beneficiary.pk).status == BeneficiaryStatus.ACTIVE
    assert problems.ours() == {}, problems.ours()
