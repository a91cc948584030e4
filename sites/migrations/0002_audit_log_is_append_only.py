from django.db import migrations

from sites.migration_operations import PostgresOnlySQL

TABLES = ["wagtailcore_modellogentry", "wagtailcore_pagelogentry"]


class Migration(migrations.Migration):
    """On PostgreSQL the application cannot rewrite or erase the audit trail."""

    dependencies = [
        ("sites", "0001_initial"),
        ("wagtailcore", "0097_baselogentry_uuid_action_timestamp_indexes"),
    ]

    operations = [
        PostgresOnlySQL(
            sql=[
                """
                CREATE OR REPLACE FUNCTION mizani_audit_append_only() RETURNS trigger AS $$
                BEGIN
                    RAISE EXCEPTION 'The audit trail is append-only: % on % is refused', TG_OP, TG_TABLE_NAME
                        USING ERRCODE = 'insufficient_privilege';
                END;
                $$ LANGUAGE plpgsql
                """,
                *[
                    f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                    f"FOR EACH ROW EXECUTE FUNCTION mizani_audit_append_only()"
                    for table in TABLES
                ],
            ],
            reverse_sql=[
                *[f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}" for table in TABLES],
                "DROP FUNCTION IF EXISTS mizani_audit_append_only()",
            ],
        ),
    ]
