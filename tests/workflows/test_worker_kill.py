"""A real worker process killed with SIGKILL in the middle of a job; the reaper re-queues it; a fresh
worker finishes it. The job completes exactly once: every chunk done once, none lost (QUALITY 8, the job
system's part). PostgreSQL only: the worker and the test share a real database."""

import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection
from django.utils import timezone

from sites.models import Location
from workflows import services
from workflows.models import Job, JobStatus

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs a database shared with a worker process"),
    pytest.mark.django_db(transaction=True),
]

ROOT = Path(__file__).resolve().parents[2]
KIND = "workflows.test_slow_counter"  # defined in tests/workflows/slow_jobs.py, imported by the worker only
CHUNKS = 15
DELAY = 0.2  # seconds between chunks: the whole job takes about 3 s
ROUNDS = 5
# "Stale at once". Not timedelta(0): jobs_reap reads a zero timedelta as "not given" and falls back to
# the 120 s setting (test_jobs.py::test_reaper_honours_a_zero_stale_after shows it).
AT_ONCE = timedelta(milliseconds=1)

# Stands in for a Huey consumer: Huey's run_job task calls exactly this.
WORKER = (
    "import sys, django; django.setup(); import tests.workflows.slow_jobs; "
    "from workflows.services import job_run; job_run(int(sys.argv[1]))"
)


def database_url():
    s = connection.settings_dict
    credentials = quote(s["USER"] or "")
    if s.get("PASSWORD"):
        credentials += ":" + quote(s["PASSWORD"])
    return f"postgres://{credentials}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


class Worker:
    def __init__(self, job_id):
        self.log = tempfile.TemporaryFile()
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "DATABASE_URL": database_url(),
               "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen([sys.executable, "-c", WORKER, str(job_id)], cwd=ROOT, env=env,
                                        stdout=self.log, stderr=subprocess.STDOUT)

    def output(self):
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-3000:]

    def kill(self):
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def wait(self, timeout):
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"the worker did not finish in {timeout} s:\n{self.output()}")


def chunk_rows(job):
    return Location.objects.filter(code__startswith=f"JOBTEST-{job.pk}-")


def wait_until_running(job, worker, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING, progress_done__gte=1).exists():
            return
        if worker.process.poll() is not None:
            pytest.fail(f"the worker exited ({worker.process.returncode}) before running:\n{worker.output()}")
        time.sleep(0.02)
    pytest.fail(f"the job was not RUNNING after {timeout} s:\n{worker.output()}")


def reap_until_requeued(job, timeout=10):
    """The real reaper runs every minute; a dead worker's session may take a moment to be dropped by the
    server (its row lock, if it died inside a chunk, is skipped by SKIP LOCKED until then)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if job.pk in services.jobs_reap(stale_after=AT_ONCE):
            return
        time.sleep(0.1)
    pytest.fail(f"the reaper did not re-queue job {job.pk} within {timeout} s")


def test_killed_worker_then_reaper_completes_the_job_exactly_once(monkeypatch):
    started = []
    monkeypatch.setattr(services, "_enqueue", lambda job_id: started.append(Worker(job_id)))
    rng = random.Random()

    for round_number in range(ROUNDS):
        job = Job.objects.create(kind=KIND, idempotency_key=f"worker-kill-{uuid.uuid4()}",
                                 params={"n": CHUNKS, "delay": DELAY})
        first = Worker(job.pk)
        wait_until_running(job, first)
        delay = rng.uniform(0.5, 2.0)
        time.sleep(delay)
        first.kill()
        assert first.process.returncode == -signal.SIGKILL

        killed = Job.objects.get(pk=job.pk)
        where = f"round {round_number}, killed after {delay:.2f} s at chunk {killed.progress_done}"
        assert killed.status == JobStatus.RUNNING, where
        assert 0 < killed.progress_done < CHUNKS, where
        assert killed.heartbeat_at < timezone.now(), where
        # Each chunk committed together with its progress: the work done is exactly what the row says.
        assert chunk_rows(job).count() == killed.progress_done, where

        started.clear()
        reap_until_requeued(job)
        assert len(started) == 1, where  # handed to exactly one new worker, after the reaper's commit
        assert started[0].wait(timeout=30) == 0, f"{where}:\n{started[0].output()}"

        done = Job.objects.get(pk=job.pk)
        assert done.status == JobStatus.SUCCEEDED, f"{where}: {done.status} {done.error}\n{started[0].output()}"
        assert (done.progress_done, done.progress_total, done.attempts) == (CHUNKS, CHUNKS, 2), where
        assert done.result == {"chunks": CHUNKS}, where
        codes = list(chunk_rows(job).values_list("code", flat=True))
        assert len(codes) == len(set(codes)) == CHUNKS, where
        assert set(codes) == {f"JOBTEST-{job.pk}-{i}" for i in range(CHUNKS)}, where

        # Nothing stuck: no job left RUNNING, no lock held, and a late redelivery runs nothing.
        assert services.jobs_reap(stale_after=AT_ONCE) == [], where
        assert services.job_claim(job.pk) is None, where
