"""The approval engine's data (workflow definitions, requests, the decision ledger) and the Job rows
that every long task runs under. Statuses move only through django-fsm transitions."""

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django_fsm import FSMField, FSMModelMixin, transition
from modelcluster.fields import ParentalKey
from modelcluster.models import ClusterableModel
from wagtail.admin.panels import FieldPanel
from wagtail.models import Orderable, RevisionMixin

from sites.models import Location


class ApprovalRule(models.TextChoices):
    ANY = "any", "Any one member"
    ALL = "all", "All members"
    COUNT = "count", "A number of members"


class WorkflowDefinition(RevisionMixin, ClusterableModel):
    """Content: who must approve an operation, step by step. Several definitions of one operation
    form amount bands: a request uses the one with the highest `min_total` not above its total."""

    operation = models.CharField(max_length=64)
    min_total = models.DecimalField(
        "from total", max_digits=18, decimal_places=2, default=0,
        help_text="This workflow applies to requests whose total is at least this amount.")
    requires_approval = models.BooleanField(
        default=True,
        help_text="Off: the operation is applied at once, without approval (it is still audited).")
    description = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "approval workflow"
        verbose_name_plural = "approval workflows"
        ordering = ["operation", "min_total"]
        constraints = [models.UniqueConstraint(fields=["operation", "min_total"],
                                               name="workflow_one_definition_per_band")]

    def __str__(self):
        from .operations import operation_label

        band = f" from {self.min_total:,}" if self.min_total else ""
        return f"{operation_label(self.operation)}{band}"

    def clean(self):
        from .operations import registered_operations

        operation = registered_operations().get(self.operation)
        if operation is None:
            raise ValidationError({"operation": f"'{self.operation}' is not a known operation."})
        if self.min_total is None:
            return
        if self.min_total < 0:
            raise ValidationError({"min_total": f"'From total' cannot be negative ({self.min_total:,}): a request's "
                                                "total is never below 0. The first band starts at 0."})
        if self.min_total and not operation.carries_total:
            raise ValidationError({"min_total": f"Requests to '{operation.label}' carry no total, so an amount band "
                                                f"from {self.min_total:,} would never apply: leave 'From total' at 0."})


class WorkflowStep(Orderable):
    definition = ParentalKey(WorkflowDefinition, on_delete=models.CASCADE, related_name="steps")
    group = models.ForeignKey(Group, on_delete=models.PROTECT, related_name="+")
    rule = models.CharField(max_length=8, choices=ApprovalRule.choices, default=ApprovalRule.ANY)
    count = models.PositiveSmallIntegerField(
        null=True, blank=True,
        help_text="With 'a number of members': how many. The maker of a request never decides it: a request "
                  "made by a member of the group needs this many other members.")

    panels = [FieldPanel("group"), FieldPanel("rule"), FieldPanel("count")]

    def clean(self):
        from .services import workflow_step_check

        if self.rule == ApprovalRule.COUNT and not self.count:
            raise ValidationError({"count": "Say how many members must approve."})
        if self.group_id:
            workflow_step_check(self)


class RequestStatus(models.TextChoices):
    PENDING = "PENDING", "Waiting for approval"
    APPROVED = "APPROVED", "Approved"
    EXECUTING = "EXECUTING", "Being applied"
    EXECUTED = "EXECUTED", "Applied"
    FAILED = "FAILED", "Failed"
    REJECTED = "REJECTED", "Rejected"
    CANCELLED = "CANCELLED", "Cancelled"
    VOID = "VOID", "Void (the record changed meanwhile)"


class ApprovalRequest(FSMModelMixin, models.Model):
    operation = models.CharField(max_length=64)
    maker = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="approval_requests")
    status = FSMField(default=RequestStatus.PENDING, choices=RequestStatus.choices, protected=True)
    payload = models.JSONField(default=dict)
    summary = models.JSONField(default=dict)
    total = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)
    location = models.ForeignKey(Location, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    target_version = models.CharField(max_length=64, blank=True)
    steps = models.JSONField(default=list)
    current_step = models.PositiveSmallIntegerField(default=0)
    # The group whose decision the request waits for; kept by the transitions, indexed for the inbox.
    waiting_group = models.ForeignKey(Group, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    reason = models.TextField(blank=True)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "operation"], name="request_status_op_idx"),
            models.Index(fields=["waiting_group", "status"], name="request_waiting_idx"),
        ]

    def __str__(self):
        return f"Request {self.pk}"

    @property
    def title(self):
        return self.summary.get("title") or self.operation

    @property
    def operation_label(self):
        from .operations import operation_label

        return operation_label(self.operation)

    @transition(field=status, source=RequestStatus.PENDING, target=RequestStatus.PENDING)
    def advance(self):
        self.current_step += 1
        self.waiting_group_id = self.steps[self.current_step]["group_id"]

    @transition(field=status, source=RequestStatus.PENDING, target=RequestStatus.APPROVED)
    def approve(self):
        self.waiting_group = None

    @transition(field=status, source=RequestStatus.PENDING, target=RequestStatus.REJECTED)
    def reject(self, reason):
        self.reason = reason
        self.waiting_group = None

    @transition(field=status, source=RequestStatus.PENDING, target=RequestStatus.CANCELLED)
    def cancel(self):
        self.waiting_group = None

    @transition(field=status, source=[RequestStatus.PENDING, RequestStatus.APPROVED], target=RequestStatus.VOID)
    def void(self, reason):
        self.reason = reason
        self.waiting_group = None

    @transition(field=status, source=RequestStatus.APPROVED, target=RequestStatus.EXECUTING)
    def start(self):
        pass

    @transition(field=status, source=RequestStatus.EXECUTING, target=RequestStatus.EXECUTED)
    def finish(self, result):
        self.result = result or {}

    @transition(field=status, source=RequestStatus.EXECUTING, target=RequestStatus.FAILED)
    def fail(self, error):
        self.error = error

    @property
    def step(self):
        return self.steps[self.current_step] if self.current_step < len(self.steps) else None


class Verdict(models.TextChoices):
    APPROVE = "approve", "Approve"
    REJECT = "reject", "Reject"


class Decision(models.Model):
    """Insert-only ledger. The maker is copied onto each row so that the database itself refuses a
    maker's decision; triggers check the copy, group membership, and refuse UPDATE and DELETE."""

    request = models.ForeignKey(ApprovalRequest, on_delete=models.PROTECT, related_name="decisions")
    step = models.PositiveSmallIntegerField()
    group = models.ForeignKey(Group, on_delete=models.PROTECT, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    maker = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    verdict = models.CharField(max_length=8, choices=Verdict.choices)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(condition=~Q(user=F("maker")), name="decision_not_by_the_maker"),
            models.UniqueConstraint(fields=["request", "user"], name="decision_one_per_user_per_request"),
        ]

    def __str__(self):
        return f"{self.get_verdict_display()} by {self.user} on {self.request}"


class JobStatus(models.TextChoices):
    QUEUED = "QUEUED", "Queued"
    RUNNING = "RUNNING", "Running"
    SUCCEEDED = "SUCCEEDED", "Succeeded"
    FAILED = "FAILED", "Failed"
    CANCELLED = "CANCELLED", "Cancelled"


class Job(FSMModelMixin, models.Model):
    """One long task. Huey only carries the job's id; this row is the truth about it."""

    kind = models.CharField(max_length=64)
    idempotency_key = models.CharField(max_length=200, unique=True)
    status = FSMField(default=JobStatus.QUEUED, choices=JobStatus.choices, protected=True)
    params = models.JSONField(default=dict, blank=True)
    progress_done = models.PositiveBigIntegerField(default=0)
    progress_total = models.PositiveBigIntegerField(null=True, blank=True)
    message = models.CharField(max_length=255, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    cancel_requested = models.BooleanField(default=False)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="job_status_heartbeat_idx")]

    def __str__(self):
        return f"{self.label} #{self.pk}"

    @property
    def label(self):
        from .jobs import job_label  # the registry imports the apps' job modules, which import models

        return job_label(self.kind)

    @property
    def percent(self):
        if not self.progress_total:
            return 100 if self.status == JobStatus.SUCCEEDED else 0
        return min(100, round(100 * self.progress_done / self.progress_total))

    @property
    def is_finished(self):
        return self.status in {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED}

    @transition(field=status, source=JobStatus.QUEUED, target=JobStatus.RUNNING)
    def claim(self, now):
        self.attempts += 1
        self.started_at = self.started_at or now
        self.heartbeat_at = now

    @transition(field=status, source=JobStatus.RUNNING, target=JobStatus.QUEUED)
    def requeue(self):
        pass

    @transition(field=status, source=JobStatus.RUNNING, target=JobStatus.SUCCEEDED)
    def succeed(self, result, now):
        self.result = result or {}
        self.finished_at = now

    @transition(field=status, source=[JobStatus.QUEUED, JobStatus.RUNNING], target=JobStatus.FAILED)
    def fail(self, error, now):
        self.error = error
        self.finished_at = now

    @transition(field=status, source=[JobStatus.QUEUED, JobStatus.RUNNING], target=JobStatus.CANCELLED)
    def cancel(self, now):
        self.finished_at = now
