import re

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models, transaction
from django.db.models.functions import Concat, Length, Substr
from wagtail.contrib.settings.models import BaseGenericSetting, register_setting

from sites.fields import pattern_problem

DEFAULT_LEVEL_NAMES = "Region, District, Ward, Village"
# An unescaped "{" that does not start a count ({12}, {2,}, {,3}, {2,3}).
UNCLOSED_COUNT = re.compile(r"(?<!\\)\{(?![0-9]*,?[0-9]*\})")
# An ISO 4217 code: three capital letters (any three: the standard's list grows and changes).
CURRENCY_CODE = RegexValidator(r"\A[A-Z]{3}\Z", code="currency_code", message=(
    "Give the currency's ISO 4217 code: three capital letters, such as USD, EUR, KES or TZS."))


class CurrencyFormField(forms.CharField):
    """A currency code as typed: " usd " is USD (the model field's CURRENCY_CODE then checks it)."""

    def to_python(self, value):
        value = super().to_python(value)
        return value.upper() if value else value


class CurrencyField(models.CharField):
    """An ISO 4217 code (CURRENCY_CODE), upper case, "USD" unless told; its form field takes any case.
    Migrations see the CharField it is stored as: only the form field differs."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("max_length", 3)
        kwargs.setdefault("default", "USD")
        kwargs.setdefault("validators", [CURRENCY_CODE])
        super().__init__(*args, **kwargs)

    def formfield(self, **kwargs):
        return super().formfield(**{"form_class": CurrencyFormField, **kwargs})

    def deconstruct(self):
        name, _path, args, kwargs = super().deconstruct()
        return name, "django.db.models.CharField", args, kwargs


@register_setting(icon="cog")
class OrganisationSettings(BaseGenericSetting):
    name = models.CharField(max_length=200, default="Mizani")
    location_level_names = models.CharField(
        max_length=500,
        default=DEFAULT_LEVEL_NAMES,
        help_text="Names of the location levels from the top down, separated by commas.",
    )
    currency = CurrencyField(help_text="ISO 4217 code.")
    national_id_pattern = models.CharField(
        "national ID pattern", max_length=200, blank=True,
        help_text="The format every national ID must have, as a regular expression matched against the whole "
                  "ID once spaces, dashes, dots and slashes are removed and letters upper-cased, e.g. [0-9]{12}. "
                  "Leave empty to accept any ID. IDs already registered are not changed.")
    national_id_format = models.CharField(
        "national ID format", max_length=100, blank=True,
        help_text="The format as clerks know it, shown when an ID does not have it, e.g. '12 digits'.")

    class Meta:
        verbose_name = "organisation settings"

    def clean(self):
        errors = {}
        if self.national_id_pattern:
            if problem := pattern_problem(self.national_id_pattern):
                errors["national_id_pattern"] = problem
            elif UNCLOSED_COUNT.search(self.national_id_pattern):
                # Python reads "[0-9]{12" as the text "{12": every real ID would then be refused.
                errors["national_id_pattern"] = ("A '{' opens a count that is not closed, e.g. [0-9]{12}; write "
                                                 "\\{ for a brace itself.")
            if not self.national_id_format.strip():
                errors["national_id_format"] = "Say how clerks know the format (e.g. '12 digits'): messages show it."
        if errors:
            raise ValidationError(errors)

    def national_id_rule(self):
        """(compiled pattern, format as clerks know it), or None when any ID is accepted."""
        if not self.national_id_pattern:
            return None
        return re.compile(self.national_id_pattern), self.national_id_format

    def level_names(self):
        return [name.strip() for name in self.location_level_names.split(",") if name.strip()]

    def level_name(self, depth):
        names = self.level_names()
        return names[depth - 1] if 0 < depth <= len(names) else f"Level {depth}"


class Location(models.Model):
    """A node of the location tree. `path` ("/12/40/301/") lets a subtree be one indexed prefix match."""

    code = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=128)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    depth = models.PositiveSmallIntegerField(editable=False, default=1)
    path = models.CharField(max_length=255, editable=False, db_index=True, default="")

    class Meta:
        ordering = ["path"]
        permissions = [("import_location", "Can import locations from CSV")]

    def __str__(self):
        return f"{self.name} ({self.code})"

    @property
    def level_name(self):
        return OrganisationSettings.load().level_name(self.depth)

    def ancestors(self):
        ids = [int(part) for part in self.path.strip("/").split("/")[:-1] if part]
        by_id = Location.objects.in_bulk(ids)
        return [by_id[i] for i in ids if i in by_id]

    def clean(self):
        self._check_not_under_itself()

    def _check_not_under_itself(self):
        """Compare with the stored path: the in-memory one may already be stale."""
        if not (self.parent_id and self.pk):
            return None
        stored_path = Location.objects.filter(pk=self.pk).values_list("path", flat=True).first()
        parent_path = Location.objects.filter(pk=self.parent_id).values_list("path", flat=True).first()
        if stored_path and parent_path and parent_path.startswith(stored_path):
            raise ValidationError({"parent": "A location cannot be moved under itself or its descendants."})
        return stored_path

    def save(self, *args, **kwargs):
        parent = Location.objects.get(pk=self.parent_id) if self.parent_id else None
        prefix = parent.path if parent else "/"
        self.depth = parent.depth + 1 if parent else 1
        with transaction.atomic():
            if self.pk is None:
                super().save(*args, **kwargs)
                self.path = f"{prefix}{self.pk}/"
                Location.objects.filter(pk=self.pk).update(path=self.path)
                return
            self._check_not_under_itself()
            old_path = Location.objects.filter(pk=self.pk).values_list("path", flat=True).first()
            self.path = f"{prefix}{self.pk}/"
            super().save(*args, **kwargs)
            if old_path and old_path != self.path:
                _move_subtree(old_path, self.path, self.depth - (old_path.count("/") - 1))


def _move_subtree(old_path, new_path, depth_delta):
    """Rewrite descendants' paths in one statement when a node moves."""
    Location.objects.filter(path__startswith=old_path).exclude(path=old_path).update(
        path=Concat(models.Value(new_path), Substr("path", Length(models.Value(old_path)) + 1)),
        depth=models.F("depth") + depth_delta,
    )


class UserAccess(models.Model):
    """Where a user may act: national scope, or the subtrees of the assigned locations."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access")
    national_scope = models.BooleanField(
        default=False, help_text="Sees every record, including records with no location."
    )
    locations = models.ManyToManyField(Location, blank=True, related_name="user_accesses")

    class Meta:
        verbose_name = "user access"
        verbose_name_plural = "user access"
        permissions = [("view_audit", "Can read the audit trail")]

    def __str__(self):
        return f"Access of {self.user}"


class RolePreset(models.Model):
    """Which preset permissions a role group has already been given. A release that adds a
    permission to a preset grants it once (on migrate); one an administrator removed stays removed."""

    group = models.OneToOneField("auth.Group", on_delete=models.CASCADE, related_name="preset")
    granted = models.JSONField(default=list)

    def __str__(self):
        return f"Preset of {self.group}"
