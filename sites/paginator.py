"""The listings' paginator: exact counts up to MIZANI_LISTING_EXACT_COUNT rows, "more than" beyond.

Counting a national list means reading every row it holds (a million people: 0.15-0.25 s of every page
view, ten million: seconds), and past some size nobody reads the total off a list: the dashboards and
reports give the figures. So a listing counts at most one row past the limit; beyond it the label says
"More than 100,000 individuals", the pages run as far as PostgreSQL's estimate of the rows and the
last page number is not offered. Elsewhere (SQLite: demonstrations, tests) the count is exact."""

import json

from django.conf import settings
from django.db import connections
from django.db.models.query import QuerySet
from django.utils.functional import cached_property
from wagtail.admin.paginator import WagtailPaginator


class ListingPaginator(WagtailPaginator):
    count_is_estimate = False

    @cached_property
    def exact_limit(self):
        return settings.MIZANI_LISTING_EXACT_COUNT

    @cached_property
    def count(self):
        rows = self.object_list
        if not isinstance(rows, QuerySet) or connections[rows.db].vendor != "postgresql":
            return super().count  # without a planner's estimate the pages past the limit would be lost
        rows = rows.order_by()
        limit = self.exact_limit
        counted = rows[:limit + 1].count()
        if counted <= limit:
            return counted
        self.count_is_estimate = True
        return max(planned_rows(rows), counted)

    @cached_property
    def items_count_label(self):
        if self.count_is_estimate:
            return f"More than {self.exact_limit:,} {self.verbose_name_plural}"
        return super().items_count_label

    def get_elided_page_range(self, page_number):
        """Wagtail's range, without the last page number when the count is an estimate (its "…" says
        there are more pages; Next goes on)."""
        pages = list(super().get_elided_page_range(page_number))
        if self.count_is_estimate and len(pages) > 1 and pages[-1] == self.num_pages:
            pages.pop()
            if pages[-1] != self.ELLIPSIS:
                pages.append(self.ELLIPSIS)
        return pages


def planned_rows(queryset):
    """The rows PostgreSQL's planner expects `queryset` to return (from the statistics the jobs keep
    fresh: a guess for filtered rows, which may fall short; the pages past it are reached by sorting
    the other way)."""
    sql, params = queryset.query.sql_with_params()
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])
