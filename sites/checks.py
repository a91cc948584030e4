"""Checks of our own: deployment (`manage.py check --deploy`) and the database."""

from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.caches, deploy=True)
def shared_cache(app_configs, **kwargs):
    backend = settings.CACHES.get("default", {}).get("BACKEND", "")
    if backend.endswith(("LocMemCache", "DummyCache")):
        return [checks.Warning(
            "The cache is kept per process: each gunicorn worker counts the providers' API throttle on its own "
            "(the limit is multiplied by the number of workers) and computes dashboard figures again.",
            hint="Set CACHE_URL=redis://host:6379/1 (or silence mizani.W001 when one process serves the site).",
            id="mizani.W001")]
    return []


@checks.register(checks.Tags.database)
def sqlite_version(app_configs, databases=None, **kwargs):
    """Payroll changes are counted with a FULL JOIN, which SQLite has from 3.39."""
    import sqlite3

    from django.db import connections

    uses_sqlite = any(connections[alias].vendor == "sqlite" for alias in (databases or []))
    if uses_sqlite and sqlite3.sqlite_version_info < (3, 39):
        return [checks.Error(f"SQLite {sqlite3.sqlite_version} is too old: Mizani needs 3.39 or later (FULL JOIN).",
                             hint="Use a Python built with a newer SQLite, or PostgreSQL.", id="mizani.E001")]
    return []
