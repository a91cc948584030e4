"""The upload history's filters offer only what the user may read; its exports (CSV and XLSX alike)
put each value under its heading, times in the organisation's time."""

import csv
import datetime
import io

import openpyxl
import pytest
from django.test import Client
from django.urls import reverse

from schemes.bulk.models import Upload, UploadKind, UploadStatus
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def client_for(user):
    client = Client()
    client.force_login(user)
    return client


def test_the_upload_history_offers_payroll_names_only_to_those_who_may_read_payrolls(approved_payroll, geo):
    clerk = UserFactory(username="clerk_uploads", role="Clerk", locations=[geo.district_a])

    page = client_for(clerk).get(reverse("bulk_upload:index"))

    assert page.status_code == 200 and approved_payroll.name not in page.content.decode()


# Wednesday 25 November 2026, 22:30:15 UTC: already the 26th in Nairobi (UTC+3).
UPLOADED = datetime.datetime(2026, 11, 25, 22, 30, 15, 929340, tzinfo=datetime.UTC)


@pytest.fixture
def uploads(geo):
    """An imported upload with every count, and a refused one with only its reason, both uploaded at
    UPLOADED."""
    clerk = UserFactory(username="clerk_uploads", role="Clerk", locations=[geo.district_a])
    imported = Upload.objects.create(
        stored_name="u1.csv", uploaded_by=clerk, scope_root=geo.district_a, original_name="p.csv",
        kind=UploadKind.INDIVIDUALS, status=UploadStatus.IMPORTED,
        counts={"rows": 10, "valid": 7, "errors": 3, "imported": 7, "households": 2})
    refused = Upload.objects.create(
        stored_name="u2.csv", uploaded_by=clerk, scope_root=geo.district_a, original_name="q.csv",
        kind=UploadKind.INDIVIDUALS, status=UploadStatus.REFUSED, problem="The file is empty: put the rows in.")
    Upload.objects.update(created_at=UPLOADED)
    return clerk, imported, refused


def by_id(rows):
    """The heading row, then the rows in upload order (the listing's is newest first)."""
    return [rows[0], *sorted(rows[1:], key=lambda row: int(row[0]))]


def csv_export(user):
    response = client_for(user).get(reverse("bulk_upload:index"), {"export": "csv"})
    return by_id(list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig")))))


def xlsx_export(user):
    response = client_for(user).get(reverse("bulk_upload:index"), {"export": "xlsx"})
    assert response.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content)), read_only=True).active
    return by_id([list(row) for row in sheet.iter_rows(values_only=True)])


def test_the_upload_history_export_reads_as_the_page_does(uploads):
    clerk, _imported, _refused = uploads
    header, row, _refused_row = csv_export(clerk)

    assert header[1:] == ["Kind", "Plan", "Payroll", "File", "By", "When", "Result", "Rows in the file", "Rows to import",
                          "Rows with errors", "Imported", "Why the file was refused"]
    assert row[1] == "Individuals (with households)" and row[7] == "Imported"
    assert row[8:13] == ["10", "7", "3", "7", ""]


def test_the_xlsx_upload_history_puts_each_count_under_its_heading_as_the_csv_does(uploads, superuser):
    """The counts were once one column right of their headings in the XLSX (the row built with the
    reason first): "Rows to import" read 6 where the file had 6 rows."""
    in_xlsx, in_csv = xlsx_export(superuser), csv_export(superuser)
    _header, imported, refused = (dict(zip(in_xlsx[0], row, strict=True)) for row in in_xlsx)

    assert in_xlsx[0] == in_csv[0]
    assert [imported[h] for h in ("Rows in the file", "Rows to import", "Rows with errors", "Imported",
                                  "Why the file was refused")] == [10, 7, 3, 7, None]
    assert refused["Rows in the file"] is None and refused["Why the file was refused"] == \
        "The file is empty: put the rows in."
    as_text = [["" if cell is None else cell.strftime("%Y-%m-%d %H:%M:%S") if isinstance(cell, datetime.datetime)
                else str(cell) for cell in row] for row in in_xlsx]
    assert as_text == in_csv


def test_the_upload_history_tells_the_time_as_the_organisations_clocks_do(uploads, settings):
    settings.TIME_ZONE = "Africa/Nairobi"
    clerk, _imported, _refused = uploads

    header, row, _ = csv_export(clerk)
    in_xlsx = xlsx_export(clerk)
    page = client_for(clerk).get(reverse("bulk_upload:index")).content.decode()

    assert row[header.index("When")] == "2026-11-26 01:30:15"  # to the second, as the other exports
    assert in_xlsx[1][header.index("When")] == datetime.datetime(2026, 11, 26, 1, 30, 15)
    assert "2026-11-26 01:30" in page and "2026-11-25 22:30" not in page
