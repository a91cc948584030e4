from django.apps import AppConfig


class SitesConfig(AppConfig):
    """The platform shell: locations, user access, audit, organisation settings, shared helpers."""

    name = "sites"
    label = "sites"
    verbose_name = "Platform"

    def ready(self):
        from django.db.backends.signals import connection_created

        from . import checks, signals  # noqa: F401

        connection_created.connect(use_unicode_lower_on_sqlite)


def use_unicode_lower_on_sqlite(sender, connection, **kwargs):
    # SQLite's own LOWER() folds ASCII only: "élodie" would not find "Élodie" in name search, and
    # rules' lower() would disagree with Python. Replaced for every connection Mizani opens.
    if connection.vendor == "sqlite":
        from .text import lower_text

        connection.connection.create_function("lower", 1, lower_text, deterministic=True)
