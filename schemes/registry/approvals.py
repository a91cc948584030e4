"""Registry operations that may need approval: change requests (edits shown as old vs new) and
deletions, for individuals and households; changes to a household's members; merging duplicate records and undoing a merge. Payloads
are JSON; the services do every check again when the approved change is applied."""

import datetime
import hashlib

from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils.text import capfirst

from sites.models import Location
from sites.refusals import require_permission
from sites.scoping import Scope
from workflows.models import ApprovalRequest, RequestStatus
from workflows.operations import Operation, Prepared, register

from . import selectors, services
from .models import (
    MERGE_OPERATION,
    UNMERGE_OPERATION,
    DuplicateStatus,
    Household,
    Individual,
    MemberRole,
    Membership,
    Merge,
    RecipientType,
    RegistryField,
    Sex,
)


def _json_fields(fields):
    """Form values as JSON: dates as ISO text, the location as its id."""
    encoded = {}
    for name, value in fields.items():
        if isinstance(value, datetime.date):
            value = value.isoformat()
        elif isinstance(value, Location):
            value = value.pk
        encoded[name] = value
    return encoded


def _python_fields(fields):
    """JSON (or form) values back to what the services take: the location as a Location."""
    decoded = dict(fields)
    location = decoded.get("location")
    if location is not None and not isinstance(location, Location):
        decoded["location"] = Location.objects.filter(pk=location).first()
    return decoded


def _record(model, selector, payload, by):
    record = selector(by).filter(pk=payload.get("record")).first()
    if record is None:
        raise PermissionDenied(f"No {model._meta.verbose_name} with id {payload.get('record')} in your locations.")
    return record


def _version(model, payload):
    stamp = model.objects.filter(pk=payload["record"]).values_list("updated_at", flat=True).first()
    return stamp.isoformat() if stamp else "gone"


def _refuse_second_request(operation, noun, **payload):
    """One open request per record and operation: a second (a resubmitted form) is refused."""
    pending = selectors.open_requests([operation], **payload).first()
    if pending is not None:
        raise ValidationError(f"Request {pending.pk} for this {noun} is already waiting for approval: it must be "
                              "decided (or cancelled) before another is submitted.")


class Readers:
    """Who reads a request placed at `location`: its maker and the checkers and auditors there, each
    with their own scope, all of which hold that location. What the request stores (title, link,
    counts, diff) names no record outside it: such a record is "a household outside <location>"."""

    def __init__(self, location):
        self.scope = Scope(national=location is None, paths=(location.path,) if location else ())
        self.outside = location.name if location else ""

    def household(self, household):
        return selectors.household_named(household, self.scope, outside=self.outside)

    def person(self, person):
        return selectors.person_named(person, self.scope, outside=self.outside)


def _described(record, readers):
    """The record as a checker tells it from others: its id, and a person's date of birth and household
    (its code only when the request's readers may see it)."""
    if isinstance(record, Household):
        return f"household {record.code} (id {record.pk})"
    membership = Membership.objects.filter(individual=record).select_related("household__location").first()
    household = f", {readers.household(membership.household)}" if membership else ""
    return f"individual {record} (id {record.pk}, born {record.dob:%Y-%m-%d}{household})"


def _link(record, readers):
    name = "registry_household" if isinstance(record, Household) else "registry_individual"
    return {"url": reverse(f"{name}:inspect", args=[record.pk]),
            "label": f"Open the record of {_described(record, readers)}"}


def labelled_diff(model, target, changes):
    """[[label, old, new]] for a change's {name: [old, new]}: field labels, location names."""
    definitions = {d.name: d.label for d in RegistryField.objects.filter(target=target)}
    locations = dict(Location.objects.filter(
        pk__in=[v for v in changes.get("location", []) if v is not None]).values_list("pk", "name"))
    rows = []
    for name, values in changes.items():
        if name.startswith("attributes."):
            label = definitions.get(name.removeprefix("attributes."), name.removeprefix("attributes."))
        else:
            label = capfirst(model._meta.get_field(name).verbose_name)
        if name == "location":
            values = [locations.get(int(v)) if v is not None else None for v in values]
        elif name == "sex":
            values = [dict(Sex.choices).get(v, v) for v in values]
        rows.append([label, *values])
    return rows


def _sensitive_labels(model, target):
    return sorted(row[0] for row in labelled_diff(
        model, target, {name: [None, None] for name in services.sensitive_names(target)}))


def _change_operation(name, label, model, selector, check_update, update, target):
    def prepare(payload, by):
        record = _record(model, selector, payload, by)
        fields = _python_fields(payload.get("fields", {}))
        updated, changes = check_update(**{model._meta.model_name: record}, fields=fields,
                                        attributes=payload.get("attributes"), by=by)
        if not changes:
            raise ValidationError("Nothing would change: every value is the one already recorded.")
        _refuse_second_request(name, model._meta.verbose_name, record=record.pk)
        readers = Readers(updated.location)
        return Prepared(
            payload={"record": record.pk, "fields": _json_fields(fields), "attributes": updated.attributes},
            summary={"title": f"Change {_described(record, readers)}", "record": record.pk,
                     "model": model._meta.label_lower, "diff": labelled_diff(model, target, changes),
                     "sensitive": _sensitive_labels(model, target), "link": _link(record, readers)},
            location=updated.location, version=record.updated_at.isoformat(),
        )

    def execute(payload, maker):
        record = model.objects.get(pk=payload["record"])
        update(**{model._meta.model_name: record}, fields=_python_fields(payload["fields"]),
               attributes=payload["attributes"], by=maker)
        return {"record": record.pk}

    return register(Operation(name=name, label=label, prepare=prepare, execute=execute,
                              version=lambda payload: _version(model, payload), default_requires_approval=False))


def _delete_operation(name, label, model, selector, check_delete, delete):
    def prepare(payload, by):
        record = _record(model, selector, payload, by)
        check_delete(**{model._meta.model_name: record}, by=by)
        _refuse_second_request(name, model._meta.verbose_name, record=record.pk)
        readers = Readers(record.location)
        counts = selectors.delete_consequences(record, readers.scope, outside=readers.outside)
        return Prepared(payload={"record": record.pk},
                        summary={"title": f"Delete {_described(record, readers)}", "record": record.pk,
                                 "model": model._meta.label_lower, "diff": [], "sensitive": [],
                                 "counts": counts, "link": _link(record, readers)},
                        location=record.location, version=record.updated_at.isoformat())

    def execute(payload, maker):
        delete(**{model._meta.model_name: model.objects.get(pk=payload["record"])}, by=maker)
        return {"record": payload["record"]}

    return register(Operation(name=name, label=label, prepare=prepare, execute=execute,
                              version=lambda payload: _version(model, payload), default_requires_approval=False))


CHANGE_INDIVIDUAL = _change_operation(
    "registry.change_individual", "Change a registered person", Individual, selectors.individuals_for,
    services.individual_check_update, services.individual_update, RegistryField.Target.INDIVIDUAL)
CHANGE_HOUSEHOLD = _change_operation(
    "registry.change_household", "Change a household", Household, selectors.households_for,
    services.household_check_update, services.household_update, RegistryField.Target.HOUSEHOLD)
DELETE_INDIVIDUAL = _delete_operation(
    "registry.delete_individual", "Delete a registered person", Individual, selectors.individuals_for,
    services.individual_check_delete, services.individual_soft_delete)
DELETE_HOUSEHOLD = _delete_operation(
    "registry.delete_household", "Delete a household", Household, selectors.households_for,
    services.household_check_delete, services.household_soft_delete)


# --- household members: who is head, who receives the payments -------------------------------------

def _member_change(payload, households, individuals):
    """The service's keyword arguments for the payload's change, records read through the querysets."""
    household = households.filter(pk=payload.get("household")).first()
    if household is None:
        raise PermissionDenied(f"No household with id {payload.get('household')} in your locations.")
    people = {}
    for key in ("individual", "new_primary"):
        if key == "individual" or payload.get(key):
            people[key] = individuals.filter(pk=payload.get(key)).first()
            if people[key] is None:
                raise PermissionDenied(f"No person with id {payload.get(key)} in your locations.")
    return {"household": household, "action": payload.get("action"), "individual": people["individual"],
            "role": payload.get("role") or None, "recipient_type": payload.get("recipient_type") or None,
            "former_head_role": payload.get("former_head_role") or None, "new_primary": people.get("new_primary")}


def _member_text(role, recipient):
    roles = dict(MemberRole.objects.values_list("pk", "label"))
    text = roles.get(role, role) or "—"
    return f"{text}, {RecipientType(recipient).label.lower()}" if recipient else text


def _member_diff(change, readers):
    """[[what, now, after]] for the checker: the member's role and recipient before and after (and the
    head's, or the primary recipient's, whom the change moves)."""
    household, individual, action = change["household"], change["individual"], change["action"]
    person = capfirst(readers.person(individual))
    current = Membership.objects.filter(household=household, individual=individual).first()
    now = _member_text(current.role_id, current.recipient_type) if current else "Not a member"
    if action == "add":
        return [[person, now, _member_text(change["role"] or MemberRole.HEAD, change["recipient_type"])]]
    if action == "remove":
        rows = [[person, now, "Leaves the household"]]
        successor = change["new_primary"] and Membership.objects.filter(
            household=household, individual=change["new_primary"]).first()
        if successor:
            rows.append([f"{capfirst(readers.person(change['new_primary']))}, new primary recipient",
                         _member_text(successor.role_id, successor.recipient_type),
                         _member_text(successor.role_id, RecipientType.PRIMARY)])
        return rows
    if action == "change":
        rows = [[person, now, _member_text(change["role"], change["recipient_type"])]]
        primary = services.current_primary(household)
        if change["recipient_type"] == RecipientType.PRIMARY and primary and primary.individual_id != individual.pk:
            rows.append([f"{capfirst(readers.person(primary.individual))}, primary recipient now",
                         _member_text(primary.role_id, primary.recipient_type),
                         _member_text(primary.role_id, RecipientType.SECONDARY)])
        return rows
    rows = [[person, now, _member_text(MemberRole.HEAD, current.recipient_type if current else None)]]
    head = Membership.objects.filter(household=household, role_id=MemberRole.HEAD).select_related(
        "individual__location").first()
    if head is not None:
        rows.append([f"{capfirst(readers.person(head.individual))}, head now",
                     _member_text(head.role_id, head.recipient_type),
                     _member_text(change["former_head_role"], head.recipient_type)])
    return rows


def prepare_member_change(payload, by):
    change = _member_change(payload, selectors.households_for(by), selectors.individuals_for(by))
    services.household_member_check(**change, by=by)
    household, individual = change["household"], change["individual"]
    _refuse_second_request(MEMBERS_OPERATION, "member", household=household.pk, individual=individual.pk)
    counts = {}
    if enrolments := selectors.household_enrolments(household):
        counts["The household is enrolled in"] = ", ".join(
            f"{e.plan.name} ({e.get_status_display().lower()})" for e in enrolments)
    readers = Readers(household.location)
    title = (f"{services.MEMBER_ACTIONS[change['action']]} of {_described(household, readers)}: "
             f"{readers.person(individual)}")
    return Prepared(
        payload={key: value.pk if hasattr(value, "pk") else value for key, value in change.items()},
        summary={"title": title, "record": household.pk, "model": Household._meta.label_lower,
                 "diff": _member_diff(change, readers), "sensitive": [], "counts": counts,
                 "link": _link(household, readers)},
        location=household.location, version=_members_version(payload),
    )


def execute_member_change(payload, maker):
    change = _member_change(payload, Household.objects.all(), Individual.objects.all())
    services.household_member_change(**change, by=maker)
    return {"household": payload["household"], "individual": payload["individual"]}


def _members_version(payload):
    """The household's members, roles and recipients now, as a fingerprint: a request made on other members
    is void."""
    household = Household.objects.filter(pk=payload["household"]).values_list("deleted_at", flat=True)
    if not household.exists() or household[0] is not None:
        return "gone"
    members = Membership.objects.filter(household=payload["household"]).order_by("pk").values_list(
        "individual_id", "role_id", "recipient_type")
    return hashlib.sha256(repr(list(members)).encode()).hexdigest()


MEMBERS_OPERATION = "registry.change_household_members"
CHANGE_MEMBERS = register(Operation(
    name=MEMBERS_OPERATION, label="Change a household's members (head, roles, recipients)",
    prepare=prepare_member_change, execute=execute_member_change, version=_members_version,
    default_requires_approval=False))


# --- duplicates: merge and unmerge --------------------------------------------------------------

def _common_location(*locations):
    """The deepest location holding all of them: checkers there decide (None, national scope only,
    when one has no location or they share no region)."""
    if any(location is None for location in locations):
        return None
    common = []
    for parts in zip(*(location.path.strip("/").split("/") for location in locations), strict=False):
        if len(set(parts)) != 1:
            break
        common.append(parts[0])
    return Location.objects.filter(path=f"/{'/'.join(common)}/").first() if common else None


def _people_version(*ids):
    """When each record last changed (as timestamps: the request keeps 64 characters)."""
    stamps = dict(Individual.objects.filter(pk__in=ids).values_list("pk", "updated_at"))
    return "|".join(f"{stamps[pk].timestamp():.6f}" if pk in stamps else "gone" for pk in ids)


MERGE_FIELDS = (("first_name", "First name"), ("last_name", "Last name"), ("dob", "Date of birth"),
                ("sex", "Sex"), ("national_id", "National ID"), ("phone", "Phone"), ("location", "Location"))


def prepare_merge(payload, by):
    require_permission(by, services.MERGE_PERMISSION)
    candidate = selectors.duplicates_for(by).select_related("first__location", "second__location").filter(
        pk=payload.get("candidate")).first()
    if candidate is None:
        raise PermissionDenied(f"No possible duplicate with id {payload.get('candidate')} in your locations.")
    if candidate.status != DuplicateStatus.OPEN:
        raise ValidationError(f"This pair is {candidate.get_status_display().lower()}.")
    kept = {candidate.first_id: candidate.first, candidate.second_id: candidate.second}.get(
        int(payload.get("kept") or 0))
    if kept is None:
        raise ValidationError("Choose which of the two records to keep.")
    merged = candidate.other(kept)
    services.check_merge(kept=kept, merged=merged, by=by)
    location = _common_location(kept.location, merged.location)
    readers = Readers(location)
    preview = services.merge_preview(kept=kept, merged=merged, scope=readers.scope, outside=readers.outside)
    diff, sensitive = _merge_diff(kept, merged)
    counts = {"Enrolments of the duplicate passing to the kept record": preview["enrolments"],
              "Plans where both are enrolled (the less advanced enrolment is closed)": preview["both_enrolled"]}
    if preview["membership"]:
        counts["Household"] = preview["membership"]
    return Prepared(
        payload={"candidate": candidate.pk, "kept": kept.pk, "merged": merged.pk},
        summary={"title": f"Merge {merged} (id {merged.pk}) into {kept} (id {kept.pk}), the record kept",
                 "diff": diff, "sensitive": sensitive, "counts": counts,
                 "sample": [{"id": kept.pk, "name": f"Kept: {kept} (id {kept.pk}), score {candidate.score}, "
                                                    f"{candidate.reason_labels.lower()}"},
                            {"id": merged.pk, "name": f"Merged into it and deleted: {merged} (id {merged.pk})"}]},
        location=location,
        version=_people_version(kept.pk, merged.pk),
    )


def _merge_values(person, schema):
    """{name: (label, value as the checker reads it, or None)} for each field and attribute a merge
    compares, names as in services.merge_fills."""
    values = {name: (label, _shown(person, name)) for name, label in MERGE_FIELDS}
    for definition, (label, value) in zip(schema.definitions, schema.display(person.attributes, show_sensitive=True),
                                          strict=True):
        values[f"attributes.{definition.name}"] = (label, None if value in (None, "") else str(value))
    return values


def _merge_diff(kept, merged):
    """The request's rows ([field, now, after approval]) and the labels of the rows to mask: each
    field the kept record has no value for, filled from the merged record's; and each field where the
    two differ, as two rows, the kept record's value, which stays, and the merged record's, which is
    dropped (not one cell "kept: X; dropped: Y", as the request page masks a cell at a time)."""
    fills = services.merge_fills(kept=kept, merged=merged)
    sensitive_names = services.sensitive_names(RegistryField.Target.INDIVIDUAL)
    schema = RegistryField.schema_for(RegistryField.Target.INDIVIDUAL)
    ours, theirs = _merge_values(kept, schema), _merge_values(merged, schema)
    rows, sensitive = [], []
    for name, (label, value) in ours.items():
        their_value = theirs[name][1]
        if name in fills:
            labels = [f"{label}, filled from the merged record (id {merged.pk})"]
            rows.append([labels[0], value, their_value])
        elif value != their_value:
            labels = [f"{label}, kept (id {kept.pk})", f"{label}, dropped from the merged record (id {merged.pk})"]
            rows += [[labels[0], value, value], [labels[1], their_value, None]]
        else:
            continue
        if name in sensitive_names:
            sensitive += labels
    return rows, sensitive


def _unmerge_diff(merge):
    """The undo's rows for the values the merge filled on the kept record: taken off it (the merged
    record has them again), or, changed since, left as they are."""
    kept, merged = merge.kept, merge.merged
    taken_back, changed_since = services.unmerge_fills(merge)
    sensitive_names = services.sensitive_names(RegistryField.Target.INDIVIDUAL)
    values = _merge_values(kept, RegistryField.schema_for(RegistryField.Target.INDIVIDUAL))
    rows, sensitive = [], []
    for name in [*taken_back, *changed_since]:
        label, value = values.get(name, (name, None))
        if name in taken_back:
            row = [f"{label}, filled by the merge: taken off the kept record (id {kept.pk}), back to the restored "
                   f"record (id {merged.pk})", value, None]
        else:
            row = [f"{label}, filled by the merge and changed since on the kept record (id {kept.pk}): the current "
                   "value stays", value, value]
        rows.append(row)
        if name in sensitive_names:
            sensitive.append(row[0])
    return rows, sensitive


def _shown(person, name):
    value = person.get_sex_display() if name == "sex" else getattr(person, name)
    if isinstance(value, datetime.date):
        return value.isoformat()
    return None if value in (None, "") else str(value)


def execute_merge(payload, maker):
    merge = services.individual_merge(kept=Individual.objects.get(pk=payload["kept"]),
                                      merged=Individual.objects.get(pk=payload["merged"]), by=maker)
    return {"merge": merge.pk, "kept": payload["kept"], "merged": payload["merged"]}


MERGE = register(Operation(
    name=MERGE_OPERATION, label="Merge duplicate records", prepare=prepare_merge, execute=execute_merge,
    version=lambda payload: _people_version(payload["kept"], payload["merged"]), default_requires_approval=True))


def prepare_unmerge(payload, by):
    require_permission(by, services.MERGE_PERMISSION)
    merge = selectors.merges_for(by).select_related("kept__location", "merged__location").filter(
        pk=payload.get("merge")).first()
    if merge is None:
        raise PermissionDenied(f"No merge with id {payload.get('merge')} in your locations.")
    if ApprovalRequest.objects.filter(operation=UNMERGE_OPERATION, payload__merge=merge.pk, status__in=[
            RequestStatus.PENDING, RequestStatus.APPROVED, RequestStatus.EXECUTING]).exists():
        raise ValidationError("Undoing this merge is already waiting for approval.")
    services.check_unmerge(merge=merge, by=by)
    kept, merged = merge.kept, merge.merged
    diff, sensitive = _unmerge_diff(merge)
    location = _common_location(kept.location, merged.location)
    counts = {"Enrolments going back to the restored record": len(merge.moved.get("beneficiaries", [])),
              "Enrolments the merge closed (they stay closed)": len(merge.moved.get("closed_beneficiaries", []))}
    if dissolved := Household.objects.filter(pk=(merge.moved.get("membership") or {}).get("dissolved")).first():
        counts["Household"] = (f"{capfirst(Readers(location).household(dissolved))}, which the merge deleted, is "
                               "restored with the record as its only member.")
    return Prepared(
        payload={"merge": merge.pk},
        summary={"title": f"Undo the merge of {merged} (id {merged.pk}) into {kept} (id {kept.pk})",
                 "diff": diff, "sensitive": sensitive, "counts": counts},
        location=location,
        version=_merge_version({"merge": merge.pk}),
    )


def execute_unmerge(payload, maker):
    merge = services.individual_unmerge(merge=Merge.objects.get(pk=payload["merge"]), by=maker)
    undone = merge.moved["unmerge"]
    return {"merge": merge.pk, "filled_taken_back": undone["taken_back"],
            "filled_changed_since_stay": undone["changed_since"]}


def _merge_version(payload):
    """The merge's status and when the kept record last changed: the undo the checker read (which
    filled values it takes back) is void once either moves."""
    merge = Merge.objects.filter(pk=payload["merge"]).values_list("status", "kept_id").first()
    return f"{merge[0]}|{_people_version(merge[1])}" if merge else "gone"


UNMERGE = register(Operation(
    name=UNMERGE_OPERATION, label="Undo a merge of duplicate records", prepare=prepare_unmerge,
    execute=execute_unmerge, version=_merge_version, default_requires_approval=True))
