from django.urls import reverse
from wagtail.admin.site_summary import SummaryItem

from . import selectors


class RegistrySummaryItem(SummaryItem):
    """A count on the admin home page, limited to the user's locations; subclasses define count()."""

    template_name = "registry/home/summary_item.html"
    label = ""
    icon = ""
    url_name = ""
    permission = ""

    def is_shown(self):
        return self.request.user.has_perm(self.permission)

    def get_context_data(self, parent_context):
        return {"total": self.count(), "label": self.label, "icon": self.icon, "url": reverse(self.url_name)}


class IndividualsSummaryItem(RegistrySummaryItem):
    order = 10
    label = "Individuals"
    icon = "user"
    url_name = "registry_individual:index"
    permission = "registry.view_individual"

    def count(self):
        return selectors.individuals_for(self.request.user).count()


class HouseholdsSummaryItem(RegistrySummaryItem):
    order = 20
    label = "Households"
    icon = "group"
    url_name = "registry_household:index"
    permission = "registry.view_household"

    def count(self):
        return selectors.households_for(self.request.user).count()
