"""The import job's chunks: each commits with its mark in the job's state, so a job that crashed
imports only the chunks not marked (no one twice, no one lost); on PostgreSQL, outside a caller's
transaction, chunks run on several connections at once with the same result."""

import threading

import pytest
from django.db import connection

from schemes.bulk import individuals, services
from schemes.bulk.models import Upload, UploadStatus
from schemes.registry.models import Household, Individual, Membership
from tests.factories import RegistryFieldFactory, UserFactory
from tests.schemes.bulk.test_individuals import csv_file, receive
from workflows.models import Job

pytestmark = pytest.mark.django_db


@pytest.fixture
def clerk(geo, member_roles):
    RegistryFieldFactory(name="income", field_type="decimal", min_value=0)
    return UserFactory(role="Clerk", locations=[geo.district_a])


def household_rows(village, households=4, size=3):
    return [[f"P{h}-{m}", "Chunk", "1980-01-01", "F", f"CH{h}{m}", village, f"HH-C{h}",
             "HEAD" if m == 0 else "SON", "1" if m == 0 else "", ""]
            for h in range(households) for m in range(size)]


def test_a_crashed_import_resumes_with_the_chunks_not_done(clerk, geo, monkeypatch, django_capture_on_commit_callbacks):
    monkeypatch.setattr(individuals.Importer, "CHUNK", 5)
    upload = receive(clerk, household_rows(geo.village_a.code), django_capture_on_commit_callbacks)
    upload.start_import("VALID_ROWS")
    upload.save()
    job = Job.objects.create(kind=services.IMPORT_JOB, params={"upload": upload.pk}, idempotency_key="chunks-1",
                             started_by=clerk)
    real = individuals.import_chunk

    def crash_on_the_second_chunk(upload, first, last, id_base):
        if first > 6:
            raise RuntimeError("worker killed")
        return real(upload, first, last, id_base)

    monkeypatch.setattr(individuals.Importer, "import_chunk", staticmethod(crash_on_the_second_chunk))
    with pytest.raises(RuntimeError):
        services.run_import(upload, job, lambda *args: None)
    job.refresh_from_db()
    assert job.result["done"] == [2] and job.result["imported"] == 5
    assert Individual.objects.count() == 5

    monkeypatch.setattr(individuals.Importer, "import_chunk", staticmethod(real))
    services.run_import(Upload.objects.get(pk=upload.pk), job, lambda *args: None)

    assert Individual.objects.count() == 12 and Individual.objects.values("national_id").distinct().count() == 12
    assert Membership.objects.count() == 12 and Household.objects.count() == 4
    assert Upload.objects.get(pk=upload.pk).counts["imported"] == 12


@pytest.mark.django_db(transaction=True)
def test_chunks_on_several_connections_import_everyone_once(clerk, geo, monkeypatch, settings):
    """A real commit, as in the worker: on PostgreSQL the chunks run on two connections at once."""
    monkeypatch.setattr(individuals.Importer, "CHUNK", 4)
    settings.MIZANI_IMPORT_CONNECTIONS = 2
    threads, real_mark = set(), services._mark_chunk

    def mark(job, start, count):
        threads.add(threading.current_thread().name.split("_")[0])
        return real_mark(job, start, count)

    monkeypatch.setattr(services, "_mark_chunk", mark)
    upload = services.upload_receive(kind="INDIVIDUALS", file=csv_file(household_rows(geo.village_a.code, 6, 3)),
                                     by=clerk)
    upload = Upload.objects.get(pk=upload.pk)
    assert upload.status == UploadStatus.READY, upload.problem
    services.import_start(upload=upload, mode="VALID_ROWS", by=clerk)

    upload = Upload.objects.get(pk=upload.pk)
    assert upload.status == UploadStatus.IMPORTED and upload.counts["imported"] == 18
    assert Individual.objects.count() == 18 and Membership.objects.count() == 18
    assert set(Membership.objects.filter(role_id="HEAD").values_list("household__code", flat=True)) == {
        f"HH-C{h}" for h in range(6)}
    assert threads == ({"mizani-import"} if connection.vendor == "postgresql" else {"MainThread"})
