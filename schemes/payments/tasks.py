"""Thin Huey wrappers of the payments services."""

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from . import api_services


@db_periodic_task(crontab(minute="17", hour="3"))
def prune_idempotency_keys():
    api_services.idempotency_keys_prune()
