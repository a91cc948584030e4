"""Maker-checker in a real browser: a clerk edits a registered person, which becomes a request; the
same clerk finds no way to approve it and a crafted POST is refused; a checker approves it from the
inbox; the change is applied (Huey runs tasks in-process in the tests) and the request shows it."""

import pytest
from playwright.sync_api import expect

from schemes.registry.models import Individual
from tests.browser.helpers import TIMEOUT_MS, BrowserProblems, log_in, screenshot
from tests.factories import IndividualFactory, UserFactory
from workflows.models import ApprovalRequest, ApprovalRule, RequestStatus, WorkflowDefinition, WorkflowStep

pytestmark = pytest.mark.browser


@pytest.fixture
def world(geo, clerk_a):
    from django.contrib.auth.models import Group

    definition = WorkflowDefinition.objects.create(operation="registry.change_individual")
    WorkflowStep.objects.create(definition=definition, group=Group.objects.get(name="Checker"),
                                rule=ApprovalRule.ANY, sort_order=0)
    checker = UserFactory(username="checker_a", role="Checker", locations=[geo.district_a])
    person = IndividualFactory(first_name="Neema", last_name="Mwakasege", location=geo.village_a)
    return clerk_a, checker, person


def test_a_change_waits_for_a_checker_then_is_applied(live_server, browser, world, screenshots):
    clerk, checker, person = world
    origin = live_server.url
    problems = BrowserProblems()
    expect.set_options(timeout=TIMEOUT_MS)

    maker = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    maker.set_default_timeout(TIMEOUT_MS)
    problems.watch(maker, origin)
    log_in(maker, origin, clerk.username)
    maker.goto(f"{origin}/admin/registry/individuals/edit/{person.pk}/")
    maker.fill("#id_last_name", "Mwakasege-Otieno")
    maker.get_by_role("button", name="Save").first.click()
    expect(maker.get_by_text("Sent for approval")).to_be_visible()
    request = ApprovalRequest.objects.get()
    assert Individual.objects.get(pk=person.pk).last_name == "Mwakasege"
    expect(maker.get_by_role("button", name="Approve")).to_have_count(0)
    token = maker.locator("input[name=csrfmiddlewaretoken]").first.get_attribute("value")
    maker.request.post(f"{origin}/admin/approvals/{request.pk}/decide/",
                       form={"verdict": "approve", "csrfmiddlewaretoken": token})
    assert ApprovalRequest.objects.get(pk=request.pk).status == RequestStatus.PENDING
    screenshot(maker, screenshots / "approval_maker_waiting.png")

    approver = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    approver.set_default_timeout(TIMEOUT_MS)
    problems.watch(approver, origin)
    log_in(approver, origin, checker.username)
    approver.get_by_role("link", name="Approvals (1)").click()
    screenshot(approver, screenshots / "approval_inbox.png")
    approver.get_by_role("link", name=f"Change individual {person}").click()
    expect(approver.get_by_test_id("diff")).to_contain_text("Mwakasege-Otieno")
    approver.fill("#decision-comment", "Checked against the marriage certificate")
    approver.get_by_role("button", name="Approve").click()
    expect(approver.get_by_test_id("status")).to_have_text("Applied")
    screenshot(approver, screenshots / "approval_applied.png")

    assert Individual.objects.get(pk=person.pk).last_name == "Mwakasege-Otieno"
    assert problems.ours() == {}
