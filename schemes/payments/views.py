"""Thin views: the payment plan's pages (edit through approval, formula tester, payroll generation),
the cycle schedule, the payroll page and its actions, the export for payment providers."""

import csv
from decimal import Decimal

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import DecimalField, OuterRef, Subquery
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.text import slugify
from django.views.decorators.http import require_POST
from wagtail.admin.views.mixins import Echo

from schemes.bulk.approvals import awaiting_approval
from schemes.bulk.models import UploadKind, UploadStatus
from schemes.bulk.selectors import uploads_for
from schemes.bulk.services import result_text
from schemes.plans.models import BeneficiaryStatus
from sites.audit import audit, export_title
from sites.models import OrganisationSettings
from sites.refusals import refusal_message
from sites.scoping import scope_for
from sites.spreadsheets import safe_cell, streaming_csv_response
from sites.viewsets import (
    ApprovalMixin,
    ScopedCreateView,
    ScopedEditView,
    ScopedIndexView,
    ScopedInspectView,
    ServiceFormMixin,
)
from workflows.models import ApprovalRequest, RequestStatus
from workflows.selectors import jobs_for

from . import approvals, reconciliation, selectors, services
from .forms import FormulaTestForm, GeneratePayrollForm, ScheduleForm
from .models import (
    CENT,
    DEAD_STATUSES,
    MAX_AMOUNT,
    MONEY,
    UNDECIDED_STATUSES,
    ChangeKind,
    LineStatus,
    PaymentLine,
    PayrollStatus,
)
from .templatetags.payments_money import count, money, yes_no
from .templatetags.payments_money import lines as lines_text

DIFF_SAMPLE = 5


PAYMENT_TYPE = "Cash"
# What the export holds: the lines still due (what a provider pays: the default) or every line (a record).
EXPORT_DUE, EXPORT_ALL = "due", "all"
RECONCILIATION_UPLOADS_SHOWN = 10


def reconciliation_rows(payroll, lines):
    """The openIMIS reconciliation template, exact header text: Paid and Receipt are left blank for the
    provider, who sends the file back through the reconciliation upload."""
    yield reconciliation.HEADERS
    for line in lines.order_by("pk").iterator(chunk_size=2000):
        person = line.recipient
        yield [safe_cell(value) for value in (
            payroll.name, payroll.get_status_display(), person.first_name if person else "",
            person.last_name if person else "", person.dob.isoformat() if person and person.dob else "",
            line.code, line.get_status_display(), line.amount, PAYMENT_TYPE, "", "")]


def payroll_export(request, pk):
    """An approved payroll's lines still due in the user's locations (one payment point's, with ?point=),
    as the reconciliation CSV, streamed: the file a provider pays from, without the lines paid or
    unpaid already (paid twice otherwise). ?lines=all gives every line, as a record; a reconciled
    payroll's export is always that record. Audited with the row count, the filters and the lines
    withheld (above the transaction limit and not released)."""
    payroll = get_object_or_404(selectors.payrolls_for(request.user), pk=pk)
    if not request.user.has_perm("payments.export_payroll"):
        raise PermissionDenied
    if payroll.status not in (PayrollStatus.APPROVED, PayrollStatus.RECONCILED):
        messages.error(request, "Only an approved payroll is exported for payment.")
        return redirect("payments_payroll:inspect", payroll.pk)
    point = None
    if request.GET.get("point"):
        point = get_object_or_404(selectors.points_for(request.user), pk=request.GET["point"])
    lines = selectors.lines_of_payroll_for(request.user, payroll, payment_point=point).select_related("recipient")
    every_line = payroll.status == PayrollStatus.RECONCILED or request.GET.get("lines") == EXPORT_ALL
    if not every_line:
        lines = lines.filter(status=LineStatus.DUE)
    withheld = 0
    if payroll.withholds_over_limit and not every_line:
        # Lines above the transaction limit are paid only once released by their own approval (the
        # record of every line holds them).
        withheld = lines.filter(flagged_over_limit=True).count()
        lines = lines.filter(flagged_over_limit=False)
    rows = lines.count()
    audit(payroll, "mizani.export", by=request.user, title=export_title(PaymentLine, "csv", rows), data={
        "rows": rows, "format": "csv", "payment_point": point.code if point else None,
        "lines": EXPORT_ALL if every_line else EXPORT_DUE, "over_limit_withheld": withheld})
    # Downloaded by a person, opened in a spreadsheet and sent to the provider: with the BOM, as every CSV
    # people download (Excel garbles "Müller" without it); the reconciliation upload reads it back.
    # Providers' systems read the lines from the provider API instead.
    writer = csv.writer(Echo())
    name = slugify(f"{payroll.name}-{point.code}" if point else payroll.name) + ("-all-lines" if every_line else "")
    return streaming_csv_response((writer.writerow(row) for row in reconciliation_rows(payroll, lines)),
                                  f"{name}.csv")


def _cents(amount):
    """An amount as the CSV writes it, always with two decimals ("800.00"); blank for none."""
    return "" if amount is None else format(Decimal(amount).quantize(CENT), "f")


DIFF_HEADERS = ["Change", "Line", "Beneficiary ID", "First name", "Last name", "Amount before", "Amount now",
                "Currency"]


def payroll_diff_export(request, pk):
    """Every difference of a sealed payroll to the previous cycle's, in the user's locations (the page
    shows the first few of each kind): new, removed and changed-amount lines, as CSV, streamed (the
    header alone when there is no previous payroll); audited with the row count."""
    payroll = get_object_or_404(selectors.payrolls_for(request.user), pk=pk)
    previous, kinds = selectors.diff_lines(payroll, request.user) if payroll.is_frozen else (None, {})
    rows = {kind: lines.select_related("recipient").order_by("beneficiary_id") for kind, lines in kinds.items()}
    if previous is not None:
        amount_before = PaymentLine.objects.filter(
            payroll=previous, beneficiary_id=OuterRef("beneficiary_id")).values("amount")[:1]
        rows[ChangeKind.CHANGED] = rows[ChangeKind.CHANGED].annotate(
            amount_before=Subquery(amount_before, output_field=DecimalField(**MONEY)))
    audit(payroll, "mizani.export", by=request.user, data={
        "rows": sum(lines.count() for lines in kinds.values()), "format": "csv",
        "difference_to": previous.pk if previous else None})

    def lines_as_rows():
        yield DIFF_HEADERS
        for kind, lines in rows.items():
            for line in lines.iterator(chunk_size=2000):
                before, now = {ChangeKind.NEW: (None, line.amount), ChangeKind.REMOVED: (line.amount, None),
                               ChangeKind.CHANGED: (getattr(line, "amount_before", None), line.amount)}[kind]
                person = line.recipient
                yield [safe_cell(value) for value in (
                    ChangeKind(kind).label, line.code, line.beneficiary_id, person.first_name if person else "",
                    person.last_name if person else "", _cents(before), _cents(now), payroll.currency)]

    writer = csv.writer(Echo())
    return streaming_csv_response((writer.writerow(row) for row in lines_as_rows()),
                                  f"{slugify(payroll.name)}-difference.csv")


def _payroll_action(request, pk, act, success):
    """A POST on one payroll of the user's: `act(payroll)` calls the service and returns (message,
    where to go); a refusal goes back to the payroll page with the service's reason."""
    payroll = get_object_or_404(selectors.payrolls_for(request.user), pk=pk)
    try:
        outcome = act(payroll)
    except (ValidationError, PermissionDenied) as error:
        messages.error(request, refusal_message(error))
        return redirect("payments_payroll:inspect", payroll.pk)
    message, target = success(outcome)
    messages.success(request, message)
    return redirect(*target)


@require_POST
def payroll_submit(request, pk):
    return _payroll_action(
        request, pk, lambda payroll: services.payroll_submit(payroll=payroll, by=request.user),
        lambda approval: ("Sent for approval: the payroll is paid only once approved.",
                          ("workflows_approvals:inspect", approval.pk)))


@require_POST
def payroll_discard(request, pk):
    return _payroll_action(
        request, pk, lambda payroll: services.payroll_discard(payroll=payroll, by=request.user),
        lambda payroll: (f"{payroll} is discarded: a payroll can be generated again for cycle {payroll.cycle.code}.",
                         ("payments_payroll:inspect", payroll.pk)))


@require_POST
def payroll_release_submit(request, pk):
    return _payroll_action(
        request, pk, lambda payroll: services.payroll_over_limit_submit(payroll=payroll, by=request.user),
        lambda approval: ("Sent for approval: the lines above the limit are exported only once approved.",
                          ("workflows_approvals:inspect", approval.pk)))


@require_POST
def payroll_close(request, pk):
    """Ask to close the payroll (through approval); `mark_due_unpaid` closes it with the lines still due
    marked unpaid."""
    return _payroll_action(
        request, pk, lambda payroll: services.payroll_close_submit(
            payroll=payroll, mark_due_unpaid=request.POST.get("mark_due_unpaid") == "on", by=request.user),
        lambda approval: ("Closing sent for approval: the payroll is closed once approved.",
                          ("workflows_approvals:inspect", approval.pk)))


@require_POST
def payroll_follow_up(request, pk):
    return _payroll_action(
        request, pk, lambda payroll: services.payroll_follow_up_start(payroll=payroll, by=request.user),
        lambda follow_up: (f"Generating {follow_up}.", ("payments_payroll:inspect", follow_up.pk)))


def reconciliation_rows_text(upload):
    """What a reconciliation file did to the lines ("Imported: ...") or, not imported, what its check
    counted ("Checked, not imported: ..."); "—" before it is checked."""
    counts = upload.counts
    if not counts.get("rows"):
        return "—"
    rest = (f"{count(counts.get('unchanged', 0))} no change, "
            f"{count(counts.get('errors', 0))} with errors")
    if upload.status == UploadStatus.IMPORTED:
        return (f"Imported: {lines_text(counts.get('imported', 0))} reconciled (checked: "
                f"{count(counts.get('paid', 0))} to mark paid, {count(counts.get('unpaid', 0))} unpaid), {rest}")
    return (f"Checked, not imported: {count(counts.get('paid', 0))} to mark paid, "
            f"{count(counts.get('unpaid', 0))} to mark unpaid, {rest}")


def reconciliations_shown(uploads):
    """[(upload, its result as the uploads' list says it, its rows)] of a payroll's reconciliation files."""
    uploads = list(uploads)
    awaiting = awaiting_approval([upload.pk for upload in uploads])
    return [(upload, result_text(upload, awaiting_approval=upload.pk in awaiting), reconciliation_rows_text(upload))
            for upload in uploads]


class PayrollRecordView(ScopedInspectView):
    """The payroll page: seal, status, totals, the lines above the limit, the diff to the previous
    cycle and what can be done next. Totals count the lines in the user's locations."""

    template_name = "payments/payroll_record.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        payroll, user = self.object, self.request.user
        flagged = selectors.over_limit(selectors.totals_for(user, payroll))
        requests = ApprovalRequest.objects.filter(
            operation__in=[approvals.APPROVE_PAYROLL, approvals.RELEASE_OVER_LIMIT, approvals.CLOSE_PAYROLL],
            payload__payroll=payroll.pk).order_by("-pk")
        pending = {request.operation for request in requests if request.status == RequestStatus.PENDING}
        payable = payroll.status in (PayrollStatus.APPROVED, PayrollStatus.RECONCILED)
        job = payroll.job if payroll.job_id and jobs_for(user).filter(pk=payroll.job_id).exists() else None
        can_work = user.has_perm("payments.change_payroll")
        approved = payroll.status == PayrollStatus.APPROVED
        nobody_to_pay = payroll.status == PayrollStatus.GENERATED and not payroll.line_count
        # Undecided payrolls of a plan no longer active are not paid: only discarded.
        not_paying = (services.not_paying_message(payroll.payment_plan.benefit_plan, payroll)
                      if payroll.status in UNDECIDED_STATUSES else "")
        may_reconcile = user.has_perm(reconciliation.PERMISSION)
        due = selectors.lines_in_status(payroll.totals.all(), LineStatus.DUE) if approved else 0
        # Lines left unpaid with no follow-up: the page offers one, or says why not.
        follow_up_wanted = (selectors.lines_in_status(payroll.totals.all(), LineStatus.UNPAID) > 0
                            and not payroll.follow_ups.exclude(status__in=DEAD_STATUSES).exists())
        no_follow_up = services.follow_up_refusal(payroll) if follow_up_wanted else ""
        may_follow_up = user.has_perm("payments.add_payroll") and scope_for(user).national
        if follow_up_wanted and not no_follow_up and not may_follow_up:
            no_follow_up = "A follow-up payroll of the unpaid lines is generated by an accountant with national scope."
        context.update({
            "payroll": payroll,
            "job": job,
            "by_status": selectors.totals_by_status(payroll, user),
            "by_location": selectors.totals_by_location(payroll, user),
            "breakdown_level": OrganisationSettings.load().level_name(scope_for(user).breakdown_depth()),
            "flagged": flagged,
            "diff": selectors.payroll_diff(payroll, user, sample=DIFF_SAMPLE) if payroll.is_frozen else None,
            "diff_csv_url": reverse("payments_payroll:diff_csv", args=[payroll.pk]),
            "requests": requests,
            "lines_url": reverse("payments_line:index") + f"?payroll={payroll.pk}",
            "flagged_url": reverse("payments_line:index") + f"?payroll={payroll.pk}&flagged_over_limit=true",
            "points": selectors.points_with_lines(user, payroll, status=LineStatus.DUE) if approved else [],
            "all_points": selectors.points_with_lines(user, payroll) if payable else [],
            "follow_ups": payroll.follow_ups.exclude(status__in=DEAD_STATUSES),
            "can_submit": (can_work and payroll.status == PayrollStatus.GENERATED and not nobody_to_pay
                           and not not_paying and approvals.APPROVE_PAYROLL not in pending),
            "nobody_to_pay": services.nobody_to_pay_message(payroll) if nobody_to_pay else "",
            "not_paying": not_paying,
            "can_discard": ((nobody_to_pay or (not_paying and payroll.status == PayrollStatus.GENERATED))
                            and can_work and scope_for(user).national),
            "can_release": (can_work and flagged["count"] and payroll.over_limit_released_at is None
                            and payroll.status in (*UNDECIDED_STATUSES, PayrollStatus.APPROVED)
                            and approvals.RELEASE_OVER_LIMIT not in pending),
            "can_export": payable and user.has_perm("payments.export_payroll"),
            "can_follow_up": follow_up_wanted and not no_follow_up,
            "no_follow_up": no_follow_up,
            "can_reconcile": approved and may_reconcile and user.has_perm("bulk.add_upload"),
            "reconcile_url": reverse("bulk_upload:new") + f"?kind={UploadKind.RECONCILIATION}&payroll={payroll.pk}",
            "reconciliations": reconciliations_shown(uploads_for(user).filter(payroll=payroll)[
                :RECONCILIATION_UPLOADS_SHOWN]),
            "reconciliations_url": reverse("bulk_upload:index") + f"?payroll={payroll.pk}",
            "can_close": (approved and may_reconcile and scope_for(user).national
                          and approvals.CLOSE_PAYROLL not in pending),
            "due": due,
        })
        return context


class PaymentLineRecordView(ScopedInspectView):
    """A payment line: its amount as money, its flag as Yes or No, the formula's inputs as a table."""

    def get_amount_display_value(self):
        return money(self.object.amount, self.object.currency)

    def get_flagged_over_limit_display_value(self):
        return yes_no(self.object.flagged_over_limit)

    def get_inputs_display_value(self):
        if not self.object.inputs:
            return "—"
        rows = format_html_join("", "<tr><th scope=\"row\"><code>{}</code></th><td>{}</td></tr>", (
            (name, "unknown" if value is None else value) for name, value in sorted(self.object.inputs.items())))
        return format_html('<table class="listing" data-testid="line-inputs"><thead><tr><th>Input</th><th>Value</th>'
                           "</tr></thead><tbody>{}</tbody></table>", rows)


# --- payment plans ---------------------------------------------------------------------------------


class PaymentPlanCreateView(ServiceFormMixin, ScopedCreateView):
    def get_initial(self):
        initial = super().get_initial()
        if self.request.GET.get("benefit_plan", "").isdigit():
            initial["benefit_plan"] = self.request.GET["benefit_plan"]
        return initial

    def save_instance(self):
        return services.payment_plan_create(fields=self.form.service_fields(), by=self.request.user)


class PaymentPlanEditView(ApprovalMixin, ScopedEditView):
    """A change to a payment plan (its formula above all) goes through approval (`payments.change_plan`):
    the checkers see the diff; payrolls already generated keep the formula they were generated with."""

    def get(self, request, *args, **kwargs):
        messages.info(request, "Saving submits the change for approval: nothing changes until it is approved.")
        return super().get(request, *args, **kwargs)

    def form_valid(self, form):
        fields = form.service_fields()
        fields.pop("benefit_plan", None)
        try:
            return self.submit_for_approval(approvals.CHANGE_PLAN, {
                "payment_plan": self.object.pk, "fields": selectors.plan_fields_to_json(fields)})
        except (ValidationError, PermissionDenied) as error:
            form.apply_service_errors(error if isinstance(error, ValidationError) else ValidationError(str(error)))
            self.produced_error_message = self.get_error_message()
            return self.form_invalid(form)


class PaymentPlanRecordView(ScopedInspectView):
    template_name = "payments/payment_plan_record.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        payment_plan, user = self.object, self.request.user
        not_paying = services.not_paying_message(payment_plan.benefit_plan)
        context.update({
            "payment_plan": payment_plan,
            "statuses_paid": ", ".join(str(BeneficiaryStatus(status).label) for status in payment_plan.target_statuses),
            "payrolls": selectors.payrolls_for(user).filter(payment_plan=payment_plan).order_by(
                "-cycle__start_date", "-pk")[:20],
            "generate_form": GeneratePayrollForm(cycles=selectors.cycles_to_pay(user, payment_plan)),
            "not_paying": not_paying,
            "can_generate": user.has_perm("payments.add_payroll") and not not_paying,
            "can_change": user.has_perm("payments.change_paymentplan"),
            "changes": ApprovalRequest.objects.filter(operation=approvals.CHANGE_PLAN,
                                                      payload__payment_plan=payment_plan.pk).order_by("-pk")[:5],
        })
        return context


@require_POST
def payroll_generate(request, pk):
    """Start the payroll of the payment plan for the chosen cycle (or show the live one)."""
    payment_plan = get_object_or_404(selectors.payment_plans_for(request.user), pk=pk)
    # A cycle paid already is accepted: a second click gets the payroll generated (the service's answer).
    form = GeneratePayrollForm(request.POST, cycles=selectors.cycles_to_pay(request.user, payment_plan,
                                                                           unpaid_only=False))
    if not form.is_valid():
        messages.error(request, "Choose one of the cycles offered: not closed, as long as the plan's periodicity "
                                f"({payment_plan.get_periodicity_display().lower()}).")
        return redirect("payments_plan:inspect", payment_plan.pk)
    try:
        payroll = services.payroll_generate_start(payment_plan=payment_plan, cycle=form.cleaned_data["cycle"],
                                                  by=request.user)
    except (ValidationError, PermissionDenied) as error:
        messages.error(request, refusal_message(error))
        return redirect("payments_plan:inspect", payment_plan.pk)
    if payroll.status == PayrollStatus.GENERATING:
        messages.success(request, f"Generating {payroll}.")
    else:
        messages.info(request, f"{payroll} exists already for this cycle.")
    return redirect("payments_payroll:inspect", payroll.pk)


def formula_tester(request, pk):
    """The formula (as the plan has it, or as edited here) on the user's beneficiaries: how many it
    pays and leaves out, and a sample with each one's inputs, the formula's result and the amount
    paid. Nothing is saved."""
    payment_plan = get_object_or_404(selectors.payment_plans_for(request.user), pk=pk)
    form = FormulaTestForm(request.POST or None, payment_plan=payment_plan, user=request.user)
    result = None
    if request.method == "POST" and form.is_valid():
        try:
            result = services.formula_test(by=request.user, fields={
                "benefit_plan": payment_plan.benefit_plan, **form.cleaned_data,
                "criteria": form.cleaned_data.get("criteria") or {}})
        except ValidationError as error:
            form.add_error(None, refusal_message(error))
    return TemplateResponse(request, "payments/formula_tester.html", {
        "payment_plan": payment_plan, "form": form, "result": result, "max_amount": MAX_AMOUNT,
        "page_title": f"Formula tester: {payment_plan}", "header_icon": "table"})


# --- cycles, providers and points through their services -------------------------------------------


def cycle_schedule(request):
    """Generate a schedule of cycles (e.g. six, every two months)."""
    if not request.user.has_perm("payments.add_paymentcycle"):
        raise PermissionDenied
    form = ScheduleForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            cycles = services.cycle_schedule_generate(**form.cleaned_data, by=request.user)
        except ValidationError as error:
            if hasattr(error, "error_dict"):
                for field, errors in error.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                form.add_error(None, error)
        else:
            messages.success(request, f"{len(cycles)} cycles created: {cycles[0].code} to {cycles[-1].code}.")
            return redirect("payments_cycle:index")
    return TemplateResponse(request, "payments/cycle_schedule.html", {
        "form": form, "page_title": "Generate a schedule of cycles", "header_icon": "date"})


class ServiceCreateView(ServiceFormMixin, ScopedCreateView):
    """Create through `service(fields=..., by=...)`; back to the list."""

    service = None

    def save_instance(self):
        return self.service(fields=self.form.service_fields(), by=self.request.user)

    def get_success_url(self):
        return reverse(self.index_url_name)


class ServiceEditView(ServiceFormMixin, ScopedEditView):
    """Change through `service(<record_kwarg>=..., fields=..., by=...)`; back to the list."""

    service = None
    record_kwarg = None

    def save_instance(self):
        return self.service(**{self.record_kwarg: self.object}, fields=self.form.service_fields(),
                            by=self.request.user)

    def get_success_url(self):
        return reverse(self.index_url_name)


def overlap_warnings(pairs):
    return [f"Payment point {covering.code} ({covering.provider}, {covering.location}) covers point {covered.code} "
            f"({covered.provider}, {covered.location}): the beneficiaries there are in both points' exports, and "
            "two providers may pay them. Move one of the points (points made since may not overlap)."
            for covering, covered in pairs]


class PointIndexView(ScopedIndexView):
    """Payment points, with a warning for each pair that overlaps (placed before overlaps were refused)."""

    template_name = "payments/point_index.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["overlaps"] = overlap_warnings(selectors.overlapping_points(selectors.points_for(self.request.user)))
        return context


class PointEditView(ServiceEditView):
    """A payment point's page: a warning when it overlaps another point."""

    template_name = "payments/point_edit.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["overlaps"] = overlap_warnings(
            pair for pair in selectors.overlapping_points(selectors.points_for(self.request.user))
            if self.object in pair)
        return context


class CycleRecordView(ScopedInspectView):
    """A cycle: its dates, status, payrolls, and open / close."""

    template_name = "payments/cycle_record.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        cycle, user = self.object, self.request.user
        may = user.has_perm("payments.change_paymentcycle")
        moves = {transition.name for transition in cycle.get_available_status_transitions()}
        payrolls = selectors.payrolls_for(user).filter(cycle=cycle).order_by("name")
        live = [payroll.status for payroll in payrolls if payroll.status not in DEAD_STATUSES]
        context.update({
            "cycle": cycle,
            "payrolls": payrolls,
            "left_unpaid": services.payrolls_left_unpaid(cycle).order_by("name") if may and "close" in moves else [],
            "can_open": may and "open" in moves,
            "can_close": may and "close" in moves,
            # Every payroll paid and closed: the accountant may close the cycle (other plans may still pay in it).
            "all_reconciled": bool(live) and all(status == PayrollStatus.RECONCILED for status in live),
        })
        return context


def _cycle_action(request, pk, action, message):
    cycle = get_object_or_404(selectors.cycles_for(request.user), pk=pk)
    try:
        services.cycle_change_status(cycle=cycle, action=action, by=request.user,
                                     leave_unpaid=request.POST.get("leave_unpaid") == "on")
    except (ValidationError, PermissionDenied) as error:
        messages.error(request, refusal_message(error))
    else:
        messages.success(request, message.format(cycle=cycle.code))
    return redirect("payments_cycle:inspect", cycle.pk)


@require_POST
def cycle_open(request, pk):
    return _cycle_action(request, pk, "open", "Cycle {cycle} is open.")


@require_POST
def cycle_close(request, pk):
    return _cycle_action(request, pk, "close", "Cycle {cycle} is closed: no payroll is generated for it any more.")


def cycle_create_service(*, fields, by):
    return services.cycle_create(code=fields["code"], start_date=fields["start_date"], end_date=fields["end_date"],
                                 by=by)


