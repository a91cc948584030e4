"""What a rule may name: each field's type, how SQL reads it (a Django expression on the queryset's
model) and how Python reads it from one record. The registry's catalogue is built from the registry
fields and the typed attributes administrators defined."""

import datetime
from dataclasses import dataclass
from decimal import Decimal
from functools import partial

from django.db import models
from django.db.models.functions import Cast

from sites.fields import FieldType

from .sql import AttributeText, YearsBetween

NUMBER, TEXT, DATE, BOOLEAN, NULL = "number", "text", "date", "boolean", "null"


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: str
    label: str
    sql: object  # () -> Django expression
    python: object  # (record) -> value or None


class Catalogue:
    def __init__(self, fields, *, today=None):
        self.fields = {spec.name: spec for spec in fields}
        self.today = today or datetime.date.today()

    def __contains__(self, name):
        return name in self.fields

    def __getitem__(self, name):
        return self.fields[name]

    def names(self):
        return sorted(self.fields)


def attribute_spec(definition):
    """A typed attribute of the JSON `attributes` column, cast by its declared type."""
    read_sql = partial(_attribute_sql, definition.name, definition.field_type)
    read_python = partial(_attribute_python, definition.name, definition.field_type)
    kind = {FieldType.INTEGER: NUMBER, FieldType.DECIMAL: NUMBER, FieldType.DATE: DATE,
            FieldType.BOOLEAN: BOOLEAN}.get(definition.field_type, TEXT)
    return FieldSpec(definition.name, kind, definition.label, read_sql, read_python)


def _attribute_sql(name, field_type):
    if field_type in (FieldType.INTEGER, FieldType.DECIMAL):
        return Cast(AttributeText(name), models.DecimalField(max_digits=38, decimal_places=10))
    if field_type == FieldType.DATE:
        return Cast(AttributeText(name), models.DateField())
    if field_type == FieldType.BOOLEAN:
        return AttributeText(name, boolean=True)
    return AttributeText(name)


def _attribute_python(name, field_type, record):
    value = (record.attributes or {}).get(name)
    if value is None:
        return None
    if field_type in (FieldType.INTEGER, FieldType.DECIMAL):
        return Decimal(str(value))
    if field_type == FieldType.DATE:
        return datetime.date.fromisoformat(value)
    return value


def individual_catalogue(*, today=None):
    """Fields of a registered person: core fields, `age` in whole years, and the typed attributes."""
    from schemes.registry.models import RegistryField

    today = today or datetime.date.today()
    core = [
        FieldSpec("first_name", TEXT, "First name", lambda: models.F("first_name"), lambda r: r.first_name),
        FieldSpec("last_name", TEXT, "Last name", lambda: models.F("last_name"), lambda r: r.last_name),
        FieldSpec("sex", TEXT, "Sex", lambda: models.F("sex"), lambda r: r.sex),
        FieldSpec("dob", DATE, "Date of birth", lambda: models.F("dob"), lambda r: r.dob),
        FieldSpec("age", NUMBER, "Age (years)", lambda: YearsBetween(models.F("dob"), today),
                  lambda r: None if r.dob is None else Decimal(years_between(r.dob, today))),
    ]
    attributes = [attribute_spec(d) for d in RegistryField.objects.filter(target=RegistryField.Target.INDIVIDUAL)]
    return Catalogue(core + [a for a in attributes if a.name not in {c.name for c in core}], today=today)


def years_between(start, end):
    return end.year - start.year - ((end.month, end.day) < (start.month, start.day))
