from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from dashboards.defaults import ensure_default_dashboards
from schemes.payments.demo import ensure_demo_payments
from schemes.plans.demo import enrol_demo_beneficiaries, ensure_demo_plans
from schemes.registry.demo import seed_demo
from sites.demo import require_demo
from workflows.demo import ensure_demo_workflows

LEVELS = {1: "regions", 2: "districts", 3: "wards", 4: "villages"}
DEFAULT_HOUSEHOLDS = 2500


class Command(BaseCommand):
    help = (
        "Seed a deterministic synthetic country for demos and benchmarks: locations, one login per "
        "role, registry attribute definitions, households and their members. Only with MIZANI_DEMO."
    )

    def add_arguments(self, parser):
        size = parser.add_mutually_exclusive_group()
        size.add_argument("--households", type=int,
                          help=f"Households to create (default {DEFAULT_HOUSEHOLDS}).")
        size.add_argument("--individuals", type=int,
                          help="Instead of --households: add households until this many people exist.")
        parser.add_argument("--seed", type=int, default=42, help="Random seed (default 42).")
        parser.add_argument("--reset", action="store_true",
                            help="Delete every individual, household and membership first.")

    def handle(self, *, households, individuals, seed, reset, **options):
        require_demo()
        if households is None and individuals is None:
            households = DEFAULT_HOUSEHOLDS
        if (households or 0) < 0 or (individuals or 0) < 0:
            raise CommandError("The number of households or individuals cannot be negative.")
        result = seed_demo(households=households, individuals=individuals, seed=seed, reset=reset)
        places = ", ".join(f"{result.level_counts.get(depth, 0)} {name}" for depth, name in LEVELS.items())
        self.stdout.write(f"Locations: {places} ({result.locations_created} created).")
        self.stdout.write(f"Demo users created: {', '.join(result.users_created) or 'none (all exist)'}.")
        self.stdout.write(f"Registry attribute definitions created: {result.fields_created}.")
        self.stdout.write(f"Approval workflows created: {len(ensure_demo_workflows())}.")
        self.stdout.write(f"Benefit plans created: {ensure_demo_plans()}.")
        enrolled = enrol_demo_beneficiaries(get_user_model().objects.get(username="admin"))
        if enrolled:
            self.stdout.write("Enrolled: " + ", ".join(f"{added:,} in {code}" for code, added in enrolled.items()) + ".")
        self.stdout.write(f"Payments: {', '.join(ensure_demo_payments()) or 'nothing new'}.")
        self.stdout.write(f"Dashboards: {', '.join(ensure_default_dashboards()) or 'nothing new'}.")
        if result.skipped:
            self.stdout.write(self.style.WARNING(
                "The registry already holds people or households: nothing added (use --reset to start again)."
            ))
        else:
            self.stdout.write(self.style.SUCCESS(
                f"Added {result.households:,} households and {result.individuals:,} individuals "
                f"in {result.seconds:.1f} s."
            ))
