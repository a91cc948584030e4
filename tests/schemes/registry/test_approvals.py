"""The registry's operations in the approval engine: what a checker is shown (which record, field
labels, a link), what is refused at submission (nothing to change, a second request, a deletion the
service would refuse), and member changes going through approval."""

from types import SimpleNamespace

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from schemes.plans.models import BenefitPlan, HouseholdBeneficiary, PlanType
from schemes.registry.approvals import MEMBERS_OPERATION
from schemes.registry.models import Individual, MemberRole, Membership, RecipientType
from tests.factories import (
    HouseholdFactory,
    IndividualFactory,
    MembershipFactory,
    RegistryFieldFactory,
    UserFactory,
)
from workflows.models import RequestStatus, WorkflowDefinition, WorkflowStep
from workflows.services import approval_decide, approval_submit

pytestmark = pytest.mark.django_db


@pytest.fixture
def workflow(geo):
    """make(operation): one step, any one Checker; a checker in district A to decide."""
    checker = UserFactory(username="approvals_checker", role="Checker", locations=[geo.district_a])

    def make(operation):
        WorkflowStep.objects.create(definition=WorkflowDefinition.objects.create(operation=operation),
                                    group=Group.objects.get(name="Checker"), sort_order=0)
        return checker

    return make


@pytest.fixture
def household(geo, member_roles):
    household = HouseholdFactory(code="HH-APPR01", location=geo.village_a)
    head = IndividualFactory(first_name="Amina", last_name="Juma", location=geo.village_a)
    MembershipFactory(household=household, individual=head, recipient_type=RecipientType.PRIMARY)
    MembershipFactory(household=household, individual=IndividualFactory(first_name="Baraka", last_name="Juma",
                                                                         location=geo.village_a),
                      role=member_roles["SON"])
    return household


def change(person, **fields):
    return {"record": person.pk, "fields": fields, "attributes": dict(person.attributes)}


def test_a_change_request_names_the_record_links_to_it_and_shows_field_labels(geo, clerk_a, workflow, household):
    workflow("registry.change_individual")
    RegistryFieldFactory(name="income", label="Monthly income", field_type="integer")
    person = Membership.objects.get(household=household, role_id=MemberRole.HEAD).individual

    request = approval_submit(operation="registry.change_individual",
                              payload={**change(person, first_name="Halima"), "attributes": {"income": 120}},
                              by=clerk_a)

    summary = request.summary
    assert summary["title"] == f"Change individual Amina Juma (id {person.pk}, born 1990-06-15, household HH-APPR01)"
    assert summary["link"]["url"] == reverse("registry_individual:inspect", args=[person.pk])
    assert ["First name", "Amina", "Halima"] in summary["diff"]
    assert ["Monthly income", None, "120"] in summary["diff"]
    assert "National ID" in summary["sensitive"] and "Phone" in summary["sensitive"]


def test_a_change_that_changes_nothing_is_refused(geo, clerk_a, workflow):
    workflow("registry.change_individual")
    person = IndividualFactory(first_name="Amina", location=geo.village_a)

    with pytest.raises(ValidationError, match="Nothing would change"):
        approval_submit(operation="registry.change_individual", payload=change(person, first_name="Amina"), by=clerk_a)


def test_a_second_open_request_for_the_same_record_is_refused_naming_the_first(geo, clerk_a, workflow):
    workflow("registry.change_individual")
    person = IndividualFactory(first_name="Amina", location=geo.village_a)
    first = approval_submit(operation="registry.change_individual", payload=change(person, first_name="Halima"),
                            by=clerk_a)

    with pytest.raises(ValidationError, match=f"Request {first.pk} for this individual is already waiting"):
        approval_submit(operation="registry.change_individual", payload=change(person, first_name="Halima"),
                        by=clerk_a)


def test_deleting_a_head_with_other_members_is_refused_at_submission(clerk_a, workflow, household):
    workflow("registry.delete_individual")
    head = Membership.objects.get(household=household, role_id=MemberRole.HEAD).individual

    with pytest.raises(ValidationError, match="is the head of household HH-APPR01: make another member the head"):
        approval_submit(operation="registry.delete_individual", payload={"record": head.pk}, by=clerk_a)


def test_a_delete_request_states_its_consequences_and_links_to_the_record(clerk_a, workflow, household):
    workflow("registry.delete_individual")
    son = Membership.objects.get(household=household, role_id="SON").individual

    request = approval_submit(operation="registry.delete_individual", payload={"record": son.pk}, by=clerk_a)

    assert request.summary["title"].startswith(f"Delete individual Baraka Juma (id {son.pk}, born")
    assert request.summary["counts"]["Household"] == "HH-APPR01 (son): they leave it"
    assert request.summary["link"]["url"] == reverse("registry_individual:inspect", args=[son.pk])


def test_member_changes_wait_for_approval_when_a_workflow_is_configured(clerk_a, workflow, household,
                                                                         django_capture_on_commit_callbacks):
    checker = workflow(MEMBERS_OPERATION)
    son = Membership.objects.get(household=household, role_id="SON")

    request = approval_submit(operation=MEMBERS_OPERATION, by=clerk_a, payload={
        "household": household.pk, "action": "set_head", "individual": son.individual_id,
        "former_head_role": "FATHER"})

    assert request.status == RequestStatus.PENDING
    assert Membership.objects.get(pk=son.pk).role_id == "SON"  # nothing changed yet
    assert request.summary["diff"] == [
        [f"Baraka Juma (id {son.individual_id})", "Son", "Head"],
        [f"Amina Juma (id {household.head.pk}), head now", "Head, primary recipient", "Father, primary recipient"]]
    assert request.summary["link"]["url"] == reverse("registry_household:inspect", args=[household.pk])
    assert "HH-APPR01" in request.summary["title"]

    with django_capture_on_commit_callbacks(execute=True):
        approval_decide(request=request, verdict="approve", by=checker)
    assert Membership.objects.get(pk=son.pk).role_id == MemberRole.HEAD


def test_a_member_change_the_service_would_refuse_is_refused_at_submission(clerk_a, workflow, household):
    workflow(MEMBERS_OPERATION)
    head = Membership.objects.get(household=household, role_id="HEAD")

    with pytest.raises(ValidationError, match="is the household's primary recipient"):
        approval_submit(operation=MEMBERS_OPERATION, by=clerk_a, payload={
            "household": household.pk, "action": "change", "individual": head.individual_id, "role": "HEAD",
            "recipient_type": "SECONDARY"})
    assert Membership.objects.get(pk=head.pk).recipient_type == "PRIMARY"


def test_a_request_making_a_member_primary_shows_the_primary_recipient_it_replaces(clerk_a, workflow, household,
                                                                                   django_capture_on_commit_callbacks):
    checker = workflow(MEMBERS_OPERATION)
    head = Membership.objects.get(household=household, role_id="HEAD")
    son = Membership.objects.get(household=household, role_id="SON")

    request = approval_submit(operation=MEMBERS_OPERATION, by=clerk_a, payload={
        "household": household.pk, "action": "change", "individual": son.individual_id, "role": "SON",
        "recipient_type": "PRIMARY"})

    assert request.summary["diff"] == [
        [f"Baraka Juma (id {son.individual_id})", "Son", "Son, primary recipient"],
        [f"Amina Juma (id {head.individual_id}), primary recipient now", "Head, primary recipient",
         "Head, secondary recipient"]]
    with django_capture_on_commit_callbacks(execute=True):
        approval_decide(request=request, verdict="approve", by=checker)
    assert Membership.objects.get(pk=son.pk).recipient_type == "PRIMARY"
    assert Membership.objects.get(pk=head.pk).recipient_type == "SECONDARY"


def test_a_member_request_is_void_when_the_members_changed_meanwhile(clerk_a, workflow, household,
                                                                      django_capture_on_commit_callbacks):
    checker = workflow(MEMBERS_OPERATION)
    son = Membership.objects.get(household=household, role_id="SON")
    request = approval_submit(operation=MEMBERS_OPERATION, by=clerk_a, payload={
        "household": household.pk, "action": "remove", "individual": son.individual_id})
    Membership.objects.filter(pk=son.pk).update(recipient_type=RecipientType.SECONDARY)

    with django_capture_on_commit_callbacks(execute=True):
        approval_decide(request=request, verdict="approve", by=checker)

    request.refresh_from_db()
    assert request.status == RequestStatus.VOID
    assert Membership.objects.filter(pk=son.pk).exists()


def make_son_primary(household):
    Membership.objects.filter(household=household).update(recipient_type=RecipientType.SECONDARY)
    son = Membership.objects.get(household=household, role_id="SON")
    Membership.objects.filter(pk=son.pk).update(recipient_type=RecipientType.PRIMARY)
    return son


def test_removing_the_primary_recipient_without_naming_who_takes_over_is_refused_at_submission(
        clerk_a, workflow, household):
    workflow(MEMBERS_OPERATION)
    son = make_son_primary(household)

    with pytest.raises(ValidationError, match="is the household's primary recipient: choose the member"):
        approval_submit(operation=MEMBERS_OPERATION, by=clerk_a, payload={
            "household": household.pk, "action": "remove", "individual": son.individual_id})
    assert Membership.objects.filter(pk=son.pk).exists()


def test_a_request_removing_the_primary_recipient_shows_and_applies_who_takes_over(
        clerk_a, workflow, household, django_capture_on_commit_callbacks):
    checker = workflow(MEMBERS_OPERATION)
    son = make_son_primary(household)
    head = Membership.objects.get(household=household, role_id="HEAD")

    request = approval_submit(operation=MEMBERS_OPERATION, by=clerk_a, payload={
        "household": household.pk, "action": "remove", "individual": son.individual_id,
        "new_primary": head.individual_id})

    assert request.payload["new_primary"] == head.individual_id
    assert request.summary["diff"] == [
        [f"Baraka Juma (id {son.individual_id})", "Son, primary recipient", "Leaves the household"],
        [f"Amina Juma (id {head.individual_id}), new primary recipient", "Head, secondary recipient",
         "Head, primary recipient"]]
    with django_capture_on_commit_callbacks(execute=True):
        approval_decide(request=request, verdict="approve", by=checker)
    assert not Membership.objects.filter(pk=son.pk).exists()
    assert Membership.objects.get(pk=head.pk).recipient_type == RecipientType.PRIMARY


def test_deleting_the_primary_recipient_is_refused_at_submission(clerk_a, workflow, household):
    workflow("registry.delete_individual")
    son = make_son_primary(household)

    with pytest.raises(ValidationError, match="is the primary recipient of household HH-APPR01: make another member"):
        approval_submit(operation="registry.delete_individual", payload={"record": son.individual_id}, by=clerk_a)


def test_an_approved_deletion_of_a_member_made_primary_meanwhile_is_refused(clerk_a, workflow, household,
                                                                            django_capture_on_commit_callbacks):
    checker = workflow("registry.delete_individual")
    son = Membership.objects.get(household=household, role_id="SON")
    request = approval_submit(operation="registry.delete_individual", payload={"record": son.individual_id},
                              by=clerk_a)
    make_son_primary(household)  # a member change: the person's record (the request's version) is untouched

    with django_capture_on_commit_callbacks(execute=True):
        approval_decide(request=request, verdict="approve", by=checker)

    request.refresh_from_db()
    assert request.status == RequestStatus.FAILED
    assert "is the primary recipient of household HH-APPR01" in request.error
    assert Membership.objects.get(pk=son.pk).recipient_type == RecipientType.PRIMARY
    assert Individual.objects.get(pk=son.individual_id).deleted_at is None


def test_the_last_member_of_a_household_enrolled_in_an_active_plan_cannot_be_removed(geo, clerk_a, member_roles):
    household = HouseholdFactory(code="HH-LAST01", location=geo.village_a)
    MembershipFactory(household=household, individual=IndividualFactory(location=geo.village_a))
    plan = BenefitPlan.objects.create(code="HHG", name="Household grant", plan_type=PlanType.HOUSEHOLD,
                                      status="ACTIVE")
    HouseholdBeneficiary.objects.create(plan=plan, household=household, status="ACTIVE", enrolled_at=timezone.now(),
                                        status_changed_at=timezone.now())

    with pytest.raises(ValidationError, match="enrolled in Household grant"):
        approval_submit(operation=MEMBERS_OPERATION, by=clerk_a, payload={
            "household": household.pk, "action": "remove", "individual": household.head.pk})
    assert Membership.objects.filter(household=household).count() == 1


# --- records outside the request's location are not named in what it stores ----------------------

@pytest.fixture
def across(geo, member_roles):
    """A person registered in district A, a member of a household registered in district B (its head
    registered in B too), and a household in A whose head is registered in B."""
    elsewhere = HouseholdFactory(code="HH-DISTRICT-B", location=geo.village_b)
    MembershipFactory(household=elsewhere, individual=IndividualFactory(
        first_name="Hidden", last_name="Bhead", location=geo.village_b), recipient_type=RecipientType.PRIMARY)
    son = IndividualFactory(first_name="Visible", last_name="Ason", location=geo.village_a)
    MembershipFactory(household=elsewhere, individual=son, role=member_roles["SON"])
    here = HouseholdFactory(code="HH-DISTRICT-A", location=geo.village_a)
    MembershipFactory(household=here, individual=IndividualFactory(
        first_name="Other", last_name="Bhead", location=geo.village_b), recipient_type=RecipientType.PRIMARY)
    daughter = IndividualFactory(first_name="Visible", last_name="Adaughter", location=geo.village_a)
    MembershipFactory(household=here, individual=daughter, role=member_roles["DAUGHTER"])
    return SimpleNamespace(elsewhere=elsewhere, son=son, here=here, daughter=daughter)


def client_for(user):
    client = Client()
    client.force_login(user)
    return client


def stored_text(request):
    return f"{request.title} {request.summary}"


def test_a_deletion_request_does_not_name_a_household_outside_its_location(geo, clerk_a, workflow, across):
    checker = workflow("registry.delete_individual")

    request = approval_submit(operation="registry.delete_individual", payload={"record": across.son.pk}, by=clerk_a)

    assert "HH-DISTRICT-B" not in stored_text(request)
    assert request.summary["title"] == (f"Delete individual Visible Ason (id {across.son.pk}, born 1990-06-15, "
                                        f"a household outside {geo.village_a.name})")
    assert request.summary["counts"]["Household"].startswith(f"A household outside {geo.village_a.name} (son)")
    page = client_for(checker).get(reverse("workflows_approvals:inspect", args=[request.pk]))
    assert page.status_code == 200 and "HH-DISTRICT-B" not in page.content.decode()


def test_a_member_request_does_not_name_members_outside_its_location(geo, clerk_a, workflow, across):
    checker = workflow(MEMBERS_OPERATION)

    request = approval_submit(operation=MEMBERS_OPERATION, by=clerk_a, payload={
        "household": across.here.pk, "action": "set_head", "individual": across.daughter.pk,
        "former_head_role": "FATHER"})

    assert "Bhead" not in stored_text(request)
    assert request.summary["diff"][1][0] == f"A member outside {geo.village_a.name}, head now"
    assert request.summary["title"].endswith(f"Visible Adaughter (id {across.daughter.pk})")
    household_page = client_for(clerk_a).get(reverse("registry_household:inspect", args=[across.here.pk]))
    banner = household_page.content.decode()
    assert f"request {request.pk}" in banner and "Bhead" not in banner
    inbox = client_for(checker).get(reverse("workflows_approvals:index"))
    assert "Bhead" not in inbox.content.decode()


def test_a_persons_page_lists_only_the_requests_its_reader_may_open(geo, clerk_a, workflow, across):
    workflow("registry.delete_individual")
    request = approval_submit(operation="registry.delete_individual", payload={"record": across.son.pk}, by=clerk_a)
    page = reverse("registry_individual:inspect", args=[across.son.pk])

    assert f"request {request.pk}" in client_for(clerk_a).get(page).content.decode()  # the maker
    viewer = UserFactory(username="approvals_viewer", role="Viewer", locations=[geo.district_a])
    assert f"request {request.pk}" not in client_for(viewer).get(page).content.decode()


def test_a_merge_preview_does_not_name_a_household_outside_the_readers_locations(geo, clerk_a, across):
    from schemes.registry import services
    from sites.scoping import scope_for

    twin = IndividualFactory(first_name="Visible", last_name="Ason", location=geo.village_a)
    preview = services.merge_preview(kept=twin, merged=across.son, scope=scope_for(clerk_a))
    assert preview["membership"] == ("The duplicate's place in a household outside your locations passes to the "
                                     "kept record.")


# --- merging duplicates: what the checker is told ---------------------------------------------------

@pytest.fixture
def imported_twin(geo, member_roles):
    """The QA pair: Zawadi Mrema, daughter in household QAHH1, and the same Zawadi Mrema created again
    by an import (another phone) as the only member of household QDU5."""
    from tests.factories import DuplicateCandidateFactory

    family = HouseholdFactory(code="QAHH1", location=geo.village_a)
    MembershipFactory(household=family, individual=IndividualFactory(location=geo.village_a),
                      recipient_type=RecipientType.PRIMARY)
    kept = IndividualFactory(first_name="Zawadi", last_name="Mrema", location=geo.village_a, phone="+255760303899")
    MembershipFactory(household=family, individual=kept, role=member_roles["DAUGHTER"])
    duplicate = IndividualFactory(first_name="Zawadi", last_name="Mrema", location=geo.village_a,
                                  phone="+255799999999", national_id="")
    MembershipFactory(household=HouseholdFactory(code="QDU5", location=geo.village_a), individual=duplicate,
                      recipient_type=RecipientType.PRIMARY)
    return DuplicateCandidateFactory(first=kept, second=duplicate), kept, duplicate


def test_a_merge_request_names_the_record_kept_what_the_merged_record_loses_and_the_household_it_deletes(
        clerk_a, workflow, imported_twin, django_capture_on_commit_callbacks):
    from django.contrib.auth.models import Permission

    from schemes.registry import services
    from schemes.registry.models import Household, Merge
    from sites.masking import mask

    pair, kept, duplicate = imported_twin
    checker = workflow("registry.merge")

    request = services.individual_merge_request(candidate=pair, kept=kept, by=clerk_a)

    summary = request.summary
    assert summary["title"] == (f"Merge Zawadi Mrema (id {duplicate.pk}) into Zawadi Mrema (id {kept.pk}), "
                                "the record kept")
    kept_phone = f"Phone, kept (id {kept.pk})"
    dropped_phone = f"Phone, dropped from the merged record (id {duplicate.pk})"
    assert summary["diff"] == [  # the import left the duplicate without a national ID
        [f"National ID, kept (id {kept.pk})", kept.national_id, kept.national_id],
        [f"National ID, dropped from the merged record (id {duplicate.pk})", None, None],
        [kept_phone, "+255760303899", "+255760303899"], [dropped_phone, "+255799999999", None]]
    assert {kept_phone, dropped_phone} <= set(summary["sensitive"]) and len(summary["sensitive"]) == 4
    assert "household QDU5 (only this member) will be deleted" in summary["counts"]["Household"]
    assert "stays in household QAHH1" in summary["counts"]["Household"]

    page = client_for(checker).get(reverse("workflows_approvals:inspect", args=[request.pk])).content.decode()
    assert "dropped from the merged record" in page and "+255799999999" in page
    Group.objects.get(name="Checker").permissions.remove(Permission.objects.get(codename="view_sensitive_data"))
    masked = client_for(checker).get(reverse("workflows_approvals:inspect", args=[request.pk])).content.decode()
    assert "+255799999999" not in masked and "+255760303899" not in masked
    assert mask("+255799999999") in masked and mask("+255760303899") in masked

    with django_capture_on_commit_callbacks(execute=True):
        approval_decide(request=request, verdict="approve", by=checker)
    request.refresh_from_db()
    assert request.status == RequestStatus.EXECUTED, request.error
    assert Household.objects.get(code="QDU5").is_deleted
    assert Membership.objects.get(individual=kept).household.code == "QAHH1"

    workflow("registry.unmerge")
    unmerge = services.individual_unmerge_request(merge=Merge.objects.get(), by=clerk_a)
    assert unmerge.summary["counts"]["Household"] == ("Household QDU5, which the merge deleted, is restored with the "
                                                      "record as its only member.")
    with django_capture_on_commit_callbacks(execute=True):
        approval_decide(request=unmerge, verdict="approve", by=checker)
    unmerge.refresh_from_db()
    assert unmerge.status == RequestStatus.EXECUTED, unmerge.error
    assert not Household.objects.get(code="QDU5").is_deleted
    assert Membership.objects.get(individual=duplicate).household.code == "QDU5"
