"""The approval engine, through workflows.services: maker-checker, groups, steps, rules, amount bands,
rejection, cancellation, approval off, void, execution; and the database's own refusals (QUALITY 5)."""

from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction

from schemes.registry import services as registry_services
from schemes.registry.models import Household, Individual
from sites.models import Location
from tests.factories import HouseholdFactory, UserFactory
from workflows import services
from workflows.models import (
    ApprovalRequest,
    ApprovalRule,
    Decision,
    Job,
    JobStatus,
    RequestStatus,
    Verdict,
    WorkflowStep,
)
from workflows.services import ApprovalConflict

from .conftest import CHANGE_INDIVIDUAL, audit_actions, audit_entries, change_payload

pytestmark = pytest.mark.django_db

postgresql_only = pytest.mark.skipif(connection.vendor != "postgresql",
                                     reason="SQLite keeps DELETE on decisions for the test runner's flush")


def submit_change(individual, by, **fields):
    return services.approval_submit(operation=CHANGE_INDIVIDUAL, payload=change_payload(individual, **fields), by=by)


def reload(instance):
    return type(instance).objects.get(pk=instance.pk)


def approve(request, by, comment=""):
    return services.approval_decide(request=request, verdict=Verdict.APPROVE, by=by, comment=comment)


def insert_decision(request, *, user, maker=None, group=None, step=None, verdict=Verdict.APPROVE):
    """Write a decision row directly, as a buggy or malicious code path would (no service checks)."""
    with transaction.atomic():
        return Decision.objects.create(
            request=request, step=request.current_step if step is None else step,
            group_id=group.pk if group is not None else request.step["group_id"],
            user=user, maker=maker if maker is not None else request.maker, verdict=verdict)


# === submission and execution =====================================================================


def test_submission_is_pending_and_changes_nothing(clerk_a, individual, change_workflow, checker_1, checker_2,
                                                   django_capture_on_commit_callbacks, mailoutbox):
    with django_capture_on_commit_callbacks(execute=True):
        request = submit_change(individual, clerk_a, first_name="Halima")

    request = reload(request)
    assert request.status == RequestStatus.PENDING
    assert request.maker == clerk_a
    assert request.current_step == 0
    assert request.steps == [{"group_id": checker_1.groups.get().pk, "group": "Checker", "rule": "any",
                              "required": 1}]
    assert ["First name", "Amina", "Halima"] in request.summary["diff"]
    assert request.location_id == individual.location_id
    assert reload(individual).first_name == "Amina"
    assert "wagtail.edit" not in audit_actions(individual)
    assert audit_actions(request) == ["mizani.approval_submit"]
    assert Decision.objects.count() == 0
    assert Job.objects.count() == 0
    # The step's group is told; the maker is not one of the recipients.
    assert len(mailoutbox) == 1
    assert sorted(mailoutbox[0].to) == sorted([checker_1.email, checker_2.email])


def test_only_checkers_who_may_decide_are_told_of_a_request(clerk_a, individual, change_workflow, checker_1, geo,
                                                          django_capture_on_commit_callbacks, mailoutbox):
    """The subject names the person: a checker of other locations must not learn of the record."""
    national = UserFactory(username="checker_national", role="Checker", national=True)
    UserFactory(username="checker_b", role="Checker", locations=[geo.district_b])

    with django_capture_on_commit_callbacks(execute=True):
        submit_change(individual, clerk_a, first_name="Halima")

    assert len(mailoutbox) == 1
    assert sorted(mailoutbox[0].to) == sorted([checker_1.email, national.email])


def test_approved_change_is_applied_audited_and_executed(clerk_a, individual, change_workflow, checker_1,
                                                         django_capture_on_commit_callbacks):
    request = submit_change(individual, clerk_a, first_name="Halima", phone="+254700111222")

    with django_capture_on_commit_callbacks(execute=True):
        decided = approve(request, checker_1, comment="Checked the ID card")
    assert decided.status == RequestStatus.APPROVED

    request = reload(request)
    assert request.status == RequestStatus.EXECUTED
    assert request.result == {"record": individual.pk}
    person = reload(individual)
    assert (person.first_name, person.phone) == ("Halima", "+254700111222")

    edits = audit_entries(individual, "wagtail.edit")
    assert edits.count() == 1
    assert edits[0].user_id == clerk_a.pk  # applied in the maker's name, as the maker asked
    assert edits[0].data["changes"]["first_name"] == ["Amina", "Halima"]
    assert edits[0].data["changes"]["phone"][1] != "+254700111222"  # masked in the audit

    assert audit_actions(request) == ["mizani.approval_submit", "mizani.approval_decision",
                                      "mizani.approval_execute"]
    decision_entry = audit_entries(request, "mizani.approval_decision").get()
    assert decision_entry.user_id == checker_1.pk
    assert decision_entry.data == {"verdict": "approve", "step": 1, "comment": "Checked the ID card"}
    assert audit_entries(request, "mizani.approval_submit").get().user_id == clerk_a.pk

    decision = Decision.objects.get(request=request)
    assert (decision.user, decision.maker, decision.step, decision.verdict) == (checker_1, clerk_a, 0, "approve")
    job = Job.objects.get(idempotency_key=f"approval-request-{request.pk}")
    assert (job.kind, job.status, job.started_by) == (services.EXECUTE_JOB, JobStatus.SUCCEEDED, clerk_a)


def test_executing_twice_applies_once(clerk_a, individual, change_workflow, checker_1,
                                      django_capture_on_commit_callbacks):
    request = submit_change(individual, clerk_a, first_name="Halima")
    with django_capture_on_commit_callbacks(execute=True):
        approve(request, checker_1)

    assert services.approval_execute(request.pk) == {"status": RequestStatus.EXECUTED}
    assert audit_entries(individual, "wagtail.edit").count() == 1
    assert audit_entries(request, "mizani.approval_execute").count() == 1


def test_deletion_is_applied_only_when_approved(clerk_a, individual, make_workflow, checker_group, checker_1,
                                                django_capture_on_commit_callbacks):
    make_workflow("registry.delete_individual", [checker_group])
    request = services.approval_submit(operation="registry.delete_individual", payload={"record": individual.pk},
                                       by=clerk_a)
    assert request.status == RequestStatus.PENDING
    assert not reload(individual).is_deleted

    with django_capture_on_commit_callbacks(execute=True):
        approve(request, checker_1)

    assert reload(request).status == RequestStatus.EXECUTED
    assert reload(individual).is_deleted
    assert "mizani.soft_delete" in audit_actions(individual)


def test_household_change_is_applied_only_when_approved(clerk_a, geo, make_workflow, checker_group, checker_1,
                                                        django_capture_on_commit_callbacks):
    household = HouseholdFactory(code="HH-OLD", location=geo.village_a)
    make_workflow("registry.change_household", [checker_group])
    request = services.approval_submit(
        operation="registry.change_household",
        payload={"record": household.pk, "fields": {"code": "HH-NEW"}, "attributes": {}}, by=clerk_a)
    assert Household.objects.get(pk=household.pk).code == "HH-OLD"

    with django_capture_on_commit_callbacks(execute=True):
        approve(request, checker_1)

    assert reload(request).status == RequestStatus.EXECUTED
    assert Household.objects.get(pk=household.pk).code == "HH-NEW"


# === the maker cannot decide ======================================================================


@pytest.fixture
def clerk_checker(clerk_a, checker_group):
    """The maker is also a member of the step's group: only separation of duties stands in the way."""
    clerk_a.groups.add(checker_group)
    return clerk_a


def test_maker_cannot_approve_or_reject_own_request(clerk_checker, individual, change_workflow, checker_1):
    request = submit_change(individual, clerk_checker, first_name="Halima")

    with pytest.raises(PermissionDenied, match="your own request"):
        approve(request, clerk_checker)
    with pytest.raises(PermissionDenied, match="your own request"):
        services.approval_decide(request=request, verdict=Verdict.REJECT, by=clerk_checker, comment="no")

    assert reload(request).status == RequestStatus.PENDING
    assert Decision.objects.count() == 0
    assert audit_entries(request, "mizani.approval_decision").count() == 0
    assert reload(individual).first_name == "Amina"


def test_database_refuses_a_decision_by_the_maker(clerk_checker, individual, change_workflow, checker_1):
    request = submit_change(individual, clerk_checker, first_name="Halima")

    with pytest.raises(IntegrityError, match="decision_not_by_the_maker"):
        insert_decision(request, user=clerk_checker)

    assert Decision.objects.count() == 0


def test_database_refuses_a_forged_maker(clerk_checker, individual, change_workflow, checker_1, checker_2):
    """The maker writes somebody else as the maker on the row, to slip past the CHECK constraint."""
    request = submit_change(individual, clerk_checker, first_name="Halima")

    with pytest.raises(IntegrityError, match="decision_maker_mismatch"):
        insert_decision(request, user=clerk_checker, maker=checker_2)
    with pytest.raises(IntegrityError, match="decision_maker_mismatch"):
        insert_decision(request, user=checker_1, maker=checker_2)

    assert Decision.objects.count() == 0


# === who may decide ==============================================================================


def test_non_member_of_the_steps_group_is_refused(clerk_a, individual, change_workflow, checker_1, manager_1):
    request = submit_change(individual, clerk_a, first_name="Halima")

    with pytest.raises(PermissionDenied, match="Only members of 'Checker'"):
        approve(request, manager_1)
    with pytest.raises(PermissionDenied):
        services.approval_decide(request=request, verdict=Verdict.REJECT, by=manager_1, comment="no")

    assert reload(request).status == RequestStatus.PENDING
    assert Decision.objects.count() == 0


def test_database_refuses_a_non_member(clerk_a, individual, change_workflow, checker_1, manager_1):
    request = submit_change(individual, clerk_a, first_name="Halima")

    with pytest.raises(IntegrityError, match="decision_not_group_member"):
        insert_decision(request, user=manager_1)

    assert Decision.objects.count() == 0


def test_database_refuses_a_decision_recorded_under_another_group(clerk_a, individual, change_workflow, checker_1,
                                                                  manager_1, manager_group):
    """The step belongs to Checker. A Manager is a member of Manager, so a row that names Manager as the
    group passes the membership check; the database must also hold the row's group to the step's group
    (the request's frozen steps), or any user can approve any step by naming a group of their own."""
    request = submit_change(individual, clerk_a, first_name="Halima")

    with pytest.raises(IntegrityError):
        insert_decision(request, user=manager_1, group=manager_group)

    assert Decision.objects.count() == 0


def test_checker_outside_the_requests_locations_is_refused(clerk_a, individual, change_workflow, checker_1, geo):
    checker_b = UserFactory(username="checker_b", role="Checker", locations=[geo.district_b])
    request = submit_change(individual, clerk_a, first_name="Halima")

    with pytest.raises(PermissionDenied, match="outside your locations"):
        approve(request, checker_b)

    assert reload(request).status == RequestStatus.PENDING


def test_same_user_cannot_decide_twice(clerk_a, individual, make_workflow, checker_group, checker_1, checker_2):
    make_workflow(CHANGE_INDIVIDUAL, [(checker_group, ApprovalRule.COUNT, 2)])
    request = submit_change(individual, clerk_a, first_name="Halima")
    approve(request, checker_1)
    assert reload(request).status == RequestStatus.PENDING

    with pytest.raises(PermissionDenied, match="already decided"):
        approve(request, checker_1)
    with pytest.raises(IntegrityError):
        insert_decision(reload(request), user=checker_1)

    assert Decision.objects.filter(request=request).count() == 1
    assert reload(request).status == RequestStatus.PENDING
    assert reload(individual).first_name == "Amina"


# === steps and rules =============================================================================


@pytest.fixture
def two_steps(make_workflow, checker_group, manager_group):
    return make_workflow(CHANGE_INDIVIDUAL, [checker_group, manager_group])


def test_one_person_cannot_approve_two_steps(clerk_a, individual, two_steps, geo, manager_1,
                                             django_capture_on_commit_callbacks):
    both = UserFactory(username="checker_and_manager", role=["Checker", "Manager"], locations=[geo.district_a])
    request = submit_change(individual, clerk_a, first_name="Halima")

    approve(request, both)
    request = reload(request)
    assert (request.status, request.current_step) == (RequestStatus.PENDING, 1)
    assert reload(individual).first_name == "Amina"

    with pytest.raises(PermissionDenied, match="already decided"):
        approve(request, both)
    with pytest.raises(IntegrityError):
        insert_decision(request, user=both)  # step 2, Manager group: he is a member, but decided step 1
    assert reload(request).current_step == 1

    with django_capture_on_commit_callbacks(execute=True):
        approve(request, manager_1)
    assert reload(request).status == RequestStatus.EXECUTED
    assert reload(individual).first_name == "Halima"
    assert list(Decision.objects.filter(request=request).values_list("step", "user__username")) == [
        (0, "checker_and_manager"), (1, "manager_1")]


def test_the_next_step_is_told_without_who_decided_the_last(clerk_a, individual, two_steps, geo, manager_1,
                                                          django_capture_on_commit_callbacks, mailoutbox):
    both = UserFactory(username="checker_and_manager", role=["Checker", "Manager"], locations=[geo.district_a])
    UserFactory(username="manager_b", role="Manager", locations=[geo.district_b])
    request = submit_change(individual, clerk_a, first_name="Halima")

    with django_capture_on_commit_callbacks(execute=True):
        approve(request, both)

    assert [message.to for message in mailoutbox] == [[manager_1.email]]


def test_steps_are_decided_in_order(clerk_a, individual, two_steps, checker_1, checker_2, manager_1):
    request = submit_change(individual, clerk_a, first_name="Halima")

    with pytest.raises(PermissionDenied, match="Only members of 'Checker'"):
        approve(request, manager_1)  # step 2's approver cannot go first
    assert reload(request).current_step == 0

    approve(request, checker_1)
    with pytest.raises(PermissionDenied, match="Only members of 'Manager'"):
        approve(request, checker_2)  # step 1's group is done; step 2 is the Managers'
    request = reload(request)
    assert (request.status, request.current_step) == (RequestStatus.PENDING, 1)
    assert Decision.objects.filter(request=request).count() == 1


def test_rule_all_needs_every_member_but_the_maker(clerk_checker, individual, make_workflow, checker_group,
                                                   checker_1, checker_2, geo, django_capture_on_commit_callbacks):
    checker_3 = UserFactory(username="checker_3", role="Checker", locations=[geo.district_a])
    UserFactory(username="checker_gone", role="Checker", locations=[geo.district_a], is_active=False)
    make_workflow(CHANGE_INDIVIDUAL, [(checker_group, ApprovalRule.ALL)])
    request = submit_change(individual, clerk_checker, first_name="Halima")
    assert request.steps[0]["required"] == 3

    approve(request, checker_1)
    approve(request, checker_2)
    assert reload(request).status == RequestStatus.PENDING
    assert reload(individual).first_name == "Amina"

    with django_capture_on_commit_callbacks(execute=True):
        approve(request, checker_3)
    assert reload(request).status == RequestStatus.EXECUTED
    assert reload(individual).first_name == "Halima"


def test_rule_count_needs_that_many_distinct_approvals(clerk_a, individual, make_workflow, checker_group,
                                                       checker_1, checker_2, geo,
                                                       django_capture_on_commit_callbacks):
    checker_3 = UserFactory(username="checker_3", role="Checker", locations=[geo.district_a])
    make_workflow(CHANGE_INDIVIDUAL, [(checker_group, ApprovalRule.COUNT, 2)])
    request = submit_change(individual, clerk_a, first_name="Halima")
    assert request.steps[0]["required"] == 2

    approve(request, checker_1)
    assert reload(request).status == RequestStatus.PENDING
    with django_capture_on_commit_callbacks(execute=True):
        approve(request, checker_2)
    assert reload(request).status == RequestStatus.EXECUTED

    with pytest.raises(ApprovalConflict):
        approve(request, checker_3)
    assert Decision.objects.filter(request=request).count() == 2


def test_rule_any_needs_one_approval(clerk_a, individual, change_workflow, checker_1, checker_2):
    request = submit_change(individual, clerk_a, first_name="Halima")

    assert approve(request, checker_1).status == RequestStatus.APPROVED
    with pytest.raises(ApprovalConflict, match="already approved"):
        approve(request, checker_2)


def test_rule_all_counts_only_members_who_may_decide_this_request(clerk_a, individual, make_workflow, checker_group,
                                                                 checker_1, geo, django_capture_on_commit_callbacks):
    """A Checker of district B can never decide a district-A request (it is outside their locations), so
    "all members" cannot include them; otherwise the request waits for ever."""
    UserFactory(username="checker_b", role="Checker", locations=[geo.district_b])
    make_workflow(CHANGE_INDIVIDUAL, [(checker_group, ApprovalRule.ALL)])
    request = submit_change(individual, clerk_a, first_name="Halima")

    with django_capture_on_commit_callbacks(execute=True):
        approve(request, checker_1)

    assert reload(request).status == RequestStatus.EXECUTED
    assert reload(individual).first_name == "Halima"


@pytest.mark.parametrize("rule, count", [(ApprovalRule.COUNT, 3), (ApprovalRule.ALL, None)])
def test_a_step_that_cannot_be_satisfied_refuses_the_submission(clerk_checker, individual, make_workflow,
                                                                checker_group, checker_1, checker_2, rule, count):
    if rule == ApprovalRule.ALL:
        checker_1.groups.remove(checker_group)
        checker_2.groups.remove(checker_group)  # only the maker is left in the group
    make_workflow(CHANGE_INDIVIDUAL, [(checker_group, rule, count)])

    with pytest.raises(ValidationError, match="Checker"):
        submit_change(individual, clerk_checker, first_name="Halima")

    assert ApprovalRequest.objects.count() == 0


@pytest.mark.parametrize("second_rule", [ApprovalRule.ANY, ApprovalRule.ALL])
def test_steps_sharing_one_decider_refuse_the_submission(clerk_a, individual, make_workflow, checker_group,
                                                        checker_1, second_rule):
    """Two Checker steps with one checker who may decide: step 2 could never be decided by anyone."""
    make_workflow(CHANGE_INDIVIDUAL, [checker_group, (checker_group, second_rule)])

    with pytest.raises(ValidationError, match="2 different people"):
        submit_change(individual, clerk_a, first_name="Halima")

    assert ApprovalRequest.objects.count() == 0


def test_steps_sharing_a_group_are_accepted_when_enough_people_may_decide(
        clerk_a, individual, make_workflow, checker_group, manager_group, checker_1, checker_2, geo,
        django_capture_on_commit_callbacks):
    both = UserFactory(username="checker_and_manager", role=["Checker", "Manager"], locations=[geo.district_a])
    make_workflow(CHANGE_INDIVIDUAL, [(checker_group, ApprovalRule.COUNT, 2), manager_group])
    request = submit_change(individual, clerk_a, first_name="Halima")

    approve(request, checker_1)
    approve(reload(request), checker_2)
    with django_capture_on_commit_callbacks(execute=True):
        approve(reload(request), both)

    assert reload(request).status == RequestStatus.EXECUTED


# === checking a workflow when it is saved =========================================================


def steps(*specs):
    """Unsaved steps as the admin form holds them: (group, rule, count) each."""
    return [WorkflowStep(group=group, rule=rule, count=count) for group, rule, count in specs]


def test_a_workflow_whose_steps_need_more_different_people_than_exist_is_refused(checker_group, checker_1):
    with pytest.raises(ValidationError, match=r"The 2 steps need 2 approvals, each from a different person.*"
                                              r"their groups' 1 active member\(s\)"):
        services.workflow_steps_check(steps((checker_group, ApprovalRule.ANY, None),
                                            (checker_group, ApprovalRule.ANY, None)))


def test_a_workflow_names_its_step_that_asks_too_many(checker_group, manager_group, checker_1, checker_2,
                                                     manager_1):
    with pytest.raises(ValidationError, match=r"Step 2 needs 5 approval\(s\) from 'Checker', which has 2 active"):
        services.workflow_steps_check(steps((manager_group, ApprovalRule.ANY, None),
                                            (checker_group, ApprovalRule.COUNT, 5)))


def test_a_workflow_that_enough_people_can_complete_is_accepted(checker_group, manager_group, checker_1,
                                                               checker_2, geo):
    UserFactory(username="checker_and_manager", role=["Checker", "Manager"], locations=[geo.district_a])

    services.workflow_steps_check(steps((checker_group, ApprovalRule.COUNT, 2), (manager_group, ApprovalRule.ANY, None)))
    with pytest.raises(ValidationError, match="The 3 steps need 4 approvals"):
        services.workflow_steps_check(steps((checker_group, ApprovalRule.COUNT, 2),
                                            (manager_group, ApprovalRule.ANY, None),
                                            (checker_group, ApprovalRule.ANY, None)))


# === amount bands ================================================================================


def test_amount_bands_pick_the_definition_by_total(fake_operation, make_workflow, clerk_a, checker_group,
                                                   manager_group, checker_1, manager_1, geo,
                                                   django_capture_on_commit_callbacks):
    name, applied = fake_operation()
    make_workflow(name, [], min_total=0, requires_approval=False)
    make_workflow(name, [checker_group], min_total=1_000)
    make_workflow(name, [checker_group, manager_group], min_total=1_000_000)
    village = geo.village_a.pk

    def submit(total):
        with django_capture_on_commit_callbacks(execute=True):
            request = services.approval_submit(operation=name, payload={"total": total, "location": village},
                                               by=clerk_a)
        return reload(request)

    small = submit("999.99")
    assert small.status == RequestStatus.EXECUTED
    assert small.total == Decimal("999.99")
    assert applied == [{"total": "999.99", "location": village, "request": small.pk}]  # the request applied named

    groups = {total: [step["group"] for step in submit(total).steps]
              for total in ["1000", "999999.99", "1000000", "2500000.50"]}
    assert groups == {"1000": ["Checker"], "999999.99": ["Checker"],
                      "1000000": ["Checker", "Manager"], "2500000.50": ["Checker", "Manager"]}
    assert len(applied) == 1  # none of the larger ones is applied before approval
    assert services.requires_approval(name, Decimal("999.99")) is False
    assert services.requires_approval(name, Decimal("1000.00")) is True


# === rejection and cancellation ==================================================================


@pytest.mark.parametrize("comment", ["", "   "])
def test_rejection_needs_a_comment(clerk_a, individual, change_workflow, checker_1, comment):
    request = submit_change(individual, clerk_a, first_name="Halima")

    with pytest.raises(ValidationError) as exc_info:
        services.approval_decide(request=request, verdict=Verdict.REJECT, by=checker_1, comment=comment)

    assert "comment" in exc_info.value.message_dict
    assert reload(request).status == RequestStatus.PENDING
    assert Decision.objects.count() == 0


def test_rejection_applies_nothing(clerk_a, individual, change_workflow, checker_1, checker_2,
                                   django_capture_on_commit_callbacks, mailoutbox):
    request = submit_change(individual, clerk_a, first_name="Halima")

    with django_capture_on_commit_callbacks(execute=True):
        services.approval_decide(request=request, verdict=Verdict.REJECT, by=checker_1,
                                 comment="The ID card says Amina")

    request = reload(request)
    assert (request.status, request.reason) == (RequestStatus.REJECTED, "The ID card says Amina")
    assert reload(individual).first_name == "Amina"
    assert "wagtail.edit" not in audit_actions(individual)
    assert Job.objects.count() == 0
    assert Decision.objects.get(request=request).verdict == Verdict.REJECT
    assert audit_actions(request) == ["mizani.approval_submit", "mizani.approval_decision"]
    assert mailoutbox[-1].to == [clerk_a.email]
    with pytest.raises(ApprovalConflict):
        approve(request, checker_2)


def test_only_the_maker_cancels(clerk_a, individual, change_workflow, checker_1, superuser):
    request = submit_change(individual, clerk_a, first_name="Halima")

    for someone_else in (checker_1, superuser):
        with pytest.raises(PermissionDenied):
            services.approval_cancel(request=request, by=someone_else)
    assert reload(request).status == RequestStatus.PENDING

    services.approval_cancel(request=request, by=clerk_a)
    assert reload(request).status == RequestStatus.CANCELLED
    assert audit_entries(request, "mizani.approval_cancel").get().user_id == clerk_a.pk
    with pytest.raises(ApprovalConflict):
        approve(request, checker_1)
    assert reload(individual).first_name == "Amina"


def test_a_decided_request_cannot_be_cancelled(clerk_a, individual, change_workflow, checker_1):
    request = submit_change(individual, clerk_a, first_name="Halima")
    approve(request, checker_1)

    with pytest.raises(ApprovalConflict):
        services.approval_cancel(request=request, by=clerk_a)
    assert reload(request).status == RequestStatus.APPROVED


# === approval off, or not configured =============================================================


def test_approval_explicitly_off_applies_at_once_and_is_audited(clerk_a, individual, make_workflow,
                                                                django_capture_on_commit_callbacks):
    make_workflow(CHANGE_INDIVIDUAL, [], requires_approval=False)

    with django_capture_on_commit_callbacks(execute=True):
        request = submit_change(individual, clerk_a, first_name="Halima")

    request = reload(request)
    assert request.status == RequestStatus.EXECUTED
    assert request.steps == []
    assert reload(individual).first_name == "Halima"
    assert audit_actions(request) == ["mizani.approval_submit", "mizani.approval_skipped",
                                      "mizani.approval_execute"]
    assert audit_entries(request, "mizani.approval_skipped").get().user_id == clerk_a.pk
    assert audit_entries(individual, "wagtail.edit").count() == 1
    assert Decision.objects.count() == 0


def test_no_definition_and_default_requires_approval_is_refused(fake_operation, clerk_a):
    name, applied = fake_operation(default_requires_approval=True, label="Approve the payroll")

    with pytest.raises(ValidationError, match="Approve the payroll"):
        services.approval_submit(operation=name, payload={"total": "10"}, by=clerk_a)

    assert ApprovalRequest.objects.count() == 0
    assert applied == []


def test_definition_without_steps_is_refused(fake_operation, make_workflow, clerk_a):
    name, applied = fake_operation(default_requires_approval=False, label="Upload a file")
    make_workflow(name, [], requires_approval=True)

    with pytest.raises(ValidationError, match="Upload a file"):
        services.approval_submit(operation=name, payload={"total": "10"}, by=clerk_a)
    assert ApprovalRequest.objects.count() == 0


def test_unknown_operation_is_refused(clerk_a):
    with pytest.raises(LookupError):
        services.approval_submit(operation="registry.no_such_thing", payload={}, by=clerk_a)


# === execution failure ===========================================================================


def test_failed_execution_applies_nothing_and_is_recorded(fake_operation, make_workflow, checker_group, checker_1,
                                                          clerk_a, geo, django_capture_on_commit_callbacks):
    def execute(payload, maker):
        Location.objects.create(code="HALF-DONE", name="written before the failure")
        raise ValidationError("The account number is closed.")

    name, _ = fake_operation(execute=execute)
    make_workflow(name, [checker_group])
    request = services.approval_submit(operation=name, payload={"total": "5", "location": geo.village_a.pk},
                                       by=clerk_a)

    with django_capture_on_commit_callbacks(execute=True):
        approve(request, checker_1)

    request = reload(request)
    assert request.status == RequestStatus.FAILED
    assert request.error == "The account number is closed."
    assert not Location.objects.filter(code="HALF-DONE").exists()  # the half-done work rolled back
    assert "mizani.approval_failed" in audit_actions(request)
    assert "mizani.approval_execute" not in audit_actions(request)


# === void ========================================================================================


def test_request_is_void_when_the_record_changed_after_submission(clerk_a, individual, change_workflow, checker_1,
                                                                  django_capture_on_commit_callbacks):
    request = submit_change(individual, clerk_a, first_name="Halima")
    registry_services.individual_update(individual=individual, fields={"last_name": "Otieno"}, by=clerk_a)

    with django_capture_on_commit_callbacks(execute=True):
        approve(request, checker_1)

    request = reload(request)
    assert request.status == RequestStatus.VOID
    assert "changed" in request.reason
    person = Individual.objects.get(pk=individual.pk)
    assert (person.first_name, person.last_name) == ("Amina", "Otieno")
    assert audit_entries(individual, "wagtail.edit").count() == 1  # only the other edit
    assert "mizani.approval_void" in audit_actions(request)
    assert "mizani.approval_execute" not in audit_actions(request)


# === the ledger is insert-only ===================================================================


def test_decisions_cannot_be_updated(clerk_a, individual, change_workflow, checker_1):
    request = submit_change(individual, clerk_a, first_name="Halima")
    approve(request, checker_1, comment="fine")
    decision = Decision.objects.get(request=request)

    for change in ({"comment": "rewritten"}, {"verdict": Verdict.REJECT}, {"user": clerk_a}):
        with pytest.raises(IntegrityError), transaction.atomic():
            Decision.objects.filter(pk=decision.pk).update(**change)

    stored = Decision.objects.get(pk=decision.pk)
    assert (stored.comment, stored.verdict, stored.user_id) == ("fine", "approve", checker_1.pk)


@postgresql_only
def test_decisions_cannot_be_deleted_on_postgresql(clerk_a, individual, change_workflow, checker_1):
    request = submit_change(individual, clerk_a, first_name="Halima")
    approve(request, checker_1)

    with pytest.raises(IntegrityError, match="insert-only"), transaction.atomic():
        Decision.objects.filter(request=request).delete()

    assert Decision.objects.filter(request=request).count() == 1
