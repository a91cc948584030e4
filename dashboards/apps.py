from django.apps import AppConfig


class DashboardsConfig(AppConfig):
    """Dashboard pages assembled in the CMS (issue 7 builds them here)."""

    name = "dashboards"
    label = "dashboards"
