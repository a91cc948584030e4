"""The registry-wide duplicate scan: pairs of live people who may be one person, scored and filed in
the review queue (DuplicateCandidate).

Comparing everyone with everyone is out of reach at millions of people, so pairs are first found by
blocking (only people who share something cheap to match are compared), then judged:

- the same national ID once normalised (the unique constraint sees only IDs stored alike);
- the same date of birth, or day and month swapped, with similar names;
- a date of birth a few days off, with the same first or last name and very similar names;
- the same phone number with similar names.

Placeholder values (a phone number shared by many, a date of birth shared by hundreds) would make
blocks quadratic: see SHARED_PHONE_LIMIT and CROWDED_DATE.

On PostgreSQL each step is one statement: blocking joins, pg_trgm `similarity()` on `search_name`,
and an upsert; elsewhere (SQLite, for development and tests) the same blocks are built in Python and
names are compared with rapidfuzz. The two measures differ in scale, so each has its thresholds.

The job runs in steps (national IDs, phones, then one birth year at a time), each committed with its
progress, so memory stays bounded and a restarted job resumes at the next step. Pairs a person has
dismissed or merged are never touched again; open pairs get the latest score.
"""

import datetime
import json
import math
import re
from collections import defaultdict
from dataclasses import dataclass
from itertools import combinations

from django.db import connection, transaction
from django.db.models import Max, Min
from django.utils import timezone
from rapidfuzz import fuzz

from sites.scoping import scope_for

from .models import DuplicateCandidate, DuplicateReason, DuplicateStatus, Individual, normalise_national_id

SCAN = "registry.duplicates_scan"
CLOSE_DAYS = 7
PHONE_DIGITS = 9  # compared from the end: "+255 712 345 678" and "0712345678" are one number
MIN_PHONE_DIGITS = 7
# Placeholders: a number shared by more people than this (a village office's, "0700000000") says
# nothing about who is who; on a date of birth shared by more people than this (1 January, when only
# the year is known) only people with the same first or last name are compared, else the pairs of
# that one date would be millions.
SHARED_PHONE_LIMIT = 10
CROWDED_DATE = 500
BATCH = 2000


@dataclass(frozen=True)
class Thresholds:
    """How similar two names must be, on one measure's scale, for a pair to be filed."""

    similar: float  # with the same date of birth (or day and month swapped)
    close: float    # with a date of birth a few days off
    phone: float    # with the same phone number


TRIGRAM = Thresholds(similar=0.6, close=0.7, phone=0.5)            # pg_trgm similarity()
TOKEN_SORT = Thresholds(similar=0.85, close=0.9, phone=0.82)       # rapidfuzz token_sort_ratio / 100


@dataclass(frozen=True)
class Features:
    same_national_id: bool
    same_name: bool
    similarity: float
    same_dob: bool
    close_dob: bool
    same_phone: bool


def qualifies(features, thresholds):
    f, t = features, thresholds
    return (f.same_national_id or (f.same_dob and f.similarity >= t.similar)
            or (f.close_dob and f.similarity >= t.close) or (f.same_phone and f.similarity >= t.phone))


def score(features, thresholds):
    """100 for the same national ID; otherwise up to 60 for the names (40 at the threshold of
    'similar'), 30 for the same date of birth (15 when close) and 10 for the same phone, at most 99."""
    f, t = features, thresholds
    if f.same_national_id:
        return 100
    if f.similarity >= t.similar:
        names = 40 + 20 * (f.similarity - t.similar) / (1 - t.similar)
    else:
        names = 40 * f.similarity / t.similar
    dob = 30 if f.same_dob else 15 if f.close_dob else 0
    return min(99, math.floor(names + dob + (10 if f.same_phone else 0) + 0.5))


def reasons(features, thresholds):
    f, t = features, thresholds
    found = {
        DuplicateReason.NATIONAL_ID: f.same_national_id,
        DuplicateReason.NAME_DOB: f.same_name and f.same_dob,
        DuplicateReason.SIMILAR_NAME: f.similarity >= t.similar and not (f.same_name and f.same_dob),
        DuplicateReason.SAME_DOB: f.same_dob and not f.same_name,
        DuplicateReason.CLOSE_DOB: f.close_dob,
        DuplicateReason.PHONE: f.same_phone,
    }
    return [reason.value for reason, present in found.items() if present]


def swapped_day_month(dob):
    """The date with day and month exchanged (5 March -> 3 May), when that is another valid date."""
    if dob.day > 12 or dob.day == dob.month:
        return None
    return dob.replace(month=dob.day, day=dob.month)


def phone_key(phone):
    digits = re.sub(r"\D", "", phone or "")
    return digits[-PHONE_DIGITS:] if len(digits) >= MIN_PHONE_DIGITS else None


# --- the job ------------------------------------------------------------------------------------

def scan(job, progress):
    """The job's handler (see jobs.py): every step of the scan, for the people in the starter's
    locations, resuming after the last committed step."""
    people = scope_for(job.started_by).filter(Individual.objects.live())
    years = people.aggregate(first=Min("dob__year"), last=Max("dob__year"))
    steps = ["national_id", "phone"]
    if years["first"] is not None:
        steps += list(range(years["first"], years["last"] + 1))
    engine = PostgresScan(people, job) if connection.vendor == "postgresql" else PythonScan(people, job)
    new = 0
    progress(job.progress_done, len(steps), "Looking for duplicates")
    for number, step in enumerate(steps[job.progress_done:], start=job.progress_done + 1):
        with transaction.atomic():
            new += engine.run(step)
            progress(number, len(steps), f"{new:,} new possible duplicates so far")
    # Pairs filed or rescored by this scan (a pair found by several steps is one pair).
    return {"found": DuplicateCandidate.objects.filter(scan_job=job).count(), "new": new, "steps": len(steps)}


def _step_people(people, step):
    """The people one step compares: those with an ID or a phone, or those born in (or a few days
    around) one year."""
    if step == "national_id":
        return people.filter(national_id__isnull=False)
    if step == "phone":
        return people.exclude(phone="")
    margin = datetime.timedelta(days=CLOSE_DAYS)
    return people.filter(dob__range=(datetime.date(step, 1, 1) - margin, datetime.date(step, 12, 31) + margin))


def _year(step):
    return datetime.date(step, 1, 1), datetime.date(step, 12, 31)


class PostgresScan:
    """Each step one statement: people of the step (a materialised CTE), blocks, features, judgement
    and the upsert, with pg_trgm's similarity on the names."""

    thresholds = TRIGRAM
    # Dash punctuation (Unicode "Pd") that national IDs are written with; NFKC folds the rest.
    ID_SEPARATORS = "[[:space:]_./\u2010-\u2015\u2212\u2e3a\u2e3b\ufe58\ufe63\uff0d-]"

    def __init__(self, people, job):
        self.people, self.job = people, job

    def run(self, step):
        source, source_params = (
            _step_people(self.people, step).order_by()
            .values("id", "dob", "search_name", "first_name", "last_name", "phone", "national_id")
            .query.sql_with_params()
        )
        t = self.thresholds
        if step == "national_id":
            blocks, block_params = self.SAME_ID, []
        elif step == "phone":
            blocks, block_params = self.SAME_PHONE, []
        else:
            first, last = _year(step)
            blocks, block_params = self.BIRTH_YEAR, [first, last, t.similar, t.similar, t.similar,
                                                     t.close, t.close, t.close]
        sql = self.STATEMENT.format(
            source=source, separators=self.ID_SEPARATORS,
            blocks=blocks.format(close_days=CLOSE_DAYS, crowded_date=CROWDED_DATE,
                                 shared_phone_limit=SHARED_PHONE_LIMIT),
            phone_digits=PHONE_DIGITS, min_phone_digits=MIN_PHONE_DIGITS, close_days=CLOSE_DAYS,
            table=DuplicateCandidate._meta.db_table)
        # In the order the placeholders appear: people, blocks, name points, qualification, reasons, job.
        params = [*source_params, *block_params, t.similar, t.similar, t.similar, t.similar,
                  t.similar, t.close, t.phone, t.similar, self.job.pk]
        with connection.cursor() as cursor:
            # The planner cannot estimate a CTE's joins and would compile the statement (JIT) for a
            # second each step, longer than the step; sorts and hashes of a step fit in 64 MB.
            cursor.execute("SET LOCAL jit = off")
            cursor.execute("SET LOCAL work_mem = '64MB'")
            cursor.execute(sql, params)
            return cursor.fetchone()[0]

    # Few people share an ID or a phone: every such pair is judged.
    SAME_ID = """SELECT a.id AS a, b.id AS b FROM people a JOIN people b ON b.nid_key = a.nid_key AND b.id > a.id
                 WHERE a.nid_key IS NOT NULL"""
    SAME_PHONE = """SELECT a.id AS a, b.id AS b FROM people a JOIN people b ON b.phone_key = a.phone_key AND b.id > a.id
                    WHERE a.phone_key IN (SELECT phone_key FROM people GROUP BY phone_key
                                          HAVING count(*) <= {shared_phone_limit})"""
    # Dozens of people share a birthday: only pairs whose names pass the threshold leave these blocks
    # (similarity() is the cost: CASE makes PostgreSQL test the cheap conditions first); on a crowded
    # date, only namesakes are compared. Anchored on the people born in the year; partners a few days
    # off may be born outside it, and are found by a hash join on a name and a week (the anchor's, or
    # a neighbour).
    BIRTH_YEAR = """
        WITH anchors AS MATERIALIZED (SELECT *, count(*) OVER (PARTITION BY dob) AS born_that_day FROM people
                                       WHERE dob BETWEEN %s AND %s),
             near AS MATERIALIZED (SELECT anchors.*, week + shift AS near_week
                                     FROM anchors, (VALUES (-1), (0), (1)) AS w(shift))
        SELECT a.id AS a, b.id AS b FROM anchors a JOIN people b ON b.dob = a.dob
         WHERE a.born_that_day <= {crowded_date}
           AND CASE WHEN b.id > a.id THEN similarity(a.search_name, b.search_name) >= %s END
        UNION ALL
        SELECT a.id, b.id FROM anchors a JOIN people b ON b.dob = a.dob AND b.last_key = a.last_key
         WHERE a.born_that_day > {crowded_date}
           AND CASE WHEN b.id > a.id THEN similarity(a.search_name, b.search_name) >= %s END
        UNION ALL
        SELECT a.id, b.id FROM anchors a JOIN people b ON b.dob = a.dob AND b.first_key = a.first_key
         WHERE a.born_that_day > {crowded_date}
           AND CASE WHEN b.id > a.id THEN similarity(a.search_name, b.search_name) >= %s END
        UNION ALL
        SELECT a.id, b.id FROM anchors a JOIN people b ON b.dob = a.swapped_dob
         WHERE CASE WHEN b.id > a.id THEN similarity(a.search_name, b.search_name) >= %s END
        UNION ALL
        SELECT a.id, b.id FROM near a JOIN people b ON b.last_key = a.last_key AND b.week = a.near_week
         WHERE CASE WHEN b.dob <> a.dob AND abs(b.dob - a.dob) <= {close_days}
                    THEN similarity(a.search_name, b.search_name) >= %s END
        UNION ALL
        SELECT a.id, b.id FROM near a JOIN people b ON b.first_key = a.first_key AND b.week = a.near_week
         WHERE CASE WHEN b.dob <> a.dob AND abs(b.dob - a.dob) <= {close_days}
                    THEN similarity(a.search_name, b.search_name) >= %s END"""

    STATEMENT = """
        WITH people AS MATERIALIZED (
            SELECT p.id, p.dob, p.search_name, lower(p.first_name) AS first_key, lower(p.last_name) AS last_key,
                   CASE WHEN length(regexp_replace(p.phone, '[^0-9]', '', 'g')) >= {min_phone_digits}
                        THEN right(regexp_replace(p.phone, '[^0-9]', '', 'g'), {phone_digits}) END AS phone_key,
                   NULLIF(upper(regexp_replace(normalize(p.national_id, NFKC), '{separators}', '', 'g')), '') AS nid_key,
                   CASE WHEN extract(day FROM p.dob) <= 12 AND extract(day FROM p.dob) <> extract(month FROM p.dob)
                        THEN make_date(extract(year FROM p.dob)::int, extract(day FROM p.dob)::int,
                                       extract(month FROM p.dob)::int) END AS swapped_dob,
                   (p.dob - DATE '0001-01-01') / 7 AS week
              FROM ({source}) AS p
        ),
        blocks AS ({blocks}),
        pairs AS (SELECT DISTINCT least(a, b) AS low, greatest(a, b) AS high FROM blocks),
        features AS (
            SELECT pr.low, pr.high,
                   coalesce(x.nid_key = y.nid_key, false) AS same_nid,
                   x.search_name = y.search_name AS same_name,
                   similarity(x.search_name, y.search_name)::float AS sim,
                   x.dob = y.dob AS same_dob,
                   x.dob <> y.dob AND (abs(x.dob - y.dob) <= {close_days} OR x.swapped_dob = y.dob
                                       OR y.swapped_dob = x.dob) AS close_dob,
                   coalesce(x.phone_key = y.phone_key, false) AS same_phone
              FROM pairs pr JOIN people x ON x.id = pr.low JOIN people y ON y.id = pr.high
        ),
        judged AS (
            SELECT f.*,
                   CASE WHEN sim >= %s THEN 40 + 20 * (sim - %s) / (1 - %s) ELSE 40 * sim / %s END AS name_points
              FROM features f
             WHERE same_nid OR (same_dob AND sim >= %s) OR (close_dob AND sim >= %s) OR (same_phone AND sim >= %s)
        ),
        upserted AS (
            INSERT INTO {table} (first_id, second_id, score, reasons, status, found_at, scan_job_id, dismiss_reason)
            SELECT low, high,
                   CASE WHEN same_nid THEN 100 ELSE least(99, floor(name_points
                        + CASE WHEN same_dob THEN 30 WHEN close_dob THEN 15 ELSE 0 END
                        + CASE WHEN same_phone THEN 10 ELSE 0 END + 0.5)) END,
                   to_jsonb(array_remove(ARRAY[
                       CASE WHEN same_nid THEN 'national_id' END,
                       CASE WHEN same_name AND same_dob THEN 'name_dob' END,
                       CASE WHEN sim >= %s AND NOT (same_name AND same_dob) THEN 'similar_name' END,
                       CASE WHEN same_dob AND NOT same_name THEN 'same_dob' END,
                       CASE WHEN close_dob THEN 'close_dob' END,
                       CASE WHEN same_phone THEN 'phone' END]::text[], NULL)),
                   'OPEN', now(), %s, ''
              FROM judged
            ON CONFLICT (first_id, second_id) DO UPDATE
               SET score = EXCLUDED.score, reasons = EXCLUDED.reasons, scan_job_id = EXCLUDED.scan_job_id
             WHERE {table}.status = 'OPEN'
            RETURNING (xmax = 0) AS inserted
        )
        SELECT count(*) FILTER (WHERE inserted) FROM upserted"""


class PythonScan:
    """The same steps in Python, names compared with rapidfuzz: for SQLite (development, tests)."""

    thresholds = TOKEN_SORT

    def __init__(self, people, job):
        self.people, self.job = people, job

    def run(self, step):
        rows = {
            row["id"]: row for row in _step_people(self.people, step).order_by().values(
                "id", "dob", "search_name", "first_name", "last_name", "phone", "national_id").iterator()
        }
        for row in rows.values():
            row["nid_key"] = normalise_national_id(row["national_id"])
            row["phone_key"] = phone_key(row["phone"])
            row["first_key"], row["last_key"] = row["first_name"].lower(), row["last_name"].lower()
        if step == "national_id":
            pairs = _pairs_sharing(rows.values(), "nid_key")
        elif step == "phone":
            pairs = _pairs_sharing(rows.values(), "phone_key", limit=SHARED_PHONE_LIMIT)
        else:
            pairs = _birth_year_pairs(rows, *_year(step))
        judged = {}
        for low, high in pairs:
            features = compare(rows[low], rows[high])
            if qualifies(features, self.thresholds):
                judged[low, high] = (score(features, self.thresholds), reasons(features, self.thresholds))
        return self.upsert(judged)

    def upsert(self, judged):
        existing = {}
        lows = sorted({low for low, _ in judged})
        for start in range(0, len(lows), BATCH):
            for candidate in DuplicateCandidate.objects.filter(first_id__in=lows[start:start + BATCH]):
                existing[candidate.first_id, candidate.second_id] = candidate
        now = timezone.now()
        new, rescored = [], []
        for (low, high), (points, why) in judged.items():
            candidate = existing.get((low, high))
            if candidate is None:
                new.append(DuplicateCandidate(first_id=low, second_id=high, score=points, reasons=why,
                                              found_at=now, scan_job=self.job))
            elif candidate.status == DuplicateStatus.OPEN:
                candidate.score, candidate.reasons, candidate.scan_job = points, why, self.job
                rescored.append(candidate)
        DuplicateCandidate.objects.bulk_create(new, batch_size=BATCH)
        DuplicateCandidate.objects.bulk_update(rescored, ["score", "reasons", "scan_job"], batch_size=BATCH)
        return len(new)


def compare(x, y):
    """The features of a pair of people (rows with the keys PythonScan adds), names by rapidfuzz."""
    swapped_x, swapped_y = swapped_day_month(x["dob"]), swapped_day_month(y["dob"])
    return Features(
        same_national_id=x["nid_key"] is not None and x["nid_key"] == y["nid_key"],
        same_name=x["search_name"] == y["search_name"],
        similarity=fuzz.token_sort_ratio(x["search_name"], y["search_name"]) / 100,
        same_dob=x["dob"] == y["dob"],
        close_dob=x["dob"] != y["dob"] and (abs((x["dob"] - y["dob"]).days) <= CLOSE_DAYS
                                            or swapped_x == y["dob"] or swapped_y == x["dob"]),
        same_phone=x["phone_key"] is not None and x["phone_key"] == y["phone_key"],
    )


def _pairs_sharing(rows, key, limit=None):
    groups = defaultdict(list)
    for row in rows:
        if row[key] is not None:
            groups[row[key]].append(row["id"])
    return {pair for ids in groups.values() if limit is None or len(ids) <= limit
            for pair in combinations(sorted(ids), 2)}


def _birth_year_pairs(rows, start, end):
    """The blocks of PostgresScan.BIRTH_YEAR: anchored on people born in [start, end]."""
    by_dob, by_first, by_last = defaultdict(list), defaultdict(list), defaultdict(list)
    for row in rows.values():
        by_dob[row["dob"]].append(row)
        by_first[row["first_key"]].append(row)
        by_last[row["last_key"]].append(row)
    pairs = set()
    for row in rows.values():
        if not start <= row["dob"] <= end:
            continue
        born_that_day = by_dob[row["dob"]]
        if len(born_that_day) > CROWDED_DATE:
            born_that_day = [other for other in born_that_day if other["first_key"] == row["first_key"]
                             or other["last_key"] == row["last_key"]]
        partners = list(born_that_day) + list(by_dob.get(swapped_day_month(row["dob"]), []))
        for group in (by_first[row["first_key"]], by_last[row["last_key"]]):
            partners += [other for other in group
                         if other["dob"] != row["dob"] and abs((other["dob"] - row["dob"]).days) <= CLOSE_DAYS]
        pairs.update((min(row["id"], other["id"]), max(row["id"], other["id"]))
                     for other in partners if other["id"] != row["id"])
    return pairs


# --- pairs found elsewhere (an import) -----------------------------------------------------------

SAME_NAME_AND_DOB = Features(same_national_id=False, same_name=True, similarity=1.0, same_dob=True,
                             close_dob=False, same_phone=False)


def file_name_dob_pairs(pairs_sql, params):
    """File in the review queue, as open pairs of the same names and date of birth, the pairs of live
    people `pairs_sql` selects (two person ids per row, `a` and `b`, in any order; params `params`).
    Pairs already there (open, dismissed or merged) are left as they are. One statement. Returns how
    many pairs were filed."""
    quote = connection.ops.quote_name
    table, people = quote(DuplicateCandidate._meta.db_table), quote(Individual._meta.db_table)
    points = score(SAME_NAME_AND_DOB, TRIGRAM)  # the same on either measure: the names are equal
    why = json.dumps(reasons(SAME_NAME_AND_DOB, TRIGRAM))
    with connection.cursor() as cursor:
        # The distinct pairs in a subquery: the constants then take the columns' types (jsonb).
        # WHERE true: SQLite would read ON CONFLICT as a join's ON otherwise.
        cursor.execute(
            f"INSERT INTO {table} (first_id, second_id, score, reasons, status, found_at, dismiss_reason) "
            f"SELECT low, high, %s, %s, %s, %s, '' FROM (SELECT DISTINCT "
            f"CASE WHEN pair.a < pair.b THEN pair.a ELSE pair.b END AS low, "
            f"CASE WHEN pair.a < pair.b THEN pair.b ELSE pair.a END AS high "
            f"FROM ({pairs_sql}) pair JOIN {people} x ON x.id = pair.a JOIN {people} y ON y.id = pair.b "
            f"WHERE pair.a <> pair.b AND x.deleted_at IS NULL AND y.deleted_at IS NULL) pairs "
            f"WHERE true ON CONFLICT (first_id, second_id) DO NOTHING",
            [points, why, DuplicateStatus.OPEN, timezone.now(), *params])
        return cursor.rowcount
