"""An upload in a real browser: a clerk uploads an openIMIS-style individuals file with good and bad
rows, reads the counts, downloads the rows with errors, submits the valid rows; a checker approves;
the people and their household are in the registry (Huey runs in-process in tests)."""

import csv
import io

import pytest
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from schemes.registry.models import Household, Individual
from tests.browser.helpers import TIMEOUT_MS, BrowserProblems, screenshot, signed_in_page
from tests.factories import UserFactory
from workflows.models import WorkflowDefinition, WorkflowStep

pytestmark = pytest.mark.browser


@pytest.fixture
def world(geo, member_roles):
    WorkflowStep.objects.create(definition=WorkflowDefinition.objects.create(operation="bulk.import"),
                                group=Group.objects.get(name="Checker"), sort_order=0)
    return {"clerk": UserFactory(username="clerk", role="Clerk", locations=[geo.district_a]),
            "checker": UserFactory(username="checker", role="Checker", locations=[geo.district_a])}


def test_a_clerk_uploads_checks_and_imports_a_file(live_server, browser, world, geo, tmp_path, screenshots):
    origin, problems = live_server.url, BrowserProblems()
    expect.set_options(timeout=TIMEOUT_MS)
    village = geo.village_a.code
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";")
    writer.writerow(["First Name", "Last Name", "Date of Birth", "Sex", "National ID", "Location", "group_code",
                     "individual_role", "recipient_info"])
    writer.writerows([
        ["Asha", "Mollel", "1980-02-01", "F", "TZ-001", village, "HH-UP-1", "HEAD", "1"],
        ["Baraka", "Mollel", "2015-06-30", "M", "", village, "HH-UP-1", "SON", ""],
        ["=cmd()", "Mollel", "31/02/1980", "X", "1.23E+15", village, "", "", ""],
    ])
    path = tmp_path / "people-cp1252.csv"
    path.write_bytes(out.getvalue().replace("Asha", "Ashé").encode("cp1252"))

    clerk = signed_in_page(browser, origin, problems, "clerk")
    clerk.goto(f"{origin}/admin/uploads/new/")
    clerk.locator("#id_file").set_input_files(str(path))
    clerk.get_by_role("button", name="Upload and check").click()
    expect(clerk.get_by_test_id("upload-status")).to_have_text("Checked: ready to import")
    counts = clerk.get_by_test_id("upload-counts")
    expect(counts).to_contain_text("Rows with errors")
    screenshot(clerk, screenshots / "upload_checked.png")
    with clerk.expect_download() as download:
        clerk.get_by_role("link", name="Download the rows with errors").click()
    error_file = download.value.path().read_text(encoding="utf-8-sig")
    assert "'=cmd()" in error_file and "not a date as YYYY-MM-DD" in error_file and "Excel" in error_file
    clerk.get_by_role("button", name="Submit the import").click()
    expect(clerk.get_by_text("Import submitted")).to_be_visible()
    assert not Individual.objects.exists()

    checker = signed_in_page(browser, origin, problems, "checker")
    checker.goto(f"{origin}/admin/approvals/")
    checker.get_by_role("link", name="Import 2 rows of people-cp1252.csv").click()
    expect(checker.get_by_test_id("sample")).to_contain_text("Row 3: Baraka Mollel")
    screenshot(checker, screenshots / "upload_approval.png")
    checker.get_by_role("button", name="Approve").click()
    expect(checker.get_by_test_id("status")).to_have_text("Applied")

    assert set(Individual.objects.values_list("first_name", flat=True)) == {"Ashé", "Baraka"}
    assert Household.objects.get(code="HH-UP-1").memberships.count() == 2
    clerk.goto(f"{origin}/admin/uploads/")
    expect(clerk.locator("main")).to_contain_text("Imported")
    screenshot(clerk, screenshots / "upload_history.png")
    assert problems.ours() == {}, problems.ours()
