"""The national-ID re-normalisation job: chunked, resumable, never merging two people."""

import pytest
from django.core.exceptions import PermissionDenied

from schemes.registry import jobs, services
from schemes.registry.models import Individual
from tests.factories import IndividualFactory, UserFactory
from workflows.models import Job, JobStatus

pytestmark = pytest.mark.django_db


def stored(national_id, location):
    """A person whose ID was stored under an older normalisation rule."""
    person = IndividualFactory(location=location)
    Individual.objects.filter(pk=person.pk).update(national_id=national_id)
    return person


def test_renormalising_fixes_old_ids_and_reports_collisions(geo, django_capture_on_commit_callbacks, monkeypatch):
    monkeypatch.setattr(jobs, "CHUNK", 2)
    admin = UserFactory(role="Clerk", national=True)
    en_dash = stored("12\u201334", geo.village_a)
    fine = stored("5678", geo.village_a)
    stored("9999", geo.village_a)
    clash = stored("99\u201099", geo.village_b)  # would become 9999, which someone already has

    with django_capture_on_commit_callbacks(execute=True):
        job = services.national_ids_renormalise(idempotency_key="k1", by=admin)

    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    assert (job.progress_done, job.progress_total) == (4, 4)
    assert job.result == {"checked": 4, "changed": 1, "conflicts": [clash.pk]}
    assert Individual.objects.get(pk=en_dash.pk).national_id == "1234"
    assert Individual.objects.get(pk=fine.pk).national_id == "5678"
    assert Individual.objects.get(pk=clash.pk).national_id == "99\u201099"


def test_the_same_form_submitted_twice_starts_one_job(db, django_capture_on_commit_callbacks):
    admin = UserFactory(role="Clerk", national=True)

    with django_capture_on_commit_callbacks(execute=True):
        first = services.national_ids_renormalise(idempotency_key="same", by=admin)
        second = services.national_ids_renormalise(idempotency_key="same", by=admin)

    assert first.pk == second.pk
    assert Job.objects.count() == 1


def test_only_national_editors_may_start_it(geo, clerk_a):
    with pytest.raises(PermissionDenied):
        services.national_ids_renormalise(idempotency_key="x", by=clerk_a)
    assert not Job.objects.exists()


def test_a_restarted_job_resumes_after_the_last_committed_chunk(geo, monkeypatch):
    from workflows.services import job_run

    monkeypatch.setattr(jobs, "CHUNK", 2)
    people = [stored(f"00\u2013{n}", geo.village_a) for n in range(4)]
    # The first attempt committed the first chunk (two people) before its worker died.
    for n, person in enumerate(people[:2]):
        Individual.objects.filter(pk=person.pk).update(national_id=f"DONE{n}")
    job = Job.objects.create(kind=jobs.RENORMALISE, idempotency_key="resume", progress_done=2, attempts=1)

    job_run(job.pk)

    assert [Individual.objects.get(pk=p.pk).national_id for p in people] == ["DONE0", "DONE1", "002", "003"]
    assert Job.objects.get(pk=job.pk).status == JobStatus.SUCCEEDED
