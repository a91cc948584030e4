from django.db import migrations

from sites.migration_operations import PostgresOnlySQL

DEFAULT_ROLES = [
    ("HEAD", "Head", 0), ("SPOUSE", "Spouse", 10), ("SON", "Son", 20), ("DAUGHTER", "Daughter", 30),
    ("GRANDFATHER", "Grandfather", 40), ("GRANDMOTHER", "Grandmother", 50), ("MOTHER", "Mother", 60),
    ("FATHER", "Father", 70),
]


def create_default_roles(apps, schema_editor):
    MemberRole = apps.get_model("registry", "MemberRole")
    for code, label, order in DEFAULT_ROLES:
        MemberRole.objects.get_or_create(code=code, defaults={"label": label, "sort_order": order})


class Migration(migrations.Migration):
    dependencies = [("registry", "0001_initial")]

    operations = [
        migrations.RunPython(create_default_roles, migrations.RunPython.noop),
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
