"""A beneficiary's own history keeps what set-based operations did to it: changes of status in bulk
write one entry per beneficiary (one INSERT ... SELECT, in the same transaction), with the reason and
the approved request that applied it, if any; enrolment by criteria writes one entry on the plan (one
per person would cost more than the enrolment), which each beneficiary's history finds by the instant
it was enrolled at."""

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from wagtail.models import ModelLogEntry

from schemes.plans import selectors, services
from schemes.plans.models import Beneficiary, BeneficiaryStatus, BenefitPlan
from tests.factories import IndividualFactory, UserFactory
from tests.schemes.plans.test_views import client_for
from workflows.models import ApprovalRequest, WorkflowDefinition, WorkflowStep
from workflows.services import approval_decide, approval_submit

pytestmark = pytest.mark.django_db

POTENTIAL, ACTIVE, SUSPENDED, GRADUATED = (BeneficiaryStatus.POTENTIAL, BeneficiaryStatus.ACTIVE,
                                           BeneficiaryStatus.SUSPENDED, BeneficiaryStatus.GRADUATED)


@pytest.fixture
def plan(db):
    return BenefitPlan.objects.create(code="CG", name="Child grant", status="ACTIVE")


@pytest.fixture
def people(geo):
    return [IndividualFactory(first_name=name, location=geo.village_a) for name in ("Asha", "Bahati", "Chiku")]


@pytest.fixture
def checker(geo):
    return UserFactory(username="checker_a", role="Checker", locations=[geo.district_a])


@pytest.fixture
def workflows(db):
    for operation in ("plans.enrol", "plans.bulk_status"):
        definition = WorkflowDefinition.objects.create(operation=operation)
        WorkflowStep.objects.create(definition=definition, group=Group.objects.get(name="Checker"), sort_order=0)


def entries(beneficiary):
    """(action, data) of the beneficiary's history, oldest first."""
    return [(entry.action, entry.data) for entry in
            ModelLogEntry.objects.for_instance(beneficiary).order_by("timestamp", "pk")]


def approved(operation, payload, *, maker, checker, capture):
    with capture(execute=True):
        request = approval_submit(operation=operation, by=maker, payload=payload)
    with capture(execute=True):
        approval_decide(request=request, verdict="approve", by=checker)
    return ApprovalRequest.objects.get(pk=request.pk)


def test_enrolled_by_a_request_then_activated_and_suspended_in_bulk_the_history_shows_each(
        plan, people, clerk_a, checker, workflows, django_capture_on_commit_callbacks):
    def run(operation, payload):
        return approved(operation, {"plan": plan.pk, **payload}, maker=clerk_a, checker=checker,
                        capture=django_capture_on_commit_callbacks)

    run("plans.enrol", {"rule": "first_name == 'Asha'", "target_status": POTENTIAL})
    run("plans.bulk_status", {"action": "activate", "reason": "", "statuses": [POTENTIAL], "ids": []})
    run("plans.bulk_status", {"action": "suspend", "reason": "Visit missed", "statuses": [ACTIVE], "ids": []})

    asha = Beneficiary.objects.get(plan=plan)
    assert asha.status == SUSPENDED
    assert [(action, {key: data.get(key) for key in ("status", "from", "to", "reason")})
            for action, data in entries(asha)] == [
        ("mizani.beneficiary_status", {"status": None, "from": POTENTIAL, "to": ACTIVE, "reason": ""}),
        ("mizani.beneficiary_status", {"status": None, "from": ACTIVE, "to": SUSPENDED, "reason": "Visit missed"}),
    ]
    history_shown = selectors.beneficiary_history(asha, clerk_a)
    assert {entry.user for entry in history_shown} == {clerk_a}  # who asked
    assert history_shown[-1].message.startswith("Enrolled by criteria as potential (request ")
    assert all(data.get("request") for _, data in entries(asha))
    assert history_shown[0].message.startswith("Status changed from active to suspended: Visit missed (request ")
    page = client_for(clerk_a).get(reverse("plans_beneficiary:inspect", args=[asha.pk])).content.decode()
    assert "No history yet" not in page and 'data-testid="history"' in page
    history = client_for(clerk_a).get(reverse("plans_beneficiary:history", args=[asha.pk]))
    assert history.status_code == 200 and "No history yet" not in history.content.decode()
    assert "Enrolled by criteria as potential (request " in history.content.decode()  # the plan's entry


def test_the_entries_name_the_request_and_who_approved_it(plan, people, clerk_a, checker, workflows):
    request = approval_submit(operation="plans.enrol", by=clerk_a, payload={
        "plan": plan.pk, "rule": "first_name != 'Chiku'", "target_status": ACTIVE})
    approval_decide(request=request, verdict="approve", by=checker)  # applied below, as the engine would

    services.enrolment_execute(plan=plan, rule="first_name != 'Chiku'", target_status=ACTIVE, by=clerk_a,
                               approval=request.pk)
    services.beneficiaries_change_status(plan=plan, action="suspend", reason="Visit missed", by=clerk_a,
                                         approval=request.pk)

    for beneficiary in Beneficiary.objects.filter(plan=plan):
        assert selectors.beneficiary_history(beneficiary, clerk_a)[-1].message == (
            f"Enrolled by criteria as active (request {request.pk}, approved by checker_a)")
        assert entries(beneficiary) == [
            ("mizani.beneficiary_status", {"from": ACTIVE, "to": SUSPENDED, "reason": "Visit missed",
                                           "request": request.pk, "approved_by": ["checker_a"]}),
        ]
    assert Beneficiary.objects.filter(plan=plan).count() == 2


def test_a_change_from_two_statuses_names_the_status_each_one_left(plan, people, national_clerk):
    services.enrolment_execute(plan=plan, rule="first_name in ['Asha', 'Bahati']", target_status=ACTIVE,
                               by=national_clerk)
    services.beneficiary_change_status(beneficiary=Beneficiary.objects.get(individual__first_name="Bahati"),
                                       action="suspend", reason="Visit missed", by=national_clerk)

    result = services.beneficiaries_change_status(plan=plan, action="graduate", reason="Left school",
                                                  by=national_clerk)

    assert result == {"moved": 2, "left_unchanged": 0}
    last = {beneficiary.subject.first_name: entries(beneficiary)[-1] for beneficiary in
            Beneficiary.objects.filter(plan=plan).select_related("individual")}
    assert last == {
        "Asha": ("mizani.beneficiary_status", {"from": ACTIVE, "to": GRADUATED, "reason": "Left school"}),
        "Bahati": ("mizani.beneficiary_status", {"from": SUSPENDED, "to": GRADUATED, "reason": "Left school"}),
    }


def test_only_those_moved_get_an_entry_and_its_cost_does_not_grow_with_them(plan, geo, national_clerk):
    def enrol_and_suspend(count, code):
        other = BenefitPlan.objects.create(code=code, name=f"Grant {code}", status="ACTIVE")
        for number in range(count):
            IndividualFactory(first_name=f"{code}{number}", last_name=code, location=geo.village_a)
        services.enrolment_execute(plan=other, rule=f"last_name == '{code}'", target_status=ACTIVE,
                                   by=national_clerk)
        with CaptureQueriesContext(connection) as queries:
            services.beneficiaries_change_status(plan=other, action="suspend", reason="Audit", by=national_clerk)
        return len(queries)

    assert enrol_and_suspend(2, "X") == enrol_and_suspend(6, "Y")
    suspended = ModelLogEntry.objects.filter(action="mizani.beneficiary_status", data__to=SUSPENDED)
    assert suspended.count() == 8
    assert ModelLogEntry.objects.filter(action="mizani.enrol").count() == 2  # one per enrolment, on its plan
