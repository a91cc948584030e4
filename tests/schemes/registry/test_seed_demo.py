"""seed_demo and demo_logins: a deterministic synthetic country, valid households, one login per role."""

import hashlib
import json
import re
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Count, F, Q
from django.test import Client, override_settings

from schemes.registry.models import Household, Individual, Membership, RegistryField
from sites.demo import DEMO_USERS
from sites.models import Location
from sites.scoping import scope_for
from tests.factories import HouseholdFactory, UserFactory

pytestmark = pytest.mark.django_db
User = get_user_model()


def run(command, *args):
    out = StringIO()
    call_command(command, *args, stdout=out)
    return out.getvalue()


def fingerprint():
    """A hash of everything the seed generates except database ids and timestamps."""
    digest = hashlib.sha256()
    for household in Household.objects.select_related("location").order_by("code"):
        digest.update(json.dumps([household.code, household.location.code, household.attributes],
                                 sort_keys=True).encode())
    members = Membership.objects.select_related("household", "individual__location").order_by(
        "household__code", "individual_id")
    for membership in members:
        person = membership.individual
        digest.update(json.dumps([
            membership.household.code, membership.role_id, membership.recipient_type, person.first_name,
            person.last_name, person.dob.isoformat(), person.sex, person.national_id, person.phone,
            person.location.code, person.attributes,
        ], sort_keys=True).encode())
    return digest.hexdigest()


def test_small_country_has_the_demo_tree_and_households_in_villages():
    output = run("seed_demo", "--households", "50")

    by_depth = dict(Location.objects.values_list("depth").annotate(n=Count("id")))
    assert by_depth[1] == 4 and by_depth[2] == 20
    districts = Location.objects.filter(depth=2).annotate(wards=Count("children"))
    assert all(3 <= d.wards <= 4 for d in districts)
    wards = Location.objects.filter(depth=3).annotate(villages=Count("children"))
    assert all(4 <= w.villages <= 6 for w in wards)
    assert Location.objects.get(code="R01-D03-W02").parent.code == "R01-D03"
    assert all(re.fullmatch(r"R\d\d(-D\d\d(-W\d\d(-V\d\d)?)?)?", code)
               for code in Location.objects.values_list("code", flat=True))

    assert Household.objects.count() == 50
    assert not Household.objects.exclude(location__depth=4).exists()
    assert Individual.objects.count() == Membership.objects.count() > 50
    # Everyone lives in their household's village.
    assert not Membership.objects.exclude(individual__location=F("household__location")).exists()
    assert "Added 50 households" in output


def test_every_household_has_one_head_who_is_the_primary_recipient():
    run("seed_demo", "--households", "50")

    households = Household.objects.annotate(
        heads=Count("memberships", filter=Q(memberships__role="HEAD")),
        primaries=Count("memberships", filter=Q(memberships__recipient_type="PRIMARY")),
        size=Count("memberships"),
    )
    assert all(h.heads == 1 and h.primaries == 1 and 1 <= h.size <= 10 for h in households)
    assert not Membership.objects.filter(recipient_type="PRIMARY").exclude(role="HEAD").exists()
    roles = set(Membership.objects.values_list("role", flat=True))
    assert {"HEAD", "SPOUSE", "SON", "DAUGHTER"} <= roles


def test_adults_have_unique_national_ids_and_children_none():
    run("seed_demo", "--households", "50")

    people = list(Individual.objects.all())
    ids = [p.national_id for p in people if p.national_id]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[1-9]\d{11}", nid) for nid in ids)
    assert all((p.national_id is not None) == (p.age() >= 18) for p in people)
    phones = [p.phone for p in people if p.phone]
    assert phones and all(re.fullmatch(r"\+2557\d{8}", phone) for phone in phones)
    assert not any(p.phone for p in people if p.age() < 18)


def test_attributes_are_stored_as_the_field_engine_stores_them():
    run("seed_demo", "--households", "50")

    individual_schema = RegistryField.schema_for(RegistryField.Target.INDIVIDUAL)
    household_schema = RegistryField.schema_for(RegistryField.Target.HOUSEHOLD)
    assert set(individual_schema.by_name) == {"income", "disability", "school_attendance"}
    # Not children_under_5: the rules count it from the members (a stored copy would disagree).
    assert set(household_schema.by_name) == {"dwelling_type", "monthly_income"}
    for definition in RegistryField.objects.all():
        definition.full_clean()  # every demo definition is one an administrator could save
    for person in Individual.objects.all():
        assert individual_schema.clean(person.attributes) == person.attributes
        assert isinstance(person.attributes["disability"], bool)
    for household in Household.objects.prefetch_related("memberships__individual"):
        assert household_schema.clean(household.attributes) == household.attributes
        members = [m.individual for m in household.memberships.all()]
        assert household.attributes["monthly_income"] == str(
            sum(int(p.attributes.get("income", 0)) for p in members))


def test_same_seed_same_country_other_seed_other_people():
    run("seed_demo", "--households", "40", "--seed", "42")
    first = fingerprint()

    run("seed_demo", "--households", "40", "--seed", "42", "--reset")
    assert fingerprint() == first

    run("seed_demo", "--households", "40", "--seed", "7", "--reset")
    assert Household.objects.count() == 40
    assert fingerprint() != first


def test_a_second_run_adds_nothing_and_reset_starts_again():
    HouseholdFactory(code="KEEP-ME")

    output = run("seed_demo", "--households", "20")
    assert "nothing added" in output
    assert list(Household.objects.values_list("code", flat=True)) == ["KEEP-ME"]
    assert "(0 created)" in run("seed_demo", "--households", "20")

    run("seed_demo", "--households", "20", "--reset")
    assert Household.objects.count() == 20
    assert not Household.objects.filter(code="KEEP-ME").exists()


def test_individuals_target_stops_at_the_household_that_reaches_it():
    run("seed_demo", "--individuals", "120")

    count = Individual.objects.count()
    assert 120 <= count < 130


def test_demo_users_have_their_role_scope_and_password():
    run("seed_demo", "--households", "10")
    client = Client()
    by_code = {location.code: location for location in Location.objects.filter(depth__lte=2)}

    for spec in DEMO_USERS:
        user = User.objects.get(username=spec.username)
        scope = scope_for(user)
        if spec.role is None:
            assert user.is_superuser
        else:
            assert not user.is_superuser and not user.is_staff
            assert list(user.groups.values_list("name", flat=True)) == [spec.role]
            assert scope.national == spec.national
            assert scope.paths == tuple(by_code[code].path for code in spec.locations)
        assert client.login(username=spec.username, password=f"{spec.username}-demo-2026!")
        assert client.get("/admin/").status_code == 200, spec.username
        client.logout()

    # The two clerks hold one district each, in different regions.
    clerk, clerk2 = (scope_for(User.objects.get(username=name)).paths for name in ("clerk", "clerk2"))
    assert by_code["R01-D01"].depth == by_code["R02-D03"].depth == 2
    assert clerk[0].split("/")[1] != clerk2[0].split("/")[1]


def test_demo_logins_prints_each_login_with_role_and_scope():
    assert "seed_demo" in run("demo_logins")  # nothing seeded yet
    run("seed_demo", "--households", "5")

    output = run("demo_logins", "--url", "http://127.0.0.1:8000/admin/")

    assert "http://127.0.0.1:8000/admin/" in output
    lines = {line.split()[0]: line for line in output.splitlines()[2:]}
    assert set(lines) == {spec.username for spec in DEMO_USERS}
    assert "clerk-demo-2026!" in lines["clerk"] and "Clerk" in lines["clerk"]
    assert "(R01-D01)" in lines["clerk"]
    assert "(R01)" in lines["manager"] and "National" in lines["sysadmin"]


@override_settings(MIZANI_DEMO=False)
@pytest.mark.parametrize("command", ["seed_demo", "demo_logins"])
def test_demo_commands_refuse_without_the_demo_setting(command):
    with pytest.raises(CommandError, match="MIZANI_DEMO"):
        run(command)
    assert not Location.objects.exists()


def test_demo_commands_refuse_a_database_with_real_accounts(db):
    from django.core.management import CommandError, call_command

    UserFactory(username="real.person")

    with pytest.raises(CommandError, match="not demo accounts"):
        call_command("seed_demo", "--households", "1")
