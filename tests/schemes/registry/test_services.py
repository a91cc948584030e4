import datetime

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone
from wagtail.models import ModelLogEntry

from schemes.registry import services
from schemes.registry.models import Household, Individual, MemberRole, Membership
from sites.audit import audit
from sites.models import OrganisationSettings
from tests.factories import (
    HouseholdFactory,
    IndividualFactory,
    MembershipFactory,
    RegistryFieldFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def person(location, **overrides):
    fields = {
        "first_name": "Amina",
        "last_name": "Yusuf",
        "dob": datetime.date(1990, 5, 17),
        "sex": "F",
        "location": location,
    }
    fields.update(overrides)
    return fields


def counts():
    return (
        Individual.objects.count(),
        Household.objects.count(),
        Membership.objects.count(),
        ModelLogEntry.objects.count(),
    )


def refused(exc_info):
    """message_dict of a ValidationError, or {'__all__': messages} for a non-field error."""
    error = exc_info.value
    return error.message_dict if hasattr(error, "error_dict") else {"__all__": error.messages}


def reload(record):
    return type(record).objects.get(pk=record.pk)


# === individuals: the happy paths =============================================================


def test_create_normalises_and_saves(clerk_a, geo):
    created = services.individual_create(
        fields=person(
            geo.village_a, first_name="  Amina ", national_id=" ab-12 34 ", phone=" +254700 "
        ),
        by=clerk_a,
    )

    saved = reload(created)
    assert (saved.first_name, saved.last_name, saved.national_id, saved.phone) == (
        "Amina",
        "Yusuf",
        "AB1234",
        "+254700",
    )
    assert saved.location == geo.village_a
    assert saved.deleted_at is None
    assert Individual.objects.count() == 1


def test_create_stores_typed_attributes(clerk_a, geo):
    RegistryFieldFactory(name="children", field_type="integer", min_value=0)
    RegistryFieldFactory(name="income", field_type="decimal")
    RegistryFieldFactory(name="disabled", field_type="boolean")
    RegistryFieldFactory(name="household_code", field_type="text", target="household")

    created = services.individual_create(
        fields=person(geo.village_a),
        attributes={"children": "3", "income": "120.50", "disabled": "no"},
        by=clerk_a,
    )

    assert reload(created).attributes == {"children": 3, "income": "120.5", "disabled": False}


def test_update_changes_fields_and_keeps_attributes(clerk_a, geo):
    RegistryFieldFactory(name="children", field_type="integer")
    record = services.individual_create(
        fields=person(geo.village_a), attributes={"children": 2}, by=clerk_a
    )

    services.individual_update(
        individual=record, fields={"last_name": "Bello", "location": geo.ward_a}, by=clerk_a
    )

    saved = reload(record)
    assert (saved.last_name, saved.location) == ("Bello", geo.ward_a)
    assert saved.attributes == {"children": 2}


def test_update_replaces_attributes_when_given(clerk_a, geo):
    RegistryFieldFactory(name="children", field_type="integer")
    RegistryFieldFactory(name="income", field_type="decimal")
    record = services.individual_create(
        fields=person(geo.village_a), attributes={"children": 2}, by=clerk_a
    )

    services.individual_update(
        individual=record, fields={}, attributes={"income": "10.00"}, by=clerk_a
    )

    assert reload(record).attributes == {"income": "10"}


def test_soft_delete_and_restore(clerk_a, geo):
    record = services.individual_create(
        fields=person(geo.village_a, national_id="1234"), by=clerk_a
    )

    services.individual_soft_delete(individual=record, by=clerk_a)
    assert reload(record).deleted_at is not None
    assert not Individual.objects.live().filter(pk=record.pk).exists()

    services.individual_restore(individual=record, by=clerk_a)
    assert reload(record).deleted_at is None
    assert Individual.objects.live().filter(pk=record.pk).exists()


def test_soft_delete_and_restore_twice_are_no_ops(clerk_a, geo):
    record = services.individual_create(fields=person(geo.village_a), by=clerk_a)
    services.individual_soft_delete(individual=record, by=clerk_a)
    deleted_at = reload(record).deleted_at

    services.individual_soft_delete(individual=record, by=clerk_a)
    assert reload(record).deleted_at == deleted_at
    services.individual_restore(individual=record, by=clerk_a)
    services.individual_restore(individual=record, by=clerk_a)

    actions = list(ModelLogEntry.objects.for_instance(record).order_by("id").values_list("action", flat=True))
    assert actions == ["wagtail.create", "mizani.soft_delete", "mizani.restore"]


def test_a_deleted_record_cannot_be_edited(clerk_a, geo):
    record = IndividualFactory(location=geo.village_a, deleted_at=timezone.now())

    with pytest.raises(ValidationError) as exc:
        services.individual_update(individual=record, fields={"last_name": "X"}, by=clerk_a)

    assert "restore it first" in refused(exc)["__all__"][0]
    assert reload(record).last_name != "X"


def test_national_clerk_may_create_without_location(national_clerk):
    record = services.individual_create(fields=person(None), by=national_clerk)

    assert reload(record).location is None


# === individuals: permission and scope refusals ==============================================


def test_viewer_cannot_create_update_delete_or_restore(viewer_a, geo):
    record = IndividualFactory(location=geo.village_a, last_name="Before")
    gone = IndividualFactory(location=geo.village_a, deleted_at=timezone.now())
    before = counts()

    with pytest.raises(PermissionDenied, match="Your role does not allow you to register people"):
        services.individual_create(fields=person(geo.village_a), by=viewer_a)
    with pytest.raises(PermissionDenied, match="Your role does not allow you to change people's records"):
        services.individual_update(individual=record, fields={"last_name": "After"}, by=viewer_a)
    with pytest.raises(PermissionDenied, match="Your role does not allow you to delete or restore people's records"):
        services.individual_soft_delete(individual=record, by=viewer_a)
    with pytest.raises(PermissionDenied):
        services.individual_restore(individual=gone, by=viewer_a)

    assert counts() == before
    assert reload(record).last_name == "Before" and reload(record).deleted_at is None
    assert reload(gone).deleted_at is not None


def test_clerk_cannot_create_in_another_district(clerk_a, geo):
    with pytest.raises(PermissionDenied, match="outside your locations"):
        services.individual_create(fields=person(geo.village_b), by=clerk_a)

    assert Individual.objects.count() == 0


def test_clerk_cannot_create_a_record_without_location(clerk_a):
    with pytest.raises(PermissionDenied, match="national scope"):
        services.individual_create(fields=person(None), by=clerk_a)

    assert Individual.objects.count() == 0


def test_clerk_without_any_access_cannot_create(geo):
    clerk = UserFactory(role="Clerk")

    with pytest.raises(PermissionDenied):
        services.individual_create(fields=person(geo.village_a), by=clerk)
    assert Individual.objects.count() == 0


def test_records_of_another_district_are_reported_missing(clerk_a, geo):
    record = IndividualFactory(location=geo.village_b, last_name="Before")
    gone = IndividualFactory(location=geo.village_b, deleted_at=timezone.now())
    before = counts()

    with pytest.raises(Individual.DoesNotExist):
        services.individual_update(individual=record, fields={"last_name": "After"}, by=clerk_a)
    with pytest.raises(Individual.DoesNotExist):
        services.individual_soft_delete(individual=record, by=clerk_a)
    with pytest.raises(Individual.DoesNotExist):
        services.individual_restore(individual=gone, by=clerk_a)

    assert counts() == before
    assert reload(record).last_name == "Before" and reload(record).deleted_at is None
    assert reload(gone).deleted_at is not None


def test_records_without_location_are_out_of_a_district_clerks_reach(clerk_a):
    record = IndividualFactory(location=None, last_name="Before")

    with pytest.raises(Individual.DoesNotExist):
        services.individual_update(individual=record, fields={"last_name": "After"}, by=clerk_a)
    assert reload(record).last_name == "Before"


def test_clerk_cannot_move_a_record_out_of_their_district(clerk_a, geo):
    record = IndividualFactory(location=geo.village_a)

    with pytest.raises(PermissionDenied):
        services.individual_update(
            individual=record, fields={"location": geo.village_b}, by=clerk_a
        )
    with pytest.raises(PermissionDenied):
        services.individual_update(individual=record, fields={"location": None}, by=clerk_a)

    assert reload(record).location == geo.village_a
    assert not ModelLogEntry.objects.exclude(action="mizani.access_change").exists()


# === individuals: validation ==================================================================


def test_date_of_birth_in_the_future_is_refused(clerk_a, geo):
    tomorrow = timezone.localdate() + datetime.timedelta(days=1)

    with pytest.raises(ValidationError) as exc:
        services.individual_create(fields=person(geo.village_a, dob=tomorrow), by=clerk_a)

    assert refused(exc) == {"dob": ["The date of birth is in the future."]}
    assert Individual.objects.count() == 0


def test_date_of_birth_today_and_in_1900_are_accepted(clerk_a, geo):
    services.individual_create(fields=person(geo.village_a, dob=timezone.localdate()), by=clerk_a)
    services.individual_create(
        fields=person(geo.village_a, dob=datetime.date(1900, 1, 1)), by=clerk_a
    )

    assert Individual.objects.count() == 2


def test_date_of_birth_before_1900_is_refused(clerk_a, geo):
    with pytest.raises(ValidationError) as exc:
        services.individual_create(
            fields=person(geo.village_a, dob=datetime.date(1899, 12, 31)), by=clerk_a
        )

    assert refused(exc) == {"dob": ["The date of birth is before 1900."]}
    assert Individual.objects.count() == 0


@pytest.mark.parametrize(
    "dob, message",
    [
        ("2999-01-01", "The date of birth is in the future."),
        ("1850-06-01", "The date of birth is before 1900."),
    ],
)
def test_date_of_birth_given_as_text_is_checked_too(clerk_a, geo, dob, message):
    # Imports and the API hand dates over as ISO text; the same rules must apply.
    with pytest.raises(ValidationError) as exc:
        services.individual_create(fields=person(geo.village_a, dob=dob), by=clerk_a)

    assert refused(exc).get("dob") == [message]
    assert Individual.objects.count() == 0


def test_date_of_birth_update_is_checked(clerk_a, geo):
    record = IndividualFactory(location=geo.village_a)

    with pytest.raises(ValidationError) as exc:
        services.individual_update(
            individual=record, fields={"dob": datetime.date(1800, 1, 1)}, by=clerk_a
        )

    assert "dob" in refused(exc)
    assert reload(record).dob == datetime.date(1990, 6, 15)


def test_duplicate_national_id_is_refused(clerk_a, geo):
    IndividualFactory(national_id="1234", location=geo.village_b)

    with pytest.raises(ValidationError) as exc:
        services.individual_create(fields=person(geo.village_a, national_id="1234"), by=clerk_a)

    assert refused(exc) == {
        "national_id": ["This national ID is already registered to another person."]
    }
    assert Individual.objects.count() == 1


def test_a_national_id_outside_the_country_format_is_refused(clerk_a, geo):
    organisation = OrganisationSettings.load()
    organisation.national_id_pattern, organisation.national_id_format = "[0-9]{12}", "12 digits"
    organisation.save()

    with pytest.raises(ValidationError) as exc:
        services.individual_create(fields=person(geo.village_a, national_id="12345678901"), by=clerk_a)
    created = services.individual_create(fields=person(geo.village_a, national_id="0123-4567-8901"), by=clerk_a)

    assert refused(exc)["national_id"][0].startswith("Not a national ID (12 digits).")
    assert created.national_id == "012345678901"


@pytest.mark.parametrize("typed", [" 12-34 ", "12 34", "１２３４", "١٢٣٤", "12.34"])
def test_duplicate_national_id_is_found_after_normalisation(clerk_a, geo, typed):
    services.individual_create(fields=person(geo.village_a, national_id="1234"), by=clerk_a)

    with pytest.raises(ValidationError) as exc:
        services.individual_create(fields=person(geo.village_a, national_id=typed), by=clerk_a)

    assert list(refused(exc)) == ["national_id"]
    assert Individual.objects.count() == 1


def test_duplicate_national_id_is_refused_on_update(clerk_a, geo):
    IndividualFactory(national_id="1234")
    record = IndividualFactory(national_id="5678", location=geo.village_a)

    with pytest.raises(ValidationError) as exc:
        services.individual_update(individual=record, fields={"national_id": "12-34"}, by=clerk_a)

    assert list(refused(exc)) == ["national_id"]
    assert reload(record).national_id == "5678"


def test_keeping_ones_own_national_id_on_update_is_fine(clerk_a, geo):
    record = IndividualFactory(national_id="1234", location=geo.village_a)

    services.individual_update(
        individual=record, fields={"national_id": "12-34", "last_name": "Z"}, by=clerk_a
    )

    assert (reload(record).national_id, reload(record).last_name) == ("1234", "Z")


def test_national_id_of_a_deleted_record_may_be_reused(clerk_a, geo):
    IndividualFactory(national_id="1234", deleted_at=timezone.now())

    services.individual_create(fields=person(geo.village_a, national_id="1234"), by=clerk_a)

    assert Individual.objects.live().filter(national_id="1234").count() == 1


def test_a_lost_race_on_the_national_id_becomes_a_field_error(clerk_a, geo, monkeypatch):
    # Two clerks save the same ID at once: both pass the pre-check, the database refuses the second.
    IndividualFactory(national_id="1234")
    original = services._validate_individual

    def validate_without_duplicate_check(individual, attributes):
        original(individual, attributes)
        individual.national_id = "1234"  # the other clerk's row committed after our check

    monkeypatch.setattr(services, "_validate_individual", validate_without_duplicate_check)

    with pytest.raises(ValidationError) as exc:
        services.individual_create(fields=person(geo.village_a, national_id="9999"), by=clerk_a)

    assert refused(exc) == {
        "national_id": ["This national ID is already registered to another person."]
    }
    assert Individual.objects.count() == 1


def test_invalid_attribute_values_are_named_by_field_and_nothing_is_saved(clerk_a, geo):
    RegistryFieldFactory(name="children", field_type="integer", min_value=0)
    RegistryFieldFactory(name="income", field_type="decimal")
    RegistryFieldFactory(name="water", field_type="choice", choices=["tap", "well"])
    RegistryFieldFactory(name="consent", field_type="boolean", required=True)
    before = counts()

    with pytest.raises(ValidationError) as exc:
        services.individual_create(
            fields=person(geo.village_a, dob=datetime.date(2999, 1, 1)),
            attributes={"children": "-2", "income": "1,5", "water": "river"},
            by=clerk_a,
        )

    assert refused(exc) == {
        "children": ["Must be at least 0."],
        "income": ["'1,5' is not a number (use digits and a dot, like 1234.50)."],
        "water": ["'river' is not one of: tap, well."],
        "consent": ["This field is required."],
        "dob": ["The date of birth is in the future."],
    }
    assert counts() == before


def test_unknown_attribute_is_refused(clerk_a, geo):
    with pytest.raises(ValidationError) as exc:
        services.individual_create(
            fields=person(geo.village_a), attributes={"colour": "red"}, by=clerk_a
        )

    assert refused(exc) == {"colour": ["'colour' is not a defined attribute."]}
    assert Individual.objects.count() == 0


def test_household_attributes_are_not_individual_attributes(clerk_a, geo):
    RegistryFieldFactory(name="dwelling", target="household")

    with pytest.raises(ValidationError) as exc:
        services.individual_create(
            fields=person(geo.village_a), attributes={"dwelling": "x"}, by=clerk_a
        )

    assert list(refused(exc)) == ["dwelling"]


def test_unknown_field_is_refused(clerk_a, geo):
    with pytest.raises(ValidationError) as exc:
        services.individual_create(fields=person(geo.village_a, deleted_at=None, id=5), by=clerk_a)

    assert refused(exc) == {
        "deleted_at": ["Not a registry field."],
        "id": ["Not a registry field."],
    }
    record = IndividualFactory(location=geo.village_a)
    with pytest.raises(ValidationError):
        services.individual_update(
            individual=record, fields={"deleted_at": timezone.now()}, by=clerk_a
        )
    assert reload(record).deleted_at is None


def test_model_field_errors_are_reported_together(clerk_a, geo):
    with pytest.raises(ValidationError) as exc:
        services.individual_create(
            fields=person(geo.village_a, first_name="   ", sex="X"), by=clerk_a
        )

    errors = refused(exc)
    assert set(errors) == {"first_name", "sex"}
    assert Individual.objects.count() == 0


def test_invalid_update_saves_nothing(clerk_a, geo):
    RegistryFieldFactory(name="children", field_type="integer")
    record = services.individual_create(
        fields=person(geo.village_a), attributes={"children": 1}, by=clerk_a
    )
    before = counts()

    with pytest.raises(ValidationError):
        services.individual_update(
            individual=record,
            fields={"last_name": "Changed"},
            attributes={"children": "many"},
            by=clerk_a,
        )

    saved = reload(record)
    assert (saved.last_name, saved.attributes) == ("Yusuf", {"children": 1})
    assert counts() == before


# === individuals in households ================================================================


@pytest.fixture
def family(clerk_a, geo, member_roles):
    household = HouseholdFactory(location=geo.village_a)
    head = IndividualFactory(location=geo.village_a, national_id="HEAD1")
    spouse = IndividualFactory(location=geo.village_a)
    services.household_add_member(household=household, individual=head, by=clerk_a)
    services.household_add_member(household=household, individual=spouse, role="SPOUSE", by=clerk_a)
    return household, head, spouse


def roles_in(household):
    return dict(
        Membership.objects.filter(household=household).values_list("individual_id", "role_id")
    )


def test_soft_deleting_a_head_with_other_members_is_refused(clerk_a, family):
    household, head, spouse = family
    before = counts()

    with pytest.raises(ValidationError) as exc:
        services.individual_soft_delete(individual=head, by=clerk_a)

    assert "make another member the head first" in refused(exc)["__all__"][0]
    assert reload(head).deleted_at is None
    assert roles_in(household) == {head.pk: "HEAD", spouse.pk: "SPOUSE"}
    assert counts() == before


def make_primary(clerk_a, person):
    membership = Membership.objects.get(individual=person)
    services.household_change_member(membership=membership, role=membership.role_id, recipient_type="PRIMARY",
                                     by=clerk_a)


def recipients_in(household):
    return dict(Membership.objects.filter(household=household).values_list("individual_id", "recipient_type"))


def test_soft_deleting_the_primary_recipient_with_other_members_is_refused(clerk_a, family):
    household, head, spouse = family
    make_primary(clerk_a, spouse)
    before = counts()

    with pytest.raises(ValidationError) as exc:
        services.individual_soft_delete(individual=spouse, by=clerk_a)

    assert "is the primary recipient of household" in refused(exc)["__all__"][0]
    assert "make another member the primary recipient first" in refused(exc)["__all__"][0]
    assert reload(spouse).deleted_at is None
    assert recipients_in(household) == {head.pk: "SECONDARY", spouse.pk: "PRIMARY"}
    assert counts() == before


def test_soft_deleting_a_member_removes_the_membership(clerk_a, family):
    household, head, spouse = family

    services.individual_soft_delete(individual=spouse, by=clerk_a)

    assert roles_in(household) == {head.pk: "HEAD"}
    assert (
        ModelLogEntry.objects.filter(
            action="mizani.member_remove", object_id=str(household.pk),
            content_type__model="household"
        ).count()
        == 1
    )


def test_soft_deleting_a_lone_member_removes_the_membership(clerk_a, geo, member_roles):
    household = HouseholdFactory(location=geo.village_a)
    alone = IndividualFactory(location=geo.village_a)
    services.household_add_member(household=household, individual=alone, by=clerk_a)

    services.individual_soft_delete(individual=alone, by=clerk_a)

    assert reload(alone).is_deleted
    assert not Membership.objects.filter(individual=alone).exists()
    assert reload(household).memberships.count() == 0


def test_restore_is_refused_when_another_live_record_holds_the_national_id(clerk_a, geo):
    first = services.individual_create(fields=person(geo.village_a, national_id="1234"), by=clerk_a)
    services.individual_soft_delete(individual=first, by=clerk_a)
    services.individual_create(fields=person(geo.village_a, national_id="12-34"), by=clerk_a)
    before = counts()

    with pytest.raises(ValidationError) as exc:
        services.individual_restore(individual=first, by=clerk_a)

    assert list(refused(exc)) == ["national_id"]
    assert "cannot be restored" in refused(exc)["national_id"][0]
    assert reload(first).is_deleted
    assert counts() == before


# === households ===============================================================================


def test_household_create_generates_a_code(clerk_a, geo):
    household = services.household_create(fields={"location": geo.village_a}, by=clerk_a)

    saved = reload(household)
    assert saved.code.startswith("HH-") and len(saved.code) == 11
    assert saved.location == geo.village_a


def test_household_create_keeps_a_given_code_trimmed(clerk_a, geo):
    household = services.household_create(
        fields={"code": "  HH-042 ", "location": geo.village_a}, by=clerk_a
    )

    assert reload(household).code == "HH-042"


def test_household_code_must_be_unique(clerk_a, geo):
    HouseholdFactory(code="HH-042", location=geo.village_a)

    with pytest.raises(ValidationError) as exc:
        services.household_create(fields={"code": "HH-042", "location": geo.village_a}, by=clerk_a)

    assert refused(exc) == {"code": ["Another household already has this code (HH-042)."]}
    assert Household.objects.count() == 1


def test_household_attributes_are_validated(clerk_a, geo):
    RegistryFieldFactory(name="rooms", field_type="integer", target="household", max_value=20)

    with pytest.raises(ValidationError) as exc:
        services.household_create(
            fields={"location": geo.village_a}, attributes={"rooms": "21", "x": 1}, by=clerk_a
        )
    assert refused(exc) == {
        "rooms": ["Must be at most 20."],
        "x": ["'x' is not a defined attribute."],
    }

    household = services.household_create(
        fields={"location": geo.village_a}, attributes={"rooms": "4"}, by=clerk_a
    )
    assert reload(household).attributes == {"rooms": 4}
    assert Household.objects.count() == 1


def test_household_unknown_field_is_refused(clerk_a, geo):
    with pytest.raises(ValidationError) as exc:
        services.household_create(
            fields={"location": geo.village_a, "deleted_at": None}, by=clerk_a
        )

    assert refused(exc) == {"deleted_at": ["Not a household field."]}


def test_household_update_soft_delete_and_restore(clerk_a, geo):
    household = services.household_create(
        fields={"code": "HH-1", "location": geo.village_a}, by=clerk_a
    )

    services.household_update(
        household=household, fields={"code": "HH-2", "location": geo.ward_a}, by=clerk_a
    )
    assert (reload(household).code, reload(household).location) == ("HH-2", geo.ward_a)

    services.household_soft_delete(household=household, by=clerk_a)
    assert reload(household).is_deleted
    with pytest.raises(ValidationError):
        services.household_update(household=household, fields={"code": "HH-3"}, by=clerk_a)

    services.household_restore(household=household, by=clerk_a)
    assert not reload(household).is_deleted
    actions = list(
        ModelLogEntry.objects.for_instance(household)
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == ["wagtail.create", "wagtail.edit", "mizani.soft_delete", "mizani.restore"]


def test_household_with_members_cannot_be_deleted_until_they_leave(clerk_a, geo):
    household = services.household_create(fields={"location": geo.village_a}, by=clerk_a)
    person = IndividualFactory(location=geo.village_a)
    membership = services.household_add_member(household=household, individual=person, by=clerk_a)

    with pytest.raises(ValidationError, match="still has members"):
        services.household_soft_delete(household=household, by=clerk_a)
    assert not reload(household).is_deleted

    services.household_remove_member(membership=membership, by=clerk_a)
    services.household_soft_delete(household=household, by=clerk_a)
    assert reload(household).is_deleted


def test_household_refusals_for_viewer_and_other_district(viewer_a, clerk_a, geo):
    mine = HouseholdFactory(location=geo.village_a, code="HH-A")
    theirs = HouseholdFactory(location=geo.village_b, code="HH-B")
    before = counts()

    with pytest.raises(PermissionDenied):
        services.household_create(fields={"location": geo.village_a}, by=viewer_a)
    with pytest.raises(PermissionDenied):
        services.household_update(household=mine, fields={"code": "HH-X"}, by=viewer_a)
    with pytest.raises(PermissionDenied):
        services.household_soft_delete(household=mine, by=viewer_a)
    with pytest.raises(PermissionDenied):
        services.household_create(fields={"location": geo.village_b}, by=clerk_a)
    with pytest.raises(PermissionDenied):
        services.household_create(fields={"location": None}, by=clerk_a)
    with pytest.raises(Household.DoesNotExist):
        services.household_update(household=theirs, fields={"code": "HH-X"}, by=clerk_a)
    with pytest.raises(Household.DoesNotExist):
        services.household_soft_delete(household=theirs, by=clerk_a)
    with pytest.raises(PermissionDenied):
        services.household_update(household=mine, fields={"location": geo.village_b}, by=clerk_a)

    assert counts() == before
    assert (reload(mine).code, reload(mine).location) == ("HH-A", geo.village_a)
    assert reload(theirs).code == "HH-B" and not reload(theirs).is_deleted


# === household members ========================================================================


@pytest.fixture
def household(geo, member_roles):
    return HouseholdFactory(location=geo.village_a)


@pytest.fixture
def villagers(geo):
    return [IndividualFactory(location=geo.village_a) for _ in range(4)]


def test_first_member_becomes_head_and_primary(clerk_a, household, villagers):
    membership = services.household_add_member(
        household=household, individual=villagers[0], by=clerk_a
    )

    saved = Membership.objects.get(pk=membership.pk)
    assert (saved.role_id, saved.recipient_type) == ("HEAD", "PRIMARY")
    assert household.head == villagers[0]


def test_first_member_cannot_take_another_role(clerk_a, household, villagers):
    with pytest.raises(ValidationError) as exc:
        services.household_add_member(
            household=household, individual=villagers[0], role="SON", by=clerk_a
        )

    assert refused(exc) == {"role": ["The first member of a household is its head."]}
    assert Membership.objects.count() == 0


def test_second_member_needs_a_role_other_than_head(clerk_a, household, villagers):
    services.household_add_member(household=household, individual=villagers[0], by=clerk_a)

    with pytest.raises(ValidationError) as exc:
        services.household_add_member(household=household, individual=villagers[1], by=clerk_a)
    assert refused(exc) == {"role": ["Choose the member's role."]}

    with pytest.raises(ValidationError) as exc:
        services.household_add_member(
            household=household, individual=villagers[1], role="HEAD", by=clerk_a
        )
    assert list(refused(exc)) == ["role"]
    assert "already has a head" in refused(exc)["role"][0]

    membership = services.household_add_member(
        household=household, individual=villagers[1], role="DAUGHTER", by=clerk_a
    )
    assert (membership.role_id, membership.recipient_type) == ("DAUGHTER", None)
    assert roles_in(household) == {villagers[0].pk: "HEAD", villagers[1].pk: "DAUGHTER"}


def test_role_may_be_given_as_an_object(clerk_a, household, villagers, member_roles):
    services.household_add_member(household=household, individual=villagers[0], by=clerk_a)

    membership = services.household_add_member(
        household=household, individual=villagers[1], role=member_roles["SON"], by=clerk_a
    )

    assert membership.role_id == "SON"


def test_unknown_role_and_recipient_type_are_refused(clerk_a, household, villagers):
    services.household_add_member(household=household, individual=villagers[0], by=clerk_a)

    with pytest.raises(ValidationError) as exc:
        services.household_add_member(
            household=household, individual=villagers[1], role="COUSIN", by=clerk_a
        )
    assert refused(exc) == {"role": ["'COUSIN' is not a known member role."]}

    with pytest.raises(ValidationError) as exc:
        services.household_add_member(
            household=household,
            individual=villagers[1],
            role="SON",
            recipient_type="TERTIARY",
            by=clerk_a,
        )
    assert list(refused(exc)) == ["recipient_type"]
    assert Membership.objects.count() == 1


def test_second_primary_recipient_is_refused(clerk_a, household, villagers):
    services.household_add_member(household=household, individual=villagers[0], by=clerk_a)

    with pytest.raises(ValidationError) as exc:
        services.household_add_member(
            household=household,
            individual=villagers[1],
            role="SPOUSE",
            recipient_type="PRIMARY",
            by=clerk_a,
        )

    assert refused(exc) == {"recipient_type": ["This household already has a primary recipient."]}
    services.household_add_member(
        household=household,
        individual=villagers[1],
        role="SPOUSE",
        recipient_type="SECONDARY",
        by=clerk_a,
    )
    services.household_add_member(
        household=household,
        individual=villagers[2],
        role="SON",
        recipient_type="SECONDARY",
        by=clerk_a,
    )
    assert Membership.objects.filter(household=household, recipient_type="PRIMARY").count() == 1
    assert Membership.objects.filter(household=household).count() == 3


def test_a_person_can_be_in_only_one_household(clerk_a, household, villagers, geo):
    other = HouseholdFactory(location=geo.village_a)
    services.household_add_member(household=household, individual=villagers[0], by=clerk_a)

    with pytest.raises(ValidationError) as exc:
        services.household_add_member(household=other, individual=villagers[0], by=clerk_a)
    assert list(refused(exc)) == ["individual"]
    assert household.code in refused(exc)["individual"][0]

    with pytest.raises(ValidationError):
        services.household_add_member(
            household=household, individual=villagers[0], role="SON", by=clerk_a
        )

    assert Membership.objects.filter(individual=villagers[0]).count() == 1
    assert other.memberships.count() == 0


def test_deleted_people_and_deleted_households_take_no_members(clerk_a, household, villagers, geo):
    gone = IndividualFactory(location=geo.village_a, deleted_at=timezone.now())
    with pytest.raises(ValidationError) as exc:
        services.household_add_member(household=household, individual=gone, by=clerk_a)
    assert list(refused(exc)) == ["individual"]

    closed = HouseholdFactory(location=geo.village_a, deleted_at=timezone.now())
    with pytest.raises(ValidationError):
        services.household_add_member(household=closed, individual=villagers[0], by=clerk_a)

    assert Membership.objects.count() == 0


def test_member_changes_are_refused_to_viewers_and_other_districts(
    viewer_a, clerk_a, household, villagers, geo
):
    stranger = IndividualFactory(location=geo.village_b)
    far_household = HouseholdFactory(location=geo.village_b)

    with pytest.raises(PermissionDenied):
        services.household_add_member(household=household, individual=villagers[0], by=viewer_a)
    with pytest.raises(Individual.DoesNotExist):
        services.household_add_member(household=household, individual=stranger, by=clerk_a)
    with pytest.raises(Household.DoesNotExist):
        services.household_add_member(household=far_household, individual=villagers[0], by=clerk_a)

    assert Membership.objects.count() == 0


def test_set_head_swaps_roles(clerk_a, family):
    household, head, spouse = family

    services.household_set_head(
        household=household, individual=spouse, former_head_role="SPOUSE", by=clerk_a
    )

    assert roles_in(household) == {head.pk: "SPOUSE", spouse.pk: "HEAD"}
    assert reload(household).head == spouse
    entry = ModelLogEntry.objects.filter(action="mizani.member_change").get()
    assert entry.data == {
        "new_head": spouse.pk,
        "former_head": head.pk,
        "former_head_role": "SPOUSE",
    }


@pytest.mark.parametrize(
    "former_head_role, field",
    [
        (None, "former_head_role"),
        ("", "former_head_role"),
        ("HEAD", "former_head_role"),
        ("COUSIN", "role"),
    ],
)
def test_set_head_refusals_change_nothing(clerk_a, family, former_head_role, field):
    household, head, spouse = family
    before = counts()

    with pytest.raises(ValidationError) as exc:
        services.household_set_head(
            household=household, individual=spouse, former_head_role=former_head_role, by=clerk_a
        )

    assert list(refused(exc)) == [field]
    assert roles_in(household) == {head.pk: "HEAD", spouse.pk: "SPOUSE"}
    assert counts() == before


def test_only_a_member_can_be_made_head(clerk_a, family, geo):
    household, head, spouse = family
    outsider = IndividualFactory(location=geo.village_a)

    with pytest.raises(ValidationError) as exc:
        services.household_set_head(
            household=household, individual=outsider, former_head_role="SPOUSE", by=clerk_a
        )

    assert list(refused(exc)) == ["individual"]
    assert roles_in(household) == {head.pk: "HEAD", spouse.pk: "SPOUSE"}


def test_making_the_head_head_again_is_a_no_op(clerk_a, family):
    household, head, spouse = family
    before = counts()

    services.household_set_head(
        household=household, individual=head, former_head_role="SPOUSE", by=clerk_a
    )

    assert roles_in(household) == {head.pk: "HEAD", spouse.pk: "SPOUSE"}
    assert counts() == before


def test_the_head_cannot_leave_while_others_remain(clerk_a, family):
    household, head, spouse = family
    head_membership = Membership.objects.get(individual=head)

    with pytest.raises(ValidationError) as exc:
        services.household_remove_member(membership=head_membership, by=clerk_a)

    assert "head cannot leave" in refused(exc)["__all__"][0]
    assert roles_in(household) == {head.pk: "HEAD", spouse.pk: "SPOUSE"}


def test_other_members_and_then_a_lone_head_can_leave(clerk_a, family):
    household, head, spouse = family

    services.household_remove_member(
        membership=Membership.objects.get(individual=spouse), by=clerk_a
    )
    assert roles_in(household) == {head.pk: "HEAD"}

    services.household_remove_member(membership=Membership.objects.get(individual=head), by=clerk_a)
    assert roles_in(household) == {}
    assert ModelLogEntry.objects.filter(action="mizani.member_remove").count() == 2


def test_the_primary_recipient_leaves_only_naming_who_takes_over(clerk_a, family):
    household, head, spouse = family
    make_primary(clerk_a, spouse)
    leaving = Membership.objects.get(individual=spouse)
    before = counts()

    with pytest.raises(ValidationError) as exc:
        services.household_remove_member(membership=leaving, by=clerk_a)
    assert list(refused(exc)) == ["new_primary"]
    assert "is the household's primary recipient: choose the member" in refused(exc)["new_primary"][0]
    assert counts() == before

    services.household_remove_member(membership=leaving, new_primary=head, by=clerk_a)

    assert recipients_in(household) == {head.pk: "PRIMARY"}
    change = ModelLogEntry.objects.filter(action="mizani.member_change").latest("id")
    assert change.data == {"individual": head.pk, "changes": {"recipient_type": ["SECONDARY", "PRIMARY"]},
                           "former_primary": spouse.pk}


@pytest.mark.parametrize("successor", ["leaving", "outsider", "missing"])
def test_the_new_primary_recipient_must_be_another_member(clerk_a, family, geo, successor):
    household, head, spouse = family
    make_primary(clerk_a, spouse)
    new_primary = {"leaving": spouse, "outsider": IndividualFactory(location=geo.village_a),
                   "missing": 0}[successor]
    before = counts()

    with pytest.raises(ValidationError) as exc:
        services.household_remove_member(membership=Membership.objects.get(individual=spouse),
                                         new_primary=new_primary, by=clerk_a)

    assert refused(exc) == {"new_primary": ["The new primary recipient must be another member of this household."]}
    assert counts() == before


def test_a_new_primary_recipient_is_named_only_when_the_primary_recipient_leaves(clerk_a, family):
    household, head, spouse = family

    with pytest.raises(ValidationError) as exc:
        services.household_remove_member(membership=Membership.objects.get(individual=spouse), new_primary=head,
                                         by=clerk_a)
    assert "is not the household's primary recipient" in refused(exc)["new_primary"][0]

    with pytest.raises(ValidationError) as exc:
        services.household_member_change(household=household, action="change", individual=spouse, role="SPOUSE",
                                         new_primary=head, by=clerk_a)
    assert list(refused(exc)) == ["new_primary"]
    assert recipients_in(household) == {head.pk: "PRIMARY", spouse.pk: None}


def test_the_primary_recipient_hands_over_through_a_member_change(clerk_a, family):
    household, head, spouse = family
    make_primary(clerk_a, spouse)

    services.household_member_change(household=household, action="remove", individual=spouse, new_primary=head.pk,
                                     by=clerk_a)

    assert recipients_in(household) == {head.pk: "PRIMARY"}


def test_change_member_role_and_recipient(clerk_a, family, geo):
    household, head, spouse = family
    spouse_membership = Membership.objects.get(individual=spouse)

    services.household_change_member(
        membership=spouse_membership, role="MOTHER", recipient_type="SECONDARY", by=clerk_a
    )

    saved = Membership.objects.get(pk=spouse_membership.pk)
    assert (saved.role_id, saved.recipient_type) == ("MOTHER", "SECONDARY")
    entry = ModelLogEntry.objects.filter(action="mizani.member_change").get()
    assert entry.data == {
        "individual": spouse.pk,
        "changes": {"role": ["SPOUSE", "MOTHER"], "recipient_type": [None, "SECONDARY"]},
    }


def test_change_member_cannot_create_a_second_head_or_primary_or_drop_the_head(clerk_a, family):
    household, head, spouse = family
    spouse_membership = Membership.objects.get(individual=spouse)
    head_membership = Membership.objects.get(individual=head)

    with pytest.raises(ValidationError) as exc:
        services.household_change_member(membership=spouse_membership, role="HEAD", by=clerk_a)
    assert list(refused(exc)) == ["role"]

    with pytest.raises(ValidationError) as exc:  # the household would have no primary recipient
        services.household_change_member(
            membership=head_membership, role="HEAD", recipient_type="SECONDARY", by=clerk_a
        )
    assert list(refused(exc)) == ["recipient_type"]

    with pytest.raises(ValidationError) as exc:
        services.household_change_member(membership=head_membership, role="FATHER", by=clerk_a)
    assert list(refused(exc)) == ["role"]

    assert roles_in(household) == {head.pk: "HEAD", spouse.pk: "SPOUSE"}
    assert Membership.objects.get(pk=head_membership.pk).recipient_type == "PRIMARY"


def test_the_primary_recipient_moves_to_the_member_made_primary(clerk_a, family):
    household, head, spouse = family

    services.household_change_member(
        membership=Membership.objects.get(individual=spouse),
        role="SPOUSE",
        recipient_type="PRIMARY",
        by=clerk_a,
    )

    assert dict(
        Membership.objects.filter(household=household).values_list(
            "individual_id", "recipient_type"
        )
    ) == {head.pk: "SECONDARY", spouse.pk: "PRIMARY"}


def test_membership_factory_matches_service_rules(member_roles):
    # Guard for the factory used elsewhere: its default role is HEAD.
    assert MembershipFactory().role_id == MemberRole.HEAD


def test_an_attribute_whose_definition_was_deleted_does_not_block_edits(clerk_a, geo):
    definition = RegistryFieldFactory(name="old_note", field_type="text")
    record = services.individual_create(fields=person(geo.village_a), attributes={"old_note": "kept"}, by=clerk_a)
    definition.delete()

    services.individual_update(individual=record, fields={"first_name": "Renamed"}, by=clerk_a)

    assert reload(record).first_name == "Renamed"
    assert reload(record).attributes == {"old_note": "kept"}
    with pytest.raises(ValidationError, match="not a defined attribute"):
        services.individual_update(individual=record, fields={}, attributes={"old_note": "changed"}, by=clerk_a)


def test_a_merged_record_is_not_restored_but_unmerged(clerk_a, geo):
    kept = services.individual_create(fields=person(geo.village_a), by=clerk_a)
    duplicate = services.individual_create(fields=person(geo.village_a), by=clerk_a)
    Individual.objects.filter(pk=duplicate.pk).update(deleted_at=timezone.now(), merged_into=kept)

    with pytest.raises(ValidationError, match="undo the merge"):
        services.individual_restore(individual=duplicate, by=clerk_a)
    assert reload(duplicate).deleted_at is not None


# --- names and household codes (QA walk) -------------------------------------------------------------

@pytest.mark.parametrize("name, problem", [
    ("Amina", ""), ("Nur Jahan", ""), ("O'Brien-Smith", ""), ("", ""),
    ("\u0645\u06cc\u200c\u0631\u0648\u06cc", ""),  # a zero-width non-joiner inside a Persian name
    ("\u200b\u200b", "visible"), ("\u00a0\u200b", "visible"), ("   ", "visible"),
    ("Ami\nna", "control"), ("Ami\tna", "control"),
    ("\u202eanimA", "text-direction"), ("Amina\u2066", "text-direction"),
])
def test_name_problem(name, problem):
    from schemes.registry.models import name_problem

    assert (problem in name_problem(name)) if problem else name_problem(name) == ""


def test_invisible_and_control_names_are_refused_at_registration(geo, clerk_a):
    with pytest.raises(ValidationError) as refused:
        services.individual_create(fields={"first_name": "\u200b", "last_name": "Juma\u202e", "dob": "1990-01-01",
                                           "sex": "F", "location": geo.village_a}, by=clerk_a)
    assert set(refused.value.message_dict) == {"first_name", "last_name"}


def test_household_codes_are_unique_case_aside_without_revealing_other_regions(geo, clerk_a):
    HouseholdFactory(code="HH-0000003", location=geo.village_a)
    HouseholdFactory(code="HH-OTHER01", location=geo.other_village)

    with pytest.raises(ValidationError, match=r"already has this code \(HH-0000003\)"):
        services.household_create(fields={"code": "hh-0000003", "location": geo.village_a}, by=clerk_a)
    with pytest.raises(ValidationError) as refused:
        services.household_create(fields={"code": "hh-other01", "location": geo.village_a}, by=clerk_a)
    assert refused.value.message_dict == {"code": ["This code cannot be used."]}
    with pytest.raises(ValidationError, match="line breaks"):
        services.household_create(fields={"code": "HH-1\nX", "location": geo.village_a}, by=clerk_a)


@pytest.mark.parametrize("action", ["create", "update"])
def test_a_household_code_taken_in_another_case_while_saving_gets_the_checks_message(geo, clerk_a, monkeypatch,
                                                                                       action):
    """Two clerks saving "BH-1" and "bh-1" at once both pass the check: the database's index refuses
    the second, who gets the check's message, not an error page."""
    mine = HouseholdFactory(code="HH-MINE", location=geo.village_a)
    check = services._household_code_problem
    checks = []

    def registered_just_after_the_check(household, by):
        checks.append(household.code)
        return "" if len(checks) == 1 else check(household, by)

    monkeypatch.setattr(services, "_household_code_problem", registered_just_after_the_check)
    HouseholdFactory(code="BH-1", location=geo.village_a)
    with pytest.raises(ValidationError) as refused:
        if action == "create":
            services.household_create(fields={"code": "bh-1", "location": geo.village_a}, by=clerk_a)
        else:
            services.household_update(household=mine, fields={"code": "bh-1"}, by=clerk_a)

    assert refused.value.message_dict == {"code": ["Another household already has this code (BH-1)."]}
    assert len(checks) == 2
    assert reload(mine).code == "HH-MINE" and Household.objects.count() == 2


def test_a_generated_household_code_is_never_one_registered_in_another_case(geo, clerk_a, monkeypatch):
    HouseholdFactory(code="hh-aaaaaaaa", location=geo.village_a)
    letters = iter("A" * 8 + "B" * 8)
    monkeypatch.setattr(services.secrets, "choice", lambda alphabet: next(letters))

    household = services.household_create(fields={"location": geo.village_a}, by=clerk_a)

    assert reload(household).code == "HH-BBBBBBBB"


# --- merging away the only member of a household (an import's one-person household) -------------

def entries_for(record, action):
    return ModelLogEntry.objects.filter(content_type__model=record._meta.model_name, object_id=str(record.pk),
                                        action=action)


@pytest.fixture
def imported_twin(geo, member_roles):
    """The QA pair: Zawadi Mrema, daughter in household QAHH1 (headed by her mother), and the same
    Zawadi Mrema created again by an import as the only member (head, primary) of household QDU5."""
    family = HouseholdFactory(code="QAHH1", location=geo.village_a)
    MembershipFactory(household=family, individual=IndividualFactory(location=geo.village_a), recipient_type="PRIMARY")
    kept = IndividualFactory(first_name="Zawadi", last_name="Mrema", location=geo.village_a, phone="+255760303899")
    MembershipFactory(household=family, individual=kept, role=member_roles["DAUGHTER"])
    imported = HouseholdFactory(code="QDU5", location=geo.village_a)
    duplicate = IndividualFactory(first_name="Zawadi", last_name="Mrema", location=geo.village_a,
                                  phone="+255799999999")
    MembershipFactory(household=imported, individual=duplicate, recipient_type="PRIMARY")
    return kept, duplicate, family, imported


def test_merging_the_only_member_of_a_household_deletes_it_and_unmerging_restores_it(clerk_a, imported_twin):
    kept, duplicate, family, imported = imported_twin
    family_before = set(Membership.objects.filter(household=family).values_list("pk", "individual", "role",
                                                                                "recipient_type"))

    merge = services.individual_merge(kept=kept, merged=duplicate, by=clerk_a)

    assert reload(imported).is_deleted and not Membership.objects.filter(household=imported).exists()
    assert set(Membership.objects.filter(household=family).values_list("pk", "individual", "role",
                                                                       "recipient_type")) == family_before
    assert reload(duplicate).merged_into_id == kept.pk
    assert merge.moved["membership"] == {"dissolved": imported.pk, "household": imported.pk,
                                         "removed": {"role": "HEAD", "recipient_type": "PRIMARY"}}
    assert entries_for(imported, "mizani.soft_delete").get().user_id == clerk_a.pk
    assert entries_for(imported, "mizani.member_remove").get().data["merged_into"] == kept.pk

    services.individual_unmerge(merge=merge, by=clerk_a)

    assert not reload(imported).is_deleted and not reload(duplicate).is_deleted
    assert list(Membership.objects.filter(household=imported).values_list("individual", "role", "recipient_type")
                ) == [(duplicate.pk, "HEAD", "PRIMARY")]
    assert set(Membership.objects.filter(household=family).values_list("pk", "individual", "role",
                                                                       "recipient_type")) == family_before
    assert entries_for(imported, "mizani.restore").exists()


def test_the_member_of_a_household_with_others_is_still_not_merged_away(clerk_a, imported_twin):
    kept, duplicate, family, imported = imported_twin

    with pytest.raises(ValidationError, match="QDU5.*QAHH1: move the person to the right household first"):
        services.individual_merge(kept=duplicate, merged=kept, by=clerk_a)
    assert not reload(kept).is_deleted and not reload(imported).is_deleted


def test_of_two_one_person_households_either_record_can_be_kept(clerk_a, geo):
    def single(code):
        person = IndividualFactory(first_name="Zawadi", last_name="Mrema", location=geo.village_a)
        MembershipFactory(household=HouseholdFactory(code=code, location=geo.village_a), individual=person,
                          recipient_type="PRIMARY")
        return person

    first, second = single("QDU5"), single("QDU6")
    for kept, merged in ((first, second), (second, first)):
        services.check_merge(kept=kept, merged=merged, by=clerk_a)

    services.individual_merge(kept=second, merged=first, by=clerk_a)
    assert Household.objects.get(code="QDU5").is_deleted and not Household.objects.get(code="QDU6").is_deleted
    assert Membership.objects.get(individual=second).household.code == "QDU6"


@pytest.fixture
def household_plan(db):
    from schemes.plans.models import BenefitPlan, PlanType

    return BenefitPlan.objects.create(code="HHG", name="Household grant", plan_type=PlanType.HOUSEHOLD,
                                      status="ACTIVE")


def _household_enrolment(plan, household, status):
    from schemes.plans.models import HouseholdBeneficiary

    now = timezone.now()
    return HouseholdBeneficiary.objects.create(plan=plan, household=household, status=status, enrolled_at=now,
                                               status_changed_at=now)


def test_an_enrolled_one_person_household_is_not_deleted_by_a_merge(clerk_a, imported_twin, household_plan):
    kept, duplicate, _, imported = imported_twin
    _household_enrolment(household_plan, imported, "POTENTIAL")

    with pytest.raises(ValidationError, match=r"only member of household QDU5.*enrolled in Household grant"):
        services.individual_merge(kept=kept, merged=duplicate, by=clerk_a)
    assert not reload(imported).is_deleted and not reload(duplicate).is_deleted
    assert Membership.objects.filter(household=imported, individual=duplicate).exists()


def test_a_one_person_household_once_paid_is_not_deleted_by_a_merge(clerk_a, imported_twin, household_plan,
                                                                   superuser):
    from decimal import Decimal

    from schemes.payments import services as payments
    from schemes.payments.models import PaymentCycle, PaymentLine, Payroll

    kept, duplicate, _, imported = imported_twin
    enrolment = _household_enrolment(household_plan, imported, "GRADUATED")  # no longer live, but was paid
    payment_plan = payments.payment_plan_create(fields={
        "code": "HHG-PAY", "name": "Household grant payments", "benefit_plan": household_plan, "formula": "100",
        "periodicity": 2, "currency": "TZS", "target_statuses": ["ACTIVE"]}, by=superuser)
    cycle = PaymentCycle.objects.create(code="C-1", start_date=datetime.date(2025, 1, 1),
                                        end_date=datetime.date(2025, 2, 28))
    payroll = Payroll.objects.create(name="Household grant payroll", payment_plan=payment_plan, cycle=cycle,
                                     parameters={"currency": "TZS"})
    PaymentLine.objects.create(payroll=payroll, beneficiary_id=enrolment.pk, recipient=duplicate,
                               amount=Decimal("100.00"))

    with pytest.raises(ValidationError, match="payments were made to it"):
        services.check_merge(kept=kept, merged=duplicate, by=clerk_a)
    assert not reload(imported).is_deleted


def test_a_one_person_household_with_a_request_waiting_is_not_deleted_by_a_merge(clerk_a, geo, imported_twin):
    from django.contrib.auth.models import Group

    from workflows.models import WorkflowDefinition, WorkflowStep
    from workflows.services import approval_submit

    kept, duplicate, _, imported = imported_twin
    UserFactory(username="household_checker", role="Checker", locations=[geo.district_a])
    WorkflowStep.objects.create(definition=WorkflowDefinition.objects.create(operation="registry.change_household"),
                                group=Group.objects.get(name="Checker"), sort_order=0)
    request = approval_submit(operation="registry.change_household",
                              payload={"record": imported.pk, "fields": {"code": "QDU5-A"}, "attributes": {}},
                              by=clerk_a)

    with pytest.raises(ValidationError, match=f"request {request.pk} about it is waiting"):
        services.check_merge(kept=kept, merged=duplicate, by=clerk_a)


def test_a_merge_deleting_a_household_needs_the_permission_to_delete_households(geo, imported_twin):
    from django.contrib.auth.models import Permission

    kept, duplicate, _, imported = imported_twin
    clerk = UserFactory(username="clerk_no_household_delete", role="Clerk", locations=[geo.district_a])
    clerk.groups.get().permissions.remove(Permission.objects.get(codename="delete_household"))
    clerk = type(clerk).objects.get(pk=clerk.pk)  # fresh permission cache

    with pytest.raises(PermissionDenied, match="your role does not allow you to delete or restore households"):
        services.individual_merge(kept=kept, merged=duplicate, by=clerk)
    assert not reload(imported).is_deleted


def test_unmerging_is_refused_when_the_deleted_household_has_members_again(clerk_a, geo, imported_twin):
    kept, duplicate, _, imported = imported_twin
    merge = services.individual_merge(kept=kept, merged=duplicate, by=clerk_a)
    services.household_restore(household=imported, by=clerk_a)
    newcomer = IndividualFactory(location=geo.village_a)
    services.household_add_member(household=imported, individual=newcomer, by=clerk_a)

    with pytest.raises(ValidationError, match="QDU5 has members again"):
        services.individual_unmerge(merge=merge, by=clerk_a)
    assert reload(duplicate).is_deleted
    assert list(Membership.objects.filter(household=imported).values_list("individual", flat=True)) == [newcomer.pk]


# --- how a merge and its undoing read in the records' history ----------------------------------------

def messages(record):
    return [entry.message for entry in ModelLogEntry.objects.filter(
        content_type__model=record._meta.model_name, object_id=str(record.pk)).order_by("id")]


@pytest.fixture
def income_pair(geo, member_roles):
    """A kept record without national ID or income, and its duplicate with both, alone in a household."""
    RegistryFieldFactory(name="income", label="Monthly income")
    kept = IndividualFactory(location=geo.village_a, national_id=None, attributes={})
    duplicate = IndividualFactory(location=geo.village_a, national_id="NID99912345", attributes={"income": "1200"})
    household = HouseholdFactory(location=geo.village_a)
    MembershipFactory(household=household, individual=duplicate, recipient_type="PRIMARY")
    return kept, duplicate, household


def test_a_merge_and_its_undoing_name_the_fields_by_their_labels(clerk_a, income_pair):
    kept, duplicate, _ = income_pair

    merge = services.individual_merge(kept=kept, merged=duplicate, by=clerk_a)
    services.individual_unmerge(merge=merge, by=clerk_a)

    assert messages(kept)[-2:] == [
        f"Merged a duplicate record (individual {duplicate.pk}) into this one; filled from it: National ID, "
        "Monthly income",
        f"Undid the merge of a duplicate record (individual {duplicate.pk}) into this one; taken back from this "
        "record: National ID, Monthly income"]
    assert messages(duplicate)[-2:] == [
        f"Merged into individual {kept.pk} as its duplicate (and deleted)",
        f"Undid the merge of this record into individual {kept.pk}: it is registered again"]
    merged = ModelLogEntry.objects.get(action="mizani.merge")
    assert merged.formatter.labelled_changes(merged) == [("Monthly income", None, "1200"),
                                                         ("National ID", None, "••••••••345")]  # masked as written


def test_a_value_changed_since_the_merge_is_named_by_its_label_when_the_undo_keeps_it(clerk_a, income_pair):
    kept, duplicate, _ = income_pair
    merge = services.individual_merge(kept=kept, merged=duplicate, by=clerk_a)
    services.individual_update(individual=kept, fields={}, attributes={"income": "900"}, by=clerk_a)

    services.individual_unmerge(merge=merge, by=clerk_a)

    assert messages(kept)[-1] == (
        f"Undid the merge of a duplicate record (individual {duplicate.pk}) into this one; taken back from this "
        "record: National ID; filled by the merge but changed since, so kept: Monthly income")


def test_a_household_place_moved_by_a_merge_and_back_reads_as_such_not_as_a_change_of_role(clerk_a, income_pair):
    kept, duplicate, household = income_pair

    merge = services.individual_merge(kept=kept, merged=duplicate, by=clerk_a)
    services.individual_unmerge(merge=merge, by=clerk_a)

    assert messages(household)[-2:] == [
        f"Membership moved by a merge to the record kept: individual {kept.pk} took the place of its duplicate, "
        f"individual {duplicate.pk}",
        f"Membership returned by undoing a merge: individual {duplicate.pk} took back its place from individual "
        f"{kept.pk}"]
    assert ModelLogEntry.objects.filter(action="mizani.member_change").latest("id").data == {
        "individual": duplicate.pk, "replaces": kept.pk, "merge_undone": merge.pk}


def test_a_merge_within_one_household_and_its_undoing_read_as_such(clerk_a, geo, member_roles):
    household = HouseholdFactory(location=geo.village_a)
    duplicate = IndividualFactory(location=geo.village_a)
    kept = IndividualFactory(location=geo.village_a)
    MembershipFactory(household=household, individual=duplicate, recipient_type="PRIMARY")
    MembershipFactory(household=household, individual=kept, role=member_roles["SON"])

    merge = services.individual_merge(kept=kept, merged=duplicate, by=clerk_a)
    services.individual_unmerge(merge=merge, by=clerk_a)

    assert messages(household)[-2:] == [
        f"Member removed by a merge: individual {duplicate.pk}, merged into individual {kept.pk}, who took over "
        "their recipient type and role",
        f"Member returned by undoing a merge: individual {duplicate.pk}; individual {kept.pk}'s recipient type and "
        "role back as before the merge"]
    assert reload(Membership.objects.get(individual=kept)).role_id == "SON"
    assert ModelLogEntry.objects.filter(action="mizani.member_add").latest("id").data["changes"] == {
        "role": ["HEAD", "SON"], "recipient_type": ["PRIMARY", None]}


def test_a_household_place_moved_before_entries_said_by_what_reads_as_a_merge_or_its_undoing(geo):
    household = HouseholdFactory(location=geo.village_a)

    entry = audit(household, "mizani.member_change", by=None, data={"individual": 7, "replaces": 8})

    assert entry.message == "Membership moved by a merge or its undoing: individual 7 took the place of individual 8"


def test_a_district_user_cannot_undo_a_merge_that_would_leave_a_record_without_a_location(geo, clerk_a, national_clerk):
    """Security review: the merge filled the kept record's location from the merged one (putting the merge
    in district A's reach); undoing it takes the location back: only national users act on such records."""
    kept = IndividualFactory(location=None, first_name="Amina", last_name="Juma")
    merged = IndividualFactory(location=geo.village_a, first_name="Amina", last_name="Juma")
    merge = services.individual_merge(kept=kept, merged=merged, by=national_clerk)
    assert Individual.objects.get(pk=kept.pk).location_id == geo.village_a.pk

    with pytest.raises(PermissionDenied, match="national scope"):
        services.individual_unmerge(merge=merge, by=clerk_a)

    assert Individual.objects.get(pk=kept.pk).location_id == geo.village_a.pk
