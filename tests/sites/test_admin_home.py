"""The admin's home and menus as a scheme's staff see them."""

import pytest
from django.test import Client
from django.urls import reverse

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_the_home_page_and_help_menu_do_not_send_staff_to_wagtails_own_guides(geo):
    client = Client()
    client.force_login(UserFactory(role="Clerk", locations=[geo.district_a]))

    page = client.get(reverse("wagtailadmin_home")).content.decode()

    assert "editor guide" not in page.lower() and "Editor Guide" not in page
    assert "What's new in Wagtail" not in page and "wagtail.org" not in page
