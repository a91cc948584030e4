"""Wagtail's date and date-time pickers (listing filters, the audit trail, scheduled publishing) start
from static/mizani/date_chooser_init.js: the Content-Security-Policy refuses the inline scripts Wagtail
would start them with."""

import pytest
from django.urls import reverse
from playwright.sync_api import expect
from wagtail.models import Locale, Page

from tests.browser.helpers import TIMEOUT_MS, BrowserProblems, screenshot, signed_in_page

pytestmark = pytest.mark.browser


@pytest.fixture
def home(db):
    """A page to edit. The live server's tests flush the database between tests, Wagtail's root page
    included (and without one the admin's home page cannot link the page explorer)."""
    root = Page.get_first_root_node()
    if root is None:
        Locale.objects.get_or_create(language_code="en")
        root = Page.add_root(instance=Page(title="Root", slug="root"))
    return root.get_children().first() or root.add_child(instance=Page(title="Home", slug="home"))


def test_date_pickers_start_under_the_content_security_policy(live_server, browser, superuser, home, screenshots):
    origin, problems = live_server.url, BrowserProblems()
    expect.set_options(timeout=TIMEOUT_MS)
    page = signed_in_page(browser, origin, problems, superuser.username)

    for url in (reverse("mizani_site_history"), reverse("wagtailadmin_explore", args=[home.pk]),
                reverse("wagtailadmin_pages:edit", args=[home.pk])):
        page.goto(origin + url)
        markers = page.locator("[data-mizani-date-chooser]")
        expect(markers.first).to_be_attached()
        for index in range(markers.count()):
            expect(markers.nth(index)).to_have_attribute("data-started", "true")
        assert page.locator(".xdsoft_datetimepicker").count() >= markers.count()

    page.locator("[data-side-panel-toggle=status]").click()
    page.get_by_role("button", name="Set schedule").click()
    go_live = page.locator("input[name=go_live_at]")
    go_live.click()
    expect(page.locator(".xdsoft_datetimepicker:visible").first).to_be_visible()
    screenshot(page, screenshots / "date_picker_schedule.png")
    assert problems.ours() == {}
