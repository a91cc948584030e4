"""Amounts as every payment screen shows them (and the dashboards: dashboards.rendering.format_number):
thousands separated by commas, two decimals, then the currency (the payroll's own); counts with their
thousands separated too; yes/no values as Yes or No."""

from decimal import ROUND_HALF_EVEN, Decimal, localcontext

from django import template

from schemes.payments.models import CENT

register = template.Library()


@register.filter
def money(value, currency=""):
    """`{{ payroll.total|money:payroll.currency }}`: "3,400.00 TZS"; without a currency, "3,400.00". Also
    called from Python where an amount becomes text (approval requests' summaries)."""
    if value is None or value == "":
        return "—"
    number = Decimal(value)
    # Wide enough for any number a formula gives (the default 28 digits refuse a larger one).
    with localcontext(prec=max(28, number.adjusted() + 3)):
        text = format(number.quantize(CENT, rounding=ROUND_HALF_EVEN), ",f")
    return f"{text} {currency}" if currency else text


@register.filter
def count(value, missing="—"):
    """`{{ row.lines|count }}`: "1,200"; `missing` (default "—") when there is none yet."""
    return missing if value is None or value == "" else f"{int(value):,}"


@register.filter
def lines(count):
    """`{{ payroll.line_count|lines }}`: "1 line", "21 lines", "1,200 lines"."""
    count = count or 0
    return f"{count:,} line{'' if count == 1 else 's'}"


@register.filter
def yes_no(value):
    """`{{ line.flagged_over_limit|yes_no }}`: "Yes" or "No" (as the CSV exports write them)."""
    return "Yes" if value else "No"
