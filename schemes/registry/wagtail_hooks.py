from wagtail import hooks

from .viewsets import IndividualChooserViewSet, RegistrySetupViewSetGroup, RegistryViewSetGroup

individual_chooser_viewset = IndividualChooserViewSet("registry_individual_chooser",
                                                      url_prefix="registry/choose-individual")


@hooks.register("register_admin_viewset")
def register_registry_viewsets():
    return [RegistryViewSetGroup(), RegistrySetupViewSetGroup(), individual_chooser_viewset]
