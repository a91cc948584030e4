"""What a rule may name: each field's type, how SQL reads it (a Django expression on the queryset's
model) and how Python reads it from one record. The registry's catalogue is built from the registry
fields and the typed attributes administrators defined."""

import datetime
from dataclasses import dataclass
from decimal import Decimal

from django.db import models
from django.db.models import Case, Value, When
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast

from .sql import InValues, YearsBetween

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
    from sites.fields import FieldType

    name = definition.name
    text = lambda: KeyTextTransform(name, "attributes")  # noqa: E731 - a deferred expression
    raw = lambda record: (record.attributes or {}).get(name)  # noqa: E731
    kind = definition.field_type
    if kind in (FieldType.INTEGER, FieldType.DECIMAL):
        return FieldSpec(name, NUMBER, definition.label,
                         lambda: Cast(text(), models.DecimalField(max_digits=38, decimal_places=10)),
                         lambda record: None if raw(record) is None else Decimal(str(raw(record))))
    if kind == FieldType.DATE:
        return FieldSpec(name, DATE, definition.label, lambda: Cast(text(), models.DateField()),
                         lambda record: None if raw(record) is None else datetime.date.fromisoformat(raw(record)))
    if kind == FieldType.BOOLEAN:
        return FieldSpec(name, BOOLEAN, definition.label, lambda: _json_boolean(text()), raw)
    return FieldSpec(name, TEXT, definition.label, text, raw)


def _json_boolean(text):
    """A JSON true/false read as text ('true' on PostgreSQL, 'true' or 1 on SQLite) as SQL TRUE/FALSE/NULL."""
    def matches(*values):
        return InValues(text, [Value(v, output_field=models.TextField()) for v in values])

    return Case(When(matches("true", "1"), then=Value(True)), When(matches("false", "0"), then=Value(False)),
                default=Value(None), output_field=models.BooleanField())


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
