"""Long registry tasks, run as jobs (see workflows/jobs.py)."""

from collections import Counter

from django.db import transaction

from sites.audit import audit_event
from workflows.jobs import job_kind

from . import duplicates
from .models import Individual, normalise_national_id

RENORMALISE = "registry.renormalise_national_ids"
CHUNK = 5000


@job_kind(RENORMALISE, "Normalise the national IDs again")
def renormalise_national_ids(job, progress):
    """Bring stored national IDs to today's normalisation (after the rule changed). Chunks of people in
    id order; each chunk's updates and its progress commit together, so a restart resumes where the
    last committed chunk ended. An ID that would collide with another live record's is left as it is
    and reported, never merged silently."""
    people = Individual.objects.live().filter(national_id__isnull=False).order_by("pk")
    total = people.count()
    done, changed, conflicts = job.progress_done, job.result.get("changed", 0), []
    progress(done, total, "Checking national IDs")
    while done < total:
        with transaction.atomic():
            chunk = list(people.values_list("pk", "national_id")[done:done + CHUNK])
            if not chunk:
                break
            stored = dict(chunk)
            updates = {pk: new for pk, raw in chunk if (new := normalise_national_id(raw)) != stored[pk]}
            taken = set(Individual.objects.live().filter(national_id__in=updates.values())
                        .exclude(pk__in=updates).values_list("national_id", flat=True))
            repeated = {value for value, n in Counter(updates.values()).items() if n > 1}
            blocked = {pk for pk, new in updates.items() if new in taken or new in repeated}
            conflicts += sorted(blocked)[:100 - len(conflicts)]
            rows = [Individual(pk=pk, national_id=new) for pk, new in updates.items() if pk not in blocked]
            Individual.objects.bulk_update(rows, ["national_id"], batch_size=1000)
            changed += len(rows)
            done += len(chunk)
            progress(done, total, f"{changed} national IDs normalised")
    audit_event("mizani.maintenance", by=job.started_by, data={
        "task": RENORMALISE, "checked": done, "changed": changed, "conflicts": conflicts})
    return {"checked": done, "changed": changed, "conflicts": conflicts}



@job_kind(duplicates.SCAN, "Look for duplicate people")
def scan_for_duplicates(job, progress):
    """Find possible duplicates among the people in the starter's locations (see duplicates.py)."""
    result = duplicates.scan(job, progress)
    audit_event("mizani.maintenance", by=job.started_by, data={"task": duplicates.SCAN, **result})
    return result
