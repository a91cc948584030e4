from wagtail import hooks

from .components import HouseholdsSummaryItem, IndividualsSummaryItem
from .viewsets import RegistrySetupViewSetGroup, RegistryViewSetGroup


@hooks.register("register_admin_viewset")
def register_registry_viewsets():
    return [RegistryViewSetGroup(), RegistrySetupViewSetGroup()]


@hooks.register("construct_homepage_summary_items")
def registry_summary(request, items):
    # The registry replaces Wagtail's pages/images/documents counts on the home page.
    items[:] = [IndividualsSummaryItem(request), HouseholdsSummaryItem(request)]
