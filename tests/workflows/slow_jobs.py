"""A slow, chunked job kind for the worker-kill test (tests/workflows/test_worker_kill.py).

Imported by the worker subprocess, never registered in the test process. Each chunk inserts one
Location with a code unique to (job, chunk) and reports progress in the same transaction: a chunk
done twice would raise IntegrityError, and a chunk lost would leave a gap in the codes."""

import time

from django.db import transaction

from sites.models import Location
from workflows.jobs import job_kind

KIND = "workflows.test_slow_counter"


def chunk_code(job_id, chunk):
    return f"JOBTEST-{job_id}-{chunk}"


@job_kind(KIND, "Count slowly")
def slow_counter(job, progress):
    total = int(job.params["n"])
    delay = float(job.params.get("delay", 0.2))
    for chunk in range(job.progress_done, total):
        with transaction.atomic():
            Location.objects.create(code=chunk_code(job.pk, chunk), name=f"Job {job.pk} chunk {chunk}")
            progress(chunk + 1, total, f"chunk {chunk + 1} of {total}")
        time.sleep(delay)
    return {"chunks": total}
