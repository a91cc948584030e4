"""A plan's beneficiary lists (people and households) with a "Criteria" filter and their exports.
Filtered to one plan, a rule names what the plan's own rules do: the person's or household's fields
and the plan's attributes; otherwise the person's or household's fields only. Exports of one plan
carry its schema fields (typed, quoted, masked where sensitive); rows stay in the user's locations."""

import csv
import io
from decimal import Decimal

import openpyxl
import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from wagtail.models import ModelLogEntry

from schemes.plans.models import (
    Beneficiary,
    BeneficiaryStatus,
    BenefitPlan,
    HouseholdBeneficiary,
    PlanField,
    PlanType,
)
from tests.factories import (
    HouseholdFactory,
    IndividualFactory,
    MembershipFactory,
    RegistryFieldFactory,
)

pytestmark = pytest.mark.django_db

BENEFICIARIES = "plans_beneficiary:index"
HOUSEHOLD_BENEFICIARIES = "plans_householdbeneficiary:index"


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


def names(response):
    assert response.status_code == 200, response.status_code
    return sorted(str(row.subject).split()[0] for row in response.context["object_list"])


def exports():
    return ModelLogEntry.objects.filter(action="mizani.export").order_by("pk")


def enrol(plan, person, **attributes):
    now = timezone.now()
    return Beneficiary.objects.create(plan=plan, individual=person, attributes=attributes, enrolled_at=now,
                                      status_changed_at=now)


@pytest.fixture
def grant(geo):
    """A child grant whose schema has a grade, a score, a school and a sensitive account; its
    beneficiaries in A (Amina, Baraka) and B (Zawadi); Chausiku (A) is in another plan only."""
    RegistryFieldFactory(name="children", field_type="integer")
    plan = BenefitPlan.objects.create(code="CG", name="Child grant", status="ACTIVE")
    for order, (name, field_type, sensitive) in enumerate((("grade", "integer", False), ("score", "decimal", False),
                                                           ("school", "text", False), ("account", "text", True))):
        PlanField.objects.create(plan=plan, name=name, label=name.capitalize(), field_type=field_type,
                                 sensitive=sensitive, sort_order=order)
    other = BenefitPlan.objects.create(code="OG", name="Old-age grant", status="ACTIVE")
    people = {name: IndividualFactory(first_name=name, location=village, attributes={"children": children})
              for name, children, village in (("Amina", 3, geo.village_a), ("Baraka", 1, geo.village_a),
                                              ("Zawadi", 4, geo.village_b), ("Chausiku", 5, geo.village_a))}
    enrol(plan, people["Amina"], grade=5, score="71.5", school="=HYPERLINK(\"x\")", account="TZ12345678")
    enrol(plan, people["Baraka"], grade=2, score="40", school="Mwenge")
    enrol(plan, people["Zawadi"], grade=6, score="80", school="Bravo")
    enrol(other, people["Chausiku"])
    return plan


def test_criteria_over_a_plans_own_fields_and_the_persons(grant, clerk_a, national_clerk):
    query = {"plan": grant.pk, "criteria": "grade >= 4 and children >= 2"}

    assert names(client_for(clerk_a).get(reverse(BENEFICIARIES), query)) == ["Amina"]
    # Zawadi meets the rule too, in district B: the scope keeps her off the clerk's list.
    assert names(client_for(national_clerk).get(reverse(BENEFICIARIES), query)) == ["Amina", "Zawadi"]


def test_the_builder_offers_the_plans_fields_when_the_list_is_filtered_to_one_plan(grant, clerk_a):
    client = client_for(clerk_a)

    one_plan = client.get(reverse(BENEFICIARIES), {"plan": grant.pk}).content.decode()
    every_plan = client.get(reverse(BENEFICIARIES)).content.decode()

    assert f'data-subject="plan:{grant.pk}.INDIVIDUAL"' in one_plan and "&quot;grade&quot;" in one_plan
    assert 'data-subject="individual"' in every_plan and "&quot;grade&quot;" not in every_plan


def test_the_bulk_status_change_is_not_offered_for_a_list_narrowed_by_criteria(grant, clerk_a):
    """It selects by status alone: under criteria it would change more than the list shows."""
    client = client_for(clerk_a)

    assert "bulk_status_url" in client.get(reverse(BENEFICIARIES), {"plan": grant.pk}).context
    assert "bulk_status_url" not in client.get(reverse(BENEFICIARIES), {"plan": grant.pk,
                                                                        "criteria": "grade >= 4"}).context


def test_without_one_plan_the_criteria_name_the_persons_fields_only(grant, clerk_a):
    client = client_for(clerk_a)

    assert names(client.get(reverse(BENEFICIARIES), {"criteria": "children >= 3"})) == ["Amina", "Chausiku"]
    refused = client.get(reverse(BENEFICIARIES), {"criteria": "grade >= 4"})
    assert names(refused) == []
    assert "Unknown field &#x27;grade&#x27;" in refused.content.decode()


def test_the_export_of_one_plan_carries_the_criteria_and_its_schema_fields(grant, clerk_a):
    query = {"plan": grant.pk, "criteria": "score > 50", "export": "csv"}

    [row] = csv_rows(client_for(clerk_a).get(reverse(BENEFICIARIES), query))

    # "ID" and the schema fields' names are the headings of the plan's beneficiary update file.
    assert list(row) == ["ID", "Plan", "Individual id", "Individual", "National ID", "Date of birth", "Sex",
                         "Location code", "Location", "Household", "Status", "Enrolled at", "Status changed at",
                         "Reason", "grade", "score", "school", "account"]
    assert row["Individual"].startswith("Amina") and row["Plan"] == "CG"
    assert (row["grade"], row["score"], row["account"]) == ("5", "71.5", "TZ12345678")
    assert row["school"] == "'=HYPERLINK(\"x\")"
    [entry] = exports()
    assert entry.data["model"] == "plans.Beneficiary" and entry.data["rows"] == 1
    assert entry.data["filters"] == {"plan": str(grant.pk), "criteria": "score > 50"}


def test_the_xlsx_of_one_plan_keeps_numbers_typed_and_quotes_text(grant, clerk_a):
    [row] = xlsx_rows(client_for(clerk_a).get(reverse(BENEFICIARIES), {"plan": grant.pk, "criteria": "grade == 5",
                                                                       "export": "xlsx"}))

    assert row["grade"].value == 5 and row["grade"].data_type == "n"
    assert Decimal(str(row["score"].value)) == Decimal("71.5") and row["score"].data_type == "n"
    assert row["school"].value == "'=HYPERLINK(\"x\")" and row["school"].data_type == "s"
    assert row["Enrolled at"].is_date


@pytest.mark.parametrize("export_format", ["csv", "xlsx"])
def test_sensitive_plan_fields_are_masked_for_a_user_without_the_permission(grant, viewer_a, export_format):
    response = client_for(viewer_a).get(reverse(BENEFICIARIES), {"plan": grant.pk, "criteria": "grade == 5",
                                                                 "export": export_format})
    if export_format == "csv":
        [row] = csv_rows(response)
    else:
        [cells] = xlsx_rows(response)
        row = {heading: cell.value for heading, cell in cells.items()}

    assert row["account"] == "•••••••678"
    assert "TZ12345678" not in body(response).decode("utf-8", errors="replace")
    assert str(row["grade"]) == "5"


def test_an_export_with_a_rule_that_does_not_check_is_refused(grant, clerk_a):
    client = client_for(clerk_a)

    response = client.get(reverse(BENEFICIARIES), {"plan": grant.pk, "criteria": "grade >= 'high'",
                                                   "export": "csv"})

    assert response.status_code == 302 and not response.streaming
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "Criteria: At character 1: '>=' compares a number with text."]
    assert not exports().exists()


def test_the_export_of_every_plan_has_no_schema_columns(grant, clerk_a):
    rows = csv_rows(client_for(clerk_a).get(reverse(BENEFICIARIES), {"export": "csv"}))

    assert sorted(row["Individual"].split()[0] for row in rows) == ["Amina", "Baraka", "Chausiku"]
    assert "grade" not in rows[0] and "account" not in rows[0]
    assert rows and {row["Status"] for row in rows} <= {label for _, label in BeneficiaryStatus.choices}


def test_household_beneficiaries_by_criteria_over_the_household_and_the_plan(geo, member_roles, clerk_a,
                                                                             national_clerk):
    plan = BenefitPlan.objects.create(code="HG", name="Household grant", plan_type=PlanType.HOUSEHOLD,
                                      status="ACTIVE")
    PlanField.objects.create(plan=plan, name="visits", label="Visits", field_type="integer")
    now = timezone.now()
    for code, size, visits, village in (("HH-A1", 1, 4, geo.village_a), ("HH-A2", 3, 4, geo.village_a),
                                        ("HH-A3", 3, 0, geo.village_a), ("HH-B1", 3, 5, geo.village_b)):
        household = HouseholdFactory(code=code, location=village)
        for n in range(size):
            MembershipFactory(household=household, individual=IndividualFactory(location=village),
                              role=member_roles["HEAD" if n == 0 else "SON"])
        HouseholdBeneficiary.objects.create(plan=plan, household=household, attributes={"visits": visits},
                                            enrolled_at=now, status_changed_at=now)
    query = {"plan": plan.pk, "criteria": "household_size >= 2 and visits > 0"}

    assert names(client_for(clerk_a).get(reverse(HOUSEHOLD_BENEFICIARIES), query)) == ["HH-A2"]
    assert names(client_for(national_clerk).get(reverse(HOUSEHOLD_BENEFICIARIES), query)) == ["HH-A2", "HH-B1"]
    rows = csv_rows(client_for(clerk_a).get(reverse(HOUSEHOLD_BENEFICIARIES), {**query, "export": "csv"}))
    assert [(row["Household"], row["visits"]) for row in rows] == [("HH-A2", "4")]
    assert exports().get().data["filters"]["criteria"] == "household_size >= 2 and visits > 0"


@pytest.mark.parametrize("plan_type", [PlanType.INDIVIDUAL, PlanType.HOUSEHOLD])
def test_an_export_reads_each_beneficiary_once_with_every_column(geo, member_roles, clerk_a, plan_type):
    """The export fetches only its columns (the person's name or the household's code, the plan's
    code), and nothing is then read row by row: the same queries for two beneficiaries as for eight."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    plan = BenefitPlan.objects.create(code="XG", name="Export grant", plan_type=plan_type, status="ACTIVE")
    household_plan = plan_type == PlanType.HOUSEHOLD
    url = reverse(HOUSEHOLD_BENEFICIARIES if household_plan else BENEFICIARIES)
    now = timezone.now()

    def export_queries(count):
        for _ in range(count):
            person = IndividualFactory(first_name="Exported", location=geo.village_a)
            if household_plan:
                household = HouseholdFactory(location=geo.village_a)
                MembershipFactory(household=household, individual=person, role=member_roles["HEAD"])
                HouseholdBeneficiary.objects.create(plan=plan, household=household, enrolled_at=now, status_changed_at=now)
            else:
                enrol(plan, person)
        client = client_for(clerk_a)
        with CaptureQueriesContext(connection) as queries:
            rows = csv_rows(client.get(url, {"plan": plan.pk, "export": "csv"}))
        return rows, len(queries.captured_queries)

    export_queries(0)  # what the first request of a process looks up once
    few, few_queries = export_queries(2)
    many, many_queries = export_queries(6)

    assert many_queries == few_queries
    assert len(many) == 8 and {row["Plan"] for row in many} == {"XG"}
    subject = "Household" if household_plan else "Individual"
    assert all(row[subject] and (household_plan or row[subject].startswith("Exported")) for row in many)
