"""The benchmark registry behind `manage.py benchmark NAME --rows N` (see QUALITY.md, Benchmarks).

Each app registers its benchmarks in a `benchmarks.py` module:

    @register("payroll")
    def payroll(*, rows, seed, log):
        ...  # build `rows` rows of synthetic data, run the path, measure the baselines
        return {"seconds": 12.3, "lines": rows, ...}

The command adds the keys every benchmark shares (benchmark, rows, database, seconds when the
benchmark does not set its own, peak_rss_mb, the machine) and prints the result as its last line.
"""

import math
import os
import resource

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import autodiscover_modules

_registry = {}


def register(name):
    def decorator(function):
        if name in _registry:
            raise ImproperlyConfigured(f"Two benchmarks are named {name!r}.")
        _registry[name] = function
        return function
    return decorator


def available_benchmarks():
    """{name: function}, after importing every installed app's `benchmarks` module."""
    autodiscover_modules("benchmarks")
    return dict(_registry)


def percentile(values, fraction):
    """Nearest-rank percentile: the smallest value with at least `fraction` of the values at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def peak_rss_mb():
    """This process's peak resident memory so far (Linux reports kilobytes)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


# What a figure depends on beyond the code: PostgreSQL writes a bulk load's pages again after each
# checkpoint, which max_wal_size and checkpoint_timeout space out.
SERVER_SETTINGS = ("shared_buffers", "work_mem", "max_wal_size", "checkpoint_timeout", "autovacuum")


def machine(connection):
    """The cores and, on PostgreSQL, the server settings the figures were measured with."""
    described = {"cores": os.cpu_count()}
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT name, current_setting(name) FROM pg_settings WHERE name = ANY(%s) ORDER BY name",
                           [list(SERVER_SETTINGS)])
            described["postgresql"] = dict(cursor.fetchall())
    return described
