import pytest
from django.contrib.auth.models import Group, Permission

from sites.roles import ROLE_PERMISSIONS, ensure_roles
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

EXPECTED_ROLES = {
    "System administrator",
    "Scheme administrator",
    "Clerk",
    "Checker",
    "Accountant",
    "Manager",
    "Viewer",
    "Payment provider (API)",
}


def permission_names(group):
    return {
        f"{p.content_type.app_label}.{p.codename}"
        for p in group.permissions.select_related("content_type")
    }


def test_every_role_group_exists_after_migrate_with_its_preset():
    groups = {group.name: group for group in Group.objects.filter(name__in=EXPECTED_ROLES)}

    assert set(groups) == EXPECTED_ROLES
    for name, expected in ROLE_PERMISSIONS.items():
        assert permission_names(groups[name]) == set(expected), name


@pytest.mark.parametrize(
    "role, allowed, refused",
    [
        (
            "Clerk",
            {
                "registry.add_individual",
                "registry.change_household",
                "registry.delete_membership",
                "registry.view_sensitive_data",
                "wagtailadmin.access_admin",
            },
            {"auth.change_user", "sites.view_audit", "registry.add_registryfield"},
        ),
        (
            "Viewer",
            {"registry.view_individual", "registry.view_household", "sites.view_location"},
            {
                "registry.add_individual",
                "registry.change_individual",
                "registry.delete_individual",
                "registry.view_sensitive_data",
            },
        ),
        (
            "Scheme administrator",
            {"registry.add_registryfield", "registry.change_memberrole", "registry.delete_memberrole"},
            {"registry.add_individual", "registry.view_sensitive_data", "auth.change_user"},
        ),
        (
            "System administrator",
            {
                "auth.change_user",
                "sites.change_useraccess",
                "sites.view_audit",
                "sites.import_location",
            },
            {"registry.add_individual", "registry.change_individual"},
        ),
        (
            "Manager",
            {"registry.view_individual"},
            {"registry.view_sensitive_data", "registry.add_household"},
        ),
    ],
)
def test_role_members_get_exactly_the_preset_rights(role, allowed, refused):
    user = UserFactory(role=role)

    assert {perm for perm in allowed if user.has_perm(perm)} == allowed
    assert {perm for perm in refused if user.has_perm(perm)} == set()


def test_ensure_roles_keeps_an_administrators_edits():
    viewer = Group.objects.get(name="Viewer")
    removed = Permission.objects.get(content_type__app_label="registry", codename="view_household")
    added = Permission.objects.get(
        content_type__app_label="registry", codename="view_sensitive_data"
    )
    viewer.permissions.remove(removed)
    viewer.permissions.add(added)
    edited = permission_names(viewer)

    assert ensure_roles() == []

    assert permission_names(Group.objects.get(name="Viewer")) == edited
    assert "registry.view_sensitive_data" in edited and "registry.view_household" not in edited


def test_ensure_roles_reset_restores_every_preset():
    viewer = Group.objects.get(name="Viewer")
    viewer.permissions.clear()
    Group.objects.get(name="Clerk").permissions.add(
        Permission.objects.get(content_type__app_label="auth", codename="delete_user")
    )

    assert set(ensure_roles(reset=True)) == EXPECTED_ROLES

    for name, expected in ROLE_PERMISSIONS.items():
        assert permission_names(Group.objects.get(name=name)) == set(expected), name


def test_ensure_roles_recreates_a_deleted_group_only():
    Group.objects.get(name="Checker").delete()
    Group.objects.get(name="Viewer").permissions.clear()

    assert ensure_roles() == ["Checker"]

    assert permission_names(Group.objects.get(name="Checker")) == set(ROLE_PERMISSIONS["Checker"])
    assert permission_names(Group.objects.get(name="Viewer")) == set()


def test_ensure_roles_is_idempotent():
    before = {g.name: permission_names(g) for g in Group.objects.filter(name__in=EXPECTED_ROLES)}

    ensure_roles()
    ensure_roles()

    assert Group.objects.filter(name__in=EXPECTED_ROLES).count() == len(EXPECTED_ROLES)
    assert {
        g.name: permission_names(g) for g in Group.objects.filter(name__in=EXPECTED_ROLES)
    } == before


def test_unknown_permission_in_a_preset_is_an_error(monkeypatch):
    monkeypatch.setitem(ROLE_PERMISSIONS, "Broken", ["registry.fly_to_the_moon"])

    with pytest.raises(LookupError, match="registry.*fly_to_the_moon"):
        ensure_roles()
    assert not Group.objects.filter(name="Broken").exists()  # the whole call rolled back


def test_a_permission_added_to_a_preset_later_is_granted_once(monkeypatch):
    ensure_roles()
    viewer = Group.objects.get(name="Viewer")
    added = "sites.view_audit"
    monkeypatch.setitem(ROLE_PERMISSIONS, "Viewer", [*ROLE_PERMISSIONS["Viewer"], added])

    ensure_roles()
    assert viewer.permissions.filter(codename="view_audit").exists()

    viewer.permissions.remove(viewer.permissions.get(codename="view_audit"))  # an administrator's choice
    ensure_roles()
    assert not viewer.permissions.filter(codename="view_audit").exists()


def test_scheme_administrators_of_an_installation_made_before_get_delete_memberrole_at_migrate():
    """The preset gained registry.delete_memberrole later: ensure_roles (run after every migrate) grants it
    to the existing group, which no data migration needs to do."""
    from sites.models import RolePreset

    group = Group.objects.get(name="Scheme administrator")
    group.permissions.remove(Permission.objects.get(content_type__app_label="registry", codename="delete_memberrole"))
    preset = RolePreset.objects.get(group=group)
    preset.granted = [name for name in preset.granted if name != "registry.delete_memberrole"]
    preset.save()

    assert ensure_roles() == []

    assert "registry.delete_memberrole" in permission_names(group)
