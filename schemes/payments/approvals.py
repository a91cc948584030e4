"""Payment operations that need approval: a payroll (amount bands on its total pick the workflow), the
payment of its lines above the transaction limit, and a change to a payment plan (its formula,
ceiling, limits). Checkers see counts, the total, the
difference to the previous cycle and a sample of lines."""

from django.core.exceptions import PermissionDenied, ValidationError

from workflows.models import ApprovalRequest, RequestStatus
from workflows.operations import Operation, Prepared, register

from . import selectors, services
from .models import LINE_STATUS_WORDS, UNDECIDED_STATUSES, PaymentPlan, Payroll, PayrollStatus
from .templatetags.payments_money import lines as lines_text
from .templatetags.payments_money import money

APPROVE_PAYROLL = "payments.approve_payroll"
CHANGE_PLAN = "payments.change_plan"
SAMPLE_SIZE = 10


def _payroll(payload):
    payroll = Payroll.objects.select_related("payment_plan", "cycle").filter(pk=payload.get("payroll")).first()
    if payroll is None:
        raise PermissionDenied(f"No payroll with id {payload.get('payroll')}.")
    return payroll


def prepare_approve_payroll(payload, by):
    payroll = _payroll(payload)
    if not by.has_perm("payments.change_payroll"):
        raise PermissionDenied("You may not submit payrolls for approval.")
    if payroll.status != PayrollStatus.GENERATED:
        raise ValidationError(f"{payroll} {payroll.status_phrase}: only a generated payroll, not "
                              "yet submitted, is submitted for approval.")
    if not payroll.line_count:
        raise ValidationError(services.nobody_to_pay_message(payroll))
    services.require_plan_pays(payroll.payment_plan.benefit_plan_id, payroll)
    if ApprovalRequest.objects.filter(operation=APPROVE_PAYROLL, payload__payroll=payroll.pk,
                                      status=RequestStatus.PENDING).exists():
        raise ValidationError(f"{payroll} is already waiting for a decision.")
    lines = Payroll.objects.filter(pk=payroll.pk).get().lines
    flagged = selectors.over_limit(payroll.totals.all())
    diff = selectors.payroll_diff(payroll)
    left_out = payroll.left_out_text
    counts = {"Lines": payroll.line_count, f"Total ({payroll.currency})": money(payroll.total),
              **({"Left out (no line)": left_out} if left_out else {}),
              "Lines above the transaction limit": flagged["count"],
              f"Their total ({payroll.currency})": money(flagged["total"])}
    if diff["previous"] is not None:
        counts.update({f"New since {diff['previous']}": diff["new"], "Removed": diff["removed"],
                       "Changed amount": diff["changed"]})
    sample = [{"id": line.pk, "name": f"{line.code}: {line.recipient} {money(line.amount, payroll.currency)}"}
              for line in lines.select_related("recipient").order_by("beneficiary_id")[:SAMPLE_SIZE]]
    return Prepared(
        payload={"payroll": payroll.pk},
        summary={"title": f"Approve payroll {payroll} for payment: {lines_text(payroll.line_count)}, "
                          f"{money(payroll.total, payroll.currency)}" + (f"; {left_out}" if left_out else ""),
                 "diff": [], "sensitive": [], "counts": counts, "sample": sample,
                 "seal": payroll.seal_hash, "total_shown": money(payroll.total, payroll.currency)},
        total=payroll.total,
        # As it waits for this decision: services.payroll_submit moves it to PENDING_APPROVAL with the request.
        version=f"{PayrollStatus.PENDING_APPROVAL}:{payroll.seal_hash[:40]}",
    )


def payroll_version(payload):
    """The payroll as sealed and waiting: anything else (rejected, approved meanwhile) voids the request."""
    payroll = Payroll.objects.filter(pk=payload.get("payroll")).first()
    return f"{payroll.status}:{payroll.seal_hash[:40]}" if payroll else "gone"  # fits the request's 64 characters


def execute_approve_payroll(payload, maker):
    # payroll_approve checks again, under its locks, that the benefit plan is still active: closed
    # while the checkers decided, the request fails saying so and the payroll is to discard.
    payroll = services.payroll_approve(payroll=_payroll(payload), by=maker)
    return {"payroll": payroll.pk, "status": payroll.status}


APPROVE = register(Operation(name=APPROVE_PAYROLL, label="Approve a payroll for payment",
                             prepare=prepare_approve_payroll, execute=execute_approve_payroll,
                             version=payroll_version, default_requires_approval=True, carries_total=True))


# --- payment plan changes -----------------------------------------------------------------------

def _payment_plan(payload):
    payment_plan = PaymentPlan.objects.filter(pk=payload.get("payment_plan")).first()
    if payment_plan is None:
        raise PermissionDenied(f"No payment plan with id {payload.get('payment_plan')}.")
    return payment_plan


def prepare_change_plan(payload, by):
    payment_plan = _payment_plan(payload)
    if not by.has_perm("payments.change_paymentplan"):
        raise PermissionDenied("You may not change payment plans.")
    fields = selectors.plan_fields_from_json(payload["fields"])
    cleaned = services.payment_plan_clean({**{n: getattr(payment_plan, n) for n in services.PLAN_FIELDS}, **fields})
    # Refused now, not after the checkers approve it (the change would then fail on the constraint).
    if PaymentPlan.objects.filter(code=cleaned["code"]).exclude(pk=payment_plan.pk).exists():
        raise ValidationError({"code": [f"A payment plan with the code {cleaned['code']} exists already."]})
    diff = services.payment_plan_diff(payment_plan, cleaned)
    return Prepared(payload={"payment_plan": payment_plan.pk, "fields": selectors.plan_fields_to_json(cleaned)},
                    summary={"title": f"Change payment plan {payment_plan}", "diff": diff, "sensitive": []},
                    version=services.payment_plan_version(payment_plan))


def execute_change_plan(payload, maker):
    payment_plan = services.payment_plan_change(payment_plan=_payment_plan(payload),
                                                fields=selectors.plan_fields_from_json(payload["fields"]), by=maker)
    return {"payment_plan": payment_plan.pk}


def change_plan_version(payload):
    return services.payment_plan_version(PaymentPlan.objects.filter(pk=payload.get("payment_plan")).first())


CHANGE = register(Operation(name=CHANGE_PLAN, label="Change a payment plan (formula, ceiling, limits)",
                            prepare=prepare_change_plan, execute=execute_change_plan, version=change_plan_version,
                            default_requires_approval=True))


# --- lines above the transaction limit ----------------------------------------------------------

RELEASE_OVER_LIMIT = "payments.release_over_limit"


def prepare_release_over_limit(payload, by):
    payroll = _payroll(payload)
    if not by.has_perm("payments.change_payroll"):
        raise PermissionDenied("You may not submit payrolls for approval.")
    if payroll.status not in (*UNDECIDED_STATUSES, PayrollStatus.APPROVED):
        raise ValidationError(f"{payroll} {payroll.status_phrase}: nothing can be released.")
    if payroll.over_limit_released_at is not None:
        raise ValidationError(f"The over-limit lines of {payroll} are released already.")
    if ApprovalRequest.objects.filter(operation=RELEASE_OVER_LIMIT, payload__payroll=payroll.pk,
                                      status=RequestStatus.PENDING).exists():
        raise ValidationError(f"The over-limit lines of {payroll} are already waiting for a decision.")
    lines = payroll.lines.filter(flagged_over_limit=True)
    flagged = selectors.over_limit(payroll.totals.all())
    if not flagged["count"]:
        raise ValidationError(f"{payroll} has no line above the transaction limit.")
    limit = payroll.parameters.get("limit")
    sample = [{"id": line.pk, "name": f"{line.code}: {line.recipient} {money(line.amount, payroll.currency)}"}
              for line in lines.select_related("recipient").order_by("-amount", "beneficiary_id")[:SAMPLE_SIZE]]
    counted = lines_text(flagged["count"])
    return Prepared(
        payload={"payroll": payroll.pk},
        summary={"title": f"Pay the {counted} of {payroll} above the transaction limit "
                          f"({money(limit, payroll.currency)}): {money(flagged['total'], payroll.currency)}",
                 "diff": [], "sensitive": [], "sample": sample,
                 "counts": {"Lines above the limit": flagged["count"],
                            f"Their total ({payroll.currency})": money(flagged["total"]),
                            f"Limit per transaction ({payroll.currency})": money(limit),
                            "Payroll status": payroll.get_status_display()},
                 "total_shown": money(flagged["total"], payroll.currency)},
        total=flagged["total"],
        version=release_over_limit_version(payload),
    )


def release_over_limit_version(payload):
    """The sealed lines, not yet released, of a payroll that can still be paid (its own approval may
    come meanwhile: that does not void this request)."""
    payroll = Payroll.objects.filter(pk=payload.get("payroll")).first()
    if payroll is None:
        return "gone"
    payable = "payable" if payroll.status in (*UNDECIDED_STATUSES, PayrollStatus.APPROVED) else "dead"
    released = "released" if payroll.over_limit_released_at else "held"
    return f"{payable}:{released}:{payroll.seal_hash[:40]}"


def execute_release_over_limit(payload, maker):
    payroll = services.payroll_release_over_limit(payroll=_payroll(payload), by=maker)
    return {"payroll": payroll.pk, "released": payroll.over_limit_released_at.isoformat()}


RELEASE = register(Operation(name=RELEASE_OVER_LIMIT, label="Pay a payroll's lines above the transaction limit",
                             prepare=prepare_release_over_limit, execute=execute_release_over_limit,
                             version=release_over_limit_version, default_requires_approval=True, carries_total=True))


# --- closing a payroll -------------------------------------------------------------------------------

CLOSE_PAYROLL = "payments.close_payroll"


def prepare_close_payroll(payload, by):
    from . import reconciliation

    payroll = _payroll(payload)
    if not by.has_perm(reconciliation.PERMISSION):
        raise PermissionDenied("You may not close payrolls.")
    if payroll.status != PayrollStatus.APPROVED:
        raise ValidationError(f"{payroll} {payroll.status_phrase}: only an approved payroll is closed.")
    if ApprovalRequest.objects.filter(operation=CLOSE_PAYROLL, payload__payroll=payroll.pk,
                                      status=RequestStatus.PENDING).exists():
        raise ValidationError(f"The closing of {payroll} is already waiting for a decision.")
    services.refuse_close_while_importing(payroll)
    mark_due_unpaid = bool(payload.get("mark_due_unpaid"))
    totals = reconciliation.payroll_totals(payroll)
    due, due_amount = totals["DUE"]
    if due and not mark_due_unpaid:
        raise ValidationError(f"{lines_text(due)} of {payroll} {'is' if due == 1 else 'are'} still due "
                              f"({money(due_amount, payroll.currency)}): "
                              "reconcile them first, or close the payroll marking them unpaid.")
    currency = payroll.currency
    counts = {}
    words = {**LINE_STATUS_WORDS, "UNPAID": f"{LINE_STATUS_WORDS['UNPAID']}, left for a follow-up payroll",
             "DUE": f"{LINE_STATUS_WORDS['DUE']}, marked failed (unpaid) on closing"}
    for status, label in ((status, words[status]) for status in ("PAID", "UNPAID", "DUE", "CANCELLED")):
        lines, amount = totals[status]
        if lines or status in ("PAID", "UNPAID"):
            counts[f"{label}: lines"] = lines
            counts[f"{label}: total ({currency})"] = money(amount)
    due_lines = payroll.lines.filter(status="DUE").select_related("recipient").order_by("pk")[:SAMPLE_SIZE]
    return Prepared(
        payload={"payroll": payroll.pk, "mark_due_unpaid": mark_due_unpaid},
        summary={"title": f"Close payroll {payroll} (reconciled): {lines_text(sum(n for n, _ in totals.values()))}, "
                          f"paid {totals['PAID'][0]:,}, failed (unpaid) {totals['UNPAID'][0]:,}"
                          + (f", still due {due:,} (marked failed on closing)" if due else ""),
                 "diff": [], "sensitive": [], "counts": counts,
                 "sample": [{"id": line.pk, "name": f"{line.code}: {line.recipient} {money(line.amount, currency)} (due)"}
                            for line in due_lines],
                 "total_shown": money(totals["PAID"][1], currency)},
        total=totals["PAID"][1],
        version=close_payroll_version(payload),
    )


def close_payroll_version(payload):
    """The payroll approved, with the line counts the checker saw: a reconciliation meanwhile voids the
    request (the checker decided on other numbers)."""
    from . import reconciliation

    payroll = Payroll.objects.filter(pk=payload.get("payroll")).first()
    if payroll is None:
        return "gone"
    totals = reconciliation.payroll_totals(payroll)
    return f"{payroll.status}:" + ":".join(str(totals[status][0]) for status in ("PAID", "UNPAID", "DUE"))


def execute_close_payroll(payload, maker):
    payroll = services.payroll_close(payroll=_payroll(payload), mark_due_unpaid=payload.get("mark_due_unpaid", False),
                                     by=maker)
    return {"payroll": payroll.pk, "status": payroll.status}


CLOSE = register(Operation(name=CLOSE_PAYROLL, label="Close a payroll (reconciled)", prepare=prepare_close_payroll,
                           execute=execute_close_payroll, version=close_payroll_version,
                           default_requires_approval=True, carries_total=True))
