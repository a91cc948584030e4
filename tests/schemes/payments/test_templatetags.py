"""Amounts on the payment screens: two decimals, then the payroll's currency."""

from decimal import Decimal

import pytest

from schemes.payments.templatetags.payments_money import money


@pytest.mark.parametrize("value, currency, shown", [
    (Decimal("3400"), "TZS", "3400.00 TZS"),
    (Decimal("12.300000000000001"), "KES", "12.30 KES"),
    (Decimal("0.125"), "", "0.12"),  # half to even, as amounts are rounded
    ("1000.00", "TZS", "1000.00 TZS"),  # a payroll's recorded limit is text
    (None, "TZS", "—"),
    (Decimal("1E+34"), "", "1" + "0" * 34 + ".00"),  # a formula's result beyond any line (formula tester)
])
def test_an_amount_shows_two_decimals_and_its_currency(value, currency, shown):
    assert money(value, currency) == shown
