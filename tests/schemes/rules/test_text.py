"""AST -> text: `parse(to_text(node))` gives the node back (positions aside), with the fewest
brackets Python's precedence allows, strings quoted safely, numbers exact and dates written
date("YYYY-MM-DD"). The round trip is a syntactic property: hypothesis builds ASTs of every shape,
well typed or not, in the form the parser produces (a minus sign on a number is part of the number).

No database."""

import datetime
import json
import keyword
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemes.rules.errors import RuleError
from schemes.rules.nodes import (
    FUNCTIONS,
    Binary,
    BoolOp,
    Call,
    Condition,
    FieldRef,
    InList,
    Literal,
    Unary,
    from_json,
    to_json,
)
from schemes.rules.parser import KEYWORDS, parse
from schemes.rules.text import stored_text, to_text

pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")


def num(text):
    return Literal(value=Decimal(text))


def f(name):
    return FieldRef(name=name)


def assert_round_trip(node):
    text = to_text(node)
    back = parse(text)
    assert back == node, text
    # Equality of nodes lets Decimal(1) equal True; the JSON form tells the types (and digits) apart.
    assert to_json(back) == to_json(node), text
    assert to_text(back) == text  # canonical: written once, written the same way again


# --- canonical text, case by case ---------------------------------------------------------------

CANONICAL = [
    # brackets only where precedence needs them
    ("1 + 2 * 3", "1 + 2 * 3"),
    ("(1 + 2) * 3", "(1 + 2) * 3"),
    ("a - b - c", "a - b - c"),
    ("a - (b - c)", "a - (b - c)"),
    ("a / (b * c)", "a / (b * c)"),
    ("(a / b) * c", "a / b * c"),
    ("-(a + b)", "-(a + b)"),
    ("- - a", "--a"),
    ("a - -1", "a - -1"),
    ("-1 * a", "-1 * a"),
    ("(a == b) == c", "(a == b) == c"),
    ("(a < b) in [true]", "(a < b) in [true]"),
    ("a > 1 and b > 2 or not flag", "a > 1 and b > 2 or not flag"),
    ("a and (b or c)", "a and (b or c)"),
    ("(a and b) and c", "(a and b) and c"),
    ("a and b and c", "a and b and c"),
    ("(not a) == b", "(not a) == b"),
    ("not a == b", "not a == b"),
    ("-(not a)", "-(not a)"),
    ("not (a and b)", "not (a and b)"),
    ("a if b else c if d else e", "a if b else c if d else e"),
    ("(a if b else c) if d else e", "(a if b else c) if d else e"),
    ("a if (b if c else d) else e", "a if (b if c else d) else e"),
    ("(a if b else c) + 1", "(a if b else c) + 1"),
    ("min(a if b else c, 2)", "min(a if b else c, 2)"),
    ("x not in ['a', 'b']", 'x not in ["a", "b"]'),
    ("1 < a <= 3", "1 < a and a <= 3"),
    ("today()", "today()"),
    ("groupId == 'abc' and numberOfChildren > 2", 'groupId == "abc" and numberOfChildren > 2'),
    # values
    ("TRUE", "true"),
    ("None", "null"),
    ("0.10", "0.10"),
    ("1_000.50", "1000.50"),
    (".5", "0.5"),
    ("0.0000001", "0.0000001"),
    ("-0", "0"),
    ("\"it's\"", '"it\'s"'),
    ("'say \"hi\"'", '"say \\"hi\\""'),
    ("'back\\\\slash'", '"back\\\\slash"'),
    ("'two\\nlines\\ttab'", '"two\\nlines\\ttab"'),
    ("'مزاني é ñandú'", '"مزاني é ñandú"'),
    ("'\\u202e'", '"\\u202e"'),  # a direction override is shown, not obeyed
    ("'\\xa0'", '"\\xa0"'),  # a no-break space is not mistaken for a space
    ("'\\U0001f600'", '"\U0001f600"'),  # printable beyond the BMP: as is
    ('date("2024-02-29")', 'date("2024-02-29")'),
    ("d < date('0999-01-01')", 'd < date("0999-01-01")'),
]


@pytest.mark.parametrize("text, canonical", CANONICAL, ids=[t for t, _ in CANONICAL])
def test_canonical_text(text, canonical):
    node = parse(text)
    assert to_text(node) == canonical
    assert_round_trip(node)


def test_numbers_keep_their_digits_exactly():
    for digits in ("0.1", "0.10", "123456789012345678", "0.000000000000000001", "-2.50", "100"):
        assert to_text(num(digits)) == digits
    assert to_text(Literal(value=Decimal("1E+2"))) == "100"
    assert parse(to_text(Literal(value=Decimal("1E-7")))).value.as_tuple() == Decimal("1E-7").as_tuple()


def test_a_minus_on_a_number_comes_back_as_a_negative_number():
    node = Binary(op="*", left=Unary(op="-", operand=num("5")), right=f("a"))
    assert to_text(node) == "-5 * a"
    assert parse(to_text(node)) == Binary(op="*", left=num("-5"), right=f("a"))


def test_dates_are_written_as_date_values():
    node = Binary(op="<", left=f("dob"), right=Literal(value=datetime.date(2000, 1, 31)))
    assert to_text(node) == 'dob < date("2000-01-31")'
    assert_round_trip(node)


@pytest.mark.parametrize("name", ["null", "None", "TRUE", "if", "and", "lambda", "_private", "1a", "a b", "ﬁrst"])
def test_a_field_name_the_parser_would_read_otherwise_is_refused(name):
    with pytest.raises(RuleError, match="cannot be written as a field name"):
        to_text(f(name))


def test_a_foreign_value_is_refused():
    with pytest.raises(RuleError, match="float"):
        to_text(Literal(value=1.5))


# --- the date value in the parser ---------------------------------------------------------------

@pytest.mark.parametrize("text, message", [
    ('date("2024-02-30")', "2024-02-30 is not a day of the calendar"),
    ('date("20240229")', 'written date\\("YYYY-MM-DD"\\)'),
    ('date("2024-W01-1")', "written date"),
    ("date(2024)", "written date"),
    ('date("2024-01-01", "x")', "written date"),
    ('date(d="2024-01-01")', "written date"),
    ("date()", "written date"),
    ('date("٢٠٢٤-٠١-٠١")', "written date"),  # other digits than 0-9
])
def test_a_date_value_is_an_iso_date_in_quotes(text, message):
    with pytest.raises(RuleError, match=message) as caught:
        parse("a < " + text)
    assert caught.value.position is not None


def test_a_field_may_still_be_called_date():
    assert parse("date == 1") == Binary(op="==", left=f("date"), right=num("1"))


# --- the round trip, over generated ASTs ---------------------------------------------------------

NAMES = st.one_of(st.sampled_from(["a", "age", "dob", "date", "today", "min", "x_1", "ñandú", "jina", "Nullable",
                                   "match", "type"]),
                  st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True)).filter(
    lambda name: not keyword.iskeyword(name) and name.lower() not in KEYWORDS)
# Any character a text value may hold: no control characters but tab and line breaks (the parser's
# limit); quotes, backslashes, invisible characters and a lone surrogate included.
TEXT_CHARACTERS = st.one_of(
    st.characters(blacklist_categories=["Cc", "Cs"]),
    st.sampled_from(['"', "'", "\\", "\t", "\n", "\r", "\x7f", "\x85", "\xa0", "\u200b", "\u202e", "\u2028",
                     "\ud800", "\U0001f600"]),
)
NUMBERS = st.builds(lambda digits, shift: Decimal(digits).scaleb(shift),
                    st.integers(-10**12, 10**12), st.integers(-10, 4))
PLAIN_VALUES = st.one_of(
    NUMBERS,
    st.text(TEXT_CHARACTERS, max_size=12),
    st.booleans(),
    st.dates(datetime.date(1, 1, 1), datetime.date(9999, 12, 31)),
)
LEAVES = st.one_of(
    st.one_of(PLAIN_VALUES, st.none()).map(lambda value: Literal(value=value)),
    NAMES.map(f),
    st.just(Call(function="today", args=())),
)


def extend(children):
    comparison_or_arithmetic = ["+", "-", "*", "/", "==", "!=", "<", "<=", ">", ">="]
    return st.one_of(
        st.builds(lambda op, a, b: Binary(op=op, left=a, right=b), st.sampled_from(comparison_or_arithmetic),
                  children, children),
        st.builds(lambda op, values: BoolOp(op=op, values=tuple(values)), st.sampled_from(["and", "or"]),
                  st.lists(children, min_size=2, max_size=3)),
        # A minus on a number literal is folded into the number by the parser: not a shape it produces.
        children.filter(lambda c: not (isinstance(c, Literal) and isinstance(c.value, Decimal)))
        .map(lambda c: Unary(op="-", operand=c)),
        children.map(lambda c: Unary(op="not", operand=c)),
        st.builds(lambda item, values, negated: InList(item=item, values=tuple(Literal(value=v) for v in values),
                                                       negated=negated),
                  children, st.lists(PLAIN_VALUES, min_size=1, max_size=3), st.booleans()),
        st.builds(lambda t, a, b: Condition(test=t, then=a, otherwise=b), children, children, children),
        st.builds(lambda name, args: Call(function=name, args=tuple(args)),
                  st.sampled_from([name for name in FUNCTIONS if name != "today"]),
                  st.lists(children, min_size=1, max_size=3)),
    )


ASTS = st.recursive(LEAVES, extend, max_leaves=16)


@settings(max_examples=600, deadline=None)
@given(ASTS)
def test_parse_reads_to_text_back_to_the_same_ast(node):
    assert_round_trip(node)


@settings(max_examples=200, deadline=None)
@given(ASTS)
def test_the_json_form_survives_the_text_form(node):
    """What the filter builder stores (JSON) and what people read (text) describe one rule."""
    assert from_json(json.loads(json.dumps(to_json(parse(to_text(node)))))) == node


@pytest.mark.parametrize("typed, kept", [
    ("  age>=18  ", "age>=18"),
    ("age__gte__integer=18\nsex__iexact__string=f", 'age >= 18 and lower(sex) == "f"'),
    ('["age__gte__integer=18"]', "age >= 18"),
])
def test_the_text_kept_is_as_typed_but_openimis_filters_in_our_language(typed, kept):
    assert stored_text(typed, parse(typed)) == kept
