"""The admin's reports: who sees which (the metrics' permissions, the user's locations), their filters,
and their CSV: formula-safe, amounts numeric, audited with the filters and the row count. The
aggregate reports show the dashboards' own metrics."""

import csv
import dataclasses
import datetime
import io
from decimal import Decimal

import openpyxl
import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client, RequestFactory, override_settings
from django.urls import reverse
from django.utils import timezone
from wagtail.admin.menu import reports_menu
from wagtail.models import ModelLogEntry

from dashboards import metrics, reports
from dashboards.metrics import compute
from schemes.bulk.models import Upload, UploadKind, UploadStatus
from schemes.payments.models import PaymentLine
from schemes.plans.models import BenefitPlan
from tests.factories import UserFactory
from tests.schemes.payments.conftest import enrol, household_of
from workflows.models import ApprovalRequest

pytestmark = pytest.mark.django_db

BENEFICIARIES = reverse("dashboards_reports:beneficiaries_by_plan")
PAYMENTS = reverse("dashboards_reports:payments_due_vs_paid")
APPROVALS = reverse("dashboards_reports:pending_approvals")
UPLOADS = reverse("dashboards_reports:upload_history")
STATUS_COLUMNS = ["Potential", "Active", "Suspended", "Graduated", "Rejected"]


def client_for(user):
    client = Client()
    client.force_login(user)
    return client


def sql(query, params=()):
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall()


def csv_rows(response):
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    content = b"".join(response.streaming_content) if response.streaming else response.content
    assert content.startswith(b"\xef\xbb\xbf")  # the BOM every CSV for a person starts with (Excel)
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))


def exports():
    return ModelLogEntry.objects.filter(action="mizani.export").order_by("pk")


@pytest.fixture
def clerk_a(geo):
    return UserFactory(username="clerk_a", role="Clerk", locations=[geo.district_a])


@pytest.fixture
def clerk_b(geo):
    return UserFactory(username="clerk_b", role="Clerk", locations=[geo.district_b])


# --- who sees which report -------------------------------------------------------------------------


def refused(response):
    """PermissionDenied, as the Wagtail admin answers it: back to the admin's home with "Sorry, you do
    not have permission" (403 to a script's request)."""
    return response.status_code == 403 or (response.status_code == 302
                                           and response["Location"] == reverse("wagtailadmin_home"))


def menu_names(user):
    request = RequestFactory().get("/admin/")
    request.user = user
    return {item.name for item in reports_menu.menu_items_for_request(request)}


def test_the_reports_menu_and_urls_follow_the_metrics_permissions(geo, clerk_a, manager_a, accountant_a):
    viewer_a = UserFactory(username="viewer_a", role="Viewer", locations=[geo.district_a])
    payments, uploads = "mizani-payments-due-vs-paid", "mizani-upload-history"
    everyone = {"mizani-pending-approvals", "mizani-beneficiaries-by-plan"}

    assert menu_names(clerk_a) >= everyone | {uploads} and payments not in menu_names(clerk_a)
    assert menu_names(viewer_a) >= everyone and not menu_names(viewer_a) & {payments, uploads}
    for reader in (manager_a, accountant_a):
        assert menu_names(reader) >= everyone | {payments, uploads}

    # The address refuses what the menu hides, the CSV too.
    assert refused(client_for(clerk_a).get(PAYMENTS))
    assert refused(client_for(clerk_a).get(PAYMENTS, {"export": "csv"}))
    assert client_for(clerk_a).get(PAYMENTS, headers={"x-requested-with": "XMLHttpRequest"}).status_code == 403
    assert refused(client_for(viewer_a).get(UPLOADS))
    assert refused(client_for(viewer_a).get(UPLOADS, {"export": "csv"}))
    results = reverse("dashboards_reports:upload_history_results")
    assert client_for(viewer_a).get(results, headers={"x-requested-with": "XMLHttpRequest"}).status_code == 403
    for url in (APPROVALS, BENEFICIARIES, PAYMENTS, UPLOADS):
        assert client_for(manager_a).get(url).status_code == 200
    assert not exports().exists()


# --- beneficiaries by status per plan ---------------------------------------------------------------


def beneficiaries_sql(district):
    return dict(sql("""
        SELECT b.status, COUNT(*) FROM plans_beneficiary b
        JOIN registry_individual i ON i.id = b.individual_id
        JOIN sites_location l ON l.id = i.location_id
        WHERE l.path LIKE %s GROUP BY b.status""", [district.path + "%"]))


def test_two_district_managers_get_their_own_beneficiary_figures_equal_to_sql(geo, people, manager_a, manager_b):
    tables = {}
    for user, district in ((manager_a, geo.district_a), (manager_b, geo.district_b)):
        header, *rows = csv_rows(client_for(user).get(BENEFICIARIES, {"export": "csv"}))
        assert header == ["Plan", *STATUS_COLUMNS, "Total"]
        counts = beneficiaries_sql(district)
        assert rows == [["Child grant", *(str(counts.get(status.upper(), 0)) for status in STATUS_COLUMNS),
                         str(sum(counts.values()))]]
        tables[user.username] = rows
    assert tables["manager_a"] == [["Child grant", "0", "3", "1", "0", "0", "4"]]
    assert tables["manager_b"] == [["Child grant", "0", "1", "0", "0", "0", "1"]]

    page = client_for(manager_b).get(BENEFICIARIES)
    assert page.status_code == 200
    assert [[cell["text"] for cell in row] for row in page.context["rows"]] == [["Child grant", "0", "1", "0", "0", "0", "1"]]


def test_the_beneficiaries_report_is_the_dashboards_metric_reshaped(geo, people, manager_a):
    metric = compute("beneficiaries_by_plan", manager_a)
    report = reports.beneficiaries_per_plan(metric)

    assert sum(row[-1] for row in report.rows) == metric.total("beneficiaries")
    # What the page shows is that table, read through the (cached) metric.
    page = client_for(manager_a).get(BENEFICIARIES)
    assert [column.label for column in page.context["columns"]] == [c.label for c in report.columns]


def test_beneficiary_filters_narrow_by_plan_location_and_period_within_the_scope(geo, people, superuser, manager_a):
    other = BenefitPlan.objects.create(code="OT", name="=cmd()")
    other.activate()
    other.save()
    enrol(other, household_of(1, location=geo.village_b), status="POTENTIAL")
    client = client_for(superuser)

    _header, *rows = csv_rows(client.get(BENEFICIARIES, {"export": "csv", "plan": other.pk}))
    assert rows == [["'=cmd()", "1", "0", "0", "0", "0", "1"]]  # the formula is escaped
    _header, *rows = csv_rows(client.get(BENEFICIARIES, {"export": "csv", "location": geo.district_b.pk}))
    assert rows == [["'=cmd()", "1", "0", "0", "0", "0", "1"], ["Child grant", "0", "1", "0", "0", "0", "1"]]
    last_year = (timezone.localdate() - datetime.timedelta(days=365)).isoformat()
    _header, *rows = csv_rows(client.get(BENEFICIARIES, {"export": "csv", "end": last_year}))
    assert rows == []

    # District B is not among A's manager's choices: the filter is dropped, never widened.
    response = client_for(manager_a).get(BENEFICIARIES, {"location": geo.district_b.pk})
    assert "location" in response.context["form"].errors
    assert [[cell["text"] for cell in row] for row in response.context["rows"]] == [
        ["Child grant", "0", "3", "1", "0", "0", "4"]]


def test_a_report_csv_with_a_location_outside_the_users_is_refused_not_unfiltered(geo, people, clerk_a):
    client = client_for(clerk_a)
    response = client.get(BENEFICIARIES, {"export": "csv", "location": geo.other_region.pk, "plan": ""})

    assert response.status_code == 302
    assert response["Location"] == f"{BENEFICIARIES}?location={geo.other_region.pk}&plan="  # the page, no export
    page = client.get(response["Location"])
    assert [str(message) for message in page.context["messages"]] == [
        "The location filter is not one of your locations: nothing was exported."]
    assert not exports().exists()

    _header, *rows = csv_rows(client.get(BENEFICIARIES, {"export": "csv", "location": geo.district_a.pk}))
    assert rows == [["Child grant", "0", "3", "1", "0", "0", "4"]]
    assert exports().get().data["filters"]["location_code"] == geo.district_a.code


def test_a_report_csv_records_only_the_filters_its_metric_applies(geo, people, superuser, benefit_plan, monkeypatch):
    metric = metrics.get_metric("beneficiaries_by_plan")
    monkeypatch.setitem(metrics._registry, metric.name, dataclasses.replace(metric, filters_used=("location",)))

    csv_rows(client_for(superuser).get(BENEFICIARIES, {"export": "csv", "plan": benefit_plan.pk,
                                                       "location": geo.district_a.pk, "start": "2026-01-01"}))

    assert exports().get().data["filters"] == {"location": str(geo.district_a.pk), "location_code": geo.district_a.code,
                                               "location_name": geo.district_a.name}


def test_a_report_csv_with_an_invalid_date_is_refused_naming_the_field(geo, people, clerk_a):
    client = client_for(clerk_a)
    response = client.get(BENEFICIARIES, {"export": "csv", "start": "not-a-date"})

    assert response.status_code == 302 and "export" not in response["Location"]
    message, = (str(m) for m in client.get(response["Location"]).context["messages"])
    assert message.startswith("The From filter: Enter a valid date") and message.endswith("nothing was exported.")
    assert not exports().exists()


def test_an_empty_report_says_the_filters_found_nothing(geo, people, superuser):
    last_year = (timezone.localdate() - datetime.timedelta(days=365)).isoformat()

    page = client_for(superuser).get(BENEFICIARIES, {"end": last_year}).content.decode()
    assert "No data for these filters." in page


def test_an_empty_report_without_filters_says_nothing_is_recorded_yet(geo, superuser):
    page = client_for(superuser).get(BENEFICIARIES).content.decode()
    assert "Nothing recorded yet in your locations." in page
    assert "No data for these filters." not in page


def test_a_plan_named_like_markup_is_shown_as_text(geo, people, superuser):
    BenefitPlan.objects.filter(code="CG").update(name="<img src=x onerror=alert(1)>")

    page = client_for(superuser).get(BENEFICIARIES)
    assert b"<img src=x" not in page.content
    assert b"&lt;img src=x onerror=alert(1)&gt;" in page.content


def test_the_beneficiaries_csv_is_audited_with_its_filters_and_row_count(geo, people, superuser, benefit_plan):
    csv_rows(client_for(superuser).get(BENEFICIARIES, {"export": "csv", "plan": benefit_plan.pk,
                                                       "location": geo.district_a.pk, "page": "2", "q": "x"}))

    entry = exports().get()
    assert entry.user_id == superuser.pk
    assert entry.data["report"] == "beneficiaries_by_plan"
    assert entry.data["rows"] == 1
    assert entry.data["filters"] == {"plan": str(benefit_plan.pk), "location": str(geo.district_a.pk),
                                     "location_code": geo.district_a.code, "location_name": geo.district_a.name}
    assert entry.label == "Beneficiaries by status per plan export (CSV), 1 row"


# --- payments due and paid per cycle ----------------------------------------------------------------


def mark_paid(line):
    # Paid as reported by reconciliation (the one path that moves a sealed line).
    from schemes.payments.reconciliation import reconcile_batch

    reconcile_batch(payroll=line.payroll, by=UserFactory(username=f"root_pay_{line.pk}", is_superuser=True,
                                                         is_staff=True),
                    rows=[{"code": line.code, "paid": True, "receipt": "R1", "paid_on": timezone.localdate()}])


def test_two_district_accountants_get_their_own_payments_equal_to_sql(geo, approved_payroll, accountant_a,
                                                                     accountant_b):
    mark_paid(PaymentLine.objects.filter(payroll=approved_payroll, location__path__startswith=geo.district_a.path)
              .order_by("amount").first())
    for user, district in ((accountant_a, geo.district_a), (accountant_b, geo.district_b)):
        (due, paid, failed, still_due, due_lines, paid_lines, failed_lines, still_due_lines), = sql("""
            SELECT SUM(CASE WHEN p.status <> 'CANCELLED' THEN p.amount END),
                   SUM(CASE WHEN p.status = 'PAID' THEN p.amount END),
                   SUM(CASE WHEN p.status = 'UNPAID' THEN p.amount END),
                   SUM(CASE WHEN p.status = 'DUE' THEN p.amount END),
                   COUNT(CASE WHEN p.status <> 'CANCELLED' THEN 1 END), COUNT(CASE WHEN p.status = 'PAID' THEN 1 END),
                   COUNT(CASE WHEN p.status = 'UNPAID' THEN 1 END), COUNT(CASE WHEN p.status = 'DUE' THEN 1 END)
            FROM payments_paymentline p JOIN sites_location l ON l.id = p.location_id
            WHERE l.path LIKE %s""", [district.path + "%"])
        header, *rows = csv_rows(client_for(user).get(PAYMENTS, {"export": "csv"}))
        assert header == ["Cycle", "Payment plan", "Currency", "Total", "Paid", "Failed (unpaid)", "Still due",
                          "Lines", "Lines paid", "Lines failed (unpaid)", "Lines still due"]
        [row] = rows
        assert row[:3] == ["CG-2025-01", "Child grant payments", "TZS"]
        # Amounts are plain numbers (no quote, no thousands separator): exact Decimals.
        assert [Decimal(value) for value in row[3:7]] == [Decimal(str(amount or 0)) for amount in
                                                          (due, paid, failed, still_due)]
        assert [int(value) for value in row[7:]] == [due_lines, paid_lines, failed_lines, still_due_lines]
    assert csv_rows(client_for(accountant_a).get(PAYMENTS, {"export": "csv"}))[1][3:7] == [
        "2800.00", "800.00", "0.00", "2000.00"]
    assert csv_rows(client_for(accountant_b).get(PAYMENTS, {"export": "csv"}))[1][3:7] == [
        "600.00", "0.00", "0.00", "600.00"]


def test_the_payments_report_filters_by_period_and_shows_totals(geo, approved_payroll, accountant):
    client = client_for(accountant)
    page = client.get(PAYMENTS)
    assert [cell["text"] for cell in page.context["rows"][0]][3:7] == ["3,400.00", "0.00", "0.00", "3,400.00"]
    assert b"Download CSV" in page.content

    before = client.get(PAYMENTS, {"export": "csv", "end": "2024-12-31"})
    assert csv_rows(before)[1:] == []
    assert exports().last().data["filters"] == {"end": "2024-12-31"}
    assert exports().last().data["rows"] == 0


# --- pending approvals ------------------------------------------------------------------------------


@pytest.fixture
def pending(geo, checkers, clerk_a, clerk_b):
    """Requests waiting for the Checker group: two in A (one 10 days old, asked by a maker whose name
    is a formula), one in B, and one in A already decided."""
    _users, group = checkers
    clerk_a.first_name, clerk_a.last_name = "=cmd()", ""
    clerk_a.save()

    def request(maker, location, operation, *, days=0, status="PENDING"):
        made = ApprovalRequest.objects.create(
            operation=operation, maker=maker, location=location, summary={"title": f"{operation} in {location.code}"},
            steps=[{"group_id": group.pk, "group": group.name, "rule": "any", "required": 1}],
            waiting_group=group, total=Decimal("1250.50"))
        ApprovalRequest.objects.filter(pk=made.pk).update(
            created_at=timezone.now() - datetime.timedelta(days=days), status=status)
        return made

    return {"old_a": request(clerk_a, geo.district_a, "plans.enrol", days=10),
            "new_a": request(clerk_a, geo.village_a, "bulk.import"),
            "b": request(clerk_b, geo.district_b, "bulk.import", days=3),
            "done_a": request(clerk_a, geo.district_a, "bulk.import", status="REJECTED")}


def listed(response):
    assert response.status_code == 200
    return [request.pk for request in response.context["object_list"]]


def test_pending_approvals_are_those_the_user_may_see_oldest_first(geo, pending, checkers, manager_a):
    checker_a = UserFactory(username="checker_a", role="Checker", locations=[geo.district_a])
    national = checkers[0][0]

    assert listed(client_for(national).get(APPROVALS)) == [pending["old_a"].pk, pending["b"].pk, pending["new_a"].pk]
    assert listed(client_for(checker_a).get(APPROVALS)) == [pending["old_a"].pk, pending["new_a"].pk]
    # Neither maker nor checker: the requests of their locations all the same (without their titles).
    assert listed(client_for(manager_a).get(APPROVALS)) == [pending["old_a"].pk, pending["new_a"].pk]
    # As many as the dashboards' approvals metric counts for them.
    assert compute("approvals_pending", checker_a).total("pending") == 2


@override_settings(TIME_ZONE="Africa/Nairobi")
def test_pending_approvals_say_when_they_were_submitted_in_local_time(geo, pending, checkers):
    submitted = datetime.datetime(2026, 3, 4, 22, 15, tzinfo=datetime.UTC)
    ApprovalRequest.objects.filter(pk=pending["old_a"].pk).update(created_at=submitted)

    page = client_for(checkers[0][0]).get(APPROVALS)

    assert b"2026-03-05 01:15" in page.content and b"2026-03-04 22:15" not in page.content


def test_pending_approvals_filter_by_operation_age_and_location(geo, pending, checkers):
    client = client_for(checkers[0][0])

    assert listed(client.get(APPROVALS, {"operation": "bulk.import"})) == [pending["b"].pk, pending["new_a"].pk]
    assert listed(client.get(APPROVALS, {"age": "older"})) == [pending["old_a"].pk]
    assert listed(client.get(APPROVALS, {"age": "week"})) == [pending["b"].pk]
    assert listed(client.get(APPROVALS, {"age": "day"})) == [pending["new_a"].pk]
    assert listed(client.get(APPROVALS, {"location": geo.district_a.pk})) == [pending["old_a"].pk, pending["new_a"].pk]
    page = client.get(APPROVALS, {"age": "older"})
    assert b"Plans enrol" not in page.content and b"Enrol people in a benefit plan" in page.content
    assert b"1 of 1: Checker" in page.content


def test_the_pending_approvals_csv_is_safe_scoped_and_audited(geo, pending):
    clerk_a = pending["old_a"].maker
    header, *rows = csv_rows(client_for(clerk_a).get(APPROVALS, {"export": "csv", "operation": "plans.enrol"}))

    assert header == ["Request", "Request title", "Operation", "Asked by", "Asked by (name)", "Submitted",
                      "Age (days)", "Step", "Location code", "Location", "Total"]
    [row] = rows
    assert row[0] == str(pending["old_a"].pk)
    assert row[4] == "'=cmd()"  # a maker's name that a spreadsheet would run
    assert row[6] == "10" and row[7] == "1 of 1: Checker" and row[8] == geo.district_a.code
    assert Decimal(row[10]) == Decimal("1250.50")
    entry = exports().get()
    assert entry.user_id == clerk_a.pk
    assert entry.data["rows"] == 1 and entry.data["format"] == "csv"
    assert entry.data["filters"] == {"operation": "plans.enrol"}
    # Their own requests only, never B's.
    _header, *rows = csv_rows(client_for(clerk_a).get(APPROVALS, {"export": "csv"}))
    assert sorted(int(row[0]) for row in rows) == sorted([pending["old_a"].pk, pending["new_a"].pk])


def test_the_pending_approvals_xlsx_is_escaped_too(geo, pending):
    response = client_for(pending["old_a"].maker).get(APPROVALS, {"export": "xlsx", "operation": "plans.enrol"})

    assert response.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content))).active
    header, row = [[cell.value for cell in line] for line in sheet.iter_rows()]
    assert row[header.index("Asked by (name)")] == "'=cmd()"
    assert row[header.index("Total")] == 1250.5  # a number in the workbook
    assert exports().get().data["format"] == "xlsx"


# --- upload history ---------------------------------------------------------------------------------


@pytest.fixture
def uploads(geo, clerk_a, clerk_b, benefit_plan):
    def upload(number, clerk, district, **fields):
        return Upload.objects.create(stored_name=f"u{number}.csv", uploaded_by=clerk, scope_root=district, **fields)

    made = {
        "refused_a": upload(1, clerk_a, geo.district_a, kind=UploadKind.INDIVIDUALS, original_name="=cmd().csv",
                            status=UploadStatus.READY, has_error_file=True,
                            counts={"rows": 10, "valid": 7, "errors": 3}),
        "plan_a": upload(2, clerk_a, geo.district_a, kind=UploadKind.BENEFICIARIES, plan=benefit_plan,
                         original_name="cg.csv", status=UploadStatus.IMPORTED,
                         counts={"rows": 5, "valid": 5, "errors": 0, "imported": 5}),
        "b": upload(3, clerk_b, geo.district_b, kind=UploadKind.INDIVIDUALS, original_name="b.csv"),
    }
    Upload.objects.filter(pk=made["plan_a"].pk).update(created_at=timezone.now() - datetime.timedelta(days=40))
    return made


def test_the_upload_history_shows_the_users_locations_with_counts_and_error_files(geo, uploads, clerk_a, clerk_b):
    page = client_for(clerk_a).get(UPLOADS)
    assert listed(page) == [uploads["refused_a"].pk, uploads["plan_a"].pk]
    assert reverse("bulk_upload:errors", args=[uploads["refused_a"].pk]).encode() in page.content
    assert listed(client_for(clerk_b).get(UPLOADS)) == [uploads["b"].pk]

    client = client_for(clerk_a)
    assert listed(client.get(UPLOADS, {"kind": UploadKind.BENEFICIARIES})) == [uploads["plan_a"].pk]
    assert listed(client.get(UPLOADS, {"status": UploadStatus.READY})) == [uploads["refused_a"].pk]
    recent = (timezone.localdate() - datetime.timedelta(days=7)).isoformat()
    assert listed(client.get(UPLOADS, {"uploaded_after": recent})) == [uploads["refused_a"].pk]


@pytest.mark.parametrize("zone", ["UTC", "Africa/Nairobi", "America/New_York"])
def test_the_upload_history_period_takes_the_calendars_first_and_last_days(geo, uploads, clerk_a, zone):
    """QA: the reports answered 500 for a period to 9999-12-31; away from UTC, from 0001-01-01 too."""
    client = client_for(clerk_a)
    with override_settings(TIME_ZONE=zone):
        whole = {"uploaded_after": "0001-01-01", "uploaded_before": "9999-12-31"}
        assert listed(client.get(UPLOADS, whole)) == [uploads["refused_a"].pk, uploads["plan_a"].pk]
        _header, *rows = csv_rows(client.get(UPLOADS, {"export": "csv", **whole}))
        assert len(rows) == 2
        today = timezone.localdate().isoformat()
        assert listed(client.get(UPLOADS, {"uploaded_after": today, "uploaded_before": today})) == [
            uploads["refused_a"].pk]
        assert listed(client.get(UPLOADS, {"uploaded_after": "9999-12-31"})) == []


def test_the_upload_history_csv_is_safe_numeric_and_audited(geo, uploads, clerk_a):
    header, *rows = csv_rows(client_for(clerk_a).get(UPLOADS, {"export": "csv", "kind": UploadKind.INDIVIDUALS}))

    assert header == ["Upload", "File", "Kind", "Plan", "Payroll", "Uploaded by", "Uploaded", "Finished", "Result",
                      "Rows", "Rows to import", "Rows with errors", "Imported", "Error file"]
    [row] = rows
    assert row[1] == "'=cmd().csv"
    assert row[9:12] == ["10", "7", "3"] and row[12] == ""
    assert row[13].endswith(reverse("bulk_upload:errors", args=[uploads["refused_a"].pk]))
    entry = exports().get()
    assert entry.data["rows"] == 1 and entry.data["filters"] == {"kind": UploadKind.INDIVIDUALS}
    assert entry.data["model"] == "bulk.Upload"


def test_group_permissions_removed_from_a_role_close_the_report(geo, people, manager_a):
    group = Group.objects.get(name="Manager")
    group.permissions.remove(*group.permissions.filter(codename="view_householdbeneficiary"))
    manager = type(manager_a).objects.get(pk=manager_a.pk)  # permissions are cached on the instance

    assert refused(client_for(manager).get(BENEFICIARIES))
    assert "mizani-beneficiaries-by-plan" not in menu_names(manager)


def test_a_period_to_the_calendars_last_day_is_every_record_on_the_page_and_in_the_csv(geo, people, superuser):
    """QA: "To" 9999-12-31 answered 500 on the report and its CSV."""
    client = client_for(superuser)
    _header, *everything = csv_rows(client.get(BENEFICIARIES, {"export": "csv"}))

    for period in ({"end": "9999-12-31"}, {"start": "0001-01-01", "end": "9999-12-31"}):
        page = client.get(BENEFICIARIES, period)
        assert page.status_code == 200 and not page.context["form"].errors
        _header, *rows = csv_rows(client.get(BENEFICIARIES, {"export": "csv", **period}))
        assert rows == everything and len(rows) == 1


def test_a_manager_counts_the_pending_requests_of_their_locations_and_reads_no_title(geo, pending, manager_a,
                                                                                    checkers):
    """QA: a manager's "Pending approvals" (report and dashboard figure) showed nothing: only requests they
    made, might decide or audit counted. A title may name the people concerned: theirs to read only
    where they may open the request."""
    national_manager = UserFactory(username="manager_all", role="Manager", national=True)
    old_a, new_a, in_b = pending["old_a"], pending["new_a"], pending["b"]

    assert compute("approvals_pending", manager_a).total("pending") == 2
    assert compute("approvals_pending", national_manager).total("pending") == 3
    response = client_for(manager_a).get(APPROVALS)
    assert listed(response) == [old_a.pk, new_a.pk]
    page = response.content.decode()
    assert f"Request {old_a.pk}" in page and f"Request {new_a.pk}" in page
    assert old_a.title not in page and new_a.title not in page and in_b.title not in page
    assert reverse("workflows_approvals:inspect", args=[old_a.pk]) not in page
    _header, *rows = csv_rows(client_for(manager_a).get(APPROVALS, {"export": "csv"}))
    assert sorted((int(row[0]), row[1]) for row in rows) == [(old_a.pk, f"Request {old_a.pk}"),
                                                             (new_a.pk, f"Request {new_a.pk}")]
    # Who may open a request reads its title and follows its link, as before.
    page = client_for(checkers[0][0]).get(APPROVALS).content.decode()
    assert old_a.title in page and reverse("workflows_approvals:inspect", args=[old_a.pk]) in page
