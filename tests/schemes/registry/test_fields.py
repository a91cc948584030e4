"""Registry attributes (RegistryField): names that something else already reads are refused where
administrators define them."""

import csv
import io
from decimal import Decimal
from types import SimpleNamespace

import openpyxl
import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from schemes.bulk import individuals
from schemes.registry.models import RegistryField
from tests.factories import HouseholdFactory, IndividualFactory, RegistryFieldFactory, UserFactory

TARGETS = [RegistryField.Target.INDIVIDUAL, RegistryField.Target.HOUSEHOLD]


def name_errors(name, target=RegistryField.Target.INDIVIDUAL):
    definition = RegistryField(name=name, label="Some label", field_type="text", target=target)
    try:
        definition.full_clean()
    except ValidationError as error:
        return error.message_dict.get("name", [])
    return []


@pytest.mark.django_db
@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name, column", [
    ("gender", "sex"), ("surname", "last_name"), ("mobile", "phone"), ("date_of_birth", "dob"),
    ("DateOfBirth", "dob"), ("given_name", "first_name"), ("nin", "national_id"), ("household_id", "group_code"),
    ("household_role", "individual_role"), ("recipient", "recipient_info"), ("location_code", "location"),
])
def test_a_name_the_individuals_file_reads_as_a_core_column_is_refused(name, column, target):
    assert name_errors(name, target) == [
        f"'{name}' is a column of the individuals file already ({column}): give the attribute another name."]


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["group_code", "individual_role", "recipient_info"])
def test_a_core_columns_own_name_is_refused(name):
    assert name_errors(name) == [f"'{name}' is a column of the individuals file already: give the attribute "
                                 "another name."]


@pytest.mark.django_db
def test_a_name_the_beneficiaries_file_reads_as_its_status_is_refused():
    """Individual attributes are columns of an individual plan's enrolment file, next to its status."""
    assert name_errors("beneficiary_status") == [
        "'beneficiary_status' is a column of the beneficiaries file already (status): give the attribute another name."]


@pytest.mark.django_db
@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name, lookup", [
    ("contains", "contains"), ("range", "range"), ("exact", "exact"), ("gt", "gt"), ("isnull", "isnull"),
    ("has_key", "has_key"), ("hasKey", "has_key"), ("ContainedBy", "contained_by"),
])
def test_a_name_read_as_a_lookup_of_the_attributes_is_refused(name, lookup, target):
    as_written = "" if name == lookup else f" (as '{lookup}')"
    assert name_errors(name, target) == [
        f"'{name}' is a database lookup{as_written}: filters on the attributes would read it as that lookup, not "
        "as this attribute. Give the attribute another name."]


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["income", "gender_of_head", "mobile_money", "contains_lead", "groupId", "Income"])
def test_other_names_pass(name):
    assert name_errors(name) == []


@pytest.mark.django_db
def test_a_reserved_name_gets_one_message():
    assert name_errors("first_name") == [
        "'first_name' is reserved: it is a built-in field of the registry (every person or household has one), which "
        "rules and files read by that name. Give this field another name, such as 'first_name_2'."]


@pytest.mark.django_db
def test_every_attribute_the_checks_let_through_leaves_the_individuals_file_readable():
    """The file's columns each claim their own headers: no ValueError from the header lookup."""
    from schemes.bulk.files import _column_lookup

    for name in ["income", "water_source", "disabled"]:
        RegistryFieldFactory(name=name, label=name.replace("_", " ").title())

    assert set(_column_lookup(individuals.columns())) >= {"gender", "surname", "income"}


@pytest.mark.django_db
def test_the_admin_form_refuses_the_name_and_writes_nothing():
    admin = UserFactory(username="fields_admin", is_superuser=True, is_staff=True)
    client = Client()
    client.force_login(admin)

    response = client.post(reverse("registry_field:add"), {
        "target": "individual", "field_type": "text", "name": "gender", "label": "Gender", "sort_order": 0,
        "choices": ""})

    assert response.status_code == 200
    assert "&#x27;gender&#x27; is a column of the individuals file already (sex)" in response.content.decode()
    assert not RegistryField.objects.exists()


def label_errors(label, name="water_source", target=RegistryField.Target.INDIVIDUAL):
    definition = RegistryField(name=name, label=label, field_type="text", target=target)
    try:
        definition.full_clean()
    except ValidationError as error:
        return error.message_dict.get("label", [])
    return []


@pytest.mark.django_db
@pytest.mark.parametrize("name, target", [
    ("children_under_5", RegistryField.Target.HOUSEHOLD), ("household_size", RegistryField.Target.HOUSEHOLD),
    ("head_age", RegistryField.Target.HOUSEHOLD), ("elderly_in_household", RegistryField.Target.INDIVIDUAL),
    ("household_size", RegistryField.Target.INDIVIDUAL),
])
def test_a_name_the_rules_already_give_a_derived_field_is_refused(name, target):
    errors = name_errors(name, target)
    assert len(errors) == 1 and errors[0].startswith(f"'{name}' is a field the eligibility rules already have (")


@pytest.mark.django_db
def test_a_name_the_rules_give_only_the_other_target_passes():
    assert name_errors("head_age", RegistryField.Target.INDIVIDUAL) == []


@pytest.mark.django_db
@pytest.mark.parametrize("label, column", [("Gender", "sex"), ("Date of birth", "dob"), ("Household", "group_code"),
                                           ("Beneficiary status", "status")])
def test_a_persons_attribute_label_that_a_file_reads_as_another_column_is_refused(label, column):
    errors = label_errors(label)
    assert len(errors) == 1 and f"'{label}' is a header of the " in errors[0] and f"column {column}:" in errors[0]
    assert label_errors(label, target=RegistryField.Target.HOUSEHOLD) == []  # households have no such file


@pytest.mark.django_db
def test_a_label_or_name_another_attribute_claims_as_a_header_is_refused():
    RegistryFieldFactory(name="income", label="Monthly income")

    assert label_errors("Monthly Income") == [
        "'Monthly Income' is the label of the attribute 'income' already: import files could not tell the two "
        "columns apart. Give the attribute another label."]
    assert label_errors("Income") == [
        "'Income' is the attribute 'income' already: import files could not tell the two columns apart. Give the "
        "attribute another label."]
    assert name_errors("monthly_income") == [
        "'monthly_income' is the label of the attribute 'income' already: import files could not tell the two "
        "columns apart."]
    assert label_errors("Water source") == []  # its own name


@pytest.mark.django_db
def test_an_attribute_may_keep_its_own_label_when_saved_again():
    definition = RegistryFieldFactory(name="income", label="Monthly income")
    definition.full_clean()


# --- amounts shown to their field's places ---------------------------------------------------------


def _body(response):
    raw = b"".join(response.streaming_content) if response.streaming else response.content
    return raw.decode("utf-8-sig")


@pytest.fixture
def amounts(geo, clerk_a):
    """An amount of 1200.50 typed by a clerk is stored as "1200.5" (FieldDefinition.to_json)."""
    RegistryFieldFactory(name="income", label="Income", field_type="decimal", decimal_places=2)
    RegistryFieldFactory(name="savings", label="Savings", field_type="decimal", decimal_places=2,
                         target=RegistryField.Target.HOUSEHOLD)
    schema = RegistryField.schema_for(RegistryField.Target.INDIVIDUAL)
    person = IndividualFactory(location=geo.village_a, attributes=schema.clean({"income": "1200.50"}))
    household = HouseholdFactory(location=geo.village_a, attributes={"savings": "75.5"})
    client = Client()
    client.force_login(clerk_a)
    return SimpleNamespace(person=person, household=household, client=client)


def test_a_persons_record_shows_an_amount_to_its_places(amounts):
    assert amounts.person.attributes == {"income": "1200.5"}

    page = _body(amounts.client.get(reverse("registry_individual:inspect", args=[amounts.person.pk])))

    assert "<dt>Income</dt><dd>1200.50</dd>" in page


def test_a_households_record_shows_an_amount_to_its_places(amounts):
    page = _body(amounts.client.get(reverse("registry_household:inspect", args=[amounts.household.pk])))

    assert "<dt>Savings</dt><dd>75.50</dd>" in page


@pytest.mark.parametrize("url_name, column, shown", [("registry_individual:index", "income", "1200.50"),
                                                      ("registry_household:index", "savings", "75.50")])
def test_the_csv_export_writes_an_amount_to_its_places(amounts, url_name, column, shown):
    [row] = csv.DictReader(io.StringIO(_body(amounts.client.get(reverse(url_name), {"export": "csv"}))))

    assert row[column] == shown


def test_the_xlsx_export_keeps_an_amount_a_number(amounts):
    sheet = openpyxl.load_workbook(io.BytesIO(_xlsx(amounts.client))).active
    headings = [cell.value for cell in sheet[1]]
    cell = sheet[2][headings.index("income")]

    assert cell.data_type == "n" and Decimal(str(cell.value)) == Decimal("1200.50")


def _xlsx(client):
    response = client.get(reverse("registry_individual:index"), {"export": "xlsx"})
    return b"".join(response.streaming_content) if response.streaming else response.content
