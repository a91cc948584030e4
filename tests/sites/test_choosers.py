import re

import pytest
from django.test import Client
from django.urls import reverse

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

CHOOSE, RESULTS, CHOSEN = "location_chooser:choose", "location_chooser:choose_results", "location_chooser:chosen"


def client_for(user):
    client = Client()
    client.force_login(user)
    return client


def listed(response):
    """The locations offered: the pks of the rows' "chosen" links."""
    assert response.status_code == 200
    html = response.json()["html"] if "json" in response["Content-Type"] else response.content.decode()
    return {int(pk) for pk in re.findall(r"/choose-location/chosen/(\d+)/", html)}


def test_the_chooser_lists_only_the_users_locations(geo, clerk_a):
    offered = listed(client_for(clerk_a).get(reverse(CHOOSE)))

    assert offered == {geo.district_a.pk, geo.ward_a.pk, geo.village_a.pk}


def test_national_users_choose_from_the_whole_tree(geo):
    offered = listed(client_for(UserFactory(role="Clerk", national=True)).get(reverse(CHOOSE)))

    assert {geo.village_a.pk, geo.village_b.pk, geo.other_village.pk} <= offered


def test_the_chooser_searches_names_and_codes_within_scope(geo, clerk_a):
    client = client_for(clerk_a)

    by_name = listed(client.get(reverse(RESULTS), {"q": geo.village_a.name[-4:]}))
    by_code = listed(client.get(reverse(RESULTS), {"q": geo.ward_a.code}))
    elsewhere = listed(client.get(reverse(RESULTS), {"q": geo.village_b.name}))

    assert by_name == {geo.village_a.pk}
    assert by_code == {geo.ward_a.pk}
    assert elsewhere == set()


def test_choosing_a_location_outside_scope_is_not_found(geo, clerk_a):
    client = client_for(clerk_a)

    assert client.get(reverse(CHOSEN, args=[geo.village_a.pk])).status_code == 200
    assert client.get(reverse(CHOSEN, args=[geo.village_b.pk])).status_code == 404


def test_forms_pick_the_location_in_the_chooser_not_a_select_of_every_location(geo, clerk_a):
    html = client_for(clerk_a).get(reverse("registry_individual:add")).content.decode()

    assert reverse(CHOOSE) in html
    assert f'<option value="{geo.village_a.pk}"' not in html


def test_a_crafted_location_outside_scope_is_still_refused(geo, clerk_a):
    response = client_for(clerk_a).post(reverse("registry_individual:add"), {
        "first_name": "Asha", "last_name": "Mrisho", "dob": "1990-01-01", "sex": "F",
        "national_id": "", "phone": "", "location": geo.village_b.pk})

    assert response.status_code == 200
    assert "location" in response.context["form"].errors


def test_choosing_several_returns_only_the_users_locations(geo, clerk_a):
    response = client_for(clerk_a).get(reverse("location_chooser:chosen_multiple"),
                                       {"id": [geo.village_a.pk, geo.village_b.pk]})

    assert [int(item["id"]) for item in response.json()["result"]] == [geo.village_a.pk]


def test_administrators_who_may_add_locations_still_get_the_plain_chooser(geo, superuser):
    response = client_for(superuser).get(reverse(CHOOSE))

    assert response.status_code == 200 and "Create" not in response.json()["html"]
