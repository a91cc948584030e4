"""The upload history's filters offer only what the user may read."""

import pytest
from django.test import Client
from django.urls import reverse

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_the_upload_history_offers_payroll_names_only_to_those_who_may_read_payrolls(approved_payroll, geo):
    clerk = UserFactory(username="clerk_uploads", role="Clerk", locations=[geo.district_a])
    client = Client()
    client.force_login(clerk)

    page = client.get(reverse("bulk_upload:index"))

    assert page.status_code == 200 and approved_payroll.name not in page.content.decode()


def test_the_upload_history_export_reads_as_the_page_does(geo):
    import csv
    import io

    from schemes.bulk.models import Upload, UploadKind, UploadStatus

    clerk = UserFactory(username="clerk_uploads", role="Clerk", locations=[geo.district_a])
    Upload.objects.create(stored_name="u1.csv", uploaded_by=clerk, scope_root=geo.district_a, original_name="p.csv",
                          kind=UploadKind.INDIVIDUALS, status=UploadStatus.IMPORTED,
                          counts={"rows": 10, "valid": 7, "errors": 3, "imported": 7, "households": 2})
    client = Client()
    client.force_login(clerk)

    response = client.get(reverse("bulk_upload:index"), {"export": "csv"})
    header, row = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))

    assert header[1:] == ["Kind", "Plan", "Payroll", "File", "By", "When", "Result", "Rows in the file", "Rows to import",
                          "Rows with errors", "Imported", "Why the file was refused"]
    assert row[1] == "Individuals (with households)" and row[7] == "Imported"
    assert len(row[6]) == len("2026-11-25 07:30") and row[8:12] == ["10", "7", "3", "7"]
