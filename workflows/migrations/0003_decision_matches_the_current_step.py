from django.db import migrations

from sites.migration_operations import PostgresOnlySQL, SqliteOnlySQL

POSTGRES = [
    """
    CREATE OR REPLACE FUNCTION workflows_decision_step_guard() RETURNS trigger AS $$
    BEGIN
        IF NOT EXISTS (
            SELECT 1 FROM workflows_approvalrequest r
            WHERE r.id = NEW.request_id AND r.status = 'PENDING' AND NEW.step = r.current_step
              AND NEW.group_id = (r.steps -> r.current_step ->> 'group_id')::bigint
        ) THEN
            RAISE EXCEPTION 'decision_not_current_step: a decision belongs to the pending step and its group'
                USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
    END;
    $$ LANGUAGE plpgsql
    """,
    "CREATE TRIGGER workflows_decision_step_guard BEFORE INSERT ON workflows_decision "
    "FOR EACH ROW EXECUTE FUNCTION workflows_decision_step_guard()",
]

SQLITE = [
    """
    CREATE TRIGGER workflows_decision_step_guard BEFORE INSERT ON workflows_decision
    BEGIN
        SELECT RAISE(ABORT, 'decision_not_current_step: a decision belongs to the pending step and its group')
        WHERE NOT EXISTS (
            SELECT 1 FROM workflows_approvalrequest r
            WHERE r.id = NEW.request_id AND r.status = 'PENDING' AND NEW.step = r.current_step
              AND NEW.group_id = json_extract(r.steps, '$[' || r.current_step || '].group_id')
        );
    END
    """,
]


class Migration(migrations.Migration):
    """Steps in order, in the database: a decision names the request's pending step and that step's group."""

    dependencies = [("workflows", "0002_decision_ledger_triggers")]

    operations = [
        PostgresOnlySQL(sql=POSTGRES, reverse_sql=[
            "DROP TRIGGER IF EXISTS workflows_decision_step_guard ON workflows_decision",
            "DROP FUNCTION IF EXISTS workflows_decision_step_guard()",
        ]),
        SqliteOnlySQL(sql=SQLITE, reverse_sql=["DROP TRIGGER IF EXISTS workflows_decision_step_guard"]),
    ]
