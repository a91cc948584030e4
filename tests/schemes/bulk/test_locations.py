"""The location list through the pipeline: new locations created level by level (children may come
before their parents in the file), registered ones renamed or moved with their subtree; every bad row
named with its column (repeated code, unknown parent, cycle, a move under itself, outside the
uploader's locations) and nothing written before the import."""

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from schemes.bulk import services
from schemes.bulk.models import StagedLocation, Upload, UploadStatus
from sites.models import Location
from tests.factories import LocationFactory, UserFactory
from workflows.models import WorkflowDefinition
from workflows.services import approval_submit

pytestmark = pytest.mark.django_db


@pytest.fixture
def sysadmin(db):
    WorkflowDefinition.objects.create(operation="bulk.import", requires_approval=False)
    return UserFactory(username="sysadmin", role="System administrator", national=True)


def receive(user, text, capture):
    file = SimpleUploadedFile("locations.csv", text.encode("utf-8"), content_type="text/csv")
    with capture(execute=True):
        upload = services.upload_receive(kind="LOCATIONS", file=file, by=user)
    return Upload.objects.get(pk=upload.pk)


def import_now(upload, user, capture):
    with capture(execute=True):
        with capture(execute=True):
            approval_submit(operation="bulk.import", by=user, payload={"upload": upload.pk, "mode": "VALID_ROWS"})
    upload.refresh_from_db()
    return upload


def errors_of(upload):
    text = services.error_file_path(upload).read_text(encoding="utf-8-sig")
    return {row["code"]: row["errors"] for row in csv.DictReader(io.StringIO(text))}


def test_a_tree_is_created_level_by_level(sysadmin, django_capture_on_commit_callbacks):
    upload = receive(sysadmin, "code,name,parent_code\n"
                               "V1,Village One,W1\n"      # child before parent
                               "R1,Region One,\n"
                               "D1,District One,R1\n"
                               "W1,Ward One,D1\n", django_capture_on_commit_callbacks)
    assert upload.status == UploadStatus.READY, upload.problem
    assert upload.counts == {"rows": 4, "valid": 4, "errors": 0, "creates": 4, "updates": 0, "unchanged": 0}
    assert not Location.objects.exists()

    upload = import_now(upload, sysadmin, django_capture_on_commit_callbacks)
    assert upload.status == UploadStatus.IMPORTED and upload.counts["locations_created"] == 4
    tree = {loc.code: loc for loc in Location.objects.all()}
    assert tree["V1"].parent == tree["W1"] and tree["W1"].parent == tree["D1"] and tree["D1"].parent == tree["R1"]
    assert tree["V1"].depth == 4
    assert tree["V1"].path == f"/{tree['R1'].pk}/{tree['D1'].pk}/{tree['W1'].pk}/{tree['V1'].pk}/"
    assert not StagedLocation.objects.filter(upload_id=upload.pk).exists()


def test_registered_locations_are_renamed_and_moved_with_their_subtree(sysadmin, django_capture_on_commit_callbacks):
    north, south = LocationFactory(code="N", name="North"), LocationFactory(code="S", name="South")
    district = LocationFactory(code="D", name="District", parent=north)
    village = LocationFactory(code="V", name="Village", parent=district)
    upload = receive(sysadmin, "code,name,parent_code\nD,District,S\nN,Northern,\nS,South,\n",
                     django_capture_on_commit_callbacks)
    assert upload.counts == {"rows": 3, "valid": 3, "errors": 0, "creates": 0, "updates": 2, "unchanged": 1}
    import_now(upload, sysadmin, django_capture_on_commit_callbacks)
    for location in (north, district, village):
        location.refresh_from_db()
    assert north.name == "Northern"
    assert district.parent == south and village.path == f"{south.path}{district.pk}/{village.pk}/"


@pytest.mark.parametrize("text, code, expected", [
    ("code,name,parent_code\nR1,Region,\nR1,Region again,\n", "R1", "code: This code is on more than one row"),
    ("code,name,parent_code\nR1,Region,\nD1,District,NOPE\n", "D1", "parent_code: No location has the code 'NOPE'"),
    ("code,name,parent_code\nA1,A,B1\nB1,B,A1\n", "A1", "parent_code: The parent codes form a cycle"),
    ("code,name,parent_code\nX1,X,X1\n", "X1", "parent_code: A location cannot be its own parent."),
    ("code,name,parent_code\nC1,,\n", "C1", "name: Required."),
    ("code,name,parent_code\nTOP,Top,LEAF\n", "TOP", "parent_code: This would put the location under itself."),
    ("code,name,parent_code\nK1,Kid,BAD\nK2,Grandkid,K1\n", "K2", "parent_code: The parent 'K1' has errors"),
], ids=["repeated-code", "unknown-parent", "cycle", "own-parent", "no-name", "under-itself", "bad-parent-row"])
def test_bad_rows_are_named_and_nothing_is_written(sysadmin, text, code, expected, django_capture_on_commit_callbacks):
    top = LocationFactory(code="TOP")
    LocationFactory(code="LEAF", parent=LocationFactory(code="MID", parent=top))
    before = list(Location.objects.values_list("code", "name", "parent_id", "path"))
    upload = receive(sysadmin, text, django_capture_on_commit_callbacks)
    assert expected in errors_of(upload)[code]
    assert list(Location.objects.values_list("code", "name", "parent_id", "path")) == before


def test_a_missing_column_refuses_the_file(sysadmin, django_capture_on_commit_callbacks):
    upload = receive(sysadmin, "code,name\nR1,Region\n", django_capture_on_commit_callbacks)
    assert upload.status == UploadStatus.REFUSED and "parent_code" in upload.problem


def test_a_district_administrator_changes_only_their_own_subtree(geo, django_capture_on_commit_callbacks):
    WorkflowDefinition.objects.create(operation="bulk.import", requires_approval=False)
    admin = UserFactory(role="System administrator", locations=[geo.district_a])
    text = (f"code,name,parent_code\nNEWV,New village,{geo.ward_a.code}\nFAR,Far village,{geo.ward_b.code}\n"
            f"TOPNEW,New region,\n{geo.district_b.code},Renamed,{geo.region.code}\n")
    upload = receive(admin, text, django_capture_on_commit_callbacks)
    errors = errors_of(upload)
    assert set(errors) == {"FAR", "TOPNEW", geo.district_b.code}
    assert all("Outside your locations." in message for message in errors.values())
    import_now(upload, admin, django_capture_on_commit_callbacks)
    assert Location.objects.get(code="NEWV").parent == geo.ward_a
    assert not Location.objects.filter(code__in=["FAR", "TOPNEW"]).exists()
