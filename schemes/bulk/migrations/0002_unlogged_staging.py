from django.db import migrations

from sites.migration_operations import PostgresOnlySQL


class Migration(migrations.Migration):
    """Staging rows are written once, read twice and deleted: they need no write-ahead log (a third of
    the check's time). After a database crash PostgreSQL empties unlogged tables; an upload checked
    before it is then refused at import with that reason, and the file can be uploaded again."""

    dependencies = [("bulk", "0001_initial")]

    operations = [
        PostgresOnlySQL(
            sql=["ALTER TABLE bulk_stagedindividual SET UNLOGGED", "ALTER TABLE bulk_stagederror SET UNLOGGED"],
            reverse_sql=["ALTER TABLE bulk_stagedindividual SET LOGGED", "ALTER TABLE bulk_stagederror SET LOGGED"],
        ),
    ]
