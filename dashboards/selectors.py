"""The dashboard metrics. Each starts from the owning app's scoped selector, narrows it by the page's
filters and aggregates in SQL; Python only shapes the few aggregated rows into a Table.

Filters: `plan` narrows to a benefit plan's beneficiaries (registry metrics: the people and households
enrolled in it; payments: its payment plans; uploads: uploads for it); `location` to records at or
under a location; the period to when records came in (registered, enrolled, a cycle's start, an
upload, a request).
"""

from decimal import Decimal

from django.db.models import Case, Count, Exists, F, Min, OuterRef, Q, Sum, Value, When
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import TruncMonth
from django.utils import timezone

from schemes.bulk.models import UploadKind, UploadStatus
from schemes.bulk.selectors import uploads_for
from schemes.payments.models import DEAD_STATUSES, PAYABLE_STATUSES, LineStatus, Payroll, PayrollStatus
from schemes.payments.selectors import money, payroll_totals_for
from schemes.plans.models import Beneficiary, BeneficiaryStatus, BenefitPlan, HouseholdBeneficiary
from schemes.plans.selectors import beneficiaries_for, household_beneficiaries_for
from schemes.registry.models import SEX_NOT_RECORDED, Sex
from schemes.registry.selectors import AGE_BANDS, households_for, individuals_for
from sites.dates import years_before
from sites.models import Location, OrganisationSettings
from sites.scoping import scope_for
from workflows.models import ApprovalRequest, RequestStatus
from workflows.operations import operation_choices, operation_label
from workflows.selectors import requests_for

from .metrics import HIERARCHY, Column, Table, metric, shared

BENEFICIARY_READ = ("plans.view_beneficiary", "plans.view_householdbeneficiary")
REGISTRY_READ = ("registry.view_individual",)
PAYMENTS_READ = ("payments.view_paymentline",)
NO_LOCATION = "(no location)"
ZERO = Decimal("0.00")
HEAD = "HEAD"
REGISTRY_MEASURES = ("People", "Households")


def labels_of(choices):
    """A metric's fixed rows (Metric.rows): the labels of a field's choices."""
    return lambda: [label for _value, label in choices.choices]


def sex_rows():
    return [*labels_of(Sex)(), SEX_NOT_RECORDED]


# --- beneficiaries ---------------------------------------------------------------------------------


def _beneficiaries(user, filters):
    """(queryset, path to the subject) for individual and household beneficiaries in the filters."""
    found = []
    for queryset, subject in ((beneficiaries_for(user), "individual"), (household_beneficiaries_for(user), "household")):
        if filters.plan_id:
            queryset = queryset.filter(plan_id=filters.plan_id)
        queryset = queryset.filter(filters.location_q(f"{subject}__location"), filters.datetime_q("enrolled_at"))
        found.append((queryset, subject))
    return found


def _beneficiary_people(user, filters):
    """(queryset, path to a person) for the people beneficiaries stand for: the beneficiary of an
    individual plan, the head of a household beneficiary."""
    (people, _), (households, _) = _beneficiaries(user, filters)
    heads = households.filter(scope_for(user).q("household__memberships__individual__location"),
                              household__memberships__role_id=HEAD,
                              household__memberships__individual__deleted_at__isnull=True)
    return [(people, "individual"), (heads, "household__memberships__individual")]


def _count_by(querysets, expression_of):
    """{key: count} summed over querysets, grouping each by `expression_of(path)`."""
    counts = {}
    for queryset, path in querysets:
        rows = queryset.order_by().annotate(key=expression_of(path)).values("key").annotate(n=Count("pk"))
        for row in rows.values_list("key", "n"):
            counts[row[0]] = counts.get(row[0], 0) + row[1]
    return counts


def _beneficiary_counts(user, filters):
    """{(plan_id, status, month enrolled): count}: one GROUP BY per beneficiary table (no join for a
    national viewer), shared by the status, plan and enrolment metrics."""
    def run(user, filters):
        counts = {}
        for queryset, _subject in _beneficiaries(user, filters):
            rows = (queryset.order_by().annotate(month=TruncMonth("enrolled_at"))
                    .values_list("plan_id", "status", "month").annotate(n=Count("pk")))
            for plan_id, status, month, n in rows:
                key = (plan_id, status, _as_date(month))
                counts[key] = counts.get(key, 0) + n
        return counts
    return shared("beneficiary_counts", user, filters, run)


def _sum_by(counts, key_of):
    totals = {}
    for key, n in counts.items():
        totals[key_of(*key)] = totals.get(key_of(*key), 0) + n
    return totals


@metric("beneficiaries_by_status", group="beneficiary_counts", label="Beneficiaries by status", permissions=BENEFICIARY_READ,
        category="status", values=("beneficiaries",), rows=labels_of(BeneficiaryStatus),
        description="Beneficiaries (people and households) by status.")
def beneficiaries_by_status(user, filters):
    totals = _sum_by(_beneficiary_counts(user, filters), lambda _plan, status, _month: status)
    return Table(columns=(Column("status", "Status"), Column("beneficiaries", "Beneficiaries", "number")),
                 rows=tuple((label, totals.get(value, 0)) for value, label in BeneficiaryStatus.choices))


@metric("beneficiaries_by_plan", group="beneficiary_counts", label="Beneficiaries by plan and status", permissions=BENEFICIARY_READ,
        category="plan", values=("beneficiaries",), series="status",
        description="Beneficiaries of each plan, split by status.")
def beneficiaries_by_plan(user, filters):
    counts = _sum_by(_beneficiary_counts(user, filters), lambda plan, status, _month: (plan, status))
    names = dict(BenefitPlan.objects.filter(pk__in={plan for plan, _ in counts}).values_list("pk", "name"))
    labels = dict(BeneficiaryStatus.choices)
    order = {value: position for position, value in enumerate(labels)}
    rows = sorted(((names.get(plan, f"Plan {plan}"), labels.get(status, status), n)
                   for (plan, status), n in counts.items() if n),
                  key=lambda row: (row[0], order.get(_status_value(row[1]), 99)))
    return Table(columns=(Column("plan", "Plan"), Column("status", "Status"),
                          Column("beneficiaries", "Beneficiaries", "number")), rows=tuple(rows))


def _status_value(label):
    return {lbl: value for value, lbl in BeneficiaryStatus.choices}.get(label, label)


@metric("beneficiaries_by_sex", label="Beneficiaries by sex", permissions=BENEFICIARY_READ,
        category="sex", values=("beneficiaries",), rows=sex_rows,
        description="People enrolled in individual plans and heads of enrolled households, by sex.")
def beneficiaries_by_sex(user, filters):
    return _by_sex(_count_by(_beneficiary_people(user, filters), lambda path: _field(f"{path}__sex")),
                   "beneficiaries", "Beneficiaries")


@metric("beneficiaries_by_age_band", label="Beneficiaries by age band", permissions=BENEFICIARY_READ,
        category="age_band", values=("beneficiaries",), rows=lambda: list(AGE_BANDS),
        description="People enrolled in individual plans and heads of enrolled households, by age today.")
def beneficiaries_by_age_band(user, filters):
    return _by_age_band(_count_by(_beneficiary_people(user, filters), lambda path: _age_band(f"{path}__dob")),
                        "beneficiaries", "Beneficiaries")


@metric("beneficiaries_by_location", label="Beneficiaries by location", permissions=BENEFICIARY_READ,
        shape=HIERARCHY, category="name", values=("beneficiaries",),
        description="Beneficiaries (people and households) by where they live, at every level of the tree.")
def beneficiaries_by_location(user, filters):
    counts = _count_by(_beneficiaries(user, filters), lambda subject: _field(f"{subject}__location_id"))
    return _location_tree(user, filters, counts, "beneficiaries", "Beneficiaries")


@metric("enrolments_over_time", group="beneficiary_counts", label="Enrolments per month", permissions=BENEFICIARY_READ,
        category="month", values=("enrolments",), series="plan",
        description="Beneficiaries enrolled each month, per plan.")
def enrolments_over_time(user, filters):
    counts = _sum_by(_beneficiary_counts(user, filters), lambda plan, _status, month: (month, plan))
    names = dict(BenefitPlan.objects.filter(pk__in={plan for _, plan in counts}).values_list("pk", "name"))
    rows = sorted((month, names.get(plan, f"Plan {plan}"), n) for (month, plan), n in counts.items())
    return Table(columns=(Column("month", "Month", "date"), Column("plan", "Plan"),
                          Column("enrolments", "Enrolments", "number")), rows=tuple(rows))


# --- registry ----------------------------------------------------------------------------------------


def _people(user, filters):
    queryset = individuals_for(user).filter(filters.location_q("location"), filters.datetime_q("created_at"))
    if filters.plan_id:
        enrolled = Beneficiary.objects.filter(plan_id=filters.plan_id, individual=OuterRef("pk"))
        household_enrolled = HouseholdBeneficiary.objects.filter(
            plan_id=filters.plan_id, household__memberships__individual=OuterRef("pk"))
        queryset = queryset.filter(Exists(enrolled) | Exists(household_enrolled))
    return queryset


def _households(user, filters):
    queryset = households_for(user).filter(filters.location_q("location"), filters.datetime_q("created_at"))
    if filters.plan_id:
        queryset = queryset.filter(Exists(HouseholdBeneficiary.objects.filter(
            plan_id=filters.plan_id, household=OuterRef("pk"))) | Exists(Beneficiary.objects.filter(
                plan_id=filters.plan_id, individual__membership__household=OuterRef("pk"))))
    return queryset


@metric("registry_totals", label="Registry totals", permissions=REGISTRY_READ + ("registry.view_household",),
        category="measure", values=("count",), rows=lambda: list(REGISTRY_MEASURES),
        description="People and households registered (live records).")
def registry_totals(user, filters):
    people = _people(user, filters).count()
    households = _households(user, filters).count()
    return Table(columns=(Column("measure", "Measure"), Column("count", "Count", "number")),
                 rows=tuple(zip(REGISTRY_MEASURES, (people, households), strict=True)))


def _people_by(user, filters, expression):
    return _count_by([(_people(user, filters), "")], lambda _path: expression)


@metric("people_by_sex", label="People registered by sex", permissions=REGISTRY_READ,
        category="sex", values=("people",), rows=sex_rows, description="Registered people by sex.")
def people_by_sex(user, filters):
    return _by_sex(_people_by(user, filters, _field("sex")), "people", "People")


@metric("people_by_age_band", label="People registered by age band", permissions=REGISTRY_READ,
        category="age_band", values=("people",), rows=lambda: list(AGE_BANDS),
        description="Registered people by age today.")
def people_by_age_band(user, filters):
    return _by_age_band(_people_by(user, filters, _age_band("dob")), "people", "People")


@metric("people_by_location", label="People registered by location", permissions=REGISTRY_READ,
        shape=HIERARCHY, category="name", values=("people",),
        description="Registered people by where they live, at every level of the tree.")
def people_by_location(user, filters):
    return _location_tree(user, filters, _people_by(user, filters, _field("location_id")), "people", "People")


@metric("registrations_over_time", label="Registrations per month", permissions=REGISTRY_READ,
        category="month", values=("people",), description="People registered each month.")
def registrations_over_time(user, filters):
    rows = (_people(user, filters).order_by().annotate(month=TruncMonth("created_at")).values_list("month")
            .annotate(n=Count("pk")))
    counts = {}
    for month, n in rows:
        counts[_as_date(month)] = counts.get(_as_date(month), 0) + n
    return Table(columns=(Column("month", "Month", "date"), Column("people", "People", "number")),
                 rows=tuple(sorted(counts.items())))


# --- payments ----------------------------------------------------------------------------------------


def _line_totals(user, filters):
    """{payroll_id: {status: (lines, amount)}} of the lines the user may see, from the payrolls' totals
    (a few rows per payroll and location, not the lines: payrolls, cycles and plans are joined in
    Python), shared by the payment metrics."""
    def run(user, filters):
        # Rejected and failed payrolls' lines are never shown: not read either (a few payroll rows, a
        # hashed semi-join on the lines).
        payrolls = Payroll.objects.exclude(status__in=DEAD_STATUSES).filter(filters.date_q("cycle__start_date"))
        if filters.plan_id:
            payrolls = payrolls.filter(payment_plan__benefit_plan_id=filters.plan_id)
        kept = (payroll_totals_for(user).filter(filters.location_q("location"), payroll_id__in=payrolls.values("pk"))
                .order_by())
        totals = {}
        for payroll_id, status, n, amount in (kept.values_list("payroll_id", "status")
                                              .annotate(n=Sum("lines"), amount=Sum("amount")).filter(n__gt=0)):
            totals.setdefault(payroll_id, {})[status] = (n, money(amount))
        return totals
    return shared("line_totals", user, filters, run)


def _payrolls(ids):
    """{id: (name, cycle code, cycle start, payment plan name, currency, status)} of these payrolls: the
    currency each was generated in (its plan's may have changed since)."""
    return {row[0]: row[1:] for row in Payroll.objects.filter(pk__in=list(ids)).values_list(
        "pk", "name", "cycle__code", "cycle__start_date", "payment_plan__name",
        KeyTextTransform("currency", "parameters"), "status")}


def _sum_lines(by_status, statuses):
    picked = [by_status[s] for s in statuses if s in by_status]
    return sum((n for n, _ in picked), 0), sum((amount for _, amount in picked), ZERO)


@metric("payments_due_vs_paid", group="line_totals", label="Payments due and paid per cycle", permissions=PAYMENTS_READ,
        category="cycle", values=("due", "paid"),
        more_values=("due_lines", "paid_lines", "failed", "still_due", "failed_lines", "still_due_lines"),
        series="payment_plan",
        description="Approved payrolls, per cycle and payment plan, for recipients in your locations: the "
                    "lines and their total (every line not cancelled; a failed line paid again by a follow-up "
                    "counted once), and of them the paid, the failed (unpaid) and those still due.")
def payments_due_vs_paid(user, filters):
    totals = _line_totals(user, filters)
    payrolls = _payrolls(totals)
    # A payable follow-up copies its payroll's unpaid lines (same plan, cycle and locations) and is
    # counted itself: the originals' unpaid lines would count what is due twice.
    superseded = set(Payroll.objects.filter(follow_up_of__in=list(totals), status__in=PAYABLE_STATUSES)
                     .values_list("follow_up_of_id", flat=True))
    grouped = {}
    for payroll_id, by_status in totals.items():
        _name, cycle, start, plan, currency, status = payrolls[payroll_id]
        if status not in PAYABLE_STATUSES:
            continue
        not_due = {LineStatus.CANCELLED, LineStatus.UNPAID} if payroll_id in superseded else {LineStatus.CANCELLED}
        due_lines, due = _sum_lines(by_status, [s for s in LineStatus.values if s not in not_due])
        paid_lines, paid = _sum_lines(by_status, [LineStatus.PAID])
        failed_lines, failed = _sum_lines(by_status, [s for s in (LineStatus.UNPAID,) if s not in not_due])
        still_due_lines, still_due = _sum_lines(by_status, [LineStatus.DUE])
        key = (start, cycle, plan, currency)
        before = grouped.get(key, (ZERO, ZERO, ZERO, ZERO, 0, 0, 0, 0))
        grouped[key] = tuple(sum(pair) for pair in zip(before, (
            due, paid, failed, still_due, due_lines, paid_lines, failed_lines, still_due_lines), strict=True))
    # One word for each (as on the payroll page, schemes.payments.models.LINE_STATUS_WORDS): "Lines" are
    # all of them, some paid, some failed (unpaid), the rest still due.
    return Table(columns=(Column("cycle", "Cycle"), Column("payment_plan", "Payment plan"),
                          Column("currency", "Currency"), Column("due", "Total", "money"),
                          Column("paid", "Paid", "money"), Column("failed", "Failed (unpaid)", "money"),
                          Column("still_due", "Still due", "money"), Column("due_lines", "Lines", "number"),
                          Column("paid_lines", "Lines paid", "number"),
                          Column("failed_lines", "Lines failed (unpaid)", "number"),
                          Column("still_due_lines", "Lines still due", "number")),
                 rows=tuple((cycle, plan, currency, *values)
                            for (_start, cycle, plan, currency), values in sorted(grouped.items())))


@metric("payroll_totals", group="line_totals", label="Payroll totals", permissions=PAYMENTS_READ + ("payments.view_payroll",),
        category="payroll", values=("total",), more_values=("lines",),
        description="Each payroll's lines and total for recipients in your locations (rejected and failed "
                    "payrolls left out).")
def payroll_totals(user, filters):
    totals = _line_totals(user, filters)
    payrolls = _payrolls(totals)
    labels = dict(PayrollStatus.choices)
    rows = []
    for payroll_id, by_status in totals.items():
        name, cycle, start, plan, currency, status = payrolls[payroll_id]
        if status in DEAD_STATUSES:
            continue
        lines, total = _sum_lines(by_status, LineStatus.values)
        rows.append((start, name, cycle, plan, currency, labels.get(status, status), lines, total))
    return Table(columns=(Column("payroll", "Payroll"), Column("cycle", "Cycle"),
                          Column("payment_plan", "Payment plan"), Column("currency", "Currency"),
                          Column("status", "Status"),
                          Column("lines", "Lines", "number"), Column("total", "Total", "money")),
                 rows=tuple(row[1:] for row in sorted(rows)))


# --- uploads and approvals ---------------------------------------------------------------------------


@metric("uploads_by_result", label="Uploads and their results", permissions=("bulk.view_upload",),
        category="kind", values=("uploads",), series="status", personal=True, rows=labels_of(UploadKind),
        description="Uploaded files by kind and where they ended (imported, refused, failed...).")
def uploads_by_result(user, filters):
    uploads = uploads_for(user).filter(filters.datetime_q("created_at"))
    if filters.plan_id:
        uploads = uploads.filter(plan_id=filters.plan_id)
    if filters.location_path:
        uploads = uploads.filter(filters.location_q("scope_root"))
    kinds, statuses = dict(UploadKind.choices), dict(UploadStatus.choices)
    rows = uploads.order_by().values_list("kind", "status").annotate(n=Count("pk")).order_by("kind", "status")
    return Table(columns=(Column("kind", "Kind"), Column("status", "Result"), Column("uploads", "Uploads", "number")),
                 rows=tuple((kinds.get(kind, kind), statuses.get(status, status), n) for kind, status, n in rows))


# How long a pending request has waited: the metric's columns and the report's filter.
APPROVAL_AGES = {"day": "Under a day", "week": "1 to 7 days", "older": "Over 7 days"}


def approval_age_q(band, now=None):
    """Requests submitted within the age band (a key of APPROVAL_AGES)."""
    now = now or timezone.now()
    day, week = now - timezone.timedelta(days=1), now - timezone.timedelta(days=7)
    return {"day": Q(created_at__gte=day), "week": Q(created_at__lt=day, created_at__gte=week),
            "older": Q(created_at__lt=week)}[band]


def pending_requests_for(user):
    """Requests waiting for a decision placed within the user's locations (national scope: all, those
    placed nowhere included), and the user's own: what the metric below counts and the pending
    approvals report lists. The user may open only some of them (see openable_pending_requests_for)."""
    waiting = ApprovalRequest.objects.filter(status=RequestStatus.PENDING)
    return waiting.filter(Q(pk__in=scope_for(user).filter(waiting).values("pk")) | Q(maker=user))


def openable_pending_requests_for(user):
    """pending_requests_for(user), each marked `may_open`: whether the user may open it (they made, may
    decide or audit it: workflows.selectors.requests_for). The others' titles, which may name people,
    are not theirs to read."""
    return pending_requests_for(user).annotate(may_open=Exists(requests_for(user).filter(pk=OuterRef("pk"))))


@metric("approvals_pending", label="Approvals pending and their age", category="operation",
        values=("pending",), more_values=("under_1_day", "1_to_7_days", "over_7_days", "oldest_days"),
        rows=lambda: [label for _name, label in operation_choices()], personal=True,
        filters_used=("location", "period"),
        description="Requests waiting for a decision in your locations (and your own), by operation and age.")
def approvals_pending(user, filters):
    now = timezone.now()
    pending = pending_requests_for(user).filter(filters.location_q("location"), filters.datetime_q("created_at"))
    rows = (pending.order_by().values_list("operation")
            .annotate(pending=Count("pk"), recent=Count("pk", filter=approval_age_q("day", now)),
                      this_week=Count("pk", filter=approval_age_q("week", now)),
                      older=Count("pk", filter=approval_age_q("older", now)), oldest=Min("created_at"))
            .order_by("operation"))
    return Table(columns=(Column("operation", "Operation"), Column("pending", "Pending", "number"),
                          Column("under_1_day", APPROVAL_AGES["day"], "number"),
                          Column("1_to_7_days", APPROVAL_AGES["week"], "number"),
                          Column("over_7_days", APPROVAL_AGES["older"], "number"),
                          Column("oldest_days", "Oldest (days)", "number")),
                 rows=tuple((operation_label(operation), n, recent, this_week, older, (now - oldest).days)
                            for operation, n, recent, this_week, older, oldest in rows))


# --- shapes shared by the metrics ------------------------------------------------------------------


def _field(name):
    return F(name)


def _age_band(dob_field):
    """The age band (registry's AGE_BANDS) of a date of birth, today, as one CASE expression."""
    today = timezone.localdate()
    branches = []
    for band, (low, high) in AGE_BANDS.items():
        condition = Q(**{f"{dob_field}__lte": years_before(today, low)})
        if high is not None:
            condition &= Q(**{f"{dob_field}__gt": years_before(today, high + 1)})
        branches.append(When(condition, then=Value(band)))
    return Case(*branches, default=Value(""))


def _by_sex(counts, key, label):
    """A row per sex, and one for people whose sex is not recorded (openIMIS files carry none) when
    there are any."""
    rows = [(name, counts.get(value, 0)) for value, name in Sex.choices]
    if counts.get(""):
        rows.append((SEX_NOT_RECORDED, counts[""]))
    return Table(columns=(Column("sex", "Sex"), Column(key, label, "number")), rows=tuple(rows))


def _by_age_band(counts, key, label):
    return Table(columns=(Column("age_band", "Age band"), Column(key, label, "number")),
                 rows=tuple((band, counts.get(band, 0)) for band in AGE_BANDS))


def _location_tree(user, filters, counts, key, label):
    """Rows for every location in the user's scope (and under the filter's location) holding any of
    `counts` ({location id: n}), each with the total of its subtree: what a treemap or sunburst draws.
    Counts are rolled up along the locations' paths (a few thousand aggregated rows at most)."""
    per_path = {}
    located = {pk: n for pk, n in counts.items() if pk is not None}
    paths = dict(Location.objects.filter(pk__in=list(located)).values_list("pk", "path"))
    for pk, n in located.items():
        ancestors = [int(part) for part in paths.get(pk, "").strip("/").split("/") if part]
        for ancestor in ancestors:
            per_path[ancestor] = per_path.get(ancestor, 0) + n
    nodes = scope_for(user).locations().filter(pk__in=list(per_path))
    if filters.location_path:
        nodes = nodes.filter(path__startswith=filters.location_path)
    nodes = list(nodes.order_by("path").values_list("pk", "code", "name", "parent_id", "depth"))
    codes = {pk: code for pk, code, *_ in nodes}
    settings = OrganisationSettings.load()
    rows = [(name, code, codes.get(parent, ""), depth, settings.level_name(depth), per_path[pk])
            for pk, code, name, parent, depth in nodes]
    if counts.get(None):
        rows.append((NO_LOCATION, "", "", 1, "", counts[None]))
    return Table(columns=(Column("name", "Location"), Column("code", "Code"), Column("parent", "Within"),
                          Column("depth", "Depth", "number"), Column("level", "Level"),
                          Column(key, label, "number")), rows=tuple(rows))


def _as_date(value):
    return value.date() if hasattr(value, "date") else value



# --- the dashboards themselves -----------------------------------------------------------------------


def dashboards_for(user):
    """Published dashboards the user may open: superusers all; others those open to everyone with
    admin access or to one of their groups."""
    from .models import DashboardPage

    if not (user.is_authenticated and user.is_active and user.has_perm("wagtailadmin.access_admin")):
        return DashboardPage.objects.none()
    pages = DashboardPage.objects.live()
    if user.is_superuser:
        return pages
    allowed = Q(viewer_groups__isnull=True) | Q(viewer_groups__in=user.groups.all())
    return pages.filter(pk__in=DashboardPage.objects.filter(allowed).values("pk"))
