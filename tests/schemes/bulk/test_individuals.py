"""The individuals import through the whole pipeline: a file is checked whole (each row, then the set
in SQL), counted, its bad rows returned as an error file; nothing is written to the registry until
the import is approved; then households, people and memberships are created set-based, in chunks."""

import csv
import io

import pytest
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.urls import reverse

from schemes.bulk import services
from schemes.bulk.models import StagedError, StagedIndividual, Upload, UploadStatus
from schemes.registry.models import Household, Individual, Membership
from sites.models import OrganisationSettings
from tests.factories import HouseholdFactory, IndividualFactory, RegistryFieldFactory, UserFactory
from workflows.models import ApprovalRequest, RequestStatus, WorkflowDefinition, WorkflowStep
from workflows.services import approval_decide, approval_submit

pytestmark = pytest.mark.django_db

HEADER = ["first_name", "last_name", "dob", "sex", "national_id", "location", "group_code", "individual_role",
          "recipient_info", "income"]


def csv_file(rows, header=HEADER, name="people.csv"):
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return SimpleUploadedFile(name, out.getvalue().encode("utf-8"), content_type="text/csv")


@pytest.fixture
def clerk(geo, member_roles):
    RegistryFieldFactory(name="income", field_type="decimal", min_value=0)
    return UserFactory(role="Clerk", locations=[geo.district_a])


@pytest.fixture
def checker(geo):
    definition = WorkflowDefinition.objects.create(operation="bulk.import")
    WorkflowStep.objects.create(definition=definition, group=Group.objects.get(name="Checker"), sort_order=0)
    return UserFactory(role="Checker", locations=[geo.district_a])


def receive(clerk, rows, django_capture_on_commit_callbacks, **kwargs):
    with django_capture_on_commit_callbacks(execute=True):
        upload = services.upload_receive(kind="INDIVIDUALS", file=csv_file(rows, **kwargs), by=clerk)
    return Upload.objects.get(pk=upload.pk)


def errors_of(upload):
    text = services.error_file_path(upload).read_text(encoding="utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


def test_a_good_file_is_checked_counted_and_imported_once_approved(clerk, checker, geo,
                                                                   django_capture_on_commit_callbacks):
    village = geo.village_a.code
    upload = receive(clerk, [
        ["Asha", "Mollel", "1980-02-01", "F", "TZ-001", village, "HH1", "HEAD", "1", "1200.50"],
        ["Baraka", "Mollel", "2015-06-30", "M", "", village, "HH1", "SON", "", ""],
        ["Chausiku", "Ngowi", "1975-12-12", "female", "tz 002", village, "", "", "", "300"],
    ], django_capture_on_commit_callbacks)

    assert upload.status == UploadStatus.READY
    assert upload.counts == {"rows": 3, "valid": 3, "errors": 0, "creates": 3, "households": 1,
                             "first_member_heads": 0, "first_member_primaries": 0, "members_without_role": 0,
                             "possible_duplicates": 0}
    assert not Individual.objects.exists()

    request = approval_submit(operation="bulk.import", by=clerk, payload={"upload": upload.pk, "mode": "VALID_ROWS"})
    assert not Individual.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        with django_capture_on_commit_callbacks(execute=True):
            approval_decide(request=request, verdict="approve", by=checker)

    upload.refresh_from_db()
    assert ApprovalRequest.objects.get(pk=request.pk).status == RequestStatus.EXECUTED
    assert upload.status == UploadStatus.IMPORTED and upload.counts["imported"] == 3
    people = {p.first_name: p for p in Individual.objects.all()}
    assert people["Chausiku"].national_id == "TZ002" and people["Chausiku"].sex == "F"
    assert people["Asha"].attributes == {"income": "1200.5"} and people["Asha"].location == geo.village_a
    household = Household.objects.get(code="HH1")
    assert household.location == geo.village_a
    roles = dict(Membership.objects.values_list("individual__first_name", "role_id"))
    assert roles == {"Asha": "HEAD", "Baraka": "SON"}
    assert Membership.objects.get(individual=people["Asha"]).recipient_type == "PRIMARY"
    assert not StagedIndividual.objects.filter(upload_id=upload.pk).exists()


def test_every_bad_row_is_named_with_its_column_and_the_good_rows_still_import(clerk, geo,
                                                                               django_capture_on_commit_callbacks):
    village, elsewhere = geo.village_a.code, geo.village_b.code
    IndividualFactory(national_id="TAKEN1", location=geo.village_a)
    upload = receive(clerk, [
        ["Asha", "Mollel", "1980-02-01", "F", "A1", village, "", "", "", ""],
        ["", "Mollel", "1980-02-31", "X", "1.23E+15", village, "", "", "", "lots"],
        ["Dup", "One", "1990-01-01", "M", "SAME", village, "", "", "", ""],
        ["Dup", "Two", "1990-01-01", "M", "same", village, "", "", "", ""],
        ["Taken", "Id", "1990-01-01", "M", "taken1", village, "", "", "", ""],
        ["Far", "Away", "1990-01-01", "M", "", elsewhere, "", "", "", ""],
        ["Future", "Child", "2999-01-01", "F", "", village, "", "", "", "-5"],
    ], django_capture_on_commit_callbacks)

    assert upload.status == UploadStatus.READY
    assert upload.counts["rows"] == 7 and upload.counts["valid"] == 1 and upload.counts["errors"] == 6
    rows = {row["first_name"] + row["last_name"]: row["errors"] for row in errors_of(upload)}
    assert "Asha" not in " ".join(rows)
    bad = rows["Mollel"]
    for expected in ("first_name: Required.", "dob: '1980-02-31' is not a real date.", "sex: 'X' is not F, M or O (or leave it empty: not recorded).",
                     "national_id: '1.23E+15' was turned into a number by Excel", "income:"):
        assert expected in bad
    assert "on more than one row" in rows["DupOne"] and "on more than one row" in rows["DupTwo"]
    assert "already registered" in rows["TakenId"]
    assert f"No location with code '{elsewhere}' in your locations" in rows["FarAway"]
    assert "is in the future" in rows["FutureChild"]


def test_households_need_one_head_and_one_primary(clerk, geo, django_capture_on_commit_callbacks):
    village = geo.village_a.code
    upload = receive(clerk, [
        ["A", "One", "1980-01-01", "F", "", village, "H2", "HEAD", "1", ""],
        ["B", "One", "1981-01-01", "M", "", village, "H2", "HEAD", "1", ""],
        ["C", "Two", "1980-01-01", "F", "", village, "H3", "", "", ""],
        ["D", "Two", "2010-01-01", "M", "", village, "H3", "", "", ""],
    ], django_capture_on_commit_callbacks)

    rows = {row["first_name"]: row["errors"] for row in errors_of(upload)}
    assert "more than one head" in rows["A"] and "more than one primary recipient" in rows["B"]
    # A household naming no roles has one head, its first member; the others are members (the role is optional).
    assert set(rows) == {"A", "B"}
    assert (upload.counts["households"], upload.counts["first_member_heads"], upload.counts["members_without_role"]) == (
        1, 1, 1)


def test_a_household_with_a_faulty_row_is_left_out_whole_and_its_corrected_rows_import(
        clerk, checker, geo, django_capture_on_commit_callbacks):
    """QA: the heads' rows refused, importing the valid rows made a 7-year-old daughter and a spouse
    heads and primary recipients; and the corrected error file was then refused (the households
    registered). A household is imported whole: the error file holds it whole, and comes back."""
    village = geo.village_a.code
    upload = receive(clerk, [
        ["Asha", "Mollel", "1980-02-31", "F", "", village, "QA-HH-001", "HEAD", "1", ""],
        ["Baraka", "Mollel", "1979-03-01", "M", "", village, "QA-HH-001", "SPOUSE", "2", ""],
        ["Neema", "Juma", "1985-01-01", "F", "QA-5", village, "QA-HH-005", "HEAD", "1", ""],
        ["Joyce", "Juma", "2019-05-05", "F", "", village, "QA-HH-005", "DAUGHTER", "", ""],
        ["Other", "Person", "1990-01-01", "M", "qa 5", village, "", "", "", ""],
        ["Zawadi", "Swai", "1970-01-01", "F", "", village, "QA-HH-009", "HEAD", "1", ""],
        ["Tumaini", "Swai", "2012-01-01", "M", "", village, "QA-HH-009", "SON", "", ""],
    ], django_capture_on_commit_callbacks)

    assert (upload.counts["valid"], upload.counts["errors"], upload.counts["households"]) == (2, 5, 1)
    errors = {row["first_name"]: row["errors"] for row in errors_of(upload)}
    assert set(errors) == {"Asha", "Baraka", "Neema", "Joyce", "Other"}
    assert errors["Baraka"] == ("group_code: Row 2 of household QA-HH-001 has an error: a household is imported "
                                "whole, with all its members.")
    assert errors["Joyce"] == ("group_code: Row 4 of household QA-HH-005 has an error: a household is imported "
                               "whole, with all its members.")
    request = approval_submit(operation="bulk.import", by=clerk, payload={"upload": upload.pk, "mode": "VALID_ROWS"})
    with django_capture_on_commit_callbacks(execute=True):
        with django_capture_on_commit_callbacks(execute=True):
            approval_decide(request=request, verdict="approve", by=checker)

    assert list(Household.objects.values_list("code", flat=True)) == ["QA-HH-009"]
    assert set(Individual.objects.values_list("first_name", flat=True)) == {"Zawadi", "Tumaini"}

    corrected = [row for row in errors_of(upload)]
    for row in corrected:
        row["dob"] = "1980-02-28" if row["first_name"] == "Asha" else row["dob"]
        row["national_id"] = {"Neema": "QA-6", "Other": "QA-7"}.get(row["first_name"], row["national_id"])
    again = receive(clerk, [[row[name] for name in HEADER] for row in corrected], django_capture_on_commit_callbacks)
    assert (again.counts["valid"], again.counts["errors"], again.counts["households"]) == (5, 0, 2)
    with django_capture_on_commit_callbacks(execute=True):
        services.import_start(upload=again, mode="VALID_ROWS", by=clerk)

    members = {m.individual.first_name: (m.household.code, m.role_id, m.recipient_type)
               for m in Membership.objects.select_related("individual", "household")}
    assert members == {"Asha": ("QA-HH-001", "HEAD", "PRIMARY"), "Baraka": ("QA-HH-001", "SPOUSE", "SECONDARY"),
                       "Neema": ("QA-HH-005", "HEAD", "PRIMARY"), "Joyce": ("QA-HH-005", "DAUGHTER", None),
                       "Zawadi": ("QA-HH-009", "HEAD", "PRIMARY"), "Tumaini": ("QA-HH-009", "SON", None)}


def test_roles_and_recipients_the_file_declares_are_never_overridden(clerk, geo, django_capture_on_commit_callbacks):
    """The first member becomes head only if the file gives it no role and names no head; primary
    only if the file names no recipient in the household. Otherwise the household is refused, and
    the counts say how many households had their first member made head or primary."""
    village = geo.village_a.code
    upload = receive(clerk, [
        ["A1", "NoHead", "1980-01-01", "F", "", village, "HH-A", "SPOUSE", "1", ""],
        ["A2", "NoHead", "2016-01-01", "F", "", village, "HH-A", "DAUGHTER", "", ""],
        ["B1", "Rule", "1980-01-01", "F", "", village, "HH-B", "", "", ""],
        ["B2", "Rule", "2015-01-01", "M", "", village, "HH-B", "SON", "", ""],
        ["C1", "Second", "1980-01-01", "F", "", village, "HH-C", "HEAD", "2", ""],
        ["C2", "Second", "2014-01-01", "M", "", village, "HH-C", "SON", "", ""],
        ["D1", "Declared", "1980-01-01", "F", "", village, "HH-D", "HEAD", "", ""],
        ["D2", "Declared", "1982-01-01", "M", "", village, "HH-D", "SPOUSE", "1", ""],
        ["E1", "Alone", "1990-01-01", "M", "", village, "HH-E", "", "", ""],
        ["F1", "Later", "1990-01-01", "M", "", village, "HH-F", "", "", ""],
        ["F2", "Later", "1991-01-01", "F", "", village, "HH-F", "HEAD", "1", ""],
        ["G1", "Some", "1980-01-01", "F", "", village, "HH-G", "", "", ""],
        ["G2", "Some", "2012-01-01", "M", "", village, "HH-G", "SON", "", ""],
        ["G3", "Some", "2013-01-01", "F", "", village, "HH-G", "", "", ""],
        ["H1", "Spouse", "1980-01-01", "F", "", village, "HH-H", "SPOUSE", "", ""],
        ["H2", "Spouse", "2012-01-01", "M", "", village, "HH-H", "", "", ""],
    ], django_capture_on_commit_callbacks)

    errors = {row["first_name"]: row["errors"] for row in errors_of(upload)}
    assert set(errors) == {"A1", "A2", "C1", "C2", "H1", "H2"}
    assert errors["A1"] == errors["A2"] == "individual_role: The household has no head (individual_role HEAD)."
    assert errors["H1"] == errors["H2"] == "individual_role: The household has no head (individual_role HEAD)."
    assert errors["C1"] == errors["C2"] == ("recipient_info: The household has a secondary recipient but no primary "
                                            "(recipient_info 1).")
    assert upload.counts["households"] == 5
    assert (upload.counts["first_member_heads"], upload.counts["first_member_primaries"],
            upload.counts["members_without_role"]) == (3, 3, 2)
    with django_capture_on_commit_callbacks(execute=True):
        services.import_start(upload=upload, mode="VALID_ROWS", by=clerk)

    members = dict((name, (role, recipient)) for name, role, recipient in Membership.objects.values_list(
        "individual__first_name", "role_id", "recipient_type"))
    # F1, without a role, is a member of the household whose head F2 is; G1, first of a household naming
    # roles but no head, becomes its head, and G3 a member.
    assert members == {"B1": ("HEAD", "PRIMARY"), "B2": ("SON", None), "D1": ("HEAD", None),
                       "D2": ("SPOUSE", "PRIMARY"), "E1": ("HEAD", "PRIMARY"), "F1": ("MEMBER", None),
                       "F2": ("HEAD", "PRIMARY"), "G1": ("HEAD", "PRIMARY"), "G2": ("SON", None),
                       "G3": ("MEMBER", None)}


def test_a_member_whose_role_cell_is_blank_becomes_a_member_of_the_household_the_file_names_a_head_of(
        clerk, geo, django_capture_on_commit_callbacks):
    village = geo.village_a.code
    upload = receive(clerk, [
        ["Asha", "Mollel", "1980-02-01", "F", "", village, "HH-M", "HEAD", "1", ""],
        ["Baraka", "Mollel", "2015-06-30", "M", "", village, "HH-M", "", "", ""],
        ["Chausiku", "Mollel", "2016-06-30", "F", "", village, "HH-M", "DAUGHTER", "", ""],
    ], django_capture_on_commit_callbacks)

    assert upload.counts["errors"] == 0
    assert (upload.counts["first_member_heads"], upload.counts["members_without_role"]) == (0, 1)
    with django_capture_on_commit_callbacks(execute=True):
        services.import_start(upload=upload, mode="VALID_ROWS", by=clerk)

    assert dict(Membership.objects.values_list("individual__first_name", "role_id")) == {
        "Asha": "HEAD", "Baraka": "MEMBER", "Chausiku": "DAUGHTER"}


def test_an_openimis_file_with_only_household_codes_makes_each_first_member_head_and_primary_the_others_members(
        clerk, geo, client, django_capture_on_commit_callbacks):
    """openIMIS stores members without a role: its file (no individual_role column) loads unchanged,
    each household's first member its head and primary recipient, the others of role Member."""
    village = geo.village_a.code
    upload = receive(clerk, [["Asha", "Mollel", "1980-02-01", "F", village, "OI-1"],
                             ["Amani", "Mollel", "2010-02-01", "M", village, "OI-1"],
                             ["Baraka", "Ngowi", "1981-02-01", "M", village, "OI-2"],
                             ["Anna", "Mollel", "2012-02-01", "F", village, "OI-1"],
                             ["Bahati", "Ngowi", "2011-02-01", "F", village, "OI-2"],
                             ["Bora", "Ngowi", "2013-02-01", "M", village, "OI-2"],
                             ["Chausiku", "Swai", "1982-02-01", "F", village, ""]],
                     django_capture_on_commit_callbacks,
                     header=["first_name", "last_name", "dob", "sex", "location", "group_code"])

    assert upload.counts["errors"] == 0
    assert (upload.counts["households"], upload.counts["first_member_heads"], upload.counts["first_member_primaries"],
            upload.counts["members_without_role"]) == (2, 2, 2, 4)
    shown = dict(services.counts_shown(upload))
    assert shown["Household members whose role becomes Member (the file gives them none)"] == "4"
    with django_capture_on_commit_callbacks(execute=True):
        services.import_start(upload=upload, mode="VALID_ROWS", by=clerk)

    assert Individual.objects.count() == 7
    members = {name: (code, role, recipient) for name, code, role, recipient in Membership.objects.values_list(
        "individual__first_name", "household__code", "role_id", "recipient_type")}
    assert members == {"Asha": ("OI-1", "HEAD", "PRIMARY"), "Amani": ("OI-1", "MEMBER", None),
                       "Anna": ("OI-1", "MEMBER", None), "Baraka": ("OI-2", "HEAD", "PRIMARY"),
                       "Bahati": ("OI-2", "MEMBER", None), "Bora": ("OI-2", "MEMBER", None)}

    # The household's page lists them with the role's label.
    client.force_login(clerk)
    page = client.get(reverse("registry_household:inspect", args=[Household.objects.get(code="OI-1").pk]))
    assert page.status_code == 200
    assert [m.role.label for m in page.context["members"]] == ["Head", "Member", "Member"]
    assert page.content.decode().count("<td>Member</td>") == 2


def test_rows_whose_household_codes_differ_only_in_case_make_one_household(clerk, geo,
                                                                           django_capture_on_commit_callbacks):
    """"BH-7" and "bh-7" are one code (the registry tells codes apart ignoring case): one household,
    under the spelling the file met first, checked as one (a head each is two heads)."""
    village = geo.village_a.code
    upload = receive(clerk, [
        ["Asha", "Mollel", "1980-02-01", "F", "", village, "BH-7", "HEAD", "1", ""],
        ["Baraka", "Mollel", "2015-06-30", "M", "", village, "bh-7", "SON", "", ""],
        ["Chausiku", "Mollel", "2016-06-30", "F", "", village, "Bh-7", "DAUGHTER", "", ""],
        ["Eliya", "Ngowi", "1985-01-01", "F", "", village, "kw-2", "SPOUSE", "", ""],
        ["Fatuma", "Ngowi", "1984-01-01", "M", "", village, "KW-2", "HEAD", "1", ""],
        ["Gift", "Swai", "1970-01-01", "F", "", village, "zz-1", "HEAD", "", ""],
        ["Halima", "Swai", "1971-01-01", "M", "", village, "ZZ-1", "HEAD", "", ""],
    ], django_capture_on_commit_callbacks)

    rows = {row["first_name"]: row["errors"] for row in errors_of(upload)}
    assert set(rows) == {"Gift", "Halima"}
    assert "more than one head" in rows["Gift"] and "more than one head" in rows["Halima"]
    assert upload.counts["households"] == 2
    with django_capture_on_commit_callbacks(execute=True):
        services.import_start(upload=upload, mode="VALID_ROWS", by=clerk)

    assert set(Household.objects.values_list("code", flat=True)) == {"BH-7", "kw-2"}
    members = dict(Membership.objects.values_list("individual__first_name", "household__code"))
    assert members == {"Asha": "BH-7", "Baraka": "BH-7", "Chausiku": "BH-7", "Eliya": "kw-2", "Fatuma": "kw-2"}


def test_a_household_code_registered_in_another_case_is_refused_naming_the_column(clerk, geo,
                                                                                  django_capture_on_commit_callbacks):
    HouseholdFactory(code="BH-1", location=geo.village_a)
    upload = receive(clerk, [["Asha", "Mollel", "1980-02-01", "F", "", geo.village_a.code, "bh-1", "HEAD", "1", ""]],
                     django_capture_on_commit_callbacks)

    assert upload.counts["valid"] == 0
    assert errors_of(upload)[0]["errors"] == (
        "group_code: A household with this code is already registered (codes are compared ignoring upper and "
        "lower case): a file creates new households.")


def test_codes_a_database_may_fold_alike_are_one_household_beyond_ascii(clerk, geo, django_capture_on_commit_callbacks):
    """PostgreSQL's LOWER makes "ΑΣ-1" "ασ-1" and, under most collations, "İ-2" "i-2", where Python's
    lower() keeps them apart (a final sigma; an i with a combining dot): the file must not make two
    households the unique index would take for one."""
    village = geo.village_a.code
    upload = receive(clerk, [["Asha", "Mollel", "1980-02-01", "F", "", village, "ΑΣ-1", "HEAD", "1", ""],
                             ["Baraka", "Mollel", "2015-06-30", "M", "", village, "ασ-1", "SON", "", ""],
                             ["Chausiku", "Ngowi", "1980-02-01", "F", "", village, "İ-2", "HEAD", "1", ""],
                             ["Daudi", "Ngowi", "2015-06-30", "M", "", village, "i-2", "SON", "", ""]],
                     django_capture_on_commit_callbacks)

    assert (upload.counts["valid"], upload.counts["households"]) == (4, 2)
    assert set(StagedIndividual.objects.filter(upload_id=upload.pk).values_list("group_code", flat=True)) == {
        "ΑΣ-1", "İ-2"}


def test_the_whole_file_checks_name_columns_as_the_file_heads_them(clerk, geo, django_capture_on_commit_callbacks):
    village = geo.village_a.code
    header = ["First Name", "Surname", "Date of Birth", "Gender", "NIN", "Location Code", "Household ID", "Role",
              "Recipient", "income"]
    upload = receive(clerk, [
        ["A", "One", "1980-01-01", "F", "SAME", village, "H2", "HEAD", "1", ""],
        ["B", "One", "1981-01-01", "M", "same", village, "H2", "HEAD", "", ""],
    ], django_capture_on_commit_callbacks, header=header)

    errors = errors_of(upload)
    assert "NIN: This national ID is on more than one row of the file: also on row 3." in errors[0]["errors"]
    assert "Role: The household has more than one head in the file." in errors[1]["errors"]
    assert "national_id" not in " ".join(row["errors"] for row in errors)
    shown = set(StagedError.objects.filter(upload_id=upload.pk).values_list("column", flat=True))
    assert shown == {"NIN", "Role"}  # as the upload page lists them


def test_national_ids_outside_the_country_format_are_named(clerk, geo, django_capture_on_commit_callbacks):
    organisation = OrganisationSettings.load()
    organisation.national_id_pattern, organisation.national_id_format = "[0-9]{12}", "12 digits"
    organisation.save()
    village = geo.village_a.code
    upload = receive(clerk, [
        ["Asha", "Mollel", "1980-02-01", "F", "012345678901", village, "", "", "", ""],
        ["Baraka", "Mollel", "1981-02-01", "M", "12345678902", village, "", "", "", ""],
    ], django_capture_on_commit_callbacks)

    assert upload.counts["valid"] == 1
    (row,) = errors_of(upload)
    assert row["first_name"] == "Baraka"
    assert row["errors"].startswith("national_id: Not a national ID (12 digits). Its leading zeros "
                                    "look lost")


def test_a_file_that_cannot_be_read_is_refused_and_nothing_is_staged(clerk, django_capture_on_commit_callbacks):
    upload = receive(clerk, [["Asha"]], django_capture_on_commit_callbacks, header=["first_name"])

    assert upload.status == UploadStatus.REFUSED
    assert "last_name" in upload.problem
    assert not StagedIndividual.objects.filter(upload_id=upload.pk).exists()


def test_possible_duplicates_are_counted_and_still_importable(clerk, geo, django_capture_on_commit_callbacks):
    import datetime

    twin = IndividualFactory(first_name="Asha", last_name="Mollel", dob=datetime.date(1980, 2, 1),
                             location=geo.village_a)
    upload = receive(clerk, [["asha", "MOLLEL", "1980-02-01", "F", "", geo.village_a.code, "", "", "", ""]],
                     django_capture_on_commit_callbacks)

    assert upload.counts["possible_duplicates"] == 1 and upload.counts["valid"] == 1
    assert StagedIndividual.objects.get(upload_id=upload.pk).possible_duplicate_of == twin.pk


def test_all_or_nothing_refuses_a_file_with_errors_and_discard_leaves_nothing(clerk, geo,
                                                                             django_capture_on_commit_callbacks):
    upload = receive(clerk, [["", "X", "1980-01-01", "F", "", geo.village_a.code, "", "", "", ""],
                             ["Ok", "Y", "1980-01-01", "F", "", geo.village_a.code, "", "", "", ""]],
                     django_capture_on_commit_callbacks)

    with pytest.raises(Exception, match="1 rows have errors"):
        approval_submit(operation="bulk.import", by=clerk, payload={"upload": upload.pk, "mode": "ALL_OR_NOTHING"})
    services.upload_discard(upload=upload, by=clerk)

    assert Upload.objects.get(pk=upload.pk).status == UploadStatus.DISCARDED
    assert not StagedIndividual.objects.filter(upload_id=upload.pk).exists()
    assert not Individual.objects.exists()


def test_only_the_uploader_may_submit_and_a_viewer_may_not_upload(clerk, geo, django_capture_on_commit_callbacks):
    upload = receive(clerk, [["Ok", "Y", "1980-01-01", "F", "", geo.village_a.code, "", "", "", ""]],
                     django_capture_on_commit_callbacks)
    other = UserFactory(role="Clerk", locations=[geo.district_a])
    viewer = UserFactory(role="Viewer", locations=[geo.district_a])

    with pytest.raises(Exception, match="No upload"):
        approval_submit(operation="bulk.import", by=other, payload={"upload": upload.pk, "mode": "VALID_ROWS"})
    with pytest.raises(Exception, match="Your role does not allow you to upload files"):
        services.upload_receive(kind="INDIVIDUALS", file=csv_file([]), by=viewer)


def test_people_registered_after_an_import_get_new_ids(clerk, checker, geo, django_capture_on_commit_callbacks):
    """The import reserves its block of ids (base + row number): what comes next is above it."""
    IndividualFactory(location=geo.village_a)
    upload = receive(clerk, [["A", "One", "1980-01-01", "F", "", geo.village_a.code, "", "", "", ""],
                             ["B", "Two", "1980-01-01", "F", "", geo.village_a.code, "", "", "", ""]],
                     django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        services.import_start(upload=upload, mode="VALID_ROWS", by=clerk)
    imported = set(Individual.objects.filter(first_name__in=["A", "B"]).values_list("pk", flat=True))

    later = IndividualFactory(location=geo.village_a)

    assert len(imported) == 2 and later.pk > max(imported)


@pytest.mark.parametrize(("dob", "income", "expected"), [
    ("1980-02-31", "", "dob: '1980-02-31' is not a real date."),
    ("03/04/1980", "", "dob: '03/04/1980' is not a date as YYYY-MM-DD."),
    ("29220", "", "looks like an Excel date number"),
    ("2999-01-01", "", "is in the future"),
    ("1980-01-01", "NaN", "income: 'NaN' is not a number"),
    ("1980-01-01", "Infinity", "income: 'Infinity' is not a number"),
    ("1980-01-01", "1e3", "income: '1e3' is not a number"),
    ("1980-01-01", "1,5", "income: '1,5' is not a number"),
    ("1980-01-01", "-5", "income:"),
])
def test_bad_dates_and_amounts_are_named(clerk, geo, django_capture_on_commit_callbacks, dob, income, expected):
    upload = receive(clerk, [["Asha", "Mollel", dob, "F", "", geo.village_a.code, "", "", "", income]],
                     django_capture_on_commit_callbacks)

    assert upload.counts["errors"] == 1
    assert expected in errors_of(upload)[0]["errors"]


PERSON_HEADER = ["first_name", "last_name", "dob", "sex", "national_id", "phone", "location", "group_code",
                 "recipient_info"]


@pytest.mark.parametrize(("change", "expected"), [
    ({"dob": "1850-01-01"}, "dob: 1850-01-01 is before 1900."),
    ({"phone": "not-a-phone"}, "phone: 'not-a-phone' is not a phone number (6 to 15 digits"),
    ({"phone": "12"}, "phone: '12' is not a phone number"),
    ({"first_name": "Asha\nMollel"}, "first_name: A name cannot contain line breaks"),
    ({"first_name": "\u202eevil"}, "first_name: A name cannot contain text-direction control characters"),
    ({"last_name": "\u200b\u200b"}, "last_name: A name needs at least one visible character"),
    ({"recipient_info": "1"}, "recipient_info: A recipient needs a group_code (the household)."),
    ({"national_id": "1,23E+15"}, "national_id: '1,23E+15' was turned into a number by Excel"),
])
def test_values_a_clerk_would_not_mean_are_named(clerk, geo, django_capture_on_commit_callbacks, change, expected):
    row = {"first_name": "Asha", "last_name": "Mollel", "dob": "1980-01-01", "sex": "F", "national_id": "",
           "phone": "+255 700 111-222", "location": geo.village_a.code, "group_code": "", "recipient_info": "",
           **change}
    upload = receive(clerk, [[row[name] for name in PERSON_HEADER]], django_capture_on_commit_callbacks,
                     header=PERSON_HEADER)

    assert upload.counts["errors"] == 1
    assert expected in errors_of(upload)[0]["errors"]


def test_cells_an_export_escaped_come_back_as_they_were(clerk, geo, django_capture_on_commit_callbacks):
    """An exported row re-imported (or a corrected error file): "'+255..." is the phone "+255..."."""
    upload = receive(clerk, [["'=Asha", "Mollel", "1980-01-01", "F", "", "'+255700000001", geo.village_a.code, "",
                              ""]], django_capture_on_commit_callbacks, header=PERSON_HEADER)

    assert upload.counts["errors"] == 0
    staged = StagedIndividual.objects.get(upload_id=upload.pk)
    assert (staged.first_name, staged.phone) == ("=Asha", "+255700000001")


def test_columns_the_import_does_not_know_are_listed_not_silently_dropped(clerk, geo, django_capture_on_commit_callbacks):
    upload = receive(clerk, [["Asha", "Mollel", "1980-01-01", "F", "NID-1", "+255700000001", geo.village_a.code, "x"]],
                     django_capture_on_commit_callbacks,
                     header=["FirstName", "Last Name", "DOB", "Sex", "NationalID", "Mobile Number", "Location",
                             "Village elder"])

    assert upload.unused_columns == ["Village elder"]
    staged = StagedIndividual.objects.get(upload_id=upload.pk)
    assert (staged.national_id, staged.phone) == ("NID1", "+255700000001")


def test_arabic_indic_digits_are_read_as_digits(clerk, geo, django_capture_on_commit_callbacks):
    upload = receive(clerk, [["Asha", "Mollel", "١٩٨٠-٠٢-٠١", "F", "", geo.village_a.code, "", "", "", "١٢٣"]],
                     django_capture_on_commit_callbacks)

    assert upload.counts["errors"] == 0
    staged = StagedIndividual.objects.get(upload_id=upload.pk)
    assert staged.dob.isoformat() == "1980-02-01" and staged.attributes == {"income": "123"}


def test_a_national_id_registered_between_the_check_and_the_import_is_skipped_not_doubled(
        clerk, geo, django_capture_on_commit_callbacks):
    village = geo.village_a.code
    upload = receive(clerk, [["Early", "Bird", "1980-01-01", "F", "RACE1", village, "", "", "", ""],
                             ["Other", "Person", "1980-01-01", "F", "FREE1", village, "", "", "", ""]],
                     django_capture_on_commit_callbacks)
    meanwhile = IndividualFactory(national_id="RACE1", location=geo.village_a)
    with django_capture_on_commit_callbacks(execute=True):
        services.import_start(upload=upload, mode="VALID_ROWS", by=clerk)

    upload.refresh_from_db()
    assert upload.status == UploadStatus.IMPORTED and upload.counts["imported"] == 1
    assert upload.counts["skipped"] == 1
    assert list(Individual.objects.filter(national_id="RACE1")) == [meanwhile]
    assert Individual.objects.filter(national_id="FREE1").exists()


def client_for(user):
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("registered", ["HH-TAKEN", "hh-taken"])
def test_a_household_code_registered_between_the_check_and_the_import_keeps_its_own_members(
        clerk, geo, django_capture_on_commit_callbacks, registered):
    village = geo.village_a.code
    upload = receive(clerk, [["Head", "Late", "1980-01-01", "F", "", village, "HH-TAKEN", "HEAD", "1", ""],
                             ["Son", "Late", "2010-01-01", "M", "", village, "HH-TAKEN", "SON", "", ""],
                             ["Head", "Free", "1981-01-01", "F", "", village, "HH-FREE", "HEAD", "1", ""]],
                     django_capture_on_commit_callbacks)
    meanwhile = HouseholdFactory(code=registered, location=geo.village_a)
    with django_capture_on_commit_callbacks(execute=True):
        services.import_start(upload=upload, mode="VALID_ROWS", by=clerk)

    upload.refresh_from_db()
    assert upload.status == UploadStatus.IMPORTED and upload.counts["households_created"] == 1
    assert list(Household.objects.filter(code__iexact="HH-TAKEN")) == [meanwhile]
    assert not meanwhile.memberships.exists()  # the file's members did not join someone else's household
    assert not Individual.objects.filter(last_name="Late").exists()  # nor were registered without one
    assert Household.objects.get(code="HH-FREE").memberships.count() == 1
    assert (upload.counts["imported"], upload.counts["skipped"]) == (1, 2)
    page = client_for(clerk).get(reverse("bulk_upload:inspect", args=[upload.pk])).content.decode()
    assert "Rows not imported: their national ID or household code was registered since the check" in page


def test_a_file_refused_part_way_leaves_nothing_staged(clerk, geo, settings, django_capture_on_commit_callbacks):
    """More rows than allowed is found while reading, after thousands of rows went to staging (on
    PostgreSQL through a COPY still open): the COPY is abandoned, the upload refused, nothing stays."""
    settings.MIZANI_IMPORT_MAX_ROWS = 6000
    village = geo.village_a.code
    rows = [[f"P{n}", "Row", "1980-01-01", "F", "", village, "", "", "", ""] for n in range(6001)]
    upload = receive(clerk, rows, django_capture_on_commit_callbacks)

    assert upload.status == UploadStatus.REFUSED and "6,000" in upload.problem
    assert not StagedIndividual.objects.filter(upload_id=upload.pk).exists()


def test_masked_national_ids_and_sensitive_attributes_are_refused(clerk, geo, django_capture_on_commit_callbacks):
    RegistryFieldFactory(name="bank", field_type="text", sensitive=True)
    header = [*HEADER, "bank"]
    upload = receive(clerk, [["Asha", "Mollel", "1980-02-01", "F", "•••••001", geo.village_a.code, "", "", "", "",
                              "•••234"]], django_capture_on_commit_callbacks, header=header)
    errors = errors_of(upload)[0]["errors"]
    assert "national_id: This value is masked" in errors and "bank: This value is masked" in errors


def test_a_member_skipped_at_import_gets_no_membership(clerk, geo, django_capture_on_commit_callbacks):
    village = geo.village_a.code
    upload = receive(clerk, [["Head", "Of", "1980-01-01", "F", "", village, "HH-R", "HEAD", "1", ""],
                             ["Late", "Twin", "1990-01-01", "M", "RACE2", village, "HH-R", "SON", "", ""]],
                     django_capture_on_commit_callbacks)
    meanwhile = IndividualFactory(national_id="RACE2", location=geo.village_a)
    with django_capture_on_commit_callbacks(execute=True):
        services.import_start(upload=upload, mode="VALID_ROWS", by=clerk)

    household = Household.objects.get(code="HH-R")
    assert list(household.memberships.values_list("individual__first_name", flat=True)) == ["Head"]
    assert not Membership.objects.filter(individual=meanwhile).exists()


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="GIN pending lists are PostgreSQL's")
def test_an_import_leaves_no_pending_entries_in_the_name_index(clerk, geo, django_capture_on_commit_callbacks):
    """The chunks let the trigram index's pending list grow; left there, every name search reads it
    and the next registration merges it in the clerk's request."""
    upload = receive(clerk, [[f"P{n}", "Row", "1980-01-01", "F", "", geo.village_a.code, "", "", "", ""] for n in range(50)],
                     django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        services.import_start(upload=upload, mode="VALID_ROWS", by=clerk)

    with connection.cursor() as cursor:
        cursor.execute("SELECT gin_clean_pending_list('individual_search_name_trgm'::regclass)")
        assert cursor.fetchone()[0] == 0  # pages it had to merge
    assert Individual.objects.filter(search_name__contains="p4").count() == 11


def test_a_file_past_one_batch_with_a_bad_row_is_checked(clerk, geo, django_capture_on_commit_callbacks):
    """On PostgreSQL the rows' COPY is open once a batch (5,000 rows) is full: the error rows are
    still written (this hung forever)."""
    rows = [[f"P{n}", "Row", "1980-01-01", "F", "", geo.village_a.code, "", "", "", ""] for n in range(6_000)]
    rows[5_500][3] = "X"
    upload = receive(clerk, rows, django_capture_on_commit_callbacks)

    assert upload.status == UploadStatus.READY
    assert upload.counts["valid"] == 5_999 and upload.counts["errors"] == 1
    assert [row["errors"] for row in errors_of(upload)] == ["sex: 'X' is not F, M or O (or leave it empty: not recorded)."]


def test_an_approved_import_not_yet_applied_cannot_be_submitted_again(clerk, checker, geo,
                                                                      django_capture_on_commit_callbacks):
    from django.core.exceptions import ValidationError
    from django.urls import reverse

    upload = receive(clerk, [["Asha", "Mollel", "1980-02-01", "F", "", geo.village_a.code, "", "", "", ""]],
                     django_capture_on_commit_callbacks)
    request = approval_submit(operation="bulk.import", by=clerk, payload={"upload": upload.pk, "mode": "VALID_ROWS"})
    assert request.summary["counts"]["Import"] == "the valid rows"
    assert request.summary["link"]["url"] == reverse("bulk_upload:inspect", args=[upload.pk])
    with django_capture_on_commit_callbacks(execute=False):  # the worker has not applied it yet
        approval_decide(request=request, verdict="approve", by=checker)

    with pytest.raises(ValidationError, match="already waiting for approval or being imported"):
        approval_submit(operation="bulk.import", by=clerk, payload={"upload": upload.pk, "mode": "VALID_ROWS"})


def test_a_district_clerks_file_without_a_location_column_is_refused_once_naming_their_locations(
        clerk, geo, django_capture_on_commit_callbacks):
    """QA: a district clerk's file without a location column got "Required" on every row's location."""
    header = ["first_name", "last_name", "dob", "sex"]
    rows = [["Asha", "Mollel", "1980-02-01", "F"], ["Baraka", "Ngowi", "1981-03-04", "M"]]
    upload = receive(clerk, rows, django_capture_on_commit_callbacks, header=header)

    assert upload.status == UploadStatus.REFUSED
    assert upload.problem == (f"This file has no location column: as your access is limited to {geo.district_a}, "
                              'each person needs a location code (column "location").')
    assert not StagedIndividual.objects.filter(upload_id=upload.pk).exists()
    assert not StagedError.objects.filter(upload_id=upload.pk).exists() and not upload.has_error_file

    national = UserFactory(role="Clerk", national=True)  # for whom the location stays optional
    upload = receive(national, rows, django_capture_on_commit_callbacks, header=header)
    assert upload.status == UploadStatus.READY and upload.counts["valid"] == 2


def test_the_preview_counts_the_people_whose_sex_is_not_recorded(clerk, geo, django_capture_on_commit_callbacks):
    """QA: a file without sex (the openIMIS template has no such column) gave no hint before the import."""
    village = geo.village_a.code
    upload = receive(clerk, [
        ["Asha", "Mollel", "1980-02-01", "", "", village, "", "", "", ""],
        ["Baraka", "Ngowi", "1981-03-04", "M", "", village, "", "", "", ""],
        ["Chausiku", "Ngowi", "1982-03-04", "", "", village, "", "", "", ""],
        ["", "Error", "1983-03-04", "", "", village, "", "", "", ""],  # not imported: not counted
    ], django_capture_on_commit_callbacks)

    assert upload.counts["sex_not_recorded"] == 2
    assert ("People to register with sex not recorded (the file leaves it empty)", "2") in services.counts_shown(upload)
    page = client_for(clerk).get(reverse("bulk_upload:inspect", args=[upload.pk])).content.decode()
    assert "People to register with sex not recorded (the file leaves it empty)" in page

    every_sex_given = receive(clerk, [["Baraka", "Ngowi", "1981-03-04", "M", "", village, "", "", "", ""]],
                              django_capture_on_commit_callbacks)
    assert "sex_not_recorded" not in every_sex_given.counts
