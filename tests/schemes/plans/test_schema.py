"""Plan schemas as openIMIS-compatible JSON Schema: import, export, refusals with reasons."""

import json
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from schemes.plans.models import BenefitPlan, PlanField
from schemes.plans.schema import export_schema, schema_import
from sites.fields import FieldType
from tests.factories import UserFactory

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
        "phone_number": {"type": "string", "validationCalculation": {"name": "PhoneValidationStrategy"}},
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
    assert fields["phone_number"].to_python("+255712345678") == "+255712345678"
    with pytest.raises(ValidationError):
        fields["phone_number"].to_python("0712345678")
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
    ({"properties": {"x": {"type": "string", "pattern": "("}}}, "not a valid regular expression"),
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
