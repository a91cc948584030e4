import pytest
from django.contrib.auth.models import AnonymousUser

from schemes.registry.models import Household, Individual
from sites.models import Location
from sites.scoping import EMPTY_SCOPE, forget_scope, scope_for
from tests.factories import (
    HouseholdFactory,
    IndividualFactory,
    LocationFactory,
    UserFactory,
    access_of,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(geo):
    """One person at every interesting place, keyed by where they live."""
    places = {
        "region": geo.region,
        "district_a": geo.district_a,
        "ward_a": geo.ward_a,
        "village_a": geo.village_a,
        "district_b": geo.district_b,
        "village_b": geo.village_b,
        "other_village": geo.other_village,
        "nowhere": None,
    }
    return {key: IndividualFactory(location=place, last_name=key) for key, place in places.items()}


def visible(user, people):
    seen = set(scope_for(user).filter(Individual.objects.all()).values_list("pk", flat=True))
    return {key for key, person in people.items() if person.pk in seen}


# --- national scope ---------------------------------------------------------------------------


def test_national_user_sees_everything_including_records_without_location(people):
    user = UserFactory(role="Viewer", national=True)

    assert visible(user, people) == set(people)
    assert scope_for(user).national
    assert scope_for(user).allows(None)


def test_superuser_is_national_without_any_access_row(people):
    user = UserFactory(is_superuser=True)

    assert not hasattr(user, "access")
    assert visible(user, people) == set(people)
    assert scope_for(user).allows(None)


def test_national_flag_wins_over_assigned_locations(geo, people):
    user = UserFactory(national=True, locations=[geo.village_b])

    assert visible(user, people) == set(people)


# --- location scope ---------------------------------------------------------------------------


def test_district_user_sees_their_subtree_only(geo, people):
    user = UserFactory(role="Clerk", locations=[geo.district_a])

    assert visible(user, people) == {"district_a", "ward_a", "village_a"}
    scope = scope_for(user)
    assert scope.allows(geo.village_a)
    assert scope.allows(geo.district_a)
    assert not scope.allows(geo.region)  # the parent is above the assignment
    assert not scope.allows(geo.district_b)  # the sibling district
    assert not scope.allows(geo.village_b)
    assert not scope.allows(None)  # no location: national scope only


def test_village_user_does_not_see_the_rest_of_the_district(geo, people):
    user = UserFactory(locations=[geo.village_a])

    assert visible(user, people) == {"village_a"}


def test_scope_applies_to_households_and_to_locations(geo):
    inside = HouseholdFactory(location=geo.ward_a)
    HouseholdFactory(location=geo.ward_b)
    HouseholdFactory(location=None)
    user = UserFactory(locations=[geo.district_a])
    scope = scope_for(user)

    assert list(scope.filter(Household.objects.all())) == [inside]
    assert set(scope.locations()) == {geo.district_a, geo.ward_a, geo.village_a}
    assert set(Household.objects.filter(scope.q())) == {inside}


def test_scope_filter_on_a_related_field(geo):
    IndividualFactory(location=geo.village_a)
    IndividualFactory(location=geo.village_b)
    user = UserFactory(locations=[geo.district_a])

    # A related path, as selectors of other models use it.
    locations = scope_for(user).filter(
        Location.objects.filter(individuals__isnull=False), field="pk"
    )

    assert list(locations) == [geo.village_a]


def test_scope_follows_the_tree_after_a_move(geo, people):
    user = UserFactory(locations=[geo.district_a])
    ward_b = Location.objects.get(pk=geo.ward_b.pk)
    ward_b.parent = geo.district_a
    ward_b.save()

    assert visible(user, people) == {"district_a", "ward_a", "village_a", "village_b"}


# --- no access --------------------------------------------------------------------------------


def test_user_without_user_access_sees_nothing(people):
    user = UserFactory(role="Clerk")

    assert scope_for(user) == EMPTY_SCOPE
    assert scope_for(user).is_empty
    assert visible(user, people) == set()
    assert not scope_for(user).allows(None)


def test_user_access_without_locations_sees_nothing(people):
    user = UserFactory(locations=[])

    assert scope_for(user).is_empty
    assert visible(user, people) == set()
    assert Individual.objects.filter(scope_for(user).q()).count() == 0
    assert scope_for(user).locations().count() == 0


def test_inactive_and_anonymous_users_see_nothing(geo, people):
    inactive = UserFactory(is_active=False, national=True)

    assert scope_for(inactive) == EMPTY_SCOPE
    assert scope_for(AnonymousUser()) == EMPTY_SCOPE
    assert scope_for(None) == EMPTY_SCOPE
    assert visible(inactive, people) == set()


# --- several and nested assignments -----------------------------------------------------------


def test_nested_assignments_collapse_to_the_outermost(geo, people):
    user = UserFactory(locations=[geo.village_a, geo.district_a, geo.ward_a])

    assert scope_for(user).paths == (Location.objects.get(pk=geo.district_a.pk).path,)
    assert visible(user, people) == {"district_a", "ward_a", "village_a"}


def test_several_separate_assignments_add_up(geo, people):
    user = UserFactory(locations=[geo.ward_a, geo.village_b])

    assert len(scope_for(user).paths) == 2
    assert visible(user, people) == {"ward_a", "village_a", "village_b"}


def test_assigned_region_covers_every_district_under_it(geo, people):
    user = UserFactory(locations=[geo.region, geo.village_a])

    assert visible(user, people) == {
        "region",
        "district_a",
        "ward_a",
        "village_a",
        "district_b",
        "village_b",
    }


def test_similar_id_prefixes_do_not_leak():
    # "/7001/" must not match "/70010/".
    seven = Location.objects.create(pk=7001, code="P7001", name="7001")
    seventy = Location.objects.create(pk=70010, code="P70010", name="70010")
    child_of_seventy = LocationFactory(parent=seventy)
    inside = IndividualFactory(location=seven)
    IndividualFactory(location=seventy)
    IndividualFactory(location=child_of_seventy)
    user = UserFactory(locations=[seven])

    assert list(scope_for(user).filter(Individual.objects.all())) == [inside]
    assert not scope_for(user).allows(Location.objects.get(pk=70010))


# --- caching ----------------------------------------------------------------------------------


def test_scope_is_cached_until_forgotten(geo, people):
    user = UserFactory(locations=[geo.district_a])
    assert visible(user, people) == {"district_a", "ward_a", "village_a"}

    access_of(user).locations.set([geo.district_b])
    assert visible(user, people) == {"district_a", "ward_a", "village_a"}  # cached for the request

    forget_scope(user)
    assert visible(user, people) == {"district_b", "village_b"}


def test_totals_break_down_just_below_the_users_own_locations(geo):
    assert scope_for(UserFactory(role="Accountant", national=True)).breakdown_depth() == 1
    assert scope_for(UserFactory(role="Accountant", locations=[geo.region])).breakdown_depth() == 2
    assert scope_for(UserFactory(role="Accountant", locations=[geo.district_a])).breakdown_depth() == 3
    # Two places at different levels: broken down below the higher one.
    mixed = UserFactory(role="Accountant", locations=[geo.village_b, geo.other_region])
    assert scope_for(mixed).breakdown_depth() == 2
