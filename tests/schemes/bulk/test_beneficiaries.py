"""Beneficiaries of a plan through the pipeline: new enrolments match registered people by national ID
(or households by code) or register new people; updates merge only the schema fields the file has,
keyed by the beneficiary's ID. Every bad row is named with its column; nothing is written before the
import is approved; the plan's count and maximum hold."""

import csv
import datetime
import io

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from wagtail.models import ModelLogEntry

from schemes.bulk import approvals, services
from schemes.bulk.models import StagedBeneficiary, StagedIndividual, Upload, UploadStatus
from schemes.plans.catalogues import candidate_catalogue
from schemes.plans.models import (
    Beneficiary,
    BeneficiaryStatus,
    BenefitPlan,
    HouseholdBeneficiary,
    PlanField,
    PlanType,
)
from schemes.plans.selectors import beneficiary_history
from schemes.plans.services import criteria_node
from schemes.registry.models import Individual, Membership
from schemes.rules.nodes import to_json
from sites.masking import can_view_sensitive, mask
from tests.factories import (
    HouseholdFactory,
    IndividualFactory,
    MembershipFactory,
    RegistryFieldFactory,
    UserFactory,
)
from tests.schemes.plans.test_views import client_for
from workflows.models import WorkflowDefinition
from workflows.services import approval_submit

pytestmark = pytest.mark.django_db


def csv_file(header, rows, name="beneficiaries.csv"):
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return SimpleUploadedFile(name, out.getvalue().encode("utf-8"), content_type="text/csv")


@pytest.fixture
def clerk(geo, member_roles):
    WorkflowDefinition.objects.create(operation="bulk.import", requires_approval=False)
    return UserFactory(role="Clerk", locations=[geo.district_a])


def make_plan(code="CG", plan_type=PlanType.INDIVIDUAL, **kwargs):
    plan = BenefitPlan.objects.create(code=code, name=f"Plan {code}", status="ACTIVE", plan_type=plan_type, **kwargs)
    PlanField.objects.create(plan=plan, name="grade", label="Grade", field_type="integer", required=True,
                             min_value=1, max_value=12, sort_order=0)
    PlanField.objects.create(plan=plan, name="card", label="Card number", field_type="text", unique=True, sort_order=1)
    PlanField.objects.create(plan=plan, name="school", label="School", field_type="text", sort_order=2)
    return plan


@pytest.fixture
def plan(db):
    return make_plan()


def receive(clerk, plan, header, rows, capture, kind="BENEFICIARIES", name="beneficiaries.csv"):
    with capture(execute=True):
        upload = services.upload_receive(kind=kind, plan=plan, file=csv_file(header, rows, name), by=clerk)
    return Upload.objects.get(pk=upload.pk)


def import_now(upload, clerk, capture, mode="VALID_ROWS"):
    """Approval of bulk.import is off in these tests: submitting runs it at once."""
    with capture(execute=True):
        with capture(execute=True):
            approval_submit(operation="bulk.import", by=clerk, payload={"upload": upload.pk, "mode": mode})
    upload.refresh_from_db()
    return upload


def errors_of(upload):
    text = services.error_file_path(upload).read_text(encoding="utf-8-sig")
    return {row[next(iter(row))]: row["errors"] for row in csv.DictReader(io.StringIO(text))}


def enrolled(plan, person, **attributes):
    now = timezone.now()
    return Beneficiary.objects.create(plan=plan, individual=person, attributes=attributes, enrolled_at=now,
                                      status_changed_at=now, status=BeneficiaryStatus.ACTIVE)


ENROL_HEADER = ["national_id", "first_name", "last_name", "dob", "sex", "location", "grade", "card", "status"]


def test_registered_people_are_enrolled_and_new_ones_registered_then_enrolled(clerk, plan, geo,
                                                                              django_capture_on_commit_callbacks):
    known = IndividualFactory(national_id="TZ100", location=geo.village_a)
    village = geo.village_a.code
    upload = receive(clerk, plan, ENROL_HEADER, [
        ["tz 100", "", "", "", "", "", "3", "C-1", ""],
        ["TZ200", "Neema", "Juma", "2014-03-02", "F", village, "5", "C-2", "potential"],
    ], django_capture_on_commit_callbacks)

    assert upload.status == UploadStatus.READY, upload.problem
    assert upload.counts == {"rows": 2, "valid": 2, "errors": 0, "enrolments": 2, "creates": 1, "matched": 1,
                             "households": 0, "first_member_heads": 0, "first_member_primaries": 0,
                             "members_without_role": 0, "possible_duplicates": 0}
    assert not Beneficiary.objects.exists() and not Individual.objects.filter(national_id="TZ200").exists()

    upload = import_now(upload, clerk, django_capture_on_commit_callbacks)
    assert upload.status == UploadStatus.IMPORTED and upload.counts["imported"] == 2
    new = Individual.objects.get(national_id="TZ200")
    assert (new.first_name, new.location) == ("Neema", geo.village_a)
    rows = {b.individual_id: b for b in Beneficiary.objects.filter(plan=plan)}
    assert rows[known.pk].status == BeneficiaryStatus.POTENTIAL and rows[known.pk].attributes == {"grade": 3,
                                                                                                  "card": "C-1"}
    assert rows[new.pk].status == BeneficiaryStatus.POTENTIAL
    plan.refresh_from_db()
    assert plan.live_beneficiaries == 2
    assert ModelLogEntry.objects.filter(action="mizani.enrol", object_id=str(plan.pk)).exists()
    assert not StagedBeneficiary.objects.filter(upload_id=upload.pk).exists()
    assert not StagedIndividual.objects.filter(upload_id=upload.pk).exists()


def test_someone_enrolled_between_the_check_and_the_import_is_skipped_not_doubled(
        clerk, plan, geo, django_capture_on_commit_callbacks):
    late = IndividualFactory(national_id="TZ300", location=geo.village_a)
    other = IndividualFactory(national_id="TZ301", location=geo.village_a)
    upload = receive(clerk, plan, ENROL_HEADER, [["TZ300", "", "", "", "", "", "3", "C-3", ""],
                                                 ["TZ301", "", "", "", "", "", "4", "C-4", ""]],
                     django_capture_on_commit_callbacks)
    meanwhile = enrolled(plan, late, grade=7, card="C-7")

    upload = import_now(upload, clerk, django_capture_on_commit_callbacks)

    assert upload.status == UploadStatus.IMPORTED and upload.counts["imported"] == 1
    assert list(Beneficiary.objects.filter(plan=plan, individual=late)) == [meanwhile]
    assert Beneficiary.objects.filter(plan=plan, individual=other).exists()


def test_a_registered_national_id_on_a_row_describing_someone_else_is_refused(clerk, plan, geo,
                                                                             django_capture_on_commit_callbacks):
    """Matched on the ID alone, a typo in it would enrol the wrong person without a word."""
    IndividualFactory(national_id="TZ900", first_name="Zoë", last_name="Müller", dob=datetime.date(1985, 4, 2),
                      location=geo.village_a)
    IndividualFactory(national_id="TZ901", first_name="Amina", last_name="Mollel", dob=datetime.date(1990, 1, 1),
                      location=geo.village_a)
    upload = receive(clerk, plan, ENROL_HEADER, [
        ["TZ900", "Wrong", "Person", "2001-01-01", "F", "", "3", "", ""],
        ["tz901", "AMINA", "Mollell", "1990-01-01", "F", "", "3", "", ""],  # one name spelt otherwise: the same
    ], django_capture_on_commit_callbacks)

    errors = errors_of(upload)
    assert list(errors) == ["TZ900"] and errors["TZ900"] == (
        "national_id: This national ID is registered to Zoë Müller, born 1985-04-02: not the person of this row. "
        "Correct the ID, or leave the name and date of birth empty to enrol the registered person.")
    assert upload.counts["valid"] == 1


def test_every_bad_enrolment_row_is_named_and_nothing_is_written(clerk, plan, geo, django_capture_on_commit_callbacks):
    IndividualFactory(national_id="FAR1", location=geo.village_b)
    twice = IndividualFactory(national_id="TWICE", location=geo.village_a)
    already = IndividualFactory(national_id="IN1", location=geo.village_a)
    enrolled(plan, already, grade=1, card="HELD")
    village = geo.village_a.code
    upload = receive(clerk, plan, ENROL_HEADER, [
        ["FAR1", "", "", "", "", "", "3", "", ""],                                    # outside the clerk's locations
        ["TWICE", "", "", "", "", "", "3", "", ""],
        ["twice", "", "", "", "", "", "4", "", ""],                                   # the same person again
        ["IN1", "", "", "", "", "", "3", "", ""],                                     # already enrolled
        ["NEW1", "", "Juma", "2014-03-02", "F", village, "3", "", ""],               # new: first_name missing
        ["NEW2", "Ali", "Juma", "2014-03-02", "M", village, "13", "HELD", "GRADUATED"],  # grade, card, status
        ["NEW3", "Ok", "Row", "2014-03-02", "M", village, "2", "", ""],
    ], django_capture_on_commit_callbacks)

    errors = errors_of(upload)
    assert "registered outside your locations" in errors["FAR1"]
    assert "more than one row" in errors["TWICE"] and "more than one row" in errors["twice"]
    assert "Already a beneficiary of CG" in errors["IN1"]
    assert "first_name: Required." in errors["NEW1"]
    for expected in ("grade: Must be at most 12.", "card: Another beneficiary of CG already has this Card number.",
                     "status: 'GRADUATED': an import enrols as POTENTIAL."):
        assert expected in errors["NEW2"]
    assert upload.counts["valid"] == 1 and upload.counts["errors"] == 6
    assert Beneficiary.objects.filter(plan=plan).count() == 1 and twice.beneficiaries.count() == 0

    with pytest.raises(ValidationError, match="6 rows have errors"):
        approval_submit(operation="bulk.import", by=clerk, payload={"upload": upload.pk, "mode": "ALL_OR_NOTHING"})
    upload = import_now(upload, clerk, django_capture_on_commit_callbacks)
    assert list(Beneficiary.objects.filter(plan=plan).values_list("individual__national_id", flat=True).order_by(
        "individual__national_id")) == ["IN1", "NEW3"]
    assert not Individual.objects.filter(national_id__in=["NEW1", "NEW2"]).exists()


def test_a_unique_plan_field_repeated_in_the_file_is_refused_on_both_rows(clerk, plan, geo,
                                                                          django_capture_on_commit_callbacks):
    for nid in ("U1", "U2"):
        IndividualFactory(national_id=nid, location=geo.village_a)
    upload = receive(clerk, plan, ["national_id", "grade", "card"], [["U1", "1", "SAME"], ["U2", "1", "SAME"]],
                     django_capture_on_commit_callbacks)
    errors = errors_of(upload)
    assert "Card number is on more than one row" in errors["U1"] and "more than one row" in errors["U2"]


def test_new_people_of_a_beneficiaries_file_who_may_be_registered_already_reach_the_review_queue(
        clerk, plan, geo, django_capture_on_commit_callbacks):
    from schemes.registry.models import DuplicateCandidate

    registered = IndividualFactory(first_name="Neema", last_name="Juma", dob=datetime.date(2014, 3, 2),
                                   location=geo.village_a)
    upload = receive(clerk, plan, ENROL_HEADER, [
        ["TZ200", "Neema", "Juma", "2014-03-02", "F", geo.village_a.code, "5", "C-2", ""],
    ], django_capture_on_commit_callbacks)
    assert upload.counts["possible_duplicates"] == 1

    import_now(upload, clerk, django_capture_on_commit_callbacks)

    new = Individual.objects.get(national_id="TZ200")
    assert list(DuplicateCandidate.objects.values_list("first_id", "second_id")) == [(registered.pk, new.pk)]


def test_new_people_in_a_beneficiaries_file_form_households(clerk, plan, geo, django_capture_on_commit_callbacks):
    village = geo.village_a.code
    header = [*ENROL_HEADER, "group_code", "individual_role"]
    upload = receive(clerk, plan, header, [
        ["H1", "Mama", "Juma", "1980-01-01", "F", village, "1", "", "", "HH-NEW", "HEAD"],
        ["H2", "Mtoto", "Juma", "2015-01-01", "M", village, "2", "", "", "HH-NEW", "SON"],
    ], django_capture_on_commit_callbacks)
    assert upload.counts["households"] == 1
    import_now(upload, clerk, django_capture_on_commit_callbacks)
    assert set(Membership.objects.filter(household__code="HH-NEW").values_list("role_id", flat=True)) == {"HEAD", "SON"}
    assert Beneficiary.objects.filter(plan=plan).count() == 2


def test_new_people_of_a_household_the_file_gives_no_roles_are_its_head_and_members(
        clerk, plan, geo, django_capture_on_commit_callbacks):
    """As an individuals file: the role is optional; the first member becomes head and primary, the
    others members."""
    village = geo.village_a.code
    upload = receive(clerk, plan, [*ENROL_HEADER, "group_code"], [
        ["N1", "Mama", "Juma", "1980-01-01", "F", village, "1", "", "", "HH-OI"],
        ["N2", "Mtoto", "Juma", "2015-01-01", "M", village, "2", "", "", "HH-OI"],
        ["N3", "Mdogo", "Juma", "2017-01-01", "F", village, "3", "", "", "HH-OI"],
    ], django_capture_on_commit_callbacks)

    assert upload.counts["errors"] == 0
    assert (upload.counts["households"], upload.counts["first_member_heads"], upload.counts["members_without_role"]) == (
        1, 1, 2)
    import_now(upload, clerk, django_capture_on_commit_callbacks)

    assert set(Membership.objects.values_list("individual__first_name", "role_id", "recipient_type")) == {
        ("Mama", "HEAD", "PRIMARY"), ("Mtoto", "MEMBER", None), ("Mdogo", "MEMBER", None)}
    assert Beneficiary.objects.filter(plan=plan).count() == 3


def test_a_household_of_new_people_with_a_row_in_error_is_left_out_whole(clerk, plan, geo,
                                                                         django_capture_on_commit_callbacks):
    """The head's enrolment refused (its card number repeated): its household is neither registered
    nor enrolled without it (the daughter made head), and the error file holds it whole."""
    village = geo.village_a.code
    header = [*ENROL_HEADER, "group_code", "individual_role", "recipient_info"]
    upload = receive(clerk, plan, header, [
        ["H1", "Mama", "Juma", "1980-01-01", "F", village, "1", "SAME", "", "HH-5", "HEAD", "1"],
        ["H2", "Joyce", "Juma", "2019-01-01", "F", village, "2", "", "", "HH-5", "DAUGHTER", ""],
        ["H3", "Baba", "Kaya", "1970-01-01", "M", village, "3", "SAME", "", "", "", ""],
        ["H4", "Zawadi", "Swai", "1975-01-01", "F", village, "4", "", "", "HH-6", "", ""],
        ["H5", "Tumaini", "Swai", "2012-01-01", "M", village, "5", "", "", "HH-6", "SON", ""],
    ], django_capture_on_commit_callbacks)

    errors = errors_of(upload)
    assert set(errors) == {"H1", "H2", "H3"}
    assert errors["H2"] == ("group_code: Row 2 of household HH-5 has an error: a household is imported whole, with all "
                            "its members.")
    assert (upload.counts["valid"], upload.counts["households"]) == (2, 1)
    assert (upload.counts["first_member_heads"], upload.counts["first_member_primaries"]) == (1, 1)
    import_now(upload, clerk, django_capture_on_commit_callbacks)

    assert set(Membership.objects.values_list("individual__first_name", "household__code", "role_id",
                                              "recipient_type")) == {("Zawadi", "HH-6", "HEAD", "PRIMARY"),
                                                                     ("Tumaini", "HH-6", "SON", None)}
    assert set(Beneficiary.objects.filter(plan=plan).values_list("individual__first_name", flat=True)) == {
        "Zawadi", "Tumaini"}
    assert not Individual.objects.filter(first_name="Joyce").exists()


def test_household_plans_enrol_registered_households_by_code(clerk, geo, django_capture_on_commit_callbacks):
    plan = make_plan("HG", PlanType.HOUSEHOLD)
    mine = HouseholdFactory(code="HH-A", location=geo.village_a)
    HouseholdFactory(code="HH-B", location=geo.village_b)
    upload = receive(clerk, plan, ["group_code", "grade"], [["HH-A", "2"], ["HH-B", "2"], ["HH-X", "2"], ["", "1"]],
                     django_capture_on_commit_callbacks)
    errors = errors_of(upload)
    # Another district's household reads as an unknown code: a clerk learns nothing of it.
    assert "No registered household in your locations has the code 'HH-B'" in errors["HH-B"]
    assert "No registered household in your locations has the code 'HH-X'" in errors["HH-X"]
    assert "Required: the household's code." in errors[""]
    import_now(upload, clerk, django_capture_on_commit_callbacks)
    assert list(HouseholdBeneficiary.objects.values_list("household_id", "attributes")) == [(mine.pk, {"grade": 2})]


def test_household_plans_find_registered_households_whatever_the_case_of_the_code(clerk, geo,
                                                                                   django_capture_on_commit_callbacks):
    plan = make_plan("HG", PlanType.HOUSEHOLD)
    mine = HouseholdFactory(code="HH-A", location=geo.village_a)
    twice = HouseholdFactory(code="HH-C", location=geo.village_a)
    upload = receive(clerk, plan, ["group_code", "grade"], [["hh-a", "2"], ["HH-C", "3"], ["Hh-c", "4"]],
                     django_capture_on_commit_callbacks)

    errors = errors_of(upload)
    assert set(errors) == {"HH-C", "Hh-c"}
    assert "more than one row" in errors["HH-C"] and "more than one row" in errors["Hh-c"]
    import_now(upload, clerk, django_capture_on_commit_callbacks)
    assert list(HouseholdBeneficiary.objects.values_list("household_id", "attributes")) == [(mine.pk, {"grade": 2})]
    assert not HouseholdBeneficiary.objects.filter(household=twice).exists()


def test_new_people_whose_household_codes_differ_only_in_case_form_one_household(
        clerk, plan, geo, django_capture_on_commit_callbacks):
    village = geo.village_a.code
    HouseholdFactory(code="HH-OLD", location=geo.village_a)
    header = [*ENROL_HEADER, "group_code", "individual_role"]
    upload = receive(clerk, plan, header, [
        ["H1", "Mama", "Juma", "1980-01-01", "F", village, "1", "", "", "HH-NEW", "HEAD"],
        ["H2", "Mtoto", "Juma", "2015-01-01", "M", village, "2", "", "", "hh-new", "SON"],
        ["H3", "Baba", "Kaya", "1970-01-01", "M", village, "3", "", "", "hh-old", "HEAD"],
    ], django_capture_on_commit_callbacks)

    assert upload.counts["households"] == 1
    assert "A household with this code is already registered" in errors_of(upload)["H3"]
    import_now(upload, clerk, django_capture_on_commit_callbacks)
    assert set(Membership.objects.filter(household__code="HH-NEW").values_list("role_id", flat=True)) == {"HEAD", "SON"}


def test_the_plans_maximum_refuses_the_import_before_it_starts(clerk, geo, django_capture_on_commit_callbacks):
    plan = make_plan("MX", max_beneficiaries=1)
    for nid in ("M1", "M2"):
        IndividualFactory(national_id=nid, location=geo.village_a)
    upload = receive(clerk, plan, ["national_id", "grade"], [["M1", "1"], ["M2", "1"]],
                     django_capture_on_commit_callbacks)
    assert upload.counts["over_maximum"] == 1
    with pytest.raises(ValidationError, match="above its maximum of 1"):
        approval_submit(operation="bulk.import", by=clerk, payload={"upload": upload.pk, "mode": "VALID_ROWS"})
    assert not Beneficiary.objects.exists()


def test_a_closed_plan_enrols_nobody(clerk, plan, geo, django_capture_on_commit_callbacks):
    IndividualFactory(national_id="C1", location=geo.village_a)
    upload = receive(clerk, plan, ["national_id", "grade"], [["C1", "1"]], django_capture_on_commit_callbacks)
    BenefitPlan.objects.filter(pk=plan.pk).update(status="CLOSED")
    with pytest.raises(ValidationError, match="only an active plan enrols"):
        approval_submit(operation="bulk.import", by=clerk, payload={"upload": upload.pk, "mode": "VALID_ROWS"})


def test_a_plan_whose_validity_ended_enrols_nobody_from_a_file(clerk, plan, geo, django_capture_on_commit_callbacks):
    IndividualFactory(national_id="E1", location=geo.village_a)
    upload = receive(clerk, plan, ["national_id", "grade"], [["E1", "1"]], django_capture_on_commit_callbacks)
    BenefitPlan.objects.filter(pk=plan.pk).update(valid_to=timezone.localdate() - datetime.timedelta(days=1))

    with pytest.raises(ValidationError, match="it can no longer enrol anyone"):
        approval_submit(operation="bulk.import", by=clerk, payload={"upload": upload.pk, "mode": "VALID_ROWS"})
    assert not Beneficiary.objects.exists()


@pytest.mark.parametrize("status", [BeneficiaryStatus.GRADUATED, BeneficiaryStatus.REJECTED])
def test_someone_who_left_the_plan_is_not_enrolled_again_from_a_file(clerk, plan, geo, status,
                                                                    django_capture_on_commit_callbacks):
    person = IndividualFactory(national_id="G1", location=geo.village_a)
    Beneficiary.objects.filter(pk=enrolled(plan, person).pk).update(status=status)

    upload = receive(clerk, plan, ["national_id", "grade"], [["G1", "1"]], django_capture_on_commit_callbacks)

    assert upload.counts["errors"] == 1
    assert errors_of(upload)["G1"] == "national_id: This person left CG earlier (graduated or rejected): not enrolled again."


def test_a_beneficiaries_file_needs_its_plan_and_the_plans_permissions(clerk, plan, geo):
    with pytest.raises(ValidationError, match="Choose the plan"):
        services.upload_receive(kind="BENEFICIARIES", file=csv_file(["national_id"], [["X"]]), by=clerk)
    viewer = UserFactory(role="Viewer", locations=[geo.district_a])
    with pytest.raises(Exception, match="Your role does not allow you to upload files"):
        services.upload_receive(kind="BENEFICIARIES", plan=plan, file=csv_file(["national_id"], [["X"]]), by=viewer)


# --- updates ---------------------------------------------------------------------------------------

def test_updates_merge_only_the_given_fields_and_count_the_unchanged(clerk, plan, geo,
                                                                     django_capture_on_commit_callbacks):
    a = enrolled(plan, IndividualFactory(location=geo.village_a), grade=1, card="A", school="North")
    b = enrolled(plan, IndividualFactory(location=geo.village_a), grade=2, card="B", school="South")
    c = enrolled(plan, IndividualFactory(location=geo.village_a), grade=3, card="C")
    upload = receive(clerk, plan, ["ID", "grade", "school"], [
        [str(a.pk), "4", ""],          # grade changes, school kept (empty cell)
        [str(b.pk), "2", "South"],     # nothing changes
        [str(c.pk), "", "East"],       # school added
    ], django_capture_on_commit_callbacks, kind="BENEFICIARY_UPDATES")
    assert upload.counts == {"rows": 3, "valid": 3, "errors": 0, "updates": 2, "unchanged": 1}

    upload = import_now(upload, clerk, django_capture_on_commit_callbacks)
    assert upload.counts["imported"] == 2
    for row in (a, b, c):
        row.refresh_from_db()
    assert a.attributes == {"grade": 4, "card": "A", "school": "North"}
    assert b.attributes == {"grade": 2, "card": "B", "school": "South"}
    assert c.attributes == {"grade": 3, "card": "C", "school": "East"}
    assert ModelLogEntry.objects.filter(action="mizani.beneficiaries_update").exists()


def test_an_update_files_sample_shows_each_change_old_to_new_and_no_sensitive_value(
        clerk, plan, geo, django_capture_on_commit_callbacks):
    PlanField.objects.filter(plan=plan, name="card").update(sensitive=True)
    person = IndividualFactory(location=geo.village_a, first_name="Asha", last_name="Mollel")
    unchanged = enrolled(plan, IndividualFactory(location=geo.village_a), grade=2, card="B")
    changed = enrolled(plan, person, grade=1, card="A", school="North")
    upload = receive(clerk, plan, ["ID", "grade", "card", "school"], [
        [str(unchanged.pk), "2", "B", ""],
        [str(changed.pk), "4", "A-9", "North"],
    ], django_capture_on_commit_callbacks, kind="BENEFICIARY_UPDATES")

    sample = [row["summary"] for row in services.IMPORTERS[upload.kind].sample(upload)]

    assert sample[0] == f"beneficiary {changed.pk} (Asha Mollel): Grade 1 → 4; Card number changed"
    assert sample[1] == f"beneficiary {unchanged.pk} ({unchanged.individual}): no change"
    assert "A-9" not in " ".join(sample)


def test_bad_update_rows_are_named(clerk, plan, geo, django_capture_on_commit_callbacks):
    other_plan = make_plan("OT")
    mine = enrolled(plan, IndividualFactory(location=geo.village_a), grade=1, card="A")
    enrolled(plan, IndividualFactory(location=geo.village_a), grade=1, card="TAKEN")
    far = enrolled(plan, IndividualFactory(location=geo.village_b), grade=1)
    foreign = enrolled(other_plan, IndividualFactory(location=geo.village_a), grade=1)
    gone = enrolled(plan, IndividualFactory(location=geo.village_a), grade=1)
    Beneficiary.objects.filter(pk=gone.pk).update(status=BeneficiaryStatus.GRADUATED)
    upload = receive(clerk, plan, ["ID", "grade", "card"], [
        [str(mine.pk), "0", "TAKEN"],
        [str(far.pk), "2", ""],
        [str(foreign.pk), "2", ""],
        [str(gone.pk), "2", ""],
        ["abc", "2", ""],
        ["", "2", ""],
    ], django_capture_on_commit_callbacks, kind="BENEFICIARY_UPDATES")
    errors = errors_of(upload)
    assert "grade: Must be at least 1." in errors[str(mine.pk)]
    assert "No beneficiary of CG with this ID in your locations." in errors[str(far.pk)]
    assert "No beneficiary of CG with this ID" in errors[str(foreign.pk)]
    assert "has left CG" in errors[str(gone.pk)]
    assert "'abc' is not a beneficiary ID" in errors["abc"]
    assert "Required: the beneficiary's ID." in errors[""]
    assert upload.counts["valid"] == 0


def test_an_update_may_keep_its_own_unique_value(clerk, plan, geo, django_capture_on_commit_callbacks):
    row = enrolled(plan, IndividualFactory(location=geo.village_a), grade=1, card="MINE")
    upload = receive(clerk, plan, ["ID", "grade", "card"], [[str(row.pk), "2", "MINE"]],
                     django_capture_on_commit_callbacks, kind="BENEFICIARY_UPDATES")
    assert upload.counts["valid"] == 1 and upload.counts["updates"] == 1


def test_templates_carry_the_plans_schema(clerk, plan):
    from schemes.bulk.services import IMPORTERS

    assert IMPORTERS["BENEFICIARY_UPDATES"].template_headers(plan) == ["ID", "grade", "card", "school"]
    headers = IMPORTERS["BENEFICIARIES"].template_headers(plan)
    assert headers[0] == "first_name" and headers[-3:] == ["grade", "card", "school"]
    household = make_plan("HT", PlanType.HOUSEHOLD)
    assert IMPORTERS["BENEFICIARIES"].template_headers(household) == ["group_code", "grade", "card", "school"]


def test_a_masked_value_from_an_export_is_refused_not_imported(clerk, plan, geo, django_capture_on_commit_callbacks):
    """A user who may not see sensitive data exports masked values (•••678); the same file uploaded
    as an update must not overwrite the real ones."""
    PlanField.objects.create(plan=plan, name="account", label="Bank account", field_type="text", sensitive=True,
                             sort_order=3)
    row = enrolled(plan, IndividualFactory(location=geo.village_a), grade=1, account="12345678")
    upload = receive(clerk, plan, ["ID", "grade", "account"], [[str(row.pk), "2", "•••••678"]],
                     django_capture_on_commit_callbacks, kind="BENEFICIARY_UPDATES")
    assert "account: This value is masked" in errors_of(upload)[str(row.pk)]
    assert upload.counts["valid"] == 0


# --- the plan's criteria (a file enrols as potential: the plan's rule for potential applies) ----------

def set_criteria(plan, text, status=BeneficiaryStatus.POTENTIAL):
    rule = to_json(criteria_node(text, candidate_catalogue(plan)))
    BenefitPlan.objects.filter(pk=plan.pk).update(criteria={status: {"text": text, "rule": rule}})
    plan.refresh_from_db()


def years_ago(years):
    return datetime.date.today() - datetime.timedelta(days=round(365.25 * years))


def household_with_a_baby(location, member_roles, code, **parent):
    household = HouseholdFactory(code=code, location=location)
    grown = IndividualFactory(location=location, dob=years_ago(30), **parent)
    MembershipFactory(household=household, individual=grown, role=member_roles["HEAD"])
    MembershipFactory(household=household, individual=IndividualFactory(location=location, dob=years_ago(1)),
                      role=member_roles["SON"])
    return household, grown


CRITERIA = "children_under_5 >= 1 and income < 150000"
PEOPLE_HEADER = ["national_id", "first_name", "last_name", "dob", "sex", "location", "income", "group_code",
                 "individual_role", "grade", "card"]


@pytest.fixture
def income(db):
    return RegistryFieldFactory(name="income", label="Income", field_type="integer")


def test_a_row_whose_person_does_not_meet_the_plans_criteria_is_refused_naming_them(
        clerk, plan, geo, member_roles, income, django_capture_on_commit_callbacks):
    """QA M7: Majaliwa Moshi (70, no child under 5) was enrolled without a word."""
    set_criteria(plan, CRITERIA)
    village = geo.village_a.code
    IndividualFactory(national_id="TZOLD", location=geo.village_a, first_name="Majaliwa", last_name="Moshi",
                      dob=years_ago(70), attributes={"income": 40000})
    _, mother = household_with_a_baby(geo.village_a, member_roles, "HH-REG", national_id="TZMUM",
                                      attributes={"income": 60000})
    _, rich = household_with_a_baby(geo.village_a, member_roles, "HH-RICH", national_id="TZRICH",
                                    attributes={"income": 900000})
    upload = receive(clerk, plan, PEOPLE_HEADER, [
        ["TZOLD", "", "", "", "", "", "", "", "", "3", "C-1"],
        ["TZMUM", "", "", "", "", "", "", "", "", "3", "C-2"],
        ["TZRICH", "", "", "", "", "", "", "", "", "3", "C-3"],
        # New people: a household with a baby (its members read their counts from the file), and a
        # person alone (in no household: no count of children).
        ["TZNEW1", "Neema", "Juma", years_ago(28).isoformat(), "F", village, "1000", "NEW-1", "HEAD", "2", "C-4"],
        ["TZNEW2", "Baraka", "Juma", years_ago(2).isoformat(), "M", village, "0", "NEW-1", "SON", "1", "C-5"],
        ["TZNEW3", "Zuberi", "Ali", years_ago(40).isoformat(), "M", village, "1000", "", "", "2", "C-6"],
    ], django_capture_on_commit_callbacks)

    assert upload.status == UploadStatus.READY, upload.problem
    message = f"Does not meet the plan's criteria for Potential: {CRITERIA}"
    errors = errors_of(upload)
    assert set(errors) == {"TZOLD", "TZRICH", "TZNEW3"}
    assert all(message in text for text in errors.values())
    assert upload.counts["fail_criteria"] == 3 and upload.counts["valid"] == 3
    assert ("Rows not imported: not meeting the plan's criteria for potential beneficiaries", "3") in \
        services.counts_shown(upload)

    import_now(upload, clerk, django_capture_on_commit_callbacks)
    enrolled_ids = set(Beneficiary.objects.filter(plan=plan).values_list("individual__national_id", flat=True))
    assert enrolled_ids == {"TZMUM", "TZNEW1", "TZNEW2"}
    assert not Individual.objects.filter(national_id="TZNEW3").exists()  # the row is refused whole
    assert rich.pk and mother.pk


def test_the_criteria_read_the_files_plan_data_and_only_the_rule_for_potential_applies(
        clerk, plan, geo, django_capture_on_commit_callbacks):
    BenefitPlan.objects.filter(pk=plan.pk).update(criteria={
        BeneficiaryStatus.POTENTIAL: {"text": "grade >= 3", "rule": to_json(criteria_node(
            "grade >= 3", candidate_catalogue(plan)))},
        BeneficiaryStatus.ACTIVE: {"text": "age < 5", "rule": to_json(criteria_node(
            "age < 5", candidate_catalogue(plan)))}})
    IndividualFactory(national_id="TZ1", location=geo.village_a, dob=years_ago(70))
    IndividualFactory(national_id="TZ2", location=geo.village_a, dob=years_ago(70))
    upload = receive(clerk, plan, ENROL_HEADER, [["TZ1", "", "", "", "", "", "4", "C-1", ""],
                                                 ["TZ2", "", "", "", "", "", "2", "C-2", ""]],
                     django_capture_on_commit_callbacks)

    assert set(errors_of(upload)) == {"TZ2"}
    import_now(upload, clerk, django_capture_on_commit_callbacks)
    assert list(Beneficiary.objects.values_list("individual__national_id", flat=True)) == ["TZ1"]


def test_a_plan_without_criteria_for_potential_enrols_whoever_the_file_names(
        clerk, plan, geo, django_capture_on_commit_callbacks):
    set_criteria(plan, "age < 5", BeneficiaryStatus.ACTIVE)
    IndividualFactory(national_id="TZOLD", location=geo.village_a, dob=years_ago(70))
    upload = receive(clerk, plan, ENROL_HEADER, [["TZOLD", "", "", "", "", "", "3", "C-1", ""]],
                     django_capture_on_commit_callbacks)

    assert upload.counts["errors"] == 0 and "fail_criteria" not in upload.counts
    import_now(upload, clerk, django_capture_on_commit_callbacks)
    assert Beneficiary.objects.filter(plan=plan, individual__national_id="TZOLD").exists()


def test_a_household_plan_refuses_a_household_not_meeting_its_criteria(clerk, geo, member_roles,
                                                                        django_capture_on_commit_callbacks):
    plan = make_plan("HG", PlanType.HOUSEHOLD)
    set_criteria(plan, "children_under_5 >= 1")
    with_baby, _ = household_with_a_baby(geo.village_a, member_roles, "HH-A")
    without = HouseholdFactory(code="HH-C", location=geo.village_a)
    MembershipFactory(household=without, individual=IndividualFactory(location=geo.village_a, dob=years_ago(40)),
                      role=member_roles["HEAD"])
    upload = receive(clerk, plan, ["group_code", "grade"], [["HH-A", "2"], ["HH-C", "2"]],
                     django_capture_on_commit_callbacks)

    assert errors_of(upload) == {"HH-C": "Does not meet the plan's criteria for Potential: children_under_5 >= 1"}
    import_now(upload, clerk, django_capture_on_commit_callbacks)
    assert list(HouseholdBeneficiary.objects.values_list("household_id", flat=True)) == [with_baby.pk]


def test_an_update_file_taking_beneficiaries_out_of_their_criteria_is_counted_not_refused(
        clerk, plan, geo, django_capture_on_commit_callbacks):
    set_criteria(plan, "grade >= 3", BeneficiaryStatus.ACTIVE)
    leaving = enrolled(plan, IndividualFactory(location=geo.village_a), grade=5, card="A")
    staying = enrolled(plan, IndividualFactory(location=geo.village_a), grade=5, card="B")
    already_out = enrolled(plan, IndividualFactory(location=geo.village_a), grade=1, card="C")
    other = enrolled(plan, IndividualFactory(location=geo.village_a), grade=5, card="D")
    upload = receive(clerk, plan, ["ID", "grade", "school"], [
        [str(leaving.pk), "2", ""], [str(staying.pk), "4", ""], [str(already_out.pk), "2", ""],
        [str(other.pk), "", "East"],
    ], django_capture_on_commit_callbacks, kind="BENEFICIARY_UPDATES")

    assert upload.counts["leave_criteria"] == 1 and upload.counts["errors"] == 0
    upload = import_now(upload, clerk, django_capture_on_commit_callbacks)
    assert upload.status == UploadStatus.IMPORTED and upload.counts["imported"] == 4
    leaving.refresh_from_db()
    assert leaving.attributes["grade"] == 2


def test_an_update_file_writes_each_changed_beneficiarys_history_masked(
        clerk, plan, geo, django_capture_on_commit_callbacks):
    """QA M5: after an update file, the beneficiaries' history said "No history yet"."""
    PlanField.objects.filter(plan=plan, name="card").update(sensitive=True)
    changed = enrolled(plan, IndividualFactory(location=geo.village_a), grade=1, card="A", school="North")
    unchanged = enrolled(plan, IndividualFactory(location=geo.village_a), grade=2, card="B")
    upload = receive(clerk, plan, ["ID", "grade", "card", "school"], [
        [str(changed.pk), "4", "A-99999", "North"],
        [str(unchanged.pk), "2", "", ""],
    ], django_capture_on_commit_callbacks, kind="BENEFICIARY_UPDATES", name="grades.csv")
    import_now(upload, clerk, django_capture_on_commit_callbacks)

    viewer = UserFactory(role="Viewer", national=True)
    assert not can_view_sensitive(viewer)
    history = beneficiary_history(changed, viewer)
    assert [entry.action for entry in history] == ["mizani.beneficiary_attributes"]
    assert history[0].user == clerk
    assert sorted(history[0].changes) == [("Card number", mask("A"), mask("A-99999")), ("Grade", 1, 4)]
    # The trail keeps what the single change keeps: masked values, the changed fields only.
    assert history[0].data["changes"] == {"card": [mask("A"), mask("A-99999")], "grade": [1, 4]}
    assert history[0].data["changed"] == ["card", "grade"] and history[0].data["upload"] == upload.pk
    assert "A-99999" not in str(ModelLogEntry.objects.values_list("data", flat=True))
    assert not beneficiary_history(unchanged, viewer)


def test_a_new_beneficiaries_file_writes_each_enrolled_beneficiarys_history(
        clerk, plan, geo, django_capture_on_commit_callbacks):
    late = IndividualFactory(national_id="TZ300", location=geo.village_a)
    upload = receive(clerk, plan, ENROL_HEADER, [
        ["TZ300", "", "", "", "", "", "3", "C-3", ""],
        ["TZ200", "Neema", "Juma", "2014-03-02", "F", geo.village_a.code, "5", "C-2", ""],
    ], django_capture_on_commit_callbacks, name="intake.csv")
    meanwhile = enrolled(plan, late, grade=7, card="C-7")
    import_now(upload, clerk, django_capture_on_commit_callbacks)

    new = Beneficiary.objects.get(plan=plan, individual__national_id="TZ200")
    history = beneficiary_history(new, clerk)
    assert [(entry.action, entry.message, entry.user) for entry in history] == [
        ("mizani.enrol_file", "Enrolled by file intake.csv", clerk)]
    assert history[0].data == {"upload": upload.pk, "file": "intake.csv", "status": BeneficiaryStatus.POTENTIAL}
    assert not beneficiary_history(meanwhile, clerk)  # skipped at the import: not enrolled by the file


def test_a_district_clerks_file_without_a_location_column_is_refused_once_it_registers_someone(
        clerk, plan, geo, django_capture_on_commit_callbacks):
    """QA: each new person's row said "Required" for a location the file had no column for. A file
    enrolling registered people only needs no location column."""
    IndividualFactory(national_id="TZ100", location=geo.village_a)
    header = ["national_id", "first_name", "last_name", "dob", "sex", "grade"]
    upload = receive(clerk, plan, header, [["TZ100", "", "", "", "", "3"], ["TZ200", "Neema", "Juma", "2014-03-02",
                                                                             "F", "5"]],
                     django_capture_on_commit_callbacks)

    assert upload.status == UploadStatus.REFUSED
    assert upload.problem == ("Row 3 registers a new person (it names no registered person by national ID). This "
                              f"file has no location column: as your access is limited to {geo.district_a}, each new "
                              'person needs a location code (column "location").')
    assert not StagedBeneficiary.objects.filter(upload_id=upload.pk).exists()
    assert not StagedIndividual.objects.filter(upload_id=upload.pk).exists()

    registered_only = receive(clerk, plan, header, [["TZ100", "", "", "", "", "3"]], django_capture_on_commit_callbacks)
    assert registered_only.status == UploadStatus.READY and registered_only.counts["valid"] == 1


def test_new_people_whose_sex_is_not_recorded_are_counted(clerk, plan, geo, django_capture_on_commit_callbacks):
    village = geo.village_a.code
    upload = receive(clerk, plan, ENROL_HEADER, [
        ["TZ200", "Neema", "Juma", "2014-03-02", "", village, "5", "C-2", ""],
        ["TZ201", "Juma", "Juma", "2015-03-02", "M", village, "5", "C-3", ""],
    ], django_capture_on_commit_callbacks)

    assert upload.counts["sex_not_recorded"] == 1


def test_an_update_files_sample_shows_sensitive_changes_to_whoever_may_see_them_on_the_page_only(
        clerk, plan, geo, django_capture_on_commit_callbacks):
    """QA: the upload page hid a sensitive field's old and new values from a clerk allowed to see them."""
    PlanField.objects.filter(plan=plan, name="card").update(sensitive=True)
    changed = enrolled(plan, IndividualFactory(location=geo.village_a, first_name="Asha", last_name="Mollel"),
                       grade=1, card="A-1")
    upload = receive(clerk, plan, ["ID", "grade", "card"], [[str(changed.pk), "4", "A-9"]],
                     django_capture_on_commit_callbacks, kind="BENEFICIARY_UPDATES")
    manager = UserFactory(role="Manager", locations=[geo.district_a])
    assert can_view_sensitive(clerk) and not can_view_sensitive(manager)

    shown = f"beneficiary {changed.pk} (Asha Mollel): Grade 1 → 4; Card number A-1 → A-9"
    assert [row["summary"] for row in services.sample_shown_to(clerk, upload)] == [shown]
    assert [row["summary"] for row in services.sample_shown_to(manager, upload)] == [
        f"beneficiary {changed.pk} (Asha Mollel): Grade 1 → 4; Card number changed"]
    assert shown in client_for(clerk).get(reverse("bulk_upload:inspect", args=[upload.pk])).content.decode()
    # The approval request keeps the sample for its readers, who may not see sensitive data.
    summary = approvals.prepare({"upload": upload.pk, "mode": "VALID_ROWS"}, clerk).summary
    assert "A-9" not in str(summary) and "Card number changed" in str(summary)
