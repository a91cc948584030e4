from django.apps import AppConfig


class WorkflowsConfig(AppConfig):
    """Maker-checker approvals and background jobs (issue 3 builds them here)."""

    name = "workflows"
    label = "workflows"
