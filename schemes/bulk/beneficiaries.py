"""Beneficiaries of one plan from a file: new enrolments, and updates of enrolled beneficiaries.

New enrolments (kind BENEFICIARIES)
- Individual plan: each row names a person by `national_id`. A person registered (and live) with
  that ID is enrolled as they are (the person columns are not read); otherwise the row registers the
  person first, exactly as an individuals file would (the person columns are then required, and
  group_code / individual_role / recipient_info build households). Columns: the individuals
  template, the plan's schema fields, and an optional `status` (POTENTIAL only: activation is an
  approved change of status of its own).
- Household plan: each row names a registered household by `group_code` (its code), plus the plan's
  schema fields and `status`.
Updates (kind BENEFICIARY_UPDATES): each row names a beneficiary of the plan by `ID`; only the schema
fields the file has columns for are merged, and an empty cell leaves the value as it is.

Like the individuals import: one streaming pass stages every row (registered people and households
are found a batch of rows at a time, one query per batch), set-based SQL checks the whole file, and
the import runs INSERT ... SELECT (or one UPDATE) per chunk of rows."""

from dataclasses import replace
from functools import partial

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import BooleanField, Case, Count, Exists, F, Max, Min, OuterRef, Subquery, Value, When
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Coalesce
from django.utils import timezone

from schemes.plans.catalogues import beneficiary_catalogue, candidate_catalogue
from schemes.plans.models import (
    LIVE_STATUSES,
    Beneficiary,
    BeneficiaryStatus,
    BenefitPlan,
    HouseholdBeneficiary,
    PlanStatus,
    PlanType,
)
from schemes.plans.selectors import beneficiaries_of_plan_for, with_criteria_check
from schemes.plans.services import plan_ended, status_rule
from schemes.registry.models import Household, Individual, Membership
from schemes.rules.catalogue import NUMBER_FIELD, Catalogue, attribute_spec, household_specs
from schemes.rules.compiler import compile_rule, to_sql
from schemes.rules.errors import RuleError
from schemes.rules.nodes import from_json
from schemes.rules.sql import IsTrue
from sites.audit import audit, audit_many
from sites.dates import years_before
from sites.fields import ascii_digits
from sites.masking import MASK, MASKED_MESSAGE, is_masked
from sites.models import Location
from sites.scoping import scope_for

from . import individuals
from .files import Column, FileProblem
from .models import StagedBeneficiary, StagedError, StagedIndividual, UploadKind
from .staging import StagingWriter

CHUNK = individuals.CHUNK
BATCH = 5000  # rows whose registered people or households are looked up in one query
# An import enrols as POTENTIAL (DOMAIN): activation is its own approved change of status.
ENROL_STATUSES = {"": BeneficiaryStatus.POTENTIAL, "potential": BeneficiaryStatus.POTENTIAL}
STAGED_FIELDS = ("upload", "row_number", "valid", "national_id", "individual_id", "household_id", "beneficiary_id",
                 "status", "attributes", "changed")
STATUS_COLUMN = Column("status", ("beneficiary status", "beneficiary_status"))
HOUSEHOLD_COLUMN = Column("group_code", ("household code", "household_code", "household", "code"), required=True)
ID_COLUMN = Column("ID", ("id", "beneficiary id", "beneficiary_id"), required=True)


def _plan_columns(plan, *, updates):
    """One column per schema field; in an update file none is required (an absent field is kept)."""
    return [Column(d.name, (d.label,), required=d.required and not updates) for d in plan.schema().definitions]


def _is_household_plan(plan):
    return plan.plan_type == PlanType.HOUSEHOLD


class Importer:
    SKIPS_REGISTERED_MEANWHILE = False  # its count is of enrolments and updates, not of rows
    """The importer of one kind (new enrolments or updates), for one plan."""

    def __init__(self, kind):
        self.kind = kind
        self.updates = kind == UploadKind.BENEFICIARY_UPDATES
        self.CHUNK = CHUNK
        # Memberships too: the plan's criteria count a household's members.
        self.READS = (Individual, Household, Membership, Beneficiary, HouseholdBeneficiary)

    # --- the file ------------------------------------------------------------------------------

    def columns(self, plan):
        fields = _plan_columns(plan, updates=self.updates)
        if self.updates:
            return [ID_COLUMN, *fields]
        if _is_household_plan(plan):
            return [HOUSEHOLD_COLUMN, *fields, STATUS_COLUMN]
        people = [Column(c.name, c.aliases) for c in individuals.columns()]  # needed only for new people
        taken = {c.name for c in people}
        return [*people, *[c for c in fields if c.name not in taken], STATUS_COLUMN]

    def template_headers(self, plan):
        # `status` is read (POTENTIAL only) but not offered: a new beneficiary is enrolled as potential.
        return [column.name for column in self.columns(plan) if column.name != "status"]

    # --- pass 1: each row ------------------------------------------------------------------------

    def stage(self, upload, table, user):
        plan = upload.plan
        definitions = [(d, table.mapping[d.name]) for d in plan.schema().definitions if d.name in table.mapping]
        if self.updates:
            read_row = self._update_row(table)
        elif _is_household_plan(plan):
            read_row = self._household_row(table, user)
        else:
            read_row = self._person_row(upload, table, user)
        count = 0
        batch = []

        def flush():
            context = read_row.batch_context(batch)
            for row_number, cells, problem in batch:
                found = [(problem.column or "", problem.message)] if problem else []
                refs = read_row(row_number, cells, found, context)
                attributes = self._attributes(definitions, cells, table.headers, found)
                status = ""
                if not self.updates:
                    raw = cells[table.mapping["status"]].strip() if "status" in table.mapping else ""
                    status = ENROL_STATUSES.get(raw.casefold(), "")
                    if not status:
                        found.append((table.headers[table.mapping["status"]],
                                      f"'{raw}': an import enrols as POTENTIAL. Leave the column empty, and "
                                      "activate the beneficiaries afterwards (their list's status change)."))
                writer.write((upload.pk, row_number, not found, *refs, status, attributes, True))
                read_row.finish(row_number, not found)
                for column, message in found:
                    errors.write((upload.pk, row_number, column, message))
            batch.clear()

        # Not streaming: each batch looks registered people up, and a COPY in progress holds the connection.
        with StagingWriter(StagedBeneficiary, STAGED_FIELDS) as writer, \
                StagingWriter(StagedError, individuals.ERROR_FIELDS) as errors, read_row:
            for row in table.rows():
                count += 1
                batch.append(row)
                if len(batch) >= BATCH:
                    flush()
            flush()
        return count

    def _attributes(self, definitions, cells, headers, found):
        attributes = {}
        for definition, index in definitions:
            raw = cells[index] if index < len(cells) else ""
            if self.updates and not raw.strip():
                continue  # an empty cell in an update keeps the value
            if definition.sensitive and is_masked(raw):
                found.append((headers[index], MASKED_MESSAGE))
                continue
            try:
                value = definition.to_python(raw)
            except ValidationError as error:
                found.append((headers[index], " ".join(error.messages)))
                continue
            if value is not None:
                attributes[definition.name] = definition.to_json(value)
        return attributes

    def _person_row(self, upload, table, user):
        return _PersonRow(upload, table, user)

    def _household_row(self, table, user):
        return _HouseholdRow(table, user)

    def _update_row(self, table):
        return _UpdateRow(table)

    # --- pass 2: the whole file --------------------------------------------------------------------

    def check(self, upload):
        plan = upload.plan
        staged = StagedBeneficiary.objects.filter(upload_id=upload.pk)
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f"ANALYZE {connection.ops.quote_name(StagedBeneficiary._meta.db_table)}")
        if self.updates:
            self._check_updates(upload, plan, staged)
        else:
            if not _is_household_plan(plan):
                individuals.check(upload)
            self._check_enrolments(upload, plan, staged)
            self._check_criteria(upload, plan, staged)
        self._check_unique_fields(upload, plan, staged)
        if not self.updates and not _is_household_plan(plan):
            _same_validity(upload)

    def _check_enrolments(self, upload, plan, staged):
        key = "household_id" if _is_household_plan(plan) else "individual_id"
        what = "household" if key == "household_id" else "person"
        repeated = (staged.filter(**{f"{key}__isnull": False}).values(key).annotate(n=Count("pk"))
                    .filter(n__gt=1).values(key))
        column = "group_code" if what == "household" else "national_id"
        individuals.flag(upload, column, f"This {what} is on more than one row of the file.",
                         staged.filter(**{f"{key}__in": repeated}), StagedBeneficiary)
        enrolments = plan.beneficiary_model.objects.filter(plan=plan)
        subject = f"{plan.beneficiary_model.SUBJECT}_id"
        enrolled = enrolments.filter(status__in=LIVE_STATUSES).values(subject)
        individuals.flag(upload, column, f"Already a beneficiary of {plan.code}: change their data with an "
                                         "update file (by ID).", staged.filter(**{f"{key}__in": enrolled}),
                         StagedBeneficiary)
        # As enrolment by filter: whoever graduated or was rejected left the plan, and is not enrolled again.
        left = enrolments.exclude(status__in=LIVE_STATUSES).values(subject)
        individuals.flag(upload, column, f"This {what} left {plan.code} earlier (graduated or rejected): not "
                                         "enrolled again.",
                         staged.filter(**{f"{key}__in": left}).exclude(**{f"{key}__in": enrolled}), StagedBeneficiary)

    def _check_criteria(self, upload, plan, staged):
        """As enrolment by criteria leaves out whoever does not meet the plan's rule for the status it
        enrols as, a row whose person (or household) does not meet the plan's criteria for potential
        beneficiaries is refused, naming them. One statement: the ONE rules compiler's SQL over the
        staged rows (see _staged_catalogue)."""
        try:
            node = status_rule(plan, BeneficiaryStatus.POTENTIAL, candidate_catalogue(plan))
        except ValidationError as error:
            raise FileProblem(error.messages[0]) from None
        if node is None:
            return
        failing = staged.filter(valid=True).exclude(IsTrue(to_sql(node, _staged_catalogue(plan, upload), "boolean")))
        # The rule is read once per row (a person's household counts are subqueries): its errors are
        # written by one statement and the rows marked from them, not counted and selected again (flag).
        message = _criteria_message(plan)
        sql, params = failing.values("row_number").query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(f"INSERT INTO {connection.ops.quote_name(StagedError._meta.db_table)} (upload_id, row_number, "
                           f"{connection.ops.quote_name('column')}, message, code) "
                           f"SELECT %s, picked.row_number, '', %s, '' FROM ({sql}) picked", [upload.pk, message, *params])
            if not cursor.rowcount:
                return
        staged.filter(row_number__in=StagedError.objects.filter(upload_id=upload.pk, message=message)
                      .values("row_number")).update(valid=False)

    def _check_updates(self, upload, plan, staged):
        repeated = staged.values("beneficiary_id").annotate(n=Count("pk")).filter(n__gt=1).values("beneficiary_id")
        individuals.flag(upload, "ID", "This beneficiary is on more than one row of the file.",
                         staged.filter(beneficiary_id__in=repeated), StagedBeneficiary)
        visible = beneficiaries_of_plan_for(upload.uploaded_by, plan)
        individuals.flag(upload, "ID", f"No beneficiary of {plan.code} with this ID in your locations.",
                         staged.filter(beneficiary_id__isnull=False).exclude(
                             beneficiary_id__in=visible.values("pk")), StagedBeneficiary)
        individuals.flag(upload, "ID", f"This beneficiary has left {plan.code} (graduated or rejected): "
                                       "their data no longer changes.",
                         staged.filter(beneficiary_id__in=visible.exclude(status__in=LIVE_STATUSES).values("pk")),
                         StagedBeneficiary)
        _mark_unchanged(upload, plan)

    def _check_unique_fields(self, upload, plan, staged):
        """A `unique` schema field's value: once in the file, and not held by another live
        beneficiary of the plan (the row's own, for an update)."""
        model = plan.beneficiary_model
        for definition in plan.schema().definitions:
            if not definition.unique:
                continue
            name = definition.name
            given = staged.filter(attributes__has_key=name).annotate(value=KT(f"attributes__{name}"))
            repeated = given.values("value").annotate(n=Count("pk")).filter(n__gt=1).values("value")
            individuals.flag(upload, name, f"This {definition.label} is on more than one row of the file.",
                             given.filter(value__in=repeated), StagedBeneficiary)
            holders = (model.objects.filter(plan=plan, status__in=LIVE_STATUSES, attributes__has_key=name)
                       .annotate(value=KT(f"attributes__{name}")))
            others = holders.filter(value=OuterRef("value"))
            if self.updates:
                others = others.exclude(pk=OuterRef("beneficiary_id"))
            taken = given.filter(Exists(others))
            individuals.flag(upload, name, f"Another beneficiary of {plan.code} already has this {definition.label}.",
                             taken, StagedBeneficiary)

    def counts(self, upload):
        staged = StagedBeneficiary.objects.filter(upload_id=upload.pk)
        valid = staged.filter(valid=True)
        result = {"rows": staged.count(), "valid": valid.count(), "errors": staged.filter(valid=False).count()}
        plan = upload.plan
        if self.updates:
            result["updates"] = valid.filter(changed=True).count()
            result["unchanged"] = result["valid"] - result["updates"]
            leaving = _leaving_criteria(plan, valid.filter(changed=True))
            if leaving:
                result["leave_criteria"] = leaving
            return result
        refused = StagedError.objects.filter(upload_id=upload.pk, message=_criteria_message(plan)).count()
        if refused:
            result["fail_criteria"] = refused
        result["enrolments"] = result["valid"]
        if _is_household_plan(plan):
            result["matched"] = result["valid"]
            result["creates"] = 0
        else:
            new_people = individuals.counts(upload)
            result["creates"] = new_people["valid"]
            result["matched"] = result["valid"] - new_people["valid"]
            for key in ("households", "first_member_heads", "first_member_primaries", "members_without_role"):
                result[key] = new_people[key]
            result["possible_duplicates"] = new_people["possible_duplicates"]
            for key in ("possible_duplicates_in_file", "sex_not_recorded"):
                if key in new_people:
                    result[key] = new_people[key]
        if plan.max_beneficiaries is not None:
            result["over_maximum"] = max(0, plan.live_beneficiaries + result["valid"] - plan.max_beneficiaries)
        return result

    SAMPLE_HEADINGS = ("What the row does",)

    def sample(self, upload, size=10, *, sensitive_shown=False):
        """`sensitive_shown`: an update file's changes of sensitive fields are shown old -> new (only for
        a page shown to a user who may see sensitive data: services.sample_shown_to)."""
        staged = StagedBeneficiary.objects.filter(upload_id=upload.pk, valid=True)
        # An update file's sample shows what changes: its rows that change something come first.
        order = ("-changed", "row_number") if self.updates else ("row_number",)
        rows = list(staged.order_by(*order).values("row_number", "individual_id", "household_id", "beneficiary_id",
                                                   "attributes")[:size])
        if self.updates:
            return self._update_sample(upload.plan, rows, sensitive_shown)
        new_people = {number: f"{first} {last}" for number, first, last in StagedIndividual.objects.filter(
            upload_id=upload.pk, row_number__in=[r["row_number"] for r in rows]).values_list(
            "row_number", "first_name", "last_name")}
        people = {pk: str(person) for pk, person in Individual.objects.in_bulk(
            [r["individual_id"] for r in rows if r["individual_id"]]).items()}
        households = dict(Household.objects.filter(pk__in=[r["household_id"] for r in rows if r["household_id"]])
                          .values_list("pk", "code"))
        described = [(row["row_number"], self._describe(row, new_people, people, households)) for row in rows]
        return [{"row_number": number, "summary": text, "cells": [text]} for number, text in described]

    def _update_sample(self, plan, rows, sensitive_shown):
        """Each row's beneficiary and its changes, old -> new; a sensitive field's values are not
        written out unless `sensitive_shown` (the sample is kept in the approval request, which readers
        who may not see them read)."""
        beneficiaries = plan.beneficiary_model.objects.select_related(plan.beneficiary_model.SUBJECT).in_bulk(
            [row["beneficiary_id"] for row in rows])
        definitions = {definition.name: definition for definition in plan.schema().definitions}
        sample = []
        for row in rows:
            beneficiary = beneficiaries.get(row["beneficiary_id"])
            stored = beneficiary.attributes if beneficiary else {}
            changes = [self._change(definition, stored.get(name), row["attributes"][name], sensitive_shown)
                       for name, definition in definitions.items()
                       if name in row["attributes"] and stored.get(name) != row["attributes"][name]]
            who = getattr(beneficiary, plan.beneficiary_model.SUBJECT, "") if beneficiary else ""
            text = f"beneficiary {row['beneficiary_id']} ({who}): {'; '.join(changes) or 'no change'}"
            sample.append({"row_number": row["row_number"], "summary": text, "cells": [text]})
        return sample

    @staticmethod
    def _change(definition, old, new, sensitive_shown):
        if definition.sensitive and not sensitive_shown:
            return f"{definition.label} changed"
        return f"{definition.label} {'—' if old in (None, '') else old} → {new}"

    def _describe(self, row, new_people, people, households):
        if row["household_id"]:
            return f"household {households.get(row['household_id'], row['household_id'])}"
        if row["individual_id"]:
            return f"{people.get(row['individual_id'], row['individual_id'])} (registered)"
        return f"{new_people.get(row['row_number'], '')} (new)"

    def problems(self, upload):
        """Why the checked file cannot be imported as it is, beyond its rows' errors."""
        plan = BenefitPlan.objects.get(pk=upload.plan_id)
        if plan.status != PlanStatus.ACTIVE and not self.updates:
            return f"{plan} is {plan.get_status_display().lower()}: only an active plan enrols."
        if plan_ended(plan) and not self.updates:
            return (f"{plan} was valid until {plan.valid_to:%Y-%m-%d}: it can no longer enrol anyone. Extend its "
                    "validity first (edit the plan).")
        over = self.counts(upload).get("over_maximum", 0) if plan.max_beneficiaries is not None else 0
        if over:
            return (f"Enrolling these rows would take {plan} {over:,} above its maximum of "
                    f"{plan.max_beneficiaries:,}.")
        return ""

    # --- pass 3: the import -------------------------------------------------------------------

    def prepare_import(self, upload):
        problem = self.problems(upload)
        if problem:
            raise ValidationError(problem)
        if self.updates or _is_household_plan(upload.plan):
            return {}
        return {"households": individuals.prepare_import(upload)}

    def reserve_ids(self, upload, last_row):
        if self.updates or _is_household_plan(upload.plan):
            return 0
        return individuals.reserve_ids(upload, last_row)

    def import_chunk(self, upload, first_row, last_row, id_base):
        if self.updates:
            return _update_chunk(upload, first_row, last_row)
        if not _is_household_plan(upload.plan):
            individuals.import_chunk(upload, first_row, last_row, id_base)
        return _enrol_chunk(upload, first_row, last_row, id_base)

    def row_span(self, upload):
        bounds = StagedBeneficiary.objects.filter(upload_id=upload.pk, valid=True).aggregate(
            first=Min("row_number"), last=Max("row_number"))
        return None if bounds["first"] is None else (bounds["first"], bounds["last"])

    def finish(self, upload, imported, by, id_base):
        if not self.updates and not _is_household_plan(upload.plan):
            individuals.record_possible_duplicates(upload, id_base)
        verb = "mizani.beneficiaries_update" if self.updates else "mizani.enrol"
        audit(upload.plan, verb, by=by, data={"upload": upload.pk, "file": upload.original_name,
                                              "rows": imported})

    def clear(self, upload):
        StagedBeneficiary.objects.filter(upload_id=upload.pk).delete()
        individuals.clear(upload)

    PROGRESS = {True: "{n:,} beneficiaries updated", False: "{n:,} beneficiaries enrolled"}

    def progress_text(self, count):
        return self.PROGRESS[self.updates].format(n=count)


def _same_person(given, first, last, dob):
    """Whether what the row says of the person (where it says anything) is the registered person's:
    the date of birth as written, and the first or the last name (one may be spelt otherwise)."""
    written = given.get("dob", "")
    if written and ascii_digits(written) != dob.isoformat():
        return False
    names = [given.get("first_name", "").casefold(), given.get("last_name", "").casefold()]
    if any(names) and names[0] != first.casefold() and names[1] != last.casefold():
        return False
    return True


class _PersonRow:
    """An individual plan's row: the registered person with the row's national ID (in the uploader's
    locations), or a new person, staged as an individuals file would be."""

    def __init__(self, upload, table, user):
        self.upload = upload
        self.people = individuals.PersonRows(table, user)
        # Only new people need a location: a file enrolling registered people needs no such column.
        self.no_location_column = self.people.without_location_column("each new person")
        self.scope = scope_for(user)
        self.new_people = StagingWriter(StagedIndividual, individuals.STAGED_FIELDS)
        self.pending = None

    def batch_context(self, batch):
        ids = set()
        for _row_number, cells, _problem in batch:
            national_id = self.people.national_id(self.people.given(cells), [])
            if national_id:
                ids.add(national_id)
        return {nid: (pk, path, first, last, dob) for nid, pk, path, first, last, dob in Individual.objects.live()
                .filter(national_id__in=ids).values_list("national_id", "pk", "location__path", "first_name",
                                                         "last_name", "dob")}

    def __call__(self, row_number, cells, found, registered):
        given = self.people.given(cells)
        national_id = self.people.national_id(given, found)
        match = registered.get(national_id) if national_id else None
        self.pending = None
        if match is not None:
            pk, path, first, last, dob = match
            if not self.scope.national and not (path and any(path.startswith(p) for p in self.scope.paths)):
                found.append((self.people.header_of["national_id"],
                              "This person is registered outside your locations."))
            elif not _same_person(given, first, last, dob):
                found.append((self.people.header_of["national_id"],
                              f"This national ID is registered to {first} {last}, born {dob:%Y-%m-%d}: not the "
                              "person of this row. Correct the ID, or leave the name and date of birth empty to "
                              "enrol the registered person."))
            return national_id, pk, None, None
        if self.no_location_column and (national_id or not given.get("national_id")):  # a bad ID is the row's error
            raise FileProblem(f"Row {row_number} registers a new person (it names no registered person by national "
                              f"ID). {self.no_location_column}")
        values = self.people.check(given, cells, national_id, found)
        self.pending = (row_number, values)
        return national_id, None, None, None

    def finish(self, row_number, valid):
        if self.pending is not None:
            number, values = self.pending
            self.new_people.write((self.upload.pk, number, valid, *values))
            self.pending = None

    def __enter__(self):
        return self

    def __exit__(self, *error):
        return self.new_people.__exit__(*error)


class _HouseholdRow:
    """A household plan's row: the registered household with the row's code, in the uploader's locations."""

    def __init__(self, table, user):
        self.index = table.mapping["group_code"]
        self.header = table.headers[self.index]
        self.scope = scope_for(user)

    def _code(self, cells):
        return cells[self.index].strip() if self.index < len(cells) else ""

    def batch_context(self, batch):
        """The batch's codes as written -> (household id, its location's path), codes matched case aside
        ("hh-a" is "HH-A"), folded on both sides by the database as the registry's unique index folds them."""
        codes = list({self._code(cells) for _n, cells, _p in batch} - {""})
        if not codes:
            return {}
        quote = connection.ops.quote_name
        households, locations = quote(Household._meta.db_table), quote(Location._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"WITH given(code) AS (VALUES {', '.join(['(%s)'] * len(codes))}) "
                f"SELECT given.code, h.id, l.path FROM given JOIN {households} h ON LOWER(h.code) = LOWER(given.code) "
                f"LEFT JOIN {locations} l ON l.id = h.location_id WHERE h.deleted_at IS NULL", codes)
            return {code: (pk, path) for code, pk, path in cursor.fetchall()}

    def __call__(self, row_number, cells, found, registered):
        code = self._code(cells)
        match = registered.get(code)
        if not code:
            found.append((self.header, "Required: the household's code."))
        elif match is None or (not self.scope.national
                               and not (match[1] and any(match[1].startswith(p) for p in self.scope.paths))):
            # One message for both: a clerk learns nothing of households outside their locations.
            found.append((self.header, f"No registered household in your locations has the code '{code}'."))
            match = None
        return None, None, match[0] if match else None, None

    def finish(self, row_number, valid):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *error):
        return False


class _UpdateRow:
    """An update's row: the beneficiary's ID (checked against the plan in pass 2)."""

    def __init__(self, table):
        self.index = table.mapping["ID"]
        self.header = table.headers[self.index]

    def batch_context(self, batch):
        return None

    def __call__(self, row_number, cells, found, _context):
        raw = cells[self.index].strip() if self.index < len(cells) else ""
        if not raw:
            found.append((self.header, "Required: the beneficiary's ID."))
            return None, None, None, None
        if not raw.isdigit() or len(raw) > 18:
            found.append((self.header, f"'{raw}' is not a beneficiary ID (a whole number)."))
            return None, None, None, None
        return None, None, None, int(raw)

    def finish(self, row_number, valid):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *error):
        return False


def _criteria_message(plan):
    status = BeneficiaryStatus.POTENTIAL
    return f"Does not meet the plan's criteria for {status.label}: {plan.criteria_text(status)}"


def _value_of(records, spec):
    """`spec`'s value read from the one record of `records` (filtered on the outer row), as a subquery."""
    return Subquery(records.annotate(rule_value=spec.sql("")).values("rule_value")[:1])


def _staged_catalogue(plan, upload):
    """The plan's rules read over the staged rows of a new-beneficiaries file, as they will read over the
    beneficiaries the rows become: the plan's fields from the row's values; the person's (or household's)
    fields from the registered record the row names, through the registry's own catalogue.

    A person the file registers does not exist yet. Rather than create the people to check them (an
    import's work at the check, rolled back), their fields are read from their staged row: its columns
    are the person's (names, sex, dob, attributes), so the registry's definitions read them as they
    are; only the household counts read memberships, which a new person does not have yet: see
    _staged_household_counts."""
    subjects = candidate_catalogue(plan)
    own = {field.name: attribute_spec(field) for field in plan.fields.all()}
    if _is_household_plan(plan):
        registered, key, new = Household.objects.all(), "household_id", {}
    else:
        registered, key = Individual.objects.all(), "individual_id"
        new = _staged_household_counts(subjects.today)
        new_person = StagedIndividual.objects.filter(upload_id=upload.pk, row_number=OuterRef("row_number"))
    specs = []
    for name, spec in subjects.fields.items():
        if name in own:
            specs.append(own[name])
            continue
        read = _value_of(registered.filter(pk=OuterRef(key)), spec)
        if key == "individual_id":
            read = Case(When(individual_id__isnull=True, then=_value_of(new_person, new.get(name, spec))),
                        default=read)
        specs.append(replace(spec, sql=lambda prefix, read=read: read))
    return Catalogue(specs, today=subjects.today)


def _staged_household_counts(today):
    """The registry's household counts (household_specs) of a person the file registers: a file creates
    new households only (a registered code is refused), so their members are the file's rows with the
    same code; in no household, NULL, as the registry says."""
    born = {"household_size": {}, "children_under_5": {"dob__gt": years_before(today, 5)},
            "elderly_in_household": {"dob__lte": years_before(today, 60)}}
    registry = {spec.name: spec for spec in household_specs(today, household="", in_household="")}
    return {name: replace(registry[name], sql=partial(_staged_members, born[name])) for name in registry}


def _staged_members(conditions, prefix):
    members = (StagedIndividual.objects.filter(upload_id=OuterRef("upload_id"), group_code=OuterRef("group_code"),
                                               **conditions)
               .order_by().values("group_code").annotate(n=Count("pk")).values("n"))
    return Case(When(group_code="", then=Value(None)), default=Cast(Coalesce(Subquery(members), Value(0)), NUMBER_FIELD),
                output_field=NUMBER_FIELD)


def _leaving_criteria(plan, changing):
    """How many of the `changing` update rows would take their beneficiary out of the plan's criteria
    for its status (meeting them now, not with the file's values): a warning, as the criteria are
    checked again where they matter (activation, the lists' "Meets criteria"). One statement."""
    model = plan.beneficiary_model
    beneficiary = model.objects.filter(pk=OuterRef("beneficiary_id"))
    stored = beneficiary_catalogue(plan)
    own = {field.name: attribute_spec(field) for field in plan.fields.all()}
    specs = []
    for name, spec in stored.fields.items():
        read = _value_of(beneficiary, spec)
        if name in own:  # the file's value where it gives one (an empty cell keeps the stored one)
            read = Coalesce(own[name].sql(""), read)
        specs.append(replace(spec, sql=lambda prefix, read=read: read))
    updated = Catalogue(specs, today=stored.today)
    branches = []
    for status, entry in (plan.criteria or {}).items():
        try:
            node = compile_rule(from_json(entry["rule"]), updated, expect="boolean")
        except RuleError:
            continue  # criteria that no longer check: the plan's page says so
        branches.append(When(beneficiary_status=status, then=IsTrue(to_sql(node, updated, "boolean"))))
    if not branches:
        return 0
    meeting_now = with_criteria_check(beneficiary, plan).filter(meets_criteria=True)
    return (changing.annotate(beneficiary_status=Subquery(beneficiary.values("status")[:1]))
            .filter(Exists(meeting_now)).exclude(Case(*branches, default=Value(True), output_field=BooleanField()))).count()


def _same_validity(upload):
    """A row is one person and one enrolment: an error on either side leaves out both; and a household
    of new people goes whole, so an enrolment refused leaves out its household's other members too."""
    staged = StagedBeneficiary.objects.filter(upload_id=upload.pk)
    people = StagedIndividual.objects.filter(upload_id=upload.pk)
    if people.filter(valid=True, row_number__in=staged.filter(valid=False).values("row_number")).update(valid=False):
        individuals.keep_households_whole(upload)
    staged.filter(valid=True, individual_id__isnull=True,
                  row_number__in=people.filter(valid=False).values("row_number")).update(valid=False)


def _mark_unchanged(upload, plan):
    """An update row whose values the beneficiary already has changes nothing (counted as unchanged)."""
    quote = connection.ops.quote_name
    staged, table = quote(StagedBeneficiary._meta.db_table), quote(plan.beneficiary_model._meta.db_table)
    if connection.vendor == "postgresql":
        contains = "b.attributes @> s.attributes"
    else:  # the stored object, patched with the row's values, is the same object
        contains = "json(json_patch(b.attributes, s.attributes)) = json(b.attributes)"
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {staged} SET changed = false WHERE upload_id = %s AND valid AND row_number IN ("
            f"SELECT s.row_number FROM {staged} s JOIN {table} b ON b.id = s.beneficiary_id "
            f"WHERE s.upload_id = %s AND s.valid AND {contains})", [upload.pk, upload.pk])


def _enrol_chunk(upload, first_row, last_row, id_base):
    """Enrol the rows first_row..last_row: the person found by the check, or the one this chunk just
    registered (id_base + row number); someone enrolled since the check is skipped, not doubled.
    The plan's count moves in the same transaction, and the database refuses it above the maximum."""
    plan = upload.plan
    model = plan.beneficiary_model
    quote = connection.ops.quote_name
    staged, table = quote(StagedBeneficiary._meta.db_table), quote(model._meta.db_table)
    subject = quote(f"{model.SUBJECT}_id")
    if _is_household_plan(plan):
        subject_of_row, registered = "s.household_id", quote(Household._meta.db_table)
    else:
        subject_of_row, registered = "COALESCE(s.individual_id, %s + s.row_number)", quote(Individual._meta.db_table)
    now = timezone.now()
    params = [plan.pk, now, now]
    if not _is_household_plan(plan):
        params.append(id_base)
    params += [upload.pk, first_row, last_row]
    # The live-enrolment index names the conflict (its predicate written out as literals: the database
    # matches it to the index only so): someone enrolled since the check is skipped as the row goes in,
    # with no probe of the table being filled, planned on its size before the statement.
    live = ", ".join(f"'{status}'" for status in LIVE_STATUSES)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (plan_id, {subject}, status, attributes, reason, enrolled_at, status_changed_at, "
            f"status_changed_by_id) "
            f"SELECT %s, r.id, s.status, s.attributes, '', %s, %s, NULL FROM {staged} s "
            f"JOIN {registered} r ON r.id = {subject_of_row} AND r.deleted_at IS NULL "
            f"WHERE s.upload_id = %s AND s.valid AND s.row_number BETWEEN %s AND %s "
            f"ON CONFLICT (plan_id, {subject}) WHERE status IN ({live}) DO NOTHING", params)
        added = cursor.rowcount
    # Each beneficiary's own history says the file enrolled them: those of this chunk's rows enrolled at
    # this statement's time (not whoever was enrolled since the check, whose row was skipped above).
    build = "jsonb_build_object" if connection.vendor == "postgresql" else "json_object"
    audit_many(model, "mizani.enrol_file", by=_importer(upload), rows_sql=(
        f"SELECT b.id AS id, {build}('upload', CAST(%s AS INTEGER), 'file', CAST(%s AS TEXT), "
        f"'status', b.status) AS data FROM {staged} s "
        f"JOIN {table} b ON b.plan_id = %s AND b.{subject} = {subject_of_row} AND b.enrolled_at = %s "
        f"WHERE s.upload_id = %s AND s.valid AND s.row_number BETWEEN %s AND %s"),
        params=[upload.pk, upload.original_name, plan.pk, *([id_base] if not _is_household_plan(plan) else []), now,
                upload.pk, first_row, last_row])
    try:
        with transaction.atomic():
            BenefitPlan.objects.filter(pk=plan.pk).update(live_beneficiaries=F("live_beneficiaries") + added)
    except IntegrityError:
        raise ValidationError(f"Enrolling would take {plan} above its maximum of {plan.max_beneficiaries:,}.") from None
    return added


def _update_chunk(upload, first_row, last_row):
    """Merge the rows' schema values into their beneficiaries' data: one UPDATE."""
    model = upload.plan.beneficiary_model
    quote = connection.ops.quote_name
    staged, table = quote(StagedBeneficiary._meta.db_table), quote(model._meta.db_table)
    merged = "b.attributes || s.attributes" if connection.vendor == "postgresql" else \
        "json_patch(b.attributes, s.attributes)"
    _audit_updates(upload, first_row, last_row)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"UPDATE {table} AS b SET attributes = {merged} FROM {staged} s "
                f"WHERE s.upload_id = %s AND s.valid AND s.changed AND s.row_number BETWEEN %s AND %s "
                f"AND b.id = s.beneficiary_id AND b.plan_id = %s", [upload.pk, first_row, last_row, upload.plan_id])
        else:
            cursor.execute(
                f"UPDATE {table} AS b SET attributes = (SELECT {merged} FROM {staged} s WHERE s.upload_id = %s "
                f"AND s.beneficiary_id = b.id) WHERE b.plan_id = %s AND b.id IN (SELECT beneficiary_id FROM "
                f"{staged} WHERE upload_id = %s AND valid AND changed AND row_number BETWEEN %s AND %s)",
                [upload.pk, upload.plan_id, upload.pk, first_row, last_row])
        return cursor.rowcount


def _importer(upload):
    """Who started the import (the maker, as its other audit entries name them)."""
    return upload.import_job.started_by if upload.import_job_id else None


def _audit_updates(upload, first_row, last_row):
    """One entry per beneficiary the rows first_row..last_row change, in their history as a change of
    plan data made on its own page is (schemes.plans.services.attribute_changes): the changed fields,
    old -> new, a sensitive field's values masked. Written before the UPDATE, which loses the old ones."""
    plan = upload.plan
    model = plan.beneficiary_model
    quote = connection.ops.quote_name
    staged, table = quote(StagedBeneficiary._meta.db_table), quote(model._meta.db_table)
    sensitive = list(plan.fields.filter(sensitive=True).values_list("name", flat=True))
    is_sensitive = f"e.key IN ({', '.join(['%s'] * len(sensitive))})" if sensitive else "FALSE"
    old, new = "b.attributes -> e.key", "s.attributes -> e.key"
    if connection.vendor == "postgresql":
        build, pair, group, each = "jsonb_build_object", "jsonb_build_array", "jsonb_object_agg", "jsonb_each"
        differs = f"{old} IS DISTINCT FROM {new}"
    else:
        build, pair, group, each = "json_object", "json_array", "json_group_object", "json_each"
        differs = f"{old} IS NOT {new}"
    fields = f"FROM {each}(s.attributes) e WHERE {differs}"

    def shown(value):
        return f"CASE WHEN {is_sensitive} THEN {_masked_json(value.replace(' -> ', ' ->> '))} ELSE {value} END"

    changes = f"SELECT {group}(e.key, {pair}({shown(old)}, {shown(new)})) {fields}"
    if connection.vendor == "postgresql":
        changed = f"SELECT jsonb_agg(e.key ORDER BY e.key) {fields}"
    else:  # SQLite's aggregates take no ORDER BY: they take the names sorted
        changed = f"SELECT json_group_array(key) FROM (SELECT e.key {fields} ORDER BY e.key)"
    audit_many(model, "mizani.beneficiary_attributes", by=_importer(upload), rows_sql=(
        f"SELECT b.id AS id, {build}('changed', ({changed}), 'changes', ({changes}), 'upload', CAST(%s AS INTEGER), "
        f"'file', CAST(%s AS TEXT)) AS data FROM {staged} s JOIN {table} b ON b.id = s.beneficiary_id AND b.plan_id = %s "
        f"WHERE s.upload_id = %s AND s.valid AND s.changed AND s.row_number BETWEEN %s AND %s"),
        params=[*sensitive, *sensitive, upload.pk, upload.original_name, plan.pk, upload.pk,
                first_row, last_row])


def _masked_json(text):
    """sites.masking.mask of a JSON value's text, in SQL, as a JSON string (NULL stays NULL)."""
    length = f"LENGTH({text})"
    if connection.vendor == "postgresql":
        return (f"to_jsonb(CASE WHEN {length} < 6 THEN REPEAT('{MASK}', {length}) "
                f"ELSE REPEAT('{MASK}', {length} - 3) || RIGHT({text}, 3) END)")
    return (f"(CASE WHEN {length} < 6 THEN printf('%%.*c', {length}, '{MASK}') "
            f"ELSE printf('%%.*c', {length} - 3, '{MASK}') || SUBSTR({text}, -3) END)")


ENROLMENTS = Importer(UploadKind.BENEFICIARIES)
UPDATES = Importer(UploadKind.BENEFICIARY_UPDATES)
