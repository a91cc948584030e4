from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.views.decorators.http import require_POST

from sites.masking import can_view_sensitive, mask
from sites.refusals import refusal_message

from . import selectors, services
from .models import JobStatus, RequestStatus, Verdict

TABS = {
    "inbox": "Waiting for me",
    "mine": "My requests",
    "all": "All I can see",
}


def approvals_index(request):
    tab = request.GET.get("tab") if request.GET.get("tab") in TABS else "inbox"
    user = request.user
    listing = {
        "inbox": selectors.inbox_for(user),
        "mine": selectors.requests_for(user).filter(maker=user),
        "all": selectors.requests_for(user),
    }[tab][:200]
    return TemplateResponse(request, "workflows/approvals_index.html", {
        "tabs": TABS, "tab": tab, "requests": listing, "page_title": "Approvals", "header_icon": "tasks",
    })


def _visible_diff(approval, user):
    show = can_view_sensitive(user)
    sensitive = set(approval.summary.get("sensitive", []))
    return [
        [name, old if show or name not in sensitive else mask(old), new if show or name not in sensitive else mask(new)]
        for name, old, new in approval.summary.get("diff", [])
    ]


# How a request's change is headed, by how the request stands: (heading, old values, new values).
CHANGE_SHOWN_AS = {
    RequestStatus.EXECUTED: ("What changed", "Before", "After"),
    **dict.fromkeys(
        [RequestStatus.REJECTED, RequestStatus.CANCELLED, RequestStatus.VOID, RequestStatus.FAILED],
        ("What was asked", "When asked", "Asked")),
}
CHANGE_TO_COME = ("What will change", "Now", "After approval")


# Summary entries some operations store beside the title, diff, counts and sample: how they are headed.
STATED = {
    "reason": "Reason given",  # a status change's (suspension, rejection, graduation...)
    "seal": "Seal of the payroll (a hash of its lines)",
}


def _stated(approval, diff):
    """[(heading, value)] of what the request states beyond its change; a reason the diff already shows
    as a new value is not said twice."""
    shown = {str(new) for _name, _old, new in diff}
    return [(heading, value) for key, heading in STATED.items()
            if (value := approval.summary.get(key)) and not (key == "reason" and value in shown)]


def approval_detail(request, pk):
    approval = get_object_or_404(selectors.requests_for(request.user), pk=pk)
    user = request.user
    can_decide = selectors.inbox_for(user).filter(pk=approval.pk).exists()
    steps = []
    for number, step in enumerate(approval.steps):
        decisions = [d for d in approval.decisions.all() if d.step == number]
        steps.append({"number": number + 1, "step": step, "decisions": decisions,
                      "current": approval.status == RequestStatus.PENDING and number == approval.current_step})
    job = selectors.execution_job(approval)
    diff = _visible_diff(approval, user)
    return TemplateResponse(request, "workflows/approval_detail.html", {
        "approval": approval, "label": approval.operation_label, "diff": diff, "stated": _stated(approval, diff),
        "change_shown_as": CHANGE_SHOWN_AS.get(approval.status, CHANGE_TO_COME),
        "steps": steps, "can_decide": can_decide, "verdicts": Verdict.choices, "job": job,
        "can_cancel": approval.maker_id == user.pk and approval.status == RequestStatus.PENDING,
        "page_title": f"Request {approval.pk}", "header_icon": "tasks",
    })


@require_POST
def approval_decide(request, pk):
    approval = get_object_or_404(selectors.requests_for(request.user), pk=pk)
    try:
        services.approval_decide(request=approval, verdict=request.POST.get("verdict", ""),
                                 comment=request.POST.get("comment", ""), by=request.user)
    except (ValidationError, PermissionDenied, services.ApprovalConflict) as error:
        messages.error(request, refusal_message(error))
    else:
        messages.success(request, "Your decision is recorded.")
    return redirect("workflows_approvals:inspect", approval.pk)


@require_POST
def approval_cancel(request, pk):
    approval = get_object_or_404(selectors.requests_for(request.user), pk=pk)
    try:
        services.approval_cancel(request=approval, by=request.user)
    except (PermissionDenied, services.ApprovalConflict) as error:
        messages.error(request, str(error))
    else:
        messages.success(request, "The request is cancelled.")
    return redirect("workflows_approvals:inspect", approval.pk)


def jobs_index(request):
    return TemplateResponse(request, "workflows/jobs_index.html", {
        "jobs": selectors.jobs_for(request.user)[:200], "page_title": "Background jobs", "header_icon": "time",
    })


def job_detail(request, pk):
    job = get_object_or_404(selectors.jobs_for(request.user), pk=pk)
    return TemplateResponse(request, "workflows/job_detail.html", {
        "job": job, "page_title": f"Job {job.pk}", "header_icon": "time",
        "can_cancel": job.started_by_id == request.user.pk and not job.is_finished,
    })


def job_status(request, pk):
    job = get_object_or_404(selectors.jobs_for(request.user), pk=pk)
    return JsonResponse({"status": job.status, "status_label": job.get_status_display(), "done": job.progress_done,
                         "total": job.progress_total, "percent": job.percent, "message": job.message,
                         "finished": job.is_finished})


@require_POST
def job_cancel(request, pk):
    job = get_object_or_404(selectors.jobs_for(request.user), pk=pk)
    try:
        job = services.job_cancel(job=job, by=request.user)
    except PermissionDenied as error:
        messages.error(request, str(error))
    else:
        messages.success(request, "Cancelled." if job.status == JobStatus.CANCELLED else
                         "Cancellation asked; the job stops after its current step.")
    return redirect("workflows_jobs:inspect", job.pk)
