"""Every read of the registry starts here, already limited to what the user may see."""


from django.db import connection
from django.db.models import Count, OuterRef, Q, Subquery, TextField
from django.db.models.fields.json import KeyTransform
from django.db.models.functions import Cast, Coalesce
from django.utils import timezone

from sites.dates import years_before
from sites.scoping import scope_for

from .models import (
    DuplicateCandidate,
    DuplicateStatus,
    Household,
    Individual,
    Membership,
    Merge,
    normalise_national_id,
)

AGE_BANDS = {
    "0-4": (0, 4),
    "5-17": (5, 17),
    "18-59": (18, 59),
    "60+": (60, None),
}


def individuals_for(user, *, include_deleted=False):
    if not user.has_perm("registry.view_individual"):
        return Individual.objects.none()
    queryset = scope_for(user).filter(Individual.objects.all())
    return queryset if include_deleted else queryset.live()


def households_for(user, *, include_deleted=False):
    if not user.has_perm("registry.view_household"):
        return Household.objects.none()
    queryset = scope_for(user).filter(Household.objects.all())
    return queryset if include_deleted else queryset.live()


def household_members(household, user):
    """The members of a household the user may see, head first. A member registered outside the
    user's locations stays hidden even when the household is inside them."""
    members = Membership.objects.filter(household=household, individual__deleted_at__isnull=True)
    return (
        scope_for(user).filter(members, field="individual__location")
        .select_related("individual", "role", "individual__location")
        .order_by("role__sort_order", "joined_at", "id")
    )


def hidden_member_count(household, user):
    """How many live members of the household lie outside the user's locations."""
    members = Membership.objects.filter(household=household, individual__deleted_at__isnull=True)
    return members.count() - household_members(household, user).count()


def households_with_size(queryset):
    """Annotate the member count as a correlated subquery: computed only for the rows a page shows,
    where a JOIN + GROUP BY would aggregate every household before the LIMIT."""
    members = (
        Membership.objects.filter(household=OuterRef("pk"), individual__deleted_at__isnull=True)
        .order_by().values("household").annotate(count=Count("pk")).values("count")
    )
    return queryset.annotate(size=Coalesce(Subquery(members), 0))


def looks_like_national_id(text):
    """A query with a digit and no letters-only word is read as a national ID ("8552 1771 6075",
    "TZ-1980-0512" yes; "Amina 1980" no)."""
    words = (text or "").split()
    return bool(words) and any(ch.isdigit() for ch in text) and not any(word.isalpha() for word in words)


def search_individuals(queryset, text):
    """National ID: exact match after normalisation. Otherwise every word must appear in the name.
    Searching by ID is audited: views call services.individual_search, which calls this."""
    text = (text or "").strip()
    if not text:
        return queryset
    if looks_like_national_id(text):
        return queryset.filter(national_id=normalise_national_id(text))
    for term in text.lower().split()[:5]:
        queryset = queryset.filter(search_name__contains=term)
    return queryset


def filter_by_age_band(queryset, band, *, today=None):
    today = today or timezone.localdate()
    low, high = AGE_BANDS[band]
    # Born on or before today minus `low` years, and after today minus (`high` + 1) years.
    queryset = queryset.filter(dob__lte=years_before(today, low))
    if high is not None:
        queryset = queryset.filter(dob__gt=years_before(today, high + 1))
    return queryset


def filter_by_attribute(queryset, definition, value):
    """Equality on one defined attribute. The name comes from the definition, never from the request,
    and is used as a JSON key expression, never as a keyword argument. On PostgreSQL the filter is a
    JSON containment, which the GIN index on `attributes` serves."""
    if connection.vendor == "postgresql":
        return queryset.filter(attributes__contains={definition.name: value})
    return queryset.alias(attribute_value=KeyTransform(definition.name, "attributes")).filter(
        attribute_value=value)


def duplicates_for(user, *, include_deleted=True):
    """Possible duplicates whose two people are both in the user's locations: pairs of registered
    people, and merged pairs (one of them now deleted) so that a merge can be seen and undone."""
    if not user.has_perm("registry.view_duplicatecandidate"):
        return DuplicateCandidate.objects.none()
    scope = scope_for(user)
    pairs = scope.filter(scope.filter(DuplicateCandidate.objects.all(), field="first__location"),
                         field="second__location")
    return pairs.filter(Q(status=DuplicateStatus.MERGED)
                        | Q(first__deleted_at__isnull=True, second__deleted_at__isnull=True))


def filter_by_reason(queryset, reason):
    """Pairs found for `reason` (a DuplicateReason value): a text match on the JSON list, which both
    databases can do (SQLite has no JSON containment)."""
    return queryset.alias(reasons_text=Cast("reasons", TextField())).filter(reasons_text__contains=f'"{reason}"')


def merges_for(user):
    if not user.has_perm("registry.view_merge"):
        return Merge.objects.none()
    scope = scope_for(user)
    return scope.filter(scope.filter(Merge.objects.all(), field="kept__location"), field="merged__location")


def latest_scan(user):
    """The user's most recent duplicate scan job, or None."""
    from workflows.models import Job

    from .duplicates import SCAN

    return Job.objects.filter(kind=SCAN, started_by=user).order_by("-created_at", "-id").first()
