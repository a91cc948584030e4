"""Registry operations that may need approval: change requests (edits shown as old vs new) and
deletions, for individuals and households. Payloads are JSON; the services do every check again
when the approved change is applied."""

import datetime

from django.core.exceptions import PermissionDenied

from sites.models import Location
from workflows.operations import Operation, Prepared, register

from . import selectors, services
from .models import Household, Individual, RegistryField


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
