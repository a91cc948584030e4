"""Formula-safe spreadsheet output. Every CSV/XLSX Mizani writes goes through `safe_cell`."""

from decimal import Decimal

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value):
    """Prefix text that a spreadsheet would run as a formula with a quote; numbers stay numbers."""
    if value is None or isinstance(value, (bool, int, Decimal)):
        return value
    text = str(value)
    if text.startswith(FORMULA_PREFIXES):
        return "'" + text
    return text


class SafeSpreadsheetExportMixin:
    """Put before Wagtail's SpreadsheetExportMixin in a view's bases: escapes every exported cell."""

    def preprocess_field_value(self, field, value, export_format):
        value = super().preprocess_field_value(field, value, export_format)
        if isinstance(value, (bool, int, Decimal)) or value is None:
            return value
        if hasattr(value, "isoformat"):
            return value
        return safe_cell(value)
