"""Fixtures for the approval engine and the job system. Arrange with the shared factories; act through
workflows.services."""

import itertools
import uuid
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from wagtail.models import ModelLogEntry

from sites.models import Location
from tests.factories import IndividualFactory, UserFactory
from workflows import jobs as job_registry
from workflows import operations
from workflows.models import ApprovalRule, WorkflowDefinition, WorkflowStep
from workflows.operations import Operation, Prepared

CHANGE_INDIVIDUAL = "registry.change_individual"


def audit_actions(instance):
    """The audit actions written for `instance`, oldest first."""
    return list(
        ModelLogEntry.objects.filter(
            content_type=ContentType.objects.get_for_model(instance, for_concrete_model=False),
            object_id=str(instance.pk),
        ).order_by("timestamp", "id").values_list("action", flat=True)
    )


def audit_entries(instance, action):
    return ModelLogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(instance, for_concrete_model=False),
        object_id=str(instance.pk), action=action,
    ).order_by("timestamp", "id")


@pytest.fixture
def checker_group(db):
    return Group.objects.get(name="Checker")


@pytest.fixture
def manager_group(db):
    return Group.objects.get(name="Manager")


@pytest.fixture
def checker_1(geo):
    return UserFactory(username="checker_1", role="Checker", locations=[geo.district_a])


@pytest.fixture
def checker_2(geo):
    return UserFactory(username="checker_2", role="Checker", locations=[geo.district_a])


@pytest.fixture
def manager_1(geo):
    return UserFactory(username="manager_1", role="Manager", locations=[geo.district_a])


@pytest.fixture
def individual(geo):
    return IndividualFactory(first_name="Amina", last_name="Yusuf", location=geo.village_a)


@pytest.fixture
def make_workflow(db):
    """make_workflow(operation, [(group, rule, count), ...], min_total=0, requires_approval=True)"""

    def make(operation, steps=(), *, min_total=0, requires_approval=True):
        definition = WorkflowDefinition(operation=operation, min_total=Decimal(min_total),
                                        requires_approval=requires_approval)
        definition.save()
        for order, step in enumerate(steps):
            step = step if isinstance(step, tuple) else (step,)
            group, rule, count = step + (ApprovalRule.ANY, None)[len(step) - 1:]
            WorkflowStep.objects.create(definition=definition, group=group, rule=rule, count=count,
                                        sort_order=order)
        return definition

    return make


@pytest.fixture
def change_workflow(make_workflow, checker_group):
    """registry.change_individual: one step, any one member of Checker."""
    return make_workflow(CHANGE_INDIVIDUAL, [(checker_group, ApprovalRule.ANY)])


def change_payload(individual, **fields):
    return {"record": individual.pk, "fields": fields, "attributes": dict(individual.attributes or {})}


@pytest.fixture
def fake_operation(db):
    """Register throw-away operations; they are removed from the registry afterwards.

    make(default_requires_approval=True, execute=None, carries_total=True) -> (name, applied) where
    `applied` lists the payloads executed. The payload carries "total" as text (the request's Decimal
    total) and optionally "location" (a Location id: who may decide depends on it)."""
    names = []
    counter = itertools.count(1)

    def make(*, default_requires_approval=True, label=None, execute=None, carries_total=True):
        name = f"tests.fake_{uuid.uuid4().hex[:12]}_{next(counter)}"
        applied = []

        def prepare(payload, by):
            total = Decimal(payload["total"]) if payload.get("total") is not None else None
            location = Location.objects.get(pk=payload["location"]) if payload.get("location") else None
            return Prepared(payload=dict(payload), summary={"title": f"Fake {payload.get('total')}"},
                            total=total, location=location, version="v1")

        def record(payload, maker):
            applied.append(payload)
            return {"applied": len(applied)}

        operations.register(Operation(
            name=name, label=label or f"Fake operation {name}", prepare=prepare,
            version=lambda payload: "v1", execute=execute or record,
            default_requires_approval=default_requires_approval, carries_total=carries_total))
        names.append(name)
        return name, applied

    yield make
    for name in names:
        operations._operations.pop(name, None)


@pytest.fixture
def fake_kind():
    """Register throw-away job kinds: fake_kind(handler) -> kind name; removed afterwards."""
    names = []

    def make(handler):
        name = f"tests.kind_{uuid.uuid4().hex[:12]}"
        job_registry.job_kind(name, "A test job")(handler)
        names.append(name)
        return name

    yield make
    for name in names:
        job_registry._kinds.pop(name, None)
        job_registry._labels.pop(name, None)


@pytest.fixture
def enqueued(monkeypatch):
    """Replace the hand-over to Huey with a recorder: the list of job ids handed over, in order."""
    calls = []
    monkeypatch.setattr("workflows.services._enqueue", lambda job_id: calls.append(job_id))
    return calls
