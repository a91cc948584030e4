"""The rule check endpoint behind the rule field's live count: canonical text, AST and a count scoped
to the user's locations; errors with their position; refused without CSRF token, to anonymous users,
to users without admin access and for unknown subjects."""

import datetime
import json

import pytest
from django.test import Client
from django.urls import reverse

from schemes.rules.parser import MAX_TEXT
from tests.factories import IndividualFactory, RegistryFieldFactory, UserFactory

pytestmark = pytest.mark.django_db
URL = "/admin/rules/check/"


@pytest.fixture
def people(geo):
    """Three adults and a child in district A, two adults in district B, one adult nowhere, one deleted."""
    adult, child = datetime.date(1980, 1, 1), datetime.date(2020, 1, 1)
    RegistryFieldFactory(name="children", label="Children", field_type="integer")
    for village, dobs in ((geo.village_a, [adult, adult, adult, child]), (geo.village_b, [adult, adult]),
                          (None, [adult])):
        for dob in dobs:
            IndividualFactory(dob=dob, location=village, attributes={"children": 2})
    IndividualFactory(dob=adult, location=geo.village_a, deleted_at=datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC))


def check(user, text, subject="individual", headers=None, **params):
    client = Client()
    client.force_login(user)
    return client.post(URL, {"text": text, "subject": subject, **params}, headers=headers)


def test_the_url_is_named_rules_check():
    assert reverse("rules_check") == URL


def test_the_count_is_scoped_to_the_users_locations(people, clerk_a, clerk_b, national_clerk):
    rule = "age >= 18 and children == 2"
    counts = {user.username: check(user, rule).json()["count"] for user in (clerk_a, clerk_b, national_clerk)}
    # A: three adults (the deleted one is not counted); B: two; national: every live adult.
    assert counts == {"clerk_a": 3, "clerk_b": 2, "clerk_national": 6}


def test_an_answer_gives_the_canonical_text_and_the_ast(people, clerk_a):
    response = check(clerk_a, "  age>=18 and not (children<1)  ")
    assert response.status_code == 200
    assert response.json() == {
        "ok": True, "text": "age >= 18 and not children < 1", "count": 3,
        "ast": {"bool": "and", "values": [
            {"binary": ">=", "left": {"field": "age"}, "right": {"literal": "18", "type": "number"}},
            {"unary": "not", "operand": {"binary": "<", "left": {"field": "children"},
                                         "right": {"literal": "1", "type": "number"}}}]},
    }


def test_date_values_are_accepted(people, clerk_a):
    body = check(clerk_a, "dob < date('2000-01-01')").json()
    assert (body["ok"], body["text"], body["count"]) == (True, 'dob < date("2000-01-01")', 3)


@pytest.mark.parametrize("text, position, message", [
    ("age >= 18 and colour == 'red'", 14, "Unknown field 'colour'"),
    ("age >= 'eighteen'", 0, "compares a number with text"),
    ("(age >= 18 and\n  a.b)", 17, "Attribute access"),
    ("'مزاني' == a.b", 11, "Attribute access"),  # characters, not UTF-8 bytes
    ("age + 1", 0, "must give yes/no"),
    ("", None, "empty"),
    ("a" * (MAX_TEXT + 1), None, f"longer than {MAX_TEXT} characters"),
])
def test_errors_name_their_position_in_the_text(people, clerk_a, text, position, message):
    response = check(clerk_a, text)
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is False and body["position"] == position
    assert message in body["error"]
    assert "count" not in body


def test_a_formula_is_checked_without_a_count(people, clerk_a):
    body = check(clerk_a, "children * 10 + 1", expect="number").json()
    assert body == {"ok": True, "text": "children * 10 + 1", "count": None,
                    "ast": {"binary": "+", "left": {"binary": "*", "left": {"field": "children"},
                                                     "right": {"literal": "10", "type": "number"}},
                            "right": {"literal": "1", "type": "number"}}}
    assert check(clerk_a, "age > 1", expect="number").json()["ok"] is False


@pytest.mark.parametrize("params", [{"subject": "nonsense"}, {"subject": "plan:1"}, {"subject": ""}, {"subject": "__class__"},
                                    {"expect": "list"}])
def test_unknown_subjects_and_types_are_refused(people, clerk_a, params):
    response = check(clerk_a, "age > 1", **params)
    assert response.status_code == 400
    assert response.json()["ok"] is False


def test_only_post_is_answered(clerk_a):
    client = Client()
    client.force_login(clerk_a)
    assert client.get(URL, {"text": "age > 1", "subject": "individual"}).status_code == 405


def test_a_post_without_the_csrf_token_is_refused(people, clerk_a):
    client = Client(enforce_csrf_checks=True)
    client.force_login(clerk_a)
    response = client.post(URL, {"text": "age >= 18", "subject": "individual"})
    assert response.status_code == 403
    assert b"count" not in response.content


def test_a_post_with_the_csrf_token_from_the_cookie_is_answered(people, clerk_a):
    client = Client(enforce_csrf_checks=True)
    client.force_login(clerk_a)
    client.get(reverse("wagtailadmin_home"))  # sets the csrftoken cookie, as any admin page does
    token = client.cookies["csrftoken"].value
    response = client.post(URL, {"text": "age >= 18", "subject": "individual"}, headers={"X-CSRFToken": token})
    assert response.json()["count"] == 3


def test_anonymous_users_are_refused(people):
    response = Client().post(URL, {"text": "age >= 18", "subject": "individual"})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("wagtailadmin_login"))
    script = Client().post(URL, {"text": "age >= 18", "subject": "individual"},
                           headers={"X-Requested-With": "XMLHttpRequest"})
    assert script.status_code == 403


def test_users_without_admin_access_are_refused(people, geo):
    outsider = UserFactory(locations=[geo.district_a])  # no role: no wagtailadmin.access_admin
    response = check(outsider, "age >= 18", headers={"X-Requested-With": "XMLHttpRequest"})
    assert response.status_code == 403
    assert b"count" not in response.content


def test_a_user_who_may_not_read_individuals_counts_none(people, geo):
    admin_only = UserFactory(locations=[geo.district_a])
    admin_only.user_permissions.add(_permission("wagtailadmin", "access_admin"))
    body = check(admin_only, "age >= 0").json()
    assert (body["ok"], body["count"]) == (True, 0)


def _permission(app_label, codename):
    from django.contrib.auth.models import Permission

    return Permission.objects.get(content_type__app_label=app_label, codename=codename)


def test_the_answer_is_json_even_for_hostile_text(people, clerk_a):
    for text in ("__import__('os').system('id')", "age >= 18; DROP TABLE x", "age in [" + "1," * 200 + "]"):
        body = json.loads(check(clerk_a, text).content)
        assert body["ok"] is False


def test_a_user_who_may_not_see_sensitive_data_cannot_name_a_sensitive_field(geo, clerk_a, viewer_a):
    """The count of a rule like `name == ... and bank_account >= "ACC1"` would give the masked value
    away one character at a time."""
    RegistryFieldFactory(name="bank_account", label="Bank account", field_type="text", sensitive=True)
    IndividualFactory(first_name="Majaliwa", location=geo.village_a, attributes={"bank_account": "ACC07340117"})
    rule = 'first_name == "Majaliwa" and bank_account >= "ACC0"'

    refused = check(viewer_a, rule).json()
    assert refused == {"ok": False, "position": 29,
                       "error": "'bank_account' is sensitive: only users who may see sensitive data can use it in a rule."}
    assert check(clerk_a, rule).json()["count"] == 1  # clerks may see sensitive data


def test_openimis_filters_are_checked_and_answered_as_the_rule_they_mean(people, clerk_a):
    answer = check(clerk_a, "children__exact__integer=2\nage__gte__integer=18").json()
    assert answer["ok"] and answer["text"] == "children == 2 and age >= 18" and answer["count"] == 3

    refused = check(clerk_a, "children__between__integer=2").json()
    assert refused == {"ok": False, "position": None, "error": "'children__between__integer=2': 'between' is not an "
                                                               "openIMIS lookup; use exact, lt, lte, gt, gte."}
