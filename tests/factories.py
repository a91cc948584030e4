"""factory_boy factories for the platform shell and the registry.

Factories write rows directly (no services, no audit): use them to arrange a test, and call the
services when the behaviour under test is the service itself. National IDs are given in normalised
form, as the services would store them.
"""

import datetime
import itertools
from dataclasses import dataclass

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from factory.django import DjangoModelFactory

from schemes.registry.models import (
    Household,
    Individual,
    MemberRole,
    Membership,
    RegistryField,
    Sex,
)
from sites.models import Location, UserAccess
from sites.roles import ROLE_PERMISSIONS

PASSWORD = "correct-horse-battery-staple"


# --- locations --------------------------------------------------------------------------------


class LocationFactory(DjangoModelFactory):
    class Meta:
        model = Location

    code = factory.Sequence(lambda n: f"LOC{n:05d}")
    name = factory.Sequence(lambda n: f"Location {n}")
    parent = None


@dataclass
class Branch:
    """One line of the default four-level tree."""

    region: Location
    district: Location
    ward: Location
    village: Location

    def __iter__(self):
        return iter((self.region, self.district, self.ward, self.village))


_branch_numbers = itertools.count(1)


def build_branch(*, region=None, prefix=None):
    """Region > District > Ward > Village. Pass `region` to hang a new district under an existing
    one."""
    prefix = prefix or next(_branch_numbers)
    region = region or LocationFactory(name=f"Region {prefix}")
    district = LocationFactory(name=f"District {prefix}", parent=region)
    ward = LocationFactory(name=f"Ward {prefix}", parent=district)
    village = LocationFactory(name=f"Village {prefix}", parent=ward)
    return Branch(region, district, ward, village)


# --- users ------------------------------------------------------------------------------------


def access_of(user):
    """The user's UserAccess, created when missing; the reverse accessor cache stays coherent."""
    try:
        return user.access
    except UserAccess.DoesNotExist:
        return UserAccess.objects.create(user=user)


class UserFactory(DjangoModelFactory):
    """A user with a role preset and a scope:

        UserFactory(role="Clerk", locations=[district])
        UserFactory(role="Viewer", national=True)
        UserFactory(is_superuser=True)

    `role` may also be a list of preset names. Without `locations` or `national` no UserAccess row
    is created (the user sees nothing)."""

    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.org")
    password = factory.django.Password(PASSWORD)
    is_active = True

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        if not extracted:
            return
        names = [extracted] if isinstance(extracted, str) else list(extracted)
        for name in names:
            if name not in ROLE_PERMISSIONS:
                raise ValueError(f"Unknown role preset {name!r}")
            self.groups.add(Group.objects.get(name=name))

    @factory.post_generation
    def national(self, create, extracted, **kwargs):
        if extracted:
            access = access_of(self)
            access.national_scope = True
            access.save()

    @factory.post_generation
    def locations(self, create, extracted, **kwargs):
        if extracted is not None:
            access_of(self).locations.set(extracted)


# --- registry ---------------------------------------------------------------------------------


class RegistryFieldFactory(DjangoModelFactory):
    class Meta:
        model = RegistryField

    name = factory.Sequence(lambda n: f"field_{n}")
    label = factory.LazyAttribute(lambda o: o.name.replace("_", " ").capitalize())
    field_type = "text"
    target = RegistryField.Target.INDIVIDUAL


class IndividualFactory(DjangoModelFactory):
    class Meta:
        model = Individual

    first_name = factory.Sequence(lambda n: f"First{n}")
    last_name = factory.Sequence(lambda n: f"Last{n}")
    dob = datetime.date(1990, 6, 15)
    sex = Sex.FEMALE
    national_id = factory.Sequence(lambda n: f"NID{n:08d}")
    phone = ""
    location = None
    attributes = factory.LazyFunction(dict)


class HouseholdFactory(DjangoModelFactory):
    class Meta:
        model = Household

    code = factory.Sequence(lambda n: f"HH-T{n:06d}")
    location = None
    attributes = factory.LazyFunction(dict)


class MembershipFactory(DjangoModelFactory):
    """A membership row written directly: bypasses the service's rules, not the DB constraints."""

    class Meta:
        model = Membership

    household = factory.SubFactory(HouseholdFactory)
    individual = factory.SubFactory(IndividualFactory)
    role = factory.LazyFunction(lambda: MemberRole.objects.get(pk=MemberRole.HEAD))
    recipient_type = None


# --- duplicates -------------------------------------------------------------------------------


class DuplicateCandidateFactory(DjangoModelFactory):
    """A pair in the duplicate review queue as a scan files it: the lower id first, whatever order
    the two people are given in."""

    class Meta:
        model = "registry.DuplicateCandidate"

    first = factory.SubFactory(IndividualFactory)
    second = factory.SubFactory(IndividualFactory)
    score = 90
    reasons = factory.LazyFunction(lambda: ["name_dob"])
    found_at = factory.LazyFunction(lambda: datetime.datetime.now(datetime.UTC))

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        kwargs["first"], kwargs["second"] = sorted((kwargs["first"], kwargs["second"]), key=lambda person: person.pk)
        return super()._create(model_class, *args, **kwargs)
