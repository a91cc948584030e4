from django.db import migrations

from sites.migration_operations import PostgresOnlySQL


class Migration(migrations.Migration):
    dependencies = [("registry", "0001_initial")]

    operations = [
        PostgresOnlySQL(
            sql=[
                "CREATE EXTENSION IF NOT EXISTS pg_trgm",
                "CREATE INDEX IF NOT EXISTS individual_search_name_trgm ON registry_individual "
                "USING gin (search_name gin_trgm_ops)",
                "CREATE INDEX IF NOT EXISTS individual_attributes_gin ON registry_individual "
                "USING gin (attributes jsonb_path_ops)",
                "CREATE INDEX IF NOT EXISTS household_attributes_gin ON registry_household "
                "USING gin (attributes jsonb_path_ops)",
            ],
            reverse_sql=[
                "DROP INDEX IF EXISTS individual_search_name_trgm",
                "DROP INDEX IF EXISTS individual_attributes_gin",
                "DROP INDEX IF EXISTS household_attributes_gin",
            ],
        ),
    ]
