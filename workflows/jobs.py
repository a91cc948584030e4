"""The registry of job kinds. Apps declare theirs in `jobs.py` with `@job_kind("name", "What it does")`; a handler
receives the Job and a `progress` callback, and must be safe to run again after a crash: it resumes
from `job.progress_done`, and each chunk commits its work together with the progress."""

from functools import cache

from django.utils.module_loading import autodiscover_modules

_kinds = {}
_labels = {}  # what each kind does, as the jobs list names it to people


@cache
def _discover():
    """Import each installed app's `jobs.py` (once), where apps declare theirs."""
    autodiscover_modules("jobs")


class JobCancelled(Exception):
    """Raised by `progress()` when the starter asked to cancel; the runner marks the job cancelled."""


def job_kind(name, label):
    def register(handler):
        if name in _kinds:
            raise ValueError(f"Job kind {name!r} is registered twice.")
        _kinds[name] = handler
        _labels[name] = label
        return handler

    return register


def get_handler(kind):
    _discover()
    try:
        return _kinds[kind]
    except KeyError:
        raise LookupError(f"No job kind named {kind!r}.") from None


def job_label(kind):
    """What a job of `kind` does ("Check an uploaded file"); the kind itself for one no app declares."""
    _discover()
    return _labels.get(kind, kind)


@job_kind("workflows.execute_request", "Apply an approved request")
def execute_request(job, progress):
    from .services import approval_execute

    progress(0, 1, "Applying the approved change")
    result = approval_execute(job.params["request"])
    if result["status"] == "FAILED":
        raise RuntimeError(f"The approved change could not be applied: {result.get('error', '')}")
    progress(1, 1)
    return result
