"""Every change to approvals and jobs. Separation of duties is checked here and again by the database."""

import logging
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from sites.audit import audit
from sites.scoping import scope_for

from .jobs import JobCancelled, get_handler
from .models import (
    ApprovalRequest,
    ApprovalRule,
    Decision,
    Job,
    JobStatus,
    RequestStatus,
    Verdict,
    WorkflowDefinition,
)
from .operations import get_operation, operation_label

logger = logging.getLogger(__name__)
EXECUTE_JOB = "workflows.execute_request"


class JobLost(Exception):
    """This attempt of a job was given up by the reaper and another has taken over."""


class ApprovalConflict(Exception):
    """The request is no longer waiting for this decision (someone else decided first, or it moved on)."""


# --- jobs -------------------------------------------------------------------------------------


def job_start(*, kind, params, idempotency_key, by=None):
    """Create the Job row in the caller's transaction and hand it to Huey once that commits. The same
    key returns the existing job: a double click or a retried request never runs the work twice."""
    get_handler(kind)  # fail now, in the request, for an unknown kind
    with transaction.atomic():
        job, created = Job.objects.get_or_create(
            idempotency_key=idempotency_key,
            defaults={"kind": kind, "params": params, "started_by": by if by and by.pk else None},
        )
        if created:
            transaction.on_commit(lambda: _enqueue(job.pk))
    return job


def _enqueue(job_id):
    from .tasks import run_job

    run_job(job_id)


def job_claim(job_id):
    """Atomically move a QUEUED job to RUNNING; None if another worker has it or it is finished."""
    with transaction.atomic():
        job = Job.objects.select_for_update(skip_locked=True).filter(pk=job_id, status=JobStatus.QUEUED).first()
        if job is None:
            return None
        job.claim(timezone.now())
        job.save()
    return job


def job_run(job_id):
    """Run a job to its end. Safe to call twice or after a crash: only one caller claims it."""
    job = job_claim(job_id)
    if job is None:
        return None
    try:
        handler = get_handler(job.kind)
    except LookupError as exc:
        error = f"LookupError: {exc}"
        _finish(job, lambda j: j.fail(error, timezone.now()))
        return Job.objects.get(pk=job.pk)

    def progress(done, total=None, message=""):
        # Called by the handler after each chunk, inside the chunk's own transaction when it has one.
        updates = {"progress_done": done, "heartbeat_at": timezone.now()}
        if total is not None:
            updates["progress_total"] = total
        if message:
            updates["message"] = message[:255]
        # Only this attempt may report: a worker presumed dead and replaced must stop, not interleave.
        if not Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING, attempts=job.attempts).update(**updates):
            raise JobLost
        job.progress_done = done
        if Job.objects.filter(pk=job.pk, cancel_requested=True).exists():
            raise JobCancelled

    try:
        result = handler(job, progress)
    except JobLost:
        logger.warning("Job %s attempt %s was superseded; this worker stops.", job.pk, job.attempts)
        return Job.objects.get(pk=job.pk)
    except JobCancelled:
        _finish(job, lambda j: j.cancel(timezone.now()))
    except Exception as exc:  # a job's failure is recorded on its row, never lost in a worker log
        logger.exception("Job %s failed", job.pk)
        error = f"{type(exc).__name__}: {exc}"
        _finish(job, lambda j: j.fail(error, timezone.now()))
    else:
        _finish(job, lambda j: j.succeed(result, timezone.now()))
    return Job.objects.get(pk=job.pk)


def _finish(job, change):
    with transaction.atomic():
        current = Job.objects.select_for_update().get(pk=job.pk)
        if current.status == JobStatus.RUNNING and current.attempts == job.attempts:
            change(current)
            current.save()


def job_cancel(*, job, by):
    if by.pk != job.started_by_id and not by.is_superuser:
        raise PermissionDenied("Only the person who started a job can cancel it.")
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        if job.status == JobStatus.QUEUED:
            job.cancel(timezone.now())
            job.save()
        elif job.status == JobStatus.RUNNING:
            job.cancel_requested = True  # the handler stops at its next progress report
            job.save(update_fields=["cancel_requested"])
    return job


def jobs_reap(*, stale_after=None):
    """Re-queue RUNNING jobs whose heartbeat stopped (their worker died: Huey will not redeliver)."""
    if stale_after is None:
        stale_after = timedelta(seconds=settings.MIZANI_JOB_HEARTBEAT_SECONDS)
    cutoff = timezone.now() - stale_after
    requeued = []
    with transaction.atomic():
        for job in Job.objects.select_for_update(skip_locked=True).filter(
            status=JobStatus.RUNNING, heartbeat_at__lt=cutoff
        ):
            if job.attempts >= settings.MIZANI_JOB_MAX_ATTEMPTS:
                # It killed its worker every time: stop, and say so on the row.
                job.fail(f"The worker stopped {job.attempts} times while running this job.", timezone.now())
                job.save()
                continue
            job.requeue()
            job.save()
            requeued.append(job.pk)
        for job_id in requeued:
            transaction.on_commit(lambda job_id=job_id: _enqueue(job_id))
    return requeued


# --- approvals --------------------------------------------------------------------------------


def definition_for(operation, total):
    """The workflow definition of the operation's amount band, or None."""
    candidates = WorkflowDefinition.objects.filter(operation=operation).prefetch_related("steps__group")
    # A request without a total (an edit) falls in the first band.
    return candidates.filter(min_total__lte=total or 0).order_by("-min_total").first()


def requires_approval(operation_name, total=None):
    definition = definition_for(operation_name, total)
    if definition is None:
        return get_operation(operation_name).default_requires_approval
    return definition.requires_approval


def _active_members(group_id):
    return get_user_model().objects.filter(groups__id=group_id, is_active=True)


def _deciders(group_id, maker_id, location):
    """The group's members who may decide a request placed at `location`: active, not its maker, the
    location in their scope (what `_check_decider` requires)."""
    members = _active_members(group_id).exclude(pk=maker_id)
    return [member for member in members if scope_for(member).allows(location)]


def _required(step, eligible):
    """How many approvals a step needs from its `eligible` deciders."""
    return {ApprovalRule.ANY: 1, ApprovalRule.ALL: len(eligible), ApprovalRule.COUNT: step.count or 1}[step.rule]


def workflow_step_check(step):
    """Refuse a step that no request could ever complete: its group has no active member, or fewer than
    the approvals it needs. (At submission the maker, never a decider, and members outside the record's
    locations drop out as well: `_snapshot_steps` refuses such a request.)"""
    members = set(_active_members(step.group_id).values_list("pk", flat=True))
    if not members:
        raise ValidationError({"group": f"'{step.group.name}' has no active members: nobody could approve "
                                        "this step."})
    required = _required(step, members)
    if required > len(members):
        raise ValidationError({"count": f"'{step.group.name}' has {len(members)} active member(s): this step "
                                        f"could never get {required} approvals."})


def workflow_steps_check(steps):
    """Refuse a workflow whose `steps` (in order; each with group, rule, count) no request could ever
    complete: a step needs more approvals than its group has active members, or the steps together need
    more different people than their groups hold (one person decides one step only). None at all is
    refused too: every request would be stopped at submission."""
    if not steps:
        raise ValidationError("'Requires approval' is on but the workflow has no steps, so nobody could approve "
                              "its requests (clerks could not submit any): add a step naming the group that "
                              "approves, or turn 'Requires approval' off.")
    needs = []
    for number, step in enumerate(steps, start=1):
        members = set(_active_members(step.group_id).values_list("pk", flat=True))
        required = _required(step, members)
        if not members or required > len(members):
            raise ValidationError(f"Step {number} needs {required or 1} approval(s) from '{step.group.name}', "
                                  f"which has {len(members)} active member(s).")
        needs.append((required, members))
    if not _distinct_deciders_suffice(needs):
        people = set().union(*(members for _required_count, members in needs))
        raise ValidationError(
            f"The {len(needs)} steps need {sum(required for required, _ in needs)} approvals, each from a "
            f"different person (one person decides one step only), but their groups' {len(people)} active "
            "member(s) cannot cover them all. Add members to the groups or ask for fewer approvals.")


def _snapshot_steps(definition, maker, location):
    """Freeze the steps at submission: later edits of the definition do not move the goalposts. Only
    members who may decide this request count (active, not the maker, the record in their locations),
    and one person decides one step only: steps whose groups share people must find enough of them."""
    steps, needs = [], []
    for number, step in enumerate(definition.steps.all(), start=1):
        eligible = {member.pk for member in _deciders(step.group_id, maker.pk, location)}
        required = _required(step, eligible)
        if not eligible or required > len(eligible):
            raise ValidationError(
                f"Step {number} needs {required or 1} approval(s) from '{step.group.name}', which has "
                f"{len(eligible)} member(s) other than you. Ask an administrator to fix the workflow.")
        steps.append({"group_id": step.group_id, "group": step.group.name, "rule": step.rule, "required": required})
        needs.append((required, eligible))
    if not _distinct_deciders_suffice(needs):
        raise ValidationError(
            f"The workflow's {len(steps)} steps need {sum(required for required, _ in needs)} different people (one "
            "person decides one step only), but fewer people other than you may decide this request. Ask an "
            "administrator to fix the workflow.")
    return steps


def _distinct_deciders_suffice(needs):
    """Whether every step's `required` approvals ((required, eligible ids) per step) can come from
    different people: a matching of the steps' seats to people (augmenting paths; a few dozen seats)."""
    seats = [eligible for required, eligible in needs for _ in range(required)]
    seated = {}  # person -> seat index

    def seat(index, tried):
        for person in seats[index]:
            if person in tried:
                continue
            tried.add(person)
            if person not in seated or seat(seated[person], tried):
                seated[person] = index
                return True
        return False

    return all(seat(index, set()) for index in range(len(seats)))


def approval_submit(*, operation, payload, by):
    """Submit a change. With approval off (explicitly, or by the operation's default) it is applied at
    once, through the same request, so the audit trail is the same either way."""
    op = get_operation(operation)
    with transaction.atomic():
        prepared = op.prepare(payload, by)
        definition = definition_for(operation, prepared.total)
        needs_approval = definition.requires_approval if definition else op.default_requires_approval
        if needs_approval and (definition is None or not definition.steps.exists()):
            raise ValidationError(f"No approval workflow is configured for '{op.label}'. "
                                  "A scheme administrator must define one (or turn approval off).")
        steps = _snapshot_steps(definition, by, prepared.location) if needs_approval else []
        request = ApprovalRequest.objects.create(
            operation=operation, maker=by, payload=prepared.payload, summary=prepared.summary,
            total=prepared.total, location=prepared.location, target_version=prepared.version,
            steps=steps, waiting_group_id=steps[0]["group_id"] if steps else None,
        )
        audit(request, "mizani.approval_submit", by=by, data={"operation": operation})
        if needs_approval:
            _notify_step(request)
        else:
            request.approve()
            request.save()
            audit(request, "mizani.approval_skipped", by=by, data={"operation": operation})
            _execute_on_commit(request)
    return request


def approval_decide(*, request, verdict, by, comment=""):
    """Record one decision. Two checkers at once: the row lock makes one wait, and it then finds the
    request decided and gets an ApprovalConflict."""
    if verdict not in Verdict.values:
        raise ValidationError(f"'{verdict}' is not approve or reject.")
    comment = (comment or "").strip()
    if verdict == Verdict.REJECT and not comment:
        raise ValidationError({"comment": ["Say why the request is rejected."]})
    with transaction.atomic():
        request = ApprovalRequest.objects.select_for_update().get(pk=request.pk)
        if request.status != RequestStatus.PENDING:
            raise ApprovalConflict(f"This request is already {request.get_status_display().lower()}.")
        _check_decider(request, by)
        step = request.step
        try:
            with transaction.atomic():
                Decision.objects.create(request=request, step=request.current_step, group_id=step["group_id"],
                                        user=by, maker=request.maker, verdict=verdict, comment=comment)
        except IntegrityError as exc:
            raise PermissionDenied(f"The database refused this decision: {exc}") from exc
        audit(request, "mizani.approval_decision", by=by, data={
            "verdict": verdict, "step": request.current_step + 1, "comment": comment})
        if verdict == Verdict.REJECT:
            request.reject(comment)
            request.save()
            _notify_maker(request)
            return request
        approvals = request.decisions.filter(step=request.current_step, verdict=Verdict.APPROVE).count()
        if approvals < step["required"]:
            return request
        if request.current_step + 1 < len(request.steps):
            request.advance()
            request.save()
            _notify_step(request)
        else:
            request.approve()
            request.save()
            _execute_on_commit(request)
    return request


def _check_decider(request, by):
    if by.pk == request.maker_id:
        raise PermissionDenied("You cannot decide on your own request.")
    if request.decisions.filter(user=by).exists():
        raise PermissionDenied("You have already decided on this request; one person decides one step only.")
    if not by.groups.filter(pk=request.step["group_id"]).exists():
        raise PermissionDenied(f"Only members of '{request.step['group']}' decide this step.")
    if not scope_for(by).allows(request.location):
        raise PermissionDenied("This request concerns a record outside your locations.")


def approval_cancel(*, request, by):
    with transaction.atomic():
        request = ApprovalRequest.objects.select_for_update().get(pk=request.pk)
        if by.pk != request.maker_id:
            raise PermissionDenied("Only the person who submitted a request can cancel it.")
        if request.status != RequestStatus.PENDING:
            raise ApprovalConflict(f"This request is already {request.get_status_display().lower()}.")
        request.cancel()
        request.save()
        audit(request, "mizani.approval_cancel", by=by)
    return request


def execution_key(request_id):
    return f"approval-request-{request_id}"


def _execute_on_commit(request):
    job_start(kind=EXECUTE_JOB, params={"request": request.pk}, idempotency_key=execution_key(request.pk),
              by=request.maker)


def _outcome(request):
    return {"status": request.status, "error": request.error} if request.error else {"status": request.status}


def approval_execute(request_id):
    """Apply an approved request, exactly once: the change and the EXECUTED status commit together;
    a crash in between rolls both back and a re-run starts again from APPROVED/EXECUTING."""
    with transaction.atomic():
        request = ApprovalRequest.objects.select_for_update().get(pk=request_id)
        if request.status in {RequestStatus.EXECUTED, RequestStatus.VOID, RequestStatus.FAILED}:
            return _outcome(request)
        op = get_operation(request.operation)
        if request.status == RequestStatus.APPROVED:
            if op.version(request.payload) != request.target_version:
                request.void("The record changed after the request was submitted; nothing was applied.")
                request.save()
                audit(request, "mizani.approval_void", by=None)
                _notify_maker(request)
                return _outcome(request)
            request.start()
            request.save()
    try:
        with transaction.atomic():
            request = ApprovalRequest.objects.select_for_update().get(pk=request_id)
            result = op.execute({**request.payload, "request": request.pk}, request.maker) or {}
            request.finish(result)
            request.save()
            audit(request, "mizani.approval_execute", by=None, data=result)
            _notify_maker(request)
    except Exception as exc:  # recorded on the request; the maker sees why nothing was applied
        logger.exception("Applying request %s failed", request_id)
        with transaction.atomic():
            request = ApprovalRequest.objects.select_for_update().get(pk=request_id)
            request.fail("; ".join(getattr(exc, "messages", [str(exc)])))
            request.save()
            audit(request, "mizani.approval_failed", by=None, data={"error": request.error})
            _notify_maker(request)
    return _outcome(request)


# --- notifications ----------------------------------------------------------------------------


def _notify_step(request):
    step = request.step
    # Only those who may decide it: a checker elsewhere would learn of a record outside their locations
    # (the title names the person), and one who decided an earlier step may not decide this one.
    decided = set(request.decisions.values_list("user_id", flat=True))
    recipients = [member.email for member in _deciders(step["group_id"], request.maker_id, request.location)
                  if member.email and member.pk not in decided]
    if recipients:
        subject = f"[Mizani] Approval needed: request {request.pk} ({operation_label(request.operation)})"
        body = (f"{request.maker} submitted a request that waits for '{step['group']}' "
                f"(step {request.current_step + 1} of {len(request.steps)}).\n"
                f"Open it: {_link(request)}\n")
        transaction.on_commit(lambda: send_mail(subject, body, None, recipients, fail_silently=True))


def _notify_maker(request):
    """Tell the maker how a request that waited for approval ended (applied, rejected, void, failed).
    The mail names the request, not the people in it (mailboxes and mail servers are not scoped)."""
    if request.maker.email and request.steps:
        subject = f"[Mizani] Your request {request.pk} ({operation_label(request.operation)}): {request.get_status_display().lower()}"
        body = f"{request.get_status_display()}."
        if why := request.error or request.reason:
            body += f"\n{'Error' if request.error else 'Reason'}: {why}"
        body += f"\nOpen it: {_link(request)}\n"
        transaction.on_commit(lambda: send_mail(subject, body, None, [request.maker.email], fail_silently=True))


def _link(request):
    return f"{settings.WAGTAILADMIN_BASE_URL}{reverse('workflows_approvals:inspect', args=[request.pk])}"
