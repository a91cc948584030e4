"""`manage.py benchmark import --rows N`: an openIMIS-style individuals file of N rows (households of
one to six people, a registry attribute, locations by code) checked whole and imported through the
pipeline's jobs, as a national user; measured in the same run against django-import-export's default
`import_data` (on fewer rows) and a raw COPY of the same rows. The imported people are removed after."""

import csv
import datetime
import json
import random
import tempfile
import time
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.files import File
from django.core.management.base import CommandError
from django.db import connection, transaction

from schemes.registry.demo import seed_demo
from schemes.registry.demo_names import FAMILY_NAMES, FEMALE_FIRST_NAMES, MALE_FIRST_NAMES
from schemes.registry.models import DuplicateCandidate, Household, Individual, Membership, RegistryField
from sites.benchmarking import register
from sites.models import Location
from workflows.services import job_run

from . import services
from .models import Upload, UploadStatus
from .staging import refresh_statistics

HEADER = ["first_name", "last_name", "dob", "sex", "national_id", "location", "group_code", "individual_role",
          "recipient_info", "income"]
ROLES = ["SPOUSE", "SON", "DAUGHTER", "MOTHER", "FATHER"]
DIE_ROWS = 20_000


def write_file(path, rows, seed, villages):
    """The synthetic file: households of 1 to 6, the head first; unique national IDs for adults; names
    from the demo registry's lists (some 46,000 first and family name pairs, as a country has many: a
    handful of names would make most children namesakes born the same day, possible duplicates)."""
    rng = random.Random(seed)
    today = datetime.date.today()
    with open(path, "w", encoding="utf-8", newline="") as target:
        writer = csv.writer(target)
        writer.writerow(HEADER)
        written, household = 0, 0
        while written < rows:
            household += 1
            size = min(rng.randint(1, 6), rows - written)
            village, last = rng.choice(villages), rng.choice(FAMILY_NAMES)
            for member in range(size):
                adult = member < 2
                age = rng.randint(18, 80) if adult else rng.randint(0, 17)
                dob = today - datetime.timedelta(days=age * 365 + rng.randint(0, 364))
                sex = rng.choice("FM")
                writer.writerow([
                    rng.choice(FEMALE_FIRST_NAMES if sex == "F" else MALE_FIRST_NAMES), last, dob.isoformat(), sex,
                    f"BENCH{seed:03d}{written:09d}" if adult else "", village, f"BH{seed:03d}-{household:08d}",
                    "HEAD" if member == 0 else rng.choice(ROLES), "1" if member == 0 else "",
                    str(rng.randint(0, 400) * 500) if adult else ""])
                written += 1


def raw_copy_rate(path):
    """Rows per second of a plain COPY of the same people into the registry's table (its indexes and
    constraints included, no checks of ours), rolled back: the floor a loader could reach."""
    if connection.vendor != "postgresql":
        return None
    prepared = Path(path).with_suffix(".copy.csv")
    now = datetime.datetime.now(datetime.UTC).isoformat()
    with open(path, encoding="utf-8", newline="") as source, open(prepared, "w", encoding="utf-8",
                                                                  newline="") as target:
        reader, writer = csv.DictReader(source), csv.writer(target)
        for row in reader:
            writer.writerow([row["first_name"], row["last_name"], row["dob"], row["sex"],
                             row["national_id"] or "<null>", "", json.dumps({"income": row["income"]} if row["income"] else {}), now, now])
    table = connection.ops.quote_name(Individual._meta.db_table)
    columns = "first_name, last_name, dob, sex, national_id, phone, attributes, created_at, updated_at"
    with transaction.atomic(), connection.cursor() as cursor:
        started = time.perf_counter()
        with open(prepared, "rb") as source, cursor.copy(
                f"COPY {table} ({columns}) FROM STDIN (FORMAT csv, NULL '<null>')") as copy:
            while block := source.read(1 << 20):
                copy.write(block)
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        seconds = time.perf_counter() - started
        transaction.set_rollback(True)
    with open(path, encoding="utf-8") as source:
        count = sum(1 for _ in source) - 1
    return count / seconds


def import_export_rate(path, rows):
    """Rows per second of django-import-export's default import_data for the same columns (rolled back)."""
    import tablib
    from import_export import resources

    class IndividualResource(resources.ModelResource):
        class Meta:
            model = Individual
            fields = ("first_name", "last_name", "dob", "sex", "national_id")
            import_id_fields = ()

    with open(path, encoding="utf-8", newline="") as source:
        reader = csv.DictReader(source)
        data = tablib.Dataset(headers=["first_name", "last_name", "dob", "sex", "national_id"])
        for row, n in zip(reader, range(rows), strict=False):
            # Its text widget turns an empty ID into "" (not NULL), which the unique index refuses twice.
            data.append([row["first_name"], row["last_name"], row["dob"], row["sex"], row["national_id"] or f"DIE{n}"])
    with transaction.atomic():
        started = time.perf_counter()
        result = IndividualResource().import_data(data, dry_run=False, raise_errors=True)
        seconds = time.perf_counter() - started
        transaction.set_rollback(True)
    return result.totals["new"] / seconds


def _run_job(job_id, log, what):
    """Run the job here (a worker may already have: then read how it ended)."""
    from workflows.models import Job

    job = job_run(job_id) or Job.objects.get(pk=job_id)
    if job.status != "SUCCEEDED":
        raise CommandError(f"The {what} job did not succeed: {getattr(job, 'error', '')}")


@register("import")
def import_individuals(*, rows, seed, log):
    seed_demo(individuals=0, seed=seed)  # locations, users, attribute definitions; no people added
    RegistryField.objects.get_or_create(target="individual", name="income",
                                        defaults={"label": "Monthly income", "field_type": "decimal"})
    admin = get_user_model().objects.filter(username="admin", is_superuser=True).first()
    if admin is None:
        raise CommandError("The demo superuser 'admin' is missing: run seed_demo first.")
    villages = list(Location.objects.filter(depth=4).values_list("code", flat=True)[:400]) or \
        list(Location.objects.values_list("code", flat=True)[:400])
    before = {model: model.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
              for model in (Individual, Household, Membership)}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "individuals.csv"
        log(f"Writing a file of {rows:,} rows...")
        write_file(path, rows, seed, villages)
        copy_rate = raw_copy_rate(path)
        die_rate = import_export_rate(path, min(rows, DIE_ROWS))
        log(f"Baselines: COPY {copy_rate or 0:,.0f} rows/s, django-import-export {die_rate:,.0f} rows/s. Checking...")
        started = time.perf_counter()
        with open(path, "rb") as source:
            upload = services.upload_receive(kind="INDIVIDUALS", file=File(source, name="individuals.csv"), by=admin)
        _run_job(upload.validation_job_id, log, "checking")
        upload = Upload.objects.get(pk=upload.pk)
        checked = time.perf_counter() - started
        if upload.status != UploadStatus.READY or upload.counts["errors"]:
            raise CommandError(f"The file was not accepted whole: {upload.status} {upload.problem} {upload.counts}")
        log(f"Checked in {checked:.1f} s: {upload.counts}. Importing...")
        job = services.import_start(upload=upload, mode="ALL_OR_NOTHING", by=admin)
        _run_job(job.pk, log, "import")
        seconds = time.perf_counter() - started
        upload = Upload.objects.get(pk=upload.pk)
    _remove_imported(before, log)
    rate = rows / seconds
    return {
        "seconds": round(seconds, 2), "check_seconds": round(checked, 2), "rows_per_s": round(rate),
        "imported": upload.counts.get("imported"), "households": upload.counts.get("households_created"),
        "baselines": {"django_import_export": round(die_rate), "copy": round(copy_rate) if copy_rate else None,
                      "django_import_export_rows": min(rows, DIE_ROWS)},
        "ratios": {"vs_django_import_export": round(rate / die_rate, 1),
                   "vs_copy": round(rate / copy_rate, 3) if copy_rate else None},
    }


def _remove_imported(before, log):
    """Leave the registry as it was: what the import created goes (memberships first)."""
    log("Removing the imported people...")
    with connection.cursor() as cursor:  # the duplicate pairs the import filed for them (second_id: the higher id)
        cursor.execute(f"DELETE FROM {connection.ops.quote_name(DuplicateCandidate._meta.db_table)} "
                       f"WHERE second_id > %s", [before[Individual]])
    for model in (Membership, Individual, Household):
        # The delete guards look each row up in the table emptied just before: planned on stale
        # statistics they scan it once per row.
        refresh_statistics([Membership, Individual, Household])
        table = connection.ops.quote_name(model._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {table} WHERE id > %s", [before[model]])
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        # The deleted rows stay until VACUUM (autovacuum may be off or late): the next benchmark's
        # scans of the registry would read twice the pages (list counts 0.23 s -> 0.46 s).
        with connection.cursor() as cursor:
            for model in (Membership, Individual, Household):
                cursor.execute(f"VACUUM (ANALYZE) {connection.ops.quote_name(model._meta.db_table)}")


@register("export")
def export_individuals(*, rows, seed, log):
    """The individuals list exported as CSV by a national user, through the admin's streamed export
    (Django's test client, in-process): time to the first byte, to the last, and the rows written."""
    from django.test import Client
    from django.urls import reverse

    live = Individual.objects.live().count()
    if live < rows:
        log(f"The registry holds {live:,} live individuals; seeding {rows:,}...")
    seed_demo(individuals=rows, seed=seed, reset=live < rows)
    admin = get_user_model().objects.filter(username="admin", is_superuser=True).first()
    if admin is None:
        raise CommandError("The demo superuser 'admin' is missing: run seed_demo first.")
    client = Client(HTTP_HOST="localhost")  # a host every settings file allows
    client.force_login(admin)
    started = time.perf_counter()
    response = client.get(reverse("registry_individual:index"), {"export": "csv"})
    chunks = iter(response.streaming_content)
    first = next(chunks)
    first_byte = time.perf_counter() - started
    size, lines = len(first), first.count(b"\n")
    for chunk in chunks:
        size += len(chunk)
        lines += chunk.count(b"\n")
    seconds = time.perf_counter() - started
    return {"first_byte_seconds": round(first_byte, 3), "seconds": round(seconds, 2), "rows_written": lines - 1,
            "megabytes": round(size / 1e6, 1), "rows_per_s": round((lines - 1) / seconds)}
