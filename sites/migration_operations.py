from django.db import migrations


class VendorSQL(migrations.RunSQL):
    """SQL for one database vendor only; the others skip it."""

    vendor = None

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == self.vendor:
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == self.vendor:
            super().database_backwards(app_label, schema_editor, from_state, to_state)


class PostgresOnlySQL(VendorSQL):
    """What only PostgreSQL has or needs (trigram and JSONB indexes, plpgsql triggers)."""

    vendor = "postgresql"


class SqliteOnlySQL(VendorSQL):
    """The SQLite spelling of a trigger PostgresOnlySQL creates on PostgreSQL."""

    vendor = "sqlite"
