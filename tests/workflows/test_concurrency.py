"""Checkers deciding the same request at the same moment, with real threads and real transactions
(QUALITY 6). PostgreSQL only: SQLite serialises writers, so there is no race to lose there."""

import threading

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from tests.factories import IndividualFactory, UserFactory
from workflows import services
from workflows.models import ApprovalRule, Decision, Job, JobStatus, RequestStatus, Verdict
from workflows.services import ApprovalConflict

from .conftest import CHANGE_INDIVIDUAL, audit_entries, change_payload

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs concurrent writers (PostgreSQL)"),
    pytest.mark.django_db(transaction=True),
]

ITERATIONS = 20


def race(request, contenders):
    """Run approval_decide for each (user, verdict, comment) in its own thread, released together.
    Returns each thread's outcome: "ok", "conflict", or the unexpected exception."""
    barrier = threading.Barrier(len(contenders))
    outcomes = [None] * len(contenders)

    def decide(index, user_pk, verdict, comment):
        try:
            user = get_user_model().objects.get(pk=user_pk)  # each thread opens its own connection
            barrier.wait(timeout=10)
            services.approval_decide(request=request, verdict=verdict, by=user, comment=comment)
            outcomes[index] = "ok"
        except ApprovalConflict:
            outcomes[index] = "conflict"
        except Exception as exc:  # reported by the assertion below
            outcomes[index] = repr(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=decide, args=(i, user.pk, verdict, comment))
               for i, (user, verdict, comment) in enumerate(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a decision hung"
    return outcomes


@pytest.fixture
def arranged(geo, clerk_a):
    checkers = [UserFactory(username=f"racer_{n}", role="Checker", locations=[geo.district_a]) for n in range(3)]
    return clerk_a, checkers


def submit(clerk, number):
    village = clerk.access.locations.get().children.get().children.get()  # district A > ward > village
    person = IndividualFactory(first_name="Before", location=village)
    request = services.approval_submit(operation=CHANGE_INDIVIDUAL,
                                       payload=change_payload(person, first_name=f"After{number}"), by=clerk)
    return person, request


def assert_applied_once(person, request, number):
    request.refresh_from_db()
    person.refresh_from_db()
    assert request.status == RequestStatus.EXECUTED, (number, request.status, request.error)
    assert person.first_name == f"After{number}"
    assert audit_entries(request, "mizani.approval_execute").count() == 1
    assert audit_entries(person, "wagtail.edit").count() == 1
    assert list(Job.objects.filter(idempotency_key=services.execution_key(request.pk))
                .values_list("status", flat=True)) == [JobStatus.SUCCEEDED]


def test_two_checkers_approving_at_once_make_one_transition(arranged, make_workflow, checker_group):
    clerk, (first, second, _) = arranged
    make_workflow(CHANGE_INDIVIDUAL, [(checker_group, ApprovalRule.ANY)])

    for number in range(ITERATIONS):
        person, request = submit(clerk, number)

        outcomes = race(request, [(first, Verdict.APPROVE, ""), (second, Verdict.APPROVE, "")])

        assert sorted(outcomes) == ["conflict", "ok"], (number, outcomes)
        assert Decision.objects.filter(request=request).count() == 1, number
        assert audit_entries(request, "mizani.approval_decision").count() == 1, number
        assert_applied_once(person, request, number)


def test_approve_and_reject_at_once_make_one_transition(arranged, make_workflow, checker_group):
    clerk, (first, second, _) = arranged
    make_workflow(CHANGE_INDIVIDUAL, [(checker_group, ApprovalRule.ANY)])

    for number in range(ITERATIONS // 2):
        person, request = submit(clerk, number)

        outcomes = race(request, [(first, Verdict.APPROVE, ""), (second, Verdict.REJECT, "Not this one")])

        assert sorted(outcomes) == ["conflict", "ok"], (number, outcomes)
        decision = Decision.objects.get(request=request)
        assert audit_entries(request, "mizani.approval_decision").count() == 1, number
        if decision.verdict == Verdict.APPROVE:
            assert_applied_once(person, request, number)
        else:
            request.refresh_from_db()
            person.refresh_from_db()
            assert (request.status, person.first_name) == (RequestStatus.REJECTED, "Before"), number
            assert not Job.objects.filter(idempotency_key=services.execution_key(request.pk)).exists()


def test_three_checkers_on_a_two_approval_step_make_one_transition(arranged, make_workflow, checker_group):
    clerk, checkers = arranged
    make_workflow(CHANGE_INDIVIDUAL, [(checker_group, ApprovalRule.COUNT, 2)])

    for number in range(ITERATIONS // 2):
        person, request = submit(clerk, number)

        outcomes = race(request, [(checker, Verdict.APPROVE, "") for checker in checkers])

        assert sorted(outcomes) == ["conflict", "ok", "ok"], (number, outcomes)
        assert Decision.objects.filter(request=request).count() == 2, number
        assert audit_entries(request, "mizani.approval_decision").count() == 2, number
        assert_applied_once(person, request, number)


def test_one_checker_double_submitting_decides_once(arranged, make_workflow, checker_group):
    """A double click: the same checker's two POSTs race; one decision, the other refused."""
    clerk, (first, _, _) = arranged
    make_workflow(CHANGE_INDIVIDUAL, [(checker_group, ApprovalRule.COUNT, 2)])

    for number in range(ITERATIONS // 2):
        person, request = submit(clerk, number)

        outcomes = race(request, [(first, Verdict.APPROVE, ""), (first, Verdict.APPROVE, "")])

        assert sorted(outcomes)[1] == "ok" and sorted(outcomes)[0].startswith("PermissionDenied"), (number, outcomes)
        assert Decision.objects.filter(request=request).count() == 1, number
        request.refresh_from_db()
        assert (request.status, request.current_step) == (RequestStatus.PENDING, 0), number
