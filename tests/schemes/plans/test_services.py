"""Enrolment by rule (one statement, all or nothing, the maximum held by the database; nobody who
left the plan enrolled again; only while the plan is valid), the beneficiary status transitions,
closing a plan, and plan codes and names unique whatever their case."""

import datetime
import re

import pytest
from django.contrib.auth.models import Permission
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
    assert [row["name"] for row in preview["sample"]] == [f"{people['chausiku']} (id {people['chausiku'].pk})"]


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


# --- who left the plan is not enrolled again -----------------------------------------------------


def leave(plan, person, action, by):
    """Enrol `person` and let them leave the plan by `action` (graduate or reject)."""
    services.enrolment_execute(plan=plan, rule=f"first_name == '{person.first_name}'", target_status="POTENTIAL",
                               by=by)
    beneficiary = Beneficiary.objects.get(plan=plan, individual=person)
    if action == "graduate":
        services.beneficiary_change_status(beneficiary=beneficiary, action="activate", by=by)
    services.beneficiary_change_status(beneficiary=beneficiary, action=action, reason="Left", by=by)


def test_people_who_graduated_or_were_rejected_are_counted_apart_and_not_enrolled_again(plan, people, officer):
    leave(plan, people["amina"], "graduate", officer)
    leave(plan, people["chausiku"], "reject", officer)
    services.enrolment_execute(plan=plan, rule="first_name == 'Baraka'", target_status="POTENTIAL", by=officer)
    newcomer = IndividualFactory(first_name="Neema", location=people["amina"].location, attributes={"children": 2})

    with CaptureQueriesContext(connection) as captured:
        preview = services.enrolment_preview(plan=plan, rule="children >= 0", target_status="POTENTIAL", by=officer)
    added = services.enrolment_execute(plan=plan, rule="children >= 0", target_status="POTENTIAL", by=officer)

    assert {key: preview[key] for key in ("matching", "already_enrolled", "graduated_earlier", "rejected_earlier",
                                          "would_add")} == {"matching": 4, "already_enrolled": 1,
                                                            "graduated_earlier": 1, "rejected_earlier": 1,
                                                            "would_add": 1}
    assert [row["name"] for row in preview["sample"]] == [f"{newcomer} (id {newcomer.pk})"]
    assert_no_not_in_subquery(captured)
    assert added == 1
    assert sorted(Beneficiary.objects.filter(plan=plan).values_list("individual__first_name", "status")) == [
        ("Amina", "GRADUATED"), ("Baraka", "POTENTIAL"), ("Chausiku", "REJECTED"), ("Neema", "POTENTIAL")]


def test_an_enrolment_request_names_those_not_enrolled_again(plan, people, officer, enrol_checker):
    from workflows import services as workflows

    leave(plan, people["amina"], "graduate", officer)

    request = workflows.approval_submit(operation="plans.enrol", by=officer, payload={
        "plan": plan.pk, "rule": "children >= 2", "target_status": "POTENTIAL"})
    assert request.summary["counts"]["Graduated earlier, not enrolled again"] == 1
    assert request.summary["counts"]["Would be added"] == 1  # Chausiku
    with pytest.raises(ValidationError, match="left the plan earlier"):
        workflows.approval_submit(operation="plans.enrol", by=officer, payload={
            "plan": plan.pk, "rule": "first_name == 'Amina'", "target_status": "POTENTIAL"})


# --- who the sample shows ---------------------------------------------------------------------------


@pytest.fixture
def incomes(people):
    """A sensitive attribute the criteria read: Amina earns 80, Chausiku 120.50."""
    from schemes.registry.models import Individual

    RegistryFieldFactory(name="income", label="Monthly income", field_type="decimal", sensitive=True)
    for name, income in (("amina", "80"), ("chausiku", "120.50")):
        person = people[name]
        Individual.objects.filter(pk=person.pk).update(attributes={**person.attributes, "income": income})
    return "children >= 2 and income < 500"


def test_the_sample_names_each_person_with_their_location_and_the_values_the_criteria_read(
        plan, people, officer, incomes, geo):
    preview = services.enrolment_preview(plan=plan, rule=incomes, target_status="POTENTIAL", by=officer)

    amina, chausiku = people["amina"], people["chausiku"]
    assert preview["sample_fields"] == ["Children", "Monthly income"]
    assert preview["sample"] == [
        {"id": amina.pk, "name": f"{amina} (id {amina.pk})", "location": "Village A",
         "values": [["Children", "3"], ["Monthly income", "80"]],
         "summary": f"{amina} (id {amina.pk}); Village A; Children: 3; Monthly income: 80"},
        {"id": chausiku.pk, "name": f"{chausiku} (id {chausiku.pk})", "location": "Village A",
         "values": [["Children", "4"], ["Monthly income", "120.5"]],
         "summary": f"{chausiku} (id {chausiku.pk}); Village A; Children: 4; Monthly income: 120.5"}]


def test_the_sample_masks_a_sensitive_value_for_a_reader_who_may_not_see_it(plan, people, officer, incomes, geo):
    reader = UserFactory(role="Viewer", locations=[geo.district_a])
    reader.user_permissions.add(Permission.objects.get(content_type__app_label="plans", codename="add_beneficiary"))
    reader = type(reader).objects.get(pk=reader.pk)

    preview = services.enrolment_preview(plan=plan, rule=incomes, target_status="POTENTIAL", by=reader)

    assert [row["values"] for row in preview["sample"]] == [[["Children", "3"], ["Monthly income", "••"]],
                                                            [["Children", "4"], ["Monthly income", "•••••"]]]
    assert "120" not in str(preview["sample"])


def test_an_enrolment_requests_sample_tells_the_checkers_who_sensitive_values_masked_for_all(
        plan, people, officer, incomes, enrol_checker):
    from workflows import services as workflows

    request = workflows.approval_submit(operation="plans.enrol", by=officer, payload={
        "plan": plan.pk, "rule": incomes, "target_status": "POTENTIAL"})

    amina, chausiku = people["amina"], people["chausiku"]
    assert request.summary["sample"] == [
        {"id": amina.pk, "name": f"{amina} (id {amina.pk}); Village A; Children: 3; Monthly income: ••"},
        {"id": chausiku.pk, "name": f"{chausiku} (id {chausiku.pk}); Village A; Children: 4; Monthly income: •••••"}]


# --- enrolling a rejected person again --------------------------------------------------------------


def reenrol_request(plan, rejected, by, reason="Rejected by mistake: the wrong Chausiku"):
    from workflows import services as workflows

    return workflows.approval_submit(operation="plans.enrol", by=by, payload={
        "plan": plan.pk, "reenrol": rejected.pk, "reason": reason})


def test_a_person_rejected_by_mistake_is_enrolled_again_once_approved(plan, people, officer, enrol_checker,
                                                                      django_capture_on_commit_callbacks):
    from wagtail.models import ModelLogEntry

    from workflows import services as workflows
    from workflows.models import ApprovalRequest, RequestStatus

    leave(plan, people["chausiku"], "reject", officer)
    rejected = Beneficiary.objects.get(plan=plan, individual=people["chausiku"])
    Beneficiary.objects.filter(pk=rejected.pk).update(attributes={"grade": 4})

    request = reenrol_request(plan, rejected, officer)

    assert request.summary["title"] == f"Enrol {people['chausiku']} again in {plan} (rejected earlier)"
    assert request.summary["diff"] == [
        ["Enrolment", f"Rejected on {rejected.status_changed_at:%Y-%m-%d} by {officer.get_username()}: “Left”",
         "Potential (a new enrolment)"],
        ["Why enrol again", "—", "Rejected by mistake: the wrong Chausiku"]]
    assert request.location == people["chausiku"].location  # the checkers of her locations decide
    assert Beneficiary.objects.filter(plan=plan).count() == 1
    with django_capture_on_commit_callbacks(execute=True):
        workflows.approval_decide(request=request, verdict="approve", by=enrol_checker)

    assert ApprovalRequest.objects.get(pk=request.pk).status == RequestStatus.EXECUTED
    assert sorted(Beneficiary.objects.filter(plan=plan).values_list("status", "attributes")) == [
        ("POTENTIAL", {"grade": 4}), ("REJECTED", {"grade": 4})]  # the rejection stays in the history
    assert Beneficiary.objects.get(pk=rejected.pk).reason == "Left"
    assert BenefitPlan.objects.get(pk=plan.pk).live_beneficiaries == 1
    entry = ModelLogEntry.objects.get(action="mizani.enrol", object_id=str(plan.pk),
                                      data__enrolled_again__rejected=rejected.pk)
    assert entry.data["reason"] == "Rejected by mistake: the wrong Chausiku" and entry.user == officer


def test_enrolling_again_is_refused_for_a_graduate_anyone_enrolled_since_or_not_rejected(plan, people, officer):
    leave(plan, people["chausiku"], "reject", officer)
    rejected = Beneficiary.objects.get(plan=plan, individual=people["chausiku"])
    leave(plan, people["amina"], "graduate", officer)

    with pytest.raises(ValidationError, match="only a rejected enrolment is enrolled again"):
        services.reenrolment_check(beneficiary=Beneficiary.objects.get(individual=people["amina"]), by=officer)
    with pytest.raises(ValidationError, match="Say why they are enrolled again"):
        services.beneficiary_reenrol(beneficiary=rejected, reason=" ", by=officer)
    again = services.beneficiary_reenrol(beneficiary=rejected, reason="Mistake", by=officer)
    with pytest.raises(ValidationError, match=re.escape(f"{people['chausiku']} is enrolled in {plan} already")):
        services.beneficiary_reenrol(beneficiary=rejected, reason="Mistake", by=officer)
    services.beneficiary_change_status(beneficiary=again, action="activate", by=officer)
    services.beneficiary_change_status(beneficiary=again, action="graduate", reason="Done", by=officer)
    with pytest.raises(ValidationError, match="graduated from .*: graduation is final"):
        services.beneficiary_reenrol(beneficiary=rejected, reason="Mistake", by=officer)

    assert Beneficiary.objects.filter(individual=people["chausiku"]).count() == 2


def test_enrolling_again_takes_the_enrolment_permission_and_the_persons_location(plan, people, officer, viewer_a):
    national = UserFactory(role="Clerk", national=True)
    national.user_permissions.add(*Permission.objects.filter(content_type__app_label="plans"))
    leave(plan, people["dotto"], "reject", national)  # district B
    rejected = Beneficiary.objects.get(individual=people["dotto"])

    with pytest.raises(Beneficiary.DoesNotExist):
        services.beneficiary_reenrol(beneficiary=rejected, reason="Mistake", by=officer)
    with pytest.raises(PermissionDenied):
        services.beneficiary_reenrol(beneficiary=rejected, reason="Mistake", by=viewer_a)
    assert Beneficiary.objects.filter(individual=people["dotto"]).count() == 1


def test_enrolling_again_is_refused_at_submission_above_the_maximum_or_for_a_unique_value_taken(
        plan, people, officer, enrol_checker):
    from schemes.plans.models import PlanField

    PlanField.objects.create(plan=plan, name="card", label="Card number", field_type="integer", unique=True)
    leave(plan, people["chausiku"], "reject", officer)
    rejected = Beneficiary.objects.get(individual=people["chausiku"])
    Beneficiary.objects.filter(pk=rejected.pk).update(attributes={"card": 7})
    services.enrolment_execute(plan=plan, rule="first_name == 'Amina'", target_status="POTENTIAL", by=officer)
    Beneficiary.objects.filter(individual=people["amina"]).update(attributes={"card": 7})

    with pytest.raises(ValidationError, match="Another beneficiary of CT-1 already has Card number 7. Change it in"):
        reenrol_request(plan, rejected, officer)
    Beneficiary.objects.filter(pk=rejected.pk).update(attributes={"card": 8})
    services.enrolment_execute(plan=plan, rule="first_name in ['Baraka', 'Chausiku']", target_status="POTENTIAL",
                               by=officer)  # Baraka only: criteria never bring back Chausiku
    BenefitPlan.objects.filter(pk=plan.pk).update(max_beneficiaries=2)
    with pytest.raises(ValidationError, match="has its maximum of 2 beneficiaries"):
        reenrol_request(plan, rejected, officer)
    with pytest.raises(ValidationError, match="has its maximum of 2 beneficiaries"):  # and once approved
        services.beneficiary_reenrol(beneficiary=rejected, reason="Mistake", by=officer)
    assert Beneficiary.objects.filter(individual=people["chausiku"]).count() == 1


def test_an_approved_enrolment_again_is_void_if_they_were_enrolled_meanwhile(plan, people, officer, enrol_checker,
                                                                             django_capture_on_commit_callbacks):
    from workflows import services as workflows
    from workflows.models import ApprovalRequest, RequestStatus

    leave(plan, people["chausiku"], "reject", officer)
    rejected = Beneficiary.objects.get(individual=people["chausiku"])
    request = reenrol_request(plan, rejected, officer)
    with pytest.raises(ValidationError, match="already waiting for a decision"):
        reenrol_request(plan, rejected, officer)
    services.beneficiary_reenrol(beneficiary=rejected, reason="Done directly", by=officer)

    with django_capture_on_commit_callbacks(execute=True):
        workflows.approval_decide(request=request, verdict="approve", by=enrol_checker)

    assert ApprovalRequest.objects.get(pk=request.pk).status == RequestStatus.VOID
    assert Beneficiary.objects.filter(individual=people["chausiku"]).count() == 2


# --- validity -------------------------------------------------------------------------------------


def test_a_plan_whose_validity_ended_is_neither_activated_nor_enrolled_into(plan, people, officer):
    yesterday = datetime.date.today() - datetime.timedelta(days=1)
    draft = BenefitPlan.objects.create(code="OLD", name="Old plan", valid_from=datetime.date(2020, 1, 1),
                                       valid_to=yesterday)
    BenefitPlan.objects.filter(pk=plan.pk).update(valid_to=yesterday)
    plan.refresh_from_db()

    with pytest.raises(ValidationError, match=f"was valid until {yesterday:%Y-%m-%d}: it can no longer be activated"):
        services.plan_activate(plan=draft, by=officer)
    for service in (services.enrolment_preview, services.enrolment_execute):
        with pytest.raises(ValidationError, match="it can no longer enrol anyone. Extend its validity"):
            service(plan=plan, rule="children >= 2", target_status="POTENTIAL", by=officer)

    assert BenefitPlan.objects.get(pk=draft.pk).status == PlanStatus.DRAFT and enrolled(plan) == set()


def test_a_plan_valid_until_today_still_enrols(plan, people, officer):
    BenefitPlan.objects.filter(pk=plan.pk).update(valid_to=datetime.date.today())

    assert services.enrolment_execute(plan=plan, rule="children >= 2", target_status="POTENTIAL", by=officer) == 2


def test_an_enrolment_approved_after_the_plan_ended_fails_saying_why(plan, people, officer, enrol_checker,
                                                                    django_capture_on_commit_callbacks):
    from workflows import services as workflows
    from workflows.models import ApprovalRequest, RequestStatus

    request = workflows.approval_submit(operation="plans.enrol", by=officer, payload={
        "plan": plan.pk, "rule": "children >= 2", "target_status": "POTENTIAL"})
    BenefitPlan.objects.filter(pk=plan.pk).update(valid_to=datetime.date.today() - datetime.timedelta(days=1))

    with django_capture_on_commit_callbacks(execute=True):
        workflows.approval_decide(request=request, verdict="approve", by=enrol_checker)

    request = ApprovalRequest.objects.get(pk=request.pk)
    assert request.status == RequestStatus.FAILED and "it can no longer enrol anyone" in request.error
    assert enrolled(plan) == set()


# --- closing ----------------------------------------------------------------------------------------


@pytest.fixture
def designer(geo):
    return UserFactory(role="Scheme administrator", national=True)


def test_closing_graduates_active_and_suspended_and_rejects_potential_ones_everywhere(plan, people, geo, designer):
    national = UserFactory(role="Clerk", national=True)
    national.user_permissions.add(*Permission.objects.filter(content_type__app_label="plans"))
    leave(plan, people["amina"], "reject", national)
    services.enrolment_execute(plan=plan, rule="children >= 2", target_status="ACTIVE", by=national)  # + Dotto
    suspended = Beneficiary.objects.get(plan=plan, individual=people["dotto"])  # district B
    services.beneficiary_change_status(beneficiary=suspended, action="suspend", reason="Visits", by=national)
    services.enrolment_execute(plan=plan, rule="first_name == 'Baraka'", target_status="POTENTIAL", by=national)

    services.plan_close(plan=plan, by=designer)

    closed = BenefitPlan.objects.get(pk=plan.pk)
    assert (closed.status, closed.live_beneficiaries) == (PlanStatus.CLOSED, 0)
    assert sorted(Beneficiary.objects.filter(plan=plan).values_list("individual__first_name", "status", "reason")) == [
        ("Amina", "REJECTED", "Left"), ("Baraka", "REJECTED", "The plan was closed."),
        ("Chausiku", "GRADUATED", "The plan was closed."), ("Dotto", "GRADUATED", "The plan was closed.")]


def test_closing_takes_national_scope_and_an_active_plan(plan, geo, designer):
    district_designer = UserFactory(role="Scheme administrator", locations=[geo.district_a])
    draft = BenefitPlan.objects.create(code="D", name="Draft plan")

    with pytest.raises(PermissionDenied, match="takes national scope"):
        services.plan_close(plan=plan, by=district_designer)
    with pytest.raises(ValidationError, match="is draft: only an active plan is closed"):
        services.plan_close(plan=draft, by=designer)
    assert BenefitPlan.objects.get(pk=plan.pk).status == PlanStatus.ACTIVE


# --- codes and names ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fields, message", [({"code": "ct-1", "name": "Another"}, "has this code"),
                                             ({"code": "CT-2", "name": "CHILD GRANT"}, "has this name")])
def test_plan_codes_and_names_are_unique_whatever_their_case(plan, fields, message):
    with pytest.raises(ValidationError, match=f"Another plan {message}"):
        BenefitPlan(**fields).full_clean(exclude=["status"])  # protected: see plan_change_check
    with pytest.raises(IntegrityError), transaction.atomic():
        BenefitPlan.objects.create(**fields)


def test_the_migration_names_plans_that_differ_only_in_case_instead_of_failing_on_them(plan):
    from importlib import import_module

    from django.apps import apps

    migration = import_module("schemes.plans.migrations.0007_plan_code_name_any_case")
    schema_editor = type("Editor", (), {"connection": connection})()
    with connection.cursor() as cursor:  # as before the migration (the test's transaction restores it)
        cursor.execute("DROP INDEX plan_code_unique_any_case")
    BenefitPlan.objects.create(code="ct-1", name="Another grant")

    with pytest.raises(RuntimeError, match="differ only in case: code 'CT-1' / 'ct-1'. Rename all but one"):
        migration.refuse_plans_differing_only_in_case(apps, schema_editor)
    BenefitPlan.objects.filter(code="ct-1").update(code="CT-9")
    migration.refuse_plans_differing_only_in_case(apps, schema_editor)


def test_the_demo_keeps_plans_made_meanwhile_whose_code_or_name_differs_only_in_case(db):
    from schemes.plans.demo import ensure_demo_plans

    for code, name in (("cg-01", "My child grant"), ("HS-9", "HOUSEHOLD SUPPORT"), ("ep-01", "Pension")):
        BenefitPlan.objects.create(code=code, name=name)

    assert ensure_demo_plans() == 0
    assert BenefitPlan.objects.count() == 3
