import datetime
from decimal import Decimal

import pytest

from sites.spreadsheets import SafeSpreadsheetExportMixin, safe_cell


@pytest.mark.parametrize(
    "text",
    [
        "=SUM(A1:A2)",
        "+1+1",
        "-2+3",
        "@SUM(1)",
        "\t=1",
        "\r=1",
        '=HYPERLINK("http://x","y")',
        "-",
        "+",
        "=",
        "@",
        "\tindented",
        "\rreturn",
    ],
)
def test_formula_prefixes_are_quoted(text):
    assert safe_cell(text) == "'" + text


@pytest.mark.parametrize(
    "text",
    [
        "Amina",
        "12",
        "a=b",
        "x+1",
        "e-mail",
        "user@example.org",
        " =1",
        "",
        "'already quoted",
        "١٢٣",
    ],
)
def test_plain_text_is_unchanged(text):
    assert safe_cell(text) == text


@pytest.mark.parametrize(
    "value", [0, 42, -42, Decimal("-1234.50"), Decimal("0.00"), Decimal("10"), True, False, None]
)
def test_numbers_booleans_and_none_are_returned_unchanged(value):
    result = safe_cell(value)
    assert result == value
    assert type(result) is type(value)


@pytest.mark.parametrize("value", [1.5, -2.25, 0.0])
def test_floats_stay_numbers(value):
    # "Amounts stay numeric": a float (an average, a ratio) must not become text ("'-2.25").
    result = safe_cell(value)
    assert result == value
    assert type(result) is float


def test_decimal_keeps_its_scale():
    assert str(safe_cell(Decimal("-5.10"))) == "-5.10"


def test_other_objects_become_safe_text():
    class Name:
        def __str__(self):
            return "=cmd|' /C calc'!A0"

    assert safe_cell(Name()) == "'=cmd|' /C calc'!A0"
    assert safe_cell(datetime.date(2024, 1, 2)) == "2024-01-02"


class _WagtailExport:
    def preprocess_field_value(self, field, value, export_format):
        return value


class _SafeExport(SafeSpreadsheetExportMixin, _WagtailExport):
    pass


@pytest.mark.parametrize("export_format", ["csv", "xlsx"])
def test_export_mixin_escapes_text_and_keeps_typed_values(export_format):
    view = _SafeExport()
    cell = lambda value: view.preprocess_field_value("f", value, export_format)  # noqa: E731

    assert cell("=1+2") == "'=1+2"
    assert cell("-40") == "'-40"
    assert cell("Amina") == "Amina"
    assert cell(Decimal("-40.00")) == Decimal("-40.00")
    assert cell(-40) == -40
    assert cell(None) is None
    assert cell(datetime.date(2024, 1, 2)) == datetime.date(2024, 1, 2)
    moment = datetime.datetime(2024, 1, 2, 3, 4, tzinfo=datetime.UTC)
    assert cell(moment) == moment


def test_export_mixin_keeps_floats_numeric():
    # Averages and ratios come back from the database as float; a negative one must stay a number.
    view = _SafeExport()
    assert view.preprocess_field_value("f", -0.5, "xlsx") == -0.5
    assert view.preprocess_field_value("f", 2.75, "csv") == 2.75
