"""The rules AST: small immutable nodes, JSON round-trippable (the filter builder stores them), each
with the position of its source text for error messages."""

import re
from dataclasses import dataclass, field
from decimal import Decimal

OPERATORS = {
    "arithmetic": ("+", "-", "*", "/"),
    "comparison": ("==", "!=", "<", "<=", ">", ">="),
    "boolean": ("and", "or"),
}
FUNCTIONS = ("min", "max", "round", "abs", "years_since", "today", "lower", "starts_with", "contains")


@dataclass(frozen=True)
class Node:
    position: tuple = field(default=(1, 0), compare=False)  # (line, column), 1-based line


@dataclass(frozen=True)
class Literal(Node):
    value: object = None  # Decimal, str, bool, datetime.date or None


@dataclass(frozen=True)
class FieldRef(Node):
    name: str = ""


@dataclass(frozen=True)
class Unary(Node):
    op: str = ""  # "not", "-"
    operand: Node = None


@dataclass(frozen=True)
class Binary(Node):
    op: str = ""  # arithmetic or comparison
    left: Node = None
    right: Node = None


@dataclass(frozen=True)
class BoolOp(Node):
    op: str = ""  # "and", "or"
    values: tuple = ()


@dataclass(frozen=True)
class InList(Node):
    item: Node = None
    values: tuple = ()  # Literal nodes, never NULL
    negated: bool = False


@dataclass(frozen=True)
class Condition(Node):
    test: Node = None
    then: Node = None
    otherwise: Node = None


@dataclass(frozen=True)
class Call(Node):
    function: str = ""
    args: tuple = ()


def number_text(value):
    """A Decimal in digits and a dot, never an exponent (str(Decimal("0.0000001")) is "1E-7", which
    neither the parser nor `from_json` reads): the digits as written, trailing zeros kept."""
    return format(value, "f")


def to_json(node):
    """The AST as plain JSON (decimals and dates as tagged strings)."""
    import datetime

    if isinstance(node, Literal):
        value = node.value
        if isinstance(value, Decimal):
            return {"literal": number_text(value), "type": "number"}
        if isinstance(value, datetime.date):
            return {"literal": value.isoformat(), "type": "date"}
        return {"literal": value}
    if isinstance(node, FieldRef):
        return {"field": node.name}
    if isinstance(node, Unary):
        return {"unary": node.op, "operand": to_json(node.operand)}
    if isinstance(node, Binary):
        return {"binary": node.op, "left": to_json(node.left), "right": to_json(node.right)}
    if isinstance(node, BoolOp):
        return {"bool": node.op, "values": [to_json(v) for v in node.values]}
    if isinstance(node, InList):
        return {"in": to_json(node.item), "values": [to_json(v) for v in node.values], "negated": node.negated}
    if isinstance(node, Condition):
        return {"if": to_json(node.test), "then": to_json(node.then), "else": to_json(node.otherwise)}
    if isinstance(node, Call):
        return {"call": node.function, "args": [to_json(a) for a in node.args]}
    raise TypeError(f"Not a rules node: {node!r}")


def from_json(data):
    """Rebuild an AST from its JSON (the filter builder's form of a rule). Any malformed part is a
    RuleError; the result still goes through the parser's limits and `check` before use."""
    from .errors import RuleError

    try:
        return _from_json(data, depth=0)
    except RuleError:
        raise
    except (KeyError, TypeError, ValueError, ArithmeticError, RecursionError) as exc:
        raise RuleError(f"The rule's JSON is malformed ({type(exc).__name__}).") from None


def _from_json(data, depth):
    import datetime

    from .errors import RuleError

    if depth > 200:
        raise RuleError("The rule is nested too deeply.")

    def from_json(item):  # the same walk, one level down
        return _from_json(item, depth + 1)

    if not isinstance(data, dict):
        raise RuleError("A rule must be a JSON object.")
    if "literal" in data:
        value, kind = data["literal"], data.get("type")
        if kind == "number" or (isinstance(value, (int, float)) and not isinstance(value, bool)):
            # Digits and a dot, as in the text form: no exponents, NaN or infinities.
            if not re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", str(value)):
                raise RuleError(f"'{value}' is not a number written with digits and a dot.")
            return Literal(value=Decimal(str(value)))
        if kind == "date":
            return Literal(value=datetime.date.fromisoformat(value))
        if value is not None and not isinstance(value, (str, bool)):
            raise RuleError(f"A {type(value).__name__} is not a value of the rules language.")
        return Literal(value=value)
    if "field" in data:
        if not isinstance(data["field"], str):
            raise RuleError("A field is named by text.")
        return FieldRef(name=data["field"])
    if "unary" in data:
        return Unary(op=data["unary"], operand=from_json(data["operand"]))
    if "binary" in data:
        return Binary(op=data["binary"], left=from_json(data["left"]), right=from_json(data["right"]))
    if "bool" in data:
        return BoolOp(op=data["bool"], values=tuple(from_json(v) for v in data["values"]))
    if "in" in data:
        return InList(item=from_json(data["in"]), values=tuple(from_json(v) for v in data["values"]),
                      negated=bool(data.get("negated")))
    if "if" in data:
        return Condition(test=from_json(data["if"]), then=from_json(data["then"]),
                         otherwise=from_json(data["else"]))
    if "call" in data:
        return Call(function=data["call"], args=tuple(from_json(a) for a in data["args"]))
    raise RuleError(f"Unknown rule node: {sorted(data)}.")
