"""Amounts on the payment screens: thousands separated, two decimals, then the payroll's currency (as
the dashboards show them); counts of lines in words."""

from decimal import Decimal

import pytest

from dashboards.rendering import format_number
from schemes.payments.models import Payroll
from schemes.payments.templatetags.payments_money import count, lines, money
from schemes.payments.viewsets import CountColumn


@pytest.mark.parametrize("value, currency, shown", [
    (Decimal("3400"), "TZS", "3,400.00 TZS"),
    (Decimal("711000"), "TZS", "711,000.00 TZS"),
    (Decimal("12.300000000000001"), "KES", "12.30 KES"),
    (Decimal("0.125"), "", "0.12"),  # half to even, as amounts are rounded
    ("1000.00", "TZS", "1,000.00 TZS"),  # a payroll's recorded limit is text
    (Decimal("-1234567.5"), "", "-1,234,567.50"),
    (None, "TZS", "—"),
    (Decimal("1E+34"), "", "10,000" + ",000" * 10 + ".00"),  # a formula's result beyond any line (formula tester)
])
def test_an_amount_shows_two_decimals_and_its_currency(value, currency, shown):
    assert money(value, currency) == shown


def test_an_amount_reads_the_same_on_a_payment_screen_and_a_dashboard():
    assert money(Decimal("711000")) == format_number(Decimal("711000"), "money") == "711,000.00"


@pytest.mark.parametrize("count, shown", [(0, "0 lines"), (1, "1 line"), (21, "21 lines"), (1200, "1,200 lines"),
                                          (None, "0 lines")])
def test_a_count_of_lines_is_singular_or_plural(count, shown):
    assert lines(count) == shown


@pytest.mark.parametrize("value, shown", [(0, "0"), (999, "999"), (1200, "1,200"), (1234567, "1,234,567"), (None, "—")])
def test_a_count_shows_its_thousands_separated(value, shown):
    assert count(value) == shown


def test_a_count_not_known_yet_shows_what_the_screen_asks():
    assert count(None, "…") == "…"


def test_the_payroll_listing_shows_its_line_count_with_thousands_separated():
    assert CountColumn("line_count", "Lines").get_value(Payroll(line_count=1234567)) == "1,234,567"
