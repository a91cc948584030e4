"""Amounts as every payment screen shows them: two decimals, then the currency (the payroll's own)."""

from decimal import ROUND_HALF_EVEN, Decimal

from django import template

from schemes.payments.models import CENT

register = template.Library()


@register.filter
def money(value, currency=""):
    """`{{ payroll.total|money:payroll.currency }}`: "3400.00 TZS"; without a currency, "3400.00"."""
    if value is None or value == "":
        return "—"
    text = format(Decimal(value).quantize(CENT, rounding=ROUND_HALF_EVEN), "f")
    return f"{text} {currency}" if currency else text
