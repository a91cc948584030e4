"""Writing many rows into a staging table: COPY on PostgreSQL, batched executemany on SQLite. One
writer, used by every importer (and by nothing that writes live tables: those are filled from staging
by INSERT ... SELECT).

    with StagingWriter(StagedIndividual, FIELDS, streaming=True) as rows, \\
            StagingWriter(StagedError, ERROR_FIELDS) as errors:
        rows.write((...))

On PostgreSQL the `streaming` writer keeps one COPY open while the file is read: the database stores
rows while Python reads the next ones (the two work at once, on two cores). A connection runs one
COPY at a time, so the other writers spill their rows to a temporary file (memory stays flat) and
copy it when they close, after the streaming one."""

import csv
import io
import json
import logging
import tempfile
import threading

from django.db import OperationalError, ProgrammingError, connection, models, transaction

logger = logging.getLogger(__name__)

BATCH = 5000
SPILL_IN_MEMORY_BYTES = 8 << 20
# One encoder for every row: json.dumps with options builds a new encoder per call.
encode_json = json.JSONEncoder(ensure_ascii=False).encode
encode_text = json.encoder.encode_basestring  # a str as a JSON string, in C


def encode_object(values):
    """A dict as JSON text: one join for the usual flat object of texts (attributes), the encoder
    for anything else."""
    try:
        return "{" + ", ".join(f"{encode_text(key)}: {encode_text(value)}" for key, value in values.items()) + "}"
    except TypeError:  # a number, a yes/no, a list...
        return encode_json(values)


_streaming = threading.local()  # the streaming writer whose COPY is open on this thread's connection


class StagingWriter:
    """`write(row)` a tuple of `fields`' values (JSON fields as Python objects). Use as a context
    manager: leaving it normally writes what is left; leaving it on an error abandons the COPY (the
    transaction is then rolled back by the caller)."""

    def __init__(self, model, fields, *, streaming=False):
        self.model = model
        self.fields = [model._meta.get_field(name) for name in fields]
        self.json_positions = [i for i, f in enumerate(self.fields) if isinstance(f, models.JSONField)]
        self.postgres = connection.vendor == "postgresql"
        self.streaming = streaming and self.postgres
        self.buffer = []
        self.written = 0
        self._copy = self._cursor = None
        self._closed = False
        self._spill = None if self.streaming or not self.postgres else tempfile.SpooledTemporaryFile(
            max_size=SPILL_IN_MEMORY_BYTES, mode="w+", encoding="utf-8", newline="")

    def __enter__(self):
        return self

    def __exit__(self, kind, error, trace):
        if kind is None:
            self.close()
        elif self._copy is not None and not self._closed:
            self._end_copy(kind, error, trace)
        if self._spill is not None:
            self._spill.close()
        return False

    def _end_copy(self, *error):
        try:
            self._copy_context.__exit__(*(error or (None, None, None)))
            self._cursor.close()
        finally:
            self._copy = None
            if getattr(_streaming, "writer", None) is self:
                _streaming.writer = None

    def _copy_sql(self):
        quote = connection.ops.quote_name
        columns = ", ".join(quote(f.column) for f in self.fields)
        # COPY reads CSV (written by the csv module in C, much faster than adapting values one by one);
        # an empty unquoted value is NULL there, except in the text columns that cannot be NULL.
        options = "FORMAT csv"
        not_null_text = [quote(f.column) for f in self.fields
                         if isinstance(f, (models.CharField, models.TextField)) and not f.null]
        if not_null_text:
            options += f", FORCE_NOT_NULL ({', '.join(not_null_text)})"
        return f"COPY {quote(self.model._meta.db_table)} ({columns}) FROM STDIN ({options})"

    def write(self, row):
        self.buffer.append(row)
        if len(self.buffer) >= BATCH:
            self.flush()

    def flush(self):
        if not self.buffer:
            return
        rows = self.buffer
        if self.json_positions:
            rows = [self._encode(row) for row in rows]
        if self.streaming:
            if self._copy is None:
                self._cursor = connection.cursor()
                self._copy_context = self._cursor.copy(self._copy_sql())
                self._copy = self._copy_context.__enter__()
                _streaming.writer = self
            text = io.StringIO()
            csv.writer(text).writerows(rows)
            self._copy.write(text.getvalue())
        elif self._spill is not None:
            csv.writer(self._spill).writerows(rows)
        else:
            quote = connection.ops.quote_name
            columns = ", ".join(quote(f.column) for f in self.fields)
            marks = ", ".join(["%s"] * len(self.fields))
            with connection.cursor() as cursor:
                cursor.executemany(f"INSERT INTO {quote(self.model._meta.db_table)} ({columns}) VALUES ({marks})",
                                   rows)
        self.written += len(rows)
        self.buffer = []

    def _encode(self, row):
        row = list(row)
        for i in self.json_positions:
            value = row[i]
            row[i] = "{}" if not value else encode_object(value) if isinstance(value, dict) else encode_json(value)
        return row

    def close(self):
        if self._closed:
            return self.written
        self._closed = True
        self.flush()
        if self._copy is not None:
            self._end_copy()
        elif self._spill is not None and self.written:
            self._spill.seek(0)
            # The connection runs one COPY at a time: a streaming one still open (its writer closes
            # after this one) is ended first; its next rows start another.
            if (open_stream := getattr(_streaming, "writer", None)) is not None:
                open_stream._end_copy()
            with connection.cursor() as cursor, cursor.copy(self._copy_sql()) as copy:
                while block := self._spill.read(1 << 20):
                    copy.write(block)
        return self.written


def refresh_statistics(models_read):
    """ANALYZE each table of `models_read` whose size has outgrown what the planner last measured
    (PostgreSQL; elsewhere nothing). A table empty when last analysed and now holding a national
    load is planned as if it held a row: a join then scans it once per staged row, and a million-row
    file takes minutes instead of seconds. Run before a job's statements, in its own short
    transaction where possible (ANALYZE holds its lock until the transaction ends)."""
    if connection.vendor != "postgresql":
        return
    tables = [model._meta.db_table for model in models_read]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_class c WHERE c.relname = ANY(%s) AND c.relkind = 'r' "
            "AND pg_relation_size(c.oid) / current_setting('block_size')::int > 2 * GREATEST(c.relpages, 0) + 10",
            [tables])
        grown = [table for (table,) in cursor.fetchall()]
    _analyze(grown)


def analyze(models_changed):
    """ANALYZE the tables of `models_changed` (PostgreSQL): after a job changed what their statistics
    describe (e.g. a million lines' statuses), so the screens reading them next are planned right."""
    if connection.vendor == "postgresql":
        _analyze([model._meta.db_table for model in models_changed])


def _analyze(tables):
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")


def merge_pending_index_entries(models_written):
    """Move the entries a job left in the pending lists of the GIN indexes of `models_written` (the
    trigram index on names, the attributes' indexes) into the indexes proper (PostgreSQL). An import
    lets the lists grow to 64 MB: until merged, every name search reads the whole list (+90 ms at
    64 MB), and the next registration merges it in the clerk's request (~0.5 s). Needs the tables'
    owner (the user that ran the migrations); for another user the lists wait for (auto)vacuum."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT index_class.relname FROM pg_index i JOIN pg_class index_class ON index_class.oid = i.indexrelid "
            "JOIN pg_am am ON am.oid = index_class.relam JOIN pg_class t ON t.oid = i.indrelid "
            "WHERE am.amname = 'gin' AND t.relname = ANY(%s) ORDER BY 1",
            [[model._meta.db_table for model in models_written]])
        for (index,) in cursor.fetchall():
            try:
                with transaction.atomic():
                    cursor.execute("SELECT gin_clean_pending_list(%s::regclass)", [connection.ops.quote_name(index)])
            except ProgrammingError as error:  # not the owner
                logger.warning("The pending entries of index %s are left for vacuum: %s", index, error)



def release_empty(models_staged):
    """Give back the space of the staging tables no upload has rows in: a million-row file's rows,
    deleted once imported, stay dead until VACUUM (autovacuum may be off or late), and the next file's
    checks scan them all (a reconciliation file checked in 13 s instead of 5 s behind 19M dead rows).
    TRUNCATE each table only while empty and unused by any other transaction (NOWAIT: else it is left
    for VACUUM). PostgreSQL; outside the caller's transaction."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return
    for model in models_staged:
        table = connection.ops.quote_name(model._meta.db_table)
        # Looked at first without the lock (a table holding rows is left at once; an empty one is read
        # again under the lock, its dead pages then in memory): other uploads wait less.
        if model.objects.exists():
            continue
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE NOWAIT")
                cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {table})")  # rows committed meanwhile
                if not cursor.fetchone()[0]:
                    cursor.execute(f"TRUNCATE {table}")
        except OperationalError:
            continue  # in use: VACUUM will do
