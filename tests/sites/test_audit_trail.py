"""The audit trail (sites.views.AuditTrailView): an event, logged on the organisation settings, reads as
what it was about, on the page and in its exports; merges read with the fields' labels."""

import csv
import io
import re

import openpyxl
import pytest
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import reverse

from schemes.registry import services
from schemes.registry.models import Individual
from sites.audit import audit, audit_event
from sites.models import OrganisationSettings
from tests.factories import (
    HouseholdFactory,
    IndividualFactory,
    MembershipFactory,
    RegistryFieldFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def auditor(geo):
    """Reads the audit trail and sensitive values, for the whole country."""
    return UserFactory(username="auditor", role="System administrator", national=True)


def trail(user, **params):
    client = Client()
    client.force_login(user)
    return client.get(reverse("mizani_site_history"), params)


def rows_on_the_page(response):
    """[(name, type, action, details)] of the page's entries, as read."""
    html = response.content.decode()
    return [tuple(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", cell)).strip() for cell in cells[:4])
            for cells in (re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
                          for row in re.findall(r"<tr>(.*?)</tr>", html, re.S)) if cells]


def csv_rows(user, **params):
    response = trail(user, export="csv", **params)
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))


def xlsx_rows(user, **params):
    response = trail(user, export="xlsx", **params)
    content = b"".join(response.streaming_content) if response.streaming else response.content
    sheet = openpyxl.load_workbook(io.BytesIO(content)).active
    heading, *rows = sheet.iter_rows(values_only=True)
    return [dict(zip(heading, row, strict=True)) for row in rows]


# Events as the audit trail lists them: name and type.
EVENTS = {"Individuals export (CSV), 1 row": "Individuals", "Search by ID": "Individuals", "Login failed": "User",
          "Enrolment report export (CSV), 2 rows": "Report", "Maintenance": "Event"}


def test_an_event_reads_as_what_it_was_about_not_as_the_organisation_settings(geo, clerk_a, auditor):
    IndividualFactory(location=geo.village_a)
    Client().post(reverse("wagtailadmin_login"), {"username": "no-such-person", "password": "x"})
    client = Client()
    client.force_login(clerk_a)
    client.get(reverse("registry_individual:index"), {"export": "csv"})
    services.individual_search(queryset=Individual.objects.all(), text="AB-123456", by=clerk_a)
    audit_event("mizani.export", by=auditor, title="Enrolment report export (CSV), 2 rows",
                data={"what": "report: Enrolment", "report": "enrolment", "rows": 2})
    audit_event("mizani.maintenance", by=auditor, data={"task": "registry.duplicates_scan", "found": 0})

    types = {name: kind for name, kind, _, _ in rows_on_the_page(trail(auditor))}

    assert {name: types.get(name) for name in EVENTS} == EVENTS
    assert "Organisation settings" not in types.values()


def test_a_change_to_the_organisation_settings_still_reads_as_such(auditor):
    settings = OrganisationSettings.load()
    audit(settings, "wagtail.edit", by=auditor)
    audit_event("mizani.export", by=auditor, title="Individuals export (CSV), 0 rows",
                data={"model": "registry.Individual", "format": "csv", "rows": 0, "filters": {}})

    page = rows_on_the_page(trail(auditor, object_type=ContentType.objects.get_for_model(settings).pk))
    exported = {row["Name"]: row for row in csv_rows(auditor)}

    assert [(name, kind) for name, kind, _, _ in page] == [
        ("Individuals export (CSV), 0 rows", "Individuals"), (f"Organisation settings {settings.pk}",
                                                             "Organisation settings")]
    assert (exported[f"Organisation settings {settings.pk}"]["ID"],
            exported[f"Organisation settings {settings.pk}"]["Type"]) == (str(settings.pk), "Organisation settings")


@pytest.mark.parametrize("rows", [csv_rows, xlsx_rows])
def test_an_exported_event_has_no_record_id_and_its_type_is_what_it_was_about(geo, clerk_a, auditor, rows):
    person = IndividualFactory(location=geo.village_a)
    services.individual_update(individual=person, fields={"first_name": "Renamed"}, by=clerk_a)
    client = Client()
    client.force_login(clerk_a)
    client.get(reverse("registry_individual:index"), {"export": "xlsx"})

    exported = {row["Name"]: row for row in rows(auditor)}

    event, change = exported["Individuals export (XLSX), 1 row"], exported[f"Individual {person.pk}"]
    assert (event["ID"] or None, event["Type"]) == (None, "Individuals")
    assert (change["ID"], change["Type"]) == (str(person.pk), "Individual")
    assert list(next(iter(exported.values()))) == ["ID", "Name", "Type", "Action type", "User", "Date/Time", "Details"]


def test_a_merge_and_its_undoing_read_with_the_fields_labels_and_values_still_masked(
        geo, clerk_a, member_roles, auditor):
    RegistryFieldFactory(name="income", label="Monthly income")
    kept = IndividualFactory(location=geo.village_a, national_id=None, attributes={})
    duplicate = IndividualFactory(location=geo.village_a, national_id="NID99912345", attributes={"income": "1200"})
    MembershipFactory(household=HouseholdFactory(location=geo.village_a), individual=duplicate,
                      recipient_type="PRIMARY")
    plain = UserFactory(username="plain_auditor", role="Viewer", national=True)
    plain.user_permissions.add(*auditor.groups.get().permissions.filter(codename="view_audit"))

    merge = services.individual_merge(kept=kept, merged=duplicate, by=clerk_a)
    services.individual_unmerge(merge=merge, by=clerk_a)

    actions = {action for _, _, action, _ in rows_on_the_page(trail(auditor))}
    details = {row["Action type"]: row["Details"] for row in csv_rows(auditor, label=f"Individual {kept.pk}")}
    merged, undone = details["Merge"], details["Merge undone"]
    assert (f"Merged a duplicate record (individual {duplicate.pk}) into this one; filled from it: National ID, "
            "Monthly income") in actions
    assert (f"Undid the merge of a duplicate record (individual {duplicate.pk}) into this one; taken back from this "
            "record: National ID, Monthly income") in actions
    assert "changes: (Monthly income: —, 1200; National ID: —, ••••••••345)" in merged
    assert "filled: National ID, Monthly income" in merged
    assert "filled taken back: National ID, Monthly income" in undone
    assert "changes: (Monthly income: 1200, —; National ID: ••••••••345, —)" in undone
    every_page = trail(auditor).content.decode() + trail(plain).content.decode()
    exported = str(csv_rows(auditor))
    for raw in ("attributes.income", "national_id", "national id", "NID99912345"):
        assert raw not in every_page and raw not in exported, raw
    assert ("Membership returned by undoing a merge: individual "
            f"{duplicate.pk} took back its place from individual {kept.pk}") in every_page
    assert "Changed a household member&#x27;s role" not in every_page


# --- Security review (session 14): what the Details column shows, and to whom -----------------------

@pytest.fixture
def plain_auditor(geo):
    """Reads the audit trail, may not see sensitive values."""
    from django.contrib.auth.models import Permission

    user = UserFactory(username="plain_auditor", role="Viewer", national=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_audit", "change_organisationsettings"]))
    return user


def client_of(user):
    client = Client()
    client.force_login(user)
    return client


def test_a_national_id_searched_in_an_export_is_masked_in_the_details(geo, clerk_a, plain_auditor):
    IndividualFactory(location=geo.village_a, national_id="AB123456")
    b"".join(client_of(clerk_a).get(reverse("registry_individual:index"),
                                    {"q": "AB123456", "export": "csv"}).streaming_content)

    html = client_of(plain_auditor).get(reverse("mizani_site_history"), {"action": "mizani.export"}).content.decode()
    exported = b"".join(client_of(plain_auditor).get(reverse("mizani_site_history"),
                                                     {"export": "csv"}).streaming_content).decode("utf-8-sig")

    assert "Individuals export (CSV)" in html
    assert "AB123456" not in html and "AB123456" not in exported


def test_plan_data_of_a_field_made_sensitive_since_is_masked_in_the_details(geo, clerk_a, plain_auditor):
    from django.utils import timezone

    from schemes.plans import services as plan_services
    from schemes.plans.models import Beneficiary, BenefitPlan, PlanField

    plan = BenefitPlan.objects.create(code="CG", name="Child grant", status="ACTIVE")
    PlanField.objects.create(plan=plan, sort_order=0, name="card", label="Card number", field_type="integer")
    now = timezone.now()
    asha = Beneficiary.objects.create(plan=plan, individual=IndividualFactory(location=geo.village_a),
                                      attributes={"card": 7}, enrolled_at=now, status_changed_at=now)
    plan_services.beneficiary_update_attributes(beneficiary=asha, attributes={"card": 98765}, by=clerk_a)
    PlanField.objects.filter(plan=plan, name="card").update(sensitive=True)  # it holds card numbers

    html = client_of(plain_auditor).get(reverse("mizani_site_history")).content.decode()

    assert "98765" not in html


def test_the_audit_trail_is_for_national_readers_only(geo, clerk_b):
    """Its details name people and what changed in every location."""
    person = IndividualFactory(location=geo.village_b, first_name="Zawadi")
    services.individual_update(individual=person, fields={"first_name": "Zawadia"}, by=clerk_b)
    district_auditor = UserFactory(username="auditor_a", role="System administrator", locations=[geo.district_a])
    national_auditor = UserFactory(username="auditor_n", role="System administrator", national=True)

    refused = client_of(district_auditor).get(reverse("mizani_site_history"), follow=True)
    assert refused.redirect_chain and "Zawadia" not in refused.content.decode()
    assert "Audit trail" not in client_of(district_auditor).get(reverse("wagtailadmin_home")).content.decode()
    assert "Zawadia" in client_of(national_auditor).get(reverse("mizani_site_history")).content.decode()
