"""openIMIS filter strings load into the rules AST and select the same people in SQL and Python; typed as a
rule's text (one per line, or a list as openIMIS sends them) they read as the rule they mean, recognised only
by their exact shape."""

import datetime
from decimal import Decimal

import pytest

from schemes.registry.models import Individual
from schemes.rules.catalogue import individual_catalogue
from schemes.rules.compiler import compile_rule, evaluate, filter_queryset
from schemes.rules.errors import RuleError, character_offset
from schemes.rules.nodes import Binary, FieldRef, Literal
from schemes.rules.openimis import from_openimis, is_openimis
from schemes.rules.parser import parse
from schemes.rules.text import to_text
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
    ("number_of_children__gte__float=3",
     "'number_of_children__gte__float=3': 'float' is not an openIMIS type; use string, integer, decimal, date, "
     "boolean."),
    ("foo__between__integer=3", "'foo__between__integer=3': 'between' is not an openIMIS lookup; use exact, lt, "
                                "lte, gt, gte."),
    ("educated_level__gte__string=a",
     "'educated_level__gte__string=a': 'gte' does not apply to string; use exact, iexact, istartswith, icontains."),
    ("disabled__lt__boolean=true", "'disabled__lt__boolean=true': 'lt' does not apply to boolean; use exact."),
    ("number_of_children__gte__integer=2.5", "'number_of_children__gte__integer=2.5': '2.5' is not a whole number."),
    ("number_of_children__gte__integer=NaN", "'number_of_children__gte__integer=NaN': 'NaN' is not a number."),
    # Decimal would read 1e999999 as one digit and write a million.
    ("income__gte__decimal=1e999999", "'income__gte__decimal=1e999999': '1e999999' is not a number."),
    ("registered_on__gt__date=2024-02-30", "'registered_on__gt__date=2024-02-30': '2024-02-30' is not a date in the "
                                           "form YYYY-MM-DD."),
    ("registered_on__gt__date=20240201", "'registered_on__gt__date=20240201': '20240201' is not a date in the form "
                                         "YYYY-MM-DD."),
    ("disabled__exact__boolean=maybe", "'disabled__exact__boolean=maybe': 'maybe' is not true or false."),
])
def test_bad_openimis_filters_are_refused_naming_the_filter_and_the_reason(text, message):
    with pytest.raises(RuleError) as refused:
        from_openimis([text])
    assert refused.value.message == message
    with pytest.raises(RuleError) as typed:  # typed as a rule's text, the same reason
        parse(text)
    assert typed.value.message == message


def test_a_string_not_of_the_form_is_refused_as_an_openimis_filter_but_is_our_language_as_text():
    with pytest.raises(RuleError) as refused:
        from_openimis(["number_of_children>=3"])
    assert refused.value.message == ("'number_of_children>=3' is not an openIMIS filter "
                                     "<field>__<lookup>__<type>=<value>.")
    assert to_text(parse("number_of_children>=3")) == "number_of_children >= 3"


def test_an_unknown_field_in_an_openimis_filter_is_named(people):
    with pytest.raises(RuleError, match="Unknown field 'salary'"):
        selected(from_openimis(["salary__gt__decimal=1"]))


# --- typed as a rule's text -------------------------------------------------------------------

@pytest.mark.parametrize("text, meaning", [
    ("income__gte__decimal=100000", "income >= 100000"),
    ("  number_of_children__gte__integer=3  ", "number_of_children >= 3"),
    ('educated_level__iexact__string="Primary"', 'lower(educated_level) == "primary"'),
    ("educated_level__iexact__string='primary'", 'lower(educated_level) == "primary"'),
    ('groupId__exact__string="say \"hi\""', 'groupId == "say \\"hi\\""'),
    ("groupId__exact__string=O'Brien", 'groupId == "O\'Brien"'),
    ('groupId__icontains__string="a b"', 'contains(lower(groupId), "a b")'),
    ("registered_on__lt__date=2024-01-15", 'registered_on < date("2024-01-15")'),
    ("disabled__exact__boolean=True", "disabled == true"),
    # one per line, blank lines ignored, carriage returns as browsers send them
    ("number_of_children__gt__integer=0\r\n\n  income__gte__decimal=100\n",
     "number_of_children > 0 and income >= 100"),
    # as openIMIS sends a list (customFilters: [...]): GraphQL strings, with or without spaces
    ('["number_of_children__gt__integer=0","income__gte__decimal=100"]', "number_of_children > 0 and income >= 100"),
    ('[ "educated_level__iexact__string=\\"primary\\"" ,\n  "disabled__exact__boolean=false", ]',
     'lower(educated_level) == "primary" and disabled == false'),
])
def test_openimis_filters_typed_as_text_read_as_the_rule_they_mean(text, meaning):
    assert is_openimis(text)
    assert parse(text) == parse(meaning)
    assert to_text(parse(text)) == meaning


@pytest.mark.parametrize("text", [
    "a == 3", "number_of_children >= 3", "a__gte__integer == 3", "a__gte__integer==3", "a__gte__integer != 3",
    "a__gte__integer <= 3", '["a", "b"]', '["a == 1", "b__gte__integer=1"]', "[]", "a = 3", "a__gte=3",
    "(\n  a__gte__integer=3)", 'x == "y\n a__gte__integer=3"',
])
def test_only_the_exact_shape_of_openimis_filters_is_taken_for_them(text):
    assert not is_openimis(text)


def test_our_language_reads_as_before_even_with_double_underscores():
    assert parse("a__gte__integer == 3") == Binary(op="==", left=FieldRef(name="a__gte__integer"),
                                                   right=Literal(value=Decimal(3)))
    with pytest.raises(RuleError, match="Not a valid expression"):
        parse("a__gte = 3")


def test_every_line_after_an_openimis_filter_must_be_one_and_is_named():
    with pytest.raises(RuleError) as refused:
        parse("income__gte__decimal=1\nand age > 3")
    assert refused.value.message == "'and age > 3' is not an openIMIS filter <field>__<lookup>__<type>=<value>."
    with pytest.raises(RuleError, match="^'x__between__integer=1': 'between' is not an openIMIS lookup"):
        parse('["income__gte__decimal=1", "x__between__integer=1"]')


def test_a_mistake_in_a_later_filter_points_at_that_filter(people):
    text = 'income__gte__decimal=1\n  salary__gt__decimal=1\n["x"]'
    with pytest.raises(RuleError) as refused:
        parse(text)
    assert refused.value.message.startswith("'[\"x\"]' is not an openIMIS filter")
    text = "income__gte__decimal=1\n  salary__gt__decimal=1"
    with pytest.raises(RuleError) as unknown:
        compile_rule(text, individual_catalogue(today=TODAY), expect="boolean")
    assert unknown.value.message.startswith("Unknown field 'salary'")
    assert unknown.value.position == (2, 2) and character_offset(text, unknown.value.position) == text.index("salary")
    listed = '[\n "income__gte__decimal=1",\n "educated_level__gte__integer=1"]'
    with pytest.raises(RuleError) as mistyped:
        compile_rule(listed, individual_catalogue(today=TODAY), expect="boolean")
    assert "compares text with a number" in mistyped.value.message
    assert character_offset(listed, mistyped.value.position) == listed.index("educated_level")


def test_openimis_filters_keep_the_parsers_limits():
    with pytest.raises(RuleError, match="at most 18 digits"):
        parse("income__gte__decimal=1234567890123456789")
    with pytest.raises(RuleError, match="Text longer than 200"):
        parse("groupId__exact__string=" + "x" * 201)
    with pytest.raises(RuleError, match="control character"):
        parse('["groupId__exact__string=a\\u0000b"]')
