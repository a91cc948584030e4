"""AST -> text: the canonical spelling of a rule, which `parse` reads back to an equal AST.

Parentheses appear only where Python's precedence (the parser's) needs them. Text is double-quoted
with backslash escapes for the quote, the backslash and every character that is not printable
(line breaks, tabs, invisible and direction-changing characters), so what people read is what the
rule compares. static/rules/rule_builder.js quotes the same way: change both together.

The parser folds a minus sign into a number (`-(5)` reads as the number -5), so an AST holding
Unary("-", number) comes back as that folded number: equal in value, never in another shape."""

import datetime
import keyword
import unicodedata
from decimal import Decimal

from .errors import RuleError
from .nodes import Binary, BoolOp, Call, Condition, FieldRef, InList, Literal, Unary, number_text
from .openimis import is_openimis
from .parser import DATE_LITERAL, KEYWORDS

# Python's precedence, loosest first; a child binding more loosely than its place allows is bracketed.
CONDITION, OR, AND, NOT, COMPARISON, SUM, PRODUCT, SIGN, ATOM = range(9)
BINARY_PRECEDENCE = {"+": SUM, "-": SUM, "*": PRODUCT, "/": PRODUCT,
                     "==": COMPARISON, "!=": COMPARISON, "<": COMPARISON, "<=": COMPARISON, ">": COMPARISON,
                     ">=": COMPARISON}
ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def to_text(node):
    """The rule as text. Raises RuleError for a part no text can express (a field name the parser
    would read as something else, a value of a foreign type)."""
    return _text(node, CONDITION)


def stored_text(typed, node):
    """The text to keep beside `node`, the rule parsed from `typed`: as typed, but openIMIS filter strings
    as the rule they mean, which people can read (and edit) in our language."""
    return to_text(node) if is_openimis(typed) else typed.strip()


def _text(node, place):
    """The node's text, bracketed when it binds more loosely than `place` requires."""
    written, precedence = _spell(node)
    return f"({written})" if precedence < place else written


def _spell(node):
    """(text, precedence) of one node."""
    if isinstance(node, Literal):
        return literal_text(node.value), SIGN if _is_negative_number(node.value) else ATOM
    if isinstance(node, FieldRef):
        return field_text(node.name), ATOM
    if isinstance(node, Call):
        return f"{node.function}({', '.join(_text(arg, CONDITION) for arg in node.args)})", ATOM
    if isinstance(node, Unary):
        if node.op == "not":
            return f"not {_text(node.operand, NOT)}", NOT
        return f"-{_text(node.operand, SIGN)}", SIGN
    if isinstance(node, Binary):
        precedence = BINARY_PRECEDENCE[node.op]
        if precedence == COMPARISON:
            # Comparisons do not associate: (a < b) < c is not the chain a < b < c.
            left, right = _text(node.left, SUM), _text(node.right, SUM)
        else:
            # Left-associative: a - (b - c) keeps its brackets, (a - b) - c needs none.
            left, right = _text(node.left, precedence), _text(node.right, precedence + 1)
        return f"{left} {node.op} {right}", precedence
    if isinstance(node, BoolOp):
        precedence = OR if node.op == "or" else AND
        # A nested `and` inside an `and` keeps its brackets: the parser would otherwise flatten it.
        return f" {node.op} ".join(_text(value, precedence + 1) for value in node.values), precedence
    if isinstance(node, InList):
        values = ", ".join(_text(value, CONDITION) for value in node.values)
        operator = "not in" if node.negated else "in"
        return f"{_text(node.item, SUM)} {operator} [{values}]", COMPARISON
    if isinstance(node, Condition):
        # The else branch may itself be a condition (a if b else c if d else e); the other two may not.
        return (f"{_text(node.then, OR)} if {_text(node.test, OR)} else {_text(node.otherwise, CONDITION)}",
                CONDITION)
    raise RuleError(f"Not a rule node: {type(node).__name__}.")


def literal_text(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return number_text(value)
    if isinstance(value, datetime.date):
        return f'{DATE_LITERAL}("{value.isoformat()}")'
    if isinstance(value, str):
        return '"' + "".join(_escape(ch) for ch in value) + '"'
    raise RuleError(f"A {type(value).__name__} is not a value of the rules language.")


def _escape(ch):
    if ch in ESCAPES:
        return ESCAPES[ch]
    if ch == " " or ch.isprintable():
        return ch
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def field_text(name):
    """A field's name as written; refused when the parser would read it as something else."""
    writable = (isinstance(name, str) and name.isidentifier() and not name.startswith("_")
                and not keyword.iskeyword(name) and name.lower() not in KEYWORDS
                and unicodedata.normalize("NFKC", name) == name)  # Python folds names to NFKC
    if not writable:
        raise RuleError(f"{name!r} cannot be written as a field name.")
    return name


def _is_negative_number(value):
    return isinstance(value, Decimal) and value.is_signed()
