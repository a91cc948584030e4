"""Individuals and households lists with a "Criteria" filter (a rule), and their CSV/XLSX exports:
only the rows the rule selects, only in the user's locations, the registry attributes as columns
(typed, masked where sensitive), headings the individuals import reads back, and a rule that does not
check shown as the parser's message (list) or refused (export), never ignored."""

import csv
import datetime
import io
from decimal import Decimal

import openpyxl
import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from wagtail.models import ModelLogEntry

from schemes.bulk import individuals as individuals_import
from schemes.bulk.files import header_key
from schemes.registry.models import MemberRole
from tests.factories import (
    HouseholdFactory,
    IndividualFactory,
    MembershipFactory,
    RegistryFieldFactory,
)

pytestmark = pytest.mark.django_db

INDIVIDUALS = "registry_individual:index"
HOUSEHOLDS = "registry_household:index"


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
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))


def xlsx_rows(response):
    """The sheet's rows as {heading: cell}, cells keeping their types."""
    assert response.status_code == 200, response.status_code
    sheet = openpyxl.load_workbook(io.BytesIO(body(response))).active
    rows = list(sheet.iter_rows())
    headings = [cell.value for cell in rows[0]]
    return [dict(zip(headings, row, strict=True)) for row in rows[1:]]


def listed(response):
    assert response.status_code == 200, response.status_code
    return list(response.context["object_list"])


def exports():
    return ModelLogEntry.objects.filter(action="mizani.export").order_by("pk")


def messages_of(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def registry(geo):
    """People in districts A and B with a number of children, an income (decimal), a registration
    date, a yes/no and a sensitive text attribute."""
    RegistryFieldFactory(name="children", label="Children", field_type="integer", sort_order=1)
    RegistryFieldFactory(name="income", label="Monthly income", field_type="decimal", sort_order=2)
    RegistryFieldFactory(name="registered_on", label="Registered on", field_type="date", sort_order=3)
    RegistryFieldFactory(name="disabled", label="Disability", field_type="boolean", sort_order=4)
    RegistryFieldFactory(name="hiv_status", label="HIV status", field_type="text", sensitive=True, sort_order=5)
    people = {}
    for name, children, village in (("Amina", 1, geo.village_a), ("Baraka", 3, geo.village_a),
                                    ("Chausiku", 5, geo.village_a), ("Zawadi", 7, geo.village_b)):
        people[name] = IndividualFactory(
            first_name=name, last_name="Mollel", location=village, national_id=f"NID{name.upper()}",
            phone="+255700111222",
            attributes={"children": children, "income": "1250.50", "registered_on": "2024-03-01",
                        "disabled": children > 4, "hiv_status": "positive"})
    return people


# --- the criteria filter ---------------------------------------------------------------------

def test_criteria_select_the_listed_individuals_in_the_users_locations_only(registry, clerk_a, national_clerk):
    criteria = {"criteria": "children >= 3"}

    assert {p.first_name for p in listed(client_for(clerk_a).get(reverse(INDIVIDUALS), criteria))} == {
        "Baraka", "Chausiku"}
    # The same rule over the whole country also selects district B's Zawadi: the scope, not the
    # rule, keeps her off the clerk's list.
    assert {p.first_name for p in listed(client_for(national_clerk).get(reverse(INDIVIDUALS), criteria))} == {
        "Baraka", "Chausiku", "Zawadi"}


def test_criteria_combine_with_the_other_filters_and_the_search(registry, clerk_a, geo):
    registry["Chausiku"].sex = "M"
    registry["Chausiku"].save()
    client = client_for(clerk_a)

    assert [p.first_name for p in listed(client.get(reverse(INDIVIDUALS), {
        "criteria": "children >= 3", "sex": "F"}))] == ["Baraka"]
    assert [p.first_name for p in listed(client.get(reverse(INDIVIDUALS), {
        "criteria": "children >= 1", "q": "chausiku"}))] == ["Chausiku"]


def test_criteria_still_apply_when_another_filter_value_is_not_offered(registry, clerk_a, geo):
    """A location outside the clerk's is not a choice: the list drops that filter, not the criteria
    (Wagtail would drop every filter of an invalid set and list everyone). The export is refused: a file
    without the location the user asked for is not the file they believe it is."""
    client = client_for(clerk_a)
    query = {"criteria": "children >= 5", "location": geo.district_b.pk}

    assert [p.first_name for p in listed(client.get(reverse(INDIVIDUALS), query))] == ["Chausiku"]
    response = client.get(reverse(INDIVIDUALS), {**query, "export": "csv"})
    assert response.status_code == 302 and not response.streaming
    assert messages_of(client.get(response["Location"])) == [
        "The location filter is not one of your locations: nothing was exported."]
    assert not exports().exists()


def test_the_csv_export_carries_the_criteria_and_its_audit_entry_names_them(registry, clerk_a):
    response = client_for(clerk_a).get(reverse(INDIVIDUALS), {"criteria": "children >= 3 and disabled == true",
                                                              "export": "csv"})

    assert [row["First name"] for row in csv_rows(response)] == ["Chausiku"]
    [entry] = exports()
    assert entry.user_id == clerk_a.pk
    assert entry.data["rows"] == 1
    assert entry.data["format"] == "csv"
    assert entry.data["model"] == "registry.Individual"
    assert entry.data["filters"] == {"criteria": "children >= 3 and disabled == true"}


def test_the_xlsx_export_carries_the_criteria(registry, clerk_a):
    rows = xlsx_rows(client_for(clerk_a).get(reverse(INDIVIDUALS), {"criteria": "children < 3", "export": "xlsx"}))

    assert [row["First name"].value for row in rows] == ["Amina"]
    assert exports().get().data["rows"] == 1


def test_criteria_on_the_households_list_and_its_export(geo, member_roles, clerk_a, national_clerk):
    RegistryFieldFactory(name="roof", label="Roof", field_type="choice", choices=["iron", "thatch"],
                         target="household")
    households = {}
    for code, roof, size, village in (("HH-A1", "thatch", 1, geo.village_a), ("HH-A2", "thatch", 3, geo.village_a),
                                      ("HH-A3", "iron", 3, geo.village_a), ("HH-B1", "thatch", 4, geo.village_b)):
        households[code] = HouseholdFactory(code=code, location=village, attributes={"roof": roof})
        for n in range(size):
            MembershipFactory(household=households[code],
                              individual=IndividualFactory(location=village),
                              role=member_roles["HEAD" if n == 0 else "SON"])
    criteria = {"criteria": 'roof == "thatch" and household_size >= 2'}

    assert [h.code for h in listed(client_for(clerk_a).get(reverse(HOUSEHOLDS), criteria))] == ["HH-A2"]
    assert [h.code for h in listed(client_for(national_clerk).get(reverse(HOUSEHOLDS), criteria))] == [
        "HH-A2", "HH-B1"]
    rows = csv_rows(client_for(clerk_a).get(reverse(HOUSEHOLDS), {**criteria, "export": "csv"}))
    assert [(row["Code"], row["Members"], row["roof"]) for row in rows] == [("HH-A2", "3", "thatch")]
    entry = exports().get()
    assert entry.data["rows"] == 1 and entry.data["filters"] == criteria


def test_the_households_export_names_the_head_as_the_list_does_in_one_query(geo, member_roles, clerk_a):
    """A head living outside the user's locations is left blank, as on the list; the names come from the
    export's own query, not one query per household."""
    def household(code, head_village):
        made = HouseholdFactory(code=code, location=geo.village_a)
        MembershipFactory(household=made, role=member_roles["HEAD"],
                          individual=IndividualFactory(first_name="Head", last_name=code, location=head_village))
        return made

    household("HH-A1", geo.village_a)
    household("HH-A2", geo.village_b)
    HouseholdFactory(code="HH-A3", location=geo.village_a)  # no head
    client = client_for(clerk_a)
    csv_rows(client.get(reverse(HOUSEHOLDS), {"export": "csv"}))  # the session's and the schema's first reads

    with CaptureQueriesContext(connection) as three:
        rows = csv_rows(client.get(reverse(HOUSEHOLDS), {"export": "csv"}))
        sheet = xlsx_rows(client.get(reverse(HOUSEHOLDS), {"export": "xlsx"}))
    household("HH-A4", geo.village_a)
    with CaptureQueriesContext(connection) as four:
        csv_rows(client.get(reverse(HOUSEHOLDS), {"export": "csv"}))
        xlsx_rows(client.get(reverse(HOUSEHOLDS), {"export": "xlsx"}))

    assert [(row["Code"], row["Head"]) for row in rows] == [("HH-A1", "Head HH-A1"), ("HH-A2", ""), ("HH-A3", "")]
    assert [(row["Code"].value, row["Head"].value) for row in sheet] == [
        ("HH-A1", "Head HH-A1"), ("HH-A2", None), ("HH-A3", None)]
    assert len(four.captured_queries) == len(three.captured_queries)


# --- a rule that does not check ----------------------------------------------------------------

@pytest.mark.parametrize("text, problem", [
    ("childrn >= 3", "At character 1: Unknown field 'childrn'."),
    ("children >= 'three'", "compares a number with text"),
    ("children >=", "At character"),
    ("children + 1", "The rule must give yes/no, but it gives a number."),
    ("__import__('os')", "At character 1"),
])
def test_a_rule_that_does_not_check_lists_nobody_and_says_why(registry, clerk_a, text, problem):
    response = client_for(clerk_a).get(reverse(INDIVIDUALS), {"criteria": text})

    assert listed(response) == []
    html = response.content.decode()
    assert "Criteria: " in html and problem.replace("'", "&#x27;") in html


@pytest.mark.parametrize("export_format", ["csv", "xlsx"])
def test_an_export_with_a_rule_that_does_not_check_is_refused(registry, clerk_a, export_format):
    client = client_for(clerk_a)

    response = client.get(reverse(INDIVIDUALS), {"criteria": "childrn >= 3", "sex": "F", "export": export_format})

    assert response.status_code == 302
    assert not response.streaming and b"Mollel" not in response.content
    back = client.get(response["Location"])
    assert back.wsgi_request.GET.dict() == {"criteria": "childrn >= 3", "sex": "F"}
    assert [m for m in messages_of(back) if "Unknown field 'childrn'" in m]
    assert not exports().exists()


def test_criteria_on_a_sensitive_attribute_are_refused_to_a_user_who_may_not_see_it(registry, clerk_a, viewer_a):
    """Narrowed with a name, the list's count or export would give the masked value away."""
    query = {"criteria": 'first_name == "Chausiku" and hiv_status == "positive"'}
    problem = "'hiv_status' is sensitive: only users who may see sensitive data can use it in a rule."

    response = client_for(viewer_a).get(reverse(INDIVIDUALS), query)
    assert listed(response) == [] and problem.replace("'", "&#x27;") in response.content.decode()
    assert client_for(viewer_a).get(reverse(INDIVIDUALS), {**query, "export": "csv"}).status_code == 302
    assert not exports().exists()
    assert [p.first_name for p in listed(client_for(clerk_a).get(reverse(INDIVIDUALS), query))] == ["Chausiku"]


# --- columns: attributes, masking, headings ------------------------------------------------------

def test_the_export_carries_the_registry_attributes_typed(registry, clerk_a):
    [row] = xlsx_rows(client_for(clerk_a).get(reverse(INDIVIDUALS), {"criteria": "children == 5",
                                                                     "export": "xlsx"}))

    assert row["children"].value == 5 and row["children"].data_type == "n"
    assert Decimal(str(row["income"].value)) == Decimal("1250.50") and row["income"].data_type == "n"
    assert row["registered_on"].is_date and row["registered_on"].value in (
        datetime.date(2024, 3, 1), datetime.datetime(2024, 3, 1))
    assert row["disabled"].value is True and row["disabled"].data_type == "b"
    assert row["Date of birth"].is_date
    assert row["hiv_status"].value == "positive"  # a clerk may see sensitive data

    [line] = csv_rows(client_for(clerk_a).get(reverse(INDIVIDUALS), {"criteria": "children == 5",
                                                                      "export": "csv"}))
    assert (line["children"], line["income"], line["registered_on"], line["disabled"]) == (
        "5", "1250.50", "2024-03-01", "Yes")  # CSV booleans read yes/no (e798061)


@pytest.mark.parametrize("export_format", ["csv", "xlsx"])
def test_sensitive_values_are_masked_in_the_export_for_a_user_without_the_permission(
        registry, viewer_a, export_format):
    response = client_for(viewer_a).get(reverse(INDIVIDUALS), {"criteria": "children == 5",
                                                               "export": export_format})
    if export_format == "csv":
        [row] = csv_rows(response)
    else:
        [cells] = xlsx_rows(response)
        row = {heading: cell.value for heading, cell in cells.items()}

    assert row["hiv_status"] == "•••••ive" and row["National ID"] == "••••••••IKU"
    assert "positive" not in str(row.values()) and "NIDCHAUSIKU" not in str(row.values())
    assert "+255700111222" not in str(row.values())
    assert str(row["children"]) == "5"  # not sensitive: shown


def test_export_headings_are_read_back_by_the_individuals_import(registry, clerk_a):
    """Each heading but the ID is a column of the individuals import (its name or an alias), the
    attributes under their field names: an export can be corrected and imported again."""
    response = client_for(clerk_a).get(reverse(INDIVIDUALS), {"export": "csv"})
    headings = next(csv.reader(io.StringIO(body(response).decode("utf-8-sig"))))
    understood = {header_key(name) for column in individuals_import.columns()
                  for name in (column.name, *column.aliases)}

    assert headings[-5:] == ["children", "income", "registered_on", "disabled", "hiv_status"]
    assert [h for h in headings if header_key(h) not in understood] == ["ID"]


def test_the_export_of_deleted_people_uses_the_same_criteria(registry, clerk_a):
    from django.utils import timezone

    registry["Baraka"].deleted_at = timezone.now()
    registry["Baraka"].save()
    client = client_for(clerk_a)

    assert [row["First name"] for row in csv_rows(client.get(reverse(INDIVIDUALS), {
        "criteria": "children >= 3", "status": "deleted", "export": "csv"}))] == ["Baraka"]
    assert [row["First name"] for row in csv_rows(client.get(reverse(INDIVIDUALS), {
        "criteria": "children >= 3", "export": "csv"}))] == ["Chausiku"]


def test_the_export_names_only_a_household_in_the_users_locations(geo, member_roles, clerk_a):
    """The household column follows the record page's rule, with criteria as without."""
    RegistryFieldFactory(name="children", field_type="integer")
    household_b = HouseholdFactory(code="HH-BRAVO", location=geo.village_b)
    person = IndividualFactory(first_name="Amina", location=geo.village_a, attributes={"children": 2})
    MembershipFactory(household=household_b, individual=person, role=MemberRole.objects.get(pk="HEAD"))

    [row] = csv_rows(client_for(clerk_a).get(reverse(INDIVIDUALS), {"criteria": "children == 2",
                                                                    "export": "csv"}))
    assert row["First name"] == "Amina" and row["Household"] == ""


# --- deleted records say so; times as the organisation's clocks read them -------------------------

DELETED = datetime.datetime(2026, 3, 4, 22, 15, 30, 123456, tzinfo=datetime.UTC)  # 5 March, 01:15:30 in Nairobi


def test_an_export_of_deleted_people_says_when_each_was_deleted_and_into_whom_a_merged_one_went(
        geo, clerk_a, settings):
    from schemes.registry.models import Individual

    settings.TIME_ZONE = "Africa/Nairobi"
    kept = IndividualFactory(first_name="Kept", location=geo.village_a)
    merged = IndividualFactory(first_name="Merged", location=geo.village_a)
    deleted = IndividualFactory(first_name="Deleted", location=geo.village_a)
    IndividualFactory(first_name="Live", location=geo.village_a)
    Individual.objects.filter(pk=merged.pk).update(deleted_at=DELETED, merged_into=kept)
    Individual.objects.filter(pk=deleted.pk).update(deleted_at=DELETED)
    client = client_for(clerk_a)

    rows = csv_rows(client.get(reverse(INDIVIDUALS), {"status": "deleted", "export": "csv"}))
    sheet = xlsx_rows(client.get(reverse(INDIVIDUALS), {"status": "deleted", "export": "xlsx"}))
    live = csv_rows(client.get(reverse(INDIVIDUALS), {"export": "csv"}))

    assert sorted((row["First name"], row["Deleted on"], row["Merged into"]) for row in rows) == [
        ("Deleted", "2026-03-05 01:15:30", ""), ("Merged", "2026-03-05 01:15:30", str(kept.pk))]
    assert sorted((row["First name"].value, row["Deleted on"].value, row["Merged into"].value) for row in sheet) == [
        ("Deleted", datetime.datetime(2026, 3, 5, 1, 15, 30), None),
        ("Merged", datetime.datetime(2026, 3, 5, 1, 15, 30), kept.pk)]
    assert {row["First name"] for row in live} == {"Kept", "Live"}
    assert "Deleted on" not in live[0] and "Merged into" not in live[0]  # the import template's columns only


def test_an_export_of_deleted_households_says_when_each_was_deleted(geo, member_roles, clerk_a, settings):
    from schemes.registry.models import Household

    settings.TIME_ZONE = "Africa/Nairobi"
    HouseholdFactory(code="HH-GONE", location=geo.village_a)
    HouseholdFactory(code="HH-HERE", location=geo.village_a)
    Household.objects.filter(code="HH-GONE").update(deleted_at=DELETED)
    client = client_for(clerk_a)

    [row] = csv_rows(client.get(reverse(HOUSEHOLDS), {"status": "deleted", "export": "csv"}))
    [live] = csv_rows(client.get(reverse(HOUSEHOLDS), {"export": "csv"}))

    assert (row["Code"], row["Deleted on"]) == ("HH-GONE", "2026-03-05 01:15:30")
    assert live["Code"] == "HH-HERE" and "Deleted on" not in live


def test_duplicates_are_found_on_the_organisations_day_in_the_list_and_its_export(geo, national_clerk, settings):
    from tests.factories import DuplicateCandidateFactory

    settings.TIME_ZONE = "Africa/Nairobi"
    DuplicateCandidateFactory(first=IndividualFactory(location=geo.village_a),
                              second=IndividualFactory(location=geo.village_a), found_at=DELETED)
    client = client_for(national_clerk)

    page = client.get(reverse("registry_duplicate:index")).content.decode()
    [row] = csv_rows(client.get(reverse("registry_duplicate:index"), {"export": "csv"}))

    assert "2026-03-05" in page and "2026-03-04" not in page
    assert row["Found at"] == "2026-03-05 01:15:30"


def test_the_individuals_list_shows_the_organisations_day_of_registration(geo, clerk_a):
    """Registered at 22:15 UTC on 4 March is 5 March in Nairobi, as the upload history reads it."""
    from schemes.registry.models import Individual

    person = IndividualFactory(first_name="Amina", location=geo.village_a)
    Individual.objects.filter(pk=person.pk).update(created_at=DELETED)

    with override_settings(TIME_ZONE="Africa/Nairobi"):
        page = client_for(clerk_a).get(reverse(INDIVIDUALS)).content.decode()

    assert "2026-03-05" in page and "2026-03-04" not in page
