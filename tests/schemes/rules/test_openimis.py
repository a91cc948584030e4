"""openIMIS filter strings load into the rules AST and select the same people in SQL and Python."""

import datetime

import pytest

from schemes.registry.models import Individual
from schemes.rules.catalogue import individual_catalogue
from schemes.rules.compiler import compile_rule, evaluate, filter_queryset
from schemes.rules.errors import RuleError
from schemes.rules.openimis import from_openimis
from tests.factories import IndividualFactory, RegistryFieldFactory

pytestmark = pytest.mark.django_db
TODAY = datetime.date(2026, 11, 24)


@pytest.fixture
def people(geo):
    RegistryFieldFactory(name="number_of_children", field_type="integer")
    RegistryFieldFactory(name="educated_level", field_type="choice", choices=["primary", "secondary"])
    RegistryFieldFactory(name="income", field_type="decimal")
    RegistryFieldFactory(name="registered_on", field_type="date")
    RegistryFieldFactory(name="disabled", field_type="boolean")
    RegistryFieldFactory(name="groupId", field_type="text")
    def make(name, **attributes):
        return IndividualFactory(first_name=name, location=geo.village_a, attributes=attributes)

    return [
        make("Amina", number_of_children=3, educated_level="primary", income="120.50",
             registered_on="2024-01-15", disabled=True, groupId="abc"),
        make("Baraka", number_of_children=1, educated_level="secondary", income="80", disabled=False,
             groupId="ABC"),
        make("Chausiku", number_of_children=5),
        make("Dotto"),
    ]


def selected(rule):
    catalogue = individual_catalogue(today=TODAY)
    node = compile_rule(rule, catalogue, expect="boolean")
    in_sql = set(filter_queryset(Individual.objects.all(), node, catalogue).values_list("first_name", flat=True))
    in_python = {p.first_name for p in Individual.objects.all() if evaluate(node, catalogue, p) is True}
    assert in_sql == in_python
    return in_sql


@pytest.mark.parametrize("filters, expected", [
    (["number_of_children__gte__integer=3"], {"Amina", "Chausiku"}),
    (['educated_level__iexact__string="PRIMARY"'], {"Amina"}),
    (["educated_level__istartswith__string=sec"], {"Baraka"}),
    (["educated_level__icontains__string=ondar"], {"Baraka"}),
    (["income__lt__decimal=100"], {"Baraka"}),
    (["income__exact__decimal=120.5"], {"Amina"}),
    (["registered_on__gte__date=2024-01-01"], {"Amina"}),
    (["disabled__exact__boolean=false"], {"Baraka"}),
    (["number_of_children__gt__integer=0", "income__gte__decimal=100"], {"Amina"}),
    # camelCase names, and a string's exact lookup (as openIMIS's filter builder writes it): case counts
    (["groupId__exact__string=abc"], {"Amina"}),
    (['groupId__exact__string="ABC"'], {"Baraka"}),
    (["groupId__iexact__string=abc"], {"Amina", "Baraka"}),
])
def test_openimis_filters_select_the_same_people_as_openimis_would(people, filters, expected):
    assert selected(from_openimis(filters)) == expected


@pytest.mark.parametrize("text, message", [
    ("number_of_children>=3", "not of the form"),
    ("number_of_children__gte__float=3", "'float' is not one of"),
    ("educated_level__gte__string=a", "'gte' does not apply to string"),
    ("number_of_children__gte__integer=2.5", "not a whole number"),
    ("number_of_children__gte__integer=NaN", "not a whole number"),
    ("registered_on__gt__date=2024-02-30", "not a date"),
    ("disabled__exact__boolean=maybe", "not true or false"),
])
def test_bad_openimis_filters_are_refused_with_the_reason(text, message):
    with pytest.raises(RuleError, match=message):
        from_openimis([text])


def test_an_unknown_field_in_an_openimis_filter_is_named(people):
    with pytest.raises(RuleError, match="Unknown field 'salary'"):
        selected(from_openimis(["salary__gt__decimal=1"]))
