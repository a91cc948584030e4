"""The individuals import's possible duplicates (of registered people and within the file), its
repeated national IDs and how headers are matched to fields (QA of issue 5)."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from schemes.bulk import individuals, services
from schemes.bulk.models import StagedIndividual, UploadStatus
from schemes.registry.models import DuplicateCandidate, DuplicateStatus, Individual, RegistryField
from tests.factories import IndividualFactory, RegistryFieldFactory, UserFactory
from tests.schemes.bulk.test_individuals import HEADER, client_for, errors_of, receive

pytestmark = pytest.mark.django_db


@pytest.fixture
def clerk(geo, member_roles):
    RegistryFieldFactory(name="income", field_type="decimal", min_value=0)
    return UserFactory(role="Clerk", locations=[geo.district_a])


def person(first, last, dob, village, national_id=""):
    return [first, last, dob, "F", national_id, village, "", "", "", ""]


def plan_of(sql):
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}")
            return "\n".join(str(row[-1]) for row in cursor.fetchall())
        cursor.execute(f"EXPLAIN {sql}")
        return "\n".join(row[0] for row in cursor.fetchall())


def test_the_possible_duplicates_check_is_driven_by_the_files_rows_not_by_each_registered_person(
        clerk, geo, django_capture_on_commit_callbacks):
    """64k registered people made a 3,000-row file's check take 51 s on SQLite: the registry was read
    whole and, for each person, the staged rows scanned again (a correlated subquery)."""
    IndividualFactory(first_name="Asha", last_name="Mollel", dob=datetime.date(1980, 2, 1), location=geo.village_a)
    upload = receive(clerk, [person("Asha", "Mollel", "1980-02-01", geo.village_a.code)],
                     django_capture_on_commit_callbacks)
    with CaptureQueriesContext(connection) as queries:
        individuals._mark_possible_duplicates(upload)
    (update,) = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE")]

    plan = plan_of(update)
    assert "CORRELATED" not in plan and "SubPlan" not in plan
    if connection.vendor == "sqlite":
        assert "SEARCH p USING INDEX individual_dob_idx" in plan  # namesakes found by birth date, not a scan
    assert StagedIndividual.objects.get(upload_id=upload.pk).possible_duplicate_of is not None


def test_a_possible_duplicate_outside_the_clerks_locations_is_told_but_not_named(
        clerk, geo, django_capture_on_commit_callbacks):
    inside = IndividualFactory(first_name="Asha", last_name="Mollel", dob=datetime.date(1980, 2, 1),
                               location=geo.village_a)
    outside = IndividualFactory(first_name="Baraka", last_name="Ngowi", dob=datetime.date(1975, 3, 4),
                                location=geo.village_b)
    upload = receive(clerk, [person("Asha", "Mollel", "1980-02-01", geo.village_a.code),
                             person("Baraka", "Ngowi", "1975-03-04", geo.village_a.code)],
                     django_capture_on_commit_callbacks)

    assert upload.counts["possible_duplicates"] == 2
    rows = {row["summary"].split(" (")[0]: row for row in individuals.sample(upload)}
    assert rows["Asha Mollel"]["possible_duplicate_of"] == inside.pk
    assert rows["Baraka Ngowi"]["possible_duplicate_of"] is None and rows["Baraka Ngowi"]["duplicate_elsewhere"]
    assert rows["Baraka Ngowi"]["summary"] == "Baraka Ngowi (possible duplicate of someone registered outside your locations)"
    page = client_for(clerk).get(reverse("bulk_upload:inspect", args=[upload.pk])).content.decode()
    assert "someone registered outside your locations" in page
    assert reverse("registry_individual:inspect", args=[inside.pk]) in page
    assert reverse("registry_individual:inspect", args=[outside.pk]) not in page


def test_possible_duplicates_far_down_the_file_come_first_in_the_sample(clerk, geo, django_capture_on_commit_callbacks):
    twin = IndividualFactory(first_name="Zawadi", last_name="Swai", dob=datetime.date(1990, 5, 6), location=geo.village_a)
    village = geo.village_a.code
    rows = [person(f"P{n}", "Row", "1980-01-01", village, f"NID-{n}") for n in range(20)]
    rows.append(person("Zawadi", "Swai", "1990-05-06", village))
    upload = receive(clerk, rows, django_capture_on_commit_callbacks)

    sample = individuals.sample(upload)
    assert len(sample) == 10
    assert sample[0]["possible_duplicate_of"] == twin.pk and sample[0]["summary"].startswith("Zawadi Swai")
    assert [row["possible_duplicate_of"] for row in sample[1:]] == [None] * 9
    page = client_for(clerk).get(reverse("bulk_upload:inspect", args=[upload.pk])).content.decode()
    assert "Rows to be imported, possible duplicates first" in page


def test_the_same_person_twice_in_a_file_is_a_possible_duplicate_naming_the_other_row(
        clerk, geo, django_capture_on_commit_callbacks):
    village = geo.village_a.code
    upload = receive(clerk, [
        person("Asha", "Mollel", "1980-02-01", village),
        person("Other", "Person", "1970-01-01", village),
        person("ASHA", "mollel", "1980-02-01", village),
        # Two rows with different national IDs are two people, whatever their names.
        person("Same", "Name", "1960-01-01", village, "NID-A"),
        person("Same", "Name", "1960-01-01", village, "NID-B"),
    ], django_capture_on_commit_callbacks)

    assert upload.status == UploadStatus.READY
    assert upload.counts["errors"] == 0 and upload.counts["valid"] == 5  # a warning, not an error
    assert upload.counts["possible_duplicates_in_file"] == 2 and upload.counts["possible_duplicates"] == 0
    by_row = {row["row_number"]: row for row in individuals.sample(upload)}
    first, second = sorted(number for number, row in by_row.items() if row["duplicate_rows"])
    assert list(by_row)[:2] == [first, second]  # shown first
    assert by_row[first]["duplicate_rows"] == f"row {second} of the file"
    assert by_row[second]["duplicate_rows"] == f"row {first} of the file"
    assert by_row[second]["summary"] == f"ASHA mollel (possible duplicate of row {first} of the file)"


def test_possible_duplicates_of_an_import_reach_the_review_queue(clerk, geo, django_capture_on_commit_callbacks):
    registered = IndividualFactory(first_name="Asha", last_name="Mollel", dob=datetime.date(1980, 2, 1),
                                   location=geo.village_a)
    village = geo.village_a.code
    upload = receive(clerk, [
        person("Asha", "Mollel", "1980-02-01", village),
        person("Juma", "Kimaro", "2001-01-01", village),
        person("Juma", "Kimaro", "2001-01-01", village),
        person("Juma", "Kimaro", "2001-01-01", village, "NID-J"),
        person("Lone", "Person", "1999-01-01", village),
    ], django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        services.import_start(upload=upload, mode="VALID_ROWS", by=clerk)

    upload.refresh_from_db()
    assert upload.status == UploadStatus.IMPORTED and upload.counts["imported"] == 5
    asha = Individual.objects.exclude(pk=registered.pk).get(first_name="Asha")
    jumas = list(Individual.objects.filter(first_name="Juma").order_by("pk").values_list("pk", flat=True))
    pairs = {(c.first_id, c.second_id): c for c in DuplicateCandidate.objects.all()}
    # Each Juma with the first Juma without an ID: one pair per row, not every pair of the group.
    assert set(pairs) == {(registered.pk, asha.pk), (jumas[0], jumas[1]), (jumas[0], jumas[2])}
    for candidate in pairs.values():
        assert (candidate.status, candidate.reasons, candidate.score) == (DuplicateStatus.OPEN, ["name_dob"], 90)


def test_a_label_never_takes_the_name_of_another_field(clerk, geo, django_capture_on_commit_callbacks):
    """A household attribute `monthly_income` and a person attribute labelled "Monthly income": the
    file's column monthly_income is not the person's income."""
    RegistryField.objects.filter(name="income").update(label="Monthly income")
    RegistryFieldFactory(name="monthly_income", label="Household income", target=RegistryField.Target.HOUSEHOLD,
                         field_type="decimal")
    header = [*HEADER[:-1], "monthly_income"]
    upload = receive(clerk, [person("Asha", "Mollel", "1980-02-01", geo.village_a.code)[:-1] + ["500"]],
                     django_capture_on_commit_callbacks, header=header)

    assert upload.status == UploadStatus.READY and upload.unused_columns == ["monthly_income"]
    assert StagedIndividual.objects.get(upload_id=upload.pk).attributes == {}
    # Headed by its name, the column is the person's income.
    upload = receive(clerk, [person("Asha", "Mollel", "1980-02-01", geo.village_a.code)[:-1] + ["500"]],
                     django_capture_on_commit_callbacks, header=[*HEADER[:-1], "Income"])
    assert StagedIndividual.objects.get(upload_id=upload.pk).attributes == {"income": "500"}


def test_a_label_that_is_another_attributes_name_never_takes_its_column(clerk, geo, django_capture_on_commit_callbacks):
    RegistryFieldFactory(name="salary", label="Wage", field_type="decimal")
    RegistryFieldFactory(name="wage", label="Wage rate", field_type="decimal")  # its name is salary's label
    upload = receive(clerk, [person("Asha", "Mollel", "1980-02-01", geo.village_a.code)[:-1] + ["7"]],
                     django_capture_on_commit_callbacks, header=[*HEADER[:-1], "Wage"])

    assert StagedIndividual.objects.get(upload_id=upload.pk).attributes == {"wage": "7"}


def test_a_header_two_attributes_are_labelled_is_refused_naming_both(clerk, geo, django_capture_on_commit_callbacks):
    RegistryFieldFactory(name="farm_size", label="Size")
    RegistryFieldFactory(name="house_size", label="size")
    upload = receive(clerk, [person("Asha", "Mollel", "1980-02-01", geo.village_a.code)[:-1] + ["3"]],
                     django_capture_on_commit_callbacks, header=[*HEADER[:-1], "SIZE"])

    assert upload.status == UploadStatus.REFUSED
    assert '"SIZE"' in upload.problem and '"farm_size"' in upload.problem and '"house_size"' in upload.problem


def test_a_repeated_national_id_names_the_other_rows(clerk, geo, django_capture_on_commit_callbacks):
    village = geo.village_a.code
    upload = receive(clerk, [person("A", "One", "1980-01-01", village, "NID-7"),
                             person("B", "Two", "1981-01-01", village, "NID-8"),
                             person("C", "Three", "1982-01-01", village, "nid 7"),
                             person("D", "Four", "1983-01-01", village, "NID-8"),
                             person("E", "Five", "1984-01-01", village, "NID-8")],
                     django_capture_on_commit_callbacks)

    numbers = {row["first_name"]: row["row_number"] for row in StagedIndividual.objects.filter(
        upload_id=upload.pk).values("first_name", "row_number")}
    messages = {row["first_name"]: row["errors"] for row in errors_of(upload)}
    assert f"also on row {numbers['C']}." in messages["A"] and f"also on row {numbers['A']}." in messages["C"]
    assert f"also on row {numbers['E']} and 1 more." in messages["B"]
    assert f"also on row {numbers['B']} and 1 more." in messages["D"]
    assert upload.counts["errors"] == 5
