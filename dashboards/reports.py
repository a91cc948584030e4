"""The admin's reports (menu Reports): tables with filters and a formula-safe CSV.

Two list records, starting from the owning apps' scoped selectors: pending approvals (the requests the
`approvals_pending` metric counts) and the upload history (the uploads list's own view, see
report_views). Two are aggregates read from the dashboards' metrics through `metrics.compute` (scoped,
cached), only reshaped here for reading: the same numbers as the dashboards, never a second query.
Each report is open to whoever may read its metric.
"""

from dataclasses import dataclass
from decimal import Decimal

from django.utils import timezone

from schemes.payments.models import CENT
from schemes.plans.models import BeneficiaryStatus

from .metrics import Column, Table, get_metric


@dataclass(frozen=True)
class Report:
    slug: str
    label: str
    description: str
    icon: str
    order: int
    # The metric whose permissions open the report; aggregate reports show its table.
    metric: str

    def allowed(self, user):
        metric = get_metric(self.metric)
        return metric is not None and metric.allowed(user)

    @property
    def url_name(self):
        return f"dashboards_reports:{self.slug}"


PENDING_APPROVALS = Report(
    "pending_approvals", "Pending approvals", "Requests waiting for a decision in your locations (and your own), "
    "oldest first: who asked, for what, at which step and where. Only those you may open show their title.", "tasks", 100, "approvals_pending")
UPLOAD_HISTORY = Report(
    "upload_history", "Upload history", "Files uploaded in your locations (and your own): who, when, what "
    "they held, their counts and result, and the file of rows with errors.", "upload", 110, "uploads_by_result")
BENEFICIARIES_BY_PLAN = Report(
    "beneficiaries_by_plan", "Beneficiaries by status per plan", "Beneficiaries (people and households) in "
    "your locations, by plan and status. The period filters by enrolment date.", "group", 120,
    "beneficiaries_by_plan")
PAYMENTS_DUE_VS_PAID = Report(
    "payments_due_vs_paid", "Payments due and paid per cycle", "Approved payrolls' lines for recipients in "
    "your locations, per cycle and payment plan: all of them (every line not cancelled), paid, failed "
    "(unpaid) and still due, with their amounts. The period filters by the cycle's start date.", "table", 130,
    "payments_due_vs_paid")
REPORTS = (PENDING_APPROVALS, UPLOAD_HISTORY, BENEFICIARIES_BY_PLAN, PAYMENTS_DUE_VS_PAID)


# --- pending approvals: age bands are the approvals_pending metric's (selectors.APPROVAL_AGES) ---------


def age_in_days(moment, now=None):
    return ((now or timezone.now()) - moment).days


# --- aggregate reports: the metric's table, reshaped ------------------------------------------------


def beneficiaries_per_plan(table):
    """`beneficiaries_by_plan` (plan, status, count rows) as one row per plan, a column per status and
    the plan's total."""
    statuses = [label for _value, label in BeneficiaryStatus.choices]
    counts = {}
    for plan, status, n in table.rows:
        counts.setdefault(plan, dict.fromkeys(statuses, 0))[status] = n
    rows = tuple((plan, *per_status.values(), sum(per_status.values()))
                 for plan, per_status in sorted(counts.items(), key=lambda item: str(item[0]).lower()))
    columns = (Column("plan", "Plan"), *(Column(value.lower(), label, "number")
                                         for value, label in BeneficiaryStatus.choices),
               Column("total", "Total", "number"))
    return Table(columns=columns, rows=rows)


def payments_to_the_cent(table):
    """`payments_due_vs_paid` as the report shows it: the metric's own columns (lines, paid, failed
    (unpaid), still due: the dashboard's words and numbers), amounts written to the cent (SQLite's SUM
    drops trailing zeros), still exact Decimals."""
    money = [position for position, column in enumerate(table.columns) if column.kind == "money"]
    rows = tuple(tuple(Decimal(cell).quantize(CENT) if position in money else cell
                       for position, cell in enumerate(row)) for row in table.rows)
    return Table(columns=table.columns, rows=rows)


SHAPES = {BENEFICIARIES_BY_PLAN.slug: beneficiaries_per_plan, PAYMENTS_DUE_VS_PAID.slug: payments_to_the_cent}


def totals_row(table, label="Total"):
    """The sums of a table's count columns (and of its money columns when every row has one currency),
    for the foot of the report; None where a sum would mean nothing."""
    currencies = set(table.values("currency")) if "currency" in {c.key for c in table.columns} else set()
    row = []
    for position, column in enumerate(table.columns):
        if column.kind == "number" or (column.kind == "money" and len(currencies) <= 1):
            row.append(sum((r[position] or 0) for r in table.rows))
        elif column.key == "currency":
            row.append(next(iter(currencies), ""))
        else:
            row.append(None)
    row[0] = label
    return row


