"""A real worker process generating a payroll, killed with SIGKILL at random points, many times
(QUALITY 8). Afterwards there is either no line at all (the payroll still GENERATING, its job left
for the reaper) or one sealed payroll with the exact count and Decimal total; never a duplicate line,
never a stuck lock; the reaper's retry seals it; a second "generate" returns the same payroll.
PostgreSQL only: the worker and the test share a real database."""

import datetime
import random
import signal
import time
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.utils import timezone

from schemes.payments import services
from schemes.payments.models import PaymentLine, Payroll, PayrollStatus
from schemes.plans.models import BenefitPlan
from tests.workflows.test_worker_kill import Worker, reap_until_requeued
from workflows import services as job_services
from workflows.models import Job, JobStatus

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs a database shared with a worker process"),
    pytest.mark.django_db(transaction=True),
]

PEOPLE = 60_000
ROUNDS = 6
YOUNG, OLD = Decimal("700.00"), Decimal("500.00")


@pytest.fixture
def registry(superuser):
    """PEOPLE people enrolled in an active plan, written set-based; a third are under 30."""
    plan = BenefitPlan.objects.create(code="KILL", name="Kill test")
    plan.activate()
    plan.save()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO registry_individual (first_name, last_name, dob, sex, phone, attributes, created_at, "
            "updated_at) SELECT 'P' || n, 'L' || n, CASE WHEN n %% 3 = 0 THEN DATE '2005-01-01' "
            "ELSE DATE '1960-01-01' END, 'F', '', '{}', now(), now() FROM generate_series(1, %s) n", [PEOPLE])
        cursor.execute(
            "INSERT INTO plans_beneficiary (plan_id, individual_id, status, attributes, reason, enrolled_at, "
            "status_changed_at) SELECT %s, id, 'ACTIVE', '{}', '', now(), now() FROM registry_individual", [plan.pk])
    return plan


def expected(plan):
    young = PEOPLE // 3
    return PEOPLE, YOUNG * young + OLD * (PEOPLE - young)


def assert_whole(payroll, where):
    """The payroll is either untouched (no line) or sealed with exactly its lines."""
    lines = PaymentLine.objects.filter(payroll=payroll)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), count(DISTINCT beneficiary_id), sum(amount) FROM payments_paymentline "
                       "WHERE payroll_id = %s", [payroll.pk])
        count, distinct, total = cursor.fetchone()
    assert count == distinct, where
    if payroll.status == PayrollStatus.GENERATING:
        assert count == 0, where
    else:
        assert payroll.status == PayrollStatus.GENERATED, where
        assert (payroll.line_count, payroll.total) == (count, total) == expected(None), where
        assert lines.exists()


def test_a_killed_generation_leaves_nothing_or_one_sealed_payroll(registry, superuser, monkeypatch):
    started = []
    monkeypatch.setattr(job_services, "_enqueue", lambda job_id: started.append(Worker(job_id)))
    payment_plan = services.payment_plan_create(by=superuser, fields={
        "code": "KILL", "name": "Kill", "benefit_plan": registry, "formula": "500 + (200 if age < 30 else 0)",
        "target_statuses": ["ACTIVE"]})
    rng = random.Random()
    outcomes = []
    for number in range(ROUNDS):
        # A cycle of its own days each round: one payment plan is paid once for any day.
        start = timezone.datetime(2026, 1, 1).date() + datetime.timedelta(days=31 * number)
        cycle = services.cycle_create(code=f"K-{number}", start_date=start, end_date=start + datetime.timedelta(days=30),
                                      by=superuser)
        with transaction.atomic():
            payroll = services.payroll_generate_start(payment_plan=payment_plan, cycle=cycle, by=superuser)
        worker = started.pop()
        delay = rng.uniform(0.5, 4.0)  # the worker's start-up included: before, during and after the INSERT
        time.sleep(delay)
        if worker.process.poll() is None:
            worker.kill()  # it may still finish first, between the poll and the signal: then 0
        where = f"round {number}, killed after {delay:.2f} s"
        assert worker.process.returncode in (0, -signal.SIGKILL), f"{where}:\n{worker.output()}"
        payroll = Payroll.objects.get(pk=payroll.pk)
        assert_whole(payroll, where)
        outcomes.append(payroll.status)

        # A second "generate" for the plan and cycle is a no-op: the same payroll.
        assert services.payroll_generate_start(payment_plan=payment_plan, cycle=cycle, by=superuser).pk == payroll.pk
        job = Job.objects.get(pk=payroll.job_id)
        if job.status == JobStatus.RUNNING:  # killed mid-run: the reaper hands it to a new worker
            reap_until_requeued(job)
            assert started.pop().wait(timeout=120) == 0, where
        elif job.status == JobStatus.QUEUED:  # killed before it claimed the job
            Worker(job.pk).wait(timeout=120)
        payroll = Payroll.objects.get(pk=payroll.pk)
        assert payroll.status == PayrollStatus.GENERATED, f"{where}: {payroll.status} {payroll.error}"
        assert_whole(payroll, where)
        # Nothing stuck: the row is free, no job left running.
        with transaction.atomic():
            Payroll.objects.select_for_update(nowait=True).get(pk=payroll.pk)
        assert job_services.jobs_reap(stale_after=timezone.timedelta(milliseconds=1)) == []
        assert Payroll.objects.filter(payment_plan=payment_plan, cycle=cycle).count() == 1
    print("outcomes when killed:", outcomes)
