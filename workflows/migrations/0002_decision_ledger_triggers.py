from django.db import migrations

from sites.migration_operations import PostgresOnlySQL, SqliteOnlySQL

POSTGRES = [
    """
    CREATE OR REPLACE FUNCTION workflows_decision_guard() RETURNS trigger AS $$
    BEGIN
        IF TG_OP <> 'INSERT' THEN
            RAISE EXCEPTION 'Approval decisions are insert-only: % is refused', TG_OP
                USING ERRCODE = 'check_violation';
        END IF;
        IF NEW.maker_id IS DISTINCT FROM (SELECT maker_id FROM workflows_approvalrequest WHERE id = NEW.request_id) THEN
            RAISE EXCEPTION 'decision_maker_mismatch: the maker recorded on a decision must be the request''s maker'
                USING ERRCODE = 'check_violation';
        END IF;
        IF NOT EXISTS (SELECT 1 FROM auth_user_groups WHERE user_id = NEW.user_id AND group_id = NEW.group_id) THEN
            RAISE EXCEPTION 'decision_not_group_member: only members of the step''s group decide'
                USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
    END;
    $$ LANGUAGE plpgsql
    """,
    "CREATE TRIGGER workflows_decision_guard BEFORE INSERT OR UPDATE OR DELETE ON workflows_decision "
    "FOR EACH ROW EXECUTE FUNCTION workflows_decision_guard()",
]

# SQLite: the same checks on INSERT and no UPDATE. DELETE stays possible there, because the test
# runner empties tables with DELETE between transactional tests (PostgreSQL's uses TRUNCATE).
SQLITE = [
    """
    CREATE TRIGGER workflows_decision_guard BEFORE INSERT ON workflows_decision
    BEGIN
        SELECT RAISE(ABORT, 'decision_maker_mismatch: the maker recorded on a decision must be the request''s maker')
        WHERE NEW.maker_id IS NOT (SELECT maker_id FROM workflows_approvalrequest WHERE id = NEW.request_id);
        SELECT RAISE(ABORT, 'decision_not_group_member: only members of the step''s group decide')
        WHERE NOT EXISTS (SELECT 1 FROM auth_user_groups WHERE user_id = NEW.user_id AND group_id = NEW.group_id);
    END
    """,
    """
    CREATE TRIGGER workflows_decision_insert_only BEFORE UPDATE ON workflows_decision
    BEGIN
        SELECT RAISE(ABORT, 'Approval decisions are insert-only: UPDATE is refused');
    END
    """,
]


class Migration(migrations.Migration):
    """Separation of duties in the database, whatever code path writes a decision."""

    dependencies = [("workflows", "0001_initial"), ("auth", "0012_alter_user_first_name_max_length")]

    operations = [
        PostgresOnlySQL(sql=POSTGRES, reverse_sql=[
            "DROP TRIGGER IF EXISTS workflows_decision_guard ON workflows_decision",
            "DROP FUNCTION IF EXISTS workflows_decision_guard()",
        ]),
        SqliteOnlySQL(sql=SQLITE, reverse_sql=[
            "DROP TRIGGER IF EXISTS workflows_decision_guard",
            "DROP TRIGGER IF EXISTS workflows_decision_insert_only",
        ]),
    ]
