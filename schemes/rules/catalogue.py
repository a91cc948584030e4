"""What a rule may name: each field's type, how SQL reads it (a Django expression on the queryset's
model) and how Python reads it from one record. The registry's catalogue is built from the registry
fields and the typed attributes administrators defined."""

import datetime
from dataclasses import dataclass
from decimal import Decimal
from functools import partial

from django.db import models
from django.db.models import Case, Count, OuterRef, Subquery, Value, When
from django.db.models.functions import Cast, Coalesce

from sites.dates import years_before
from sites.fields import FieldType

from .sql import AttributeText, YearsBetween

NUMBER, TEXT, DATE, BOOLEAN, NULL = "number", "text", "date", "boolean", "null"
NUMBER_FIELD = models.DecimalField(max_digits=38, decimal_places=10)


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
    core += household_specs(today)
    attributes = [attribute_spec(d) for d in RegistryField.objects.filter(target=RegistryField.Target.INDIVIDUAL)]
    return Catalogue(core + [a for a in attributes if a.name not in {c.name for c in core}], today=today)


def household_specs(today):
    """Counts over the person's household (NULL for someone in no household): its size, children
    under 5 and people of 60 or more, among its live members."""
    under_5 = years_before(today, 5)
    from_60 = years_before(today, 60)
    return [
        FieldSpec("household_size", NUMBER, "Household size", partial(_members_sql, {}),
                  partial(_members_python, lambda dob: True)),
        FieldSpec("children_under_5", NUMBER, "Children under 5 in the household",
                  partial(_members_sql, {"individual__dob__gt": under_5}),
                  partial(_members_python, lambda dob: dob is not None and dob > under_5)),
        FieldSpec("elderly_in_household", NUMBER, "People aged 60 or more in the household",
                  partial(_members_sql, {"individual__dob__lte": from_60}),
                  partial(_members_python, lambda dob: dob is not None and dob <= from_60)),
    ]


def _members_sql(conditions):
    from schemes.registry.models import Membership

    members = (Membership.objects.filter(household_id=OuterRef("membership__household_id"),
                                         individual__deleted_at__isnull=True, **conditions)
               .order_by().values("household_id").annotate(n=Count("pk")).values("n"))
    counted = Coalesce(Subquery(members), Value(0))
    # Someone in no household has no household counts (NULL), not zero.
    return Case(When(membership__isnull=True, then=Value(None)), default=Cast(counted, NUMBER_FIELD),
                output_field=NUMBER_FIELD)


def _members_python(wanted, record):
    from schemes.registry.models import Membership

    membership = Membership.objects.filter(individual=record).first()
    if membership is None:
        return None
    dobs = Membership.objects.filter(household_id=membership.household_id, individual__deleted_at__isnull=True
                                     ).values_list("individual__dob", flat=True)
    return Decimal(sum(1 for dob in dobs if wanted(dob)))


def years_between(start, end):
    return end.year - start.year - ((end.month, end.day) < (start.month, start.day))
