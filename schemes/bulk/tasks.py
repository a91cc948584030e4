"""Thin Huey wrappers of the pipeline's upkeep."""

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from .models import STAGING
from .staging import release_empty


@db_periodic_task(crontab(minute="47", hour="3"))
def release_staging_space():
    # The provider API's batches stage and delete their rows one batch at a time: a night's worth of
    # dead rows goes here when no upload is staged.
    release_empty(STAGING)
