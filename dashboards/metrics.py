"""The metrics registry: named, scoped, cached figures of the programme.

A metric is a function `(user, filters) -> Table` registered with `@metric(...)` (see selectors.py).
It computes in SQL (aggregates, GROUP BY) from the scoped selectors of the apps, so it only ever
counts what the user may see. `compute(name, user, filters)` returns the metric's Table from the cache
when an identical request (same metric, filters, scope and permissions) was answered less than
MIZANI_DASHBOARD_CACHE_SECONDS ago. A Table is plain columns and rows: dashboard figures, report
tables and CSV files are all made from it.
"""

import csv
import datetime
import hashlib
import io
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from sites.models import Location
from sites.scoping import scope_for
from sites.spreadsheets import safe_cell

CACHE_VERSION = 2  # entries are (value, fresh until)
# A figure being computed is waited for this long (seconds) before the waiter computes it too; the
# mark that someone is computing it lapses after COMPUTING_SECONDS (its process may have died).
WAIT_SECONDS = 15
WAIT_STEP_SECONDS = 0.05
COMPUTING_SECONDS = 120


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    kind: str = "text"  # text | number | money | date


@dataclass(frozen=True)
class Table:
    columns: tuple[Column, ...]
    rows: tuple[tuple, ...]

    def index(self, key):
        for position, column in enumerate(self.columns):
            if column.key == key:
                return position
        raise KeyError(key)

    def column(self, key):
        return self.columns[self.index(key)]

    def values(self, key):
        position = self.index(key)
        return [row[position] for row in self.rows]

    def as_csv(self):
        """The table as CSV text: every cell through safe_cell (formula-safe); numbers, Decimal amounts
        included, stay numbers."""
        output = io.StringIO()
        writer = csv.writer(output)
        writer.writerow([safe_cell(column.label) for column in self.columns])
        writer.writerows([safe_cell(cell) for cell in row] for row in self.rows)
        return output.getvalue()

    def total(self, key, *, where=None):
        """The sum of a numeric column, optionally only over rows whose first column reads `where`
        (case-insensitive)."""
        return sum(self.totals_per(key, None, where=where).values())

    def totals_per(self, key, per, *, where=None):
        """{value of column `per` (None: one total): the sum of column `key`}, over the rows `where`
        picks (see total). Amounts in several currencies are never added together."""
        position, by = self.index(key), (self.index(per) if per else None)
        wanted = (where or "").strip().lower()
        sums = {}
        for row in self.rows:
            if not wanted or str(row[0]).lower() == wanted:
                group = row[by] if by is not None else None
                sums[group] = sums.get(group, 0) + (row[position] or 0)
        return sums


@dataclass(frozen=True)
class Filters:
    """What a dashboard's viewer narrowed it to. `location_path` is the chosen location's tree path
    (the view resolves it from the user's own locations); the period is inclusive."""

    plan_id: int | None = None
    location_path: str = ""
    start: datetime.date | None = None
    end: datetime.date | None = None

    def cache_key(self, used=("plan", "location", "period")):
        """The filters a metric reads (a filter it ignores does not make another cache entry)."""
        kept = self.only(used)
        return f"p={kept.plan_id or ''};l={kept.location_path};s={kept.start or ''};e={kept.end or ''}"

    def only(self, used):
        """These filters but those a metric ignores (`used`: its Metric.filters_used): what its numbers
        were computed with, and what its exports record."""
        return Filters(plan_id=self.plan_id if "plan" in used else None,
                       location_path=self.location_path if "location" in used else "",
                       start=self.start if "period" in used else None, end=self.end if "period" in used else None)

    def as_text(self):
        parts = []
        if self.plan_id:
            parts.append(f"plan={self.plan_id}")
        if self.location_path:
            parts.append(f"location={Location.objects.filter(path=self.location_path).values_list('code', flat=True).first()}")
        if self.start:
            parts.append(f"from={self.start.isoformat()}")
        if self.end:
            parts.append(f"to={self.end.isoformat()}")
        return ", ".join(parts) or "none"

    def location_q(self, field):
        """Records placed at or under the chosen location (`field` names a Location reference)."""
        if not self.location_path:
            return Q()
        return Q(**{f"{field}__in": Location.objects.filter(path__startswith=self.location_path).values("pk")})

    def datetime_q(self, field):
        """Records whose `field` (a DateTimeField) falls in the period, in the site's time zone; a
        range on the column itself, so that its index serves. "To" the calendar's last day bounds
        nothing (there is no day after it)."""
        q = Q()
        if self.start:
            q &= Q(**{f"{field}__gte": _start_of(self.start)})
        if self.end and self.end < datetime.date.max:
            q &= Q(**{f"{field}__lt": _start_of(self.end + datetime.timedelta(days=1))})
        return q

    def date_q(self, field):
        q = Q()
        if self.start:
            q &= Q(**{f"{field}__gte": self.start})
        if self.end:
            q &= Q(**{f"{field}__lte": self.end})
        return q


def _start_of(day):
    """Midnight at the start of `day` in the site's time zone, in UTC as the database takes it. East of
    UTC the calendar's first day starts before year 1 in UTC, which Python cannot hold: the earliest
    moment it holds stands for it (no record is older). (West of UTC no midnight reaches year 10000.)"""
    moment = timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))
    try:
        return moment.astimezone(datetime.UTC)
    except OverflowError:
        return datetime.datetime.min.replace(tzinfo=datetime.UTC)


# Shapes a metric's table can feed: charts take a category and value columns (and may split them
# into series); a hierarchy (location tree) feeds treemaps and sunbursts.
CHART = "chart"
HIERARCHY = "hierarchy"


@dataclass(frozen=True)
class Metric:
    name: str
    label: str
    function: object
    description: str = ""
    # A metric the user lacks this permission for shows nothing (its selectors would find nothing).
    permissions: tuple[str, ...] = ()
    shape: str = CHART
    category: str = ""
    values: tuple[str, ...] = ()
    # Other number columns a block may show instead of `values` (its "value" key).
    more_values: tuple[str, ...] = ()
    series: str = ""
    # A callable giving the first column's values when they are a fixed list (statuses, sexes, age
    # bands): a KPI tile's row must be one of them. None: the rows come from the data (plans, cycles).
    rows: object = None
    # The rows depend on who asks, not only on their locations (e.g. "my uploads"): cached per user.
    personal: bool = False
    # The page's filters the metric applies; the others leave its numbers (and cache entry) as they are.
    filters_used: tuple[str, ...] = ("plan", "location", "period")
    # Metrics made from the same shared aggregate (see `shared`) are computed one after the other.
    group: str = ""

    def allowed(self, user):
        return bool(user and user.is_authenticated) and all(user.has_perm(p) for p in self.permissions)

    @property
    def value_keys(self):
        """The number columns a block may name as its value."""
        return self.values + self.more_values


_registry: dict[str, Metric] = {}


def metric(name, *, label, **options):
    def decorator(function):
        if name in _registry:
            raise ImproperlyConfigured(f"Two dashboard metrics are named {name!r}.")
        _registry[name] = Metric(name=name, label=label, function=function, **options)
        return function
    return decorator


def registered_metrics():
    from . import selectors  # noqa: F401  (registers the metrics)

    return dict(_registry)


def get_metric(name):
    return registered_metrics().get(name)


def metric_choices(shape=CHART):
    return sorted(((m.name, m.label) for m in registered_metrics().values() if m.shape == shape),
                  key=lambda choice: choice[1])


def cache_key(metric_, user, filters):
    """What makes two requests see the same numbers: the metric, the filters, the user's locations
    and permissions (and the user, for personal metrics), the time zone."""
    scope = scope_for(user)
    who = "national" if scope.national else ",".join(scope.paths)
    permissions = "superuser" if user.is_superuser else ",".join(sorted(user.get_all_permissions()))
    if metric_.personal:
        who += f";user={user.pk}"
    zone = timezone.get_current_timezone_name()  # months, periods and ages are counted in it
    raw = f"{metric_.name}|{filters.cache_key(metric_.filters_used)}|{who}|{permissions}|{zone}"
    return f"mizani:dashboards:{CACHE_VERSION}:{hashlib.sha256(raw.encode()).hexdigest()}"


def compute(name, user, filters=None):
    """The metric's Table for this user and filters (from the cache when fresh), or None when the
    user may not read it or no metric has that name."""
    metric_ = get_metric(name)
    if metric_ is None or not metric_.allowed(user):
        return None
    filters = filters or Filters()
    return cached(cache_key(metric_, user, filters), lambda: metric_.function(user, filters))


def cached(key, function):
    """The value of `function()` under `key`, computed once for everyone asking at the same time.
    When many managers open a cold dashboard at once (the morning, an expired entry), one of them
    computes each figure while the others wait for it, instead of every one of them running the same
    national query. A value past its lifetime is still served for one more lifetime to whoever asks
    while someone computes the new one; the first to ask computes it (and waits for it)."""
    lifetime = settings.MIZANI_DASHBOARD_CACHE_SECONDS
    lock = f"{key}:computing"
    entry = cache.get(key)
    if entry is not None:
        value, fresh_until = entry
        if time.time() < fresh_until or not cache.add(lock, True, COMPUTING_SECONDS):
            return value
        return _compute_and_keep(key, lock, function, lifetime)
    if cache.add(lock, True, COMPUTING_SECONDS):
        return _compute_and_keep(key, lock, function, lifetime)
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        time.sleep(WAIT_STEP_SECONDS)
        entry = cache.get(key)
        if entry is not None:
            return entry[0]
    return function()  # whoever was computing it is slow or gone: this viewer waits no longer


def _compute_and_keep(key, lock, function, lifetime):
    try:
        value = function()
        cache.set(key, (value, time.time() + lifetime), 2 * lifetime)
        return value
    finally:
        cache.delete(lock)


def other_connections_see_our_data():
    """PostgreSQL (SQLite's test database lives in one connection) and no transaction open here."""
    return connection.vendor == "postgresql" and not connection.in_atomic_block


def compute_many(names, user, filters=None):
    """Fill the cache for these metrics before a page reads them one by one. On PostgreSQL, outside a
    transaction (a request's own uncommitted writes would be invisible to other connections), groups
    of metrics run on MIZANI_DASHBOARD_CONNECTIONS connections at once: a page's figures read
    different tables, and a cold page then waits for its slowest query rather than their sum."""
    filters = filters or Filters()
    groups = {}
    for name in dict.fromkeys(names):
        metric_ = get_metric(name)
        if metric_ is not None and metric_.allowed(user):
            groups.setdefault(metric_.group or name, []).append(name)
    workers = min(settings.MIZANI_DASHBOARD_CONNECTIONS, len(groups))
    if workers < 2 or not other_connections_see_our_data():
        return
    scope_for(user), user.get_all_permissions()  # cached on the user object before threads read it
    # The current time zone is per thread (Wagtail sets the viewer's): months and "today" must not
    # fall back to settings.TIME_ZONE in the workers.
    zone = timezone.get_current_timezone()

    def run(group):
        try:
            with timezone.override(zone):
                for name in group:
                    compute(name, user, filters)
        finally:
            connection.close()  # this thread's own connection

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(run, groups.values()))


def shared(name, user, filters, function):
    """`function(user, filters)`, cached under `name` like a metric: several metrics derived from one
    GROUP BY run it once."""
    key = cache_key(Metric(name=f"shared:{name}", label=name, function=function), user, filters)
    return cached(key, lambda: function(user, filters))
