"""The duplicate review queue in the admin: the list and its filters, the comparison page (masking,
escaping, audit, scope), and the POSTs behind its buttons: scan, not a duplicate, merge, unmerge."""

import csv
import datetime
import io

import pytest
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone
from wagtail.models import ModelLogEntry

from schemes.registry import duplicates, services
from schemes.registry.models import DuplicateCandidate, DuplicateStatus, Individual, Merge
from sites.masking import mask
from tests.factories import (
    DuplicateCandidateFactory,
    HouseholdFactory,
    IndividualFactory,
    MembershipFactory,
    UserFactory,
)
from workflows.models import ApprovalRequest, Job, JobStatus, WorkflowDefinition, WorkflowStep
from workflows.services import job_run

pytestmark = pytest.mark.django_db

XSS = "<img src=x onerror=alert(1)>"
D = datetime.date


def page(client, name, *args, query=""):
    response = client.get(reverse(name, args=args) + query)
    return response, response.content.decode()


def login(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def pairs(geo):
    def pair(first, second, location, **fields):
        return DuplicateCandidateFactory(
            first=IndividualFactory(first_name=first[0], last_name=first[1], dob=D(1990, 5, 12), location=location,
                                    national_id=first[2]),
            second=IndividualFactory(first_name=second[0], last_name=second[1], dob=D(1990, 5, 12), location=location,
                                     national_id=second[2]), **fields)

    return {
        "a": pair(("Amina", "Juma", "NIDA0001"), ("Aminah", "Juma", "NIDA0002"), geo.village_a, score=85,
                  reasons=["similar_name", "same_dob"]),
        "a_phone": pair(("Baraka", "Mollel", "NIDA0003"), ("Baraka", "Molel", "NIDA0004"), geo.village_a, score=60,
                        reasons=["similar_name", "phone"]),
        "a_dismissed": pair(("Rehema", "Kweka", "NIDA0005"), ("Rehema", "Kweka", "NIDA0006"), geo.village_a,
                            status=DuplicateStatus.DISMISSED, dismiss_reason="Cousins"),
        "b": pair(("Zebulon", "Quixotebee", "NIDB0001"), ("Zebulon", "Quixotebe", "NIDB0002"), geo.village_b),
    }


@pytest.fixture
def merge_workflows(db):
    group = Group.objects.get(name="Checker")
    for operation in ("registry.merge", "registry.unmerge"):
        WorkflowStep.objects.create(definition=WorkflowDefinition.objects.create(operation=operation), group=group,
                                    sort_order=0)
    UserFactory(username="views_checker", role="Checker", national=True)


def test_the_queue_lists_the_pairs_to_review_in_the_users_locations(client, clerk_a, pairs):
    response, text = page(login(client, clerk_a), "registry_duplicate:index")

    assert response.status_code == 200
    assert "Aminah" in text and "Mollel" in text
    assert "Rehema" not in text           # dismissed: not in the pairs to review
    assert "Quixotebee" not in text       # district B
    assert text.index("Aminah") < text.index("Mollel")  # best score first

    assert "Rehema" in page(client, "registry_duplicate:index", query="?status=DISMISSED")[1]
    everything = page(client, "registry_duplicate:index", query="?status=all")[1]
    assert "Rehema" in everything and "Aminah" in everything and "Quixotebee" not in everything
    by_phone = page(client, "registry_duplicate:index", query="?reason=phone")[1]
    assert "Mollel" in by_phone and "Aminah" not in by_phone
    high = page(client, "registry_duplicate:index", query="?score=70")[1]
    assert "Aminah" in high and "Mollel" not in high


def test_the_queue_export_is_scoped(client, clerk_a, pairs):
    response = login(client, clerk_a).get(reverse("registry_duplicate:index") + "?export=csv")
    text = b"".join(response.streaming_content).decode() if response.streaming else response.content.decode()

    assert "Aminah Juma" in text and "Quixotebee" not in text


def test_the_queue_export_gives_each_records_id(client, clerk_a, geo):
    """Two people of the same name are told apart, and found, by their record IDs."""
    first = IndividualFactory(first_name="Majaliwa", last_name="Moshi", location=geo.village_a)
    second = IndividualFactory(first_name="Majaliwa", last_name="Moshi", location=geo.village_a)
    DuplicateCandidateFactory(first=first, second=second)

    response = login(client, clerk_a).get(reverse("registry_duplicate:index") + "?export=csv")
    [row] = csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig")))

    assert (row["First record ID"], row["First record"]) == (str(first.pk), "Majaliwa Moshi")
    assert (row["Second record ID"], row["Second record"]) == (str(second.pk), "Majaliwa Moshi")


def test_a_viewer_has_no_queue(client, viewer_a, pairs):
    login(client, viewer_a)
    response = client.get(reverse("registry_duplicate:index"))
    assert response.status_code in (302, 403)
    assert client.get(reverse("registry_duplicate:inspect", args=[pairs["a"].pk])).status_code == 404


def test_a_pair_of_another_district_is_not_found(client, clerk_a, pairs):
    login(client, clerk_a)
    for name in ("registry_duplicate:inspect", "registry_duplicate:history"):
        assert client.get(reverse(name, args=[pairs["b"].pk])).status_code == 404
    for name in ("registry_duplicate:dismiss", "registry_duplicate:merge", "registry_duplicate:unmerge"):
        assert client.post(reverse(name, args=[pairs["b"].pk]), {"reason": "x", "keep": pairs["b"].first_id}
                           ).status_code == 404
    assert DuplicateCandidate.objects.get(pk=pairs["b"].pk).status == DuplicateStatus.OPEN


def test_the_comparison_shows_both_records_and_audits_the_view(client, clerk_a, pairs):
    pair = pairs["a"]
    response, text = page(login(client, clerk_a), "registry_duplicate:inspect", pair.pk)

    assert response.status_code == 200
    assert "NIDA0001" in text and "NIDA0002" in text  # a clerk may see national IDs
    assert "Merge — keep this one" in text and "Not a duplicate" in text
    assert text.count("Merge — keep this one") == 2
    for person in (pair.first, pair.second):
        entry = ModelLogEntry.objects.get(content_type=ContentType.objects.get_for_model(person),
                                          object_id=str(person.pk), action="mizani.view")
        assert entry.user_id == clerk_a.pk and entry.data == {"via": f"possible duplicate {pair.pk}"}


def test_the_comparison_shows_the_organisations_day_of_registration(client, clerk_a, pairs):
    """Registered at 22:15 UTC on 4 March is 5 March in Nairobi."""
    pair = pairs["a"]
    Individual.objects.filter(pk=pair.first.pk).update(
        created_at=datetime.datetime(2026, 3, 4, 22, 15, tzinfo=datetime.UTC))

    with override_settings(TIME_ZONE="Africa/Nairobi"):
        response, text = page(login(client, clerk_a), "registry_duplicate:inspect", pair.pk)

    registered = text[text.index("Registered"):]
    assert "2026-03-05" in registered and "2026-03-04" not in registered


def test_the_comparison_masks_sensitive_values_without_the_permission(client, geo, pairs):
    reviewers = Group.objects.create(name="Duplicate readers")
    reviewers.permissions.set(Permission.objects.filter(
        content_type__app_label__in=["registry", "wagtailadmin"],
        codename__in=["access_admin", "view_individual", "view_duplicatecandidate"]))
    reader = UserFactory(locations=[geo.district_a])
    reader.groups.add(reviewers)

    response, text = page(login(client, reader), "registry_duplicate:inspect", pairs["a"].pk)

    assert response.status_code == 200
    assert "NIDA0001" not in text and mask("NIDA0001") in text
    assert "Merge — keep this one" not in text and "Not a duplicate" not in text  # may only read
    assert 'data-testid="duplicate-benefits"' not in text  # no permission to read enrolments or payments


def test_names_are_escaped_in_the_queue_and_the_comparison(client, clerk_a, geo):
    pair = DuplicateCandidateFactory(first=IndividualFactory(first_name=XSS, location=geo.village_a),
                                     second=IndividualFactory(first_name=XSS, location=geo.village_a))
    login(client, clerk_a)
    for text in (page(client, "registry_duplicate:index")[1], page(client, "registry_duplicate:inspect", pair.pk)[1]):
        assert XSS not in text
        assert "&lt;img src=x onerror=alert(1)&gt;" in text


def test_not_a_duplicate_needs_a_reason(client, clerk_a, pairs):
    pair = pairs["a"]
    login(client, clerk_a)

    response = client.post(reverse("registry_duplicate:dismiss", args=[pair.pk]), {"reason": ""}, follow=True)
    assert "Say why" in response.content.decode()
    assert DuplicateCandidate.objects.get(pk=pair.pk).status == DuplicateStatus.OPEN

    response = client.post(reverse("registry_duplicate:dismiss", args=[pair.pk]), {"reason": "Cousins"})
    assert response["Location"] == reverse("registry_duplicate:inspect", args=[pair.pk])
    pair.refresh_from_db()
    assert (pair.status, pair.dismiss_reason, pair.dismissed_by) == (DuplicateStatus.DISMISSED, "Cousins", clerk_a)
    text = page(client, "registry_duplicate:inspect", pair.pk)[1]
    assert "Cousins" in text and "Merge — keep this one" not in text


def test_merge_keep_this_one_submits_a_request_and_shows_it(client, clerk_a, pairs, merge_workflows):
    pair = pairs["a"]
    login(client, clerk_a)

    response = client.post(reverse("registry_duplicate:merge", args=[pair.pk]), {"keep": pair.second_id})

    request = ApprovalRequest.objects.get(operation="registry.merge")
    assert response["Location"] == reverse("workflows_approvals:inspect", args=[request.pk])
    assert request.payload["kept"] == pair.second_id
    assert DuplicateCandidate.objects.get(pk=pair.pk).status == DuplicateStatus.MERGE_REQUESTED
    text = page(client, "registry_duplicate:inspect", pair.pk)[1]
    assert reverse("workflows_approvals:inspect", args=[request.pk]) in text
    assert "Merge — keep this one" not in text
    approval_page = page(client, "workflows_approvals:inspect", request.pk)[1]
    assert "Merge Amina Juma" in approval_page


def test_merge_refuses_a_record_outside_the_pair(client, clerk_a, pairs, merge_workflows):
    pair = pairs["a"]
    response = login(client, clerk_a).post(reverse("registry_duplicate:merge", args=[pair.pk]),
                                           {"keep": pairs["a_phone"].first_id}, follow=True)

    assert "Choose which of the two records to keep" in response.content.decode()
    assert not ApprovalRequest.objects.exists()


def test_a_household_conflict_is_explained_instead_of_the_merge_button(client, clerk_a, pairs, member_roles):
    pair = pairs["a"]
    for code, person in (("HH-EAST", pair.first), ("HH-WEST", pair.second)):
        household = HouseholdFactory(code=code, location=person.location)
        MembershipFactory(household=household, individual=person)
        MembershipFactory(household=household, individual=IndividualFactory(location=person.location),
                          role=member_roles["SON"])

    text = page(login(client, clerk_a), "registry_duplicate:inspect", pair.pk)[1]

    assert "Merge — keep this one" not in text
    assert "HH-EAST" in text and "move the person to the right household first" in text


def test_the_only_member_of_an_imported_household_can_be_merged_away_with_it(client, clerk_a, geo, member_roles,
                                                                              merge_workflows):
    family = HouseholdFactory(code="QAHH1", location=geo.village_a)
    MembershipFactory(household=family, individual=IndividualFactory(location=geo.village_a))
    kept = IndividualFactory(first_name="Zawadi", last_name="Mrema", location=geo.village_a)
    MembershipFactory(household=family, individual=kept, role=member_roles["DAUGHTER"])
    imported = IndividualFactory(first_name="Zawadi", last_name="Mrema", location=geo.village_a)
    MembershipFactory(household=HouseholdFactory(code="QDU5", location=geo.village_a), individual=imported)
    pair = DuplicateCandidateFactory(first=kept, second=imported)

    text = page(login(client, clerk_a), "registry_duplicate:inspect", pair.pk)[1]

    keep_family, keep_imported = text.split(f"Keep Zawadi Mrema (id {imported.pk})")  # options in id order
    assert "household QDU5 (only this member) will be deleted" in keep_family
    assert f'name="keep" value="{kept.pk}"' in text and f'name="keep" value="{imported.pk}"' not in text
    assert "move the person to the right household first" in keep_imported

    response = client.post(reverse("registry_duplicate:merge", args=[pair.pk]), {"keep": kept.pk})
    assert response.status_code == 302
    assert ApprovalRequest.objects.get(operation="registry.merge").payload["merged"] == imported.pk


def test_a_merged_pair_offers_to_undo_the_merge(client, clerk_a, pairs, merge_workflows):
    pair = pairs["a"]
    WorkflowDefinition.objects.filter(operation="registry.merge").update(requires_approval=False)
    services.individual_merge(kept=pair.first, merged=pair.second, by=clerk_a)
    login(client, clerk_a)

    text = page(client, "registry_duplicate:inspect", pair.pk)[1]
    assert "Undo the merge" in text and f"(id {pair.second_id}, deleted)" in text
    assert "Aminah" in page(client, "registry_duplicate:index", query="?status=MERGED")[1]

    response = client.post(reverse("registry_duplicate:unmerge", args=[pair.pk]))
    request = ApprovalRequest.objects.get(operation="registry.unmerge")
    assert response["Location"] == reverse("workflows_approvals:inspect", args=[request.pk])
    assert request.payload == {"merge": Merge.objects.get().pk}
    text = page(client, "registry_duplicate:inspect", pair.pk)[1]
    assert "is waiting for approval" in text and "Undo the merge</button>" not in text


def test_the_scan_button_starts_a_scan_whose_progress_the_queue_shows(client, clerk_a, pairs, monkeypatch):
    handed_over = []
    monkeypatch.setattr("workflows.services._enqueue", handed_over.append)
    login(client, clerk_a)
    assert "Scan for duplicates</button>" in page(client, "registry_duplicate:index")[1]

    response = client.post(reverse("registry_duplicate:scan"), {"key": "abc"})

    assert response["Location"] == reverse("registry_duplicate:index")
    job = Job.objects.get(kind=duplicates.SCAN)
    assert job.started_by == clerk_a
    text = page(client, "registry_duplicate:index")[1]
    assert "data-job-live" in text and reverse("workflows_jobs:status", args=[job.pk]) in text
    assert "Scan for duplicates</button>" not in text  # one scan at a time

    job_run(job.pk)
    assert Job.objects.get(pk=job.pk).status == JobStatus.SUCCEEDED
    text = page(client, "registry_duplicate:index")[1]
    assert "data-job-live" not in text and "Last scan" in text


def test_only_a_user_who_may_scan_can_start_one(client, geo, pairs):
    checker = UserFactory(role="Checker", locations=[geo.district_a])
    login(client, checker)
    assert "Scan for duplicates</button>" not in page(client, "registry_duplicate:index")[1]
    refused = client.post(reverse("registry_duplicate:scan"), {"key": "x"})
    assert (refused.status_code, refused["Location"]) == (302, reverse("wagtailadmin_home"))  # Wagtail's refusal
    assert client.get(reverse("registry_duplicate:scan")).status_code == 405
    assert not Job.objects.exists()


def test_the_menu_lists_the_queue_under_the_registry(client, clerk_a):
    text = page(login(client, clerk_a), "wagtailadmin_home")[1]
    assert "Possible duplicates" in text and reverse("registry_duplicate:index") in text


def test_a_pair_dismissed_long_ago_still_shows_who_and_why(client, clerk_a, pairs):
    pair = pairs["a_dismissed"]
    DuplicateCandidate.objects.filter(pk=pair.pk).update(dismissed_by=clerk_a, dismissed_at=timezone.now())
    text = page(login(client, clerk_a), "registry_duplicate:inspect", pair.pk)[1]
    assert "Cousins" in text and clerk_a.username in text


def _paid_plan(code, name, plan_type, *, recipient, amount, by, **enrolment):
    """A benefit plan with one active enrolment and one approved payroll paying `amount` TZS to `recipient`."""
    from decimal import Decimal

    from schemes.payments import services as payments
    from schemes.payments.models import PaymentCycle, PaymentLine, Payroll
    from schemes.plans.models import BenefitPlan

    now = timezone.now()
    plan = BenefitPlan.objects.create(code=code, name=name, plan_type=plan_type)
    beneficiary = plan.beneficiary_model.objects.create(plan=plan, status="ACTIVE", enrolled_at=now,
                                                        status_changed_at=now, **enrolment)
    if amount is None:
        return
    payment_plan = payments.payment_plan_create(fields={
        "code": f"{code}-PAY", "name": f"{name} payments", "benefit_plan": plan, "formula": "100", "periodicity": 2,
        "currency": "TZS", "target_statuses": ["ACTIVE"]}, by=by)
    cycle, _ = PaymentCycle.objects.get_or_create(code="C-1", defaults={
        "start_date": D(2025, 1, 1), "end_date": D(2025, 2, 28)})
    payroll = Payroll.objects.create(name=f"{name} payroll", payment_plan=payment_plan, cycle=cycle,
                                     parameters={"currency": "TZS"})
    PaymentLine.objects.bulk_create([PaymentLine(payroll=payroll, beneficiary_id=beneficiary.pk, recipient=recipient,
                                                 location=recipient.location, amount=Decimal(amount))])
    Payroll.objects.filter(pk=payroll.pk).update(line_count=1, total=Decimal(amount), seal_hash="sealed")
    for status in ("PENDING_APPROVAL", "APPROVED"):
        Payroll.objects.filter(pk=payroll.pk).update(status=status)


@pytest.fixture
def enrolled_pair(geo, pairs, member_roles, superuser):
    """Pair "a": the first enrolled and paid in a child grant; the second enrolled in an old age grant
    and a member of a household of district B, enrolled and paid (to its head) in a household grant."""
    from schemes.plans.models import PlanType

    pair = pairs["a"]
    _paid_plan("CG", "Child grant", PlanType.INDIVIDUAL, individual=pair.first, recipient=pair.first,
               amount="150.50", by=superuser)
    _paid_plan("OAG", "Old age grant", PlanType.INDIVIDUAL, individual=pair.second, recipient=pair.second,
               amount=None, by=superuser)
    far = HouseholdFactory(code="HH-FAR", location=geo.village_b)
    head = IndividualFactory(first_name="Faraji", location=geo.village_b)
    MembershipFactory(household=far, individual=head, recipient_type="PRIMARY")
    MembershipFactory(household=far, individual=pair.second, role=member_roles["SON"])
    _paid_plan("FHG", "Far household grant", PlanType.HOUSEHOLD, household=far, recipient=head, amount="1000.00",
               by=superuser)
    return pair


def test_the_comparison_shows_each_persons_enrolments_and_payments(client, geo, enrolled_pair):
    checker = UserFactory(role="Checker", locations=[geo.district_a])
    response, text = page(login(client, checker), "registry_duplicate:inspect", enrolled_pair.pk)

    assert response.status_code == 200
    first, second = text.split('data-testid="duplicate-benefits"')[1:]
    assert "Amina Juma" in first and "Child grant" in first and "150.50 TZS" in first
    assert "Aminah Juma" in second and "Old age grant" in second and "No payments from approved payrolls" in second
    assert "Old age grant" not in first and "Child grant" not in second
    # Each section is labelled by its own heading.
    assert text.count('id="person-benefits-heading-') == 2


def test_the_comparison_names_no_plan_or_payment_of_a_household_outside_the_readers_locations(
        client, geo, enrolled_pair):
    checker = UserFactory(role="Checker", locations=[geo.district_a])
    text = page(login(client, checker), "registry_duplicate:inspect", enrolled_pair.pk)[1]

    assert "A household outside your locations" in text
    for hidden in ("HH-FAR", "Far household grant", "1,000.00", "Faraji"):
        assert hidden not in text

    national = UserFactory(role="Checker", national=True)
    text = page(login(client, national), "registry_duplicate:inspect", enrolled_pair.pk)[1]
    assert "Far household grant" in text and "1,000.00 TZS" in text and "Member of household" in text


def test_a_dismissed_pair_offers_to_reopen_it_to_who_may_dismiss(client, clerk_a, clerk_b, geo, pairs):
    pair = pairs["a_dismissed"]
    checker = UserFactory(role="Checker", locations=[geo.district_a])
    assert "Reopen</button>" not in page(login(client, checker), "registry_duplicate:inspect", pair.pk)[1]
    client.post(reverse("registry_duplicate:reopen", args=[pair.pk]))
    assert DuplicateCandidate.objects.get(pk=pair.pk).status == DuplicateStatus.DISMISSED
    assert login(client, clerk_b).post(reverse("registry_duplicate:reopen", args=[pair.pk])).status_code == 404
    assert "Reopen</button>" not in page(login(client, clerk_a), "registry_duplicate:inspect", pairs["a"].pk)[1]
    assert "Reopen</button>" in page(client, "registry_duplicate:inspect", pair.pk)[1]

    response = client.post(reverse("registry_duplicate:reopen", args=[pair.pk]))

    assert response["Location"] == reverse("registry_duplicate:inspect", args=[pair.pk])
    assert DuplicateCandidate.objects.get(pk=pair.pk).status == DuplicateStatus.OPEN
    text = page(client, "registry_duplicate:index")[1]
    assert "Rehema" in text
    assert "Not a duplicate</button>" in page(client, "registry_duplicate:inspect", pair.pk)[1]


def test_a_merged_pair_lists_the_fields_filled_on_the_kept_record(client, clerk_a, pairs):
    pair = pairs["a"]
    Individual.objects.filter(pk=pair.second_id).update(phone="+255712000002")
    services.individual_merge(kept=pair.first, merged=Individual.objects.get(pk=pair.second_id), by=clerk_a)

    text = page(login(client, clerk_a), "registry_duplicate:inspect", pair.pk)[1]
    assert 'data-testid="merge-filled">Phone</dd>' in text
    assert Individual.objects.get(pk=pair.first_id).phone == "+255712000002"


def test_a_merge_request_masks_a_filled_national_id_for_a_checker_without_the_permission(
        client, clerk_a, pairs, merge_workflows):
    pair = pairs["a"]
    Individual.objects.filter(pk=pair.first_id).update(national_id=None)
    request = services.individual_merge_request(candidate=pair, kept=pair.first, by=clerk_a)
    checker = UserFactory(role="Checker", national=True)
    url = reverse("workflows_approvals:inspect", args=[request.pk])

    text = page(login(client, checker), "workflows_approvals:inspect", request.pk)[1]
    assert f"National ID, filled from the merged record (id {pair.second_id})" in text and "NIDA0002" in text
    Group.objects.get(name="Checker").permissions.remove(Permission.objects.get(codename="view_sensitive_data"))
    text = client.get(url).content.decode()
    assert "NIDA0002" not in text and mask("NIDA0002") in text


def test_a_merged_records_banner_says_who_can_undo_the_merge(client, clerk_b, pairs, national_clerk):
    kept = pairs["a"].first
    merged = pairs["b"].first
    across = DuplicateCandidateFactory(first=kept, second=merged, reasons=["same_dob"], score=50)
    services.individual_merge(kept=kept, merged=merged, by=national_clerk)

    text = page(login(client, clerk_b), "registry_individual:inspect", merged.pk)[1]

    assert "was merged on" in text and "can be undone from the possible duplicates" not in text
    assert "Only a user whose locations cover both records, and who may merge duplicates, can" in text
    assert client.get(reverse("registry_duplicate:inspect", args=[across.pk])).status_code == 404
