"""Formula-safe spreadsheet output. Every CSV/XLSX Mizani writes goes through `safe_cell`, and every
CSV a person downloads is sent by `csv_response` or `streaming_csv_response`."""

import codecs
import datetime
from decimal import Decimal

from django.http import HttpResponse, StreamingHttpResponse
from django.utils import timezone
from django.utils.http import content_disposition_header

from .masking import mask

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# Numbers are written as numbers (a spreadsheet cannot run them); floats come from SQL averages and ratios.
NUMERIC_TYPES = (bool, int, float, Decimal)


# Excel reads a CSV without a byte-order mark in the machine's ANSI code page, so "Zoë" opens as
# "ZoÃ«". A CSV meant for a person therefore starts with the UTF-8 BOM, which our importer
# (schemes.bulk.files) reads back: the openIMIS reconciliation export for payment providers too
# (schemes.payments.views), which a person downloads and opens; providers' systems read the provider API.
CSV_BOM = codecs.BOM_UTF8
CSV_CONTENT_TYPE = "text/csv; charset=utf-8"


def csv_response(filename, text=""):
    """A CSV download for a person: the BOM, then `text`; more rows may be written with
    csv.writer(response). For a few rows built at once (aggregates, templates)."""
    response = HttpResponse(CSV_BOM + text.encode("utf-8"), content_type=CSV_CONTENT_TYPE)
    response["Content-Disposition"] = content_disposition_header(True, filename)
    return response


XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def xlsx_response(filename, sheets):
    """An XLSX download of a few rows built at once (a template and its notes): `sheets` is
    [(title, rows)]; each sheet's first row bold and frozen; every cell formula-safe."""
    import io

    from openpyxl import Workbook
    from openpyxl.styles import Font

    workbook = Workbook()
    workbook.remove(workbook.active)
    for title, rows in sheets:
        sheet = workbook.create_sheet(title)
        for row in rows:
            sheet.append([safe_cell(cell) for cell in row])
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        sheet.freeze_panes = "A2"
    buffer = io.BytesIO()
    workbook.save(buffer)
    response = HttpResponse(buffer.getvalue(), content_type=XLSX_CONTENT_TYPE)
    response["Content-Disposition"] = content_disposition_header(True, filename)
    return response


def _bom_first(chunks):
    # The BOM is sent before the first row is read, so the download starts at once; the rows then
    # stream as they come, never held together.
    yield CSV_BOM
    yield from chunks


def streaming_csv_response(chunks, filename):
    """A streamed CSV download for a person: `chunks` (the rows as UTF-8 bytes), the BOM first."""
    response = StreamingHttpResponse(_bom_first(chunks), content_type=CSV_CONTENT_TYPE)
    response["Content-Disposition"] = content_disposition_header(True, filename)
    return response


def safe_cell(value):
    """Prefix text that a spreadsheet would run as a formula with a quote; numbers stay numbers."""
    if value is None or isinstance(value, NUMERIC_TYPES):
        return value
    text = str(value)
    if text.startswith(FORMULA_PREFIXES):
        return "'" + text
    return text


def unescaped_cell(text):
    """The text `safe_cell` was given, from what it wrote: for reading back a file we wrote. (A text that
    itself began with a quote and a formula sign reads back without its quote.)"""
    if text.startswith("'") and text[1:].startswith(FORMULA_PREFIXES):
        return text[1:]
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
    """Put before Wagtail's SpreadsheetExportMixin in a view's bases: escapes every exported cell, and
    the CSV export starts with the BOM (still streamed)."""

    def write_csv_response(self, queryset):
        return streaming_csv_response(self.stream_csv(queryset), f"{self.get_filename()}.csv")

    def generate_xlsx_row(self, worksheet, row_dict, date_format=None):
        # Wagtail writes an XLSX row's cells in the order of the row's keys, and a CSV row's by its
        # columns: a to_row_dict built in another order put the cells under the wrong headings. The
        # columns (list_export) decide, as in the CSV; a column the row lacks is an empty cell.
        return super().generate_xlsx_row(worksheet, {field: row_dict.get(field) for field in self.list_export},
                                         date_format=date_format)

    def preprocess_field_value(self, field, value, export_format):
        if isinstance(value, datetime.datetime) and timezone.is_aware(value):
            # The time as the organisation's clocks read it (TIME_ZONE), to the second: not UTC with
            # microseconds and an offset ("2026-11-25 12:20:59.929340+00:00").
            value = timezone.make_naive(value).replace(microsecond=0)
        value = super().preprocess_field_value(field, value, export_format)
        if export_format == "csv":
            if isinstance(value, bool):
                return "Yes" if value else "No"
            if isinstance(value, datetime.datetime):
                return value.strftime("%Y-%m-%d %H:%M:%S")
        if value is None or isinstance(value, NUMERIC_TYPES):
            return value
        if hasattr(value, "isoformat"):
            return value
        return safe_cell(value)
