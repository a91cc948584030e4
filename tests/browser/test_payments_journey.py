"""Payments in a real browser: an accountant generates a schedule of cycles, tests the formula,
generates a payroll and submits it; a checker approves it; the accountant exports it (the line above
the transaction limit left out), asks for that line's release, the checker approves, and the export
then carries it. Huey runs jobs in-process in the tests: the payroll is sealed when the page opens."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from playwright.sync_api import expect

from schemes.payments import services
from schemes.payments.models import PaymentCycle, Payroll, PayrollStatus
from schemes.plans.models import BenefitPlan
from tests.browser.helpers import TIMEOUT_MS, BrowserProblems, screenshot, signed_in_page
from tests.factories import UserFactory
from tests.schemes.payments.conftest import FORMULA, enrol, household_of
from workflows.models import ApprovalRule, WorkflowDefinition, WorkflowStep

pytestmark = pytest.mark.browser


@pytest.fixture
def world(geo, member_roles):
    checkers = Group.objects.get(name="Checker")
    for operation in ("payments.approve_payroll", "payments.release_over_limit"):
        definition = WorkflowDefinition.objects.create(operation=operation)
        WorkflowStep.objects.create(definition=definition, group=checkers, rule=ApprovalRule.ANY, sort_order=0)
    plan = BenefitPlan.objects.create(code="CG", name="Child grant")
    plan.activate()
    plan.save()
    for size, under_5 in ((3, 0), (5, 1), (6, 0)):
        enrol(plan, household_of(size, location=geo.village_a, under_5=under_5))
    designer = UserFactory(username="designer", role="Scheme administrator", national=True)
    payment_plan = services.payment_plan_create(by=designer, fields={
        "code": "CG-PAY", "name": "Child grant payments", "benefit_plan": plan, "formula": FORMULA,
        "ceiling_per_beneficiary": Decimal("1200.00"), "limit_per_transaction": Decimal("1000.00"),
        "periodicity": 2, "currency": "TZS", "target_statuses": ["ACTIVE"]})
    return {"payment_plan": payment_plan, "village": geo.village_a,
            "accountant": UserFactory(username="accountant", role="Accountant", national=True),
            "checker": UserFactory(username="checker", role="Checker", national=True)}


def approve(checker, origin, title_part, screenshots, name):
    checker.goto(origin + reverse("workflows_approvals:index"))
    checker.get_by_role("link", name=title_part).first.click()
    expect(checker.get_by_role("button", name="Approve")).to_be_visible()
    checker.wait_for_load_state()
    screenshot(checker, screenshots / name)
    checker.get_by_role("button", name="Approve").click()
    expect(checker.get_by_test_id("status")).to_have_text("Applied")


def export_lines(page):
    with page.expect_download() as download:
        page.get_by_role("link", name="Lines still due in your locations (CSV)").click()
    return open(download.value.path(), encoding="utf-8").read().strip().splitlines()[1:]


def test_an_accountant_pays_a_cycle_checked_by_a_checker(live_server, browser, world, screenshots):
    origin, problems = live_server.url, BrowserProblems()
    expect.set_options(timeout=TIMEOUT_MS)
    payment_plan = world["payment_plan"]

    accountant = signed_in_page(browser, origin, problems, "accountant")
    accountant.goto(origin + reverse("payments_cycle:index"))
    accountant.get_by_role("link", name="Generate a schedule").click()
    accountant.fill("#id_prefix", "CG")
    accountant.fill("#id_first_start", "2025-01-01")
    accountant.select_option("#id_periodicity", "2")
    accountant.fill("#id_count", "6")
    screenshot(accountant, screenshots / "payments_schedule.png")
    accountant.get_by_role("button", name="Generate").click()
    expect(accountant.get_by_text("6 cycles created")).to_be_visible()
    screenshot(accountant, screenshots / "payments_cycles.png")

    accountant.goto(origin + reverse("payments_plan:inspect", args=[payment_plan.pk]))
    expect(accountant.get_by_test_id("payment-plan")).to_contain_text("min(household_size, 4)")
    screenshot(accountant, screenshots / "payments_plan.png")
    accountant.get_by_role("link", name="Formula tester").click()
    accountant.get_by_role("button", name="Test").click()
    expect(accountant.get_by_test_id("formula-sample")).to_contain_text("above the limit")
    screenshot(accountant, screenshots / "payments_formula_tester.png")

    accountant.goto(origin + reverse("payments_plan:inspect", args=[payment_plan.pk]))
    accountant.select_option("#id_cycle", label=str(PaymentCycle.objects.get(code="CG-2025-01")))
    accountant.get_by_role("button", name="Generate payroll").click()
    expect(accountant.get_by_test_id("payroll-status")).to_have_text("Generated: to submit for approval")
    expect(accountant.get_by_test_id("seal")).to_contain_text("2,800.00 TZS")
    expect(accountant.get_by_test_id("over-limit")).to_contain_text("Not released")
    screenshot(accountant, screenshots / "payments_payroll_sealed.png")
    accountant.get_by_role("button", name="Submit for approval").click()
    expect(accountant.get_by_text("Sent for approval")).to_be_visible()
    accountant.goto(origin + reverse("payments_payroll:inspect", args=[Payroll.objects.get().pk]))
    expect(accountant.get_by_test_id("payroll-status")).to_have_text("Waiting for approval")

    checker = signed_in_page(browser, origin, problems, "checker")
    approve(checker, origin, "Approve payroll", screenshots, "payments_payroll_approval.png")
    payroll = Payroll.objects.get()
    assert payroll.status == PayrollStatus.APPROVED

    accountant.goto(origin + reverse("payments_payroll:inspect", args=[payroll.pk]))
    expect(accountant.get_by_test_id("payroll-status")).to_have_text("Approved for payment")
    assert sorted(line.split(",")[7] for line in export_lines(accountant)) == ["800.00", "900.00"]
    accountant.get_by_role("button", name="Submit the lines above the limit for approval").click()
    expect(accountant.get_by_text("Sent for approval")).to_be_visible()

    approve(checker, origin, "Pay the 1 line of", screenshots, "payments_release_approval.png")
    accountant.goto(origin + reverse("payments_payroll:inspect", args=[payroll.pk]))
    expect(accountant.get_by_test_id("over-limit")).to_contain_text("Released for payment")
    assert sorted(line.split(",")[7] for line in export_lines(accountant)) == ["1100.00", "800.00", "900.00"]
    screenshot(accountant, screenshots / "payments_payroll_released.png")

    # The next cycle: one more family enrolled; its payroll shows what changed against this one.
    enrol(payment_plan.benefit_plan, household_of(2, location=world["village"]))
    accountant.goto(origin + reverse("payments_plan:inspect", args=[payment_plan.pk]))
    accountant.select_option("#id_cycle", label=str(PaymentCycle.objects.get(code="CG-2025-03")))
    accountant.get_by_role("button", name="Generate payroll").click()
    expect(accountant.get_by_test_id("payroll-status")).to_have_text("Generated: to submit for approval")
    expect(accountant.get_by_test_id("diff")).to_contain_text("New1 (700.00 TZS)")
    expect(accountant.get_by_test_id("diff")).to_contain_text("Removed0")
    screenshot(accountant, screenshots / "payments_payroll_diff.png")

    assert problems.ours() == {}
