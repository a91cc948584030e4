"""What every scoped list export does (sites.viewsets.ScopedIndexView), shown on the individuals,
households and upload-history lists: cells a spreadsheet would run are quoted in every column type,
CSV and XLSX, while numbers and dates stay typed in XLSX; XLSX is refused past
MIZANI_EXPORT_XLSX_MAX_ROWS (CSV is not); the CSV streams, criteria or not."""

import csv
import datetime
import io
from decimal import Decimal

import openpyxl
import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from wagtail.models import ModelLogEntry

from schemes.bulk.models import Upload
from schemes.plans.models import Beneficiary, BenefitPlan
from tests.factories import (
    HouseholdFactory,
    IndividualFactory,
    LocationFactory,
    MembershipFactory,
    RegistryFieldFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

INDIVIDUALS = "registry_individual:index"
HOUSEHOLDS = "registry_household:index"
UPLOADS = "bulk_upload:index"
BENEFICIARIES = "plans_beneficiary:index"
# Each starts a formula in Excel, LibreOffice or Google Sheets.
FORMULAS = ['=HYPERLINK("http://e.x","y")', "+1", "@SUM(1+1)", "-2", "\t=1", "\r=1"]


def client_for(user):
    client = Client()
    client.force_login(user)
    return client


def body(response):
    return b"".join(response.streaming_content) if response.streaming else response.content


def csv_rows(response):
    assert response.status_code == 200, response.status_code
    raw = body(response)
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM every CSV for a person starts with (Excel)
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline="")))


def xlsx_rows(response):
    assert response.status_code == 200, response.status_code
    rows = list(openpyxl.load_workbook(io.BytesIO(body(response))).active.iter_rows())
    headings = [cell.value for cell in rows[0]]
    return [dict(zip(headings, row, strict=True)) for row in rows[1:]]


def exports():
    return ModelLogEntry.objects.filter(action="mizani.export")


def assert_quoted(value, original, *, xml=False):
    if xml:  # an XLSX is XML, which reads a carriage return in text back as a line feed
        original = original.replace("\r", "\n")
    assert value == "'" + original, (value, original)


# --- formulas, in every column type ------------------------------------------------------------

@pytest.fixture
def formula_people(geo, member_roles):
    """One person per formula, each text column (core, location code, household code, text and choice
    attributes) starting with it; numbers negative, a date set."""
    RegistryFieldFactory(name="note", field_type="text", sort_order=1)
    RegistryFieldFactory(name="answer", field_type="choice", choices=FORMULAS, sort_order=2)
    RegistryFieldFactory(name="children", field_type="integer", sort_order=3)
    RegistryFieldFactory(name="income", field_type="decimal", sort_order=4)
    RegistryFieldFactory(name="registered_on", field_type="date", sort_order=5)
    people = []
    for n, formula in enumerate(FORMULAS):
        village = LocationFactory(code=f"{formula}L{n}", name=f"Village {n}", parent=geo.ward_a)
        household = HouseholdFactory(code=f"{formula}H{n}", location=village)
        person = IndividualFactory(
            first_name=formula, last_name=formula, national_id=f"{formula}N{n}", phone=formula, location=village,
            attributes={"note": formula, "answer": formula, "children": -2, "income": "-2.50",
                        "registered_on": "2024-03-01"})
        MembershipFactory(household=household, individual=person, role=member_roles["HEAD"])
        people.append(person)
    return people


TEXT_COLUMNS = {"First name": "{f}", "Last name": "{f}", "National ID": "{f}N{n}", "Phone": "{f}",
                "Location code": "{f}L{n}", "Household": "{f}H{n}", "note": "{f}", "answer": "{f}"}


def test_every_text_column_of_the_csv_is_quoted_and_numbers_stay_numbers(formula_people, clerk_a):
    rows = csv_rows(client_for(clerk_a).get(reverse(INDIVIDUALS), {"export": "csv"}))

    assert len(rows) == len(FORMULAS)
    by_id = {int(row["ID"]): row for row in rows}
    for n, person in enumerate(formula_people):
        row = by_id[person.pk]
        for heading, template in TEXT_COLUMNS.items():
            assert_quoted(row[heading], template.format(f=FORMULAS[n], n=n))
        # A number is a number: a spreadsheet reads -2 as minus two, it runs nothing.
        assert (row["children"], row["income"], row["registered_on"]) == ("-2", "-2.50", "2024-03-01")


def test_every_text_cell_of_the_xlsx_is_quoted_text_and_numbers_and_dates_stay_typed(formula_people, clerk_a):
    rows = xlsx_rows(client_for(clerk_a).get(reverse(INDIVIDUALS), {"export": "xlsx"}))

    assert len(rows) == len(FORMULAS)
    by_id = {row["ID"].value: row for row in rows}
    for n, person in enumerate(formula_people):
        row = by_id[person.pk]
        for heading, template in TEXT_COLUMNS.items():
            assert row[heading].data_type == "s", heading
            assert_quoted(row[heading].value, template.format(f=FORMULAS[n], n=n), xml=True)
        assert row["ID"].data_type == "n"
        assert row["children"].value == -2 and row["children"].data_type == "n"
        assert Decimal(str(row["income"].value)) == Decimal("-2.5") and row["income"].data_type == "n"
        assert row["registered_on"].is_date and row["Date of birth"].is_date
        assert row["registered_on"].value in (datetime.date(2024, 3, 1), datetime.datetime(2024, 3, 1))


@pytest.mark.parametrize("export_format", ["csv", "xlsx"])
def test_household_columns_are_quoted_for_a_viewer_too(formula_people, viewer_a, geo, export_format):
    """The households export quotes its codes and attributes, whoever downloads it."""
    RegistryFieldFactory(name="roof", field_type="text", target="household")
    HouseholdFactory(code="=cmd|' /C calc'!A0", location=geo.village_a, attributes={"roof": "@roof"})

    response = client_for(viewer_a).get(reverse(HOUSEHOLDS), {"export": export_format, "q": "cmd"})
    if export_format == "csv":
        [row] = csv_rows(response)
    else:
        [cells] = xlsx_rows(response)
        row = {heading: cell.value for heading, cell in cells.items()}
    assert_quoted(row["Code"], "=cmd|' /C calc'!A0")
    assert_quoted(row["roof"], "@roof")


def test_the_upload_history_export_quotes_file_names(geo, clerk_a):
    Upload.objects.create(kind="INDIVIDUALS", stored_name="u1.csv", original_name="=HYPERLINK(1).csv",
                          status="READY", counts={"rows": 3}, uploaded_by=clerk_a, scope_root=geo.district_a)

    for export_format in ("csv", "xlsx"):
        response = client_for(clerk_a).get(reverse(UPLOADS), {"export": export_format})
        if export_format == "csv":
            [row] = csv_rows(response)
            name = row["File"]
        else:
            [cells] = xlsx_rows(response)
            name = cells["File"].value
        assert_quoted(name, "=HYPERLINK(1).csv")


# --- XLSX only where small ------------------------------------------------------------------------

@pytest.fixture
def three_people(geo):
    RegistryFieldFactory(name="children", field_type="integer")
    return [IndividualFactory(first_name=f"P{n}", location=geo.village_a, attributes={"children": n})
            for n in range(3)]


def test_an_xlsx_export_past_the_limit_is_refused_with_a_pointer_to_csv(three_people, clerk_a, settings):
    settings.MIZANI_EXPORT_XLSX_MAX_ROWS = 2
    client = client_for(clerk_a)

    response = client.get(reverse(INDIVIDUALS), {"export": "xlsx", "sex": "F"})

    assert response.status_code == 302
    assert response["Location"] == reverse(INDIVIDUALS) + "?sex=F"
    assert not response.get("Content-Disposition")
    [message] = [str(m) for m in get_messages(response.wsgi_request)]
    assert "3 rows are too many for an XLSX file (at most 2)" in message and "CSV" in message
    assert not exports().exists()  # no file went out


def test_csv_has_no_limit_and_xlsx_up_to_the_limit_is_served(three_people, clerk_a, settings):
    settings.MIZANI_EXPORT_XLSX_MAX_ROWS = 2
    client = client_for(clerk_a)

    assert len(csv_rows(client.get(reverse(INDIVIDUALS), {"export": "csv"}))) == 3
    # Criteria that leave two rows make the same export small enough.
    rows = xlsx_rows(client.get(reverse(INDIVIDUALS), {"export": "xlsx", "criteria": "children >= 1"}))
    assert sorted(row["First name"].value for row in rows) == ["P1", "P2"]
    assert [(e.data["format"], e.data["rows"]) for e in exports().order_by("pk")] == [("csv", 3), ("xlsx", 2)]


def test_the_default_xlsx_limit_is_fifty_thousand_rows():
    from django.conf import settings

    assert settings.MIZANI_EXPORT_XLSX_MAX_ROWS == 50_000


# --- a filter that does not clean refuses the export ----------------------------------------------

def refused(client, url, query):
    """The export's response, a redirect back to the same list (without `export`), and the message shown."""
    response = client.get(url, query)
    assert response.status_code == 302 and not response.streaming
    assert not response.get("Content-Disposition")
    back = client.get(response["Location"])
    assert back.wsgi_request.GET.dict() == {key: str(value) for key, value in query.items() if key != "export"}
    return [str(m) for m in get_messages(back.wsgi_request)]


@pytest.mark.parametrize("export_format", ["csv", "xlsx"])
def test_an_individuals_export_filtered_to_a_location_outside_the_users_is_refused(geo, export_format):
    """The list drops a location the user may not use (it is not offered); an export that did the same
    would be every one of their people, under a filter they believe is one district's."""
    clerk = UserFactory(username="clerk2", role="Clerk", locations=[geo.district_b])
    IndividualFactory(first_name="Bahati", location=geo.village_b)
    IndividualFactory(first_name="Amina", location=geo.village_a)
    client = client_for(clerk)

    messages = refused(client, reverse(INDIVIDUALS), {"location": geo.district_a.pk, "export": export_format})

    assert messages == ["The location filter is not one of your locations: nothing was exported."]
    assert not exports().exists()
    # Filtered to a location of theirs, the same export is served.
    rows = client.get(reverse(INDIVIDUALS), {"location": geo.village_b.pk, "export": export_format})
    names = ([row["First name"] for row in csv_rows(rows)] if export_format == "csv"
             else [row["First name"].value for row in xlsx_rows(rows)])
    assert names == ["Bahati"]


@pytest.mark.parametrize("export_format", ["csv", "xlsx"])
def test_a_beneficiaries_export_filtered_to_a_plan_that_is_not_there_is_refused(geo, export_format):
    """A stale link to a deleted plan would otherwise export the beneficiaries of every plan."""
    accountant = UserFactory(username="accountant_a", role="Accountant", locations=[geo.district_a])
    plan = BenefitPlan.objects.create(code="CG", name="Child grant", status="ACTIVE")
    now = timezone.now()
    Beneficiary.objects.create(plan=plan, individual=IndividualFactory(location=geo.village_a), enrolled_at=now,
                               status_changed_at=now)
    gone = BenefitPlan.objects.create(code="OLD", name="Closed grant", status="ACTIVE")
    gone_pk = gone.pk
    gone.delete()
    client = client_for(accountant)

    messages = refused(client, reverse(BENEFICIARIES), {"plan": gone_pk, "status": "ACTIVE", "export": export_format})

    assert messages == ["The benefit plan filter is not one of your benefit plans: nothing was exported."]
    assert not exports().exists()
    served = client.get(reverse(BENEFICIARIES), {"plan": plan.pk, "export": export_format})
    assert len(csv_rows(served) if export_format == "csv" else xlsx_rows(served)) == 1


# --- streaming ------------------------------------------------------------------------------------

def test_an_export_with_criteria_reads_no_row_before_its_first_byte(three_people, national_clerk):
    client = client_for(national_clerk)

    with CaptureQueriesContext(connection) as before_first_byte:
        response = client.get(reverse(INDIVIDUALS), {"export": "csv", "criteria": "children >= 1"})
    reads = [q["sql"] for q in before_first_byte.captured_queries
             if 'FROM "registry_individual"' in q["sql"] and "COUNT(" not in q["sql"].upper()]

    assert response.streaming and reads == []
    assert sorted(row["First name"] for row in csv_rows(response)) == ["P1", "P2"]


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="PostgreSQL's server-side cursors")
@pytest.mark.django_db(transaction=True)
def test_an_export_reads_its_rows_as_it_sends_them(geo, national_clerk):
    """Outside a transaction Django declares the export's cursor WITH HOLD, and the database then
    computes every row before sending the first (a million people: seconds of silence after the
    header). The export reads in a transaction of its own, its cursor without HOLD."""
    for n in range(3):
        IndividualFactory(first_name=f"P{n}", location=geo.village_a)
    client = client_for(national_clerk)

    with CaptureQueriesContext(connection) as queries:
        rows = csv_rows(client.get(reverse(INDIVIDUALS), {"export": "csv"}))
    cursors = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("DECLARE")]

    assert sorted(row["First name"] for row in rows) == ["P0", "P1", "P2"]
    assert cursors and not any("WITH HOLD" in sql for sql in cursors)
    assert not connection.in_atomic_block  # the export's transaction ended with the download
