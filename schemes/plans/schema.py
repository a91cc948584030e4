"""A plan's beneficiary schema as JSON Schema (draft-07), compatible with openIMIS
`beneficiary_data_schema`: `type`, `format: date`, `enum`, `minimum`/`maximum`, `minLength`/
`maxLength`, `pattern`, `required`, and openIMIS's `uniqueness` and `validationCalculation`."""

import re
from decimal import Decimal, InvalidOperation

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from sites.audit import audit
from sites.fields import IDENTIFIER, FieldType
from workflows.services import approval_submit

from .models import PlanField, PlanStatus, check_plan_field_names
from .services import plan_change_payload, plan_lock_for_change

DRAFT_07 = "http://json-schema.org/draft-07/schema#"
# openIMIS's named validations, as the patterns they check.
CALCULATIONS = {
    "email": r"[^@\s]+@[^@\s]+\.[^@\s]+",
    "phone": r"\+\d{2,3}\d+",
    "number": r"-?\d+(\.\d+)?",
}
MAX_FIELDS = 200


def export_schema(plan):
    properties, required = {}, []
    for field in plan.fields.order_by("sort_order", "name"):
        properties[field.name] = _property(field)
        if field.required:
            required.append(field.name)
    schema = {"$schema": DRAFT_07, "title": plan.name, "type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def _property(field):
    kind = field.field_type
    prop = {"title": field.label}
    if field.help_text:
        prop["description"] = field.help_text
    if kind in (FieldType.INTEGER, FieldType.DECIMAL):
        prop["type"] = "integer" if kind == FieldType.INTEGER else "number"
        if field.min_value is not None:
            prop["minimum"] = _number(field.min_value)
        if field.max_value is not None:
            prop["maximum"] = _number(field.max_value)
    elif kind == FieldType.DATE:
        prop.update(type="string", format="date")
    elif kind == FieldType.BOOLEAN:
        prop["type"] = "boolean"
    elif kind == FieldType.CHOICE:
        prop.update(type="string", enum=list(field.choices))
    else:
        prop["type"] = "string"
        if field.pattern:
            prop["pattern"] = f"^{field.pattern}$"
        if field.min_value is not None:
            prop["minLength"] = int(field.min_value)
        if field.max_value is not None:
            prop["maxLength"] = int(field.max_value)
    if field.unique:
        prop["uniqueness"] = True
    if field.sensitive:  # ours, like "uniqueness": JSON Schema readers ignore keywords they do not know
        prop["sensitive"] = True
    return prop


def _number(value):
    # JSON Schema bounds are JSON numbers; a field bound has at most 18 digits, 4 after the point.
    return int(value) if value == value.to_integral_value() else float(value)


def parse_schema(data):
    """JSON Schema -> unsaved PlanField rows; ValidationError naming each property that is wrong."""
    if not isinstance(data, dict) or not isinstance(data.get("properties"), dict):
        raise ValidationError("Not a JSON Schema for beneficiaries: it needs an object of \"properties\".")
    properties = data["properties"]
    if len(properties) > MAX_FIELDS:
        raise ValidationError(f"At most {MAX_FIELDS} properties.")
    required = data.get("required", [])
    if not isinstance(required, list) or not all(isinstance(name, str) for name in required):
        raise ValidationError("\"required\" must be a list of property names.")
    unknown = sorted(set(required) - set(properties))
    errors = [f"\"required\" names '{name}', which is not a property." for name in unknown]
    fields = []
    for order, (name, prop) in enumerate(properties.items()):
        try:
            fields.append(_field(name, prop, name in required, order))
        except ValidationError as error:
            errors.extend(f"Property '{name}': {message}" for message in error.messages)
    if errors:
        raise ValidationError(errors)
    return fields


def _field(name, prop, required, order):
    try:
        IDENTIFIER(name)
    except ValidationError:
        raise ValidationError("the name must be lower-case letters, digits and single underscores.") from None
    if not isinstance(prop, dict):
        raise ValidationError("must be an object.")
    kind = prop.get("type")
    field = PlanField(name=name, label=str(prop.get("title") or name.replace("_", " ").capitalize())[:120],
                      help_text=str(prop.get("description", ""))[:255], required=required,
                      unique=prop.get("uniqueness") is True, sensitive=prop.get("sensitive") is True,
                      sort_order=order)
    if "enum" in prop:
        values = prop["enum"]
        if not isinstance(values, list) or not values or not all(isinstance(v, (str, int)) for v in values):
            raise ValidationError("\"enum\" must be a list of texts or numbers.")
        field.field_type, field.choices = FieldType.CHOICE, [str(v) for v in values]
    elif kind == "string" and prop.get("format") == "date":
        field.field_type = FieldType.DATE
    elif kind == "string":
        field.field_type = FieldType.TEXT
        field.min_value, field.max_value = _bound(prop, "minLength"), _bound(prop, "maxLength")
        field.pattern = _pattern(prop)
    elif kind in ("integer", "number"):
        field.field_type = FieldType.INTEGER if kind == "integer" else FieldType.DECIMAL
        field.min_value, field.max_value = _bound(prop, "minimum"), _bound(prop, "maximum")
    elif kind == "boolean":
        field.field_type = FieldType.BOOLEAN
    else:
        raise ValidationError(f"the type {kind!r} is not supported (string, integer, number, boolean).")
    field.full_clean(exclude=["plan"])
    return field


def _bound(prop, key):
    if key not in prop:
        return None
    try:
        value = Decimal(str(prop[key]))
    except InvalidOperation:
        raise ValidationError(f"\"{key}\" must be a number.") from None
    if not value.is_finite():
        raise ValidationError(f"\"{key}\" must be a number.")
    return value


def _pattern(prop):
    """A JSON Schema pattern (or an openIMIS named validation) as the whole-value regex we store."""
    calculation = prop.get("validationCalculation")
    if isinstance(calculation, dict) and calculation.get("name"):
        name = str(calculation["name"]).lower()
        for key, pattern in CALCULATIONS.items():
            if key in name:
                return pattern
        raise ValidationError(f"the validation {calculation['name']!r} is not known (email, phone, number).")
    pattern = prop.get("pattern", "")
    if not pattern:
        return ""
    if not isinstance(pattern, str) or len(pattern) > 200:
        raise ValidationError("\"pattern\" must be a regular expression of at most 200 characters.")
    pattern = pattern.removeprefix("^").removesuffix("$")
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValidationError(f"\"pattern\" is not a valid regular expression: {exc}.") from None
    return pattern


def schema_import(*, plan, data, by):
    """Replace the plan's schema with the JSON Schema's fields, all or nothing. A draft plan's schema
    is replaced at once; an active plan's change is submitted as `plans.change` (returns the request);
    a closed plan's is refused (by the request's preparation), nothing submitted."""
    if not by.has_perm("plans.change_planfield"):
        raise PermissionDenied("You may not change plan schemas.")
    fields = parse_schema(data)
    check_plan_field_names(plan.plan_type, [field.name for field in fields])
    if plan.status != PlanStatus.DRAFT:
        plan.fields = fields  # in memory only: it applies once approved
        return approval_submit(operation="plans.change", by=by, payload={"plan": plan.pk,
                                                                         **plan_change_payload(plan)})
    with transaction.atomic():
        plan = plan_lock_for_change(plan)
        plan.fields.all().delete()
        for field in fields:
            field.plan = plan
        PlanField.objects.bulk_create(fields)
        audit(plan, "mizani.plan_schema", by=by, data={"fields": [f.name for f in fields]})
    return fields
