"""Plans in the admin: define a plan and its criteria, preview and submit an enrolment, approve it,
suspend and reinstate a beneficiary, and see the plan on the person's record."""

import datetime
import json
import re
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from schemes.plans import services
from schemes.plans.models import Beneficiary, BeneficiaryStatus, BenefitPlan, PlanField
from tests.factories import IndividualFactory, RegistryFieldFactory, UserFactory
from workflows.models import ApprovalRequest, RequestStatus, WorkflowDefinition, WorkflowStep
from workflows.services import approval_decide

pytestmark = pytest.mark.django_db


def client_for(user):
    client = Client()
    client.force_login(user)
    return client


def plan_form(**overrides):
    return {"code": "CG", "name": "Child grant", "plan_type": "INDIVIDUAL", "currency": "TZS",
            "description": "", "institution": "", "max_beneficiaries": "100", "criteria_potential": "children >= 2",
            "criteria_active": "", "score_formula_text": "", "score_cutoff": "",
            **formset("fields"), **formset("cutoffs"), **overrides}


def formset(prefix, total=0, initial=0):
    return {f"{prefix}-TOTAL_FORMS": str(total), f"{prefix}-INITIAL_FORMS": str(initial),
            f"{prefix}-MIN_NUM_FORMS": "0", f"{prefix}-MAX_NUM_FORMS": "1000"}


@pytest.fixture
def setting(geo):
    RegistryFieldFactory(name="children", field_type="integer")
    designer = UserFactory(role="Scheme administrator", national=True)
    officer = UserFactory(role="Clerk", locations=[geo.district_a])
    checker = UserFactory(role="Checker", locations=[geo.district_a])
    definition = WorkflowDefinition.objects.create(operation="plans.enrol")
    WorkflowStep.objects.create(definition=definition, group=Group.objects.get(name="Checker"), sort_order=0)
    amina = IndividualFactory(first_name="Amina", location=geo.village_a, attributes={"children": 3},
                              dob=datetime.date(1990, 1, 1))
    IndividualFactory(first_name="Baraka", location=geo.village_a, attributes={"children": 1})
    IndividualFactory(first_name="Dotto", location=geo.village_b, attributes={"children": 4})
    return designer, officer, checker, amina


def test_a_criteria_mistake_is_refused_with_its_position(setting):
    designer = setting[0]

    response = client_for(designer).post(reverse("plans_plan:add"), plan_form(criteria_potential="children >= 'two'"))

    assert response.status_code == 200
    assert "compares a number with text" in str(response.context["form"].errors["criteria_potential"])
    assert not BenefitPlan.objects.exists()


@pytest.mark.usefixtures("beneficiary_approval_off")
def test_from_plan_to_enrolled_beneficiaries_and_back(setting, django_capture_on_commit_callbacks):
    designer, officer, checker, amina = setting
    client_for(designer).post(reverse("plans_plan:add"), plan_form())
    plan = BenefitPlan.objects.get(code="CG")
    assert plan.criteria_text("POTENTIAL") == "children >= 2"
    client_for(designer).post(reverse("plans_plan:change_status", args=[plan.pk]), {"action": "activate"})

    enrol_url = reverse("plans_plan:enrol", args=[plan.pk])
    preview = client_for(officer).post(enrol_url, {"target_status": "POTENTIAL", "rule": "children >= 2",
                                                   "submit": "preview"})
    assert preview.context["preview"]["would_add"] == 1  # Dotto is in district B
    client_for(officer).post(enrol_url, {"target_status": "POTENTIAL", "rule": "children >= 2", "submit": "approval"})
    request = ApprovalRequest.objects.get(operation="plans.enrol")
    assert not Beneficiary.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        client_for(checker).post(reverse("workflows_approvals:decide", args=[request.pk]), {"verdict": "approve"})
    assert ApprovalRequest.objects.get(pk=request.pk).status == RequestStatus.EXECUTED
    beneficiary = Beneficiary.objects.get()
    assert beneficiary.individual == amina

    change = reverse("plans_beneficiary:change_status", args=[beneficiary.pk])
    client = client_for(officer)
    client.post(change, {"action": "activate"})
    refused = client.post(change, {"action": "suspend", "reason": ""}, follow=True)
    assert "Say why" in refused.content.decode()
    client.post(change, {"action": "suspend", "reason": "Missed health visits"})
    assert Beneficiary.objects.get().status == BeneficiaryStatus.SUSPENDED
    client.post(change, {"action": "reinstate"})
    assert Beneficiary.objects.get().status == BeneficiaryStatus.ACTIVE

    record = client.get(reverse("registry_individual:inspect", args=[amina.pk])).content.decode()
    assert "Child grant" in record and "Active" in record


def test_a_rejection_made_by_mistake_is_undone_from_the_record_page_after_a_confirmation(setting):
    """The clerk sees the rejection and its reason before submitting; the enrolment checkers decide."""
    designer, officer, checker, amina = setting
    plan = BenefitPlan.objects.create(code="CG", name="Child grant", status="ACTIVE")
    services.enrolment_execute(plan=plan, rule="first_name == 'Amina'", target_status="POTENTIAL", by=officer)
    rejected = services.beneficiary_change_status(beneficiary=Beneficiary.objects.get(), action="reject",
                                                  reason="Duplicate application", by=officer)
    client = client_for(officer)

    record = client.get(reverse("plans_beneficiary:inspect", args=[rejected.pk])).content.decode()
    confirm_url = reverse("plans_plan:enrol", args=[plan.pk]) + f"?reenrol={rejected.pk}"
    assert f'href="{confirm_url}"' in record
    confirmation = client.get(confirm_url)
    assert "Rejected on" in confirmation.content.decode() and "“Duplicate application”" in (
        confirmation.content.decode())
    refused = client.post(confirm_url, {"reason": ""})
    assert refused.status_code == 200 and "reason" in refused.context["form"].errors
    response = client.post(confirm_url, {"reason": "Amina is no duplicate: two women share her name"})

    request = ApprovalRequest.objects.get(operation="plans.enrol")
    assert response.status_code == 302 and response["Location"] == reverse("workflows_approvals:inspect",
                                                                           args=[request.pk])
    assert request.payload["reenrol"] == rejected.pk and Beneficiary.objects.count() == 1


def test_enrolling_again_is_not_offered_to_a_user_who_may_not_enrol(setting, viewer_a):
    designer, officer, checker, amina = setting
    plan = BenefitPlan.objects.create(code="CG", name="Child grant", status="ACTIVE")
    services.enrolment_execute(plan=plan, rule="first_name == 'Amina'", target_status="POTENTIAL", by=officer)
    rejected = services.beneficiary_change_status(beneficiary=Beneficiary.objects.get(), action="reject",
                                                  reason="Duplicate application", by=officer)
    client = client_for(viewer_a)
    confirm_url = reverse("plans_plan:enrol", args=[plan.pk]) + f"?reenrol={rejected.pk}"

    assert "reenrol" not in client.get(reverse("plans_beneficiary:inspect", args=[rejected.pk])).content.decode()
    response = client.get(confirm_url, follow=True)
    assert "Your role does not allow you to enrol people in plans." in response.content.decode()
    assert "plans.add_beneficiary" not in response.content.decode()
    assert client.post(confirm_url, {"reason": "Mistake"}).status_code == 302
    assert client.get(reverse("plans_plan:enrol", args=[plan.pk]) + "?reenrol=x").status_code == 404
    assert not ApprovalRequest.objects.exists() and Beneficiary.objects.count() == 1


def test_the_beneficiary_list_shows_the_newest_enrolled_first(setting):
    """Newest recorded first, by the key read off its index at any size (sorting a million enrolments by
    date for each page took 0.4 s); the Enrolled column still sorts by date."""
    designer, officer, checker, amina = setting
    plan = BenefitPlan.objects.create(code="CG", name="Child grant", status="ACTIVE")
    first, second, third = (Beneficiary.objects.create(
        plan=plan, individual=IndividualFactory(location=amina.location),
        # Recorded later, enrolled earlier (e.g. an import of past enrolments).
        enrolled_at=timezone.now() - datetime.timedelta(days=n), status_changed_at=timezone.now())
        for n in range(3))
    client = client_for(officer)

    newest_first = client.get(reverse("plans_beneficiary:index")).context["object_list"]
    by_enrolment = client.get(reverse("plans_beneficiary:index"), {"ordering": "-enrolled_at"}).context["object_list"]

    assert [row.pk for row in newest_first] == [third.pk, second.pk, first.pk]
    assert [row.pk for row in by_enrolment] == [first.pk, second.pk, third.pk]


def test_the_beneficiary_list_of_a_plan_shows_who_still_meets_its_criteria(setting):
    designer, officer, checker, amina = setting
    plan = BenefitPlan.objects.create(code="CG", name="Child grant", status="ACTIVE")
    services.enrolment_execute(plan=plan, rule="children >= 0", target_status="POTENTIAL", by=officer)
    BenefitPlan.objects.filter(pk=plan.pk).update(criteria={  # the plan's rule was narrowed since
        "POTENTIAL": {"text": "children >= 2", "rule": {"binary": ">=", "left": {"field": "children"},
                                                         "right": {"literal": "2", "type": "number"}}}})

    rows = client_for(officer).get(reverse("plans_beneficiary:index"), {"plan": plan.pk}).context["object_list"]

    assert {row.individual.first_name: row.meets_criteria for row in rows} == {"Amina": True, "Baraka": False}


def test_the_enrolment_preview_shows_who_would_be_added_with_location_and_values(setting, geo):
    officer, amina = setting[1], setting[3]
    plan = BenefitPlan.objects.create(code="CG", name="Child grant", status="ACTIVE")
    IndividualFactory(first_name="<img src=x onerror=alert(1)>", location=geo.village_a, attributes={"children": 5})

    page = client_for(officer).post(reverse("plans_plan:enrol", args=[plan.pk]), {
        "target_status": "POTENTIAL", "rule": "children >= 2", "submit": "preview"}).content.decode()

    sample = page[page.index('data-testid="sample"'):]
    assert "<th>Person</th><th>Location</th><th>Children</th>" in sample
    assert f"<td>{amina} (id {amina.pk})</td><td>{geo.village_a.name}</td><td>3</td>" in sample
    assert "&lt;img src=x onerror=alert(1)&gt;" in sample and "<img src=x" not in sample


# --- activating a plan: confirmed first ------------------------------------------------------------------


def draft_plan(designer):
    client_for(designer).post(reverse("plans_plan:add"), plan_form(**formset("fields", total=1), **{
        "fields-0-name": "grade", "fields-0-label": "Grade", "fields-0-field_type": "integer",
        "fields-0-sort_order": "0", "fields-0-choices": ""}))
    return BenefitPlan.objects.get(code="CG")


def test_activating_is_confirmed_with_what_it_does_and_counts_then_applied(setting):
    designer = setting[0]
    plan = draft_plan(designer)
    url = reverse("plans_plan:change_status", args=[plan.pk])

    page = client_for(designer).get(reverse("plans_plan:inspect", args=[plan.pk])).content.decode()
    assert f'href="{url}?action=activate"' in page and 'value="activate"' not in page  # no one-click activation
    confirmation = client_for(designer).get(url, {"action": "activate"})
    assert confirmation.status_code == 200
    assert confirmation.context["counts"] == {
        "Beneficiary schema fields": 1, "Cut-offs by region": 0,
        "People in your locations meeting its criteria for potential beneficiaries now": "2"}  # Amina, Dotto
    html = confirmation.content.decode()
    assert "opens Child grant (CG) for enrolment" in html and "a checker approves before it applies" in html
    assert 'name="action" value="activate"' in html and reverse("plans_plan:inspect", args=[plan.pk]) in html
    assert BenefitPlan.objects.get(pk=plan.pk).status == "DRAFT"  # the GET changes nothing

    activated = client_for(designer).post(url, {"action": "activate"})

    assert activated.url == reverse("plans_plan:inspect", args=[plan.pk])
    assert BenefitPlan.objects.get(pk=plan.pk).status == "ACTIVE"


def test_the_activation_counts_only_the_users_locations_and_say_when_there_are_no_criteria(setting, geo):
    designer = setting[0]
    plan = draft_plan(designer)
    district_designer = UserFactory(role="Scheme administrator", locations=[geo.district_a])
    url = reverse("plans_plan:change_status", args=[plan.pk])

    counts = client_for(district_designer).get(url, {"action": "activate"}).context["counts"]
    assert counts["People in your locations meeting its criteria for potential beneficiaries now"] == "1"  # Amina
    BenefitPlan.objects.filter(pk=plan.pk).update(criteria={})
    counts = client_for(designer).get(url, {"action": "activate"}).context["counts"]
    assert counts["People in your locations meeting its criteria for potential beneficiaries now"] == "no criteria"


def test_the_activation_page_refuses_an_active_plan_and_a_user_who_may_not_change_plans(setting, geo):
    designer, officer = setting[0], setting[1]
    plan = draft_plan(designer)
    url = reverse("plans_plan:change_status", args=[plan.pk])
    services.plan_activate(plan=plan, by=designer)

    again = client_for(designer).get(url, {"action": "activate"}, follow=True)

    assert "only a draft is activated" in again.content.decode()
    assert again.redirect_chain[-1][0] == reverse("plans_plan:inspect", args=[plan.pk])
    assert client_for(officer).get(url, {"action": "activate"}).status_code in (302, 403)
    assert client_for(designer).get(url).status_code == 405  # no action: nothing to confirm


# --- closing a plan: confirmed, then approved ---------------------------------------------------------


@pytest.fixture
def close_workflow(db):
    definition = WorkflowDefinition.objects.create(operation="plans.close")
    WorkflowStep.objects.create(definition=definition, group=Group.objects.get(name="Checker"), sort_order=0)
    return UserFactory(role="Checker", national=True)


@pytest.fixture
def running_plan(setting):
    """An active plan with one potential (Amina), one active (Baraka) and one suspended (Dotto, district B)."""
    designer = setting[0]
    plan = BenefitPlan.objects.create(code="CG", name="Child grant", status="ACTIVE")
    clerk = UserFactory(role="Clerk", national=True)
    services.enrolment_execute(plan=plan, rule="first_name == 'Amina'", target_status="POTENTIAL", by=clerk)
    services.enrolment_execute(plan=plan, rule="first_name != 'Amina'", target_status="ACTIVE", by=clerk)
    dotto = Beneficiary.objects.get(individual__first_name="Dotto")
    services.beneficiary_change_status(beneficiary=dotto, action="suspend", reason="Visits", by=clerk)
    return designer, plan


def test_closing_is_confirmed_with_what_it_does_then_applied_once_approved(running_plan, close_workflow,
                                                                           django_capture_on_commit_callbacks):
    designer, plan = running_plan
    url = reverse("plans_plan:change_status", args=[plan.pk])

    page = client_for(designer).get(reverse("plans_plan:inspect", args=[plan.pk])).content.decode()
    assert f'href="{url}?action=close"' in page and 'value="close"' not in page  # no one-click closing
    confirmation = client_for(designer).get(url, {"action": "close"})
    assert confirmation.status_code == 200
    assert confirmation.context["counts"] == {
        "Active: graduate": 1, "Suspended: graduate": 1,
        "Potential: rejected (a potential beneficiary cannot graduate)": 1,
        "Graduated or rejected earlier: unchanged": 0}
    assert "Closing needs a checker's approval" in confirmation.content.decode()
    assert BenefitPlan.objects.get(pk=plan.pk).status == "ACTIVE"

    submitted = client_for(designer).post(url, {"action": "close"})

    request = ApprovalRequest.objects.get(operation="plans.close")
    assert submitted.url == reverse("workflows_approvals:inspect", args=[request.pk])
    assert request.summary["title"] == "Close Child grant (CG): 2 beneficiaries graduate, 1 potential rejected"
    assert BenefitPlan.objects.get(pk=plan.pk).status == "ACTIVE"
    with django_capture_on_commit_callbacks(execute=True):
        client_for(close_workflow).post(reverse("workflows_approvals:decide", args=[request.pk]),
                                        {"verdict": "approve"})
    assert ApprovalRequest.objects.get(pk=request.pk).status == RequestStatus.EXECUTED
    assert BenefitPlan.objects.get(pk=plan.pk).status == "CLOSED"
    assert dict(Beneficiary.objects.values_list("individual__first_name", "status")) == {
        "Amina": "REJECTED", "Baraka": "GRADUATED", "Dotto": "GRADUATED"}


def test_a_closing_is_void_if_others_would_leave_than_the_checker_saw(running_plan, close_workflow,
                                                                      django_capture_on_commit_callbacks):
    designer, plan = running_plan
    client_for(designer).post(reverse("plans_plan:change_status", args=[plan.pk]), {"action": "close"})
    request = ApprovalRequest.objects.get(operation="plans.close")
    refused = client_for(designer).post(reverse("plans_plan:change_status", args=[plan.pk]), {"action": "close"},
                                        follow=True)
    assert "already waiting for a decision" in refused.content.decode()
    amina = Beneficiary.objects.get(individual__first_name="Amina")
    services.beneficiary_change_status(beneficiary=amina, action="activate",
                                       by=UserFactory(role="Clerk", national=True))

    with django_capture_on_commit_callbacks(execute=True):
        approval_decide(request=request, verdict="approve", by=close_workflow)

    assert ApprovalRequest.objects.get(pk=request.pk).status == RequestStatus.VOID
    assert BenefitPlan.objects.get(pk=plan.pk).status == "ACTIVE"


def test_closing_is_refused_on_its_page_to_a_district_user(running_plan, geo):
    plan = running_plan[1]
    district_designer = UserFactory(role="Scheme administrator", locations=[geo.district_a])

    response = client_for(district_designer).get(reverse("plans_plan:change_status", args=[plan.pk]),
                                                 {"action": "close"}, follow=True)

    assert "takes national scope" in response.content.decode()
    assert response.redirect_chain[-1][0] == reverse("plans_plan:inspect", args=[plan.pk])


def test_a_district_administrator_is_not_offered_changes_to_an_active_plan_and_is_told_why(running_plan, geo):
    """QA: the page offered a district's scheme administrator Edit, Import a JSON Schema and Close on an
    active plan; each page then refused: changes to an active plan take national scope."""
    designer, plan = running_plan
    district_designer = UserFactory(role="Scheme administrator", locations=[geo.district_a])
    edit, schema_import = (reverse(f"plans_plan:{view}", args=[plan.pk]) for view in ("edit", "schema_import"))
    close = reverse("plans_plan:change_status", args=[plan.pk]) + "?action=close"
    page_url = reverse("plans_plan:inspect", args=[plan.pk])

    district = client_for(district_designer).get(page_url).content.decode()
    national = client_for(designer).get(page_url).content.decode()
    listing = client_for(district_designer).get(reverse("plans_plan:index")).content.decode()

    assert [url for url in (edit, schema_import, close) if f'href="{url}"' in district] == []
    assert services.ACTIVE_PLAN_CHANGE_SCOPE in district and "Closing a plan" in district
    assert f'href="{edit}"' not in listing
    assert [url for url in (edit, schema_import, close) if f'href="{url}"' not in national] == []
    assert 'data-testid="plan-refusal"' not in national
    draft = BenefitPlan.objects.create(code="DR", name="Draft grant")
    draft_page = client_for(district_designer).get(reverse("plans_plan:inspect", args=[draft.pk])).content.decode()
    assert f'href="{reverse("plans_plan:edit", args=[draft.pk])}"' in draft_page  # a draft takes no national scope


# --- validity, codes and names, locations, versions ------------------------------------------------------


def test_the_page_of_a_plan_whose_validity_ended_says_so_and_offers_no_activation(setting):
    designer = setting[0]
    plan = BenefitPlan.objects.create(code="OLD", name="Old plan", valid_to=datetime.date(2020, 12, 31))

    page = client_for(designer).get(reverse("plans_plan:inspect", args=[plan.pk])).content.decode()
    refused = client_for(designer).post(reverse("plans_plan:change_status", args=[plan.pk]), {"action": "activate"},
                                        follow=True).content.decode()

    assert "This plan was valid until 2020-12-31: it can no longer be activated." in page
    assert 'value="activate"' not in page
    assert "valid until 2020-12-31: it can no longer be activated. Extend its validity first" in refused
    assert BenefitPlan.objects.get(pk=plan.pk).status == "DRAFT"


@pytest.mark.parametrize("overrides, field", [({"code": "cg", "name": "Another grant"}, "code"),
                                              ({"code": "CG-2", "name": "CHILD GRANT"}, "name")])
def test_a_code_or_name_taken_in_another_case_is_named_under_its_field(setting, overrides, field):
    designer = setting[0]
    BenefitPlan.objects.create(code="CG", name="Child grant")

    response = client_for(designer).post(reverse("plans_plan:add"), plan_form(**overrides))

    assert response.status_code == 200
    assert response.context["form"].errors[field] == [
        f"Another plan has this {field} ({field}s are compared ignoring upper and lower case)."]
    assert not response.context["form"].non_field_errors()
    assert BenefitPlan.objects.count() == 1


@pytest.fixture
def tree(db):
    """Regions made in the opposite order of their names: by id (the stored path) Zanzibar comes first."""
    from tests.factories import LocationFactory

    zanzibar = LocationFactory(name="Zanzibar")
    arusha = LocationFactory(name="Arusha")
    return {"zanzibar": zanzibar, "arusha": arusha,
            "zanzibar_district": LocationFactory(name="Unguja", parent=zanzibar),
            "arusha_district": LocationFactory(name="Monduli", parent=arusha),
            "arusha_district_2": LocationFactory(name="Karatu", parent=arusha)}


def test_the_cut_off_locations_are_offered_in_the_trees_order_by_name(setting, tree):
    import re

    designer = setting[0]

    page = client_for(designer).get(reverse("plans_plan:add")).content.decode()

    select = re.search(r'name="cutoffs-__prefix__-location".*?</select>', page, re.S).group(0)
    labels = [label for label in re.findall(r"<option[^>]*>([^<]*)</option>", select) if label.strip("-")]
    names = [label for label in labels if label.split(" › ")[0] in ("Arusha", "Zanzibar")]
    assert names == ["Arusha", "Arusha › Karatu", "Arusha › Monduli", "Zanzibar", "Zanzibar › Unguja"]


def test_the_plan_page_lists_cut_offs_in_the_trees_order(setting, tree):
    from schemes.plans.models import PlanCutoff

    designer = setting[0]
    plan = BenefitPlan.objects.create(code="CG", name="Child grant", score_formula={"text": "children",
                                                                                   "rule": {"field": "children"}})
    for location, cutoff in (("zanzibar_district", 1), ("arusha", 2), ("zanzibar", 3), ("arusha_district", 4)):
        PlanCutoff.objects.create(plan=plan, location=tree[location], cutoff=cutoff)

    response = client_for(designer).get(reverse("plans_plan:inspect", args=[plan.pk]))

    assert [(name, int(cutoff)) for name, cutoff in response.context["cutoffs"]] == [
        ("Arusha", 2), ("Arusha › Monduli", 4), ("Zanzibar", 3), ("Zanzibar › Unguja", 1)]


def test_versions_are_numbered_per_plan_with_what_changed(setting):
    designer = setting[0]
    client_for(designer).post(reverse("plans_plan:add"), plan_form())
    plan = BenefitPlan.objects.get(code="CG")
    client_for(designer).post(reverse("plans_plan:edit", args=[plan.pk]),
                              plan_form(name="Child grant II", max_beneficiaries="200"))

    response = client_for(designer).get(reverse("plans_plan:inspect", args=[plan.pk]))

    assert [(version["number"], version["by"], version["changed"]) for version in response.context["versions"]] == [
        (2, designer, "Name, Max beneficiaries"), (1, designer, "Created")]
    page = response.content.decode()
    assert "<td>Version 2</td>" in page and "<td>Version 1</td>" in page
    revision_ids = plan.revisions.values_list("pk", flat=True)
    assert all(f"<td>{pk}</td>" not in page for pk in revision_ids)


# --- counts within the user's locations -----------------------------------------------------------

@pytest.fixture
def plan_in_a(geo):
    """Three live beneficiaries in district A, one graduated; none in district B."""
    plan = BenefitPlan.objects.create(code="KA", name="Kasulu grant", status="ACTIVE", live_beneficiaries=3)
    now = timezone.now()
    for name, status in (("Asha", "ACTIVE"), ("Amani", "POTENTIAL"), ("Aziza", "SUSPENDED"), ("Ali", "GRADUATED")):
        Beneficiary.objects.create(plan=plan, individual=IndividualFactory(first_name=name, location=geo.village_a),
                                   status=status, enrolled_at=now, status_changed_at=now)
    return plan


def test_the_plans_list_counts_live_beneficiaries_in_the_users_locations_only(plan_in_a, clerk_a, clerk_b,
                                                                              national_clerk):
    def live_count(user):
        response = client_for(user).get(reverse("plans_plan:index"))
        return {plan.code: plan.live_count for plan in response.context["object_list"]}

    assert live_count(clerk_b) == {"KA": 0}
    assert live_count(clerk_a) == {"KA": 3}
    assert live_count(national_clerk) == {"KA": 3}
    assert "Live beneficiaries (your locations)" in client_for(clerk_b).get(reverse("plans_plan:index")).content.decode()


def test_the_plan_page_shows_the_plan_wide_count_to_national_users_only(plan_in_a, clerk_b, national_clerk):
    url = reverse("plans_plan:inspect", args=[plan_in_a.pk])

    district = client_for(clerk_b).get(url)
    national = client_for(national_clerk).get(url)

    assert (district.context["live_count"], national.context["live_count"]) == (0, 3)
    assert "all locations" not in district.content.decode() and "Enrolled (all locations)" in national.content.decode()


def test_a_plans_name_in_the_list_opens_its_page_and_its_edit_form_stays_in_the_actions(plan_in_a):
    designer = UserFactory(role="Scheme administrator", national=True)

    page = client_for(designer).get(reverse("plans_plan:index")).content.decode()

    inspect, edit = reverse("plans_plan:inspect", args=[plan_in_a.pk]), reverse("plans_plan:edit", args=[plan_in_a.pk])
    assert re.findall(r'class="title-wrapper">\s*<a href="([^"]+)"', page) == [inspect]
    assert f'href="{edit}"' in page


def test_the_plan_forms_rule_fields_carry_each_plan_types_fields_for_the_type_chosen_on_the_form(setting):
    """static/plans/rules_follow.js gives the builder the chosen type's subject and fields."""
    response = client_for(setting[0]).get(reverse("plans_plan:add"))

    field = response.context["form"]["criteria_potential"]
    subjects = json.loads(re.search(r'data-rules-subjects="([^"]*)"', str(field)).group(1).replace("&quot;", '"'))
    names = {plan_type: {spec["name"] for spec in json.loads(entry["fields"])} for plan_type, entry in subjects.items()}
    assert {plan_type: entry["subject"] for plan_type, entry in subjects.items()} == {
        "INDIVIDUAL": "plan:0.INDIVIDUAL", "HOUSEHOLD": "plan:0.HOUSEHOLD"}
    assert "first_name" in names["INDIVIDUAL"] and "first_name" not in names["HOUSEHOLD"]
    assert "plans/rules_follow.js" in response.content.decode()


# --- the schema on the plan form --------------------------------------------------------------------

def schema_rows(*rows):
    data = formset("fields", total=len(rows))
    for index, (name, field_type, choices) in enumerate(rows):
        data.update({f"fields-{index}-name": name, f"fields-{index}-label": name.capitalize(),
                     f"fields-{index}-field_type": field_type, f"fields-{index}-choices": choices,
                     f"fields-{index}-ORDER": str(index + 1)})
    return data


def test_choices_are_typed_one_per_line_or_with_commas_and_the_fields_keep_their_order(setting):
    designer = setting[0]

    response = client_for(designer).post(reverse("plans_plan:add"), plan_form(**schema_rows(
        ("trade", "choice", "farming, fishing, trading"), ("area", "choice", "coast\r\nlake\r\n"),
        ("zone", "choice", '["north", "south"]'), ("boat", "text", ""))))

    assert response.status_code == 302, response.context["form"].errors
    plan = BenefitPlan.objects.get(code="CG")
    assert [(field.name, field.choices) for field in plan.fields.order_by("sort_order", "name")] == [
        ("trade", ["farming", "fishing", "trading"]), ("area", ["coast", "lake"]), ("zone", ["north", "south"]),
        ("boat", [])]
    edit = client_for(designer).get(reverse("plans_plan:edit", args=[plan.pk])).content.decode()
    assert "farming\nfishing\ntrading</textarea>" in edit


def test_a_household_plans_rule_help_gives_an_example_of_household_fields(setting):
    """QA: a household plan's help said "e.g. age >= 18 and income < 50000": it has neither field."""
    designer = setting[0]
    plan = BenefitPlan.objects.create(code="EG", name="Elderly grant", plan_type="HOUSEHOLD")

    form = client_for(designer).get(reverse("plans_plan:edit", args=[plan.pk])).context["form"]

    for name in ("criteria_potential", "criteria_active"):
        help_text = form.fields[name].help_text
        assert "household_size >= 3 and head_age >= 60" in help_text
        assert "age >= 18" not in help_text and "income" not in help_text
    assert "income" not in form.fields["score_formula_text"].help_text


def test_the_plan_page_shows_the_ceiling_as_money_and_the_form_whole_bounds(setting):
    """QA: "Ceiling 100000.00 TZS"; bounds of a whole-number field read "1.0000" and "10.0000"."""
    designer = setting[0]
    plan = BenefitPlan.objects.create(code="EG", name="Elderly grant", currency="TZS",
                                      ceiling_per_beneficiary=Decimal("100000"))
    PlanField.objects.create(plan=plan, name="members", label="Members", field_type="integer",
                             min_value=Decimal("1"), max_value=Decimal("10"))
    PlanField.objects.create(plan=plan, name="share", label="Share", field_type="decimal", min_value=Decimal("0.25"))
    client = client_for(designer)

    page = client.get(reverse("plans_plan:inspect", args=[plan.pk])).content.decode()
    edit = client.get(reverse("plans_plan:edit", args=[plan.pk])).content.decode()

    assert "<dt>Ceiling</dt><dd>100,000.00 TZS</dd>" in page
    assert 'name="fields-0-min_value" value="1"' in edit and 'name="fields-0-max_value" value="10"' in edit
    assert 'name="fields-1-min_value" value="0.25"' in edit


def test_the_closing_confirmation_lists_the_plans_payrolls_still_open(running_plan):
    """Closing makes the plan's undecided payrolls unpayable: the maker sees them before submitting."""
    from schemes.payments import services as payment_services
    from schemes.payments.models import Payroll, PayrollStatus

    designer, plan = running_plan
    superuser = UserFactory(is_superuser=True, is_staff=True, national=True)
    payment_plan = payment_services.payment_plan_create(fields={
        "code": "CG-PAY", "name": "Child grant payments", "benefit_plan": plan, "formula": "100", "periodicity": 1,
        "currency": "TZS", "target_statuses": ["ACTIVE"]}, by=superuser)
    january, february, march = payment_services.cycle_schedule_generate(
        prefix="CG", first_start=datetime.date(2025, 1, 1), periodicity=1, count=3, by=superuser)
    for name, cycle, status in (("CG January", january, PayrollStatus.APPROVED),
                                ("CG February", february, PayrollStatus.GENERATED),
                                ("CG March", march, PayrollStatus.PENDING_APPROVAL)):
        Payroll.objects.create(name=name, payment_plan=payment_plan, cycle=cycle, status=status, line_count=0,
                               total=0, seal_hash="sealed")  # sealed as a generated payroll is

    confirmation = client_for(designer).get(reverse("plans_plan:change_status", args=[plan.pk]), {"action": "close"})

    assert [(payroll.name, standing) for payroll, standing in confirmation.context["payrolls_left_open"]] == [
        ("CG February", "is still to be submitted for approval"), ("CG March", "is waiting for approval")]
    assert "once the plan is closed they can no longer be paid" in confirmation.content.decode()


@pytest.mark.parametrize("role", ["Scheme administrator", "Manager", "Viewer"])
def test_the_enrol_page_is_refused_when_it_opens_to_a_user_who_may_not_enrol(role, geo):
    plan = BenefitPlan.objects.create(code="CG", name="Child grant", status="ACTIVE")
    user = UserFactory(role=role, locations=[geo.district_a])
    url = reverse("plans_plan:enrol", args=[plan.pk])

    opened = client_for(user).get(url)
    previewed = client_for(user).post(url, {"target_status": "POTENTIAL", "rule": "age >= 18", "submit": "preview"},
                                      follow=True)

    assert opened.status_code == 403 or (opened.status_code == 302 and opened["Location"] == reverse("wagtailadmin_home"))
    assert "plans/enrol.html" not in [template.name for template in previewed.templates]
    assert "plans.add_beneficiary" not in previewed.content.decode()
    assert not ApprovalRequest.objects.exists()


def test_the_beneficiary_list_of_a_plan_filters_on_who_meets_the_criteria_of_their_status(setting):
    designer, officer, checker, amina = setting
    plan = BenefitPlan.objects.create(code="CG", name="Child grant", status="ACTIVE")
    services.enrolment_execute(plan=plan, rule="children >= 0", target_status="POTENTIAL", by=officer)
    national = UserFactory(role="Clerk", national=True)
    services.enrolment_execute(plan=plan, rule="children >= 0", target_status="ACTIVE", by=national)  # Dotto
    BenefitPlan.objects.filter(pk=plan.pk).update(criteria={  # none for active beneficiaries: Dotto is neither
        "POTENTIAL": {"text": "children >= 2", "rule": {"binary": ">=", "left": {"field": "children"},
                                                         "right": {"literal": "2", "type": "number"}}}})
    client = client_for(national)

    def names(**filters):
        rows = client.get(reverse("plans_beneficiary:index"), {"plan": plan.pk, **filters}).context["object_list"]
        return sorted(row.individual.first_name for row in rows)

    assert names() == ["Amina", "Baraka", "Dotto"]
    assert names(meets="yes") == ["Amina"]
    assert names(meets="no") == ["Baraka"]
    assert "Meets the criteria of their status" in client.get(
        reverse("plans_beneficiary:index"), {"plan": plan.pk}).content.decode()
    assert "meets" not in client.get(reverse("plans_beneficiary:index")).context["filters"].form.fields
