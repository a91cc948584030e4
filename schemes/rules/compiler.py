"""One AST, three uses: `check` (types, against a catalogue), `to_sql` (a Django expression for a
whole set) and `evaluate` (one record in Python). Both evaluations follow SQL's three-valued logic,
divide with NULL for a zero divisor and round quotients to 10 places half away from zero, so they
give the same answer (tests/schemes/rules prove it with hypothesis). A divisor that is zero whatever
the record (`1000 / 0`, `x / (2 - 2)`) is refused by `check`: the rule would give nothing for anyone;
one that is zero for some records only gives them NULL (no value: a formula pays them nothing)."""

import dataclasses
import datetime
from decimal import ROUND_HALF_UP, Decimal, localcontext

from django.db import models
from django.db.models import Case, When
from django.db.models.functions import Abs, Lower, Round

from sites.text import lower_text

from . import sql
from .catalogue import BOOLEAN, DATE, NULL, NUMBER, TEXT, years_between
from .errors import RuleError
from .nodes import Binary, BoolOp, Call, Condition, FieldRef, InList, Literal, Node, Unary
from .parser import parse, validate_limits

QUOTIENT_PLACES = 10
# The only operator texts that reach SQL, each spelled by this table (never by the rule).
SQL_OPERATORS = {"+": "+", "-": "-", "*": "*", "/": "/", "==": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">",
                 ">=": ">="}
ORDERED = {NUMBER, DATE, TEXT}
NUMBER_FIELD = models.DecimalField(max_digits=38, decimal_places=10)


def compile_rule(text_or_node, catalogue, *, expect=None):
    """Parse (if text) and type-check; returns the checked AST."""
    node = parse(text_or_node) if isinstance(text_or_node, str) else validate_limits(text_or_node)
    found = check(node, catalogue)
    if expect and found not in (expect, NULL):
        raise RuleError(f"The rule must give {_a(expect)}, but it gives {_a(found)}.", node.position)
    return node


# --- types ------------------------------------------------------------------------------------


def check(node, catalogue):
    """The node's type, or RuleError at the first problem."""
    if isinstance(node, Literal):
        return _literal_type(node.value)
    if isinstance(node, FieldRef):
        if node.name in catalogue.withheld:
            raise RuleError(f"'{node.name}' is sensitive: only users who may see sensitive data can use it in a rule.",
                            node.position)
        if node.name not in catalogue:
            raise RuleError(f"Unknown field '{node.name}'. Known fields: {', '.join(catalogue.names())}.",
                            node.position)
        return catalogue[node.name].type
    if isinstance(node, Unary):
        if node.op not in ("not", "-"):
            raise RuleError(f"'{node.op}' is not an operator of the rules language.", node.position)
        wanted = BOOLEAN if node.op == "not" else NUMBER
        _expect(check(node.operand, catalogue), wanted, node, f"'{node.op}'")
        return wanted
    if isinstance(node, Binary):
        if node.op not in SQL_OPERATORS:
            raise RuleError(f"'{node.op}' is not an operator of the rules language.", node.position)
        left, right = check(node.left, catalogue), check(node.right, catalogue)
        if node.op in ("+", "-", "*", "/"):
            _expect(left, NUMBER, node.left, f"'{node.op}'")
            _expect(right, NUMBER, node.right, f"'{node.op}'")
            if node.op == "/" and _reads_no_field(node.right) and evaluate(node.right, catalogue, None) == 0:
                raise RuleError("Division by zero: this divisor is always 0, so the rule would give no value "
                                "for anyone.", node.right.position)
            return NUMBER
        if NULL not in (left, right) and left != right:
            raise RuleError(f"'{node.op}' compares {_a(left)} with {_a(right)}.", node.position)
        if node.op not in ("==", "!=") and (left if left != NULL else right) not in ORDERED | {NULL}:
            raise RuleError(f"'{node.op}' does not apply to {_a(left)}.", node.position)
        if node.op in ("==", "!="):
            _check_choice(node.left, node.right, catalogue)
            _check_choice(node.right, node.left, catalogue)
        return BOOLEAN
    if isinstance(node, BoolOp):
        if node.op not in ("and", "or") or len(node.values) < 2:
            raise RuleError(f"'{node.op}' joins two or more yes/no values with 'and' or 'or'.", node.position)
        for value in node.values:
            _expect(check(value, catalogue), BOOLEAN, value, f"'{node.op}'")
        return BOOLEAN
    if isinstance(node, InList):
        if not node.values or any(not isinstance(v, Literal) or v.value is None for v in node.values):
            raise RuleError("The list after 'in' holds one or more plain values, not null.", node.position)
        item = check(node.item, catalogue)
        for value in node.values:
            kind = check(value, catalogue)
            if item != NULL and kind != item:
                raise RuleError(f"The list mixes {_a(kind)} into a test of {_a(item)}.", value.position)
            _check_choice(node.item, value, catalogue)
        return BOOLEAN
    if isinstance(node, Condition):
        _expect(check(node.test, catalogue), BOOLEAN, node.test, "'if'")
        then, otherwise = check(node.then, catalogue), check(node.otherwise, catalogue)
        if NULL not in (then, otherwise) and then != otherwise:
            raise RuleError(f"Both sides of 'if ... else' must be of one type, not {then} and {otherwise}.",
                            node.position)
        return then if then != NULL else otherwise
    if isinstance(node, Call):
        return _check_call(node, catalogue)
    raise RuleError(f"Not a rule: {type(node).__name__}.", getattr(node, "position", None))


def _reads_no_field(node):
    """Whether the node's value is the same for every record (it names no field)."""
    if isinstance(node, FieldRef):
        return False
    for part in dataclasses.fields(node):
        value = getattr(node, part.name)
        for child in value if isinstance(value, tuple) else (value,):
            if isinstance(child, Node) and not _reads_no_field(child):
                return False
    return True


def _check_choice(field, value, catalogue):
    """A field of choices compared with a text that is none of them would match nobody, silently
    ('Female' where the choices are F, M, O): named instead."""
    if not (isinstance(field, FieldRef) and isinstance(value, Literal) and isinstance(value.value, str)):
        return
    choices = catalogue[field.name].choices
    if choices and value.value not in choices:
        raise RuleError(f"'{value.value}' is not one of the choices of {field.name}: {', '.join(choices)}.",
                        value.position)


def _check_call(node, catalogue):
    kinds = [check(arg, catalogue) for arg in node.args]
    name, count = node.function, len(node.args)
    if name in ("min", "max"):
        if count < 2:
            raise RuleError(f"{name}() takes two or more numbers.", node.position)
        for arg, kind in zip(node.args, kinds, strict=True):
            _expect(kind, NUMBER, arg, f"{name}()")
        return NUMBER
    if name == "abs":
        if count != 1:
            raise RuleError("abs() takes one number.", node.position)
        _expect(kinds[0], NUMBER, node.args[0], "abs()")
        return NUMBER
    if name == "round":
        if count not in (1, 2):
            raise RuleError("round() takes a number and, optionally, a number of decimal places.", node.position)
        _expect(kinds[0], NUMBER, node.args[0], "round()")
        if count == 2:
            places = node.args[1]
            if not (isinstance(places, Literal) and isinstance(places.value, Decimal)
                    and places.value == places.value.to_integral() and 0 <= places.value <= QUOTIENT_PLACES):
                raise RuleError(f"round()'s places must be a whole number from 0 to {QUOTIENT_PLACES}.",
                                places.position)
        return NUMBER
    if name == "years_since":
        if count != 1:
            raise RuleError("years_since() takes one date.", node.position)
        _expect(kinds[0], DATE, node.args[0], "years_since()")
        return NUMBER
    if name == "today":
        if count:
            raise RuleError("today() takes nothing.", node.position)
        return DATE
    if name == "lower":
        if count != 1:
            raise RuleError("lower() takes one text.", node.position)
        _expect(kinds[0], TEXT, node.args[0], "lower()")
        return TEXT
    if name in ("starts_with", "contains"):
        if count != 2:
            raise RuleError(f"{name}() takes two texts.", node.position)
        for arg, kind in zip(node.args, kinds, strict=True):
            _expect(kind, TEXT, arg, f"{name}()")
        return BOOLEAN
    raise RuleError(f"'{name}' is not a rules function.", node.position)


def _literal_type(value):
    if value is None:
        return NULL
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, Decimal):
        return NUMBER
    if isinstance(value, datetime.date):
        return DATE
    return TEXT


def _expect(found, wanted, node, what):
    if found not in (wanted, NULL):
        raise RuleError(f"{what} needs {_a(wanted)}, not {_a(found)}.", node.position)


def _a(kind):
    return {NUMBER: "a number", TEXT: "text", DATE: "a date", BOOLEAN: "yes/no", NULL: "null"}[kind]


# --- SQL --------------------------------------------------------------------------------------


def to_sql(node, catalogue, kind=None):
    """A Django expression for the checked node. Literals become bound parameters (typed, NULL too),
    operators and field expressions come from fixed tables and the catalogue: no text of the rule
    reaches SQL or a keyword argument. `kind` is the type the context expects (for a bare NULL)."""
    if isinstance(node, Literal):
        return sql.literal(node.value, kind or _literal_type(node.value))
    if isinstance(node, FieldRef):
        return catalogue.sql(node.name)
    if isinstance(node, Unary):
        if node.op == "not":
            return sql.Not(to_sql(node.operand, catalogue, BOOLEAN), output_field=sql.BOOLEAN)
        return sql.Arithmetic(sql.literal(Decimal(0), NUMBER), to_sql(node.operand, catalogue, NUMBER), op="-")
    if isinstance(node, Binary):
        if node.op in ("+", "-", "*", "/"):
            left, right = to_sql(node.left, catalogue, NUMBER), to_sql(node.right, catalogue, NUMBER)
            if node.op == "/":
                return Round(sql.Quotient(left, right), QUOTIENT_PLACES, output_field=NUMBER_FIELD)
            return sql.Arithmetic(left, right, op=SQL_OPERATORS[node.op])
        side = _operand_kind(node.left, node.right, catalogue)
        return sql.Infix(to_sql(node.left, catalogue, side), to_sql(node.right, catalogue, side),
                         op=SQL_OPERATORS[node.op])
    if isinstance(node, BoolOp):
        return sql.Infix(*(to_sql(v, catalogue, BOOLEAN) for v in node.values),
                         op={"and": "AND", "or": "OR"}[node.op])
    if isinstance(node, InList):
        item_kind = _operand_kind(node.item, node.values[0], catalogue)
        return sql.InValues(to_sql(node.item, catalogue, item_kind),
                            [to_sql(v, catalogue, item_kind) for v in node.values], negated=node.negated)
    if isinstance(node, Condition):
        result = check(node, catalogue)
        result = kind if result == NULL and kind else result
        return Case(When(sql.IsTrue(to_sql(node.test, catalogue, BOOLEAN)), then=to_sql(node.then, catalogue, result)),
                    default=to_sql(node.otherwise, catalogue, result), output_field=sql.field_for(result))
    if isinstance(node, Call):
        return _call_sql(node, catalogue)
    raise RuleError(f"Not a rule: {type(node).__name__}.")


def _operand_kind(left, right, catalogue):
    """The type both sides of a comparison share (a bare NULL takes the other side's)."""
    left_kind = check(left, catalogue)
    return left_kind if left_kind != NULL else check(right, catalogue)


def _call_sql(node, catalogue):
    wanted = {"years_since": DATE, "lower": TEXT, "starts_with": TEXT, "contains": TEXT}.get(node.function, NUMBER)
    args = [to_sql(arg, catalogue, wanted) for arg in node.args]
    if node.function in ("min", "max"):
        return sql.NullSafeExtreme(*args, function=node.function, output_field=NUMBER_FIELD)
    if node.function == "abs":
        return Abs(args[0], output_field=NUMBER_FIELD)
    if node.function == "round":
        places = int(node.args[1].value) if len(node.args) == 2 else 0
        return Round(args[0], places, output_field=NUMBER_FIELD)
    if node.function == "years_since":
        return sql.YearsBetween(args[0], catalogue.today)
    if node.function == "today":
        return sql.literal(catalogue.today, DATE)
    if node.function == "lower":
        return Lower(args[0])
    if node.function in ("starts_with", "contains"):
        return sql.TextPosition(args[0], args[1], at_start=node.function == "starts_with")
    raise RuleError(f"'{node.function}' is not a rules function.", node.position)


def filter_queryset(queryset, rule, catalogue):
    """The records for which the rule is TRUE (unknown, like false, leaves a record out)."""
    node = compile_rule(rule, catalogue, expect=BOOLEAN)
    return queryset.filter(sql.IsTrue(to_sql(node, catalogue, BOOLEAN)))


# --- Python -----------------------------------------------------------------------------------


def evaluate(node, catalogue, record):
    """The node's value for one record, with the same NULL rules as SQL."""
    with localcontext() as context:
        context.prec = 200  # exact for anything the size limits allow
        return _value(node, catalogue, record)


def _value(node, catalogue, record):
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, FieldRef):
        return catalogue.value(node.name, record)
    if isinstance(node, Unary):
        operand = _value(node.operand, catalogue, record)
        if operand is None:
            return None
        return (not operand) if node.op == "not" else -operand
    if isinstance(node, Binary):
        left, right = _value(node.left, catalogue, record), _value(node.right, catalogue, record)
        if left is None or right is None:
            return None
        return _binary(node.op, left, right)
    if isinstance(node, BoolOp):
        values = [_value(v, catalogue, record) for v in node.values]
        decisive = (node.op == "or")  # TRUE decides OR, FALSE decides AND
        if any(v is decisive for v in values):
            return decisive
        return None if any(v is None for v in values) else not decisive
    if isinstance(node, InList):
        item = _value(node.item, catalogue, record)
        if item is None:
            return None
        found = any(item == v.value for v in node.values)
        return (not found) if node.negated else found
    if isinstance(node, Condition):
        test = _value(node.test, catalogue, record)
        return _value(node.then if test is True else node.otherwise, catalogue, record)
    if isinstance(node, Call):
        return _call_value(node, catalogue, record)
    raise RuleError(f"Not a rule: {type(node).__name__}.")


def _binary(op, left, right):
    if op == "+":
        return left + right
    if op == "-":
        return left - right
    if op == "*":
        return left * right
    if op == "/":
        if right == 0:
            return None
        return (left / right).quantize(Decimal(1).scaleb(-QUOTIENT_PLACES), rounding=ROUND_HALF_UP)
    return {"==": left == right, "!=": left != right, "<": left < right, "<=": left <= right,
            ">": left > right, ">=": left >= right}[op]


def _call_value(node, catalogue, record):
    args = [_value(arg, catalogue, record) for arg in node.args]
    name = node.function
    if name == "today":
        return catalogue.today
    if any(arg is None for arg in args):
        return None
    if name == "min":
        return min(args)
    if name == "max":
        return max(args)
    if name == "abs":
        return abs(args[0])
    if name == "round":
        places = int(node.args[1].value) if len(node.args) == 2 else 0
        return args[0].quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    if name == "years_since":
        return Decimal(years_between(args[0], catalogue.today))
    if name == "lower":
        return lower_text(args[0])
    if name == "starts_with":
        return args[0].startswith(args[1])
    if name == "contains":
        return args[1] in args[0]
    raise RuleError(f"'{name}' is not a rules function.", node.position)
