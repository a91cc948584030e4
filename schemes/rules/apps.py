from django.apps import AppConfig


class RulesConfig(AppConfig):
    """The one expression language: filters, eligibility, formulas, scores. No models."""

    name = "schemes.rules"
    label = "rules"
    verbose_name = "Rules"
