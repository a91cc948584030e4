"""The payroll generation job (see services.payroll_generate)."""

from workflows.jobs import job_kind
from workflows.services import JobLost

from . import services


@job_kind(services.GENERATE_JOB)
def generate_payroll(job, progress):
    try:
        return services.payroll_generate(job.params["payroll"], progress)
    except JobLost:
        raise  # another attempt owns the payroll now
    except Exception as error:
        # The payroll says why (FAILED) and no longer blocks a new one; the job row records it too.
        services.payroll_fail(job.params["payroll"], f"{type(error).__name__}: {error}")
        raise
