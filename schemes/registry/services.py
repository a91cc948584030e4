"""Every change to the registry. Keyword-only, the acting user last; permission and scope checked,
atomic, audited in the same transaction."""

import datetime
import secrets

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from sites.audit import audit, audit_event
from sites.fields import ascii_digits
from sites.masking import mask
from sites.models import OrganisationSettings
from sites.refusals import PERMISSION_PHRASES, require_permission
from sites.scoping import scope_for
from workflows.services import job_start

from . import selectors
from .jobs import RENORMALISE
from .models import (
    MERGE_OPERATION,
    OLDEST_BIRTH_YEAR,
    UNMERGE_OPERATION,
    DuplicateCandidate,
    DuplicateStatus,
    Household,
    Individual,
    MemberRole,
    Membership,
    Merge,
    MergeStatus,
    RecipientType,
    RegistryField,
    name_problem,
    national_id_problem,
    normalise_national_id,
    phone_problem,
)

INDIVIDUAL_FIELDS = ("first_name", "last_name", "dob", "sex", "national_id", "phone", "location")
HOUSEHOLD_FIELDS = ("code", "location")
SENSITIVE_FIELDS = {"national_id", "phone"}


def _require_in_scope(user, location):
    if not scope_for(user).allows(location):
        if location is None:
            raise PermissionDenied("Only users with national scope can act on records without a location.")
        raise PermissionDenied(f"{location} is outside your locations.")


def _household_named(household, by):
    """Its code in a message to `by` only when they may open it."""
    return selectors.household_named(household, scope_for(by))


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
    individual.phone = ascii_digits((individual.phone or "").strip())
    for name in ("first_name", "last_name"):
        if problem := name_problem(getattr(individual, name)):
            errors[name] = [problem]
    if individual.phone and (problem := phone_problem(individual.phone)):
        errors["phone"] = [problem]
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
    if individual.national_id and (problem := national_id_problem(individual.national_id,
                                                                  OrganisationSettings.load().national_id_rule())):
        errors["national_id"] = [problem]
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
    require_permission(by, "registry.add_individual")
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
    require_permission(by, "registry.change_individual")
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


def individual_check_delete(*, individual, by, lock=False):
    """Everything individual_soft_delete checks; returns the (fresh) person and their membership, or
    raises what the deletion would raise. Also run when a deletion is submitted for approval."""
    require_permission(by, "registry.delete_individual")
    individual = (Individual.objects.select_for_update() if lock else Individual.objects).get(pk=individual.pk)
    _require_record_in_scope(by, individual)
    if individual.is_deleted:
        return individual, None
    membership = Membership.objects.filter(individual=individual).select_related("household").first()
    if membership is not None:
        if membership.role_id == MemberRole.HEAD and _others(membership).exists():
            raise ValidationError(
                f"{individual} is the head of {_household_named(membership.household, by)}: "
                "make another member the head first."
            )
        if membership.recipient_type == RecipientType.PRIMARY and _others(membership).exists():
            raise ValidationError(
                f"{individual} is the primary recipient of {_household_named(membership.household, by)}: make "
                "another member the primary recipient first (choose Primary for them on the household page).")
        _check_not_emptying_enrolled(membership.household, leaving=membership, by=by)
    return individual, membership


@transaction.atomic
def individual_soft_delete(*, individual, by):
    individual, membership = individual_check_delete(individual=individual, by=by, lock=True)
    if individual.is_deleted:
        return individual
    if membership is not None:
        _remove_membership(membership, by=by)
    individual.deleted_at = timezone.now()
    individual.save(update_fields=["deleted_at", "updated_at"])
    audit(individual, "mizani.soft_delete", by=by)
    return individual


@transaction.atomic
def individual_restore(*, individual, by):
    require_permission(by, "registry.delete_individual")
    individual = Individual.objects.select_for_update().get(pk=individual.pk)
    _require_record_in_scope(by, individual)
    if not individual.is_deleted:
        return individual
    if individual.merged_into_id:
        raise ValidationError("This record was merged into another as a duplicate: undo the merge instead.")
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
        if not Household.objects.with_code(code).exists():
            return code


def _validate_household(household, attributes, by):
    errors = {}
    household.code = (household.code or "").strip() or _new_household_code()
    if not household.code.isprintable():
        errors["code"] = ["A household code cannot contain line breaks, tabs or other invisible characters."]
    try:
        household.attributes = RegistryField.schema_for(RegistryField.Target.HOUSEHOLD).clean(
            attributes, stored=household.attributes)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    try:
        household.full_clean(exclude=["attributes", *errors], validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if "code" not in errors and (problem := _household_code_problem(household, by)):
        errors["code"] = [problem]
    if errors:
        raise ValidationError(errors)


def _household_code_problem(household, by):
    """Why `household` cannot have its code, or "": another household has it, case aside (hh-1 is
    HH-1 on a form or a file, as the database's index has it); a household the user may not see is
    not revealed."""
    taken = Household.objects.with_code(household.code).exclude(pk=household.pk).first()
    if taken is None:
        return ""
    return (f"Another household already has this code ({taken.code})." if scope_for(by).allows(taken.location)
            else "This code cannot be used.")


def _save_household(household, by):
    """Save, turning a lost race on the code's index (two clerks saving "BH-1" and "bh-1" at once)
    into the check's message."""
    try:
        with transaction.atomic():
            household.save()
    except IntegrityError as exc:
        problem = _household_code_problem(household, by)
        if not problem:
            raise
        raise ValidationError({"code": [problem]}) from exc


@transaction.atomic
def household_create(*, fields, attributes=None, by):
    require_permission(by, "registry.add_household")
    unknown = set(fields) - set(HOUSEHOLD_FIELDS)
    if unknown:
        raise ValidationError({name: ["Not a household field."] for name in sorted(unknown)})
    household = Household(**fields)
    _require_in_scope(by, household.location)
    _validate_household(household, attributes or {}, by)
    _save_household(household, by)
    audit(household, "wagtail.create", by=by)
    return household


def household_check_update(*, household, fields, attributes=None, by, lock=False):
    """Everything household_update checks, on an unsaved copy; returns it and its changes in clear."""
    require_permission(by, "registry.change_household")
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
    _validate_household(household, household.attributes if attributes is None else attributes, by)
    return household, _diff(before, _snapshot(household, HOUSEHOLD_FIELDS), set())


@transaction.atomic
def household_update(*, household, fields, attributes=None, by):
    household, changes = household_check_update(household=household, fields=fields, attributes=attributes,
                                                 by=by, lock=True)
    if changes:
        _save_household(household, by)
        audit(household, "wagtail.edit", by=by, data={
            "changes": _mask_changes(changes, sensitive_names(RegistryField.Target.HOUSEHOLD))})
    return household


def household_check_delete(*, household, by, lock=False):
    """Everything household_soft_delete checks; returns the fresh household or raises what the
    deletion would raise. Also run when a deletion is submitted for approval."""
    require_permission(by, "registry.delete_household")
    household = (Household.objects.select_for_update() if lock else Household.objects).get(pk=household.pk)
    _require_record_in_scope(by, household)
    if not household.is_deleted and Membership.objects.filter(household=household).exists():
        # Members of a deleted household could not join another one; they leave first, explicitly.
        raise ValidationError(f"Household {household.code} still has members: remove them first.")
    return household


@transaction.atomic
def household_soft_delete(*, household, by):
    household = household_check_delete(household=household, by=by, lock=True)
    if household.is_deleted:
        return household
    household.deleted_at = timezone.now()
    household.save(update_fields=["deleted_at", "updated_at"])
    audit(household, "mizani.soft_delete", by=by)
    return household


@transaction.atomic
def household_restore(*, household, by):
    require_permission(by, "registry.delete_household")
    household = Household.objects.select_for_update().get(pk=household.pk)
    _require_record_in_scope(by, household)
    if household.is_deleted:
        household.deleted_at = None
        household.save(update_fields=["deleted_at", "updated_at"])
        audit(household, "mizani.restore", by=by)
    return household


# --- household members ------------------------------------------------------------------------

def _lock_household_for_members(household, by):
    require_permission(by, "registry.change_household")
    household = Household.objects.select_for_update().get(pk=household.pk)
    _require_record_in_scope(by, household)
    if household.is_deleted:
        raise ValidationError("The household is deleted; restore it first.")
    return household


def _check_recipient_type(recipient_type):
    if recipient_type not in (None, "", *RecipientType.values):
        raise ValidationError({"recipient_type": [f"'{recipient_type}' is not PRIMARY or SECONDARY."]})


def _check_recipient(household, recipient_type):
    """For a member joining: a household has at most one primary recipient (a member becomes it through
    household_change_member, which hands the role over)."""
    _check_recipient_type(recipient_type)
    if recipient_type == RecipientType.PRIMARY:
        if Membership.objects.filter(household=household, recipient_type=RecipientType.PRIMARY).exists():
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
    current = Membership.objects.filter(individual=individual).select_related("household__location").first()
    if current is not None:
        raise ValidationError({"individual": [
            f"{individual} already belongs to {_household_named(current.household, by)}."]})
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
    recipient_type = recipient_type or None
    _check_recipient_type(recipient_type)
    if membership.recipient_type == RecipientType.PRIMARY and recipient_type != RecipientType.PRIMARY:
        raise ValidationError({"recipient_type": [
            f"{membership.individual} is the household's primary recipient, and a household with members keeps "
            "one: choose Primary for the member who will receive the payments instead (this member then "
            "becomes secondary)."]})
    before = {"role": membership.role_id, "recipient_type": membership.recipient_type}
    former_primary = _hand_over_primary(membership, by) if recipient_type == RecipientType.PRIMARY else None
    membership.role = _role(role_code)
    membership.recipient_type = recipient_type
    membership.save(update_fields=["role", "recipient_type"])
    after = {"role": membership.role_id, "recipient_type": membership.recipient_type}
    if before != after:
        audit(household, "mizani.member_change", by=by, data={
            "individual": membership.individual_id, "changes": _diff(before, after, set()),
            **({"former_primary": former_primary.individual_id} if former_primary else {})})
    return membership


def current_primary(household):
    """The household's primary recipient (a Membership), or None."""
    return Membership.objects.filter(household=household, recipient_type=RecipientType.PRIMARY).select_related(
        "individual__location").first()


def _hand_over_primary(membership, by):
    """Make the household's primary recipient (another member) secondary, so that `membership` can
    become primary: a household keeps one primary recipient, who changes this way. Returns the former
    primary's membership, or None. A primary registered outside `by`'s locations is not changed."""
    former = current_primary(membership.household_id)
    if former is None or former.pk == membership.pk:
        return None
    if not scope_for(by).allows(former.individual.location):
        raise ValidationError({"recipient_type": [
            "The household's primary recipient is registered outside your locations: a user with access to "
            "both members makes this change."]})
    Membership.objects.filter(pk=former.pk).update(recipient_type=RecipientType.SECONDARY)
    return former


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


def _others(membership):
    """The other members of `membership`'s household."""
    return Membership.objects.filter(household=membership.household_id).exclude(pk=membership.pk)


def _successor_as_primary(membership, new_primary, by):
    """The membership of `new_primary`, who becomes the primary recipient when `membership` leaves: a
    household keeps one while it has members, so the primary recipient leaves only naming who takes over
    (None when `membership` is not the primary recipient or is the last member)."""
    if membership.recipient_type != RecipientType.PRIMARY or not _others(membership).exists():
        if new_primary is not None:
            raise ValidationError({"new_primary": [
                f"{membership.individual} is not the household's primary recipient: nobody takes over from them."]})
        return None
    if new_primary is None:
        raise ValidationError({"new_primary": [
            f"{membership.individual} is the household's primary recipient: choose the member who will receive "
            "the payments instead (New primary recipient), or make another member primary first."]})
    successor = _others(membership).select_for_update().select_related("individual").filter(
        individual=getattr(new_primary, "pk", new_primary)).first()
    if successor is None:
        raise ValidationError({"new_primary": ["The new primary recipient must be another member of this household."]})
    _require_record_in_scope(by, successor.individual)
    return successor


@transaction.atomic
def household_remove_member(*, membership, new_primary=None, by):
    """Remove a member. The head leaves only as the last member (household_set_head first); the primary
    recipient leaves naming `new_primary`, the member who takes over the payments."""
    household = _lock_household_for_members(membership.household, by)
    membership = Membership.objects.select_for_update().select_related("individual").get(
        pk=membership.pk, household=household)
    _require_record_in_scope(by, membership.individual)
    if membership.role_id == MemberRole.HEAD and _others(membership).exists():
        raise ValidationError("The head cannot leave while other members remain: make another member head first.")
    successor = _successor_as_primary(membership, new_primary, by)
    _check_not_emptying_enrolled(household, leaving=membership, by=by)
    _remove_membership(membership, by=by)
    if successor is not None:
        before = successor.recipient_type
        successor.recipient_type = RecipientType.PRIMARY
        successor.save(update_fields=["recipient_type"])
        audit(household, "mizani.member_change", by=by, data={
            "individual": successor.individual_id,
            "changes": _diff({"recipient_type": before}, {"recipient_type": RecipientType.PRIMARY}, set()),
            "former_primary": membership.individual_id})


def _check_not_emptying_enrolled(household, *, leaving, by):
    """A household enrolled in an active plan keeps at least one member: its payroll lines would
    otherwise have nobody to pay."""
    if Membership.objects.filter(household=household).exclude(pk=leaving.pk).exists():
        return
    plans = sorted({enrolment.plan.name for enrolment in selectors.household_enrolments(household)
                    if enrolment.plan.status == "ACTIVE"})
    if plans:
        raise ValidationError(
            f"{leaving.individual} is the last member of {_household_named(household, by)}, which is enrolled in "
            f"{', '.join(plans)}: its payments would have nobody to pay. End the enrolment first, or add "
            "another member before this one leaves.")


MEMBER_ACTIONS = {"add": "Add a member", "change": "Change a member's role or recipient",
                  "set_head": "Make a member head", "remove": "Remove a member"}


def household_member_change(*, household, action, individual, role=None, recipient_type=None,
                            former_head_role=None, new_primary=None, by):
    """One change to a household's members (`action` one of MEMBER_ACTIONS): what the household page
    applies, at once or once its request is approved. `new_primary` is the member taking over when the
    primary recipient is removed."""
    if new_primary is not None and action != "remove":
        raise ValidationError({"new_primary": ["A new primary recipient is named only when the primary recipient "
                                               "is removed."]})
    if action == "add":
        return household_add_member(household=household, individual=individual, role=role or None,
                                    recipient_type=recipient_type or None, by=by)
    if action not in MEMBER_ACTIONS:
        raise ValidationError("Unknown operation.")
    membership = Membership.objects.filter(household=household, individual=individual).first()
    if membership is None:
        raise ValidationError(f"{individual} is not a member of household {household.code}.")
    if action == "change":
        return household_change_member(membership=membership, role=role, recipient_type=recipient_type or None,
                                       by=by)
    if action == "set_head":
        return household_set_head(household=household, individual=individual, former_head_role=former_head_role,
                                  by=by)
    return household_remove_member(membership=membership, new_primary=new_primary, by=by)


class _DryRun(Exception):
    pass


def household_member_check(*, by, **change):
    """Raise what household_member_change would raise, changing nothing: the change is made in a
    savepoint that is then rolled back (audit entries included), so the checks are exactly the
    service's. Run when a member change is submitted for approval."""
    try:
        with transaction.atomic():
            household_member_change(**change, by=by)
            raise _DryRun
    except _DryRun:
        pass


# --- duplicates -------------------------------------------------------------------------------
# The scan files pairs in the review queue (duplicates.py); a clerk dismisses a pair or asks for it
# to be merged, through the approval engine (approvals.py: registry.merge, registry.unmerge), whose
# execution calls individual_merge / individual_unmerge.

DUPLICATE_REVIEW_PERMISSION = "registry.change_duplicatecandidate"
MERGE_PERMISSION = "registry.merge_individual"


def duplicates_scan_start(*, idempotency_key, by):
    """Start a scan of the people in `by`'s locations; a scan of theirs still running is returned
    instead of a second one, and the same key starts one scan however often it is sent."""
    from workflows.models import Job, JobStatus

    from .duplicates import SCAN

    require_permission(by, "registry.scan_duplicates")
    if scope_for(by).is_empty:
        raise PermissionDenied("You have no locations to scan.")
    running = Job.objects.filter(kind=SCAN, started_by=by, status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).first()
    if running is not None:
        return running
    return job_start(kind=SCAN, params={}, idempotency_key=f"{SCAN}:{by.pk}:{idempotency_key}", by=by)


def _lock_candidate(candidate, by):
    candidate = DuplicateCandidate.objects.select_for_update().get(pk=candidate.pk)
    scope = scope_for(by)
    if not (scope.allows(candidate.first.location) and scope.allows(candidate.second.location)):
        raise DuplicateCandidate.DoesNotExist(f"No possible duplicate with id {candidate.pk}.")
    return candidate


@transaction.atomic
def duplicate_dismiss(*, candidate, reason, by):
    """Record that the pair is two different people: later scans leave it alone."""
    require_permission(by, DUPLICATE_REVIEW_PERMISSION)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": ["Say why these are two different people."]})
    candidate = _lock_candidate(candidate, by)
    if candidate.status != DuplicateStatus.OPEN:
        raise ValidationError(f"This pair is {candidate.get_status_display().lower()}: only a pair to review "
                              "can be marked as not a duplicate.")
    candidate.dismiss(reason, by, timezone.now())
    candidate.save()
    audit(candidate, "mizani.duplicate_dismiss", by=by, data={
        "first": candidate.first_id, "second": candidate.second_id, "reason": reason})
    return candidate


@transaction.atomic
def duplicate_reopen(*, candidate, by):
    """Put a pair marked "not a duplicate" back in the review queue: that decision was one person's,
    and may be wrong. The audit entry keeps who had dismissed it, when and why."""
    require_permission(by, DUPLICATE_REVIEW_PERMISSION)
    candidate = _lock_candidate(candidate, by)
    if candidate.status != DuplicateStatus.DISMISSED:
        raise ValidationError(f"This pair is {candidate.get_status_display().lower()}: only a pair marked as not a "
                              "duplicate can be reopened.")
    if candidate.first.is_deleted or candidate.second.is_deleted:
        raise ValidationError("One of the two records has been deleted since: there is no pair to review.")
    dismissed = {"reason": candidate.dismiss_reason, "by": candidate.dismissed_by_id,
                 "at": candidate.dismissed_at.isoformat() if candidate.dismissed_at else None}
    candidate.reopen()
    candidate.save()
    audit(candidate, "mizani.duplicate_reopen", by=by, data={
        "first": candidate.first_id, "second": candidate.second_id, "dismissed": dismissed})
    return candidate


@transaction.atomic
def individual_merge_request(*, candidate, kept, by):
    """Ask for the pair's other record to be merged into `kept`, through the approval engine (at once
    when approval is off for registry.merge). The pair waits as 'merge requested' meanwhile."""
    from workflows.services import approval_submit

    candidate = _lock_candidate(candidate, by)  # two clerks asking at once: the second finds it requested
    request = approval_submit(operation=MERGE_OPERATION, payload={"candidate": candidate.pk, "kept": kept.pk}, by=by)
    candidate.request_merge(request)
    candidate.save()
    return request


def _lock_people(first, second, by):
    """Both records, locked in id order (no deadlock with a merge of the same pair the other way)."""
    locked = {person.pk: person for person in
              Individual.objects.select_for_update().filter(pk__in=[first.pk, second.pk]).order_by("pk")}
    for person in locked.values():
        _require_record_in_scope(by, person)
    return locked[first.pk], locked[second.pk]


def check_merge(*, kept, merged, by):
    """Why `merged` cannot be merged into `kept` now (a ValidationError), or nothing."""
    require_permission(by, MERGE_PERMISSION)
    for person in (kept, merged):
        _require_record_in_scope(by, person)
    if kept.pk == merged.pk:
        raise ValidationError("A record cannot be merged into itself.")
    if kept.is_deleted or merged.is_deleted:
        raise ValidationError("Both records must be registered (not deleted or already merged).")
    households = {membership.individual_id: membership.household for membership in
                  Membership.objects.filter(individual__in=[kept, merged]).select_related("household__location")}
    if len(households) == 2 and households[kept.pk].pk != households[merged.pk].pk:
        if Membership.objects.filter(household=households[merged.pk]).exclude(individual=merged).exists():
            raise ValidationError(
                f"{kept} belongs to {_household_named(households[kept.pk], by)} and {merged} to "
                f"{_household_named(households[merged.pk], by)}: move the person to the right household first.")
        _check_dissolving(households[merged.pk], merged=merged, by=by)


def _check_dissolving(household, *, merged, by):
    """A merge takes with it the household of which the duplicate is the only member (the one-person
    household an import creates), as household_soft_delete would delete it; refused where the
    household must not vanish: enrolled, paid, or with a request about it waiting."""
    from schemes.payments.models import PaymentLine
    from schemes.plans.models import PlanType

    from .approvals import MEMBERS_OPERATION

    named = _household_named(household, by)
    if not by.has_perm("registry.delete_household"):
        raise PermissionDenied(f"Merging {merged} deletes {named}, whose only member they are, and your role does "
                               f"not allow you to {PERMISSION_PHRASES['registry.delete_household']}.")
    if not scope_for(by).allows(household.location):
        raise ValidationError(f"{merged} is the only member of {named}, which the merge would delete: a user with "
                              "access to it asks for this merge.")
    problems = []
    if enrolments := selectors.household_enrolments(household):
        problems.append("it is enrolled in " + ", ".join(
            f"{e.plan.name} ({e.get_status_display().lower()})" for e in enrolments))
    if PaymentLine.objects.filter(
            payroll__payment_plan__benefit_plan__plan_type=PlanType.HOUSEHOLD,
            beneficiary_id__in=household.beneficiaries.values("pk")).exists():
        problems.append("payments were made to it")
    waiting = (selectors.open_requests(["registry.change_household", "registry.delete_household"],
                                       record=household.pk).first()
               or selectors.open_requests([MEMBERS_OPERATION], household=household.pk).first())
    if waiting is not None:
        problems.append(f"request {waiting.pk} about it is waiting for approval")
    if problems:
        raise ValidationError(
            f"{merged} is the only member of {named}, which the merge would delete, but {'; '.join(problems)}: "
            "such a household is not deleted. End its enrolments or decide the request, or move the person to the "
            "right household, first.")


# The kept record's fields a merge fills when it has no value and the merged record has one (with
# each attribute of the schema); names and values as in _snapshot, the location as its id.
MERGE_FILLED_FIELDS = ("sex", "national_id", "phone", "location")
# What a field holds when it has no value: a filled value taken back by an unmerge becomes this again.
NO_VALUE = {"sex": "", "national_id": None, "phone": "", "location": None}


def _has_value(value):
    return value is not None and value != ""


def merge_fills(*, kept, merged):
    """{name: value}: what merging `merged` into `kept` copies to the kept record, each field and
    attribute the kept record has no value for and the merged record has. Where both have a value,
    the kept record's stays."""
    ours, theirs = _snapshot(kept, MERGE_FILLED_FIELDS), _snapshot(merged, MERGE_FILLED_FIELDS)
    names = [*MERGE_FILLED_FIELDS, *(f"attributes.{name}" for name in RegistryField.objects.filter(
        target=RegistryField.Target.INDIVIDUAL).values_list("name", flat=True))]
    return {name: theirs[name] for name in names
            if not _has_value(ours.get(name)) and _has_value(theirs.get(name))}


def _set_values(individual, values):
    """Set {name: value} (names as in _snapshot) on the unsaved record; an attribute set to None is
    removed."""
    individual.attributes = dict(individual.attributes or {})
    for name, value in values.items():
        if name.startswith("attributes."):
            key = name.removeprefix("attributes.")
            if value is None:
                individual.attributes.pop(key, None)
            else:
                individual.attributes[key] = value
        else:
            setattr(individual, "location_id" if name == "location" else name, value)


def unmerge_fills(merge):
    """(taken back, changed since) for the values the merge filled on the kept record: names whose
    value is still the one filled, which undoing the merge removes, and names changed since, which stay."""
    filled = merge.moved.get("filled", [])
    ours, theirs = _snapshot(merge.kept, MERGE_FILLED_FIELDS), _snapshot(merge.merged, MERGE_FILLED_FIELDS)
    taken_back = [name for name in filled if ours.get(name) == theirs.get(name)]
    return taken_back, [name for name in filled if name not in taken_back]


def merge_preview(*, kept, merged, scope, outside=selectors.YOUR_LOCATIONS):
    """What merging `merged` into `kept` would do, for the people deciding: the household (named only
    within `scope`), the duplicate's enrolments, and in how many plans both are enrolled (one
    enrolment is then closed)."""
    from schemes.plans.models import LIVE_STATUSES, Beneficiary

    theirs = Membership.objects.filter(individual=merged).select_related("household__location").first()
    ours = Membership.objects.filter(individual=kept).select_related("household__location").first()
    household = theirs and selectors.household_named(theirs.household, scope, outside=outside)
    if theirs is None:
        membership = None
    elif ours is None:
        membership = f"The duplicate's place in {household} passes to the kept record."
    elif ours.household_id == theirs.household_id:
        membership = f"The duplicate leaves {household}, where the kept record already is."
    else:
        membership = (f"The kept record stays in {selectors.household_named(ours.household, scope, outside=outside)}; "
                      f"{household} (only this member) will be deleted (undoing the merge restores it).")
    return {
        "membership": membership,
        "enrolments": Beneficiary.objects.filter(individual=merged).count(),
        "both_enrolled": Beneficiary.objects.filter(individual=kept, status__in=LIVE_STATUSES, plan__in=(
            Beneficiary.objects.filter(individual=merged, status__in=LIVE_STATUSES).values("plan"))).count(),
    }


@transaction.atomic
def individual_merge(*, kept, merged, by):
    """Merge the duplicate record `merged` into `kept`. Its household membership passes to the kept
    record (or, both being in one household, goes, the kept record taking its head role or primary
    recipient; or, the kept record being in another household, goes, and the duplicate's household,
    of which it was the only member, is soft-deleted), its enrolments move to the kept record, and
    where both were enrolled in one plan the more advanced enrolment stays (the kept record's on a
    tie) and the other is closed through the plans' status change. The duplicate is soft-deleted and marked as merged; the Merge row records
    what moved, for individual_unmerge. Run by the approval engine, as the maker."""
    kept, merged = _lock_people(kept, merged, by)
    check_merge(kept=kept, merged=merged, by=by)
    now = timezone.now()
    fills = merge_fills(kept=kept, merged=merged)
    moved = {"membership": _merge_membership(kept, merged, by), **_merge_enrolments(kept, merged, by),
             "filled": list(fills)}
    merged.deleted_at, merged.merged_into = now, kept
    merged.save(update_fields=["deleted_at", "merged_into", "updated_at"])
    before = _snapshot(kept, INDIVIDUAL_FIELDS)
    if fills:
        # After the duplicate is deleted: the national ID is unique among live records only, so it
        # stays on the merged record too (for an unmerge) and is free for the kept one.
        _set_values(kept, fills)
        _save_unique(kept)
    filled = _diff(before, _snapshot(kept, INDIVIDUAL_FIELDS), sensitive_names(RegistryField.Target.INDIVIDUAL))
    candidate = DuplicateCandidate.objects.select_for_update().filter(
        first=min(kept.pk, merged.pk), second=max(kept.pk, merged.pk)).first()
    if candidate is not None and candidate.status in (DuplicateStatus.OPEN, DuplicateStatus.MERGE_REQUESTED):
        candidate.mark_merged()
        candidate.save()
    merge = Merge.objects.create(kept=kept, merged=merged, candidate=candidate, moved=moved, merged_by=by,
                                 merged_at=now, request=candidate.merge_request if candidate else None)
    audit(kept, "mizani.merge", by=by, data={"merge": merge.pk, "merged": merged.pk, "moved": moved,
                                            "changes": filled})
    audit(merged, "mizani.merged", by=by, data={"merge": merge.pk, "kept": kept.pk})
    return merge


def _merge_membership(kept, merged, by):
    """Returns what individual_unmerge needs to put the household back, or None."""
    theirs = Membership.objects.select_for_update().filter(individual=merged).select_related("household").first()
    if theirs is None:
        return None
    ours = Membership.objects.select_for_update().filter(individual=kept).first()
    household = theirs.household
    if ours is not None and ours.household_id != household.pk:
        return _merge_dissolving(theirs, kept=kept, merged=merged, by=by)
    if ours is None:
        Membership.objects.filter(pk=theirs.pk).update(individual=kept)
        audit(household, "mizani.member_change", by=by, data={
            "individual": kept.pk, "replaces": merged.pk, "merged_into": kept.pk})
        return {"moved": theirs.pk, "household": household.pk}
    before = {"role": ours.role_id, "recipient_type": ours.recipient_type}
    removed = {"role": theirs.role_id, "recipient_type": theirs.recipient_type}
    theirs.delete()
    if removed["role"] == MemberRole.HEAD:
        ours.role_id = MemberRole.HEAD
    if removed["recipient_type"] == RecipientType.PRIMARY:
        ours.recipient_type = RecipientType.PRIMARY
    ours.save(update_fields=["role", "recipient_type"])
    audit(household, "mizani.member_remove", by=by, data={
        "individual": merged.pk, **removed, "merged_into": kept.pk,
        "changes": _diff(before, {"role": ours.role_id, "recipient_type": ours.recipient_type}, set())})
    return {"removed": removed, "household": household.pk, "kept_membership": ours.pk, "kept_before": before}


def _merge_dissolving(theirs, *, kept, merged, by):
    """The duplicate leaves the household of which it is the only member (check_merge made sure), and
    the household is deleted; returns what individual_unmerge needs to restore both."""
    household = Household.objects.select_for_update().get(pk=theirs.household_id)
    _check_dissolving(household, merged=merged, by=by)  # again, the household now locked
    removed = {"role": theirs.role_id, "recipient_type": theirs.recipient_type}
    theirs.delete()
    audit(household, "mizani.member_remove", by=by, data={"individual": merged.pk, **removed, "merged_into": kept.pk})
    household_soft_delete(household=household, by=by)
    return {"dissolved": household.pk, "household": household.pk, "removed": removed}


ENROLMENT_RANK = {"ACTIVE": 3, "SUSPENDED": 2, "POTENTIAL": 1}


def _merge_enrolments(kept, merged, by):
    from schemes.plans.models import LIVE_STATUSES, Beneficiary, BeneficiaryStatus
    from schemes.plans.services import beneficiary_change_status

    theirs = {b.plan_id: b for b in Beneficiary.objects.select_for_update().filter(
        individual=merged, status__in=LIVE_STATUSES)}
    closed = []
    for ours in Beneficiary.objects.select_for_update().filter(individual=kept, status__in=LIVE_STATUSES,
                                                               plan__in=list(theirs)):
        their = theirs[ours.plan_id]
        closing = their if ENROLMENT_RANK[ours.status] >= ENROLMENT_RANK[their.status] else ours
        action = "reject" if closing.status == BeneficiaryStatus.POTENTIAL else "graduate"
        closed.append({"id": closing.pk, "plan": closing.plan_id, "individual": closing.individual_id,
                       "status": closing.status})
        beneficiary_change_status(beneficiary=closing, action=action, by=by,
                                  reason=f"Duplicate record: individual {merged.pk} merged into {kept.pk}.")
    moving = list(Beneficiary.objects.filter(individual=merged).exclude(pk__in=[c["id"] for c in closed])
                  .order_by("pk").values_list("pk", flat=True))
    Beneficiary.objects.filter(pk__in=moving).update(individual=kept)
    return {"beneficiaries": moving, "closed_beneficiaries": closed}


@transaction.atomic
def individual_unmerge_request(*, merge, by):
    """Ask for a merge to be undone, through the approval engine."""
    from workflows.services import approval_submit

    return approval_submit(operation=UNMERGE_OPERATION, payload={"merge": merge.pk}, by=by)


def check_unmerge(*, merge, by):
    require_permission(by, MERGE_PERMISSION)
    kept, merged = merge.kept, merge.merged
    for person in (kept, merged):
        _require_record_in_scope(by, person)
    if merge.status != MergeStatus.MERGED:
        raise ValidationError("This merge has already been undone.")
    if kept.is_deleted:
        raise ValidationError(f"The kept record ({kept}) is itself deleted or merged: bring it back first.")
    if (merge.moved.get("membership") or {}).get("dissolved") and not by.has_perm("registry.delete_household"):
        raise PermissionDenied("Undoing this merge restores the household the merge deleted, and your role does not "
                               f"allow you to {PERMISSION_PHRASES['registry.delete_household']}.")
    taken_back = unmerge_fills(merge)[0]
    if "location" in taken_back:
        _require_in_scope(by, None)  # the kept record is left without a location: national users' records
    holders = Individual.objects.live().filter(national_id=merged.national_id)
    if "national_id" in taken_back:
        holders = holders.exclude(pk=kept.pk)  # the ID the merge filled, which the unmerge takes back
    if merged.national_id and holders.exists():
        raise ValidationError({"national_id": [
            "A registered person now holds the merged record's national ID: resolve that first."]})


@transaction.atomic
def individual_unmerge(*, merge, by):
    """Undo a merge: the duplicate record comes back with its enrolments and its household place.
    Enrolments the merge closed stay closed (graduation and rejection are final): re-enrol the person
    if need be; the audit entry lists them."""
    from schemes.plans.models import Beneficiary
    from workflows.models import ApprovalRequest, RequestStatus

    merge = Merge.objects.select_for_update().get(pk=merge.pk)
    merge.kept, merge.merged = _lock_people(merge.kept, merge.merged, by)
    check_unmerge(merge=merge, by=by)
    kept, merged = merge.kept, merge.merged
    taken_back, changed_since = unmerge_fills(merge)
    before = _snapshot(kept, INDIVIDUAL_FIELDS)
    if taken_back:
        # Before the merged record comes back, so that the national ID is free for it again.
        _set_values(kept, {name: NO_VALUE.get(name) for name in taken_back})
        _save_unique(kept)
    merged.deleted_at = merged.merged_into = None
    _save_unique(merged, update_fields=["deleted_at", "merged_into", "updated_at"])
    back = Beneficiary.objects.filter(pk__in=merge.moved.get("beneficiaries", []), individual=kept).update(
        individual=merged)
    _unmerge_membership(merge, by)
    request = ApprovalRequest.objects.filter(operation=UNMERGE_OPERATION, payload__merge=merge.pk,
                                             status=RequestStatus.EXECUTING).first()
    merge.undo(by=by, when=timezone.now(), request=request)
    merge.moved = {**merge.moved, "unmerge": {"taken_back": taken_back, "changed_since": changed_since}}
    merge.save()
    if merge.candidate_id:
        candidate = DuplicateCandidate.objects.select_for_update().get(pk=merge.candidate_id)
        if candidate.status == DuplicateStatus.MERGED:
            candidate.reopen_after_unmerge()
            candidate.save()
    data = {"merge": merge.pk, "beneficiaries_back": back,
            "closed_stay_closed": [c["id"] for c in merge.moved.get("closed_beneficiaries", [])],
            "filled_taken_back": taken_back, "filled_changed_since_stay": changed_since}
    audit(kept, "mizani.unmerge", by=by, data={**data, "merged": merged.pk, "changes": _diff(
        before, _snapshot(kept, INDIVIDUAL_FIELDS), sensitive_names(RegistryField.Target.INDIVIDUAL))})
    audit(merged, "mizani.unmerge", by=by, data={**data, "kept": kept.pk})
    return merge


def _unmerge_membership(merge, by):
    """The household place the merge took from the merged record goes back to it; the household's
    entries say so (merge_undone: the merge's id)."""
    kept, merged, membership = merge.kept, merge.merged, merge.moved.get("membership")
    if not membership:
        return
    household = Household.objects.select_for_update().get(pk=membership["household"])
    if "dissolved" in membership:
        _unmerge_dissolved(household, merged, membership["removed"], by, merge)
        return
    if "moved" in membership:
        if not Membership.objects.filter(pk=membership["moved"], individual=kept).update(individual=merged):
            raise ValidationError(f"{kept} has left household {household.code} since the merge: put the "
                                  "household right first.")
        audit(household, "mizani.member_change", by=by, data={
            "individual": merged.pk, "replaces": kept.pk, "merge_undone": merge.pk})
        return
    ours = Membership.objects.select_for_update().filter(
        pk=membership["kept_membership"], individual=kept, household=household).first()
    if ours is None:
        raise ValidationError(f"{kept} has left household {household.code} since the merge: put the household "
                              "right first.")
    current = {"role": ours.role_id, "recipient_type": ours.recipient_type}
    ours.role_id, ours.recipient_type = membership["kept_before"]["role"], membership["kept_before"]["recipient_type"]
    ours.save(update_fields=["role", "recipient_type"])
    try:
        with transaction.atomic():
            Membership.objects.create(household=household, individual=merged, role_id=membership["removed"]["role"],
                                      recipient_type=membership["removed"]["recipient_type"])
    except IntegrityError as exc:
        raise ValidationError(f"Household {household.code} has another head or primary recipient since the "
                              "merge: put the household right first.") from exc
    audit(household, "mizani.member_add", by=by, data={
        "individual": merged.pk, **membership["removed"], "merge_undone": merge.pk, "kept": kept.pk,
        "changes": _diff(current, membership["kept_before"], set())})


def _unmerge_dissolved(household, merged, removed, by, merge):
    """The household the merge deleted comes back, with the merged record as its member as before."""
    if Membership.objects.filter(household=household).exists():
        raise ValidationError(f"Household {household.code} has members again since the merge: put the household "
                              "right first.")
    household_restore(household=household, by=by)
    Membership.objects.create(household=household, individual=merged, role_id=removed["role"],
                              recipient_type=removed["recipient_type"])
    audit(household, "mizani.member_add", by=by, data={"individual": merged.pk, **removed, "merge_undone": merge.pk})
