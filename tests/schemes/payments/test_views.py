"""The payroll export (exact openIMIS headers, formula-safe, scoped, audited, only when approved), the
screens' scope and the person's benefits section."""

import csv
import io
from decimal import Decimal

import pytest
from django.urls import NoReverseMatch, reverse
from wagtail.models import ModelLogEntry

from schemes.payments import services
from schemes.payments.models import Payroll, PayrollStatus
from tests.factories import PASSWORD, UserFactory
from workflows.services import approval_decide

pytestmark = pytest.mark.django_db

HEADERS = "Payroll Name,Payroll Status,First Name,Last Name,Date of Birth,Code,Status,Amount,Type,Receipt,Paid"


@pytest.fixture
def approved(payment_plan, cycle, people, accountant, checkers, payroll_workflow, django_capture_on_commit_callbacks):
    head = people["three"].individual
    head.first_name = "=HYPERLINK(\"http://x\")"
    head.save()
    with django_capture_on_commit_callbacks(execute=True):
        payroll = services.payroll_generate_start(payment_plan=payment_plan, cycle=cycle, by=accountant)
    with django_capture_on_commit_callbacks(execute=True):
        request = services.payroll_submit(payroll=Payroll.objects.get(pk=payroll.pk), by=accountant)
    with django_capture_on_commit_callbacks(execute=True):
        approval_decide(request=request, verdict="approve", by=checkers[0][0])
    return Payroll.objects.get(pk=payroll.pk)


BOM = b"\xef\xbb\xbf"


def csv_of(client, user, payroll):
    """The export's response and text; the text after the one BOM it starts with."""
    client.login(username=user.username, password=PASSWORD)
    response = client.get(reverse("payments_payroll:export_csv", args=[payroll.pk]))
    if response.status_code != 200:
        return response, ""
    raw = b"".join(response.streaming_content)
    assert raw.startswith(BOM) and not raw[len(BOM):].startswith(BOM)
    return response, raw[len(BOM):].decode("utf-8")


def test_the_export_starts_with_the_bom_so_that_a_spreadsheet_reads_accented_names(client, approved, accountant,
                                                                                  people):
    person = people["six"].individual
    person.first_name, person.last_name = "José", "Müller-Ñúñez"
    person.save()

    response, text = csv_of(client, accountant, approved)

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert ",José,Müller-Ñúñez," in text


def test_the_export_has_the_reconciliation_headers_and_is_formula_safe(client, approved, accountant):
    response, text = csv_of(client, accountant, approved)

    rows = text.strip().splitlines()
    assert rows[0] == HEADERS
    assert len(rows) == 1 + 3  # the line above the limit waits for its own approval (test_over_limit)
    assert any(row.startswith(f"{approved.name},Approved for payment,\"'=HYPERLINK") for row in rows)
    assert all(row.endswith(",Cash,,") for row in rows[1:])
    assert ",800.00," in text
    assert ModelLogEntry.objects.filter(action="mizani.export", object_id=str(approved.pk)).get().data["rows"] == 3


def test_a_district_accountant_exports_only_their_district(client, approved, geo):
    district = UserFactory(role="Accountant", locations=[geo.district_b])

    _response, text = csv_of(client, district, approved)

    assert len(text.strip().splitlines()) == 1 + 1  # single_b only


def test_a_payroll_waiting_for_approval_is_not_exported(client, payment_plan, cycle, people, accountant,
                                                         django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        payroll = services.payroll_generate_start(payment_plan=payment_plan, cycle=cycle, by=accountant)

    response, _text = csv_of(client, accountant, payroll)

    assert response.status_code == 302
    assert Payroll.objects.get(pk=payroll.pk).status == PayrollStatus.GENERATED


def test_a_viewer_cannot_export_or_see_payrolls(client, approved, geo):
    viewer = UserFactory(role="Viewer", national=True)
    response, _text = csv_of(client, viewer, approved)
    assert response.status_code == 404


def test_payrolls_have_no_edit_or_delete_screen(approved):
    for name in ("payments_payroll:edit", "payments_payroll:delete", "payments_line:edit", "payments_line:delete"):
        with pytest.raises(NoReverseMatch):
            reverse(name, args=[approved.pk])


def test_payroll_screens_and_the_persons_benefits(client, approved, accountant, people):
    client.login(username=accountant.username, password=PASSWORD)
    assert client.get(reverse("payments_payroll:index")).status_code == 200
    assert client.get(reverse("payments_payroll:inspect", args=[approved.pk])).status_code == 200
    assert client.get(reverse("payments_line:index")).status_code == 200
    person = people["five_with_baby"].individual
    from schemes.registry.selectors import person_payments

    rows = person_payments(person, accountant).totals
    assert rows == [{"payroll__payment_plan__name": "Child grant payments", "currency": "TZS",
                     "due": Decimal("1100.00"), "due_lines": 1, "received": Decimal("0.00"), "received_lines": 0}]
    record = client.get(reverse("registry_individual:inspect", args=[person.pk])).content.decode()
    assert "<td>1,100.00 TZS (1)</td><td>0.00 TZS (0)</td>" in record


def test_the_payment_search_and_payroll_lists_export_their_rows(client, approved, accountant):
    """The lists' exports carry their rows, not an empty file."""
    client.force_login(accountant)
    lines = client.get(reverse("payments_line:index") + "?export=csv")
    codes = {row["Code"] for row in csv.DictReader(io.StringIO(b"".join(lines.streaming_content).decode("utf-8-sig")))}
    assert codes == {line.code for line in approved.lines.all()}
    payrolls = client.get(reverse("payments_payroll:index") + "?export=csv")
    assert approved.seal_hash in b"".join(payrolls.streaming_content).decode("utf-8-sig")
