"""The payment forms: a payment point's location is picked in the location chooser among the user's
locations (sites.forms.ScopedRecordForm), never from a select of the whole tree."""

import pytest
from django.urls import reverse

from schemes.payments import services
from schemes.payments.models import PaymentPoint
from schemes.payments.viewsets import PointViewSet
from sites.choosers import LocationChooserWidget
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def district_accountant(geo):
    return UserFactory(username="accountant_a", role="Accountant", locations=[geo.district_a])


@pytest.fixture
def provider(superuser):
    return services.provider_create(fields={"code": "MPESA", "name": "M-Pesa"}, by=superuser)


def point_form(user, data=None, **kwargs):
    form_class = PointViewSet("payments_point").get_form_class()
    return form_class(data, for_user=user, **kwargs)


def point_data(provider, location, **overrides):
    return {"code": "P-A", "name": "Agent A", "provider": provider.pk, "location": location.pk, **overrides}


def test_the_point_form_offers_the_location_chooser_not_a_select_of_every_location(geo, district_accountant):
    form = point_form(district_accountant)
    html = form.as_div()

    assert isinstance(form.fields["location"].widget, LocationChooserWidget)
    assert reverse("location_chooser:choose") in html
    assert "data-mizani-chooser" in html  # started by static/mizani/chooser_init.js, no inline script
    assert "<script" not in html
    assert '<select name="location"' not in html
    assert geo.district_b.name not in html and geo.village_a.name not in html


def test_the_point_form_accepts_the_users_own_locations_only(geo, district_accountant):
    location = point_form(district_accountant).fields["location"]

    assert set(location.queryset) == {geo.district_a, geo.ward_a, geo.village_a}
    assert location.required


def test_a_location_outside_the_users_scope_is_refused_on_the_location_field(geo, district_accountant, provider):
    form = point_form(district_accountant, point_data(provider, geo.village_b))

    assert not form.is_valid()
    assert list(form.errors) == ["location"]


def test_a_point_keeps_its_location_when_edited(geo, district_accountant, provider):
    point = services.point_create(fields={"code": "P-A", "name": "Agent A", "provider": provider,
                                          "location": geo.village_a}, by=district_accountant)

    form = point_form(district_accountant, instance=point)

    assert form.initial["location"] == geo.village_a.pk
    assert f'value="{geo.village_a.pk}"' in form.as_div()


def test_an_edited_point_cannot_move_outside_the_users_scope(geo, district_accountant, provider):
    point = services.point_create(fields={"code": "P-A", "name": "Agent A", "provider": provider,
                                          "location": geo.village_a}, by=district_accountant)

    form = point_form(district_accountant, point_data(provider, geo.district_b), instance=point)

    assert not form.is_valid()
    assert "location" in form.errors
    assert PaymentPoint.objects.get(pk=point.pk).location == geo.village_a
