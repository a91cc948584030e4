"""A plan's beneficiary schema as JSON Schema (draft-07), compatible with openIMIS
`beneficiary_data_schema` (whatever its `$schema`: openIMIS's own examples say draft-04): `type`,
`format: date`, `enum`, `minimum`/`maximum`, `multipleOf` as a number of decimals (0.01: at most 2),
`minLength`/`maxLength`, `pattern`, `required`, and
openIMIS's `uniqueness` and `validationCalculation` (a field's pattern that is exactly one of those
validations' is exported as the validation, by name). Property names are the plan fields' names: letters
of either case (openIMIS's `groupId`), digits and single underscores.

Core fields. openIMIS keeps a person's national ID, phone... with the rest of their data, so its schemas
list them; Mizani's registry has them as fields of the person (`national_id` unique there). A property
the plan's files read as one of those (in an individual plan: `national_id`, `phone_number`, `gender`...,
as the individuals file reads headers; in a household plan: a person field by its name, each member's,
or `group_code`, the household's code) is that field: no plan field is created, and `parse_schema`'s
notes say so (and, if the schema requires it, that the registry checks it, not the plan). In an
individual plan, `group_code`, `individual_role` and `recipient_info` are plan fields that share their
cell with the new person's household columns of the enrolment file (a note says so).

The export lists `national_id` again, for every plan, marked unique: openIMIS checks the national IDs
of an upload's rows against this schema, and a schema without it would lose that check. The other core
fields are not listed again: a plan's schema is its fields, which keep no trace of the core fields an
imported schema named, and the registry checks those on the person whatever the schema says."""

import re
from decimal import Decimal, InvalidOperation
from typing import NamedTuple

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from schemes.bulk.beneficiaries import HOUSEHOLD_COLUMN
from schemes.bulk.files import header_key
from schemes.bulk.individuals import CORE_COLUMNS
from sites.audit import audit
from sites.fields import (
    IDENTIFIER,
    MAX_PLACES,
    PATTERN_TEXTS,
    FieldType,
    name_key,
    pattern_problem,
    without_anchors,
)
from workflows.services import approval_submit

from .models import BenefitPlan, PlanField, PlanStatus, PlanType, check_plan_field_names
from .services import plan_change, plan_change_payload

DRAFT_07 = "http://json-schema.org/draft-07/schema#"
# openIMIS's named validations, as the patterns they check, ...
CALCULATIONS = {
    "email": r"[^@\s]+@[^@\s]+\.[^@\s]+",
    "phone": r"\+\d{2,3}\d+",
    "number": r"-?\d+(\.\d+)?",
}
# ... what those patterns mean, in the field's help text (and so in its messages: "'0712345678' does
# not match the expected format: a phone number in international form..."), ...
CALCULATION_TEXTS = {name: PATTERN_TEXTS[pattern] for name, pattern in CALCULATIONS.items()}
# ... and the names the export gives them, as openIMIS names its strategies.
CALCULATION_NAMES = {"email": "EmailValidationStrategy", "phone": "PhoneValidationStrategy",
                     "number": "NumberValidationStrategy"}
DESCRIBED = " — "  # between a property's own description and what its validation takes
MAX_FIELDS = 200
# The person's own fields among the individuals file's columns (CORE_COLUMNS), as notes name them.
PERSON_FIELDS = {"first_name": "first name", "last_name": "last name", "dob": "date of birth", "sex": "sex",
                 "national_id": "national ID", "phone": "phone number", "location": "location"}
# The others: a new person's household. An individual plan's field of the same name shares their cell.
HOUSEHOLD_COLUMNS = {"group_code": "household code", "individual_role": "role in the household",
                     "recipient_info": "recipient type in the household (1 primary, 2 secondary)"}
UNIQUE_IN_REGISTRY = {"national_id", "group_code"}


class ParsedSchema(NamedTuple):
    fields: list  # unsaved PlanField rows
    notes: list  # properties read as something else than a new plan field, said for the person importing


def export_schema(plan):
    whose = "Each member's" if plan.plan_type == PlanType.HOUSEHOLD else "The person's"
    properties = {"national_id": {"title": "National ID", "type": "string", "uniqueness": True,
                                  "description": f"{whose} national ID: a field of the registry (unique there), "
                                                 "not of the plan."}}
    required = []
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
    calculation = _calculation_of(field)
    description = _own_description(field.help_text, calculation)
    if description:
        prop["description"] = description
    if kind in (FieldType.INTEGER, FieldType.DECIMAL):
        prop["type"] = "integer" if kind == FieldType.INTEGER else "number"
        if field.min_value is not None:
            prop["minimum"] = _number(field.min_value)
        if field.max_value is not None:
            prop["maximum"] = _number(field.max_value)
        if kind == FieldType.DECIMAL and field.decimal_places is not None:
            prop["multipleOf"] = _number(Decimal(1).scaleb(-field.decimal_places))  # 2 places: 0.01
    elif kind == FieldType.DATE:
        prop.update(type="string", format="date")
    elif kind == FieldType.BOOLEAN:
        prop["type"] = "boolean"
    elif kind == FieldType.CHOICE:
        prop.update(type="string", enum=list(field.choices))
    else:
        prop["type"] = "string"
        if calculation:  # as the import read it: openIMIS checks it by name
            prop["validationCalculation"] = {"name": CALCULATION_NAMES[calculation]}
        elif field.pattern:
            prop["pattern"] = f"^{without_anchors(field.pattern)}$"  # a stored one may carry them already
        if field.min_value is not None:
            prop["minLength"] = int(field.min_value)
        if field.max_value is not None:
            prop["maxLength"] = int(field.max_value)
    if field.unique:
        prop["uniqueness"] = True
    if field.sensitive:  # ours, like "uniqueness": JSON Schema readers ignore keywords they do not know
        prop["sensitive"] = True
    return prop


def _calculation_of(field):
    """The openIMIS validation whose pattern is exactly the text field's, or None."""
    if field.field_type != FieldType.TEXT or not field.pattern:
        return None
    pattern = without_anchors(field.pattern)
    return next((name for name, known in CALCULATIONS.items() if known == pattern), None)


def _own_description(help_text, calculation):
    """A field's help text without what the import added for its validation (see _described)."""
    if calculation is None:
        return help_text
    added = CALCULATION_TEXTS[calculation]
    if help_text == added:
        return ""
    return help_text.removesuffix(DESCRIBED + added)


def _described(description, calculation):
    """The help text of an imported field: its description, then what its validation takes (its
    messages read it), the whole within the field's 255 characters."""
    added = CALCULATION_TEXTS[calculation]
    description = _own_description(description, calculation)  # a schema this export wrote: added once
    if not description:
        return added
    return description[:255 - len(DESCRIBED + added)].rstrip() + DESCRIBED + added


def _number(value):
    # JSON Schema bounds are JSON numbers; a field bound has at most 18 digits, 4 after the point (a
    # multipleOf, one digit: 1e-10 at the least).
    return int(value) if value == value.to_integral_value() else float(value)


def parse_schema(data, *, plan_type=PlanType.INDIVIDUAL):
    """JSON Schema -> ParsedSchema: unsaved PlanField rows, and notes on the properties that are core
    fields of a plan of `plan_type` (or share a column with one); ValidationError naming each property
    that is wrong."""
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
    core_fields = _core_fields(plan_type)
    fields, notes = [], []
    for order, (name, prop) in enumerate(properties.items()):
        try:
            core = core_fields.get(name_key(name))
            if core:
                notes.append(_core_note(name, prop, core, plan_type))
                if name in required:
                    notes.append(f"'{name}' is required by the schema but is a registry column: it is checked by "
                                 "the registry, not the plan.")
                continue
            fields.append(_field(name, prop, name in required, order))
        except ValidationError as error:
            errors.extend(f"Property '{name}': {message}" for message in error.messages)
            continue
        if plan_type == PlanType.INDIVIDUAL and name in HOUSEHOLD_COLUMNS:
            notes.append(f"'{name}' is a field of the plan; in its enrolment file, the same column also gives a "
                         f"new person's {HOUSEHOLD_COLUMNS[name]}.")
    if errors:
        raise ValidationError(errors)
    return ParsedSchema(fields, notes)


def _core_fields(plan_type):
    """Name key -> core field, for the property names that are one in a plan of `plan_type`."""
    if plan_type == PlanType.HOUSEHOLD:
        # The household file names a household by its code; a person's fields are its members'.
        household = HOUSEHOLD_COLUMN
        return {**{name_key(name): name for name in PERSON_FIELDS},
                **{header_key(text): household.name for text in (household.name, *household.aliases)}}
    # As the individuals file reads its headers: `phone_number` and `mobile` are the person's phone.
    return {header_key(text): column.name for column in CORE_COLUMNS if column.name in PERSON_FIELDS
            for text in (column.name, *column.aliases)}


def _core_note(name, prop, core, plan_type):
    if not isinstance(prop, dict):
        raise ValidationError("must be an object.")
    if core == HOUSEHOLD_COLUMN.name:
        what = "the household's code"
    else:
        what = f"{'each member' if plan_type == PlanType.HOUSEHOLD else 'the person'}'s {PERSON_FIELDS[core]}"
    note = f"'{name}' is {what} (a core field): no plan field is created for it"
    if prop.get("uniqueness") is True:
        note += f"; the registry {'keeps' if core in UNIQUE_IN_REGISTRY else 'does not keep'} it unique"
    return note + "."


def _field(name, prop, required, order):
    try:
        IDENTIFIER(name)
    except ValidationError:
        raise ValidationError("the name must be letters, digits and single underscores, starting with a "
                              "letter.") from None
    if not isinstance(prop, dict):
        raise ValidationError("must be an object.")
    kind = prop.get("type")
    field = PlanField(name=name, label=str(prop.get("title") or _label(name))[:120],
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
        field.pattern, calculation = _pattern(prop)
        if calculation:
            field.help_text = _described(field.help_text, calculation)
    elif kind in ("integer", "number"):
        field.field_type = FieldType.INTEGER if kind == "integer" else FieldType.DECIMAL
        field.min_value, field.max_value = _bound(prop, "minimum"), _bound(prop, "maximum")
        places = _places(prop)  # a whole number is a multiple of 0.01 already: checked, nothing kept
        if kind == "number":
            field.decimal_places = places
    elif kind == "boolean":
        field.field_type = FieldType.BOOLEAN
    else:
        raise ValidationError(f"the type {kind!r} is not supported (string, integer, number, boolean).")
    field.full_clean(exclude=["plan"])
    return field


def _label(name):
    """`number_of_children` -> "Number of children", `groupId` -> "Group id"."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).replace("_", " ").capitalize()


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


def _places(prop):
    """A "multipleOf" as the decimals it allows (0.01: 2, 1: none), or None without one. Another step
    (0.05, 5) is a check the plan's fields cannot make: refused rather than dropped unseen."""
    if "multipleOf" not in prop:
        return None
    step = prop["multipleOf"]
    try:
        value = None if isinstance(step, bool) else Decimal(str(step)).normalize()
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite() or value <= 0:
        raise ValidationError("\"multipleOf\" must be a number above 0.")
    places = -value.as_tuple().exponent
    if value.as_tuple().digits != (1,) or not 0 <= places <= MAX_PLACES:
        raise ValidationError(f"\"multipleOf\" {step} is not supported: only a number of decimals is, as 1 (none), "
                              f"0.1, 0.01 (at most 2 decimals)... down to 1e-{MAX_PLACES}.")
    return places


def _pattern(prop):
    """A JSON Schema pattern (or an openIMIS named validation) as the whole-value regex we store, and
    the validation's name in CALCULATIONS (None for a pattern)."""
    calculation = prop.get("validationCalculation")
    if isinstance(calculation, dict) and calculation.get("name"):
        name = str(calculation["name"]).lower()
        for key, pattern in CALCULATIONS.items():
            if key in name:
                return pattern, key
        raise ValidationError(f"the validation {calculation['name']!r} is not known (email, phone, number).")
    pattern = prop.get("pattern", "")
    if not pattern:
        return "", None
    if not isinstance(pattern, str) or len(pattern) > 200:
        raise ValidationError("\"pattern\" must be a regular expression of at most 200 characters.")
    pattern = without_anchors(pattern)
    if problem := pattern_problem(pattern):
        raise ValidationError(f"\"pattern\": {problem}")
    return pattern, None


def schema_import(*, plan, data, by):
    """Replace the plan's schema with the JSON Schema's fields, all or nothing, as any other change of
    the plan: a draft's is applied at once as a new version (returns the fields); an active plan's is
    submitted as `plans.change` (returns the request); a closed plan's is refused, nothing submitted."""
    if not by.has_perm("plans.change_planfield"):
        raise PermissionDenied("You may not change plan schemas.")
    fields = parse_schema(data, plan_type=plan.plan_type).fields
    check_plan_field_names(plan.plan_type, [field.name for field in fields])
    proposed = BenefitPlan.from_serializable_data(plan.serializable_data())  # the caller's plan stays as it is
    proposed.fields = fields  # in memory: the change carries them
    change = plan_change_payload(proposed)
    if plan.status != PlanStatus.DRAFT:
        return approval_submit(operation="plans.change", by=by, payload={"plan": plan.pk, **change})
    with transaction.atomic():
        plan = plan_change(plan=plan, change=change, by=by)
        audit(plan, "mizani.plan_schema", by=by, data={"fields": [field.name for field in fields]})
    return list(plan.fields.all())
