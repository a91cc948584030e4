from django.urls import path, reverse
from wagtail.admin.panels import FieldPanel, FieldRowPanel, MultiFieldPanel, ObjectList
from wagtail.admin.ui.menus import MenuItem
from wagtail.admin.ui.tables import Column, TitleColumn
from wagtail.admin.viewsets.model import ModelViewSetGroup
from wagtail.admin.widgets.button import HeaderButton

from sites.viewsets import ScopedIndexView, ScopedModelViewSet

from . import api_admin, api_services, selectors, services, views
from .forms import PaymentPlanForm, ServiceModelForm
from .models import PaymentCycle, PaymentLine, PaymentPlan, PaymentPoint, PaymentProvider, Payroll
from .templatetags.payments_money import count, money, yes_no


class MoneyColumn(Column):
    """An amount as every payment screen shows it (the `money` filter: "711,000.00"), sorted as a number."""

    def __init__(self, name, **kwargs):
        super().__init__(name, label=name.capitalize(), sort_key=name,
                         accessor=lambda record: money(getattr(record, name)), **kwargs)


class CountColumn(Column):
    """A count with its thousands separated ("1,200"), sorted as a number."""

    def __init__(self, name, label, **kwargs):
        super().__init__(name, label=label, sort_key=name, accessor=lambda record: count(getattr(record, name)),
                         **kwargs)


class YesNoColumn(Column):
    """A yes/no field as Yes or No (not True or False)."""

    def __init__(self, name, label, **kwargs):
        super().__init__(name, label=label, sort_key=name, accessor=lambda record: yes_no(getattr(record, name)),
                         **kwargs)


class ReadOnlyViewSet(ScopedModelViewSet):
    """Listed and inspected here; written only by the services (generation, approval)."""

    inspect_view_enabled = True
    add_to_reference_index = False

    def get_common_view_kwargs(self, **kwargs):
        return super().get_common_view_kwargs(**{
            **kwargs, "add_url_name": None, "edit_url_name": None, "delete_url_name": None, "usage_url_name": None})

    def get_urlpatterns(self):
        kept = {"index", "index_results", "inspect", "history", "history_results"}
        return [pattern for pattern in super().get_urlpatterns() if pattern.name in kept]


class PayrollViewSet(ReadOnlyViewSet):
    model = Payroll
    selector = staticmethod(selectors.payrolls_for)
    icon = "table"
    menu_label = "Payrolls"
    inspect_view_class = views.PayrollRecordView
    list_display = ["name", "cycle", "status", CountColumn("line_count", "Lines"), MoneyColumn("total"), "currency"]
    list_filter = ["status", "payment_plan", "cycle"]
    list_export = ["name", "payment_plan", "cycle", "status", "line_count", "total", "currency", "seal_hash",
                   "sealed_at"]
    export_filename = "payrolls"
    form_fields = ["name"]  # required by ModelViewSet; no add or edit view is served

    def get_urlpatterns(self):
        return super().get_urlpatterns() + [
            path("export/<int:pk>/", views.payroll_export, name="export_csv"),
            path("difference/<int:pk>/", views.payroll_diff_export, name="diff_csv"),
            path("submit/<int:pk>/", views.payroll_submit, name="submit"),
            path("discard/<int:pk>/", views.payroll_discard, name="discard"),
            path("release-over-limit/<int:pk>/", views.payroll_release_submit, name="release_over_limit"),
            path("follow-up/<int:pk>/", views.payroll_follow_up, name="follow_up"),
            path("close/<int:pk>/", views.payroll_close, name="close"),
        ]


class PaymentLineIndexView(ScopedIndexView):
    def get_base_queryset(self):
        """Newest payroll first, and one payroll's lines by beneficiary: orders the (payroll,
        beneficiary) index gives as it is read, so a page of a million-line payroll reads twenty
        lines (the model's ordering sorts by the payroll's date: every line, every time)."""
        lines = super().get_base_queryset()
        if self.request.GET.get("payroll", "").isdigit():
            return lines.order_by("payroll_id", "beneficiary_id")
        return lines.order_by("-payroll_id", "-beneficiary_id")


class PaymentLineViewSet(ReadOnlyViewSet):
    """Payment search: lines in the user's locations."""

    model = PaymentLine
    index_view_class = PaymentLineIndexView
    selector = staticmethod(selectors.lines_for)
    icon = "search"
    menu_label = "Payment search"
    list_display = ["__str__", "payroll", "recipient", MoneyColumn("amount"), "currency", "status",
                    YesNoColumn("flagged_over_limit", "Flagged over limit")]
    list_filter = ["status", "flagged_over_limit", "payroll"]
    list_export = ["code", "payroll", "beneficiary_id", "recipient", "location", "amount", "currency",
                   "flagged_over_limit", "status", "receipt", "paid_on"]
    export_filename = "payments"
    search_fields = ["recipient__first_name", "recipient__last_name", "receipt"]
    form_fields = ["receipt"]
    inspect_view_class = views.PaymentLineRecordView
    inspect_view_fields = ["payroll", "beneficiary_id", "recipient", "location", "amount", "currency", "inputs",
                           "flagged_over_limit", "status", "receipt", "paid_on"]


class PaymentPlanViewSet(ScopedModelViewSet):
    """Payment plans: created directly, changed through approval (`payments.change_plan`)."""

    model = PaymentPlan
    selector = staticmethod(selectors.payment_plans_for)
    icon = "list-ul"
    menu_label = "Payment plans"
    inspect_view_enabled = True
    add_to_reference_index = False
    add_view_class = views.PaymentPlanCreateView
    edit_view_class = views.PaymentPlanEditView
    inspect_view_class = views.PaymentPlanRecordView
    list_display = ["name", "code", "benefit_plan", "periodicity", "currency"]
    list_filter = ["benefit_plan"]
    search_fields = ["name", "code"]
    edit_handler = ObjectList([
        FieldRowPanel([FieldPanel("code"), FieldPanel("name")]),
        FieldPanel("benefit_plan"),
        MultiFieldPanel([FieldPanel("formula"), FieldPanel("criteria"), FieldPanel("target_statuses")],
                        heading="Who is paid how much"),
        FieldRowPanel([FieldPanel("ceiling_per_beneficiary"), FieldPanel("limit_per_transaction")]),
        FieldRowPanel([FieldPanel("periodicity"), FieldPanel("currency")]),
        FieldPanel("amounts_in_new_currency"),  # only when a change of currency asks for it
    ], base_form_class=PaymentPlanForm)

    def get_common_view_kwargs(self, **kwargs):
        return super().get_common_view_kwargs(**{**kwargs, "delete_url_name": None, "usage_url_name": None})

    def get_urlpatterns(self):
        kept = {"index", "index_results", "add", "edit", "inspect", "history", "history_results"}
        return [pattern for pattern in super().get_urlpatterns() if pattern.name in kept] + [
            path("generate/<int:pk>/", views.payroll_generate, name="generate"),
            path("formula-tester/<int:pk>/", views.formula_tester, name="formula_tester"),
        ]


class ServiceViewSet(ScopedModelViewSet):
    """Created and changed through `create_service` / `change_service` (permission checked, audited);
    never deleted (payrolls and points refer to them)."""

    add_view_class = views.ServiceCreateView
    edit_view_class = views.ServiceEditView
    add_to_reference_index = False
    create_service = None
    change_service = None
    record_kwarg = None

    def get_form_class(self, for_update=False):
        return type(f"{self.model.__name__}Form", (ServiceModelForm,), {
            "Meta": type("Meta", (), {"model": self.model, "fields": self.form_fields})})

    def get_common_view_kwargs(self, **kwargs):
        return super().get_common_view_kwargs(**{**kwargs, "delete_url_name": None, "usage_url_name": None})

    def get_add_view_kwargs(self, **kwargs):
        return super().get_add_view_kwargs(service=self.create_service, **kwargs)

    def get_edit_view_kwargs(self, **kwargs):
        return super().get_edit_view_kwargs(service=self.change_service, record_kwarg=self.record_kwarg, **kwargs)

    def get_urlpatterns(self):
        return [pattern for pattern in super().get_urlpatterns() if pattern.name not in ("delete", "usage")]


class CycleIndexView(ScopedIndexView):
    """The row's title opens the cycle's page (its status, payrolls, open and close); Edit stays in the
    row's menu."""

    def _get_title_column(self, field_name, column_class=TitleColumn, **kwargs):
        return self._get_custom_column(field_name, self._get_title_column_class(column_class),
                                       get_url=self.get_inspect_url, **kwargs)

    @property
    def header_buttons(self):
        buttons = super().header_buttons
        if self.request.user.has_perm("payments.add_paymentcycle"):
            buttons.append(HeaderButton("Generate a schedule", url=reverse("payments_cycle:schedule"), icon_name="date"))
        return buttons


class CycleViewSet(ServiceViewSet):
    model = PaymentCycle
    selector = staticmethod(selectors.cycles_for)
    icon = "date"
    menu_label = "Payment cycles"
    index_view_class = CycleIndexView
    inspect_view_enabled = True
    inspect_view_class = views.CycleRecordView
    list_display = ["code", "start_date", "end_date", "status"]
    list_filter = ["status"]
    form_fields = ["code", "start_date", "end_date"]
    create_service = staticmethod(views.cycle_create_service)
    change_service = staticmethod(services.cycle_change)
    record_kwarg = "cycle"

    def get_urlpatterns(self):
        return super().get_urlpatterns() + [
            path("schedule/", views.cycle_schedule, name="schedule"),
            path("open/<int:pk>/", views.cycle_open, name="open"),
            path("close/<int:pk>/", views.cycle_close, name="close"),
        ]


class ProviderIndexView(ScopedIndexView):
    def get_list_more_buttons(self, instance):
        buttons = super().get_list_more_buttons(instance)
        if self.request.user.has_perm(api_services.MANAGE_TOKENS):
            buttons.append(MenuItem("API tokens", url=reverse("payments_provider:tokens", args=[instance.pk]),
                                    icon_name="key", priority=40))
        return buttons


class ProviderViewSet(ServiceViewSet):
    model = PaymentProvider
    selector = staticmethod(selectors.providers_for)
    icon = "group"
    menu_label = "Payment providers"
    index_view_class = ProviderIndexView
    form_fields = ["code", "name"]
    create_service = staticmethod(services.provider_create)
    change_service = staticmethod(services.provider_change)
    record_kwarg = "provider"

    def get_urlpatterns(self):
        return super().get_urlpatterns() + [
            path("tokens/<int:pk>/", api_admin.provider_tokens, name="tokens"),
            path("tokens/<int:pk>/revoke/<int:token_pk>/", api_admin.provider_token_revoke_view, name="token_revoke"),
        ]


class PointViewSet(ServiceViewSet):
    model = PaymentPoint
    selector = staticmethod(selectors.points_for)
    icon = "site"
    menu_label = "Payment points"
    index_view_class = views.PointIndexView
    edit_view_class = views.PointEditView
    list_display = ["name", "code", "provider", "location"]
    form_fields = ["code", "name", "provider", "location"]
    create_service = staticmethod(services.point_create)
    change_service = staticmethod(services.point_change)
    record_kwarg = "point"


class PaymentsViewSetGroup(ModelViewSetGroup):
    menu_label = "Payments"
    menu_icon = "table"
    menu_order = 130
    items = (PaymentPlanViewSet("payments_plan", url_prefix="payments/plans"),
             PayrollViewSet("payments_payroll", url_prefix="payments/payrolls"),
             PaymentLineViewSet("payments_line", url_prefix="payments/lines"),
             CycleViewSet("payments_cycle", url_prefix="payments/cycles"),
             ProviderViewSet("payments_provider", url_prefix="payments/providers"),
             PointViewSet("payments_point", url_prefix="payments/points"))
