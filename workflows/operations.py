"""The registry of operations that may need approval. Apps declare theirs in `approvals.py`
(found automatically); the approval engine is the only thing that calls them."""

from dataclasses import dataclass
from functools import cache

from django.utils.module_loading import autodiscover_modules


@dataclass(frozen=True)
class Operation:
    """What the engine needs to know about one kind of change.

    - `prepare(payload, by)`: validate and normalise the payload as the maker submits it (permission,
      scope, field rules); returns a Prepared.
    - `version(payload)`: a fingerprint of the target now; when it differs from the one taken at
      submission, the request is void rather than applied to something the approvers never saw.
    - `execute(payload, by)`: apply it (inside the engine's transaction); returns a small result dict.
      The payload it gets also names the request applied, under "request".
    - `default_requires_approval`: used when no workflow definition names the operation.
    - `carries_total`: its requests carry a total (Prepared.total, an amount), so amount bands
      (WorkflowDefinition.min_total) may pick their workflow; without one a band would mean nothing.
    """

    name: str
    label: str
    prepare: callable
    version: callable
    execute: callable
    default_requires_approval: bool = True
    carries_total: bool = False


@dataclass(frozen=True)
class Prepared:
    payload: dict
    summary: dict  # {"title", "diff": [[field, old, new]], "counts": {...}, "sample": [...]} as JSON
    location: object = None
    total: object = None
    version: str = ""


_operations = {}


@cache
def _discover():
    """Import each installed app's `approvals.py` (once), where apps declare theirs."""
    autodiscover_modules("approvals")


def register(operation):
    if operation.name in _operations:
        raise ValueError(f"Operation {operation.name!r} is registered twice.")
    _operations[operation.name] = operation
    return operation


def registered_operations():
    _discover()
    return dict(_operations)


def get_operation(name):
    try:
        return registered_operations()[name]
    except KeyError:
        raise LookupError(f"No operation named {name!r}.") from None


def operation_label(name):
    operation = registered_operations().get(name)
    return operation.label if operation else name


def operation_choices():
    return sorted(((name, op.label) for name, op in registered_operations().items()), key=lambda c: c[1])
