from django.db import migrations

from sites.migration_operations import PostgresOnlySQL

SEALED = "payroll_sealed: a payroll that is no longer generating cannot change its lines, count, total or hash"
KEPT = "payroll_kept: payrolls and the lines of sealed payrolls are never deleted"


class Migration(migrations.Migration):
    """What the models refuse, refused for every other path too (raw SQL, another client). A sealed
    payroll: its lines are inserted, deleted or changed by nothing (the reconciliation columns
    excepted: status, receipt, paid date); its seal and references never change; its status moves
    only forward (APPROVED to RECONCILED); no payroll is ever deleted. PostgreSQL only: SQLite's test
    runner empties tables row by row, which a delete guard would stop (the models refuse there)."""

    dependencies = [("payments", "0001_initial")]

    operations = [
        PostgresOnlySQL(
            sql=[
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
                # Inserts are checked once per statement (a payroll's million lines in one INSERT).
                f"""
                CREATE OR REPLACE FUNCTION payments_line_insert_guard() RETURNS trigger AS $$
                BEGIN
                    IF EXISTS (SELECT 1 FROM (SELECT DISTINCT payroll_id FROM new_lines) inserted
                               LEFT JOIN payments_payroll payroll ON payroll.id = inserted.payroll_id
                               WHERE payroll.status IS DISTINCT FROM 'GENERATING') THEN
                        RAISE EXCEPTION '{SEALED}' USING ERRCODE = 'integrity_constraint_violation';
                    END IF;
                    RETURN NULL;
                END;
                $$ LANGUAGE plpgsql
                """,
                "CREATE TRIGGER payments_line_insert_guard AFTER INSERT ON payments_paymentline "
                "REFERENCING NEW TABLE AS new_lines FOR EACH STATEMENT EXECUTE FUNCTION payments_line_insert_guard()",
                f"""
                CREATE OR REPLACE FUNCTION payments_payroll_guard() RETURNS trigger AS $$
                BEGIN
                    IF TG_OP = 'DELETE' THEN
                        RAISE EXCEPTION '{KEPT}' USING ERRCODE = 'integrity_constraint_violation';
                    END IF;
                    IF OLD.status <> 'GENERATING' AND (
                        (NEW.payment_plan_id, NEW.cycle_id, NEW.follow_up_of_id, NEW.line_count, NEW.total,
                         NEW.seal_hash, NEW.sealed_at, NEW.formula, NEW.parameters)
                        IS DISTINCT FROM (OLD.payment_plan_id, OLD.cycle_id, OLD.follow_up_of_id, OLD.line_count,
                         OLD.total, OLD.seal_hash, OLD.sealed_at, OLD.formula, OLD.parameters)
                        OR (NEW.status <> OLD.status AND NOT (OLD.status = 'PENDING_APPROVAL'
                            AND NEW.status IN ('APPROVED', 'REJECTED'))
                            AND NOT (OLD.status = 'APPROVED' AND NEW.status = 'RECONCILED'))) THEN
                        RAISE EXCEPTION '{SEALED}' USING ERRCODE = 'integrity_constraint_violation';
                    END IF;
                    RETURN NEW;
                END;
                $$ LANGUAGE plpgsql
                """,
                "CREATE TRIGGER payments_payroll_guard BEFORE UPDATE OR DELETE ON payments_payroll "
                "FOR EACH ROW EXECUTE FUNCTION payments_payroll_guard()",
            ],
            reverse_sql=[
                "DROP TRIGGER IF EXISTS payments_payroll_guard ON payments_payroll",
                "DROP FUNCTION IF EXISTS payments_payroll_guard()",
                "DROP TRIGGER IF EXISTS payments_line_insert_guard ON payments_paymentline",
                "DROP FUNCTION IF EXISTS payments_line_insert_guard()",
                "DROP TRIGGER IF EXISTS payments_line_guard ON payments_paymentline",
                "DROP FUNCTION IF EXISTS payments_line_guard()",
            ],
        ),
    ]
