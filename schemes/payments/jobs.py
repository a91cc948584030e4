"""The payroll jobs: generation (services.payroll_generate) and counting its changes against the
previous cycle again (services.payroll_compare)."""

from django.core.exceptions import ValidationError

from sites.refusals import refusal_message
from workflows.jobs import job_kind
from workflows.services import JobLost

from . import services


@job_kind(services.GENERATE_JOB, "Generate a payroll")
def generate_payroll(job, progress):
    try:
        return services.payroll_generate(job.params["payroll"], progress)
    except JobLost:
        raise  # another attempt owns the payroll now
    except ValidationError as error:
        # Refused (e.g. amounts too large for a line): the payroll says why in plain words.
        services.payroll_fail(job.params["payroll"], refusal_message(error))
        raise
    except Exception as error:
        # The payroll says why (FAILED) and no longer blocks a new one; the job row records it too.
        services.payroll_fail(job.params["payroll"], f"{type(error).__name__}: {error}")
        raise


@job_kind(services.COMPARE_JOB, "Compare a payroll with the previous one")
def compare_payroll(job, progress):
    return services.payroll_compare(job.params["payroll"])
