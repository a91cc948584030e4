"""The individuals import (openIMIS template: first_name, last_name, dob, one column per registry
attribute, optional group_code / individual_role / recipient_info, and our location and national_id).

Three passes, none row-by-row against the database:
1. `stage`: the file streams through Python once; each row is checked on its own (types, required,
   choices, patterns, the location code among the uploader's locations) and written to staging.
2. `check`: set-based SQL over the staged rows: national IDs repeated in the file (naming the other
   row) or already registered, household consistency (one head and at most one primary recipient per
   group_code, a code not already used), and a household goes whole or not at all (a row in error
   leaves out all its members). Possible duplicates are warnings, not errors: same names and date of
   birth as someone registered, or as another row of the file (counted, shown first in the sample).
3. `import_rows`: households in one statement, then people and memberships in chunks of rows, each
   chunk one transaction (resumable); at the end the possible duplicates imported are filed as pairs
   in the registry's duplicate review queue."""

import datetime
import operator
import re

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, Max, Min, Q, Sum, Value
from django.db.models.functions import Concat, Lower
from django.utils import timezone

from schemes.registry.duplicates import file_name_dob_pairs
from schemes.registry.models import (
    OLDEST_BIRTH_YEAR,
    Household,
    Individual,
    MemberRole,
    Membership,
    RegistryField,
    name_problem,
    national_id_problem,
    normalise_national_id,
    phone_problem,
)
from sites.fields import ascii_digits
from sites.masking import MASKED_MESSAGE, is_masked
from sites.models import Location, OrganisationSettings
from sites.scoping import Scope, scope_for

from .files import Column, FileProblem, header_key
from .models import StagedError, StagedHousehold, StagedIndividual
from .staging import StagingWriter

SEX = {"f": "F", "female": "F", "m": "M", "male": "M", "o": "O", "other": "O"}
RECIPIENT = {"": "", "1": "PRIMARY", "2": "SECONDARY", "primary": "PRIMARY", "secondary": "SECONDARY"}
EXCEL_NUMBER = re.compile(r"^\d+([.,]\d+)?[eE]\+?\d+$")  # 1.23E+15, or 1,23E+15 where "," is the decimal mark
CHUNK = 50_000
ERROR_FIELDS = ("upload", "row_number", "column", "message")
# A staged row's names as the registry's search_name keeps a person's (the database's LOWER on both).
NAME_KEY = "LOWER({row}.first_name || ' ' || {row}.last_name)"
STAGED_FIELDS = ("upload", "row_number", "valid", "first_name", "last_name", "dob", "sex", "national_id", "phone",
                 "location_id", "attributes", "group_code", "role", "recipient")

CORE_COLUMNS = [
    Column("first_name", ("first name", "given name", "given_name"), required=True),
    Column("last_name", ("last name", "surname", "family name", "family_name"), required=True),
    Column("dob", ("date of birth", "date_of_birth", "birth_date", "birthdate"), required=True),
    Column("sex", ("gender",)),
    Column("national_id", ("national id number", "id number", "nin")),
    Column("phone", ("phone number", "mobile", "mobile number", "telephone")),
    Column("location", ("location code", "location_code")),
    Column("group_code", ("household code", "household", "household id")),
    Column("individual_role", ("role", "household role")),
    Column("recipient_info", ("recipient", "recipient type")),
]


def attribute_definitions():
    return list(RegistryField.objects.filter(target=RegistryField.Target.INDIVIDUAL).order_by("sort_order", "name"))


def columns():
    """The file's columns: ours, then one per registry attribute, read from a column headed by its
    name or by its label. A header is a field's name first: a label (or one of our aliases) that is
    another field's name (a person's or a household's attribute, one of our columns) is not
    accepted, nor a label two attributes share (refuse_ambiguous_headers names them)."""
    attributes, labels, _ = _attribute_headers()
    names = _field_name_keys(attributes)
    core = [Column(c.name, tuple(a for a in c.aliases if header_key(a) not in names), required=c.required)
            for c in CORE_COLUMNS]
    return core + [Column(d.name, tuple(label for label, owner in labels.items() if owner is d), required=d.required)
                   for d in attributes]


def _field_name_keys(attributes):
    household_names = RegistryField.objects.filter(target=RegistryField.Target.HOUSEHOLD).values_list("name", flat=True)
    return {header_key(name) for name in (*(c.name for c in CORE_COLUMNS), *(d.name for d in attributes),
                                          *household_names)}


def _attribute_headers():
    """(the person attributes the file may carry, {label: its attribute} for the labels accepted as
    headers, {header key: [attribute names]} for labels several attributes share)."""
    core_names = {column.name for column in CORE_COLUMNS}
    attributes = [d for d in attribute_definitions() if d.name not in core_names]
    taken = _field_name_keys(attributes) | {header_key(a) for c in CORE_COLUMNS for a in c.aliases}
    owners = {}
    for definition in attributes:
        key = header_key(definition.label or "")
        if key and key not in taken:
            owners.setdefault(key, []).append(definition)
    labels = {definitions[0].label: definitions[0] for definitions in owners.values() if len(definitions) == 1}
    shared = {key: [d.name for d in definitions] for key, definitions in owners.items() if len(definitions) > 1}
    return attributes, labels, shared


def refuse_ambiguous_headers(table):
    """A column headed by a label two attributes share could be either: the file is refused, naming
    both, rather than the column filed under one of them or dropped."""
    _, _, shared = _attribute_headers()
    for header in table.unknown:
        if names := shared.get(header_key(header)):
            meant = " or ".join(f'"{name}"' for name in names)
            raise FileProblem(f'The column "{header}" could be the attribute {meant} (each is labelled so): '
                              "head it with the attribute's name.")


def template_headers():
    return [column.name for column in columns()]


def parse_date(text, today):
    """YYYY-MM-DD only (in any script's digits): a clerk's 03/04/2020 could be March or April, an
    Excel serial is not a date."""
    text = ascii_digits(text)
    if len(text) != 10 or text[4] != "-" or text[7] != "-":
        if text.isdigit() and len(text) <= 5:
            raise ValueError(f"'{text}' looks like an Excel date number: format the column as YYYY-MM-DD.")
        raise ValueError(f"'{text}' is not a date as YYYY-MM-DD.")
    try:
        value = datetime.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"'{text}' is not a real date.") from None
    if value > today:
        raise ValueError(f"{text} is in the future.")
    if value.year < OLDEST_BIRTH_YEAR:
        raise ValueError(f"{text} is before {OLDEST_BIRTH_YEAR}.")
    return value


def household_code_key(code):
    """A non-ASCII household code case aside, folding at least as much as a database's LOWER (the
    unique index's): two codes kept apart here are never one code there. Python's lower() would make
    "ΑΣ" "ας" (LOWER: "ασ") and "İ" an i with a combining dot (LOWER: "i", under most collations)."""
    return code.casefold().replace("i\u0307", "i")


class PersonRows:
    """Checks the person columns of one row on its own (types, required, choices, patterns, the
    location among the user's): shared by every file that registers people."""

    NAMES = ("first_name", "last_name", "dob", "sex", "national_id", "phone", "location", "group_code",
             "individual_role", "recipient_info")

    def __init__(self, table, user):
        mapping = table.mapping
        self.headers = table.headers
        present = [(name, mapping[name]) for name in self.NAMES if name in mapping]
        self.present_names = [name for name, _ in present]
        # The row's cells of those columns in one C-level call (a tuple even for a single column).
        indexes = [index for _, index in present]
        self.pick = (operator.itemgetter(*indexes) if len(indexes) > 1
                     else (lambda cells: tuple(cells[i] for i in indexes)))
        self.header_of = {name: table.headers[index] for name, index in mapping.items()}
        self.definitions = [(d, mapping[d.name]) for d in attribute_definitions() if d.name in mapping]
        scope = scope_for(user)
        self.scope = scope
        self.code_key = {code.casefold(): pk for code, pk in scope.locations().values_list("code", "pk")}
        self.roles = {code.casefold(): code for code in MemberRole.objects.values_list("code", flat=True)}
        self.household_spellings = {}  # a household code case aside -> its spelling first met in the file
        self.national = scope.national
        self.today = timezone.localdate()
        self.national_id_rule = OrganisationSettings.load().national_id_rule()

    def without_location_column(self, who="each person"):
        """The file-level refusal, or "", of a file without a location column from a user limited to
        some locations: each row would be refused for its missing location (the registry places
        everyone the user registers among their locations), so the file is refused once instead."""
        if self.national or "location" in self.header_of:
            return ""
        roots = [str(location) for location in Location.objects.filter(path__in=self.scope.paths).order_by("path")[:6]]
        limited = ", ".join(roots[:5]) + (" and others" if len(roots) > 5 else "") if roots else "no location"
        return (f"This file has no location column: as your access is limited to {limited}, {who} needs a "
                f'location code (column "location").')

    def given(self, cells):
        return dict(zip(self.present_names, map(str.strip, self.pick(cells)), strict=True))

    def national_id(self, given, found):
        """The row's national ID, normalised, or None (Excel's damage and overlong IDs are errors)."""
        raw = given.get("national_id", "")
        if not raw:
            return None
        header = self.header_of["national_id"]
        if is_masked(raw):
            found.append((header, MASKED_MESSAGE))
            return None
        if EXCEL_NUMBER.match(raw):
            found.append((header, f"'{raw}' was turned into a number by Excel: the ID is lost; format the "
                                  "column as text and export again."))
            return None
        national_id = normalise_national_id(raw)
        if national_id and len(national_id) > 64:
            found.append((header, "At most 64 characters."))
            return None
        if self.national_id_rule and national_id and (problem := national_id_problem(national_id,
                                                                                     self.national_id_rule)):
            found.append((header, problem))
            return None
        return national_id

    def check(self, given, cells, national_id, found):
        """The staged values of a person row, after the national ID (see national_id); problems are
        appended to `found` as (header, message)."""
        header_of = self.header_of
        first, last = given.get("first_name", ""), given.get("last_name", "")
        for name, value in (("first_name", first), ("last_name", last)):
            if not value:
                found.append((header_of.get(name, name), "Required."))
            elif len(value) > 100:
                found.append((header_of[name], f"At most 100 characters ({len(value)})."))
            elif not value.isprintable() and (problem := name_problem(value)):  # the test in C first
                found.append((header_of[name], problem))
        dob = None
        raw = given.get("dob", "")
        if not raw:
            found.append((header_of.get("dob", "dob"), "Required."))
        else:
            try:
                dob = parse_date(raw, self.today)
            except ValueError as error:
                found.append((header_of["dob"], str(error)))
        raw = given.get("sex", "")
        sex = SEX.get(raw.casefold(), "")
        if raw and not sex:
            found.append((header_of["sex"], f"'{raw}' is not F, M or O (or leave it empty: not recorded)."))
        phone = given.get("phone", "")
        if is_masked(phone):
            found.append((header_of["phone"], MASKED_MESSAGE))
            phone = ""
        elif phone:
            phone = ascii_digits(phone)
            if problem := phone_problem(phone):
                found.append((header_of["phone"], problem))
                phone = ""
        location_id = None
        raw = given.get("location", "")
        if raw:
            location_id = self.code_key.get(raw.casefold())
            if location_id is None:
                found.append((header_of["location"], f"No location with code '{raw}' in your locations."))
        elif not self.national:
            found.append((header_of.get("location", "location"), "Required: a location code in your locations."))
        group_code = given.get("group_code", "")
        if len(group_code) > 32:
            found.append((header_of["group_code"], "At most 32 characters."))
            group_code = ""
        # "BH-7" and "bh-7" are one household (as the registry's index has it): every row of a code
        # gets the spelling the file used first, so the set checks and the import group them as one.
        group_code = self.household_spellings.setdefault(
            group_code.lower() if group_code.isascii() else household_code_key(group_code), group_code)
        raw = given.get("individual_role", "")
        role = self.roles.get(raw.casefold(), "") if raw else ""
        if raw and not role:
            found.append((header_of["individual_role"],
                          f"'{raw}' is not a household role ({', '.join(self.roles.values())})."))
        if raw and not group_code:
            found.append((header_of["individual_role"], "A role needs a group_code (the household)."))
        raw = given.get("recipient_info", "")
        recipient = RECIPIENT.get(raw.casefold())
        if recipient is None:
            found.append((header_of["recipient_info"], f"'{raw}' is not 1 (primary) or 2 (secondary)."))
            recipient = ""
        elif recipient and not group_code:
            found.append((header_of["recipient_info"], "A recipient needs a group_code (the household)."))
        attributes = {}
        for definition, index in self.definitions:
            raw = cells[index] if index < len(cells) else ""
            if definition.sensitive and is_masked(raw):
                found.append((self.headers[index], MASKED_MESSAGE))
                continue
            try:
                value = definition.to_python(raw)
            except ValidationError as error:
                found.append((self.headers[index], " ".join(error.messages)))
                continue
            if value is not None:
                attributes[definition.name] = definition.to_json(value)
        return (first[:100], last[:100], dob, sex, national_id, phone, location_id, attributes, group_code, role,
                recipient)


def stage(upload, table, user):
    """Pass 1: every row checked on its own and staged. Returns the number of data rows."""
    refuse_ambiguous_headers(table)
    people = PersonRows(table, user)
    if problem := people.without_location_column():
        raise FileProblem(problem)
    upload_id = upload.pk
    count = 0
    with StagingWriter(StagedIndividual, STAGED_FIELDS, streaming=True) as rows, \
            StagingWriter(StagedError, ERROR_FIELDS) as errors:
        for row_number, cells, problem in table.rows():
            count += 1
            found = [(problem.column or "", problem.message)] if problem else []
            given = people.given(cells)
            values = people.check(given, cells, people.national_id(given, found), found)
            rows.write((upload_id, row_number, not found, *values))
            for column, message in found:
                errors.write((upload_id, row_number, column, message))
    return count


def flag(upload, column, message, queryset, model=StagedIndividual, *, code="", mark_invalid=True):
    """Add `message` (and its machine-readable `code`, where the format has codes) to every staged row
    `queryset` (of `model`) selects, and mark them invalid (two statements, after counting whether
    there is any). Used by every importer's checks. `mark_invalid=False`: the caller marks every row
    with an error invalid at the end, in one statement (the query is not run a second time)."""
    # Counted, not probed with LIMIT 1: a file without the problem (the usual case) is read to the
    # end either way, and a count is planned as the full read it is (parallel, hashed).
    if not queryset.count():
        return
    numbers = queryset.values("row_number")
    table = connection.ops.quote_name(StagedError._meta.db_table)
    sql, params = numbers.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {table} (upload_id, row_number, {connection.ops.quote_name('column')}, message, "
                       f"code) SELECT %s, picked.row_number, %s, %s, %s FROM ({sql}) picked",
                       [upload.pk, column, message, code, *params])
    if mark_invalid:
        model.objects.filter(upload_id=upload.pk, row_number__in=numbers).update(valid=False)


def check(upload):
    """Pass 2: what only the whole file and the registry can tell, in SQL."""
    if connection.vendor == "postgresql":  # the planner must know the staged rows to join them by hash
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(StagedIndividual._meta.db_table)}")
    staged = StagedIndividual.objects.filter(upload_id=upload.pk)
    _flag_repeated_national_ids(upload)
    registered = Individual.objects.live().filter(national_id__isnull=False).values("national_id")
    flag(upload, "national_id", "Someone with this national ID is already registered.",
           staged.filter(national_id__in=registered))
    _check_households(upload, staged)
    keep_households_whole(upload)
    _mark_possible_duplicates(upload)


def _flag_repeated_national_ids(upload):
    """Rows sharing a national ID: each flagged naming another row with it (the group's first row,
    or for the first row its last), so the clerk finds the pair."""
    quote = connection.ops.quote_name
    staged, errors = quote(StagedIndividual._meta.db_table), quote(StagedError._meta.db_table)
    repeated = (f"SELECT national_id, COUNT(*) AS n, MIN(row_number) AS first_row, MAX(row_number) AS last_row "
                f"FROM {staged} WHERE upload_id = %s AND national_id IS NOT NULL GROUP BY national_id "
                f"HAVING COUNT(*) > 1")
    other = "CASE WHEN s.row_number = g.first_row THEN g.last_row ELSE g.first_row END"
    message = (f"CAST(%s AS TEXT) || CAST({other} AS TEXT) || CASE WHEN g.n > 2 THEN CAST(%s AS TEXT) || "
               f"CAST(g.n - 2 AS TEXT) || CAST(%s AS TEXT) ELSE '' END || CAST(%s AS TEXT)")  # "... 7 and 2 more."
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {errors} (upload_id, row_number, {quote('column')}, message, code) "
            f"SELECT %s, s.row_number, 'national_id', {message}, '' FROM {staged} s "
            f"JOIN ({repeated}) g ON g.national_id = s.national_id WHERE s.upload_id = %s",
            [upload.pk, "This national ID is on more than one row of the file: also on row ", " and ", " more",
             ".", upload.pk, upload.pk])
        if cursor.rowcount:
            cursor.execute(f"UPDATE {staged} SET valid = %s WHERE upload_id = %s AND national_id IN "
                           f"(SELECT national_id FROM ({repeated}) g)", [False, upload.pk, upload.pk])


def _check_households(upload, staged):
    grouped = staged.exclude(group_code="")
    folded = grouped.annotate(folded_code=Lower("group_code"))
    # Folded on both sides as the registry's unique index folds codes (deleted households too).
    registered = Household.objects.annotate(folded_code=Lower("code")).values("folded_code")
    flag(upload, "group_code", "A household with this code is already registered (codes are compared ignoring "
                               "upper and lower case): a file creates new households.",
           folded.filter(folded_code__in=registered))
    # Each household's members in one pass; only the checks it finds broken read the rows again (a
    # file without household problems, the usual case, is read once for all of them).
    households = grouped.values("group_code").annotate(
        first=Min("row_number"), first_without_role=Min("row_number", filter=Q(role="")),
        heads=Count("pk", filter=Q(role="HEAD")), primaries=Count("pk", filter=Q(recipient="PRIMARY")),
        secondaries=Count("pk", filter=Q(recipient="SECONDARY")))
    first_has_role = Q(first_without_role__isnull=True) | Q(first_without_role__gt=F("first"))
    # The role is optional (openIMIS): a member the file gives none becomes head if it is the first row
    # of a household naming no head, else MEMBER (prepare_import), even where other rows name roles.
    # The file's roles are never overridden: a household whose first row has a role, none HEAD, has no
    # head; one naming a secondary recipient and no primary has no primary (DOMAIN).
    broken = {"many_heads": Q(heads__gt=1), "many_primaries": Q(primaries__gt=1),
              "headless": Q(heads=0) & first_has_role, "no_primary": Q(primaries=0, secondaries__gt=0)}
    found = households.aggregate(**{name: Count("group_code", filter=where) for name, where in broken.items()})
    for role, label, field, name in (("HEAD", "head", "role", "many_heads"),
                                     ("PRIMARY", "primary recipient", "recipient", "many_primaries")):
        if found[name]:
            column = "individual_role" if field == "role" else "recipient_info"
            flag(upload, column, f"The household has more than one {label} in the file.",
                 grouped.filter(**{field: role}, group_code__in=households.filter(broken[name]).values("group_code")))
    if found["headless"]:
        flag(upload, "individual_role", "The household has no head (individual_role HEAD).",
             grouped.filter(group_code__in=households.filter(broken["headless"]).values("group_code")))
    if found["no_primary"]:
        flag(upload, "recipient_info", "The household has a secondary recipient but no primary (recipient_info 1).",
             grouped.filter(group_code__in=households.filter(broken["no_primary"]).values("group_code")))


WHOLE_HOUSEHOLD = "has an error: a household is imported whole, with all its members."


def keep_households_whole(upload):
    """A household is imported whole or not at all: every valid row of a household (group_code) with a
    row in error is flagged, naming that row, and left out; so the error file holds whole households
    and, corrected, creates them. One pass over all households (on PostgreSQL one statement)."""
    quote = connection.ops.quote_name
    staged, errors = quote(StagedIndividual._meta.db_table), quote(StagedError._meta.db_table)
    faulty = (f"SELECT group_code, MIN(row_number) AS first_row FROM {staged} "
              f"WHERE upload_id = %s AND NOT valid AND group_code <> '' GROUP BY group_code")
    message = ("CAST(%s AS TEXT) || CAST(first_row AS TEXT) || CAST(%s AS TEXT) || group_code || "
               "CAST(%s AS TEXT)")
    insert_errors = f"INSERT INTO {errors} (upload_id, row_number, {quote('column')}, message, code) "
    message_params = ["Row ", " of household ", f" {WHOLE_HOUSEHOLD}"]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"WITH faulty AS ({faulty}), left_out AS (UPDATE {staged} s SET valid = false FROM faulty f "
                f"WHERE s.upload_id = %s AND s.valid AND s.group_code = f.group_code "
                f"RETURNING s.row_number, s.group_code, f.first_row) "
                f"{insert_errors} SELECT %s, row_number, 'group_code', {message}, '' FROM left_out",
                [upload.pk, upload.pk, upload.pk, *message_params])
            return
        cursor.execute(
            f"{insert_errors} SELECT %s, s.row_number, 'group_code', {message}, '' "
            f"FROM {staged} s JOIN ({faulty}) f USING (group_code) WHERE s.upload_id = %s AND s.valid",
            [upload.pk, *message_params, upload.pk, upload.pk])
        if cursor.rowcount:
            cursor.execute(f"UPDATE {staged} SET valid = %s WHERE upload_id = %s AND valid AND group_code IN "
                           f"(SELECT group_code FROM ({faulty}) f)", [False, upload.pk, upload.pk])


def _mark_possible_duplicates(upload):
    """Rows whose names and date of birth are a registered person's (anywhere: the clerk is told of a
    twin outside their locations without being shown who): importable, but shown to the clerk and
    the checker as possible duplicates. Driven by the file's rows: each finds its namesakes born that
    day by the registry's date-of-birth index (SQLite), or all at once by hash (PostgreSQL); never
    the registry probing the file once per registered person (quadratic without an index there)."""
    quote = connection.ops.quote_name
    staged, people = quote(StagedIndividual._meta.db_table), quote(Individual._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {staged} AS s SET possible_duplicate_of = twins.id "
            f"FROM (SELECT f.row_number, MIN(p.id) AS id FROM {staged} f JOIN {people} p "
            f"      ON p.dob = f.dob AND p.search_name = {NAME_KEY.format(row='f')} "
            f"      WHERE f.upload_id = %s AND f.valid AND p.deleted_at IS NULL GROUP BY f.row_number) twins "
            f"WHERE s.upload_id = %s AND s.row_number = twins.row_number",
            [upload.pk, upload.pk])


def _file_twins(upload):
    """The groups of importable rows with the same names and date of birth, at least one without a
    national ID (the same person twice in the file? two rows with IDs are two people, the IDs
    being unique): {"name_key", "dob", "rows", "first", "first_without_id"}."""
    return (_importable(upload).annotate(name_key=Lower(Concat("first_name", Value(" "), "last_name")))
            .values("name_key", "dob").annotate(rows=Count("pk"), first=Min("row_number"),
                                                first_without_id=Min("row_number", filter=Q(national_id__isnull=True)))
            .filter(rows__gt=1, first_without_id__isnull=False))


def counts(upload):
    """The upload's counts in one pass over its staged rows (and one each for the distinct households
    and the rows that are twins within the file)."""
    staged = StagedIndividual.objects.filter(upload_id=upload.pk)
    totals = staged.aggregate(all_rows=Count("pk"), valid_rows=Count("pk", filter=Q(valid=True)), twins=Count(
        "pk", filter=Q(valid=True, possible_duplicate_of__isnull=False)),
        no_sex=Count("pk", filter=Q(valid=True, sex="")))
    # Where the file names no head (no recipient), the household's first member becomes head (primary),
    # and the other members it gives no role become MEMBER: counted, so the clerk and the checker see the
    # rules applied. A household left valid without a head has its first row without a role (the check).
    households = (staged.filter(valid=True).exclude(group_code="").values("group_code")
                  .annotate(heads=Count("pk", filter=Q(role="HEAD")), recipients=Count("pk", filter=~Q(recipient="")),
                            without_role=Count("pk", filter=Q(role="")))
                  .aggregate(households=Count("group_code"), first_member_heads=Count("group_code", filter=Q(heads=0)),
                             first_member_primaries=Count("group_code", filter=Q(recipients=0)),
                             roleless_rows=Sum("without_role")))
    households["members_without_role"] = (households.pop("roleless_rows") or 0) - households["first_member_heads"]
    in_file = _file_twins(upload).aggregate(twin_rows=Sum("rows"))["twin_rows"]
    return {"rows": totals["all_rows"], "valid": totals["valid_rows"], "errors": totals["all_rows"] - totals["valid_rows"],
            "creates": totals["valid_rows"], **households, "possible_duplicates": totals["twins"],
            **({"possible_duplicates_in_file": in_file} if in_file else {}),
            # Sex is optional (the openIMIS template has no such column): the clerk sees how many go in without.
            **({"sex_not_recorded": totals["no_sex"]} if totals["no_sex"] else {})}


SAMPLE_HEADINGS = ("Who", "Date of birth", "Household")
ELSEWHERE = "someone registered outside your locations"


def sample(upload, size=10):
    """The rows to import, the possible duplicates first (however far down the file they are), then
    the first rows: {"row_number", "summary" (one line, naming what the row may duplicate), "cells"
    (under SAMPLE_HEADINGS), "possible_duplicate_of" (the registered person's id, only if in the
    uploader's locations), "duplicate_elsewhere" (a registered person outside them), "duplicate_rows"
    (the other rows of the file with the same person, in words)}."""
    counted = upload.counts
    flagged_rows = set()
    if counted.get("possible_duplicates"):
        flagged_rows.update(_importable(upload).filter(possible_duplicate_of__isnull=False).order_by("row_number")
                            .values_list("row_number", flat=True)[:size])
    in_file = {}  # row number -> the other rows of the file with its names and date of birth
    if counted.get("possible_duplicates_in_file"):
        groups = list(_file_twins(upload).order_by("first")[:size])
        keyed = {(group["name_key"], group["dob"]): [] for group in groups}
        members = (_importable(upload).annotate(name_key=Lower(Concat("first_name", Value(" "), "last_name")))
                   .filter(dob__in={dob for _, dob in keyed}).order_by("row_number")
                   .values_list("row_number", "name_key", "dob"))
        for number, name_key, dob in members.iterator():
            if (name_key, dob) in keyed:
                keyed[name_key, dob].append(number)
        for numbers in keyed.values():
            for number in numbers:
                in_file[number] = [other for other in numbers if other != number]
        flagged_rows.update(in_file)
    first_flagged = sorted(flagged_rows)[:size]
    fields = ("row_number", "first_name", "last_name", "dob", "group_code", "possible_duplicate_of")
    rows = list(_importable(upload).filter(row_number__in=first_flagged).order_by("row_number").values(*fields))
    if len(rows) < size:
        rows += _importable(upload).exclude(row_number__in=first_flagged).order_by("row_number").values(
            *fields)[:size - len(rows)]
    in_scope = _in_uploader_scope(upload, {row["possible_duplicate_of"] for row in rows} - {None})
    shown = []
    for row in rows:
        registered, others = row["possible_duplicate_of"], in_file.get(row["row_number"], [])
        linked = registered if registered in in_scope else None
        elsewhere = registered is not None and linked is None
        twin = [f"person {linked}" if linked else ELSEWHERE] if registered is not None else []
        twin += [_rows_named(others)] if others else []
        name = f"{row['first_name']} {row['last_name']}"
        shown.append({"row_number": row["row_number"],
                      "summary": f"{name} (possible duplicate of {' and of '.join(twin)})" if twin else name,
                      "cells": [name, row["dob"].isoformat() if row["dob"] else "", row["group_code"] or "—"],
                      "possible_duplicate_of": linked, "duplicate_elsewhere": elsewhere,
                      "duplicate_rows": _rows_named(others) if others else ""})
    return shown


def _rows_named(numbers, shown=3):
    named = ", ".join(map(str, numbers[:shown]))
    more = f" and {len(numbers) - shown:,} more" if len(numbers) > shown else ""
    return f"row{'s' if len(numbers) > 1 else ''} {named}{more} of the file"


def _in_uploader_scope(upload, person_ids):
    """Those of `person_ids` placed in the uploader's locations (as they were at the upload): the
    only registered people the upload's page names and links (a clerk gets a 404 on the others)."""
    if not person_ids:
        return set()
    if upload.scope_root_id:
        scope = Scope(national=False, paths=(upload.scope_root.path,))
    else:
        scope = scope_for(upload.uploaded_by)
    return set(scope.filter(Individual.objects.filter(pk__in=person_ids)).values_list("pk", flat=True))


# --- pass 3: the import ------------------------------------------------------------------------

def _importable(upload):
    return StagedIndividual.objects.filter(upload_id=upload.pk, valid=True)


def prepare_import(upload):
    """Once, before the chunks: each household's first member becomes head where the file names no
    head and gives that member no role, and primary recipient where the file names no recipient (the
    check refused any other household without a head or a primary: no declared role is overridden);
    the other members the file gives no role become MEMBER; then the households are created (one
    statement) at their head's location, and their ids noted by code (StagedHousehold)."""
    quote = connection.ops.quote_name
    staged = quote(StagedIndividual._meta.db_table)
    households = quote(Household._meta.db_table)
    mapping = quote(StagedHousehold._meta.db_table)
    now = timezone.now()
    with connection.cursor() as cursor:
        # One pass for both: the households' first rows, and whether each names a head and a primary.
        cursor.execute(
            f"UPDATE {staged} SET role = CASE WHEN firsts.heads = 0 AND role = '' THEN 'HEAD' ELSE role END, "
            f"recipient = CASE WHEN firsts.recipients = 0 THEN 'PRIMARY' ELSE recipient END "
            f"FROM (SELECT MIN(row_number) AS first_row, "
            f"SUM(CASE WHEN role = 'HEAD' THEN 1 ELSE 0 END) AS heads, "
            f"SUM(CASE WHEN recipient <> '' THEN 1 ELSE 0 END) AS recipients "
            f"FROM {staged} WHERE upload_id = %s AND valid AND group_code <> '' GROUP BY group_code "
            f"HAVING SUM(CASE WHEN role = 'HEAD' THEN 1 ELSE 0 END) = 0 "
            f"OR SUM(CASE WHEN recipient <> '' THEN 1 ELSE 0 END) = 0) firsts "
            f"WHERE upload_id = %s AND row_number = firsts.first_row",
            [upload.pk, upload.pk])
        if upload.counts.get("members_without_role"):
            cursor.execute(f"UPDATE {staged} SET role = %s WHERE upload_id = %s AND valid AND group_code <> '' "
                           f"AND role = ''", [MemberRole.MEMBER, upload.pk])
        # The codes were free at the check: the households go in plainly (the unique index checks each
        # code as it goes in). Only if one was registered since then does the statement run again,
        # skipping the taken codes (ON CONFLICT: a speculative insertion per row, ~1 s per 300k). A
        # NOT EXISTS probe of the table being filled would be planned on its size before the statement
        # (empty, at a first national load) and scan it once per row.
        plain = (f"INSERT INTO {households} (code, location_id, attributes, created_at, updated_at) "
                 f"SELECT s.group_code, s.location_id, %s, %s, %s FROM {staged} s "
                 f"WHERE s.upload_id = %s AND s.valid AND s.role = 'HEAD' AND s.group_code <> ''")
        params = ["{}", now, now, upload.pk]
        try:
            with transaction.atomic():
                created = _create_households(cursor, plain, params, upload.pk, mapping)
        except IntegrityError:
            # The conflict target names the unique index on the code case aside (household_code_unique_any_case).
            created = _create_households(cursor, f"{plain} ON CONFLICT ((LOWER(code))) DO NOTHING", params, upload.pk,
                                         mapping)
        if created < upload.counts.get("households", 0):
            # A code registered since the check (rare: read only then): its rows are not imported, rather
            # than people registered without their household.
            cursor.execute(
                f"UPDATE {staged} SET valid = %s WHERE upload_id = %s AND valid AND group_code <> '' AND NOT EXISTS "
                f"(SELECT 1 FROM {mapping} h WHERE h.upload_id = %s AND h.group_code = {staged}.group_code)",
                [False, upload.pk, upload.pk])
        return created


def _create_households(cursor, insert, params, upload_id, mapping):
    """Run `insert` (households) and note exactly those it created by code (RETURNING): the members of
    a code taken meanwhile join no one else's household. Returns how many."""
    if connection.vendor == "postgresql":
        cursor.execute(f"WITH created AS ({insert} RETURNING id, code) "
                       f"INSERT INTO {mapping} (upload_id, group_code, household_id) SELECT %s, code, id FROM created",
                       [*params, upload_id])
        created = cursor.rowcount
        # Known to the planner, each chunk's members find their household by index, not by hashing all.
        cursor.execute(f"ANALYZE {mapping}")
        return created
    cursor.execute(f"{insert} RETURNING id, code", params)
    rows = [(upload_id, code, household_id) for household_id, code in cursor.fetchall()]
    cursor.executemany(f"INSERT INTO {mapping} (upload_id, group_code, household_id) VALUES (%s, %s, %s)", rows)
    return len(rows)


def reserve_ids(upload, last_row):
    """Reserve the ids the file's people will get: id = base + row number, so no statement has to
    hand them out row by row. Returns the base. The table is locked against other writers while the
    block is taken (one short statement's transaction)."""
    quote = connection.ops.quote_name
    table = Individual._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"LOCK TABLE {quote(table)} IN EXCLUSIVE MODE")
            cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id'))", [table])
            base = cursor.fetchone()[0]
            cursor.execute("SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)", [table, base + last_row])
            return base
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {quote(table)}")
        base = max(cursor.fetchone()[0], _sqlite_sequence(cursor, table))
        cursor.execute("UPDATE sqlite_sequence SET seq = %s WHERE name = %s", [base + last_row, table])
        if not cursor.rowcount:
            cursor.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (%s, %s)", [table, base + last_row])
        return base


def _sqlite_sequence(cursor, table):
    cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [table])
    row = cursor.fetchone()
    return row[0] if row else 0


def import_chunk(upload, first_row, last_row, id_base):
    """People of rows first_row..last_row (their ids: id_base + row number) and their memberships,
    by INSERT ... SELECT. The national IDs were free at the check: the people go in plainly (the
    unique index checks each as it goes in). Only if one was registered since then does the chunk run
    again, skipping that person (ON CONFLICT: a speculative insertion per row) and their membership."""
    quote = connection.ops.quote_name
    staged, people = quote(StagedIndividual._meta.db_table), quote(Individual._meta.db_table)
    members, mapping = quote(Membership._meta.db_table), quote(StagedHousehold._meta.db_table)
    rows_of_s = "s.upload_id = %s AND s.valid AND s.row_number BETWEEN %s AND %s"
    span = [upload.pk, first_row, last_row]
    now = timezone.now()
    insert_people = (
        f"INSERT INTO {people} (id, first_name, last_name, dob, sex, national_id, phone, location_id, "
        f"attributes, created_at, updated_at) "
        f"SELECT %s + s.row_number, s.first_name, s.last_name, s.dob, s.sex, s.national_id, s.phone, "
        f"s.location_id, s.attributes, %s, %s FROM {staged} s WHERE {rows_of_s}")
    people_params = [id_base, now, now, *span]
    insert_members = (f"INSERT INTO {members} (household_id, individual_id, role_id, recipient_type, joined_at) "
                      f"SELECT h.household_id, %s + s.row_number, s.role, NULLIF(s.recipient, ''), %s ")
    of_household = f"JOIN {mapping} h ON h.upload_id = s.upload_id AND h.group_code = s.group_code"

    def insert(people_sql):
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                # One statement: the members are those of the people just created (RETURNING), so no
                # join reads the whole registry to find out which rows were skipped.
                cursor.execute(
                    f"WITH created AS ({people_sql} RETURNING id), "
                    f"members AS ({insert_members} FROM created c JOIN {staged} s ON s.row_number = c.id - %s "
                    f"AND {rows_of_s} {of_household} RETURNING 1) "
                    f"SELECT (SELECT COUNT(*) FROM created), (SELECT COUNT(*) FROM members)",
                    [*people_params, id_base, now, id_base, *span])
                return cursor.fetchone()[0]
            cursor.execute(people_sql, people_params)
            created = cursor.rowcount
            cursor.execute(f"{insert_members} FROM {staged} s {of_household} JOIN {people} p "
                           f"ON p.id = %s + s.row_number WHERE {rows_of_s}", [id_base, now, id_base, *span])
            return created

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # The trigram index on names takes new entries in a pending list merged when it is full: a
            # list big enough for a chunk merges once per chunk instead of many times.
            cursor.execute("SET LOCAL gin_pending_list_limit = '64MB'")
    try:
        with transaction.atomic():
            return insert(insert_people)
    except IntegrityError:
        return insert(f"{insert_people} ON CONFLICT (national_id) WHERE deleted_at IS NULL DO NOTHING")


def record_possible_duplicates(upload, id_base):
    """The imported people flagged as possible duplicates go to the registry's review queue, each
    paired with the registered person it matched, or with the first row without a national ID of
    its group in the file (one pair per row, not every pair of a crowded group). One statement.
    `id_base`: see reserve_ids."""
    quote = connection.ops.quote_name
    staged = quote(StagedIndividual._meta.db_table)
    selects, params = [], []
    if upload.counts.get("possible_duplicates"):
        selects.append(f"SELECT %s + row_number AS a, possible_duplicate_of AS b FROM {staged} "
                       f"WHERE upload_id = %s AND valid AND possible_duplicate_of IS NOT NULL")
        params += [id_base, upload.pk]
    if upload.counts.get("possible_duplicates_in_file"):
        # Each row of a group with its first row without an ID: one pair per row, never two rows with IDs.
        name_key = NAME_KEY.format(row="f")
        groups = (f"SELECT dob, {name_key} AS name_key, MIN(CASE WHEN national_id IS NULL THEN row_number END) "
                  f"AS first_without_id FROM {staged} f WHERE upload_id = %s AND valid GROUP BY dob, {name_key} "
                  f"HAVING COUNT(*) > 1")
        selects.append(f"SELECT %s + g.first_without_id AS a, %s + s.row_number AS b FROM {staged} s "
                       f"JOIN ({groups}) g ON g.dob = s.dob AND g.name_key = {NAME_KEY.format(row='s')} "
                       f"WHERE s.upload_id = %s AND s.valid AND s.row_number <> g.first_without_id")
        params += [id_base, id_base, upload.pk, upload.pk]
    if selects:
        file_name_dob_pairs(" UNION ALL ".join(selects), params)


def row_span(upload):
    """(first, last) row numbers of the importable rows, or None."""
    bounds = _importable(upload).aggregate(first=Min("row_number"), last=Max("row_number"))
    return None if bounds["first"] is None else (bounds["first"], bounds["last"])


def clear(upload):
    """Staging rows go once the upload is imported or discarded (its error file stays)."""
    StagedIndividual.objects.filter(upload_id=upload.pk).delete()
    StagedHousehold.objects.filter(upload_id=upload.pk).delete()
    StagedError.objects.filter(upload_id=upload.pk).delete()


class Importer:
    """This module as the pipeline sees an importer (the interface beneficiaries.Importer shares)."""

    CHUNK = CHUNK
    READS = (Individual, Household, Membership)  # tables its checks and statements join
    # Rows skipped at import (registered meanwhile) are counted as such.
    SKIPS_REGISTERED_MEANWHILE = True

    def columns(self, plan):
        return columns()

    def template_headers(self, plan):
        return template_headers()

    stage = staticmethod(stage)
    check = staticmethod(check)
    counts = staticmethod(counts)
    sample = staticmethod(sample)
    SAMPLE_HEADINGS = SAMPLE_HEADINGS
    reserve_ids = staticmethod(reserve_ids)
    import_chunk = staticmethod(import_chunk)
    row_span = staticmethod(row_span)
    clear = staticmethod(clear)

    def problems(self, upload):
        return ""

    def prepare_import(self, upload):
        return {"households": prepare_import(upload)}

    def finish(self, upload, imported, by, id_base):
        record_possible_duplicates(upload, id_base)

    def progress_text(self, count):
        return f"{count:,} people imported"


IMPORTER = Importer()
