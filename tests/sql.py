"""Assertions on the SQL a path sends."""

import re

# `x NOT IN (SELECT ...)` (Django writes NOT (x IN (SELECT ...))) is hashed only while the subquery's
# rows fit work_mem; past that PostgreSQL scans them once per outer row: at a million rows, never ends.
NOT_IN_SUBQUERY = re.compile(r"NOT \([^()]*\bIN \(SELECT", re.IGNORECASE)


def assert_no_not_in_subquery(captured):
    """`captured`: a CaptureQueriesContext. Anti-joins must be NOT EXISTS."""
    offending = [query["sql"] for query in captured.captured_queries if NOT_IN_SUBQUERY.search(query["sql"])]
    assert not offending, f"NOT IN (subquery) in: {offending[0][:500]}"
