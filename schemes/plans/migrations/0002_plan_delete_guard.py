from django.db import migrations

from sites.migration_operations import PostgresOnlySQL

MESSAGE = "plan_has_beneficiaries: a benefit plan with beneficiaries cannot be deleted"


class Migration(migrations.Migration):
    """Beneficiary.plan has no foreign-key constraint (enrolment speed, see the model); this trigger
    keeps what it would have kept: no beneficiary points at a deleted plan. PostgreSQL only: on
    SQLite the test runner empties tables row by row, plans before beneficiaries, and a guard would
    stop it (the ORM's PROTECT still refuses there)."""

    dependencies = [("plans", "0001_initial")]

    operations = [
        PostgresOnlySQL(
            sql=[
                f"""
                CREATE OR REPLACE FUNCTION plans_plan_delete_guard() RETURNS trigger AS $$
                BEGIN
                    IF EXISTS (SELECT 1 FROM plans_beneficiary WHERE plan_id = OLD.id) THEN
                        RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'foreign_key_violation';
                    END IF;
                    RETURN OLD;
                END;
                $$ LANGUAGE plpgsql
                """,
                "CREATE TRIGGER plans_plan_delete_guard BEFORE DELETE ON plans_benefitplan "
                "FOR EACH ROW EXECUTE FUNCTION plans_plan_delete_guard()",
            ],
            reverse_sql=["DROP TRIGGER IF EXISTS plans_plan_delete_guard ON plans_benefitplan",
                         "DROP FUNCTION IF EXISTS plans_plan_delete_guard()"],
        ),
    ]
