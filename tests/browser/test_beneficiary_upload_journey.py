"""Beneficiaries from a spreadsheet in a real browser: from the plan's page a clerk opens "Import
beneficiaries" (the plan is preselected), uploads an XLSX saved by Excel with a registered person (by
national ID), a new person and a bad row, reads the counts, submits; a checker approves; the plan
has its two new beneficiaries and the upload is in the plan's upload history."""

import openpyxl
import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from playwright.sync_api import expect

from schemes.plans.models import Beneficiary, BenefitPlan, PlanField
from tests.browser.helpers import TIMEOUT_MS, BrowserProblems, screenshot, signed_in_page
from tests.factories import IndividualFactory, UserFactory
from workflows.models import WorkflowDefinition, WorkflowStep

pytestmark = pytest.mark.browser


@pytest.fixture
def world(geo, member_roles):
    WorkflowStep.objects.create(definition=WorkflowDefinition.objects.create(operation="bulk.import"),
                                group=Group.objects.get(name="Checker"), sort_order=0)
    plan = BenefitPlan.objects.create(code="CG", name="Child grant", status="ACTIVE")
    PlanField.objects.create(plan=plan, name="grade", label="Grade", field_type="integer", required=True,
                             min_value=1, max_value=12, sort_order=0)
    return {"plan": plan,
            "known": IndividualFactory(national_id="TZ777", first_name="Rehema", location=geo.village_a),
            "clerk": UserFactory(username="clerk", role="Clerk", locations=[geo.district_a]),
            "checker": UserFactory(username="checker", role="Checker", locations=[geo.district_a])}


def test_a_clerk_imports_beneficiaries_from_an_xlsx_file(live_server, browser, world, geo, tmp_path, screenshots):
    origin, problems = live_server.url, BrowserProblems()
    expect.set_options(timeout=TIMEOUT_MS)
    plan = world["plan"]
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["National ID", "First name", "Last name", "Date of birth", "Sex", "Location", "Grade"])
    sheet.append(["tz 777", None, None, None, None, None, 4])
    sheet.append(["TZ-888", "Juma", "Mrisho", "2016-05-04", "M", geo.village_a.code, 2])
    sheet.append(["TZ-999", "Zawadi", "Kombo", "2016-05-04", "F", geo.village_a.code, 14])
    path = tmp_path / "child-grant.xlsx"
    book.save(path)

    clerk = signed_in_page(browser, origin, problems, "clerk")
    clerk.goto(origin + reverse("plans_plan:inspect", args=[plan.pk]))
    clerk.get_by_role("link", name="Import beneficiaries").click()
    expect(clerk.locator("#id_plan")).to_have_value(str(plan.pk))
    expect(clerk.locator("#id_kind")).to_have_value("BENEFICIARIES")
    clerk.locator("#id_file").set_input_files(str(path))
    clerk.get_by_role("button", name="Upload and check").click()
    expect(clerk.get_by_test_id("upload-status")).to_have_text("Checked: ready to import")
    counts = clerk.get_by_test_id("upload-counts")
    expect(counts).to_contain_text("Registered people or households enrolled")
    screenshot(clerk, screenshots / "beneficiary_upload_checked.png")
    with clerk.expect_download() as download:
        clerk.get_by_role("link", name="Download the rows with errors").click()
    assert "Grade: Must be at most 12." in download.value.path().read_text(encoding="utf-8-sig")
    clerk.get_by_role("button", name="Submit the import").click()
    expect(clerk.get_by_text("Import submitted")).to_be_visible()
    assert not Beneficiary.objects.exists()

    checker = signed_in_page(browser, origin, problems, "checker")
    checker.goto(f"{origin}/admin/approvals/")
    checker.get_by_role("link", name="Import 2 rows of child-grant.xlsx into Child grant (CG)").click()
    expect(checker.get_by_test_id("sample")).to_contain_text("Row 3: Juma Mrisho (new)")
    screenshot(checker, screenshots / "beneficiary_upload_approval.png")
    checker.get_by_role("button", name="Approve").click()
    expect(checker.get_by_test_id("status")).to_have_text("Applied")

    enrolled = dict(Beneficiary.objects.filter(plan=plan).values_list("individual__national_id", "attributes"))
    assert enrolled == {"TZ777": {"grade": 4}, "TZ888": {"grade": 2}}
    clerk.goto(origin + reverse("plans_plan:inspect", args=[plan.pk]))
    clerk.get_by_test_id("plan-uploads").click()
    expect(clerk.locator("main")).to_contain_text("child-grant.xlsx")
    expect(clerk.locator("main")).to_contain_text("Imported")
    screenshot(clerk, screenshots / "beneficiary_upload_history.png")
    assert problems.ours() == {}, problems.ours()
