"""The metrics registry: every figure computed in SQL within the viewer's locations, equal to an
independent SQL count, narrowed by the page's filters and cached per scope."""

import datetime
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from dashboards import metrics
from dashboards.forms import DashboardFilterForm
from dashboards.metrics import Filters, cached, compute, registered_metrics
from schemes.bulk.models import Upload, UploadKind
from schemes.payments.models import PaymentLine
from schemes.plans.models import BenefitPlan
from tests.factories import IndividualFactory, UserFactory
from tests.schemes.payments.conftest import enrol, household_of

pytestmark = pytest.mark.django_db


def sql(query, params=()):
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall() if cursor.description else None


def beneficiaries_sql(district):
    return dict(sql("""
        SELECT b.status, COUNT(*) FROM plans_beneficiary b
        JOIN registry_individual i ON i.id = b.individual_id
        JOIN sites_location l ON l.id = i.location_id
        WHERE l.path LIKE %s GROUP BY b.status""", [district.path + "%"]))


def as_dict(table, key_column, value_column):
    return {row[table.index(key_column)]: row[table.index(value_column)] for row in table.rows
            if row[table.index(value_column)]}


def test_every_metric_answers_a_national_user_with_columns_and_rows(people, approved_payroll, superuser):
    for name in registered_metrics():
        table = compute(name, superuser)
        assert table is not None, name
        assert table.columns, name
        assert all(len(row) == len(table.columns) for row in table.rows), name


def test_two_district_managers_see_their_own_beneficiaries_equal_to_sql(geo, people, manager_a, manager_b):
    by_status_a = compute("beneficiaries_by_status", manager_a)
    by_status_b = compute("beneficiaries_by_status", manager_b)

    assert as_dict(by_status_a, "status", "beneficiaries") == {"Active": 3, "Suspended": 1}
    assert as_dict(by_status_b, "status", "beneficiaries") == {"Active": 1}
    for user, table, district in ((manager_a, by_status_a, geo.district_a), (manager_b, by_status_b, geo.district_b)):
        expected = {status.title(): n for status, n in beneficiaries_sql(district).items()}
        assert as_dict(table, "status", "beneficiaries") == expected, user.username

    by_plan_a = compute("beneficiaries_by_plan", manager_a)
    assert sorted(by_plan_a.rows) == [("Child grant", "Active", 3), ("Child grant", "Suspended", 1)]
    assert compute("beneficiaries_by_sex", manager_b).total("beneficiaries") == 1
    assert as_dict(compute("beneficiaries_by_age_band", manager_a), "age_band", "beneficiaries") == {"18-59": 4}


def test_the_location_breakdown_rolls_up_within_the_viewers_locations_only(geo, people, manager_a, manager_b):
    tree_a = compute("beneficiaries_by_location", manager_a)
    counts = {row[tree_a.index("code")]: row[tree_a.index("beneficiaries")] for row in tree_a.rows}

    assert counts == {geo.district_a.code: 4, geo.ward_a.code: 4, geo.village_a.code: 4}
    assert geo.region.code not in counts  # above the manager's district: not shown
    tree_b = compute("beneficiaries_by_location", manager_b)
    assert {row[tree_b.index("code")] for row in tree_b.rows} == {
        geo.district_b.code, geo.ward_b.code, geo.village_b.code}


def test_registry_totals_equal_sql_counts_per_district(geo, people, manager_a, manager_b):
    for user, district in ((manager_a, geo.district_a), (manager_b, geo.district_b)):
        (people_count,), = sql("""SELECT COUNT(*) FROM registry_individual i JOIN sites_location l
                                  ON l.id = i.location_id WHERE l.path LIKE %s AND i.deleted_at IS NULL""",
                               [district.path + "%"])
        (household_count,), = sql("""SELECT COUNT(*) FROM registry_household h JOIN sites_location l
                                     ON l.id = h.location_id WHERE l.path LIKE %s AND h.deleted_at IS NULL""",
                                  [district.path + "%"])
        totals = compute("registry_totals", user)
        assert totals.rows == (("People", people_count), ("Households", household_count))
    assert compute("registry_totals", manager_a).rows[0][1] == 16
    assert compute("people_by_sex", manager_b).rows[0] == ("Female", 1)
    assert compute("people_by_location", manager_a).total("people", where=geo.district_a.name) == 16


def test_payments_due_and_paid_per_district_equal_sql_sums(geo, approved_payroll, accountant_a, accountant_b,
                                                          manager_a):
    line_a = PaymentLine.objects.filter(payroll=approved_payroll, location__path__startswith=geo.district_a.path).first()
    # Paid as reported by reconciliation (the one path that moves a sealed line).
    from schemes.payments.reconciliation import reconcile_batch

    reconcile_batch(payroll=approved_payroll, by=UserFactory(username="root_pay", is_superuser=True, is_staff=True),
                    rows=[{"code": line_a.code, "paid": True, "receipt": "R1", "paid_on": timezone.localdate()}])
    for user, district in ((accountant_a, geo.district_a), (accountant_b, geo.district_b)):
        (due, paid), = sql("""
            SELECT SUM(CASE WHEN p.status <> 'CANCELLED' THEN p.amount END),
                   SUM(CASE WHEN p.status = 'PAID' THEN p.amount END)
            FROM payments_paymentline p JOIN sites_location l ON l.id = p.location_id
            WHERE l.path LIKE %s""", [district.path + "%"])
        table = compute("payments_due_vs_paid", user)
        assert len(table.rows) == 1
        assert Decimal(table.rows[0][table.index("due")]) == Decimal(str(due))
        assert Decimal(table.rows[0][table.index("paid")]) == Decimal(str(paid or 0))
    # Three lines of district A: 800 + 1100 + 900; district B one line of 600.
    assert compute("payments_due_vs_paid", accountant_a).total("due") == Decimal("2800.00")
    assert compute("payments_due_vs_paid", accountant_b).total("due") == Decimal("600.00")
    assert compute("payroll_totals", accountant_b).rows[0][-2:] == (1, Decimal("600.00"))
    # A manager reads their district's payments; a viewer has no access to payment lines: the metric
    # answers nothing rather than zeros.
    assert compute("payments_due_vs_paid", manager_a).total("due") == Decimal("2800.00")
    viewer = UserFactory(username="viewer_pay_a", role="Viewer", locations=[geo.district_a])
    assert compute("payments_due_vs_paid", viewer) is None


def test_a_follow_up_counts_what_is_due_once_per_cycle(approved_payroll, people, accountant, accountant_a,
                                                       accountant_b, checkers, django_capture_on_commit_callbacks):
    """The closing marks three lines (2,600) unpaid; the follow-up copies them. What is due in the cycle
    stays the four lines (3,400), not the original's unpaid lines plus their copies."""
    from django.core.cache import cache

    from dashboards.reports import payments_to_the_cent
    from schemes.payments import services
    from schemes.payments.models import Payroll
    from schemes.payments.reconciliation import reconcile_batch
    from tests.schemes.payments.conftest import line_of
    from workflows.services import approval_decide

    def figures(user):
        cache.clear()
        table = payments_to_the_cent(compute("payments_due_vs_paid", user))
        assert len(table.rows) == 1  # one cycle and plan
        # Lines: all of them, some paid, some failed (unpaid), the rest still due; amounts likewise.
        assert table.total("due_lines") == sum(table.total(key) for key in ("paid_lines", "failed_lines",
                                                                            "still_due_lines"))
        assert table.total("due") == sum(table.total(key) for key in ("paid", "failed", "still_due"))
        return tuple(table.total(key) for key in ("due", "paid", "failed", "still_due", "due_lines", "paid_lines",
                                                  "failed_lines", "still_due_lines"))

    reconcile_batch(payroll=approved_payroll, by=accountant, rows=[
        {"code": line_of(approved_payroll, people["three"]).code, "paid": True, "receipt": "R1"}])
    services.payroll_close(payroll=approved_payroll, mark_due_unpaid=True, by=accountant)
    with django_capture_on_commit_callbacks(execute=True):
        follow_up = services.payroll_follow_up_start(payroll=approved_payroll, by=accountant)
    with django_capture_on_commit_callbacks(execute=True):
        request = services.payroll_submit(payroll=Payroll.objects.get(pk=follow_up.pk), by=accountant)
    # Until the follow-up is approved only the original's lines are owed: its failed ones still count.
    assert figures(accountant) == (Decimal("3400.00"), Decimal("800.00"), Decimal("2600.00"), Decimal("0.00"),
                                   4, 1, 3, 0)

    with django_capture_on_commit_callbacks(execute=True):
        approval_decide(request=request, verdict="approve", by=checkers[0][0])
    follow_up = Payroll.objects.get(pk=follow_up.pk)
    reconcile_batch(payroll=follow_up, by=accountant, rows=[
        {"code": line_of(follow_up, people[name]).code, "paid": True, "receipt": f"R-{name}"}
        for name in ("six", "single_b")])

    # Paid: three 800 in the original, six 900 and single_b 600 in the follow-up; five_with_baby's
    # 1,100 is still owed.
    assert figures(accountant) == (Decimal("3400.00"), Decimal("2300.00"), Decimal("0.00"), Decimal("1100.00"),
                                   4, 3, 0, 1)
    assert figures(accountant_a) == (Decimal("2800.00"), Decimal("1700.00"), Decimal("0.00"), Decimal("1100.00"),
                                     3, 2, 0, 1)
    assert figures(accountant_b) == (Decimal("600.00"), Decimal("600.00"), Decimal("0.00"), Decimal("0.00"),
                                     1, 1, 0, 0)


def test_filters_narrow_by_plan_location_and_period(geo, people, benefit_plan, superuser):
    other = BenefitPlan.objects.create(code="OT", name="Other plan")
    other.activate()
    other.save()
    enrol(other, household_of(1, location=geo.village_b))

    assert compute("beneficiaries_by_status", superuser).total("beneficiaries") == 6
    assert compute("beneficiaries_by_status", superuser, Filters(plan_id=other.pk)).total("beneficiaries") == 1
    in_b = Filters(location_path=geo.district_b.path)
    assert compute("beneficiaries_by_status", superuser, in_b).total("beneficiaries") == 2
    assert compute("registry_totals", superuser, Filters(plan_id=other.pk)).rows[0] == ("People", 1)
    today = timezone.localdate()
    assert compute("beneficiaries_by_status", superuser, Filters(start=today, end=today)).total("beneficiaries") == 6
    last_year = Filters(end=today - datetime.timedelta(days=365))
    assert compute("beneficiaries_by_status", superuser, last_year).total("beneficiaries") == 0


def test_a_location_outside_the_viewers_scope_cannot_widen_the_figures(geo, people, manager_a):
    page = type("Page", (), {"default_period_months": None})()
    form = DashboardFilterForm({"location": geo.district_b.pk}, user=manager_a, page=page)
    filters = form.filters()

    assert "location" in form.errors
    assert filters.location_path == ""
    assert compute("beneficiaries_by_status", manager_a, filters).total("beneficiaries") == 4
    # Even a crafted Filters naming B's subtree gives A's manager nothing of B.
    crafted = Filters(location_path=geo.district_b.path)
    assert compute("beneficiaries_by_status", manager_a, crafted).total("beneficiaries") == 0


def test_results_are_cached_per_scope_for_the_configured_lifetime(geo, people, benefit_plan, manager_a, manager_b):
    assert compute("beneficiaries_by_status", manager_a).total("beneficiaries") == 4
    enrol(benefit_plan, household_of(1, location=geo.village_a))

    # Cached: the new beneficiary shows once the lifetime has passed (here: the cache is cleared).
    assert compute("beneficiaries_by_status", manager_a).total("beneficiaries") == 4
    # Another scope has its own entry, never A's.
    assert compute("beneficiaries_by_status", manager_b).total("beneficiaries") == 1
    # Same scope and permissions: same entry.
    other_a = UserFactory(username="manager_a2", role="Manager", locations=[geo.district_a])
    assert compute("beneficiaries_by_status", other_a).total("beneficiaries") == 4
    with override_settings(MIZANI_DASHBOARD_CACHE_SECONDS=0):
        from django.core.cache import cache

        cache.clear()
        assert compute("beneficiaries_by_status", manager_a).total("beneficiaries") == 5
        enrol(benefit_plan, household_of(1, location=geo.village_a))
        assert compute("beneficiaries_by_status", manager_a).total("beneficiaries") == 6


def test_uploads_count_what_the_viewer_may_see(geo, manager_a):
    clerk_a = UserFactory(username="clerk_up_a", role="Clerk", locations=[geo.district_a])
    clerk_b = UserFactory(username="clerk_up_b", role="Clerk", locations=[geo.district_b])
    for number, (clerk, district) in enumerate(((clerk_a, geo.district_a), (clerk_a, geo.district_a),
                                                (clerk_b, geo.district_b))):
        Upload.objects.create(kind=UploadKind.INDIVIDUALS, stored_name=f"u{number}.csv", original_name="people.csv",
                              uploaded_by=clerk, scope_root=district)

    assert compute("uploads_by_result", clerk_a).total("uploads") == 2
    assert compute("uploads_by_result", clerk_b).total("uploads") == 1
    assert compute("uploads_by_result", manager_a).total("uploads") == 2  # their district's
    viewer = UserFactory(username="viewer_up_a", role="Viewer", locations=[geo.district_a])
    assert compute("uploads_by_result", viewer) is None  # viewers may not read uploads


def test_pending_approvals_by_age_for_checkers(approved_payroll, payment_plan, cycles, accountant, checkers,
                                              manager_a, django_capture_on_commit_callbacks):
    from schemes.payments import services
    from schemes.payments.models import PaymentCycle, Payroll

    second = PaymentCycle.objects.exclude(pk=approved_payroll.cycle_id).order_by("start_date").first()
    with django_capture_on_commit_callbacks(execute=True):
        payroll = services.payroll_generate_start(payment_plan=payment_plan, cycle=second, by=accountant)
    with django_capture_on_commit_callbacks(execute=True):
        services.payroll_submit(payroll=Payroll.objects.get(pk=payroll.pk), by=accountant)

    (pending,), = sql("SELECT COUNT(*) FROM workflows_approvalrequest WHERE status = 'PENDING'")
    table = compute("approvals_pending", checkers[0][0])
    assert table.total("pending") == pending == 1
    assert table.total("under_1_day") == 1
    assert compute("approvals_pending", manager_a).rows == ()


def test_household_beneficiaries_count_once_by_their_heads_sex_and_age(geo, people, manager_a):
    from schemes.plans.models import HouseholdBeneficiary, PlanType
    from schemes.registry.models import Sex

    plan = BenefitPlan.objects.create(code="HS", name="Household support", plan_type=PlanType.HOUSEHOLD)
    plan.activate()
    plan.save()
    head = household_of(3, location=geo.village_a)
    type(head).objects.filter(pk=head.pk).update(sex=Sex.MALE)
    now = timezone.now()
    HouseholdBeneficiary.objects.create(plan=plan, household=head.membership.household, status="ACTIVE",
                                        enrolled_at=now, status_changed_at=now)

    assert as_dict(compute("beneficiaries_by_sex", manager_a), "sex", "beneficiaries") == {"Female": 4, "Male": 1}
    assert compute("beneficiaries_by_status", manager_a).total("beneficiaries", where="Active") == 4
    tree = compute("beneficiaries_by_location", manager_a)
    assert tree.total("beneficiaries", where=geo.district_a.name) == 5


# --- the cache: one computation for everyone asking at once -------------------------------------

@pytest.fixture
def empty_cache():
    from django.core.cache import cache

    cache.clear()
    yield cache
    cache.clear()


def counting(value, *, seconds=0.0, calls=None):
    calls = [] if calls is None else calls

    def function():
        calls.append(1)
        time.sleep(seconds)
        return value
    return function, calls


def test_a_figure_many_ask_for_at_once_is_computed_once(empty_cache):
    function, calls = counting("figure", seconds=0.3)
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda _: cached("k:stampede", function), range(6)))

    assert answers == ["figure"] * 6
    assert len(calls) == 1


def test_past_its_lifetime_a_figure_is_served_while_someone_computes_the_new_one(empty_cache):
    empty_cache.set("k:stale", ("yesterday", time.time() - 1), 600)
    empty_cache.add("k:stale:computing", True, 60)  # another request is computing it
    function, calls = counting("today")

    assert cached("k:stale", function) == "yesterday"
    assert calls == []


def test_the_first_to_ask_after_the_lifetime_gets_the_new_figure(empty_cache, settings):
    settings.MIZANI_DASHBOARD_CACHE_SECONDS = 300
    empty_cache.set("k:expired", ("yesterday", time.time() - 1), 600)
    function, calls = counting("today")

    assert cached("k:expired", function) == "today"
    assert cached("k:expired", function) == "today"  # kept, fresh
    assert len(calls) == 1
    assert empty_cache.get("k:expired:computing") is None


def test_a_waiter_computes_the_figure_itself_when_the_one_computing_it_is_gone(empty_cache, monkeypatch):
    monkeypatch.setattr(metrics, "WAIT_SECONDS", 0.2)
    empty_cache.add("k:orphan:computing", True, 60)  # its process died mid-way
    function, calls = counting("figure")

    assert cached("k:orphan", function) == "figure"
    assert len(calls) == 1


def test_a_computation_that_failed_leaves_the_figure_to_the_next_asker(empty_cache):
    def failing():
        raise RuntimeError("database went away")

    with pytest.raises(RuntimeError):
        cached("k:failed", failing)
    function, calls = counting("figure")

    assert cached("k:failed", function) == "figure"  # not left waiting for a computation that ended
    assert len(calls) == 1


def test_a_filter_a_metric_ignores_shares_its_cache_entry(superuser, benefit_plan):
    from dashboards.metrics import cache_key, get_metric

    approvals, by_status = get_metric("approvals_pending"), get_metric("beneficiaries_by_status")
    with_plan = Filters(plan_id=benefit_plan.pk)
    assert cache_key(approvals, superuser, with_plan) == cache_key(approvals, superuser, Filters())
    assert cache_key(by_status, superuser, with_plan) != cache_key(by_status, superuser, Filters())


def test_a_head_living_outside_the_viewers_locations_is_not_described(geo, people, manager_a):
    # The household is in A, its head registered in B: A's manager counts the household (status,
    # place) but learns nothing of B's resident (sex, age band), as the household page hides them.
    from schemes.plans.models import HouseholdBeneficiary, PlanType

    plan = BenefitPlan.objects.create(code="HS2", name="Household support 2", plan_type=PlanType.HOUSEHOLD)
    plan.activate()
    plan.save()
    head = household_of(2, location=geo.village_a)
    type(head).objects.filter(pk=head.pk).update(location=geo.village_b)
    now = timezone.now()
    HouseholdBeneficiary.objects.create(plan=plan, household=head.membership.household, status="ACTIVE",
                                        enrolled_at=now, status_changed_at=now)

    assert compute("beneficiaries_by_location", manager_a).total("beneficiaries", where=geo.district_a.name) == 5
    assert compute("beneficiaries_by_sex", manager_a).total("beneficiaries") == 4


def test_people_whose_sex_is_not_recorded_have_their_own_row(geo, people, manager_b):
    IndividualFactory.create_batch(2, sex="", location=geo.village_b)

    table = compute("people_by_sex", manager_b)

    assert as_dict(table, "sex", "people") == {"Female": 1, "Not recorded": 2}
    assert "Not recorded" in metrics.get_metric("people_by_sex").rows()


@pytest.mark.parametrize("zone", ["UTC", "Pacific/Kiritimati", "Pacific/Pago_Pago"])  # UTC, +14, -11
def test_a_period_from_the_calendars_first_day_to_its_last_counts_everything(people, approved_payroll, superuser,
                                                                            zone):
    """QA: "To" 9999-12-31 crashed every figure (the day after it does not exist); near the calendar's
    ends a local midnight may also lie beyond what Python holds in UTC."""
    with override_settings(TIME_ZONE=zone):
        whole = Filters(start=datetime.date.min, end=datetime.date.max)
        for name in registered_metrics():
            assert compute(name, superuser, whole).rows == compute(name, superuser).rows, name
        last_days = Filters(start=datetime.date(9999, 12, 30), end=datetime.date(9999, 12, 30))
        assert compute("beneficiaries_by_status", superuser, last_days).total("beneficiaries") == 0
        first_days = Filters(start=datetime.date.min, end=datetime.date(1, 1, 2))
        assert compute("beneficiaries_by_status", superuser, first_days).total("beneficiaries") == 0
        assert compute("beneficiaries_by_status", superuser, Filters(start=datetime.date.max)).total(
            "beneficiaries") == 0
