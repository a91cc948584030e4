from django.apps import AppConfig, apps
from django.db import connection
from django.db.models.signals import post_migrate


class DashboardsConfig(AppConfig):
    """Dashboard pages assembled in the CMS from blocks, computed from the metrics registry."""

    name = "dashboards"
    label = "dashboards"

    def ready(self):
        from . import selectors  # noqa: F401  (registers the metrics)

        post_migrate.connect(_create_default_dashboards, dispatch_uid="dashboards_defaults")


def _create_default_dashboards(sender, app_config, **kwargs):
    # Act once per migrate, after the last app (when the role groups exist: sites creates them then).
    with_models = [config for config in apps.get_app_configs() if config.models_module is not None]
    if app_config is not with_models[-1]:
        return
    from .models import DashboardIndexPage

    if DashboardIndexPage._meta.db_table not in connection.introspection.table_names():
        return  # migrated back to zero
    from .defaults import ensure_default_dashboards

    ensure_default_dashboards(only_when_new=True)
