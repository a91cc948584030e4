from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "schemes.registry"
    label = "registry"
    verbose_name = "Registry"
