from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "schemes.registry"
    label = "registry"
    verbose_name = "Registry"

    def ready(self):
        from django.db.models.signals import post_migrate

        post_migrate.connect(_create_default_member_roles, sender=self)


def _create_default_member_roles(sender, **kwargs):
    # After migrate and after every flush (TransactionTestCase), so HEAD always exists.
    from .models import MemberRole

    MemberRole.ensure_defaults()
