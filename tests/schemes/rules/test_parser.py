"""The rules parser: what the language accepts, what it refuses (QUALITY.md item 12: dunder access,
imports, lambdas, comprehensions, `**`, deep nesting and huge literals are refused before anything
runs), where the error points, and the JSON form of the AST.

No database: the few checks that need a catalogue use a hand-built one."""

import datetime
import json
import re
from decimal import Decimal

import pytest

from schemes.rules import nodes
from schemes.rules.catalogue import BOOLEAN, DATE, NUMBER, TEXT, Catalogue, FieldSpec
from schemes.rules.compiler import compile_rule
from schemes.rules.errors import RuleError
from schemes.rules.nodes import Binary, BoolOp, Call, Condition, FieldRef, InList, Literal, Unary
from schemes.rules.parser import MAX_DEPTH, MAX_LIST, MAX_STRING, MAX_TEXT, parse


def num(text):
    return Literal(value=Decimal(text))


def f(name):
    return FieldRef(name=name)


def catalogue():
    """Fields a, b, c, x, y (numbers), t (text), d (date), flag (yes/no); no SQL needed here."""
    def spec(name, kind):
        return FieldSpec(name, kind, name, sql=lambda prefix: None, python=lambda record: None)

    fields = [spec(n, NUMBER) for n in ("a", "b", "c", "x", "y")]
    fields += [spec("t", TEXT), spec("d", DATE), spec("flag", BOOLEAN)]
    return Catalogue(fields, today=datetime.date(2025, 3, 1))


# --- accepted syntax ---------------------------------------------------------------------------

ACCEPTED = [
    # arithmetic, with Python's precedence and left associativity
    ("1 + 2 * 3", Binary(op="+", left=num("1"), right=Binary(op="*", left=num("2"), right=num("3")))),
    ("(1 + 2) * 3", Binary(op="*", left=Binary(op="+", left=num("1"), right=num("2")), right=num("3"))),
    ("a - b - c", Binary(op="-", left=Binary(op="-", left=f("a"), right=f("b")), right=f("c"))),
    ("a / b", Binary(op="/", left=f("a"), right=f("b"))),
    ("-a", Unary(op="-", operand=f("a"))),
    ("+a", f("a")),
    ("-1", num("-1")),
    ("- -1", num("1")),
    ("a - -1", Binary(op="-", left=f("a"), right=num("-1"))),
    # comparisons, each operator, and chained comparisons as in Python (a < b < c: a < b and b < c)
    ("a == 1", Binary(op="==", left=f("a"), right=num("1"))),
    ("a != 1", Binary(op="!=", left=f("a"), right=num("1"))),
    ("a < 1", Binary(op="<", left=f("a"), right=num("1"))),
    ("a <= 1", Binary(op="<=", left=f("a"), right=num("1"))),
    ("a > 1", Binary(op=">", left=f("a"), right=num("1"))),
    ("a >= 1", Binary(op=">=", left=f("a"), right=num("1"))),
    ("1 < a <= 3", BoolOp(op="and", values=(Binary(op="<", left=num("1"), right=f("a")),
                                            Binary(op="<=", left=f("a"), right=num("3"))))),
    ("a < b < c < 4", BoolOp(op="and", values=(Binary(op="<", left=f("a"), right=f("b")),
                                               Binary(op="<", left=f("b"), right=f("c")),
                                               Binary(op="<", left=f("c"), right=num("4"))))),
    # and / or / not, with not binding tighter than and, and tighter than or
    ("a > 1 and b > 2 or not flag",
     BoolOp(op="or", values=(BoolOp(op="and", values=(Binary(op=">", left=f("a"), right=num("1")),
                                                      Binary(op=">", left=f("b"), right=num("2")))),
                             Unary(op="not", operand=f("flag"))))),
    ("flag and flag and flag", BoolOp(op="and", values=(f("flag"), f("flag"), f("flag")))),
    ("not not flag", Unary(op="not", operand=Unary(op="not", operand=f("flag")))),
    # in / not in a written list (brackets or parentheses)
    ("a in [1, 2.5, -3]", InList(item=f("a"), values=(num("1"), num("2.5"), num("-3")))),
    ("t not in ['x', \"y\"]", InList(item=f("t"), values=(Literal(value="x"), Literal(value="y")), negated=True)),
    ("t in ('x',)", InList(item=f("t"), values=(Literal(value="x"),))),
    ("flag in [true]", InList(item=f("flag"), values=(Literal(value=True),))),
    # x if c else y
    ("a if flag else b", Condition(test=f("flag"), then=f("a"), otherwise=f("b"))),
    ("1 if a > 1 else 2 if a > 0 else 3",
     Condition(test=Binary(op=">", left=f("a"), right=num("1")), then=num("1"),
               otherwise=Condition(test=Binary(op=">", left=f("a"), right=num("0")), then=num("2"),
                                   otherwise=num("3")))),
    # the functions
    ("min(a, b)", Call(function="min", args=(f("a"), f("b")))),
    ("max(a, b, 3)", Call(function="max", args=(f("a"), f("b"), num("3")))),
    ("round(a)", Call(function="round", args=(f("a"),))),
    ("round(a, 2)", Call(function="round", args=(f("a"), num("2")))),
    ("abs(a - b)", Call(function="abs", args=(Binary(op="-", left=f("a"), right=f("b")),))),
    ("years_since(d)", Call(function="years_since", args=(f("d"),))),
    ("today()", Call(function="today", args=())),
    ("lower(t) == 'x'", Binary(op="==", left=Call(function="lower", args=(f("t"),)), right=Literal(value="x"))),
    # field names as openIMIS writes them: letters of either case
    ("groupId == 'abc'", Binary(op="==", left=f("groupId"), right=Literal(value="abc"))),
    ("NIN_type != null", Binary(op="!=", left=f("NIN_type"), right=Literal(value=None))),
    ("starts_with(t, 'x')", Call(function="starts_with", args=(f("t"), Literal(value="x")))),
    ("contains(t, 'x')", Call(function="contains", args=(f("t"), Literal(value="x")))),
    # keywords (any case) and Python's own constants
    ("true", Literal(value=True)),
    ("false", Literal(value=False)),
    ("null", Literal(value=None)),
    ("TRUE", Literal(value=True)),
    ("Null", Literal(value=None)),
    ("True", Literal(value=True)),
    ("None", Literal(value=None)),
    ("a == null", Binary(op="==", left=f("a"), right=Literal(value=None))),
    # text
    ("'Nairobi'", Literal(value="Nairobi")),
    ("\"Dar es Salaam\"", Literal(value="Dar es Salaam")),
    ("'مزاني'", Literal(value="مزاني")),
    ("'" + "x" * MAX_STRING + "'", Literal(value="x" * MAX_STRING)),
    # brackets may span lines; comments are ignored
    ("(a +\n b)", Binary(op="+", left=f("a"), right=f("b"))),
    ("a  # a comment", f("a")),
    ("  a > 1  ", Binary(op=">", left=f("a"), right=num("1"))),
]


@pytest.mark.parametrize("text, expected", ACCEPTED, ids=[t for t, _ in ACCEPTED])
def test_accepted_syntax(text, expected):
    assert parse(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("0.1", "0.1"), ("0.10", "0.10"), ("1.005", "1.005"), ("123456.78", "123456.78"), ("1_000.50", "1000.50"),
    (".5", "0.5"), ("7", "7"), ("-0.3", "-0.3"), ("123456789012345678", "123456789012345678"),
    ("0.000000000000000001", "1E-18"),
])
def test_numbers_are_decimals_taken_from_the_digits_as_written(text, expected):
    value = parse(text).value
    assert isinstance(value, Decimal)
    assert value == Decimal(expected)
    assert value.as_tuple() == Decimal(expected).as_tuple()  # not via a float: 0.1 is exactly 0.1


def test_a_sum_of_decimals_stays_exact():
    node = parse("0.1 + 0.2")
    assert node.left.value + node.right.value == Decimal("0.3")


def test_numbers_with_more_than_18_digits_are_refused():
    with pytest.raises(RuleError, match="at most 18 digits"):
        parse("1234567890123456789")


def test_the_position_of_each_part_is_recorded():
    node = parse("a + min(b, 2)")
    assert node.position == (1, 0)
    assert node.right.position == (1, 4)
    assert node.right.args[0].position == (1, 8)
    assert node.right.args[1].position == (1, 11)
    node = parse("(a +\n   b)")
    assert node.right.position == (2, 3)


def test_the_largest_allowed_shapes_are_accepted():
    parse("a in [" + ", ".join(str(n) for n in range(MAX_LIST)) + "]")
    parse("abs(" * (MAX_DEPTH - 1) + "a" + ")" * (MAX_DEPTH - 1))


def test_a_thirty_term_score_formula_is_accepted():
    # Scores (proxy means tests) are long weighted sums. `a + b + c` is a chain, not nesting: thirty
    # terms are 30 parts deep in Python's tree but well within the size limits (about 400 characters,
    # 210 parts), and must not be refused as "nested more than 24 levels deep".
    text = " + ".join(f"0.{n + 10} * {name}" for n, name in enumerate("abcxy" * 6))
    assert len(text) < MAX_TEXT
    node = parse(text)
    assert isinstance(node, Binary) and node.op == "+"


# --- refused, with a plain message pointing at the offending part -------------------------------

LONG_LIST = "a in [" + ", ".join(str(n) for n in range(150)) + "]"
HOSTILE = [
    # (expression, the part the error must point into; None: the whole text is at fault)
    ("__import__('os')", "__import__('os')"),
    ("().__class__.__bases__", "().__class__.__bases__"),
    ("a.b", "a.b"),
    ("a[0]", "a[0]"),
    ("a[1:2]", "a[1:2]"),
    ("lambda: 1", "lambda: 1"),
    ("(lambda x: x)(1)", "(lambda x: x)(1)"),
    ("[x for x in y]", "[x for x in y]"),
    ("{x for x in y}", "{x for x in y}"),
    ("{x: 1 for x in y}", "{x: 1 for x in y}"),
    ("(x for x in y)", "(x for x in y)"),
    ("2 ** 10000", "2 ** 10000"),
    ("9 ** 9 ** 9", "9 ** 9 ** 9"),
    ("a // b", "a // b"),
    ("a % b", "a % b"),
    ("a if b", "a if b"),
    ("f'{a}'", "f'{a}'"),
    ("(a := 1)", "a := 1"),
    ("open('x')", "open('x')"),
    ("eval('1')", "eval('1')"),
    ("exec('x')", "exec('x')"),
    ("getattr(a, 'b')", "getattr(a, 'b')"),
    ("globals()", "globals()"),
    ("print('x')", "print('x')"),
    ("min(*a)", "min(*a)"),
    ("round(x, ndigits=2)", "round(x, ndigits=2)"),
    ("min(a, b)(c)", "min(a, b)(c)"),
    ("1e308", "1e308"),
    ("1.5e3", "1.5e3"),
    ("0x10", "0x10"),
    ("0o17", "0o17"),
    ("0b101", "0b101"),
    ("1j", "1j"),
    ("b'x'", "b'x'"),
    ("...", "..."),
    ("'" + "x" * 10_000 + "'", None),
    ("'" + "x" * (MAX_STRING + 1) + "'", "'x"),
    ("a == '" + "x" * (MAX_STRING + 1) + "'", "'x"),
    (" + ".join(["a"] * 750), None),  # 2,999 characters
    # 200 levels of nesting. (Bare parentheses are not nesting in the tree: "((((1))))" 200 deep is
    # Python's own limit and parses to the literal 1, harmlessly; 201 are refused by Python's parser.)
    ("(1 + " * 200 + "1" + ")" * 200, None),
    ("(" * 201 + "1" + ")" * 201, None),
    ("not " * 200 + "a", None),
    ("-" * 200 + "a", None),
    ("- " * 200 + "a", None),
    ("abs(" * 200 + "a" + ")" * 200, None),
    ("not " * (MAX_DEPTH + 1) + "a", "not " * (MAX_DEPTH + 1) + "a"),
    ("abs(" * (MAX_DEPTH + 1) + "a" + ")" * (MAX_DEPTH + 1), "abs(" * (MAX_DEPTH + 1) + "a"),
    (LONG_LIST, "[0, 1"),
    ("a in [1, b]", "[1, b]"),
    ("a in [1, null]", "[1, null]"),
    ("a in []", "[]"),
    ("a in b", "b"),
    ("a in [1, a.b]", "a.b"),
    ("a is None", "a is None"),
    ("a is not None", "a is not None"),
    ("a & b", "a & b"),
    ("a | b", "a | b"),
    ("a ^ b", "a ^ b"),
    ("a << 2", "a << 2"),
    ("~a", "~a"),
    ("x @ y", "x @ y"),
    ("await x", "await x"),
    ("yield x", "yield x"),
    ("(yield x)", "yield x"),
    ("_private > 1", "_private"),
    ("__class__", "__class__"),
    ("__builtins__", "__builtins__"),
    ("a > 1 and __debug__", "__debug__"),
    ("{'a': 1}", "{'a': 1}"),
    ("{1, 2}", "{1, 2}"),
    ("(1, 2)", "(1, 2)"),
    ("[1]", "[1]"),
    ("", None),
    ("   ", None),
    ("\n\t ", None),
    ("1 +", "1 +"),
    ("a = 1", "="),
    ("a = 1\nb = 2", "="),
    ("a\nb", "b"),
    ("import os", "import os"),
    ("a; b", ";"),
    ("a <> b", "<>"),
    ("'abc", "'abc"),
    ("a or b.c", "b.c"),
    ("x if y else z.w", "z.w"),
    ("1 + (2 if a else b.c)", "b.c"),
    ("a and (b := c)", "b := c"),
    ("a > 1 and open('x')", "open('x')"),
]


@pytest.mark.parametrize("text, offending", HOSTILE, ids=[repr(t[:40]) for t, _ in HOSTILE])
def test_hostile_expressions_are_refused_at_parse_time(text, offending):
    with pytest.raises(RuleError) as caught:
        parse(text)
    error = caught.value
    assert_plain(error.message)
    if offending is None:
        return  # the text as a whole is at fault (empty, too long, too many parts): no one place
    assert error.position is not None, error.message
    assert_points_into(text, error.position, offending)


def test_text_repetition_is_refused_by_the_type_check():
    # 'a' * 10 is syntactically arithmetic; it goes no further than the type check (not run at parse
    # time, but never reaches SQL or Python evaluation).
    with pytest.raises(RuleError) as caught:
        compile_rule("'a' * 10", catalogue())
    assert_plain(caught.value.message)
    assert caught.value.position == (1, 0)


def test_three_thousand_characters_are_refused_before_parsing():
    text = "a + " * 749 + "a   "
    assert len(text) == 3000
    with pytest.raises(RuleError, match=f"longer than {MAX_TEXT} characters"):
        parse(text)


@pytest.mark.parametrize("text, offending_column", [
    # Positions must count characters of the text as the user typed it.
    ("   a.b", 3),  # leading spaces
    ("'Dodoma' == a.b", 12),
    ("'Arusha é' == a.b", 14),  # non-ASCII before the error: columns are characters, not UTF-8 bytes
    ("'مزاني' == a.b", 11),
])
def test_error_columns_count_characters_of_the_original_text(text, offending_column):
    with pytest.raises(RuleError) as caught:
        parse(text)
    assert caught.value.position == (1, offending_column)
    assert text[offending_column:].startswith("a.b")


def test_error_lines_count_lines_of_the_original_text():
    text = "\n\n  a.b"
    with pytest.raises(RuleError) as caught:
        parse(text)
    assert caught.value.position == (3, 2)


def test_the_error_message_names_line_and_column_for_people():
    with pytest.raises(RuleError) as caught:
        parse("a or b.c")
    assert str(caught.value) == "Attribute access (a.b) is not allowed in a rule. (line 1, column 6)"


def assert_plain(message):
    """A message for people: one short sentence, no Python internals."""
    assert isinstance(message, str) and message
    assert len(message) <= 200, message
    assert "\n" not in message
    assert "''" not in message, message  # doubled quotes: a quoted internal name
    for internal in ("Traceback", "object at 0x", "ast.", "NoneType", "Error", "Exception"):
        assert internal not in message, message
    for node_name in ("Call", "BinOp", "UnaryOp", "BoolOp", "Compare", "Constant", "Name", "Attribute(",
                      "Subscript", "NamedExpr", "JoinedStr", "ListComp", "SetComp", "DictComp",
                      "GeneratorExp", "Lambda", "Starred", "Await", "Yield", "Expression", "Load"):
        assert not re.search(rf"\b{re.escape(node_name)}\b", message), message


def assert_points_into(text, position, offending):
    """`position` (1-based line, 0-based column) falls inside the first occurrence of `offending`."""
    line, column = position
    lines = text.split("\n")
    assert 1 <= line <= len(lines), position
    offset = sum(len(previous) + 1 for previous in lines[: line - 1]) + column
    start = text.index(offending)
    assert start <= offset < start + max(len(offending), 1), (
        f"{position} points at {text[offset:offset + 20]!r}, not into {offending!r}")


# --- the JSON form -----------------------------------------------------------------------------

ROUND_TRIP = [
    "1 + 2 * 3", "-a", "a - -1.50", "0.1", "1 < a <= 3", "a > 1 and b > 2 or not flag", "a in [1, 2.5, -3]",
    "t not in ['x', 'y']", "flag in [true, false]", "a if flag else b", "min(a, b, 3) + max(a, 0)",
    "round(a / 3, 2)", "abs(a)", "years_since(d) >= 18", "d < today()", "t == null", "null", "true", "false",
    "'مزاني'", "lower(t) == 'x' and starts_with(t, 'a') or contains(t, 'b')", "123456789012345678",
    "a < 0.0000001", "d < date('2024-02-29')",
]


@pytest.mark.parametrize("text", ROUND_TRIP)
def test_json_round_trip_gives_an_equal_ast(text):
    node = parse(text)
    data = nodes.to_json(node)
    assert nodes.from_json(json.loads(json.dumps(data))) == node


def test_json_keeps_numbers_exact_and_dates_typed():
    node = Binary(op="<", left=Literal(value=datetime.date(2024, 2, 29)),
                  right=Literal(value=Decimal("0.10")))
    data = json.loads(json.dumps(nodes.to_json(node)))
    assert data["left"] == {"literal": "2024-02-29", "type": "date"}
    assert data["right"] == {"literal": "0.10", "type": "number"}
    back = nodes.from_json(data)
    assert back == node
    assert back.right.value.as_tuple() == Decimal("0.10").as_tuple()


@pytest.mark.parametrize("data", [
    {"lambda": "x"},
    {"attribute": {"field": "a"}, "name": "__class__"},
    {"import": "os"},
    {"subscript": {"field": "a"}},
    {},
    [],
    "a",
    None,
    1,
    {"binary": "+", "left": {"field": "a"}, "right": {"eval": "1"}},
    {"bool": "and", "values": [{"field": "flag"}, ["not a node"]]},
])
def test_from_json_refuses_unknown_node_kinds(data):
    with pytest.raises(RuleError):
        nodes.from_json(data)


# The filter builder sends JSON: whatever it sends must meet the same rules as typed text before it
# is used (from_json, then compile_rule). Each of these is refused by one of the two, with a RuleError.
BAD_JSON = [
    pytest.param({"binary": "**", "left": {"field": "a"}, "right": {"literal": "2", "type": "number"}},
                 id="binary-power"),
    pytest.param({"binary": "= 1 OR 1 =", "left": {"field": "a"}, "right": {"literal": "2", "type": "number"}},
                 id="binary-sql-text"),
    pytest.param({"bool": "or 1 = 1 or", "values": [{"field": "flag"}, {"field": "flag"}]}, id="bool-sql-text"),
    pytest.param({"bool": "xor", "values": [{"field": "flag"}, {"field": "flag"}]}, id="bool-unknown"),
    pytest.param({"unary": "~", "operand": {"field": "a"}}, id="unary-unknown"),
    pytest.param({"call": "__import__", "args": [{"literal": "os"}]}, id="call-unknown"),
    pytest.param({"field": "__class__"}, id="field-dunder"),
    pytest.param({"literal": "NaN", "type": "number"}, id="number-nan"),
    pytest.param({"literal": "Infinity", "type": "number"}, id="number-infinity"),
    pytest.param({"literal": "1e400", "type": "number"}, id="number-exponent"),
    pytest.param({"literal": "1" * 40, "type": "number"}, id="number-40-digits"),
    pytest.param({"literal": "abc", "type": "number"}, id="number-garbage"),
    pytest.param({"literal": 1e308}, id="number-float-huge"),
    pytest.param({"literal": "x" * 10_000}, id="text-10000"),
    pytest.param({"literal": [1, 2]}, id="literal-list"),
    pytest.param({"literal": {"a": 1}}, id="literal-dict"),
    pytest.param({"literal": "2024-02-30", "type": "date"}, id="date-impossible"),
    pytest.param({"binary": "+", "left": {"field": "a"}}, id="missing-key"),
    pytest.param({"in": {"field": "a"}, "values": [{"literal": str(n), "type": "number"} for n in range(5000)]},
                 id="list-5000"),
    pytest.param({"in": {"field": "a"}, "values": []}, id="list-empty"),
    pytest.param(json.loads('{"unary": "-", "operand": ' * 100 + '{"field": "a"}' + "}" * 100), id="nested-100"),
]


@pytest.mark.parametrize("data", BAD_JSON)
def test_json_asts_meet_the_same_rules_as_text(data):
    with pytest.raises(RuleError):
        compile_rule(nodes.from_json(data), catalogue())


def test_json_nested_thousands_deep_is_refused_cleanly():
    data = {"field": "a"}
    for _ in range(5000):
        data = {"unary": "-", "operand": data}
    try:
        compile_rule(nodes.from_json(data), catalogue())
    except RuleError:
        return
    except RecursionError:
        pytest.fail("RecursionError instead of a RuleError: from_json has no depth limit")
    pytest.fail("a rule nested 5,000 deep was accepted")
