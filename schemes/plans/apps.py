from django.apps import AppConfig


class PlansConfig(AppConfig):
    """Benefit plans (programmes), their schema and criteria, beneficiaries and enrolment."""

    name = "schemes.plans"
    label = "plans"
    verbose_name = "Benefit plans"

    def ready(self):
        from schemes.registry.demo import registry_reset

        from .demo import forget_demo_beneficiaries

        registry_reset.connect(forget_demo_beneficiaries, dispatch_uid="plans_forget_beneficiaries")
