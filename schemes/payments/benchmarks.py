"""`manage.py benchmark payroll --rows N`: a payroll of N lines generated from a formula with criteria,
top-ups and a cap (one INSERT ... SELECT and the seal), against a raw INSERT ... SELECT of the same
number of lines with a constant amount into a copy of the lines table (same indexes and constraints).
Everything the benchmark writes is rolled back or deleted: payrolls are never deleted, so the
generation runs in a transaction that is rolled back once measured."""

import time
import uuid
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError
from django.db import connection, transaction

from schemes.plans import services as plan_services
from schemes.plans.models import Beneficiary, BenefitPlan
from schemes.registry.demo import seed_demo
from schemes.registry.models import Individual
from sites.benchmarking import register

from . import services
from .models import PaymentCycle, PaymentLine, Payroll

FORMULA = "500 + (200 if children_under_5 > 0 else 0) + 100 * min(household_size, 4)"
CRITERIA = "age >= 0"
BASELINE_TABLE = "payments_benchmark_baseline"


class _RollBack(Exception):
    pass


@register("payroll")
def payroll(*, rows, seed, log):
    live = Individual.objects.live().count()
    if live < rows:
        log(f"The registry holds {live:,} live individuals; seeding {rows:,}...")
    seed_demo(individuals=rows, seed=seed, reset=live < rows)
    admin = get_user_model().objects.filter(username="admin", is_superuser=True).first()
    if admin is None:
        raise CommandError("The demo superuser 'admin' is missing: run seed_demo first.")
    tag = uuid.uuid4().hex[:8]
    benefit_plan = BenefitPlan.objects.create(code=f"BENCH-{tag}", name=f"Payroll benchmark {tag}")
    benefit_plan.activate()
    benefit_plan.save()
    try:
        log(f"Enrolling {rows:,} people...")
        enrolled = plan_services.enrolment_execute(plan=benefit_plan, rule="age >= 0", target_status="ACTIVE",
                                                   by=admin)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE plans_beneficiary")
        result = {}
        try:
            with transaction.atomic():
                result = _measure(benefit_plan, admin, tag, log)
                raise _RollBack
        except _RollBack:
            pass
        result["enrolled"] = enrolled
        return result
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {BASELINE_TABLE}")
            cursor.execute(f"DELETE FROM {connection.ops.quote_name(Beneficiary._meta.db_table)} WHERE plan_id = %s",
                           [benefit_plan.pk])
        BenefitPlan.objects.filter(pk=benefit_plan.pk).delete()


def _measure(benefit_plan, admin, tag, log):
    payment_plan = services.payment_plan_create(fields={
        "code": f"BENCH-{tag}", "name": f"Payroll benchmark {tag}", "benefit_plan": benefit_plan, "formula": FORMULA,
        "criteria": CRITERIA, "ceiling_per_beneficiary": Decimal("1000"), "limit_per_transaction": Decimal("900"),
        "periodicity": 1, "currency": "TZS", "target_statuses": ["ACTIVE"]}, by=admin)
    cycle = services.cycle_create(code=f"BENCH-{tag}", start_date=PaymentCycle._meta.get_field(
        "start_date").to_python("2026-01-01"), end_date=PaymentCycle._meta.get_field("end_date").to_python(
        "2026-01-31"), by=admin)
    payroll = Payroll.objects.create(name=f"Benchmark {tag}", payment_plan=payment_plan, cycle=cycle,
                                     formula={"formula": payment_plan.formula, "criteria": payment_plan.criteria},
                                     parameters=services._parameters(payment_plan), created_by=admin)
    log("Generating the payroll...")
    started = time.perf_counter()
    services.payroll_generate(payroll.pk)  # the job's work: INSERT ... SELECT and the seal
    seconds = time.perf_counter() - started
    payroll.refresh_from_db()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), sum(amount) FROM payments_paymentline WHERE payroll_id = %s", [payroll.pk])
        count, total = cursor.fetchone()
    if (count, total) != (payroll.line_count, payroll.total):
        raise CommandError(f"The seal ({payroll.line_count}, {payroll.total}) differs from the lines ({count}, {total}).")
    log(f"{count:,} lines, total {total} in {seconds:.2f} s. Baseline: a raw INSERT ... SELECT...")
    baseline = _baseline(benefit_plan, payroll.pk + 1)
    return {"seconds": round(seconds, 2), "lines": count, "total": format(total, "f"),
            "lines_per_s": round(count / seconds) if seconds else None,
            "baselines": {"insert_select_seconds": round(baseline, 2)},
            "ratios": {"vs_insert_select": round(seconds / baseline, 2) if baseline else None},
            "formula": FORMULA, "criteria": CRITERIA}


def _baseline(benefit_plan, payroll_id):
    """The same number of lines, a constant amount, nothing computed: the floor for writing them."""
    table = connection.ops.quote_name(PaymentLine._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {BASELINE_TABLE} (LIKE {table} INCLUDING ALL)")
        started = time.perf_counter()
        cursor.execute(
            f"INSERT INTO {BASELINE_TABLE} (payroll_id, beneficiary_id, recipient_id, location_id, amount, inputs, "
            f"flagged_over_limit, status, receipt, paid_on) "
            f"SELECT %s, b.id, b.individual_id, i.location_id, 500, '{{}}', false, 'DUE', '', NULL "
            f"FROM plans_beneficiary b JOIN registry_individual i ON i.id = b.individual_id "
            f"WHERE b.plan_id = %s AND b.status = 'ACTIVE'", [payroll_id, benefit_plan.pk])
        return time.perf_counter() - started
