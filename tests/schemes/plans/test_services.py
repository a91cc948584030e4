"""Enrolment by rule (one statement, all or nothing, the maximum held by the database) and the
beneficiary status transitions."""

import datetime

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from schemes.plans import services
from schemes.plans.models import Beneficiary, BeneficiaryStatus, BenefitPlan, PlanStatus
from tests.factories import IndividualFactory, RegistryFieldFactory, UserFactory
from tests.sql import assert_no_not_in_subquery

pytestmark = pytest.mark.django_db


@pytest.fixture
def officer(geo):
    user = UserFactory(role="Clerk", locations=[geo.district_a])
    from django.contrib.auth.models import Permission

    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="plans"))
    return user


@pytest.fixture
def plan(db):
    plan = BenefitPlan.objects.create(code="CT-1", name="Child grant", max_beneficiaries=3)
    plan.activate()
    plan.save()
    return plan


@pytest.fixture
def people(geo):
    RegistryFieldFactory(name="children", field_type="integer")
    young = datetime.date(2000, 1, 1)
    return {
        "amina": IndividualFactory(first_name="Amina", dob=young, location=geo.village_a, attributes={"children": 3}),
        "baraka": IndividualFactory(first_name="Baraka", dob=young, location=geo.village_a, attributes={"children": 1}),
        "chausiku": IndividualFactory(first_name="Chausiku", dob=young, location=geo.village_a,
                                      attributes={"children": 4}),
        "dotto": IndividualFactory(first_name="Dotto", dob=young, location=geo.village_b, attributes={"children": 5}),
    }


def enrolled(plan):
    return set(Beneficiary.objects.filter(plan=plan).values_list("individual__first_name", flat=True))


def test_preview_counts_what_would_change_within_the_users_locations(plan, people, officer):
    services.enrolment_execute(plan=plan, rule="first_name == 'Amina'", target_status="POTENTIAL", by=officer)

    with CaptureQueriesContext(connection) as captured:
        preview = services.enrolment_preview(plan=plan, rule="children >= 2", target_status="POTENTIAL", by=officer)

    assert (preview["matching"], preview["already_enrolled"], preview["would_add"]) == (2, 1, 1)
    assert_no_not_in_subquery(captured)  # a plan of a million enrolments
    assert [row["name"] for row in preview["sample"]] == [str(people["chausiku"])]


def test_enrolment_adds_only_new_people_in_one_statement(plan, people, officer):
    added = services.enrolment_execute(plan=plan, rule="children >= 2", target_status="POTENTIAL", by=officer)
    again = services.enrolment_execute(plan=plan, rule="children >= 2", target_status="POTENTIAL", by=officer)

    assert (added, again) == (2, 0)
    assert enrolled(plan) == {"Amina", "Chausiku"}  # Dotto meets the rule but lives in district B
    assert BenefitPlan.objects.get(pk=plan.pk).live_beneficiaries == 2


def test_above_the_maximum_nothing_is_enrolled(plan, people, officer):
    plan.max_beneficiaries = 1
    BenefitPlan.objects.filter(pk=plan.pk).update(max_beneficiaries=1)

    with pytest.raises(ValidationError, match="above its maximum"):
        services.enrolment_execute(plan=plan, rule="children >= 2", target_status="POTENTIAL", by=officer)

    assert enrolled(plan) == set()
    assert BenefitPlan.objects.get(pk=plan.pk).live_beneficiaries == 0


def test_the_database_refuses_a_second_live_enrolment_and_a_count_above_the_maximum(plan, people):
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    Beneficiary.objects.create(plan=plan, individual=people["amina"], enrolled_at=now, status_changed_at=now)
    with pytest.raises(IntegrityError), transaction.atomic():
        Beneficiary.objects.create(plan=plan, individual=people["amina"], enrolled_at=now, status_changed_at=now)
    with pytest.raises(IntegrityError), transaction.atomic():
        BenefitPlan.objects.filter(pk=plan.pk).update(live_beneficiaries=4)


def test_criteria_errors_name_the_position(plan, people, officer):
    with pytest.raises(ValidationError, match="Unknown field 'kids'.*column 1"):
        services.enrolment_preview(plan=plan, rule="kids > 1", target_status="POTENTIAL", by=officer)


def test_a_draft_plan_does_not_enrol(people, officer):
    draft = BenefitPlan.objects.create(code="D", name="Draft plan")
    with pytest.raises(ValidationError, match="only an active plan"):
        services.enrolment_execute(plan=draft, rule="children >= 0", target_status="POTENTIAL", by=officer)
    assert draft.status == PlanStatus.DRAFT


def test_status_transitions_follow_the_domain_and_name_the_allowed_ones(plan, people, officer):
    services.enrolment_execute(plan=plan, rule="first_name == 'Amina'", target_status="POTENTIAL", by=officer)
    beneficiary = Beneficiary.objects.get(plan=plan)

    with pytest.raises(ValidationError, match="can activate or reject, not suspend"):
        services.beneficiary_change_status(beneficiary=beneficiary, action="suspend", reason="x", by=officer)
    services.beneficiary_change_status(beneficiary=beneficiary, action="activate", by=officer)
    with pytest.raises(ValidationError, match="Say why"):
        services.beneficiary_change_status(beneficiary=beneficiary, action="suspend", by=officer)
    services.beneficiary_change_status(beneficiary=beneficiary, action="suspend", reason="Missed visits", by=officer)
    services.beneficiary_change_status(beneficiary=beneficiary, action="reinstate", by=officer)
    services.beneficiary_change_status(beneficiary=beneficiary, action="graduate", reason="Aged out", by=officer)

    beneficiary.refresh_from_db()
    assert beneficiary.status == BeneficiaryStatus.GRADUATED
    assert BenefitPlan.objects.get(pk=plan.pk).live_beneficiaries == 0
    with pytest.raises(ValidationError, match="can no longer change status"):
        services.beneficiary_change_status(beneficiary=beneficiary, action="activate", by=officer)


def test_a_user_without_the_permission_cannot_change_a_status(plan, people, officer, viewer_a):
    services.enrolment_execute(plan=plan, rule="first_name == 'Amina'", target_status="POTENTIAL", by=officer)
    with pytest.raises(PermissionDenied):
        services.beneficiary_change_status(beneficiary=Beneficiary.objects.get(), action="activate", by=viewer_a)


@pytest.fixture
def enrol_checker(geo):
    """Enrolment needs a Checker's approval; this checker decides in district A."""
    from django.contrib.auth.models import Group

    from workflows.models import WorkflowDefinition, WorkflowStep

    definition = WorkflowDefinition.objects.create(operation="plans.enrol")
    WorkflowStep.objects.create(definition=definition, group=Group.objects.get(name="Checker"), sort_order=0)
    return UserFactory(role="Checker", locations=[geo.district_a])


def test_enrolment_goes_through_approval_and_runs_once_approved(plan, people, officer, enrol_checker,
                                                              django_capture_on_commit_callbacks):
    from workflows import services as workflows
    from workflows.models import ApprovalRequest, RequestStatus

    checker = enrol_checker

    request = workflows.approval_submit(operation="plans.enrol", by=officer, payload={
        "plan": plan.pk, "rule": "children >= 2", "target_status": "POTENTIAL"})
    assert request.summary["counts"]["Would be added"] == 2
    assert enrolled(plan) == set()

    with django_capture_on_commit_callbacks(execute=True):
        workflows.approval_decide(request=request, verdict="approve", by=checker)

    assert ApprovalRequest.objects.get(pk=request.pk).status == RequestStatus.EXECUTED
    assert enrolled(plan) == {"Amina", "Chausiku"}


def test_an_enrolment_that_would_add_others_than_the_checker_saw_is_void(plan, people, officer, geo, enrol_checker,
                                                                         django_capture_on_commit_callbacks):
    from workflows import services as workflows
    from workflows.models import ApprovalRequest, RequestStatus

    checker = enrol_checker
    request = workflows.approval_submit(operation="plans.enrol", by=officer, payload={
        "plan": plan.pk, "rule": "children >= 2", "target_status": "POTENTIAL"})
    IndividualFactory(first_name="Late", location=geo.village_a, attributes={"children": 2})  # registered meanwhile

    with django_capture_on_commit_callbacks(execute=True):
        workflows.approval_decide(request=request, verdict="approve", by=checker)

    assert ApprovalRequest.objects.get(pk=request.pk).status == RequestStatus.VOID
    assert enrolled(plan) == set()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the delete guard is a PostgreSQL trigger")
def test_the_database_refuses_to_delete_a_plan_that_has_beneficiaries(plan, people, officer):
    services.enrolment_execute(plan=plan, rule="first_name == 'Amina'", target_status="POTENTIAL", by=officer)

    with pytest.raises(IntegrityError), transaction.atomic():
        BenefitPlan.objects.filter(pk=plan.pk)._raw_delete(BenefitPlan.objects.db)

    assert BenefitPlan.objects.filter(pk=plan.pk).exists()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the guards are PostgreSQL triggers")
@pytest.mark.parametrize("table", ["plans_benefitplan", "registry_individual", "registry_household"])
def test_nothing_a_beneficiary_refers_to_can_be_deleted_even_in_sql(officer, plan, geo, member_roles, table):
    """The references have no foreign-key constraints (enrolment speed): triggers refuse instead."""
    from schemes.plans.models import HouseholdBeneficiary
    from tests.factories import HouseholdFactory

    person = IndividualFactory(location=geo.village_a)
    household = HouseholdFactory(location=geo.village_a)
    household_plan = BenefitPlan.objects.create(code="HH-1", name="Households", plan_type="HOUSEHOLD")
    now = datetime.datetime.now(datetime.UTC)
    Beneficiary.objects.create(plan=plan, individual=person, enrolled_at=now, status_changed_at=now)
    HouseholdBeneficiary.objects.create(plan=household_plan, household=household, enrolled_at=now,
                                        status_changed_at=now)
    row = {"plans_benefitplan": plan.pk, "registry_individual": person.pk, "registry_household": household.pk}[table]

    with pytest.raises(IntegrityError, match="has_beneficiaries"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE id = %s", [row])


@pytest.mark.parametrize("setup, message", [
    ({"status": PlanStatus.DRAFT}, "is draft: only an active plan enrols"),
    ({"rule": "children >= 99"}, "Nobody would be added"),
    ({"max_beneficiaries": 1}, "1 more than the plan's maximum would be enrolled"),
])
def test_an_enrolment_that_could_not_run_is_refused_when_submitted(plan, people, officer, setup, message):
    from workflows import services as workflows
    from workflows.models import ApprovalRequest

    BenefitPlan.objects.filter(pk=plan.pk).update(**{k: v for k, v in setup.items() if k != "rule"})
    with pytest.raises(ValidationError, match=message):
        workflows.approval_submit(operation="plans.enrol", by=officer, payload={
            "plan": plan.pk, "rule": setup.get("rule", "children >= 2"), "target_status": "POTENTIAL"})
    assert not ApprovalRequest.objects.exists() and enrolled(plan) == set()
