"""Writing many rows into a staging table: COPY on PostgreSQL, batched executemany on SQLite. One
writer, used by every importer (and by nothing that writes live tables: those are filled from staging
by INSERT ... SELECT)."""

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
                with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
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
