"""Dashboards in the admin: who may open which, figures per viewer's locations, no inline script,
formula-safe CSV per figure, the home page's list, the editor for scheme administrators."""

import csv
import io
import json
import re

import pytest
from django.contrib.auth.models import Group
from django.test import RequestFactory
from django.urls import reverse
from wagtail.models import PageLogEntry

from dashboards.models import DashboardIndexPage, DashboardPage
from schemes.plans.models import BenefitPlan
from tests.factories import UserFactory
from tests.schemes.payments.conftest import enrol, household_of

pytestmark = pytest.mark.django_db


def client_for(client, user):
    client.force_login(user)
    return client


def overview():
    return DashboardPage.objects.get(slug="programme-overview")


def kpis_of(html):
    return re.findall(r'class="mizani-kpi__value"[^>]*>([^<]*)<', html)


def kpis(response):
    return kpis_of(response.content.decode())


def test_the_default_dashboards_exist_with_their_viewers():
    titles = dict(DashboardPage.objects.live().values_list("slug", "title"))
    assert titles == {"programme-overview": "Programme overview", "registry": "Registry", "payments": "Payments"}
    assert set(overview().viewer_groups.values_list("name", flat=True)) >= {"Manager", "Accountant"}
    assert "Clerk" not in overview().viewer_groups.values_list("name", flat=True)


def test_managers_find_their_dashboards_on_the_home_page(client, manager_a):
    html = client_for(client, manager_a).get(reverse("wagtailadmin_home")).content.decode()
    for page in DashboardPage.objects.all():
        assert reverse("dashboards:view", kwargs={"page_id": page.pk}) in html


def test_who_may_view_each_dashboard_is_configurable(client, geo, manager_a):
    clerk = UserFactory(username="clerk_dash", role="Clerk", locations=[geo.district_a])
    page = overview()
    url = reverse("dashboards:view", kwargs={"page_id": page.pk})

    assert client_for(client, clerk).get(url).status_code == 404
    assert client_for(client, manager_a).get(url).status_code == 200
    page.viewer_groups.set([Group.objects.get(name="Accountant")])
    page.save_revision().publish()
    assert client_for(client, manager_a).get(url).status_code == 404
    client.logout()
    assert client.get(url).status_code == 302  # to the login page


def test_two_district_managers_see_their_own_numbers(client, geo, people, manager_a, manager_b):
    url = reverse("dashboards:view", kwargs={"page_id": overview().pk})
    page_a = client_for(client, manager_a).get(url)
    tiles_a = kpis(page_a)
    tiles_b = kpis(client_for(client, manager_b).get(url))

    # People registered, households, active beneficiaries; due in approved payrolls: none yet.
    assert tiles_a == ["16", "4", "3"]
    assert tiles_b == ["1", "1", "1"]
    html = page_a.content.decode()
    assert re.findall(r'class="mizani-kpi__empty[^>]*>([^<]*)<', html) == ["No payments yet"]
    assert '<p class="mizani-figure__empty">No payments yet.</p>' in html
    # A viewer may not see payments: no tile rather than a zero.
    viewer = UserFactory(username="viewer_tiles_a", role="Viewer", locations=[geo.district_a])
    assert kpis(client_for(client, viewer).get(url)) == ["16", "4", "3"]


def test_figures_are_data_drawn_by_our_static_script_not_inline_script(client, people, superuser):
    response = client_for(client, superuser).get(reverse("dashboards:view", kwargs={"page_id": overview().pk}))
    html = response.content.decode()

    scripts = re.findall(r"<script([^>]*)>", html)
    assert all("src=" in attrs or 'type="application/json"' in attrs for attrs in scripts), scripts
    assert html.count("dashboards/plotly.min.js") == 1
    assert html.count("dashboards/dashboards.js") == 1
    config = json.loads(re.search(r'id="mizani-plotly-config" type="application/json">([^<]*)<', html).group(1))
    assert config["showSendToCloud"] is False and config["displaylogo"] is False
    plots = re.findall(r'data-figure="([^"]+)"', html)
    assert plots
    for data_id in plots:
        figure = json.loads(re.search(rf'id="{data_id}" type="application/json">([^<]*)<', html).group(1))
        assert figure["data"], data_id
    assert "script-src 'self'" in response["Content-Security-Policy"]


def test_a_figure_downloads_as_formula_safe_csv_and_is_audited(client, geo, people, benefit_plan, superuser):
    BenefitPlan.objects.filter(pk=benefit_plan.pk).update(name="=HYPERLINK(\"http://x\")")
    page = overview()
    by_plan = next(child for child in page.body if child.block_type == "bar" and child.value["metric"] == "beneficiaries_by_plan")
    url = reverse("dashboards:data", kwargs={"page_id": page.pk, "block_id": by_plan.id})

    response = client_for(client, superuser).get(url, {"location": geo.district_a.pk})
    assert response.content.startswith(b"\xef\xbb\xbf")  # the BOM every CSV for a person starts with
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))

    assert response["Content-Type"].startswith("text/csv")
    assert rows[0] == ["Plan", "Status", "Beneficiaries"]
    assert rows[1:] == [["'=HYPERLINK(\"http://x\")", "Active", "3"],
                        ["'=HYPERLINK(\"http://x\")", "Suspended", "1"]]
    entry = PageLogEntry.objects.filter(page=page, action="mizani.export").get()
    assert entry.data["rows"] == 2 and geo.district_a.code in entry.data["filters"]


def test_csv_follows_the_same_access_and_scope_as_the_page(client, geo, people, manager_b):
    page = overview()
    by_plan = next(child for child in page.body if child.block_type == "bar" and child.value["metric"] == "beneficiaries_by_plan")
    url = reverse("dashboards:data", kwargs={"page_id": page.pk, "block_id": by_plan.id})
    clerk = UserFactory(username="clerk_csv", role="Clerk", locations=[geo.district_a])

    assert client_for(client, clerk).get(url).status_code == 404
    rows = list(csv.reader(io.StringIO(client_for(client, manager_b).get(url).content.decode("utf-8-sig"))))
    assert rows[1:] == [["Child grant", "Active", "1"]]
    unknown = reverse("dashboards:data", kwargs={"page_id": page.pk, "block_id": "not-a-block"})
    assert client.get(unknown).status_code == 404


def test_a_figure_csv_with_a_location_outside_the_users_is_refused_not_unfiltered(client, geo, people, manager_a):
    page = overview()
    by_plan = next(child for child in page.body if child.block_type == "bar" and child.value["metric"] == "beneficiaries_by_plan")
    url = reverse("dashboards:data", kwargs={"page_id": page.pk, "block_id": by_plan.id})
    client = client_for(client, manager_a)

    response = client.get(url, {"location": geo.other_region.pk})
    page_url = reverse("dashboards:view", kwargs={"page_id": page.pk})
    assert response.status_code == 302 and response["Location"] == f"{page_url}?location={geo.other_region.pk}"
    shown = client.get(response["Location"])
    assert [str(message) for message in shown.context["messages"]] == [
        "The location filter is not one of your locations: nothing was exported."]
    assert not PageLogEntry.objects.filter(page=page, action="mizani.export").exists()

    response = client.get(url, {"location": geo.district_a.pk})
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert response["Content-Type"].startswith("text/csv")
    assert rows[1:] == [["Child grant", "Active", "3"], ["Child grant", "Suspended", "1"]]
    entry = PageLogEntry.objects.filter(page=page, action="mizani.export").get()
    assert geo.district_a.code in entry.data["filters"]


def test_a_figure_csv_records_only_the_filters_its_metric_applies(client, geo, benefit_plan, superuser):
    """QA: the pending approvals' CSV was recorded as filtered by plan: the metric does not read the plan
    (Metric.filters_used), its numbers were the same without it."""
    page = DashboardPage.objects.get(slug="registry")
    approvals = next(child for child in page.body if child.block_type == "table" and child.value["metric"] == "approvals_pending")
    url = reverse("dashboards:data", kwargs={"page_id": page.pk, "block_id": approvals.id})

    response = client_for(client, superuser).get(url, {"plan": benefit_plan.pk, "location": geo.district_a.pk,
                                                       "start": "2026-01-01"})

    assert response["Content-Type"].startswith("text/csv")
    entry = PageLogEntry.objects.filter(page=page, action="mizani.export").get()
    assert entry.data["filters"] == f"location={geo.district_a.code}, from=2026-01-01"


def test_scheme_administrators_edit_dashboards_and_managers_do_not(client, geo):
    designer = UserFactory(username="designer", role="Scheme administrator", national=True)
    add = add_url()
    edit = reverse("wagtailadmin_pages:edit", args=[overview().pk])

    assert client_for(client, designer).get(add).status_code == 200
    assert client.get(edit).status_code == 200
    manager = UserFactory(username="manager_edit", role="Manager", locations=[geo.district_a])
    assert client_for(client, manager).get(add).status_code in (302, 403)
    assert client.get(edit).status_code in (302, 403)


def add_url():
    return reverse("wagtailadmin_pages:add", args=["dashboards", "dashboardpage", DashboardIndexPage.objects.get().pk])


def editor_form(*, tile_value="", tile_row=""):
    """The editor's form for a dashboard "Coverage": a KPI tile of beneficiaries by status (its value
    and row keys as given) and a bar chart of them, published."""
    return {
        "title": "Coverage", "slug": "coverage", "summary": "Who we reach", "show_filters": "on",
        "body-count": "2",
        "body-0-type": "kpis", "body-0-deleted": "", "body-0-order": "0", "body-0-id": "",
        "body-0-value-count": "1", "body-0-value-0-deleted": "", "body-0-value-0-order": "0",
        "body-0-value-0-id": "", "body-0-value-0-value-metric": "beneficiaries_by_status",
        "body-0-value-0-value-label": "Beneficiaries", "body-0-value-0-value-value": tile_value,
        "body-0-value-0-value-row": tile_row,
        "body-1-type": "bar", "body-1-deleted": "", "body-1-order": "1", "body-1-id": "",
        "body-1-value-metric": "beneficiaries_by_status", "body-1-value-title": "",
        "body-1-value-description": "", "body-1-value-width": "full", "body-1-value-height": "360",
        "body-1-value-value": "",
        "action-publish": "publish",
    }


def test_a_scheme_administrator_builds_a_dashboard_in_the_editor(client, geo, people, manager_a, manager_b):
    designer = UserFactory(username="designer", role="Scheme administrator", national=True)
    response = client_for(client, designer).post(add_url(), editor_form())
    assert response.status_code == 302, response.content.decode()[:3000]

    page = DashboardPage.objects.get(slug="coverage")
    assert page.live
    url = reverse("dashboards:view", kwargs={"page_id": page.pk})
    assert kpis(client_for(client, manager_a).get(url)) == ["4"]
    assert kpis(client_for(client, manager_b).get(url)) == ["1"]


def test_the_editor_refuses_a_tile_whose_row_or_value_its_metric_does_not_have(client, geo, people):
    designer = UserFactory(username="designer", role="Scheme administrator", national=True)
    response = client_for(client, designer).post(add_url(), editor_form(tile_value="Paid", tile_row="Actve"))

    assert response.status_code == 200
    html = response.content.decode()
    assert "Unknown row &#x27;Actve&#x27;. Choose one of: &#x27;Potential&#x27;, &#x27;Active&#x27;" in html
    assert "Unknown value &#x27;Paid&#x27;. Choose one of: &#x27;beneficiaries&#x27;" in html
    assert not DashboardPage.objects.filter(slug="coverage").exists()


def stored_page(body):
    """A published dashboard whose body was stored as given (before its keys were checked)."""
    page = DashboardPage(title="Stored", slug="stored", body=json.dumps(body))
    DashboardIndexPage.objects.get().add_child(instance=page)
    page.save_revision().publish()
    return page


def test_a_stored_key_its_metric_lacks_shows_a_notice_not_a_number(client, people, superuser):
    tiles = [{"type": "item", "id": f"t{n}", "value": {"metric": metric, "label": label, "value": value, "row": row}}
             for n, (metric, label, value, row) in enumerate((
                 ("beneficiaries_by_statu", "Renamed metric", "", ""),
                 ("beneficiaries_by_status", "Mistyped row", "", "Actve"),
                 ("payments_due_vs_paid", "Mistyped value", "Paied", ""),
                 ("beneficiaries_by_status", "Active", "", "Active")))]
    page = stored_page([
        {"type": "kpis", "id": "kpis", "value": tiles},
        {"type": "bar", "id": "gone", "value": {"metric": "no_such_metric", "title": "Gone", "description": "",
                                                "width": "half", "height": 360, "value": "", "horizontal": False,
                                                "stacked": False}}])

    html = client_for(client, superuser).get(reverse("dashboards:view", kwargs={"page_id": page.pk})).content.decode()

    notices = re.findall(r'class="error-message mizani-kpi__notice">([^\n]*)</p>', html)
    assert [notice.replace("<wbr>", "") for notice in notices] == [
        "Unknown metric 'beneficiaries_by_statu'", "Unknown row 'Actve'", "Unknown value 'Paied'"]
    assert kpis_of(html) == ["4"]  # the one tile with known keys, and no 0 for the others
    assert "Unknown metric 'no_<wbr>such_<wbr>metric'" in html
    assert "You may not see these figures." not in html
    assert reverse("dashboards:data", kwargs={"page_id": page.pk, "block_id": "gone"}) not in html


def test_the_editors_preview_renders_the_figures_for_the_previewer(geo, people, manager_a):
    request = RequestFactory().get("/")
    request.user = manager_a
    response = overview().serve_preview(request, "")
    response.render()
    html = response.content.decode()

    assert "dashboards/plotly.min.js" in html
    assert kpis_of(html)[:3] == ["16", "4", "3"]
    assert "/data/" not in html  # no CSV links in a preview


# === a dashboard tied to one plan ===================================================================


@pytest.fixture
def elderly_grant(geo, people):
    """A second plan beside the Child grant of `people`: two active in district A, one active and one
    suspended in district B."""
    plan = BenefitPlan.objects.create(code="EG", name="Elderly grant")
    plan.activate()
    plan.save()
    for village, status in ((geo.village_a, "ACTIVE"), (geo.village_a, "ACTIVE"), (geo.village_b, "ACTIVE"),
                            (geo.village_b, "SUSPENDED")):
        enrol(plan, household_of(1, location=village), status)
    return plan


def tied_page(plan):
    """QA's page: "Elderly grant", a KPI tile of beneficiaries by status (all and active ones) and a bar
    chart of beneficiaries by plan, tied to `plan`."""
    tiles = [{"type": "item", "id": f"t{n}", "value": {"metric": "beneficiaries_by_status", "label": label,
                                                       "value": "", "row": row}}
             for n, (label, row) in enumerate((("Beneficiaries", ""), ("Active", "Active")))]
    page = DashboardPage(title="Elderly grant", slug="elderly-grant", plan=plan, body=json.dumps([
        {"type": "kpis", "id": "kpis", "value": tiles},
        {"type": "bar", "id": "by-plan", "value": {"metric": "beneficiaries_by_plan", "title": "", "description": "",
                                                   "width": "half", "height": 360, "value": "", "horizontal": False,
                                                   "stacked": False}}]))
    DashboardIndexPage.objects.get().add_child(instance=page)
    page.save_revision().publish()
    return page


def test_a_page_tied_to_a_plan_shows_only_that_plans_figures(client, benefit_plan, elderly_grant, superuser):
    page = tied_page(elderly_grant)
    url = reverse("dashboards:view", kwargs={"page_id": page.pk})
    client = client_for(client, superuser)

    response = client.get(url)
    asked_for_another = client.get(url, {"plan": benefit_plan.pk})

    html = response.content.decode()
    assert kpis(response) == ["4", "3"]  # not the 9 and 7 of both plans
    assert kpis(asked_for_another) == ["4", "3"]
    assert 'name="plan"' not in html  # no plan to choose
    assert 'data-testid="page-plan">Benefit plan: Elderly grant<' in html
    rows = list(csv.reader(io.StringIO(client.get(
        reverse("dashboards:data", kwargs={"page_id": page.pk, "block_id": "by-plan"}),
        {"plan": benefit_plan.pk}).content.decode("utf-8-sig"))))
    assert rows[1:] == [["Elderly grant", "Active", "3"], ["Elderly grant", "Suspended", "1"]]
    # Without a plan of its own, a page counts every plan and lets the viewer choose one.
    overview_html = client.get(reverse("dashboards:view", kwargs={"page_id": overview().pk})).content.decode()
    assert 'name="plan"' in overview_html and 'data-testid="page-plan"' not in overview_html


def test_a_page_tied_to_a_plan_still_shows_each_manager_their_own_district(client, elderly_grant, manager_a,
                                                                           manager_b):
    url = reverse("dashboards:view", kwargs={"page_id": tied_page(elderly_grant).pk})

    assert kpis(client_for(client, manager_a).get(url)) == ["2", "2"]
    assert kpis(client_for(client, manager_b).get(url)) == ["2", "1"]


def test_editors_tie_a_dashboard_to_a_plan_in_the_page_editor(client, geo, elderly_grant, manager_a):
    designer = UserFactory(username="designer", role="Scheme administrator", national=True)
    client_for(client, designer)

    editor = client.get(add_url()).content.decode()
    response = client.post(add_url(), {**editor_form(), "plan": elderly_grant.pk})

    assert 'name="plan"' in editor and "Elderly grant" in editor
    assert response.status_code == 302
    page = DashboardPage.objects.get(slug="coverage")
    assert page.plan == elderly_grant
    assert kpis(client_for(client, manager_a).get(reverse("dashboards:view", kwargs={"page_id": page.pk}))) == ["2"]


# === dashboards live in the admin ===================================================================


@pytest.mark.parametrize("role", ["Scheme administrator", "superuser"])
def test_the_dashboards_folder_warns_of_no_missing_site(client, role):
    """Dashboards are read in the admin (not served by Wagtail): their address is their admin view, and
    the page explorer does not call them unreachable."""
    user = UserFactory(username="designer", is_superuser=True) if role == "superuser" else UserFactory(
        username="designer", role=role, national=True)
    folder = DashboardIndexPage.objects.get()
    client_for(client, user)

    listing = client.get(reverse("wagtailadmin_explore", args=[folder.pk]))
    home = client.get(reverse("wagtailadmin_home"))

    assert listing.status_code == home.status_code == 200
    assert "There is no site" not in listing.content.decode()
    assert folder.url == reverse("dashboards:index")
    assert overview().url == reverse("dashboards:view", kwargs={"page_id": overview().pk})
    assert overview().full_url.endswith(reverse("dashboards:view", kwargs={"page_id": overview().pk}))


def test_the_title_is_explained_as_a_dashboards_name(client):
    designer = UserFactory(username="designer", role="Scheme administrator", national=True)

    editor = client_for(client, designer).get(add_url()).content.decode()

    assert "The dashboard&#x27;s name in the menu and on the page." in editor
    assert "seen by the public" not in editor
    assert "Show the values and rows of each metric" in editor  # a KPI tile's keys, for its "value" and "row"


def test_a_period_to_the_calendars_last_day_shows_the_dashboard_and_its_csv(client, geo, people, superuser):
    """QA: "To" 9999-12-31 answered 500 on the dashboard and on each figure's CSV."""
    page = overview()
    by_plan = next(child for child in page.body if child.block_type == "bar" and child.value["metric"] == "beneficiaries_by_plan")
    url = reverse("dashboards:data", kwargs={"page_id": page.pk, "block_id": by_plan.id})
    client = client_for(client, superuser)

    shown = client.get(reverse("dashboards:view", kwargs={"page_id": page.pk}), {"end": "9999-12-31"})
    assert shown.status_code == 200 and kpis(shown)
    response = client.get(url, {"start": "0001-01-01", "end": "9999-12-31"})
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert response["Content-Type"].startswith("text/csv")
    assert rows[1:] == [["Child grant", "Active", "4"], ["Child grant", "Suspended", "1"]]
