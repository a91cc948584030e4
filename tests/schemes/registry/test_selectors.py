import datetime
from types import SimpleNamespace

import pytest
from django.db import connection
from django.utils import timezone

from schemes.registry import selectors
from schemes.registry.models import Individual
from tests.factories import (
    HouseholdFactory,
    IndividualFactory,
    MembershipFactory,
    RegistryFieldFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def pks(queryset):
    return set(queryset.values_list("pk", flat=True))


# --- scoping ----------------------------------------------------------------------------------


@pytest.fixture
def registry(geo):
    """People and households in district A, district B and nowhere; one deleted person in A."""
    return {
        "a": IndividualFactory(location=geo.village_a),
        "a_ward": IndividualFactory(location=geo.ward_a),
        "b": IndividualFactory(location=geo.village_b),
        "none": IndividualFactory(location=None),
        "a_deleted": IndividualFactory(location=geo.village_a, deleted_at=timezone.now()),
        "hh_a": HouseholdFactory(location=geo.village_a),
        "hh_b": HouseholdFactory(location=geo.village_b),
        "hh_none": HouseholdFactory(location=None),
        "hh_a_deleted": HouseholdFactory(location=geo.ward_a, deleted_at=timezone.now()),
    }


def test_individuals_for_a_district_user(viewer_a, registry):
    assert pks(selectors.individuals_for(viewer_a)) == {registry["a"].pk, registry["a_ward"].pk}
    assert pks(selectors.individuals_for(viewer_a, include_deleted=True)) == {
        registry["a"].pk,
        registry["a_ward"].pk,
        registry["a_deleted"].pk,
    }


def test_households_for_a_district_user(viewer_a, registry):
    assert pks(selectors.households_for(viewer_a)) == {registry["hh_a"].pk}
    assert pks(selectors.households_for(viewer_a, include_deleted=True)) == {
        registry["hh_a"].pk,
        registry["hh_a_deleted"].pk,
    }


def test_national_user_sees_every_live_record(registry):
    user = UserFactory(role="Viewer", national=True)

    assert pks(selectors.individuals_for(user)) == {
        registry[k].pk for k in ("a", "a_ward", "b", "none")
    }
    assert pks(selectors.households_for(user)) == {
        registry[k].pk for k in ("hh_a", "hh_b", "hh_none")
    }


def test_other_district_sees_only_its_own(registry, geo):
    user = UserFactory(role="Viewer", locations=[geo.district_b])

    assert pks(selectors.individuals_for(user)) == {registry["b"].pk}
    assert pks(selectors.households_for(user)) == {registry["hh_b"].pk}


def test_no_view_permission_means_nothing_even_with_national_scope(registry):
    user = UserFactory(national=True)  # no role

    assert selectors.individuals_for(user).count() == 0
    assert selectors.households_for(user).count() == 0


def test_no_user_access_means_nothing(registry):
    user = UserFactory(role="Viewer")

    assert selectors.individuals_for(user).count() == 0
    assert selectors.households_for(user).count() == 0



def test_household_members_head_first_live_and_in_scope_only(member_roles, geo, clerk_a, national_clerk):
    household = HouseholdFactory(location=geo.village_a)
    son = MembershipFactory(household=household, role=member_roles["SON"],
                            individual=IndividualFactory(location=geo.village_a))
    head = MembershipFactory(household=household, role=member_roles["HEAD"],
                             individual=IndividualFactory(location=geo.village_a))
    MembershipFactory(
        household=household,
        role=member_roles["DAUGHTER"],
        individual=IndividualFactory(location=geo.village_a, deleted_at=timezone.now()),
    )
    elsewhere = MembershipFactory(household=household, role=member_roles["SPOUSE"],
                                  individual=IndividualFactory(location=geo.village_b))

    assert list(selectors.household_members(household, clerk_a)) == [head, son]
    assert selectors.hidden_member_count(household, clerk_a) == 1
    assert list(selectors.household_members(household, national_clerk)) == [head, elsewhere, son]
    sized = selectors.households_with_size(
        HouseholdFactory._meta.model.objects.filter(pk=household.pk)
    )
    assert sized.get().size == 3


# --- search -----------------------------------------------------------------------------------


@pytest.fixture
def people(geo):
    return {
        "amina": IndividualFactory(
            first_name="Amina", last_name="Yusuf", national_id="1234", location=geo.village_a
        ),
        "amina_bello": IndividualFactory(
            first_name="Amina", last_name="Bello", national_id="AB12345", location=geo.village_a
        ),
        "yusuf": IndividualFactory(
            first_name="Yusuf", last_name="Okafor", national_id="12345", location=geo.village_a
        ),
        "elodie": IndividualFactory(
            first_name="Élodie", last_name="Camara", national_id=None, location=geo.village_a
        ),
    }


def found(people, text):
    result = pks(selectors.search_individuals(Individual.objects.all(), text))
    return {key for key, person in people.items() if person.pk in result}


@pytest.mark.parametrize("text", ["1234", " 12-34 ", "12-34", "１２３４", "١٢٣٤", "12.34"])
def test_search_by_national_id_is_exact_after_normalisation(people, text):
    assert found(people, text) == {"amina"}


def test_search_by_national_id_is_not_a_prefix_match(people):
    assert found(people, "123") == set()
    assert found(people, "12345") == {"yusuf"}
    assert found(people, "ab-12345") == {"amina_bello"}


@pytest.mark.parametrize(
    "text, expected",
    [
        ("amina", {"amina", "amina_bello"}),
        ("AMINA", {"amina", "amina_bello"}),
        ("amina yusuf", {"amina"}),
        ("Yusuf", {"amina", "yusuf"}),  # first or last name
        ("yus", {"amina", "yusuf"}),  # part of a word
        ("amina okafor", set()),  # every word must match
        ("bello  AMINA", {"amina_bello"}),  # order and extra spaces do not matter
        ("zzz", set()),
    ],
)
def test_search_by_name_words(people, text, expected):
    assert found(people, text) == expected


def test_search_by_name_is_case_insensitive_beyond_ascii(people):
    assert found(people, "élodie") == {"elodie"}
    assert found(people, "ÉLODIE camara") == {"elodie"}


def test_empty_search_returns_everything(people):
    assert found(people, "") == set(people)
    assert found(people, "   ") == set(people)
    assert found(people, None) == set(people)


def test_search_stays_inside_the_scope(people, geo):
    far = IndividualFactory(
        first_name="Amina", last_name="Far", national_id="999", location=geo.village_b
    )
    user = UserFactory(role="Viewer", locations=[geo.district_a])
    scoped = selectors.individuals_for(user)

    assert far.pk not in pks(selectors.search_individuals(scoped, "amina"))
    assert pks(selectors.search_individuals(scoped, "999")) == set()


@pytest.mark.parametrize(
    "text, is_id",
    [
        ("1234", True),
        ("AB-12/34", True),
        ("amina", False),
        ("amina 2", False),
        ("", False),
        ("---", False),
    ],
)
def test_looks_like_national_id(text, is_id):
    assert selectors.looks_like_national_id(text) is is_id


# --- age bands --------------------------------------------------------------------------------

TODAY = datetime.date(2025, 6, 15)


def years_ago(years, days=0, today=TODAY):
    return today.replace(year=today.year - years) + datetime.timedelta(days=days)


def bands_of(dob, today=TODAY):
    IndividualFactory(dob=dob)
    return {
        band
        for band in selectors.AGE_BANDS
        if selectors.filter_by_age_band(Individual.objects.all(), band, today=today).exists()
    }


@pytest.mark.parametrize(
    "dob, band",
    [
        (TODAY, "0-4"),  # born today
        (years_ago(5, days=1), "0-4"),  # fifth birthday tomorrow
        (years_ago(5), "5-17"),  # fifth birthday today
        (years_ago(18, days=1), "5-17"),
        (years_ago(18), "18-59"),
        (years_ago(60, days=1), "18-59"),
        (years_ago(60), "60+"),
        (datetime.date(1900, 1, 1), "60+"),
    ],
)
def test_age_band_boundaries(dob, band):
    assert bands_of(dob) == {band}


def test_nobody_born_in_the_future_is_in_any_band():
    assert bands_of(TODAY + datetime.timedelta(days=1)) == set()


@pytest.mark.parametrize(
    "today, dob, band",
    [
        # Born on 29 February: a year older on 1 March in common years, as Individual.age says.
        (datetime.date(2025, 2, 28), datetime.date(2020, 2, 29), "0-4"),
        (datetime.date(2025, 3, 1), datetime.date(2020, 2, 29), "5-17"),
        (datetime.date(2024, 2, 29), datetime.date(2019, 2, 28), "5-17"),
        (datetime.date(2024, 2, 29), datetime.date(2019, 3, 1), "0-4"),
        (datetime.date(2024, 2, 29), datetime.date(1964, 2, 29), "60+"),
        (datetime.date(2024, 2, 28), datetime.date(1964, 2, 29), "18-59"),
    ],
)
def test_age_bands_on_leap_days(today, dob, band):
    assert bands_of(dob, today=today) == {band}


@pytest.mark.parametrize(
    "today",
    [
        datetime.date(2025, 6, 15),
        datetime.date(2024, 2, 29),
        datetime.date(2025, 2, 28),
        datetime.date(2025, 1, 1),
    ],
)
def test_age_bands_agree_with_individual_age_around_every_boundary(today):
    dobs = {
        today.replace(year=today.year - years, day=min(today.day, 28))
        + datetime.timedelta(days=shift)
        for years in (0, 5, 18, 60)
        for shift in range(-3, 4)
    }
    dobs = {dob for dob in dobs if dob <= today}
    Individual.objects.bulk_create(
        [IndividualFactory.build(dob=dob, national_id=None) for dob in dobs]
    )
    everyone = list(Individual.objects.all())

    for band, (low, high) in selectors.AGE_BANDS.items():
        expected = {
            p.pk for p in everyone if p.age(today) >= low and (high is None or p.age(today) <= high)
        }
        assert (
            pks(selectors.filter_by_age_band(Individual.objects.all(), band, today=today))
            == expected
        ), band
    # Every person is in exactly one band.
    total = sum(
        selectors.filter_by_age_band(Individual.objects.all(), band, today=today).count()
        for band in selectors.AGE_BANDS
    )
    assert total == len(everyone)


# --- filter by attribute (SQLite and PostgreSQL) ----------------------------------------------


@pytest.fixture
def attributed(clerk_a, geo):
    """Attributes stored the way the services store them."""
    from schemes.registry import services

    RegistryFieldFactory(name="water", field_type="choice", choices=["tap", "well", "river"])
    RegistryFieldFactory(name="disabled", field_type="boolean")
    RegistryFieldFactory(name="children", field_type="integer")
    base = {
        "first_name": "A",
        "last_name": "B",
        "dob": datetime.date(1990, 1, 1),
        "sex": "F",
        "location": geo.village_a,
    }
    rows = {
        "tap_yes_2": {"water": "tap", "disabled": "yes", "children": "2"},
        "well_no_0": {"water": "well", "disabled": "no", "children": "0"},
        "tap_no_10": {"water": "tap", "disabled": "no", "children": "10"},
        "empty": {},
        "one": {"children": "1"},
    }
    return {
        key: services.individual_create(fields=base, attributes=attrs, by=clerk_a)
        for key, attrs in rows.items()
    }


def by_attribute(attributed, name, raw):
    from schemes.registry.models import RegistryField

    definition = RegistryField.objects.get(name=name)
    value = definition.to_json(definition.to_python(raw))
    result = pks(selectors.filter_by_attribute(Individual.objects.all(), definition, value))
    return {key for key, person in attributed.items() if person.pk in result}


@pytest.mark.parametrize(
    "name, raw, expected",
    [
        ("water", "tap", {"tap_yes_2", "tap_no_10"}),
        ("water", "well", {"well_no_0"}),
        ("water", "river", set()),
        ("disabled", "yes", {"tap_yes_2"}),
        ("disabled", "no", {"well_no_0", "tap_no_10"}),
        ("children", "2", {"tap_yes_2"}),
        ("children", "0", {"well_no_0"}),  # 0 is not "missing" and not False
        ("children", "1", {"one"}),  # 1 is not True
        ("children", "10", {"tap_no_10"}),
    ],
)
def test_filter_by_attribute(attributed, name, raw, expected):
    assert by_attribute(attributed, name, raw) == expected, connection.vendor


def test_filter_by_attribute_does_not_confuse_text_and_numbers(attributed):
    from schemes.registry.models import RegistryField

    children = RegistryField.objects.get(name="children")

    assert pks(selectors.filter_by_attribute(Individual.objects.all(), children, "2")) == set()


def test_filter_by_attribute_uses_the_definition_name_not_user_text(attributed):
    from schemes.registry.models import RegistryField

    hostile = RegistryField(name="water') OR 1=1 --", field_type="text")

    assert selectors.filter_by_attribute(Individual.objects.all(), hostile, "tap").count() == 0


@pytest.mark.parametrize("text, expected", [
    ("8552 1771 6075", True), ("TZ-1980-0512", True), ("12.34/56", True),
    ("Amina 1980", False), ("Amina", False), ("", False),
])
def test_what_reads_as_a_national_id(text, expected):
    assert selectors.looks_like_national_id(text) is expected


# --- household search -------------------------------------------------------------------------


@pytest.fixture
def barasa(geo, member_roles):
    """Households in district A: two with a Barasa (one the head, one a son), one whose code holds
    the name, one whose only Barasa is deleted, one whose Barasa lives in district B; and one in B."""

    def household(code, location, *members):
        household = HouseholdFactory(code=code, location=location)
        for number, person in enumerate(members):
            MembershipFactory(household=household, individual=person,
                              role=member_roles["HEAD" if number == 0 else "SON"])
        return household

    return {
        "head": household("HH-A-001", geo.village_a,
                          IndividualFactory(first_name="Otieno", last_name="Barasa", location=geo.village_a)),
        "son": household("HH-A-002", geo.ward_a,
                         IndividualFactory(first_name="Achieng", last_name="Odhiambo", location=geo.ward_a),
                         IndividualFactory(first_name="Wanjala", last_name="Barasa", location=geo.ward_a)),
        "code": household("BARASA-07", geo.village_a),
        "deleted": household("HH-A-003", geo.village_a,
                             IndividualFactory(last_name="Barasa", location=geo.village_a, deleted_at=timezone.now())),
        "member_in_b": household("HH-A-004", geo.village_a,
                                 IndividualFactory(last_name="Barasa", location=geo.village_b)),
        "in_b": household("HH-B-001", geo.village_b,
                          IndividualFactory(last_name="Barasa", location=geo.village_b)),
        "other": household("HH-A-005", geo.village_a,
                           IndividualFactory(first_name="Amina", last_name="Juma", location=geo.village_a)),
    }


def searched(user, text, queryset=None):
    found = selectors.search_households(
        selectors.households_for(user) if queryset is None else queryset, text, user=user)
    return {household.code for household in found.households}, found.at_least


def test_search_households_by_a_members_name_and_by_code_in_the_users_locations(barasa, viewer_a):
    assert searched(viewer_a, " barasa ") == ({"HH-A-001", "HH-A-002", "BARASA-07"}, None)
    assert searched(viewer_a, "Wanjala Barasa") == ({"HH-A-002"}, None)  # every word, one member
    assert searched(viewer_a, "Wanjala Juma") == (set(), None)
    assert searched(viewer_a, "a-00") == ({"HH-A-001", "HH-A-002", "HH-A-003", "HH-A-004", "HH-A-005"}, None)


def test_search_households_sees_members_everywhere_for_a_national_user(barasa, national_clerk):
    codes, _ = searched(national_clerk, "barasa")

    assert codes == {"HH-A-001", "HH-A-002", "BARASA-07", "HH-A-004", "HH-B-001"}


def test_search_households_keeps_the_listings_filters(barasa, viewer_a, geo):
    in_village = selectors.households_for(viewer_a).filter(location=geo.village_a)

    assert searched(viewer_a, "barasa", in_village) == ({"HH-A-001", "BARASA-07"}, None)


def test_search_households_by_national_id_looks_at_codes_only(barasa, viewer_a):
    person = barasa["head"].memberships.get().individual

    assert searched(viewer_a, person.national_id) == (set(), None)
    assert searched(viewer_a, "HH-A-001") == ({"HH-A-001"}, None)


def matching_codes(households, text):
    """The households bearing `text` in their code or a live member's name, by reading each one."""
    return [h.code for h in households if text in h.code.lower() or any(
        text in m.individual.search_name for m in h.memberships.all() if m.individual.deleted_at is None)]


@pytest.mark.parametrize("limit", [1, 2, 1000])
@pytest.mark.parametrize("text", ["barasa", "a", "first"])
def test_search_households_past_the_limit_lists_them_all_in_order_and_counts_those_found(
        barasa, national_clerk, monkeypatch, limit, text):
    """Past the limit of people (or of codes) the households are tested one by one as the page walks
    them, rather than collected: the same households, in the listing's order; the count is a lower
    bound."""
    monkeypatch.setattr(selectors, "HOUSEHOLD_SEARCH_LIMIT", limit)
    households = selectors.households_for(national_clerk).order_by("-code")
    expected = matching_codes(households, text)

    found = selectors.search_households(households, text, user=national_clerk)

    assert [h.code for h in found.households] == expected
    people = Individual.objects.live().filter(search_name__contains=text, membership__isnull=False).count()
    if people <= limit:
        assert found.at_least is None
    else:
        assert 1 <= found.at_least <= len(expected)


def test_search_households_past_the_limit_counts_when_the_filters_leave_none_of_those_found(
        barasa, national_clerk, monkeypatch):
    monkeypatch.setattr(selectors, "HOUSEHOLD_SEARCH_LIMIT", 1)
    others = selectors.households_for(national_clerk).filter(code__in=["HH-A-005", "HH-A-002"])

    found = selectors.search_households(others, "barasa", user=national_clerk)

    assert ([h.code for h in found.households], found.at_least) in [(["HH-A-002"], None), (["HH-A-002"], 1)]
    found = selectors.search_households(others.exclude(code="HH-A-002"), "barasa", user=national_clerk)
    assert (list(found.households), found.at_least) == ([], None)


# --- a person's enrolments and payments ------------------------------------------------------------

@pytest.fixture
def benefits(geo, member_roles, superuser):
    """A child grant (individual plan) with the son enrolled, a household grant with the son's household
    enrolled and its head the recipient; one approved payroll of each, in TZS."""
    from decimal import Decimal

    from schemes.payments import services as payments
    from schemes.payments.models import PaymentCycle, PaymentLine, Payroll
    from schemes.plans.models import BenefitPlan, PlanType
    from tests.factories import HouseholdFactory, MembershipFactory

    now = timezone.now()
    household = HouseholdFactory(code="HH-BENEFITS", location=geo.village_a)
    head = IndividualFactory(first_name="Amina", location=geo.village_a)
    son = IndividualFactory(first_name="Baraka", location=geo.village_a)
    MembershipFactory(household=household, individual=head, recipient_type="PRIMARY")
    MembershipFactory(household=household, individual=son, role=member_roles["SON"])
    cycle = PaymentCycle.objects.create(code="C-1", start_date=datetime.date(2025, 1, 1),
                                        end_date=datetime.date(2025, 2, 28))
    lines = []
    for code, plan_type, enrolment, recipient, amount in (
            ("CG", PlanType.INDIVIDUAL, {"individual": son}, son, "150.50"),
            ("HG", PlanType.HOUSEHOLD, {"household": household}, head, "1000.00")):
        plan = BenefitPlan.objects.create(code=code, name=f"{code} plan", plan_type=plan_type)
        beneficiary = plan.beneficiary_model.objects.create(plan=plan, status="ACTIVE", enrolled_at=now,
                                                            status_changed_at=now, **enrolment)
        payment_plan = payments.payment_plan_create(fields={
            "code": f"{code}-PAY", "name": f"{code} payments", "benefit_plan": plan, "formula": "100",
            "periodicity": 2, "currency": "TZS", "target_statuses": ["ACTIVE"]}, by=superuser)
        payroll = Payroll.objects.create(name=f"{code} payroll", payment_plan=payment_plan, cycle=cycle,
                                         parameters={"currency": "TZS"})
        lines.append(PaymentLine(payroll=payroll, beneficiary_id=beneficiary.pk, recipient=recipient,
                                 location=recipient.location, amount=Decimal(amount)))
        PaymentLine.objects.bulk_create(lines[-1:])
        Payroll.objects.filter(pk=payroll.pk).update(line_count=1, total=Decimal(amount), seal_hash="sealed")
        for status in ("PENDING_APPROVAL", "APPROVED"):
            Payroll.objects.filter(pk=payroll.pk).update(status=status)
    return SimpleNamespace(son=son, head=head, household=household)


def test_a_persons_enrolments_include_their_households(geo, benefits, clerk_a, clerk_b):
    enrolments = selectors.person_enrolments(benefits.son, clerk_a)

    assert [(e.beneficiary.plan.code, e.household) for e in enrolments] == [("CG", None), ("HG", benefits.household)]
    assert selectors.person_enrolments(benefits.son, clerk_b) == []


@pytest.fixture
def managers(geo):
    return [UserFactory(username=f"manager_{name}", role="Manager", locations=[district])
            for name, district in (("a", geo.district_a), ("b", geo.district_b))]


def test_a_persons_payments_include_their_households_marking_the_recipient(geo, benefits, clerk_a, managers):
    manager_a, manager_b = managers
    payments = selectors.person_payments(benefits.son, manager_a)

    assert payments.count == 2
    assert [(line.payroll.name, line.for_household, line.to_them) for line in payments.lines] == [
        ("HG payroll", True, False), ("CG payroll", False, True)]
    assert {(row["payroll__payment_plan__name"], row["currency"], str(row["due"])) for row in payments.totals} == {
        ("CG payments", "TZS", "150.50"), ("HG payments", "TZS", "1000.00")}
    assert selectors.person_payments(benefits.son, manager_b).count == 0
    assert selectors.person_payments(benefits.son, clerk_a).count == 0  # no permission to see payments
    assert len(selectors.person_payments(benefits.son, manager_a, limit=1).lines) == 1
    assert selectors.person_payments(benefits.son, manager_a, limit=1).count == 2


def test_a_persons_record_shows_their_households_plan_and_payments(geo, benefits, managers):
    from django.test import Client
    from django.urls import reverse

    client = Client()
    client.force_login(managers[0])
    page = client.get(reverse("registry_individual:inspect", args=[benefits.son.pk])).content.decode()

    assert 'data-testid="person-enrolments"' in page and "Member of household" in page
    assert "1,000.00 TZS" in page and "150.50 TZS" in page and "paid to another member" in page
