"""The provider API end to end: an accountant creates a provider's token in the admin (the secret shown
once), the provider's system reads the approved payroll's lines and posts a reconciliation batch with
it, the accountant revokes the token and it stops working."""

import json
import urllib.error
import urllib.request

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from schemes.payments import services
from schemes.payments.models import LineStatus, PaymentLine, Payroll
from tests.browser.helpers import TIMEOUT_MS, BrowserProblems, screenshot, signed_in_page
from tests.browser.test_payments_journey import world  # noqa: F401 (the fixture)
from workflows.services import approval_decide

pytestmark = pytest.mark.browser


def call(origin, path, secret, body=None, key=None):
    headers = {"Authorization": f"Token {secret}", "Content-Type": "application/json"}
    if key:
        headers["Idempotency-Key"] = key
    request = urllib.request.Request(origin + path, data=json.dumps(body).encode() if body else None,
                                     headers=headers, method="POST" if body else "GET")
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


@pytest.fixture
def approved(world, geo):  # noqa: F811 (world is the imported fixture)
    accountant = world["accountant"]
    cycle = services.cycle_create(code="C1", start_date="2025-01-01", end_date="2025-01-31", by=accountant)
    payroll = services.payroll_generate_start(payment_plan=world["payment_plan"], cycle=cycle, by=accountant)
    request = services.payroll_submit(payroll=Payroll.objects.get(pk=payroll.pk), by=accountant)
    approval_decide(request=request, verdict="approve", by=world["checker"])
    provider = services.provider_create(fields={"code": "MPESA", "name": "M-Pesa"}, by=accountant)
    services.point_create(fields={"code": "MP-A", "name": "District A", "provider": provider,
                                  "location": geo.district_a}, by=accountant)
    return Payroll.objects.get(pk=payroll.pk), provider


def test_an_accountant_issues_a_token_the_provider_uses_then_it_is_revoked(live_server, browser, approved,
                                                                          screenshots):
    origin, problems = live_server.url, BrowserProblems()
    expect.set_options(timeout=TIMEOUT_MS)
    payroll, provider = approved

    page = signed_in_page(browser, origin, problems, "accountant")
    page.goto(origin + reverse("payments_provider:index"))
    page.get_by_role("button", name="More options for 'M-Pesa'").click()
    page.get_by_role("link", name="API tokens").click()
    page.get_by_label("Name").fill("M-Pesa disbursement system")
    page.get_by_role("button", name="Create a token").click()
    secret = page.get_by_test_id("secret").inner_text().strip()
    screenshot(page, screenshots / "provider_token_created.png")
    assert secret.startswith("mzp_")

    status, payrolls = call(origin, "/api/v1/payrolls/", secret)
    assert status == 200 and [p["id"] for p in payrolls["results"]] == [payroll.pk]
    status, lines = call(origin, f"/api/v1/payrolls/{payroll.pk}/lines/", secret)
    assert status == 200 and len(lines["results"]) == 2  # the line above the limit is not released
    rows = [{"code": line["code"], "paid": True, "receipt": f"MP-{number}", "paid_on": timezone.localdate().isoformat()}
            for number, line in enumerate(lines["results"])]
    path = f"/api/v1/payrolls/{payroll.pk}/reconciliation/"
    assert call(origin, path, secret, {"rows": rows}, key="batch-1") == (200, {
        "payroll": payroll.pk, "rows": 2, "paid": 2, "unpaid": 0, "unchanged": 0, "errors": []})
    assert call(origin, path, secret, {"rows": rows}, key="batch-1")[1]["paid"] == 2  # replayed, not re-applied
    assert PaymentLine.objects.filter(payroll=payroll, status=LineStatus.PAID).count() == 2

    page.goto(origin + reverse("payments_provider:tokens", args=[provider.pk]))
    expect(page.get_by_test_id("tokens")).to_contain_text("M-Pesa disbursement system")
    page.get_by_role("button", name="Revoke").click()
    expect(page.get_by_test_id("tokens")).to_contain_text("Revoked")
    screenshot(page, screenshots / "provider_token_revoked.png")
    assert call(origin, "/api/v1/payrolls/", secret)[0] == 401
    assert problems.ours() == {}
