"""The job system: idempotency, enqueue after commit (QUALITY 9), claiming, progress, failure,
cancellation, and the reaper."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from tests.factories import UserFactory
from workflows import jobs, services
from workflows.models import Job, JobStatus

pytestmark = pytest.mark.django_db


def reload(job):
    return Job.objects.get(pk=job.pk)


def counting(chunks, calls=None):
    """A handler that reports progress per chunk, resuming from job.progress_done."""

    def handler(job, progress):
        if calls is not None:
            calls.append(job.progress_done)
        for i in range(job.progress_done, chunks):
            progress(i + 1, chunks, f"chunk {i + 1}")
        return {"chunks": chunks}

    return handler


@pytest.fixture
def starter(db):
    return UserFactory(username="starter")


# === starting ====================================================================================


def test_same_idempotency_key_gives_one_job(fake_kind, enqueued, starter, django_capture_on_commit_callbacks):
    kind = fake_kind(counting(3))

    with django_capture_on_commit_callbacks(execute=True):
        first = services.job_start(kind=kind, params={"a": 1}, idempotency_key="import-42", by=starter)
        second = services.job_start(kind=kind, params={"a": 2}, idempotency_key="import-42", by=starter)

    assert first.pk == second.pk
    assert Job.objects.filter(idempotency_key="import-42").count() == 1
    assert reload(first).params == {"a": 1}
    assert (reload(first).status, reload(first).started_by) == (JobStatus.QUEUED, starter)
    assert enqueued == [first.pk]  # handed to Huey once


def test_same_key_never_runs_twice(fake_kind, starter, django_capture_on_commit_callbacks):
    calls = []
    kind = fake_kind(counting(2, calls))

    with django_capture_on_commit_callbacks(execute=True):  # Huey runs immediately in tests
        job = services.job_start(kind=kind, params={}, idempotency_key="once", by=starter)
    with django_capture_on_commit_callbacks(execute=True):
        again = services.job_start(kind=kind, params={}, idempotency_key="once", by=starter)
    assert services.job_run(job.pk) is None  # a redelivery finds it finished

    assert again.pk == job.pk
    assert calls == [0]
    assert reload(job).status == JobStatus.SUCCEEDED


def test_unknown_kind_is_refused_at_start(starter):
    with pytest.raises(LookupError):
        services.job_start(kind="tests.no_such_kind", params={}, idempotency_key="x", by=starter)
    assert Job.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_enqueue_happens_after_commit_only(fake_kind, enqueued, starter):
    kind = fake_kind(counting(1))

    with transaction.atomic():
        job = services.job_start(kind=kind, params={}, idempotency_key="after-commit", by=starter)
        assert enqueued == []  # not while the row is uncommitted: a worker could not see it

    assert enqueued == [job.pk]


@pytest.mark.django_db(transaction=True)
def test_rollback_enqueues_nothing(fake_kind, enqueued, starter):
    kind = fake_kind(counting(1))

    with pytest.raises(RuntimeError), transaction.atomic():
        services.job_start(kind=kind, params={}, idempotency_key="rolled-back", by=starter)
        raise RuntimeError("the caller's transaction fails after starting the job")

    assert enqueued == []
    assert not Job.objects.filter(idempotency_key="rolled-back").exists()


@pytest.mark.django_db(transaction=True)
def test_rollback_of_an_outer_transaction_enqueues_nothing(fake_kind, enqueued, starter):
    """job_start's own atomic block is a savepoint here; only the outermost commit counts."""
    kind = fake_kind(counting(1))

    with pytest.raises(RuntimeError), transaction.atomic():
        with transaction.atomic():
            services.job_start(kind=kind, params={}, idempotency_key="nested", by=starter)
        raise RuntimeError

    assert enqueued == []
    assert Job.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_committed_job_runs_through_huey(fake_kind, starter):
    """No patch: after the commit the task reaches Huey (immediate in tests) and the job runs."""
    kind = fake_kind(counting(4))

    with transaction.atomic():
        job = services.job_start(kind=kind, params={}, idempotency_key="through-huey", by=starter)
        assert reload(job).status == JobStatus.QUEUED

    job = reload(job)
    assert (job.status, job.progress_done, job.progress_total, job.result) == (JobStatus.SUCCEEDED, 4, 4, {"chunks": 4})


# === running =====================================================================================


def test_job_runs_to_success_with_progress(fake_kind, starter):
    seen = []

    def handler(job, progress):
        for i in range(5):
            progress(i + 1, 5, f"row {i + 1} of 5")
            seen.append((Job.objects.get(pk=job.pk).progress_done, Job.objects.get(pk=job.pk).status))
        return {"rows": 5}

    job = Job.objects.create(kind=fake_kind(handler), idempotency_key="run", started_by=starter)

    finished = services.job_run(job.pk)

    assert seen == [(n, JobStatus.RUNNING) for n in range(1, 6)]
    assert finished.status == JobStatus.SUCCEEDED
    assert (finished.progress_done, finished.progress_total, finished.percent) == (5, 5, 100)
    assert finished.message == "row 5 of 5"
    assert finished.result == {"rows": 5}
    assert finished.attempts == 1
    assert finished.started_at <= finished.heartbeat_at <= finished.finished_at
    assert finished.error == ""


def test_failing_handler_marks_the_job_failed(fake_kind):
    def handler(job, progress):
        progress(1, 3)
        raise ValueError("row 2: the amount 'abc' is not a number")

    job = Job.objects.create(kind=fake_kind(handler), idempotency_key="fail")

    finished = services.job_run(job.pk)

    assert finished.status == JobStatus.FAILED
    assert finished.error == "ValueError: row 2: the amount 'abc' is not a number"
    assert finished.progress_done == 1
    assert finished.finished_at is not None
    assert finished.result == {}


def test_kind_unknown_to_the_worker_fails_the_job_instead_of_leaving_it_running(fake_kind):
    """A worker that does not know the kind (an app missing from its deploy, a renamed kind) must record
    the failure on the row; otherwise the job stays RUNNING and the reaper re-queues it for ever."""
    kind = fake_kind(counting(1))
    job = Job.objects.create(kind=kind, idempotency_key="orphan")
    jobs._kinds.pop(kind)

    try:
        services.job_run(job.pk)
    except LookupError:
        pass

    job = reload(job)
    assert job.status == JobStatus.FAILED
    assert kind in job.error


# === cancelling ==================================================================================


def test_cancel_of_a_queued_job_is_immediate(fake_kind, starter):
    calls = []
    job = Job.objects.create(kind=fake_kind(counting(3, calls)), idempotency_key="cancel-q", started_by=starter)

    services.job_cancel(job=job, by=starter)

    job = reload(job)
    assert job.status == JobStatus.CANCELLED
    assert job.finished_at is not None
    assert services.job_run(job.pk) is None  # a worker picking it up later does nothing
    assert calls == []


def test_only_the_starter_or_a_superuser_cancels(fake_kind, starter, superuser):
    job = Job.objects.create(kind=fake_kind(counting(1)), idempotency_key="cancel-who", started_by=starter)

    with pytest.raises(PermissionDenied):
        services.job_cancel(job=job, by=UserFactory(username="someone_else"))
    assert reload(job).status == JobStatus.QUEUED

    services.job_cancel(job=job, by=superuser)
    assert reload(job).status == JobStatus.CANCELLED


def test_cancel_of_a_running_job_stops_it_at_the_next_progress(fake_kind, starter):
    done_chunks = []
    observed = {}

    def handler(job, progress):
        for i in range(job.progress_done, 10):
            done_chunks.append(i)
            if i == 2:  # the starter clicks "cancel" while the job runs
                services.job_cancel(job=Job.objects.get(pk=job.pk), by=starter)
                row = Job.objects.get(pk=job.pk)
                observed["during"] = (row.status, row.cancel_requested)
            progress(i + 1, 10)
        return {"chunks": 10}

    job = Job.objects.create(kind=fake_kind(handler), idempotency_key="cancel-r", started_by=starter)

    finished = services.job_run(job.pk)

    assert observed["during"] == (JobStatus.RUNNING, True)
    assert done_chunks == [0, 1, 2]  # nothing after the cancel was asked for
    assert finished.status == JobStatus.CANCELLED
    assert finished.finished_at is not None
    assert finished.result == {}


# === claiming and reaping ========================================================================


def test_a_job_is_claimed_once(fake_kind):
    job = Job.objects.create(kind=fake_kind(counting(1)), idempotency_key="claim")

    first = services.job_claim(job.pk)
    second = services.job_claim(job.pk)

    assert first is not None and first.pk == job.pk
    assert second is None
    job = reload(job)
    assert (job.status, job.attempts) == (JobStatus.RUNNING, 1)
    assert job.heartbeat_at is not None
    assert services.job_run(job.pk) is None  # a second delivery of the task does not run it


def test_reaper_requeues_running_jobs_with_an_old_heartbeat_only(fake_kind, enqueued,
                                                                 django_capture_on_commit_callbacks):
    kind = fake_kind(counting(5))
    stale, fresh, queued = (Job.objects.create(kind=kind, idempotency_key=key) for key in ("stale", "fresh", "queued"))
    services.job_claim(stale.pk)
    services.job_claim(fresh.pk)
    Job.objects.filter(pk=stale.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=10), progress_done=2)

    with django_capture_on_commit_callbacks(execute=True):
        requeued = services.jobs_reap(stale_after=timedelta(minutes=2))

    assert requeued == [stale.pk]
    assert enqueued == [stale.pk]
    assert (reload(stale).status, reload(fresh).status, reload(queued).status) == (
        JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.QUEUED)
    assert reload(stale).progress_done == 2  # kept: the next run resumes from there


def test_reaper_uses_the_heartbeat_setting_by_default(fake_kind, enqueued, settings,
                                                      django_capture_on_commit_callbacks):
    settings.MIZANI_JOB_HEARTBEAT_SECONDS = 60
    kind = fake_kind(counting(1))
    old, recent = (Job.objects.create(kind=kind, idempotency_key=key) for key in ("old", "recent"))
    for job in (old, recent):
        services.job_claim(job.pk)
    now = timezone.now()
    Job.objects.filter(pk=old.pk).update(heartbeat_at=now - timedelta(seconds=90))
    Job.objects.filter(pk=recent.pk).update(heartbeat_at=now - timedelta(seconds=30))

    with django_capture_on_commit_callbacks(execute=True):
        assert services.jobs_reap() == [old.pk]


def test_reaped_job_resumes_where_it_stopped(fake_kind, django_capture_on_commit_callbacks):
    calls = []
    job = Job.objects.create(kind=fake_kind(counting(6, calls)), idempotency_key="resume")
    services.job_claim(job.pk)
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1), progress_done=4)

    with django_capture_on_commit_callbacks(execute=True):  # the re-queued task runs (Huey immediate)
        services.jobs_reap(stale_after=timedelta(minutes=2))

    job = reload(job)
    assert calls == [4]
    assert (job.status, job.progress_done, job.attempts) == (JobStatus.SUCCEEDED, 6, 2)


def test_reaper_honours_a_zero_stale_after(fake_kind, enqueued, django_capture_on_commit_callbacks):
    """stale_after=timedelta(0) means "every RUNNING job is stale now"; it must not fall back to the
    heartbeat setting because a zero timedelta is falsy."""
    job = Job.objects.create(kind=fake_kind(counting(1)), idempotency_key="zero")
    services.job_claim(job.pk)
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=5))

    with django_capture_on_commit_callbacks(execute=True):
        requeued = services.jobs_reap(stale_after=timedelta(0))

    assert requeued == [job.pk]
    assert reload(job).status == JobStatus.QUEUED
