"""Formula-safe spreadsheet output. Every CSV/XLSX Mizani writes goes through `safe_cell`."""

from decimal import Decimal

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


class SafeSpreadsheetExportMixin:
    """Put before Wagtail's SpreadsheetExportMixin in a view's bases: escapes every exported cell."""

    def preprocess_field_value(self, field, value, export_format):
        value = super().preprocess_field_value(field, value, export_format)
        if value is None or isinstance(value, NUMERIC_TYPES):
            return value
        if hasattr(value, "isoformat"):
            return value
        return safe_cell(value)
