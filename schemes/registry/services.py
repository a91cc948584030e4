"""Every change to the registry. Keyword-only, the acting user last; permission and scope checked,
atomic, audited in the same transaction."""

import datetime
import secrets

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from sites.audit import audit, audit_event
from sites.masking import mask
from sites.scoping import scope_for
from workflows.services import job_start

from . import selectors
from .jobs import RENORMALISE
from .models import (
    Household,
    Individual,
    MemberRole,
    Membership,
    RecipientType,
    RegistryField,
    normalise_national_id,
)

INDIVIDUAL_FIELDS = ("first_name", "last_name", "dob", "sex", "national_id", "phone", "location")
HOUSEHOLD_FIELDS = ("code", "location")
SENSITIVE_FIELDS = {"national_id", "phone"}
OLDEST_BIRTH_YEAR = 1900


def _require_permission(user, permission):
    if not user.has_perm(permission):
        raise PermissionDenied(f"You do not have the permission '{permission}'.")


def _require_in_scope(user, location):
    if not scope_for(user).allows(location):
        if location is None:
            raise PermissionDenied("Only users with national scope can act on records without a location.")
        raise PermissionDenied(f"{location} is outside your locations.")


def _require_record_in_scope(user, record):
    # A record outside scope is reported as missing, like the views' 404.
    if not scope_for(user).allows(record.location):
        raise record.DoesNotExist(f"No {record._meta.verbose_name} with id {record.pk}.")


def _audit_value(name, value, sensitive_names):
    if value is None:
        return None
    text = value.isoformat() if isinstance(value, datetime.date) else str(value)
    return mask(text) if name in sensitive_names else text


def _diff(before, after, sensitive_names):
    """{field: [old, new]} for what changed, as text; sensitive values masked."""
    return {
        name: [_audit_value(name, before.get(name), sensitive_names),
               _audit_value(name, after.get(name), sensitive_names)]
        for name in sorted(set(before) | set(after))
        if before.get(name) != after.get(name)
    }


def sensitive_names(target):
    """Names (as in a change's diff) whose values are masked for users without the permission."""
    base = SENSITIVE_FIELDS if target == RegistryField.Target.INDIVIDUAL else set()
    return base | _sensitive_attribute_names(target)


def _mask_changes(changes, sensitive):
    return {name: [mask(v) if name in sensitive else v for v in values] for name, values in changes.items()}


def _snapshot(record, fields):
    values = {name: getattr(record, f"{name}_id" if name == "location" else name) for name in fields}
    values.update({f"attributes.{k}": v for k, v in (record.attributes or {}).items()})
    return values


def _sensitive_attribute_names(target):
    return {f"attributes.{name}" for name in
            RegistryField.objects.filter(target=target, sensitive=True).values_list("name", flat=True)}


# --- individuals ------------------------------------------------------------------------------


def individual_search(*, queryset, text, by):
    """Search people (see selectors.search_individuals); a search by national ID is audited, wherever
    it is typed."""
    if selectors.looks_like_national_id(text):
        audit_event("mizani.search_id", by=by, data={"national_id": normalise_national_id(text)})
    return selectors.search_individuals(queryset, text)

def _validate_individual(individual, attributes):
    """Normalise and validate in place; raise one ValidationError naming every bad field."""
    errors = {}
    individual.national_id = normalise_national_id(individual.national_id)
    individual.first_name = (individual.first_name or "").strip()
    individual.last_name = (individual.last_name or "").strip()
    individual.phone = (individual.phone or "").strip()
    try:
        individual.dob = Individual._meta.get_field("dob").to_python(individual.dob)
    except ValidationError as exc:
        errors["dob"] = exc.messages
    if isinstance(individual.dob, datetime.date):
        if individual.dob > timezone.localdate():
            errors["dob"] = ["The date of birth is in the future."]
        elif individual.dob.year < OLDEST_BIRTH_YEAR:
            errors["dob"] = [f"The date of birth is before {OLDEST_BIRTH_YEAR}."]
    try:
        individual.attributes = RegistryField.schema_for(RegistryField.Target.INDIVIDUAL).clean(
            attributes, stored=individual.attributes)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    try:
        individual.full_clean(exclude=["attributes", "search_name", *errors], validate_unique=False,
                              validate_constraints=False)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if individual.national_id and "national_id" not in errors:
        taken = Individual.objects.live().filter(national_id=individual.national_id).exclude(pk=individual.pk)
        if taken.exists():
            errors["national_id"] = ["This national ID is already registered to another person."]
    if errors:
        raise ValidationError(errors)


def _save_unique(record, **save_kwargs):
    """Save, turning a lost race on the national-ID constraint into a field error."""
    try:
        with transaction.atomic():
            record.save(**save_kwargs)
    except IntegrityError as exc:
        if "national_id" in str(exc) or "individual_unique_live_national_id" in str(exc):
            raise ValidationError({"national_id": ["This national ID is already registered to another person."]}) from exc
        raise


@transaction.atomic
def individual_create(*, fields, attributes=None, by):
    _require_permission(by, "registry.add_individual")
    unknown = set(fields) - set(INDIVIDUAL_FIELDS)
    if unknown:
        raise ValidationError({name: ["Not a registry field."] for name in sorted(unknown)})
    individual = Individual(**fields)
    _require_in_scope(by, individual.location)
    _validate_individual(individual, attributes or {})
    _save_unique(individual)
    audit(individual, "wagtail.create", by=by)
    return individual


def individual_check_update(*, individual, fields, attributes=None, by, lock=False):
    """Everything individual_update checks, applied to a fresh copy that is not saved. Returns the
    copy and its changes {name: [old, new]} in clear; raises what individual_update would raise."""
    _require_permission(by, "registry.change_individual")
    records = Individual.objects.select_for_update() if lock else Individual.objects
    individual = records.get(pk=individual.pk)
    _require_record_in_scope(by, individual)
    if individual.is_deleted:
        raise ValidationError("A deleted record cannot be edited; restore it first.")
    unknown = set(fields) - set(INDIVIDUAL_FIELDS)
    if unknown:
        raise ValidationError({name: ["Not a registry field."] for name in sorted(unknown)})
    before = _snapshot(individual, INDIVIDUAL_FIELDS)
    for name, value in fields.items():
        setattr(individual, name, value)
    _require_in_scope(by, individual.location)
    _validate_individual(individual, individual.attributes if attributes is None else attributes)
    return individual, _diff(before, _snapshot(individual, INDIVIDUAL_FIELDS), set())


@transaction.atomic
def individual_update(*, individual, fields, attributes=None, by):
    individual, changes = individual_check_update(individual=individual, fields=fields, attributes=attributes,
                                                  by=by, lock=True)
    if not changes:
        return individual
    _save_unique(individual)
    audit(individual, "wagtail.edit", by=by, data={
        "changes": _mask_changes(changes, sensitive_names(RegistryField.Target.INDIVIDUAL))})
    return individual


@transaction.atomic
def individual_soft_delete(*, individual, by):
    _require_permission(by, "registry.delete_individual")
    individual = Individual.objects.select_for_update().get(pk=individual.pk)
    _require_record_in_scope(by, individual)
    if individual.is_deleted:
        return individual
    membership = Membership.objects.filter(individual=individual).select_related("household").first()
    if membership is not None:
        if membership.role_id == MemberRole.HEAD and Membership.objects.filter(
            household=membership.household_id
        ).exclude(pk=membership.pk).exists():
            raise ValidationError(
                f"{individual} is the head of household {membership.household.code}: "
                "make another member the head first."
            )
        _remove_membership(membership, by=by)
    individual.deleted_at = timezone.now()
    individual.save(update_fields=["deleted_at", "updated_at"])
    audit(individual, "mizani.soft_delete", by=by)
    return individual


@transaction.atomic
def individual_restore(*, individual, by):
    _require_permission(by, "registry.delete_individual")
    individual = Individual.objects.select_for_update().get(pk=individual.pk)
    _require_record_in_scope(by, individual)
    if not individual.is_deleted:
        return individual
    individual.deleted_at = None
    if individual.national_id and Individual.objects.live().filter(national_id=individual.national_id).exists():
        raise ValidationError({"national_id": [
            "Another live record now holds this national ID; it cannot be restored until that is resolved."
        ]})
    _save_unique(individual, update_fields=["deleted_at", "updated_at"])
    audit(individual, "mizani.restore", by=by)
    return individual


def national_ids_renormalise(*, idempotency_key, by):
    """Start the job that brings stored national IDs to today's normalisation rule."""
    if not (by.has_perm("registry.change_individual") and scope_for(by).national):
        raise PermissionDenied("Only a user with national scope who may edit people can run this.")
    return job_start(kind=RENORMALISE, params={}, idempotency_key=f"{RENORMALISE}:{idempotency_key}", by=by)


# --- households -------------------------------------------------------------------------------

def _new_household_code():
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    while True:
        code = "HH-" + "".join(secrets.choice(alphabet) for _ in range(8))
        if not Household.objects.filter(code=code).exists():
            return code


def _validate_household(household, attributes):
    errors = {}
    household.code = (household.code or "").strip() or _new_household_code()
    try:
        household.attributes = RegistryField.schema_for(RegistryField.Target.HOUSEHOLD).clean(
            attributes, stored=household.attributes)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    try:
        household.full_clean(exclude=["attributes", *errors], validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if "code" not in errors and Household.objects.filter(code=household.code).exclude(pk=household.pk).exists():
        errors["code"] = ["Another household already has this code."]
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def household_create(*, fields, attributes=None, by):
    _require_permission(by, "registry.add_household")
    unknown = set(fields) - set(HOUSEHOLD_FIELDS)
    if unknown:
        raise ValidationError({name: ["Not a household field."] for name in sorted(unknown)})
    household = Household(**fields)
    _require_in_scope(by, household.location)
    _validate_household(household, attributes or {})
    household.save()
    audit(household, "wagtail.create", by=by)
    return household


def household_check_update(*, household, fields, attributes=None, by, lock=False):
    """Everything household_update checks, on an unsaved copy; returns it and its changes in clear."""
    _require_permission(by, "registry.change_household")
    records = Household.objects.select_for_update() if lock else Household.objects
    household = records.get(pk=household.pk)
    _require_record_in_scope(by, household)
    if household.is_deleted:
        raise ValidationError("A deleted household cannot be edited; restore it first.")
    before = _snapshot(household, HOUSEHOLD_FIELDS)
    for name, value in fields.items():
        if name not in HOUSEHOLD_FIELDS:
            raise ValidationError({name: ["Not a household field."]})
        setattr(household, name, value)
    _require_in_scope(by, household.location)
    _validate_household(household, household.attributes if attributes is None else attributes)
    return household, _diff(before, _snapshot(household, HOUSEHOLD_FIELDS), set())


@transaction.atomic
def household_update(*, household, fields, attributes=None, by):
    household, changes = household_check_update(household=household, fields=fields, attributes=attributes,
                                                 by=by, lock=True)
    if changes:
        household.save()
        audit(household, "wagtail.edit", by=by, data={
            "changes": _mask_changes(changes, sensitive_names(RegistryField.Target.HOUSEHOLD))})
    return household


@transaction.atomic
def household_soft_delete(*, household, by):
    _require_permission(by, "registry.delete_household")
    household = Household.objects.select_for_update().get(pk=household.pk)
    _require_record_in_scope(by, household)
    if household.is_deleted:
        return household
    if Membership.objects.filter(household=household).exists():
        # Members of a deleted household could not join another one; they leave first, explicitly.
        raise ValidationError(f"Household {household.code} still has members: remove them first.")
    household.deleted_at = timezone.now()
    household.save(update_fields=["deleted_at", "updated_at"])
    audit(household, "mizani.soft_delete", by=by)
    return household


@transaction.atomic
def household_restore(*, household, by):
    _require_permission(by, "registry.delete_household")
    household = Household.objects.select_for_update().get(pk=household.pk)
    _require_record_in_scope(by, household)
    if household.is_deleted:
        household.deleted_at = None
        household.save(update_fields=["deleted_at", "updated_at"])
        audit(household, "mizani.restore", by=by)
    return household


# --- household members ------------------------------------------------------------------------

def _lock_household_for_members(household, by):
    _require_permission(by, "registry.change_household")
    household = Household.objects.select_for_update().get(pk=household.pk)
    _require_record_in_scope(by, household)
    if household.is_deleted:
        raise ValidationError("The household is deleted; restore it first.")
    return household


def _check_recipient(household, recipient_type, *, exclude=None):
    if recipient_type not in (None, "", *RecipientType.values):
        raise ValidationError({"recipient_type": [f"'{recipient_type}' is not PRIMARY or SECONDARY."]})
    if recipient_type == RecipientType.PRIMARY:
        others = Membership.objects.filter(household=household, recipient_type=RecipientType.PRIMARY)
        if exclude is not None:
            others = others.exclude(pk=exclude.pk)
        if others.exists():
            raise ValidationError({"recipient_type": ["This household already has a primary recipient."]})


def _role(code):
    role = MemberRole.objects.filter(pk=code).first()
    if role is None:
        raise ValidationError({"role": [f"'{code}' is not a known member role."]})
    return role


@transaction.atomic
def household_add_member(*, household, individual, role=None, recipient_type=None, by):
    """Add a person. The first member becomes head and primary recipient; later members need a
    role other than head (use household_set_head to change the head)."""
    household = _lock_household_for_members(household, by)
    individual = Individual.objects.select_for_update().get(pk=individual.pk)
    _require_record_in_scope(by, individual)
    if individual.is_deleted:
        raise ValidationError({"individual": ["A deleted person cannot join a household."]})
    current = Membership.objects.filter(individual=individual).select_related("household").first()
    if current is not None:
        raise ValidationError({"individual": [f"{individual} already belongs to household {current.household.code}."]})
    has_members = Membership.objects.filter(household=household).exists()
    role_code = getattr(role, "pk", role) or (None if has_members else MemberRole.HEAD)
    if role_code is None:
        raise ValidationError({"role": ["Choose the member's role."]})
    if not has_members and role_code != MemberRole.HEAD:
        raise ValidationError({"role": ["The first member of a household is its head."]})
    if has_members and role_code == MemberRole.HEAD:
        raise ValidationError({"role": ["This household already has a head; use 'Make head' to change it."]})
    if not has_members and not recipient_type:
        recipient_type = RecipientType.PRIMARY
    _check_recipient(household, recipient_type or None)
    membership = Membership.objects.create(
        household=household, individual=individual, role=_role(role_code), recipient_type=recipient_type or None
    )
    audit(household, "mizani.member_add", by=by, data={
        "individual": individual.pk, "role": role_code, "recipient_type": recipient_type or None})
    return membership


@transaction.atomic
def household_change_member(*, membership, role, recipient_type=None, by):
    household = _lock_household_for_members(membership.household, by)
    membership = Membership.objects.select_for_update().select_related("individual").get(
        pk=membership.pk, household=household)
    _require_record_in_scope(by, membership.individual)
    role_code = getattr(role, "pk", role)
    if role_code == MemberRole.HEAD and membership.role_id != MemberRole.HEAD:
        raise ValidationError({"role": ["Use 'Make head' to change the head of the household."]})
    if membership.role_id == MemberRole.HEAD and role_code != MemberRole.HEAD:
        raise ValidationError({"role": ["The head keeps this role until another member is made head."]})
    _check_recipient(household, recipient_type or None, exclude=membership)
    before = {"role": membership.role_id, "recipient_type": membership.recipient_type}
    membership.role = _role(role_code)
    membership.recipient_type = recipient_type or None
    membership.save(update_fields=["role", "recipient_type"])
    after = {"role": membership.role_id, "recipient_type": membership.recipient_type}
    if before != after:
        audit(household, "mizani.member_change", by=by, data={
            "individual": membership.individual_id, "changes": _diff(before, after, set())})
    return membership


@transaction.atomic
def household_set_head(*, household, individual, former_head_role, by):
    """Make `individual` (already a member) the head; the former head takes `former_head_role`."""
    household = _lock_household_for_members(household, by)
    new_head = Membership.objects.select_for_update().select_related("individual").filter(
        household=household, individual=individual).first()
    if new_head is None:
        raise ValidationError({"individual": ["Only a member of this household can be made head."]})
    _require_record_in_scope(by, new_head.individual)
    if new_head.role_id == MemberRole.HEAD:
        return new_head
    former_code = getattr(former_head_role, "pk", former_head_role)
    if not former_code or former_code == MemberRole.HEAD:
        raise ValidationError({"former_head_role": ["Choose the new role of the former head."]})
    former_role = _role(former_code)
    old_head = Membership.objects.select_for_update().filter(household=household, role_id=MemberRole.HEAD).first()
    if old_head is not None:
        old_head.role = former_role
        old_head.save(update_fields=["role"])
    new_head.role = _role(MemberRole.HEAD)
    new_head.save(update_fields=["role"])
    audit(household, "mizani.member_change", by=by, data={
        "new_head": individual.pk, "former_head": old_head.individual_id if old_head else None,
        "former_head_role": former_code})
    return new_head


def _remove_membership(membership, *, by):
    audit(membership.household, "mizani.member_remove", by=by, data={
        "individual": membership.individual_id, "role": membership.role_id,
        "recipient_type": membership.recipient_type})
    membership.delete()


@transaction.atomic
def household_remove_member(*, membership, by):
    household = _lock_household_for_members(membership.household, by)
    membership = Membership.objects.select_for_update().select_related("individual").get(
        pk=membership.pk, household=household)
    _require_record_in_scope(by, membership.individual)
    if membership.role_id == MemberRole.HEAD and Membership.objects.filter(household=household).exclude(
        pk=membership.pk
    ).exists():
        raise ValidationError("The head cannot leave while other members remain: make another member head first.")
    _remove_membership(membership, by=by)
