"""One status change for many beneficiaries of a plan (operation plans.bulk_status): only the rows in
the transition's source statuses move, the others are counted as left unchanged; only the maker's
locations; a reason where the transition needs one; unknown actions refused; the plan's live count
drops by exactly the number that graduate or are rejected; one audit entry with the counts. Through
the page it is submitted for approval and changes nothing until a checker approves; with approval off
it applies at once; a user who may not change beneficiaries is refused."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone
from wagtail.models import ModelLogEntry

from schemes.plans import services
from schemes.plans.models import Beneficiary, BeneficiaryStatus, BenefitPlan, HouseholdBeneficiary, PlanType
from tests.factories import HouseholdFactory, IndividualFactory, UserFactory
from tests.schemes.plans.test_views import client_for
from workflows.models import ApprovalRequest, RequestStatus, WorkflowDefinition, WorkflowStep
from workflows.services import approval_decide, approval_submit

pytestmark = pytest.mark.django_db

POTENTIAL, ACTIVE, SUSPENDED, GRADUATED, REJECTED = (
    BeneficiaryStatus.POTENTIAL, BeneficiaryStatus.ACTIVE, BeneficiaryStatus.SUSPENDED, BeneficiaryStatus.GRADUATED,
    BeneficiaryStatus.REJECTED)
LIVE = (POTENTIAL, ACTIVE, SUSPENDED)
# name: (district, status)
POPULATION = {
    "a_active_1": ("a", ACTIVE), "a_active_2": ("a", ACTIVE), "a_active_3": ("a", ACTIVE),
    "a_potential_1": ("a", POTENTIAL), "a_potential_2": ("a", POTENTIAL),
    "a_suspended": ("a", SUSPENDED), "a_graduated": ("a", GRADUATED),
    "b_active_1": ("b", ACTIVE), "b_active_2": ("b", ACTIVE), "b_suspended": ("b", SUSPENDED),
}


@pytest.fixture
def plan(db):
    return BenefitPlan.objects.create(code="CG", name="Child grant", status="ACTIVE", max_beneficiaries=20)


@pytest.fixture
def population(plan, geo):
    """Ten beneficiaries (seven in district A, three in B), nine of them live."""
    villages = {"a": geo.village_a, "b": geo.village_b}
    now = timezone.now()
    rows = {}
    for name, (district, status) in POPULATION.items():
        person = IndividualFactory(first_name=name, location=villages[district])
        rows[name] = Beneficiary.objects.create(plan=plan, individual=person, status=status, reason="before",
                                                enrolled_at=now, status_changed_at=now)
    BenefitPlan.objects.filter(pk=plan.pk).update(live_beneficiaries=sum(s in LIVE for _, s in POPULATION.values()))
    return rows


def statuses(plan):
    return dict(Beneficiary.objects.filter(plan=plan).values_list("individual__first_name", "status"))


def expected_after(moved, target):
    return {name: (target if name in moved else status) for name, (_, status) in POPULATION.items()}


def live_count(plan):
    return BenefitPlan.objects.get(pk=plan.pk).live_beneficiaries


def bulk_entries(plan):
    return list(ModelLogEntry.objects.filter(content_type=ContentType.objects.get_for_model(plan),
                                             object_id=str(plan.pk), action="mizani.beneficiary_status_bulk"))


def refused(response):
    """Wagtail turns a PermissionDenied in the admin into a redirect home with a message."""
    return response.status_code == 403 or (response.status_code == 302
                                           and response["Location"] == reverse("wagtailadmin_home"))


# --- the service --------------------------------------------------------------------------------


def test_suspend_moves_only_active_rows_in_the_makers_locations(plan, population, clerk_a):
    preview = services.bulk_status_preview(plan=plan, action="suspend", by=clerk_a)
    assert preview == {"selected": 7, "applies": 3, "unchanged": 4, "target": SUSPENDED, "from": [ACTIVE],
                       "fingerprint": preview["fingerprint"]}

    result = services.beneficiaries_change_status(plan=plan, action="suspend", reason="Audit of visits",
                                                  by=clerk_a)

    assert result == {"moved": 3, "left_unchanged": 4}  # two potential, one suspended, one graduated
    assert statuses(plan) == expected_after({"a_active_1", "a_active_2", "a_active_3"}, SUSPENDED)
    moved = Beneficiary.objects.filter(plan=plan, individual__first_name__startswith="a_active")
    assert {(row.reason, row.status_changed_by_id) for row in moved} == {("Audit of visits", clerk_a.pk)}
    untouched = Beneficiary.objects.filter(plan=plan).exclude(individual__first_name__startswith="a_active")
    assert {(row.reason, row.status_changed_by_id) for row in untouched} == {("before", None)}
    assert live_count(plan) == 9  # suspended beneficiaries still count


def test_graduate_moves_active_and_suspended_and_lowers_the_live_count_exactly(plan, population, clerk_a):
    result = services.beneficiaries_change_status(plan=plan, action="graduate", reason="Programme phase ends",
                                                  by=clerk_a)
    again = services.beneficiaries_change_status(plan=plan, action="graduate", reason="Programme phase ends",
                                                 by=clerk_a)

    assert result == {"moved": 4, "left_unchanged": 3}
    assert again == {"moved": 0, "left_unchanged": 7}
    assert statuses(plan) == expected_after({"a_active_1", "a_active_2", "a_active_3", "a_suspended"}, GRADUATED)
    assert live_count(plan) == 9 - 4  # not lowered a second time


def test_reject_moves_potential_rows_and_lowers_the_live_count(plan, population, clerk_a):
    result = services.beneficiaries_change_status(plan=plan, action="reject", reason="Not eligible", by=clerk_a)

    assert result == {"moved": 2, "left_unchanged": 5}
    assert statuses(plan) == expected_after({"a_potential_1", "a_potential_2"}, REJECTED)
    assert live_count(plan) == 7


def test_activate_and_reinstate_need_no_reason_and_keep_the_count(plan, population, clerk_a):
    activated = services.beneficiaries_change_status(plan=plan, action="activate", by=clerk_a)
    reinstated = services.beneficiaries_change_status(plan=plan, action="reinstate", by=clerk_a)

    assert (activated["moved"], reinstated["moved"]) == (2, 1)
    assert statuses(plan) == expected_after({"a_potential_1", "a_potential_2", "a_suspended"}, ACTIVE)
    assert Beneficiary.objects.get(individual__first_name="a_suspended").reason == ""  # reinstating clears it
    assert Beneficiary.objects.get(individual__first_name="b_suspended").reason == "before"
    assert live_count(plan) == 9


def test_the_ticked_statuses_and_ids_narrow_the_selection(plan, population, clerk_a):
    only_suspended = services.beneficiaries_change_status(plan=plan, action="graduate", reason="Done", by=clerk_a,
                                                          statuses=[SUSPENDED])
    ids = [population["a_active_1"].pk, population["a_potential_1"].pk, population["b_active_1"].pk]
    by_id = services.beneficiaries_change_status(plan=plan, action="suspend", reason="Check", by=clerk_a, ids=ids)

    assert only_suspended == {"moved": 1, "left_unchanged": 0}
    assert by_id == {"moved": 1, "left_unchanged": 1}  # B's id is not the maker's: not even selected
    assert statuses(plan) == {**expected_after({"a_suspended"}, GRADUATED), "a_active_1": SUSPENDED}
    assert live_count(plan) == 8


def test_a_national_maker_reaches_every_district(plan, population, national_clerk):
    result = services.beneficiaries_change_status(plan=plan, action="suspend", reason="Audit", by=national_clerk)

    assert result == {"moved": 5, "left_unchanged": 5}
    assert statuses(plan) == expected_after({"a_active_1", "a_active_2", "a_active_3", "b_active_1", "b_active_2"},
                                            SUSPENDED)


@pytest.mark.parametrize("action", ["suspend", "graduate", "reject"])
def test_a_reason_is_required_where_the_transition_needs_one(plan, population, clerk_a, action):
    for reason in ("", "   ", None):
        with pytest.raises(ValidationError, match="Say why"):
            services.beneficiaries_change_status(plan=plan, action=action, reason=reason, by=clerk_a)

    assert statuses(plan) == expected_after(set(), None)
    assert live_count(plan) == 9
    assert bulk_entries(plan) == []


@pytest.mark.parametrize("action", ["close", "delete", "save", "__init__", "SUSPEND", ""])
def test_an_unknown_action_is_refused(plan, population, clerk_a, action):
    with pytest.raises(ValidationError, match="is not a beneficiary status change"):
        services.bulk_status_preview(plan=plan, action=action, by=clerk_a)
    with pytest.raises(ValidationError, match="is not a beneficiary status change"):
        services.beneficiaries_change_status(plan=plan, action=action, reason="x", by=clerk_a)

    assert statuses(plan) == expected_after(set(), None)
    assert Beneficiary.objects.filter(plan=plan).count() == len(POPULATION)


def test_a_user_who_may_not_change_beneficiaries_is_refused(plan, population, viewer_a):
    with pytest.raises(PermissionDenied):
        services.beneficiaries_change_status(plan=plan, action="activate", by=viewer_a)

    assert statuses(plan) == expected_after(set(), None)


def test_one_audit_entry_with_the_counts(plan, population, clerk_a):
    services.beneficiaries_change_status(plan=plan, action="suspend", reason="Audit of visits", by=clerk_a,
                                         statuses=[ACTIVE, POTENTIAL])

    [entry] = bulk_entries(plan)
    assert entry.user_id == clerk_a.pk
    assert entry.data == {"action": "suspend", "to": SUSPENDED, "moved": 3, "left_unchanged": 2,
                          "reason": "Audit of visits", "statuses": [ACTIVE, POTENTIAL], "ids": 0}


def test_a_household_plan_moves_household_beneficiaries(geo, clerk_a):
    plan = BenefitPlan.objects.create(code="HH", name="Household grant", plan_type=PlanType.HOUSEHOLD,
                                      status="ACTIVE")
    now = timezone.now()
    for code, location, status in (("H1", geo.village_a, ACTIVE), ("H2", geo.village_a, POTENTIAL),
                                   ("H3", geo.village_b, ACTIVE)):
        HouseholdBeneficiary.objects.create(plan=plan, household=HouseholdFactory(code=code, location=location),
                                            status=status, enrolled_at=now, status_changed_at=now)
    BenefitPlan.objects.filter(pk=plan.pk).update(live_beneficiaries=3)

    result = services.beneficiaries_change_status(plan=plan, action="graduate", reason="Done", by=clerk_a)

    assert result == {"moved": 1, "left_unchanged": 1}
    assert dict(HouseholdBeneficiary.objects.values_list("household__code", "status")) == {
        "H1": GRADUATED, "H2": POTENTIAL, "H3": ACTIVE}
    assert live_count(plan) == 2


def test_a_household_plan_needs_the_household_permission(geo):
    plan = BenefitPlan.objects.create(code="HH", name="Household grant", plan_type=PlanType.HOUSEHOLD,
                                      status="ACTIVE")
    now = timezone.now()
    HouseholdBeneficiary.objects.create(plan=plan, household=HouseholdFactory(location=geo.village_a),
                                        enrolled_at=now, status_changed_at=now)
    person_only = UserFactory(role="Viewer", locations=[geo.district_a])
    person_only.user_permissions.add(Permission.objects.get(content_type__app_label="plans", codename="change_beneficiary"))
    person_only = type(person_only).objects.get(pk=person_only.pk)

    with pytest.raises(PermissionDenied, match="change household beneficiaries"):
        services.beneficiaries_change_status(plan=plan, action="activate", by=person_only)
    with pytest.raises(PermissionDenied, match="change household beneficiaries"):
        services.bulk_status_preview(plan=plan, action="activate", by=person_only)
    assert refused(client_for(person_only).get(reverse("plans_plan:bulk_status", args=[plan.pk])))
    listing = client_for(person_only).get(reverse("plans_householdbeneficiary:index"), {"plan": plan.pk})
    assert 'data-testid="bulk-status"' not in listing.content.decode()
    assert HouseholdBeneficiary.objects.get().status == POTENTIAL


# --- through approval, from the page --------------------------------------------------------------


@pytest.fixture
def checker(geo):
    return UserFactory(role="Checker", locations=[geo.district_a])


@pytest.fixture
def bulk_workflow(db):
    definition = WorkflowDefinition.objects.create(operation="plans.bulk_status")
    WorkflowStep.objects.create(definition=definition, group=Group.objects.get(name="Checker"), sort_order=0)
    return definition


def bulk_form(**overrides):
    return {"action": "suspend", "reason": "Audit of visits", "statuses": [ACTIVE], "submit": "apply", **overrides}


def test_the_page_previews_without_changing_anything(plan, population, clerk_a, bulk_workflow):
    url = reverse("plans_plan:bulk_status", args=[plan.pk])

    shown = client_for(clerk_a).get(url, {"status": ACTIVE})
    previewed = client_for(clerk_a).post(url, bulk_form(statuses=[], submit="preview"))

    assert shown.status_code == 200 and shown.context["form"].initial["statuses"] == [ACTIVE]
    assert previewed.context["preview"]["selected"] == 7
    assert previewed.context["preview"]["applies"] == 3
    assert previewed.context["preview"]["unchanged"] == 4
    assert 'data-testid="preview"' in previewed.content.decode()
    assert not ApprovalRequest.objects.exists()
    assert statuses(plan) == expected_after(set(), None)


def test_submitted_from_the_page_it_waits_for_a_checker_then_applies(plan, population, clerk_a, checker,
                                                                    bulk_workflow,
                                                                    django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(clerk_a).post(reverse("plans_plan:bulk_status", args=[plan.pk]), bulk_form())

    request = ApprovalRequest.objects.get(operation="plans.bulk_status")
    assert response.status_code == 302
    assert response["Location"] == reverse("workflows_approvals:inspect", args=[request.pk])
    assert request.status == RequestStatus.PENDING and request.maker == clerk_a
    assert request.summary["counts"] == {"Selected": 3, "Would become suspended": 3,
                                         "Left as they are (another status)": 0}
    assert statuses(plan) == expected_after(set(), None)  # nothing until approved
    with pytest.raises(PermissionDenied):
        approval_decide(request=request, verdict="approve", by=clerk_a)  # not by the maker

    with django_capture_on_commit_callbacks(execute=True):
        approval_decide(request=request, verdict="approve", by=checker)

    request.refresh_from_db()
    assert request.status == RequestStatus.EXECUTED
    assert request.result == {"moved": 3, "left_unchanged": 0}
    assert statuses(plan) == expected_after({"a_active_1", "a_active_2", "a_active_3"}, SUSPENDED)
    moved = Beneficiary.objects.filter(plan=plan, status=SUSPENDED, individual__first_name__startswith="a_active")
    assert {row.status_changed_by_id for row in moved} == {clerk_a.pk}  # applied as the maker
    assert len(bulk_entries(plan)) == 1


def test_a_request_that_would_move_others_than_the_checker_saw_is_void(plan, population, clerk_a, checker,
                                                                       bulk_workflow,
                                                                       django_capture_on_commit_callbacks):
    """Three active beneficiaries were shown; a fourth activated meanwhile is not the checker's decision."""
    client_for(clerk_a).post(reverse("plans_plan:bulk_status", args=[plan.pk]), bulk_form())
    request = ApprovalRequest.objects.get(operation="plans.bulk_status")
    Beneficiary.objects.filter(plan=plan, individual__first_name="a_suspended").update(status=ACTIVE)

    with django_capture_on_commit_callbacks(execute=True):
        approval_decide(request=request, verdict="approve", by=checker)

    assert ApprovalRequest.objects.get(pk=request.pk).status == RequestStatus.VOID
    assert not Beneficiary.objects.filter(plan=plan, status=SUSPENDED,
                                          individual__first_name__startswith="a_").exists()  # nothing moved


def test_a_rejected_request_changes_nothing(plan, population, clerk_a, checker, bulk_workflow,
                                            django_capture_on_commit_callbacks):
    client_for(clerk_a).post(reverse("plans_plan:bulk_status", args=[plan.pk]),
                             bulk_form(action="graduate", statuses=[]))
    request = ApprovalRequest.objects.get(operation="plans.bulk_status")

    with django_capture_on_commit_callbacks(execute=True):
        approval_decide(request=request, verdict="reject", comment="Not now", by=checker)

    assert ApprovalRequest.objects.get(pk=request.pk).status == RequestStatus.REJECTED
    assert statuses(plan) == expected_after(set(), None)
    assert live_count(plan) == 9


def test_with_approval_off_it_applies_at_once(plan, population, clerk_a, django_capture_on_commit_callbacks):
    WorkflowDefinition.objects.create(operation="plans.bulk_status", requires_approval=False)

    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(clerk_a).post(reverse("plans_plan:bulk_status", args=[plan.pk]),
                                            bulk_form(action="graduate", reason="Phase ends", statuses=[]))

    request = ApprovalRequest.objects.get(operation="plans.bulk_status")
    assert response.status_code == 302
    assert request.status == RequestStatus.EXECUTED
    assert statuses(plan) == expected_after({"a_active_1", "a_active_2", "a_active_3", "a_suspended"}, GRADUATED)
    assert live_count(plan) == 5


def test_without_a_workflow_nothing_is_submitted_and_the_page_says_why(plan, population, clerk_a):
    response = client_for(clerk_a).post(reverse("plans_plan:bulk_status", args=[plan.pk]), bulk_form())

    assert response.status_code == 200
    assert "No approval workflow is configured" in str(response.context["form"].non_field_errors())
    assert not ApprovalRequest.objects.exists()
    assert statuses(plan) == expected_after(set(), None)


def test_the_page_refuses_a_missing_reason_or_an_unknown_action(plan, population, clerk_a, bulk_workflow):
    url = reverse("plans_plan:bulk_status", args=[plan.pk])

    no_reason = client_for(clerk_a).post(url, bulk_form(reason=""))
    unknown = client_for(clerk_a).post(url, bulk_form(action="close"))

    assert "Say why" in no_reason.content.decode()
    assert unknown.status_code == 200 and "action" in unknown.context["form"].errors
    assert not ApprovalRequest.objects.exists()


def test_a_viewer_is_refused_the_page_and_the_submission(plan, population, viewer_a, bulk_workflow,
                                                          django_capture_on_commit_callbacks):
    url = reverse("plans_plan:bulk_status", args=[plan.pk])

    assert refused(client_for(viewer_a).get(url))
    with django_capture_on_commit_callbacks(execute=True):
        assert refused(client_for(viewer_a).post(url, bulk_form()))

    assert not ApprovalRequest.objects.exists()
    assert statuses(plan) == expected_after(set(), None)


def test_a_viewer_cannot_submit_a_bulk_change_through_the_service_either(plan, population, viewer_a, checker,
                                                                       bulk_workflow):
    """The checkers must never be asked to approve a change its maker is not allowed to make."""
    with pytest.raises(PermissionDenied):
        approval_submit(operation="plans.bulk_status", by=viewer_a, payload={
            "plan": plan.pk, "action": "suspend", "reason": "x", "statuses": [ACTIVE]})

    assert not ApprovalRequest.objects.exists()


# --- the link from the list -----------------------------------------------------------------------


def test_the_list_of_a_plan_links_to_the_bulk_change_for_those_who_may_change(plan, population, clerk_a,
                                                                               viewer_a):
    index = reverse("plans_beneficiary:index")
    link = 'data-testid="bulk-status"'

    filtered = client_for(clerk_a).get(index, {"plan": plan.pk, "status": ACTIVE})
    unfiltered = client_for(clerk_a).get(index)
    viewed = client_for(viewer_a).get(index, {"plan": plan.pk, "status": ACTIVE})

    assert link in filtered.content.decode() and "Change the status of these beneficiaries" in (
        filtered.content.decode())
    assert filtered.context["bulk_status_url"] == reverse("plans_plan:bulk_status", args=[plan.pk]) + "?status=ACTIVE"
    assert link not in unfiltered.content.decode()  # no plan chosen: nothing to act on
    assert viewed.status_code == 200 and link not in viewed.content.decode()
    assert "bulk_status_url" not in viewed.context
