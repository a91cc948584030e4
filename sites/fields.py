"""Typed field definitions written by administrators, and the one engine that validates and renders them.

Registry attributes use it now; plan schemas build on the same abstract model and engine. Values live in
one JSON `attributes` column: text, integer and boolean as JSON natives, decimals as strings (exact),
dates as ISO strings; the rules compiler casts by the declared type.
"""

import copy
import datetime
import keyword
import re
import unicodedata
from decimal import Decimal, InvalidOperation
from re import _constants as re_constants
from re import _parser as re_parser  # reads a pattern exactly as re compiles it
from typing import NamedTuple

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, RegexValidator
from django.db import models
from django.db.models import Case, Count, DecimalField, Func, Min, Q, When
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Cast, Length, Lower

# Letters of either case: openIMIS schemas name properties like `groupId`. No double underscore: the
# ORM and openIMIS filter strings (`groupId__exact__string=...`) read it as a separator.
IDENTIFIER = RegexValidator(
    r"^[A-Za-z](?:[A-Za-z0-9]|_(?!_)){0,62}$",
    "Use letters, digits and single underscores, starting with a letter.",
)
MAX_DIGITS = 18  # as NUMERIC(18, n): more would not survive the database or the rules compiler
MAX_PLACES = 10  # the rules compiler reads a decimal attribute as NUMERIC(38, 10): more decimals would be lost
DECIMAL_TEXT = re.compile(r"-?[0-9]+(\.[0-9]+)?")
DATE_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

REPEATS = (re_constants.MAX_REPEAT, re_constants.MIN_REPEAT, re_constants.POSSESSIVE_REPEAT)


def pattern_problem(pattern):
    """Why an administrator's regular expression (a field's format, the national ID format) cannot be
    used, or "". Python's engine backtracks: a repetition of something that itself varies in length or
    has alternatives, like ([0-9]+)+ or (a|ab)*, takes seconds on a 22-character value that does not
    match, doubling with each character, in every form and on every row of an import."""
    try:
        parsed = re_parser.parse(pattern)
    except re.error as exc:
        return f"Not a valid regular expression: {exc}."
    if _varies_inside_repetition(parsed, repeated=False):
        return ("A repetition of something that varies, like ([0-9]+)+ or (A|AB)*, can take minutes to check a "
                "single value: write each part once, like [0-9]+ or (A|AB).")
    return ""


def _varies_inside_repetition(items, repeated):
    for op, value in items:
        if op in REPEATS:
            low, high, inner = value
            varies = low != high
            if varies and repeated:
                return True
            # At most once ((...)?, {0,1}) is no repetition: what it holds may vary, as in -?\d+(\.\d+)?.
            if _varies_inside_repetition(inner, repeated or (varies and high > 1)):
                return True
        elif op is re_constants.BRANCH:
            if repeated or any(_varies_inside_repetition(branch, repeated) for branch in value[1]):
                return True
        elif op is re_constants.SUBPATTERN:
            if _varies_inside_repetition(value[-1], repeated):
                return True
        elif op is re_constants.ATOMIC_GROUP:
            if _varies_inside_repetition(value, repeated):
                return True
        elif op in (re_constants.ASSERT, re_constants.ASSERT_NOT):
            if _varies_inside_repetition(value[1], repeated):
                return True
        elif op is re_constants.GROUPREF_EXISTS:
            if any(branch is not None and _varies_inside_repetition(branch, repeated) for branch in value[1:]):
                return True
    return False


def without_anchors(pattern):
    """`pattern` without a leading ^ and a trailing $ (not an escaped one, a literal dollar): a field's
    value must match its pattern whole (re.fullmatch), so they add nothing; JSON Schema patterns
    carry them."""
    pattern = pattern.removeprefix("^")
    if not pattern.endswith("$"):
        return pattern
    body = pattern[:-1]
    escaping = len(body) - len(body.rstrip("\\"))  # backslashes just before the $
    return body if escaping % 2 == 0 else pattern


# Built-in fields of the registry's people and households (and of every record): rules, files and
# filters read these names as them.
BUILT_IN_FIELDS = {"id", "pk", "first_name", "last_name", "dob", "sex", "national_id", "phone", "location",
                   "household", "age", "code", "attributes", "status"}
RULE_VALUES = {"true", "false", "none", "null"}
# Python's parser reads the rules: it never takes one of its keywords (`from`, `is`...) for a name.
RULE_KEYWORDS = {word.lower() for word in keyword.kwlist}
RESERVED_NAMES = BUILT_IN_FIELDS | RULE_VALUES | RULE_KEYWORDS


def reserved_reason(name):
    """Why the reserved `name` cannot name a field, and what to do instead."""
    if name in BUILT_IN_FIELDS:
        why = ("it is a built-in field of the registry (every person or household has one), which rules and files "
               "read by that name")
    elif name in RULE_VALUES:
        why = "the rules read it as a value, not as a field"
    else:
        why = "it is a word of the rules language, which could not read it as a field"
    return f"{why}. Give this field another name, such as '{name}_2'."


def name_key(name):
    """A field name as files match it to a column header (schemes.bulk.files.header_key, for an
    identifier): ignoring case and underscores, so `groupId`, `group_id` and `GROUPID` are one column."""
    return name.replace("_", "").casefold()


RESERVED_BY_KEY = {name_key(name): name for name in RESERVED_NAMES}


class FieldType(models.TextChoices):
    TEXT = "text", "Text"
    INTEGER = "integer", "Whole number"
    DECIMAL = "decimal", "Decimal number"
    DATE = "date", "Date"
    BOOLEAN = "boolean", "Yes / no"
    CHOICE = "choice", "Choice"


# Patterns whose meaning is known (openIMIS's named validations: schemes.plans.schema), said in words
# where a field has no description of its own.
PATTERN_TEXTS = {
    r"[^@\s]+@[^@\s]+\.[^@\s]+": "an e-mail address, e.g. name@example.org",
    r"\+\d{2,3}\d+": "a phone number in international form, + then the country code and number, e.g. +255712345678",
    r"-?\d+(\.\d+)?": "a number, e.g. 12 or 12.5",
}


class FieldDefinition(models.Model):
    name = models.CharField(max_length=63, validators=[IDENTIFIER],
                            help_text="Machine name used in files, rules and the API.")
    label = models.CharField(max_length=120)
    field_type = models.CharField(max_length=16, choices=FieldType.choices, default=FieldType.TEXT)
    required = models.BooleanField(default=False)
    min_value = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True,
                                    help_text="Numbers: smallest allowed value. Text: shortest length.")
    max_value = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True,
                                    help_text="Numbers: largest allowed value. Text: longest length.")
    decimal_places = models.PositiveSmallIntegerField(
        null=True, blank=True,
        validators=[MaxValueValidator(MAX_PLACES, f"At most {MAX_PLACES}: the rules read numbers to {MAX_PLACES} "
                                                  "decimals.")],
        help_text="Decimal numbers: the most digits allowed after the point (for amounts: 2; 0 for whole amounts). "
                  "Empty: any.")
    pattern = models.CharField(max_length=200, blank=True,
                               help_text="Text: a regular expression the whole value must match.")
    choices = models.JSONField(default=list, blank=True,
                               help_text="Choice: the allowed values, as a list.")
    sensitive = models.BooleanField(default=False,
                                    help_text="Masked for users who may not see sensitive data.")
    help_text = models.CharField(max_length=255, blank=True)
    sort_order = models.PositiveIntegerField(default=0)

    class Meta:
        abstract = True
        ordering = ["sort_order", "name"]

    def __str__(self):
        return self.label or self.name

    def clean(self):
        errors = {}
        reserved = RESERVED_BY_KEY.get(name_key(self.name or ""))
        if reserved == self.name:
            errors["name"] = f"'{self.name}' is reserved: {reserved_reason(reserved)}"
        elif reserved:
            errors["name"] = (f"'{self.name}' is reserved: it reads as '{reserved}' (names are matched ignoring "
                              f"case and underscores), and {reserved_reason(reserved)}")
        if self.pattern and (problem := pattern_problem(self.pattern)):
            errors["pattern"] = problem
        if self.field_type == FieldType.CHOICE:
            if not isinstance(self.choices, list) or not self.choices or not all(
                isinstance(c, str) and c.strip() for c in self.choices
            ):
                errors["choices"] = "A choice field needs a list of non-empty text values."
        if self.min_value is not None and self.max_value is not None and self.min_value > self.max_value:
            errors["max_value"] = "The maximum is smaller than the minimum."
        if self.decimal_places is not None and self.field_type != FieldType.DECIMAL:
            errors["decimal_places"] = "Only decimal numbers have decimals: leave this empty for this type."
        elif self.decimal_places is not None:
            for bound in ("min_value", "max_value"):
                value = getattr(self, bound)
                if isinstance(value, (int, Decimal)) and decimals_of(value) > self.decimal_places:
                    errors.setdefault(bound, f"The field takes {places_text(self.decimal_places)}: "
                                             f"{format(Decimal(value).normalize(), 'f')} has {decimals_of(value)}.")
        if errors:
            raise ValidationError(errors)

    def validate_unique(self, exclude=None):
        """Django's checks, and no other definition of the same plan (or registry target) whose name
        differs only in case or underscores: files could not tell their columns apart. The exact name
        is the unique constraint's to refuse."""
        super().validate_unique(exclude=exclude)
        scope = self._name_scope()
        if not self.name or {"name", *scope} & set(exclude or ()):
            return
        within = {field: getattr(self, self._meta.get_field(field).attname) for field in scope}
        if None in within.values():
            return
        others = type(self)._default_manager.filter(**within).exclude(pk=self.pk).exclude(name=self.name)
        clash = next((other for other in others.values_list("name", flat=True)
                      if name_key(other) == name_key(self.name)), None)
        if clash:
            raise ValidationError({"name": f"'{clash}' is already a field here: files could not tell '{self.name}' "
                                           "from it (names are matched ignoring case and underscores)."})

    def _name_scope(self):
        """The fields within which names are unique: the others of the model's unique constraint on
        `name` (a plan field's plan, a registry field's target)."""
        for constraint in self._meta.constraints:
            if isinstance(constraint, models.UniqueConstraint) and "name" in constraint.fields:
                return [field for field in constraint.fields if field != "name"]
        return []

    # --- the engine: one value -------------------------------------------------------------
    def to_python(self, raw):
        """Parse user or file input into the typed value; raise ValidationError with a clear message."""
        if raw is None or (isinstance(raw, str) and raw.strip() == ""):
            if self.required:
                raise ValidationError("This field is required.")
            return None
        kind = self.field_type
        if kind == FieldType.TEXT:
            value = str(raw).strip()
            if self.min_value is not None and len(value) < self.min_value:
                raise ValidationError(f"At least {int(self.min_value)} characters.")
            if self.max_value is not None and len(value) > self.max_value:
                raise ValidationError(f"At most {int(self.max_value)} characters.")
            if self.pattern and not re.fullmatch(self.pattern, value):
                raise ValidationError(f"'{value}' does not match the expected format: {self.format_text()}.")
            return value
        if kind == FieldType.CHOICE:
            value = str(raw).strip()
            if value not in self.choices:
                raise ValidationError(f"'{value}' is not one of: {', '.join(self.choices)}.")
            return value
        if kind == FieldType.BOOLEAN:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in {"true", "yes", "1", "y"}:
                return True
            if text in {"false", "no", "0", "n"}:
                return False
            raise ValidationError(f"'{raw}' is not yes or no.")
        if kind == FieldType.DATE:
            return self._check_range(_parse_date(raw))
        if kind == FieldType.INTEGER:
            number = _parse_decimal(raw, example="12")
            if number != number.to_integral_value():
                raise ValidationError(f"'{raw}' is not a whole number.")
            return int(self._check_range(number))
        number = _parse_decimal(raw)
        # By value: with 2 places, 12.500 is 12.5 and accepted (to_json stores it as "12.5").
        if self.decimal_places is not None and decimals_of(number) > self.decimal_places:
            raise ValidationError(f"{places_text(self.decimal_places).capitalize()} ('{raw}' has "
                                  f"{decimals_of(number)}).")
        return self._check_range(number)

    def format_text(self):
        """The format a text value must have, as the person typing it reads it: the field's own
        description (its help text) where it has one, else what a known pattern means, else the pattern."""
        if self.help_text:
            return self.help_text.rstrip(". ")
        pattern = without_anchors(self.pattern)
        return PATTERN_TEXTS.get(pattern) or f"the pattern {pattern}"

    def _check_range(self, value):
        if isinstance(value, datetime.date):
            return value
        if self.min_value is not None and value < self.min_value:
            raise ValidationError(f"Must be at least {self.min_value.normalize():f}.")
        if self.max_value is not None and value > self.max_value:
            raise ValidationError(f"Must be at most {self.max_value.normalize():f}.")
        return value

    def to_json(self, value):
        if value is None:
            return None
        if isinstance(value, Decimal):
            # One canonical text per number ("12.50" and "12.5" are equal in filters).
            return format(value.quantize(1) if value == value.to_integral() else value.normalize(), "f")
        if isinstance(value, datetime.date):
            return value.isoformat()
        return value

    def from_json(self, value):
        if value is None:
            return None
        if self.field_type == FieldType.DECIMAL:
            return Decimal(str(value))
        if self.field_type == FieldType.DATE:
            return datetime.date.fromisoformat(value)
        return value

    def display_text(self, value):
        """A stored value as people read it: a decimal to its field's places (1200.5 with 2 places is
        1200.50), yes/no in words, anything else as stored. A value with more decimals than the field
        now takes (stored before they were lowered) is shown as stored, not rounded."""
        if isinstance(value, bool):
            return "Yes" if value else "No"
        if value is None or self.field_type != FieldType.DECIMAL or self.decimal_places is None:
            return value
        try:
            number = Decimal(str(value))
            if decimals_of(number) > self.decimal_places:
                return value
            return format(number.quantize(Decimal(1).scaleb(-self.decimal_places)), "f")
        except (InvalidOperation, ValueError):
            return value

    def form_initial(self, value):
        """A stored JSON value as the form field expects it (yes/no is a choice of "true"/"false")."""
        if value is None:
            return None
        if self.field_type == FieldType.BOOLEAN:
            return "true" if value else "false"
        return self.from_json(value)

    def form_field(self):
        common = {"label": self.label, "required": self.required, "help_text": self.help_text}
        kind = self.field_type
        if kind == FieldType.BOOLEAN:
            # A choice, not a checkbox: a required yes/no question must accept "No".
            return forms.TypedChoiceField(choices=[("", "---------"), ("true", "Yes"), ("false", "No")],
                                          coerce=lambda v: v == "true", empty_value=None, **common)
        if kind == FieldType.CHOICE:
            return forms.ChoiceField(choices=[("", "---------")] + [(c, c) for c in self.choices], **common)
        if kind == FieldType.DATE:
            return forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), **common)
        if kind == FieldType.INTEGER:
            return forms.IntegerField(**common)
        if kind == FieldType.DECIMAL:
            # Any step: to_python checks the places (by value, which Django's decimal_places would not: it
            # refuses 12.500 with 2 places), and a browser step would refuse to send a value stored before
            # the places were lowered, blocking every other change to the record.
            return forms.DecimalField(widget=forms.NumberInput(attrs={"step": "any"}), **common)
        return forms.CharField(**common)


def _parse_decimal(raw, example="1234.50"):
    if isinstance(raw, bool):
        raise ValidationError(f"'{raw}' is not a number.")
    if isinstance(raw, (int, Decimal)):
        number = Decimal(raw)
    else:
        text = ascii_digits(str(raw).strip())
        if not DECIMAL_TEXT.fullmatch(text):
            how = "digits and a dot" if "." in example else "digits only"
            raise ValidationError(f"'{raw}' is not a number (use {how}, like {example}).")
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise ValidationError(f"'{raw}' is not a number.") from None
    if not number.is_finite():
        raise ValidationError(f"'{raw}' is not a number.")
    if len(number.as_tuple().digits) > MAX_DIGITS:
        raise ValidationError(f"'{raw}' has more than {MAX_DIGITS} digits.")
    return number


def decimals_of(number):
    """How many decimals `number` has by value: 12.500 has 1, as 12.5 (trailing zeros change nothing)."""
    return max(0, -Decimal(number).normalize().as_tuple().exponent)


def places_text(places):
    """"at most 2 decimals", as a message says what a field takes."""
    if places == 0:
        return "no decimals"
    return f"at most {places} decimal{'s' if places > 1 else ''}"


def ascii_digits(text):
    """Arabic-Indic, Persian and other Unicode decimal digits become 0-9; anything else is kept."""
    if text.isascii():  # nearly always: imports call this millions of times
        return text
    return "".join(str(unicodedata.decimal(ch)) if ch.isdecimal() and not ch.isascii() else ch for ch in text)


def _parse_date(raw):
    if isinstance(raw, datetime.datetime):
        return raw.date()
    if isinstance(raw, datetime.date):
        return raw
    text = ascii_digits(str(raw).strip())
    if not DATE_TEXT.fullmatch(text):
        raise ValidationError(f"'{raw}' is not a date in the form YYYY-MM-DD.")
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise ValidationError(f"'{raw}' is not a real date.") from None


def _same_value(raw, stored):
    """Whether a form's or file's `raw` value is the `stored` JSON value (numbers by value: 1200.50 is
    the stored "1200.5")."""
    if raw is None or raw == "":
        return False
    try:
        return Decimal(str(raw).strip()) == Decimal(str(stored))
    except (InvalidOperation, ValueError):
        return str(raw).strip() == str(stored)


class AttributeSchema:
    """A set of field definitions applied to one `attributes` dict."""

    def __init__(self, definitions):
        self.definitions = list(definitions)
        self.by_name = {d.name: d for d in self.definitions}

    def clean(self, data, *, prefix="", stored=None):
        """Validate a dict of raw values; return the JSON-ready dict or raise errors keyed by field.
        A key no longer defined (its definition was deleted or renamed) is carried through unchanged
        when it is the value already `stored` on the record: it cannot be fixed, so it must not block.
        So is a value the record holds, sent back as it is, that its field's definition refuses since it
        changed (fewer decimals, a choice removed): it must not block a change to something else."""
        data = data or {}
        stored = stored or {}
        errors, cleaned = {}, {}
        for unknown in sorted(set(data) - set(self.by_name)):
            if unknown in stored and stored[unknown] == data[unknown]:
                cleaned[unknown] = stored[unknown]
            else:
                errors[f"{prefix}{unknown}"] = [f"'{unknown}' is not a defined attribute."]
        for definition in self.definitions:
            raw = data.get(definition.name)
            try:
                value = definition.to_python(raw)
            except ValidationError as exc:
                if definition.name in stored and _same_value(raw, stored[definition.name]):
                    cleaned[definition.name] = stored[definition.name]
                else:
                    errors[f"{prefix}{definition.name}"] = exc.messages
                continue
            if value is not None:
                cleaned[definition.name] = definition.to_json(value)
        if errors:
            raise ValidationError(errors)
        return cleaned

    def display(self, attributes, *, show_sensitive):
        """(label, value) pairs for record pages, masking sensitive values."""
        from .masking import mask

        rows = []
        for definition in self.definitions:
            value = (attributes or {}).get(definition.name)
            if value is not None and definition.sensitive and not show_sensitive:
                value = mask(str(value))
            else:
                value = definition.display_text(value)
            rows.append((definition.label, value))
        return rows


# --- what a changed definition refuses of the values already held ---------------------------------

# What of a field's definition decides which stored values it accepts.
VALUE_CHECKS = ("field_type", "choices", "pattern", "min_value", "max_value", "decimal_places")
NUMBER_SQL = r"^-?[0-9]+(\.[0-9]+)?$"  # DECIMAL_TEXT, as stored (no spaces, ASCII digits)
WHOLE_NUMBER_SQL = r"^-?[0-9]+(\.0+)?$"
YES_NO = ("true", "yes", "1", "y", "false", "no", "0", "n")


def _check_value(field, check):
    """A VALUE_CHECKS setting of `field`, comparable between two versions of it."""
    value = getattr(field, check)
    if check in ("min_value", "max_value") and value not in (None, ""):
        return Decimal(str(value))
    if check == "decimal_places":
        return value  # 0 (no decimals) is not None (any)
    return without_anchors(value) if check == "pattern" and value else value or None


def checks_changed(before, field):
    """The VALUE_CHECKS in which `field` differs from `before`, the same field as stored."""
    return [check for check in VALUE_CHECKS if _check_value(before, check) != _check_value(field, check)]


def checks_text(before, field, changed):
    """"a choice removed: Widowed; now a whole number", as the checker reads what changed."""
    parts = []
    if "field_type" in changed:
        parts.append(f"now {field.get_field_type_display().lower()}")
    if "choices" in changed and field.field_type == "choice":
        removed = [choice for choice in before.choices or [] if choice not in field.choices]
        if removed:
            parts.append(f"choices removed: {', '.join(removed)}")
    if "pattern" in changed:
        parts.append(f"new format {field.pattern}" if field.pattern else "no format")
    if {"min_value", "max_value"} & set(changed):
        parts.append("new bounds")
    if "decimal_places" in changed:
        parts.append("any decimals" if field.decimal_places is None else places_text(field.decimal_places))
    return "; ".join(parts) or "changed checks"


class Refused(NamedTuple):
    count: int
    value: object = None  # one of the values refused, and why
    reason: str = ""


class _AsNumber(Func):
    template = "CAST(%(expressions)s AS NUMERIC)"  # unbounded: exact on PostgreSQL (SQLite: a float)
    output_field = DecimalField()


def values_refused(records, field):
    """How many of `records` hold a value of `field` (in their `attributes`) that its definition
    refuses, with one such value and why: a count in one statement, at any size, where SQL can say
    what to_python refuses (_refused_sql). A format (Python's regular expressions) and a date are
    checked by to_python itself: the values held are grouped, each distinct one checked once. Values
    are read as text, as the rules compiler casts them by the declared type."""
    check = copy.copy(field)
    check.required = False
    # Plain text (SQLite reads a JSON number as a number); a JSON null is no value (None).
    text = Cast(KeyTextTransform(field.name, "attributes"), models.TextField())
    held = (records.filter(attributes__has_key=field.name).order_by()
            .alias(json_value=KeyTransform(field.name, "attributes")).exclude(json_value=None).alias(value=text))
    refused = _refused_sql(field)
    if refused is not None:
        found = held.alias(
            length=Length("value"), lowered=Lower("value"),
            number=Case(When(value__regex=NUMBER_SQL, then=_AsNumber("value")))
        ).filter(refused).aggregate(count=Count("pk"), value=Min(text))
        return Refused(found["count"], found["value"], _reason(check, found["value"]))
    count, value, reason = 0, None, ""
    for row in held.values(held_value=text).annotate(n=Count("pk")).iterator():
        if why := _reason(check, row["held_value"]):
            count += row["n"]
            value, reason = (value, reason) if reason else (row["held_value"], why)
    return Refused(count, value, reason)


def _reason(check, value):
    """Why the definition `check` refuses a stored `value`, or ""."""
    if value is None:
        return ""
    try:
        check.to_python(value)
    except ValidationError as error:
        return " ".join(error.messages)
    return ""


def _refused_sql(field):
    """A condition on a stored value (`value`, its text; `length`, `lowered`, `number` where it is
    one) true where `field.to_python` refuses it, or None where only Python can say (a format, a
    date). It mirrors to_python for values stored through it (canonical text, at most MAX_DIGITS
    digits): change both together."""
    kind = field.field_type
    if kind == FieldType.DATE or (kind == FieldType.TEXT and field.pattern):
        return None
    refused = Q(pk__in=[])  # nothing
    if kind == FieldType.CHOICE:
        refused |= ~Q(value__in=field.choices)
    elif kind == FieldType.BOOLEAN:
        refused |= ~Q(lowered__in=YES_NO)
    elif kind in (FieldType.INTEGER, FieldType.DECIMAL):
        refused |= ~Q(value__regex=WHOLE_NUMBER_SQL if kind == FieldType.INTEGER else NUMBER_SQL)
        if kind == FieldType.DECIMAL and field.decimal_places is not None:
            refused |= Q(value__regex=r"\." + "[0-9]" * field.decimal_places + "[0-9]*[1-9]")
    bounded = {FieldType.TEXT: "length", FieldType.INTEGER: "number", FieldType.DECIMAL: "number"}.get(kind)
    if bounded and field.min_value is not None:
        refused |= Q(**{f"{bounded}__lt": field.min_value})
    if bounded and field.max_value is not None:
        refused |= Q(**{f"{bounded}__gt": field.max_value})
    return refused
