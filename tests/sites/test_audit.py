import csv
import datetime
import io
import json
import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.urls import reverse
from django.utils.html import escape
from wagtail.admin.admin_url_finder import AdminURLFinder
from wagtail.log_actions import LogContext
from wagtail.models import ModelLogEntry

from schemes.registry import services
from schemes.registry.models import Household, Individual
from sites.audit import ACTIONS, audit, audit_details, audit_event, audit_title
from sites.models import OrganisationSettings, UserAccess
from tests.factories import PASSWORD, IndividualFactory, RegistryFieldFactory, UserFactory

pytestmark = pytest.mark.django_db

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the append-only trigger exists on PostgreSQL only"
)


def entries_for(instance):
    return ModelLogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(instance, for_concrete_model=False),
        object_id=str(instance.pk),
    ).order_by("timestamp", "id")


PERSON = {
    "first_name": "Zawadi",
    "last_name": "Kamau",
    "dob": datetime.date(1985, 3, 4),
    "sex": "F",
}


# --- the writer -------------------------------------------------------------------------------


def test_audit_title_is_neutral():
    person = IndividualFactory(first_name="Zawadi", last_name="Kamau")

    assert audit_title(person) == f"Individual {person.pk}"


def test_audit_writes_one_entry_with_user_and_data(clerk_a):
    person = IndividualFactory(first_name="Zawadi", last_name="Kamau")

    entry = audit(person, "mizani.view", by=clerk_a, data={"reason": "check"})

    assert ModelLogEntry.objects.filter(action="mizani.view").count() == 1
    assert entry.user_id == clerk_a.pk
    assert entry.label == f"Individual {person.pk}"
    assert entry.action == "mizani.view"
    assert entry.data == {"reason": "check"}
    assert entry.object_id == str(person.pk)


def test_audit_event_is_logged_on_the_organisation_settings():
    entry = audit_event("mizani.search_id", data={"national_id": "AB123456"})

    assert entry.content_type == ContentType.objects.get_for_model(OrganisationSettings)
    assert entry.object_id == str(OrganisationSettings.load().pk)
    assert entry.user_id is None
    assert entry.label == "Search by ID"  # what it was about, not "Organisation settings 1"


def test_every_mizani_action_is_registered_with_wagtail():
    from wagtail.log_actions import registry

    for action, (label, _) in ACTIONS.items():
        assert registry.action_exists(action)
        assert registry.get_action_label(action) == label


# --- entries written by the services ----------------------------------------------------------


def test_create_update_delete_restore_are_audited_with_neutral_titles(clerk_a, geo):
    person = services.individual_create(
        fields={**PERSON, "location": geo.village_a, "national_id": "AB-123456"}, by=clerk_a
    )
    services.individual_update(individual=person, fields={"first_name": "Wanjiru"}, by=clerk_a)
    services.individual_soft_delete(individual=person, by=clerk_a)
    services.individual_restore(individual=person, by=clerk_a)

    entries = list(entries_for(person))
    assert [e.action for e in entries] == [
        "wagtail.create",
        "wagtail.edit",
        "mizani.soft_delete",
        "mizani.restore",
    ]
    assert {e.label for e in entries} == {f"Individual {person.pk}"}
    assert {e.user_id for e in entries} == {clerk_a.pk}
    for entry in entries:
        assert (
            "Zawadi" not in entry.label
            and "Kamau" not in entry.label
            and "Wanjiru" not in entry.label
        )
    # The create entry carries no personal data at all.
    assert entries[0].data == {}


def test_household_entries_are_neutral(clerk_a, geo, member_roles):
    household = services.household_create(
        fields={"code": "HH-KAMAU", "location": geo.village_a}, by=clerk_a
    )
    person = IndividualFactory(first_name="Zawadi", last_name="Kamau", location=geo.village_a)
    services.household_add_member(household=household, individual=person, by=clerk_a)

    entries = list(entries_for(household))
    assert [e.action for e in entries] == ["wagtail.create", "mizani.member_add"]
    assert {e.label for e in entries} == {f"Household {household.pk}"}
    assert entries[1].data == {"individual": person.pk, "role": "HEAD", "recipient_type": "PRIMARY"}
    assert "Kamau" not in json.dumps([e.data for e in entries])


def test_update_entry_holds_changed_fields_with_sensitive_values_masked(clerk_a, geo):
    RegistryFieldFactory(name="income", field_type="decimal", sensitive=True)
    RegistryFieldFactory(name="children", field_type="integer")
    person = services.individual_create(
        fields={
            **PERSON,
            "location": geo.village_a,
            "national_id": "NID-0001-2345",
            "phone": "+254700111222",
        },
        attributes={"income": "1500.00", "children": "2"},
        by=clerk_a,
    )

    services.individual_update(
        individual=person,
        fields={
            "national_id": "NID-0001-9999",
            "phone": "+254700333444",
            "dob": datetime.date(1985, 3, 5),
        },
        attributes={"income": "2500.00", "children": "3"},
        by=clerk_a,
    )

    entry = entries_for(person).get(action="wagtail.edit")
    changes = entry.data["changes"]
    assert set(changes) == {
        "national_id",
        "phone",
        "dob",
        "attributes.income",
        "attributes.children",
    }
    assert changes["dob"] == ["1985-03-04", "1985-03-05"]
    assert changes["attributes.children"] == ["2", "3"]
    assert changes["national_id"] == ["••••••••345", "••••••••999"]
    assert changes["phone"] == ["••••••••••222", "••••••••••444"]
    assert changes["attributes.income"] == ["••••", "••••"]  # short values are hidden entirely
    raw = json.dumps(entry.data, ensure_ascii=False)
    for secret in ("NID00012345", "NID00019999", "+254700111222", "+254700333444", "1500", "2500"):
        assert secret not in raw


def test_update_without_changes_writes_no_entry(clerk_a, geo):
    person = services.individual_create(fields={**PERSON, "location": geo.village_a}, by=clerk_a)

    services.individual_update(individual=person, fields={"first_name": " Zawadi "}, by=clerk_a)

    assert list(entries_for(person).values_list("action", flat=True)) == ["wagtail.create"]


def test_a_refused_change_writes_no_entry(clerk_a, geo):
    before = ModelLogEntry.objects.count()

    with pytest.raises(PermissionDenied):
        services.individual_create(fields={**PERSON, "location": geo.village_b}, by=clerk_a)
    with pytest.raises(ValidationError):
        services.individual_create(
            fields={**PERSON, "dob": datetime.date(2999, 1, 1), "location": geo.village_a},
            by=clerk_a,
        )

    assert ModelLogEntry.objects.count() == before
    assert Individual.objects.count() == 0 and Household.objects.count() == 0


# --- logins -----------------------------------------------------------------------------------


def login(client, username, password):
    return client.post(reverse("wagtailadmin_login"), {"username": username, "password": password})


def test_successful_login_is_audited(client):
    user = UserFactory(username="amina", role="Clerk")

    response = login(client, "amina", PASSWORD)

    assert response.status_code == 302
    entries = list(entries_for(user).exclude(action="mizani.access_change"))
    assert [e.action for e in entries] == ["mizani.login"]
    assert entries[0].user_id == user.pk
    assert entries[0].label == f"User {user.pk}"
    assert entries[0].data == {"ip": "127.0.0.1"}


def test_failed_login_for_a_known_user_is_audited_on_that_user(client):
    user = UserFactory(username="amina", role="Clerk")

    response = login(client, "amina", "wrong-password")

    assert response.status_code == 200  # the form again, with an error
    assert "_auth_user_id" not in client.session
    entries = list(entries_for(user).exclude(action="mizani.access_change"))
    assert [e.action for e in entries] == ["mizani.login_failed"]
    assert entries[0].user_id is None
    assert entries[0].data == {"username": "amina", "ip": "127.0.0.1"}
    assert "wrong-password" not in json.dumps(entries[0].data)


def test_failed_login_for_an_unknown_username_is_audited_as_an_event(client):
    response = login(client, "no-such-person", "whatever-password")

    assert response.status_code == 200
    entries = ModelLogEntry.objects.filter(action="mizani.login_failed")
    assert entries.count() == 1
    entry = entries.get()
    assert entry.content_type == ContentType.objects.get_for_model(OrganisationSettings)
    assert entry.data == {"username": "no-such-person", "ip": "127.0.0.1"}
    assert entry.user_id is None
    assert not get_user_model().objects.filter(username="no-such-person").exists()


def test_each_failed_attempt_is_one_entry(client):
    UserFactory(username="amina")

    for _ in range(3):
        login(client, "amina", "nope-nope-nope")

    assert ModelLogEntry.objects.filter(action="mizani.login_failed").count() == 3
    assert ModelLogEntry.objects.filter(action="mizani.login").count() == 0


# --- append-only on PostgreSQL ----------------------------------------------------------------


@postgresql_only
def test_audit_rows_cannot_be_updated(clerk_a):
    entry = audit(IndividualFactory(), "mizani.view", by=clerk_a)

    with pytest.raises(DatabaseError, match="append-only"):
        with transaction.atomic():
            ModelLogEntry.objects.filter(pk=entry.pk).update(label="rewritten")

    entry.action = "mizani.export"
    with pytest.raises(DatabaseError, match="append-only"):
        with transaction.atomic():
            entry.save()

    assert ModelLogEntry.objects.get(pk=entry.pk).label == entry.label
    assert ModelLogEntry.objects.get(pk=entry.pk).action == "mizani.view"


@postgresql_only
def test_audit_rows_cannot_be_deleted(clerk_a):
    entry = audit(IndividualFactory(), "mizani.view", by=clerk_a)

    with pytest.raises(DatabaseError, match="append-only"):
        with transaction.atomic():
            ModelLogEntry.objects.filter(pk=entry.pk).delete()
    with pytest.raises(DatabaseError, match="append-only"):
        with transaction.atomic():
            ModelLogEntry.objects.get(pk=entry.pk).delete()

    assert ModelLogEntry.objects.filter(pk=entry.pk).exists()


@postgresql_only
def test_audit_rows_can_still_be_added():
    audit_event("mizani.export", data={"rows": 1})
    audit_event("mizani.export", data={"rows": 2})

    assert ModelLogEntry.objects.filter(action="mizani.export").count() == 2


# --- who may do what, and where ---------------------------------------------------------------


def test_role_and_location_changes_are_audited_with_the_actor(geo, clerk_a):
    admin = UserFactory(role="System administrator", national=True)
    user = UserFactory()
    with LogContext(user=admin):
        user.groups.add(Group.objects.get(name="Checker"))
        Group.objects.get(name="Viewer").user_set.add(user)
        access = UserAccess.objects.create(user=user)
        access.locations.add(geo.district_a)
        access.locations.remove(geo.district_a)

    changes = [e.data for e in entries_for(user).filter(action="mizani.access_change", user=admin)]
    assert {"roles_add": ["Checker"]} in changes
    assert {"roles_add": ["Viewer"]} in changes
    assert {"locations_add": [geo.district_a.code]} in changes
    assert {"locations_remove": [geo.district_a.code]} in changes


def test_superuser_and_active_flags_and_role_permissions_are_audited(db):
    admin = UserFactory(is_superuser=True)
    user = UserFactory()
    role = Group.objects.get(name="Viewer")
    with LogContext(user=admin):
        user.is_superuser = True
        user.is_active = False
        user.save()
        role.permissions.add(Permission.objects.get(codename="view_audit"))

    assert {"is_superuser": True, "is_active": False} in [
        e.data for e in entries_for(user).filter(action="mizani.access_change", user=admin)]
    assert entries_for(role).filter(action="mizani.access_change", user=admin,
                                    data__permissions_add=["sites.view_audit"]).exists()


# --- the audit trail: what each entry was about ------------------------------------------------


def test_audit_details_read_as_key_value_pairs_nested_in_brackets():
    data = {"model": "registry.Individual", "rows": 59, "filters": {"status": "deleted", "sex": ["F", "M"]},
            "changes": {"phone": ["••••••••222", "••••••••444"]}, "empty": {}, "missing": None}

    assert audit_details(data, show_sensitive=True) == (
        "changes: (phone: ••••••••222, ••••••••444); empty: none; filters: (sex: F, M; status: deleted); "
        "missing: —; model: registry.Individual; rows: 59")
    assert audit_details({}, show_sensitive=True) == ""


def test_audit_details_mask_a_searched_national_id_for_a_reader_who_may_not_see_it():
    data = {"national_id": "NID00012345"}

    assert audit_details(data, show_sensitive=True) == "national id: NID00012345"
    assert audit_details(data, show_sensitive=False) == "national id: ••••••••345"


def client_for(user):
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def auditor(geo):
    """A system administrator for the whole country: reads the audit trail and sensitive values."""
    return UserFactory(username="auditor", role="System administrator", national=True)


def trail(user, **params):
    return client_for(user).get(reverse("mizani_site_history"), params)


def test_an_export_is_audited_under_what_was_exported_with_the_location_filter_named(geo, clerk_a):
    IndividualFactory.create_batch(2, location=geo.village_a)
    IndividualFactory(location=geo.village_b)

    client_for(clerk_a).get(reverse("registry_individual:index"), {"location": geo.district_a.pk, "export": "csv"})

    entry = ModelLogEntry.objects.get(action="mizani.export")
    assert entry.label == "Individuals export (CSV), 2 rows"
    assert entry.data == {"model": "registry.Individual", "format": "csv", "rows": 2, "filters": {
        "location": str(geo.district_a.pk), "location_code": geo.district_a.code,
        "location_name": geo.district_a.name}}


def test_the_audit_trail_shows_each_entrys_details_and_does_not_link_an_event_to_the_settings(
        geo, clerk_a, auditor):
    IndividualFactory(location=geo.village_a)
    client_for(clerk_a).get(reverse("registry_individual:index"), {"location": geo.district_a.pk,
                                                                   "status": "deleted", "export": "xlsx"})
    link = f'<a href="{AdminURLFinder(auditor).get_edit_url(OrganisationSettings.load())}"'

    response = trail(auditor, action="mizani.export")
    html = response.content.decode()
    audit(OrganisationSettings.load(), "wagtail.edit", by=auditor)

    assert response.status_code == 200
    assert "Individuals export (XLSX), 0 rows" in html and "Organisation settings 1" not in html
    assert link not in html
    assert link in trail(auditor, action="wagtail.edit").content.decode()  # a change to the settings is linked
    assert (f"filters: (location: {geo.district_a.pk}; location code: {geo.district_a.code}; location name: "
            f"{geo.district_a.name}; status: deleted); format: xlsx; model: registry.Individual; rows: 0") in html


def test_the_audit_trail_escapes_details_shortens_them_on_the_page_and_exports_them_whole(auditor):
    hostile = "<img src=x onerror=alert(1)>"
    audit_event("mizani.export", by=auditor, title="Report export (CSV), 1 row",
                data={"what": f"report: {hostile}", "note": "x" * 300, "formula": "=1+1"})
    details = f"formula: =1+1; note: {'x' * 300}; what: report: {hostile}"

    html = trail(auditor).content.decode()
    export = client_for(auditor).get(reverse("mizani_site_history"), {"export": "csv"})
    rows = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode("utf-8-sig"))))

    [(whole, shown)] = [cell for cell in re.findall(r'<td data-testid="audit-details" title="([^"]*)">([^<]*)</td>',
                                                      html) if "report:" in cell[0]]
    assert hostile not in html
    assert shown == escape(details[:159]) + "…"  # 160 characters as read
    assert whole == escape(details)
    [row] = [row for row in rows if row["Name"] == "Report export (CSV), 1 row"]
    assert row["Details"] == details
    assert list(rows[0]) == ["ID", "Name", "Type", "Action type", "User", "Date/Time", "Details"]


def test_the_audit_trail_masks_a_searched_national_id_for_an_auditor_who_may_not_see_it(geo, clerk_a, auditor):
    services.individual_search(queryset=Individual.objects.all(), text="AB-123456", by=clerk_a)
    plain_auditor = UserFactory(username="plain_auditor", role="Viewer", national=True)
    # Wagtail lists the entries of the models one has a permission on: events are on the settings.
    plain_auditor.user_permissions.add(*Permission.objects.filter(codename__in=[
        "view_audit", "change_organisationsettings"]))

    assert "national id: AB123456" in trail(auditor).content.decode()
    masked = trail(plain_auditor).content.decode()
    assert "national id: •••••456" in masked and "AB123456" not in masked
