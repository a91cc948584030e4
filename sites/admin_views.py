from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import F
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.functional import cached_property
from wagtail.admin.ui.tables import Column, TitleColumn
from wagtail.admin.widgets.button import Button

from .models import OrganisationSettings
from .services import location_delete
from .viewsets import ScopedDeleteView, ScopedIndexView


class LocationIndexView(ScopedIndexView):
    default_ordering = "path"
    search_fields = ["name", "code"]
    list_export = ["code", "name", "parent_code"]

    def get_base_queryset(self):
        return super().get_base_queryset().annotate(parent_code=F("parent__code"))

    @cached_property
    def columns(self):
        edit = self.edit_url_name
        can_edit = self.user_has_permission("change")
        levels = OrganisationSettings.load()
        return [
            TitleColumn("name", label="Name", sort_key="name",
                        get_url=(lambda obj: reverse(edit, args=[obj.pk])) if can_edit else None),
            Column("code", label="Code", sort_key="code"),
            Column("level", label="Level", accessor=lambda obj: levels.level_name(obj.depth), sort_key="depth"),
            Column("parent", label="Parent", accessor="parent.name"),
        ]

    def search_queryset(self, queryset):
        if not self.is_searching:
            return queryset
        query = self.search_query.strip()
        return queryset.filter(name__icontains=query) | queryset.filter(code__iexact=query)

    @cached_property
    def header_more_buttons(self):
        buttons = list(super().header_more_buttons)
        if self.request.user.has_perm("sites.import_location"):
            buttons.append(Button("Import from a file", url=reverse("sites_location:import"), icon_name="upload"))
        return buttons


class LocationDeleteView(ScopedDeleteView):
    def delete_action(self):
        location_delete(location=self.object, by=self.request.user)

    def form_valid(self, form):
        try:
            return super().form_valid(form)
        except ValidationError as error:
            messages.error(self.request, " ".join(error.messages))
            return redirect(self.index_url_name)


def location_import(request):
    """Location files go through the upload pipeline (checked whole, approved, imported as a job)."""
    if not request.user.has_perm("sites.import_location"):
        raise PermissionDenied
    return redirect(reverse("bulk_upload:new") + "?kind=LOCATIONS")
