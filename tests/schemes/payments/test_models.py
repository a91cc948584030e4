"""The payments models' check constraints tell users what is wrong in plain words, not by their names."""

import datetime
from decimal import Decimal

import pytest
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from schemes.payments import services
from schemes.payments.models import PaymentCycle, PaymentPlan, Payroll, PayrollStatus

CYCLE_MESSAGE = "The cycle must end on or after its start."
CEILING_MESSAGE = "The ceiling per beneficiary must be more than zero."
LIMIT_MESSAGE = "The limit per transaction must be more than zero."


def refused(error):
    """{code: message} of the constraint errors in a ValidationError."""
    return {e.code: e.message for e in error.error_dict[NON_FIELD_ERRORS]}


@pytest.mark.django_db
def test_a_cycle_ending_before_its_start_is_refused_in_words():
    cycle = PaymentCycle(code="CG-01-2026-11", start_date=datetime.date(2026, 11, 30),
                         end_date=datetime.date(2026, 11, 1))
    with pytest.raises(ValidationError) as caught:
        cycle.full_clean(exclude=["status"])
    assert refused(caught.value) == {"ends_before_start": CYCLE_MESSAGE}
    assert "payment_cycle_ends_after_start" not in str(caught.value)


def test_the_cycle_services_refuse_it_in_words(superuser, cycle):
    with pytest.raises(ValidationError, match=CYCLE_MESSAGE):
        services.cycle_create(code="CG-BAD", start_date=datetime.date(2026, 11, 30),
                              end_date=datetime.date(2026, 11, 1), by=superuser)
    assert not PaymentCycle.objects.filter(code="CG-BAD").exists()
    with pytest.raises(ValidationError, match=CYCLE_MESSAGE):
        services.cycle_change(cycle=cycle, fields={"end_date": cycle.start_date - datetime.timedelta(days=1)},
                              by=superuser)


@pytest.mark.parametrize(("field", "value", "code", "message"), [
    ("ceiling_per_beneficiary", Decimal("-5"), "ceiling_not_positive", CEILING_MESSAGE),
    ("ceiling_per_beneficiary", Decimal("0"), "ceiling_not_positive", CEILING_MESSAGE),
    ("limit_per_transaction", Decimal("0"), "limit_not_positive", LIMIT_MESSAGE),
])
def test_a_plan_ceiling_or_limit_not_above_zero_is_refused_in_words(payment_plan, superuser, field, value, code,
                                                                      message):
    setattr(payment_plan, field, value)
    with pytest.raises(ValidationError) as caught:
        payment_plan.full_clean()
    assert refused(caught.value) == {code: message}

    fields = {name: getattr(PaymentPlan.objects.get(pk=payment_plan.pk), name) for name in services.PLAN_FIELDS}
    with pytest.raises(ValidationError, match=message):
        services.payment_plan_create(fields={**fields, "code": "CG-NEW", field: value}, by=superuser)
    with pytest.raises(ValidationError, match=message):
        services.payment_plan_change(payment_plan=payment_plan, fields={field: value}, by=superuser)
    assert getattr(PaymentPlan.objects.get(pk=payment_plan.pk), field) > 0


def test_the_largest_amount_is_what_a_money_column_holds():
    from schemes.payments.models import MAX_AMOUNT, MONEY

    assert MAX_AMOUNT == Decimal("9999999999999999.99")
    assert len(MAX_AMOUNT.as_tuple().digits) == MONEY["max_digits"]


@pytest.mark.django_db
def test_the_migration_upper_cases_the_currencies_it_can(payment_plan):
    import importlib

    from django.apps import apps

    migration = importlib.import_module("schemes.payments.migrations.0008_currency_codes")
    others = [PaymentPlan.objects.create(code=code, name=code, benefit_plan=payment_plan.benefit_plan,
                                         formula=payment_plan.formula) for code in ("P2", "P3")]
    for plan, currency in zip([payment_plan, *others], ("tzs", "Kes", "1$x"), strict=True):
        PaymentPlan.objects.filter(pk=plan.pk).update(currency=currency)

    migration.upper_case_currencies(apps, None)

    assert list(PaymentPlan.objects.order_by("code").values_list("currency", flat=True)) == ["TZS", "KES", "1$x"]


@pytest.mark.parametrize("status", PayrollStatus.values)
def test_every_payroll_status_reads_inside_a_sentence_without_a_colon(status):
    """Labels are column values (GENERATED's holds a colon): messages say the status with its phrase."""
    phrase = Payroll(name="CG 2025-01", status=status).status_phrase

    assert phrase and ":" not in phrase
    assert phrase == phrase.lower()
