"""The location list from a file (columns code, name, parent_code; the parent empty for the top of
the tree): creates new locations and renames or moves registered ones (matched by code).

The check resolves the tree in memory (a country's list is some thousands of rows, at most a few
hundred thousand): each row's parent is in the file or registered, no cycle, no location moved under
itself, and each row within the uploader's locations. The import creates the new locations one level
at a time (one INSERT and one path UPDATE per level), renames in one UPDATE, and moves a registered
location with its subtree (Location.save rewrites the subtree's paths in one statement)."""

from django.db import connection
from django.db.models import Count

from sites.models import Location
from sites.scoping import scope_for

from .files import Column
from .individuals import ERROR_FIELDS, flag
from .models import StagedError, StagedLocation
from .staging import StagingWriter

COLUMNS = [
    Column("code", ("location code", "location_code"), required=True),
    Column("name", ("location name", "location_name"), required=True),
    Column("parent_code", ("parent", "parent code", "parent_location_code"), required=True),
]
STAGED_FIELDS = ("upload", "row_number", "valid", "code", "name", "parent_code")


class Importer:
    CHUNK = 1_000_000  # the import runs whole in prepare_import; the chunk only counts it
    READS = (Location,)
    SKIPS_REGISTERED_MEANWHILE = False

    def columns(self, plan):
        return COLUMNS

    def template_headers(self, plan):
        return [column.name for column in COLUMNS]

    def stage(self, upload, table, user):
        index = [table.mapping[column.name] for column in COLUMNS]
        header = [table.headers[i] for i in index]
        count = 0
        with StagingWriter(StagedLocation, STAGED_FIELDS, streaming=True) as rows, \
                StagingWriter(StagedError, ERROR_FIELDS) as errors:
            for row_number, cells, problem in table.rows():
                count += 1
                found = [(problem.column or "", problem.message)] if problem else []
                code, name, parent = (cells[i].strip() if i < len(cells) else "" for i in index)
                for column, value, limit in ((header[0], code, 32), (header[1], name, 128), (header[2], parent, 32)):
                    if len(value) > limit:
                        found.append((column, f"At most {limit} characters."))
                for column, value in ((header[0], code), (header[1], name)):
                    if not value:
                        found.append((column, "Required."))
                if code and code == parent:
                    found.append((header[2], "A location cannot be its own parent."))
                rows.write((upload.pk, row_number, not found, code[:32], name[:128], parent[:32]))
                for column, message in found:
                    errors.write((upload.pk, row_number, column, message))
        return count

    def check(self, upload):
        staged = StagedLocation.objects.filter(upload_id=upload.pk)
        repeated = staged.exclude(code="").values("code").annotate(n=Count("pk")).filter(n__gt=1).values("code")
        flag(upload, "code", "This code is on more than one row of the file.", staged.filter(code__in=repeated),
             StagedLocation)
        _check_tree(upload, scope_for(upload.uploaded_by))

    def counts(self, upload):
        staged = StagedLocation.objects.filter(upload_id=upload.pk)
        valid = staged.filter(valid=True)
        creates = valid.filter(location_id__isnull=True).count()
        changes = _changes(upload)
        result = {"rows": staged.count(), "valid": valid.count(), "errors": staged.filter(valid=False).count(),
                  "creates": creates, "updates": len(changes["renamed"]) + len(changes["moved"])}
        result["unchanged"] = result["valid"] - creates - result["updates"]
        return result

    SAMPLE_HEADINGS = ("Code", "Name", "Parent")

    def sample(self, upload, size=10):
        return [{"row_number": row["row_number"], "summary": f"{row['code']} {row['name']}",
                 "cells": [row["code"], row["name"], row["parent_code"] or "—"]}
                for row in StagedLocation.objects.filter(upload_id=upload.pk, valid=True).order_by("row_number")
                .values("row_number", "code", "name", "parent_code")[:size]]

    def problems(self, upload):
        return ""

    def prepare_import(self, upload):
        return {"locations": _import(upload)}

    def reserve_ids(self, upload, last_row):
        return 0

    def import_chunk(self, upload, first_row, last_row, id_base):
        return StagedLocation.objects.filter(upload_id=upload.pk, valid=True,
                                             row_number__range=(first_row, last_row)).count()

    def row_span(self, upload):
        numbers = StagedLocation.objects.filter(upload_id=upload.pk, valid=True).values_list("row_number", flat=True)
        first, last = numbers.order_by("row_number").first(), numbers.order_by("-row_number").first()
        return None if first is None else (first, last)

    def finish(self, upload, imported, by, id_base):
        pass

    def clear(self, upload):
        StagedLocation.objects.filter(upload_id=upload.pk).delete()
        StagedError.objects.filter(upload_id=upload.pk).delete()

    def progress_text(self, count):
        return f"{count:,} locations imported"


def _check_tree(upload, scope):
    """Each valid row's parent is known, the file's parent links form no cycle, a registered location
    is not moved under itself, and every row is within the uploader's locations. Records each row's
    registered id and depth."""
    rows = {code: (number, parent) for number, code, parent in StagedLocation.objects.filter(
        upload_id=upload.pk, valid=True).values_list("row_number", "code", "parent_code")}
    wanted = set(rows) | {parent for _n, parent in rows.values() if parent}
    registered = {code: (pk, path, depth) for code, pk, path, depth in Location.objects.filter(
        code__in=wanted).values_list("code", "pk", "path", "depth")}
    problems, depth = {}, {}
    anchor = {}  # the path of the nearest ancestor registered and not in the file (None: the top)

    def resolve(code, trail):
        if code in depth or code in problems:
            return depth.get(code)
        number, parent = rows[code]
        if code in trail:
            problems[code] = ("parent_code", "The parent codes form a cycle: " + " > ".join([*trail, code]))
            return None
        if not parent:
            depth[code], anchor[code] = 1, None
        elif parent in rows:
            above = resolve(parent, [*trail, code])
            if above is None:
                problems.setdefault(code, ("parent_code", f"The parent '{parent}' has errors in this file."))
                return None
            depth[code], anchor[code] = above + 1, anchor[parent]
        elif parent in registered:
            depth[code], anchor[code] = registered[parent][2] + 1, registered[parent][1]
        else:
            problems[code] = ("parent_code", f"No location has the code '{parent}'.")
            return None
        return depth[code]

    for code in rows:
        resolve(code, [])
    for code in rows:
        if code in problems:
            continue
        own = registered.get(code)
        above = anchor.get(code)
        if own and above and above.startswith(own[1]):
            problems[code] = ("parent_code", "This would put the location under itself.")
        elif not scope.national and not _within(scope, own[1] if own else above):
            problems[code] = ("code", "Outside your locations.")
    _record(upload, rows, registered, depth, problems)


def _within(scope, path):
    """A registered location, or a new one's nearest registered ancestor, within the user's locations
    (a new top-level location needs national scope)."""
    return bool(path) and any(path.startswith(p) for p in scope.paths)


def _record(upload, rows, registered, depth, problems):
    quote = connection.ops.quote_name
    staged = quote(StagedLocation._meta.db_table)
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {staged} SET depth = %s, location_id = %s WHERE upload_id = %s AND row_number = %s",
            [(depth.get(code), registered[code][0] if code in registered else None, upload.pk, number)
             for code, (number, _parent) in rows.items() if code not in problems])
    for code, (column, message) in problems.items():
        flag(upload, column, message, StagedLocation.objects.filter(upload_id=upload.pk, code=code, valid=True),
             StagedLocation)


def _changes(upload):
    """Registered locations the file renames, and those it moves (to another parent)."""
    rows = StagedLocation.objects.filter(upload_id=upload.pk, valid=True, location_id__isnull=False)
    current = {pk: (name, parent) for pk, name, parent in Location.objects.filter(
        pk__in=rows.values("location_id")).values_list("pk", "name", "parent__code")}
    renamed, moved = [], []
    for pk, name, parent in rows.values_list("location_id", "name", "parent_code"):
        old_name, old_parent = current[pk]
        if (old_parent or "") != parent:
            moved.append((pk, name, parent))
        elif old_name != name:
            renamed.append((pk, name))
    return {"renamed": renamed, "moved": moved}


def _import(upload):
    """New locations level by level (each level's parents exist once the level above is in), then
    renames in one statement, then moves one by one (each rewrites its subtree's paths)."""
    quote = connection.ops.quote_name
    staged, table = quote(StagedLocation._meta.db_table), quote(Location._meta.db_table)
    changes = _changes(upload)
    created = 0
    levels = (StagedLocation.objects.filter(upload_id=upload.pk, valid=True, location_id__isnull=True)
              .values_list("depth", flat=True).distinct().order_by("depth"))
    with connection.cursor() as cursor:
        for level in list(levels):
            cursor.execute(
                f"INSERT INTO {table} (code, name, parent_id, depth, path) "
                f"SELECT s.code, s.name, p.id, s.depth, '' FROM {staged} s LEFT JOIN {table} p ON p.code = s.parent_code "
                f"WHERE s.upload_id = %s AND s.valid AND s.location_id IS NULL AND s.depth = %s "
                f"ON CONFLICT (code) DO NOTHING", [upload.pk, level])
            created += cursor.rowcount
            cursor.execute(
                f"UPDATE {table} SET path = COALESCE((SELECT p.path FROM {table} p WHERE p.id = {table}.parent_id), '/') "
                f"|| CAST(id AS TEXT) || '/' WHERE path = ''")
        if changes["renamed"]:
            cursor.executemany(f"UPDATE {table} SET name = %s WHERE id = %s",
                               [(name, pk) for pk, name in changes["renamed"]])
    parents = dict(Location.objects.filter(code__in={p for _pk, _n, p in changes["moved"] if p})
                   .values_list("code", "pk"))
    for pk, name, parent in changes["moved"]:
        location = Location.objects.get(pk=pk)
        location.name, location.parent_id = name, parents.get(parent)
        location.save()
    return created


IMPORTER = Importer()
