"""Demo payments: a payment plan for the demo child grant, six cycles every two months, a provider
with a payment point per district, payroll approval by one checker and, from TWO_CHECKERS_FROM, by
two (an amount band), and the first cycle's payroll generated and approved (one INSERT ... SELECT
over the grant's beneficiaries: cheap at demo sizes). Existing rows are kept; a
re-run adds what is missing.

`forget_demo_payrolls` is the demo reset's maintenance path: payrolls are never deleted otherwise."""

import datetime
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection, transaction

from schemes.plans.models import BenefitPlan, PlanStatus
from sites.demo import require_demo
from sites.models import Location
from workflows.demo import ensure_demo_workflows
from workflows.models import ApprovalRule, RequestStatus, WorkflowDefinition, WorkflowStep
from workflows.services import approval_decide, approval_execute

from . import approvals, services
from .models import (
    PaymentCycle,
    PaymentLine,
    PaymentPlan,
    PaymentProvider,
    Payroll,
    PayrollChange,
    PayrollTotal,
    Periodicity,
)

GRANT = "CG-01"
PLAN_CODE = "CG-01-PAY"
FORMULA = "15000 + 5000 * min(children_under_5, 3)"
CYCLES = 6
PROVIDER = ("MPESA", "M-Pesa")
WORKFLOWS = {
    approvals.APPROVE_PAYROLL: "A payroll is paid only once a checker approves it.",
    approvals.RELEASE_OVER_LIMIT: "Lines above the transaction limit are paid only once a checker approves them.",
    approvals.CHANGE_PLAN: "A change to a payment plan (formula, ceiling, limits) applies once a checker approves it.",
    approvals.CLOSE_PAYROLL: "A payroll is closed (reconciled) once a checker approves it.",
}
TWO_CHECKERS_FROM = Decimal("1000000.00")


def ensure_demo_payments():
    """Returns a short description of what was created (empty when nothing was)."""
    require_demo()
    grant = BenefitPlan.objects.filter(code=GRANT, status=PlanStatus.ACTIVE).first()
    if grant is None:
        return []
    users = get_user_model().objects
    admin, accountant, checker = (users.get(username=name) for name in ("admin", "accountant", "checker"))
    created = [f"workflow {operation}" for operation in ensure_demo_workflows(WORKFLOWS)]
    created += _ensure_two_checker_band()
    payment_plan = PaymentPlan.objects.filter(code=PLAN_CODE).first()
    if payment_plan is None:
        payment_plan = services.payment_plan_create(by=admin, fields={
            "code": PLAN_CODE, "name": "Child Grant payments", "benefit_plan": grant, "formula": FORMULA,
            "ceiling_per_beneficiary": grant.ceiling_per_beneficiary, "limit_per_transaction": Decimal("25000"),
            "periodicity": Periodicity.BIMONTHLY, "currency": grant.currency, "target_statuses": ["ACTIVE"]})
        created.append(f"payment plan {PLAN_CODE}")
    if not PaymentCycle.objects.filter(code__startswith=f"{GRANT}-").exists():
        first = datetime.date.today().replace(day=1)
        cycles = services.cycle_schedule_generate(prefix=GRANT, first_start=first, periodicity=Periodicity.BIMONTHLY,
                                                  count=CYCLES, by=accountant)
        created.append(f"{len(cycles)} cycles")
    if not PaymentProvider.objects.filter(code=PROVIDER[0]).exists():
        provider = services.provider_create(fields={"code": PROVIDER[0], "name": PROVIDER[1]}, by=accountant)
        for district in Location.objects.filter(depth=2).order_by("path"):
            services.point_create(by=accountant, fields={
                "code": f"{PROVIDER[0]}-{district.code}"[:32], "name": f"{PROVIDER[1]} agents, {district.name}",
                "provider": provider, "location": district})
        created.append(f"provider {PROVIDER[0]} with {provider.points.count()} payment points")
    if not payment_plan.payrolls.exists() and grant.beneficiaries_of_type().exists():
        created.append(_first_payroll(payment_plan, accountant, checker))
    return created


def _ensure_two_checker_band():
    if WorkflowDefinition.objects.filter(operation=approvals.APPROVE_PAYROLL, min_total=TWO_CHECKERS_FROM).exists():
        return []
    definition = WorkflowDefinition.objects.create(
        operation=approvals.APPROVE_PAYROLL, min_total=TWO_CHECKERS_FROM,
        description=f"A payroll of {TWO_CHECKERS_FROM:,} or more is paid once two checkers approve it.")
    WorkflowStep.objects.create(definition=definition, group=Group.objects.get(name="Checker"),
                                rule=ApprovalRule.COUNT, count=2, sort_order=0)
    definition.save_revision(log_action=True)
    return [f"workflow {approvals.APPROVE_PAYROLL} from {TWO_CHECKERS_FROM:,} (two checkers)"]


def _first_payroll(payment_plan, accountant, checker):
    """The first cycle's payroll, generated here rather than by a worker (the job finds it sealed and
    does nothing), submitted by the accountant and approved by the checkers (two above the band)."""
    cycle = PaymentCycle.objects.filter(code__startswith=f"{GRANT}-").order_by("start_date").first()
    payroll = services.payroll_generate_start(payment_plan=payment_plan, cycle=cycle, by=accountant)
    services.payroll_generate(payroll.pk)
    request = services.payroll_submit(payroll=Payroll.objects.get(pk=payroll.pk), by=accountant)
    for deciding in (checker, get_user_model().objects.get(username="checker2")):
        request.refresh_from_db()
        if request.status == RequestStatus.PENDING:
            approval_decide(request=request, verdict="approve", by=deciding)
    approval_execute(request.pk)
    payroll = Payroll.objects.get(pk=payroll.pk)
    return f"payroll {payroll} ({payroll.line_count:,} lines), which {payroll.status_phrase}"


def forget_demo_payrolls(**kwargs):
    """Before a demo reset empties the registry: every payroll and line goes (they name its people).

    Payrolls are never deleted otherwise: the models refuse and, on PostgreSQL, row triggers refuse
    every DELETE. The reset empties both tables with TRUNCATE (no row trigger fires), within the
    reset's transaction; only with settings.MIZANI_DEMO (require_demo), and only this receiver of
    `registry_reset`, which only the demo seed sends, does it. SQLite has no triggers: plain DELETEs."""
    from schemes.bulk.models import Upload

    require_demo()
    lines, totals, changes, payrolls = (connection.ops.quote_name(model._meta.db_table)
                                        for model in (PaymentLine, PayrollTotal, PayrollChange, Payroll))
    with transaction.atomic(), connection.cursor() as cursor:
        Upload.objects.filter(payroll__isnull=False).delete()  # reconciliation files of these payrolls
        if connection.vendor == "postgresql":
            # Deferred foreign-key checks pending in this transaction would make PostgreSQL refuse.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(f"TRUNCATE {lines}, {totals}, {changes}, {payrolls}")
        else:
            for table in (lines, totals, changes):
                cursor.execute(f"DELETE FROM {table}")
            cursor.execute(f"UPDATE {payrolls} SET follow_up_of_id = NULL, compared_with_id = NULL")
            cursor.execute(f"DELETE FROM {payrolls}")
