from django.shortcuts import redirect
from django.urls import include, path, reverse
from wagtail import hooks
from wagtail.admin.menu import MenuItem
from wagtail.admin.ui.components import Component

from . import reports, views
from .models import DashboardPage
from .selectors import dashboards_for

dashboard_urls = ([
    path("", views.dashboard_index, name="index"),
    path("<int:page_id>/", views.dashboard_view, name="view"),
    path("<int:page_id>/data/<str:block_id>.csv", views.dashboard_data, name="data"),
], "dashboards")


@hooks.register("register_admin_urls")
def register_dashboard_urls():
    return [path("dashboards/", include(dashboard_urls))]


class DashboardsMenuItem(MenuItem):
    def is_shown(self, request):
        return dashboards_for(request.user).exists()


@hooks.register("register_admin_menu_item")
def dashboards_menu_item():
    return DashboardsMenuItem("Dashboards", reverse("dashboards:index"), icon_name="view", order=50)


class DashboardsPanel(Component):
    """The dashboards the user may open, first on the admin's home page (the site's home)."""

    name = "dashboards"
    order = 10
    template_name = "dashboards/home_panel.html"

    class Media:
        css = {"all": ["dashboards/dashboards.css"]}

    def __init__(self, request):
        self.request = request

    def get_context_data(self, parent_context=None):
        return {"links": views.dashboard_links(self.request.user)}


@hooks.register("after_create_page")
@hooks.register("after_edit_page")
def show_published_dashboard(request, page):
    """Once published, a dashboard opens as its viewers see it (instead of the page explorer)."""
    if isinstance(page.specific, DashboardPage) and "action-publish" in request.POST and page.live:
        return redirect("dashboards:view", page_id=page.pk)
    return None


@hooks.register("construct_homepage_panels")
def dashboards_home_panel(request, panels):
    panels.insert(0, DashboardsPanel(request))


# --- reports (menu Reports) ------------------------------------------------------------------------


@hooks.register("register_admin_urls")
def register_report_urls():
    from .report_views import urlpatterns

    return [path("dashboards/reports/", include((urlpatterns, "dashboards_reports")))]


class ReportMenuItem(MenuItem):
    """A report, shown to whoever may read its metric."""

    def __init__(self, report):
        super().__init__(report.label, reverse(report.url_name), name=f"mizani-{report.slug.replace('_', '-')}",
                         icon_name=report.icon, order=report.order)
        self.report = report

    def is_shown(self, request):
        return self.report.allowed(request.user)


@hooks.register("register_reports_menu_item")
def pending_approvals_report_item():
    return ReportMenuItem(reports.PENDING_APPROVALS)


@hooks.register("register_reports_menu_item")
def upload_history_report_item():
    return ReportMenuItem(reports.UPLOAD_HISTORY)


@hooks.register("register_reports_menu_item")
def beneficiaries_report_item():
    return ReportMenuItem(reports.BENEFICIARIES_BY_PLAN)


@hooks.register("register_reports_menu_item")
def payments_report_item():
    return ReportMenuItem(reports.PAYMENTS_DUE_VS_PAID)
