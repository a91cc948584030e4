"""Writing many rows into a staging table: COPY on PostgreSQL, batched executemany on SQLite. One
writer, used by every importer (and by nothing that writes live tables: those are filled from staging
by INSERT ... SELECT)."""

import csv
import io
import json

from django.db import connection, models

BATCH = 5000


class StagingWriter:
    """`write(row)` a tuple of `fields`' values (JSON fields as Python objects); `close()` flushes.
    Rows are buffered and written in batches, so memory stays flat whatever the file's size."""

    def __init__(self, model, fields):
        self.model = model
        self.fields = [model._meta.get_field(name) for name in fields]
        self.json_positions = [i for i, f in enumerate(self.fields) if isinstance(f, models.JSONField)]
        # COPY reads CSV (written by the csv module in C, much faster than adapting values one by one);
        # an empty unquoted value is NULL there, except in the text columns that cannot be NULL.
        self.not_null_text = [f.column for f in self.fields
                              if isinstance(f, (models.CharField, models.TextField)) and not f.null]
        self.buffer = []
        self.written = 0

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
        quote = connection.ops.quote_name
        table = quote(self.model._meta.db_table)
        columns = ", ".join(quote(f.column) for f in self.fields)
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                text = io.StringIO()
                csv.writer(text).writerows(rows)
                options = "FORMAT csv"
                if self.not_null_text:
                    options += f", FORCE_NOT_NULL ({', '.join(quote(c) for c in self.not_null_text)})"
                with cursor.copy(f"COPY {table} ({columns}) FROM STDIN ({options})") as copy:
                    copy.write(text.getvalue())
            else:
                marks = ", ".join(["%s"] * len(self.fields))
                cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)
        self.written += len(rows)
        self.buffer = []

    def _encode(self, row):
        row = list(row)
        for i in self.json_positions:
            row[i] = json.dumps(row[i], ensure_ascii=False) if row[i] else "{}"
        return row

    def close(self):
        self.flush()
        return self.written
