"""The registry's admin screens, driven through django.test.Client as the people who use them."""

import csv
import datetime
import io
from types import SimpleNamespace

import openpyxl
import pytest
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from wagtail.models import ModelLogEntry

from schemes.registry.models import Individual, MemberRole, Membership
from tests.factories import (
    HouseholdFactory,
    IndividualFactory,
    LocationFactory,
    MembershipFactory,
    RegistryFieldFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

INDEX = "registry_individual:index"


def client_for(user):
    client = Client()
    client.force_login(user)
    return client


def listed(response):
    """The records on the page the index view rendered."""
    assert response.status_code == 200, response.status_code
    return list(response.context["object_list"])


def body(response):
    raw = b"".join(response.streaming_content) if response.streaming else response.content
    return raw.decode("utf-8-sig")  # a CSV starts with the BOM


def csv_rows(response):
    assert response.status_code == 200
    return list(csv.DictReader(io.StringIO(body(response))))


def entries(action, instance=None):
    queryset = ModelLogEntry.objects.filter(action=action)
    if instance is not None:
        queryset = queryset.filter(content_type=ContentType.objects.get_for_model(instance),
                                   object_id=str(instance.pk))
    return queryset.order_by("timestamp", "id")


def messages_of(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def today_minus(years, days=0):
    today = timezone.localdate()
    try:
        day = today.replace(year=today.year - years)
    except ValueError:
        day = today.replace(year=today.year - years, day=28)
    return day - datetime.timedelta(days=days)


def person_form(location, **overrides):
    data = {"first_name": "Neema", "last_name": "Mollel", "dob": "1990-05-17", "sex": "F",
            "national_id": "", "phone": "", "location": location.pk}
    data.update(overrides)
    return data


# --- list, pagination, search, filters, sorting -------------------------------------------------

def test_list_shows_the_users_scope_with_pagination(geo, clerk_a):
    IndividualFactory.create_batch(27, location=geo.village_a)
    outside = IndividualFactory(location=geo.village_b, last_name="Outsider")
    client = client_for(clerk_a)

    first = client.get(reverse(INDEX))
    assert len(listed(first)) == 25
    assert first.context["items_count"] == 27
    second = client.get(reverse(INDEX) + "?p=2")
    assert len(listed(second)) == 2
    shown = {p.pk for p in listed(first) + listed(second)}
    assert len(shown) == 27
    assert outside.pk not in shown
    assert "Outsider" not in body(first) + body(second)


def test_search_by_national_id_is_exact_after_normalisation(geo, clerk_a):
    wanted = IndividualFactory(national_id="123456", location=geo.village_a)
    IndividualFactory(national_id="1234567", location=geo.village_a)
    IndividualFactory(national_id="9123456", location=geo.village_a)
    client = client_for(clerk_a)

    for query in ("12-34-56", "123456", " 12-34-56 ", "12.34.56", "１２３４５６"):
        assert [p.pk for p in listed(client.get(reverse(INDEX), {"q": query}))] == [wanted.pk], query
    assert listed(client.get(reverse(INDEX), {"q": "12345"})) == []


def test_search_by_name_words(geo, clerk_a):
    alicia = IndividualFactory(first_name="Alicia", last_name="Ambergris", location=geo.village_a)
    IndividualFactory(first_name="Alicia", last_name="Otieno", location=geo.village_a)
    IndividualFactory(first_name="Bakari", last_name="Ambergris", location=geo.village_a)
    client = client_for(clerk_a)

    assert [p.pk for p in listed(client.get(reverse(INDEX), {"q": "ali amber"}))] == [alicia.pk]
    assert [p.pk for p in listed(client.get(reverse(INDEX), {"q": "AMBERGRIS alicia"}))] == [alicia.pk]
    assert len(listed(client.get(reverse(INDEX), {"q": "ambergris"}))) == 2
    assert listed(client.get(reverse(INDEX), {"q": "alicia zzz"})) == []


def test_filter_by_location_takes_the_subtree(geo, clerk_a):
    in_village = IndividualFactory(location=geo.village_a)
    in_ward = IndividualFactory(location=geo.ward_a)
    in_district = IndividualFactory(location=geo.district_a)
    client = client_for(clerk_a)

    def filtered(location):
        return {p.pk for p in listed(client.get(reverse(INDEX), {"location": location.pk}))}

    assert filtered(geo.district_a) == {in_village.pk, in_ward.pk, in_district.pk}
    assert filtered(geo.ward_a) == {in_village.pk, in_ward.pk}
    assert filtered(geo.village_a) == {in_village.pk}


def test_filter_by_sex_and_age_band(geo, clerk_a):
    toddler = IndividualFactory(sex="F", dob=today_minus(2), location=geo.village_a)
    four = IndividualFactory(sex="M", dob=today_minus(4, days=1), location=geo.village_a)  # 4 and 1 day
    five = IndividualFactory(sex="M", dob=today_minus(5), location=geo.village_a)          # 5 today
    adult = IndividualFactory(sex="F", dob=today_minus(30), location=geo.village_a)
    elder = IndividualFactory(sex="M", dob=today_minus(60), location=geo.village_a)
    client = client_for(clerk_a)

    def filtered(**params):
        return {p.pk for p in listed(client.get(reverse(INDEX), params))}

    assert filtered(sex="F") == {toddler.pk, adult.pk}
    assert filtered(sex="M") == {four.pk, five.pk, elder.pk}
    assert filtered(age_band="0-4") == {toddler.pk, four.pk}
    assert filtered(age_band="5-17") == {five.pk}
    assert filtered(age_band="18-59") == {adult.pk}
    assert filtered(age_band="60+") == {elder.pk}
    assert filtered(age_band="0-4", sex="M") == {four.pk}
    unknown = IndividualFactory(sex="", dob=today_minus(40), location=geo.village_a)
    assert filtered(sex="none") == {unknown.pk}
    page = client.get(reverse("registry_individual:inspect", args=[unknown.pk])).content.decode()
    assert "<dt>Sex</dt><dd>Not recorded</dd>" in page


def test_filter_by_choice_and_boolean_attributes(geo, clerk_a):
    RegistryFieldFactory(name="education", label="Education", field_type="choice",
                         choices=["none", "primary", "secondary"])
    RegistryFieldFactory(name="disabled", label="Disabled", field_type="boolean")
    primary_disabled = IndividualFactory(location=geo.village_a, attributes={"education": "primary", "disabled": True})
    primary = IndividualFactory(location=geo.village_a, attributes={"education": "primary", "disabled": False})
    secondary = IndividualFactory(location=geo.village_a, attributes={"education": "secondary"})
    client = client_for(clerk_a)

    def filtered(**params):
        return {p.pk for p in listed(client.get(reverse(INDEX), params))}

    page = client.get(reverse(INDEX))
    assert 'name="attr_education"' in body(page) and 'name="attr_disabled"' in body(page)
    assert filtered(attr_education="primary") == {primary_disabled.pk, primary.pk}
    assert filtered(attr_education="secondary") == {secondary.pk}
    assert filtered(attr_disabled="true") == {primary_disabled.pk}
    assert filtered(attr_disabled="false") == {primary.pk}
    assert filtered(attr_education="primary", attr_disabled="false") == {primary.pk}


def test_sorting_by_last_name_and_dob(geo, clerk_a):
    b = IndividualFactory(last_name="Baraka", dob=datetime.date(1970, 1, 1), location=geo.village_a)
    c = IndividualFactory(last_name="Chausiku", dob=datetime.date(2001, 1, 1), location=geo.village_a)
    a = IndividualFactory(last_name="Amani", dob=datetime.date(1985, 1, 1), location=geo.village_a)
    client = client_for(clerk_a)

    def order(ordering):
        return [p.pk for p in listed(client.get(reverse(INDEX), {"ordering": ordering}))]

    assert order("last_name") == [a.pk, b.pk, c.pk]
    assert order("-last_name") == [c.pk, b.pk, a.pk]
    assert order("dob") == [b.pk, a.pk, c.pk]
    assert order("-dob") == [c.pk, a.pk, b.pk]
    assert order("id") == [b.pk, c.pk, a.pk]


def test_list_shows_the_newest_registered_first(geo, clerk_a):
    first, second, third = (IndividualFactory(location=geo.village_a) for _ in range(3))
    page = client_for(clerk_a).get(reverse(INDEX))
    assert [p.pk for p in listed(page)] == [third.pk, second.pk, first.pk]
    assert "Registered" in body(page)


# --- create and edit ---------------------------------------------------------------------------

@pytest.fixture
def attribute_fields(db):
    return [
        RegistryFieldFactory(name="education", label="Education level", field_type="choice",
                             choices=["none", "primary", "secondary"], sort_order=1),
        RegistryFieldFactory(name="disabled", label="Has a disability", field_type="boolean", sort_order=2),
        RegistryFieldFactory(name="children", label="Children at home", field_type="integer",
                             min_value=0, max_value=20, sort_order=3),
        RegistryFieldFactory(name="school", label="School name", field_type="text", sort_order=4),
    ]


def test_create_form_renders_the_attributes_administrators_defined(geo, clerk_a, attribute_fields):
    page = client_for(clerk_a).get(reverse("registry_individual:add"))

    assert page.status_code == 200
    html = body(page)
    for name, label in [("education", "Education level"), ("disabled", "Has a disability"),
                        ("children", "Children at home"), ("school", "School name")]:
        assert f'name="attr_{name}"' in html
        assert label in html
    # The location is picked in the chooser, which offers the clerk's own (tests/sites/test_choosers.py).
    assert reverse("location_chooser:choose") in html and "District B" not in html


def test_create_saves_attributes_as_typed_json(geo, clerk_a, attribute_fields):
    response = client_for(clerk_a).post(reverse("registry_individual:add"), person_form(
        geo.village_a, national_id="ab-778899", attr_education="primary", attr_disabled="true",
        attr_children="3", attr_school="Mwenge"))

    assert response.status_code == 302, getattr(response, "context", None) and response.context["form"].errors
    person = Individual.objects.get(last_name="Mollel")
    assert response["Location"] == reverse("registry_individual:inspect", args=[person.pk])
    assert person.attributes == {"education": "primary", "disabled": True, "children": 3, "school": "Mwenge"}
    assert person.national_id == "AB778899"
    assert person.location == geo.village_a
    assert entries("wagtail.create", person).count() == 1


def test_edit_saves_attributes_as_typed_json(geo, clerk_a, attribute_fields):
    person = IndividualFactory(first_name="Neema", last_name="Mollel", dob=datetime.date(1990, 5, 17),
                               location=geo.village_a, attributes={"education": "none"})
    response = client_for(clerk_a).post(
        reverse("registry_individual:edit", args=[person.pk]),
        person_form(geo.village_a, national_id=person.national_id, attr_education="secondary",
                    attr_disabled="false", attr_children="0", attr_school=""))

    assert response.status_code == 302
    person.refresh_from_db()
    assert person.attributes == {"education": "secondary", "disabled": False, "children": 0}


@pytest.mark.parametrize("overrides, field, message", [
    ({"dob": "2999-01-01"}, "dob", "The date of birth is in the future."),
    ({"dob": "2023-02-31"}, "dob", "Enter a valid date."),
    ({"national_id": "12-34-56"}, "national_id", "This national ID is already registered to another person."),
    ({"attr_children": "99"}, "attr_children", "Must be at most 20."),
    ({"attr_education": "university"}, "attr_education", "Select a valid choice."),
], ids=["future-dob", "impossible-date", "duplicate-national-id", "attribute-out-of-range", "unknown-choice"])
def test_create_with_bad_input_shows_the_message_on_the_field_and_writes_nothing(
        geo, clerk_a, attribute_fields, overrides, field, message):
    IndividualFactory(national_id="123456", location=geo.village_b)  # another district: still a duplicate
    before = Individual.objects.count()

    response = client_for(clerk_a).post(reverse("registry_individual:add"), person_form(geo.village_a, **overrides))

    assert response.status_code == 200
    errors = response.context["form"].errors
    assert field in errors, errors
    assert any(message in e for e in errors[field]), errors[field]
    assert message.replace("'", "&#x27;") in body(response)
    assert Individual.objects.count() == before
    assert not entries("wagtail.create").exists()


def test_create_in_a_location_outside_scope_is_refused(geo, clerk_a):
    response = client_for(clerk_a).post(reverse("registry_individual:add"), person_form(geo.village_b))

    assert response.status_code == 200
    assert "location" in response.context["form"].errors
    assert not Individual.objects.filter(last_name="Mollel").exists()


def test_edit_cannot_move_a_record_outside_scope(geo, clerk_a):
    person = IndividualFactory(location=geo.village_a)
    response = client_for(clerk_a).post(reverse("registry_individual:edit", args=[person.pk]), person_form(
        geo.village_b, first_name=person.first_name, last_name=person.last_name, national_id=person.national_id))

    assert response.status_code == 200
    assert "location" in response.context["form"].errors
    person.refresh_from_db()
    assert person.location == geo.village_a


def test_edit_records_changed_fields_in_the_audit_with_sensitive_values_masked(geo, clerk_a):
    RegistryFieldFactory(name="income_band", label="Income band", field_type="text", sensitive=True)
    person = IndividualFactory(first_name="Neema", last_name="Mollel", dob=datetime.date(1990, 5, 17),
                               national_id="AB123456", phone="+255700123456", location=geo.village_a,
                               attributes={"income_band": "low"})
    response = client_for(clerk_a).post(reverse("registry_individual:edit", args=[person.pk]), person_form(
        geo.village_a, first_name="Neemah", national_id="CD987654", phone="+255711000999",
        attr_income_band="high"))

    assert response.status_code == 302
    [entry] = entries("wagtail.edit", person)
    changes = entry.data["changes"]
    assert changes["first_name"] == ["Neema", "Neemah"]
    assert set(changes) == {"first_name", "national_id", "phone", "attributes.income_band"}
    old, new = changes["national_id"]
    assert "AB123456" not in old and old.endswith("456") and "•" in old
    assert "CD987654" not in new and new.endswith("654")
    assert "+255700123456" not in str(changes) and "+255711000999" not in str(changes)
    assert "low" not in str(changes["attributes.income_band"]) and "high" not in str(changes["attributes.income_band"])
    assert entry.user_id == clerk_a.pk


# --- sensitive data ----------------------------------------------------------------------------

def test_user_without_the_sensitive_permission_sees_national_ids_masked(geo, viewer_a):
    person = IndividualFactory(first_name="Neema", last_name="Mollel", national_id="AB123456",
                               phone="+255700123456", location=geo.village_a)
    client = client_for(viewer_a)

    listing = body(client.get(reverse(INDEX)))
    assert "Mollel" in listing
    assert "AB123456" not in listing and "•••••456" in listing

    record = client.get(reverse("registry_individual:inspect", args=[person.pk]))
    html = body(record)
    assert record.status_code == 200
    assert "AB123456" not in html and "+255700123456" not in html
    assert '<dd data-testid="national-id">•••••456</dd>' in html

    [row] = csv_rows(client.get(reverse(INDEX) + "?export=csv"))
    assert row["Last name"] == "Mollel"
    assert row["National ID"] == "•••••456"
    assert "AB123456" not in str(row.values()) and "+255700123456" not in str(row.values())


def test_user_with_the_sensitive_permission_sees_national_ids(geo, clerk_a):
    person = IndividualFactory(national_id="AB123456", location=geo.village_a)
    client = client_for(clerk_a)

    assert "AB123456" in body(client.get(reverse(INDEX)))
    assert "AB123456" in body(client.get(reverse("registry_individual:inspect", args=[person.pk])))
    assert csv_rows(client.get(reverse(INDEX) + "?export=csv"))[0]["National ID"] == "AB123456"


def test_crafted_post_cannot_change_a_field_the_form_hides(geo):
    editor = UserFactory(role="Viewer", locations=[geo.district_a])
    editor.user_permissions.add(Permission.objects.get(codename="change_individual",
                                                       content_type__app_label="registry"))
    RegistryFieldFactory(name="income_band", label="Income band", field_type="text", sensitive=True)
    person = IndividualFactory(first_name="Neema", last_name="Mollel", dob=datetime.date(1990, 5, 17),
                               national_id="AB123456", phone="+255700123456", location=geo.village_a,
                               attributes={"income_band": "low"})
    client = client_for(editor)

    form = client.get(reverse("registry_individual:edit", args=[person.pk]))
    assert form.status_code == 200
    assert 'name="national_id"' not in body(form) and 'name="attr_income_band"' not in body(form)

    response = client.post(reverse("registry_individual:edit", args=[person.pk]), person_form(
        geo.village_a, first_name="Neemah", national_id="EVIL0001", phone="+1000", attr_income_band="high"))

    assert response.status_code == 302
    person.refresh_from_db()
    assert person.first_name == "Neemah"  # the POST went through...
    assert person.national_id == "AB123456"  # ...but not for what the form hides
    assert person.phone == "+255700123456"
    assert person.attributes == {"income_band": "low"}


# --- delete, restore, audit of views, searches and exports -------------------------------------

def test_soft_delete_then_restore(geo, clerk_a):
    person = IndividualFactory(last_name="Mollel", location=geo.village_a)
    client = client_for(clerk_a)

    response = client.post(reverse("registry_individual:delete", args=[person.pk]))
    assert response.status_code == 302
    person.refresh_from_db()
    assert person.deleted_at is not None
    assert person.pk not in {p.pk for p in listed(client.get(reverse(INDEX)))}
    assert person.pk in {p.pk for p in listed(client.get(reverse(INDEX), {"status": "deleted"}))}
    assert client.get(reverse("registry_individual:edit", args=[person.pk])).status_code == 404
    record = client.get(reverse("registry_individual:inspect", args=[person.pk]))
    assert record.status_code == 200 and reverse("registry_individual:restore", args=[person.pk]) in body(record)

    response = client.post(reverse("registry_individual:restore", args=[person.pk]))
    assert response.status_code == 302
    assert response["Location"] == reverse("registry_individual:inspect", args=[person.pk])
    person.refresh_from_db()
    assert person.deleted_at is None
    assert entries("mizani.soft_delete", person).count() == 1
    assert entries("mizani.restore", person).count() == 1
    assert person.pk in {p.pk for p in listed(client.get(reverse(INDEX)))}


def test_restore_refused_when_the_national_id_was_taken_meanwhile(geo, clerk_a):
    person = IndividualFactory(national_id="AB123456", location=geo.village_a, deleted_at=timezone.now())
    IndividualFactory(national_id="AB123456", location=geo.village_a)

    response = client_for(clerk_a).post(reverse("registry_individual:restore", args=[person.pk]))

    assert response.status_code == 302
    assert any("cannot be restored" in m for m in messages_of(response))
    person.refresh_from_db()
    assert person.deleted_at is not None


def test_each_view_of_a_record_writes_one_audit_entry(geo, clerk_a):
    person = IndividualFactory(location=geo.village_a)
    other = IndividualFactory(location=geo.village_a)
    client = client_for(clerk_a)

    for _ in range(3):
        assert client.get(reverse("registry_individual:inspect", args=[person.pk])).status_code == 200
    client.get(reverse(INDEX))

    views = entries("mizani.view", person)
    assert views.count() == 3
    assert {e.user_id for e in views} == {clerk_a.pk}
    assert not entries("mizani.view", other).exists()


def test_search_by_national_id_is_audited_and_search_by_name_is_not(geo, clerk_a):
    IndividualFactory(national_id="123456", location=geo.village_a)
    client = client_for(clerk_a)

    client.get(reverse(INDEX), {"q": "12-34-56"})
    client.get(reverse(INDEX), {"q": "alicia"})

    [entry] = entries("mizani.search_id")
    assert entry.data["national_id"] == "123456"
    assert entry.user_id == clerk_a.pk


def test_csv_export_is_formula_safe_and_audited_with_the_row_count(geo, clerk_a):
    formula = '=HYPERLINK("http://evil.example/x","Click")'
    IndividualFactory(first_name=formula, last_name="+Plus", location=geo.village_a)
    IndividualFactory(first_name="Plain", last_name="-Minus", location=geo.village_a)
    IndividualFactory(first_name="@At", last_name="Mollel", location=geo.village_a)
    IndividualFactory(location=geo.village_b)  # not the clerk's: neither exported nor counted
    client = client_for(clerk_a)

    rows = csv_rows(client.get(reverse(INDEX), {"export": "csv", "sex": "F"}))

    assert len(rows) == 3
    firsts = {row["First name"] for row in rows}
    lasts = {row["Last name"] for row in rows}
    assert "'" + formula in firsts and formula not in firsts
    assert "'@At" in firsts and "Plain" in firsts
    assert {"'+Plus", "'-Minus", "Mollel"} == lasts
    [entry] = entries("mizani.export")
    assert entry.data["rows"] == 3
    assert entry.data["format"] == "csv"
    assert entry.data["filters"] == {"sex": "F"}
    assert entry.user_id == clerk_a.pk


def test_xlsx_export_is_formula_safe_and_keeps_numbers_numeric(geo, clerk_a):
    formula = "=1+2"
    person = IndividualFactory(first_name=formula, location=geo.village_a)
    response = client_for(clerk_a).get(reverse(INDEX), {"export": "xlsx"})

    assert response.status_code == 200
    raw = b"".join(response.streaming_content) if response.streaming else response.content
    sheet = openpyxl.load_workbook(io.BytesIO(raw)).active
    header = [c.value for c in sheet[1]]
    row = [c for c in sheet[2]]
    by_name = dict(zip(header, row, strict=False))
    assert by_name["First name"].value == "'=1+2"
    assert by_name["First name"].data_type == "s"
    assert by_name["ID"].value == person.pk and by_name["ID"].data_type == "n"
    assert entries("mizani.export").get().data["format"] == "xlsx"


# --- household page and members ----------------------------------------------------------------

@pytest.fixture
def household_a(geo, member_roles):
    return HouseholdFactory(code="HH-MOLLEL", location=geo.village_a)


def member_post(client, household, **data):
    """POST a member operation and follow the redirect: the household page shows the outcome message."""
    response = client.post(reverse("registry_household:members", args=[household.pk]), data, follow=True)
    assert response.redirect_chain == [(reverse("registry_household:inspect", args=[household.pk]), 302)]
    return response


def shown_messages(response):
    return [str(m) for m in response.context["messages"]]


def test_household_members_follow_the_rules(geo, clerk_a, household_a):
    mother = IndividualFactory(first_name="Neema", location=geo.village_a)
    father = IndividualFactory(first_name="Juma", location=geo.village_a)
    son = IndividualFactory(first_name="Baraka", location=geo.village_a)
    client = client_for(clerk_a)
    page = reverse("registry_household:inspect", args=[household_a.pk])

    # First member: head and primary recipient.
    response = member_post(client, household_a, operation="add", individual=mother.pk, role="", recipient_type="")
    assert any("added" in m for m in shown_messages(response))
    first = Membership.objects.get(individual=mother)
    assert (first.role_id, first.recipient_type) == ("HEAD", "PRIMARY")

    # A second head is refused with a message; nothing is written.
    response = member_post(client, household_a, operation="add", individual=father.pk, role="HEAD", recipient_type="")
    assert any("already has a head" in m for m in shown_messages(response))
    assert not Membership.objects.filter(individual=father).exists()

    # A second primary recipient likewise.
    response = member_post(client, household_a, operation="add", individual=father.pk, role="SPOUSE",
                           recipient_type="PRIMARY")
    assert any("already has a primary recipient" in m for m in shown_messages(response))
    assert not Membership.objects.filter(individual=father).exists()

    member_post(client, household_a, operation="add", individual=father.pk, role="SPOUSE", recipient_type="SECONDARY")
    member_post(client, household_a, operation="add", individual=son.pk, role="SON", recipient_type="")
    assert Membership.objects.filter(household=household_a).count() == 3

    # set_head swaps: the spouse becomes head, the former head takes the role chosen (none is assumed).
    spouse = Membership.objects.get(individual=father)
    shown = body(client.get(page))
    assert '<select name="former_head_role" id="former-' in shown and '<option value="">Choose a role…</option>' in shown
    response = member_post(client, household_a, operation="set_head", membership=spouse.pk, former_head_role="")
    assert Membership.objects.get(individual=father).role_id == "SPOUSE"
    assert any("role of the former head" in m.lower() for m in shown_messages(response)), shown_messages(response)
    response = member_post(client, household_a, operation="set_head", membership=spouse.pk, former_head_role="SPOUSE")
    assert any("is now the head" in m for m in shown_messages(response))
    roles = dict(Membership.objects.filter(household=household_a).values_list("individual_id", "role_id"))
    assert roles == {mother.pk: "SPOUSE", father.pk: "HEAD", son.pk: "SON"}

    # change: role and recipient of a non-head member.
    son_membership = Membership.objects.get(individual=son)
    member_post(client, household_a, operation="change", membership=son_membership.pk, role="DAUGHTER",
                recipient_type="")
    son_membership.refresh_from_db()
    assert son_membership.role_id == "DAUGHTER"

    # The head cannot leave while others remain; another member can.
    head = Membership.objects.get(individual=father)
    response = member_post(client, household_a, operation="remove", membership=head.pk)
    assert any("head cannot leave" in m for m in shown_messages(response))
    assert Membership.objects.filter(pk=head.pk).exists()
    member_post(client, household_a, operation="remove", membership=son_membership.pk)
    assert not Membership.objects.filter(pk=son_membership.pk).exists()

    # The page shows the members with their roles.
    html = body(client.get(page))
    assert "Juma" in html and "Neema" in html and "Baraka" not in html
    actions = list(entries("mizani.member_add", household_a)) + list(entries("mizani.member_change", household_a))
    assert len(actions) == 5  # 3 adds, 1 set_head, 1 change


def test_member_add_refuses_a_person_outside_scope(geo, clerk_a, household_a):
    outsider = IndividualFactory(location=geo.village_b)

    response = member_post(client_for(clerk_a), household_a, operation="add", individual=outsider.pk,
                           role="", recipient_type="")

    assert shown_messages(response) and not any("added" in m for m in shown_messages(response))
    assert not Membership.objects.exists()


def test_household_page_lists_members_and_household_list_shows_head_and_size(geo, clerk_a, household_a):
    head = IndividualFactory(first_name="Neema", last_name="Mollel", location=geo.village_a)
    child = IndividualFactory(first_name="Baraka", last_name="Mollel", dob=today_minus(3), location=geo.village_a)
    MembershipFactory(household=household_a, individual=head, recipient_type="PRIMARY")
    MembershipFactory(household=household_a, individual=child, role=MemberRole.objects.get(pk="SON"))
    client = client_for(clerk_a)

    page = client.get(reverse("registry_household:inspect", args=[household_a.pk]))
    assert page.status_code == 200
    assert [m.individual_id for m in page.context["members"]] == [head.pk, child.pk]
    [row] = listed(client.get(reverse("registry_household:index")))
    assert (row.code, row.head_name, row.size) == ("HH-MOLLEL", "Neema Mollel", 2)


def test_household_page_finds_people_to_add_in_scope_and_without_a_household(geo, clerk_a, household_a):
    free = IndividualFactory(first_name="Rehema", last_name="Kimaro", location=geo.village_a)
    IndividualFactory(first_name="Rehema", last_name="Kimaro", location=geo.village_b)
    taken = IndividualFactory(first_name="Rehema", last_name="Kimaro", location=geo.village_a)
    MembershipFactory(household=HouseholdFactory(location=geo.village_a), individual=taken)
    client = client_for(clerk_a)
    url = reverse("registry_household:inspect", args=[household_a.pk])

    page = client.get(url, {"person_q": "rehema kimaro"})

    assert [person.pk for person in page.context["candidates"]] == [free.pk]
    assert "Add as head" in body(page)
    member_post(client, household_a, operation="add", individual=free.pk)
    assert Membership.objects.get(individual=free).role_id == MemberRole.HEAD


def test_record_page_shows_zero_as_a_value(geo, clerk_a):
    RegistryFieldFactory(name="children_under_5", label="Children under 5", field_type="integer")
    person = IndividualFactory(location=geo.village_a, attributes={"children_under_5": 0})

    page = client_for(clerk_a).get(reverse("registry_individual:inspect", args=[person.pk]))

    assert ("Children under 5", 0) in page.context["attributes"]
    assert "<dt>Children under 5</dt><dd>0</dd>" in body(page)


# --- location import ---------------------------------------------------------------------------

@pytest.fixture
def sysadmin(db):
    return UserFactory(username="sysadmin", role="System administrator", national=True)


def test_location_import_goes_to_the_upload_pipeline(sysadmin):
    response = client_for(sysadmin).get(reverse("sites_location:import"))
    assert response.status_code == 302 and response["Location"] == reverse("bulk_upload:new") + "?kind=LOCATIONS"


def test_location_export_lists_the_whole_tree_including_top_level_locations(sysadmin):
    region = LocationFactory(code="R1", name="Region One")
    LocationFactory(code="D1", name="District One", parent=region)

    rows = csv_rows(client_for(sysadmin).get(reverse("sites_location:index") + "?export=csv"))

    assert [(r["Code"], r["parent_code"]) for r in rows] == [("R1", ""), ("D1", "R1")]


def test_location_import_is_refused_without_the_permission(geo, clerk_a):
    assert client_for(clerk_a).get(reverse("sites_location:import")).status_code in (302, 403)


# --- audit trail -------------------------------------------------------------------------------

def test_audit_trail_is_for_auditors_only(geo, clerk_a, sysadmin):
    IndividualFactory(location=geo.village_a)
    client_for(clerk_a).get(reverse(INDEX) + "?export=csv")

    response = client_for(sysadmin).get(reverse("mizani_site_history"))
    assert response.status_code == 200
    assert "Export" in body(response)
    assert client_for(sysadmin).get(reverse("mizani_site_history_results")).status_code == 200

    for name in ("mizani_site_history", "mizani_site_history_results"):
        refused = client_for(clerk_a).get(reverse(name))
        assert refused.status_code == 403 or (
            refused.status_code == 302 and refused["Location"] == reverse("wagtailadmin_home")), name


def test_home_page_counts_only_the_users_scope(geo, clerk_a):
    IndividualFactory.create_batch(3, location=geo.village_a)
    IndividualFactory.create_batch(5, location=geo.village_b)
    HouseholdFactory(location=geo.village_b)

    page = body(client_for(clerk_a).get(reverse("wagtailadmin_home")))

    assert "3 Individuals" in page
    assert "0 Households" in page


# --- found in review: scope on secondary paths, and what clerks could not do ------------------


@pytest.fixture
def mixed_household(geo, member_roles):
    """A household of district A whose head is registered in district B."""
    household = HouseholdFactory(code="HH-MIXED", location=geo.village_a)
    outsider = IndividualFactory(first_name="Zuberi", last_name="Outofscope", location=geo.village_b)
    insider = IndividualFactory(first_name="Neema", last_name="Inscope", location=geo.village_a)
    head = MembershipFactory(household=household, individual=outsider, recipient_type="PRIMARY")
    son = MembershipFactory(household=household, individual=insider, role=member_roles["SON"])
    return SimpleNamespace(household=household, outsider=outsider, insider=insider, head=head, son=son)


@pytest.mark.parametrize("data", [
    {"operation": "change", "role": "FATHER", "recipient_type": "SECONDARY"},
    {"operation": "remove"},
    {"operation": "set_head", "former_head_role": "SON"},
])
def test_member_operations_on_a_member_outside_scope_are_not_found(clerk_a, mixed_household, data):
    client = client_for(clerk_a)
    before = list(Membership.objects.order_by("pk").values())

    response = client.post(reverse("registry_household:members", args=[mixed_household.household.pk]),
                           {**data, "membership": mixed_household.head.pk})

    assert response.status_code == 404
    assert "Outofscope" not in body(response)
    assert list(Membership.objects.order_by("pk").values()) == before


def test_lists_do_not_name_a_head_or_household_outside_scope(geo, clerk_a, member_roles):
    household_b = HouseholdFactory(code="HH-BRAVO-X", location=geo.village_b)
    person_a = IndividualFactory(last_name="Inscope", location=geo.village_a)
    MembershipFactory(household=household_b, individual=person_a)
    household_a = HouseholdFactory(code="HH-ALPHA-X", location=geo.village_a)
    MembershipFactory(household=household_a, individual=IndividualFactory(last_name="Outofscope",
                                                                           location=geo.village_b))
    client = client_for(clerk_a)

    households = body(client.get(reverse("registry_household:index")))
    individuals = body(client.get(reverse(INDEX)))

    assert "HH-ALPHA-X" in households and "Outofscope" not in households
    assert "Inscope" in individuals and "HH-BRAVO-X" not in individuals


def test_filter_by_a_whole_number_attribute(geo, clerk_a):
    RegistryFieldFactory(name="children", label="Children", field_type="integer")
    two = IndividualFactory(location=geo.village_a, attributes={"children": 2})
    IndividualFactory(location=geo.village_a, attributes={"children": 3})

    assert listed(client_for(clerk_a).get(reverse(INDEX), {"attr_children": "2"})) == [two]


def test_the_head_can_hand_the_primary_recipient_role_to_another_member(geo, clerk_a, member_roles):
    household = HouseholdFactory(location=geo.village_a)
    head = MembershipFactory(household=household, individual=IndividualFactory(location=geo.village_a),
                             recipient_type="PRIMARY")
    spouse = MembershipFactory(household=household, role=member_roles["SPOUSE"],
                               individual=IndividualFactory(location=geo.village_a))
    client = client_for(clerk_a)

    member_post(client, household, operation="change", membership=spouse.pk, role="SPOUSE",
                recipient_type="PRIMARY")

    head.refresh_from_db()
    spouse.refresh_from_db()
    assert (head.role_id, head.recipient_type) == ("HEAD", "SECONDARY")
    assert spouse.recipient_type == "PRIMARY"


def test_searching_people_to_add_by_national_id_is_audited(geo, clerk_a, household_a):
    IndividualFactory(location=geo.village_a, national_id="555666777")

    page = client_for(clerk_a).get(reverse("registry_household:inspect", args=[household_a.pk]),
                                   {"person_q": "555 666 777"})

    assert len(page.context["candidates"]) == 1
    assert entries("mizani.search_id").count() == 1


def test_member_role_code_cannot_be_renamed(db, member_roles):
    admin = UserFactory(is_superuser=True, is_staff=True)

    client_for(admin).post(reverse("registry_memberrole:edit", args=["FATHER"]),
                           {"code": "PAPA", "label": "Father", "sort_order": "70"})

    assert MemberRole.objects.filter(pk="FATHER").exists()
    assert not MemberRole.objects.filter(pk="PAPA").exists()


def test_a_district_clerk_must_choose_a_location(geo, clerk_a):
    response = client_for(clerk_a).post(reverse("registry_individual:add"),
                                        {**person_form(geo.village_a), "location": ""})

    assert response.status_code == 200
    assert "location" in response.context["form"].errors
    assert not Individual.objects.exists()


def test_editing_without_touching_a_yes_no_attribute_keeps_it(geo, clerk_a):
    RegistryFieldFactory(name="disability", label="Disability", field_type="boolean")
    person = IndividualFactory(location=geo.village_a, attributes={"disability": True})
    client = client_for(clerk_a)

    form = client.get(reverse("registry_individual:edit", args=[person.pk])).context["form"]
    data = {name: form[name].value() for name in form.fields}
    data = {name: ("" if value is None else value) for name, value in data.items()}
    data["first_name"] = "Renamed"
    data["dob"] = person.dob.isoformat()
    data["location"] = person.location_id
    client.post(reverse("registry_individual:edit", args=[person.pk]), data)

    person.refresh_from_db()
    assert person.first_name == "Renamed"
    assert person.attributes == {"disability": True}


def test_an_export_reads_no_row_before_its_first_byte(geo, national_clerk):
    """The export streams: answering the request counts the rows (for the audit) but reads none of
    them; they are read in chunks while the file is sent. (Wagtail's listing would load them all.)"""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for n in range(5):
        IndividualFactory(last_name=f"Streamed{n}", location=geo.village_a)
    client = client_for(national_clerk)

    with CaptureQueriesContext(connection) as before_first_byte:
        response = client.get(reverse(INDEX) + "?export=csv")
    reads = [q["sql"] for q in before_first_byte.captured_queries
             if 'FROM "registry_individual"' in q["sql"] and "COUNT(" not in q["sql"].upper()]

    assert response.streaming and reads == []
    assert len(csv_rows(response)) == 5


def test_an_export_reads_each_person_once_with_every_column(geo, clerk_a, member_roles):
    """The export fetches only the columns it writes (no location row per person, no timestamps), and
    no column is then read person by person: the same queries for three people as for twelve."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    RegistryFieldFactory(name="income", label="Monthly income", field_type="decimal")
    household = HouseholdFactory(code="HH-EXPORT", location=geo.village_a)

    def export_queries(people):
        for n in range(people):
            person = IndividualFactory(last_name=f"Exported{n}", location=geo.village_a, attributes={"income": "250"})
            MembershipFactory(household=household, individual=person, role=MemberRole.objects.get(pk="SON"))
        client = client_for(clerk_a)
        with CaptureQueriesContext(connection) as queries:
            rows = csv_rows(client.get(reverse(INDEX), {"export": "csv"}))
        return rows, len(queries.captured_queries)

    export_queries(0)  # what the first request of a process looks up once (content types, ...)
    few, few_queries = export_queries(3)
    many, many_queries = export_queries(9)

    assert many_queries == few_queries
    assert len(many) == 12
    assert {(row["Location code"], row["Household"], row["income"]) for row in many} == {
        (geo.village_a.code, "HH-EXPORT", "250")}


def test_a_household_export_reads_each_household_once_with_every_column(geo, clerk_a, member_roles):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    RegistryFieldFactory(name="roof", label="Roof", field_type="text", target="household")

    def export_queries(households):
        for n in range(households):
            household = HouseholdFactory(code=f"HH-X{n}-{households}", location=geo.village_a, attributes={"roof": "tin"})
            MembershipFactory(household=household, individual=IndividualFactory(location=geo.village_a))
        client = client_for(clerk_a)
        with CaptureQueriesContext(connection) as queries:
            rows = csv_rows(client.get(reverse("registry_household:index"), {"export": "csv"}))
        return rows, len(queries.captured_queries)

    export_queries(0)  # what the first request of a process looks up once
    few, few_queries = export_queries(2)
    many, many_queries = export_queries(6)

    assert many_queries == few_queries
    assert len(many) == 8
    assert {(row["Location code"], row["Members"], row["roof"]) for row in many} == {(geo.village_a.code, "1", "tin")}


def test_a_merged_record_says_where_it_went(geo, clerk_a):
    kept = IndividualFactory(location=geo.village_a)
    duplicate = IndividualFactory(location=geo.village_a)
    Individual.objects.filter(pk=duplicate.pk).update(deleted_at=timezone.now(), merged_into=kept)

    html = body(client_for(clerk_a).get(reverse("registry_individual:inspect", args=[duplicate.pk])))
    assert "was merged on" in html and reverse("registry_individual:inspect", args=[kept.pk]) in html
    assert "Restore</button>" not in html


def test_a_persons_page_names_what_a_merge_filled_by_the_fields_labels(geo, clerk_a, member_roles):
    from schemes.registry import services
    from tests.factories import RegistryFieldFactory

    RegistryFieldFactory(name="income", label="Monthly income")
    kept = IndividualFactory(location=geo.village_a, national_id=None, attributes={})
    duplicate = IndividualFactory(location=geo.village_a, national_id="NID99912345", attributes={"income": "1200"})
    services.individual_merge(kept=kept, merged=duplicate, by=clerk_a)

    html = body(client_for(clerk_a).get(reverse("registry_individual:inspect", args=[kept.pk])))

    assert "Monthly income: — → 1200" in html
    assert "attributes.income" not in html and "national_id" not in html


def test_a_persons_page_names_the_fields_an_edit_changed_by_their_labels(geo, clerk_a):
    from schemes.registry import services
    from tests.factories import RegistryFieldFactory

    RegistryFieldFactory(name="income", label="Monthly income", field_type="decimal")
    person = IndividualFactory(location=geo.village_a, attributes={"income": "1200.5"})
    services.individual_update(individual=person, fields={"first_name": "Zuhura"}, attributes={"income": "1300"},
                               by=clerk_a)

    html = body(client_for(clerk_a).get(reverse("registry_individual:inspect", args=[person.pk])))

    assert "Monthly income" in html and "First name" in html and "attributes.income" not in html


# --- QA walk: member changes, delete page, pending requests, duplicates, history --------------------

def _members_workflow():
    from django.contrib.auth.models import Group

    from schemes.registry.approvals import MEMBERS_OPERATION
    from workflows.models import WorkflowDefinition, WorkflowStep

    WorkflowStep.objects.create(definition=WorkflowDefinition.objects.create(operation=MEMBERS_OPERATION),
                                group=Group.objects.get(name="Checker"), sort_order=0)


def test_make_head_on_the_household_page_waits_for_approval_and_the_page_says_so(geo, clerk_a, member_roles):
    UserFactory(username="qa_checker", role="Checker", locations=[geo.district_a])
    _members_workflow()
    household = HouseholdFactory(code="HH-QA0001", location=geo.village_a)
    MembershipFactory(household=household, individual=IndividualFactory(location=geo.village_a))
    son = MembershipFactory(household=household, individual=IndividualFactory(location=geo.village_a),
                            role=member_roles["SON"])
    client = client_for(clerk_a)

    response = client.post(reverse("registry_household:members", args=[household.pk]),
                           {"operation": "set_head", "membership": son.pk, "former_head_role": "FATHER"})

    assert response.status_code == 302 and "/approvals/" in response.url
    assert Membership.objects.get(pk=son.pk).role_id == "SON"
    page = client.get(reverse("registry_household:inspect", args=[household.pk])).content.decode()
    assert 'data-testid="pending-request"' in page and "Make a member head" in page


def test_the_household_page_says_the_household_is_enrolled(geo, clerk_a):
    from schemes.plans.models import BenefitPlan, HouseholdBeneficiary

    household = HouseholdFactory(location=geo.village_a)
    plan = BenefitPlan.objects.create(code="HHG", name="Household grant", plan_type="HOUSEHOLD", status="ACTIVE")
    HouseholdBeneficiary.objects.create(plan=plan, household=household, status="ACTIVE", enrolled_at=timezone.now(),
                                        status_changed_at=timezone.now())

    page = client_for(clerk_a).get(reverse("registry_household:inspect", args=[household.pk])).content.decode()

    assert "This household is enrolled in Household grant (active)" in page


def test_the_delete_page_states_the_consequences_and_refuses_a_head_up_front(geo, clerk_a, member_roles):
    household = HouseholdFactory(code="HH-QA0002", location=geo.village_a)
    head = MembershipFactory(household=household, individual=IndividualFactory(location=geo.village_a),
                             recipient_type="PRIMARY").individual
    MembershipFactory(household=household, individual=IndividualFactory(location=geo.village_a),
                      role=member_roles["SON"])

    page = client_for(clerk_a).get(reverse("registry_individual:delete", args=[head.pk])).content.decode()

    assert "referenced" not in page
    assert "HH-QA0002 (head, primary recipient): they leave it" in page
    assert "Payment lines naming them as recipient" in page
    assert "make another member the head first" in page and "Yes, delete" not in page


def test_the_delete_page_refuses_the_primary_recipient_up_front(geo, clerk_a, member_roles):
    household = HouseholdFactory(code="HH-QA0003", location=geo.village_a)
    MembershipFactory(household=household, individual=IndividualFactory(location=geo.village_a))
    son = MembershipFactory(household=household, individual=IndividualFactory(location=geo.village_a),
                            role=member_roles["SON"], recipient_type="PRIMARY").individual

    page = client_for(clerk_a).get(reverse("registry_individual:delete", args=[son.pk])).content.decode()

    assert "is the primary recipient of household HH-QA0003: make another member the primary recipient" in page
    assert "Yes, delete" not in page


@pytest.mark.parametrize("approval", [True, False])
def test_the_delete_button_says_whether_it_deletes_or_submits_a_request(geo, clerk_a, approval):
    from workflows.models import WorkflowDefinition

    WorkflowDefinition.objects.create(operation="registry.delete_individual", requires_approval=approval)
    person = IndividualFactory(location=geo.village_a)

    page = client_for(clerk_a).get(reverse("registry_individual:delete", args=[person.pk])).content.decode()

    assert ("Submit the deletion for approval" in page) is approval
    assert ("Yes, delete" in page) is not approval


def test_registering_an_exact_duplicate_asks_for_confirmation(geo, clerk_a):
    same = IndividualFactory(first_name="Neema", last_name="Mollel", dob=datetime.date(1990, 5, 17),
                             location=geo.village_a)
    client = client_for(clerk_a)

    response = client.post(reverse("registry_individual:add"), person_form(geo.village_a, first_name="neema"))

    assert response.status_code == 200
    assert "Possible duplicate of" in response.content.decode()
    assert f'<a href="{reverse("registry_individual:inspect", args=[same.pk])}">' in response.content.decode()
    assert Individual.objects.count() == 1

    response = client.post(reverse("registry_individual:add"), person_form(geo.village_a, register_anyway="on"))
    assert response.status_code == 302, response.context["form"].errors
    assert Individual.objects.count() == 2


@pytest.mark.parametrize("role", ["Checker", "Viewer", "Manager", "System administrator", "Scheme administrator"])
def test_whoever_may_read_a_record_may_read_its_history(geo, role):
    person = IndividualFactory(location=geo.village_a)
    client = client_for(UserFactory(role=role, locations=[geo.district_a]))

    page = client.get(reverse("registry_individual:inspect", args=[person.pk])).content.decode()
    history = reverse("registry_individual:history", args=[person.pk])

    assert history in page
    assert client.get(history).status_code == 200


def test_household_list_search_finds_a_household_by_a_members_name_or_its_code(geo, clerk_a, member_roles):
    head = IndividualFactory(first_name="Otieno", last_name="Barasa", location=geo.village_a)
    MembershipFactory(household=HouseholdFactory(code="HH-0100", location=geo.village_a), individual=head)
    son = IndividualFactory(first_name="Wanjala", last_name="Barasa", location=geo.village_a)
    MembershipFactory(household=HouseholdFactory(code="HH-0200", location=geo.village_a), individual=son,
                      role=member_roles["SON"])
    MembershipFactory(household=HouseholdFactory(code="HH-0300", location=geo.village_b),
                      individual=IndividualFactory(last_name="Barasa", location=geo.village_b))
    client = client_for(clerk_a)
    index = reverse("registry_household:index")

    assert [h.code for h in listed(client.get(index, {"q": "Barasa"}))] == ["HH-0100", "HH-0200"]
    assert [h.code for h in listed(client.get(index, {"q": "wanjala barasa"}))] == ["HH-0200"]
    assert [h.code for h in listed(client.get(index, {"q": "0100"}))] == ["HH-0100"]


def test_household_list_search_for_a_common_name_says_how_many_households_at_least(
        geo, clerk_a, member_roles, monkeypatch):
    from schemes.registry import selectors

    monkeypatch.setattr(selectors, "HOUSEHOLD_SEARCH_LIMIT", 2)
    for number in range(3):
        MembershipFactory(household=HouseholdFactory(code=f"HH-{number}", location=geo.village_a),
                          individual=IndividualFactory(last_name="Barasa", location=geo.village_a))

    response = client_for(clerk_a).get(reverse("registry_household:index"), {"q": "barasa"})

    assert [h.code for h in listed(response)] == ["HH-0", "HH-1", "HH-2"]
    assert "At least 3 households match" in body(response)


# --- households outside the reader's locations are not named ---------------------------------------

def test_the_delete_page_does_not_name_a_household_outside_the_readers_locations(geo, clerk_a, member_roles):
    elsewhere = HouseholdFactory(code="HH-DISTRICT-B", location=geo.village_b)
    MembershipFactory(household=elsewhere, individual=IndividualFactory(location=geo.village_b),
                      recipient_type="PRIMARY")
    son = IndividualFactory(location=geo.village_a)
    MembershipFactory(household=elsewhere, individual=son, role=member_roles["SON"])
    here = HouseholdFactory(code="HH-DISTRICT-A", location=geo.village_b)
    head = IndividualFactory(location=geo.village_a)
    MembershipFactory(household=here, individual=head, recipient_type="PRIMARY")
    MembershipFactory(household=here, individual=IndividualFactory(location=geo.village_b), role=member_roles["SON"])
    client = client_for(clerk_a)

    page = client.get(reverse("registry_individual:delete", args=[son.pk]))
    assert page.context["consequences"]["Household"] == "A household outside your locations (son): they leave it"
    assert "HH-DISTRICT-B" not in page.content.decode()
    page = client.get(reverse("registry_individual:delete", args=[head.pk]))
    assert page.context["refusal"].startswith(f"{head} is the head of a household outside your locations")
    assert "HH-DISTRICT-A" not in page.content.decode()


def test_adding_a_member_of_a_household_outside_the_users_locations_does_not_name_it(geo, clerk_a, household_a):
    elsewhere = HouseholdFactory(code="HH-DISTRICT-B", location=geo.village_b)
    person = IndividualFactory(first_name="Neema", last_name="Mollel", location=geo.village_a)
    MembershipFactory(household=elsewhere, individual=person, recipient_type="PRIMARY")

    response = member_post(client_for(clerk_a), household_a, operation="add", individual=person.pk)

    assert shown_messages(response) == ["Neema Mollel already belongs to a household outside your locations."]


def test_a_member_form_problem_names_the_field(geo, clerk_a, household_a):
    outside = IndividualFactory(location=geo.village_b)

    response = member_post(client_for(clerk_a), household_a, operation="add", individual=outside.pk)

    assert shown_messages(response) == ["Person: No registered person with this id in your locations."]


def test_the_primary_recipient_changes_hands_and_is_never_left_empty(geo, clerk_a, household_a):
    mother = IndividualFactory(first_name="Neema", location=geo.village_a)
    son = IndividualFactory(first_name="Baraka", location=geo.village_a)
    client = client_for(clerk_a)
    member_post(client, household_a, operation="add", individual=mother.pk)
    member_post(client, household_a, operation="add", individual=son.pk, role="SON", recipient_type="")
    head, child = Membership.objects.get(individual=mother), Membership.objects.get(individual=son)

    response = member_post(client, household_a, operation="change", membership=head.pk, role="HEAD",
                           recipient_type="SECONDARY")
    assert any("is the household's primary recipient" in m for m in shown_messages(response))
    assert Membership.objects.get(pk=head.pk).recipient_type == "PRIMARY"

    member_post(client, household_a, operation="change", membership=child.pk, role="SON", recipient_type="PRIMARY")
    assert Membership.objects.get(pk=child.pk).recipient_type == "PRIMARY"
    assert Membership.objects.get(pk=head.pk).recipient_type == "SECONDARY"
    assert entries("mizani.member_change", household_a).last().data["former_primary"] == mother.pk


def test_the_primary_recipient_is_removed_naming_who_takes_over(geo, clerk_a, household_a, member_roles):
    head = MembershipFactory(household=household_a, individual=IndividualFactory(first_name="Neema",
                                                                                 location=geo.village_a),
                             recipient_type="SECONDARY")
    son = MembershipFactory(household=household_a, role=member_roles["SON"], recipient_type="PRIMARY",
                            individual=IndividualFactory(first_name="Baraka", location=geo.village_a))
    outsider = IndividualFactory(location=geo.village_a)
    client = client_for(clerk_a)

    page = client.get(reverse("registry_household:inspect", args=[household_a.pk])).content.decode()
    assert f'<select name="new_primary" id="new-primary-{son.pk}" required>' in page
    assert f'id="new-primary-{head.pk}"' not in page  # only the primary recipient's row asks

    response = member_post(client, household_a, operation="remove", membership=son.pk)
    assert any("is the household's primary recipient: choose the member" in m for m in shown_messages(response))
    response = member_post(client, household_a, operation="remove", membership=son.pk, new_primary=outsider.pk)
    assert shown_messages(response) == [
        "New primary recipient: Choose another member of this household, in your locations."]
    assert Membership.objects.filter(pk=son.pk).exists()

    member_post(client, household_a, operation="remove", membership=son.pk, new_primary=head.individual_id)

    assert not Membership.objects.filter(pk=son.pk).exists()
    head.refresh_from_db()
    assert head.recipient_type == "PRIMARY"
