"""Changes to the platform's own data: the location tree."""

import csv
import io

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import ProtectedError

from .audit import audit, audit_event
from .models import Location

LOCATION_COLUMNS = ("code", "name", "parent_code")
MAX_LOCATION_FILE_BYTES = 5 * 1024 * 1024


def _require_permission(user, permission):
    if not user.has_perm(permission):
        raise PermissionDenied(f"You do not have the permission '{permission}'.")


@transaction.atomic
def location_delete(*, location, by):
    _require_permission(by, "sites.delete_location")
    try:
        audit(location, "wagtail.delete", by=by, data={"code": location.code, "name": location.name})
        location.delete()
    except ProtectedError:
        raise ValidationError(
            f"{location} still has sub-locations or registered records; move them first."
        ) from None


class LocationFileError(ValidationError):
    """Row-level errors of a location file: a list of (row, column, message)."""

    def __init__(self, errors):
        self.rows = errors
        super().__init__([f"Row {row}, column {column}: {message}" for row, column, message in errors])


def _decode(raw):
    if len(raw) > MAX_LOCATION_FILE_BYTES:
        raise LocationFileError([(0, "file", f"The file is larger than {MAX_LOCATION_FILE_BYTES // 1024} KB.")])
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise LocationFileError([(0, "file", "The file is not UTF-8 or UTF-16 text; save it as CSV UTF-8.")]) from None


@transaction.atomic
def locations_import_csv(*, content: bytes, by):
    """Create or update locations from a CSV with columns code, name, parent_code (empty for the top).
    The whole file is checked first; one bad row and nothing is written."""
    _require_permission(by, "sites.import_location")
    text = _decode(content)
    sample = text[:4096]
    delimiter = ";" if sample.count(";") > sample.count(",") else ("\t" if sample.count("\t") > sample.count(",") else ",")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = next(reader, None)
    if not header:
        raise LocationFileError([(1, "header", "The file is empty.")])
    names = [h.strip().lower().replace(" ", "_") for h in header]
    errors = []
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        errors.append((1, ", ".join(sorted(duplicates)), "This column appears more than once."))
    for missing in [c for c in LOCATION_COLUMNS if c not in names]:
        errors.append((1, missing, "Required column is missing."))
    for unknown in [n for n in names if n not in LOCATION_COLUMNS]:
        errors.append((1, unknown, "Unknown column."))
    if errors:
        raise LocationFileError(errors)

    rows, seen = [], {}
    for number, values in enumerate(reader, start=2):
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(names):
            errors.append((number, "row", f"Expected {len(names)} values, found {len(values)}."))
            continue
        row = {name: value.strip() for name, value in zip(names, values, strict=True)}
        for column in ("code", "name"):
            if not row[column]:
                errors.append((number, column, "This value is required."))
        if len(row["code"]) > 32:
            errors.append((number, "code", "At most 32 characters."))
        if len(row["name"]) > 128:
            errors.append((number, "name", "At most 128 characters."))
        if row["code"] in seen:
            errors.append((number, "code", f"'{row['code']}' already appears on row {seen[row['code']]}."))
        if row["code"] and row["code"] == row["parent_code"]:
            errors.append((number, "parent_code", "A location cannot be its own parent."))
        seen.setdefault(row["code"], number)
        rows.append((number, row))
    if not rows and not errors:
        raise LocationFileError([(2, "file", "The file has a header but no locations.")])

    existing = {loc.code: loc for loc in Location.objects.filter(
        code__in={r["code"] for _, r in rows} | {r["parent_code"] for _, r in rows if r["parent_code"]})}
    in_file = {r["code"] for _, r in rows}
    for number, row in rows:
        if row["parent_code"] and row["parent_code"] not in in_file and row["parent_code"] not in existing:
            errors.append((number, "parent_code", f"No location has the code '{row['parent_code']}'."))
    order = _parents_first(rows, errors)
    if errors:
        raise LocationFileError(sorted(errors, key=lambda e: (e[0], e[1])))

    created = updated = 0
    by_code = dict(existing)
    for number, row in order:
        parent = by_code.get(row["parent_code"]) if row["parent_code"] else None
        location = by_code.get(row["code"])
        if location is None:
            location = Location(code=row["code"], name=row["name"], parent=parent)
            created += 1
        elif location.name != row["name"] or location.parent_id != (parent.pk if parent else None):
            location.name, location.parent = row["name"], parent
            updated += 1
        else:
            continue
        if parent is not None and location.pk and parent.path.startswith(location.path):
            raise LocationFileError([(number, "parent_code", "This would put the location under itself.")])
        location.save()
        by_code[row["code"]] = location
    audit_event("mizani.import", by=by, data={"kind": "locations", "created": created, "updated": updated})
    return {"created": created, "updated": updated, "unchanged": len(rows) - created - updated}


def _parents_first(rows, errors):
    """Order rows so that each parent comes before its children; report cycles inside the file."""
    by_code = {row["code"]: (number, row) for number, row in rows}
    ordered, state = [], {}

    def visit(code, trail):
        if state.get(code) == "done":
            return
        if state.get(code) == "visiting":
            number, _ = by_code[code]
            errors.append((number, "parent_code", "The parent codes form a cycle: " + " > ".join(trail + [code])))
            return
        state[code] = "visiting"
        number, row = by_code[code]
        if row["parent_code"] in by_code:
            visit(row["parent_code"], trail + [code])
        state[code] = "done"
        ordered.append((number, row))

    for code in by_code:
        visit(code, [])
    return ordered
