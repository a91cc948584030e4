"""Registry operations that may need approval: change requests (edits shown as old vs new) and
deletions, for individuals and households; merging duplicate records and undoing a merge. Payloads
are JSON; the services do every check again when the approved change is applied."""

import datetime

from django.core.exceptions import PermissionDenied, ValidationError

from sites.models import Location
from workflows.models import ApprovalRequest, RequestStatus
from workflows.operations import Operation, Prepared, register

from . import selectors, services
from .models import (
    MERGE_OPERATION,
    UNMERGE_OPERATION,
    DuplicateStatus,
    Household,
    Individual,
    Merge,
    RegistryField,
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


def _change_operation(name, label, model, selector, check_update, update, target):
    def prepare(payload, by):
        record = _record(model, selector, payload, by)
        fields = _python_fields(payload.get("fields", {}))
        updated, changes = check_update(**{model._meta.model_name: record}, fields=fields,
                                        attributes=payload.get("attributes"), by=by)
        return Prepared(
            payload={"record": record.pk, "fields": _json_fields(fields), "attributes": updated.attributes},
            summary={"title": f"Change {model._meta.verbose_name} {record}", "record": record.pk,
                     "model": model._meta.label_lower, "diff": [[k, *v] for k, v in changes.items()],
                     "sensitive": sorted(services.sensitive_names(target))},
            location=updated.location, version=record.updated_at.isoformat(),
        )

    def execute(payload, maker):
        record = model.objects.get(pk=payload["record"])
        update(**{model._meta.model_name: record}, fields=_python_fields(payload["fields"]),
               attributes=payload["attributes"], by=maker)
        return {"record": record.pk}

    return register(Operation(name=name, label=label, prepare=prepare, execute=execute,
                              version=lambda payload: _version(model, payload), default_requires_approval=False))


def _delete_operation(name, label, model, selector, permission, delete):
    def prepare(payload, by):
        if not by.has_perm(permission):
            raise PermissionDenied(f"You do not have the permission '{permission}'.")
        record = _record(model, selector, payload, by)
        return Prepared(payload={"record": record.pk},
                        summary={"title": f"Delete {model._meta.verbose_name} {record}", "record": record.pk,
                                 "model": model._meta.label_lower, "diff": [], "sensitive": []},
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
    "registry.delete_individual", services.individual_soft_delete)
DELETE_HOUSEHOLD = _delete_operation(
    "registry.delete_household", "Delete a household", Household, selectors.households_for,
    "registry.delete_household", services.household_soft_delete)


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
    if not by.has_perm(services.MERGE_PERMISSION):
        raise PermissionDenied(f"You do not have the permission '{services.MERGE_PERMISSION}'.")
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
    preview = services.merge_preview(kept=kept, merged=merged)
    # "Now" is the duplicate's value, "after approval" the kept record's: what the person's record says then.
    diff = [[label, _shown(merged, name), _shown(kept, name)] for name, label in MERGE_FIELDS
            if _shown(merged, name) != _shown(kept, name)]
    counts = {"Enrolments of the duplicate passing to the kept record": preview["enrolments"],
              "Plans where both are enrolled (the less advanced enrolment is closed)": preview["both_enrolled"]}
    if preview["membership"]:
        counts["Household"] = preview["membership"]
    return Prepared(
        payload={"candidate": candidate.pk, "kept": kept.pk, "merged": merged.pk},
        summary={"title": f"Merge {merged} (id {merged.pk}) into {kept} (id {kept.pk})", "diff": diff,
                 "sensitive": ["National ID", "Phone"], "counts": counts,
                 "sample": [{"id": kept.pk, "name": f"Kept: {kept} (id {kept.pk}), score {candidate.score}, "
                                                    f"{candidate.reason_labels.lower()}"},
                            {"id": merged.pk, "name": f"Merged into it and deleted: {merged} (id {merged.pk})"}]},
        location=_common_location(kept.location, merged.location),
        version=_people_version(kept.pk, merged.pk),
    )


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
    if not by.has_perm(services.MERGE_PERMISSION):
        raise PermissionDenied(f"You do not have the permission '{services.MERGE_PERMISSION}'.")
    merge = selectors.merges_for(by).select_related("kept__location", "merged__location").filter(
        pk=payload.get("merge")).first()
    if merge is None:
        raise PermissionDenied(f"No merge with id {payload.get('merge')} in your locations.")
    if ApprovalRequest.objects.filter(operation=UNMERGE_OPERATION, payload__merge=merge.pk, status__in=[
            RequestStatus.PENDING, RequestStatus.APPROVED, RequestStatus.EXECUTING]).exists():
        raise ValidationError("Undoing this merge is already waiting for approval.")
    services.check_unmerge(merge=merge, by=by)
    kept, merged = merge.kept, merge.merged
    return Prepared(
        payload={"merge": merge.pk},
        summary={"title": f"Undo the merge of {merged} (id {merged.pk}) into {kept} (id {kept.pk})",
                 "diff": [], "sensitive": [],
                 "counts": {"Enrolments going back to the restored record": len(merge.moved.get("beneficiaries", [])),
                            "Enrolments the merge closed (they stay closed)":
                                len(merge.moved.get("closed_beneficiaries", []))}},
        location=_common_location(kept.location, merged.location),
        version=merge.status,
    )


def execute_unmerge(payload, maker):
    services.individual_unmerge(merge=Merge.objects.get(pk=payload["merge"]), by=maker)
    return {"merge": payload["merge"]}


def _merge_version(payload):
    return Merge.objects.filter(pk=payload["merge"]).values_list("status", flat=True).first() or "gone"


UNMERGE = register(Operation(
    name=UNMERGE_OPERATION, label="Undo a merge of duplicate records", prepare=prepare_unmerge,
    execute=execute_unmerge, version=_merge_version, default_requires_approval=True))
