"""Duplicates: the registry-wide scan (what it files, for whom, rescans, resuming), the selectors of the
review queue, dismissing a pair, and merging / unmerging through the approval engine: what moves
(household place, enrolments), what is closed, what is audited, and every refusal."""

import datetime
from dataclasses import replace

import pytest
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from wagtail.models import ModelLogEntry

from schemes.plans.models import Beneficiary, BeneficiaryStatus, BenefitPlan
from schemes.registry import duplicates, selectors, services
from schemes.registry.models import (
    DuplicateCandidate,
    DuplicateStatus,
    Individual,
    Membership,
    Merge,
    MergeStatus,
)
from sites.models import OrganisationSettings
from tests.factories import (
    DuplicateCandidateFactory,
    HouseholdFactory,
    IndividualFactory,
    MembershipFactory,
    RegistryFieldFactory,
    UserFactory,
)
from workflows import services as workflow_services
from workflows.models import ApprovalRequest, Job, JobStatus, RequestStatus, WorkflowDefinition, WorkflowStep

pytestmark = pytest.mark.django_db

postgresql_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="compares the PostgreSQL scan")
D = datetime.date


def person(first_name, last_name, dob, location, **fields):
    return IndividualFactory(first_name=first_name, last_name=last_name, dob=dob, location=location, **fields)


def filed():
    """{(first name, second name): reasons} of every pair in the queue, names in id order."""
    return {(f"{c.first.first_name} {c.first.last_name}", f"{c.second.first_name} {c.second.last_name}"): c.reasons
            for c in DuplicateCandidate.objects.select_related("first", "second")}


def run_scan(user, django_capture_on_commit_callbacks, key="k"):
    with django_capture_on_commit_callbacks(execute=True):
        job = services.duplicates_scan_start(idempotency_key=key, by=user)
    return Job.objects.get(pk=job.pk)


def entries(instance, action):
    return ModelLogEntry.objects.filter(content_type=ContentType.objects.get_for_model(instance),
                                        object_id=str(instance.pk), action=action)


@pytest.fixture
def village(geo):
    return geo.village_a


@pytest.fixture
def population(village):
    """Pairs each rule must find, and look-alikes it must not."""
    return {
        "name_dob": (person("Amina", "Juma", D(1990, 5, 12), village),
                     person("Amina", "Juma", D(1990, 5, 12), village)),
        "similar_same_dob": (person("Neema", "Mushi", D(1985, 3, 27), village),
                             person("Neema", "Mushy", D(1985, 3, 27), village)),
        "swapped": (person("Halima", "Said", D(1970, 4, 9), village),
                    person("Halima", "Saidi", D(1970, 9, 4), village)),
        "days_apart": (person("Rehema", "Kweka", D(1992, 1, 10), village),
                       person("Rehema", "Kweka", D(1992, 1, 14), village)),
        "phone": (person("Baraka", "Mollel", D(1980, 1, 1), village, phone="+255 712 345 678"),
                  person("Baraka", "Molel", D(1981, 6, 30), village, phone="0712345678")),
        # Legacy rows: an ID stored before normalisation, the same ID stored normalised.
        "national_id": (person("Zawadi", "Lyimo", D(1960, 2, 2), village, national_id="tz-4471/09"),
                        person("Upendo", "Massawe", D(1975, 8, 19), village, national_id="TZ447109")),
        # Twins, siblings sharing a phone, namesakes born years apart, a deleted record: no pair.
        "twins": (person("Amina", "Kessy", D(2001, 7, 7), village), person("Aisha", "Kessy", D(2001, 7, 7), village)),
        "siblings": (person("Baraka", "Temba", D(1999, 2, 3), village, phone="+255788000111"),
                     person("Amina", "Temba", D(2003, 11, 20), village, phone="+255788000111")),
        "namesakes": (person("Grace", "Kimaro", D(1950, 6, 1), village), person("Grace", "Kimaro", D(1952, 6, 1), village)),
        "deleted": (person("Asha", "Mrema", D(1994, 10, 30), village),
                    person("Asha", "Mrema", D(1994, 10, 30), village, deleted_at=timezone.now())),
    }


# --- the scan -----------------------------------------------------------------------------------


def test_scan_files_each_kind_of_duplicate_and_nothing_else(population, clerk_a, django_capture_on_commit_callbacks):
    job = run_scan(clerk_a, django_capture_on_commit_callbacks)

    assert job.status == JobStatus.SUCCEEDED, job.error
    assert filed() == {
        ("Amina Juma", "Amina Juma"): ["name_dob"],
        ("Neema Mushi", "Neema Mushy"): ["similar_name", "same_dob"],
        ("Halima Said", "Halima Saidi"): ["similar_name", "close_dob"],
        ("Rehema Kweka", "Rehema Kweka"): ["similar_name", "close_dob"],
        ("Baraka Mollel", "Baraka Molel"): ["similar_name", "phone"],
        ("Zawadi Lyimo", "Upendo Massawe"): ["national_id"],
    }
    assert job.result == {"found": 6, "new": 6, "steps": job.progress_total}
    scores = {names: c.score for c in DuplicateCandidate.objects.select_related("first", "second")
              for names in [(c.first.first_name, c.second.first_name)]}
    assert scores["Zawadi", "Upendo"] == 100
    assert scores["Amina", "Amina"] == 90       # the same names (60) and the same date of birth (30)
    assert scores["Rehema", "Rehema"] == 75     # the same names, 4 days apart (15)
    assert 70 <= scores["Neema", "Neema"] < 90  # similar names (40 to 60), the same date of birth
    assert 55 <= scores["Halima", "Halima"] < 75
    assert 50 <= scores["Baraka", "Baraka"] < 70
    assert {c.status for c in DuplicateCandidate.objects.all()} == {DuplicateStatus.OPEN}
    assert {c.scan_job_id for c in DuplicateCandidate.objects.all()} == {job.pk}
    assert all(c.first_id < c.second_id for c in DuplicateCandidate.objects.all())


def test_the_scan_compares_only_the_starters_locations(geo, clerk_a, national_clerk,
                                                      django_capture_on_commit_callbacks):
    person("Amina", "Juma", D(1990, 5, 12), geo.village_a)
    person("Amina", "Juma", D(1990, 5, 12), geo.village_b)   # one in A, one in B
    person("Neema", "Mushi", D(1985, 3, 27), geo.village_b)
    person("Neema", "Mushi", D(1985, 3, 27), geo.village_b)  # both in B
    person("Halima", "Said", D(1970, 4, 9), None)
    person("Halima", "Said", D(1970, 4, 9), None)            # no location: national scope only

    run_scan(clerk_a, django_capture_on_commit_callbacks)
    assert filed() == {}

    run_scan(national_clerk, django_capture_on_commit_callbacks)
    assert set(filed()) == {("Amina Juma", "Amina Juma"), ("Neema Mushi", "Neema Mushi"),
                            ("Halima Said", "Halima Said")}


def test_a_rescan_rescores_open_pairs_and_leaves_dismissed_and_merged_ones(population, clerk_a,
                                                                            django_capture_on_commit_callbacks):
    run_scan(clerk_a, django_capture_on_commit_callbacks, key="first")
    dismissed = DuplicateCandidate.objects.get(reasons=["name_dob"])
    services.duplicate_dismiss(candidate=dismissed, reason="Two women of the same name", by=clerk_a)
    phone_pair = DuplicateCandidate.objects.get(reasons=["similar_name", "phone"])
    # Corrections that would raise both scores: the same phone for the dismissed pair; the same
    # names and date of birth for the other.
    Individual.objects.filter(pk__in=[dismissed.first_id, dismissed.second_id]).update(phone="+255700123456")
    Individual.objects.filter(pk=phone_pair.second_id).update(last_name="Mollel", dob=D(1980, 1, 1))

    job = run_scan(clerk_a, django_capture_on_commit_callbacks, key="second")

    assert DuplicateCandidate.objects.count() == 6
    dismissed.refresh_from_db()
    assert (dismissed.status, dismissed.score, dismissed.reasons) == (DuplicateStatus.DISMISSED, 90, ["name_dob"])
    assert dismissed.scan_job_id != job.pk
    phone_pair.refresh_from_db()
    assert phone_pair.reasons == ["name_dob", "phone"] and phone_pair.score == 99
    assert phone_pair.scan_job_id == job.pk
    assert job.result["new"] == 0 and job.result["found"] == 5


def test_placeholder_phones_and_crowded_dates_do_not_pair_everyone(village, clerk_a, monkeypatch,
                                                                    django_capture_on_commit_callbacks):
    monkeypatch.setattr(duplicates, "CROWDED_DATE", 3)
    monkeypatch.setattr(duplicates, "SHARED_PHONE_LIMIT", 3)
    january = D(1980, 1, 1)  # four people: a crowded date; only namesakes are compared
    person("Amina", "Juma", january, village)
    person("Aminah", "Juma", january, village)
    person("Neema", "Mushi", january, village)
    person("Neemah", "Mushy", january, village)
    for year in (1961, 1963, 1965, 1967):  # one placeholder number for four people
        person("Baraka", "Mollel" if year < 1965 else "Molel", D(year, 3, 3), village, phone="+255 700 000 000")

    run_scan(clerk_a, django_capture_on_commit_callbacks)

    assert filed() == {("Amina Juma", "Aminah Juma"): ["similar_name", "same_dob"]}


def test_a_restarted_scan_resumes_after_its_last_committed_step(population, clerk_a):
    job = Job.objects.create(kind=duplicates.SCAN, idempotency_key="resume", started_by=clerk_a,
                             progress_done=2)  # national IDs and phones were done before the crash
    reports = []

    result = duplicates.scan(job, lambda done, total=None, message="": reports.append((done, total)))

    assert reports[0][0] == 2 and reports[-1] == (reports[-1][1], reports[-1][1])
    assert ("Zawadi Lyimo", "Upendo Massawe") not in filed()  # the skipped step
    assert ("Amina Juma", "Amina Juma") in filed()
    assert result["steps"] == reports[-1][1]


def test_starting_a_scan_needs_the_permission_and_a_scope(viewer_a, db):
    with pytest.raises(PermissionDenied):
        services.duplicates_scan_start(idempotency_key="x", by=viewer_a)
    unscoped = UserFactory(role="Clerk")
    with pytest.raises(PermissionDenied):
        services.duplicates_scan_start(idempotency_key="x", by=unscoped)
    assert not Job.objects.exists()


def test_a_second_start_returns_the_running_scan(clerk_a, enqueued_jobs):
    first = services.duplicates_scan_start(idempotency_key="one", by=clerk_a)
    again = services.duplicates_scan_start(idempotency_key="two", by=clerk_a)
    same_key = services.duplicates_scan_start(idempotency_key="one", by=clerk_a)

    assert first.pk == again.pk == same_key.pk
    assert Job.objects.filter(kind=duplicates.SCAN).count() == 1


@pytest.fixture
def enqueued_jobs(monkeypatch):
    calls = []
    monkeypatch.setattr("workflows.services._enqueue", lambda job_id: calls.append(job_id))
    return calls


def test_a_finished_scan_is_recorded_in_the_audit_trail(population, clerk_a, django_capture_on_commit_callbacks):
    run_scan(clerk_a, django_capture_on_commit_callbacks)

    entry = entries(OrganisationSettings.load(), "mizani.maintenance").get()
    assert entry.user_id == clerk_a.pk
    assert entry.data["task"] == duplicates.SCAN and entry.data["found"] == 6


@postgresql_only
def test_postgresql_and_python_scans_file_the_same_pairs(population, national_clerk):
    """The two engines measure names differently (pg_trgm, rapidfuzz) but each with thresholds on its
    own scale: on clear cases they agree on the pairs and the reasons."""
    people = Individual.objects.live()
    job = Job.objects.create(kind=duplicates.SCAN, idempotency_key="parity", started_by=national_clerk)
    steps = ["national_id", "phone", *range(1950, 2004)]
    for step in steps:
        duplicates.PostgresScan(people, job).run(step)
    in_sql = filed()
    DuplicateCandidate.objects.all().delete()
    for step in steps:
        duplicates.PythonScan(people, job).run(step)

    assert filed() == in_sql
    assert len(in_sql) == 6


def test_scoring_rules():
    t = duplicates.TRIGRAM
    exact = duplicates.Features(same_national_id=False, same_name=True, similarity=1.0, same_dob=True,
                                close_dob=False, same_phone=False)
    assert duplicates.score(exact, t) == 90 and duplicates.reasons(exact, t) == ["name_dob"]
    assert duplicates.score(replace(exact, same_phone=True), t) == 99
    weak = replace(exact, same_name=False, similarity=0.3)
    assert not duplicates.qualifies(weak, t) and duplicates.score(weak, t) == 50
    same_id = replace(weak, same_national_id=True)
    assert duplicates.qualifies(same_id, t) and duplicates.score(same_id, t) == 100
    assert duplicates.swapped_day_month(D(1970, 4, 9)) == D(1970, 9, 4)
    assert duplicates.swapped_day_month(D(1970, 4, 13)) is None and duplicates.swapped_day_month(D(1970, 4, 4)) is None
    assert duplicates.phone_key("+255 (712) 345-678") == duplicates.phone_key("0712345678") == "712345678"
    assert duplicates.phone_key("12-34") is None


# --- the queue (selectors) ----------------------------------------------------------------------


def test_the_queue_shows_pairs_whose_two_people_the_user_may_see(geo, clerk_a, clerk_b, viewer_a, national_clerk):
    in_a = DuplicateCandidateFactory(first=person("A", "One", D(1990, 1, 1), geo.village_a),
                                     second=person("A", "Two", D(1990, 1, 1), geo.village_a))
    across = DuplicateCandidateFactory(first=person("X", "One", D(1990, 1, 1), geo.village_a),
                                       second=person("X", "Two", D(1990, 1, 1), geo.village_b))
    gone = DuplicateCandidateFactory(first=person("G", "One", D(1990, 1, 1), geo.village_a),
                                     second=person("G", "Two", D(1990, 1, 1), geo.village_a, deleted_at=timezone.now()))
    merged = DuplicateCandidateFactory(first=person("M", "One", D(1990, 1, 1), geo.village_a),
                                       second=person("M", "Two", D(1990, 1, 1), geo.village_a,
                                                     deleted_at=timezone.now()), status=DuplicateStatus.MERGED)

    assert set(selectors.duplicates_for(clerk_a)) == {in_a, merged}
    assert set(selectors.duplicates_for(clerk_b)) == set()
    assert set(selectors.duplicates_for(national_clerk)) == {in_a, across, merged}
    assert set(selectors.duplicates_for(viewer_a)) == set()  # no permission to review duplicates
    assert gone not in selectors.duplicates_for(national_clerk)


def test_the_queue_filters_by_reason(geo, clerk_a):
    phone = DuplicateCandidateFactory(first=person("A", "B", D(1990, 1, 1), geo.village_a),
                                      second=person("A", "C", D(1990, 1, 1), geo.village_a),
                                      reasons=["similar_name", "phone"])
    DuplicateCandidateFactory(first=person("D", "E", D(1990, 1, 1), geo.village_a),
                              second=person("D", "E", D(1990, 1, 1), geo.village_a), reasons=["name_dob"])

    assert list(selectors.filter_by_reason(selectors.duplicates_for(clerk_a), "phone")) == [phone]
    assert not selectors.filter_by_reason(selectors.duplicates_for(clerk_a), "national_id").exists()


# --- dismissing ---------------------------------------------------------------------------------


@pytest.fixture
def pair(geo):
    return DuplicateCandidateFactory(
        first=person("Amina", "Juma", D(1990, 5, 12), geo.village_a, national_id="A1000001", phone="+255700000001"),
        second=person("Aminah", "Juma", D(1990, 5, 12), geo.village_a, national_id="A1000002"),
        reasons=["similar_name", "same_dob"], score=85)


def test_dismissing_records_who_when_and_why_and_is_audited(pair, clerk_a):
    services.duplicate_dismiss(candidate=pair, reason="  Mother and daughter  ", by=clerk_a)

    pair.refresh_from_db()
    assert (pair.status, pair.dismiss_reason, pair.dismissed_by) == (DuplicateStatus.DISMISSED,
                                                                     "Mother and daughter", clerk_a)
    assert pair.dismissed_at is not None
    entry = entries(pair, "mizani.duplicate_dismiss").get()
    assert entry.user_id == clerk_a.pk and entry.data["reason"] == "Mother and daughter"
    with pytest.raises(ValidationError):  # already dismissed
        services.duplicate_dismiss(candidate=pair, reason="again", by=clerk_a)


def test_dismissing_needs_a_reason_the_permission_and_the_scope(pair, clerk_b, geo):
    checker = UserFactory(role="Checker", locations=[geo.district_a])
    with pytest.raises(ValidationError):
        services.duplicate_dismiss(candidate=pair, reason=" ", by=UserFactory(role="Clerk", locations=[geo.district_a]))
    with pytest.raises(PermissionDenied):
        services.duplicate_dismiss(candidate=pair, reason="no", by=checker)
    with pytest.raises(DuplicateCandidate.DoesNotExist):
        services.duplicate_dismiss(candidate=pair, reason="no", by=clerk_b)
    pair.refresh_from_db()
    assert pair.status == DuplicateStatus.OPEN


def test_a_dismissed_pair_can_be_reopened_back_into_the_queue_and_it_is_audited(pair, clerk_a):
    services.duplicate_dismiss(candidate=pair, reason="Twins", by=clerk_a)
    reviewer = UserFactory(role="Clerk", locations=[pair.first.location])

    services.duplicate_reopen(candidate=pair, by=reviewer)

    pair.refresh_from_db()
    assert (pair.status, pair.dismiss_reason, pair.dismissed_by, pair.dismissed_at) == (
        DuplicateStatus.OPEN, "", None, None)
    assert pair in selectors.duplicates_for(clerk_a).filter(status=DuplicateStatus.OPEN)
    entry = entries(pair, "mizani.duplicate_reopen").get()
    assert entry.user_id == reviewer.pk
    assert (entry.data["dismissed"]["reason"], entry.data["dismissed"]["by"]) == ("Twins", clerk_a.pk)
    with pytest.raises(ValidationError, match="only a pair marked as not a duplicate"):
        services.duplicate_reopen(candidate=pair, by=clerk_a)


def test_reopening_needs_the_permission_the_scope_and_two_live_records(pair, clerk_a, clerk_b, geo):
    services.duplicate_dismiss(candidate=pair, reason="Twins", by=clerk_a)
    with pytest.raises(PermissionDenied):
        services.duplicate_reopen(candidate=pair, by=UserFactory(role="Checker", locations=[geo.district_a]))
    with pytest.raises(DuplicateCandidate.DoesNotExist):
        services.duplicate_reopen(candidate=pair, by=clerk_b)
    services.individual_soft_delete(individual=pair.second, by=clerk_a)
    with pytest.raises(ValidationError, match="deleted"):
        services.duplicate_reopen(candidate=pair, by=clerk_a)
    assert DuplicateCandidate.objects.get(pk=pair.pk).status == DuplicateStatus.DISMISSED
    assert not entries(pair, "mizani.duplicate_reopen").exists()


# --- merging through approval -------------------------------------------------------------------


@pytest.fixture
def checker(geo):
    return UserFactory(username="dupe_checker", role="Checker", locations=[geo.district_a])


@pytest.fixture
def merge_workflows(db):
    group = Group.objects.get(name="Checker")
    for operation in ("registry.merge", "registry.unmerge"):
        WorkflowStep.objects.create(definition=WorkflowDefinition.objects.create(operation=operation), group=group,
                                    sort_order=0)


def approve(request, by, capture):
    with capture(execute=True):
        workflow_services.approval_decide(request=request, verdict="approve", by=by)
    return ApprovalRequest.objects.get(pk=request.pk)


def test_a_merge_waits_for_a_checker_and_the_maker_cannot_approve_it(pair, clerk_a, checker, merge_workflows,
                                                                     django_capture_on_commit_callbacks):
    kept, duplicate = pair.first, pair.second
    request = services.individual_merge_request(candidate=pair, kept=kept, by=clerk_a)

    pair.refresh_from_db()
    assert request.status == RequestStatus.PENDING and request.operation == "registry.merge"
    assert (pair.status, pair.merge_request) == (DuplicateStatus.MERGE_REQUESTED, request)
    assert request.payload == {"candidate": pair.pk, "kept": kept.pk, "merged": duplicate.pk}
    assert [f"First name, kept (id {kept.pk})", "Amina", "Amina"] in request.summary["diff"]
    assert [f"First name, dropped from the merged record (id {duplicate.pk})", "Aminah", None] in request.summary["diff"]
    assert request.location == kept.location
    assert not Individual.objects.get(pk=duplicate.pk).is_deleted
    with pytest.raises(PermissionDenied):
        workflow_services.approval_decide(request=request, verdict="approve", by=clerk_a)
    with pytest.raises(ValidationError):  # the pair is already waiting
        services.individual_merge_request(candidate=pair, kept=kept, by=clerk_a)

    request = approve(request, checker, django_capture_on_commit_callbacks)

    assert request.status == RequestStatus.EXECUTED, request.error
    duplicate.refresh_from_db()
    assert duplicate.is_deleted and duplicate.merged_into == kept
    assert not Individual.objects.get(pk=kept.pk).is_deleted
    pair.refresh_from_db()
    assert pair.status == DuplicateStatus.MERGED
    merge = Merge.objects.get()
    assert (merge.kept, merge.merged, merge.candidate, merge.request, merge.merged_by) == (
        kept, duplicate, pair, request, clerk_a)
    assert entries(kept, "mizani.merge").get().data["merged"] == duplicate.pk
    assert entries(duplicate, "mizani.merged").get().data["kept"] == kept.pk


def test_a_rejected_or_cancelled_merge_puts_the_pair_back_in_the_queue(pair, clerk_a, checker, merge_workflows):
    request = services.individual_merge_request(candidate=pair, kept=pair.second, by=clerk_a)
    workflow_services.approval_decide(request=request, verdict="reject", comment="Different mothers", by=checker)
    pair.refresh_from_db()
    assert pair.status == DuplicateStatus.OPEN
    assert not Merge.objects.exists() and not Individual.objects.get(pk=pair.first_id).is_deleted

    request = services.individual_merge_request(candidate=pair, kept=pair.second, by=clerk_a)
    workflow_services.approval_cancel(request=request, by=clerk_a)
    pair.refresh_from_db()
    assert pair.status == DuplicateStatus.OPEN


def test_a_record_changed_after_the_request_voids_the_merge(pair, clerk_a, checker, merge_workflows,
                                                           django_capture_on_commit_callbacks):
    request = services.individual_merge_request(candidate=pair, kept=pair.first, by=clerk_a)
    services.individual_update(individual=pair.second, fields={"phone": "+255711000000"}, by=clerk_a)

    request = approve(request, checker, django_capture_on_commit_callbacks)

    assert request.status == RequestStatus.VOID
    pair.refresh_from_db()
    assert pair.status == DuplicateStatus.OPEN and not Merge.objects.exists()


def test_with_approval_off_the_merge_applies_at_once(pair, clerk_a, django_capture_on_commit_callbacks):
    WorkflowDefinition.objects.create(operation="registry.merge", requires_approval=False)
    with django_capture_on_commit_callbacks(execute=True):
        request = services.individual_merge_request(candidate=pair, kept=pair.first, by=clerk_a)

    assert ApprovalRequest.objects.get(pk=request.pk).status == RequestStatus.EXECUTED
    assert DuplicateCandidate.objects.get(pk=pair.pk).status == DuplicateStatus.MERGED
    assert Individual.objects.get(pk=pair.second_id).merged_into_id == pair.first_id


def test_a_merge_request_is_refused_outside_the_scope_or_without_the_permission(pair, clerk_b, checker, clerk_a,
                                                                                merge_workflows):
    with pytest.raises(DuplicateCandidate.DoesNotExist):
        services.individual_merge_request(candidate=pair, kept=pair.first, by=clerk_b)
    with pytest.raises(PermissionDenied):
        services.individual_merge_request(candidate=pair, kept=pair.first, by=checker)
    stranger = IndividualFactory(location=pair.first.location)
    with pytest.raises(ValidationError):
        services.individual_merge_request(candidate=pair, kept=stranger, by=clerk_a)
    assert not ApprovalRequest.objects.exists()
    assert DuplicateCandidate.objects.get(pk=pair.pk).status == DuplicateStatus.OPEN


def test_people_in_two_households_cannot_be_merged_until_one_moves(pair, clerk_a, merge_workflows, member_roles):
    for code, member in (("HH-ONE", pair.first), ("HH-TWO", pair.second)):  # each with another member
        household = HouseholdFactory(code=code, location=pair.first.location)
        MembershipFactory(household=household, individual=member)
        MembershipFactory(household=household, individual=IndividualFactory(location=pair.first.location),
                          role=member_roles["SON"])

    with pytest.raises(ValidationError, match="HH-ONE.*HH-TWO|HH-TWO.*HH-ONE"):
        services.individual_merge_request(candidate=pair, kept=pair.first, by=clerk_a)
    assert not ApprovalRequest.objects.exists()


# --- what a merge moves, and what unmerging puts back -------------------------------------------


@pytest.fixture
def plans(db):
    return {code: BenefitPlan.objects.create(code=code, name=f"Plan {code}", status="ACTIVE") for code in ("P", "Q", "R")}


def enrol(plan, who, status):
    now = timezone.now()
    beneficiary = Beneficiary.objects.create(plan=plan, individual=who, status=status, enrolled_at=now,
                                             status_changed_at=now)
    if status in ("POTENTIAL", "ACTIVE", "SUSPENDED"):
        BenefitPlan.objects.filter(pk=plan.pk).update(live_beneficiaries=plan.beneficiaries.filter(
            status__in=["POTENTIAL", "ACTIVE", "SUSPENDED"]).count())
    return beneficiary


def merged_and_undone(pair, kept, clerk_a, checker, capture):
    request = services.individual_merge_request(candidate=pair, kept=kept, by=clerk_a)
    assert approve(request, checker, capture).status == RequestStatus.EXECUTED
    merge = Merge.objects.get(candidate=pair, status=MergeStatus.MERGED)
    return merge


def test_enrolments_move_and_the_less_advanced_of_two_in_one_plan_closes(pair, plans, clerk_a, checker,
                                                                         merge_workflows,
                                                                         django_capture_on_commit_callbacks):
    kept, duplicate = pair.first, pair.second
    kept_in_p = enrol(plans["P"], kept, "POTENTIAL")
    duplicate_in_p = enrol(plans["P"], duplicate, "ACTIVE")       # more advanced: stays, moves to kept
    kept_in_q = enrol(plans["Q"], kept, "ACTIVE")
    duplicate_in_q = enrol(plans["Q"], duplicate, "SUSPENDED")    # less advanced: closed
    duplicate_in_r = enrol(plans["R"], duplicate, "POTENTIAL")    # alone: moves
    duplicate_left_r = enrol(plans["R"], duplicate, "GRADUATED")  # history: moves

    merge = merged_and_undone(pair, kept, clerk_a, checker, django_capture_on_commit_callbacks)

    def state(beneficiary):
        beneficiary = Beneficiary.objects.get(pk=beneficiary.pk)
        return beneficiary.individual_id, beneficiary.status

    assert state(kept_in_p) == (kept.pk, BeneficiaryStatus.REJECTED)
    assert state(duplicate_in_p) == (kept.pk, BeneficiaryStatus.ACTIVE)
    assert state(kept_in_q) == (kept.pk, BeneficiaryStatus.ACTIVE)
    assert state(duplicate_in_q) == (duplicate.pk, BeneficiaryStatus.GRADUATED)
    assert "merged into" in Beneficiary.objects.get(pk=duplicate_in_q.pk).reason
    assert state(duplicate_in_r) == (kept.pk, BeneficiaryStatus.POTENTIAL)
    assert state(duplicate_left_r) == (kept.pk, BeneficiaryStatus.GRADUATED)
    assert {code: BenefitPlan.objects.get(code=code).live_beneficiaries for code in plans} == {"P": 1, "Q": 1, "R": 1}
    assert sorted(merge.moved["beneficiaries"]) == sorted([duplicate_in_p.pk, duplicate_in_r.pk, duplicate_left_r.pk])
    assert {c["id"]: c["status"] for c in merge.moved["closed_beneficiaries"]} == {
        kept_in_p.pk: "POTENTIAL", duplicate_in_q.pk: "SUSPENDED"}

    unmerge = services.individual_unmerge_request(merge=merge, by=clerk_a)
    assert approve(unmerge, checker, django_capture_on_commit_callbacks).status == RequestStatus.EXECUTED

    assert state(duplicate_in_p) == (duplicate.pk, BeneficiaryStatus.ACTIVE)
    assert state(duplicate_in_r) == (duplicate.pk, BeneficiaryStatus.POTENTIAL)
    assert state(duplicate_left_r) == (duplicate.pk, BeneficiaryStatus.GRADUATED)
    assert state(kept_in_p) == (kept.pk, BeneficiaryStatus.REJECTED)      # closed enrolments stay closed
    assert state(duplicate_in_q) == (duplicate.pk, BeneficiaryStatus.GRADUATED)
    merge.refresh_from_db()
    assert (merge.status, merge.unmerged_by, merge.unmerge_request_id) == (MergeStatus.UNMERGED, clerk_a, unmerge.pk)
    duplicate.refresh_from_db()
    assert not duplicate.is_deleted and duplicate.merged_into is None
    assert DuplicateCandidate.objects.get(pk=pair.pk).status == DuplicateStatus.OPEN
    undone = entries(duplicate, "mizani.unmerge").get()
    assert sorted(undone.data["closed_stay_closed"]) == sorted([kept_in_p.pk, duplicate_in_q.pk])


def test_the_duplicates_household_place_passes_to_the_kept_record_and_comes_back(
        pair, clerk_a, checker, merge_workflows, member_roles, django_capture_on_commit_callbacks):
    household = HouseholdFactory(code="HH-MERGE", location=pair.first.location)
    place = MembershipFactory(household=household, individual=pair.second, role=member_roles["SPOUSE"],
                              recipient_type="SECONDARY")

    merge = merged_and_undone(pair, pair.first, clerk_a, checker, django_capture_on_commit_callbacks)
    assert Membership.objects.get(pk=place.pk).individual_id == pair.first_id

    services.individual_unmerge(merge=merge, by=clerk_a)
    restored = Membership.objects.get(pk=place.pk)
    assert (restored.individual_id, restored.role_id, restored.recipient_type) == (pair.second_id, "SPOUSE",
                                                                                    "SECONDARY")
    assert not Membership.objects.filter(individual=pair.first).exists()


def test_in_one_household_the_kept_record_takes_the_duplicates_head_role_until_unmerged(
        pair, clerk_a, checker, merge_workflows, member_roles, django_capture_on_commit_callbacks):
    household = HouseholdFactory(code="HH-SAME", location=pair.first.location)
    MembershipFactory(household=household, individual=pair.second, role=member_roles["HEAD"], recipient_type="PRIMARY")
    kept_place = MembershipFactory(household=household, individual=pair.first, role=member_roles["DAUGHTER"])

    merge = merged_and_undone(pair, pair.first, clerk_a, checker, django_capture_on_commit_callbacks)

    assert list(Membership.objects.filter(household=household).values_list(
        "individual", "role", "recipient_type")) == [(pair.first_id, "HEAD", "PRIMARY")]
    assert entries(household, "mizani.member_remove").get().data["merged_into"] == pair.first_id

    services.individual_unmerge(merge=merge, by=clerk_a)
    assert set(Membership.objects.filter(household=household).values_list("individual", "role", "recipient_type")) == {
        (pair.first_id, "DAUGHTER", None), (pair.second_id, "HEAD", "PRIMARY")}
    assert Membership.objects.get(individual=pair.first).pk == kept_place.pk


def test_a_merged_record_stays_deleted_until_unmerged(pair, clerk_a, checker, merge_workflows,
                                                     django_capture_on_commit_callbacks):
    merged_and_undone(pair, pair.first, clerk_a, checker, django_capture_on_commit_callbacks)

    with pytest.raises(IntegrityError), transaction.atomic():
        Individual.objects.filter(pk=pair.second_id).update(deleted_at=None)
    with pytest.raises(ValidationError):  # a merged record cannot be merged again
        services.individual_merge(kept=pair.first, merged=Individual.objects.get(pk=pair.second_id), by=clerk_a)


def test_unmerging_is_refused_when_another_person_took_the_national_id_or_the_kept_record_is_gone(
        pair, clerk_a, checker, merge_workflows, django_capture_on_commit_callbacks):
    merge = merged_and_undone(pair, pair.first, clerk_a, checker, django_capture_on_commit_callbacks)
    newcomer = IndividualFactory(national_id=pair.second.national_id, location=pair.first.location)

    with pytest.raises(ValidationError):
        services.individual_unmerge_request(merge=merge, by=clerk_a)
    newcomer.delete()
    services.individual_soft_delete(individual=pair.first, by=clerk_a)
    with pytest.raises(ValidationError):
        services.individual_unmerge(merge=merge, by=clerk_a)
    assert Merge.objects.get(pk=merge.pk).status == MergeStatus.MERGED


def test_an_unmerge_is_requested_once_and_only_in_scope(pair, clerk_a, clerk_b, checker, merge_workflows,
                                                       django_capture_on_commit_callbacks):
    merge = merged_and_undone(pair, pair.first, clerk_a, checker, django_capture_on_commit_callbacks)

    with pytest.raises(PermissionDenied):
        services.individual_unmerge_request(merge=merge, by=clerk_b)
    services.individual_unmerge_request(merge=merge, by=clerk_a)
    with pytest.raises(ValidationError):
        services.individual_unmerge_request(merge=merge, by=clerk_a)


def test_pairs_an_import_found_are_filed_once_lower_id_first_leaving_reviewed_pairs_alone():
    a, b, c, gone = (IndividualFactory(first_name="Asha", last_name="Mollel", dob=D(1980, 2, 1)) for _ in range(4))
    gone.deleted_at = timezone.now()
    gone.save(update_fields=["deleted_at"])
    reviewed = DuplicateCandidateFactory(first=a, second=c, status=DuplicateStatus.DISMISSED, score=50,
                                         reasons=["similar_name"])
    pairs = "SELECT %s AS a, %s AS b UNION ALL SELECT %s, %s UNION ALL SELECT %s, %s UNION ALL SELECT %s, %s"

    filed = duplicates.file_name_dob_pairs(pairs, [b.pk, a.pk, b.pk, a.pk, c.pk, a.pk, a.pk, gone.pk])

    assert filed == 1
    new = DuplicateCandidate.objects.get(first=a, second=b)
    assert (new.status, new.score, new.reasons, new.scan_job) == (DuplicateStatus.OPEN, 90, ["name_dob"], None)
    reviewed.refresh_from_db()
    assert (reviewed.status, reviewed.score, reviewed.reasons) == (DuplicateStatus.DISMISSED, 50, ["similar_name"])
    assert DuplicateCandidate.objects.count() == 2  # none with the deleted person


# --- the kept record's empty fields filled from the merged record, and taken back by an unmerge -------


@pytest.fixture
def registered_and_retyped(geo):
    """The QA walk's pair: a person registered with a national ID, phone, sex, attributes and an
    enrolment, and the same person typed again by a clerk with none of these but another income."""
    RegistryFieldFactory(name="income", label="Monthly income", field_type="integer", sort_order=1)
    RegistryFieldFactory(name="disabled", label="Disability", field_type="boolean", sort_order=2)
    RegistryFieldFactory(name="in_school", label="Attends school", field_type="boolean", sort_order=3)
    RegistryFieldFactory(name="hiv_status", label="HIV status", sensitive=True, sort_order=4)
    registered = person("Yusuph", "Macha", D(1988, 3, 4), geo.village_a, national_id="805062434723", sex="M",
                        phone="+255712000001", attributes={"income": 32000, "disabled": False, "in_school": True,
                                                           "hiv_status": "negative"})
    retyped = person("Yusuph", "Macha", D(1988, 3, 4), geo.village_a, national_id=None, sex="", phone="",
                     attributes={"income": 15000})
    return DuplicateCandidateFactory(first=registered, second=retyped, reasons=["name_dob"], score=90)


FILLED = ["sex", "national_id", "phone", "attributes.disabled", "attributes.in_school", "attributes.hiv_status"]


def test_a_merge_fills_the_kept_records_empty_fields_from_the_merged_record_and_the_request_lists_them(
        registered_and_retyped, plans, clerk_a, checker, merge_workflows, django_capture_on_commit_callbacks):
    pair = registered_and_retyped
    registered, retyped = pair.first, pair.second
    enrolment = enrol(plans["P"], registered, "ACTIVE")

    request = services.individual_merge_request(candidate=pair, kept=retyped, by=clerk_a)

    filled = f"filled from the merged record (id {registered.pk})"
    assert request.summary["diff"] == [
        [f"Sex, {filled}", None, "Male"],
        [f"National ID, {filled}", None, "805062434723"],
        [f"Phone, {filled}", None, "+255712000001"],
        [f"Monthly income, kept (id {retyped.pk})", "15000", "15000"],
        [f"Monthly income, dropped from the merged record (id {registered.pk})", "32000", None],
        [f"Disability, {filled}", None, "No"],
        [f"Attends school, {filled}", None, "Yes"],
        [f"HIV status, {filled}", None, "negative"],
    ]
    assert sorted(request.summary["sensitive"]) == sorted(
        [f"National ID, {filled}", f"Phone, {filled}", f"HIV status, {filled}"])

    assert approve(request, checker, django_capture_on_commit_callbacks).status == RequestStatus.EXECUTED

    retyped.refresh_from_db()
    assert (retyped.national_id, retyped.phone, retyped.sex) == ("805062434723", "+255712000001", "M")
    assert retyped.attributes == {"income": 15000, "disabled": False, "in_school": True, "hiv_status": "negative"}
    registered.refresh_from_db()
    assert registered.is_deleted and registered.national_id == "805062434723"  # unique among live records only
    assert Beneficiary.objects.get(pk=enrolment.pk).individual_id == retyped.pk
    merge = Merge.objects.get()
    assert merge.moved["filled"] == FILLED
    changes = entries(retyped, "mizani.merge").get().data["changes"]
    assert changes["national_id"][0] is None and "805062434723" not in str(changes)  # masked in the audit
    assert changes["attributes.in_school"] == [None, "True"]


def test_undoing_a_merge_takes_the_filled_values_off_and_gives_the_restored_record_its_national_id(
        registered_and_retyped, clerk_a, checker, merge_workflows, django_capture_on_commit_callbacks):
    pair = registered_and_retyped
    registered, retyped = pair.first, pair.second
    merge = merged_and_undone(pair, retyped, clerk_a, checker, django_capture_on_commit_callbacks)

    unmerge = services.individual_unmerge_request(merge=merge, by=clerk_a)

    taken = f"filled by the merge: taken off the kept record (id {retyped.pk}), back to the restored record " \
            f"(id {registered.pk})"
    assert [row[0] for row in unmerge.summary["diff"]] == [
        f"{label}, {taken}" for label in ("Sex", "National ID", "Phone", "Disability", "Attends school",
                                          "HIV status")]
    assert [f"National ID, {taken}", "805062434723", None] in unmerge.summary["diff"]
    assert f"National ID, {taken}" in unmerge.summary["sensitive"]

    unmerge = approve(unmerge, checker, django_capture_on_commit_callbacks)

    assert unmerge.status == RequestStatus.EXECUTED, unmerge.error
    assert unmerge.result["filled_changed_since_stay"] == []
    retyped.refresh_from_db()
    assert (retyped.national_id, retyped.phone, retyped.sex, retyped.attributes) == (None, "", "", {"income": 15000})
    registered.refresh_from_db()
    assert not registered.is_deleted and registered.national_id == "805062434723"
    assert registered.attributes["income"] == 32000
    assert entries(retyped, "mizani.unmerge").get().data["filled_taken_back"] == FILLED


def test_undoing_a_merge_keeps_a_filled_value_changed_since_and_says_so(
        registered_and_retyped, clerk_a, checker, merge_workflows, django_capture_on_commit_callbacks):
    pair = registered_and_retyped
    registered, retyped = pair.first, pair.second
    merge = merged_and_undone(pair, retyped, clerk_a, checker, django_capture_on_commit_callbacks)
    services.individual_update(individual=retyped, fields={"phone": "+255713999999"},
                               attributes={**Individual.objects.get(pk=retyped.pk).attributes, "in_school": False},
                               by=clerk_a)

    unmerge = services.individual_unmerge_request(merge=merge, by=clerk_a)

    stays = f"filled by the merge and changed since on the kept record (id {retyped.pk}): the current value stays"
    assert [f"Phone, {stays}", "+255713999999", "+255713999999"] in unmerge.summary["diff"]
    assert [f"Attends school, {stays}", "No", "No"] in unmerge.summary["diff"]
    assert f"Phone, {stays}" in unmerge.summary["sensitive"]
    unmerge = approve(unmerge, checker, django_capture_on_commit_callbacks)

    assert unmerge.status == RequestStatus.EXECUTED, unmerge.error
    assert unmerge.result["filled_changed_since_stay"] == ["phone", "attributes.in_school"]
    retyped.refresh_from_db()
    assert (retyped.national_id, retyped.phone, retyped.sex) == (None, "+255713999999", "")
    assert retyped.attributes == {"income": 15000, "in_school": False}
    registered.refresh_from_db()
    assert not registered.is_deleted and registered.phone == "+255712000001"
    assert Merge.objects.get(pk=merge.pk).moved["unmerge"]["changed_since"] == ["phone", "attributes.in_school"]


def test_a_merge_fills_an_empty_location_and_leaves_differing_values_to_the_kept_record(geo, clerk_a):
    unplaced = person("Neema", "Mushi", D(2001, 1, 9), None, national_id="B2000001", sex="F")
    placed = person("Neema", "Mushi", D(2001, 1, 9), geo.village_a, national_id="B2000002", sex="M",
                    phone="+255700000009")
    national = UserFactory(role="Clerk", national=True)

    merge = services.individual_merge(kept=unplaced, merged=placed, by=national)

    unplaced.refresh_from_db()
    assert (unplaced.location, unplaced.national_id, unplaced.sex, unplaced.phone) == (
        geo.village_a, "B2000001", "F", "+255700000009")
    assert merge.moved["filled"] == ["phone", "location"]
    services.individual_unmerge(merge=merge, by=national)
    unplaced.refresh_from_db()
    assert (unplaced.location, unplaced.phone) == (None, "")


def test_a_kept_record_changed_after_the_undo_was_requested_voids_it(
        registered_and_retyped, clerk_a, checker, merge_workflows, django_capture_on_commit_callbacks):
    pair = registered_and_retyped
    merge = merged_and_undone(pair, pair.second, clerk_a, checker, django_capture_on_commit_callbacks)
    unmerge = services.individual_unmerge_request(merge=merge, by=clerk_a)  # read: the phone is taken back
    services.individual_update(individual=pair.second, fields={"phone": "+255713999999"}, by=clerk_a)

    assert approve(unmerge, checker, django_capture_on_commit_callbacks).status == RequestStatus.VOID
    assert Merge.objects.get(pk=merge.pk).status == MergeStatus.MERGED
