"""A `payments.approve_payroll` request's end moves its payroll, in the same transaction (the approval
engine knows no payrolls; the payroll follows its request): rejected, the payroll is rejected; ended
undecided (cancelled, failed, void), the payroll is to submit again."""

from django.db.models.signals import post_save
from django.dispatch import receiver

from workflows.models import ApprovalRequest, RequestStatus

UNDECIDED_ENDS = (RequestStatus.CANCELLED, RequestStatus.FAILED, RequestStatus.VOID)


@receiver(post_save, sender=ApprovalRequest, dispatch_uid="payments_payroll_follows_its_request")
def payroll_follows_its_request(sender, instance, **kwargs):
    from .approvals import APPROVE_PAYROLL
    from .models import Payroll
    from .services import payroll_reject, payroll_withdraw

    if instance.operation != APPROVE_PAYROLL or instance.status not in (RequestStatus.REJECTED, *UNDECIDED_ENDS):
        return
    payroll = Payroll.objects.filter(pk=instance.payload.get("payroll")).first()
    if payroll is None:
        return
    if instance.status == RequestStatus.REJECTED:
        decision = instance.decisions.order_by("-pk").select_related("user").first()
        payroll_reject(payroll=payroll, reason=instance.reason, by=decision.user if decision else None)
    else:
        payroll_withdraw(payroll=payroll, request=instance)
