"""Every read of the registry starts here, already limited to what the user may see."""


from dataclasses import dataclass

from django.db import connection
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery, TextField
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


# Past this many people bearing a name (or this many households whose code holds the text), the
# households are not collected one by one (see search_households).
HOUSEHOLD_SEARCH_LIMIT = 2000


@dataclass(frozen=True)
class HouseholdSearch:
    households: QuerySet
    # None when `households` can be counted; otherwise how many of them were found already (the
    # count would read every household bearing a common name).
    at_least: int | None = None


def search_households(queryset, text, *, user):
    """Households of `queryset` whose code contains `text` or, unless it reads as a national ID,
    with a live member in the user's locations whose name holds every word of it (as
    search_individuals).

    Neither an OR of the two nor a UNION can use an index, and a common name has many households
    (35,000 people in 11,500 households at a million): collecting or counting them takes 0.2-0.5 s.
    So the codes are read once, and at most HOUSEHOLD_SEARCH_LIMIT + 1 of the people bearing the
    name, through the trigram index. A rarer name's households are then listed by id. A common
    name's households are tested one by one as the page walks them in its order (a page fills within
    a few hundred households) and not counted: `at_least` says how many are known."""
    text = (text or "").strip()
    if not text:
        return HouseholdSearch(queryset)
    households = queryset.order_by().values("pk")
    by_code, all_codes = _first_values(households.filter(code__icontains=text).values_list("pk", flat=True))
    code = Q(pk__in=by_code) if all_codes else Q(code__icontains=text)
    if looks_like_national_id(text):
        return HouseholdSearch(queryset.filter(code))
    people = search_individuals(_people_in_scope(user), text)
    # The listing's filters are applied to the households found, not here: joined to the people, a
    # selective filter leads PostgreSQL to read every membership (0.2 s instead of 0.03 s).
    by_member, all_members = _first_values(
        people.filter(membership__isnull=False).values_list("membership__household_id", flat=True))
    if all_members:
        found = Q(pk__in={*by_code, *by_member}) if all_codes else code | Q(pk__in=by_member)
        return HouseholdSearch(queryset.filter(found))
    members = people.filter(membership__household=OuterRef("pk"))
    if not by_code:
        found = queryset.filter(Exists(members))
    else:
        # Under an OR, PostgreSQL would hash every household of the name before the first row (0.3 s,
        # 2 s when it compiles the plan): a member is looked for household by household, after the code.
        found = queryset.alias(named_member=Subquery(members.order_by().values("pk")[:1])).filter(
            code | Q(named_member__isnull=False))
    # None when the filters leave none of the households found: then they are counted.
    at_least = households.filter(pk__in={*by_code, *by_member}).count() or None
    return HouseholdSearch(found, at_least=at_least)


def _people_in_scope(user):
    """Live people in the user's locations, the locations given as a list: as a subquery, PostgreSQL
    joins them to the people and scans the name index once per location (0.3 s, not 0.02 s, for a
    common name in a district)."""
    scope = scope_for(user)
    people = Individual.objects.live()
    if scope.national:
        return people
    return people.filter(location__in=list(scope.locations().values_list("pk", flat=True)))


def _first_values(values):
    """At most HOUSEHOLD_SEARCH_LIMIT + 1 of `values` (in no order), and whether they are all."""
    found = list(values.order_by()[:HOUSEHOLD_SEARCH_LIMIT + 1])
    return found, len(found) <= HOUSEHOLD_SEARCH_LIMIT


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


def household_enrolments(household):
    """The household's live enrolments (potential, active, suspended) in household plans, with their plan."""
    from schemes.plans.models import LIVE_STATUSES

    return list(household.beneficiaries.filter(status__in=LIVE_STATUSES).select_related("plan").order_by("plan__name"))


def open_requests(operations, **payload):
    """Requests of these operations not yet decided or applied whose payload has these values (the
    record's id): what a record page shows as pending, and what refuses a second request."""
    from workflows.models import ApprovalRequest, RequestStatus

    return ApprovalRequest.objects.filter(
        operation__in=operations, status__in=[RequestStatus.PENDING, RequestStatus.APPROVED, RequestStatus.EXECUTING],
        **{f"payload__{key}": value for key, value in payload.items()}).order_by("pk")


def exact_duplicates(queryset, *, first_name, last_name, dob):
    """Live people in `queryset` with the same name (case aside) and date of birth: one query,
    served by the date-of-birth index."""
    return queryset.filter(dob=dob, search_name=f"{first_name} {last_name}".lower()).order_by("pk")


YOUR_LOCATIONS = "your locations"


def household_named(household, scope, *, outside=YOUR_LOCATIONS):
    """"household <code>" when `scope` allows it; otherwise only that it lies outside (`outside`: the
    reader's locations, or the location of the request that stores the text)."""
    return f"household {household.code}" if scope.allows(household.location) else f"a household outside {outside}"


def person_named(person, scope, *, outside=YOUR_LOCATIONS):
    """"<name> (id <id>)" when `scope` allows the person's location; otherwise only that they are outside."""
    return f"{person} (id {person.pk})" if scope.allows(person.location) else f"a member outside {outside}"


def delete_consequences(record, scope, *, outside=YOUR_LOCATIONS):
    """What deleting the record touches, {what: how}, for its confirmation page (`scope` the reader's)
    and its request (`scope` the request's location's): a household outside `scope` is not named."""
    from schemes.plans.models import LIVE_STATUSES

    if isinstance(record, Household):
        members = Membership.objects.filter(household=record).count()
        enrolments = household_enrolments(record)
        return {"Members": f"{members}" + (" (they must be removed first)" if members else ""),
                "Live enrolments": _enrolment_text(enrolments, "a deleted household")}
    membership = Membership.objects.filter(individual=record).select_related(
        "household__location", "role").first()
    if membership is None:
        household = "None"
    else:
        recipient = membership.get_recipient_type_display()
        named = membership.household.code if scope.allows(membership.household.location) else (
            f"A household outside {outside}")
        household = (f"{named} ({membership.role.label.lower()}"
                     f"{f', {recipient.lower()}' if recipient else ''}): they leave it")
    enrolments = list(record.beneficiaries.filter(status__in=LIVE_STATUSES).select_related("plan").order_by("plan__name"))
    return {"Household": household,
            "Live enrolments": _enrolment_text(enrolments, "a deleted person"),
            "Payment lines naming them as recipient": f"{record.payment_lines.count()} (kept as they are)"}


def _enrolment_text(enrolments, subject):
    if not enrolments:
        return "0"
    plans = ", ".join(f"{e.plan.name} ({e.get_status_display().lower()})" for e in enrolments)
    return f"{len(enrolments)}: {plans}; {subject} is left out of later payrolls"


# --- a person's benefits: enrolments (their own and their household's) and payment lines -----------

PERSON_LINES_SHOWN = 20


@dataclass(frozen=True)
class PersonEnrolment:
    beneficiary: object  # a plans Beneficiary, or a HouseholdBeneficiary of their household
    household: Household | None  # set when the enrolment is their household's


BENEFIT_PERMISSIONS = ("plans.view_beneficiary", "plans.view_householdbeneficiary", "payments.view_paymentline")


def may_see_person_benefits(user):
    """Whether a person's record (and the duplicates comparison) shows their enrolments and payments."""
    return any(user.has_perm(permission) for permission in BENEFIT_PERMISSIONS)


def person_enrolments(individual, user):
    """The person's enrolments the user may see, in any status: their own in individual plans, then
    their household's in household plans (its enrolments are theirs while they are a member; a
    household outside the user's locations is left out by the plans' selector)."""
    from schemes.plans.selectors import beneficiaries_for, household_beneficiaries_for

    own = beneficiaries_for(user).filter(individual=individual).select_related("plan").order_by("plan__name")
    enrolments = [PersonEnrolment(beneficiary, None) for beneficiary in own]
    membership = Membership.objects.filter(individual=individual).select_related("household").first()
    if membership is not None:
        household = household_beneficiaries_for(user).filter(household=membership.household_id).select_related(
            "plan").order_by("plan__name")
        enrolments += [PersonEnrolment(beneficiary, membership.household) for beneficiary in household]
    return enrolments


@dataclass(frozen=True)
class PersonPayments:
    lines: list  # the newest PERSON_LINES_SHOWN, each with `for_household` and `to_them`
    count: int
    totals: list  # per payment plan and currency: due and received, with their line counts


def person_payments(individual, user, *, limit=PERSON_LINES_SHOWN):
    """Payment lines of approved and reconciled payrolls for the person, in the user's locations: their
    own in individual plans, their household's in household plans (`for_household`; `to_them` when
    they were the recipient), and any other naming them as recipient (a household they left).

    Lines are found by (payroll, beneficiary) pairs, which their unique index serves: the payrolls
    of the plans they or their household are enrolled in, few, are read first."""
    from django.db.models import Sum
    from django.db.models.fields.json import KeyTextTransform

    from schemes.payments.models import PAYABLE_STATUSES, LineStatus, Payroll
    from schemes.payments.selectors import lines_for, money
    from schemes.plans.models import Beneficiary, HouseholdBeneficiary, PlanType

    own = dict(Beneficiary.objects.filter(individual=individual).values_list("pk", "plan_id"))
    household_id = Membership.objects.filter(individual=individual).values_list("household_id", flat=True).first()
    theirs = dict(HouseholdBeneficiary.objects.filter(household=household_id).values_list("pk", "plan_id")
                  ) if household_id else {}
    payrolls = Payroll.objects.filter(status__in=PAYABLE_STATUSES)

    def of(enrolments, plan_type):
        if not enrolments:
            return Q(pk__in=[])
        ids = list(payrolls.filter(payment_plan__benefit_plan__in=set(enrolments.values()),
                                   payment_plan__benefit_plan__plan_type=plan_type).values_list("pk", flat=True))
        return Q(payroll__in=ids, beneficiary_id__in=list(enrolments))

    lines = lines_for(user).filter(payroll__status__in=PAYABLE_STATUSES).filter(
        of(own, PlanType.INDIVIDUAL) | of(theirs, PlanType.HOUSEHOLD) | Q(recipient=individual))
    shown = list(lines.select_related("payroll__payment_plan", "payroll__cycle").order_by("-payroll_id", "-pk")[:limit])
    household_plans = set(payrolls.filter(payment_plan__benefit_plan__plan_type=PlanType.HOUSEHOLD, pk__in={
        line.payroll_id for line in shown}).values_list("pk", flat=True))
    for line in shown:
        line.for_household = line.payroll_id in household_plans
        line.to_them = line.recipient_id == individual.pk
    currency = KeyTextTransform("currency", "payroll__parameters")
    totals = list(lines.order_by().values("payroll__payment_plan__name", currency=currency).annotate(
        due=Sum("amount", filter=Q(status=LineStatus.DUE)), due_lines=Count("pk", filter=Q(status=LineStatus.DUE)),
        received=Sum("amount", filter=Q(status=LineStatus.PAID)),
        received_lines=Count("pk", filter=Q(status=LineStatus.PAID))).order_by("payroll__payment_plan__name",
                                                                              "currency"))
    for row in totals:  # to the cent (SQLite sums in floating point)
        row["due"], row["received"] = money(row["due"]), money(row["received"])
    return PersonPayments(lines=shown, count=lines.count() if len(shown) == limit else len(shown), totals=totals)
