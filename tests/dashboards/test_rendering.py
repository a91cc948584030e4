"""What a tile shows: large numbers compact (the exact one in its title), amounts with their currency,
one currency a line, and "No payments yet" rather than a bare 0 when there are none."""

import dataclasses
import datetime
from decimal import Decimal

import pytest

from dashboards.metrics import Column, Filters, Table, get_metric
from dashboards.rendering import NO_DATA, NO_PAYMENTS, NO_PAYMENTS_FILTERED, _empty_text, _kpi, compact_number

DUE = Table(columns=(Column("cycle", "Cycle"), Column("currency", "Currency"), Column("due", "Due", "money"),
                     Column("due_lines", "Lines due", "number")),
            rows=(("C1", "TZS", Decimal("1234567890.00"), 1_234_567), ("C1", "USD", Decimal("20.50"), 3)))
NOTHING_DUE = Table(columns=DUE.columns, rows=())


@pytest.mark.parametrize(("value", "kind", "shown"), [
    (999_999, "number", "999,999"),
    (1_234_567, "number", "1.23 M"),
    (1_234_567_890, "number", "1.23 B"),
    (-2_500_000, "number", "-2.50 M"),
    (Decimal("999999.99"), "money", "999,999.99"),
    (Decimal("1234567.50"), "money", "1.23 M"),
    # Rounded up to a thousand millions: a billion.
    (Decimal("999999999.99"), "money", "1.00 B"),
    (12_345_678_901_234_567, "number", "12,345.68 T"),
])
def test_a_tile_shows_millions_and_more_compact(value, kind, shown):
    assert compact_number(value, kind) == shown


def tile(value="", row=""):
    return {"metric": "payments_due_vs_paid", "label": "Due", "value": value, "row": row}


def test_a_money_tile_shows_each_currency_compact_on_its_line_and_the_exact_amounts_in_its_title():
    shown = _kpi(tile("due"), DUE, get_metric("payments_due_vs_paid"), Filters())

    assert shown == {"value": "1.23 B TZS\n20.50 USD", "title": "1,234,567,890.00 TZS · 20.50 USD"}
    assert _kpi(tile("due_lines"), DUE, get_metric("payments_due_vs_paid"), Filters()) == {
        "value": "1.23 M", "title": "1,234,570"}


def test_a_small_number_has_no_title_to_repeat_it():
    table = Table(columns=DUE.columns, rows=(("C1", "TZS", Decimal("5.00"), 1),))

    assert _kpi(tile("due_lines"), table, get_metric("payments_due_vs_paid"), Filters()) == {"value": "1", "title": ""}


def test_a_money_tile_without_payments_says_so_rather_than_a_bare_zero():
    metric = get_metric("payments_due_vs_paid")

    assert _kpi(tile("due"), NOTHING_DUE, metric, Filters()) == {"empty": "No payments yet", "title": NO_PAYMENTS}
    assert _kpi(tile("due"), NOTHING_DUE, metric, Filters(plan_id=1)) == {
        "empty": "No payments", "title": NO_PAYMENTS_FILTERED}
    assert _empty_text(Table(columns=(Column("status", "Status"), Column("n", "N", "number")), rows=()),
                       metric, Filters()) == NO_DATA


def test_an_empty_money_figure_blames_only_a_filter_its_metric_applies():
    metric = dataclasses.replace(get_metric("payments_due_vs_paid"), filters_used=("location", "period"))

    assert _empty_text(NOTHING_DUE, metric, Filters(plan_id=1)) == NO_PAYMENTS
    assert _empty_text(NOTHING_DUE, metric, Filters(start=datetime.date(2026, 1, 1))) == NO_PAYMENTS_FILTERED
