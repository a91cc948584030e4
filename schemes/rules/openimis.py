"""openIMIS filter strings (`<field>__<lookup>__<type>=<value>`, e.g. `number_of_children__gte__integer=3`,
`educated_level__iexact__string="primary"`, `groupId__exact__string=abc`) read into the rules AST, so
that plans migrated from openIMIS keep their criteria. Several strings mean all of them (AND)."""

import datetime
import re
from decimal import Decimal, InvalidOperation

from .errors import RuleError
from .nodes import Binary, BoolOp, Call, FieldRef, Literal

LOOKUPS = {
    "string": {"exact", "iexact", "istartswith", "icontains"},  # openIMIS's builder writes exact too
    "integer": {"exact", "lt", "lte", "gt", "gte"},
    "decimal": {"exact", "lt", "lte", "gt", "gte"},
    "date": {"exact", "lt", "lte", "gt", "gte"},
    "boolean": {"exact"},
}
COMPARISONS = {"exact": "==", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}
# Field names as plan and registry fields are named: letters of either case (openIMIS's `groupId`).
FILTER = re.compile(r"^(?P<field>[A-Za-z][A-Za-z0-9_]*?)__(?P<lookup>[a-z]+)__(?P<type>[a-z]+)=(?P<value>.*)$", re.S)


def from_openimis(filters):
    """One AST for a list of openIMIS filter strings (or a single string)."""
    if isinstance(filters, str):
        filters = [filters]
    nodes = [_one(text, number) for number, text in enumerate(filters, start=1)]
    if not nodes:
        raise RuleError("No filter given.")
    return nodes[0] if len(nodes) == 1 else BoolOp(op="and", values=tuple(nodes))


def _one(text, number):
    match = FILTER.match((text or "").strip())
    if not match:
        raise RuleError(f"Filter {number} is not of the form <field>__<lookup>__<type>=<value>: {text!r}.")
    field, lookup, kind, raw = match.group("field", "lookup", "type", "value")
    if kind not in LOOKUPS:
        raise RuleError(f"Filter {number}: the type '{kind}' is not one of {', '.join(LOOKUPS)}.")
    if lookup not in LOOKUPS[kind]:
        raise RuleError(f"Filter {number}: '{lookup}' does not apply to {kind} (use {', '.join(sorted(LOOKUPS[kind]))}).")
    value = _value(kind, raw.strip(), number)
    target = FieldRef(name=field)
    if kind == "string" and lookup != "exact":
        lowered = Call(function="lower", args=(target,))
        wanted = Literal(value=value.lower())
        if lookup == "iexact":
            return Binary(op="==", left=lowered, right=wanted)
        return Call(function="starts_with" if lookup == "istartswith" else "contains", args=(lowered, wanted))
    return Binary(op=COMPARISONS[lookup], left=target, right=Literal(value=value))


def _value(kind, raw, number):
    if kind == "string":
        if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
            return raw[1:-1]
        return raw
    if kind in ("integer", "decimal"):
        try:
            value = Decimal(raw)
        except InvalidOperation:
            raise RuleError(f"Filter {number}: '{raw}' is not a number.") from None
        if not value.is_finite() or (kind == "integer" and value != value.to_integral()):
            raise RuleError(f"Filter {number}: '{raw}' is not {'a whole' if kind == 'integer' else 'a'} number.")
        return value
    if kind == "date":
        try:
            return datetime.date.fromisoformat(raw.strip("\"'"))
        except ValueError:
            raise RuleError(f"Filter {number}: '{raw}' is not a date in the form YYYY-MM-DD.") from None
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise RuleError(f"Filter {number}: '{raw}' is not true or false.")
