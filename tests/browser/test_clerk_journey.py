"""A data-entry clerk's day in a real browser: log in, find a person by name and by national ID,
read the record, register someone new. The clerk works in district A: district B's people never
appear.

Along the way every console error, uncaught exception, failed request and Content-Security-Policy
violation is collected; our pages must produce none. Screenshots go to artifacts/screenshots/.
"""

import contextlib
import datetime
import re
import warnings
from dataclasses import dataclass

import pytest
from playwright.sync_api import expect

from schemes.registry.models import Individual, RegistryField
from tests.browser.helpers import TIMEOUT_MS, BrowserProblems, screenshot
from tests.factories import (
    PASSWORD,
    HouseholdFactory,
    IndividualFactory,
    MembershipFactory,
    RegistryFieldFactory,
)

pytestmark = pytest.mark.browser

@dataclass
class World:
    person: Individual
    relative: Individual
    household_code: str
    others_in_a: list
    people_in_b: list


@pytest.fixture
def world(geo, clerk_a, member_roles):
    """District A: the Mwakaseges (a household of two) and two neighbours. District B: three
    people, one of them Neema's namesake and one sharing her family name."""
    RegistryFieldFactory(name="school_attendance", label="School attendance",
                         field_type="choice", sort_order=1,
                         choices=["attending", "not attending", "not applicable"])
    RegistryFieldFactory(name="income", label="Monthly income", field_type="decimal",
                         sort_order=2)
    RegistryFieldFactory(name="dwelling_type", label="Dwelling type", field_type="choice",
                         choices=["permanent", "temporary"],
                         target=RegistryField.Target.HOUSEHOLD)

    person = IndividualFactory(
        first_name="Neema", last_name="Mwakasege", national_id="TZ19800512000017", sex="F",
        dob=datetime.date(1980, 5, 12), location=geo.village_a,
        attributes={"school_attendance": "not applicable", "income": "85000"})
    relative = IndividualFactory(
        first_name="Baraka", last_name="Mwakasege", national_id="TZ20100301000022", sex="M",
        dob=datetime.date(2010, 3, 1), location=geo.village_a,
        attributes={"school_attendance": "attending"})
    household = HouseholdFactory(code="HH-A-0001", location=geo.village_a,
                                 attributes={"dwelling_type": "permanent"})
    MembershipFactory(household=household, individual=person, role=member_roles["HEAD"],
                      recipient_type="PRIMARY")
    MembershipFactory(household=household, individual=relative, role=member_roles["SON"])
    others_in_a = [
        IndividualFactory(first_name="Amina", last_name="Juma", location=geo.ward_a),
        IndividualFactory(first_name="Zawadi", last_name="Ally", location=geo.district_a),
    ]
    people_in_b = [
        IndividualFactory(first_name="Neema", last_name="Mwakalinga",
                          national_id="TZ19900101000099", location=geo.village_b),
        IndividualFactory(first_name="Rehema", last_name="Mwakasege", location=geo.village_b),
        IndividualFactory(first_name="Juma", last_name="Kombo", location=geo.ward_b),
    ]
    MembershipFactory(household=HouseholdFactory(code="HH-B-0001", location=geo.village_b),
                      individual=people_in_b[0], role=member_roles["HEAD"])
    return World(person, relative, "HH-A-0001", others_in_a, people_in_b)


def results(page):
    return page.locator("#listing-results")


def expect_listed(page, names, *, absent=()):
    for name in names:
        expect(results(page).get_by_role("link", name=name, exact=True)).to_be_visible()
    for name in absent:
        expect(results(page).get_by_text(name, exact=True)).to_have_count(0)


def search(page, text):
    box = page.locator("input[name='q']")
    box.fill(text)
    box.press("Enter")
    # The results are swapped in place and the query reflected into the address bar.
    page.wait_for_url(re.compile(r"[?&]q="))


def test_clerk_finds_reads_and_registers_people(live_server, browser, world, screenshots, geo):
    origin = live_server.url
    problems = BrowserProblems()
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="en-GB")
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)
    problems.watch(page, origin)
    person, relative = world.person, world.relative
    full_name = str(person)
    b_names = [str(p) for p in world.people_in_b]
    rows = results(page).locator("tbody tr")
    household_section = page.locator("section[aria-labelledby='household-heading']")
    attributes_section = page.locator("section[aria-labelledby='attributes-heading']")

    try:
        # --- log in through Wagtail's form -----------------------------------------------------
        page.goto(f"{origin}/admin/")
        expect(page).to_have_url(re.compile(r"/admin/login/"))
        page.get_by_label("Username").fill("clerk_a")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name=re.compile("Sign in", re.I)).click()
        expect(page).to_have_url(f"{origin}/admin/")

        # --- Registry > Individuals from the menu: A's people, none of B's ----------------------
        page.get_by_role("button", name="Registry", exact=True).click()
        page.get_by_role("link", name="Individuals", exact=True).click()
        expect(page).to_have_url(f"{origin}/admin/registry/individuals/")
        expect(page.locator("h1")).to_contain_text("Individuals")
        expect_listed(page, [full_name, str(relative), *map(str, world.others_in_a)],
                      absent=b_names)
        expect(rows).to_have_count(4)
        screenshot(page, screenshots / "clerk_individuals_list.png")

        # --- search by name: district B's namesakes stay out ------------------------------------
        search(page, "mwakasege")
        expect_listed(page, [full_name, str(relative)], absent=b_names)
        expect(rows).to_have_count(2)
        search(page, "neema")
        expect_listed(page, [full_name], absent=["Neema Mwakalinga"])
        expect(rows).to_have_count(1)
        screenshot(page, screenshots / "clerk_individuals_search.png")

        # --- search by national ID, typed the way people type it --------------------------------
        search(page, "tz-1980-0512-000017")
        expect_listed(page, [full_name])
        expect(rows).to_have_count(1)
        expect(results(page)).to_contain_text("TZ19800512000017")
        search(page, "TZ19900101000099")  # B's person: not found from A
        expect(rows).to_have_count(0)
        expect(results(page)).not_to_contain_text("Mwakalinga")

        # --- the record page -------------------------------------------------------------------
        search(page, "tz-1980-0512-000017")
        results(page).get_by_role("link", name=full_name, exact=True).click()
        expect(page).to_have_url(f"{origin}/admin/registry/individuals/inspect/{person.pk}/")
        expect(page.get_by_test_id("person-name")).to_have_text(full_name)
        expect(page.get_by_test_id("national-id")).to_have_text("TZ19800512000017")
        household_link = household_section.get_by_role("link", name=world.household_code)
        expect(household_link).to_be_visible()
        expect(household_section).to_contain_text("Head")
        expect(household_section.get_by_role("link", name=str(relative))).to_be_visible()
        expect(attributes_section).to_contain_text("School attendance")
        expect(attributes_section).to_contain_text("not applicable")
        expect(attributes_section).to_contain_text("85000")
        expect(page.locator("main")).not_to_contain_text("Mwakalinga")
        screenshot(page, screenshots / "clerk_individual_record.png")

        # --- register a new person, with an attribute ------------------------------------------
        page.goto(f"{origin}/admin/registry/individuals/")
        page.get_by_role("link", name="Add individual", exact=True).click()
        expect(page).to_have_url(f"{origin}/admin/registry/individuals/new/")
        page.fill("input[name='first_name']", "Upendo")
        page.fill("input[name='last_name']", "Mwakasege")
        page.fill("input[name='dob']", "2016-08-20")
        page.select_option("select[name='sex']", "F")
        page.fill("input[name='national_id']", "tz 2016 0820 000031")
        # The location chooser offers the clerk's locations only, searchable.
        page.get_by_role("button", name="Choose a location").click()
        modal = page.locator(".modal-content")
        expect(modal.get_by_role("link", name=str(geo.village_a))).to_be_visible()
        offered = modal.locator("table a").all_inner_texts()
        assert not [c for c in offered if re.search(r"(District|Ward|Village) B", c)], offered
        modal.get_by_placeholder("Name or code").fill(geo.village_a.name)
        expect(modal.locator("table a")).to_have_count(1)
        screenshot(page, screenshots / "clerk_location_chooser.png")
        modal.get_by_role("link", name=str(geo.village_a)).click()
        expect(page.locator("input[name='location']")).to_have_value(str(geo.village_a.pk))
        page.select_option("select[name='attr_school_attendance']", "attending")
        page.fill("input[name='attr_income']", "0")
        screenshot(page, screenshots / "clerk_individual_create.png")
        page.get_by_role("button", name="Create", exact=True).click()

        expect(page).to_have_url(
            re.compile(rf"{re.escape(origin)}/admin/registry/individuals/inspect/\d+/$"))
        expect(page.get_by_test_id("person-name")).to_have_text("Upendo Mwakasege")
        expect(page.locator(".messages")).to_contain_text(
            re.compile(r"Upendo Mwakasege.*created", re.I))
        expect(page.get_by_test_id("national-id")).to_have_text("TZ20160820000031")
        expect(attributes_section).to_contain_text("attending")
        expect(household_section).to_contain_text("Not a member of a household")
        screenshot(page, screenshots / "clerk_individual_created.png")

        created = Individual.objects.get(national_id="TZ20160820000031")
        assert page.url.endswith(f"/inspect/{created.pk}/")
        assert (created.first_name, created.location_id) == ("Upendo", geo.village_a.pk)
        assert created.attributes == {"school_attendance": "attending", "income": "0"}
    except Exception:
        with contextlib.suppress(Exception):
            page.screenshot(path=str(screenshots / "clerk_journey_failure.png"), full_page=True)
        raise
    finally:
        context.close()

    assert not problems.ours(), f"The browser reported problems on our pages: {problems.ours()}"
    if problems.wagtails():
        warnings.warn(f"Wagtail's admin violates the Content-Security-Policy: "
                      f"{problems.wagtails()}", stacklevel=1)
