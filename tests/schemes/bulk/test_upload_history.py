"""The upload history's filters offer only what the user may read."""

import pytest
from django.test import Client
from django.urls import reverse

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_the_upload_history_offers_payroll_names_only_to_those_who_may_read_payrolls(approved_payroll, geo):
    clerk = UserFactory(username="clerk_uploads", role="Clerk", locations=[geo.district_a])
    client = Client()
    client.force_login(clerk)

    page = client.get(reverse("bulk_upload:index"))

    assert page.status_code == 200 and approved_payroll.name not in page.content.decode()
