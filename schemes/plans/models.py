from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django_fsm import FSMField, FSMModelMixin, transition
from modelcluster.fields import ParentalKey
from modelcluster.models import ClusterableModel
from wagtail.admin.panels import FieldPanel

from schemes.registry.models import Individual
from sites.fields import AttributeSchema, FieldDefinition


class PlanType(models.TextChoices):
    INDIVIDUAL = "INDIVIDUAL", "Individuals"
    HOUSEHOLD = "HOUSEHOLD", "Households"


class PlanStatus(models.TextChoices):
    DRAFT = "DRAFT", "Draft"
    ACTIVE = "ACTIVE", "Active"
    CLOSED = "CLOSED", "Closed"


class BenefitPlan(FSMModelMixin, ClusterableModel):
    """A programme. `live_beneficiaries` is kept by the enrolment and transition statements, and the
    database refuses it above `max_beneficiaries`: the maximum holds however many enrol at once."""

    code = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=200, unique=True)
    plan_type = models.CharField(max_length=10, choices=PlanType.choices, default=PlanType.INDIVIDUAL)
    description = models.TextField(blank=True)
    institution = models.CharField(max_length=200, blank=True)
    valid_from = models.DateField(null=True, blank=True)
    valid_to = models.DateField(null=True, blank=True)
    max_beneficiaries = models.PositiveIntegerField(null=True, blank=True)
    ceiling_per_beneficiary = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, default="USD")
    status = FSMField(default=PlanStatus.DRAFT, choices=PlanStatus.choices, protected=True)
    # Default eligibility per target status: {"POTENTIAL": {"text": ..., "rule": <AST JSON>}, "ACTIVE": ...}.
    criteria = models.JSONField(default=dict, blank=True)
    live_beneficiaries = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(max_beneficiaries__isnull=True) | Q(live_beneficiaries__lte=F("max_beneficiaries")),
                name="plan_live_beneficiaries_within_maximum"),
            models.CheckConstraint(condition=Q(valid_to__isnull=True) | Q(valid_from__isnull=True)
                                   | Q(valid_to__gte=F("valid_from")), name="plan_valid_to_after_valid_from"),
        ]

    def __str__(self):
        return f"{self.name} ({self.code})"

    @transition(field=status, source=PlanStatus.DRAFT, target=PlanStatus.ACTIVE)
    def activate(self):
        pass

    @transition(field=status, source=PlanStatus.ACTIVE, target=PlanStatus.CLOSED)
    def close(self):
        pass

    def schema(self):
        return AttributeSchema(self.fields.order_by("sort_order", "name"))

    def criteria_text(self, status):
        return (self.criteria or {}).get(status, {}).get("text", "")


class PlanField(FieldDefinition):
    """One field of the plan's beneficiary schema (openIMIS `beneficiary_data_schema`)."""

    plan = ParentalKey(BenefitPlan, on_delete=models.CASCADE, related_name="fields")
    unique = models.BooleanField(default=False, help_text="No two beneficiaries of the plan share a value.")

    panels = [FieldPanel(name) for name in ("name", "label", "field_type", "required", "unique", "min_value",
                                             "max_value", "pattern", "choices", "help_text")]

    class Meta(FieldDefinition.Meta):
        constraints = [models.UniqueConstraint(fields=["plan", "name"], name="plan_field_unique_name")]


class BeneficiaryStatus(models.TextChoices):
    POTENTIAL = "POTENTIAL", "Potential"
    ACTIVE = "ACTIVE", "Active"
    SUSPENDED = "SUSPENDED", "Suspended"
    GRADUATED = "GRADUATED", "Graduated"
    REJECTED = "REJECTED", "Rejected"


LIVE_STATUSES = (BeneficiaryStatus.POTENTIAL, BeneficiaryStatus.ACTIVE, BeneficiaryStatus.SUSPENDED)


class Beneficiary(FSMModelMixin, models.Model):
    # Enrolment inserts a million rows of one plan at once. A foreign-key constraint would check the
    # same plan a million times (a third of the enrolment's time); instead a trigger refuses to delete
    # a plan that has beneficiaries (migration 0002), and no index of its own: (plan, status) serves.
    plan = models.ForeignKey(BenefitPlan, on_delete=models.PROTECT, related_name="beneficiaries",
                             db_index=False, db_constraint=False)
    individual = models.ForeignKey(Individual, on_delete=models.PROTECT, related_name="beneficiaries")
    status = FSMField(default=BeneficiaryStatus.POTENTIAL, choices=BeneficiaryStatus.choices, protected=True)
    attributes = models.JSONField(default=dict, blank=True)
    reason = models.TextField(blank=True)
    enrolled_at = models.DateTimeField()
    status_changed_at = models.DateTimeField()
    status_changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                          on_delete=models.SET_NULL, related_name="+", db_index=False)

    class Meta:
        ordering = ["plan", "id"]
        verbose_name_plural = "beneficiaries"
        constraints = [
            models.UniqueConstraint(fields=["plan", "individual"], condition=Q(status__in=LIVE_STATUSES),
                                    name="beneficiary_one_live_enrolment_per_plan"),
        ]
        indexes = [models.Index(fields=["plan", "status"], name="beneficiary_plan_status_idx")]

    def __str__(self):
        return f"{self.individual} in {self.plan.code}"

    @transition(field=status, source=BeneficiaryStatus.POTENTIAL, target=BeneficiaryStatus.ACTIVE,
                permission="plans.change_beneficiary")
    def activate(self):
        pass

    @transition(field=status, source=BeneficiaryStatus.ACTIVE, target=BeneficiaryStatus.SUSPENDED,
                permission="plans.change_beneficiary")
    def suspend(self, reason):
        self.reason = reason

    @transition(field=status, source=BeneficiaryStatus.SUSPENDED, target=BeneficiaryStatus.ACTIVE,
                permission="plans.change_beneficiary")
    def reinstate(self):
        self.reason = ""

    @transition(field=status, source=[BeneficiaryStatus.ACTIVE, BeneficiaryStatus.SUSPENDED],
                target=BeneficiaryStatus.GRADUATED, permission="plans.change_beneficiary")
    def graduate(self, reason):
        self.reason = reason

    @transition(field=status, source=BeneficiaryStatus.POTENTIAL, target=BeneficiaryStatus.REJECTED,
                permission="plans.change_beneficiary")
    def reject(self, reason):
        self.reason = reason
