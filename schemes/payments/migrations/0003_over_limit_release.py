from django.db import migrations, models

from sites.migration_operations import PostgresOnlySQL

SEALED = "payroll_sealed: a payroll that is no longer generating cannot change its lines, count, total or hash"
RELEASED = "payroll_released: the release of over-limit lines is never withdrawn"
KEPT = "payroll_kept: payrolls and the lines of sealed payrolls are never deleted"

PAYROLL_GUARD = """
CREATE OR REPLACE FUNCTION payments_payroll_guard() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION '{kept}' USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF OLD.status <> 'GENERATING' AND (
        (NEW.payment_plan_id, NEW.cycle_id, NEW.follow_up_of_id, NEW.line_count, NEW.total,
         NEW.seal_hash, NEW.sealed_at, NEW.formula, NEW.parameters)
        IS DISTINCT FROM (OLD.payment_plan_id, OLD.cycle_id, OLD.follow_up_of_id, OLD.line_count,
         OLD.total, OLD.seal_hash, OLD.sealed_at, OLD.formula, OLD.parameters)
        OR (NEW.status <> OLD.status AND NOT (OLD.status = 'PENDING_APPROVAL'
            AND NEW.status IN ('APPROVED', 'REJECTED'))
            AND NOT (OLD.status = 'APPROVED' AND NEW.status = 'RECONCILED'))) THEN
        RAISE EXCEPTION '{sealed}' USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    {released}
    RETURN NEW;
END;
$$ LANGUAGE plpgsql
"""
RELEASED_CHECK = f"""IF OLD.over_limit_released_at IS NOT NULL
       AND NEW.over_limit_released_at IS DISTINCT FROM OLD.over_limit_released_at THEN
        RAISE EXCEPTION '{RELEASED}' USING ERRCODE = 'integrity_constraint_violation';
    END IF;"""


class Migration(migrations.Migration):
    """The release of a payroll's over-limit lines: set once, never withdrawn (the payroll guard of
    0002, with that check added)."""

    dependencies = [("payments", "0002_sealed_payroll_guards")]

    operations = [
        migrations.AddField(
            model_name="payroll",
            name="over_limit_released_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        PostgresOnlySQL(
            sql=[
                PAYROLL_GUARD.format(kept=KEPT, sealed=SEALED, released=RELEASED_CHECK),
            ],
            reverse_sql=[
                PAYROLL_GUARD.format(kept=KEPT, sealed=SEALED, released=""),
            ],
        ),
    ]
