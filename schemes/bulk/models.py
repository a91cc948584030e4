from django.conf import settings
from django.db import models
from django_fsm import FSMField, FSMModelMixin, transition


class UploadKind(models.TextChoices):
    INDIVIDUALS = "INDIVIDUALS", "Individuals (with households)"


class UploadStatus(models.TextChoices):
    VALIDATING = "VALIDATING", "Being checked"
    READY = "READY", "Checked: ready to import"
    REFUSED = "REFUSED", "Refused (the file cannot be read)"
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
    has_error_file = models.BooleanField(default=False)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
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
    # The household the row joins, found once (by code) before the people are imported.
    household_id = models.BigIntegerField(null=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["upload", "row_number"], name="staged_individual_row")]
        indexes = [models.Index(fields=["upload", "group_code"], name="staged_individual_group_idx")]


class StagedError(models.Model):
    """One problem of one row of an upload: the column (header as in the file, or "" for the row) and
    a message for the clerk. The error file is the file's rows that have some, with these joined."""

    upload = models.ForeignKey(Upload, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False,
                               db_index=False)
    row_number = models.PositiveIntegerField()
    column = models.CharField(max_length=100, blank=True)
    message = models.TextField()

    class Meta:
        indexes = [models.Index(fields=["upload", "row_number"], name="staged_error_row_idx")]
