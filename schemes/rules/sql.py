"""SQL building blocks with SQL's three-valued logic, written so PostgreSQL and SQLite agree with
the Python evaluator (NULL in, NULL out; a filter keeps only TRUE)."""

import datetime

from django.db import models
from django.db.models import Func, Value

BOOLEAN = models.BooleanField()


class Infix(Func):
    """`(a <op> b)` as a boolean, for comparisons and AND / OR."""

    template = "(%(expressions)s)"
    output_field = BOOLEAN

    def __init__(self, *expressions, op):
        super().__init__(*expressions, arg_joiner=f" {op} ", output_field=BOOLEAN)


class Not(Func):
    template = "(NOT %(expressions)s)"
    output_field = BOOLEAN


class InValues(Func):
    """`(item [NOT] IN (v1, v2, ...))`."""

    output_field = BOOLEAN

    def __init__(self, item, values, *, negated=False):
        super().__init__(item, *values, output_field=BOOLEAN)
        self.negated = negated

    def as_sql(self, compiler, connection, **extra):
        parts, params = [], []
        for expression in self.get_source_expressions():
            sql, expression_params = compiler.compile(expression)
            parts.append(sql)
            params.extend(expression_params)
        keyword = "NOT IN" if self.negated else "IN"
        return f"({parts[0]} {keyword} ({', '.join(parts[1:])}))", params


class NullSafeExtreme(Func):
    """min/max of two values, NULL when either is NULL (PostgreSQL's LEAST ignores NULLs, SQLite's
    MIN does not: both are made to behave like the latter)."""

    def __init__(self, left, right, *, function, output_field):
        super().__init__(left, right, output_field=output_field)
        self.extreme = function

    def as_sql(self, compiler, connection, **extra):
        (left_sql, left_params), (right_sql, right_params) = (compiler.compile(e) for e in self.get_source_expressions())
        name = {"min": "LEAST", "max": "GREATEST"}[self.extreme] if connection.vendor != "sqlite" else self.extreme.upper()
        sql = (f"(CASE WHEN ({left_sql}) IS NULL OR ({right_sql}) IS NULL THEN NULL "
               f"ELSE {name}({left_sql}, {right_sql}) END)")
        return sql, [*left_params, *right_params, *left_params, *right_params]


class TextPosition(Func):
    """Does `text` start with / contain `part`? By position, not LIKE: no wildcard in `part` can match
    more than itself. NULL when either is NULL."""

    output_field = BOOLEAN

    def __init__(self, text, part, *, at_start):
        super().__init__(text, part, output_field=BOOLEAN)
        self.at_start = at_start

    def as_sql(self, compiler, connection, **extra):
        (text_sql, text_params), (part_sql, part_params) = (compiler.compile(e) for e in self.get_source_expressions())
        function = "STRPOS" if connection.vendor == "postgresql" else "INSTR"
        test = "= 1" if self.at_start else "> 0"
        return f"({function}({text_sql}, {part_sql}) {test})", [*text_params, *part_params]


class YearsBetween(Func):
    """Whole years from a date to `end` (an age): NULL when the date is NULL."""

    output_field = models.DecimalField(max_digits=38, decimal_places=10)

    def __init__(self, start, end):
        end = end if hasattr(end, "resolve_expression") else Value(end, output_field=models.DateField())
        super().__init__(start, end, output_field=self.output_field)

    def as_postgresql(self, compiler, connection, **extra):
        (start_sql, start_params), (end_sql, end_params) = (compiler.compile(e) for e in self.get_source_expressions())
        return f"(EXTRACT(YEAR FROM AGE(({end_sql})::date, ({start_sql})::date)))::numeric", [*end_params, *start_params]

    def as_sqlite(self, compiler, connection, **extra):
        (start_sql, start_params), (end_sql, end_params) = (compiler.compile(e) for e in self.get_source_expressions())
        sql = (f"(CAST(strftime('%%Y', {end_sql}) AS INTEGER) - CAST(strftime('%%Y', {start_sql}) AS INTEGER) "
               f"- (strftime('%%m-%%d', {end_sql}) < strftime('%%m-%%d', {start_sql})))")
        return sql, [*end_params, *start_params, *end_params, *start_params]


def literal(value, kind):
    fields = {
        "number": models.DecimalField(max_digits=38, decimal_places=10),
        "text": models.TextField(),
        "date": models.DateField(),
        "boolean": BOOLEAN,
    }
    if isinstance(value, datetime.date):
        kind = "date"
    return Value(value, output_field=fields.get(kind, models.TextField()))
