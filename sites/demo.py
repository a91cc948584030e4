"""The demo installation: a synthetic location tree and one login per role.

Only for settings with `MIZANI_DEMO = True` (development and tests): demo passwords are public.
"""

import random
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import CommandError
from django.db import transaction
from wagtail.signal_handlers import disable_reference_index_auto_update

from .models import Location, UserAccess

REGION_NAMES = ("Pwani", "Ziwani", "Nyanda za Juu", "Kati")
DISTRICTS_PER_REGION = 5
WARDS_PER_DISTRICT = (3, 4)
VILLAGES_PER_WARD = (4, 6)

DISTRICT_NAMES = (
    "Mkuranga", "Kilosa", "Ngara", "Mvomero", "Busega", "Mbinga", "Ludewa", "Kyela", "Magu", "Nzega",
    "Igunga", "Handeni", "Korogwe", "Lushoto", "Muheza", "Pangani", "Kilindi", "Mpwapwa", "Kondoa",
    "Chemba", "Bahi", "Mufindi", "Makete", "Kasulu",
)
WARD_NAMES = (
    "Majengo", "Mjini", "Bondeni", "Mwembeni", "Sokoni", "Kilimani", "Mtoni", "Kibaoni", "Mbuyuni",
    "Mnazi Mmoja", "Kisiwani", "Mabatini", "Mikocheni", "Kijitonyama", "Kwamsisi", "Mwanzange",
    "Chanika", "Makorora", "Nguvumali", "Usagara", "Mkwakwani", "Pongwe", "Magaoni", "Tanganyika",
)
VILLAGE_NAMES = (
    "Mtakuja", "Mwenge", "Kilimahewa", "Kichangani", "Mlimani", "Maendeleo", "Tumaini", "Amani",
    "Upendo", "Mapinduzi", "Azimio", "Umoja", "Uhuru", "Muungano", "Ushirika", "Jitegemee",
    "Nyamhongolo", "Isanga", "Ilembo", "Itete", "Igawa", "Ikuti", "Lupeta", "Mwakaleli", "Kipande",
    "Mbugani", "Shuleni", "Madukani", "Kivukoni", "Mnarani", "Kisimani", "Chemchem", "Mianzini",
    "Miembeni", "Minazini", "Mpirani", "Nyakato", "Buhongwa", "Igoma", "Kishiri", "Bugarika",
    "Ruhuwiko", "Matogoro", "Mletele", "Lizaboni", "Mateka", "Mshikamano", "Chamazi", "Kigogo",
    "Mtongani", "Kizota", "Ntyuka", "Msalato", "Mkonze", "Ihumwa", "Nala", "Zuzu", "Hombolo",
)


def require_demo():
    """Demo data and demo passwords never reach a real installation: the settings must say demo, and
    the database must hold no account other than the demo ones (an operator who forgot
    DJANGO_SETTINGS_MODULE on a production server stops here)."""
    if getattr(settings, "MIZANI_DEMO", False) is not True:
        raise CommandError(
            "Demo commands are disabled: settings.MIZANI_DEMO is not True "
            "(it is True only in the development and test settings)."
        )
    from django.contrib.auth import get_user_model

    demo_names = {user.username for user in DEMO_USERS} | {"benchmark_clerk"}
    real = get_user_model().objects.exclude(username__in=demo_names)
    if real.exists():
        raise CommandError(
            f"Demo commands are disabled: this database has accounts that are not demo accounts "
            f"({', '.join(real.values_list('username', flat=True)[:5])}). Use a database of its own for demos "
            "and benchmarks.")


@dataclass(frozen=True)
class PlaceSpec:
    code: str
    name: str
    parent_code: str | None


def demo_places(seed):
    """The demo tree, top-down (parents before children), the same for the same seed."""
    rng = random.Random(f"mizani-places-{seed}")
    places = []
    districts = rng.sample(DISTRICT_NAMES, len(REGION_NAMES) * DISTRICTS_PER_REGION)
    for r, region_name in enumerate(REGION_NAMES, start=1):
        region = f"R{r:02d}"
        places.append(PlaceSpec(region, region_name, None))
        for d in range(1, DISTRICTS_PER_REGION + 1):
            district = f"{region}-D{d:02d}"
            places.append(PlaceSpec(district, districts.pop(), region))
            for w, ward_name in enumerate(rng.sample(WARD_NAMES, rng.randint(*WARDS_PER_DISTRICT)), 1):
                ward = f"{district}-W{w:02d}"
                places.append(PlaceSpec(ward, ward_name, district))
                for v, village_name in enumerate(
                    rng.sample(VILLAGE_NAMES, rng.randint(*VILLAGES_PER_WARD)), 1
                ):
                    places.append(PlaceSpec(f"{ward}-V{v:02d}", village_name, ward))
    return places


@transaction.atomic
def ensure_demo_locations(seed):
    """Create the demo tree's missing locations; existing codes are reused as they are.
    Returns ({code: Location}, number created)."""
    places = demo_places(seed)
    by_code = Location.objects.in_bulk([p.code for p in places], field_name="code")
    created = 0
    # Like the bulk-loaded people, demo locations stay out of Wagtail's reference index: each save
    # would otherwise run (and log) an index task. `manage.py rebuild_references_index` adds them.
    with disable_reference_index_auto_update():
        for place in places:
            if place.code not in by_code:
                # Location.save computes path and depth; a few hundred saves are fine.
                location = Location(code=place.code, name=place.name, parent=by_code.get(place.parent_code))
                location.save()
                by_code[place.code] = location
                created += 1
    return by_code, created


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: str | None  # a group from sites.roles; None for the superuser
    national: bool = False
    locations: tuple[str, ...] = ()

    @property
    def password(self):
        return f"{self.username}-demo-2026!"


DEMO_USERS = (
    DemoUser("admin", None),
    DemoUser("sysadmin", "System administrator", national=True),
    DemoUser("schemeadmin", "Scheme administrator", national=True),
    DemoUser("clerk", "Clerk", locations=("R01-D01",)),
    DemoUser("clerk2", "Clerk", locations=("R02-D03",)),
    DemoUser("checker", "Checker", national=True),
    DemoUser("checker2", "Checker", national=True),  # payrolls above the demo's amount band need two
    DemoUser("accountant", "Accountant", national=True),
    DemoUser("manager", "Manager", locations=("R01",)),
    DemoUser("viewer", "Viewer", national=True),
)


@transaction.atomic
def ensure_demo_users(locations_by_code):
    """Create missing demo users with their role and scope; existing accounts are left alone so
    that changes made in the admin survive a re-run. Returns the usernames created."""
    User = get_user_model()
    existing = set(User.objects.filter(username__in=[u.username for u in DEMO_USERS])
                   .values_list("username", flat=True))
    created = []
    for spec in DEMO_USERS:
        if spec.username in existing:
            continue
        email = f"{spec.username}@demo.mizani.invalid"
        if spec.role is None:
            User.objects.create_superuser(spec.username, email, spec.password,
                                          first_name="Demo", last_name="Administrator")
        else:
            user = User.objects.create_user(spec.username, email, spec.password,
                                            first_name="Demo", last_name=spec.role)
            user.groups.add(Group.objects.get(name=spec.role))
            access = UserAccess.objects.create(user=user, national_scope=spec.national)
            access.locations.set([locations_by_code[code] for code in spec.locations])
        created.append(spec.username)
    return created
