"""Thin Huey wrappers: the task carries a job id; the services do the work."""

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from . import services


@db_task()
def run_job(job_id):
    services.job_run(job_id)


@db_periodic_task(crontab(minute="*"))
def reap_stalled_jobs():
    services.jobs_reap()
