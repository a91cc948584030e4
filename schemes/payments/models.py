"""Payment plans (content: a formula in the rules language), cycles, payment points, payrolls and their
lines. A payroll is generated as a frozen snapshot and sealed (count, total, hash); once it has left
GENERATING its lines and seal never change again: the model and its querysets refuse it here, and on
PostgreSQL triggers refuse it for any other path too (migration 0002)."""

import calendar
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django_fsm import FSMField, FSMModelMixin, transition

from schemes.plans.models import BeneficiaryStatus, BenefitPlan
from schemes.registry.models import Individual
from sites.models import CurrencyField, Location

MONEY = {"max_digits": 18, "decimal_places": 2}
CENT = Decimal("0.01")
# The largest amount a money column holds (9999999999999999.99): a line above it cannot be written.
MAX_AMOUNT = Decimal(10) ** (MONEY["max_digits"] - MONEY["decimal_places"]) - CENT


class FrozenPayroll(Exception):
    """A change to a payroll (or its lines) that is no longer being generated."""


class Periodicity(models.IntegerChoices):
    MONTHLY = 1, "Every month"
    BIMONTHLY = 2, "Every two months"
    QUARTERLY = 3, "Every three months"
    HALF_YEARLY = 6, "Every six months"
    YEARLY = 12, "Every year"


def add_months(day, months):
    """The same day `months` later, or the month's last day when it has fewer days (31 Jan + 1 month:
    28 or 29 Feb)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return day.replace(year=year, month=month, day=min(day.day, calendar.monthrange(year, month)[1]))


def default_target_statuses():
    return [BeneficiaryStatus.ACTIVE]


class PaymentPlan(models.Model):
    """How much each beneficiary of a benefit plan is paid per cycle. `formula` is
    {"text": ..., "rule": <AST JSON>} over the plan's beneficiary catalogue (their person or household
    fields and the plan's attributes); `criteria`, optional, is a yes/no rule over the same fields:
    only those it selects are paid (a rule selecting nobody pays nobody)."""

    code = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=200)
    benefit_plan = models.ForeignKey(BenefitPlan, on_delete=models.PROTECT, related_name="payment_plans")
    formula = models.JSONField(default=dict)
    criteria = models.JSONField(default=dict, blank=True)
    ceiling_per_beneficiary = models.DecimalField(**MONEY, null=True, blank=True,
                                                  help_text="No one is paid more than this per cycle.")
    limit_per_transaction = models.DecimalField(
        **MONEY, null=True, blank=True,
        help_text="Lines above this amount are flagged and need an approval of their own.")
    periodicity = models.PositiveSmallIntegerField(choices=Periodicity.choices, default=Periodicity.MONTHLY)
    currency = CurrencyField(help_text="ISO 4217 code, e.g. USD, KES, TZS. A payroll keeps the currency it was "
                                       "generated in.")
    target_statuses = models.JSONField(default=default_target_statuses,
                                       help_text="Beneficiary statuses that are paid.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["code"]
        constraints = [
            # The messages reach users through full_clean(): the constraints' names would not tell them.
            models.CheckConstraint(condition=Q(ceiling_per_beneficiary__isnull=True) | Q(ceiling_per_beneficiary__gt=0),
                                   name="payment_plan_ceiling_positive", violation_error_code="ceiling_not_positive",
                                   violation_error_message="The ceiling per beneficiary must be more than zero."),
            models.CheckConstraint(condition=Q(limit_per_transaction__isnull=True) | Q(limit_per_transaction__gt=0),
                                   name="payment_plan_limit_positive", violation_error_code="limit_not_positive",
                                   violation_error_message="The limit per transaction must be more than zero."),
        ]

    def __str__(self):
        return f"{self.name} ({self.code})"

    @property
    def formula_text(self):
        return (self.formula or {}).get("text", "")

    @property
    def criteria_text(self):
        return (self.criteria or {}).get("text", "")


class CycleStatus(models.TextChoices):
    PLANNED = "PLANNED", "Planned"
    OPEN = "OPEN", "Open"
    CLOSED = "CLOSED", "Closed"


class PaymentCycle(FSMModelMixin, models.Model):
    """One payment period (openIMIS PaymentCycle), shared by every payment plan paying in it."""

    code = models.CharField(max_length=32, unique=True)
    start_date = models.DateField()
    end_date = models.DateField()
    status = FSMField(default=CycleStatus.PLANNED, choices=CycleStatus.choices, protected=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-start_date", "code"]
        constraints = [models.CheckConstraint(condition=Q(end_date__gte=models.F("start_date")),
                                              name="payment_cycle_ends_after_start",
                                              violation_error_code="ends_before_start",
                                              violation_error_message="The cycle must end on or after its start.")]

    def __str__(self):
        return f"{self.code} ({self.start_date:%Y-%m-%d} to {self.end_date:%Y-%m-%d})"

    @transition(field=status, source=CycleStatus.PLANNED, target=CycleStatus.OPEN)
    def open(self):
        pass

    @transition(field=status, source=CycleStatus.OPEN, target=CycleStatus.CLOSED)
    def close(self):
        pass


class PaymentProvider(models.Model):
    """Who pays out (a bank, a mobile-money operator, a post office network)."""

    code = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=200)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class PaymentPoint(models.Model):
    """Where a provider pays: the beneficiaries living under `location` collect there."""

    code = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=200)
    provider = models.ForeignKey(PaymentProvider, on_delete=models.PROTECT, related_name="points")
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return f"{self.name} ({self.provider})"


class PayrollStatus(models.TextChoices):
    GENERATING = "GENERATING", "Generating"
    # Sealed, not yet submitted: no checker has it until someone submits it (then PENDING_APPROVAL).
    GENERATED = "GENERATED", "Generated: to submit for approval"
    PENDING_APPROVAL = "PENDING_APPROVAL", "Waiting for approval"
    APPROVED = "APPROVED", "Approved for payment"
    RECONCILED = "RECONCILED", "Reconciled"
    REJECTED = "REJECTED", "Rejected"
    FAILED = "FAILED", "Failed"


# A rejected or failed payroll stays for audit but no longer blocks a new one for its plan and cycle.
DEAD_STATUSES = (PayrollStatus.REJECTED, PayrollStatus.FAILED)
# Payrolls whose lines are owed to people: what a person's record counts as due or received.
PAYABLE_STATUSES = (PayrollStatus.APPROVED, PayrollStatus.RECONCILED)
# Sealed and not decided yet: submitted for approval or still to submit.
UNDECIDED_STATUSES = (PayrollStatus.GENERATED, PayrollStatus.PENDING_APPROVAL)

# Each status as it reads after the payroll's name in a sentence ("CG 2025-01 is waiting for
# approval: ..."): the labels are column values, and one holds a colon of its own.
PAYROLL_STATUS_PHRASES = {
    PayrollStatus.GENERATING: "is being generated",
    PayrollStatus.GENERATED: "is still to be submitted for approval",
    PayrollStatus.PENDING_APPROVAL: "is waiting for approval",
    PayrollStatus.APPROVED: "is approved for payment",
    PayrollStatus.RECONCILED: "is reconciled",
    PayrollStatus.REJECTED: "was rejected",
    PayrollStatus.FAILED: "failed",
}


# Why a beneficiary in the statuses paid gets no line (generation.Formula.write counts them).
LEFT_OUT_REASONS = {
    "criteria_not_met": "the payment plan's criteria are not met",
    "unknown": "a value the formula reads is unknown",
    "no_value": "the formula gives no value though every value it reads is known (a division by zero)",
    "not_positive": "the formula gives zero or less",
    "no_recipient": "no live member of the household to pay",
}


class PayrollQuerySet(models.QuerySet):
    def update(self, **kwargs):
        if set(kwargs) & set(Payroll.SEALED_FIELDS) and self.exclude(status=PayrollStatus.GENERATING).exists():
            raise FrozenPayroll("A sealed payroll's lines, count, total and hash cannot change.")
        return super().update(**kwargs)

    def delete(self):
        raise FrozenPayroll("Payrolls are never deleted: a rejected one is kept for audit.")


class Payroll(FSMModelMixin, models.Model):
    """The payments of one payment plan in one cycle, frozen when generated. At most one live payroll
    per plan and cycle (the database refuses a second); a follow-up payroll pays the unpaid lines of
    an earlier one (`follow_up_of`), at most one live follow-up each."""

    SEALED_FIELDS = ("payment_plan", "payment_plan_id", "cycle", "cycle_id", "follow_up_of", "follow_up_of_id",
                     "line_count", "total", "seal_hash", "sealed_at", "formula", "parameters", "left_out")

    name = models.CharField(max_length=200)
    payment_plan = models.ForeignKey(PaymentPlan, on_delete=models.PROTECT, related_name="payrolls")
    cycle = models.ForeignKey(PaymentCycle, on_delete=models.PROTECT, related_name="payrolls")
    follow_up_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="follow_ups")
    status = FSMField(default=PayrollStatus.GENERATING, choices=PayrollStatus.choices, protected=True)
    # What it was generated from, as it was then: the formula and criteria (AST JSON and text), the
    # ceiling, the transaction limit and the statuses paid.
    formula = models.JSONField(default=dict)
    parameters = models.JSONField(default=dict)
    line_count = models.PositiveIntegerField(null=True, blank=True)
    # Beneficiaries in the statuses paid who got no line, counted when sealed, by why (LEFT_OUT_REASONS;
    # "unknown_inputs": the formula's inputs unknown for some of them): {} for a follow-up payroll.
    left_out = models.JSONField(default=dict, blank=True)
    total = models.DecimalField(**MONEY, null=True, blank=True)
    seal_hash = models.CharField(max_length=64, blank=True)
    sealed_at = models.DateTimeField(null=True, blank=True)
    job = models.ForeignKey("workflows.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    approval_request = models.ForeignKey("workflows.ApprovalRequest", null=True, blank=True,
                                         on_delete=models.SET_NULL, related_name="+")
    # Lines above the plan's transaction limit are paid only once their own approval
    # (payments.release_over_limit) sets this; the export leaves them out until then. Set once.
    over_limit_released_at = models.DateTimeField(null=True, blank=True)
    reason = models.TextField(blank=True)
    error = models.TextField(blank=True)
    # Which payroll its changes (PayrollChange) were counted against, and when: None before they are
    # (a payroll generated meanwhile for an earlier cycle, or the previous one rejected, makes them
    # stale until counted again: selectors.payroll_diff then counts from the lines).
    compared_with = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    compared_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    objects = PayrollQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        permissions = [("export_payroll", "Can export payrolls for payment providers"),
                       ("reconcile_payroll", "Can reconcile payrolls (what providers paid) and ask to close them")]
        constraints = [
            models.UniqueConstraint(fields=["payment_plan", "cycle"],
                                    condition=Q(follow_up_of__isnull=True) & ~Q(status__in=DEAD_STATUSES),
                                    name="payroll_one_live_per_plan_and_cycle"),
            models.UniqueConstraint(fields=["follow_up_of"],
                                    condition=Q(follow_up_of__isnull=False) & ~Q(status__in=DEAD_STATUSES),
                                    name="payroll_one_live_follow_up"),
            models.CheckConstraint(condition=Q(status=PayrollStatus.GENERATING) | Q(status=PayrollStatus.FAILED)
                                   | (Q(line_count__isnull=False) & Q(total__isnull=False) & ~Q(seal_hash="")),
                                   name="payroll_sealed_after_generation"),
        ]

    def __str__(self):
        return self.name

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        instance._loaded_status = instance.__dict__.get("status")
        instance._loaded_seal = {name: instance.__dict__.get(name) for name in cls.SEALED_FIELDS
                                 if name in instance.__dict__}
        return instance

    def save(self, *args, **kwargs):
        if getattr(self, "_loaded_status", PayrollStatus.GENERATING) != PayrollStatus.GENERATING:
            changed = [name for name, value in self._loaded_seal.items() if self.__dict__.get(name) != value]
            if changed:
                raise FrozenPayroll(f"{self} is sealed: {', '.join(changed)} cannot change.")
        super().save(*args, **kwargs)
        self._loaded_status = self.status
        self._loaded_seal = {name: self.__dict__.get(name) for name in self.SEALED_FIELDS if name in self.__dict__}

    def delete(self, *args, **kwargs):
        raise FrozenPayroll("Payrolls are never deleted: a rejected one is kept for audit.")

    @property
    def currency(self):
        return self.parameters.get("currency", "")

    @property
    def left_out_text(self):
        """How many beneficiaries in the statuses paid got no line, and why: "3 active beneficiaries left
        out: a value the formula reads is unknown (dependants)" (with several reasons, "...: a value the
        formula reads is unknown (dependants) for 2; the formula gives zero or less for 1"); "" when
        none was."""
        counts = {reason: self.left_out.get(reason, 0) for reason in LEFT_OUT_REASONS}
        total = sum(counts.values())
        if not total:
            return ""
        statuses = " or ".join(str(BeneficiaryStatus(status).label).lower()
                               for status in self.parameters.get("statuses", []))
        reasons = []
        for reason, count in counts.items():
            if count:
                why = LEFT_OUT_REASONS[reason]
                if reason == "unknown" and self.left_out.get("unknown_inputs"):
                    why += f" ({', '.join(self.left_out['unknown_inputs'])})"
                reasons.append(why if count == total else f"{why} for {count:,}")
        people = "beneficiary" if total == 1 else "beneficiaries"
        return f"{total:,} {statuses} {people} left out: {'; '.join(reasons)}"

    @property
    def status_phrase(self):
        """The status as the rest of a sentence that starts with the payroll's name."""
        return PAYROLL_STATUS_PHRASES[self.status]

    @property
    def is_frozen(self):
        return self.status != PayrollStatus.GENERATING

    @property
    def withholds_over_limit(self):
        """Whether the export leaves out the lines above the transaction limit (not released yet)."""
        return self.over_limit_released_at is None

    @transition(field=status, source=PayrollStatus.GENERATING, target=PayrollStatus.GENERATED)
    def seal(self, *, line_count, total, seal_hash, now, left_out=None):
        self.line_count, self.total, self.seal_hash, self.sealed_at = line_count, total, seal_hash, now
        self.left_out = left_out or {}

    @transition(field=status, source=PayrollStatus.GENERATED, target=PayrollStatus.PENDING_APPROVAL)
    def submit(self):
        pass

    @transition(field=status, source=PayrollStatus.PENDING_APPROVAL, target=PayrollStatus.GENERATED)
    def withdraw(self):
        """Its approval request ended undecided (cancelled, failed, void): to submit again."""

    @transition(field=status, source=PayrollStatus.GENERATING, target=PayrollStatus.FAILED)
    def fail(self, error):
        self.error = error

    @transition(field=status, source=PayrollStatus.PENDING_APPROVAL, target=PayrollStatus.APPROVED)
    def approve(self, now):
        self.decided_at = now

    @transition(field=status, source=UNDECIDED_STATUSES, target=PayrollStatus.REJECTED)
    def reject(self, reason, now):
        self.reason, self.decided_at = reason, now

    @transition(field=status, source=PayrollStatus.APPROVED, target=PayrollStatus.RECONCILED)
    def close(self):
        pass


class LineStatus(models.TextChoices):
    DUE = "DUE", "Due"
    PAID = "PAID", "Paid"
    UNPAID = "UNPAID", "Unpaid"
    CANCELLED = "CANCELLED", "Cancelled"


# What the payroll page, the reports and the dashboards call the lines in each status: one meaning
# each ("Lines" are all of them).
LINE_STATUS_WORDS = {LineStatus.DUE: "Still due", LineStatus.PAID: "Paid", LineStatus.UNPAID: "Failed (unpaid)",
                     LineStatus.CANCELLED: "Cancelled"}


class PaymentLineQuerySet(models.QuerySet):
    """Lines change only while their payroll is generating. Afterwards only reconciliation moves them
    (DUE to PAID or UNPAID, on an approved payroll), by its own set-based SQL
    (schemes.payments.reconciliation): no queryset, bulk or save() path does."""

    def update(self, **kwargs):
        if self.exclude(payroll__status=PayrollStatus.GENERATING).exists():
            raise FrozenPayroll("The lines of a sealed payroll cannot change (reconciliation excepted).")
        return super().update(**kwargs)

    def bulk_update(self, objs, fields, *args, **kwargs):
        ids = [obj.pk for obj in objs]
        if self.model.objects.filter(pk__in=ids).exclude(payroll__status=PayrollStatus.GENERATING).exists():
            raise FrozenPayroll("The lines of a sealed payroll cannot change (reconciliation excepted).")
        return super().bulk_update(objs, fields, *args, **kwargs)

    def delete(self):
        if self.exclude(payroll__status=PayrollStatus.GENERATING).exists():
            raise FrozenPayroll("The lines of a sealed payroll are kept.")
        return super().delete()

    def bulk_create(self, objs, *args, **kwargs):
        objs = list(objs)
        if Payroll.objects.filter(pk__in={obj.payroll_id for obj in objs}).exclude(
                status=PayrollStatus.GENERATING).exists():
            raise FrozenPayroll("No line is added to a sealed payroll.")
        return super().bulk_create(objs, *args, **kwargs)


class PaymentLine(FSMModelMixin, models.Model):
    """One payment (openIMIS benefit consumption): the beneficiary (of an individual or a household
    plan), the person who collects it, the amount and the formula's inputs as they were, where the
    recipient lived then. Written only by the payroll's INSERT ... SELECT: references carry no
    foreign-key constraint (a million index probes at commit); the rows they name are never deleted
    (beneficiaries and people are protected by their own apps' guards).

    `code` is derived from the id (reconciliation files carry it); status moves DUE -> PAID (receipt,
    paid date) | UNPAID by reconciliation only: set-based SQL, on an approved payroll (no model
    method moves it: schemes.payments.reconciliation; on PostgreSQL a trigger refuses any other writer)."""

    RECONCILIATION_FIELDS = ("status", "receipt", "paid_on")
    CODE_PREFIX = "PL"

    payroll = models.ForeignKey(Payroll, on_delete=models.PROTECT, related_name="lines", db_constraint=False,
                                db_index=False)  # (payroll, beneficiary_id) serves
    beneficiary_id = models.BigIntegerField()
    recipient = models.ForeignKey(Individual, null=True, on_delete=models.PROTECT, related_name="payment_lines",
                                  db_constraint=False)
    location = models.ForeignKey(Location, null=True, on_delete=models.PROTECT, related_name="+",
                                 db_constraint=False, db_index=False)
    amount = models.DecimalField(**MONEY)
    inputs = models.JSONField(default=dict)
    flagged_over_limit = models.BooleanField(default=False)
    status = FSMField(default=LineStatus.DUE, choices=LineStatus.choices, protected=True)
    receipt = models.CharField(max_length=100, blank=True)
    paid_on = models.DateField(null=True, blank=True)

    objects = PaymentLineQuerySet.as_manager()

    class Meta:
        ordering = ["payroll", "beneficiary_id"]
        constraints = [
            models.UniqueConstraint(fields=["payroll", "beneficiary_id"], name="payment_line_one_per_beneficiary"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_line_amount_positive"),
        ]

    def __str__(self):
        return self.code

    @property
    def code(self):
        return f"{self.CODE_PREFIX}{self.pk:09d}"

    @property
    def currency(self):
        """The payroll's (as generated), not its payment plan's now."""
        return self.payroll.currency

    @classmethod
    def pk_from_code(cls, code):
        """The id a line code names, or None for text that is not a line code."""
        digits = (code or "").strip().upper().removeprefix(cls.CODE_PREFIX)
        return int(digits) if digits.isascii() and digits.isdigit() else None

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        instance._loaded = {name: instance.__dict__.get(name) for name in (
            "amount", "beneficiary_id", "payroll_id", "inputs", "flagged_over_limit", *cls.RECONCILIATION_FIELDS)}
        return instance

    def save(self, *args, **kwargs):
        loaded = getattr(self, "_loaded", None)
        changed = self._state.adding or any(self.__dict__.get(name) != value for name, value in loaded.items())
        if changed and Payroll.objects.filter(pk=self.payroll_id).exclude(status=PayrollStatus.GENERATING).exists():
            raise FrozenPayroll("The lines of a sealed payroll cannot change.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        if Payroll.objects.filter(pk=self.payroll_id).exclude(status=PayrollStatus.GENERATING).exists():
            raise FrozenPayroll("The lines of a sealed payroll are kept.")
        return super().delete(*args, **kwargs)


class PayrollTotal(models.Model):
    """A payroll's lines counted and summed per location, status and over-limit flag: what its page,
    its approval request and the reports read instead of a million lines. Written with the lines (a row
    for every status, zero until lines reach it) and moved in the same statements as the lines'
    statuses (schemes.payments.summaries)."""

    payroll = models.ForeignKey(Payroll, on_delete=models.PROTECT, related_name="totals")
    location = models.ForeignKey(Location, null=True, on_delete=models.PROTECT, related_name="+",
                                 db_constraint=False, db_index=False)
    status = models.CharField(max_length=20, choices=LineStatus.choices)
    flagged_over_limit = models.BooleanField()
    lines = models.IntegerField()
    amount = models.DecimalField(**MONEY)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["payroll", "location", "status", "flagged_over_limit"],
                                               nulls_distinct=False, name="payroll_total_one_per_group")]

    def __str__(self):
        return f"{self.payroll_id} {self.location_id} {self.status}: {self.lines}"


class ChangeKind(models.TextChoices):
    NEW = "NEW", "New"
    REMOVED = "REMOVED", "Removed"
    CHANGED = "CHANGED", "Changed amount"


class PayrollChange(models.Model):
    """How a payroll differs from the previous cycle's (`Payroll.compared_with`), counted per location
    when it is sealed: beneficiaries new to it and changed amounts where the line is now, removed ones
    where their previous line was. `amount` sums the lines' amounts here, `previous_amount` there."""

    payroll = models.ForeignKey(Payroll, on_delete=models.PROTECT, related_name="changes")
    location = models.ForeignKey(Location, null=True, on_delete=models.PROTECT, related_name="+",
                                 db_constraint=False, db_index=False)
    kind = models.CharField(max_length=10, choices=ChangeKind.choices)
    lines = models.IntegerField()
    amount = models.DecimalField(**MONEY)
    previous_amount = models.DecimalField(**MONEY)

    def __str__(self):
        return f"{self.payroll_id} {self.location_id} {self.kind}: {self.lines}"


class ProviderToken(models.Model):
    """A secret a payment provider's system sends to the provider API (`Authorization: Token <secret>`).
    Only a SHA-256 of the secret is kept (the secret is random, so a fast hash is enough and lets the
    API find the token in one indexed lookup); it is shown once, when created. `prefix` (the secret's
    first characters, not secret by itself) names it in lists and in the audit trail.

    The API acts as `user`, the provider's service user (one per provider, role "Payment provider
    (API)", no password): services and selectors get a real `by` for their permission checks and the
    audit, while the token decides the reach: its requests see only the provider's points' locations."""

    PREFIX_LENGTH = 12

    provider = models.ForeignKey(PaymentProvider, on_delete=models.PROTECT, related_name="api_tokens")
    name = models.CharField(max_length=100, help_text="What the token is for, e.g. the provider's system using it.")
    prefix = models.CharField(max_length=PREFIX_LENGTH, unique=True)
    secret_hash = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="provider_tokens")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    class Meta:
        ordering = ["-created_at", "-pk"]
        permissions = [("manage_provider_token", "Can create and revoke payment providers' API tokens")]

    def __str__(self):
        return f"{self.prefix}… ({self.provider})"

    @property
    def is_active(self):
        return self.revoked_at is None


class ApiIdempotencyKey(models.Model):
    """The first answer to a provider API request sent with an `Idempotency-Key`: the same key with
    the same request gets it again (nothing applied twice), with another request a refusal. Keys
    belong to the provider, not to one token, so a retry after the provider rotated its token is
    still recognised."""

    provider = models.ForeignKey(PaymentProvider, on_delete=models.PROTECT, related_name="+")
    token = models.ForeignKey(ProviderToken, on_delete=models.PROTECT, related_name="+")
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField()
    response_body = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["provider", "key"], name="api_idempotency_key_per_provider")]

    def __str__(self):
        return self.key
