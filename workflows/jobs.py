"""The registry of job kinds. Apps declare theirs in `jobs.py` with `@job_kind("name")`; a handler
receives the Job and a `progress` callback, and must be safe to run again after a crash: it resumes
from `job.progress_done`, and each chunk commits its work together with the progress."""

from functools import cache

from django.utils.module_loading import autodiscover_modules

_kinds = {}


@cache
def _discover():
    """Import each installed app's `jobs.py` (once), where apps declare theirs."""
    autodiscover_modules("jobs")


class JobCancelled(Exception):
    """Raised by `progress()` when the starter asked to cancel; the runner marks the job cancelled."""


def job_kind(name):
    def register(handler):
        if name in _kinds:
            raise ValueError(f"Job kind {name!r} is registered twice.")
        _kinds[name] = handler
        return handler

    return register


def get_handler(kind):
    _discover()
    try:
        return _kinds[kind]
    except KeyError:
        raise LookupError(f"No job kind named {kind!r}.") from None


@job_kind("workflows.execute_request")
def execute_request(job, progress):
    from .services import approval_execute

    progress(0, 1, "Applying the approved change")
    result = approval_execute(job.params["request"])
    if result["status"] == "FAILED":
        raise RuntimeError(f"The approved change could not be applied: {result.get('error', '')}")
    progress(1, 1)
    return result
