"""Formula-safe spreadsheet output. Every CSV/XLSX Mizani writes goes through `safe_cell`."""

from decimal import Decimal

from .masking import mask

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# Numbers are written as numbers (a spreadsheet cannot run them); floats come from SQL averages and ratios.
NUMERIC_TYPES = (bool, int, float, Decimal)


def safe_cell(value):
    """Prefix text that a spreadsheet would run as a formula with a quote; numbers stay numbers."""
    if value is None or isinstance(value, NUMERIC_TYPES):
        return value
    text = str(value)
    if text.startswith(FORMULA_PREFIXES):
        return "'" + text
    return text


def attribute_cell(definition, attributes, *, show_sensitive):
    """One attribute (a sites.fields definition) of a record for a spreadsheet: typed as declared, so
    numbers and dates stay numbers and dates in XLSX; masked when sensitive and the reader may not see
    it, as on the record page. A value stored before its field changed type is written as stored."""
    value = (attributes or {}).get(definition.name)
    if value is None:
        return None
    if definition.sensitive and not show_sensitive:
        return mask(str(value))
    try:
        return definition.from_json(value)
    except (TypeError, ValueError, ArithmeticError):
        return value


class SafeSpreadsheetExportMixin:
    """Put before Wagtail's SpreadsheetExportMixin in a view's bases: escapes every exported cell."""

    def preprocess_field_value(self, field, value, export_format):
        value = super().preprocess_field_value(field, value, export_format)
        if value is None or isinstance(value, NUMERIC_TYPES):
            return value
        if hasattr(value, "isoformat"):
            return value
        return safe_cell(value)
