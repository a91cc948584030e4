"""Reads of approvals and jobs, already limited to what the user may see."""

from django.db.models import Q

from sites.scoping import scope_for

from .models import ApprovalRequest, Job, RequestStatus

AUDIT_PERMISSION = "sites.view_audit"


def requests_for(user):
    """Requests the user made, decided, or could decide (their groups, their locations); auditors see
    every request in their locations."""
    in_scope = scope_for(user).filter(ApprovalRequest.objects.all())
    if user.has_perm(AUDIT_PERMISSION):
        return in_scope.select_related("maker")
    return (
        ApprovalRequest.objects.filter(maker=user)
        | in_scope.filter(Q(decisions__user=user) | Q(waiting_group__in=user.groups.all()))
    ).distinct().select_related("maker")


def inbox_for(user):
    """Requests waiting for a decision the user may give now."""
    return (
        scope_for(user).filter(ApprovalRequest.objects.filter(
            status=RequestStatus.PENDING, waiting_group__in=user.groups.all()))
        .exclude(maker=user).exclude(decisions__user=user)
        .select_related("maker", "waiting_group").order_by("created_at", "id")
    )


def jobs_for(user):
    if user.is_superuser or user.has_perm(AUDIT_PERMISSION):
        return Job.objects.select_related("started_by")
    return Job.objects.filter(started_by=user).select_related("started_by")


def execution_job(request):
    """The job that applies an approved request, if it has started."""
    from .services import execution_key

    return Job.objects.filter(idempotency_key=execution_key(request.pk)).first()
