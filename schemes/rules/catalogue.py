"""What a rule may name: each field's type, how SQL reads it (a Django expression on the queryset's
model) and how Python reads it from one record. The registry's catalogue is built from the registry
fields and the typed attributes administrators defined."""

import datetime
from dataclasses import dataclass, replace
from decimal import Decimal
from functools import partial

from django.db import models
from django.db.models import Case, Count, OuterRef, Subquery, Value, When
from django.db.models.functions import Cast, Coalesce

from sites.dates import years_before
from sites.fields import FieldType
from sites.masking import can_view_sensitive

from .sql import AttributeText, YearsBetween

NUMBER, TEXT, DATE, BOOLEAN, NULL = "number", "text", "date", "boolean", "null"
NUMBER_FIELD = models.DecimalField(max_digits=38, decimal_places=10)


@dataclass(frozen=True)
class FieldSpec:
    """`sql(prefix)` is a Django expression reading the field through the relation path `prefix`
    ("" when the queryset's model is the subject itself); `python(subject)` reads it from one record."""

    name: str
    type: str
    label: str
    sql: object  # (prefix) -> Django expression
    python: object  # (subject record) -> value or None
    choices: tuple = ()
    sensitive: bool = False  # masked for users who may not see sensitive data: they may not name it


class Catalogue:
    """The fields a rule may name, read from the queryset's model through `prefix` (e.g. a
    beneficiary's person is at "individual__") and, in Python, from `subject(record)`."""

    def __init__(self, fields, *, today=None, prefix="", subject=None, withheld=()):
        self.fields = {spec.name: spec for spec in fields}
        self.today = today or datetime.date.today()
        self.prefix = prefix
        self.subject = subject or (lambda record: record)
        self.withheld = frozenset(withheld)  # sensitive names this catalogue's user may not use

    def __contains__(self, name):
        return name in self.fields

    def __getitem__(self, name):
        return self.fields[name]

    def names(self):
        return sorted(self.fields)

    def sql(self, name):
        return self.fields[name].sql(self.prefix)

    def value(self, name, record):
        return self.fields[name].python(self.subject(record))

    def rooted(self, prefix, subject):
        """The same fields read from a related model (`prefix` path; `subject(record)` in Python)."""
        fields = [replace(spec, sql=partial(_at, spec.sql, prefix + self.prefix), python=_through(subject, spec.python))
                  for spec in self.fields.values()]
        return Catalogue(fields, today=self.today, withheld=self.withheld)

    def extended(self, fields):
        """This catalogue plus `fields` (read at the root); names already taken keep their meaning."""
        own = [replace(spec, sql=partial(_at, spec.sql, self.prefix), python=_through(self.subject, spec.python))
               for spec in self.fields.values()]
        taken = set(self.fields) | self.withheld
        return Catalogue(own + [spec for spec in fields if spec.name not in taken], today=self.today,
                         withheld=self.withheld)

    def for_user(self, user):
        """The fields `user` may name in a rule they write: without the right to see sensitive data,
        not the sensitive ones (a rule's count or amounts would give their values away)."""
        if can_view_sensitive(user):
            return self
        return Catalogue([spec for spec in self.fields.values() if not spec.sensitive], today=self.today,
                         prefix=self.prefix, subject=self.subject,
                         withheld=self.withheld | {spec.name for spec in self.fields.values() if spec.sensitive})


def _at(read_sql, prefix, extra_prefix):
    return read_sql(extra_prefix + prefix)


def _through(subject, read_python):
    return lambda record: read_python(subject(record))


def core_spec(name, kind, label, column=None):
    column = column or name
    return FieldSpec(name, kind, label, lambda prefix: models.F(prefix + column),
                     lambda record: getattr(record, column))


def attribute_spec(definition):
    """A typed attribute of the JSON `attributes` column, cast by its declared type."""
    read_sql = partial(_attribute_sql, definition.name, definition.field_type)
    read_python = partial(_attribute_python, definition.name, definition.field_type)
    kind = {FieldType.INTEGER: NUMBER, FieldType.DECIMAL: NUMBER, FieldType.DATE: DATE,
            FieldType.BOOLEAN: BOOLEAN}.get(definition.field_type, TEXT)
    choices = tuple(definition.choices or ()) if definition.field_type == FieldType.CHOICE else ()
    return FieldSpec(definition.name, kind, definition.label, read_sql, read_python, choices, definition.sensitive)


def unknown_yet_spec(spec):
    """`spec` where its value cannot exist yet (a plan attribute of someone not enrolled): NULL."""
    output = {NUMBER: NUMBER_FIELD, DATE: models.DateField(), BOOLEAN: models.BooleanField()}.get(
        spec.type, models.TextField())
    return replace(spec, sql=lambda prefix: Value(None, output_field=output), python=lambda record: None)


def _attribute_sql(name, field_type, prefix):
    column = prefix + "attributes"
    if field_type in (FieldType.INTEGER, FieldType.DECIMAL):
        return Cast(AttributeText(name, column), models.DecimalField(max_digits=38, decimal_places=10))
    if field_type == FieldType.DATE:
        return Cast(AttributeText(name, column), models.DateField())
    if field_type == FieldType.BOOLEAN:
        return AttributeText(name, column, boolean=True)
    return AttributeText(name, column)


def _attribute_python(name, field_type, record):
    value = (record.attributes or {}).get(name)
    if value is None:
        return None
    if field_type in (FieldType.INTEGER, FieldType.DECIMAL):
        return Decimal(str(value))
    if field_type == FieldType.DATE:
        return datetime.date.fromisoformat(value)
    return value


def _with_attributes(core, target, today, **options):
    from schemes.registry.models import RegistryField

    attributes = [attribute_spec(d) for d in RegistryField.objects.filter(target=target)]
    taken = {c.name for c in core}
    return Catalogue(core + [a for a in attributes if a.name not in taken], today=today, **options)


def builtin_fields(target):
    """{name: label} of the fields the catalogue of `target` (a RegistryField.Target) gives itself,
    worked out from the registry (core fields, and derived ones: `children_under_5` is counted from the
    members): the names an attribute cannot take, as rules would read the built-in field instead."""
    from schemes.registry.models import RegistryField

    core = _household_core if target == RegistryField.Target.HOUSEHOLD else _individual_core
    return {spec.name: spec.label for spec in core(datetime.date.today())}


def individual_catalogue(*, today=None):
    """Fields of a registered person: core fields, `age` in whole years, household counts and the
    typed attributes."""
    from schemes.registry.models import RegistryField

    today = today or datetime.date.today()
    return _with_attributes(_individual_core(today), RegistryField.Target.INDIVIDUAL, today)


def _individual_core(today):
    core = [
        core_spec("first_name", TEXT, "First name"),
        core_spec("last_name", TEXT, "Last name"),
        FieldSpec("sex", TEXT, "Sex", lambda prefix: models.F(prefix + "sex"), lambda r: r.sex, ("F", "M", "O")),
        core_spec("dob", DATE, "Date of birth"),
        FieldSpec("age", NUMBER, "Age (years)", lambda prefix: YearsBetween(models.F(prefix + "dob"), today),
                  lambda r: None if r.dob is None else Decimal(years_between(r.dob, today))),
    ]
    return core + household_specs(today, household="membership__household_id", in_household="membership")


def household_catalogue(*, today=None):
    """Fields of a household: its member counts, its head's sex and age, and its typed attributes."""
    from schemes.registry.models import RegistryField

    today = today or datetime.date.today()
    return _with_attributes(_household_core(today), RegistryField.Target.HOUSEHOLD, today)


def _household_core(today):
    return household_specs(today, household="id", in_household=None) + [
        FieldSpec("head_sex", TEXT, "Sex of the head", partial(_head_sql, "individual__sex", models.TextField()),
                  lambda household: _head_python(household, lambda head: head.sex), ("F", "M", "O")),
        FieldSpec("head_age", NUMBER, "Age of the head (years)",
                  lambda prefix: YearsBetween(_head_sql("individual__dob", models.DateField(), prefix), today),
                  lambda household: _head_python(
                      household, lambda head: None if head.dob is None else Decimal(years_between(head.dob, today)))),
    ]


def _head_sql(column, output, prefix):
    from schemes.registry.models import MemberRole, Membership

    heads = Membership.objects.filter(household_id=OuterRef(prefix + "id"), role_id=MemberRole.HEAD,
                                      individual__deleted_at__isnull=True)
    return Subquery(heads.values(column)[:1], output_field=output)


def _head_python(household, read):
    from schemes.registry.models import MemberRole, Membership

    membership = (Membership.objects.filter(household=household, role_id=MemberRole.HEAD,
                                            individual__deleted_at__isnull=True).select_related("individual").first())
    return None if membership is None else read(membership.individual)


def household_specs(today, *, household, in_household):
    """Counts over a household's live members: its size, children under 5 and people of 60 or more.
    `household` is the path to the household's id; for a person, `in_household` the path that is
    NULL for someone in no household (their counts are NULL, not zero)."""
    under_5 = years_before(today, 5)
    from_60 = years_before(today, 60)
    count = partial(_members_sql, household, in_household)
    python = partial(_members_python, in_household is not None)
    return [
        FieldSpec("household_size", NUMBER, "Household size", partial(count, {}),
                  partial(python, lambda dob: True)),
        FieldSpec("children_under_5", NUMBER, "Children under 5 in the household",
                  partial(count, {"individual__dob__gt": under_5}),
                  partial(python, lambda dob: dob is not None and dob > under_5)),
        FieldSpec("elderly_in_household", NUMBER, "People aged 60 or more in the household",
                  partial(count, {"individual__dob__lte": from_60}),
                  partial(python, lambda dob: dob is not None and dob <= from_60)),
    ]


def _members_sql(household, in_household, conditions, prefix):
    from schemes.registry.models import Membership

    members = (Membership.objects.filter(household_id=OuterRef(prefix + household),
                                         individual__deleted_at__isnull=True, **conditions)
               .order_by().values("household_id").annotate(n=Count("pk")).values("n"))
    counted = Cast(Coalesce(Subquery(members), Value(0)), NUMBER_FIELD)
    if in_household is None:
        return counted
    return Case(When(**{f"{prefix}{in_household}__isnull": True}, then=Value(None)), default=counted,
                output_field=NUMBER_FIELD)


def _members_python(of_person, wanted, record):
    from schemes.registry.models import Membership

    if of_person:
        membership = Membership.objects.filter(individual=record).first()
        if membership is None:
            return None
        household_id = membership.household_id
    else:
        household_id = record.pk
    dobs = Membership.objects.filter(household_id=household_id, individual__deleted_at__isnull=True
                                     ).values_list("individual__dob", flat=True)
    return Decimal(sum(1 for dob in dobs if wanted(dob)))


def years_between(start, end):
    return end.year - start.year - ((end.month, end.day) < (start.month, start.day))
