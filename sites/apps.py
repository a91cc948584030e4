from django.apps import AppConfig


class SitesConfig(AppConfig):
    """The platform shell: locations, user access, audit, organisation settings, shared helpers."""

    name = "sites"
    label = "sites"
    verbose_name = "Platform"

    def ready(self):
        from . import signals  # noqa: F401
