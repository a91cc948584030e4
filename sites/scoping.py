"""The one scoping engine: which locations a user may act on.

Every selector builds its queryset from `scope_for(user).filter(queryset, field)`. Records without a
location are visible only with national scope.
"""

from dataclasses import dataclass
from functools import reduce
from operator import or_

from django.db.models import Q

from .models import Location


@dataclass(frozen=True)
class Scope:
    national: bool
    paths: tuple[str, ...]

    @property
    def is_empty(self):
        return not self.national and not self.paths

    def locations(self):
        """The locations in scope (a lazy queryset usable as a subquery)."""
        if self.national:
            return Location.objects.all()
        if not self.paths:
            return Location.objects.none()
        return Location.objects.filter(reduce(or_, (Q(path__startswith=p) for p in self.paths)))

    def q(self, field="location"):
        if self.national:
            return Q()
        if not self.paths:
            return Q(pk__in=[])
        return Q(**{f"{field}__in": self.locations().values("pk")})

    def filter(self, queryset, field="location"):
        if self.national:
            return queryset
        if not self.paths:
            return queryset.none()
        return queryset.filter(self.q(field))

    def root(self):
        """The one location the scope hangs from, or None (national, several, or none): what a
        request covering "everything this user may see" is placed at."""
        if self.national or len(self.paths) != 1:
            return None
        return Location.objects.filter(path=self.paths[0]).first()

    def breakdown_depth(self):
        """The location level totals are broken down by for this scope: the one just below its own
        locations (regions for national users, a district's villages for its clerk)."""
        if self.national or not self.paths:
            return 1
        return min(path.strip("/").count("/") + 1 for path in self.paths) + 1

    def allows(self, location):
        """May the user act on a record placed at `location` (None = no location)?"""
        if self.national:
            return True
        if location is None:
            return False
        return any(location.path.startswith(p) for p in self.paths)


EMPTY_SCOPE = Scope(national=False, paths=())


def scope_for(user):
    """The user's scope, cached on the user object for the length of the request."""
    if user is None or not user.is_authenticated or not user.is_active:
        return EMPTY_SCOPE
    cached = getattr(user, "_mizani_scope", None)
    if cached is not None:
        return cached
    if user.is_superuser:
        scope = Scope(national=True, paths=())
    else:
        access = getattr(user, "access", None) if hasattr(user, "access") else None
        if access is None:
            scope = EMPTY_SCOPE
        elif access.national_scope:
            scope = Scope(national=True, paths=())
        else:
            paths = sorted(access.locations.values_list("path", flat=True))
            # Drop paths already covered by an ancestor in the list.
            kept = []
            for path in paths:
                if not any(path.startswith(k) for k in kept):
                    kept.append(path)
            scope = Scope(national=False, paths=tuple(kept))
    user._mizani_scope = scope
    return scope


def forget_scope(user):
    """Call after changing a user's access within the same request/test."""
    if hasattr(user, "_mizani_scope"):
        del user._mizani_scope
