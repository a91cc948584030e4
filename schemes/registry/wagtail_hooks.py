from django.urls import path, reverse
from wagtail import hooks
from wagtail.admin.menu import MenuItem

from sites.scoping import scope_for

from . import views
from .components import HouseholdsSummaryItem, IndividualsSummaryItem
from .viewsets import RegistrySetupViewSetGroup, RegistryViewSetGroup


@hooks.register("register_admin_viewset")
def register_registry_viewsets():
    return [RegistryViewSetGroup(), RegistrySetupViewSetGroup()]


@hooks.register("construct_homepage_summary_items")
def registry_summary(request, items):
    # The registry replaces Wagtail's pages/images/documents counts on the home page.
    items[:] = [IndividualsSummaryItem(request), HouseholdsSummaryItem(request)]


@hooks.register("register_admin_urls")
def registry_urls():
    return [path("registry/maintenance/", views.maintenance, name="registry_maintenance")]


class MaintenanceMenuItem(MenuItem):
    def is_shown(self, request):
        return request.user.has_perm("registry.change_individual") and scope_for(request.user).national


@hooks.register("register_admin_menu_item")
def maintenance_menu_item():
    return MaintenanceMenuItem("Registry maintenance", reverse("registry_maintenance"), icon_name="cogs",
                               order=970)
