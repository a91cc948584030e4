"""What a plan's beneficiaries export says of each person or household, so that they can be told apart
and placed: a person's national ID (masked for users who may not see it, as the individuals export
masks it), date of birth, sex, location and household; a household's location, head and member count.
Every column comes from the export's one query; cells stay formula-safe. (The schema fields, their
masking for individual plans, the scope of the rows and the audit entry: test_exports.py.)"""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from schemes.plans.models import Beneficiary, BenefitPlan, HouseholdBeneficiary, PlanField, PlanType
from tests.factories import (
    HouseholdFactory,
    IndividualFactory,
    LocationFactory,
    MembershipFactory,
    UserFactory,
)
from tests.schemes.plans.test_exports import client_for, csv_rows, xlsx_rows

pytestmark = pytest.mark.django_db

BENEFICIARIES = "plans_beneficiary:index"
HOUSEHOLD_BENEFICIARIES = "plans_householdbeneficiary:index"


def exported(user, plan, export_format="csv"):
    url = reverse(HOUSEHOLD_BENEFICIARIES if plan.plan_type == PlanType.HOUSEHOLD else BENEFICIARIES)
    return client_for(user).get(url, {"plan": plan.pk, "export": export_format})


def export(user, plan, export_format="csv"):
    """The rows, as {heading: value}."""
    response = exported(user, plan, export_format)
    if export_format == "csv":
        return csv_rows(response)
    return [{heading: cell.value for heading, cell in row.items()} for row in xlsx_rows(response)]


def by(rows, heading):
    return {row[heading]: row for row in rows}


def enrol(plan, subject, **attributes):
    now = timezone.now()
    model, field = (HouseholdBeneficiary, "household") if plan.plan_type == PlanType.HOUSEHOLD else (
        Beneficiary, "individual")
    return model.objects.create(plan=plan, **{field: subject}, attributes=attributes, enrolled_at=now,
                                status_changed_at=now)


@pytest.fixture
def accountant_a(geo):
    """An accountant in district A: may export beneficiaries, may not see sensitive data."""
    return UserFactory(username="accountant_a", role="Accountant", locations=[geo.district_a])


@pytest.fixture
def person_plan(geo, member_roles):
    """An individual plan: Amina (in household HH-A1), Baraka (in none), both in village A."""
    plan = BenefitPlan.objects.create(code="CG", name="Child grant", status="ACTIVE")
    amina = IndividualFactory(first_name="Amina", last_name="Juma", national_id="19900615-12345-00001-27",
                              dob=datetime.date(1990, 6, 15), sex="F", location=geo.village_a)
    baraka = IndividualFactory(first_name="Baraka", last_name="Ali", national_id="19851201-55555-00002-11",
                               dob=datetime.date(1985, 12, 1), sex="M", location=geo.village_a)
    MembershipFactory(household=HouseholdFactory(code="HH-A1", location=geo.village_a), individual=amina)
    enrol(plan, amina)
    enrol(plan, baraka)
    return plan


@pytest.fixture
def household_plan(geo, member_roles):
    """A household plan: HH-A1 (head Asha Juma and two children), HH-A2 (no head), both in village A."""
    plan = BenefitPlan.objects.create(code="HG", name="Household grant", plan_type=PlanType.HOUSEHOLD,
                                      status="ACTIVE")
    first = HouseholdFactory(code="HH-A1", location=geo.village_a)
    MembershipFactory(household=first, role=member_roles["HEAD"],
                      individual=IndividualFactory(first_name="Asha", last_name="Juma", location=geo.village_a))
    for _ in range(2):
        MembershipFactory(household=first, role=member_roles["SON"],
                          individual=IndividualFactory(location=geo.village_a))
    enrol(plan, first)
    enrol(plan, HouseholdFactory(code="HH-A2", location=geo.village_a))
    return plan


def test_an_individual_plans_export_tells_people_apart_and_places_them(person_plan, geo, clerk_a):
    rows = export(clerk_a, person_plan)

    assert list(rows[0]) == ["ID", "Plan", "Individual id", "Individual", "National ID", "Date of birth", "Sex",
                             "Location code", "Location", "Household", "Status", "Enrolled at", "Status changed at",
                             "Reason"]
    people = by(rows, "Individual")
    assert {key: people["Amina Juma"][key] for key in ("National ID", "Date of birth", "Sex", "Location code",
                                                       "Location", "Household")} == {
        "National ID": "19900615-12345-00001-27", "Date of birth": "1990-06-15", "Sex": "Female",
        "Location code": geo.village_a.code, "Location": geo.village_a.name, "Household": "HH-A1"}
    assert (people["Baraka Ali"]["Sex"], people["Baraka Ali"]["Household"]) == ("Male", "")


def test_a_household_plans_export_names_the_head_and_counts_the_members(household_plan, geo, clerk_a):
    rows = export(clerk_a, household_plan)

    assert list(rows[0]) == ["ID", "Plan", "Household id", "Household", "Location code", "Location", "Head",
                             "Members", "Status", "Enrolled at", "Status changed at", "Reason"]
    households = by(rows, "Household")
    assert {key: households["HH-A1"][key] for key in ("Location code", "Location", "Head", "Members")} == {
        "Location code": geo.village_a.code, "Location": geo.village_a.name, "Head": "Asha Juma", "Members": "3"}
    assert (households["HH-A2"]["Head"], households["HH-A2"]["Members"]) == ("", "0")


def test_a_household_or_head_outside_the_users_locations_is_not_named(geo, member_roles, clerk_a, national_clerk):
    """As on the registry's lists: Amina (district A) lives in a household placed in district B; HH-A3
    (district A) has its head in district B."""
    plan = BenefitPlan.objects.create(code="CG", name="Child grant", status="ACTIVE")
    amina = IndividualFactory(first_name="Amina", location=geo.village_a)
    MembershipFactory(household=HouseholdFactory(code="HH-B1", location=geo.village_b), individual=amina)
    enrol(plan, amina)
    households = BenefitPlan.objects.create(code="HG", name="Household grant", plan_type=PlanType.HOUSEHOLD,
                                            status="ACTIVE")
    household = HouseholdFactory(code="HH-A3", location=geo.village_a)
    MembershipFactory(household=household, role=member_roles["HEAD"],
                      individual=IndividualFactory(first_name="Zawadi", last_name="Mrisho", location=geo.village_b))
    enrol(households, household)

    assert [row["Household"] for row in export(clerk_a, plan)] == [""]
    assert [row["Household"] for row in export(national_clerk, plan)] == ["HH-B1"]
    assert [(row["Head"], row["Members"]) for row in export(clerk_a, households)] == [("", "1")]
    assert [row["Head"] for row in export(national_clerk, households)] == ["Zawadi Mrisho"]


@pytest.mark.parametrize("export_format", ["csv", "xlsx"])
def test_the_national_id_is_masked_for_a_user_who_may_not_see_it(person_plan, accountant_a, clerk_a, export_format):
    masked = export(accountant_a, person_plan, export_format)

    assert by(masked, "Individual")["Amina Juma"]["National ID"] == "••••••••••••••••••••-27"
    assert "12345" not in repr(masked) and "55555" not in repr(masked)
    assert by(export(clerk_a, person_plan, export_format), "Individual")["Amina Juma"]["National ID"] == (
        "19900615-12345-00001-27")


def test_the_date_of_birth_stays_a_date_in_xlsx(person_plan, clerk_a):
    cells = [row["Date of birth"] for row in xlsx_rows(exported(clerk_a, person_plan, "xlsx"))]

    assert all(cell.is_date for cell in cells)
    assert {cell.value for cell in cells} == {datetime.date(1990, 6, 15), datetime.date(1985, 12, 1)}


def test_a_sensitive_field_of_a_household_plan_is_masked_for_a_user_who_may_not_see_it(household_plan, accountant_a,
                                                                                         clerk_a):
    PlanField.objects.create(plan=household_plan, name="account", label="Account", field_type="text", sensitive=True)
    HouseholdBeneficiary.objects.filter(household__code="HH-A1").update(attributes={"account": "TZ12345678"})

    assert by(export(accountant_a, household_plan), "Household")["HH-A1"]["account"] == "•••••••678"
    assert by(export(clerk_a, household_plan), "Household")["HH-A1"]["account"] == "TZ12345678"


def test_the_new_columns_are_formula_safe(geo, member_roles, clerk_a):
    village = LocationFactory(code="@V1", name="=cmd|' /C calc'!A0", parent=geo.ward_a)
    person = IndividualFactory(first_name="=cmd", last_name="Juma", national_id="+255712", location=village)
    household = HouseholdFactory(code="-HH1", location=village)
    MembershipFactory(household=household, individual=person, role=member_roles["HEAD"])
    person_plan = BenefitPlan.objects.create(code="CG", name="Child grant", status="ACTIVE")
    household_plan = BenefitPlan.objects.create(code="HG", name="Household grant", plan_type=PlanType.HOUSEHOLD,
                                                status="ACTIVE")
    enrol(person_plan, person)
    enrol(household_plan, household)

    [row] = export(clerk_a, person_plan)
    assert (row["National ID"], row["Location code"], row["Location"], row["Household"]) == (
        "'+255712", "'@V1", "'=cmd|' /C calc'!A0", "'-HH1")
    [row] = export(clerk_a, household_plan)
    assert (row["Location code"], row["Location"], row["Head"]) == ("'@V1", "'=cmd|' /C calc'!A0", "'=cmd Juma")


@pytest.mark.parametrize("plan_type", [PlanType.INDIVIDUAL, PlanType.HOUSEHOLD])
def test_the_export_reads_every_column_in_the_same_queries_for_5_rows_as_for_50(geo, member_roles, clerk_a,
                                                                               plan_type):
    """Each beneficiary has a household and a head, so that every new column has a value to read."""
    plan = BenefitPlan.objects.create(code="XG", name="Export grant", plan_type=plan_type, status="ACTIVE")

    def export_queries(count):
        for _ in range(count):
            household = HouseholdFactory(location=geo.village_a)
            person = IndividualFactory(location=geo.village_a)
            MembershipFactory(household=household, individual=person, role=member_roles["HEAD"])
            enrol(plan, household if plan_type == PlanType.HOUSEHOLD else person)
        with CaptureQueriesContext(connection) as queries:
            rows = export(clerk_a, plan)
        return rows, len(queries.captured_queries)

    export_queries(0)  # what the first request of a process looks up once
    few, few_queries = export_queries(5)
    many, many_queries = export_queries(45)

    assert len(few) == 5 and len(many) == 50
    assert many_queries == few_queries
    filled = ("Head", "Members") if plan_type == PlanType.HOUSEHOLD else ("National ID", "Household")
    assert all(row[heading] and row["Location"] == geo.village_a.name for row in many for heading in filled)
