from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from sites.demo import DEMO_USERS, require_demo
from sites.models import UserAccess


class Command(BaseCommand):
    help = "Print the admin URL and the demo logins with their role and scope. Only with MIZANI_DEMO."

    def add_arguments(self, parser):
        parser.add_argument("--url", default=f"{settings.WAGTAILADMIN_BASE_URL.rstrip('/')}/admin/",
                            help="The admin URL to show (default: WAGTAILADMIN_BASE_URL + /admin/).")

    def handle(self, *, url, **options):
        require_demo()
        users = get_user_model().objects.filter(username__in=[spec.username for spec in DEMO_USERS])
        by_name = {user.username: user for user in users.prefetch_related("groups")}
        accesses = {access.user_id: access for access in
                    UserAccess.objects.filter(user__in=users).prefetch_related("locations")}
        rows = []
        for spec in DEMO_USERS:
            user = by_name.get(spec.username)
            if user is not None:
                rows.append((spec.username, spec.password, _role(user), _scope(user, accesses.get(user.pk))))
        if not rows:
            self.stdout.write("No demo users yet: run `manage.py seed_demo` first.")
            return
        rows.insert(0, ("Username", "Password", "Role", "Scope"))
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        self.stdout.write(f"Mizani demo admin: {url}")
        for number, row in enumerate(rows):
            line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[3]
            self.stdout.write(self.style.MIGRATE_HEADING(line) if number == 0 else line)


def _role(user):
    if user.is_superuser:
        return "Superuser"
    return ", ".join(sorted(group.name for group in user.groups.all())) or "(no role)"


def _scope(user, access):
    if user.is_superuser or (access is not None and access.national_scope):
        return "National"
    locations = sorted(access.locations.all(), key=lambda location: location.path) if access else []
    return ", ".join(str(location) for location in locations) or "(no locations)"
