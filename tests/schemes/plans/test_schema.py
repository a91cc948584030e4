"""Plan schemas as openIMIS-compatible JSON Schema: import, export, refusals with reasons."""

import json
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from schemes.bulk.beneficiaries import ENROLMENTS, UPDATES
from schemes.bulk.files import _column_lookup
from schemes.bulk.models import UploadStatus
from schemes.plans.models import Beneficiary, BenefitPlan, PlanField, PlanType, check_plan_field_names
from schemes.plans.schema import CALCULATIONS, export_schema, parse_schema, schema_import
from schemes.registry.models import Membership
from sites.fields import FieldType
from tests.factories import IndividualFactory, RegistryFieldFactory, UserFactory
from tests.schemes.bulk.test_beneficiaries import clerk, import_now, receive  # noqa: F401 (the fixture)

pytestmark = pytest.mark.django_db

# As openIMIS stores a benefit plan's beneficiary_data_schema.
OPENIMIS_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2019-09/schema",
    "type": "object",
    "properties": {
        "email": {"type": "string", "uniqueness": True, "validationCalculation": {"name": "EmailValidationStrategy"}},
        "able_bodied": {"type": "boolean"},
        "national_id_card": {"type": "string", "uniqueness": True},
        "educated_level": {"type": "string", "enum": ["primary", "secondary", "none"]},
        "chronic_illness": {"type": "boolean"},
        "national_id_date": {"type": "string", "format": "date"},
        "number_of_children": {"type": "integer", "minimum": 0, "maximum": 20},
        "monthly_income": {"type": "number", "minimum": 0},
        "mobile_money_number": {"type": "string", "validationCalculation": {"name": "PhoneValidationStrategy"}},
    },
    "required": ["number_of_children"],
}


@pytest.fixture
def designer(db):
    return UserFactory(role="Scheme administrator", national=True)


@pytest.fixture
def plan(db):
    return BenefitPlan.objects.create(code="CG", name="Child grant")


def test_an_openimis_schema_loads_unchanged(plan, designer):
    schema_import(plan=plan, data=OPENIMIS_SCHEMA, by=designer)

    fields = {f.name: f for f in plan.fields.all()}
    assert fields["email"].unique and fields["email"].pattern
    assert fields["email"].to_python("a@b.org") == "a@b.org"
    with pytest.raises(ValidationError):
        fields["email"].to_python("not-an-email")
    assert fields["mobile_money_number"].to_python("+255712345678") == "+255712345678"
    with pytest.raises(ValidationError):
        fields["mobile_money_number"].to_python("0712345678")
    assert fields["educated_level"].field_type == FieldType.CHOICE
    assert fields["educated_level"].choices == ["primary", "secondary", "none"]
    assert fields["national_id_date"].field_type == FieldType.DATE
    assert (fields["number_of_children"].field_type, fields["number_of_children"].required) == (FieldType.INTEGER, True)
    assert fields["number_of_children"].max_value == Decimal(20)
    assert fields["monthly_income"].field_type == FieldType.DECIMAL
    assert fields["able_bodied"].field_type == FieldType.BOOLEAN


def test_export_then_import_gives_the_same_schema(plan, designer):
    schema_import(plan=plan, data=OPENIMIS_SCHEMA, by=designer)
    exported = export_schema(plan)

    other = BenefitPlan.objects.create(code="CG2", name="Copy")
    schema_import(plan=other, data=exported, by=designer)

    assert export_schema(other)["properties"] == exported["properties"]
    assert exported["required"] == ["number_of_children"]
    assert exported["properties"]["email"]["uniqueness"] is True


def test_a_sensitive_field_stays_sensitive_through_download_and_upload(plan, designer):
    """Lost on the way, the masking of a bank account would be switched off without anyone seeing it."""
    schema_import(plan=plan, data={"properties": {"bank_account": {"type": "string", "sensitive": True},
                                                  "grade": {"type": "integer"}}}, by=designer)
    exported = export_schema(plan)
    other = BenefitPlan.objects.create(code="CG3", name="Copy")
    schema_import(plan=other, data=exported, by=designer)

    assert exported["properties"]["bank_account"]["sensitive"] is True and "sensitive" not in exported["properties"][
        "grade"]
    assert dict(other.fields.values_list("name", "sensitive")) == {"bank_account": True, "grade": False}
    assert "sensitive" in [panel.field_name for panel in PlanField.panels]  # and on the plan's form


@pytest.mark.parametrize("data, message", [
    ({"type": "object"}, "needs an object of \"properties\""),
    ({"properties": {"x": {"type": "array"}}}, "Property 'x': the type 'array' is not supported"),
    ({"properties": {"Bad Name": {"type": "string"}}}, "Property 'Bad Name': the name must be"),
    ({"properties": {"group__id": {"type": "string"}}}, "Property 'group__id': the name must be"),
    ({"properties": {"groupId": {"type": "string"}, "groupid": {"type": "string"}}},
     "'groupId' and 'groupid' would be one column in files"),
    ({"properties": {"Household_Size": {"type": "integer"}}},
     "'Household_Size' is already a field of every person (as 'household_size')"),
    ({"properties": {"Age": {"type": "integer"}}}, "'Age' is reserved: it reads as 'age'"),
    ({"properties": {"household_code": {"type": "string"}}}, "'household_code' is read as the column group_code"),
    ({"properties": {"beneficiary_status": {"type": "string"}}}, "read as the column status"),
    ({"properties": {"From": {"type": "string"}}}, "'From' is reserved: it reads as 'from'"),
    ({"properties": {"x": {"type": "string", "pattern": "("}}}, "Not a valid regular expression"),
    ({"properties": {"x": {"type": "string", "pattern": "([0-9]+)+X"}}}, "A repetition of something that varies"),
    ({"properties": {"x": {"type": "integer", "minimum": "low"}}}, "\"minimum\" must be a number"),
    ({"properties": {"x": {"type": "string"}}, "required": ["y"]}, "'y', which is not a property"),
    ({"properties": {"x": {"type": "string", "validationCalculation": {"name": "Luhn"}}}}, "is not known"),
])
def test_a_wrong_schema_is_refused_with_the_reason_and_nothing_changes(plan, designer, data, message):
    PlanField.objects.create(plan=plan, name="kept", label="Kept")

    with pytest.raises(ValidationError) as error:
        schema_import(plan=plan, data=data, by=designer)

    assert any(message in text for text in error.value.messages), error.value.messages
    assert list(plan.fields.values_list("name", flat=True)) == ["kept"]


def test_import_and_download_through_the_admin(plan, designer):
    client = Client()
    client.force_login(designer)
    upload = SimpleUploadedFile("schema.json", json.dumps(OPENIMIS_SCHEMA).encode(), content_type="application/json")

    client.post(reverse("plans_plan:schema_import", args=[plan.pk]), {"file": upload})
    download = client.get(reverse("plans_plan:schema", args=[plan.pk]))
    bad = client.post(reverse("plans_plan:schema_import", args=[plan.pk]),
                      {"file": SimpleUploadedFile("s.json", b"{not json", content_type="application/json")})

    assert plan.fields.count() == 9
    assert json.loads(download.content)["properties"]["educated_level"]["enum"] == ["primary", "secondary", "none"]
    assert "not valid JSON" in bad.content.decode()


# openIMIS's own example of a beneficiary_data_schema (social_protection's README and tests), as written.
CANONICAL_OPENIMIS_SCHEMA = json.loads(
    '{"$id": "https://example.com/beneficiares.schema.json", "type": "object", "title": "Record of beneficiares", '
    '"$schema": "http://json-schema.org/draft-04/schema#", "properties": {"email": {"type": "string", '
    '"description": "email address to contact with beneficiary", "validationCalculation": {"name": '
    '"EmailValidationStrategy"}}, "groupId": {"type": "string", "description": "Group categorization"}, '
    '"able_bodied": {"type": "boolean", "description": "Flag determining whether someone is able bodied or not"}, '
    '"national_id": {"type": "string", "uniqueness": true, "description": "national id"}, "educated_level": '
    '{"type": "string", "description": "The level of person when it comes to the school/education/studies"}, '
    '"recipient_info": {"type": "integer", "description": "main or not recipient_info"}, "chronic_illness": '
    '{"type": "boolean", "description": "Flag determining whether someone has such kind of illness or not"}, '
    '"national_id_type": {"type": "string", "description": "A type of national id"}, "number_of_elderly": '
    '{"type": "integer", "description": "Number of elderly"}, "number_of_children": {"type": "integer", '
    '"description": "Number of children"}, "beneficiary_data_source": {"type": "string", "description": '
    '"The source from where such data comes e.g. IDP"}}, "description": "This document records the details '
    'beneficiares"}')


@pytest.mark.parametrize("plan_type", [PlanType.INDIVIDUAL, PlanType.HOUSEHOLD])
def test_openimis_own_example_loads_as_it_is_written(designer, plan_type):
    """Its national_id is the person's core field (unique in the registry), not a plan field; every
    other property, `groupId` and `recipient_info` included, is one."""
    plan = BenefitPlan.objects.create(code="OI", name="openIMIS example", plan_type=plan_type)

    schema_import(plan=plan, data=CANONICAL_OPENIMIS_SCHEMA, by=designer)

    fields = {f.name: f for f in plan.fields.all()}
    assert set(fields) == set(CANONICAL_OPENIMIS_SCHEMA["properties"]) - {"national_id"}
    assert (fields["groupId"].field_type, fields["groupId"].label) == (FieldType.TEXT, "Group id")
    assert fields["groupId"].help_text == "Group categorization"
    assert fields["recipient_info"].field_type == FieldType.INTEGER
    assert fields["email"].pattern == CALCULATIONS["email"]
    assert fields["email"].to_python("amina@example.org") == "amina@example.org"
    with pytest.raises(ValidationError):
        fields["email"].to_python("amina at example.org")


@pytest.mark.parametrize("plan_type", [PlanType.INDIVIDUAL, PlanType.HOUSEHOLD])
def test_openimis_own_example_comes_back_with_the_same_properties(designer, plan_type):
    plan = BenefitPlan.objects.create(code="OI", name="openIMIS example", plan_type=plan_type)
    schema_import(plan=plan, data=CANONICAL_OPENIMIS_SCHEMA, by=designer)

    exported = export_schema(plan)
    copy = BenefitPlan.objects.create(code="OI2", name="Copy", plan_type=plan_type)
    schema_import(plan=copy, data=exported, by=designer)

    assert set(exported["properties"]) == set(CANONICAL_OPENIMIS_SCHEMA["properties"])
    assert exported["properties"]["national_id"]["uniqueness"] is True
    assert exported["properties"]["national_id"]["type"] == "string"
    assert export_schema(copy)["properties"] == exported["properties"]


def test_every_plans_export_lists_the_persons_national_id_as_openimis_checks_it(designer):
    """openIMIS checks the national IDs of an upload's rows by the schema's `uniqueness`."""
    plan = BenefitPlan.objects.create(code="CG", name="Child grant")
    households = BenefitPlan.objects.create(code="HG", name="Household grant", plan_type=PlanType.HOUSEHOLD)

    assert export_schema(plan)["properties"] == {"national_id": {
        "title": "National ID", "type": "string", "uniqueness": True,
        "description": "The person's national ID: a field of the registry (unique there), not of the plan."}}
    assert export_schema(households)["properties"]["national_id"]["description"].startswith(
        "Each member's national ID")


def test_the_import_notes_what_it_reads_as_a_core_field():
    individual = parse_schema(CANONICAL_OPENIMIS_SCHEMA, plan_type=PlanType.INDIVIDUAL)
    household = parse_schema(CANONICAL_OPENIMIS_SCHEMA, plan_type=PlanType.HOUSEHOLD)

    assert individual.notes == [
        "'national_id' is the person's national ID (a core field): no plan field is created for it; the registry "
        "keeps it unique.",
        "'recipient_info' is a field of the plan; in its enrolment file, the same column also gives a new person's "
        "recipient type in the household (1 primary, 2 secondary).",
    ]
    assert household.notes == ["'national_id' is each member's national ID (a core field): no plan field is created "
                               "for it; the registry keeps it unique."]


@pytest.mark.parametrize("plan_type, name, note", [
    # An individual plan's files read these headers as the person's own columns.
    (PlanType.INDIVIDUAL, "phone_number", "'phone_number' is the person's phone number (a core field)"),
    (PlanType.INDIVIDUAL, "gender", "'gender' is the person's sex (a core field)"),
    (PlanType.INDIVIDUAL, "nationalId", "'nationalId' is the person's national ID (a core field)"),
    (PlanType.INDIVIDUAL, "DOB", "'DOB' is the person's date of birth (a core field)"),
    (PlanType.HOUSEHOLD, "first_name", "'first_name' is each member's first name (a core field)"),
    (PlanType.HOUSEHOLD, "group_code", "'group_code' is the household's code (a core field)"),
    (PlanType.HOUSEHOLD, "household_code", "'household_code' is the household's code (a core field)"),
])
def test_a_property_the_plans_files_read_as_a_core_field_is_that_field(plan_type, name, note):
    parsed = parse_schema({"properties": {name: {"type": "string"}, "grade": {"type": "integer"}}},
                          plan_type=plan_type)

    assert [field.name for field in parsed.fields] == ["grade"]
    assert parsed.notes == [f"{note}: no plan field is created for it."]


def test_a_household_plans_phone_number_is_its_own_field():
    """Its files name households, not people: nothing reads a phone_number column there."""
    parsed = parse_schema({"properties": {"phone_number": {"type": "string"}}}, plan_type=PlanType.HOUSEHOLD)

    assert [field.name for field in parsed.fields] == ["phone_number"] and parsed.notes == []


def test_the_note_says_when_the_registry_does_not_keep_a_core_field_unique():
    parsed = parse_schema({"properties": {"phone": {"type": "string", "uniqueness": True}}})

    assert parsed.notes == ["'phone' is the person's phone number (a core field): no plan field is created for it; "
                            "the registry does not keep it unique."]


def test_a_core_property_must_still_be_an_object():
    with pytest.raises(ValidationError, match="Property 'national_id': must be an object"):
        parse_schema({"properties": {"national_id": "yes"}})


def test_a_field_named_like_the_household_files_code_is_refused_in_a_household_plans_form():
    with pytest.raises(ValidationError, match="'group_code' is read as the column group_code of the plan's files"):
        check_plan_field_names(PlanType.HOUSEHOLD, ["group_code"])
    check_plan_field_names(PlanType.INDIVIDUAL, ["group_code", "individual_role", "recipient_info"])


def test_a_registry_attributes_label_is_a_column_a_plan_field_cannot_take(geo):
    """The individuals file reads a registry attribute under its label too."""
    RegistryFieldFactory(name="income", label="Monthly income", field_type="decimal")

    with pytest.raises(ValidationError, match="'monthly_income' is read as the column income"):
        check_plan_field_names(PlanType.INDIVIDUAL, ["monthly_income"])


@pytest.mark.parametrize("plan_type", [PlanType.INDIVIDUAL, PlanType.HOUSEHOLD])
def test_the_plans_files_read_openimis_own_example(designer, plan_type):
    """No column of the enrolment or the update file is claimed twice."""
    plan = BenefitPlan.objects.create(code="OI", name="openIMIS example", plan_type=plan_type)
    schema_import(plan=plan, data=CANONICAL_OPENIMIS_SCHEMA, by=designer)

    for importer in (ENROLMENTS, UPDATES):
        headers = set(_column_lookup(importer.columns(plan)))

        assert {"groupid", "recipientinfo", "email"} <= headers


def test_an_openimis_file_enrols_into_a_plan_of_openimis_own_example(
        designer, clerk, geo, django_capture_on_commit_callbacks):  # noqa: F811 (clerk is the imported fixture)
    """national_id names the person (their own field), recipient_info is the plan's and the new
    person's place in their household, groupId is the plan's."""
    plan = BenefitPlan.objects.create(code="OI", name="openIMIS example")
    schema_import(plan=plan, data=CANONICAL_OPENIMIS_SCHEMA, by=designer)
    BenefitPlan.objects.filter(pk=plan.pk).update(status="ACTIVE")
    known = IndividualFactory(national_id="TZ100", location=geo.village_a)
    header = ["first_name", "last_name", "dob", "sex", "location", "national_id", "group_code", "individual_role",
              "recipient_info", "groupId", "email", "number_of_children"]
    upload = receive(clerk, plan, header, [
        ["", "", "", "", "", "TZ100", "", "", "", "G-1", "known@example.org", "2"],
        ["Neema", "Juma", "1990-03-02", "F", geo.village_a.code, "TZ200", "HH-1", "HEAD", "1", "G-2", "", "3"],
    ], django_capture_on_commit_callbacks)
    assert upload.status == UploadStatus.READY, upload.problem

    import_now(upload, clerk, django_capture_on_commit_callbacks)

    enrolled = {b.individual.national_id: b.attributes for b in Beneficiary.objects.filter(plan=plan)}
    assert enrolled == {"TZ100": {"groupId": "G-1", "email": "known@example.org", "number_of_children": 2},
                        "TZ200": {"groupId": "G-2", "recipient_info": 1, "number_of_children": 3}}
    assert Membership.objects.get(household__code="HH-1").recipient_type == "PRIMARY"
    assert known.beneficiaries.exists()


@pytest.mark.parametrize("plan_type, name", [
    (PlanType.INDIVIDUAL, "national_id"), (PlanType.INDIVIDUAL, "first_name"), (PlanType.HOUSEHOLD, "group_code")])
def test_a_core_property_the_schema_requires_is_said_to_be_checked_by_the_registry(plan_type, name):
    """The plan cannot require it (no plan field is created): the scheme administrator is told."""
    parsed = parse_schema({"properties": {name: {"type": "string"}, "grade": {"type": "integer"}},
                           "required": [name, "grade"]}, plan_type=plan_type)

    assert parsed.notes[1:] == [f"'{name}' is required by the schema but is a registry column: it is checked by the "
                                "registry, not the plan."]
    assert [(field.name, field.required) for field in parsed.fields] == [("grade", True)]


def test_the_import_page_says_a_required_core_property_is_the_registrys_to_check(plan, designer):
    client = Client()
    client.force_login(designer)
    schema = {"properties": {"national_id": {"type": "string"}}, "required": ["national_id"]}

    response = client.post(reverse("plans_plan:schema_import", args=[plan.pk]), {"file": SimpleUploadedFile(
        "schema.json", json.dumps(schema).encode(), content_type="application/json")}, follow=True)

    assert "'national_id' is required by the schema but is a registry column: it is checked by the registry, not " \
           "the plan." in [str(message) for message in response.context["messages"]]


@pytest.mark.parametrize("name", ["contains", "exact", "gt", "has_key", "hasKey", "Range", "Regex"])
def test_a_property_named_like_a_lookup_of_the_plan_data_is_refused(plan, designer, name):
    with pytest.raises(ValidationError) as error:
        schema_import(plan=plan, data={"properties": {name: {"type": "string"}}}, by=designer)

    assert any(f"'{name}' is a database lookup" in message for message in error.value.messages), error.value.messages
    assert not plan.fields.exists()


def test_a_property_named_year_is_a_field_like_any_other(plan, designer):
    """`year` is a lookup of dates, not of the plan data (JSON): `attributes__year` reads the key."""
    schema_import(plan=plan, data={"properties": {"year": {"type": "integer"}}}, by=designer)

    assert list(plan.fields.values_list("name", flat=True)) == ["year"]


@pytest.mark.parametrize("stored", [r"^\+\d{2,3}-\d+$", r"\+\d{2,3}-\d+"])
def test_a_pattern_is_exported_with_one_pair_of_anchors_and_imported_back_unchanged(designer, stored):
    """QA: a pattern stored with its anchors was exported as ^^\\+\\d{2,3}\\d+$$ (a phone pattern is now
    exported as openIMIS's validation: test_a_validation_is_exported_by_its_name)."""
    plan = BenefitPlan.objects.create(code="EG", name="Elderly grant")
    PlanField.objects.create(plan=plan, name="contact", label="Contact", field_type=FieldType.TEXT, pattern=stored)

    exported = export_schema(plan)
    saved_version = BenefitPlan.objects.get(pk=plan.pk).latest_revision_id
    schema_import(plan=plan, data=exported, by=designer)

    assert exported["properties"]["contact"]["pattern"] == r"^\+\d{2,3}-\d+$"
    assert BenefitPlan.objects.get(pk=plan.pk).latest_revision_id == saved_version  # the same schema: no version
    assert export_schema(plan)["properties"]["contact"] == exported["properties"]["contact"]


def test_an_imported_pattern_ending_in_a_literal_dollar_keeps_it(designer):
    parsed = parse_schema({"properties": {"price": {"type": "string", "pattern": r"^[0-9]+\$$"}}})

    [field] = parsed.fields
    assert field.pattern == r"[0-9]+\$"
    assert field.to_python("25$") == "25$"


def test_an_amounts_decimals_are_exported_as_multiple_of_and_imported_back(designer):
    """Lost on the way, an income field would take 1234.5678912 again after a download and upload."""
    plan = BenefitPlan.objects.create(code="EG", name="Elderly grant")
    PlanField.objects.create(plan=plan, name="pension", label="Pension", field_type=FieldType.DECIMAL,
                             decimal_places=2, min_value=Decimal("0.5000"))
    PlanField.objects.create(plan=plan, name="weight", label="Weight", field_type=FieldType.DECIMAL)

    exported = export_schema(plan)
    other = BenefitPlan.objects.create(code="EG2", name="Copy")
    schema_import(plan=other, data=json.loads(json.dumps(exported)), by=designer)

    assert exported["properties"]["pension"] == {"title": "Pension", "type": "number", "minimum": 0.5,
                                                 "multipleOf": 0.01}
    assert '"multipleOf": 0.01' in json.dumps(exported)  # a JSON number, as JSON Schema has it
    assert "multipleOf" not in exported["properties"]["weight"]
    assert dict(other.fields.values_list("name", "decimal_places")) == {"pension": 2, "weight": None}
    assert export_schema(other)["properties"] == exported["properties"]
    assert "decimal_places" in [panel.field_name for panel in PlanField.panels]  # and on the plan's form


@pytest.mark.parametrize("step, places", [(0.01, 2), (0.1, 1), (1, 0), (1e-05, 5), ("0.001", 3)])
def test_a_multiple_of_a_power_of_ten_is_a_number_of_decimals(step, places):
    [field] = parse_schema({"properties": {"income": {"type": "number", "multipleOf": step}}}).fields

    assert (field.field_type, field.decimal_places) == (FieldType.DECIMAL, places)


def test_a_whole_number_may_say_it_is_a_multiple_of_one_and_keeps_no_places():
    [field] = parse_schema({"properties": {"children": {"type": "integer", "multipleOf": 1}}}).fields

    assert (field.field_type, field.decimal_places) == (FieldType.INTEGER, None)


@pytest.mark.parametrize("prop, message", [
    ({"type": "number", "multipleOf": 0.05}, "\"multipleOf\" 0.05 is not supported: only a number of decimals is"),
    ({"type": "number", "multipleOf": 5}, "\"multipleOf\" 5 is not supported"),
    ({"type": "integer", "multipleOf": 5}, "\"multipleOf\" 5 is not supported"),
    ({"type": "number", "multipleOf": 1e-11}, "down to 1e-10"),
    ({"type": "number", "multipleOf": 0}, "\"multipleOf\" must be a number above 0."),
    ({"type": "number", "multipleOf": True}, "\"multipleOf\" must be a number above 0."),
    ({"type": "number", "multipleOf": "cents"}, "\"multipleOf\" must be a number above 0."),
    ({"type": "number", "multipleOf": 0.01, "minimum": 0.125}, "at most 2 decimals: 0.125 has 3"),
])
def test_a_multiple_of_that_is_not_a_number_of_decimals_is_refused_with_the_reason(prop, message):
    """A check the plan's fields cannot make is refused, not dropped unseen."""
    with pytest.raises(ValidationError) as error:
        parse_schema({"properties": {"amount": prop}})

    assert any(text.startswith("Property 'amount': ") and message in text for text in error.value.messages), (
        error.value.messages)


@pytest.mark.parametrize("name", ["number", "NumberValidationStrategy"])
def test_a_number_validation_imports_and_checks_numbers(plan, designer, name):
    """QA: openIMIS's number validation, -?\\d+(\\.\\d+)?, was refused as "a repetition of something that
    varies", so a schema using it never imported."""
    schema_import(plan=plan, data={"properties": {"amount_text": {
        "type": "string", "validationCalculation": {"name": name}}}}, by=designer)

    field = plan.fields.get()
    assert field.pattern == CALCULATIONS["number"]
    assert [field.to_python(value) for value in ("12", "-3", "12.5")] == ["12", "-3", "12.5"]
    with pytest.raises(ValidationError) as error:
        field.to_python("twelve")
    assert error.value.messages == ["'twelve' does not match the expected format: a number, e.g. 12 or 12.5."]


@pytest.mark.parametrize("pattern", [r"^\d+(\.\d{1,2})?$", r"^[A-Z]+( [A-Z]+)?$", r"^[0-9]+(-[0-9]+)?$"])
def test_a_pattern_with_an_optional_part_imports(plan, designer, pattern):
    schema_import(plan=plan, data={"properties": {"ref": {"type": "string", "pattern": pattern}}}, by=designer)

    assert plan.fields.get().pattern == pattern[1:-1]


def test_a_validations_messages_say_what_it_takes_in_words(plan, designer):
    """QA: an openIMIS phone showed "'0712345678' does not match the expected format: the pattern
    \\+\\d{2,3}\\d+."; the property's own description is kept before the words."""
    schema_import(plan=plan, data=OPENIMIS_SCHEMA, by=designer)
    fields = {field.name: field for field in plan.fields.all()}
    other = BenefitPlan.objects.create(code="OI", name="openIMIS example")
    schema_import(plan=other, data=CANONICAL_OPENIMIS_SCHEMA, by=designer)

    def message(field, value):
        with pytest.raises(ValidationError) as error:
            field.to_python(value)
        return error.value.messages[0]

    assert message(fields["mobile_money_number"], "0712345678") == (
        "'0712345678' does not match the expected format: a phone number in international form, + then the "
        "country code and number, e.g. +255712345678.")
    assert message(fields["email"], "amina") == (
        "'amina' does not match the expected format: an e-mail address, e.g. name@example.org.")
    assert other.fields.get(name="email").help_text == (
        "email address to contact with beneficiary — an e-mail address, e.g. name@example.org")


def test_a_validation_is_exported_by_its_name_and_its_description_as_it_was_imported(plan, designer):
    """QA: the export wrote a raw pattern where the import had validationCalculation."""
    schema_import(plan=plan, data=OPENIMIS_SCHEMA, by=designer)
    PlanField.objects.create(plan=plan, name="ref", label="Ref", field_type=FieldType.TEXT,
                             pattern=CALCULATIONS["phone"] + "0")  # not exactly the phone's: a pattern
    other = BenefitPlan.objects.create(code="OI", name="openIMIS example")
    schema_import(plan=other, data=CANONICAL_OPENIMIS_SCHEMA, by=designer)

    exported = export_schema(plan)["properties"]

    assert exported["email"] == {"title": "Email", "type": "string", "uniqueness": True,
                                 "validationCalculation": {"name": "EmailValidationStrategy"}}
    assert exported["mobile_money_number"]["validationCalculation"] == {"name": "PhoneValidationStrategy"}
    assert "pattern" not in exported["mobile_money_number"]
    assert exported["ref"]["pattern"] == "^" + CALCULATIONS["phone"] + "0$"
    assert export_schema(other)["properties"]["email"] == {
        "title": "Email", "type": "string", "description": "email address to contact with beneficiary",
        "validationCalculation": {"name": "EmailValidationStrategy"}}
    copy = BenefitPlan.objects.create(code="CP", name="Copy")
    schema_import(plan=copy, data=export_schema(other), by=designer)
    assert export_schema(copy)["properties"] == export_schema(other)["properties"]
    assert copy.fields.get(name="email").help_text == other.fields.get(name="email").help_text
