import copy

from django import forms
from django.contrib import messages
from django.shortcuts import redirect
from django.urls import path
from django.utils.functional import cached_property
from wagtail.admin.forms import WagtailAdminModelForm
from wagtail.admin.panels import FieldPanel, FieldRowPanel, MultiFieldPanel, ObjectList
from wagtail.admin.views import generic
from wagtail.admin.viewsets.model import ModelViewSet, ModelViewSetGroup

from sites.fields import checks_changed, values_refused
from sites.forms import AttributesPanel, FieldDefinitionForm, RecordObjectList
from sites.masking import SENSITIVE_PERMISSION
from sites.viewsets import RecordViewSet, ScopedModelViewSet

from . import duplicate_views, selectors, services, views
from .forms import HouseholdForm, IndividualForm
from .models import DuplicateCandidate, Household, Individual, MemberRole, RegistryField


class RegistryRecordViewSet(RecordViewSet):
    """People and households: the delete page states what the deletion touches (and refuses up front
    what the service would refuse); whoever may read a record may read its history."""

    check_delete_service = None
    delete_view_class = views.RecordDeleteView
    history_view_class = views.RecordHistoryView
    delete_template_name = "registry/confirm_delete.html"

    def get_delete_view_kwargs(self, **kwargs):
        return super().get_delete_view_kwargs(check_delete_service=self.check_delete_service, **kwargs)


class IndividualViewSet(RegistryRecordViewSet):
    model = Individual
    # A reference-index row per person (to its location) would cost millions of rows and a task per save.
    add_to_reference_index = False
    selector = staticmethod(selectors.individuals_for)
    icon = "user"
    menu_label = "Individuals"
    record_kwarg = "individual"
    create_service = staticmethod(services.individual_create)
    update_service = staticmethod(services.individual_update)
    delete_service = staticmethod(services.individual_soft_delete)
    check_delete_service = staticmethod(services.individual_check_delete)
    restore_service = staticmethod(services.individual_restore)
    change_operation = "registry.change_individual"
    delete_operation = "registry.delete_individual"
    index_view_class = views.IndividualIndexView
    inspect_view_class = views.IndividualRecordView
    inspect_template_name = "registry/individual_record.html"
    export_filename = "individuals"
    list_per_page = 25
    search_fields = ["search_name"]  # turns the search box on; IndividualIndexView does the searching
    edit_handler = RecordObjectList([
        MultiFieldPanel([
            FieldRowPanel([FieldPanel("first_name"), FieldPanel("last_name")]),
            FieldRowPanel([FieldPanel("dob"), FieldPanel("sex")]),
        ], heading="Person"),
        MultiFieldPanel([
            FieldPanel("national_id", permission=SENSITIVE_PERMISSION),
            FieldPanel("phone", permission=SENSITIVE_PERMISSION),
        ], heading="Identification"),
        FieldPanel("location"),
        AttributesPanel(heading="Attributes"),
        FieldPanel("register_anyway"),
    ], base_form_class=IndividualForm)



class HouseholdViewSet(RegistryRecordViewSet):
    model = Household
    add_to_reference_index = False
    selector = staticmethod(selectors.households_for)
    icon = "group"
    menu_label = "Households"
    record_kwarg = "household"
    create_service = staticmethod(services.household_create)
    update_service = staticmethod(services.household_update)
    delete_service = staticmethod(services.household_soft_delete)
    check_delete_service = staticmethod(services.household_check_delete)
    restore_service = staticmethod(services.household_restore)
    change_operation = "registry.change_household"
    delete_operation = "registry.delete_household"
    index_view_class = views.HouseholdIndexView
    inspect_view_class = views.HouseholdRecordView
    inspect_template_name = "registry/household_record.html"
    export_filename = "households"
    list_per_page = 25
    search_fields = ["code"]  # turns the search box on; HouseholdIndexView searches codes and members' names
    edit_handler = RecordObjectList([
        FieldPanel("code"),
        FieldPanel("location"),
        AttributesPanel(heading="Attributes"),
    ], base_form_class=HouseholdForm)

    def get_urlpatterns(self):
        return super().get_urlpatterns() + [
            path("members/<int:pk>/", views.HouseholdMembersView.as_view(), name="members"),
        ]


class DuplicateCandidateViewSet(ScopedModelViewSet):
    """The duplicate review queue and the comparison page; pairs come from scans and change only
    through the duplicate services (dismiss, merge and unmerge requests), so no add or edit view."""

    model = DuplicateCandidate
    selector = staticmethod(selectors.duplicates_for)
    icon = "copy"
    menu_label = "Possible duplicates"
    inspect_view_enabled = True
    index_view_class = duplicate_views.DuplicateIndexView
    inspect_view_class = duplicate_views.DuplicateCompareView
    inspect_template_name = "registry/duplicates/compare.html"
    add_to_reference_index = False
    export_filename = "possible-duplicates"
    list_per_page = 50
    form_fields = ["dismiss_reason"]  # required by ModelViewSet; no add or edit view is served

    def get_common_view_kwargs(self, **kwargs):
        return super().get_common_view_kwargs(**{
            **kwargs, "add_url_name": None, "edit_url_name": None, "delete_url_name": None, "usage_url_name": None})

    def get_urlpatterns(self):
        kept = {"index", "index_results", "inspect", "history", "history_results"}
        return [pattern for pattern in super().get_urlpatterns() if pattern.name in kept] + [
            path("scan/", duplicate_views.duplicates_scan, name="scan"),
            path("dismiss/<int:pk>/", duplicate_views.duplicate_dismiss, name="dismiss"),
            path("merge/<int:pk>/", duplicate_views.duplicate_merge, name="merge"),
            path("unmerge/<int:pk>/", duplicate_views.duplicate_unmerge, name="unmerge"),
            path("reopen/<int:pk>/", duplicate_views.duplicate_reopen, name="reopen"),
        ]


class RegistryFieldForm(FieldDefinitionForm):
    """A change to a field's checks (type, choices, format, bounds, decimals) that refuses values people
    or households already hold says how many before it is saved, and is saved once the administrator
    ticks the box: those records keep their values (nothing is rewritten) until someone changes them."""

    CONFIRM = "confirm_refused"
    confirm_refused = forms.BooleanField(required=False, label="Save anyway")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.CONFIRM not in self.data:  # shown only with the warning it answers
            del self.fields[self.CONFIRM]

    def _post_clean(self):
        super()._post_clean()  # the instance now holds the new definition, checked
        if self.errors or self.instance.pk is None or self.cleaned_data.get(self.CONFIRM):
            return
        before = RegistryField.objects.get(pk=self.instance.pk)
        if not checks_changed(before, self.instance):
            return
        individuals = self.instance.target == RegistryField.Target.INDIVIDUAL
        refused = values_refused((Individual if individuals else Household).objects.all(), self.instance)
        if not refused.count:
            return
        nouns = ("person holds", "people hold") if individuals else ("household holds", "households hold")
        example = ""
        if not (self.instance.sensitive or before.sensitive):
            example = f", for example '{refused.value}': {refused.reason[:1].lower()}{refused.reason[1:]}"
        self.fields[self.CONFIRM] = copy.deepcopy(self.base_fields[self.CONFIRM])
        self.add_error(self.CONFIRM, (
            f"{refused.count:,} {nouns[refused.count != 1]} a value this definition refuses{example.rstrip('.')}. "
            "They keep it until someone changes it, and a new value must follow the new definition. Tick the box "
            "to save the change anyway."))


class RegistryFieldViewSet(ModelViewSet):
    """Scheme administrators define the registry's attributes here; forms and filters follow."""

    model = RegistryField
    icon = "form"
    menu_label = "Registry fields"
    list_display = ["label", "name", "target", "field_type", "required", "sensitive"]
    list_filter = ["target", "field_type"]
    copy_view_enabled = False
    edit_handler = ObjectList([
        FieldRowPanel([FieldPanel("target"), FieldPanel("field_type")]),
        FieldRowPanel([FieldPanel("name"), FieldPanel("label")]),
        FieldRowPanel([FieldPanel("required"), FieldPanel("sensitive")]),
        FieldRowPanel([FieldPanel("min_value"), FieldPanel("max_value"), FieldPanel("decimal_places")]),
        FieldPanel("pattern"),
        FieldPanel("choices"),
        FieldPanel("help_text"),
        FieldPanel("sort_order"),
        FieldPanel(RegistryFieldForm.CONFIRM, heading="Save anyway"),
    ], base_form_class=RegistryFieldForm)


class MemberRoleForm(WagtailAdminModelForm):
    """The code is the role's key in every membership and file: set once, never renamed."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["code"].disabled = True


class MemberRoleDeleteView(generic.DeleteView):
    """Says up front why a built-in role or one members hold cannot be deleted (instead of an error)."""

    template_name = "registry/member_role_confirm_delete.html"

    @cached_property
    def problem(self):
        return self.object.delete_problem()

    def form_valid(self, form):
        if self.problem:
            messages.error(self.request, self.problem)
            return redirect(self.index_url_name)
        return super().form_valid(form)


class MemberRoleViewSet(ModelViewSet):
    model = MemberRole
    icon = "tag"
    menu_label = "Member roles"
    list_display = ["label", "code", "sort_order"]
    copy_view_enabled = False
    delete_view_class = MemberRoleDeleteView
    edit_handler = ObjectList([FieldPanel("code"), FieldPanel("label"), FieldPanel("sort_order")],
                              base_form_class=MemberRoleForm)


class RegistryViewSetGroup(ModelViewSetGroup):
    menu_label = "Registry"
    menu_icon = "group"
    menu_order = 100
    items = (IndividualViewSet("registry_individual", url_prefix="registry/individuals"),
             HouseholdViewSet("registry_household", url_prefix="registry/households"),
             DuplicateCandidateViewSet("registry_duplicate", url_prefix="registry/duplicates"))


class RegistrySetupViewSetGroup(ModelViewSetGroup):
    menu_label = "Registry setup"
    menu_icon = "cogs"
    menu_order = 800
    items = (RegistryFieldViewSet("registry_field", url_prefix="registry/fields"),
             MemberRoleViewSet("registry_memberrole", url_prefix="registry/member-roles"))
