"""The approvals inbox and the job pages, through the admin as clerks and checkers use them."""

import dataclasses
from unittest.mock import Mock

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from schemes.registry.models import Individual
from tests.factories import IndividualFactory, UserFactory
from workflows import operations, services
from workflows.models import ApprovalRequest, Decision, Job, JobStatus, RequestStatus, WorkflowDefinition
from workflows.operations import get_operation

from .conftest import CHANGE_INDIVIDUAL, change_payload

pytestmark = pytest.mark.django_db


def client_for(user):
    client = Client()
    client.force_login(user)
    return client


def body(response):
    return response.content.decode()


@pytest.fixture
def submitted(clerk_a, checker_1, individual, change_workflow):
    return services.approval_submit(operation=CHANGE_INDIVIDUAL,
                                    payload=change_payload(individual, first_name="Changed"), by=clerk_a)


def test_editing_a_person_under_a_workflow_submits_a_request_and_changes_nothing(clerk_a, checker_1, individual,
                                                                                 change_workflow):
    client = client_for(clerk_a)
    form = client.get(reverse("registry_individual:edit", args=[individual.pk])).context["form"]
    data = {name: "" if form[name].value() is None else form[name].value() for name in form.fields}
    data.update(first_name="Changed", dob=individual.dob.isoformat(), location=individual.location_id)

    response = client.post(reverse("registry_individual:edit", args=[individual.pk]), data)

    request = ApprovalRequest.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("workflows_approvals:inspect", args=[request.pk])
    assert request.status == RequestStatus.PENDING
    assert request.summary["diff"] == [["First name", "Amina", "Changed"]]
    assert Individual.objects.get(pk=individual.pk).first_name == "Amina"


def test_the_maker_sees_no_decision_form_and_a_crafted_post_is_refused(clerk_a, submitted):
    client = client_for(clerk_a)

    page = client.get(reverse("workflows_approvals:inspect", args=[submitted.pk]))
    response = client.post(reverse("workflows_approvals:decide", args=[submitted.pk]),
                           {"verdict": "approve"}, follow=True)

    assert page.context["can_decide"] is False
    assert 'name="verdict"' not in body(page)
    assert "cannot decide on your own request" in body(response)
    assert not Decision.objects.exists()
    assert ApprovalRequest.objects.get(pk=submitted.pk).status == RequestStatus.PENDING


def test_a_checker_approves_from_the_inbox_and_the_change_is_applied(checker_1, submitted, individual,
                                                                   django_capture_on_commit_callbacks):
    client = client_for(checker_1)
    inbox = client.get(reverse("workflows_approvals:index"))
    assert [r.pk for r in inbox.context["requests"]] == [submitted.pk]
    assert "Approvals (1)" in body(client.get(reverse("wagtailadmin_home")))

    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("workflows_approvals:decide", args=[submitted.pk]),
                    {"verdict": "approve", "comment": "Seen the ID card"})

    assert ApprovalRequest.objects.get(pk=submitted.pk).status == RequestStatus.EXECUTED
    assert Individual.objects.get(pk=individual.pk).first_name == "Changed"
    assert Job.objects.get().status == JobStatus.SUCCEEDED
    assert list(client.get(reverse("workflows_approvals:index")).context["requests"]) == []


def test_rejecting_needs_a_reason_and_applies_nothing(checker_1, submitted, individual):
    client = client_for(checker_1)

    without = client.post(reverse("workflows_approvals:decide", args=[submitted.pk]),
                          {"verdict": "reject", "comment": " "}, follow=True)
    client.post(reverse("workflows_approvals:decide", args=[submitted.pk]),
                {"verdict": "reject", "comment": "Wrong person"})

    assert "Say why" in body(without)
    request = ApprovalRequest.objects.get(pk=submitted.pk)
    assert (request.status, request.reason) == (RequestStatus.REJECTED, "Wrong person")
    assert Individual.objects.get(pk=individual.pk).first_name == "Amina"


def test_outsiders_neither_see_nor_decide(geo, submitted):
    other_district = UserFactory(role="Checker", locations=[geo.district_b])
    not_a_checker = UserFactory(role="Clerk", locations=[geo.district_a])

    for user in (other_district, not_a_checker):
        client = client_for(user)
        assert list(client.get(reverse("workflows_approvals:index")).context["requests"]) == []
        assert client.get(reverse("workflows_approvals:inspect", args=[submitted.pk])).status_code == 404
        assert client.post(reverse("workflows_approvals:decide", args=[submitted.pk]),
                           {"verdict": "approve"}).status_code == 404
    assert not Decision.objects.exists()


def test_the_maker_cancels_and_nobody_else_can(clerk_a, checker_1, submitted):
    client_for(checker_1).post(reverse("workflows_approvals:cancel", args=[submitted.pk]))
    assert ApprovalRequest.objects.get(pk=submitted.pk).status == RequestStatus.PENDING

    client_for(clerk_a).post(reverse("workflows_approvals:cancel", args=[submitted.pk]))
    assert ApprovalRequest.objects.get(pk=submitted.pk).status == RequestStatus.CANCELLED


def test_sensitive_values_in_a_diff_are_masked_for_those_who_may_not_see_them(geo, clerk_a, make_workflow):
    reviewers = Group.objects.create(name="Reviewers")  # may decide, may not see national IDs
    reviewer = UserFactory(role="Viewer", locations=[geo.district_a])
    reviewer.groups.add(reviewers)
    checker = UserFactory(role="Checker", locations=[geo.district_a])
    checker.groups.add(reviewers)
    make_workflow(CHANGE_INDIVIDUAL, [reviewers])
    person = IndividualFactory(location=geo.village_a, national_id="123456789")
    request = services.approval_submit(operation=CHANGE_INDIVIDUAL,
                                       payload=change_payload(person, national_id="987654321"), by=clerk_a)

    masked = body(client_for(reviewer).get(reverse("workflows_approvals:inspect", args=[request.pk])))
    shown = body(client_for(checker).get(reverse("workflows_approvals:inspect", args=[request.pk])))

    assert "987654321" not in masked and "123456789" not in masked and "••••••321" in masked
    assert "987654321" in shown and "123456789" in shown


def test_job_pages_show_progress_only_to_the_starter_who_may_cancel(clerk_a, checker_1, fake_kind, enqueued):
    kind = fake_kind(lambda job, progress: {})
    job = services.job_start(kind=kind, params={}, idempotency_key="view-test", by=clerk_a)

    status = client_for(clerk_a).get(reverse("workflows_jobs:status", args=[job.pk])).json()
    refused = client_for(checker_1).get(reverse("workflows_jobs:status", args=[job.pk]))
    client_for(checker_1).post(reverse("workflows_jobs:cancel", args=[job.pk]))
    assert Job.objects.get(pk=job.pk).status == JobStatus.QUEUED
    client_for(clerk_a).post(reverse("workflows_jobs:cancel", args=[job.pk]))

    assert status == {"status": "QUEUED", "status_label": "Queued", "done": 0, "total": None, "percent": 0,
                      "message": "", "finished": False}
    assert refused.status_code == 404
    assert Job.objects.get(pk=job.pk).status == JobStatus.CANCELLED
    listing = client_for(clerk_a).get(reverse("workflows_jobs:index")).content.decode()
    assert f"A test job #{job.pk}" in listing and kind not in listing  # what it does, not its code name


def test_the_steps_group_is_told_by_email_and_the_maker_is_not(clerk_a, checker_1, individual, change_workflow,
                                                               mailoutbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        request = services.approval_submit(operation=CHANGE_INDIVIDUAL,
                                           payload=change_payload(individual, first_name="Changed"), by=clerk_a)

    [mail] = mailoutbox
    assert mail.to == [checker_1.email]
    assert mail.subject == f"[Mizani] Approval needed: request {request.pk} (Change a registered person)"
    assert individual.first_name not in mail.subject + mail.body  # mailboxes are not scoped
    assert reverse("workflows_approvals:inspect", args=[request.pk]) in mail.body


@pytest.mark.parametrize("outcome, status", [("executed", "applied"), ("rejected", "rejected"),
                                             ("void", "void (the record changed meanwhile)"), ("failed", "failed")])
def test_the_maker_is_told_how_a_request_ended(clerk_a, checker_1, individual, change_workflow, mailoutbox,
                                               django_capture_on_commit_callbacks, monkeypatch, outcome, status):
    with django_capture_on_commit_callbacks(execute=True):
        request = services.approval_submit(operation=CHANGE_INDIVIDUAL,
                                           payload=change_payload(individual, first_name="Changed"), by=clerk_a)
    if outcome == "void":
        Individual.objects.filter(pk=individual.pk).update(last_name="Changed meanwhile", updated_at=timezone.now())
    if outcome == "failed":
        broken = dataclasses.replace(get_operation(CHANGE_INDIVIDUAL), execute=Mock(side_effect=ValidationError("Broken.")))
        monkeypatch.setitem(operations._operations, CHANGE_INDIVIDUAL, broken)
    mailoutbox.clear()

    if outcome == "rejected":
        with django_capture_on_commit_callbacks(execute=True):
            services.approval_decide(request=request, verdict="reject", by=checker_1, comment="Not this one.")
    else:  # the decision's callback starts the job whose callbacks tell the maker
        with django_capture_on_commit_callbacks(execute=True):
            with django_capture_on_commit_callbacks(execute=True):
                services.approval_decide(request=request, verdict="approve", by=checker_1)
        mailoutbox[:] = mailoutbox[:1]  # the outer capture runs the inner one's callbacks again

    [mail] = mailoutbox
    assert mail.to == [clerk_a.email]
    assert mail.subject == f"[Mizani] Your request {request.pk} (Change a registered person): {status}"
    assert {"rejected": "Reason: Not this one.", "failed": "Error: Broken.",
            "void": "Reason: The record changed"}.get(outcome, "Applied.") in mail.body
    assert "Changed" not in mail.subject


def workflow_form(operation, *steps, requires_approval=True):
    """The admin form's POST data of a new workflow with `steps` ((group, rule, count) each)."""
    data = {"operation": operation, "min_total": "0", "description": "",
            "steps-TOTAL_FORMS": str(len(steps)), "steps-INITIAL_FORMS": "0", "steps-MIN_NUM_FORMS": "0",
            "steps-MAX_NUM_FORMS": "1000"}
    if requires_approval:
        data["requires_approval"] = "on"
    for number, (group, rule, count) in enumerate(steps):
        data.update({f"steps-{number}-group": group.pk, f"steps-{number}-rule": rule,
                     f"steps-{number}-count": count or "", f"steps-{number}-ORDER": number + 1,
                     f"steps-{number}-id": "", f"steps-{number}-DELETE": ""})
    return data


ADD_WORKFLOW = "wagtailsnippets_workflows_workflowdefinition:add"


def test_a_scheme_administrator_edits_workflows_in_the_admin(db, checker_group, checker_1):
    admin = UserFactory(role="Scheme administrator", national=True)
    client = client_for(admin)

    listing = client.get(reverse("wagtailsnippets_workflows_workflowdefinition:list"))
    response = client.post(reverse(ADD_WORKFLOW), workflow_form(CHANGE_INDIVIDUAL, (checker_group, "any", None)))

    assert listing.status_code == 200
    assert ">True<" not in listing.content.decode()  # Yes or No, not Python's words
    assert response.status_code == 302
    definition = WorkflowDefinition.objects.get(operation=CHANGE_INDIVIDUAL)
    assert [step.group for step in definition.steps.all()] == [checker_group]
    assert definition.revisions.count() == 1


def test_the_admin_refuses_a_step_its_group_could_never_complete(db, checker_group, checker_1, checker_2):
    """QA: "Undo a merge", Checker (2 members), "a number of members": 5 was saved, and every request
    waited forever."""
    client = client_for(UserFactory(role="Scheme administrator", national=True))

    response = client.post(reverse(ADD_WORKFLOW), workflow_form("registry.unmerge", (checker_group, "count", 5)))

    assert response.status_code == 200
    assert "&#x27;Checker&#x27; has 2 active member(s): this step could never get 5 approvals." in body(response)
    assert not WorkflowDefinition.objects.filter(operation="registry.unmerge").exists()
    assert client.post(reverse(ADD_WORKFLOW), workflow_form("registry.unmerge", (checker_group, "count", 2))
                       ).status_code == 302


def test_the_admin_refuses_steps_needing_more_different_people_than_exist(db, checker_group, checker_1):
    client = client_for(UserFactory(role="Scheme administrator", national=True))
    two_steps = workflow_form("registry.unmerge", (checker_group, "any", None), (checker_group, "any", None))

    response = client.post(reverse(ADD_WORKFLOW), two_steps)

    assert response.status_code == 200
    assert "The 2 steps need 2 approvals, each from a different person" in body(response)
    assert not WorkflowDefinition.objects.filter(operation="registry.unmerge").exists()
    # With approval off the steps are not used: kept aside, they are no reason to refuse.
    two_steps.pop("requires_approval")
    assert client.post(reverse(ADD_WORKFLOW), two_steps).status_code == 302


def test_approval_workflows_have_one_name_in_the_menu_and_on_their_pages(db):
    client = client_for(UserFactory(role="Scheme administrator", national=True))

    home = body(client.get(reverse("wagtailadmin_home")))
    listing = body(client.get(reverse("wagtailsnippets_workflows_workflowdefinition:list")))
    adding = body(client.get(reverse(ADD_WORKFLOW)))

    assert "Approval workflows" in home
    assert "Approval workflows" in listing and "Add approval workflow" in listing
    assert "New: Approval workflow" in adding
    assert not any("orkflow definition" in page for page in (home, listing, adding))


@pytest.mark.parametrize("outcome, heading, columns", [
    ("pending", "What will change", ("Now", "After approval")),
    ("applied", "What changed", ("Before", "After")),
    ("rejected", "What was asked", ("When asked", "Asked")),
    ("cancelled", "What was asked", ("When asked", "Asked")),
])
def test_a_requests_change_is_headed_by_how_the_request_stands(clerk_a, checker_1, submitted, outcome, heading,
                                                               columns, django_capture_on_commit_callbacks):
    if outcome == "applied":
        with django_capture_on_commit_callbacks(execute=True):
            services.approval_decide(request=submitted, verdict="approve", by=checker_1)
    elif outcome == "rejected":
        services.approval_decide(request=submitted, verdict="reject", by=checker_1, comment="Wrong person")
    elif outcome == "cancelled":
        services.approval_cancel(request=submitted, by=clerk_a)

    page = body(client_for(clerk_a).get(reverse("workflows_approvals:inspect", args=[submitted.pk])))

    assert f'data-testid="change-heading">{heading}</h2>' in page
    assert f"<th>{columns[0]}</th><th>{columns[1]}</th>" in page


def test_the_admin_refuses_a_workflow_requiring_approval_without_steps(db, checker_group, checker_1):
    """QA: "Requires approval" on and no step was saved; every clerk's request was then refused at
    submission ("No approval workflow is configured...")."""
    client = client_for(UserFactory(role="Scheme administrator", national=True))
    deleted_step = workflow_form("registry.unmerge", (checker_group, "any", None))
    deleted_step["steps-0-DELETE"] = "on"

    for data in (workflow_form("registry.unmerge"), deleted_step):
        response = client.post(reverse(ADD_WORKFLOW), data)
        assert response.status_code == 200
        assert "&#x27;Requires approval&#x27; is on but the workflow has no steps" in body(response)
    assert not WorkflowDefinition.objects.filter(operation="registry.unmerge").exists()
    # Off, no step is needed: the operation applies at once.
    assert client.post(reverse(ADD_WORKFLOW), workflow_form("registry.unmerge", requires_approval=False)
                       ).status_code == 302


def test_the_admin_refuses_an_amount_band_where_it_means_nothing(db, checker_group, checker_1, fake_operation):
    """QA: a band "from 700" was saved on enrolment (its requests carry no total) and one "from -10"."""
    client = client_for(UserFactory(role="Scheme administrator", national=True))
    with_total, _applied = fake_operation()

    on_enrolment = client.post(reverse(ADD_WORKFLOW), {
        **workflow_form("plans.enrol", (checker_group, "any", None)), "min_total": "700"})
    negative = client.post(reverse(ADD_WORKFLOW), {
        **workflow_form(with_total, (checker_group, "any", None)), "min_total": "-10"})

    assert on_enrolment.status_code == negative.status_code == 200
    assert ("Requests to &#x27;Enrol people in a benefit plan&#x27; carry no total, so an amount band from 700 "
            "would never apply: leave &#x27;From total&#x27; at 0.") in body(on_enrolment)
    assert "&#x27;From total&#x27; cannot be negative (-10)" in body(negative)
    assert not WorkflowDefinition.objects.exists()
    assert client.post(reverse(ADD_WORKFLOW), {
        **workflow_form(with_total, (checker_group, "any", None)), "min_total": "700"}).status_code == 302
    assert WorkflowDefinition.objects.get(operation=with_total).min_total == 700


def stated_request(maker, group, location, **summary):
    return ApprovalRequest.objects.create(
        operation="plans.bulk_status", maker=maker, location=location, waiting_group=group,
        steps=[{"group_id": group.pk, "group": group.name, "rule": "any", "required": 1}],
        summary={"title": "Suspend 3 beneficiaries of Child grant", "diff": [], "counts": {"Selected": 3}, **summary})


def test_the_checker_reads_what_a_request_states_beyond_its_change_escaped(geo, clerk_a, checker_1, checker_group):
    """QA: the reason of a bulk status change (the suspension's, the rejection's...) was stored in the
    request and never shown to the checker who decides it."""
    bulk = stated_request(clerk_a, checker_group, geo.district_a, reason="<img src=x onerror=alert(1)> Visits missed")
    payroll = stated_request(clerk_a, checker_group, geo.district_a, seal="9f2c41d0")
    single = stated_request(clerk_a, checker_group, geo.district_a, reason="Moved away",
                            diff=[["Status", "Active", "Suspended"], ["Reason", "—", "Moved away"]])
    client = client_for(checker_1)

    page = body(client.get(reverse("workflows_approvals:inspect", args=[bulk.pk])))
    assert ('<dt>Reason given</dt><dd data-testid="stated">&lt;img src=x onerror=alert(1)&gt; Visits missed</dd>'
            in page) and "<img src=x" not in page
    page = body(client.get(reverse("workflows_approvals:inspect", args=[payroll.pk])))
    assert '<dt>Seal of the payroll (a hash of its lines)</dt><dd data-testid="stated">9f2c41d0</dd>' in page
    page = body(client.get(reverse("workflows_approvals:inspect", args=[single.pk])))
    assert "Reason given" not in page and page.count("Moved away") == 1  # in the diff, not twice
    services.approval_decide(request=bulk, verdict="reject", by=checker_1, comment="Not <b>all</b> of them")
    page = body(client_for(clerk_a).get(reverse("workflows_approvals:inspect", args=[bulk.pk])))
    assert "<dt>Why it was rejected</dt><dd>Not &lt;b&gt;all&lt;/b&gt; of them</dd>" in page
    assert "Visits missed</dd>" in page
