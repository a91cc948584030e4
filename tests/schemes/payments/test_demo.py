"""The payments demo: a payment plan for the child grant, six cycles, a provider with points and the
first payroll approved; a demo reset takes the payrolls with the people they pay."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from schemes.bulk.models import Upload, UploadKind
from schemes.payments.demo import TWO_CHECKERS_FROM
from schemes.payments.models import (
    PaymentCycle,
    PaymentLine,
    PaymentPlan,
    PaymentPoint,
    Payroll,
    PayrollStatus,
)
from schemes.registry.models import Individual
from workflows.models import ApprovalRequest, WorkflowDefinition

pytestmark = pytest.mark.django_db


def seed(*args):
    out = StringIO()
    call_command("seed_demo", "--households", "120", *args, stdout=out)
    return out.getvalue()


def test_the_demo_pays_the_child_grant_and_a_reset_takes_the_payrolls_with_the_people():
    output = seed()

    assert "Payments: " in output
    payment_plan = PaymentPlan.objects.get(code="CG-01-PAY")
    assert PaymentCycle.objects.filter(code__startswith="CG-01-").count() == 6
    assert PaymentPoint.objects.filter(provider__code="MPESA").exists()
    payroll = Payroll.objects.get(payment_plan=payment_plan)
    assert payroll.status == PayrollStatus.APPROVED
    assert payroll.line_count == PaymentLine.objects.filter(payroll=payroll).count() > 0
    # Above the demo's amount band two checkers approve (the first payroll of 120 households is).
    assert payroll.total >= TWO_CHECKERS_FROM
    request = ApprovalRequest.objects.get(operation="payments.approve_payroll")
    assert sorted(request.decisions.values_list("user__username", flat=True)) == ["checker", "checker2"]
    assert "Payments: nothing new." in seed()  # a re-run adds nothing
    assert WorkflowDefinition.objects.filter(operation="payments.close_payroll").exists()
    reconciliation = Upload.objects.create(kind=UploadKind.RECONCILIATION, payroll=payroll, stored_name="r.csv",
                                           original_name="r.csv", uploaded_by=get_user_model().objects.first())

    seed("--reset")

    assert not Payroll.objects.filter(pk=payroll.pk).exists()
    assert not Upload.objects.filter(pk=reconciliation.pk).exists()  # its payroll is gone
    # The fresh registry's first payroll again: every line names a person who exists.
    assert Payroll.objects.get().status == PayrollStatus.APPROVED
    recipients = set(PaymentLine.objects.values_list("recipient_id", flat=True))
    assert recipients and recipients <= set(Individual.objects.values_list("pk", flat=True))
    assert PaymentPlan.objects.filter(code="CG-01-PAY").count() == 1
