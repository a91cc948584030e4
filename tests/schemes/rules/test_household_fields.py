"""Household counts in rules (size, children under 5, people of 60 or more): SQL and Python agree,
and a person in no household has none (NULL), not zero."""

import datetime

import pytest

from schemes.registry.models import Individual
from schemes.rules.catalogue import individual_catalogue
from schemes.rules.compiler import compile_rule, evaluate, filter_queryset
from tests.factories import HouseholdFactory, IndividualFactory, MembershipFactory

pytestmark = pytest.mark.django_db
TODAY = datetime.date(2026, 11, 24)


@pytest.fixture
def households(geo, member_roles):
    def person(name, born, **extra):
        return IndividualFactory(first_name=name, dob=born, location=geo.village_a, **extra)

    big = HouseholdFactory(location=geo.village_a)
    MembershipFactory(household=big, individual=person("Mama", datetime.date(1990, 1, 1)), role=member_roles["HEAD"])
    MembershipFactory(household=big, individual=person("Baby", datetime.date(2024, 6, 1)), role=member_roles["SON"])
    MembershipFactory(household=big, individual=person("Bibi", datetime.date(1950, 1, 1)),
                      role=member_roles["GRANDMOTHER"])
    MembershipFactory(household=big, individual=person("Gone", datetime.date(2023, 1, 1), deleted_at=datetime.datetime(
        2026, 1, 1, tzinfo=datetime.UTC)), role=member_roles["DAUGHTER"])
    alone = HouseholdFactory(location=geo.village_a)
    MembershipFactory(household=alone, individual=person("Solo", datetime.date(1980, 1, 1)), role=member_roles["HEAD"])
    person("Nohouse", datetime.date(1985, 1, 1))


@pytest.mark.parametrize("rule, expected", [
    ("household_size == 3", {"Mama", "Baby", "Bibi"}),  # the deleted member does not count
    ("household_size == 1", {"Solo"}),
    ("children_under_5 >= 1", {"Mama", "Baby", "Bibi"}),
    ("elderly_in_household == 1 and children_under_5 == 1", {"Mama", "Baby", "Bibi"}),
    ("household_size == null", set()),  # NULL compared is unknown: nobody
    ("not (household_size > 0)", set()),  # Nohouse has no household: unknown, not true
    ("children_under_5 == 0", {"Solo"}),
])
def test_household_counts_agree_in_sql_and_python(households, rule, expected):
    catalogue = individual_catalogue(today=TODAY)
    node = compile_rule(rule, catalogue, expect="boolean")
    people = Individual.objects.live()

    in_sql = set(filter_queryset(people, node, catalogue).values_list("first_name", flat=True))
    in_python = {p.first_name for p in people if evaluate(node, catalogue, p) is True}

    assert in_sql == in_python == expected
