"""Deployment checks of our own, run by `manage.py check --deploy`."""

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
