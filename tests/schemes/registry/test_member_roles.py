"""Member roles: administrators add and rename them; Head and Member are built in (imports and
households need them) and a role members hold is not deleted from under them."""

import pytest
from django.urls import reverse

from schemes.registry.models import MemberRole
from tests.factories import HouseholdFactory, IndividualFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def delete_url(code):
    return reverse("registry_memberrole:delete", args=[code])


@pytest.mark.parametrize("code", [MemberRole.HEAD, MemberRole.MEMBER])
def test_a_built_in_role_is_not_deleted_and_the_page_says_why(client, superuser, member_roles, code):
    client.force_login(superuser)

    page = client.get(delete_url(code))
    response = client.post(delete_url(code), follow=True)

    assert "is built in:" in page.content.decode() and "Rename it instead." in page.content.decode()
    assert "Yes, delete" not in page.content.decode()
    assert MemberRole.objects.filter(pk=code).exists()
    assert "is built in" in response.content.decode()


def test_a_role_members_hold_is_not_deleted(client, superuser, member_roles):
    household = HouseholdFactory()
    for _ in range(2):
        MembershipFactory(household=household, individual=IndividualFactory(), role=member_roles["SON"])
    client.force_login(superuser)

    page = client.get(delete_url("SON"))
    client.post(delete_url("SON"))

    assert "2 household members have the role Son: give them another role first." in page.content.decode()
    assert MemberRole.objects.filter(pk="SON").exists()


def test_a_role_no_one_holds_is_deleted(client, superuser, member_roles):
    client.force_login(superuser)

    assert "Yes, delete" in client.get(delete_url("GRANDFATHER")).content.decode()
    client.post(delete_url("GRANDFATHER"))

    assert not MemberRole.objects.filter(pk="GRANDFATHER").exists()


@pytest.fixture
def scheme_admin(db):
    return UserFactory(username="scheme_admin", role="Scheme administrator", national=True)


def test_a_scheme_administrator_deletes_a_role_no_one_holds(client, scheme_admin, member_roles):
    client.force_login(scheme_admin)

    assert "Yes, delete" in client.get(delete_url("GRANDFATHER")).content.decode()
    client.post(delete_url("GRANDFATHER"))

    assert not MemberRole.objects.filter(pk="GRANDFATHER").exists()


@pytest.mark.parametrize("code", [MemberRole.HEAD, MemberRole.MEMBER, "SON"])
def test_a_scheme_administrator_still_cannot_delete_a_built_in_role_or_one_members_hold(
        client, scheme_admin, member_roles, code):
    MembershipFactory(household=HouseholdFactory(), individual=IndividualFactory(), role=member_roles["SON"])
    client.force_login(scheme_admin)

    page = client.get(delete_url(code))
    client.post(delete_url(code))

    assert page.status_code == 200 and "Yes, delete" not in page.content.decode()
    assert MemberRole.objects.get(pk=code).delete_problem() in page.content.decode()
