"""The location list from a file (columns code, name, parent_code): creates new locations and renames
or moves registered ones (matched by code). An empty parent_code keeps a registered location's parent
(a file that only renames leaves the tree as it is) and puts a new location at the top of the tree.

The check resolves the tree in memory (a country's list is some thousands of rows, at most a few
hundred thousand): each row's parent is in the file or registered, no cycle, no location moved under
itself or to another level, and each row (and where a move takes it) within the uploader's locations.
The import creates the new locations one level at a time (one INSERT and one path UPDATE per level),
renames in one UPDATE, and moves a registered location with its subtree (Location.save rewrites the
subtree's paths in one statement). The tree may change between the check and the import (a location
moved in its own form): the import, in its transaction, with the file's locations locked, resolves the
file against the tree again, and refuses the whole file if a row no longer holds as checked."""

from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Count, F, Func, OuterRef, Q, Subquery

from schemes.registry.models import Household, Individual
from sites.models import Location, OrganisationSettings
from sites.scoping import scope_for

from .files import Column
from .individuals import ERROR_FIELDS, flag
from .models import StagedError, StagedLocation
from .staging import StagingWriter

COLUMNS = [
    Column("code", ("location code", "location_code"), required=True),
    Column("name", ("location name", "location_name"), required=True),
    # Optional: left out, as left empty, it keeps registered locations where they are (a rename file).
    Column("parent_code", ("parent", "parent code", "parent_location_code")),
]
STAGED_FIELDS = ("upload", "row_number", "valid", "code", "name", "parent_code")
TOP = "the top level"


class Importer:
    CHUNK = 1_000_000  # the import runs whole in prepare_import; the chunk only counts it
    READS = (Location,)
    SKIPS_REGISTERED_MEANWHILE = False

    def columns(self, plan):
        return COLUMNS

    def template_headers(self, plan):
        return [column.name for column in COLUMNS]

    def stage(self, upload, table, user):
        index = [table.mapping.get(column.name) for column in COLUMNS]
        header = [column.name if i is None else table.headers[i] for column, i in zip(COLUMNS, index, strict=True)]
        count = 0
        with StagingWriter(StagedLocation, STAGED_FIELDS, streaming=True) as rows, \
                StagingWriter(StagedError, ERROR_FIELDS) as errors:
            for row_number, cells, problem in table.rows():
                count += 1
                found = [(problem.column or "", problem.message)] if problem else []
                code, name, parent = (cells[i].strip() if i is not None and i < len(cells) else "" for i in index)
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
        rows, registered, depth, problems, _follows = _resolve_tree(upload, scope_for(upload.uploaded_by))
        _record(upload, rows, registered, depth, problems)

    def counts(self, upload):
        staged = StagedLocation.objects.filter(upload_id=upload.pk)
        valid = staged.filter(valid=True)
        creates = valid.filter(location_id__isnull=True).count()
        changes = _changes(upload)
        result = {"rows": staged.count(), "valid": valid.count(), "errors": staged.filter(valid=False).count(),
                  "creates": creates, "updates": len(changes["renamed"]), "moves": len(changes["moved"])}
        result["unchanged"] = result["valid"] - creates - result["updates"] - result["moves"]
        return result

    SAMPLE_HEADINGS = ("Code", "Name", "Parent", "Change")

    def sample(self, upload, size=10):
        """The moves first (each takes people out of some users' locations and into others'), then the
        other rows in the file's order; each row says what it changes."""
        changes = _changes(upload)
        moved = {row["row_number"]: row for row in changes["moved"]}
        renamed = {row["row_number"]: row for row in changes["renamed"]}
        first_moves = sorted(moved)[:size]
        valid = StagedLocation.objects.filter(upload_id=upload.pk, valid=True)
        rows = {row["row_number"]: row for row in valid.filter(row_number__in=first_moves).values(
            "row_number", "code", "name", "parent_code", "location_id")}
        rows.update((row["row_number"], row) for row in valid.exclude(row_number__in=first_moves).order_by(
            "row_number").values("row_number", "code", "name", "parent_code", "location_id")[:size - len(first_moves)])
        under = _people_under([moved[number]["location_id"] for number in first_moves])
        label = _parent_labels(upload, [moved[number][key] for number in first_moves
                                        for key in ("old_parent", "parent_code")])
        sample = []
        for number in [*first_moves, *sorted(set(rows) - set(first_moves))]:
            row = rows[number]
            if number in moved:
                people, households = under.get(row["location_id"], (0, 0))
                change = (f"moves from {label[moved[number]['old_parent']]} to {label[row['parent_code']]}, with "
                          f"{people:,} {'person' if people == 1 else 'people'} and {households:,} "
                          f"household{'' if households == 1 else 's'} under it")
            elif number in renamed:
                change = f"renamed from {renamed[number]['old_name']}"
            else:
                change = "new" if row["location_id"] is None else "no change"
            sample.append({"row_number": number, "summary": f"{row['code']} {row['name']}: {change}",
                           "cells": [row["code"], row["name"], _parent_shown(row, changes["parents"]), change]})
        return sample

    def problems(self, upload):
        """The tree or the uploader's locations changed since the check so that a row no longer holds
        (asked on the upload's page, at submission, when the import starts and in its transaction)."""
        changed = _changed_since_check(upload)
        if not changed:
            return ""
        shown = "; ".join(f"row {number} ({code}): {reason.rstrip('.')}" for number, code, reason in changed[:5])
        more = f"; and {len(changed) - 5:,} more" if len(changed) > 5 else ""
        return (f"The locations changed since this file was checked: {shown}{more}. Nothing was imported: upload "
                "the file again to check it against the locations as they are now.")

    def prepare_import(self, upload):
        _lock_locations(upload)
        problem = self.problems(upload)
        if problem:
            raise ValidationError(problem)
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


def _resolve_tree(upload, scope):
    """Each valid row's parent is known, the file's parent links form no cycle, a registered location
    is moved neither under itself nor to another level, and every row, and the place a move takes it
    to, is within the uploader's locations. Returns the rows ({code: (row number, parent it ends up
    under)}), the registered locations ({code: (id, path, depth)}), each good row's depth, each bad
    row's (column, message), and {code: parent} of the bad rows whose only fault is their parent's."""
    staged = StagedLocation.objects.filter(upload_id=upload.pk)
    given = {code: (number, parent) for number, code, parent in staged.filter(valid=True).values_list(
        "row_number", "code", "parent_code")}
    refused = {}  # the codes of rows with an error from reading the file: the rows they are on
    for code, number in staged.filter(valid=False).exclude(code="").order_by("row_number").values_list(
            "code", "row_number"):
        refused.setdefault(code, []).append(number)
    wanted = set(given) | {parent for _n, parent in given.values() if parent}
    registered, current = {}, {}  # code: (id, path, depth); code: its parent's code ("" at the top)
    for code, pk, path, depth, parent, parent_pk, parent_path, parent_depth in Location.objects.filter(
            code__in=wanted).values_list("code", "pk", "path", "depth", "parent__code", "parent_id", "parent__path",
                                         "parent__depth"):
        registered[code], current[code] = (pk, path, depth), parent or ""
        if parent:  # the parent a row with an empty parent_code keeps
            registered.setdefault(parent, (parent_pk, parent_path, parent_depth))
    # The parent each row ends up under: a registered location whose parent_code is empty keeps its own.
    rows = {code: (number, parent or current.get(code, "")) for code, (number, parent) in given.items()}
    levels = OrganisationSettings.load()
    problems, depth, follows = {}, {}, {}
    anchor = {}  # the path of the nearest ancestor registered and not in the file (None: the top)
    place = {}  # the path of the registered location the row hangs from, or its new parent's (None: the top)

    def resolve(code, trail):
        if code in depth or code in problems:
            return depth.get(code)
        number, parent = rows[code]
        if code in trail:
            problems[code] = ("parent_code", "The parent codes form a cycle: " + " > ".join([*trail, code]))
            return None
        if not parent:
            level, anchor[code], place[code] = 1, None, None
        elif parent in rows:
            above = resolve(parent, [*trail, code])
            if above is None:
                if code not in problems:
                    problems[code] = ("parent_code", _parent_has_errors(parent, [rows[parent][0]]))
                    follows[code] = parent
                return None
            level, anchor[code] = above + 1, anchor[parent]
            place[code] = registered[parent][1] if parent in registered else place[parent]
        elif parent in registered:
            level, anchor[code], place[code] = registered[parent][2] + 1, registered[parent][1], registered[parent][1]
        elif parent in refused:
            problems[code] = ("parent_code", _parent_has_errors(parent, refused[parent]))
            return None
        else:
            problems[code] = ("parent_code", f"No location has the code '{parent}'.")
            return None
        own = registered.get(code)
        if own and anchor[code] and anchor[code].startswith(own[1]):
            problems[code] = ("parent_code", "This would put the location under itself.")
            return None
        if own and level != own[2]:
            # The level is the depth (Region, District...); the file has no level column to say a change
            # is meant, and the whole subtree's levels would shift with it: a village under a region
            # would silently become a district. So a file moves a location only within its level; a
            # change of level is made in the location's own form, one location at a time.
            problems[code] = ("parent_code", _level_problem(levels, parent, own[2], level))
            return None
        depth[code] = level
        return level

    for code in rows:
        resolve(code, [])
    if not scope.national:
        for code, (_number, parent) in rows.items():
            if code in problems:
                continue
            own = registered.get(code)
            if not _within(scope, own[1] if own else place[code]):
                problems[code] = ("code", "Outside your locations.")
            elif own and parent != current[code] and not _within(scope, place[code]):
                problems[code] = ("parent_code", f"The parent '{parent}' is outside your locations: you can move "
                                                 "a location only within them.")
    return rows, registered, depth, problems, follows


def _parent_has_errors(parent, numbers):
    where = f"row {numbers[0]}" if len(numbers) == 1 else "rows " + ", ".join(str(n) for n in numbers)
    return f"The parent {parent} ({where}) has errors in this file: correct it too (the file of rows with errors has it)."


def _level_problem(levels, parent, before, after):
    keep = ("leave parent_code empty (it stays at the top)" if before == 1 else
            f"give a parent at the {levels.level_name(before - 1)} level, or leave parent_code empty to keep its "
            "parent")
    return (f"Under '{parent}' its level would change from {levels.level_name(before)} to "
            f"{levels.level_name(after)}: a file moves a location only within its level. Either {keep}; to change "
            "its level, edit it under Platform > Locations.")


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
            [(depth[code], registered[code][0] if code in registered else None, upload.pk, number)
             for code, (number, _parent) in rows.items() if code not in problems])
    for code, (column, message) in problems.items():
        flag(upload, column, message, StagedLocation.objects.filter(upload_id=upload.pk, code=code, valid=True),
             StagedLocation)


def _changed_since_check(upload):
    """[(row number, code, what changed)] of the valid rows that the tree and the uploader's locations
    as they are now refuse or put at another level than the check did, or whose code was added or
    deleted meanwhile. A row that fails only through its parent's row is left out: the parent's says."""
    rows, registered, depth, problems, follows = _resolve_tree(upload, scope_for(upload.uploaded_by))
    checked = {code: (pk, level) for code, pk, level in StagedLocation.objects.filter(
        upload_id=upload.pk, valid=True).values_list("code", "location_id", "depth")}
    levels = OrganisationSettings.load()
    new_level = {code for code, (pk, level) in checked.items()
                 if pk is None and code not in registered and depth.get(code, level) != level}
    changed = []
    for code, (number, parent) in rows.items():
        pk, level = checked[code]
        own = registered.get(code)
        above = depth[parent] if parent in depth else registered[parent][2] if parent in registered else None
        if (own[0] if own else None) != pk:
            reason = (f"{code} was deleted" if pk else f"{code} was added") + " under Platform > Locations"
        elif code in follows or (code in new_level and parent in new_level):
            continue
        elif code in problems and own and above is not None and above + 1 != own[2]:
            # A move's level no longer holds: the location itself, or its new parent, changed level.
            reason = (f"{code} is now a {levels.level_name(own[2])}, no longer a {levels.level_name(level)}"
                      if own[2] != level else
                      f"{parent} is now a {levels.level_name(above)}, no longer a {levels.level_name(level - 1)}")
        elif code in problems:
            reason = problems[code][1]
        elif code in new_level:
            reason = (f"its parent {parent} is now a {levels.level_name(above)}, no longer a "
                      f"{levels.level_name(level - 1)}")
        else:
            continue
        changed.append((number, code, reason))
    return sorted(changed)


def _lock_locations(upload):
    """The registered locations the file names (rows and parents), locked for the import: a move in a
    location's form (which rewrites its subtree's rows) waits for the import to commit, or the import
    waits for the move and then checks the tree with it."""
    staged = StagedLocation.objects.filter(upload_id=upload.pk, valid=True)
    list(Location.objects.select_for_update().filter(
        Q(code__in=staged.values("code")) | Q(code__in=staged.exclude(parent_code="").values("parent_code")))
        .order_by("pk").values_list("pk", flat=True))


def _changes(upload):
    """The valid rows of registered locations the file moves (to another parent, renamed or not) and
    those it only renames, each {row_number, location_id, name, parent_code, old_name, old_parent};
    and each such row's parent as registered. An empty parent_code keeps the parent the location has
    when this runs (at the import too: a move made meanwhile in the admin is not undone)."""
    rows = StagedLocation.objects.filter(upload_id=upload.pk, valid=True, location_id__isnull=False)
    current = {pk: (name, parent or "") for pk, name, parent in Location.objects.filter(
        pk__in=rows.values("location_id")).values_list("pk", "name", "parent__code")}
    renamed, moved, parents = [], [], {}
    for row in rows.order_by("row_number").values("row_number", "location_id", "name", "parent_code"):
        if row["location_id"] not in current:  # deleted since the check: problems() says so, the import refuses
            continue
        row["old_name"], row["old_parent"] = current[row["location_id"]]
        parents[row["row_number"]] = row["old_parent"]
        if row["parent_code"] and row["parent_code"] != row["old_parent"]:
            moved.append(row)
        elif row["old_name"] != row["name"]:
            renamed.append(row)
    return {"renamed": renamed, "moved": moved, "parents": parents}


def _parent_shown(row, parents):
    """The file's parent code, or what an empty one means: the registered parent kept, or the top."""
    if row["parent_code"]:
        return row["parent_code"]
    if row["location_id"] is None:
        return TOP
    kept = parents.get(row["row_number"])
    return f"{kept} (kept)" if kept else f"{TOP} (kept)"


def _people_under(location_ids):
    """{location id: (people, households)} at or under each location, in one statement."""
    def under(model):
        return Subquery(model.objects.live().filter(location__path__startswith=OuterRef("path")).order_by()
                        .annotate(n=Func(F("pk"), function="COUNT")).values("n"))

    return {pk: (people, households) for pk, people, households in Location.objects.filter(pk__in=location_ids)
            .annotate(people_under=under(Individual), households_under=under(Household))
            .values_list("pk", "people_under", "households_under")}


def _parent_labels(upload, codes):
    """{parent code: "name (code)"}, the name registered or, for a parent new in this file, the file's;
    the top of the tree for an empty code."""
    names = dict(StagedLocation.objects.filter(upload_id=upload.pk, valid=True, code__in=codes)
                 .values_list("code", "name"))
    names.update(Location.objects.filter(code__in=codes).values_list("code", "name"))
    return {code: f"{names.get(code, '')} ({code})" if code else TOP for code in codes}


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
                               [(row["name"], row["location_id"]) for row in changes["renamed"]])
    parents = dict(Location.objects.filter(code__in={row["parent_code"] for row in changes["moved"]})
                   .values_list("code", "pk"))
    for row in changes["moved"]:
        location = Location.objects.get(pk=row["location_id"])
        location.name, location.parent_id = row["name"], parents[row["parent_code"]]
        location.save()
    return created


IMPORTER = Importer()
