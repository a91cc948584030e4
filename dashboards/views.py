
from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.text import capfirst, slugify

from sites.audit import audit
from sites.spreadsheets import csv_response
from sites.viewsets import unusable_filter_phrases

from .forms import DashboardFilterForm
from .metrics import get_metric
from .models import DashboardIndexPage
from .rendering import dashboard_context, figure_blocks, table_of
from .selectors import dashboards_for


def _breadcrumbs(*extra):
    return [{"url": reverse("wagtailadmin_home"), "label": "Home"},
            {"url": reverse("dashboards:index"), "label": "Dashboards"}, *extra]


def unusable_filters_message(form):
    """Why an export is refused, as sites.viewsets says it for the lists ("The location filter is not one
    of your locations: nothing was exported."), or "" when every filter holds. The page drops a filter
    it refuses and says so next to the field; a file cannot say it, and would hold other numbers than
    the user asked for (a location outside theirs dropped: all of theirs)."""
    if form.is_valid():
        return ""
    return capfirst("; ".join(unusable_filter_phrases(form))) + ": nothing was exported."


def refuse_export(request, path, message):
    """Back to the page the export was asked from (same filters, without `export`), the reason shown;
    no file."""
    messages.error(request, message)
    params = request.GET.copy()
    params.pop("export", None)
    return redirect(f"{path}?{params.urlencode()}" if params else path)


def dashboard_links(user):
    """The dashboards the user may open, with an edit link where they may edit."""
    links = []
    for page in dashboards_for(user).order_by("path"):
        can_edit = page.permissions_for_user(user).can_edit()
        links.append({"page": page, "url": reverse("dashboards:view", kwargs={"page_id": page.pk}),
                      "edit_url": reverse("wagtailadmin_pages:edit", args=[page.pk]) if can_edit else ""})
    return links


def dashboard_index(request):
    folder = DashboardIndexPage.objects.first()
    add_url = ""
    if folder and folder.permissions_for_user(request.user).can_add_subpage():
        add_url = reverse("wagtailadmin_pages:add", args=["dashboards", "dashboardpage", folder.pk])
    return TemplateResponse(request, "dashboards/index.html", {
        "links": dashboard_links(request.user), "add_url": add_url, "page_title": "Dashboards",
        "header_title": "Dashboards", "header_icon": "view",
        "breadcrumbs_items": _breadcrumbs()})


def dashboard_view(request, page_id):
    page = get_object_or_404(dashboards_for(request.user), pk=page_id).specific
    context = dashboard_context(page, request)
    context.update({"header_title": page.title, "page_title": page.title, "header_icon": "view",
                    "breadcrumbs_items": _breadcrumbs({"url": "", "label": page.title})})
    if page.permissions_for_user(request.user).can_edit():
        context["edit_url"] = reverse("wagtailadmin_pages:edit", args=[page.pk])
    return TemplateResponse(request, "dashboards/dashboard.html", context)


def dashboard_data(request, page_id, block_id):
    """One figure's numbers as CSV, computed for the viewer with the page's filters (formula-safe)."""
    page = get_object_or_404(dashboards_for(request.user), pk=page_id).specific
    found = {id_: (block, value) for id_, block, value in figure_blocks(page)}
    if block_id not in found:
        raise Http404
    _block, value = found[block_id]
    form = DashboardFilterForm(request.GET if page.show_filters else {}, user=request.user, page=page)
    filters = form.filters()
    table = table_of(request.user, value, filters)
    if table is None:
        raise Http404
    if refusal := unusable_filters_message(form):
        return refuse_export(request, reverse("dashboards:view", kwargs={"page_id": page.pk}), refusal)
    title = value["title"] or value["metric"]
    response = csv_response(f"{slugify(page.title)}-{slugify(title)}.csv", table.as_csv())
    audit(page, "mizani.export", by=request.user, data={
        "what": f"dashboard figure: {title}", "metric": value["metric"], "rows": len(table.rows),
        "filters": filters.only(get_metric(value["metric"]).filters_used).as_text()})
    return response
