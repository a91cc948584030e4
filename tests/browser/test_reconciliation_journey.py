"""Reconciliation in a real browser: on an approved payroll's page an accountant uploads the provider's
file (paid, unpaid and broken rows), reads the preview, downloads the rows with errors, imports the
valid rows, uploads the same file again and sees that nothing changes, then asks to close the payroll
with the line still due marked unpaid; a checker approves and the payroll is reconciled; the
accountant opens and closes the cycle. Huey runs jobs in-process in the tests."""

import csv
import io

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from playwright.sync_api import expect

from schemes.bulk.models import Upload
from schemes.payments import services
from schemes.payments.models import LineStatus, PaymentCycle, PaymentLine, Payroll, PayrollStatus
from schemes.payments.reconciliation import HEADERS
from schemes.plans.models import BenefitPlan
from tests.browser.helpers import TIMEOUT_MS, BrowserProblems, screenshot, signed_in_page
from tests.browser.test_payments_journey import approve
from tests.factories import UserFactory
from tests.schemes.payments.conftest import CYCLE_START, FORMULA, enrol, household_of
from workflows.models import ApprovalRule, WorkflowDefinition, WorkflowStep
from workflows.services import approval_decide

pytestmark = pytest.mark.browser


@pytest.fixture
def world(geo, member_roles, django_capture_on_commit_callbacks):
    """An approved payroll of three lines: 800 and 900, and 1100 above the transaction limit."""
    from decimal import Decimal

    checkers = Group.objects.get(name="Checker")
    for operation in ("payments.approve_payroll", "payments.close_payroll"):
        definition = WorkflowDefinition.objects.create(operation=operation)
        WorkflowStep.objects.create(definition=definition, group=checkers, rule=ApprovalRule.ANY, sort_order=0)
    WorkflowDefinition.objects.create(operation="bulk.import", requires_approval=False)
    plan = BenefitPlan.objects.create(code="CG", name="Child grant")
    plan.activate()
    plan.save()
    heads = [household_of(size, location=geo.village_a, under_5=under_5) for size, under_5 in ((3, 0), (5, 1), (6, 0))]
    for head in heads:
        enrol(plan, head)
    accountant = UserFactory(username="accountant", role="Accountant", national=True)
    checker = UserFactory(username="checker", role="Checker", national=True)
    designer = UserFactory(username="designer", role="Scheme administrator", national=True)
    payment_plan = services.payment_plan_create(by=designer, fields={
        "code": "CG-PAY", "name": "Child grant payments", "benefit_plan": plan, "formula": FORMULA,
        "ceiling_per_beneficiary": Decimal("1200.00"), "limit_per_transaction": Decimal("1000.00"),
        "periodicity": 2, "currency": "TZS", "target_statuses": ["ACTIVE"]})
    cycle = PaymentCycle.objects.create(code="CG-2025-01", start_date=CYCLE_START, end_date=CYCLE_START.replace(
        month=2, day=28))
    with django_capture_on_commit_callbacks(execute=True):
        payroll = services.payroll_generate_start(payment_plan=payment_plan, cycle=cycle, by=accountant)
    with django_capture_on_commit_callbacks(execute=True):
        request = services.payroll_submit(payroll=Payroll.objects.get(pk=payroll.pk), by=accountant)
    with django_capture_on_commit_callbacks(execute=True):
        approval_decide(request=request, verdict="approve", by=checker)
    payroll = Payroll.objects.get(pk=payroll.pk)
    assert payroll.status == PayrollStatus.APPROVED
    return {"payroll": payroll, "lines": {line.amount: line for line in PaymentLine.objects.filter(payroll=payroll)}}


def provider_file(path, payroll, lines):
    """The export, returned by the provider: 800 paid, 900 not paid, and two broken rows: a code that
    is no line's, and the 1100 line with a Paid that is neither Yes nor No."""
    paid, unpaid, broken = lines[800], lines[900], lines[1100]

    def cells(line, code, receipt, said):
        person = line.recipient
        return [payroll.name, "Approved for payment", person.first_name, person.last_name, person.dob.isoformat(),
                code, "Due", str(line.amount), "Cash", receipt, said]

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADERS)
    writer.writerows([cells(paid, paid.code, "MPESA-0001", "Yes"), cells(unpaid, unpaid.code, "", "No"),
                      cells(paid, "PL999999999", "MPESA-0002", "Yes"), cells(broken, broken.code, "", "Maybe")])
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


def upload(page, path, screenshots, name, status="Checked: ready to import"):
    page.get_by_test_id("reconcile-upload").click()
    expect(page.locator("#id_kind")).to_have_value("RECONCILIATION")
    page.locator("#id_file").set_input_files(str(path))
    page.get_by_role("button", name="Upload and check").click()
    expect(page.get_by_test_id("upload-status")).to_have_text(status)
    screenshot(page, screenshots / name)


def import_it(page, origin):
    """Submit the import (approval of imports is off here: it runs at once) and come back to the upload."""
    page.get_by_role("button", name="Submit the import").click()
    expect(page.get_by_text("Import submitted")).to_be_visible()
    page.goto(origin + reverse("bulk_upload:inspect", args=[Upload.objects.latest("pk").pk]))
    expect(page.get_by_test_id("upload-status")).to_have_text("Imported")


def test_an_accountant_reconciles_a_payroll_and_closes_it(live_server, browser, world, tmp_path, screenshots):
    origin, problems = live_server.url, BrowserProblems()
    expect.set_options(timeout=TIMEOUT_MS)
    payroll, lines = world["payroll"], world["lines"]
    path = provider_file(tmp_path / "mpesa-returned.csv", payroll, lines)

    accountant = signed_in_page(browser, origin, problems, "accountant")
    accountant.goto(origin + reverse("payments_payroll:inspect", args=[payroll.pk]))
    upload(accountant, path, screenshots, "reconciliation_checked.png")
    counts = accountant.get_by_test_id("upload-counts")
    expect(counts).to_contain_text("Lines to mark paid")
    expect(accountant.get_by_test_id("upload-errors")).to_contain_text("benefit_consumption_not_found")
    expect(accountant.get_by_test_id("upload-errors")).to_contain_text("paid_column_invalid_value")
    expect(accountant.get_by_test_id("upload-sample")).to_contain_text("MPESA-0001")
    with accountant.expect_download() as download:
        accountant.get_by_role("link", name="Download the rows with errors").click()
    errors = list(csv.DictReader(io.StringIO(download.value.path().read_text(encoding="utf-8-sig"))))
    assert [(row["Code"], row["errors"]) for row in errors] == [
        ("PL999999999", "Code: benefit_consumption_not_found: No payment line has this code."),
        (lines[1100].code, "Paid: paid_column_invalid_value: Paid must be Yes or No.")]
    import_it(accountant, origin)
    assert statuses(payroll) == {800: LineStatus.PAID, 900: LineStatus.UNPAID, 1100: LineStatus.DUE}
    paid = PaymentLine.objects.get(pk=lines[800].pk)
    assert paid.receipt == "MPESA-0001" and paid.paid_on is not None

    # The same file again: every good row changes nothing, so there is nothing to submit.
    accountant.get_by_test_id("upload-payroll").click()
    expect(accountant.get_by_test_id("reconciliations")).to_contain_text("Imported")
    before = list(PaymentLine.objects.filter(payroll=payroll).order_by("pk").values())
    upload(accountant, path, screenshots, "reconciliation_again.png",
           status="Checked: nothing to import: 2 rows with errors, the others already so")
    expect(counts).to_contain_text("Rows that change nothing")
    assert accountant.get_by_test_id("upload-sample").count() == 0  # no line changes
    expect(accountant.get_by_role("button", name="Submit the import")).to_have_count(0)
    assert list(PaymentLine.objects.filter(payroll=payroll).order_by("pk").values()) == before

    # Close, with the line still due marked unpaid; a checker approves.
    accountant.get_by_test_id("upload-payroll").click()
    expect(accountant.get_by_test_id("lines-due")).to_have_text("1 line is still due.")
    screenshot(accountant, screenshots / "reconciliation_payroll.png")
    accountant.get_by_label("Close with the 1 line still due marked unpaid").check()
    accountant.get_by_role("button", name="Submit the closing for approval").click()
    expect(accountant.get_by_text("Closing sent for approval")).to_be_visible()

    checker = signed_in_page(browser, origin, problems, "checker")
    approve(checker, origin, "Close payroll", screenshots, "reconciliation_close_approval.png")
    accountant.goto(origin + reverse("payments_payroll:inspect", args=[payroll.pk]))
    expect(accountant.get_by_test_id("payroll-status")).to_have_text("Reconciled")
    expect(accountant.get_by_test_id("reconcile-upload")).to_have_count(0)
    screenshot(accountant, screenshots / "reconciliation_closed.png")
    assert statuses(payroll) == {800: LineStatus.PAID, 900: LineStatus.UNPAID, 1100: LineStatus.UNPAID}

    # The cycle: opened by its payroll, then closed once the accountant leaves the unpaid lines unpaid.
    accountant.goto(origin + reverse("payments_cycle:inspect", args=[payroll.cycle_id]))
    expect(accountant.get_by_test_id("cycle-status")).to_have_text("Open")
    expect(accountant.get_by_test_id("cycle-left-unpaid")).to_be_visible()  # not "every payroll is paid"
    expect(accountant.get_by_role("button", name="Open the cycle")).to_have_count(0)
    accountant.get_by_role("button", name="Close the cycle").click()  # refused: two lines unpaid, no follow-up
    expect(accountant.get_by_test_id("cycle-status")).to_have_text("Open")
    expect(accountant.get_by_test_id("cycle-left-unpaid")).to_contain_text("unpaid lines and no follow-up payroll")
    accountant.get_by_label("Close the cycle leaving those lines unpaid").check()
    accountant.get_by_role("button", name="Close the cycle").click()
    expect(accountant.get_by_test_id("cycle-status")).to_have_text("Closed")
    expect(accountant.get_by_test_id("cycle-payrolls")).to_contain_text("Reconciled")
    screenshot(accountant, screenshots / "reconciliation_cycle_closed.png")
    assert problems.ours() == {}, problems.ours()


def statuses(payroll):
    return dict(PaymentLine.objects.filter(payroll=payroll).values_list("amount", "status"))
