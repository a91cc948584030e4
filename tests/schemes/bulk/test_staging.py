"""The staging helpers: the writer stores what it is given; statistics are refreshed for tables that
outgrew what the planner last saw; emptied staging tables give their space back."""

from unittest import mock

import pytest
from django.db import connection, connections

from schemes.bulk import staging
from schemes.bulk.individuals import ERROR_FIELDS, STAGED_FIELDS
from schemes.bulk.models import StagedError, StagedIndividual, StagedReconciliation
from schemes.bulk.staging import (
    BATCH,
    StagingWriter,
    merge_pending_index_entries,
    refresh_statistics,
    release_empty,
)
from schemes.registry.models import Household, Individual

pytestmark = pytest.mark.django_db
postgres_only = pytest.mark.skipif("connection.vendor != 'postgresql'", reason="PostgreSQL planner statistics and storage")


def test_the_writer_stores_attributes_exactly_as_given():
    """Attributes are written as JSON text (by hand for flat texts, by the encoder otherwise): quotes,
    backslashes, line breaks, other scripts, numbers, yes/no and lists come back unchanged."""
    upload = 987_655  # staged rows name their upload without a constraint
    given = [
        {"note": 'He said "yes"\\ then\nleft', "village": "Ḿbeya – 東京 ✓"},
        {"income": 12, "disabled": True, "tags": ["a", "b"], "missing": None},
        {},
    ]
    with StagingWriter(StagedIndividual, STAGED_FIELDS, streaming=True) as rows:
        for number, attributes in enumerate(given, 2):
            rows.write((upload, number, True, "Amina", "Mollel", None, "F", None, "", None, attributes, "", "", ""))

    stored = list(StagedIndividual.objects.filter(upload_id=upload).order_by("row_number").values_list("attributes", flat=True))
    assert stored == given


def pages_seen(model):
    with connection.cursor() as cursor:
        cursor.execute("SELECT relpages FROM pg_class WHERE relname = %s", [model._meta.db_table])
        return cursor.fetchone()[0]


@postgres_only
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


@postgres_only
def test_error_rows_are_copied_while_the_streaming_copy_of_a_large_file_is_open():
    """The errors writer closes first, while the rows' COPY (started once a batch was full) is open:
    the connection runs one COPY at a time (this hung forever for any file past 5,000 rows with an
    error), so the open one is ended first and both tables get their rows."""
    rows, upload = BATCH + 10, 987_654  # staged rows name their upload without a constraint
    with StagingWriter(StagedReconciliation, ("upload", "row_number", "valid", "code", "receipt"), streaming=True) as staged, \
            StagingWriter(StagedError, ERROR_FIELDS) as errors:
        for number in range(rows):
            staged.write((upload, number, True, f"L{number}", ""))
        errors.write((upload, 3, "code", "Unknown."))
        staged.write((upload, rows, True, "last", ""))

    assert StagedReconciliation.objects.filter(upload_id=upload).count() == rows + 1
    assert StagedError.objects.filter(upload_id=upload).count() == 1


def staged_bytes(model):
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_relation_size(%s)", [model._meta.db_table])
        return cursor.fetchone()[0]


def stage_rows(upload_id, count):
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO bulk_stagedreconciliation (upload_id, row_number, valid, code, receipt) "
                       "SELECT %s, n, true, 'PL' || n, '' FROM generate_series(1, %s) n", [upload_id, count])


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_an_emptied_staging_table_gives_its_space_back():
    stage_rows(999_001, 20_000)
    StagedReconciliation.objects.filter(upload_id=999_001).delete()  # an imported file's rows: dead
    assert staged_bytes(StagedReconciliation) > 0

    release_empty([StagedReconciliation])

    assert staged_bytes(StagedReconciliation) == 0


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_staging_table_holding_another_uploads_rows_is_kept():
    stage_rows(999_002, 3)  # a file checked and waiting for its import
    release_empty([StagedReconciliation])
    assert StagedReconciliation.objects.filter(upload_id=999_002).count() == 3


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_staging_table_in_use_elsewhere_is_left_for_vacuum():
    other = connections.create_connection("default")
    try:
        other.set_autocommit(False)
        with other.cursor() as cursor:  # another upload's COPY, not committed yet
            cursor.execute("LOCK TABLE bulk_stagedreconciliation IN ROW EXCLUSIVE MODE")
        stage_rows(999_003, 100)
        StagedReconciliation.objects.filter(upload_id=999_003).delete()

        release_empty([StagedReconciliation])  # does not wait, does not fail

        assert staged_bytes(StagedReconciliation) > 0
    finally:
        other.rollback()
        other.close()


@postgres_only
def test_pending_index_entries_are_left_for_vacuum_when_the_user_does_not_own_the_index():
    with connection.cursor() as cursor, mock.patch.object(staging.logger, "warning") as warning:
        cursor.execute("CREATE ROLE mizani_not_owner")
        cursor.execute("SET ROLE mizani_not_owner")
        try:
            merge_pending_index_entries([Individual])  # does not fail
        finally:
            cursor.execute("RESET ROLE")
    assert "individual_search_name_trgm" in [call.args[1] for call in warning.call_args_list]
