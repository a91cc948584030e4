"""The staging helpers: statistics are refreshed for tables that outgrew what the planner last saw."""

import pytest
from django.db import connection

from schemes.bulk.staging import refresh_statistics
from schemes.registry.models import Household, Individual

pytestmark = [pytest.mark.django_db,
              pytest.mark.skipif("connection.vendor != 'postgresql'", reason="PostgreSQL planner statistics")]


def pages_seen(model):
    with connection.cursor() as cursor:
        cursor.execute("SELECT relpages FROM pg_class WHERE relname = %s", [model._meta.db_table])
        return cursor.fetchone()[0]


def test_a_table_filled_since_it_was_analysed_is_analysed_again(geo):
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE registry_individual")
        cursor.execute("ANALYZE registry_household")
        before = pages_seen(Individual), pages_seen(Household)  # e.g. empty: a new installation
        rows = (2 * before[0] + 20) * 60  # well past twice what the planner saw (about 50 people a page)
        cursor.execute(
            "INSERT INTO registry_individual (first_name, last_name, dob, sex, national_id, phone, location_id, "
            "attributes, created_at, updated_at) SELECT 'Bulk', 'Load ' || n, DATE '1980-01-01', 'F', 'STAT' || n, "
            "'', %s, '{}', now(), now() FROM generate_series(1, %s) n", [geo.village_a.pk, rows])

    refresh_statistics([Individual, Household])

    assert pages_seen(Individual) > 2 * before[0] + 10  # the planner now knows the rows are there
    assert pages_seen(Household) == before[1]  # unchanged: not analysed for nothing
