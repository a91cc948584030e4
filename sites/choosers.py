"""The location chooser: a searchable, paginated pick of the user's locations, for every form with a
`location` (a select of a national tree's thousands of villages is unusable). Listing and the chosen
look-up both start from the user's scope: a location elsewhere is a 404, as on every other view."""

import json

from django import forms
from django.db.models import Q
from django.templatetags.static import static
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from wagtail.admin.forms.choosers import BaseFilterForm
from wagtail.admin.ui.tables import Column
from wagtail.admin.views.generic.chooser import ChooseResultsView, ChooseView, ChosenMultipleView, ChosenView
from wagtail.admin.viewsets.chooser import ChooserViewSet
from wagtail.admin.widgets.chooser import BaseChooser

from .models import Location, OrganisationSettings
from .scoping import scope_for


class LocationSearchForm(BaseFilterForm):
    q = forms.CharField(label="Name or code", required=False,
                        widget=forms.TextInput(attrs={"placeholder": "Name or code"}))

    def filter(self, objects):
        term = (self.cleaned_data.get("q") or "").strip()
        self.is_searching, self.search_query = bool(term), term or None
        if term:
            objects = objects.filter(Q(name__icontains=term) | Q(code__istartswith=term))
        return objects


def _within(location):
    return str(location.parent) if location.parent_id else ""


class LocationListingMixin:
    filter_form_class = LocationSearchForm
    ordering = ["path"]
    per_page = 20

    def get_object_list(self):
        return scope_for(self.request.user).locations().select_related("parent")

    @property
    def columns(self):
        title = self.title_column
        title.label = "Location"
        organisation = OrganisationSettings.load()
        return [
            title,
            Column("level", label="Level", accessor=lambda location: organisation.level_name(location.depth)),
            Column("within", label="Within", accessor=_within),
        ]


class LocationChooseView(LocationListingMixin, ChooseView):
    pass


class LocationChooseResultsView(LocationListingMixin, ChooseResultsView):
    pass


class LocationChosenView(ChosenView):
    def get_object(self, pk):
        return scope_for(self.request.user).locations().get(pk=pk)


class LocationChosenMultipleView(ChosenMultipleView):
    def get_objects(self, pks):
        return scope_for(self.request.user).locations().filter(pk__in=pks)


class ScriptFreeChooser(BaseChooser):
    """Wagtail's chooser widget starts itself with an inline <script>, which the Content-Security-
    Policy (script-src 'self') refuses: the same start options go in a data attribute, read by
    static/mizani/chooser_init.js."""

    show_edit_link = False  # picking, not editing: the tree has its own screens

    def render(self, name, value, attrs=None, renderer=None):
        if not attrs or "id" not in attrs:
            raise TypeError("A chooser cannot be rendered without an 'id' attribute")
        value_data = self.get_value_data(value)
        options = self.get_js_init_options(attrs["id"], name, value_data)
        start = format_html('<span hidden data-mizani-chooser="{}" data-options="{}"></span>',
                            attrs["id"], json.dumps(options))
        return mark_safe(self.render_html(name, value_data, attrs) + start)

    @property
    def media(self):
        return super().media + forms.Media(js=[static("mizani/chooser_init.js")])


class LocationChooserViewSet(ChooserViewSet):
    model = Location
    icon = "site"
    choose_one_text = "Choose a location"
    choose_another_text = "Choose another location"
    choose_view_class = LocationChooseView
    choose_results_view_class = LocationChooseResultsView
    chosen_view_class = LocationChosenView
    chosen_multiple_view_class = LocationChosenMultipleView
    base_widget_class = ScriptFreeChooser
    # Forms opt in (ScopedRecordForm): a widget for every Location key would also reach inline
    # formsets, whose added rows our data-attribute start does not see.
    register_widget = False

    def get_urlpatterns(self):
        # Locations are created in the tree (sites_location), never from inside a chooser.
        return [pattern for pattern in super().get_urlpatterns() if pattern.name != "create"]


location_chooser_viewset = LocationChooserViewSet("location_chooser", url_prefix="platform/choose-location")
LocationChooserWidget = location_chooser_viewset.widget_class
