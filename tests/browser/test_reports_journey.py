"""Reports in a real browser, on demo data (seed_demo) plus a pending request and an upload in
Kasulu: the manager of region Pwani finds the four reports under Reports, filters the beneficiaries by
district (and downloads the CSV), the payments by plan and the uploads by date; the checker filters
the pending approvals. Screenshots of each."""

import datetime
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from schemes.bulk.models import Upload, UploadKind, UploadStatus
from sites.models import Location
from tests.browser.helpers import BrowserProblems, demo_password, screenshot, signed_in_page
from workflows.models import ApprovalRequest

pytestmark = pytest.mark.browser

LAPTOP = {"width": 1366, "height": 900}


@pytest.fixture
def demo(db, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_demo", households=200, verbosity=0, stdout=open("/dev/null", "w"))
    users = get_user_model().objects
    clerk, kasulu, checker = users.get(username="clerk"), Location.objects.get(code="R01-D01"), \
        Group.objects.get(name="Checker")
    request = ApprovalRequest.objects.create(
        operation="bulk.import", maker=clerk, location=kasulu, summary={"title": "Import people.csv"},
        steps=[{"group_id": checker.pk, "group": checker.name, "rule": "any", "required": 1}],
        waiting_group=checker, total=Decimal("0"))
    ApprovalRequest.objects.filter(pk=request.pk).update(created_at=timezone.now() - datetime.timedelta(days=9))
    Upload.objects.create(kind=UploadKind.INDIVIDUALS, stored_name="journey.csv", original_name="people.csv",
                          uploaded_by=clerk, scope_root=kasulu, status=UploadStatus.READY, has_error_file=True,
                          counts={"rows": 120, "valid": 117, "errors": 3})
    return kasulu


def session(browser, origin, problems, username):
    return signed_in_page(browser, origin, problems, username, demo_password(username), viewport=LAPTOP)


def test_reports_on_demo_data(live_server, browser, screenshots, demo):
    origin = live_server.url
    problems = BrowserProblems()

    manager = session(browser, origin, problems, "manager")
    manager.get_by_role("button", name="Reports").click()
    menu = manager.locator("[data-wagtail-sidebar]")
    for report in ("Pending approvals", "Upload history", "Beneficiaries by status per plan",
                   "Payments due and paid per cycle"):
        expect(menu.get_by_role("link", name=report)).to_be_visible()
    manager.wait_for_timeout(500)  # the submenu slides in
    manager.screenshot(path=str(screenshots / "reports-01-menu-manager.png"))
    menu.get_by_role("link", name="Beneficiaries by status per plan").click()
    table = manager.locator("[data-testid=report-table]")
    expect(table).to_be_visible()
    region_total = int(table.locator("tfoot th").last.inner_text().replace(",", ""))
    manager.select_option("#id_location", label=f"— {demo.name}")
    manager.get_by_role("button", name="Apply").click()
    expect(manager.locator("#id_location option:checked")).to_have_text(f"— {demo.name}")
    totals = table.locator("tbody tr td:last-child").all_inner_texts()
    district_total = sum(int(text.replace(",", "")) for text in totals)
    assert 0 < district_total < region_total
    screenshot(manager, screenshots / "reports-02-beneficiaries-district-manager.png")
    with manager.expect_download() as download:
        manager.get_by_test_id("report-csv").click()
    lines = open(download.value.path(), encoding="utf-8-sig").read().splitlines()  # BOM first: Excel
    assert lines[0] == "Plan,Potential,Active,Suspended,Graduated,Rejected,Total"
    assert sum(int(line.rsplit(",", 1)[1]) for line in lines[1:]) == district_total

    checker = session(browser, origin, problems, "checker")
    checker.goto(origin + reverse("dashboards_reports:pending_approvals") + "?operation=bulk.import&age=older")
    expect(checker.get_by_role("link", name="Import people.csv")).to_be_visible()
    expect(checker.get_by_text("1 of 1: Checker")).to_be_visible()
    screenshot(checker, screenshots / "reports-03-pending-approvals-checker.png")

    manager.goto(origin + reverse("dashboards_reports:payments_due_vs_paid"))
    expect(table.locator("tbody tr").first).to_be_visible()
    manager.select_option("#id_plan", label="Child Grant (CG-01)")
    manager.get_by_role("button", name="Apply").click()
    expect(table.locator("tbody tr td:nth-child(2)").first).to_have_text("Child Grant payments")
    screenshot(manager, screenshots / "reports-04-payments-manager.png")

    manager.goto(origin + reverse("dashboards_reports:upload_history") + f"?kind={UploadKind.INDIVIDUALS}")
    expect(manager.get_by_role("link", name="Rows with errors")).to_be_visible()
    expect(manager.get_by_text("120 in the file, 117 to import, 3 with errors")).to_be_visible()
    # Filter by the upload's date in the filters panel (the browser's own date pickers).
    manager.get_by_role("button", name="Show filters").click()
    manager.locator("[data-w-drilldown-target=toggle]", has_text="Uploaded between").click()
    manager.fill("input[name=uploaded_after]", (timezone.localdate() + datetime.timedelta(days=1)).isoformat())
    expect(manager.locator("#listing-results")).not_to_contain_text("people.csv")
    manager.fill("input[name=uploaded_after]", timezone.localdate().isoformat())
    expect(manager.locator("#listing-results")).to_contain_text("people.csv")
    screenshot(manager, screenshots / "reports-05-upload-history-manager.png")

    # The manager is neither maker nor checker of the pending request: the checker is.
    manager.goto(origin + reverse("dashboards_reports:pending_approvals"))
    expect(manager.get_by_text("Import people.csv")).to_have_count(0)

    assert problems.ours() == {}
