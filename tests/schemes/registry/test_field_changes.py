"""A registry field's definition changed (decimals lowered, a choice removed, bounds tightened, a new
format or type): the values people and households already hold that it refuses are counted in SQL
(sites.fields.values_refused), and the edit form says how many before saving, until the
administrator confirms. Nothing is rewritten."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from schemes.registry.models import Household, Individual, RegistryField
from sites.fields import values_refused
from tests.factories import HouseholdFactory, IndividualFactory, RegistryFieldFactory, UserFactory

pytestmark = pytest.mark.django_db


def holding(*values, name="value"):
    """One person per value (None: a JSON null), and one without the attribute at all."""
    for value in values:
        IndividualFactory(attributes={name: value})
    IndividualFactory(attributes={})


def refused(**definition):
    definition.setdefault("name", "value")
    return values_refused(Individual.objects.all(), RegistryField(label="Value", **definition))


@pytest.mark.parametrize("definition, values, count", [
    ({"field_type": "decimal", "decimal_places": 2}, ["1200.5", "1234.567", "10", "0.125", "3.10", "3.100", None], 2),
    ({"field_type": "decimal", "decimal_places": 0}, ["12", "12.5", "-3", "0.01"], 2),
    ({"field_type": "decimal", "min_value": Decimal(0), "max_value": Decimal(1000)}, ["-1", "0", "1000", "1000.01", "500.5"], 2),
    ({"field_type": "decimal"}, ["12.5", "twelve", 7], 1),  # a text held since the type changed
    ({"field_type": "integer", "max_value": Decimal(10)}, [5, 10, 11, "12.5", "7"], 2),
    ({"field_type": "choice", "choices": ["A", "B"]}, ["A", "C", "B", "a"], 2),
    ({"field_type": "text", "min_value": Decimal(2), "max_value": Decimal(3)}, ["abcd", "ab", "a", "abc"], 2),
    ({"field_type": "text", "pattern": "[0-9]+"}, ["123", "12a", "123"], 1),
    ({"field_type": "boolean"}, [True, False, "maybe", "yes"], 1),
    ({"field_type": "date"}, ["2020-01-01", "2020-02-30", "nope"], 2),
])
def test_the_count_is_what_the_definition_refuses_one_by_one(definition, values, count):
    holding(*values)
    check = RegistryField(name="value", label="Value", **definition)
    by_python = 0
    for value in values:
        if value is not None:
            try:
                check.to_python(value)
            except Exception:  # noqa: BLE001 - any refusal counts
                by_python += 1

    found = refused(**definition)

    assert found.count == count == by_python
    assert found.reason  # one of them, and why


def test_a_decimal_held_with_more_places_is_named_with_why():
    holding("1200.5", "1234.567")

    assert refused(field_type="decimal", decimal_places=2)[:] == (1, "1234.567", "At most 2 decimals ('1234.567' has 3).")


def test_numbers_are_counted_in_one_statement():
    holding("1200.5", "1234.567", "99999")

    with CaptureQueriesContext(connection) as queries:
        found = refused(field_type="decimal", decimal_places=2, max_value=Decimal(10000))

    assert found.count == 2
    assert len(queries) == 1 and "COUNT(" in queries[0]["sql"].upper()


# --- the edit form ---------------------------------------------------------------------------------


@pytest.fixture
def admin_client():
    client = Client()
    client.force_login(UserFactory(username="fields_admin", is_superuser=True, is_staff=True))
    return client


def form_data(field, **changes):
    data = {"target": field.target, "field_type": field.field_type, "name": field.name, "label": field.label,
            "required": "", "sensitive": "on" if field.sensitive else "", "min_value": "", "max_value": "",
            "decimal_places": "" if field.decimal_places is None else field.decimal_places,
            "pattern": field.pattern, "choices": "\n".join(field.choices), "help_text": "", "sort_order": 0}
    return {**data, **changes}


@pytest.fixture
def amount():
    field = RegistryFieldFactory(name="amount", label="Amount", field_type="decimal")
    for value in ("1234.567", "1234.567", "1200.5", "0.001"):
        IndividualFactory(attributes={"amount": value})
    return field


def test_lowering_the_decimal_places_says_how_many_people_hold_more_and_saves_nothing(admin_client, amount):
    response = admin_client.post(reverse("registry_field:edit", args=[amount.pk]), form_data(amount, decimal_places=2))

    assert response.status_code == 200
    assert ("3 people hold a value this definition refuses, for example &#x27;0.001&#x27;: at most 2 decimals "
            "(&#x27;0.001&#x27; has 3). They keep it until someone changes it") in response.content.decode()
    assert 'name="confirm_refused"' in response.content.decode()
    amount.refresh_from_db()
    assert amount.decimal_places is None


def test_the_change_is_saved_once_confirmed_and_the_values_are_kept(admin_client, amount):
    url = reverse("registry_field:edit", args=[amount.pk])

    response = admin_client.post(url, form_data(amount, decimal_places=2, confirm_refused="on"))

    assert response.status_code == 302
    amount.refresh_from_db()
    assert amount.decimal_places == 2
    assert Individual.objects.filter(attributes__amount="1234.567").count() == 2


def test_a_change_that_refuses_nothing_held_saves_without_asking(admin_client, amount):
    response = admin_client.post(reverse("registry_field:edit", args=[amount.pk]),
                                 form_data(amount, decimal_places=3))

    assert response.status_code == 302
    amount.refresh_from_db()
    assert amount.decimal_places == 3


def test_the_edit_form_offers_no_confirmation_until_it_is_needed(admin_client, amount):
    page = admin_client.get(reverse("registry_field:edit", args=[amount.pk])).content.decode()

    assert 'name="confirm_refused"' not in page


def test_a_choice_removed_from_a_household_field_counts_households(admin_client):
    field = RegistryFieldFactory(name="roof", label="Roof", field_type="choice", choices=["Iron", "Thatch"],
                                 target=RegistryField.Target.HOUSEHOLD)
    for roof in ("Iron", "Thatch", "Thatch"):
        HouseholdFactory(attributes={"roof": roof})

    response = admin_client.post(reverse("registry_field:edit", args=[field.pk]), form_data(field, choices="Iron"))

    assert "2 households hold a value this definition refuses, for example &#x27;Thatch&#x27;" in (
        response.content.decode())
    assert Household.objects.filter(attributes__roof="Thatch").count() == 2


def test_a_sensitive_fields_warning_shows_no_value(admin_client):
    field = RegistryFieldFactory(name="hiv_status", label="HIV status", field_type="choice",
                                 choices=["positive", "negative"], sensitive=True)
    IndividualFactory(attributes={"hiv_status": "positive"})

    response = admin_client.post(reverse("registry_field:edit", args=[field.pk]), form_data(field, choices="negative"))

    assert "1 person holds a value this definition refuses. They keep it" in response.content.decode()
