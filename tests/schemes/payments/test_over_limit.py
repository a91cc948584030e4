"""Lines above the transaction limit need their own approval (`payments.release_over_limit`) before
they are exported; until then every export leaves them out and says so in its audit entry."""

from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DatabaseError, connection, transaction
from django.urls import reverse
from wagtail.models import ModelLogEntry

from schemes.payments import services
from schemes.payments.models import Payroll
from tests.factories import PASSWORD
from workflows.models import ApprovalRule, RequestStatus, WorkflowDefinition, WorkflowStep
from workflows.services import approval_decide

pytestmark = pytest.mark.django_db


@pytest.fixture
def release_workflow(checkers):
    _users, group = checkers
    definition = WorkflowDefinition.objects.create(operation="payments.release_over_limit")
    WorkflowStep.objects.create(definition=definition, group=group, rule=ApprovalRule.ANY)
    return definition


@pytest.fixture
def approved(payment_plan, cycle, people, accountant, checkers, payroll_workflow, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        payroll = services.payroll_generate_start(payment_plan=payment_plan, cycle=cycle, by=accountant)
    with django_capture_on_commit_callbacks(execute=True):
        request = services.payroll_submit(payroll=Payroll.objects.get(pk=payroll.pk), by=accountant)
    with django_capture_on_commit_callbacks(execute=True):
        approval_decide(request=request, verdict="approve", by=checkers[0][0])
    return Payroll.objects.get(pk=payroll.pk)


def exported_amounts(client, user, payroll, query=""):
    client.login(username=user.username, password=PASSWORD)
    response = client.get(reverse("payments_payroll:export_csv", args=[payroll.pk]) + query)
    rows = b"".join(response.streaming_content).decode().strip().splitlines()[1:]
    return sorted(Decimal(row.split(",")[7]) for row in rows)


def last_export(payroll):
    return ModelLogEntry.objects.filter(action="mizani.export", object_id=str(payroll.pk)).order_by("pk").last()


def test_the_export_leaves_out_lines_above_the_limit_until_released(client, approved, accountant, checkers,
                                                                    release_workflow,
                                                                    django_capture_on_commit_callbacks):
    assert exported_amounts(client, accountant, approved) == [Decimal("600.00"), Decimal("800.00"),
                                                              Decimal("900.00")]
    assert last_export(approved).data["over_limit_withheld"] == 1
    assert last_export(approved).data["rows"] == 3
    assert last_export(approved).label == "Payment lines export (CSV), 3 rows"  # as the audit trail lists it
    # The record of every line holds them: it is not sent for payment.
    assert exported_amounts(client, accountant, approved, "?lines=all") == [
        Decimal("600.00"), Decimal("800.00"), Decimal("900.00"), Decimal("1100.00")]

    request = services.payroll_over_limit_submit(payroll=approved, by=accountant)
    assert request.total == Decimal("1100.00")
    assert request.summary["counts"]["Lines above the limit"] == 1
    assert exported_amounts(client, accountant, approved) == [Decimal("600.00"), Decimal("800.00"),
                                                              Decimal("900.00")]  # not until approved

    with django_capture_on_commit_callbacks(execute=True):
        approval_decide(request=request, verdict="approve", by=checkers[0][0])

    released = Payroll.objects.get(pk=approved.pk)
    assert released.over_limit_released_at is not None
    assert ModelLogEntry.objects.get(action="mizani.payroll_over_limit_released").data == {
        "lines": 1, "total": "1100.00"}
    assert exported_amounts(client, accountant, released) == [Decimal("600.00"), Decimal("800.00"),
                                                              Decimal("900.00"), Decimal("1100.00")]
    assert last_export(released).data["over_limit_withheld"] == 0
    page = client.get(reverse("payments_payroll:inspect", args=[released.pk])).content.decode()
    assert "Released for payment" in page


def test_a_rejected_release_leaves_the_lines_out(client, approved, accountant, checkers, release_workflow):
    request = services.payroll_over_limit_submit(payroll=approved, by=accountant)
    approval_decide(request=request, verdict="reject", by=checkers[0][0], comment="Check the household size")

    assert Payroll.objects.get(pk=approved.pk).over_limit_released_at is None
    assert len(exported_amounts(client, accountant, approved)) == 3


def test_the_maker_cannot_release_their_own_lines(approved, accountant, checkers, release_workflow):
    accountant.groups.add(checkers[1])
    request = services.payroll_over_limit_submit(payroll=approved, by=accountant)
    with pytest.raises(PermissionDenied):
        approval_decide(request=request, verdict="approve", by=accountant)
    assert request.status == RequestStatus.PENDING


def test_a_release_is_asked_once_and_only_for_lines_above_the_limit(approved, accountant, release_workflow,
                                                                     payment_plan, superuser, cycles,
                                                                     django_capture_on_commit_callbacks):
    services.payroll_over_limit_submit(payroll=approved, by=accountant)
    with pytest.raises(ValidationError, match="already waiting"):
        services.payroll_over_limit_submit(payroll=approved, by=accountant)

    services.payment_plan_change(payment_plan=payment_plan, by=superuser, fields={"limit_per_transaction": None})
    from schemes.payments.models import PaymentCycle

    with django_capture_on_commit_callbacks(execute=True):
        unlimited = services.payroll_generate_start(payment_plan=payment_plan,
                                                    cycle=PaymentCycle.objects.get(code="CG-2025-03"), by=accountant)
    with pytest.raises(ValidationError, match="no line above"):
        services.payroll_over_limit_submit(payroll=Payroll.objects.get(pk=unlimited.pk), by=accountant)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the triggers are PostgreSQL's")
def test_the_database_refuses_to_withdraw_a_release(approved):
    services.payroll_release_over_limit(payroll=approved)
    with pytest.raises(DatabaseError, match="payroll_released"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE payments_payroll SET over_limit_released_at = NULL WHERE id = %s", [approved.pk])
