"""Only a superuser makes, edits or deletes a superuser (the Wagtail user admin as Mizani serves it)."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
User = get_user_model()


def client_for(user):
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def sysadmin(db):
    return UserFactory(username="sys", role="System administrator", national=True)


def new_user_form(**extra):
    return {"username": "newbie", "email": "newbie@example.org", "first_name": "New", "last_name": "Bie",
            "password1": "a-long-Passw0rd!x", "password2": "a-long-Passw0rd!x", **extra}


def test_a_system_administrator_cannot_create_a_superuser(sysadmin):
    client = client_for(sysadmin)

    form_page = client.get(reverse("wagtailusers_users:add"))
    client.post(reverse("wagtailusers_users:add"), new_user_form(is_superuser="on"))

    assert "is_superuser" not in form_page.context["form"].fields
    created = User.objects.get(username="newbie")
    assert not created.is_superuser


def test_a_system_administrator_cannot_edit_or_delete_a_superuser(sysadmin):
    root = UserFactory(username="root", is_superuser=True)
    client = client_for(sysadmin)

    for name in ("wagtailusers_users:edit", "wagtailusers_users:delete"):
        response = client.post(reverse(name, args=[root.pk]), {"username": "root", "email": "x@example.org",
                                                               "is_superuser": "", "is_active": ""})
        assert response.status_code in (302, 403)
        root.refresh_from_db()
        assert root.is_superuser and root.is_active


def test_a_superuser_can_create_a_superuser(db):
    root = UserFactory(username="root", is_superuser=True)

    client_for(root).post(reverse("wagtailusers_users:add"), new_user_form(is_superuser="on"))

    assert User.objects.get(username="newbie").is_superuser


def bulk(client, action, users, **data):
    url = reverse("wagtail_bulk_action", args=[User._meta.app_label, "user", action])
    return client.post(f"{url}?{'&'.join(f'id={user.pk}' for user in users)}", data)


def test_a_system_administrator_cannot_deactivate_regroup_or_delete_a_superuser_in_bulk(sysadmin):
    """The listing's bulk actions are another path to the same change (Wagtail's own let a System
    administrator lock every superuser out)."""
    root, clerk = UserFactory(username="root", is_superuser=True), UserFactory(username="clerk", role="Clerk")
    client = client_for(sysadmin)

    bulk(client, "set_active_state", [root, clerk], mark_as_active="False")
    bulk(client, "assign_role", [root, clerk], role=root.groups.model.objects.get(name="Viewer").pk)
    bulk(client, "delete", [root])

    root.refresh_from_db()
    clerk.refresh_from_db()
    assert root.is_active and not root.groups.exists()
    assert not clerk.is_active and clerk.groups.filter(name="Viewer").exists()  # others still change
    page = client.get(reverse("wagtail_bulk_action", args=[User._meta.app_label, "user", "set_active_state"]),
                      {"id": root.pk}).content.decode()
    assert "root" in page and "You don't have permission" in page


def test_a_superuser_can_deactivate_a_superuser_in_bulk(db):
    root, other = UserFactory(username="root", is_superuser=True), UserFactory(username="other", is_superuser=True)

    bulk(client_for(root), "set_active_state", [other], mark_as_active="False")

    other.refresh_from_db()
    assert not other.is_active
