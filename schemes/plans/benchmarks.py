"""`manage.py benchmark enrol --rows N`: the enrolment preview (its counts) and the enrolment of
everyone a rule selects, as one INSERT ... SELECT, on a registry of N people."""

import time
import uuid

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError
from django.db import connection

from schemes.registry.demo import seed_demo
from schemes.registry.models import Individual
from sites.benchmarking import register

from . import services
from .models import Beneficiary, BenefitPlan

RULE = "age >= 0"  # everyone with a date of birth: the whole registry


@register("enrol")
def enrol(*, rows, seed, log):
    live = Individual.objects.live().count()
    if live < rows:
        log(f"The registry holds {live:,} live individuals; seeding {rows:,}...")
    seed_demo(individuals=rows, seed=seed, reset=live < rows)
    admin = get_user_model().objects.filter(username="admin", is_superuser=True).first()
    if admin is None:
        raise CommandError("The demo superuser 'admin' is missing: run seed_demo first.")
    plan = BenefitPlan.objects.create(code=f"BENCH-{uuid.uuid4().hex[:8]}", name=f"Benchmark {uuid.uuid4().hex}")
    plan.activate()
    plan.save()
    try:
        started = time.perf_counter()
        preview = services.enrolment_preview(plan=plan, rule=RULE, target_status="POTENTIAL", by=admin)
        preview_seconds = time.perf_counter() - started
        log(f"Preview: {preview['would_add']:,} would be enrolled ({preview_seconds:.2f} s). Enrolling...")
        started = time.perf_counter()
        added = services.enrolment_execute(plan=plan, rule=RULE, target_status="POTENTIAL", by=admin)
        seconds = time.perf_counter() - started
    finally:
        with connection.cursor() as cursor:  # leave the registry as it was: the benchmark's plan goes
            cursor.execute(f"DELETE FROM {connection.ops.quote_name(Beneficiary._meta.db_table)} WHERE plan_id = %s",
                           [plan.pk])
        BenefitPlan.objects.filter(pk=plan.pk).delete()
    return {"preview_seconds": round(preview_seconds, 3), "seconds": round(seconds, 2), "enrolled": added,
            "rows_per_s": round(added / seconds) if seconds else None, "rule": RULE}
