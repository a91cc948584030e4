"""Targeting and household plans in a real browser: a scheme administrator changes an active
household plan's score formula and regional cut-off (a new version, approved by a checker, who sees
the diff); an officer simulates the targeting, enrols the qualifying households from the simulation
(approved by the checker), activates them all with one bulk status change and edits one's plan data."""

import datetime

import pytest
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from schemes.plans.models import BeneficiaryStatus, BenefitPlan, HouseholdBeneficiary, PlanField
from tests.browser.helpers import TIMEOUT_MS, BrowserProblems, screenshot, signed_in_page
from tests.browser.test_plan_journey import text_mode
from tests.factories import HouseholdFactory, IndividualFactory, MembershipFactory, UserFactory
from workflows.models import WorkflowDefinition, WorkflowStep

pytestmark = pytest.mark.browser


@pytest.fixture
def world(geo, member_roles):
    checkers = Group.objects.get(name="Checker")
    for operation in ("plans.enrol", "plans.change"):
        WorkflowStep.objects.create(definition=WorkflowDefinition.objects.create(operation=operation),
                                    group=checkers, sort_order=0)
    for operation in ("plans.bulk_status", "plans.beneficiary_data"):
        WorkflowDefinition.objects.create(operation=operation, requires_approval=False)
    # Households of 1 to 5 people in district A; the score below is 10 - 2 x size: 8, 6, 4, 2, 0.
    for size in range(1, 6):
        household = HouseholdFactory(code=f"HH-SIZE-{size}", location=geo.village_a)
        for n in range(size):
            person = IndividualFactory(first_name=f"Member{n}", last_name=f"Size{size}", location=geo.village_a,
                                       dob=datetime.date(1980 + n, 1, 1))
            MembershipFactory(household=household, individual=person,
                              role_id="HEAD" if n == 0 else "SON", recipient_type="PRIMARY" if n == 0 else None)
    plan = BenefitPlan.objects.create(code="HS-1", name="Household support", plan_type="HOUSEHOLD")
    PlanField.objects.create(plan=plan, name="bank_account", label="Bank account", field_type="text", unique=True)
    plan.activate()
    plan.save()
    plan.save_revision(clean=False)
    return {
        "plan": plan,
        "designer": UserFactory(username="designer", role="Scheme administrator", national=True),
        "officer": UserFactory(username="officer", role="Clerk", locations=[geo.district_a]),
        "checker": UserFactory(username="checker", role="Checker", national=True),
    }


def approve_latest(checker, origin, title):
    checker.goto(f"{origin}/admin/approvals/")
    checker.get_by_role("link", name=title).click()
    checker.get_by_role("button", name="Approve").click()
    expect(checker.get_by_test_id("status")).to_have_text("Applied")


def test_targeting_from_formula_to_active_households(live_server, browser, world, geo, screenshots):
    origin, problems = live_server.url, BrowserProblems()
    expect.set_options(timeout=TIMEOUT_MS)
    plan = world["plan"]

    designer = signed_in_page(browser, origin, problems, "designer")
    designer.goto(f"{origin}/admin/plans/edit/{plan.pk}/")
    designer.fill("#id_score_formula_text", "10 - 2 * household_size")
    designer.fill("#id_score_cutoff", "3")
    designer.get_by_role("button", name="Add cut-off").click()
    designer.locator("#id_cutoffs-0-location").select_option(str(geo.region.pk))
    designer.fill("#id_cutoffs-0-cutoff", "5")
    screenshot(designer, screenshots / "targeting_plan_edit.png")
    designer.get_by_role("button", name="Save").click()
    expect(designer.get_by_text("Sent for approval")).to_be_visible()
    assert BenefitPlan.objects.get(pk=plan.pk).score_formula == {}  # nothing changes before approval

    checker = signed_in_page(browser, origin, problems, "checker")
    checker.goto(f"{origin}/admin/approvals/")
    checker.get_by_role("link", name="Change Household support (HS-1) (a new version)").click()
    expect(checker.locator("main")).to_contain_text("10 - 2 * household_size")
    screenshot(checker, screenshots / "targeting_plan_change_diff.png")
    checker.get_by_role("button", name="Approve").click()
    expect(checker.get_by_test_id("status")).to_have_text("Applied")
    assert BenefitPlan.objects.get(pk=plan.pk).score_formula["text"] == "10 - 2 * household_size"

    officer = signed_in_page(browser, origin, problems, "officer")
    officer.goto(f"{origin}/admin/plans/simulate/{plan.pk}/")
    text_mode(officer, "criteria")
    officer.fill("#id_criteria", "household_size >= 1")
    officer.fill("#id_amount", "25000")
    officer.get_by_role("button", name="Simulate").click()
    expect(officer.locator("main")).to_contain_text("Qualifying")
    screenshot(officer, screenshots / "targeting_simulation.png")
    officer.get_by_role("button", name="Enrol these (submit for approval)").click()
    approve_latest(checker, origin, "Enrol 3 as potential in Household support (HS-1)")
    # Region cut-off 5: sizes 3, 4 and 5 (scores 4, 2, 0) qualify.
    enrolled = HouseholdBeneficiary.objects.filter(plan=plan)
    assert set(enrolled.values_list("household__code", flat=True)) == {"HH-SIZE-3", "HH-SIZE-4", "HH-SIZE-5"}

    officer.goto(f"{origin}/admin/plans/household-beneficiaries/?plan={plan.pk}")
    officer.get_by_test_id("bulk-status").click()
    officer.locator("#id_action").select_option("activate")
    officer.get_by_role("button", name="Preview").click()
    expect(officer.get_by_test_id("preview")).to_contain_text("Would become active")
    screenshot(officer, screenshots / "targeting_bulk_status.png")
    officer.get_by_role("button", name="Submit").click()
    assert set(enrolled.values_list("status", flat=True)) == {BeneficiaryStatus.ACTIVE}

    beneficiary = enrolled.get(household__code="HH-SIZE-3")
    officer.goto(f"{origin}/admin/plans/household-beneficiaries/inspect/{beneficiary.pk}/")
    officer.get_by_role("link", name="Edit plan data").click()
    officer.fill("#id_attr_bank_account", "TZ-001-2233")
    officer.get_by_role("button", name="Save").click()
    expect(officer.get_by_test_id("plan-data")).to_contain_text("TZ-001-2233")
    screenshot(officer, screenshots / "targeting_household_beneficiary.png")

    officer.goto(f"{origin}/admin/registry/households/inspect/{beneficiary.household_id}/")
    expect(officer.get_by_test_id("person-plans")).to_contain_text("Household support")
    assert problems.ours() == {}, problems.ours()
