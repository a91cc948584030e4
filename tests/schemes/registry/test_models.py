import datetime
import importlib
import re
from types import SimpleNamespace

import pytest
from django.apps import apps as django_apps
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from schemes.registry.models import (
    Household,
    Individual,
    MemberRole,
    Membership,
    national_id_problem,
    normalise_national_id,
    phone_problem,
)
from tests.factories import HouseholdFactory, IndividualFactory, MembershipFactory

# --- normalise_national_id --------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("  AB123456  ", "AB123456"),
        ("ab123456", "AB123456"),  # upper-cased
        ("１２３４５６", "123456"),  # full-width digits (NFKC)
        ("ＡＢ１２３", "AB123"),  # full-width letters (NFKC)
        ("١٢٣٤٥٦", "123456"),  # Arabic-Indic digits
        ("۱۲۳۴۵۶", "123456"),  # Extended Arabic-Indic (Persian) digits
        ("12-34-56", "123456"),  # dashes
        ("12 34\t56", "123456"),  # inner spaces and tabs
        ("12\u00a034", "1234"),  # no-break space
        ("12－34", "1234"),  # full-width hyphen-minus (NFKC makes it "-")
        ("12.34/56_7", "1234567"),  # dots, slashes, underscores
        (" 12-34 ", "1234"),
        (123456, "123456"),  # a number read from a spreadsheet cell
    ],
)
def test_normalise_national_id(raw, expected):
    assert normalise_national_id(raw) == expected


@pytest.mark.parametrize("raw", ["12\u201034", "12\u201134", "12\u201334"])
def test_normalise_national_id_removes_unicode_dashes(raw):
    # Hyphen (U+2010), non-breaking hyphen (U+2011) and en dash (U+2013) are what word processors
    # and spreadsheets put in "12-34"; they are dashes too and must not create a second identity.
    assert normalise_national_id(raw) == "1234"


@pytest.mark.parametrize("raw", [None, "", "   ", " - ", "--", "\t"])
def test_empty_national_id_becomes_none(raw):
    assert normalise_national_id(raw) is None


def test_normalisation_is_idempotent():
    for raw in ["ab-12 34", "١٢٣", "１２", "x.y/z"]:
        once = normalise_national_id(raw)
        assert normalise_national_id(once) == once


TWELVE_DIGITS = (re.compile(r"[0-9]{12}"), "12 digits")


@pytest.mark.parametrize("national_id, expected", [
    ("012345678901", ""),
    ("12345678901", "Not a national ID (12 digits). Its leading zeros look lost"),
    ("123456789", "Not a national ID (12 digits). Its leading zeros look lost"),
    ("1234567890123", "Not a national ID (12 digits)."),
    ("AB1234567890", "Not a national ID (12 digits)."),
])
def test_a_national_id_outside_the_country_format_is_named(national_id, expected):
    problem = national_id_problem(national_id, TWELVE_DIGITS)

    assert problem.startswith(expected) if expected else problem == ""
    assert ("leading zeros" in problem) == ("leading zeros" in expected)


def test_without_a_country_format_any_national_id_is_accepted():
    assert national_id_problem("X", None) == ""


# --- age --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dob, on, age",
    [
        (datetime.date(2000, 6, 15), datetime.date(2024, 6, 14), 23),
        (datetime.date(2000, 6, 15), datetime.date(2024, 6, 15), 24),
        (datetime.date(2020, 2, 29), datetime.date(2025, 2, 28), 4),
        (datetime.date(2020, 2, 29), datetime.date(2025, 3, 1), 5),
        (datetime.date(2024, 1, 1), datetime.date(2024, 1, 1), 0),
    ],
)
def test_age(dob, on, age):
    assert Individual(dob=dob).age(on) == age


# --- database constraints ---------------------------------------------------------------------


@pytest.mark.django_db
def test_two_live_records_cannot_share_a_national_id():
    IndividualFactory(national_id="1234")

    with pytest.raises(IntegrityError):
        with transaction.atomic():
            IndividualFactory(national_id="1234")

    assert Individual.objects.filter(national_id="1234").count() == 1


@pytest.mark.django_db
def test_a_soft_deleted_record_does_not_block_its_national_id():
    IndividualFactory(national_id="1234", deleted_at=timezone.now())
    IndividualFactory(national_id="1234", deleted_at=timezone.now())

    live = IndividualFactory(national_id="1234")

    assert Individual.objects.filter(national_id="1234").count() == 3
    assert list(Individual.objects.live().filter(national_id="1234")) == [live]


@pytest.mark.django_db
def test_undeleting_into_a_taken_national_id_is_refused_by_the_database():
    gone = IndividualFactory(national_id="1234", deleted_at=timezone.now())
    IndividualFactory(national_id="1234")

    with pytest.raises(IntegrityError):
        with transaction.atomic():
            Individual.objects.filter(pk=gone.pk).update(deleted_at=None)


@pytest.mark.django_db
def test_records_without_national_id_do_not_collide():
    IndividualFactory(national_id=None)
    IndividualFactory(national_id=None)

    assert Individual.objects.filter(national_id__isnull=True).count() == 2


@pytest.mark.django_db
def test_one_head_per_household_is_enforced_by_the_database(member_roles):
    household = HouseholdFactory()
    MembershipFactory(household=household, role=member_roles["HEAD"])

    with pytest.raises(IntegrityError):
        with transaction.atomic():
            MembershipFactory(household=household, role=member_roles["HEAD"])

    # Another household may have its own head.
    MembershipFactory(role=member_roles["HEAD"])
    assert Membership.objects.filter(role_id=MemberRole.HEAD).count() == 2


@pytest.mark.django_db
def test_one_primary_recipient_per_household_is_enforced_by_the_database(member_roles):
    household = HouseholdFactory()
    MembershipFactory(household=household, role=member_roles["HEAD"], recipient_type="PRIMARY")
    MembershipFactory(household=household, role=member_roles["SON"], recipient_type="SECONDARY")
    MembershipFactory(
        household=household, role=member_roles["DAUGHTER"], recipient_type="SECONDARY"
    )

    with pytest.raises(IntegrityError):
        with transaction.atomic():
            MembershipFactory(
                household=household, role=member_roles["SPOUSE"], recipient_type="PRIMARY"
            )

    assert household.memberships.count() == 3


@pytest.mark.django_db
def test_a_person_belongs_to_one_household_in_the_database(member_roles):
    person = IndividualFactory()
    MembershipFactory(individual=person)

    with pytest.raises(IntegrityError):
        with transaction.atomic():
            MembershipFactory(individual=person, role=member_roles["SON"])


@pytest.mark.django_db
@pytest.mark.parametrize("second", ["HH-1", "hh-1", "Hh-1"])
def test_household_codes_are_unique_whatever_their_case(second):
    HouseholdFactory(code="HH-1")

    with pytest.raises(IntegrityError):
        with transaction.atomic():
            HouseholdFactory(code=second)


@pytest.mark.django_db
def test_a_household_code_taken_in_another_case_is_explained_by_model_validation():
    HouseholdFactory(code="BH-1")

    with pytest.raises(ValidationError, match="Another household already has this code"):
        Household(code="bh-1").validate_constraints()


@pytest.mark.django_db
def test_the_migration_names_household_codes_differing_only_in_case_and_renames_none():
    migration = importlib.import_module("schemes.registry.migrations.0010_household_code_any_case")
    with connection.cursor() as cursor:  # as before the migration (the test's transaction restores it)
        cursor.execute("DROP INDEX household_code_unique_any_case")
    HouseholdFactory(code="BH-1")
    HouseholdFactory(code="bh-1")
    HouseholdFactory(code="BH-2")
    HouseholdFactory(code="Kaya-9")
    HouseholdFactory(code="KAYA-9")

    with pytest.raises(RuntimeError) as refused:
        migration.refuse_codes_differing_only_in_case(django_apps, SimpleNamespace(connection=connection))

    message = str(refused.value)
    assert "'BH-1' / 'bh-1'" in message and "'KAYA-9' / 'Kaya-9'" in message and "BH-2" not in message
    assert "2 codes" in message
    assert set(Household.objects.values_list("code", flat=True)) == {"BH-1", "bh-1", "BH-2", "Kaya-9", "KAYA-9"}


@pytest.mark.django_db
def test_household_head_property(member_roles):
    household = HouseholdFactory()
    assert household.head is None
    head = IndividualFactory()
    MembershipFactory(household=household, individual=head, role=member_roles["HEAD"])
    MembershipFactory(household=household, role=member_roles["SON"])

    assert household.head == head


# --- generated search name --------------------------------------------------------------------


@pytest.mark.django_db
def test_search_name_is_generated_by_the_database():
    person = IndividualFactory(first_name="Amina", last_name="YUSUF")

    assert Individual.objects.get(pk=person.pk).search_name == "amina yusuf"


@pytest.mark.django_db
def test_search_name_follows_updates():
    person = IndividualFactory(first_name="Amina", last_name="Yusuf")

    person.last_name = "Bello"
    person.save()
    Individual.objects.filter(pk=person.pk).update(first_name="HALIMA")

    assert Individual.objects.get(pk=person.pk).search_name == "halima bello"
    assert Individual.objects.filter(search_name="halima bello").count() == 1


@pytest.mark.django_db
def test_search_name_lowercases_non_ascii_letters():
    # Search lower-cases the query in Python; the stored name must be lower-cased the same way, or
    # "élodie" never finds "Élodie".
    person = IndividualFactory(first_name="Élodie", last_name="ÇAMARA")

    assert Individual.objects.get(pk=person.pk).search_name == "élodie çamara"


@pytest.mark.django_db
def test_soft_delete_queryset_helpers():
    live = IndividualFactory()
    gone = IndividualFactory(deleted_at=timezone.now())

    assert list(Individual.objects.live()) == [live]
    assert list(Individual.objects.deleted()) == [gone]
    assert gone.is_deleted and not live.is_deleted


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the guards are PostgreSQL triggers")
@pytest.mark.parametrize("table, key", [("registry_individual", "id"), ("registry_household", "id"),
                                        ("registry_memberrole", "code")])
def test_nothing_a_membership_names_can_be_deleted_even_in_sql(db, member_roles, table, key):
    """Memberships have no foreign-key constraints (import speed): triggers refuse instead."""
    membership = MembershipFactory(role=member_roles["SPOUSE"])
    value = {"registry_individual": membership.individual_id, "registry_household": membership.household_id,
             "registry_memberrole": "SPOUSE"}[table]
    with pytest.raises(IntegrityError, match="has_members"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE {key} = %s", [value])
    if key == "code":
        with pytest.raises(IntegrityError, match="has_members"), transaction.atomic(), \
                connection.cursor() as cursor:
            cursor.execute("UPDATE registry_memberrole SET code = 'PARTNER' WHERE code = 'SPOUSE'")


def test_the_orm_still_cascades_a_deleted_household_to_its_memberships(db, member_roles):
    membership = MembershipFactory()
    membership.household.delete()
    assert not Membership.objects.filter(pk=membership.pk).exists()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the guard is a PostgreSQL trigger")
@pytest.mark.parametrize("factory", [IndividualFactory, HouseholdFactory])
def test_a_location_that_records_are_placed_at_cannot_be_deleted_even_in_sql(db, factory):
    from tests.factories import LocationFactory

    record = factory(location=LocationFactory())
    with pytest.raises(IntegrityError, match="location_has_records"), transaction.atomic(), \
            connection.cursor() as cursor:
        cursor.execute("DELETE FROM sites_location WHERE id = %s", [record.location_id])


@pytest.mark.parametrize("phone", ["+255 712 345 678", "0712-345-678", "(022) 211 3456"])
def test_phone_numbers_as_people_write_them_are_phone_numbers(phone):
    assert phone_problem(phone) == ""


@pytest.mark.parametrize("phone", ["-255712345679", "12345", "+255 712 abc", "--"])
def test_what_is_not_a_phone_number_is_named(phone):
    assert phone_problem(phone) == f"'{phone}' is not a phone number (6 to 15 digits; spaces, + - ( ) . allowed)."
