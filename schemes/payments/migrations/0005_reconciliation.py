from django.db import migrations

from sites.migration_operations import PostgresOnlySQL

SEALED = "payroll_sealed: a payroll that is no longer generating cannot change its lines, count, total or hash"
KEPT = "payroll_kept: payrolls and the lines of sealed payrolls are never deleted"
RECONCILED_ONLY = ("payroll_reconciliation_only: the lines of a sealed payroll move only by reconciliation, DUE to "
                   "PAID (with receipt and date) or UNPAID, while the payroll is approved")

# Reconciliation's statements run with `mizani.reconciliation` set to the id of the payroll they
# reconcile (set_config, local to the transaction, reset after them). In a session that never set it,
# current_setting(..., true) is NULL: read as '' so that every comparison below is true or false.
SETTING = "COALESCE(current_setting('mizani.reconciliation', true), '')"

# A line of a sealed payroll: never deleted; its frozen columns never change; its status, receipt and
# paid date change only as checked below.
LINE_GUARD = f"""
CREATE OR REPLACE FUNCTION payments_line_guard() RETURNS trigger AS $$
DECLARE payroll_status text;
BEGIN
    SELECT status INTO payroll_status FROM payments_payroll WHERE id = OLD.payroll_id;
    IF payroll_status IS DISTINCT FROM 'GENERATING' THEN
        IF TG_OP = 'DELETE' THEN
            RAISE EXCEPTION '{KEPT}' USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        IF (NEW.payroll_id, NEW.beneficiary_id, NEW.recipient_id, NEW.location_id, NEW.amount,
            NEW.inputs, NEW.flagged_over_limit)
           IS DISTINCT FROM (OLD.payroll_id, OLD.beneficiary_id, OLD.recipient_id, OLD.location_id,
            OLD.amount, OLD.inputs, OLD.flagged_over_limit) THEN
            RAISE EXCEPTION '{SEALED}' USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        IF (NEW.status, NEW.receipt, NEW.paid_on) IS DISTINCT FROM (OLD.status, OLD.receipt, OLD.paid_on) THEN
            RAISE EXCEPTION '{RECONCILED_ONLY}' USING ERRCODE = 'integrity_constraint_violation';
        END IF;
    END IF;
    IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql
"""
# A reconciliation row's move (the setting names the line's payroll; DUE to UNPAID, or to PAID with a
# receipt and a date; nothing frozen touched) skips the row function: evaluated by the trigger's WHEN
# clause, it costs nothing per row. Every other update goes through the function above (IS NOT TRUE:
# a move that evaluates to NULL is not a reconciliation move either).
RECONCILIATION_MOVE = f"""{SETTING} = OLD.payroll_id::text AND OLD.status = 'DUE'
    AND (NEW.status = 'UNPAID' OR (NEW.status = 'PAID' AND NEW.receipt <> '' AND NEW.paid_on IS NOT NULL))
    AND (NEW.payroll_id, NEW.beneficiary_id, NEW.recipient_id, NEW.location_id, NEW.amount, NEW.inputs,
         NEW.flagged_over_limit)
        IS NOT DISTINCT FROM (OLD.payroll_id, OLD.beneficiary_id, OLD.recipient_id, OLD.location_id, OLD.amount,
         OLD.inputs, OLD.flagged_over_limit)"""
# Once per statement: the payroll the setting names is approved (CASE, not OR: the cast is evaluated only
# for a payroll id).
STATEMENT_GUARD = f"""
CREATE OR REPLACE FUNCTION payments_reconciliation_guard() RETURNS trigger AS $$
DECLARE reconciled text := {SETTING};
BEGIN
    IF reconciled <> '' AND (CASE WHEN reconciled ~ '^[0-9]{{1,18}}$'
            THEN (SELECT status FROM payments_payroll WHERE id = reconciled::bigint) END
            IS DISTINCT FROM 'APPROVED') THEN
        RAISE EXCEPTION '{RECONCILED_ONLY}' USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql
"""
FORWARD = [
    LINE_GUARD,
    STATEMENT_GUARD,
    "DROP TRIGGER payments_line_guard ON payments_paymentline",
    "CREATE TRIGGER payments_line_delete_guard BEFORE DELETE ON payments_paymentline "
    "FOR EACH ROW EXECUTE FUNCTION payments_line_guard()",
    f"CREATE TRIGGER payments_line_guard BEFORE UPDATE ON payments_paymentline FOR EACH ROW "
    f"WHEN (({RECONCILIATION_MOVE}) IS NOT TRUE) EXECUTE FUNCTION payments_line_guard()",
    "CREATE TRIGGER payments_reconciliation_guard BEFORE UPDATE ON payments_paymentline "
    "FOR EACH STATEMENT EXECUTE FUNCTION payments_reconciliation_guard()",
]
# 0002's guard: the reconciliation columns writable by anyone on a sealed payroll.
BACKWARD = [
    "DROP TRIGGER payments_reconciliation_guard ON payments_paymentline",
    "DROP FUNCTION payments_reconciliation_guard()",
    "DROP TRIGGER payments_line_guard ON payments_paymentline",
    "DROP TRIGGER payments_line_delete_guard ON payments_paymentline",
    f"""
    CREATE OR REPLACE FUNCTION payments_line_guard() RETURNS trigger AS $$
    DECLARE payroll_status text;
    BEGIN
        SELECT status INTO payroll_status FROM payments_payroll WHERE id = OLD.payroll_id;
        IF payroll_status IS DISTINCT FROM 'GENERATING' THEN
            IF TG_OP = 'DELETE' THEN
                RAISE EXCEPTION '{KEPT}' USING ERRCODE = 'integrity_constraint_violation';
            END IF;
            IF (NEW.payroll_id, NEW.beneficiary_id, NEW.recipient_id, NEW.location_id, NEW.amount,
                NEW.inputs, NEW.flagged_over_limit)
               IS DISTINCT FROM (OLD.payroll_id, OLD.beneficiary_id, OLD.recipient_id, OLD.location_id,
                OLD.amount, OLD.inputs, OLD.flagged_over_limit) THEN
                RAISE EXCEPTION '{SEALED}' USING ERRCODE = 'integrity_constraint_violation';
            END IF;
        END IF;
        IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
        RETURN NEW;
    END;
    $$ LANGUAGE plpgsql
    """,
    "CREATE TRIGGER payments_line_guard BEFORE UPDATE OR DELETE ON payments_paymentline "
    "FOR EACH ROW EXECUTE FUNCTION payments_line_guard()",
]


class Migration(migrations.Migration):
    """Reconciliation: the permission to reconcile (and to ask to close) a payroll, and the line guard
    of 0002 narrowed: a sealed payroll's status, receipt and paid date no longer change freely, only
    by reconciliation's statements (the setting names the payroll, which must be approved), only DUE
    to PAID (receipt and date given) or UNPAID."""

    dependencies = [("payments", "0004_provider_api_token")]

    operations = [
        migrations.AlterModelOptions(
            name="payroll",
            options={"ordering": ["-created_at", "-pk"], "permissions": [
                ("export_payroll", "Can export payrolls for payment providers"),
                ("reconcile_payroll", "Can reconcile payrolls (what providers paid) and ask to close them")]},
        ),
        PostgresOnlySQL(sql=FORWARD, reverse_sql=BACKWARD),
    ]
