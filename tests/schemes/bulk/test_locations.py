"""The location list through the pipeline: new locations created level by level (children may come
before their parents in the file), registered ones renamed (an empty parent_code keeps the parent) or
moved with their subtree, each move counted and shown with the people it takes; every bad row named
with its column (repeated code, unknown parent, a parent whose row has errors, cycle, a move under
itself or to another level, outside the uploader's locations) and nothing written before the import."""

import csv
import io

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from schemes.bulk import approvals, services
from schemes.bulk.models import StagedLocation, Upload, UploadStatus
from schemes.registry.selectors import households_for, individuals_for
from sites.models import Location
from tests.factories import HouseholdFactory, IndividualFactory, LocationFactory, UserFactory
from workflows.models import JobStatus, WorkflowDefinition
from workflows.services import approval_submit, job_run

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
    assert upload.counts == {"rows": 4, "valid": 4, "errors": 0, "creates": 4, "updates": 0, "moves": 0,
                             "unchanged": 0}
    assert not Location.objects.exists()

    upload = import_now(upload, sysadmin, django_capture_on_commit_callbacks)
    assert upload.status == UploadStatus.IMPORTED and upload.counts["locations_created"] == 4
    tree = {loc.code: loc for loc in Location.objects.all()}
    assert tree["V1"].parent == tree["W1"] and tree["W1"].parent == tree["D1"] and tree["D1"].parent == tree["R1"]
    assert tree["V1"].depth == 4 and tree["R1"].parent is None and tree["R1"].depth == 1
    assert tree["V1"].path == f"/{tree['R1'].pk}/{tree['D1'].pk}/{tree['W1'].pk}/{tree['V1'].pk}/"
    assert not StagedLocation.objects.filter(upload_id=upload.pk).exists()


def test_registered_locations_are_renamed_and_moved_with_their_subtree(sysadmin, django_capture_on_commit_callbacks):
    north, south = LocationFactory(code="N", name="North"), LocationFactory(code="S", name="South")
    district = LocationFactory(code="D", name="District", parent=north)
    village = LocationFactory(code="V", name="Village", parent=district)
    upload = receive(sysadmin, "code,name,parent_code\nD,District,S\nN,Northern,\nS,South,\n",
                     django_capture_on_commit_callbacks)
    assert upload.counts == {"rows": 3, "valid": 3, "errors": 0, "creates": 0, "updates": 1, "moves": 1,
                             "unchanged": 1}
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
    ("code,name,parent_code\nK1,Kid,BAD\nK2,Grandkid,K1\n", "K2",
     "parent_code: The parent K1 (row 2) has errors in this file"),
    # L1: a parent refused while reading the file (no name) was told "No location has the code".
    ("code,name,parent_code\nR1,Region,\nW9,,R1\nV9,Village,W9\n", "V9",
     "parent_code: The parent W9 (row 3) has errors in this file"),
    ("code,name,parent_code\nW9,Ward,TOP\nW9,Ward again,TOP\nV9,Village,W9\n", "V9",
     "parent_code: The parent W9 (rows 2, 3) has errors in this file"),
], ids=["repeated-code", "unknown-parent", "cycle", "own-parent", "no-name", "under-itself", "bad-parent-row",
        "parent-row-unreadable", "parent-code-repeated"])
def test_bad_rows_are_named_and_nothing_is_written(sysadmin, text, code, expected, django_capture_on_commit_callbacks):
    top = LocationFactory(code="TOP")
    LocationFactory(code="LEAF", parent=LocationFactory(code="MID", parent=top))
    before = list(Location.objects.values_list("code", "name", "parent_id", "path"))
    upload = receive(sysadmin, text, django_capture_on_commit_callbacks)
    assert expected in errors_of(upload)[code]
    assert list(Location.objects.values_list("code", "name", "parent_id", "path")) == before


def test_a_missing_column_refuses_the_file(sysadmin, django_capture_on_commit_callbacks):
    upload = receive(sysadmin, "code,parent_code\nR1,\n", django_capture_on_commit_callbacks)
    assert upload.status == UploadStatus.REFUSED and "name" in upload.problem


def test_a_file_without_parent_codes_renames_registered_locations_where_they_are(
        geo, sysadmin, django_capture_on_commit_callbacks):
    upload = receive(sysadmin, f"code,name\n{geo.village_a.code},Renamed village\nNEWR,New region\n",
                     django_capture_on_commit_callbacks)
    assert (upload.counts["updates"], upload.counts["creates"], upload.counts["moves"]) == (1, 1, 0)

    import_now(upload, sysadmin, django_capture_on_commit_callbacks)
    village = Location.objects.get(pk=geo.village_a.pk)
    assert (village.name, village.parent_id) == ("Renamed village", geo.ward_a.pk)
    assert Location.objects.get(code="NEWR").parent is None


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


def people_in(location, people, households):
    IndividualFactory.create_batch(people, location=location)
    HouseholdFactory.create_batch(households, location=location)


def test_an_empty_parent_keeps_a_registered_locations_parent(geo, sysadmin, clerk_a,
                                                               django_capture_on_commit_callbacks):
    """A rename file with parent_code left empty moved every row to the top of the tree: its people
    dropped out of their district clerk's locations. A new code with no parent is still a region."""
    people_in(geo.village_a, 3, 1)
    before = {loc.pk: (loc.parent_id, loc.depth, loc.path) for loc in (geo.village_a, geo.district_a, geo.region)}
    upload = receive(sysadmin, f"code,name,parent_code\n{geo.village_a.code},Renamed village,\n"
                               f"{geo.district_a.code},Renamed district,\n{geo.region.code},{geo.region.name},\n"
                               "NEWR,New region,\n", django_capture_on_commit_callbacks)
    assert upload.counts == {"rows": 4, "valid": 4, "errors": 0, "creates": 1, "updates": 2, "moves": 0,
                             "unchanged": 1}
    cells = {row["cells"][0]: row["cells"] for row in services.IMPORTERS[upload.kind].sample(upload)}
    assert cells[geo.village_a.code][2:] == [f"{geo.ward_a.code} (kept)", f"renamed from {geo.village_a.name}"]
    assert cells["NEWR"][2:] == ["the top level", "new"]

    import_now(upload, sysadmin, django_capture_on_commit_callbacks)
    after = {loc.pk: (loc.parent_id, loc.depth, loc.path) for loc in Location.objects.filter(pk__in=before)}
    assert after == before
    assert Location.objects.get(pk=geo.village_a.pk).name == "Renamed village"
    new = Location.objects.get(code="NEWR")
    assert new.parent is None and new.depth == 1 and new.path == f"/{new.pk}/"
    assert individuals_for(clerk_a).count() == 3 and households_for(clerk_a).count() == 1


def test_a_move_is_counted_and_shown_with_the_people_it_takes(geo, sysadmin, client,
                                                              django_capture_on_commit_callbacks):
    people_in(geo.village_a, 2, 1)
    people_in(geo.ward_a, 1, 0)
    IndividualFactory(location=geo.village_a, deleted_at=timezone.now())  # not counted
    text = (f"code,name,parent_code\n{geo.village_b.code},{geo.village_b.name},{geo.ward_b.code}\n"
            f"{geo.ward_a.code},Ward moved,{geo.district_b.code}\n")
    upload = receive(sysadmin, text, django_capture_on_commit_callbacks)
    assert upload.counts["moves"] == 1 and upload.counts["updates"] == 0 and upload.counts["unchanged"] == 1
    assert ("Moves (locations moved to another parent, with all under them)", "1") in services.counts_shown(upload)
    move = (f"moves from {geo.district_a.name} ({geo.district_a.code}) to {geo.district_b.name} "
            f"({geo.district_b.code}), with 3 people and 1 household under it")
    sample = services.IMPORTERS[upload.kind].sample(upload)
    assert sample[0]["row_number"] == 3 and sample[0]["cells"] == [geo.ward_a.code, "Ward moved", geo.district_b.code,
                                                                    move]  # moves first
    assert sample[1]["cells"][3] == "no change"
    client.force_login(sysadmin)
    page = client.get(reverse("bulk_upload:inspect", args=[upload.pk])).content.decode()
    assert "Rows to be imported, moves first" in page and escape(move) in page

    summary = approvals.prepare({"upload": upload.pk, "mode": "VALID_ROWS"}, sysadmin).summary
    assert summary["counts"]["Moves (locations moved to another parent, with all under them)"] == "1"
    assert summary["sample"][0]["name"] == f"Row 3: {geo.ward_a.code} Ward moved: {move}"

    import_now(upload, sysadmin, django_capture_on_commit_callbacks)
    ward, village = Location.objects.get(pk=geo.ward_a.pk), Location.objects.get(pk=geo.village_a.pk)
    assert ward.parent_id == geo.district_b.pk and ward.depth == 3
    assert village.path == f"{geo.district_b.path}{ward.pk}/{village.pk}/" and village.depth == 4


def test_a_move_to_another_level_is_refused(geo, sysadmin, django_capture_on_commit_callbacks):
    """A village under a district would become a ward: refused, naming the row's parent_code, and a new
    row under it is told its parent has errors. A district moved to another region stays a district."""
    upload = receive(sysadmin, f"code,name,parent_code\n{geo.village_a.code},Village,{geo.district_b.code}\n"
                               f"{geo.district_a.code},District,{geo.other_region.code}\n"
                               f"HAMLET,Hamlet,{geo.village_a.code}\n", django_capture_on_commit_callbacks)
    errors = errors_of(upload)
    assert errors[geo.village_a.code] == (
        f"parent_code: Under '{geo.district_b.code}' its level would change from Village to Ward: a file moves a "
        "location only within its level. Either give a parent at the Ward level, or leave parent_code empty to "
        "keep its parent; to change its level, edit it under Platform > Locations.")
    assert errors["HAMLET"].startswith(f"parent_code: The parent {geo.village_a.code} (row 2) has errors in this")
    assert set(errors) == {geo.village_a.code, "HAMLET"}
    import_now(upload, sysadmin, django_capture_on_commit_callbacks)
    district = Location.objects.get(pk=geo.district_a.pk)
    assert district.parent_id == geo.other_region.pk and district.depth == 2
    assert Location.objects.get(pk=geo.village_a.pk).parent_id == geo.ward_a.pk


def test_a_region_given_a_parent_is_told_to_leave_it_empty(geo, sysadmin, django_capture_on_commit_callbacks):
    upload = receive(sysadmin, f"code,name,parent_code\n{geo.other_region.code},Region,{geo.region.code}\n",
                     django_capture_on_commit_callbacks)
    assert "from Region to District" in errors_of(upload)[geo.other_region.code]
    assert "leave parent_code empty (it stays at the top)" in errors_of(upload)[geo.other_region.code]


def test_a_district_administrator_cannot_move_a_location_out_of_their_subtree(
        geo, django_capture_on_commit_callbacks):
    WorkflowDefinition.objects.create(operation="bulk.import", requires_approval=False)
    admin = UserFactory(role="System administrator", locations=[geo.district_a])
    upload = receive(admin, f"code,name,parent_code\n{geo.village_a.code},Village,{geo.ward_b.code}\n",
                     django_capture_on_commit_callbacks)
    assert errors_of(upload)[geo.village_a.code] == (
        f"parent_code: The parent '{geo.ward_b.code}' is outside your locations: you can move a location only "
        "within them.")


def test_a_file_checked_before_its_move_target_changed_level_is_refused_and_changes_nothing(
        geo, sysadmin, client, django_capture_on_commit_callbacks):
    """S14: the check passed a village moved under a ward; the ward was then moved under the region in
    its own form. The import made the village a level-3 location: now the file is refused, saying why."""
    upload = receive(sysadmin, f"code,name,parent_code\n{geo.village_a.code},Village,{geo.ward_b.code}\n",
                     django_capture_on_commit_callbacks)
    assert upload.status == UploadStatus.READY and upload.counts["moves"] == 1
    ward_b = Location.objects.get(pk=geo.ward_b.pk)
    ward_b.parent = Location.objects.get(pk=geo.region.pk)
    ward_b.save()

    said = (f"The locations changed since this file was checked: row 2 ({geo.village_a.code}): {geo.ward_b.code} "
            "is now a District, no longer a Ward. Nothing was imported: upload the file again to check it against "
            "the locations as they are now.")
    client.force_login(sysadmin)
    assert escape(said) in client.get(reverse("bulk_upload:inspect", args=[upload.pk])).content.decode()
    with pytest.raises(ValidationError) as refused:
        import_now(upload, sysadmin, django_capture_on_commit_callbacks)
    assert refused.value.messages == [said]
    village = Location.objects.get(pk=geo.village_a.pk)
    assert (village.depth, village.parent_id) == (4, geo.ward_a.pk)


def test_a_district_import_refuses_a_move_whose_target_left_their_locations_once_started(
        geo, django_capture_on_commit_callbacks):
    """The import started (its job queued), then the ward a move targets was moved to another district
    (a ward still): the job re-checks in its transaction, refuses the whole file and writes nothing."""
    WorkflowDefinition.objects.create(operation="bulk.import", requires_approval=False)
    admin = UserFactory(role="System administrator", locations=[geo.district_a])
    second_ward = LocationFactory(code="WA2", parent=geo.district_a)
    upload = receive(admin, f"code,name,parent_code\n{geo.village_a.code},Renamed,WA2\nNEWV,New village,WA2\n"
                            f"{geo.ward_a.code},Ward renamed,\n", django_capture_on_commit_callbacks)
    assert (upload.counts["moves"], upload.counts["creates"], upload.counts["updates"]) == (1, 1, 1)
    job = services.import_start(upload=upload, mode="VALID_ROWS", by=admin)
    second_ward.parent = Location.objects.get(pk=geo.district_b.pk)
    second_ward.save()

    job = job_run(job.pk)
    assert job.status == JobStatus.FAILED
    assert (f"row 2 ({geo.village_a.code}): The parent 'WA2' is outside your locations: you can move a location "
            "only within them; row 3 (NEWV): Outside your locations. Nothing was imported") in job.error
    upload.refresh_from_db()
    assert upload.status == UploadStatus.FAILED and "Nothing was imported" in upload.problem  # the page says why
    village = Location.objects.get(pk=geo.village_a.pk)
    assert (village.name, village.parent_id) == (geo.village_a.name, geo.ward_a.pk)
    assert Location.objects.get(pk=geo.ward_a.pk).name == geo.ward_a.name
    assert not Location.objects.filter(code="NEWV").exists()


def test_rows_are_refused_once_a_new_ones_parent_changed_level_or_a_code_was_added_or_deleted_meanwhile(
        geo, sysadmin, client, django_capture_on_commit_callbacks):
    """A new location is inserted at the level the check found: under a parent moved to another level
    since, its depth would not match its path. A row under a new row in the same case follows it."""
    upload = receive(sysadmin, f"code,name,parent_code\nHAM,Hamlet,{geo.ward_b.code}\nSUB,Sub-hamlet,HAM\n"
                               f"NEWR,New region,\n{geo.village_b.code},Renamed,\n", django_capture_on_commit_callbacks)
    assert (upload.counts["creates"], upload.counts["updates"]) == (3, 1)
    ward_b = Location.objects.get(pk=geo.ward_b.pk)
    ward_b.parent = Location.objects.get(pk=geo.region.pk)
    ward_b.save()
    LocationFactory(code="NEWR")
    Location.objects.filter(pk=geo.village_b.pk).delete()

    said = (f"The locations changed since this file was checked: row 2 (HAM): its parent {geo.ward_b.code} is now a "
            "District, no longer a Ward; row 4 (NEWR): NEWR was added under Platform > Locations; row 5 "
            f"({geo.village_b.code}): {geo.village_b.code} was deleted under Platform > Locations. Nothing was "
            "imported: upload the file again to check it against the locations as they are now.")
    assert services.IMPORTERS[upload.kind].problems(upload) == said
    client.force_login(sysadmin)
    assert escape(said) in client.get(reverse("bulk_upload:inspect", args=[upload.pk])).content.decode()
