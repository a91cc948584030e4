from django.conf import settings
from django.db import models
from django_fsm import FSMField, FSMModelMixin, transition


class UploadKind(models.TextChoices):
    INDIVIDUALS = "INDIVIDUALS", "Individuals (with households)"
    BENEFICIARIES = "BENEFICIARIES", "New beneficiaries of a plan"
    BENEFICIARY_UPDATES = "BENEFICIARY_UPDATES", "Updates of a plan's beneficiaries (by ID)"
    LOCATIONS = "LOCATIONS", "Locations"
    RECONCILIATION = "RECONCILIATION", "Reconciliation of a payroll (what the provider paid)"


# The kinds that work on one plan (the upload names it).
PLAN_KINDS = (UploadKind.BENEFICIARIES, UploadKind.BENEFICIARY_UPDATES)


class UploadStatus(models.TextChoices):
    VALIDATING = "VALIDATING", "Being checked"
    READY = "READY", "Checked: ready to import"
    REFUSED = "REFUSED", "Refused as a whole (nothing imported)"
    IMPORTING = "IMPORTING", "Importing"
    IMPORTED = "IMPORTED", "Imported"
    FAILED = "FAILED", "Failed"
    DISCARDED = "DISCARDED", "Discarded"


class ImportMode(models.TextChoices):
    VALID_ROWS = "VALID_ROWS", "Import the valid rows, leave the rows with errors"
    ALL_OR_NOTHING = "ALL_OR_NOTHING", "Import only if no row has an error"


class Upload(FSMModelMixin, models.Model):
    """One file given to the pipeline: stored under a generated name (the clerk's file name is kept
    only as sanitised metadata), checked whole into staging rows, then imported once approved."""

    kind = models.CharField(max_length=24, choices=UploadKind.choices)
    stored_name = models.CharField(max_length=100, unique=True, editable=False)
    original_name = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField(default=0)
    status = FSMField(default=UploadStatus.VALIDATING, choices=UploadStatus.choices, protected=True)
    mode = models.CharField(max_length=16, choices=ImportMode.choices, blank=True)
    # {"rows", "valid", "errors", "creates", "possible_duplicates", "households", "imported"...}
    counts = models.JSONField(default=dict, blank=True)
    problem = models.TextField(blank=True, help_text="Why the whole file was refused.")
    unused_columns = models.JSONField(default=list, blank=True,
                                      help_text="The file's headers that match no column of the import.")
    has_error_file = models.BooleanField(default=False)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    plan = models.ForeignKey("plans.BenefitPlan", null=True, blank=True, on_delete=models.PROTECT,
                             related_name="uploads")
    # A reconciliation file names the payroll it reports on. No database constraint: payrolls are never
    # deleted, except by the demo reset's TRUNCATE, which a constraint would refuse (that reset removes
    # these uploads first: schemes.payments.demo.forget_demo_payrolls).
    payroll = models.ForeignKey("payments.Payroll", null=True, blank=True, on_delete=models.PROTECT,
                                related_name="uploads", db_constraint=False)
    # The uploader's locations when they uploaded: rows elsewhere are errors; checkers of these decide.
    scope_root = models.ForeignKey("sites.Location", null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    validation_job = models.ForeignKey("workflows.Job", null=True, blank=True, on_delete=models.SET_NULL,
                                       related_name="+")
    import_job = models.ForeignKey("workflows.Job", null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["kind", "-created_at"], name="upload_kind_created_idx")]

    def __str__(self):
        return f"{self.get_kind_display()} upload {self.pk} ({self.original_name})"

    @transition(field=status, source=UploadStatus.VALIDATING, target=UploadStatus.READY)
    def validated(self):
        pass

    @transition(field=status, source=UploadStatus.VALIDATING, target=UploadStatus.REFUSED)
    def refuse(self, problem):
        self.problem = problem

    # Submitting for approval leaves the upload READY (the request is its own record); an approved
    # request starts the import, which may resume after a crash.
    @transition(field=status, source=[UploadStatus.READY, UploadStatus.IMPORTING], target=UploadStatus.IMPORTING)
    def start_import(self, mode):
        self.mode = mode

    @transition(field=status, source=UploadStatus.IMPORTING, target=UploadStatus.IMPORTED)
    def imported(self, when):
        self.finished_at = when

    @transition(field=status, source=[UploadStatus.VALIDATING, UploadStatus.IMPORTING], target=UploadStatus.FAILED)
    def fail(self, problem, when):
        self.problem, self.finished_at = problem, when

    @transition(field=status, source=[UploadStatus.READY, UploadStatus.REFUSED, UploadStatus.FAILED],
                target=UploadStatus.DISCARDED)
    def discard(self, when):
        self.finished_at = when


class StagedIndividual(models.Model):
    """A row of an individuals file, checked and normalised, waiting to be imported (`valid` is false
    when the row has errors: StagedError). Written by COPY (PostgreSQL) or in batches (SQLite);
    imported by INSERT ... SELECT. Rows go when their upload is discarded or imported."""

    upload = models.ForeignKey(Upload, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False,
                               db_index=False)
    row_number = models.PositiveIntegerField()
    valid = models.BooleanField(default=True)
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    dob = models.DateField(null=True)
    sex = models.CharField(max_length=1, blank=True)
    national_id = models.CharField(max_length=64, null=True)
    phone = models.CharField(max_length=32, blank=True)
    location_id = models.BigIntegerField(null=True)
    attributes = models.JSONField(default=dict)
    group_code = models.CharField(max_length=32, blank=True)
    role = models.CharField(max_length=24, blank=True)
    recipient = models.CharField(max_length=10, blank=True)
    possible_duplicate_of = models.BigIntegerField(null=True)

    class Meta:
        # Only this index: the checks read all of an upload's rows at once (hash aggregates), and each
        # index more is written for every staged row.
        constraints = [models.UniqueConstraint(fields=["upload", "row_number"], name="staged_individual_row")]


class StagedHousehold(models.Model):
    """A household an individuals file creates: its code in the file and the id it got, written once
    as the households are created, so that each chunk's members find theirs by a join (rewriting a
    million staged rows with the id took longer than all the joins)."""

    upload = models.ForeignKey(Upload, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False,
                               db_index=False)
    group_code = models.CharField(max_length=32)
    household_id = models.BigIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["upload", "group_code"], name="staged_household_code")]


class StagedError(models.Model):
    """One problem of one row of an upload: the column (header as in the file, or "" for the row) and
    a message for the clerk. The error file is the file's rows that have some, with these joined."""

    upload = models.ForeignKey(Upload, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False,
                               db_index=False)
    row_number = models.PositiveIntegerField()
    column = models.CharField(max_length=100, blank=True)
    message = models.TextField()
    # A machine-readable reason where the file format defines one (reconciliation: openIMIS's codes).
    code = models.CharField(max_length=48, blank=True, db_default="")

    class Meta:
        indexes = [models.Index(fields=["upload", "row_number"], name="staged_error_row_idx")]


class StagedBeneficiary(models.Model):
    """A row of a beneficiaries file (new enrolments or updates), checked, waiting to be imported.
    A new enrolment names a registered person or household (`individual_id` / `household_id`, found
    by national ID or household code) or, for an individual plan, a person the same upload creates
    (the row's StagedIndividual); an update names the beneficiary (`beneficiary_id`). `attributes`
    holds the plan-schema values the file gives (an update merges only those)."""

    upload = models.ForeignKey(Upload, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False,
                               db_index=False)
    row_number = models.PositiveIntegerField()
    valid = models.BooleanField(default=True)
    national_id = models.CharField(max_length=64, null=True)
    individual_id = models.BigIntegerField(null=True)
    household_id = models.BigIntegerField(null=True)
    beneficiary_id = models.BigIntegerField(null=True)
    status = models.CharField(max_length=16, blank=True)
    attributes = models.JSONField(default=dict)
    changed = models.BooleanField(default=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["upload", "row_number"], name="staged_beneficiary_row")]


class StagedLocation(models.Model):
    """A row of a locations file: code, name and the parent's code; `depth` and `parent_id` are
    found by the check (the parent may be in the file or registered)."""

    upload = models.ForeignKey(Upload, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False,
                               db_index=False)
    row_number = models.PositiveIntegerField()
    valid = models.BooleanField(default=True)
    code = models.CharField(max_length=32)
    name = models.CharField(max_length=128)
    parent_code = models.CharField(max_length=32, blank=True)
    location_id = models.BigIntegerField(null=True)
    depth = models.PositiveSmallIntegerField(null=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["upload", "row_number"], name="staged_location_row")]


class StagedReconciliation(models.Model):
    """A row of a payroll's reconciliation (a file's row, or an API batch's under a transient negative
    key in `upload`): the line its code names and what the provider says (paid or not, receipt,
    date, amount). See schemes.payments.reconciliation."""

    upload = models.ForeignKey(Upload, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False,
                               db_index=False)
    row_number = models.PositiveIntegerField()
    valid = models.BooleanField(default=True)
    code = models.CharField(max_length=100, blank=True)
    line_id = models.BigIntegerField(null=True)
    paid = models.BooleanField(null=True)
    receipt = models.CharField(max_length=100, blank=True)
    paid_on = models.DateField(null=True)
    # The amount the row says, if any: checked against its line's, never applied. Not named `amount`:
    # the UPDATE applying the rows returns the lines' own (an unqualified name, for SQLite).
    said_amount = models.DecimalField(max_digits=18, decimal_places=2, null=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["upload", "row_number"], name="staged_reconciliation_row")]


# Every staging table (emptied once its uploads are imported or discarded: staging.release_empty).
STAGING = (StagedIndividual, StagedHousehold, StagedError, StagedBeneficiary, StagedLocation, StagedReconciliation)
