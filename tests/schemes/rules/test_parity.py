"""SQL and Python give the same answer (QUALITY.md item 12), NULLs included: hypothesis builds random
well-typed ASTs directly from nodes.* and each is run both ways over one small population of
Individuals whose typed attributes are random (seeded) and sometimes missing or null.

- A filter selects, in SQL, exactly the records for which `evaluate` is True (FALSE and unknown
  both leave a record out).
- A value (number, text, date, yes/no) is the same in `queryset.annotate(v=to_sql(...))` as in
  `evaluate`, record by record. NULL must be NULL on both sides, and unknown is not FALSE.

Numbers. PostgreSQL computes in `numeric`, exactly as Python's Decimal does: values must be equal.
SQLite has no decimal type: a DECIMAL is a binary floating point double there. So on SQLite
(1) generated literals and stored amounts are multiples of 0.25 up to 999.75, which doubles hold
exactly, so that filters (comparisons of computed values) can be compared exactly with Python, and
(2) a number-valued result is compared to 6 decimal places (and to 12 significant digits when it is
larger than a double can hold to 6 places). That `0.1 + 0.2 == 0.3` is nevertheless false on SQLite
is pinned by tests/schemes/rules/test_compiler.py::test_a_sum_of_decimals_is_exact.
"""

import dataclasses
import datetime
import random
from decimal import Decimal
from functools import lru_cache
from types import SimpleNamespace

import pytest
from django.conf import settings as django_settings
from django.db import transaction
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from schemes.registry.models import Individual
from schemes.rules.catalogue import individual_catalogue
from schemes.rules.compiler import compile_rule, evaluate, filter_queryset, to_sql
from schemes.rules.errors import RuleError
from schemes.rules.nodes import Binary, BoolOp, Call, Condition, FieldRef, InList, Literal, Unary
from schemes.rules.parser import parse
from tests.factories import IndividualFactory, RegistryFieldFactory

pytestmark = [pytest.mark.django_db,
              # hypothesis describes these recursive strategies at length when a property fails
              pytest.mark.filterwarnings("ignore:Generating overly large repr")]

TODAY = datetime.date(2025, 3, 1)
SQLITE = django_settings.DATABASES["default"]["ENGINE"].endswith("sqlite3")
PROPERTY = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

ATTRIBUTES = {"income": "decimal", "kids": "integer", "disabled": "boolean", "registered_on": "date",
              "village_name": "text"}
NUMBER_FIELDS = ("income", "kids", "age")
TEXT_FIELDS = ("first_name", "last_name", "sex", "village_name")
DATE_FIELDS = ("dob", "registered_on")
TEXTS = ("Kibera", "kibera", "KIBERA", "Kib", "Mji", "mji wa kati", "", "a", "B", "z", "Zanzibar", "Élan",
         "ñandú", "ΣΑΣ", "İnci", "100%", "x_y", "O'Brien", "F", "M", "O", "Amina", "Baraka")
DATES = (TODAY, datetime.date(2024, 2, 29), datetime.date(2007, 3, 1), datetime.date(2007, 3, 2),
         datetime.date(2008, 2, 29), datetime.date(1990, 6, 15), datetime.date(2030, 6, 15))
FAVOURED = tuple(Decimal(v) for v in ("0", "1", "2", "3", "-1", "0.5", "2.5", "18", "100")
                 + (() if SQLITE else ("99999",)))


# --- the population ------------------------------------------------------------------------------

def random_amount(rng):
    if SQLITE:
        return Decimal(rng.randint(-3999, 3999)) / 4
    return Decimal(rng.randint(-999_999, 999_999)) / 100


def random_attributes(rng):
    values = {
        "income": rng.choice([random_amount(rng), rng.choice(FAVOURED)]),
        "kids": rng.randint(0, 6),
        "disabled": rng.random() < 0.5,
        "registered_on": TODAY + datetime.timedelta(days=rng.randint(-3000, 2000)),
        "village_name": rng.choice(TEXTS),
    }
    # Some attributes are missing from the JSON, some are stored as JSON null.
    return {name: (None if rng.random() < 0.15 else value) for name, value in values.items()
            if rng.random() < 0.85}


@pytest.fixture
def population(geo):
    """Fourteen Individuals, built once per test (hypothesis examples only read them)."""
    return build_population(geo)


def build_population(geo, *, json_nulls=True):
    """`json_nulls=False` leaves unknown attributes out of the JSON instead of storing null."""
    definitions = {name: RegistryFieldFactory(name=name, field_type=kind) for name, kind in ATTRIBUTES.items()}
    rng = random.Random(20250301)
    rows = [
        {},  # nothing known
        dict.fromkeys(ATTRIBUTES),  # everything explicitly null
        {"income": Decimal(0), "kids": 0, "disabled": False, "registered_on": TODAY, "village_name": ""},
        {"income": Decimal("5"), "kids": 2, "disabled": True, "registered_on": datetime.date(2024, 2, 29),
         "village_name": "Kibera"},
        {"kids": 2, "village_name": "kibera"},  # NULL income, kids 2
        {"income": Decimal("-2.5"), "kids": 3, "disabled": False, "registered_on": datetime.date(2030, 6, 15)},
    ] + [random_attributes(rng) for _ in range(8)]
    # Birthdays on and around today (18 today, 17 until tomorrow, born on 29 February), then random.
    dobs = [datetime.date(2007, 3, 1), datetime.date(2008, 2, 29), datetime.date(2007, 3, 2),
            datetime.date(1990, 6, 15), TODAY, datetime.date(1950, 12, 31)]
    dobs += [datetime.date(rng.randint(1940, 2024), rng.randint(1, 12), rng.randint(1, 28))
             for _ in range(len(rows) - len(dobs))]
    people = []
    for number, (values, dob) in enumerate(zip(rows, dobs, strict=True)):
        attributes = {name: definitions[name].to_json(value) for name, value in values.items()
                      if json_nulls or value is not None}
        people.append(IndividualFactory(
            first_name=rng.choice(TEXTS[:12]) or "Asha", last_name=f"Family{number}", sex=rng.choice("FMO"),
            dob=dob, location=geo.village_a, attributes=attributes))
    queryset = Individual.objects.filter(pk__in=[p.pk for p in people])
    return SimpleNamespace(queryset=queryset, records=list(queryset), catalogue=without_choices(
        individual_catalogue(today=TODAY)))


def without_choices(catalogue):
    """The catalogue with its fields' choices forgotten: the generated rules compare `sex` with any text
    (the compiler names a text outside a field's choices; SQL and Python must still agree on it)."""
    catalogue.fields = {name: dataclasses.replace(spec, choices=()) for name, spec in catalogue.fields.items()}
    return catalogue


# --- strategies: well-typed ASTs -----------------------------------------------------------------

def literal(value):
    return Literal(value=value)


def field(name):
    return FieldRef(name=name)


if SQLITE:
    plain_numbers = st.integers(-3999, 3999).map(lambda n: Decimal(n) / 4)
else:
    plain_numbers = st.decimals(min_value=Decimal("-9999.99"), max_value=Decimal("9999.99"), places=2,
                                allow_nan=False, allow_infinity=False)
number_values = st.one_of(st.sampled_from(FAVOURED), plain_numbers)
text_values = st.one_of(st.sampled_from(TEXTS), st.text(alphabet="abAB é%_'", max_size=4))
date_values = st.one_of(st.sampled_from(DATES), st.dates(datetime.date(1940, 1, 1), datetime.date(2035, 12, 31)))
NULL = st.just(literal(None))
# Zero at run time (for every record with the field): a divisor that is 0 whatever the record is a
# compile error (test_compiler), one that is 0 for some records gives them NULL, in SQL as in Python.
ZERO = st.sampled_from(NUMBER_FIELDS).map(lambda name: Binary(op="-", left=field(name), right=field(name)))
ORDER = ["==", "!=", "<", "<=", ">", ">="]


def binary(ops, left, right=None):
    return st.builds(lambda op, a, b: Binary(op=op, left=a, right=b), st.sampled_from(ops), left, left if right is None else right)


def condition(test, then):
    return st.builds(lambda t, a, b: Condition(test=t, then=a, otherwise=b), test, then, then)


def call(name, *args):
    return st.tuples(*args).map(lambda values: Call(function=name, args=tuple(values)))


@lru_cache
def numbers(depth):
    leaf = st.one_of(number_values.map(literal), NULL, st.sampled_from(NUMBER_FIELDS).map(field))
    if depth == 0:
        return leaf
    sub = numbers(depth - 1)
    return st.one_of(
        leaf,
        binary(["+", "-", "*"], sub),
        binary(["/"], sub, st.one_of(sub, ZERO)),  # division, by zero too
        sub.map(lambda x: Unary(op="-", operand=x)),
        st.builds(lambda name, args: Call(function=name, args=tuple(args)), st.sampled_from(["min", "max"]),
                  st.lists(sub, min_size=2, max_size=3)),
        call("abs", sub),
        call("round", sub),
        st.builds(lambda x, places: Call(function="round", args=(x, literal(Decimal(places)))), sub,
                  st.integers(0, 4)),
        call("years_since", dates(depth - 1)),
        condition(booleans(depth - 1), sub),
    )


@lru_cache
def texts(depth):
    leaf = st.one_of(text_values.map(literal), NULL, st.sampled_from(TEXT_FIELDS).map(field))
    if depth == 0:
        return leaf
    sub = texts(depth - 1)
    return st.one_of(leaf, call("lower", sub), condition(booleans(depth - 1), sub))


@lru_cache
def dates(depth):
    leaf = st.one_of(date_values.map(literal), NULL, st.sampled_from(DATE_FIELDS).map(field),
                     st.just(Call(function="today", args=())))
    if depth == 0:
        return leaf
    return st.one_of(leaf, condition(booleans(depth - 1), dates(depth - 1)))


@lru_cache
def booleans(depth):
    leaf = st.one_of(st.sampled_from([True, False, None]).map(literal), st.just(field("disabled")))
    if depth == 0:
        return leaf
    sub = booleans(depth - 1)

    def in_list(items, values):
        return st.builds(lambda item, found, negated: InList(item=item, values=tuple(map(literal, found)),
                                                             negated=negated),
                         items, st.lists(values, min_size=1, max_size=4), st.booleans())

    return st.one_of(
        leaf,
        binary(ORDER, numbers(depth - 1)),
        binary(ORDER, texts(depth - 1)),
        binary(ORDER, dates(depth - 1)),
        binary(["==", "!="], sub),
        st.builds(lambda op, values: BoolOp(op=op, values=tuple(values)), st.sampled_from(["and", "or"]),
                  st.lists(sub, min_size=2, max_size=3)),
        sub.map(lambda x: Unary(op="not", operand=x)),
        in_list(numbers(depth - 1), number_values),
        in_list(texts(depth - 1), text_values),
        in_list(dates(depth - 1), date_values),
        in_list(sub, st.booleans()),
        condition(sub, sub),
        st.builds(lambda name, a, b: Call(function=name, args=(a, b)), st.sampled_from(["starts_with", "contains"]),
                  texts(depth - 1), texts(depth - 1)),
    )


# --- running a rule both ways --------------------------------------------------------------------

def selected_in_sql(population, node):
    with transaction.atomic():  # a database error must not poison the next example (PostgreSQL)
        return set(filter_queryset(population.queryset, node, population.catalogue).values_list("pk", flat=True))


def selected_in_python(population, node):
    return {r.pk for r in population.records if evaluate(node, population.catalogue, r) is True}


def compiles(node, catalogue, **kwargs):
    """Compile a generated rule. One whose divisor is 0 whatever the record (a literal 0, `2 - 2`) is
    refused by the compiler, which test_compiler proves: no parity case, hypothesis draws another."""
    try:
        compile_rule(node, catalogue, **kwargs)
    except RuleError as error:
        assume(not error.message.startswith("Division by zero"))
        raise


def values_in_sql(population, node):
    with transaction.atomic():
        return dict(population.queryset.annotate(v=to_sql(node, population.catalogue)).values_list("pk", "v"))


def assert_same_values(population, node, kind):
    compiles(node, population.catalogue)  # the generated AST is well typed
    in_sql = values_in_sql(population, node)
    for record in population.records:
        expected = evaluate(node, population.catalogue, record)
        found = in_sql[record.pk]
        assert same(found, expected, kind), f"record {record.pk}: SQL {found!r}, Python {expected!r}"


def same(found, expected, kind):
    if expected is None or found is None:
        return found is None and expected is None
    if kind != "number":
        return found == expected and type(found) is type(expected)
    found = Decimal(found)
    if not SQLITE:
        return found == expected
    # SQLite: binary floating point (see the module docstring).
    error = abs(found - expected)
    return error <= Decimal("0.000001") or error <= abs(expected) * Decimal("1e-12")


# --- the properties ------------------------------------------------------------------------------

@PROPERTY
@given(rule=booleans(3))
@example(rule=parse("income > 5 or kids == 2"))
@example(rule=parse("not (income > 5)"))
@example(rule=parse("null == null"))
def test_a_filter_selects_in_sql_what_python_selects(population, rule):
    compiles(rule, population.catalogue, expect="boolean")
    assert selected_in_sql(population, rule) == selected_in_python(population, rule)


@PROPERTY
@given(rule=numbers(3))
@example(rule=parse("income / (kids - kids)"))
@example(rule=parse("min(income, kids, 1)"))
def test_a_number_has_the_same_value_in_sql_and_python(population, rule):
    assert_same_values(population, rule, "number")


@PROPERTY
@given(rule=booleans(2))
@example(rule=parse("null == null"))
@example(rule=parse("not (income > 5)"))
def test_yes_no_values_agree_and_unknown_is_not_false(population, rule):
    assert_same_values(population, rule, "boolean")


@PROPERTY
@given(rule=texts(3))
def test_a_text_has_the_same_value_in_sql_and_python(population, rule):
    assert_same_values(population, rule, "text")


@PROPERTY
@given(rule=dates(3))
def test_a_date_has_the_same_value_in_sql_and_python(population, rule):
    assert_same_values(population, rule, "date")


# --- NULL, explicitly ----------------------------------------------------------------------------

def test_null_equals_null_is_unknown_not_true(population):
    node = parse("null == null")
    record = population.records[0]
    assert evaluate(node, population.catalogue, record) is None
    assert set(values_in_sql(population, node).values()) == {None}
    assert selected_in_sql(population, node) == set() == selected_in_python(population, node)
    negated = parse("not (null == null)")
    assert selected_in_sql(population, negated) == set() == selected_in_python(population, negated)


def test_not_greater_leaves_out_unknown_incomes(population):
    node = parse("not (income > 5)")
    catalogue = population.catalogue
    null_income = {r.pk for r in population.records if catalogue["income"].python(r) is None}
    small_income = {r.pk for r in population.records
                    if catalogue["income"].python(r) is not None and catalogue["income"].python(r) <= 5}
    assert null_income and small_income
    assert selected_in_python(population, node) == small_income
    assert selected_in_sql(population, node) == small_income


def test_or_with_a_true_side_keeps_a_record_whose_other_side_is_unknown(population):
    node = parse("income > 5 or kids == 2")
    catalogue = population.catalogue
    wanted = [r for r in population.records
              if catalogue["income"].python(r) is None and catalogue["kids"].python(r) == 2]
    assert wanted
    for record in wanted:
        assert evaluate(node, catalogue, record) is True
        assert record.pk in selected_in_sql(population, node)
    unknown = [r for r in population.records
               if catalogue["income"].python(r) is None and catalogue["kids"].python(r) is None]
    assert unknown
    for record in unknown:
        assert evaluate(node, catalogue, record) is None
        assert record.pk not in selected_in_sql(population, node)
