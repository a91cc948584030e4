"""A rejected `payments.approve_payroll` request rejects its payroll, in the decision's transaction
(the approval engine knows no payrolls; the payroll follows its request)."""

from django.db.models.signals import post_save
from django.dispatch import receiver

from workflows.models import ApprovalRequest, RequestStatus


@receiver(post_save, sender=ApprovalRequest, dispatch_uid="payments_payroll_follows_its_request")
def reject_payroll_with_its_request(sender, instance, **kwargs):
    from .approvals import APPROVE_PAYROLL
    from .models import Payroll
    from .services import payroll_reject

    if instance.operation != APPROVE_PAYROLL or instance.status != RequestStatus.REJECTED:
        return
    payroll = Payroll.objects.filter(pk=instance.payload.get("payroll")).first()
    decision = instance.decisions.order_by("-pk").select_related("user").first()
    if payroll is not None:
        payroll_reject(payroll=payroll, reason=instance.reason, by=decision.user if decision else None)
