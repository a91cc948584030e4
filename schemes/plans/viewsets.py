from django.urls import path
from wagtail.admin.panels import FieldPanel, FieldRowPanel, InlinePanel, MultiFieldPanel, ObjectList
from wagtail.admin.ui.tables import Column
from wagtail.admin.viewsets.model import ModelViewSet, ModelViewSetGroup

from sites.viewsets import ScopedModelViewSet

from . import selectors, targeting_views, views
from .forms import BenefitPlanForm, LocationTreeSelect
from .models import Beneficiary, BenefitPlan, HouseholdBeneficiary


class BenefitPlanViewSet(ModelViewSet):
    model = BenefitPlan
    icon = "clipboard-list"
    menu_label = "Benefit plans"
    inspect_view_enabled = True
    index_view_class = views.PlanIndexView
    inspect_view_class = views.PlanRecordView
    add_view_class = views.PlanCreateView
    edit_view_class = views.PlanEditView
    delete_view_class = views.PlanDeleteView
    inspect_template_name = "plans/plan_record.html"
    copy_view_enabled = False
    list_display = ["name", "code", "plan_type", "status",
                    Column("live_count", label="Live beneficiaries (your locations)", sort_key="live_count")]
    list_filter = ["status", "plan_type"]
    search_fields = ["name", "code"]
    edit_handler = ObjectList([
        FieldRowPanel([FieldPanel("code"), FieldPanel("name")]),
        FieldRowPanel([FieldPanel("plan_type"), FieldPanel("institution")]),
        FieldPanel("description"),
        FieldRowPanel([FieldPanel("valid_from"), FieldPanel("valid_to")]),
        FieldRowPanel([FieldPanel("max_beneficiaries"), FieldPanel("ceiling_per_beneficiary"),
                       FieldPanel("currency")]),
        MultiFieldPanel([FieldPanel("criteria_potential"), FieldPanel("criteria_active")], heading="Criteria"),
        MultiFieldPanel([FieldPanel("score_formula_text"), FieldPanel("score_cutoff"),
                         InlinePanel("cutoffs", heading="Cut-offs by region", label="Cut-off", panels=[
                             FieldRowPanel([FieldPanel("location", widget=LocationTreeSelect), FieldPanel("cutoff")])])],
                        heading="Targeting by score"),
        InlinePanel("fields", heading="Beneficiary schema", label="Field"),
    ], base_form_class=BenefitPlanForm)

    def get_urlpatterns(self):
        return super().get_urlpatterns() + [
            path("change-status/<int:pk>/", views.plan_status, name="change_status"),
            path("enrol/<int:pk>/", views.enrol, name="enrol"),
            path("schema/<int:pk>/", views.schema_export, name="schema"),
            path("schema-import/<int:pk>/", views.schema_import_view, name="schema_import"),
            path("simulate/<int:pk>/", targeting_views.simulate_view, name="simulate"),
            path("bulk-status/<int:pk>/", views.bulk_status, name="bulk_status"),
        ]


class BeneficiaryViewSet(ScopedModelViewSet):
    """Beneficiaries are read here, change status and plan data through their page; they are created
    only by enrolment, so the viewset serves no add or edit form."""

    model = Beneficiary
    selector = staticmethod(selectors.beneficiaries_for)
    icon = "user"
    menu_label = "Beneficiaries"
    inspect_view_enabled = True
    index_view_class = views.BeneficiaryIndexView
    inspect_view_class = views.BeneficiaryRecordView
    history_view_class = views.BeneficiaryHistoryView
    inspect_template_name = "plans/beneficiary_record.html"
    add_to_reference_index = False
    export_filename = "beneficiaries"
    form_fields = ["reason"]  # required by ModelViewSet; no add or edit view is served

    def get_common_view_kwargs(self, **kwargs):
        return super().get_common_view_kwargs(**{
            **kwargs, "add_url_name": None, "edit_url_name": None, "delete_url_name": None, "usage_url_name": None})

    def get_urlpatterns(self):
        kept = {"index", "index_results", "inspect", "history", "history_results"}
        return [pattern for pattern in super().get_urlpatterns() if pattern.name in kept] + [
            path("change-status/<int:pk>/", views.beneficiary_status_view(self.model), name="change_status"),
            path("edit-data/<int:pk>/", views.beneficiary_data_view(self.model), name="edit_data"),
        ]


class HouseholdBeneficiaryViewSet(BeneficiaryViewSet):
    model = HouseholdBeneficiary
    selector = staticmethod(selectors.household_beneficiaries_for)
    icon = "home"
    menu_label = "Household beneficiaries"
    export_filename = "household-beneficiaries"


class PlansViewSetGroup(ModelViewSetGroup):
    menu_label = "Programmes"
    menu_icon = "clipboard-list"
    menu_order = 120
    items = (BenefitPlanViewSet("plans_plan", url_prefix="plans"),
             BeneficiaryViewSet("plans_beneficiary", url_prefix="plans/beneficiaries"),
             HouseholdBeneficiaryViewSet("plans_householdbeneficiary", url_prefix="plans/household-beneficiaries"))
