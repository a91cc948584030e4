"""A payroll's lines summarised once, so that its screens never add up a million lines on each view.

- Totals (PayrollTotal): lines and amount per location, status and over-limit flag, written when the
  payroll is sealed and moved in the same statement as the lines' statuses (`moved`: every
  reconciliation writer goes through it).
- Changes (PayrollChange): new, removed and changed-amount beneficiaries against the previous
  cycle's payroll, per location, counted when the payroll is sealed, and again when that previous
  payroll changes (an earlier cycle sealed later, the previous one rejected)."""

from collections import defaultdict
from decimal import Decimal

from django.db import connection
from django.utils import timezone

from .models import ChangeKind, LineStatus, PaymentLine, Payroll, PayrollChange, PayrollTotal
from .selectors import previous_payroll


def _tables():
    quote = connection.ops.quote_name
    return (quote(PaymentLine._meta.db_table), quote(PayrollTotal._meta.db_table),
            quote(PayrollChange._meta.db_table))


def count_lines(payroll):
    """The payroll's totals from its lines, a row for every status (zero where no line is yet)."""
    lines, totals, _ = _tables()
    statuses = " UNION ALL ".join(["SELECT %s AS status"] * len(LineStatus.values))
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {totals} WHERE payroll_id = %s", [payroll.pk])
        cursor.execute(
            f"INSERT INTO {totals} (payroll_id, location_id, status, flagged_over_limit, lines, amount) "
            f"SELECT %s, g.location_id, s.status, g.flagged, "
            f"SUM(CASE WHEN g.status = s.status THEN g.lines ELSE 0 END), "
            f"SUM(CASE WHEN g.status = s.status THEN g.amount ELSE 0 END) "
            f"FROM (SELECT location_id, flagged_over_limit AS flagged, status, COUNT(*) AS lines, SUM(amount) AS amount "
            f"FROM {lines} WHERE payroll_id = %s GROUP BY location_id, flagged_over_limit, status) g "
            f"CROSS JOIN ({statuses}) s GROUP BY g.location_id, g.flagged, s.status",
            [payroll.pk, payroll.pk, *LineStatus.values])


def moved(cursor, payroll, update_sql, params):
    """Run `update_sql`, an UPDATE of `payroll`'s lines from DUE to another status that RETURNs
    (location_id, flagged_over_limit, status, amount), and move the totals with it, in the caller's
    transaction. Returns {status: (lines, amount)} of what moved."""
    if connection.vendor == "postgresql":  # grouped in SQL: a file's chunk moves thousands of lines
        cursor.execute(f"WITH changed AS ({update_sql}) SELECT location_id, flagged_over_limit, status, COUNT(*), "
                       f"SUM(amount) FROM changed GROUP BY location_id, flagged_over_limit, status", params)
        groups = cursor.fetchall()
    else:
        cursor.execute(update_sql, params)
        groups = [(location_id, flagged, status, 1, amount) for location_id, flagged, status, amount in cursor.fetchall()]
    delta = defaultdict(lambda: [0, Decimal(0)])
    by_status = defaultdict(lambda: [0, Decimal(0)])
    for location_id, flagged, status, lines, amount in groups:
        amount = Decimal(str(amount))
        for key, sign in (((location_id, bool(flagged), status), 1), ((location_id, bool(flagged), LineStatus.DUE), -1)):
            delta[key][0] += sign * lines
            delta[key][1] += sign * amount
        by_status[status][0] += lines
        by_status[status][1] += amount
    if delta:
        _move_totals(cursor, payroll, delta)
    return {status: tuple(values) for status, values in by_status.items()}


def _move_totals(cursor, payroll, delta):
    """Apply `delta` to the payroll's totals, row by row in one order in every transaction (sorted
    keys, placed ones first): a file's chunks, applying at once on several connections, then wait for
    each other instead of deadlocking. Rows found missing (totals of a payroll sealed while they were
    not kept yet) are made good by counting the payroll's lines again."""
    _, totals, _ = _tables()
    update = (f"UPDATE {totals} SET lines = lines + %s, amount = amount + CAST(%s AS NUMERIC) "
              f"WHERE payroll_id = %s AND status = %s AND flagged_over_limit = %s AND location_id ")
    updated = 0
    for placed in (True, False):  # NULL needs IS NULL
        rows = [(lines, str(amount), payroll.pk, status, flagged, *([location_id] if placed else []))
                for (location_id, flagged, status), (lines, amount) in sorted(delta.items(), key=str)
                if (location_id is not None) == placed]
        if rows:
            cursor.executemany(update + ("= %s" if placed else "IS NULL"), rows)
            updated += cursor.rowcount
    if updated < len(delta):
        count_lines(payroll)


def compare(payroll):
    """Count the payroll's changes against the previous cycle's payroll: one FULL JOIN of the two
    payrolls' lines on the beneficiary (three anti-joins and a join took three times as long at a
    million lines: an INSERT runs its SELECT without parallel workers), grouped by kind and location.
    Returns the previous payroll."""
    previous = previous_payroll(payroll)
    lines, _, changes = _tables()
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {changes} WHERE payroll_id = %s", [payroll.pk])
        if previous is not None:
            cursor.execute(
                f"INSERT INTO {changes} (payroll_id, location_id, kind, lines, amount, previous_amount) "
                f"SELECT %s, location_id, kind, COUNT(*), COALESCE(SUM(amount), 0), COALESCE(SUM(previous_amount), 0) "
                f"FROM (SELECT CASE WHEN p.id IS NULL THEN %s WHEN c.id IS NULL THEN %s ELSE %s END AS kind, "
                f"CASE WHEN c.id IS NULL THEN p.location_id ELSE c.location_id END AS location_id, "
                f"c.amount AS amount, p.amount AS previous_amount "
                f"FROM (SELECT id, beneficiary_id, location_id, amount FROM {lines} WHERE payroll_id = %s) c "
                f"FULL JOIN (SELECT id, beneficiary_id, location_id, amount FROM {lines} WHERE payroll_id = %s) p "
                f"ON p.beneficiary_id = c.beneficiary_id "
                f"WHERE c.id IS NULL OR p.id IS NULL OR c.amount <> p.amount) changed GROUP BY kind, location_id",
                [payroll.pk, ChangeKind.NEW, ChangeKind.REMOVED, ChangeKind.CHANGED, payroll.pk, previous.pk])
    now = timezone.now()
    Payroll.objects.filter(pk=payroll.pk).update(compared_with=previous, compared_at=now)
    payroll.compared_with, payroll.compared_at = previous, now
    return previous
