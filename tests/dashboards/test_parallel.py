"""On PostgreSQL, outside a transaction, a page's metrics are computed on several connections at once
(metrics.compute_many): groups sharing an aggregate one after the other, and each result cached as
`compute` would. (The benchmark checks the real metrics' parallel results against sequential ones on
PostgreSQL; a test's data lives in an uncommitted transaction other connections cannot read.)"""

import threading
import time

import pytest
from django.utils import timezone

from dashboards import metrics
from dashboards.metrics import Column, Table, compute, compute_many

pytestmark = pytest.mark.django_db

calls = []


def slow_metric(label):
    def function(user, filters):
        calls.append((label, threading.current_thread().name, time.perf_counter()))
        time.sleep(0.2)
        return Table(columns=(Column("what", "What"), Column("n", "N", "number")), rows=((label, len(label)),))
    return function


@pytest.fixture
def fake_metrics(monkeypatch):
    registry = dict(metrics.registered_metrics())
    for name, group in (("fake_a", "one"), ("fake_b", "one"), ("fake_c", "")):
        registry[name] = metrics.Metric(name=name, label=name, function=slow_metric(name), group=group)
    monkeypatch.setattr(metrics, "registered_metrics", lambda: registry)
    monkeypatch.setattr(metrics, "other_connections_see_our_data", lambda: True)
    calls.clear()


def test_groups_run_at_once_and_fill_the_cache(fake_metrics, superuser):
    compute_many(["fake_a", "fake_b", "fake_c"], superuser)

    assert len(calls) == 3
    threads = {label: thread for label, thread, _ in calls}
    assert threads["fake_a"] == threads["fake_b"] != threads["fake_c"]  # a shared group stays together
    # Two groups at once: fake_c starts before the first group's 0.4 s are over (no wall-clock bound).
    started = {label: at for label, _, at in calls}
    assert abs(started["fake_c"] - started["fake_a"]) < 0.2 or abs(started["fake_c"] - started["fake_b"]) < 0.2
    assert compute("fake_c", superuser).rows == (("fake_c", 6),)
    assert len(calls) == 3  # read from the cache, not computed again


def test_the_threads_compute_in_the_viewers_time_zone(fake_metrics, monkeypatch, superuser):
    zones = []
    monkeypatch.setattr(metrics, "registered_metrics", lambda: {
        name: metrics.Metric(name=name, label=name, group=name, function=lambda user, filters: (
            zones.append(str(timezone.get_current_timezone())) or Table(columns=(), rows=())))
        for name in ("zone_a", "zone_b")})
    with timezone.override("Africa/Dar_es_Salaam"):
        compute_many(["zone_a", "zone_b"], superuser)
    assert zones == ["Africa/Dar_es_Salaam"] * 2


def test_inside_a_transaction_nothing_runs_on_other_connections(fake_metrics, monkeypatch, superuser):
    monkeypatch.setattr(metrics, "other_connections_see_our_data", lambda: False)
    compute_many(["fake_a", "fake_c"], superuser)
    assert calls == []


def test_a_tests_transaction_is_never_shared_with_other_connections():
    assert metrics.other_connections_see_our_data() is False
