"""openIMIS filter strings (`<field>__<lookup>__<type>=<value>`, e.g. `number_of_children__gte__integer=3`,
`educated_level__iexact__string="primary"`, `groupId__exact__string=abc`) read into the rules AST, so
that plans migrated from openIMIS keep their criteria. Several strings mean all of them (AND).

Typed as a rule's text (parser.parse reads them through `read_openimis`), they are one per line or a
list as openIMIS sends its `customFilters`: `["a__gte__integer=3", "b__iexact__string=\\"x\\""]`
(GraphQL strings, escaped as JSON's). Text is taken for openIMIS filters only by that exact shape: its
first filter has a single `=` after `<field>__<lookup>__<type>`, which no rule of our own language has."""

import datetime
import json
import re
from decimal import Decimal

from .errors import RuleError
from .nodes import Binary, BoolOp, Call, FieldRef, Literal

LOOKUPS = {
    "string": ("exact", "iexact", "istartswith", "icontains"),  # openIMIS's builder writes exact too
    "integer": ("exact", "lt", "lte", "gt", "gte"),
    "decimal": ("exact", "lt", "lte", "gt", "gte"),
    "date": ("exact", "lt", "lte", "gt", "gte"),
    "boolean": ("exact",),
}
ALL_LOOKUPS = {lookup for lookups in LOOKUPS.values() for lookup in lookups}
COMPARISONS = {"exact": "==", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}
FORM = "<field>__<lookup>__<type>=<value>"
# Field names as plan and registry fields are named: letters of either case (openIMIS's `groupId`).
# One `=`: `a__b__c == 3` is our own language comparing the field a__b__c.
FILTER = re.compile(r"(?P<field>[A-Za-z][A-Za-z0-9_]*?)__(?P<lookup>[a-z]+)__(?P<type>[a-z]+)=(?!=)(?P<value>.*)",
                    re.S)
# Digits and a dot, as the parser reads numbers: Decimal would also take 1e999999 (a million digits).
NUMBER = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")
ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
GRAPHQL_STRING = r'"(?:[^"\\\n]|\\.)*"'
GRAPHQL_LIST = re.compile(rf"\s*\[\s*{GRAPHQL_STRING}(?:\s*,\s*{GRAPHQL_STRING})*\s*,?\s*\]\s*")


def from_openimis(filters):
    """One AST for a list of openIMIS filter strings (or a single string)."""
    if isinstance(filters, str):
        filters = [filters]
    return _combine([_one(text, (1, 0)) for text in filters])


def read_openimis(text):
    """The AST of `text` when it is written as openIMIS filters (see the module's docstring), else
    None: the text is then a rule of our own language."""
    filters = _filters(text)
    return None if filters is None else _combine([_one(filter_text, position) for filter_text, position in filters])


def is_openimis(text):
    return _filters(text) is not None


def _filters(text):
    """[(filter, its (line, column) in text)] when text is written as openIMIS filters, else None."""
    if GRAPHQL_LIST.fullmatch(text):
        filters = []
        for match in re.finditer(GRAPHQL_STRING, text):
            try:
                filters.append((json.loads(match.group()), _position(text, match.start() + 1)))
            except ValueError:  # an escape JSON does not know (\x41): the list is not openIMIS's
                return None
        return filters if FILTER.match(filters[0][0]) else None
    filters, offset = [], 0
    for line in text.split("\n"):
        if line.strip():
            filters.append((line.strip(), _position(text, offset + len(line) - len(line.lstrip()))))
        offset += len(line) + 1
    return filters if filters and FILTER.match(filters[0][0]) else None


def _position(text, offset):
    line_start = text.rfind("\n", 0, offset) + 1
    return text.count("\n", 0, offset) + 1, offset - line_start


def _combine(nodes):
    if not nodes:
        raise RuleError("No filter given.")
    return nodes[0] if len(nodes) == 1 else BoolOp(position=nodes[0].position, op="and", values=tuple(nodes))


def _one(text, position):
    """One filter's AST, each node at the filter's `position` (where a type error points)."""
    text = (text or "").strip()
    match = FILTER.fullmatch(text)
    if not match:
        raise RuleError(f"{text!r} is not an openIMIS filter {FORM}.")
    field, lookup, kind, raw = match.group("field", "lookup", "type", "value")
    if kind not in LOOKUPS:
        raise RuleError(f"{text!r}: '{kind}' is not an openIMIS type; use {', '.join(LOOKUPS)}.")
    if lookup not in LOOKUPS[kind]:
        problem = f"does not apply to {kind}" if lookup in ALL_LOOKUPS else "is not an openIMIS lookup"
        raise RuleError(f"{text!r}: '{lookup}' {problem}; use {', '.join(LOOKUPS[kind])}.")
    value = _value(kind, raw.strip(), text)
    target = FieldRef(position=position, name=field)
    if kind == "string" and lookup != "exact":
        lowered = Call(position=position, function="lower", args=(target,))
        wanted = Literal(position=position, value=value.lower())
        if lookup == "iexact":
            return Binary(position=position, op="==", left=lowered, right=wanted)
        return Call(position=position, function="starts_with" if lookup == "istartswith" else "contains",
                    args=(lowered, wanted))
    return Binary(position=position, op=COMPARISONS[lookup], left=target, right=Literal(position=position, value=value))


def _value(kind, raw, text):
    if kind == "string":
        if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
            return raw[1:-1]
        return raw
    if kind in ("integer", "decimal"):
        if not NUMBER.fullmatch(raw):
            raise RuleError(f"{text!r}: '{raw}' is not a number.")
        value = Decimal(raw)
        if kind == "integer" and value != value.to_integral():
            raise RuleError(f"{text!r}: '{raw}' is not a whole number.")
        return value
    if kind == "date":
        written = raw.strip("\"'")
        if ISO_DATE.fullmatch(written):
            try:
                return datetime.date.fromisoformat(written)
            except ValueError:  # 2024-02-30
                pass
        raise RuleError(f"{text!r}: '{raw}' is not a date in the form YYYY-MM-DD.")
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise RuleError(f"{text!r}: '{raw}' is not true or false.")
