"""Dashboards in a real browser, on demo data (seed_demo): the manager of region Pwani finds the
dashboards on the home page, opens each default dashboard (plotly.js from our static files, drawn
under the CSP, no Plotly logo or cloud button), filters it, downloads a figure's CSV; an accountant
opens Payments; the Programme overview at a tablet's width; amounts in billions fit their tiles on a
laptop and a phone; a period ending before it starts is refused on the filters. Screenshots of each."""

import re

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from django.urls import reverse
from playwright.sync_api import expect
from wagtail.models import Locale, Page

from dashboards.models import DashboardPage
from sites.models import Location
from tests.browser.helpers import BrowserProblems, demo_password, screenshot, signed_in_page

pytestmark = pytest.mark.browser

LAPTOP = {"width": 1366, "height": 900}
TABLET = {"width": 820, "height": 1180}
PHONE = {"width": 390, "height": 844}
XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture
def demo(db, django_capture_on_commit_callbacks):
    # The live server's tests flush the database between tests, Wagtail's root page included.
    if Page.get_first_root_node() is None:
        Locale.objects.get_or_create(language_code="en")
        Page.add_root(instance=Page(title="Root", slug="root"))
    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_demo", households=200, verbosity=0, stdout=open("/dev/null", "w"))
    return {page.slug: page for page in DashboardPage.objects.live()}


def session(browser, origin, problems, username, viewport=LAPTOP):
    return signed_in_page(browser, origin, problems, username, demo_password(username), viewport=viewport)


def open_dashboard(page, origin, dashboard):
    page.goto(origin + reverse("dashboards:view", kwargs={"page_id": dashboard.pk}))
    expect(page.get_by_role("heading", name=dashboard.title).first).to_be_visible()
    plots = page.locator("[data-figure]")
    # Every figure drawn by plotly.js (it adds the js-plotly-plot class and an SVG).
    expect(page.locator("[data-figure].js-plotly-plot")).to_have_count(plots.count())
    page.wait_for_timeout(300)  # plotly's transitions
    return plots.count()


def test_default_dashboards_on_demo_data(live_server, browser, screenshots, demo):
    origin = live_server.url
    problems = BrowserProblems()
    manager = session(browser, origin, problems, "manager")

    panel = manager.locator(".mizani-dashboard-list").first
    for title in ("Programme overview", "Registry", "Payments"):
        expect(panel.get_by_role("link", name=title)).to_be_visible()
    screenshot(manager, screenshots / "dashboards-01-home-manager.png")

    assert open_dashboard(manager, origin, demo["programme-overview"]) >= 3
    tiles = manager.locator("[data-testid=kpi] .mizani-kpi__value").all_inner_texts()
    assert tiles[0] not in ("", "0", "—")
    assert manager.locator(".modebar-btn--logo").count() == 0
    assert manager.locator("[data-title*='Chart Studio'], [data-title*='cloud']").count() == 0
    screenshot(manager, screenshots / "dashboards-02-programme-overview-manager.png")

    # Filter by a plan: the page reloads with the figures for it.
    manager.select_option("#id_plan", label="Child Grant (CG-01)")
    manager.get_by_role("button", name="Apply").click()
    expect(manager.locator("#id_plan option:checked")).to_have_text("Child Grant (CG-01)")
    expect(manager.locator("[data-figure].js-plotly-plot").first).to_be_visible()
    with manager.expect_download() as download:
        manager.get_by_role("link", name="CSV of Beneficiaries by plan").click()
    lines = open(download.value.path(), encoding="utf-8-sig").read().splitlines()  # BOM first: Excel
    assert lines[0] == "Plan,Status,Beneficiaries"
    assert all(line.startswith("Child Grant,") for line in lines[1:]) and len(lines) > 1

    open_dashboard(manager, origin, demo["registry"])
    screenshot(manager, screenshots / "dashboards-03-registry-manager.png")
    # Managers read payments too (in their locations); a figure nobody may see says so instead.
    assert open_dashboard(manager, origin, demo["payments"]) >= 2
    expect(manager.get_by_text("You may not see these figures.")).to_have_count(0)

    accountant = session(browser, origin, problems, "accountant")
    assert open_dashboard(accountant, origin, demo["payments"]) >= 2
    screenshot(accountant, screenshots / "dashboards-04-payments-accountant.png")

    tablet = session(browser, origin, problems, "manager", viewport=TABLET)
    open_dashboard(tablet, origin, demo["programme-overview"])
    widths = tablet.evaluate("""() => Array.from(document.querySelectorAll('[data-figure]'))
        .map((el) => el.getBoundingClientRect().right)""")
    assert max(widths) <= TABLET["width"]  # nothing runs off a tablet's screen
    screenshot(tablet, screenshots / "dashboards-05-programme-overview-tablet.png")

    # A location named like an attack is drawn as text: no element made of it, no script run.
    district = Location.objects.filter(depth=2, path__startswith=Location.objects.get(code="R01").path).first()
    Location.objects.filter(pk=district.pk).update(name=XSS)
    cache.clear()
    dialogs = []
    manager.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    open_dashboard(manager, origin, demo["programme-overview"])
    expect(manager.locator("[data-figure] text", has_text="onerror").first).to_be_attached()
    assert manager.locator("img[src=x]").count() == 0 and dialogs == []

    assert problems.ours() == {}


def test_a_scheme_administrator_builds_a_dashboard_in_the_editor(live_server, browser, screenshots, demo):
    origin = live_server.url
    problems = BrowserProblems()
    editor = session(browser, origin, problems, "schemeadmin")
    editor.goto(origin + reverse("dashboards:index"))
    editor.get_by_role("link", name="Add a dashboard").click()
    editor.fill("#id_title", "Coverage by place")
    editor.get_by_role("button", name="Insert a block").first.click()
    editor.get_by_role("option", name="Breakdown by location").click()
    editor.locator("select[name='body-0-value-metric']").select_option("people_by_location")
    editor.get_by_role("button", name="Insert a block").last.click()
    editor.get_by_role("option", name="Bar chart").click()
    editor.locator("select[name='body-1-value-metric']").select_option("beneficiaries_by_status")
    screenshot(editor, screenshots / "dashboards-06-editor.png")
    editor.get_by_role("button", name="More actions").click()
    editor.get_by_role("button", name="Publish").click()
    # Published: the dashboard opens as its viewers see it, the editor's numbers national.
    expect(editor.get_by_role("heading", name="Coverage by place").first).to_be_visible()
    expect(editor.locator("[data-figure].js-plotly-plot")).to_have_count(2)

    page = DashboardPage.objects.get(title="Coverage by place")
    manager = session(browser, origin, problems, "manager")
    assert open_dashboard(manager, origin, page) == 2
    screenshot(manager, screenshots / "dashboards-07-new-dashboard-manager.png")
    assert problems.ours() == {}


def tiles_overflowing(page):
    """The KPI tiles whose number runs past the tile's edge."""
    return page.evaluate("""() => Array.from(document.querySelectorAll('.mizani-kpi')).filter((tile) =>
        Array.from(tile.children).some((part) => part.scrollWidth > part.clientWidth
            || part.getBoundingClientRect().right > tile.getBoundingClientRect().right))
        .map((tile) => tile.innerText)""")


def test_amounts_in_billions_fit_their_tiles_and_a_reversed_period_is_refused(live_server, browser, screenshots,
                                                                              demo):
    with connection.cursor() as cursor:  # a national programme's amounts
        cursor.execute("UPDATE payments_payrolltotal SET amount = amount * 1000")
    cache.clear()
    origin = live_server.url
    problems = BrowserProblems()
    for name, viewport in (("laptop", {"width": 1280, "height": 900}), ("phone", PHONE)):
        accountant = session(browser, origin, problems, "accountant", viewport=viewport)
        open_dashboard(accountant, origin, demo["payments"])
        due = accountant.locator("[data-testid=kpi] .mizani-kpi__value").first
        expect(due).to_have_text(re.compile(r"^\d+\.\d\d B TZS$"))
        assert re.fullmatch(r"\d,\d{3},\d{3},\d{3}\.\d\d TZS", due.get_attribute("title"))
        assert tiles_overflowing(accountant) == []
        screenshot(accountant, screenshots / f"dashboards-08-payments-billions-{name}.png")

    url = origin + reverse("dashboards:view", kwargs={"page_id": demo["payments"].pk})
    accountant.goto(f"{url}?start=2026-12-01&end=2026-01-01")
    expect(accountant.get_by_text("'To' (1 Jan 2026) is before 'From' (1 Dec 2026)")).to_be_visible()
    screenshot(accountant, screenshots / "dashboards-09-reversed-period-phone.png")
    assert problems.ours() == {}
