"""Household plans: enrolment by a household rule adds HouseholdBeneficiary rows (never Beneficiary
rows) for the live households in the user's locations only, all or nothing within the plan's maximum,
never twice (the database refuses a second live enrolment); household beneficiaries move through the
same transitions, with reasons, under the household permission; the household's record page lists
its plans; lists, pages and actions are limited to the user's locations (another district's: 404)."""

import datetime

import pytest
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from wagtail.models import ModelLogEntry

from schemes.plans import services
from schemes.plans.approvals import prepare_enrol
from schemes.plans.catalogues import candidate_catalogue
from schemes.plans.models import (
    Beneficiary,
    BeneficiaryStatus,
    BenefitPlan,
    HouseholdBeneficiary,
    PlanField,
    PlanType,
)
from schemes.registry.models import RegistryField
from schemes.rules.nodes import to_json
from tests.factories import (
    HouseholdFactory,
    IndividualFactory,
    MembershipFactory,
    RegistryFieldFactory,
    UserFactory,
)
from tests.schemes.plans.test_views import client_for
from workflows.models import ApprovalRequest, RequestStatus, WorkflowDefinition, WorkflowStep
from workflows.services import approval_decide, approval_submit

pytestmark = pytest.mark.django_db

RULE = "household_size >= 2"


@pytest.fixture
def plan(db):
    return BenefitPlan.objects.create(code="HH", name="Household grant", plan_type=PlanType.HOUSEHOLD,
                                      status="ACTIVE", max_beneficiaries=10)


@pytest.fixture
def households(geo, member_roles):
    """In district A: BIG-A (3 members), SMALL-A (1), TWO-A (2), DELETED-A (3, the household deleted);
    in district B: BIG-B (4). `household_size >= 2` matches BIG-A, TWO-A and BIG-B among the live ones."""

    def household(code, location, size, **extra):
        house = HouseholdFactory(code=code, location=location, **extra)
        for number in range(size):
            MembershipFactory(household=house, individual=IndividualFactory(location=location),
                              role=member_roles["HEAD" if number == 0 else "SON"])
        return house

    return {
        "BIG-A": household("BIG-A", geo.village_a, 3),
        "SMALL-A": household("SMALL-A", geo.village_a, 1),
        "TWO-A": household("TWO-A", geo.ward_a, 2),
        "DELETED-A": household("DELETED-A", geo.village_a, 3,
                               deleted_at=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)),
        "BIG-B": household("BIG-B", geo.village_b, 4),
    }


def enrolled(plan):
    return set(HouseholdBeneficiary.objects.filter(plan=plan).values_list("household__code", flat=True))


def live_count(plan):
    return BenefitPlan.objects.get(pk=plan.pk).live_beneficiaries


def with_permission(user, codename):
    user.user_permissions.add(Permission.objects.get(content_type__app_label="plans", codename=codename))
    return type(user).objects.get(pk=user.pk)  # permissions are cached per instance


def entries(instance, action):
    return list(ModelLogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(instance), object_id=str(instance.pk), action=action,
    ).order_by("timestamp", "id"))


# --- enrolment ----------------------------------------------------------------------------------


def test_the_sample_names_a_households_head_only_within_the_readers_locations(plan, households, clerk_a, geo):
    from schemes.registry.models import Individual

    big_head = households["BIG-A"].head
    Individual.objects.filter(pk=households["TWO-A"].head.pk).update(location=geo.village_b)  # registered in B

    preview = services.enrolment_preview(plan=plan, rule=RULE, target_status="POTENTIAL", by=clerk_a)
    summary = prepare_enrol({"plan": plan.pk, "rule": RULE, "target_status": "POTENTIAL"}, clerk_a).summary

    assert preview["sample_fields"] == ["Household size"]
    assert [(row["name"], row["location"], row["values"]) for row in preview["sample"]] == [
        (f"household BIG-A, head {big_head} (id {big_head.pk})", "Village A", [["Household size", "3"]]),
        ("household TWO-A, head a member outside your locations", "Ward A", [["Household size", "2"]])]
    assert [row["name"] for row in summary["sample"]] == [
        f"household BIG-A, head {big_head} (id {big_head.pk}); Village A; Household size: 3",
        "household TWO-A, head a member outside District A; Ward A; Household size: 2"]


def test_enrolment_by_a_household_rule_adds_the_users_live_households_only(plan, households, clerk_a):
    preview = services.enrolment_preview(plan=plan, rule=RULE, target_status="POTENTIAL", by=clerk_a)
    assert (preview["matching"], preview["already_enrolled"], preview["would_add"], preview["over_maximum"]) == (
        2, 0, 2, 0)
    assert [row["name"].split(",")[0] for row in preview["sample"]] == ["household BIG-A", "household TWO-A"]

    added = services.enrolment_execute(plan=plan, rule=RULE, target_status="POTENTIAL", by=clerk_a)

    assert added == 2
    assert enrolled(plan) == {"BIG-A", "TWO-A"}  # BIG-B is in district B; DELETED-A is deleted
    assert set(HouseholdBeneficiary.objects.values_list("status", flat=True)) == {BeneficiaryStatus.POTENTIAL}
    assert not Beneficiary.objects.exists()  # no individual enrolment for a household plan
    assert live_count(plan) == 2
    [entry] = entries(plan, "mizani.enrol")
    assert entry.data["added"] == 2 and entry.user_id == clerk_a.pk


def test_enrolment_may_target_active_and_a_national_user_reaches_every_district(plan, households, national_clerk):
    added = services.enrolment_execute(plan=plan, rule=RULE, target_status="ACTIVE", by=national_clerk)

    assert added == 3
    assert enrolled(plan) == {"BIG-A", "TWO-A", "BIG-B"}
    assert set(HouseholdBeneficiary.objects.values_list("status", flat=True)) == {BeneficiaryStatus.ACTIVE}


def test_a_household_is_never_enrolled_twice(plan, households, clerk_a, national_clerk):
    services.enrolment_execute(plan=plan, rule=RULE, target_status="POTENTIAL", by=clerk_a)

    preview = services.enrolment_preview(plan=plan, rule=RULE, target_status="ACTIVE", by=national_clerk)
    again = services.enrolment_execute(plan=plan, rule=RULE, target_status="ACTIVE", by=national_clerk)

    assert (preview["matching"], preview["already_enrolled"], preview["would_add"]) == (3, 2, 1)
    assert again == 1  # BIG-B only
    assert HouseholdBeneficiary.objects.filter(plan=plan).count() == 3
    assert live_count(plan) == 3


def test_the_database_refuses_a_second_live_enrolment_of_a_household(plan, households):
    now = timezone.now()
    house = households["BIG-A"]
    first = HouseholdBeneficiary.objects.create(plan=plan, household=house, enrolled_at=now, status_changed_at=now)

    for status in (BeneficiaryStatus.POTENTIAL, BeneficiaryStatus.ACTIVE, BeneficiaryStatus.SUSPENDED):
        with pytest.raises(IntegrityError), transaction.atomic():
            HouseholdBeneficiary.objects.create(plan=plan, household=house, status=status, enrolled_at=now,
                                                status_changed_at=now)

    # Once the first enrolment has ended it no longer blocks a new one; another plan never did.
    HouseholdBeneficiary.objects.filter(pk=first.pk).update(status=BeneficiaryStatus.REJECTED)
    HouseholdBeneficiary.objects.create(plan=plan, household=house, enrolled_at=now, status_changed_at=now)
    other = BenefitPlan.objects.create(code="HH2", name="Second grant", plan_type=PlanType.HOUSEHOLD)
    HouseholdBeneficiary.objects.create(plan=other, household=house, enrolled_at=now, status_changed_at=now)
    assert HouseholdBeneficiary.objects.filter(household=house).count() == 3


def test_above_the_maximum_no_household_is_enrolled(plan, households, clerk_a, national_clerk):
    BenefitPlan.objects.filter(pk=plan.pk).update(max_beneficiaries=2)
    services.enrolment_execute(plan=plan, rule="household_size == 1", target_status="POTENTIAL", by=clerk_a)
    plan.refresh_from_db()
    preview = services.enrolment_preview(plan=plan, rule=RULE, target_status="POTENTIAL", by=national_clerk)
    assert (preview["would_add"], preview["over_maximum"]) == (3, 2)

    with pytest.raises(ValidationError, match="above its maximum of 2"):
        services.enrolment_execute(plan=plan, rule=RULE, target_status="POTENTIAL", by=national_clerk)

    assert enrolled(plan) == {"SMALL-A"}  # all or nothing: not even the one that would have fitted
    assert live_count(plan) == 1
    assert services.enrolment_execute(plan=plan, rule="household_size == 4", target_status="POTENTIAL",
                                      by=national_clerk) == 1
    assert live_count(plan) == 2


def test_enrolling_households_needs_the_household_permission(plan, households, geo):
    person_only = with_permission(UserFactory(role="Viewer", locations=[geo.district_a]), "add_beneficiary")

    with pytest.raises(PermissionDenied, match="enrol households in plans"):
        services.enrolment_preview(plan=plan, rule=RULE, target_status="POTENTIAL", by=person_only)
    with pytest.raises(PermissionDenied, match="enrol households in plans"):
        services.enrolment_execute(plan=plan, rule=RULE, target_status="POTENTIAL", by=person_only)
    assert enrolled(plan) == set()


# --- statuses -----------------------------------------------------------------------------------


@pytest.fixture
def beneficiaries(plan, households, national_clerk):
    services.enrolment_execute(plan=plan, rule=RULE, target_status="POTENTIAL", by=national_clerk)
    return {row.household.code: row for row in HouseholdBeneficiary.objects.filter(plan=plan)
            .select_related("household")}


def test_household_beneficiaries_follow_the_transitions_with_reasons(plan, beneficiaries, clerk_a):
    big = beneficiaries["BIG-A"]

    with pytest.raises(ValidationError, match="can activate or reject, not suspend"):
        services.beneficiary_change_status(beneficiary=big, action="suspend", reason="x", by=clerk_a)
    services.beneficiary_change_status(beneficiary=big, action="activate", by=clerk_a)
    with pytest.raises(ValidationError, match="Say why"):
        services.beneficiary_change_status(beneficiary=big, action="suspend", reason="  ", by=clerk_a)
    suspended = services.beneficiary_change_status(beneficiary=big, action="suspend", reason="Missed visits",
                                                   by=clerk_a)
    assert (suspended.status, suspended.reason, suspended.status_changed_by) == (
        BeneficiaryStatus.SUSPENDED, "Missed visits", clerk_a)
    reinstated = services.beneficiary_change_status(beneficiary=big, action="reinstate", by=clerk_a)
    assert (reinstated.status, reinstated.reason) == (BeneficiaryStatus.ACTIVE, "")
    with pytest.raises(ValidationError, match="Say why"):
        services.beneficiary_change_status(beneficiary=big, action="graduate", by=clerk_a)
    services.beneficiary_change_status(beneficiary=big, action="graduate", reason="Out of poverty", by=clerk_a)
    with pytest.raises(ValidationError, match="Say why"):
        services.beneficiary_change_status(beneficiary=beneficiaries["TWO-A"], action="reject", by=clerk_a)
    services.beneficiary_change_status(beneficiary=beneficiaries["TWO-A"], action="reject", reason="Moved away",
                                       by=clerk_a)

    statuses = dict(HouseholdBeneficiary.objects.values_list("household__code", "status"))
    assert statuses == {"BIG-A": BeneficiaryStatus.GRADUATED, "TWO-A": BeneficiaryStatus.REJECTED,
                        "BIG-B": BeneficiaryStatus.POTENTIAL}
    assert live_count(plan) == 1  # graduated and rejected households leave the count
    with pytest.raises(ValidationError, match="can no longer change status"):
        services.beneficiary_change_status(beneficiary=big, action="activate", by=clerk_a)
    moves = [(entry.data["from"], entry.data["to"], entry.data["reason"])
             for entry in entries(big, "mizani.beneficiary_status")]
    assert moves == [("POTENTIAL", "ACTIVE", ""), ("ACTIVE", "SUSPENDED", "Missed visits"),
                     ("SUSPENDED", "ACTIVE", ""), ("ACTIVE", "GRADUATED", "Out of poverty")]


def test_a_household_rejected_by_mistake_is_enrolled_again_under_the_household_permission(
        plan, beneficiaries, clerk_a, geo):
    rejected = services.beneficiary_change_status(beneficiary=beneficiaries["TWO-A"], action="reject",
                                                  reason="Moved away", by=clerk_a)
    person_only = with_permission(UserFactory(role="Viewer", locations=[geo.district_a]), "add_beneficiary")

    with pytest.raises(PermissionDenied, match="enrol households in plans"):
        services.beneficiary_reenrol(beneficiary=rejected, reason="They never moved", by=person_only)
    again = services.beneficiary_reenrol(beneficiary=rejected, reason="They never moved", by=clerk_a)

    assert sorted(HouseholdBeneficiary.objects.filter(household=rejected.household).values_list("status", flat=True)
                  ) == [BeneficiaryStatus.POTENTIAL, BeneficiaryStatus.REJECTED]
    assert live_count(plan) == 3 and again.status_changed_by == clerk_a  # BIG-A, BIG-B and TWO-A again
    assert [(entry.data["from"], entry.data["to"], entry.data["reason"])
            for entry in entries(again, "mizani.beneficiary_status")] == [("REJECTED", "POTENTIAL", "They never moved")]


@pytest.mark.usefixtures("beneficiary_approval_off")
def test_changing_a_household_beneficiary_needs_the_household_permission(plan, beneficiaries, geo):
    person_only = with_permission(UserFactory(role="Viewer", locations=[geo.district_a]), "change_beneficiary")
    big = beneficiaries["BIG-A"]

    with pytest.raises(PermissionDenied, match="change household beneficiaries"):
        services.beneficiary_change_status(beneficiary=big, action="activate", by=person_only)
    response = client_for(person_only).post(reverse("plans_householdbeneficiary:change_status", args=[big.pk]),
                                            {"action": "activate"}, follow=True)
    page = response.content.decode()
    assert "Your role does not allow you to change household beneficiaries." in page
    assert "change_householdbeneficiary" not in page

    allowed = with_permission(person_only, "change_householdbeneficiary")
    client_for(allowed).post(reverse("plans_householdbeneficiary:change_status", args=[big.pk]),
                             {"action": "activate"})
    assert HouseholdBeneficiary.objects.get(pk=big.pk).status == BeneficiaryStatus.ACTIVE


@pytest.mark.usefixtures("beneficiary_approval_off")
def test_the_status_page_action_moves_a_household_beneficiary(plan, beneficiaries, clerk_a):
    big = beneficiaries["BIG-A"]
    url = reverse("plans_householdbeneficiary:change_status", args=[big.pk])
    client = client_for(clerk_a)

    client.post(url, {"action": "activate"})
    refused_without_reason = client.post(url, {"action": "suspend", "reason": ""}, follow=True)
    assert "Say why" in refused_without_reason.content.decode()
    assert HouseholdBeneficiary.objects.get(pk=big.pk).status == BeneficiaryStatus.ACTIVE
    response = client.post(url, {"action": "suspend", "reason": "No school attendance"})

    assert response.status_code == 302
    assert response["Location"] == reverse("plans_householdbeneficiary:inspect", args=[big.pk])
    big.refresh_from_db()
    assert (big.status, big.reason) == (BeneficiaryStatus.SUSPENDED, "No school attendance")


# --- pages --------------------------------------------------------------------------------------


def test_the_household_record_page_lists_its_plans(plan, households, beneficiaries, clerk_a):
    other = BenefitPlan.objects.create(code="HH2", name="Water grant", plan_type=PlanType.HOUSEHOLD, status="ACTIVE")
    services.enrolment_execute(plan=other, rule="household_size == 3", target_status="ACTIVE", by=clerk_a)
    big = beneficiaries["BIG-A"]

    page = client_for(clerk_a).get(reverse("registry_household:inspect", args=[big.household.pk]))

    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-testid="person-plans"' in html
    water = HouseholdBeneficiary.objects.get(plan=other)
    for beneficiary, name, status in ((big, "Household grant", "Potential"), (water, "Water grant", "Active")):
        link = reverse("plans_householdbeneficiary:inspect", args=[beneficiary.pk])
        assert f'<td><a href="{link}">{name}</a></td><td>{status}</td>' in html
    small = client_for(clerk_a).get(reverse("registry_household:inspect", args=[households["SMALL-A"].pk]))
    assert "Not enrolled in any plan." in small.content.decode()


def test_household_beneficiary_lists_and_pages_are_limited_to_the_users_locations(plan, beneficiaries, clerk_a):
    own, others = beneficiaries["BIG-A"], beneficiaries["BIG-B"]
    client = client_for(clerk_a)

    listing = client.get(reverse("plans_householdbeneficiary:index"))
    assert listing.status_code == 200
    assert {row.household.code for row in listing.context["object_list"]} == {"BIG-A", "TWO-A"}
    filtered = client.get(reverse("plans_householdbeneficiary:index"), {"plan": plan.pk})
    assert {row.household.code for row in filtered.context["object_list"]} == {"BIG-A", "TWO-A"}
    assert client.get(reverse("plans_householdbeneficiary:inspect", args=[own.pk])).status_code == 200

    for name in ("inspect", "history", "edit_data"):
        assert client.get(reverse(f"plans_householdbeneficiary:{name}", args=[others.pk])).status_code == 404, name
    assert client.post(reverse("plans_householdbeneficiary:change_status", args=[others.pk]),
                       {"action": "activate"}).status_code == 404
    assert client.post(reverse("plans_householdbeneficiary:edit_data", args=[others.pk]), {}).status_code == 404
    with pytest.raises(HouseholdBeneficiary.DoesNotExist):
        services.beneficiary_change_status(beneficiary=others, action="activate", by=clerk_a)
    assert HouseholdBeneficiary.objects.get(pk=others.pk).status == BeneficiaryStatus.POTENTIAL
    # An individual's id is not a household beneficiary's: the two lists do not mix.
    assert client.get(reverse("plans_beneficiary:inspect", args=[own.pk])).status_code == 404


def test_the_household_beneficiary_page_shows_the_status_actions(plan, beneficiaries, clerk_a, viewer_a):
    big = beneficiaries["BIG-A"]
    url = reverse("plans_householdbeneficiary:inspect", args=[big.pk])

    page = client_for(clerk_a).get(url)
    viewed = client_for(viewer_a).get(url)

    assert page.context["transitions"] == ["activate", "reject"]
    assert page.context["can_change"] is True
    assert page.context["subject_url"] == reverse("registry_household:inspect", args=[big.household.pk])
    assert viewed.status_code == 200 and viewed.context["can_change"] is False
    attempt = client_for(viewer_a).post(reverse("plans_householdbeneficiary:change_status", args=[big.pk]),
                                        {"action": "activate"}, follow=True)
    assert "Your role does not allow you to change household beneficiaries." in attempt.content.decode()
    assert HouseholdBeneficiary.objects.get(pk=big.pk).status == BeneficiaryStatus.POTENTIAL


def test_the_household_list_of_a_plan_checks_its_criteria_on_the_household_and_plan_data(plan, beneficiaries,
                                                                                         clerk_a):
    PlanField.objects.create(plan=plan, name="visits", label="Visits", field_type="integer")
    text = "household_size >= 3 and visits >= 1"
    plan.criteria = {"POTENTIAL": {"text": text, "rule": to_json(services.criteria_node(
        text, candidate_catalogue(plan)))}}
    BenefitPlan.objects.filter(pk=plan.pk).update(criteria=plan.criteria)
    services.beneficiary_update_attributes(beneficiary=beneficiaries["BIG-A"], attributes={"visits": 2}, by=clerk_a)
    services.beneficiary_update_attributes(beneficiary=beneficiaries["TWO-A"], attributes={"visits": 5}, by=clerk_a)

    listing = client_for(clerk_a).get(reverse("plans_householdbeneficiary:index"), {"plan": plan.pk})

    assert {row.household.code: row.meets_criteria for row in listing.context["object_list"]} == {
        "BIG-A": True, "TWO-A": False}  # TWO-A has 2 members


# --- enrolling into a status applies the plan's rule for that status ------------------------------

POTENTIAL_RULE = "elderly_in_household >= 1"
ACTIVE_RULE = "elderly_in_household >= 1 and monthly_income < 150000"


@pytest.fixture
def elderly_grant(geo, member_roles):
    """A household plan whose rule for active beneficiaries is narrower than for potential ones, and
    in district A: OLD-POOR (an elderly member, income 100000), OLD-RICH (an elderly member, income
    200000) and YOUNG (no elderly member)."""
    RegistryFieldFactory(name="monthly_income", field_type="decimal", target=RegistryField.Target.HOUSEHOLD)
    plan = BenefitPlan.objects.create(code="EG", name="Elderly grant", plan_type=PlanType.HOUSEHOLD, status="ACTIVE")
    catalogue = candidate_catalogue(plan)
    plan.criteria = {status: {"text": text, "rule": to_json(services.criteria_node(text, catalogue))}
                     for status, text in (("POTENTIAL", POTENTIAL_RULE), ("ACTIVE", ACTIVE_RULE))}
    BenefitPlan.objects.filter(pk=plan.pk).update(criteria=plan.criteria)
    for code, born, income in (("OLD-POOR", 1940, 100000), ("OLD-RICH", 1945, 200000), ("YOUNG", 1990, 50000)):
        house = HouseholdFactory(code=code, location=geo.village_a, attributes={"monthly_income": income})
        MembershipFactory(household=house, role=member_roles["HEAD"],
                          individual=IndividualFactory(location=geo.village_a, dob=datetime.date(born, 1, 1)))
    return plan


def test_enrolling_as_active_applies_the_plans_rule_for_active_beneficiaries(elderly_grant, clerk_a):
    """QA: the rule box held the rule for potential ones, "Enrol as" was switched to active: the
    households above the income limit were enrolled active (and paid) though they fail its rule."""
    preview = services.enrolment_preview(plan=elderly_grant, rule=POTENTIAL_RULE, target_status="ACTIVE",
                                         by=clerk_a)

    assert (preview["matching"], preview["would_add"]) == (1, 1)
    assert [row["name"].split(",")[0] for row in preview["sample"]] == ["household OLD-POOR"]
    assert preview["sample_fields"][-1] == "Monthly income"  # the plan's rule is read too: shown
    assert preview["plan_rule"] == f"The plan's rule for active beneficiaries also applies: {ACTIVE_RULE}"

    added = services.enrolment_execute(plan=elderly_grant, rule=POTENTIAL_RULE, target_status="ACTIVE", by=clerk_a)

    assert added == 1 and enrolled(elderly_grant) == {"OLD-POOR"}


def test_enrolling_as_potential_applies_the_plans_rule_for_potential_beneficiaries(elderly_grant, clerk_a):
    assert services.enrolment_execute(plan=elderly_grant, rule="household_size >= 1", target_status="POTENTIAL",
                                      by=clerk_a) == 2
    assert enrolled(elderly_grant) == {"OLD-POOR", "OLD-RICH"}  # YOUNG fails the plan's rule for potential ones


def test_a_plan_without_a_rule_for_the_status_enrols_by_the_typed_rule_alone(elderly_grant, clerk_a):
    BenefitPlan.objects.filter(pk=elderly_grant.pk).update(criteria={})
    plan = BenefitPlan.objects.get(pk=elderly_grant.pk)

    preview = services.enrolment_preview(plan=plan, rule="household_size >= 1", target_status="ACTIVE", by=clerk_a)

    assert preview["would_add"] == 3 and preview["plan_rule"] == ""


def test_a_plan_rule_for_the_status_that_no_longer_checks_refuses_the_enrolment(elderly_grant, clerk_a):
    RegistryField.objects.filter(name="monthly_income").delete()

    with pytest.raises(ValidationError, match="The plan's rule for active beneficiaries no longer checks"):
        services.enrolment_execute(plan=elderly_grant, rule=POTENTIAL_RULE, target_status="ACTIVE", by=clerk_a)
    assert not HouseholdBeneficiary.objects.exists()


def test_the_enrolment_request_shows_the_rules_and_the_area_and_enrols_by_both_rules(
        elderly_grant, clerk_a, geo, django_capture_on_commit_callbacks):
    prepared = prepare_enrol({"plan": elderly_grant.pk, "rule": POTENTIAL_RULE, "text": POTENTIAL_RULE,
                              "target_status": "ACTIVE"}, clerk_a)

    assert prepared.summary["title"] == f"Enrol 1 as active in {elderly_grant}"
    assert list(prepared.summary["counts"].items())[:4] == [
        ("Criteria typed", POTENTIAL_RULE),
        ("The plan's rule for active beneficiaries (also applies)", ACTIVE_RULE),
        ("Locations covered", "Region A › District A (and the locations within)"),
        ("Matching the criteria", 1)]

    checker = UserFactory(role="Checker", locations=[geo.district_a])
    definition = WorkflowDefinition.objects.create(operation="plans.enrol")
    WorkflowStep.objects.create(definition=definition, group=Group.objects.get(name="Checker"), sort_order=0)
    request = approval_submit(operation="plans.enrol", by=clerk_a, payload={
        "plan": elderly_grant.pk, "rule": POTENTIAL_RULE, "text": POTENTIAL_RULE, "target_status": "ACTIVE"})
    with django_capture_on_commit_callbacks(execute=True):
        approval_decide(request=request, verdict="approve", by=checker)

    assert ApprovalRequest.objects.get(pk=request.pk).status == RequestStatus.EXECUTED
    assert enrolled(elderly_grant) == {"OLD-POOR"}


def test_a_national_makers_enrolment_request_covers_all_locations(elderly_grant, national_clerk):
    counts = prepare_enrol({"plan": elderly_grant.pk, "rule": POTENTIAL_RULE, "target_status": "POTENTIAL"},
                           national_clerk).summary["counts"]

    assert counts["Locations covered"] == "All locations"
    assert counts["The plan's rule for potential beneficiaries (also applies)"] == POTENTIAL_RULE


def test_the_enrol_page_prefills_the_rule_of_the_chosen_status_and_names_the_plans_rule(elderly_grant, clerk_a):
    url = reverse("plans_plan:enrol", args=[elderly_grant.pk])
    client = client_for(clerk_a)

    opened = client.get(url)
    assert opened.context["form"]["rule"].value() == POTENTIAL_RULE
    assert opened.context["plan_rules"] == [("potential", POTENTIAL_RULE), ("active", ACTIVE_RULE)]
    opened_as_active = client.get(url, {"target_status": "ACTIVE"}).context["form"]
    assert (opened_as_active["target_status"].value(), opened_as_active["rule"].value()) == ("ACTIVE", ACTIVE_RULE)
    assert "e.g. household_size >= 3 and head_age >= 60" in opened_as_active["rule"].help_text

    page = client.post(url, {"target_status": "ACTIVE", "rule": POTENTIAL_RULE, "submit": "preview"})

    assert page.context["preview"]["would_add"] == 1
    assert ("The plan&#x27;s rule for active beneficiaries also applies: elderly_in_household &gt;= 1 and "
            "monthly_income &lt; 150000") in page.content.decode()
