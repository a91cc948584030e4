from django.apps import AppConfig


class BulkConfig(AppConfig):
    """The one import / export pipeline: uploads, staging, validation, error files, exports."""

    name = "schemes.bulk"
    label = "bulk"
    verbose_name = "Imports and exports"
