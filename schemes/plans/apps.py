from django.apps import AppConfig


class PlansConfig(AppConfig):
    """Benefit plans (programmes), their schema and criteria, beneficiaries and enrolment."""

    name = "schemes.plans"
    label = "plans"
    verbose_name = "Benefit plans"
