"""`manage.py benchmark payroll --rows N`: a payroll of N lines generated from a formula with criteria,
top-ups and a cap (one INSERT ... SELECT and the seal), against a raw INSERT ... SELECT of the same
number of lines with a constant amount into a copy of the lines table (same indexes and constraints).
Everything the benchmark writes is rolled back or deleted: payrolls are never deleted, so the
generation runs in a transaction that is rolled back once measured."""

import csv
import datetime
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.files import File
from django.core.management.base import CommandError
from django.db import connection, transaction

from schemes.plans import services as plan_services
from schemes.plans.models import Beneficiary, BenefitPlan
from schemes.registry.demo import seed_demo
from schemes.registry.models import Individual
from sites.benchmarking import register

from . import services, summaries
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


# --- reconcile -----------------------------------------------------------------------------------------


@register("reconcile")
def reconcile(*, rows, seed, log):
    """`manage.py benchmark reconcile --rows N`: an approved payroll of N lines (written directly, sealed
    and approved through the model's transitions) and the provider's reconciliation file of N rows
    (four in five paid with a receipt, one in five unpaid), then the pipeline's check and import of
    that file, timed from the upload to the last line applied. Payrolls are never deleted: run it on a
    database kept for benchmarks. With --rows N it also reports the same file uploaded again (every
    row unchanged, nothing applied)."""
    from schemes.bulk.benchmarks import _run_job
    from schemes.bulk.models import Upload, UploadKind, UploadStatus
    from schemes.bulk.services import import_start, upload_receive

    seed_demo(individuals=0, seed=seed)  # the demo superuser and roles; no people needed
    admin = get_user_model().objects.filter(username="admin", is_superuser=True).first()
    if admin is None:
        raise CommandError("The demo superuser 'admin' is missing: run seed_demo first.")
    tag = uuid.uuid4().hex[:8]
    log(f"Writing an approved payroll of {rows:,} lines...")
    payroll = _approved_payroll(rows, admin, tag)
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "reconciliation.csv"
        log(f"Writing the provider's file of {rows:,} rows...")
        paid_expected = _write_reconciliation_file(path, payroll)
        for attempt in ("first", "again"):
            started = time.perf_counter()
            with open(path, "rb") as source:
                upload = upload_receive(kind=UploadKind.RECONCILIATION, payroll=payroll,
                                        file=File(source, name="reconciliation.csv"), by=admin)
            _run_job(upload.validation_job_id, log, "checking")
            checked = time.perf_counter() - started
            upload = Upload.objects.get(pk=upload.pk)
            if upload.status != UploadStatus.READY or upload.counts["errors"]:
                raise CommandError(f"The file was not accepted whole: {upload.status} {upload.problem} {upload.counts}")
            log(f"{attempt}: checked in {checked:.1f} s: {upload.counts}. Importing...")
            job = import_start(upload=upload, mode="ALL_OR_NOTHING", by=admin)
            _run_job(job.pk, log, "import")
            seconds = time.perf_counter() - started
            upload = Upload.objects.get(pk=upload.pk)
            log(f"{attempt}: {seconds:.1f} s, {upload.counts.get('imported'):,} lines changed.")
            results[attempt] = {"seconds": round(seconds, 2), "check_seconds": round(checked, 2),
                                "import_seconds": round(seconds - checked, 2), "counts": upload.counts}
    paid = PaymentLine.objects.filter(payroll=payroll, status="PAID").count()
    unpaid = PaymentLine.objects.filter(payroll=payroll, status="UNPAID").count()
    if (paid, unpaid) != (paid_expected, rows - paid_expected):
        raise CommandError(f"Expected {paid_expected:,} paid and {rows - paid_expected:,} unpaid lines; "
                           f"found {paid:,} and {unpaid:,}.")
    first = results["first"]
    return {"seconds": first["seconds"], "rows_per_s": round(rows / first["seconds"]),
            "check_seconds": first["check_seconds"], "import_seconds": first["import_seconds"],
            "paid": paid, "unpaid": unpaid, "payroll": payroll.pk,
            "same_file_again": {key: results["again"][key] for key in ("seconds", "check_seconds")}
            | {"unchanged": results["again"]["counts"].get("unchanged"),
               "imported": results["again"]["counts"].get("imported")}}


def _approved_payroll(rows, admin, tag):
    """N lines of 100 to 149.00 written in one statement (no beneficiaries behind them: the lines'
    references carry no constraint), sealed and approved through the payroll's transitions."""
    from django.utils import timezone

    benefit_plan = BenefitPlan.objects.create(code=f"RB-{tag}", name=f"Reconcile benchmark {tag}")
    payment_plan = services.payment_plan_create(fields={
        "code": f"RB-{tag}", "name": f"Reconcile benchmark {tag}", "benefit_plan": benefit_plan, "formula": "100",
        "periodicity": 1, "currency": "TZS", "target_statuses": ["ACTIVE"]}, by=admin)
    cycle = services.cycle_create(code=f"RB-{tag}", start_date=datetime.date(2026, 1, 1),
                                  end_date=datetime.date(2026, 1, 31), by=admin)
    payroll = Payroll.objects.create(name=f"Reconcile benchmark {tag}", payment_plan=payment_plan, cycle=cycle,
                                     formula={"formula": payment_plan.formula}, created_by=admin,
                                     parameters=services._parameters(payment_plan))
    table = connection.ops.quote_name(PaymentLine._meta.db_table)
    numbers = ("generate_series(1, %s) AS n" if connection.vendor == "postgresql" else
               "(WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < %s) SELECT n FROM s)")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (payroll_id, beneficiary_id, recipient_id, location_id, amount, inputs, "
            f"flagged_over_limit, status, receipt, paid_on) SELECT %s, n, NULL, NULL, 100 + mod(n, 50), '{{}}', "
            f"false, 'DUE', '', NULL FROM {numbers}", [payroll.pk, rows])
        cursor.execute(f"SELECT count(*), sum(amount) FROM {table} WHERE payroll_id = %s", [payroll.pk])
        count, total = cursor.fetchone()
        payroll.seal(line_count=count, total=Decimal(total).quantize(Decimal("0.01")), seal_hash=f"benchmark-{tag}",
                     now=timezone.now())
        payroll.save()
        summaries.count_lines(payroll)
    payroll.submit()  # each move its own UPDATE: the database allows a payroll its moves one at a time
    payroll.save()
    payroll.approve(timezone.now())
    payroll.save()
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {table}")
    return payroll


def _write_reconciliation_file(path, payroll):
    """The export's columns, as a provider returns them. Returns how many rows say paid."""
    from .reconciliation import HEADERS

    paid = 0
    with open(path, "w", encoding="utf-8", newline="") as target:
        writer = csv.writer(target)
        writer.writerow(HEADERS)
        lines = PaymentLine.objects.filter(payroll=payroll).order_by("pk").values_list("pk", "amount")
        batch = []
        for pk, amount in lines.iterator(chunk_size=20000):
            code = f"{PaymentLine.CODE_PREFIX}{pk:09d}"
            if pk % 5:
                batch.append((payroll.name, "Approved for payment", "", "", "", code, "Due", amount, "Cash",
                              f"R{pk}", "Yes"))
                paid += 1
            else:
                batch.append((payroll.name, "Approved for payment", "", "", "", code, "Due", amount, "Cash", "", "No"))
            if len(batch) >= 20000:
                writer.writerows(batch)
                batch = []
        writer.writerows(batch)
    return paid
