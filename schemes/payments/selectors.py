"""Reads, scoped. Payment plans, cycles, providers and payrolls are programme-wide (everyone who may view
them sees them all); payment points, payment lines and every count or total made of lines only in
the user's locations (for lines: where the recipient lived when the payroll was generated)."""

from decimal import Decimal

from django.db.models import Exists, OuterRef, Sum

from schemes.plans.models import BenefitPlan
from sites.models import Location
from sites.scoping import scope_for

from .models import (
    CENT,
    DEAD_STATUSES,
    LINE_STATUS_WORDS,
    UNDECIDED_STATUSES,
    ChangeKind,
    CycleStatus,
    LineStatus,
    PaymentCycle,
    PaymentLine,
    PaymentPlan,
    PaymentPoint,
    PaymentProvider,
    Payroll,
    PayrollChange,
    PayrollTotal,
)

ZERO = Decimal("0.00")


def money(value):
    """A sum of amounts to the cent (a money column's places): SQLite sums in binary floating point
    (12.300000001), and nothing summed is None."""
    return ZERO if value is None else Decimal(value).quantize(CENT)


def _all_if(user, permission, model):
    return model.objects.all() if user.has_perm(permission) else model.objects.none()


def payment_plans_for(user, *, include_deleted=True):
    return _all_if(user, "payments.view_paymentplan", PaymentPlan).select_related("benefit_plan")


def cycles_for(user, *, include_deleted=True):
    return _all_if(user, "payments.view_paymentcycle", PaymentCycle)


# A month's average length in days, and how far a cycle may be from whole months to still be as long as
# a periodicity: calendar months are 28 to 31 days (a quarter 89 to 92), about a quarter-month apart.
MONTH_DAYS = Decimal("30.436875")
MONTHS_SLACK = Decimal("0.25")


def cycle_fits(cycle, periodicity):
    """Whether the cycle is as long as `periodicity` (months): 1 to 31 January is a monthly plan's, 1
    January to 28 February a two-monthly plan's, whichever day the schedule started on."""
    months = Decimal((cycle.end_date - cycle.start_date).days + 1) / MONTH_DAYS
    return abs(months - periodicity) <= MONTHS_SLACK


def cycles_to_pay(user, payment_plan, *, unpaid_only=True):
    """The cycles a payroll of `payment_plan` can be generated for, by start date: not closed, as long
    as the plan's periodicity (a two-month cycle is not a monthly plan's), within its benefit plan's
    validity, and (`unpaid_only`) with no live payroll of the plan on any of their days (the cycle's
    own included: its payroll is on the plan's page already). Cycles are shared by every payment
    plan: their length is what ties them to one."""
    benefit_plan = payment_plan.benefit_plan
    cycles = cycles_for(user).exclude(status=CycleStatus.CLOSED)
    if benefit_plan.valid_from:
        cycles = cycles.filter(end_date__gte=benefit_plan.valid_from)
    if benefit_plan.valid_to:
        cycles = cycles.filter(start_date__lte=benefit_plan.valid_to)
    paid = Payroll.objects.filter(payment_plan=payment_plan, follow_up_of__isnull=True,
                                  cycle__start_date__lte=OuterRef("end_date"),
                                  cycle__end_date__gte=OuterRef("start_date")).exclude(status__in=DEAD_STATUSES)
    if unpaid_only:
        cycles = cycles.exclude(Exists(paid))
    fitting = [cycle.pk for cycle in cycles.only("pk", "start_date", "end_date")
               if cycle_fits(cycle, payment_plan.periodicity)]
    return PaymentCycle.objects.filter(pk__in=fitting).order_by("start_date", "code")


def nearest_open_cycle(cycles, today):
    """Of `cycles`, the open one holding `today`, else the open one starting nearest to it, else the
    first to come (or None): the one to preselect."""
    cycles = list(cycles)
    open_cycles = [cycle for cycle in cycles if cycle.status == CycleStatus.OPEN]
    if open_cycles:
        return min(open_cycles, key=lambda cycle: (not cycle.start_date <= today <= cycle.end_date,
                                                   abs((cycle.start_date - today).days)))
    coming = [cycle for cycle in cycles if cycle.end_date >= today]
    return (coming or cycles or [None])[0]


def providers_for(user, *, include_deleted=True):
    return _all_if(user, "payments.view_paymentprovider", PaymentProvider)


def points_for(user, *, include_deleted=True):
    """Payment points in the user's locations (a point serves the people under its location)."""
    points = _all_if(user, "payments.view_paymentpoint", PaymentPoint).select_related("provider", "location")
    return scope_for(user).filter(points, field="location")


def overlapping_points(points):
    """[(covering, covered)]: the pairs among `points` where one point's location is the other's or
    above it. Points may no longer overlap (services._require_point_alone), but ones placed before
    that rule can: a beneficiary there is in both points' exports, and two providers may pay them.
    Sorted by location path (here: a database collation may ignore the slashes), the points a point
    covers follow it."""
    points = sorted(points.select_related("provider", "location"),
                    key=lambda point: (point.location.path, point.code))
    pairs = []
    for index, point in enumerate(points):
        for other in points[index + 1:]:
            if not other.location.path.startswith(point.location.path):
                break
            pairs.append((point, other))
    return pairs


def payrolls_for(user, *, include_deleted=True):
    return _all_if(user, "payments.view_payroll", Payroll).select_related("payment_plan", "cycle")


def payrolls_left_open(benefit_plan):
    """The benefit plan's payrolls sealed but not decided (to submit, or waiting for approval): what
    closing the plan leaves unpaid, each to discard (programme-wide, as payrolls are)."""
    return (Payroll.objects.filter(payment_plan__benefit_plan=benefit_plan, status__in=UNDECIDED_STATUSES)
            .select_related("payment_plan", "cycle").order_by("cycle__start_date", "name"))


def lines_for(user, *, include_deleted=True):
    """Payment lines in the user's locations (lines of people with no location: national scope only)."""
    if not user.has_perm("payments.view_paymentline"):
        return PaymentLine.objects.none()
    return scope_for(user).filter(PaymentLine.objects.all(), field="location").select_related(
        "payroll", "recipient", "location")


def lines_of_payroll_for(user, payroll, *, payment_point=None):
    lines = lines_for(user).filter(payroll=payroll)
    if payment_point is not None:
        lines = lines.filter(location__path__startswith=payment_point.location.path)
    return lines


def _in_locations_of(user, model):
    """Rows of a payroll summary (PayrollTotal, PayrollChange) in the user's locations, for who may
    see the lines they sum."""
    if not user.has_perm("payments.view_paymentline"):
        return model.objects.none()
    return scope_for(user).filter(model.objects.all(), field="location")


def payroll_totals_for(user):
    """Every payroll's totals (per location, status and over-limit flag) in the user's locations: the
    same sums as the lines they may see, without reading the lines."""
    return _in_locations_of(user, PayrollTotal)


def totals_for(user, payroll):
    return payroll_totals_for(user).filter(payroll=payroll)


def over_limit(totals):
    """{count, total} of the lines above the transaction limit among `totals` (PayrollTotal rows)."""
    sums = totals.filter(flagged_over_limit=True).aggregate(count=Sum("lines"), total=Sum("amount"))
    return {"count": sums["count"] or 0, "total": money(sums["total"])}


def lines_in_status(totals, status):
    return totals.filter(status=status).aggregate(count=Sum("lines"))["count"] or 0


def totals_by_location(payroll, user):
    """[{location, status, lines, total}] of the payroll's lines the user may see, summed at
    the level just below the user's own locations (Scope.breakdown_depth; lines placed above that level count at their own location; "" is no
    location): a national payroll's table has a row per region and status, not per village. Grouped
    by location in SQL from the payroll's totals (a few thousand rows), rolled up along the locations' paths here."""
    depth = scope_for(user).breakdown_depth()
    grouped = [{"location_id": row["location_id"], "status": row["status"], "lines": row["count"], "total": row["sum"]}
               for row in totals_for(user, payroll).order_by().values("location_id", "status")
               .annotate(count=Sum("lines"), sum=Sum("amount")).filter(count__gt=0)]
    paths = dict(Location.objects.filter(pk__in={row["location_id"] for row in grouped} - {None})
                 .values_list("pk", "path"))
    totals = {}
    for row in grouped:
        ancestors = paths.get(row["location_id"], "").strip("/").split("/")
        at = int(ancestors[min(depth, len(ancestors)) - 1]) if row["location_id"] else None
        lines, total = totals.get((at, row["status"]), (0, ZERO))
        totals[at, row["status"]] = (lines + row["lines"], total + money(row["total"]))
    names = dict(Location.objects.filter(pk__in={at for at, _ in totals} - {None}).values_list("pk", "name"))
    rows = [{"location": names.get(at, ""), "status": status, "label": LINE_STATUS_WORDS.get(status, status),
             "lines": lines, "total": total}
            for (at, status), (lines, total) in totals.items()]
    return sorted(rows, key=lambda row: (row["location"] == "", row["location"], row["status"]))


def totals_by_status(payroll, user):
    """[{status, label, lines, total}] of the payroll's lines the user may see, by status (LINE_STATUS_WORDS)."""
    return [{"status": row["status"], "label": LINE_STATUS_WORDS.get(row["status"], row["status"]),
             "lines": row["count"], "total": money(row["sum"])}
            for row in totals_for(user, payroll).order_by("status").values("status")
            .annotate(count=Sum("lines"), sum=Sum("amount")).filter(count__gt=0)]


def points_with_lines(user, payroll, status=None):
    """[(point, lines)] of the user's payment points where the payroll has lines to export (those the
    user may see, in `status` when given, from its totals): the points a provider's export is made for.
    The lines still due leave out those above the transaction limit while they are withheld (they are
    not to be paid yet); every line, the record, holds them."""
    totals = totals_for(user, payroll).filter(location__isnull=False)
    if status is not None:
        totals = totals.filter(status=status)
    if payroll.withholds_over_limit and status == LineStatus.DUE:
        totals = totals.filter(flagged_over_limit=False)
    per_location = dict(totals.order_by().values("location_id")
                        .annotate(count=Sum("lines")).filter(count__gt=0).values_list("location_id", "count"))
    paths = dict(Location.objects.filter(pk__in=per_location).values_list("pk", "path"))
    counted = []
    for point in points_for(user):
        lines = sum(count for location_id, count in per_location.items()
                    if paths[location_id].startswith(point.location.path))
        if lines:
            counted.append((point, lines))
    return counted


def previous_payroll(payroll):
    """The sealed, live payroll of the same payment plan in the latest earlier cycle, if any (one
    still generating has no lines to compare with yet: its sealing compares the next one again)."""
    return (Payroll.objects.filter(payment_plan_id=payroll.payment_plan_id, follow_up_of__isnull=True,
                                   cycle__start_date__lt=payroll.cycle.start_date, sealed_at__isnull=False)
            .exclude(status__in=DEAD_STATUSES).exclude(pk=payroll.pk).select_related("cycle")
            .order_by("-cycle__start_date").first())


def next_payroll(payroll):
    """The sealed, live payroll of the same payment plan in the earliest later cycle: the one whose
    changes are counted against `payroll` (or against the one before it, once `payroll` is dead)."""
    return (Payroll.objects.filter(payment_plan_id=payroll.payment_plan_id, follow_up_of__isnull=True,
                                   cycle__start_date__gt=payroll.cycle.start_date, sealed_at__isnull=False)
            .exclude(status__in=DEAD_STATUSES).select_related("cycle")
            .order_by("cycle__start_date").first())


def is_compared(payroll, previous):
    """Whether the payroll's changes were counted against `previous` (what they are against now)."""
    return payroll.compared_at is not None and payroll.compared_with_id == (previous.pk if previous else None)


def diff_lines(payroll, user=None):
    """(the previous cycle's payroll, {ChangeKind: its lines}) in the user's locations when a user is
    given: new and changed-amount lines of `payroll`, removed ones of the previous payroll; (None, {})
    with no previous payroll."""
    previous = previous_payroll(payroll)
    if previous is None:
        return None, {}
    base = lines_for(user) if user is not None else PaymentLine.objects.all()
    current, before = base.filter(payroll=payroll), base.filter(payroll=previous)

    def same_beneficiary_in(other):
        return PaymentLine.objects.filter(payroll=other, beneficiary_id=OuterRef("beneficiary_id"))

    # Anti-joins (NOT EXISTS), never NOT IN: a million ids do not fit the hash NOT IN needs, and it
    # then scans the other payroll once per line (the page never finished at 1M lines).
    return previous, {
        ChangeKind.NEW: current.exclude(Exists(same_beneficiary_in(previous))),
        ChangeKind.REMOVED: before.exclude(Exists(same_beneficiary_in(payroll))),
        ChangeKind.CHANGED: current.filter(Exists(same_beneficiary_in(previous).exclude(amount=OuterRef("amount")))),
    }


def payroll_diff(payroll, user=None, *, sample=0):
    """New, removed and changed-amount beneficiaries against the previous cycle's payroll (in the
    user's locations when a user is given); with `sample`, that many lines of each kind (the first
    by beneficiary, found in index order). Counted from the changes recorded when the payroll was
    sealed, with their amounts (`amounts`: new and changed lines' now, removed and changed lines'
    before); from the lines, counts only, while those are stale."""
    previous, kinds = diff_lines(payroll, user)
    result = {"previous": previous, "new": 0, "removed": 0, "changed": 0, "amounts": None,
              "samples": {"new": [], "removed": [], "changed": []}}
    if previous is None:
        return result
    if is_compared(payroll, previous):
        changes = (_in_locations_of(user, PayrollChange) if user is not None
                   else PayrollChange.objects.all()).filter(payroll=payroll)
        sums = {row["kind"]: row for row in changes.order_by().values("kind").annotate(
            count=Sum("lines"), now=Sum("amount"), before=Sum("previous_amount"))}
        counted = {kind: row["count"] for kind, row in sums.items()}
        result["amounts"] = {kind.lower(): {side: Decimal(sums.get(kind, {}).get(side) or 0).quantize(CENT)
                                            for side in ("now", "before")} for kind in ChangeKind.values}
    else:
        counted = {kind: lines.count() for kind, lines in kinds.items()}
    for kind, lines in kinds.items():
        name = kind.lower()
        result[name] = counted.get(kind, 0)
        if sample and result[name]:
            result["samples"][name] = list(lines.order_by("beneficiary_id")[:sample])
    if sample:
        amounts = dict(PaymentLine.objects.filter(payroll=previous, beneficiary_id__in=[
            line.beneficiary_id for line in result["samples"]["changed"]]).values_list("beneficiary_id", "amount"))
        for line in result["samples"]["changed"]:
            line.previous_amount = amounts.get(line.beneficiary_id)
    return result


# --- payment plan fields as JSON (an approval request carries them) ------------------------------


def plan_fields_to_json(fields):
    data = {}
    for name, value in fields.items():
        if isinstance(value, BenefitPlan):
            value = value.pk
        elif isinstance(value, Decimal):
            value = format(value, "f")
        data[name] = value
    return data


def plan_fields_from_json(data):
    fields = dict(data)
    if "benefit_plan" in fields:
        fields["benefit_plan"] = BenefitPlan.objects.filter(pk=fields["benefit_plan"]).first()
    for name in ("ceiling_per_beneficiary", "limit_per_transaction"):
        if fields.get(name) not in (None, ""):
            fields[name] = Decimal(str(fields[name]))
    return fields
