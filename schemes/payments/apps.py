from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    """Payment plans (formulas), cycles, payment points, payrolls and their lines."""

    name = "schemes.payments"
    label = "payments"
    verbose_name = "Payments"

    def ready(self):
        from schemes.registry.demo import registry_reset

        from . import signals  # noqa: F401  (a rejected approval request rejects its payroll)
        from .demo import forget_demo_payrolls

        registry_reset.connect(forget_demo_payrolls, dispatch_uid="payments_forget_payrolls")
