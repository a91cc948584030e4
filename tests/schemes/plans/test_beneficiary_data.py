"""A beneficiary's plan data (the plan's schema fields): each field validated by its type, bounds,
pattern and requiredness, with the error on that field; a `unique` field's value held by one
beneficiary of the plan only (another plan may reuse it, the beneficiary may keep its own); only the
user's locations; the audit keeps old and new values (a sensitive field's masked) and the record's history
shows them by label, masked for readers who may not see them; the edit page shows and
saves the fields, and hides sensitive ones from users who may not see them (a crafted POST cannot
change them). The beneficiary list's "meets criteria" column, whose criteria may name plan
attributes, is what Python's evaluation says, row by row."""

import datetime
import re

import pytest
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone
from wagtail.models import ModelLogEntry

from schemes.plans import services
from schemes.plans.catalogues import beneficiary_catalogue, candidate_catalogue
from schemes.plans.models import Beneficiary, BeneficiaryStatus, BenefitPlan, PlanField
from schemes.plans.selectors import beneficiary_history, with_criteria_check
from schemes.registry.models import RegistryField
from schemes.rules.compiler import evaluate
from schemes.rules.nodes import from_json, to_json
from sites.audit import audit
from tests.factories import IndividualFactory, RegistryFieldFactory, UserFactory
from tests.schemes.plans.test_views import client_for

pytestmark = pytest.mark.django_db

SCHEMA = [
    {"name": "grade", "label": "Grade", "field_type": "integer", "required": True, "min_value": 1, "max_value": 12},
    {"name": "score", "label": "Score", "field_type": "decimal", "min_value": 0, "max_value": 100},
    {"name": "school_code", "label": "School code", "field_type": "text", "pattern": r"[A-Z]{3}-[0-9]{3}",
     "unique": True},
    {"name": "card", "label": "Card number", "field_type": "integer", "unique": True},
    {"name": "enrolled_on", "label": "Enrolled on", "field_type": "date"},
    {"name": "verified", "label": "Verified", "field_type": "boolean"},
    {"name": "stream", "label": "Stream", "field_type": "choice", "choices": ["science", "arts"]},
    {"name": "account", "label": "Bank account", "field_type": "text", "sensitive": True},
]


def make_plan(code, name):
    plan = BenefitPlan.objects.create(code=code, name=name, status="ACTIVE")
    for order, field in enumerate(SCHEMA):
        PlanField.objects.create(plan=plan, sort_order=order, **field)
    return plan


@pytest.fixture
def plan(db):
    return make_plan("CG", "Child grant")


def enrol(plan, name, location, **attributes):
    now = timezone.now()
    return Beneficiary.objects.create(plan=plan, individual=IndividualFactory(first_name=name, location=location),
                                      attributes=attributes, enrolled_at=now, status_changed_at=now)


@pytest.fixture
def beneficiaries(plan, geo):
    return {
        "asha": enrol(plan, "Asha", geo.village_a, grade=3, school_code="ABC-001", card=7, account="TZ12345678"),
        "amani": enrol(plan, "Amani", geo.village_a, grade=4),
        "bahati": enrol(plan, "Bahati", geo.village_b, grade=5, school_code="BBB-002", card=9),
    }


def stored(beneficiary):
    return Beneficiary.objects.get(pk=beneficiary.pk).attributes


def update(beneficiary, by, **attributes):
    return services.beneficiary_update_attributes(beneficiary=beneficiary, attributes=attributes, by=by)


def attribute_entries(beneficiary):
    return list(ModelLogEntry.objects.filter(content_type=ContentType.objects.get_for_model(Beneficiary),
                                             object_id=str(beneficiary.pk),
                                             action="mizani.beneficiary_attributes"))


# --- the service --------------------------------------------------------------------------------


def test_each_field_is_validated_and_its_error_named(beneficiaries, clerk_a):
    amani = beneficiaries["amani"]

    with pytest.raises(ValidationError) as refused:
        update(amani, clerk_a, grade="three", score="150", school_code="abc-001", card="7.5",
               enrolled_on="2024-02-30", verified="maybe", stream="music", colour="red")

    errors = refused.value.message_dict
    assert errors == {
        "grade": ["'three' is not a number (use digits only, like 12)."],
        "score": ["Must be at most 100."],
        "school_code": ["'abc-001' does not match the expected format: the pattern [A-Z]{3}-[0-9]{3}."],
        "card": ["'7.5' is not a whole number."],
        "enrolled_on": ["'2024-02-30' is not a real date."],
        "verified": ["'maybe' is not yes or no."],
        "stream": ["'music' is not one of: science, arts."],
        "colour": ["'colour' is not a defined attribute."],
    }
    assert stored(amani) == {"grade": 4}  # nothing saved
    assert attribute_entries(amani) == []


@pytest.mark.parametrize("attributes, field, message", [
    ({}, "grade", "This field is required."),
    ({"grade": "  "}, "grade", "This field is required."),
    ({"grade": 0}, "grade", "Must be at least 1."),
    ({"grade": 13}, "grade", "Must be at most 12."),
    ({"grade": 2, "score": "-0.5"}, "score", "Must be at least 0."),
    ({"grade": 2, "school_code": "ABC-0012"}, "school_code",
     "'ABC-0012' does not match the expected format: the pattern [A-Z]{3}-[0-9]{3}."),
    ({"grade": 2, "enrolled_on": "24/02/2024"}, "enrolled_on", "'24/02/2024' is not a date in the form YYYY-MM-DD."),
])
def test_bounds_pattern_and_required_are_enforced(beneficiaries, clerk_a, attributes, field, message):
    with pytest.raises(ValidationError) as refused:
        services.beneficiary_update_attributes(beneficiary=beneficiaries["amani"], attributes=attributes, by=clerk_a)

    assert refused.value.message_dict == {field: [message]}


def test_valid_data_is_stored_in_its_json_form(beneficiaries, clerk_a):
    amani = beneficiaries["amani"]

    update(amani, clerk_a, grade="12", score="99.50", school_code="XYZ-100", card=8, enrolled_on="2024-02-29",
           verified="yes", stream="arts")

    assert stored(amani) == {"grade": 12, "score": "99.5", "school_code": "XYZ-100", "card": 8,
                             "enrolled_on": "2024-02-29", "verified": True, "stream": "arts"}


def test_a_unique_value_is_refused_when_another_beneficiary_of_the_plan_holds_it(beneficiaries, clerk_a):
    amani = beneficiaries["amani"]

    with pytest.raises(ValidationError) as refused:
        update(amani, clerk_a, grade=4, school_code="ABC-001", card=7)

    assert refused.value.message_dict == {
        "school_code": ["Another beneficiary of CG already has School code ABC-001."],
        "card": ["Another beneficiary of CG already has Card number 7."],
    }
    # Held in district B, out of the clerk's sight: still the plan's, still refused.
    with pytest.raises(ValidationError, match="already has School code BBB-002"):
        update(amani, clerk_a, grade=4, school_code="BBB-002")
    assert stored(amani) == {"grade": 4}


def test_another_plan_may_reuse_a_value_and_a_beneficiary_keeps_its_own(beneficiaries, clerk_a, geo):
    other = make_plan("SG", "School grant")
    elsewhere = enrol(other, "Asha two", geo.village_a, grade=1)

    update(elsewhere, clerk_a, grade=1, school_code="ABC-001", card=7)
    update(beneficiaries["asha"], clerk_a, grade=6, school_code="ABC-001", card=7, account="TZ12345678")

    assert stored(elsewhere) == {"grade": 1, "school_code": "ABC-001", "card": 7}
    assert stored(beneficiaries["asha"]) == {"grade": 6, "school_code": "ABC-001", "card": 7,
                                             "account": "TZ12345678"}


@pytest.mark.parametrize("name", ["exact", "contains", "lt"])
def test_a_unique_field_named_like_a_lookup_is_still_checked_as_a_field(plan, geo, clerk_a, name):
    """A plan saved before such names were refused: its `exact` is read as the key, not as `attributes__exact`."""
    PlanField.objects.create(plan=plan, name=name, label="Code", field_type="text", unique=True, sort_order=99)
    enrol(plan, "Asha", geo.village_a, grade=3, **{name: "A-1"})
    amani = enrol(plan, "Amani", geo.village_a, grade=4)

    with pytest.raises(ValidationError) as refused:
        update(amani, clerk_a, grade=4, **{name: "A-1"})

    assert refused.value.message_dict == {name: ["Another beneficiary of CG already has Code A-1."]}
    update(amani, clerk_a, grade=4, **{name: "A-2"})
    assert stored(amani) == {"grade": 4, name: "A-2"}


def test_a_freed_value_may_be_taken(beneficiaries, clerk_a):
    update(beneficiaries["asha"], clerk_a, grade=3, school_code="ABC-009", account="TZ12345678")

    update(beneficiaries["amani"], clerk_a, grade=4, school_code="ABC-001", card=7)

    assert stored(beneficiaries["amani"])["school_code"] == "ABC-001"
    assert stored(beneficiaries["amani"])["card"] == 7


def test_a_value_held_by_someone_who_left_the_plan_may_be_taken(beneficiaries, clerk_a):
    asha = beneficiaries["asha"]
    BenefitPlan.objects.filter(pk=asha.plan_id).update(live_beneficiaries=3)  # the fixture enrolled three
    services.beneficiary_change_status(beneficiary=asha, action="reject", reason="Moved away", by=clerk_a)

    update(beneficiaries["amani"], clerk_a, grade=4, school_code="ABC-001", card=7)

    assert stored(beneficiaries["amani"])["school_code"] == "ABC-001"


def test_only_the_users_locations_and_with_the_permission(beneficiaries, clerk_a, viewer_a):
    bahati = beneficiaries["bahati"]

    with pytest.raises(Beneficiary.DoesNotExist):
        update(bahati, clerk_a, grade=6)
    with pytest.raises(PermissionDenied):
        update(beneficiaries["amani"], viewer_a, grade=6)

    assert stored(bahati)["grade"] == 5
    assert stored(beneficiaries["amani"])["grade"] == 4


def test_the_audit_keeps_old_and_new_values_a_sensitive_fields_masked(beneficiaries, clerk_a):
    asha = beneficiaries["asha"]

    update(asha, clerk_a, grade=5, school_code="ABC-001", card=7, stream="science", account="TZ99999999")

    [entry] = attribute_entries(asha)
    assert entry.user_id == clerk_a.pk
    assert entry.data == {"changed": ["account", "grade", "stream"],
                          "changes": {"account": ["•••••••678", "•••••••999"], "grade": [3, 5], "stream": [None, "science"]}}
    assert "TZ99999999" not in str(entry.data) and "TZ12345678" not in str(entry.data)


@pytest.mark.usefixtures("beneficiary_approval_off")
def test_the_history_shows_old_and_new_values_by_label_masked_for_readers_who_may_not_see_them(
        beneficiaries, clerk_a, editor_without_sensitive):
    asha = beneficiaries["asha"]
    update(asha, clerk_a, grade=5, school_code="ABC-001", card=8, verified="yes", account="TZ12345678")
    PlanField.objects.filter(plan=asha.plan, name="card").update(sensitive=True)  # made sensitive since
    update(asha, clerk_a, grade=5, school_code="ABC-001", card=8, verified="yes", account="TZ99999999")
    record_url = reverse("plans_beneficiary:inspect", args=[asha.pk])

    page = client_for(editor_without_sensitive).get(record_url)
    full = client_for(editor_without_sensitive).get(reverse("plans_beneficiary:history", args=[asha.pk]))
    clerks_page = client_for(clerk_a).get(record_url)

    newest, older = [entry.changes for entry in page.context["history"][:2]]
    assert newest == [("Bank account", "•••••••678", "•••••••999")]  # the trail never held them
    assert older == [("Card number", "•", "•"), ("Grade", 3, 5), ("Verified", None, "Yes")]
    html = page.content.decode()
    assert "Grade: 3 → 5" in html and "Verified: — → Yes" in html and "Card number: • → •" in html
    assert "Card number: 7 → 8" in clerks_page.content.decode()  # the clerk may see sensitive data
    assert full.status_code == 200
    assert "Changed the beneficiary&#x27;s plan data; Card number: • → •; Grade: 3 → 5" in full.content.decode()
    assert not re.search(r">\s*Edit\s*</a>", full.content.decode())  # no "Edit" button: there is no edit form


@pytest.mark.usefixtures("beneficiary_approval_off")
def test_a_field_made_sensitive_then_removed_stays_masked_in_the_history(beneficiaries, clerk_a,
                                                                         editor_without_sensitive):
    """Security review: once its definition was gone, the field's values showed in full to a reader
    without the permission (its sensitivity is no longer known)."""
    asha = beneficiaries["asha"]
    update(asha, clerk_a, grade=3, school_code="ABC-001", card=98765, account="TZ12345678")
    PlanField.objects.filter(plan=asha.plan, name="card").update(sensitive=True)  # it holds card numbers
    PlanField.objects.filter(plan=asha.plan, name="card").delete()  # then it leaves the schema
    reader, clerk = client_for(editor_without_sensitive), client_for(clerk_a)

    record = reader.get(reverse("plans_beneficiary:inspect", args=[asha.pk]))
    history = reader.get(reverse("plans_beneficiary:history", args=[asha.pk])).content.decode()

    assert record.context["history"][0].changes == [("card", "•", "•••••")]
    assert "98765" not in record.content.decode() and "98765" not in history
    assert "card: • → •••••" in history
    assert "card: 7 → 98765" in clerk.get(reverse("plans_beneficiary:history", args=[asha.pk])).content.decode()


def test_the_history_shows_an_amount_to_its_fields_places(beneficiaries, clerk_a):
    asha = beneficiaries["asha"]
    PlanField.objects.create(plan=asha.plan, sort_order=9, name="top_up", label="Top-up", field_type="decimal",
                             decimal_places=2)
    audit(asha, "mizani.beneficiary_attributes", by=clerk_a,
          data={"changed": ["top_up"], "changes": {"top_up": ["1200.5", "1300"]}})

    [entry] = beneficiary_history(asha, clerk_a)

    assert entry.changes == [("Top-up", "1200.50", "1300.00")]


def test_an_entry_written_before_values_were_kept_names_its_fields(beneficiaries, clerk_a):
    asha = beneficiaries["asha"]
    audit(asha, "mizani.beneficiary_attributes", by=clerk_a, data={"changed": ["grade", "gone"]})

    [entry] = beneficiary_history(asha, clerk_a)

    assert entry.changes == [("Grade", None, None), ("gone", None, None)]


# --- the page -----------------------------------------------------------------------------------


@pytest.mark.usefixtures("beneficiary_approval_off")
def test_the_page_shows_the_current_values_and_saves_the_form(beneficiaries, clerk_a):
    asha = beneficiaries["asha"]
    url = reverse("plans_beneficiary:edit_data", args=[asha.pk])
    client = client_for(clerk_a)

    form = client.get(url).context["form"]
    assert form["attr_grade"].value() == 3
    assert form["attr_school_code"].value() == "ABC-001"
    assert form["attr_account"].value() == "TZ12345678"  # a clerk may see sensitive data
    response = client.post(url, {"attr_grade": "7", "attr_score": "12.25", "attr_school_code": "ABC-001",
                                 "attr_card": "7", "attr_enrolled_on": "2025-01-31", "attr_verified": "false",
                                 "attr_stream": "science", "attr_account": "TZ12345678"})

    assert response.status_code == 302 and response["Location"] == reverse("plans_beneficiary:inspect",
                                                                          args=[asha.pk])
    assert stored(asha) == {"grade": 7, "score": "12.25", "school_code": "ABC-001", "card": 7,
                            "enrolled_on": "2025-01-31", "verified": False, "stream": "science",
                            "account": "TZ12345678"}


def test_the_page_puts_each_error_on_its_field(beneficiaries, clerk_a):
    amani = beneficiaries["amani"]
    url = reverse("plans_beneficiary:edit_data", args=[amani.pk])

    response = client_for(clerk_a).post(url, {"attr_grade": "40", "attr_school_code": "ABC-001", "attr_card": "9"})

    errors = response.context["form"].errors
    assert response.status_code == 200
    assert errors["attr_grade"] == ["Must be at most 12."]
    assert "School code" in response.content.decode()
    assert stored(amani) == {"grade": 4}

    unique = client_for(clerk_a).post(url, {"attr_grade": "4", "attr_school_code": "ABC-001", "attr_card": "9"})

    assert unique.context["form"].errors == {
        "attr_school_code": ["Another beneficiary of CG already has School code ABC-001."],
        "attr_card": ["Another beneficiary of CG already has Card number 9."]}
    assert "Another beneficiary of CG already has School code ABC-001." in unique.content.decode()
    assert stored(amani) == {"grade": 4}


def test_the_page_shows_every_fields_error_at_once_an_impossible_date_included(beneficiaries, clerk_a):
    """QA: with 2026-02-30 in one field, the other fields' mistakes (a format, a bound, decimals) were
    shown only once the date was put right."""
    amani = beneficiaries["amani"]
    PlanField.objects.filter(plan=amani.plan, name="score").update(decimal_places=1)
    url = reverse("plans_beneficiary:edit_data", args=[amani.pk])

    response = client_for(clerk_a).post(url, {"attr_grade": "40", "attr_score": "12.25", "attr_school_code": "abc",
                                              "attr_enrolled_on": "2026-02-30"})

    errors = response.context["form"].errors
    assert set(errors) == {"attr_grade", "attr_score", "attr_school_code", "attr_enrolled_on"}
    assert errors["attr_grade"] == ["Must be at most 12."]
    assert errors["attr_score"] == ["At most 1 decimal ('12.25' has 2)."]
    assert errors["attr_school_code"] == ["'abc' does not match the expected format: the pattern [A-Z]{3}-[0-9]{3}."]
    assert stored(amani) == {"grade": 4}


@pytest.mark.usefixtures("beneficiary_approval_off")
def test_a_value_stored_before_its_field_changed_does_not_block_the_form(beneficiaries, clerk_a):
    """The form's own check keeps the engine's leniency: a stored value sent back as it is passes."""
    asha = beneficiaries["asha"]
    PlanField.objects.filter(plan=asha.plan, name="school_code").update(pattern=r"[A-Z]{3}")
    url = reverse("plans_beneficiary:edit_data", args=[asha.pk])

    response = client_for(clerk_a).post(url, {"attr_grade": "5", "attr_school_code": "ABC-001", "attr_card": "7",
                                              "attr_account": "TZ12345678"})

    assert response.status_code == 302
    assert stored(asha)["grade"] == 5 and stored(asha)["school_code"] == "ABC-001"


def test_the_page_is_limited_to_the_users_locations_and_the_permission(beneficiaries, clerk_a, viewer_a):
    url_b = reverse("plans_beneficiary:edit_data", args=[beneficiaries["bahati"].pk])
    url_a = reverse("plans_beneficiary:edit_data", args=[beneficiaries["amani"].pk])

    assert client_for(clerk_a).get(url_b).status_code == 404
    assert client_for(clerk_a).post(url_b, {"attr_grade": "6"}).status_code == 404
    viewer = client_for(viewer_a)
    for response in (viewer.get(url_a), viewer.post(url_a, {"attr_grade": "6"})):
        assert response.status_code == 403 or response["Location"] == reverse("wagtailadmin_home")
    assert stored(beneficiaries["bahati"])["grade"] == 5
    assert stored(beneficiaries["amani"])["grade"] == 4


@pytest.fixture
def editor_without_sensitive(geo):
    """May change beneficiaries, may not see sensitive data."""
    user = UserFactory(role="Viewer", locations=[geo.district_a])
    user.user_permissions.add(Permission.objects.get(content_type__app_label="plans", codename="change_beneficiary"))
    user = type(user).objects.get(pk=user.pk)
    assert not user.has_perm("registry.view_sensitive_data")
    return user


@pytest.mark.usefixtures("beneficiary_approval_off")
def test_sensitive_fields_are_hidden_and_kept_when_saved(beneficiaries, editor_without_sensitive):
    asha = beneficiaries["asha"]
    client = client_for(editor_without_sensitive)
    url = reverse("plans_beneficiary:edit_data", args=[asha.pk])

    page = client.get(url)
    record = client.get(reverse("plans_beneficiary:inspect", args=[asha.pk])).content.decode()
    response = client.post(url, {"attr_grade": "8", "attr_school_code": "ABC-001", "attr_card": "7",
                                 "attr_account": "CRAFTED-999"})

    assert "attr_account" not in page.context["form"].fields
    assert "TZ12345678" not in page.content.decode() and "Bank account" not in page.content.decode()
    assert "TZ12345678" not in record and "•••••••678" in record  # masked on the record page
    assert response.status_code == 302
    assert stored(asha) == {"grade": 8, "school_code": "ABC-001", "card": 7, "account": "TZ12345678"}


# --- whether each beneficiary still meets the plan's criteria ------------------------------------------


def test_the_criteria_check_per_row_is_pythons_answer_plan_attributes_included(plan, geo, national_clerk):
    RegistryFieldFactory(name="kids", field_type="integer")
    catalogue = candidate_catalogue(plan)
    criteria = {status: {"text": text, "rule": to_json(services.criteria_node(text, catalogue))} for status, text in (
        (BeneficiaryStatus.POTENTIAL, "grade >= 5 and kids >= 1"),
        (BeneficiaryStatus.ACTIVE, "verified or score > 50"),
    )}
    BenefitPlan.objects.filter(pk=plan.pk).update(criteria=criteria)
    plan.refresh_from_db()
    now = timezone.now()
    rows = [  # name, status, person's attributes, plan attributes, expected
        ("p_yes", "POTENTIAL", {"kids": 2}, {"grade": 6}, True),
        ("p_low_grade", "POTENTIAL", {"kids": 2}, {"grade": 4}, False),
        ("p_no_grade", "POTENTIAL", {"kids": 2}, {}, False),  # unknown is not "meets"
        ("p_no_kids", "POTENTIAL", {}, {"grade": 9}, False),
        ("a_verified", "ACTIVE", {}, {"verified": True}, True),
        ("a_score", "ACTIVE", {}, {"verified": False, "score": "50.5"}, True),
        ("a_no", "ACTIVE", {}, {"verified": False, "score": "50"}, False),
        ("a_null", "ACTIVE", {}, {"verified": None}, False),
        ("s_none", "SUSPENDED", {"kids": 3}, {"grade": 9, "verified": True}, None),  # no criteria for it
    ]
    for name, status, person, attributes, _ in rows:
        Beneficiary.objects.create(plan=plan, status=status, attributes=attributes, enrolled_at=now,
                                   status_changed_at=now, individual=IndividualFactory(
                                       first_name=name, location=geo.village_a, attributes=person,
                                       dob=datetime.date(1990, 1, 1)))
    rules = {status: from_json(entry["rule"]) for status, entry in plan.criteria.items()}
    catalogue = beneficiary_catalogue(plan)

    checked = with_criteria_check(Beneficiary.objects.filter(plan=plan).select_related("individual"), plan)

    in_sql = {row.individual.first_name: row.meets_criteria for row in checked}
    in_python = {row.individual.first_name: (evaluate(rules[row.status], catalogue, row) is True
                                             if row.status in rules else None) for row in checked}
    assert in_sql == in_python == {name: expected for name, *_, expected in rows}

    listing = client_for(national_clerk).get(reverse("plans_beneficiary:index"), {"plan": plan.pk})
    shown = {row.individual.first_name: row.meets_criteria for row in listing.context["object_list"]}
    assert shown == in_python
    html = listing.content.decode()
    cells = re.findall(r"<td\s*>\s*(Yes|No|—)\s*</td>", html)
    assert "Meets criteria" in html
    assert sorted(cells) == sorted({True: "Yes", False: "No", None: "—"}[value] for value in in_python.values())


def test_the_list_still_opens_when_a_field_named_by_the_criteria_is_gone(plan, geo, clerk_a):
    """The criteria no longer check: the list shows "—" for them and the plan page says why."""
    RegistryFieldFactory(name="kids", field_type="integer")
    rule = to_json(services.criteria_node("kids >= 1", candidate_catalogue(plan)))
    BenefitPlan.objects.filter(pk=plan.pk).update(criteria={"POTENTIAL": {"text": "kids >= 1", "rule": rule}})
    enrol(plan, "Asha", geo.village_a, grade=3)
    RegistryField.objects.filter(name="kids").delete()
    client = client_for(clerk_a)
    client.raise_request_exception = False

    response = client.get(reverse("plans_beneficiary:index"), {"plan": plan.pk})

    assert response.status_code == 200
    assert [row.meets_criteria for row in response.context["object_list"]] == [None]
    page = client.get(reverse("plans_plan:inspect", args=[plan.pk])).content.decode()
    assert "The criteria for potential beneficiaries no longer check: Unknown field &#x27;kids&#x27;" in page
