"""One beneficiary's plan data and status (operations plans.beneficiary_data and
plans.beneficiary_status): both change what the next payroll pays, so where their workflow requires
approval the screens submit a request (old -> new, the reason) and nothing changes until a checker
approves; like the bulk status change, they need approval by default (no workflow: refused). A status
change is confirmed on its own page first."""

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from schemes.plans import services
from schemes.plans.approvals import (
    BENEFICIARY_DATA,
    BENEFICIARY_STATUS,
    BULK_STATUS,
    ENROL_OPERATION,
    rejection_text,
)
from schemes.plans.catalogues import candidate_catalogue
from schemes.plans.models import Beneficiary, BeneficiaryStatus, BenefitPlan
from schemes.rules.nodes import to_json
from tests.factories import UserFactory
from tests.schemes.plans import test_targeting as targeting
from tests.schemes.plans.test_beneficiary_data import enrol, make_plan, stored
from tests.schemes.plans.test_views import client_for
from workflows.models import ApprovalRequest, RequestStatus
from workflows.operations import get_operation
from workflows.services import approval_submit

pytestmark = pytest.mark.django_db

# The targeting tests' plan scored by income, its people and its saved cut-offs (fixtures found by name).
plan, people, saved_plan = targeting.plan, targeting.people, targeting.saved_plan

DATA_FORM = {"attr_grade": "7", "attr_school_code": "ABC-001", "attr_card": "7", "attr_account": "TZ12345678"}


@pytest.fixture
def asha(geo):
    return enrol(make_plan("CG", "Child grant"), "Asha", geo.village_a, grade=3, school_code="ABC-001", card=7,
                 account="TZ12345678")


@pytest.fixture
def checker(geo):
    return UserFactory(role="Checker", locations=[geo.district_a])


def approve(request, checker, capture):
    with capture(execute=True):
        client_for(checker).post(reverse("workflows_approvals:decide", args=[request.pk]), {"verdict": "approve"})
    request.refresh_from_db()
    return request


def test_a_single_change_needs_approval_by_default_as_the_bulk_status_change_does():
    assert get_operation(BENEFICIARY_STATUS).default_requires_approval == BULK_STATUS.default_requires_approval
    assert get_operation(BENEFICIARY_DATA).default_requires_approval is True


@pytest.mark.usefixtures("beneficiary_approval_on")
def test_a_plan_data_change_is_submitted_then_applied_once_approved(asha, clerk_a, checker,
                                                                     django_capture_on_commit_callbacks):
    url = reverse("plans_beneficiary:edit_data", args=[asha.pk])
    client = client_for(clerk_a)
    assert "Submit for approval" in client.get(url).content.decode()

    response = client.post(url, DATA_FORM, follow=True)

    request = ApprovalRequest.objects.get(operation=BENEFICIARY_DATA)
    assert "submitted for approval" in response.content.decode()
    assert stored(asha)["grade"] == 3  # nothing changed yet
    assert request.status == RequestStatus.PENDING and request.location == asha.individual.location
    assert request.summary["diff"] == [["Grade", "3", "7"]]
    assert approve(request, checker, django_capture_on_commit_callbacks).status == RequestStatus.EXECUTED
    assert stored(asha)["grade"] == 7


@pytest.mark.usefixtures("beneficiary_approval_on")
def test_a_second_request_for_the_same_beneficiary_is_refused(asha, clerk_a, checker):
    url = reverse("plans_beneficiary:edit_data", args=[asha.pk])
    client_for(clerk_a).post(url, DATA_FORM)

    again = client_for(clerk_a).post(url, {**DATA_FORM, "attr_grade": "8"})

    assert "already waiting for a decision" in again.content.decode()
    assert ApprovalRequest.objects.filter(operation=BENEFICIARY_DATA).count() == 1


@pytest.mark.usefixtures("beneficiary_approval_on")
def test_a_status_change_is_confirmed_then_submitted_with_its_reason(asha, clerk_a, checker,
                                                                      django_capture_on_commit_callbacks):
    Beneficiary.objects.filter(pk=asha.pk).update(status=BeneficiaryStatus.ACTIVE)
    url = reverse("plans_beneficiary:change_status", args=[asha.pk])
    client = client_for(clerk_a)

    confirmation = client.get(url, {"action": "suspend"}).content.decode()
    assert "Active → Suspended" in confirmation and 'name="reason"' in confirmation
    assert "Submit for approval" in confirmation
    without_reason = client.post(url, {"action": "suspend", "reason": " "})
    assert "Say why" in without_reason.content.decode()
    assert not ApprovalRequest.objects.exists()

    client.post(url, {"action": "suspend", "reason": "Missed visits"})

    request = ApprovalRequest.objects.get(operation=BENEFICIARY_STATUS)
    assert Beneficiary.objects.get(pk=asha.pk).status == BeneficiaryStatus.ACTIVE
    assert request.summary["diff"] == [["Status", "Active", "Suspended"], ["Reason", "—", "Missed visits"]]
    shown = client_for(checker).get(reverse("workflows_approvals:inspect", args=[request.pk])).content.decode()
    assert "Missed visits" in shown and reverse("plans_beneficiary:inspect", args=[asha.pk]) in shown
    assert approve(request, checker, django_capture_on_commit_callbacks).status == RequestStatus.EXECUTED
    asha.refresh_from_db()
    assert (asha.status, asha.reason, asha.status_changed_by) == (BeneficiaryStatus.SUSPENDED, "Missed visits",
                                                                   clerk_a)


def test_without_a_workflow_a_single_change_is_refused_and_nothing_changes(asha, clerk_a):
    client = client_for(clerk_a)

    data = client.post(reverse("plans_beneficiary:edit_data", args=[asha.pk]), DATA_FORM)
    status = client.post(reverse("plans_beneficiary:change_status", args=[asha.pk]), {"action": "activate"})

    assert "No approval workflow is configured" in data.content.decode()
    assert "No approval workflow is configured" in status.content.decode()
    assert stored(asha)["grade"] == 3 and Beneficiary.objects.get(pk=asha.pk).status == BeneficiaryStatus.POTENTIAL


@pytest.mark.usefixtures("beneficiary_approval_off")
def test_with_approval_off_the_confirmed_change_applies_at_once(asha, clerk_a):
    url = reverse("plans_beneficiary:change_status", args=[asha.pk])

    response = client_for(clerk_a).post(url, {"action": "activate"})

    assert response["Location"] == reverse("plans_beneficiary:inspect", args=[asha.pk])
    assert Beneficiary.objects.get(pk=asha.pk).status == BeneficiaryStatus.ACTIVE
    assert not ApprovalRequest.objects.exists()


@pytest.mark.usefixtures("beneficiary_approval_on")
def test_activating_someone_who_does_not_meet_the_criteria_says_so(asha, clerk_a, checker):
    catalogue = candidate_catalogue(asha.plan)
    BenefitPlan.objects.filter(pk=asha.plan_id).update(criteria={BeneficiaryStatus.ACTIVE: {
        "text": "grade >= 5", "rule": to_json(services.criteria_node("grade >= 5", catalogue))}})
    url = reverse("plans_beneficiary:change_status", args=[asha.pk])
    client = client_for(clerk_a)

    page = client.get(url, {"action": "activate"}).content.decode()
    client.post(url, {"action": "activate"})

    assert "does not meet the plan's criteria for active beneficiaries (grade &gt;= 5)" in page
    request = ApprovalRequest.objects.get(operation=BENEFICIARY_STATUS)
    assert request.summary["counts"] == {"Meets the plan's criteria for active beneficiaries": "No"}


def test_the_record_page_links_each_status_change_to_its_confirmation(asha, clerk_a):
    page = client_for(clerk_a).get(reverse("plans_beneficiary:inspect", args=[asha.pk])).content.decode()

    assert f'href="{reverse("plans_beneficiary:change_status", args=[asha.pk])}?action=activate"' in page
    assert client_for(clerk_a).get(reverse("plans_beneficiary:change_status", args=[asha.pk])).status_code == 405


def test_a_rejection_is_dated_in_the_sites_time_zone(asha, clerk_a):
    """QA: rejected at 01:30 on 2 March in Dar es Salaam, the re-enrolment said "Rejected on 2026-03-01"
    (the day in UTC)."""
    Beneficiary.objects.filter(pk=asha.pk).update(
        status=BeneficiaryStatus.REJECTED, reason="Duplicate application", status_changed_by=clerk_a,
        status_changed_at=datetime.datetime(2026, 3, 1, 22, 30, tzinfo=datetime.UTC))

    with timezone.override("Africa/Dar_es_Salaam"):
        text = rejection_text(Beneficiary.objects.get(pk=asha.pk))

    assert text == f"Rejected on 2026-03-02 by {clerk_a.get_username()}: “Duplicate application”"


SCORE_FORMULA = "Score formula (qualify: a score at or below the cut-off)"
CUTOFFS = "Cut-offs by location (and the locations within)"
DEFAULT_CUTOFF = "Default cut-off (elsewhere)"


def test_an_enrolment_from_the_simulation_shows_the_checker_its_formula_cutoffs_and_scores(saved_plan, people, geo,
                                                                                          clerk_a):
    """QA: "Enrol these" showed the checker only the criteria and "Qualifying by score and criteria: 2": not
    the score formula, its cut-offs or anyone's score."""
    client = client_for(clerk_a)
    client.post(reverse("plans_plan:simulate", args=[saved_plan.pk]),
                targeting.simulation_form(geo, **{f"cutoff_{geo.region.pk}": "40", "submit": "enrol"}))

    request = ApprovalRequest.objects.get(operation=ENROL_OPERATION)
    counts = request.summary["counts"]
    village_a = " › ".join(location.name for location in (geo.region, geo.district_a, geo.ward_a, geo.village_a))
    assert counts[SCORE_FORMULA] == "income"
    assert counts[CUTOFFS] == f"{geo.region.name}: 40; {village_a}: 30"
    assert counts[DEFAULT_CUTOFF] == "20"
    assert counts["Qualifying by score and criteria"] == 2
    assert [(row["name"].split(";")[0], row["score"]) for row in request.summary["sample"]] == [
        (f"{people['village_a_low']} (id {people['village_a_low'].pk})", "30"),
        (f"{people['ward_a']} (id {people['ward_a'].pk})", "35")]
    page = client.get(reverse("workflows_approvals:inspect", args=[request.pk])).content.decode()
    assert f"<p>{CUTOFFS}: {geo.region.name}: 40; {village_a}: 30</p>" in page
    assert "; score 35</li>" in page


def test_an_enrolment_carries_the_simulated_amount_and_its_cost(saved_plan, people, geo, clerk_a):
    saved_plan.currency = "TZS"
    saved_plan.save()
    payload = {"plan": saved_plan.pk, "rule": "age >= 18", "target_status": "POTENTIAL", "amount": "285000",
               "scoring": {"formula": "income", "default_cutoff": "20", "cutoffs": {str(geo.region.pk): "40", str(geo.village_a.pk): "30"}}}

    counts = approval_submit(operation=ENROL_OPERATION, payload=payload, by=clerk_a).summary["counts"]

    assert counts["Amount per beneficiary (simulated)"] == "285,000.00 TZS"
    assert counts["Cost at that amount (enrolled already and added)"] == "570,000.00 TZS"  # two qualify
    for amount in ("-1", "ten", "NaN"):
        with pytest.raises(ValidationError, match="The amount per beneficiary"):
            approval_submit(operation=ENROL_OPERATION, payload={**payload, "amount": amount}, by=clerk_a)
