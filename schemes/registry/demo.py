"""The synthetic demo registry: households, individuals and memberships in the demo villages.

Everything is drawn from `random.Random` seeded by the caller, so the same seed gives the same people.
Rows are generated and written one chunk at a time (COPY on PostgreSQL, bulk_create elsewhere)
because a million people must load in minutes with flat memory; services would take hours.
"""

import datetime
import itertools
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field

from django.core.management.color import no_style
from django.db import connection, models, transaction
from django.dispatch import Signal
from django.utils import timezone

from sites.dates import years_before
from sites.demo import ensure_demo_locations, ensure_demo_users
from sites.fields import FieldType
from sites.roles import ensure_roles

from .demo_names import FAMILY_NAMES, FEMALE_FIRST_NAMES, MALE_FIRST_NAMES
from .models import (
    DuplicateCandidate,
    Household,
    Individual,
    MemberRole,
    Membership,
    Merge,
    RecipientType,
    RegistryField,
)

# Household sizes 1-10, most often 3-6 (mean about 4.2 people).
SIZE_WEIGHTS = {1: 10, 2: 13, 3: 18, 4: 19, 5: 15, 6: 10, 7: 6, 8: 4, 9: 3, 10: 2}
CHUNK_HOUSEHOLDS = 5_000
OLDEST_AGE = 100
ADULT_AGE = 18
# About one household in 150 lists its spouse twice, as registrations do: a misspelt name, the date
# of birth the same, a few days off or with day and month swapped, another ID number. The duplicate
# scan finds them (the review queue is not empty in a demo).
DUPLICATE_SPOUSE_SHARE = 1 / 150

SCHOOL_ATTENDANCE = ("attending", "not attending", "not applicable")
DWELLING_TYPES = ("permanent", "semi-permanent", "traditional", "temporary")
DWELLING_WEIGHTS = (30, 35, 25, 10)

# (target, name, label, type, extra definition fields)
DEMO_FIELDS = (
    ("individual", "income", "Monthly income", FieldType.DECIMAL, {"min_value": 0, "decimal_places": 2}),
    ("individual", "disability", "Has a disability", FieldType.BOOLEAN, {}),
    ("individual", "school_attendance", "School attendance", FieldType.CHOICE,
     {"choices": list(SCHOOL_ATTENDANCE)}),
    ("household", "dwelling_type", "Dwelling type", FieldType.CHOICE, {"choices": list(DWELLING_TYPES)}),
    ("household", "monthly_income", "Monthly income", FieldType.DECIMAL,
     {"min_value": 0, "decimal_places": 2, "help_text": "Sum of the members' monthly incomes."}),
)

# National IDs: 12 digits, unique by construction. The n-th adult gets FIRST + (n * STEP + offset)
# modulo SPACE; STEP is prime to SPACE, so the mapping is a permutation and IDs never repeat, and
# close to SPACE times the golden ratio, so consecutive people get unrelated-looking numbers.
NATIONAL_ID_FIRST = 10**11
NATIONAL_ID_SPACE = 9 * 10**11
NATIONAL_ID_STEP = 556_230_589_831

HOUSEHOLD_FIELDS = ("id", "code", "location_id", "attributes", "created_at", "updated_at")
INDIVIDUAL_FIELDS = ("id", "first_name", "last_name", "dob", "sex", "national_id", "phone",
                     "location_id", "attributes", "created_at", "updated_at")
MEMBERSHIP_FIELDS = ("household_id", "individual_id", "role_id", "recipient_type", "joined_at")


@dataclass
class SeedResult:
    locations_created: int = 0
    level_counts: Counter = field(default_factory=Counter)
    users_created: list = field(default_factory=list)
    fields_created: int = 0
    households: int = 0
    individuals: int = 0
    skipped: bool = False
    seconds: float = 0.0


def seed_demo(*, households=None, individuals=None, seed=42, reset=False):
    """Roles, the demo country, demo users, attribute definitions and people.

    Stops after `households` households or once `individuals` people exist, whichever comes first.
    Without `reset`, people are added only to an empty registry (a re-run adds nothing)."""
    started = time.perf_counter()
    ensure_roles()
    MemberRole.ensure_defaults()
    locations, locations_created = ensure_demo_locations(seed)
    result = SeedResult(
        locations_created=locations_created,
        level_counts=Counter(location.depth for location in locations.values()),
        users_created=ensure_demo_users(locations),
        fields_created=ensure_demo_fields(),
    )
    villages = [location.pk for _, location in sorted(locations.items()) if location.depth == 4]
    with transaction.atomic():
        # One transaction: an interrupted seed leaves nothing behind, so the "already seeded"
        # check below never mistakes half a country for a finished one.
        _lock_registry()
        if reset:
            registry_reset.send(sender=Individual)
            _wipe_registry()
        if Household.objects.exists() or Individual.objects.exists():
            result.skipped = True
        else:
            result.households, result.individuals = _load_people(
                _PeopleGenerator(seed, villages), households=households, individuals=individuals
            )
    result.seconds = time.perf_counter() - started
    return result


def ensure_demo_fields():
    """Create the demo attribute definitions that are missing; edited ones are kept."""
    created = 0
    for sort_order, (target, name, label, field_type, extra) in enumerate(DEMO_FIELDS):
        _, was_created = RegistryField.objects.get_or_create(
            target=target, name=name,
            defaults={"label": label, "field_type": field_type, "sort_order": sort_order, **extra},
        )
        created += was_created
    return created


def _registry_tables():
    return [model._meta.db_table for model in (Membership, Individual, Household)]


def _lock_registry():
    # Explicit ids are written below: keep other writers out until the sequences are reset.
    # (SQLite's IMMEDIATE transactions already hold the write lock.)
    if connection.vendor == "postgresql":
        tables = ", ".join(connection.ops.quote_name(t) for t in _registry_tables())
        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {tables} IN EXCLUSIVE MODE")


# Sent before a demo reset empties the registry: apps that hold rows about people (enrolments...)
# remove theirs and put their own counts right.
registry_reset = Signal()


def _wipe_registry():
    if connection.vendor == "postgresql":
        # CASCADE: rows of other apps that point at these people go too; that is what a reset means.
        tables = ", ".join(connection.ops.quote_name(t) for t in _registry_tables())
        with connection.cursor() as cursor:
            # Rows written earlier in this transaction leave deferred foreign-key checks pending,
            # and PostgreSQL refuses to truncate under them: run them now.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    else:
        Merge.objects.all().delete()
        DuplicateCandidate.objects.all().delete()
        Individual.objects.exclude(merged_into=None).update(merged_into=None)
        for model in (Membership, Individual, Household):
            model.objects.all().delete()


# --- generation ---------------------------------------------------------------------------------

def _rank_weights(names):
    """Cumulative weights falling with rank, so the first names of a list are the common ones."""
    return list(itertools.accumulate(1 / (rank + 10) for rank in range(len(names))))


@dataclass
class _Member:
    role: str
    sex: str
    age: int
    last_name: str


class _PeopleGenerator:
    def __init__(self, seed, village_ids):
        self.rng = random.Random(f"mizani-people-{seed}")
        # Its own stream: the people drawn from `rng` are the same with or without the duplicates.
        self.duplicate_rng = random.Random(f"mizani-duplicates-{seed}")
        rng = self.rng
        self.village_ids = village_ids
        # Villages differ in size: a few towns, many small places.
        self.village_weights = list(itertools.accumulate(
            rng.lognormvariate(0, 0.6) for _ in village_ids))
        self.national_id_offset = rng.randrange(NATIONAL_ID_SPACE)
        self.adults = 0
        today = timezone.localdate()
        # Ordinal of the day each age was reached by someone born "today": dob = that - 0..363 days.
        self.anniversaries = [years_before(today, age).toordinal() for age in range(OLDEST_AGE + 1)]
        self.sizes = list(SIZE_WEIGHTS)
        self.size_weights = list(itertools.accumulate(SIZE_WEIGHTS.values()))
        self.female_weights = _rank_weights(FEMALE_FIRST_NAMES)
        self.male_weights = _rank_weights(MALE_FIRST_NAMES)
        self.family_weights = _rank_weights(FAMILY_NAMES)

    def family_name(self):
        return self.rng.choices(FAMILY_NAMES, cum_weights=self.family_weights)[0]

    def first_name(self, sex):
        if sex == "F":
            return self.rng.choices(FEMALE_FIRST_NAMES, cum_weights=self.female_weights)[0]
        return self.rng.choices(MALE_FIRST_NAMES, cum_weights=self.male_weights)[0]

    def village(self):
        return self.rng.choices(self.village_ids, cum_weights=self.village_weights)[0]

    def members(self):
        """One household's composition: the head first, then spouse, an elder, children."""
        rng = self.rng
        size = rng.choices(self.sizes, cum_weights=self.size_weights)[0]
        family = self.family_name()
        head = _Member("HEAD", "M" if rng.random() < 0.7 else "F", int(rng.triangular(18, 90, 38)), family)
        members = [head]
        parents = [head]
        if size >= 2 and rng.random() < 0.75:
            gap = rng.randint(-2, 12)  # wives are usually younger
            age = head.age + gap if head.sex == "F" else head.age - gap
            spouse = _Member("SPOUSE", "F" if head.sex == "M" else "M",
                             min(max(age, ADULT_AGE), OLDEST_AGE),
                             family if rng.random() < 0.5 else self.family_name())
            members.append(spouse)
            parents.append(spouse)
        if len(members) < size and head.age <= 60 and rng.random() < 0.15:
            grand = head.age <= 35
            sex = rng.choice("MF")
            role = ("GRANDFATHER" if sex == "M" else "GRANDMOTHER") if grand else \
                ("FATHER" if sex == "M" else "MOTHER")
            age = head.age + (rng.randint(40, 55) if grand else rng.randint(18, 35))
            members.append(_Member(role, sex, min(age, OLDEST_AGE),
                                   family if sex == "M" else self.family_name()))
        # Children were born when the younger parent was 16 to 50.
        youngest = min(parent.age for parent in parents)
        oldest_child = max(0, min(youngest - 16, 40))
        youngest_child = min(max(0, youngest - 50), oldest_child)
        while len(members) < size:
            sex = rng.choice("MF")
            members.append(_Member("SON" if sex == "M" else "DAUGHTER", sex,
                                   rng.randint(youngest_child, oldest_child), family))
        return members

    def dob(self, age):
        return datetime.date.fromordinal(self.anniversaries[age] - self.rng.randrange(364))

    def national_id(self):
        self.adults += 1
        n = (self.adults * NATIONAL_ID_STEP + self.national_id_offset) % NATIONAL_ID_SPACE
        return str(NATIONAL_ID_FIRST + n)

    def phone(self):
        return f"+2557{self.rng.choice('14568')}{self.rng.randrange(10**7):07d}"

    def registered_again(self, person):
        """The same person as a second registration would record them."""
        rng = self.duplicate_rng
        first_name = person["first_name"]
        spelling = rng.randrange(3)
        if spelling == 0:  # a doubled letter
            at = rng.randrange(2, len(first_name))
            first_name = first_name[:at] + first_name[at - 1] + first_name[at:]
        elif spelling == 1 and len(first_name) > 4:  # a letter dropped
            at = rng.randrange(1, len(first_name))
            first_name = first_name[:at] + first_name[at + 1:]
        else:  # an "h" added, as in Amina / Aminah
            first_name += "h"
        dob = person["dob"]
        how = rng.random()
        if how < 0.2 and dob.day <= 12 and dob.day != dob.month:
            dob = dob.replace(month=dob.day, day=dob.month)
        elif how < 0.4:
            dob = min(dob + datetime.timedelta(days=rng.choice((-3, -2, -1, 1, 2, 3))), timezone.localdate())
        return {**person, "first_name": first_name, "dob": dob, "national_id": self.national_id(),
                "attributes": dict(person["attributes"])}

    def attributes(self, age):
        """Values exactly as sites.fields would store them: decimals as strings, booleans as JSON."""
        rng = self.rng
        values = {"disability": rng.random() < (0.03 if age < 60 else 0.12)}
        if age >= ADULT_AGE:
            values["income"] = "0" if rng.random() < 0.35 else \
                str(round(rng.lognormvariate(11.4, 0.9) / 500) * 500)
        if 5 <= age <= 17:
            values["school_attendance"] = "attending" if rng.random() < 0.85 else "not attending"
        else:
            values["school_attendance"] = "not applicable"
        return values

    def household(self):
        """(village id, household attributes, [(individual fields, _Member, recipient type)])."""
        village = self.village()
        people = []
        for member in self.members():
            adult = member.age >= ADULT_AGE
            person = {
                "first_name": self.first_name(member.sex),
                "last_name": member.last_name,
                "dob": self.dob(member.age),
                "sex": member.sex,
                "national_id": self.national_id() if adult else None,
                "phone": self.phone() if adult and self.rng.random() < 0.65 else "",
                "attributes": self.attributes(member.age),
            }
            recipient = {"HEAD": RecipientType.PRIMARY, "SPOUSE": RecipientType.SECONDARY}.get(member.role)
            people.append((person, member, recipient))
        spouses = [(person, member) for person, member, _ in people if member.role == "SPOUSE"]
        if spouses and self.duplicate_rng.random() < DUPLICATE_SPOUSE_SHARE:
            person, member = spouses[0]
            people.append((self.registered_again(person), member, None))
        attributes = {
            "dwelling_type": self.rng.choices(DWELLING_TYPES, weights=DWELLING_WEIGHTS)[0],
            "monthly_income": str(sum(int(p["attributes"].get("income", 0)) for p, _, _ in people)),
        }
        return village, attributes, people


# --- loading --------------------------------------------------------------------------------------

def _load_people(generator, *, households, individuals):
    """Generate and write chunk by chunk. The registry is empty here, so ids start at 1 and are
    assigned in Python: memberships can then point at rows written by COPY, which returns no ids."""
    load = _copy if connection.vendor == "postgresql" else _bulk_create
    now = timezone.now()
    household_count = individual_count = 0

    def more():
        return ((households is None or household_count < households)
                and (individuals is None or individual_count < individuals))

    while more():
        household_rows, individual_rows, membership_rows = [], [], []
        for _ in range(CHUNK_HOUSEHOLDS):
            if not more():
                break
            village, attributes, people = generator.household()
            household_count += 1
            household_rows.append(
                (household_count, f"HH-{household_count:07d}", village, attributes, now, now))
            for person, member, recipient in people:
                individual_count += 1
                individual_rows.append((
                    individual_count, person["first_name"], person["last_name"], person["dob"],
                    person["sex"], person["national_id"], person["phone"], village,
                    person["attributes"], now, now,
                ))
                membership_rows.append((household_count, individual_count, member.role, recipient, now))
        load(Household, HOUSEHOLD_FIELDS, household_rows)
        load(Individual, INDIVIDUAL_FIELDS, individual_rows)
        load(Membership, MEMBERSHIP_FIELDS, membership_rows)
    _reset_sequences()
    _analyze()
    return household_count, individual_count


def _copy(model, field_names, rows):
    fields = [model._meta.get_field(name) for name in field_names]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    json_positions = [i for i, f in enumerate(fields) if isinstance(f, models.JSONField)]
    with connection.cursor() as cursor:
        with cursor.copy(f"COPY {quote(model._meta.db_table)} ({columns}) FROM STDIN") as copy:
            for row in rows:
                if json_positions:
                    row = list(row)
                    for i in json_positions:
                        row[i] = json.dumps(row[i])
                copy.write_row(row)


def _bulk_create(model, field_names, rows):
    model.objects.bulk_create((model(**dict(zip(field_names, row, strict=False))) for row in rows), batch_size=500)


def _analyze():
    """Give PostgreSQL's planner statistics for the new rows now: until autovacuum gets round to
    it (if it is on at all), it plans for empty tables and picks plans that are seconds slow."""
    if connection.vendor == "postgresql":
        tables = ", ".join(connection.ops.quote_name(t) for t in _registry_tables())
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {tables}")


def _reset_sequences():
    """Move PostgreSQL's id sequences past the explicit ids (a no-op on SQLite)."""
    statements = connection.ops.sequence_reset_sql(no_style(), [Household, Individual])
    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql)
