from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Lower
from django_fsm import FSMField, FSMModelMixin, transition
from modelcluster.fields import ParentalKey
from modelcluster.models import ClusterableModel, get_all_child_relations
from wagtail.admin.panels import FieldPanel, FieldRowPanel
from wagtail.models import Orderable, RevisionMixin

from schemes.registry.models import Household, Individual
from sites.fields import AttributeSchema, FieldDefinition, name_key
from sites.models import CurrencyField, Location

from .widgets import ChoiceLinesInput


class PlanType(models.TextChoices):
    INDIVIDUAL = "INDIVIDUAL", "Individuals"
    HOUSEHOLD = "HOUSEHOLD", "Households"


class PlanStatus(models.TextChoices):
    DRAFT = "DRAFT", "Draft"
    ACTIVE = "ACTIVE", "Active"
    CLOSED = "CLOSED", "Closed"


class BenefitPlan(FSMModelMixin, RevisionMixin, ClusterableModel):
    """A programme. `live_beneficiaries` is kept by the enrolment and transition statements, and the
    database refuses it above `max_beneficiaries`: the maximum holds however many enrol at once.
    Every saved change is a revision (its schema and cut-offs included): the plan's versions."""

    code = models.CharField(max_length=32)  # unique whatever the case: see Meta
    name = models.CharField(max_length=200)
    plan_type = models.CharField(max_length=10, choices=PlanType.choices, default=PlanType.INDIVIDUAL)
    description = models.TextField(blank=True)
    institution = models.CharField(max_length=200, blank=True)
    valid_from = models.DateField(null=True, blank=True)
    valid_to = models.DateField(null=True, blank=True)
    max_beneficiaries = models.PositiveIntegerField(null=True, blank=True)
    ceiling_per_beneficiary = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)
    currency = CurrencyField(help_text="ISO 4217 code.")
    status = FSMField(default=PlanStatus.DRAFT, choices=PlanStatus.choices, protected=True)
    # Default eligibility per target status: {"POTENTIAL": {"text": ..., "rule": <AST JSON>}, "ACTIVE": ...}.
    criteria = models.JSONField(default=dict, blank=True)
    # Targeting (proxy means test): a score per person or household, {"text": ..., "rule": <AST JSON>};
    # those scoring at or below the cut-off of their region (PlanCutoff, else `score_cutoff`) qualify.
    score_formula = models.JSONField(default=dict, blank=True)
    score_cutoff = models.DecimalField("default cut-off", max_digits=18, decimal_places=4, null=True, blank=True,
                                       help_text="Qualifying score where no region has its own cut-off.")
    live_beneficiaries = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(max_beneficiaries__isnull=True) | Q(live_beneficiaries__lte=F("max_beneficiaries")),
                name="plan_live_beneficiaries_within_maximum", violation_error_code="below_live_beneficiaries",
                violation_error_message="The maximum is below the plan's beneficiaries now (suspended ones count)."),
            models.CheckConstraint(condition=Q(valid_to__isnull=True) | Q(valid_from__isnull=True)
                                   | Q(valid_to__gte=F("valid_from")), name="plan_valid_to_after_valid_from",
                                   violation_error_code="ends_before_start",
                                   violation_error_message="The plan must be valid to a date on or after it is "
                                                           "valid from."),
            # "CCT-1" and "cct-1" name one programme: codes and names are compared ignoring case.
            models.UniqueConstraint(Lower("code"), name="plan_code_unique_any_case", violation_error_code="code_taken",
                                    violation_error_message="Another plan has this code (codes are compared ignoring "
                                                            "upper and lower case)."),
            models.UniqueConstraint(Lower("name"), name="plan_name_unique_any_case", violation_error_code="name_taken",
                                    violation_error_message="Another plan has this name (names are compared ignoring "
                                                            "upper and lower case)."),
        ]

    def __str__(self):
        return f"{self.name} ({self.code})"

    # Written only when this instance changed them (a transition, closing): saving a form must not
    # put back a count or a status read a moment before an enrolment or a transition changed it.
    GUARDED_FIELDS = ("live_beneficiaries", "status")

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        instance._loaded_guarded = {name: instance.__dict__.get(name) for name in cls.GUARDED_FIELDS}
        return instance

    def save(self, *args, **kwargs):
        loaded = getattr(self, "_loaded_guarded", None)
        if kwargs.get("update_fields") is None and not self._state.adding and loaded is not None:
            unchanged = {name for name in self.GUARDED_FIELDS if self.__dict__.get(name) == loaded[name]}
            kwargs["update_fields"] = [
                field.name for field in self._meta.concrete_fields
                if not field.primary_key and field.name not in unchanged
            ] + [relation.get_accessor_name() for relation in get_all_child_relations(self)]
        super().save(*args, **kwargs)
        self._loaded_guarded = {name: self.__dict__.get(name) for name in self.GUARDED_FIELDS}

    @transition(field=status, source=PlanStatus.DRAFT, target=PlanStatus.ACTIVE)
    def activate(self):
        pass

    @transition(field=status, source=PlanStatus.ACTIVE, target=PlanStatus.CLOSED)
    def close(self):
        pass

    def schema(self):
        return AttributeSchema(self.fields.order_by("sort_order", "name"))

    @property
    def beneficiary_model(self):
        return HouseholdBeneficiary if self.plan_type == PlanType.HOUSEHOLD else Beneficiary

    def beneficiaries_of_type(self):
        return self.beneficiary_model.objects.filter(plan=self)

    def criteria_text(self, status):
        return (self.criteria or {}).get(status, {}).get("text", "")


class PlanField(FieldDefinition):
    """One field of the plan's beneficiary schema (openIMIS `beneficiary_data_schema`)."""

    plan = ParentalKey(BenefitPlan, on_delete=models.CASCADE, related_name="fields")
    unique = models.BooleanField(default=False, help_text="No two beneficiaries of the plan share a value.")

    sort_order_field = "sort_order"  # the rows keep the order they are entered in (the form can move them)

    panels = [FieldPanel(name) for name in ("name", "label", "field_type", "required", "unique", "sensitive",
                                             "min_value", "max_value", "decimal_places", "pattern")] + [
        FieldPanel("choices", widget=ChoiceLinesInput, help_text="Choice: the allowed values, one per line or "
                                                                 "separated by commas (a JSON list works too)."),
        FieldPanel("help_text")]

    class Meta(FieldDefinition.Meta):
        constraints = [models.UniqueConstraint(fields=["plan", "name"], name="plan_field_unique_name")]


class PlanCutoff(Orderable):
    """The qualifying score in one region (or any location: the deepest one above a person wins)."""

    plan = ParentalKey(BenefitPlan, on_delete=models.CASCADE, related_name="cutoffs")
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="+")
    cutoff = models.DecimalField(max_digits=18, decimal_places=4)

    panels = [FieldRowPanel([FieldPanel("location"), FieldPanel("cutoff")])]

    class Meta(Orderable.Meta):
        constraints = [models.UniqueConstraint(fields=["plan", "location"], name="plan_cutoff_one_per_location")]

    def __str__(self):
        return f"{self.location}: {self.cutoff}"


# The lookups of the beneficiaries' JSON `attributes` (`contains`, `exact`, `gt`, `has_key`...): a query
# on `attributes__<name>` reads a field of one of these names as the lookup, not as the key.
DATA_LOOKUPS = {name_key(name): name for name in models.JSONField.get_lookups()}


def check_plan_field_names(plan_type, names):
    """Refuse plan field names that would not be the plan's own: a field the plan type's records
    already have (`age`, a registry attribute...: rules naming it would read that one), another
    column of the plan's files (`gender` is read as a person's sex), a lookup of the plan data
    (DATA_LOOKUPS), or another of `names`. Names are compared as files match headers, ignoring
    case and underscores (`groupId` is `group_id`)."""
    from .catalogues import reserved_field_names

    whose = "household" if plan_type == PlanType.HOUSEHOLD else "person"
    taken = {name_key(name): name for name in reserved_field_names(plan_type)}
    columns, shared = _file_columns(plan_type)
    errors, seen = [], {}
    for name in names:
        key = name_key(name)
        if key in seen:
            errors.append(f"'{seen[key]}' and '{name}' would be one column in files (names are matched ignoring "
                          "case and underscores): rename one.")
            continue
        seen[key] = name
        if key in taken:
            errors.append(f"'{name}' is already a field of every {whose}{_as_written(name, taken[key])}: give the "
                          "plan's own field another name.")
        elif key in columns and name not in shared:
            errors.append(f"'{name}' is read as the column {columns[key]} of the plan's files: give the plan's own "
                          "field another name.")
        elif key in DATA_LOOKUPS:
            errors.append(f"'{name}' is a database lookup{_as_written(name, DATA_LOOKUPS[key])}: a search of the "
                          "beneficiaries' plan data would read it as that lookup, not as this field. Give the field "
                          "another name.")
    if errors:
        raise ValidationError({"name": errors})


def _as_written(name, other):
    return "" if name == other else f" (as '{other}')"


def _file_columns(plan_type):
    """The headers (by key) that the plan's files read as a column other than a plan field, and the
    names a plan field may share: an individual plan's enrolment file reads a person column and the
    plan's field of the same name (group_code, recipient_info...) from one cell."""
    from schemes.bulk.beneficiaries import ENROLMENTS, UPDATES
    from schemes.bulk.files import header_key

    plan = BenefitPlan(plan_type=plan_type)  # no fields: the files' own columns
    columns = {header_key(text): column.name for importer in (ENROLMENTS, UPDATES)
               for column in importer.columns(plan) for text in (column.name, *column.aliases)}
    shared = {column.name for column in ENROLMENTS.columns(plan)} if plan_type == PlanType.INDIVIDUAL else set()
    return columns, shared


class BeneficiaryStatus(models.TextChoices):
    POTENTIAL = "POTENTIAL", "Potential"
    ACTIVE = "ACTIVE", "Active"
    SUSPENDED = "SUSPENDED", "Suspended"
    GRADUATED = "GRADUATED", "Graduated"
    REJECTED = "REJECTED", "Rejected"


LIVE_STATUSES = (BeneficiaryStatus.POTENTIAL, BeneficiaryStatus.ACTIVE, BeneficiaryStatus.SUSPENDED)


class BeneficiaryBase(FSMModelMixin, models.Model):
    """What beneficiaries of individual and of household plans share: statuses moved only by these
    transitions, the plan-schema attributes, and who changed the status last."""

    status = FSMField(default=BeneficiaryStatus.POTENTIAL, choices=BeneficiaryStatus.choices, protected=True)
    attributes = models.JSONField(default=dict, blank=True)
    reason = models.TextField(blank=True)
    enrolled_at = models.DateTimeField()
    status_changed_at = models.DateTimeField()
    status_changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                          on_delete=models.SET_NULL, related_name="+", db_index=False)

    class Meta:
        abstract = True

    def __str__(self):
        return f"{self.subject} in {self.plan.code}"

    @property
    def subject(self):
        return getattr(self, self.SUBJECT)

    @transition(field="status", source=BeneficiaryStatus.POTENTIAL, target=BeneficiaryStatus.ACTIVE)
    def activate(self):
        pass

    @transition(field="status", source=BeneficiaryStatus.ACTIVE, target=BeneficiaryStatus.SUSPENDED)
    def suspend(self, reason):
        self.reason = reason

    @transition(field="status", source=BeneficiaryStatus.SUSPENDED, target=BeneficiaryStatus.ACTIVE)
    def reinstate(self):
        self.reason = ""

    @transition(field="status", source=[BeneficiaryStatus.ACTIVE, BeneficiaryStatus.SUSPENDED],
                target=BeneficiaryStatus.GRADUATED)
    def graduate(self, reason):
        self.reason = reason

    @transition(field="status", source=BeneficiaryStatus.POTENTIAL, target=BeneficiaryStatus.REJECTED)
    def reject(self, reason):
        self.reason = reason


# Enrolment inserts a million rows at once, each naming a plan and a person (or household) its own
# SELECT just read. Foreign-key constraints would check each reference again at commit (a million
# index probes per key: close to half the enrolment's time); instead triggers refuse to delete a plan,
# a person or a household that has beneficiaries (migrations 0002, 0004, 0005; the ORM's PROTECT too).
# The plan reference has no index of its own: (plan, status) serves.
def _plan_reference(related_name):
    return models.ForeignKey(BenefitPlan, on_delete=models.PROTECT, related_name=related_name,
                             db_index=False, db_constraint=False)


def _subject_reference(model):
    return models.ForeignKey(model, on_delete=models.PROTECT, related_name="beneficiaries", db_constraint=False)


class Beneficiary(BeneficiaryBase):
    SUBJECT = "individual"

    plan = _plan_reference("beneficiaries")
    individual = _subject_reference(Individual)

    class Meta:
        ordering = ["plan", "id"]
        verbose_name_plural = "beneficiaries"
        constraints = [
            models.UniqueConstraint(fields=["plan", "individual"], condition=Q(status__in=LIVE_STATUSES),
                                    name="beneficiary_one_live_enrolment_per_plan"),
        ]
        indexes = [models.Index(fields=["plan", "status"], name="beneficiary_plan_status_idx")]


class HouseholdBeneficiary(BeneficiaryBase):
    """A household enrolled in a household plan (openIMIS GroupBeneficiary)."""

    SUBJECT = "household"

    plan = _plan_reference("household_beneficiaries")
    household = _subject_reference(Household)

    class Meta:
        ordering = ["plan", "id"]
        verbose_name = "household beneficiary"
        verbose_name_plural = "household beneficiaries"
        constraints = [
            models.UniqueConstraint(fields=["plan", "household"], condition=Q(status__in=LIVE_STATUSES),
                                    name="household_beneficiary_one_live_enrolment_per_plan"),
        ]
        indexes = [models.Index(fields=["plan", "status"], name="hh_beneficiary_plan_status_idx")]
