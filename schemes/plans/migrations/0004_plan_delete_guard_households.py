from django.db import migrations

from sites.migration_operations import PostgresOnlySQL

MESSAGE = "plan_has_beneficiaries: a benefit plan with beneficiaries cannot be deleted"


def guard(tables):
    checks = " OR ".join(f"EXISTS (SELECT 1 FROM {table} WHERE plan_id = OLD.id)" for table in tables)
    return f"""
        CREATE OR REPLACE FUNCTION plans_plan_delete_guard() RETURNS trigger AS $$
        BEGIN
            IF {checks} THEN
                RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'foreign_key_violation';
            END IF;
            RETURN OLD;
        END;
        $$ LANGUAGE plpgsql
        """


class Migration(migrations.Migration):
    """Household beneficiaries reference their plan without a foreign-key constraint too (see 0002):
    the delete guard now looks at both tables."""

    dependencies = [("plans", "0003_household_beneficiaries_targeting_revisions")]

    operations = [
        PostgresOnlySQL(sql=[guard(["plans_beneficiary", "plans_householdbeneficiary"])],
                        reverse_sql=[guard(["plans_beneficiary"])]),
    ]
