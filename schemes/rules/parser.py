"""Text -> rules AST. Python's own parser reads the text; only an allowlist of its nodes is accepted,
so attribute access, subscripts, lambdas, comprehensions, `**`, imports and calls other than the
rules functions never get through. Sizes are bounded before and after parsing. Text written as openIMIS
filter strings (openimis.py: only by their exact shape) is read as the rule they mean."""

import ast
import datetime
import re
from decimal import Decimal, InvalidOperation

from .errors import RuleError
from .nodes import FUNCTIONS, BoolOp, Call, Condition, FieldRef, InList, Literal, Unary
from .nodes import Binary as BinaryNode
from .openimis import read_openimis

MAX_TEXT = 2000
MAX_NODES = 300
MAX_DEPTH = 24
MAX_DIGITS = 18
MAX_STRING = 200
MAX_LIST = 100

ARITHMETIC = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
COMPARISON = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
KEYWORDS = {"true": True, "false": False, "null": None, "none": None}
# date("2024-02-29") is how a date value is written: read here into a Literal, it is not a function.
DATE_LITERAL = "date"
ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def parse(text):
    """Parse one expression; raise RuleError naming the position of the first problem."""
    if not isinstance(text, str) or not text.strip():
        raise RuleError("The expression is empty.")
    if len(text) > MAX_TEXT:
        raise RuleError(f"The expression is longer than {MAX_TEXT} characters.")
    for line_number, line in enumerate(text.split("\n"), start=1):
        for column, ch in enumerate(line):
            if ord(ch) < 32 and ch not in "\t\r":
                raise RuleError("The expression holds a control character.", (line_number, column))
    openimis = read_openimis(text)
    if openimis is not None:
        return validate_limits(openimis)
    body = text.lstrip()
    lead = text[:len(text) - len(body)]
    try:
        tree = ast.parse(body, mode="eval")
    except SyntaxError as exc:
        line, column = exc.lineno or 1, max((exc.offset or 1) - 1, 0)
        raise RuleError(f"Not a valid expression: {exc.msg}.", _shift(lead, line, column)) from None
    except (RecursionError, MemoryError, ValueError):
        raise RuleError("The expression is too deeply nested or too large.") from None
    count = sum(1 for _ in ast.walk(tree))
    if count > MAX_NODES:
        raise RuleError(f"The expression has {count} parts; at most {MAX_NODES} are allowed.")
    return _Converter(body, lead).convert(tree.body, depth=0)


def _shift(lead, line, column):
    """A position in the stripped text, as a position in the text as written."""
    first_line_indent = len(lead) - (lead.rfind("\n") + 1)
    return line + lead.count("\n"), column + (first_line_indent if line == 1 else 0)


def validate_limits(node):
    """The parser's limits, for an AST that did not come from text (the filter builder's JSON):
    known node kinds, size, depth, number digits, text length, list sizes and value types."""
    count = 0

    def visit(item, depth):
        nonlocal count
        count += 1
        if count > MAX_NODES:
            raise RuleError(f"The rule has more than {MAX_NODES} parts.")
        if depth > MAX_DEPTH * 4:
            raise RuleError("The rule is nested too deeply.")
        if isinstance(item, Literal):
            _check_literal(item)
            return
        children = {
            FieldRef: (), Unary: ("operand",), BinaryNode: ("left", "right"), BoolOp: ("values",),
            InList: ("item", "values"), Condition: ("test", "then", "otherwise"), Call: ("args",),
        }.get(type(item))
        if children is None:
            raise RuleError(f"Not a rule node: {type(item).__name__}.")
        if isinstance(item, FieldRef) and not (isinstance(item.name, str) and item.name.isidentifier()
                                               and not item.name.startswith("_")):
            raise RuleError(f"Unknown field {item.name!r}: not a field name.")
        if isinstance(item, InList) and len(item.values) > MAX_LIST:
            raise RuleError(f"A list holds at most {MAX_LIST} values.")
        for name in children:
            value = getattr(item, name)
            for child in (value if isinstance(value, tuple) else (value,)):
                visit(child, depth + 1)

    visit(node, 0)
    return node


def _check_literal(literal):
    value = literal.value
    if value is None or isinstance(value, (bool, datetime.date)):
        return
    if isinstance(value, str):
        if len(value) > MAX_STRING:
            raise RuleError(f"Text longer than {MAX_STRING} characters.", literal.position)
        if any(ord(ch) < 32 and ch not in "\t\n\r" for ch in value):
            raise RuleError("Text holds a control character.", literal.position)
        return
    if isinstance(value, Decimal):
        if not value.is_finite() or len(value.as_tuple().digits) > MAX_DIGITS:
            raise RuleError(f"Numbers are finite, with at most {MAX_DIGITS} digits.", literal.position)
        return
    raise RuleError(f"A {type(value).__name__} is not a value of the rules language.", literal.position)


class _Converter:
    def __init__(self, text, lead=""):
        self.text, self.lead = text, lead
        self.lines = text.split("\n")

    def convert(self, node, depth):
        if depth > MAX_DEPTH:
            raise RuleError(f"The expression is nested more than {MAX_DEPTH} levels deep.", self.pos(node))
        method = getattr(self, f"_{type(node).__name__}", None)
        if method is None:
            raise RuleError(f"{_describe(node)} is not allowed in a rule.", self.pos(node))
        return method(node, depth + 1)

    def pos(self, node):
        """(line, column in characters): Python reports columns in UTF-8 bytes."""
        line, offset = getattr(node, "lineno", 1), getattr(node, "col_offset", 0)
        text = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        return _shift(self.lead, line, len(text.encode()[:offset].decode(errors="ignore")))

    def _Constant(self, node, depth):
        value = node.value
        if value is None or isinstance(value, bool):
            return Literal(position=self.pos(node), value=value)
        if isinstance(value, str):
            _check_literal(Literal(position=self.pos(node), value=value))
            return Literal(position=self.pos(node), value=value)
        if isinstance(value, (int, float)):
            return Literal(position=self.pos(node), value=self._number(node))
        raise RuleError(f"{type(value).__name__} values are not allowed.", self.pos(node))

    def _number(self, node):
        # The digits as written (never through a float): 0.1 stays exactly 0.1.
        source = ast.get_source_segment(self.text, node) or repr(node.value)
        source = source.replace("_", "")
        if any(ch in source for ch in "eEjJxXoObB"):
            raise RuleError(f"Write numbers with digits and a dot only, not '{source}'.", self.pos(node))
        try:
            number = Decimal(source)
        except InvalidOperation:
            raise RuleError(f"'{source}' is not a number.", self.pos(node)) from None
        if len(number.as_tuple().digits) > MAX_DIGITS:
            raise RuleError(f"Numbers have at most {MAX_DIGITS} digits.", self.pos(node))
        return number

    def _Name(self, node, depth):
        lowered = node.id.lower()
        if lowered in KEYWORDS:
            return Literal(position=self.pos(node), value=KEYWORDS[lowered])
        if node.id.startswith("_"):
            raise RuleError(f"Names cannot start with '_': '{node.id}'.", self.pos(node))
        return FieldRef(position=self.pos(node), name=node.id)

    def _UnaryOp(self, node, depth):
        operand = self.convert(node.operand, depth)
        if isinstance(node.op, ast.Not):
            return Unary(position=self.pos(node), op="not", operand=operand)
        if isinstance(node.op, ast.USub):
            if isinstance(operand, Literal) and hasattr(operand.value, "is_signed"):
                return Literal(position=self.pos(node), value=-operand.value)
            return Unary(position=self.pos(node), op="-", operand=operand)
        if isinstance(node.op, ast.UAdd):
            return operand
        raise RuleError(f"{_describe(node.op)} is not allowed in a rule.", self.pos(node))

    def _BinOp(self, node, depth):
        op = ARITHMETIC.get(type(node.op))
        if op is None:
            raise RuleError(f"{_describe(node.op)} is not allowed in a rule.", self.pos(node))
        # A long sum (a + b + c ...) is a chain, not nesting: a score formula has many terms.
        chained = isinstance(node.left, ast.BinOp)
        return BinaryNode(position=self.pos(node), op=op, left=self.convert(node.left, depth - 1 if chained else depth),
                          right=self.convert(node.right, depth))

    def _BoolOp(self, node, depth):
        op = "and" if isinstance(node.op, ast.And) else "or"
        return BoolOp(position=self.pos(node), op=op, values=tuple(self.convert(v, depth) for v in node.values))

    def _Compare(self, node, depth):
        # a < b < c means a < b and b < c, as in Python.
        parts, left = [], node.left
        for op, right in zip(node.ops, node.comparators, strict=True):
            parts.append(self._comparison(node, op, left, right, depth))
            left = right
        return parts[0] if len(parts) == 1 else BoolOp(position=self.pos(node), op="and", values=tuple(parts))

    def _comparison(self, node, op, left, right, depth):
        if isinstance(op, (ast.In, ast.NotIn)):
            if not isinstance(right, (ast.List, ast.Tuple)):
                raise RuleError("'in' takes a list written in brackets, like [1, 2, 3].", self.pos(right))
            if len(right.elts) > MAX_LIST:
                raise RuleError(f"A list holds at most {MAX_LIST} values.", self.pos(right))
            values = tuple(self.convert(v, depth) for v in right.elts)
            if not values or any(not isinstance(v, Literal) or v.value is None for v in values):
                raise RuleError("The list after 'in' holds plain values (numbers, text, yes/no), not null.",
                                self.pos(right))
            return InList(position=self.pos(node), item=self.convert(left, depth), values=values,
                          negated=isinstance(op, ast.NotIn))
        symbol = COMPARISON.get(type(op))
        if symbol is None:
            raise RuleError(f"{_describe(op)} is not allowed in a rule.", self.pos(node))
        return BinaryNode(position=self.pos(node), op=symbol, left=self.convert(left, depth),
                          right=self.convert(right, depth))

    def _IfExp(self, node, depth):
        return Condition(position=self.pos(node), test=self.convert(node.test, depth),
                         then=self.convert(node.body, depth), otherwise=self.convert(node.orelse, depth))

    def _Call(self, node, depth):
        if not isinstance(node.func, ast.Name):
            raise RuleError("Only a rules function can be called, by its name.", self.pos(node))
        if node.func.id == DATE_LITERAL:
            return self._date(node)
        if node.func.id not in FUNCTIONS:
            raise RuleError(f"'{node.func.id}' is not a rules function (use {', '.join(FUNCTIONS)}).",
                            self.pos(node))
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise RuleError(f"'{node.func.id}' takes plain arguments, without names or '*'.", self.pos(node))
        return Call(position=self.pos(node), function=node.func.id,
                    args=tuple(self.convert(a, depth) for a in node.args))

    def _date(self, node):
        argument = node.args[0] if len(node.args) == 1 and not node.keywords else None
        written = argument.value if isinstance(argument, ast.Constant) else None
        if not (isinstance(written, str) and ISO_DATE.fullmatch(written)):
            raise RuleError('A date is written date("YYYY-MM-DD"), for example date("2024-02-29").',
                            self.pos(node))
        try:
            value = datetime.date.fromisoformat(written)
        except ValueError:
            raise RuleError(f"{written} is not a day of the calendar.", self.pos(argument)) from None
        return Literal(position=self.pos(node), value=value)


def _describe(node):
    names = {
        "Attribute": "Attribute access (a.b)", "Subscript": "Indexing (a[b])", "Lambda": "lambda",
        "ListComp": "A comprehension", "SetComp": "A comprehension", "DictComp": "A comprehension",
        "GeneratorExp": "A comprehension", "Pow": "'**'", "FloorDiv": "'//'", "Mod": "'%'",
        "Is": "'is'", "IsNot": "'is not'", "Dict": "A dictionary", "Set": "A set", "JoinedStr": "An f-string",
        "NamedExpr": "':='", "Await": "await", "Yield": "yield", "Starred": "'*'", "BitAnd": "'&'",
        "BitOr": "'|'", "BitXor": "'^'", "LShift": "'<<'", "RShift": "'>>'", "Invert": "'~'",
        "MatMult": "'@'", "List": "A list outside 'in [...]'", "Tuple": "A tuple",
    }
    return names.get(type(node).__name__, f"'{type(node).__name__}'")
