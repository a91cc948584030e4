import datetime
import re
import unicodedata

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q, Value
from django.db.models.functions import Concat, Lower
from django.dispatch import receiver
from django_fsm import FSMField, FSMModelMixin, transition
from django_fsm.signals import post_transition

from sites.fields import AttributeSchema, FieldDefinition, ascii_digits, name_key
from sites.models import Location
from workflows.models import ApprovalRequest, RequestStatus


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


OLDEST_BIRTH_YEAR = 1900
PHONE_TEXT = re.compile(r"\+?[0-9(][0-9 ().\-]*")  # begins with +, a digit or a bracket: never "-"


def phone_problem(phone):
    """Why `phone` (stripped, ASCII digits) is not a phone number, or "": digits, with spaces, dots,
    dashes and brackets between them and a leading +, never a leading dash; 6 to 15 digits (E.164 allows 15)."""
    digits = sum(ch.isdigit() for ch in phone)
    if not PHONE_TEXT.fullmatch(phone) or not 6 <= digits <= 15:
        return f"'{phone}' is not a phone number (6 to 15 digits; spaces, + - ( ) . allowed)."
    return ""


BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
INVISIBLE_CATEGORIES = frozenset({"Cf", "Zs", "Zl", "Zp", "Cc"})


def name_problem(name):
    """Why `name` (a first or last name) cannot be a name, or "": control characters (line breaks,
    tabs), text-direction overrides, embeddings and isolates, or nothing visible (only spaces and
    zero-width characters). Joiners inside a visible name (Persian, Indic scripts) are fine."""
    if name.isprintable():  # the common case, millions of times per import: no check further
        return "" if not name.isspace() else "A name needs at least one visible character."
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        return "A name cannot contain line breaks, tabs or other control characters."
    if any(ch in BIDI_CONTROLS for ch in name):
        return "A name cannot contain text-direction control characters (U+202A-U+202E, U+2066-U+2069)."
    if all(unicodedata.category(ch) in INVISIBLE_CATEGORIES for ch in name):
        return "A name needs at least one visible character (it holds only spaces or invisible characters)."
    return ""


def national_id_problem(national_id, rule):
    """Why the normalised `national_id` does not have the country's format, or "". `rule`: (pattern,
    format as clerks know it) from OrganisationSettings.national_id_rule(), or None (any ID)."""
    if rule is None or rule[0].fullmatch(national_id):
        return ""
    pattern, described = rule
    # The ID itself is not quoted: normalised (spaces, case), it would not be masked like the cell in the
    # error file of a reader who may not see national IDs.
    message = f"Not a national ID ({described})."
    if national_id.isdigit() and any(pattern.fullmatch("0" * zeros + national_id) for zeros in (1, 2, 3)):
        message += " Its leading zeros look lost (spreadsheets drop them unless the column is text)."
    return message


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

    def clean(self):
        """FieldDefinition's checks, then a name nothing else already reads (name_problem)."""
        errors = {}
        try:
            super().clean()
        except ValidationError as error:
            errors = error.update_error_dict(errors)
        if self.name and "name" not in errors and (problem := self.name_problem()):
            errors["name"] = problem
        if self.label and "label" not in errors and (problem := self.label_problem()):
            errors["label"] = problem
        if errors:
            raise ValidationError(errors)

    def _file_columns(self):
        """(file, column) for the columns of the files that carry the attributes."""
        from schemes.bulk.beneficiaries import STATUS_COLUMN
        from schemes.bulk.individuals import CORE_COLUMNS

        return [("individuals", column) for column in CORE_COLUMNS] + [("beneficiaries", STATUS_COLUMN)]

    def _other_headers(self, *, names=True):
        """{header key: what else claims it} for the other attributes of the target: a person's
        attribute is read from a column headed by its name or by its label (schemes.bulk.individuals).
        Without `names`, their labels only (validate_unique compares the names)."""
        from schemes.bulk.files import header_key

        if self.target != self.Target.INDIVIDUAL:
            return {}
        claimed = {}
        own = header_key(self.name or "")
        for other in RegistryField.objects.filter(target=self.target).exclude(pk=self.pk).order_by("name"):
            if header_key(other.name) == own:
                continue  # the same name in any spelling: validate_unique refuses it, once
            if names:
                claimed.setdefault(header_key(other.name), f"the attribute '{other.name}'")
            if other.label:
                claimed.setdefault(header_key(other.label), f"the label of the attribute '{other.name}'")
        return claimed

    def name_problem(self):
        """Why the name cannot be an attribute's, or "": a column or an accepted header of the files
        that carry the attributes (`gender` is the individuals file's sex: two columns would claim one
        header), or a lookup of the JSON `attributes` (`attributes__contains` is a containment test,
        not that key). Compared as files compare headers, ignoring case and underscores."""
        from schemes.bulk.files import header_key
        from schemes.rules.catalogue import builtin_fields

        key = name_key(self.name)
        for file, column in self._file_columns():
            if key in {header_key(text) for text in (column.name, *column.aliases)}:
                read_as = "" if self.name == column.name else f" ({column.name})"
                return f"'{self.name}' is a column of the {file} file already{read_as}: give the attribute another name."
        lookup = {name_key(name): name for name in models.JSONField.get_lookups()}.get(key)
        if lookup:
            read_as = "" if self.name == lookup else f" (as '{lookup}')"
            return (f"'{self.name}' is a database lookup{read_as}: filters on the attributes would read it as that "
                    "lookup, not as this attribute. Give the attribute another name.")
        if builtin := builtin_fields(self.target).get(self.name):
            return (f"'{self.name}' is a field the eligibility rules already have ({builtin}, worked out from the "
                    "registry): rules would read that, not this attribute. Give the attribute another name.")
        if claimed := self._other_headers(names=False).get(header_key(self.name)):
            return f"'{self.name}' is {claimed} already: import files could not tell the two columns apart."
        return ""

    def label_problem(self):
        """Why the label cannot be a person's attribute's, or "": import files accept it as the column's
        header, so it may not be a header of another column (a file column, another attribute's name or
        label), compared as files compare headers."""
        from schemes.bulk.files import header_key

        if self.target != self.Target.INDIVIDUAL:
            return ""
        key = header_key(self.label)
        for file, column in self._file_columns():
            if key in {header_key(text) for text in (column.name, *column.aliases)}:
                return (f"'{self.label}' is a header of the {file} file's column {column.name}: import files "
                        "accept an attribute's label as its header. Give the attribute another label.")
        if (claimed := self._other_headers().get(key)) and key != header_key(self.name or ""):
            return (f"'{self.label}' is {claimed} already: import files could not tell the two columns apart. "
                    "Give the attribute another label.")
        return ""


class Sex(models.TextChoices):
    FEMALE = "F", "Female"
    MALE = "M", "Male"
    OTHER = "O", "Other"


SEX_NOT_RECORDED = "Not recorded"  # how a blank sex reads (openIMIS files carry none)


class SoftDeleteQuerySet(models.QuerySet):
    def live(self):
        return self.filter(deleted_at__isnull=True)

    def deleted(self):
        return self.filter(deleted_at__isnull=False)


class Individual(models.Model):
    first_name = models.CharField(max_length=100)
    last_name = models.CharField(max_length=100)
    dob = models.DateField("date of birth")
    # Blank when not recorded: the openIMIS individuals template (first_name, last_name, dob and the
    # schema's fields) has no such column, and its files must load unchanged.
    sex = models.CharField(max_length=1, choices=Sex.choices, blank=True)
    national_id = models.CharField("national ID", max_length=64, null=True, blank=True)
    phone = models.CharField(max_length=32, blank=True)
    # No index of its own: individual_loc_idx starts with it (one index less to write per person).
    # No foreign-key constraint either (checked again per person at an import's commit): a PostgreSQL
    # trigger refuses deleting a location that people or households are placed at (migration 0007).
    location = models.ForeignKey(Location, null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="individuals", db_index=False, db_constraint=False)
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
    # The record this one was merged into (as a duplicate); it stays deleted until the merge is undone.
    merged_into = models.ForeignKey("self", null=True, blank=True, editable=False, on_delete=models.PROTECT,
                                    related_name="merged_duplicates", db_index=False)

    objects = SoftDeleteQuerySet.as_manager()

    class Meta:
        # By id, which the primary key serves at any size. No name-ordered index: at national scale it
        # is written at a random place for every person registered (half an import's time); lists
        # sort by name on request, over what the filters and the user's locations leave.
        ordering = ["id"]
        permissions = [("view_sensitive_data", "Can see national IDs, phone numbers and sensitive attributes"),
                       ("merge_individual", "Can ask to merge duplicate records and to undo a merge")]
        constraints = [
            models.UniqueConstraint(fields=["national_id"], condition=Q(deleted_at__isnull=True),
                                    name="individual_unique_live_national_id"),
            models.CheckConstraint(condition=Q(merged_into__isnull=True) | Q(deleted_at__isnull=False),
                                   name="individual_merged_stays_deleted"),
        ]
        indexes = [
            models.Index(fields=["dob"], name="individual_dob_idx"),
            # A location's people, newest first, and counted from the index (scoped lists).
            models.Index(fields=["location", "id"], name="individual_loc_idx"),
            # Almost every person has none: only the merged ones are indexed.
            models.Index(fields=["merged_into"], name="individual_merged_into_idx",
                         condition=Q(merged_into__isnull=False)),
        ]

    def __str__(self):
        return f"{self.first_name} {self.last_name}"

    @property
    def sex_shown(self):
        return self.get_sex_display() or SEX_NOT_RECORDED

    @property
    def is_deleted(self):
        return self.deleted_at is not None

    def age(self, on=None):
        on = on or datetime.date.today()
        return on.year - self.dob.year - ((on.month, on.day) < (self.dob.month, self.dob.day))


class HouseholdQuerySet(SoftDeleteQuerySet):
    def with_code(self, code):
        """The households whose code is `code` case aside ("bh-1" finds "BH-1"), folded as the unique
        index folds it (the database's LOWER on both sides), so the look-up reads that index."""
        return self.alias(folded_code=Lower("code")).filter(folded_code=Lower(Value(code)))


class Household(models.Model):
    # Unique ignoring case by a constraint on LOWER(code), not unique=True (an index on the code as
    # written, and a LIKE one on PostgreSQL: written for every household an import creates, read by none).
    code = models.CharField(max_length=32)
    # As Individual.location: no index of its own (household_loc_code_idx starts with it), no constraint.
    location = models.ForeignKey(Location, null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="households", db_index=False, db_constraint=False)
    attributes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = HouseholdQuerySet.as_manager()

    class Meta:
        ordering = ["code"]
        constraints = [
            # "BH-1" and "bh-1" name one household (on a form, in a file, in a search).
            models.UniqueConstraint(Lower("code"), name="household_code_unique_any_case",
                                    violation_error_code="code_taken",
                                    violation_error_message="Another household already has this code (codes are "
                                                            "compared ignoring upper and lower case)."),
        ]
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
    # A member whose role the file or form did not give (openIMIS files may leave individual_role out).
    MEMBER = "MEMBER"
    DEFAULTS = [
        ("HEAD", "Head"), ("SPOUSE", "Spouse"), ("SON", "Son"), ("DAUGHTER", "Daughter"),
        ("GRANDFATHER", "Grandfather"), ("GRANDMOTHER", "Grandmother"), ("MOTHER", "Mother"),
        ("FATHER", "Father"), ("MEMBER", "Member"),
    ]

    code = models.CharField(max_length=24, primary_key=True)
    label = models.CharField(max_length=60)
    sort_order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["sort_order", "code"]

    def __str__(self):
        return self.label

    def delete_problem(self):
        """Why the role cannot be deleted, or "": Head and Member are built in (imports and households
        need them; the database keeps no link to check memberships against), and a role members hold
        stays while they hold it (read once: no index on memberships' roles, and deleting is rare)."""
        if self.code == self.HEAD:
            return f"{self.label} is built in: every household has one. Rename it instead."
        if self.code == self.MEMBER:
            return (f"{self.label} is built in: imports give it to members a file names no role for. Rename it "
                    "instead.")
        held = self.memberships.count()
        if held:
            return (f"{held} household member{'s' if held != 1 else ''} ha{'ve' if held != 1 else 's'} the role "
                    f"{self.label}: give them another role first.")
        return ""

    @classmethod
    def ensure_defaults(cls):
        for order, (code, label) in enumerate(cls.DEFAULTS):
            cls.objects.get_or_create(code=code, defaults={"label": label, "sort_order": order * 10})


class RecipientType(models.TextChoices):
    PRIMARY = "PRIMARY", "Primary recipient"
    SECONDARY = "SECONDARY", "Secondary recipient"


# An import writes a million memberships at once, each naming a household, a person and a role its own
# statement just created or read: foreign-key constraints would check each again at commit (a third
# of the import's time). Instead PostgreSQL triggers refuse deleting a person, household or role that
# memberships name (migration 0005); the ORM cascades and protects as before.
class Membership(models.Model):
    household = models.ForeignKey(Household, on_delete=models.CASCADE, related_name="memberships",
                                  db_constraint=False)
    individual = models.OneToOneField(Individual, on_delete=models.CASCADE, related_name="membership",
                                      db_constraint=False)
    # No index: roles are a handful; deleting one (rare) may read the memberships once.
    role = models.ForeignKey(MemberRole, on_delete=models.PROTECT, related_name="memberships",
                             db_constraint=False, db_index=False)
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


# --- duplicates -------------------------------------------------------------------------------------


class DuplicateReason(models.TextChoices):
    NATIONAL_ID = "national_id", "Same national ID"
    NAME_DOB = "name_dob", "Same names and date of birth"
    SIMILAR_NAME = "similar_name", "Similar names"
    SAME_DOB = "same_dob", "Same date of birth"
    CLOSE_DOB = "close_dob", "Close date of birth"
    PHONE = "phone", "Same phone number"


class DuplicateStatus(models.TextChoices):
    OPEN = "OPEN", "To review"
    MERGE_REQUESTED = "MERGE_REQUESTED", "Merge requested"
    MERGED = "MERGED", "Merged"
    DISMISSED = "DISMISSED", "Not a duplicate"


class DuplicateCandidate(FSMModelMixin, models.Model):
    """Two live people a scan found alike, the lower id first, one row per pair: a later scan updates
    an open pair's score and never reopens one a person dismissed."""

    first = models.ForeignKey(Individual, on_delete=models.CASCADE, related_name="+", db_index=False)
    second = models.ForeignKey(Individual, on_delete=models.CASCADE, related_name="+")
    score = models.PositiveSmallIntegerField(help_text="0-100: how alike the two records are.")
    reasons = models.JSONField(default=list)
    status = FSMField(default=DuplicateStatus.OPEN, choices=DuplicateStatus.choices, protected=True)
    found_at = models.DateTimeField()
    scan_job = models.ForeignKey("workflows.Job", null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="+", db_index=False)
    merge_request = models.ForeignKey(ApprovalRequest, null=True, blank=True, on_delete=models.SET_NULL,
                                      related_name="+", db_index=False)
    dismissed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+", db_index=False)
    dismissed_at = models.DateTimeField(null=True, blank=True)
    dismiss_reason = models.TextField(blank=True)

    class Meta:
        verbose_name = "possible duplicate"
        ordering = ["-score", "first", "second"]
        default_permissions = ("view", "change")  # rows come from scans; "change" is dismissing
        permissions = [("scan_duplicates", "Can scan the registry for duplicates")]
        constraints = [
            models.UniqueConstraint(fields=["first", "second"], name="duplicate_one_row_per_pair"),
            models.CheckConstraint(condition=Q(first__lt=F("second")), name="duplicate_pair_lower_id_first"),
            models.CheckConstraint(condition=Q(score__lte=100), name="duplicate_score_at_most_100"),
        ]
        indexes = [models.Index(fields=["status", "-score"], name="duplicate_status_score_idx")]

    def __str__(self):
        return f"{self.first} / {self.second}"

    @property
    def reason_labels(self):
        labels = dict(DuplicateReason.choices)
        return ", ".join(labels.get(reason, reason) for reason in self.reasons)

    def other(self, person):
        return self.second if person.pk == self.first_id else self.first

    @transition(field=status, source=DuplicateStatus.OPEN, target=DuplicateStatus.MERGE_REQUESTED)
    def request_merge(self, request):
        self.merge_request = request

    @transition(field=status, source=DuplicateStatus.MERGE_REQUESTED, target=DuplicateStatus.OPEN)
    def withdraw_merge(self):
        pass

    @transition(field=status, source=[DuplicateStatus.OPEN, DuplicateStatus.MERGE_REQUESTED],
                target=DuplicateStatus.MERGED)
    def mark_merged(self):
        pass

    @transition(field=status, source=DuplicateStatus.MERGED, target=DuplicateStatus.OPEN)
    def reopen_after_unmerge(self):
        pass

    @transition(field=status, source=DuplicateStatus.OPEN, target=DuplicateStatus.DISMISSED)
    def dismiss(self, reason, by, when):
        self.dismiss_reason, self.dismissed_by, self.dismissed_at = reason, by, when

    @transition(field=status, source=DuplicateStatus.DISMISSED, target=DuplicateStatus.OPEN)
    def reopen(self):
        # The audit trail keeps who dismissed it and why; the pair shows only its current decision.
        self.dismiss_reason, self.dismissed_by, self.dismissed_at = "", None, None


class MergeStatus(models.TextChoices):
    MERGED = "MERGED", "Merged"
    UNMERGED = "UNMERGED", "Undone"


class Merge(FSMModelMixin, models.Model):
    """One duplicate record merged into the record kept: what moved from one to the other (so that
    the merge can be undone), who asked, who approved (the request), and whether it was undone."""

    kept = models.ForeignKey(Individual, on_delete=models.PROTECT, related_name="merges_kept")
    merged = models.ForeignKey(Individual, on_delete=models.PROTECT, related_name="merges_merged")
    candidate = models.ForeignKey(DuplicateCandidate, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="merges")
    status = FSMField(default=MergeStatus.MERGED, choices=MergeStatus.choices, protected=True)
    # {"membership": {...}, "beneficiaries": [ids moved], "closed_beneficiaries": [{...}],
    #  "filled": [names of the kept record's empty fields given the merged record's values, as in a change's diff],
    #  once undone "unmerge": {"taken_back": [names], "changed_since": [names of filled values that stayed]}}
    moved = models.JSONField(default=dict)
    request = models.ForeignKey(ApprovalRequest, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="+", db_index=False)
    merged_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                                  db_index=False)
    merged_at = models.DateTimeField()
    unmerge_request = models.ForeignKey(ApprovalRequest, null=True, blank=True, on_delete=models.SET_NULL,
                                        related_name="+", db_index=False)
    unmerged_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+", db_index=False)
    unmerged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-merged_at", "-id"]
        default_permissions = ("view",)  # merges are made and undone through merge_individual
        constraints = [
            models.UniqueConstraint(fields=["merged"], condition=Q(status="MERGED"),
                                    name="merge_one_live_merge_per_record"),
            models.CheckConstraint(condition=~Q(kept=F("merged")), name="merge_two_different_records"),
        ]

    def __str__(self):
        return f"Merge {self.pk}"

    @transition(field=status, source=MergeStatus.MERGED, target=MergeStatus.UNMERGED)
    def undo(self, *, by, when, request):
        self.unmerged_by, self.unmerged_at, self.unmerge_request = by, when, request


MERGE_OPERATION = "registry.merge"
UNMERGE_OPERATION = "registry.unmerge"
ENDED_UNAPPLIED = {RequestStatus.REJECTED, RequestStatus.CANCELLED, RequestStatus.VOID, RequestStatus.FAILED}


@receiver(post_transition, sender=ApprovalRequest, dispatch_uid="registry_withdraw_merge_requests")
def withdraw_merge_when_request_ends(sender, instance, target, **kwargs):
    """A merge request that ends without being applied puts its pair back in the queue (in the
    transaction that ends the request)."""
    if instance.operation != MERGE_OPERATION or target not in ENDED_UNAPPLIED:
        return
    for candidate in DuplicateCandidate.objects.select_for_update().filter(
            merge_request=instance, status=DuplicateStatus.MERGE_REQUESTED):
        candidate.withdraw_merge()
        candidate.save(update_fields=["status"])
