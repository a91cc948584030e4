import datetime
import unicodedata

from django.db import models
from django.db.models import Q, Value
from django.db.models.functions import Concat, Lower

from sites.fields import AttributeSchema, FieldDefinition, ascii_digits
from sites.models import Location


def normalise_national_id(raw):
    """Trim, NFKC, Unicode digits to ASCII, drop spaces, dashes (any kind), dots, slashes and
    underscores, upper-case. Empty becomes None so that the uniqueness constraint ignores it."""
    if raw is None:
        return None
    if isinstance(raw, str) and raw.isascii() and raw.isalnum():  # the common case, millions per import
        return raw.upper()
    text = unicodedata.normalize("NFKC", str(raw)).strip()
    text = "".join(ch for ch in text
                   if not ch.isspace() and ch not in "_./" and unicodedata.category(ch) != "Pd")
    text = ascii_digits(text)
    return text.upper() or None


class RegistryField(FieldDefinition):
    """An administrator-defined attribute of individuals or of households."""

    class Target(models.TextChoices):
        INDIVIDUAL = "individual", "Individual"
        HOUSEHOLD = "household", "Household"

    target = models.CharField(max_length=16, choices=Target.choices, default=Target.INDIVIDUAL)

    class Meta(FieldDefinition.Meta):
        verbose_name = "registry field"
        constraints = [
            models.UniqueConstraint(fields=["target", "name"], name="registry_field_unique_name"),
        ]

    @classmethod
    def schema_for(cls, target):
        return AttributeSchema(cls.objects.filter(target=target).order_by("sort_order", "name"))


class Sex(models.TextChoices):
    FEMALE = "F", "Female"
    MALE = "M", "Male"
    OTHER = "O", "Other"


class SoftDeleteQuerySet(models.QuerySet):
    def live(self):
        return self.filter(deleted_at__isnull=True)

    def deleted(self):
        return self.filter(deleted_at__isnull=False)


class Individual(models.Model):
    first_name = models.CharField(max_length=100)
    last_name = models.CharField(max_length=100)
    dob = models.DateField("date of birth")
    sex = models.CharField(max_length=1, choices=Sex.choices)
    national_id = models.CharField("national ID", max_length=64, null=True, blank=True)
    phone = models.CharField(max_length=32, blank=True)
    location = models.ForeignKey(Location, null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="individuals")
    attributes = models.JSONField(default=dict, blank=True)
    # Lower-cased "first last", kept by the database, searched with a trigram index on PostgreSQL.
    search_name = models.GeneratedField(
        expression=Lower(Concat("first_name", Value(" "), "last_name")),
        output_field=models.TextField(),
        db_persist=True,
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = SoftDeleteQuerySet.as_manager()

    class Meta:
        ordering = ["last_name", "first_name", "id"]
        permissions = [("view_sensitive_data", "Can see national IDs, phone numbers and sensitive attributes")]
        constraints = [
            models.UniqueConstraint(fields=["national_id"], condition=Q(deleted_at__isnull=True),
                                    name="individual_unique_live_national_id"),
        ]
        indexes = [
            models.Index(fields=["last_name", "first_name", "id"], name="individual_name_idx"),
            models.Index(fields=["dob"], name="individual_dob_idx"),
            models.Index(fields=["location", "last_name", "first_name", "id"], name="individual_loc_name_idx"),
        ]

    def __str__(self):
        return f"{self.first_name} {self.last_name}"

    @property
    def is_deleted(self):
        return self.deleted_at is not None

    def age(self, on=None):
        on = on or datetime.date.today()
        return on.year - self.dob.year - ((on.month, on.day) < (self.dob.month, self.dob.day))


class Household(models.Model):
    code = models.CharField(max_length=32, unique=True)
    location = models.ForeignKey(Location, null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="households")
    attributes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = SoftDeleteQuerySet.as_manager()

    class Meta:
        ordering = ["code"]
        indexes = [models.Index(fields=["location", "code"], name="household_loc_code_idx")]

    def __str__(self):
        return self.code

    @property
    def is_deleted(self):
        return self.deleted_at is not None

    @property
    def head(self):
        membership = self.memberships.filter(role_id=MemberRole.HEAD).select_related("individual").first()
        return membership.individual if membership else None


class MemberRole(models.Model):
    """Roles of household members. HEAD is built in; administrators may add more."""

    HEAD = "HEAD"
    DEFAULTS = [
        ("HEAD", "Head"), ("SPOUSE", "Spouse"), ("SON", "Son"), ("DAUGHTER", "Daughter"),
        ("GRANDFATHER", "Grandfather"), ("GRANDMOTHER", "Grandmother"), ("MOTHER", "Mother"),
        ("FATHER", "Father"),
    ]

    code = models.CharField(max_length=24, primary_key=True)
    label = models.CharField(max_length=60)
    sort_order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["sort_order", "code"]

    def __str__(self):
        return self.label

    @classmethod
    def ensure_defaults(cls):
        for order, (code, label) in enumerate(cls.DEFAULTS):
            cls.objects.get_or_create(code=code, defaults={"label": label, "sort_order": order * 10})


class RecipientType(models.TextChoices):
    PRIMARY = "PRIMARY", "Primary recipient"
    SECONDARY = "SECONDARY", "Secondary recipient"


class Membership(models.Model):
    household = models.ForeignKey(Household, on_delete=models.CASCADE, related_name="memberships")
    individual = models.OneToOneField(Individual, on_delete=models.CASCADE, related_name="membership")
    role = models.ForeignKey(MemberRole, on_delete=models.PROTECT, related_name="memberships")
    recipient_type = models.CharField(max_length=10, choices=RecipientType.choices, null=True, blank=True)
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["household", "joined_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["household"], condition=Q(role="HEAD"),
                                    name="membership_one_head_per_household"),
            models.UniqueConstraint(fields=["household"], condition=Q(recipient_type="PRIMARY"),
                                    name="membership_one_primary_per_household"),
        ]

    def __str__(self):
        return f"{self.individual} in {self.household} ({self.role_id})"
