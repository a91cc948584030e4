"""Reconciliation: what a payment provider says it paid, applied to an approved payroll's lines.

One engine for the two ways results arrive: a file through the bulk pipeline (the importer in
schemes.bulk.reconciliation only reads the file's cells) and batches through the provider API
(`reconcile_batch`). Both
1. stage their rows in StagedReconciliation (`stage_rows`: each row read on its own: the line code,
   Paid, the receipt, an optional paid date, and the amount it says, if any), keyed
   by the upload, or for a batch by a transient negative key;
2. check them set-based (`check`: first the rows whose line the user, or the provider, may not see,
   which are told nothing more; then one pass joining the rest to the payroll's lines, plus a look
   for lines twice), with openIMIS's error codes: benefit_consumption_not_found,
   benefit_consumption_not_in_payroll, paid_column_invalid_value, receipt_required,
   status_not_matching, plus a line twice in the rows, a line outside the user's locations, an
   amount other than the line's, and a paid date before the payroll was approved for payment. A
   good row either moves a DUE line (to PAID or UNPAID) or changes nothing (the line is so already:
   paid with the same receipt, or unpaid), which makes the same file or batch twice a no-op;
3. apply them (`apply`): one UPDATE ... FROM staging per span of rows, along the
   transitions DUE -> PAID (receipt, paid date: the row's, else the day it is applied) and DUE ->
   UNPAID (the line stays for a follow-up payroll); a line no longer DUE is left as it is (a batch
   locks its lines before its check, so this does not happen to it; a file's skipped rows are
   counted in its audit). Only while the payroll is APPROVED, checked under a share lock on the
   payroll (closing it takes an exclusive one).

A sealed payroll's lines are otherwise frozen: the model and querysets refuse every change, and on
PostgreSQL the line triggers (payments migration 0005) let only these statements through: the
transaction-local setting `mizani.reconciliation` names the payroll, which must be approved, and only
those transitions pass.
"""

import datetime
import re
import secrets
from collections import namedtuple
from contextlib import contextmanager
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Count, Exists, Max, Min, OuterRef, Q, Sum
from django.utils import timezone

from schemes.bulk.individuals import flag, parse_date
from schemes.bulk.models import StagedError, StagedReconciliation
from schemes.bulk.staging import StagingWriter
from schemes.bulk.staging import analyze as analyze_tables
from sites.audit import audit
from sites.fields import ascii_digits
from sites.refusals import require_permission
from sites.scoping import scope_for

from . import summaries
from .models import CENT, MAX_AMOUNT, LineStatus, PaymentLine, Payroll, PayrollStatus
from .templatetags.payments_money import money as money_text

PERMISSION = "payments.reconcile_payroll"

# The openIMIS reconciliation template, exact header text (our export leaves Receipt and Paid blank).
HEADERS = ["Payroll Name", "Payroll Status", "First Name", "Last Name", "Date of Birth", "Code", "Status", "Amount",
           "Type", "Receipt", "Paid"]
PAID_DATE_HEADER = "Paid Date"  # optional: the day each line was paid (else the day the file is imported)

# Error codes (openIMIS's first five).
NOT_FOUND = "benefit_consumption_not_found"
NOT_IN_PAYROLL = "benefit_consumption_not_in_payroll"
PAID_INVALID = "paid_column_invalid_value"
RECEIPT_REQUIRED = "receipt_required"
STATUS_NOT_MATCHING = "status_not_matching"
DUPLICATED = "benefit_consumption_duplicated"
OUTSIDE_LOCATIONS = "benefit_consumption_outside_locations"
RECEIPT_INVALID = "receipt_invalid"
PAID_DATE_INVALID = "paid_date_invalid"
AMOUNT_INVALID = "amount_invalid"
AMOUNT_NOT_MATCHING = "amount_not_matching"

PAID, UNPAID = LineStatus.PAID.value, LineStatus.UNPAID.value
PAID_VALUES = {"yes": True, "y": True, "true": True, "no": False, "n": False, "false": False}
PAID_AS_EXPORTED = {"Yes": True, "No": False}  # the common case, looked up before normalising
RECEIPT_MAX = PaymentLine._meta.get_field("receipt").max_length
STAGED_FIELDS = ("upload", "row_number", "valid", "code", "line_id", "paid", "receipt", "paid_on", "said_amount")
ERROR_FIELDS = ("upload", "row_number", "column", "message", "code")
AMOUNT_TEXT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
AMOUNT_AS_EXPORTED = re.compile(r"[0-9]{1,16}\.[0-9]{2}")  # the export's "800.00", taken as it is

# What each field is called where it comes from: the file's headers, or the API's keys.
Names = namedtuple("Names", "code paid receipt paid_on amount")
FILE_NAMES = Names("Code", "Paid", "Receipt", PAID_DATE_HEADER, "Amount")
API_NAMES = Names("code", "paid", "receipt", "paid_on", "amount")
_Key = namedtuple("_Key", "pk")  # the staging key as the shared flag() helper takes it


class RowReader:
    """Reads one row's values on its own (no database): what `stage_rows` writes, and the row's
    problems as (column, code, message)."""

    def __init__(self, names, today):
        self.names = names
        self.today = today

    def __call__(self, code, paid, receipt, paid_on, amount, found):
        names = self.names
        code = code.strip() if isinstance(code, str) else ""
        line_id = PaymentLine.pk_from_code(code)
        if not code:
            found.append((names.code, NOT_FOUND, "Required: the payment line's code."))
        elif line_id is None or line_id > 2**62:
            found.append((names.code, NOT_FOUND, f"'{code[:40]}' is not the code of a payment line."))
            line_id = None
        if isinstance(paid, str):
            paid = PAID_AS_EXPORTED.get(paid, paid)
            if isinstance(paid, str):
                paid = PAID_VALUES.get(paid.strip().casefold())
        if not isinstance(paid, bool):
            found.append((names.paid, PAID_INVALID, "Paid must be Yes or No."))
            paid = None
        receipt = receipt.strip() if isinstance(receipt, str) else ""
        if len(receipt) > RECEIPT_MAX:
            found.append((names.receipt, RECEIPT_INVALID, f"At most {RECEIPT_MAX} characters ({len(receipt)})."))
            receipt = ""
        elif paid and not receipt:
            found.append((names.receipt, RECEIPT_REQUIRED, "A paid line needs its receipt."))
        paid_on = self._date(paid_on, found) if paid_on else None
        return code[:100], line_id, paid, receipt, paid_on, self._amount(amount, found)

    def _amount(self, value, found):
        """The amount the row says the line was paid, or None when it says none (the column is
        optional); checked against the line's amount with the payroll (`check`)."""
        if value is None or value == "":
            return None
        if isinstance(value, Decimal) and value.is_finite():
            text = format(value, "f")
        elif isinstance(value, str | int) and not isinstance(value, bool):
            text = ascii_digits(str(value).strip())
            if not text:
                return None
        else:
            found.append((self.names.amount, AMOUNT_INVALID, "Give the amount as text, like 1234.50."))
            return None
        shown = text[:40]
        if not AMOUNT_TEXT.fullmatch(text):
            problem = f"'{shown}' is not an amount: digits and a dot, like 1234.50."
        elif text.startswith("-"):
            problem = f"{shown} is negative: give the amount paid."
        elif Decimal(text).as_tuple().exponent < -2:
            problem = f"{shown} has more than two decimals."
        elif Decimal(text) > MAX_AMOUNT:
            problem = f"{shown} is above the largest amount a line holds ({money_text(MAX_AMOUNT)})."
        else:
            return Decimal(text)
        found.append((self.names.amount, AMOUNT_INVALID, problem))
        return None

    def _date(self, value, found):
        if value is None or value == "":
            return None
        try:
            if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
                if value > self.today:
                    raise ValueError(f"{value.isoformat()} is in the future.")
                return value
            if isinstance(value, str):
                return parse_date(value.strip(), self.today)
            raise ValueError("Not a date as YYYY-MM-DD.")
        except ValueError as error:
            found.append((self.names.paid_on, PAID_DATE_INVALID, str(error)))
            return None


def stage_rows(key, rows, names):
    """Stage `rows` ((row_number, code, paid, receipt, paid_on, amount, problem) with problem a
    (column, message) or None) under `key`. Returns how many."""
    read = RowReader(names, timezone.localdate())
    count = 0
    prefix = PaymentLine.CODE_PREFIX
    digits_from, width = len(prefix), len(prefix) + 9
    with StagingWriter(StagedReconciliation, STAGED_FIELDS, streaming=True) as staged, \
            StagingWriter(StagedError, ERROR_FIELDS) as errors:
        for row_number, code, paid, receipt, paid_on, amount, problem in rows:
            count += 1
            # The common row, as the export wrote it and the provider filled it in, without the general
            # reader's normalising (a third of the time of a million rows).
            said = PAID_AS_EXPORTED.get(paid) if paid.__class__ is str else None
            if (said is not None and problem is None and not paid_on and code.__class__ is str
                    and receipt.__class__ is str and len(code) == width and code.startswith(prefix)
                    and code[digits_from:].isdigit() and code.isascii() and (receipt or not said)
                    and len(receipt) <= RECEIPT_MAX and receipt.strip() == receipt
                    and amount.__class__ is str and (not amount or AMOUNT_AS_EXPORTED.fullmatch(amount))):
                staged.write((key, row_number, True, code, int(code[digits_from:]), said, receipt, None, amount or None))
                continue
            found = [(problem[0], "", problem[1])] if problem else []
            staged.write((key, row_number, not found, *read(code, paid, receipt, paid_on, amount, found)))
            for column, error_code, message in found:
                errors.write((key, row_number, column, message, error_code))
    return count


# --- the check: the whole set at once --------------------------------------------------------------


def _provider_lines(provider, payroll):
    """Lines under the provider's payment points' locations that were sent to it (a provider sees only
    those: not the lines above the transaction limit that were never released)."""
    paths = list(provider.points.values_list("location__path", flat=True))
    if not paths:
        return PaymentLine.objects.none()
    where = Q()
    for path in paths:
        where |= Q(location__path__startswith=path)
    lines = PaymentLine.objects.filter(where)
    if payroll.over_limit_released_at is None:
        lines = lines.exclude(payroll_id=payroll.pk, flagged_over_limit=True)
    return lines


def check(key, payroll, user, *, names, provider=None, analyze=True):
    """Every row that cannot be applied gets its errors (StagedError, with their codes) and is marked
    invalid. First the rows whose line the user (or the provider) may not see: they are told only that
    (outside your locations, or not found) and left out of every other check, which would tell
    something of the line. Then one pass joins the rest to the payroll's lines (an unmatched row's line
    is then looked up by id, to tell a code of no line from a line of another payroll). `analyze`:
    refresh the staging table's statistics first (a file's million rows; not worth it for a batch)."""
    quote = connection.ops.quote_name
    staged_table = quote(StagedReconciliation._meta.db_table)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            if analyze:
                cursor.execute(f"ANALYZE {staged_table}")
            # The joins hash a million rows: in memory, in one batch.
            cursor.execute("SET LOCAL work_mem = '256MB'")
    target = _Key(key)
    staged = StagedReconciliation.objects.filter(upload_id=key)
    coded = staged.filter(line_id__isnull=False)
    if provider is not None:
        flag(target, names.code, "None of your payment points' lines has this code.",
             coded.exclude(Exists(_provider_lines(provider, payroll).filter(pk=OuterRef("line_id")))),
             StagedReconciliation, code=NOT_FOUND, mark_invalid=False)
    scope = scope_for(user)
    if not scope.national:
        # A line exists and is not in the user's locations (one probe per row: lines without a
        # location included, which only national users see).
        outside = coded.filter(Exists(PaymentLine.objects.filter(pk=OuterRef("line_id")).exclude(scope.q("location"))))
        if provider is not None:  # not found already: a second error would tell that the line exists
            outside = outside.exclude(Exists(StagedError.objects.filter(
                upload_id=key, row_number=OuterRef("row_number"), code=NOT_FOUND)))
        flag(target, names.code, "This line is outside your locations.", outside, StagedReconciliation,
             code=OUTSIDE_LOCATIONS, mark_invalid=False)
    _flag_line_problems(key, payroll, names)
    if payroll.decided_at is not None:
        approved_on = timezone.localdate(payroll.decided_at)
        flag(target, names.paid_on, f"This is before payroll {payroll} was approved for payment "
             f"({approved_on.isoformat()}): a line is paid on that day or later.",
             staged.filter(paid_on__lt=approved_on), StagedReconciliation, code=PAID_DATE_INVALID,
             mark_invalid=False)
    repeated = coded.values("line_id").annotate(n=Count("pk")).filter(n__gt=1).values("line_id")
    if repeated.exists():  # the aggregate alone, before joining it back to a million rows
        flag(target, names.code, "This line is on more than one row.", coded.filter(line_id__in=repeated),
             StagedReconciliation, code=DUPLICATED, mark_invalid=False)
    if analyze:  # the planner must know this file's errors (a million when the file is another region's)
        analyze_tables([StagedError])
    with connection.cursor() as cursor:  # every row with an error, flagged above, in one statement
        cursor.execute(f"UPDATE {staged_table} SET valid = false WHERE upload_id = %s AND valid AND row_number IN ("
                       f"SELECT row_number FROM {quote(StagedError._meta.db_table)} WHERE upload_id = %s)", [key, key])


# Why a row's line refuses it: (problem, column, code, message); the column is a Names field.
LINE_PROBLEMS = (
    ("missing", "code", NOT_FOUND, "No payment line has this code."),
    ("elsewhere", "code", NOT_IN_PAYROLL, "This line is not in payroll {payroll}."),
    ("other_receipt", "paid", STATUS_NOT_MATCHING, "This line is paid already, with another receipt."),
    ("paid_already", "paid", STATUS_NOT_MATCHING, "This line is paid already: it cannot become unpaid."),
    ("unpaid_before", "paid", STATUS_NOT_MATCHING,
     "This line was reported unpaid: it is paid by a follow-up payroll, not here."),
    ("cancelled", "paid", STATUS_NOT_MATCHING, "This line is cancelled."),
    ("held", "paid", STATUS_NOT_MATCHING, "This line is above the transaction limit and was not released for "
     "payment: it was not sent for payment, and nothing here changes it."),
)


def _flag_line_problems(key, payroll, names):
    """One INSERT ... SELECT of the errors that the rows' lines (their payroll, their status now, their
    amount) give: a row may have two, its line's status and an amount other than the line's (the
    provider paid another amount, or the code names another line: both amounts in the message).
    Rows already not found (among the provider's lines) or outside the user's locations are left out:
    nothing more of their line is told."""
    quote = connection.ops.quote_name
    staged, lines = quote(StagedReconciliation._meta.db_table), quote(PaymentLine._meta.db_table)
    errors = quote(StagedError._meta.db_table)
    problems = [(problem, getattr(names, column), code, message.format(payroll=payroll))
                for problem, column, code, message in LINE_PROBLEMS]
    released = payroll.over_limit_released_at is not None
    due, paid, unpaid = LineStatus.DUE, LineStatus.PAID, LineStatus.UNPAID
    # A held line (above the limit, not released) was never sent: no row changes it, Paid Yes or No.
    which = (f"CASE WHEN l.id IS NULL THEN CASE WHEN EXISTS (SELECT 1 FROM {lines} x WHERE x.id = s.line_id) "
             f"THEN 'elsewhere' ELSE 'missing' END "
             f"WHEN s.paid IS NULL THEN NULL "
             f"WHEN l.status = '{due}' AND l.flagged_over_limit AND NOT %s THEN 'held' "
             f"WHEN s.paid AND l.status = '{due}' THEN NULL "
             f"WHEN s.paid AND l.status = '{paid}' THEN CASE WHEN l.receipt <> s.receipt THEN 'other_receipt' END "
             f"WHEN NOT s.paid AND l.status IN ('{due}', '{unpaid}') THEN NULL "
             f"WHEN NOT s.paid AND l.status = '{paid}' THEN 'paid_already' "
             f"WHEN s.paid AND l.status = '{unpaid}' THEN 'unpaid_before' ELSE 'cancelled' END")
    text = "CAST(%s AS TEXT)"
    other_amount = (f"CASE WHEN s.said_amount <> l.amount THEN {text} || {_money_text('s.said_amount')} || {text} "
                    f"|| {_money_text('l.amount')} || {text} END")
    other_amount_params = ["This row says ", "; the line's amount is ", f" {payroll.currency}."]
    not_seen = (f"AND NOT EXISTS (SELECT 1 FROM {errors} e WHERE e.upload_id = s.upload_id "
                f"AND e.row_number = s.row_number AND e.code IN ('{NOT_FOUND}', '{OUTSIDE_LOCATIONS}'))")
    labels = [*problems, ("other_amount", names.amount, AMOUNT_NOT_MATCHING, None)]
    outputs, output_params = [], []
    for position, choices in ((1, labels), (2, labels), (3, problems)):  # column, code, message
        outputs.append("CASE picked.problem " + " ".join(["WHEN %s THEN %s"] * len(choices)) + " END")
        output_params += [value for choice in choices for value in (choice[0], choice[position])]
    column, code, message = outputs
    with connection.cursor() as cursor:
        # The rows with a problem, found in one pass (materialized: read twice below, computed once).
        cursor.execute(
            f"WITH found AS MATERIALIZED (SELECT * FROM ("
            f"SELECT s.row_number, {which} AS problem, {other_amount} AS other_amount FROM {staged} s "
            f"LEFT JOIN {lines} l ON l.id = s.line_id AND l.payroll_id = %s "
            f"WHERE s.upload_id = %s AND s.line_id IS NOT NULL {not_seen}) checked "
            f"WHERE checked.problem IS NOT NULL OR checked.other_amount IS NOT NULL) "
            f"INSERT INTO {errors} (upload_id, row_number, {quote('column')}, code, message) "
            f"SELECT %s, picked.row_number, {column}, {code}, COALESCE(picked.other_amount, {message}) FROM ("
            f"SELECT row_number, problem, NULL AS other_amount FROM found WHERE problem IS NOT NULL UNION ALL "
            f"SELECT row_number, 'other_amount', other_amount FROM found WHERE other_amount IS NOT NULL) picked",
            [released, *other_amount_params, payroll.pk, key, key, *output_params])


def _money_text(column):
    """An amount column as text as the `money` filter shows it: thousands separated, two decimals
    ("1,800.00"). The amounts compared are never negative (a negative one is a row error first)."""
    if connection.vendor == "postgresql":
        return f"to_char({column}, 'FM9,999,999,999,999,990.00')"
    cents = f"CAST(round({column} * 100) AS INTEGER)"
    return f"printf('%%,d.%%02d', {cents} / 100, {cents} %% 100)"


def counts(key, payroll):
    """rows, valid, errors, and what applying does: lines paid, unpaid, unchanged, and the amounts
    (one pass joining the rows to the payroll's lines)."""
    quote = connection.ops.quote_name
    staged, lines = quote(StagedReconciliation._meta.db_table), quote(PaymentLine._meta.db_table)
    due = LineStatus.DUE
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT COUNT(*), COUNT(*) FILTER (WHERE s.valid), "
            f"COUNT(*) FILTER (WHERE s.valid AND s.paid AND l.status = '{due}'), "
            f"SUM(l.amount) FILTER (WHERE s.valid AND s.paid AND l.status = '{due}'), "
            f"COUNT(*) FILTER (WHERE s.valid AND NOT s.paid AND l.status = '{due}'), "
            f"SUM(l.amount) FILTER (WHERE s.valid AND NOT s.paid AND l.status = '{due}') "
            f"FROM {staged} s LEFT JOIN {lines} l ON l.id = s.line_id AND l.payroll_id = %s WHERE s.upload_id = %s",
            [payroll.pk, key])
        rows, valid, paid, paid_amount, unpaid, unpaid_amount = cursor.fetchone()
    return {"rows": rows, "valid": valid, "errors": rows - valid, "paid": paid, "unpaid": unpaid,
            "unchanged": valid - paid - unpaid, "paid_amount": money(paid_amount),
            "unpaid_amount": money(unpaid_amount)}


def money(value):
    return format(Decimal(value or 0).quantize(CENT), "f")


def row_span(key):
    bounds = StagedReconciliation.objects.filter(upload_id=key, valid=True).aggregate(
        first=Min("row_number"), last=Max("row_number"))
    return None if bounds["first"] is None else (bounds["first"], bounds["last"])


# --- applying ----------------------------------------------------------------------------------------


def lock_approved(payroll):
    """The payroll, re-read under a share lock (several spans may apply at once; closing waits for
    them), refused unless approved."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT 1 FROM {connection.ops.quote_name(Payroll._meta.db_table)} WHERE id = %s "
                           "FOR SHARE", [payroll.pk])
    payroll = Payroll.objects.get(pk=payroll.pk)
    if payroll.status != PayrollStatus.APPROVED:
        raise ValidationError(f"{payroll} {payroll.status_phrase}: only an approved payroll "
                              "is reconciled.")
    return payroll


@contextmanager
def _reconciliation_cursor(payroll):
    """A cursor whose statements the line triggers let through for `payroll`'s lines: on PostgreSQL
    the setting they read names the payroll for these statements only (local to the transaction,
    cleared after them; a rollback resets it too)."""
    postgres = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        if postgres:
            cursor.execute("SELECT set_config('mizani.reconciliation', %s, true)", [str(payroll.pk)])
        yield cursor
        if postgres:
            cursor.execute("SELECT set_config('mizani.reconciliation', '', true)")


Applied = namedtuple("Applied", "paid unpaid paid_amount unpaid_amount")


def apply(key, payroll, first_row, last_row, today=None):
    """Apply the rows first_row..last_row (inside the caller's transaction) in one UPDATE: the lines
    still DUE become PAID (receipt, date) or UNPAID; a line that moved since the check is left as it
    is (the caller compares what moved with what it planned). Returns what moved, as Applied (the
    amounts as text, as `counts` gives them)."""
    payroll = lock_approved(payroll)
    today = today or timezone.localdate()
    quote = connection.ops.quote_name
    staged, lines = quote(StagedReconciliation._meta.db_table), quote(PaymentLine._meta.db_table)
    rows = StagedReconciliation.objects.filter(upload_id=key, valid=True, row_number__range=(first_row, last_row))
    span = rows.aggregate(low=Min("line_id"), high=Max("line_id"))
    if span["low"] is None:
        return Applied(0, 0, money(0), money(0))
    # The span of line ids lets the database read only those lines (a file follows the export's order).
    update = (f"UPDATE {lines} AS l SET status = CASE WHEN s.paid THEN %s ELSE %s END, "
              f"receipt = CASE WHEN s.paid THEN s.receipt ELSE l.receipt END, "
              f"paid_on = CASE WHEN s.paid THEN COALESCE(s.paid_on, %s) ELSE l.paid_on END "
              f"FROM {staged} s WHERE s.upload_id = %s AND s.valid AND s.row_number BETWEEN %s AND %s "
              f"AND l.id = s.line_id AND l.id BETWEEN %s AND %s AND l.payroll_id = %s AND l.status = %s "
              f"RETURNING location_id, flagged_over_limit, status, amount")
    params = [PAID, UNPAID, today, key, first_row, last_row, span["low"], span["high"], payroll.pk, LineStatus.DUE]
    with _reconciliation_cursor(payroll) as cursor:
        moved = summaries.moved(cursor, payroll, update, params)
    paid, paid_amount = moved.get(PAID, (0, 0))
    unpaid, unpaid_amount = moved.get(UNPAID, (0, 0))
    return Applied(paid, unpaid, money(paid_amount), money(unpaid_amount))


def mark_due_unpaid(payroll):
    """Closing a payroll with lines still due: they become UNPAID (left for a follow-up payroll), by
    the same path as a row saying Paid = No. Returns how many. Inside the caller's transaction."""
    payroll = lock_approved(payroll)
    with _reconciliation_cursor(payroll) as cursor:
        moved = summaries.moved(
            cursor, payroll, f"UPDATE {connection.ops.quote_name(PaymentLine._meta.db_table)} SET status = %s "
            "WHERE payroll_id = %s AND status = %s RETURNING location_id, flagged_over_limit, status, amount",
            [UNPAID, payroll.pk, LineStatus.DUE])
        return moved.get(UNPAID, (0, 0))[0]


def payroll_totals(payroll):
    """{status: (lines, amount)} over all the payroll's lines (closing covers the whole payroll)."""
    rows = PaymentLine.objects.filter(payroll_id=payroll.pk).values("status").annotate(
        lines=Count("pk"), amount=Sum("amount")).order_by()
    totals = {status: (0, Decimal("0.00")) for status in LineStatus.values}
    totals.update({row["status"]: (row["lines"], Decimal(row["amount"]).quantize(CENT)) for row in rows})
    return totals


def clear(key):
    StagedReconciliation.objects.filter(upload_id=key).delete()
    StagedError.objects.filter(upload_id=key).delete()


def errors_of(key, limit=None):
    """[(row_number, column, code, message)] in row order."""
    errors = StagedError.objects.filter(upload_id=key).order_by("row_number", "pk").values_list(
        "row_number", "column", "code", "message")
    return list(errors[:limit] if limit else errors)


# --- the API's batches ------------------------------------------------------------------------------


class _LinesMoved(Exception):
    """A batch's lines moved between its check and its UPDATE: the batch is rolled back."""


def _lock_lines(key, payroll):
    """Lock the payroll's lines the batch names (in id order, as every batch does: no deadlock), so
    that no other batch moves them between this one's check and its UPDATE: a concurrent batch on the
    same lines waits, then is checked against what this one did."""
    if connection.vendor != "postgresql":
        return  # SQLite: one writer at a time already
    quote = connection.ops.quote_name
    staged, lines = quote(StagedReconciliation._meta.db_table), quote(PaymentLine._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT l.id FROM {lines} l WHERE l.payroll_id = %s AND l.id IN (SELECT s.line_id FROM "
                       f"{staged} s WHERE s.upload_id = %s) ORDER BY l.id FOR UPDATE", [payroll.pk, key])


def reconcile_batch(*, payroll, rows, by, provider=None):
    """Apply a batch of a provider's results to `payroll`: `rows` is a list of
    {"code": str, "paid": bool, "receipt": str, "paid_on": date | None, "amount": optional, the amount
    paid, which must be the line's}; row numbers are list index + 1. Checked and applied exactly as a
    file is (same staging, checks, codes and statements), in one transaction, audited. With
    `provider`, only the lines under its payment points' locations are found (others:
    benefit_consumption_not_found).

    All or nothing: if any row has an error, nothing is applied and every error is returned. Rows that
    change nothing (already paid with the same receipt, already unpaid) count as unchanged: the same
    batch twice changes nothing the second time. The batch's lines are locked before its check; should
    one move anyway before the UPDATE, the batch is rolled back and checked again (its row then
    answers status_not_matching, or unchanged).

    Returns {"paid": n, "unpaid": n, "unchanged": n, "errors": [{"row", "code", "message"}]}.
    Raises PermissionDenied without payments.reconcile_payroll, ValidationError unless the payroll is
    approved."""
    require_permission(by, PERMISSION)
    if not isinstance(rows, list | tuple) or not all(isinstance(row, dict) for row in rows):
        raise ValidationError("The rows must be a list of objects.")
    for _attempt in range(2):
        try:
            return _reconcile_batch_once(payroll, rows, by, provider)
        except _LinesMoved:
            continue
    raise ValidationError("The lines of this batch kept changing while it was applied: nothing was applied, "
                          "send it again.")


def _reconcile_batch_once(payroll, rows, by, provider):
    key = -(secrets.randbits(52) + 1)  # never an upload's id; only this transaction sees its rows
    with transaction.atomic():
        payroll = lock_approved(payroll)
        stage_rows(key, ((number, row.get("code"), row.get("paid"), row.get("receipt"), row.get("paid_on"),
                          row.get("amount"), None) for number, row in enumerate(rows, 1)), API_NAMES)
        _lock_lines(key, payroll)
        # A batch is at most a few thousand rows: the staging table's statistics are not worth
        # refreshing (ANALYZE) in every batch's transaction.
        check(key, payroll, by, names=API_NAMES, provider=provider, analyze=False)
        errors = [{"row": row, "code": code, "message": f"{column}: {message}" if column else message}
                  for row, column, code, message in errors_of(key)]
        if errors:
            clear(key)
            return {"paid": 0, "unpaid": 0, "unchanged": 0, "errors": errors}
        planned = counts(key, payroll)
        applied = apply(key, payroll, 1, len(rows)) if rows else Applied(0, 0, money(0), money(0))
        if (applied.paid, applied.unpaid) != (planned["paid"], planned["unpaid"]):
            raise _LinesMoved
        clear(key)
        result = {"paid": applied.paid, "unpaid": applied.unpaid, "unchanged": planned["unchanged"], "errors": []}
        audit(payroll, "mizani.reconcile", by=by, data={
            "source": "api", "provider": provider.code if provider else None, "rows": len(rows), **result,
            "paid_amount": applied.paid_amount, "unpaid_amount": applied.unpaid_amount})
    return result
