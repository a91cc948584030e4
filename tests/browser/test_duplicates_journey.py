"""The duplicate queue in a real browser: a clerk scans (the job runs in-process), opens the pair the
scan found, asks to merge it keeping one record; a checker approves; the pair shows the merge, and
the clerk asks to undo it. No console error, no CSP violation, no failed request on our pages."""

import datetime

import pytest
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from schemes.registry.models import DuplicateCandidate, DuplicateStatus, Individual
from tests.browser.helpers import TIMEOUT_MS, BrowserProblems, log_in, screenshot
from tests.factories import IndividualFactory, UserFactory
from workflows.models import ApprovalRequest, WorkflowDefinition, WorkflowStep

pytestmark = pytest.mark.browser


@pytest.fixture
def world(geo, clerk_a):
    for operation in ("registry.merge", "registry.unmerge"):
        WorkflowStep.objects.create(definition=WorkflowDefinition.objects.create(operation=operation),
                                    group=Group.objects.get(name="Checker"), sort_order=0)
    checker = UserFactory(username="dupes_checker", role="Checker", locations=[geo.district_a])
    dob = datetime.date(1986, 4, 9)
    kept = IndividualFactory(first_name="Mwanaisha", last_name="Kombo", dob=dob, location=geo.village_a,
                             national_id="KOMBO0001")
    duplicate = IndividualFactory(first_name="Mwanaisha", last_name="Kombbo", dob=dob, location=geo.village_a,
                                  national_id="KOMBO0002")
    return clerk_a, checker, kept, duplicate


def new_page(browser, problems, origin):  # noqa: F811 (the browser fixture)
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.set_default_timeout(TIMEOUT_MS)
    problems.watch(page, origin)
    return page


def test_scan_review_merge_approve_and_undo(live_server, browser, world, screenshots):  # noqa: F811
    clerk, checker, kept, duplicate = world
    origin = live_server.url
    problems = BrowserProblems()
    expect.set_options(timeout=TIMEOUT_MS)

    maker = new_page(browser, problems, origin)
    log_in(maker, origin, clerk.username)
    maker.goto(f"{origin}/admin/registry/duplicates/")
    maker.get_by_role("button", name="Scan for duplicates").click()
    expect(maker.get_by_test_id("last-scan")).to_contain_text("1 possible duplicate found")
    screenshot(maker, screenshots / "duplicates_queue.png")

    maker.get_by_role("link", name="Mwanaisha Kombo / Mwanaisha Kombbo").click()
    expect(maker.get_by_test_id("comparison")).to_contain_text("KOMBO0002")
    screenshot(maker, screenshots / "duplicates_compare.png")
    maker.get_by_role("button", name="Merge — keep this one").first.click()
    expect(maker.get_by_text("Merge requested")).to_be_visible()
    assert DuplicateCandidate.objects.get().status == DuplicateStatus.MERGE_REQUESTED

    approver = new_page(browser, problems, origin)
    log_in(approver, origin, checker.username)
    approver.get_by_role("link", name="Approvals (1)").click()
    approver.get_by_role("link", name=f"Merge {duplicate} (id {duplicate.pk}) into {kept} (id {kept.pk})").click()
    expect(approver.get_by_test_id("diff")).to_contain_text("Kombbo")
    approver.get_by_role("button", name="Approve").click()
    expect(approver.get_by_test_id("status")).to_have_text("Applied")

    assert Individual.objects.get(pk=duplicate.pk).merged_into_id == kept.pk
    pair = DuplicateCandidate.objects.get()
    maker.goto(f"{origin}/admin/registry/duplicates/inspect/{pair.pk}/")
    expect(maker.get_by_test_id("pair-status")).to_have_text("Merged")
    maker.get_by_role("button", name="Undo the merge").click()
    expect(maker.get_by_text("Undoing the merge is requested")).to_be_visible()
    assert ApprovalRequest.objects.filter(operation="registry.unmerge").count() == 1
    screenshot(maker, screenshots / "duplicates_unmerge_requested.png")

    assert problems.ours() == {}
