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
    """min/max of its arguments, NULL when any is NULL (PostgreSQL's LEAST ignores NULLs, SQLite's
    MIN does not). On PostgreSQL `CASE WHEN a IS NULL OR ... THEN NULL ELSE LEAST(a, ...) END`
    (a scalar subquery per row costs ~0.5 s per million rows more), except around an argument that is
    itself a min/max: there each argument appears once in the SQL (a VALUES subquery), so nesting
    cannot double the statement at every level."""

    def __init__(self, *expressions, function, output_field):
        super().__init__(*expressions, output_field=output_field)
        self.extreme = function

    def as_sql(self, compiler, connection, **extra):
        sources = self.get_source_expressions()
        compiled = [compiler.compile(e) for e in sources]
        params = [p for _, expression_params in compiled for p in expression_params]
        if connection.vendor == "sqlite":  # multi-argument MIN/MAX: NULL if any argument is NULL
            return f"{self.extreme.upper()}({', '.join(sql for sql, _ in compiled)})", params
        if not any(_contains_extreme(source) for source in sources):
            function = "LEAST" if self.extreme == "min" else "GREATEST"
            arguments = ", ".join(sql for sql, _ in compiled)
            nullable = [(sql, p) for source, (sql, p) in zip(sources, compiled, strict=True) if not _is_constant(source)]
            if not nullable:
                return f"{function}({arguments})", params
            any_null = " OR ".join(f"({sql}) IS NULL" for sql, _ in nullable)
            return (f"(CASE WHEN {any_null} THEN NULL ELSE {function}({arguments}) END)",
                    [p for _, nullable_params in nullable for p in nullable_params] + params)
        rows = ", ".join(f"({sql})" for sql, _ in compiled)
        return (f"(SELECT CASE WHEN COUNT(v) = COUNT(*) THEN {self.extreme.upper()}(v) END "
                f"FROM (VALUES {rows}) AS extreme(v))", params)


def _contains_extreme(expression):
    return isinstance(expression, NullSafeExtreme) or any(
        _contains_extreme(source) for source in expression.get_source_expressions() if source is not None)


def _is_constant(expression):
    return isinstance(expression, Value) and expression.value is not None


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
        # Whole years as the Python evaluator counts them, for dates in the future too (AGE() rounds
        # towards zero there).
        (start_sql, start_params), (end_sql, end_params) = (compiler.compile(e) for e in self.get_source_expressions())
        start, end = f"(({start_sql})::date)", f"(({end_sql})::date)"
        sql = (f"((EXTRACT(YEAR FROM {end}) - EXTRACT(YEAR FROM {start}) - "
               f"CASE WHEN to_char({end}, 'MM-DD') < to_char({start}, 'MM-DD') THEN 1 ELSE 0 END)::numeric)")
        return sql, [*end_params, *start_params, *end_params, *start_params]

    def as_sqlite(self, compiler, connection, **extra):
        (start_sql, start_params), (end_sql, end_params) = (compiler.compile(e) for e in self.get_source_expressions())
        sql = (f"(CAST(strftime('%%Y', {end_sql}) AS INTEGER) - CAST(strftime('%%Y', {start_sql}) AS INTEGER) "
               f"- (strftime('%%m-%%d', {end_sql}) < strftime('%%m-%%d', {start_sql})))")
        return sql, [*end_params, *start_params, *end_params, *start_params]


FIELDS = {
    "number": models.DecimalField(max_digits=38, decimal_places=10),
    "text": models.TextField(),
    "date": models.DateField(),
    "boolean": BOOLEAN,
}


def field_for(kind):
    return FIELDS.get(kind, models.TextField())


class TypedValue(Func):
    """A bound parameter with its SQL type spelled out: NULL, whole numbers (never integer
    arithmetic on PostgreSQL) and dates are then what the rule means."""

    def __init__(self, value, kind):
        super().__init__(output_field=field_for(kind))
        self.value, self.kind = value, kind

    def as_sql(self, compiler, connection, **extra):
        if connection.vendor == "postgresql":
            cast = {"number": "numeric", "text": "text", "date": "date", "boolean": "boolean"}.get(self.kind, "text")
            return f"(%s)::{cast}", [self.value]
        if self.kind == "number" and self.value is not None:
            return "CAST(%s AS NUMERIC)", [str(self.value)]
        if self.kind == "date" and self.value is not None:
            return "%s", [self.value.isoformat()]
        return "%s", [self.value]


def literal(value, kind):
    if isinstance(value, datetime.date):
        kind = "date"
    return TypedValue(value, kind)


class Arithmetic(Func):
    """`(a <op> b)` on numbers; op comes from the compiler's fixed table. SQLite computes in binary
    floating point, so its sums and differences are rounded to 10 places (0.1 + 0.2 is 0.3 there
    too); PostgreSQL's numeric is exact."""

    output_field = FIELDS["number"]
    template = "(%(expressions)s)"

    def __init__(self, left, right, *, op):
        super().__init__(left, right, arg_joiner=f" {op} ", output_field=FIELDS["number"])
        self.op = op

    def as_sqlite(self, compiler, connection, **extra):
        sql, params = self.as_sql(compiler, connection, **extra)
        return (f"ROUND({sql}, 10)", params) if self.op in ("+", "-") else (sql, params)


class Quotient(Func):
    """a / b, NULL when b is 0 or NULL; decimal division on both databases (SQLite would divide
    whole numbers as integers)."""

    output_field = FIELDS["number"]

    def as_sql(self, compiler, connection, **extra):
        (left_sql, left_params), (right_sql, right_params) = (compiler.compile(e) for e in self.get_source_expressions())
        if connection.vendor == "sqlite":
            return f"(CAST({left_sql} AS REAL) / NULLIF({right_sql}, 0))", [*left_params, *right_params]
        return f"(({left_sql})::numeric / NULLIF(({right_sql})::numeric, 0))", [*left_params, *right_params]


class IsTrue(Func):
    """`(x) IS TRUE`: a condition that is never NULL (When() and WHERE both take it)."""

    template = "((%(expressions)s) IS TRUE)"
    output_field = BOOLEAN

    def as_sqlite(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, template="(COALESCE((%(expressions)s), 0) = 1)", **extra)


class AttributeText(Func):
    """An attribute of a JSON `attributes` column (`column`: its path from the queryset's model): as
    text, or (`boolean`) as SQL TRUE/FALSE; SQL NULL for a missing key or a JSON null (SQLite's ->>
    would give the text 'null')."""

    def __init__(self, name, column="attributes", *, boolean=False):
        super().__init__(models.F(column), output_field=BOOLEAN if boolean else models.TextField())
        self.name, self.boolean = name, boolean

    def as_sql(self, compiler, connection, **extra):
        column, params = compiler.compile(self.source_expressions[0])
        if connection.vendor == "postgresql":
            if self.boolean:
                return f"(CASE jsonb_typeof({column} -> %s) WHEN 'boolean' THEN ({column} ->> %s)::boolean END)", [
                    *params, self.name, *params, self.name]
            return f"({column} ->> %s)", [*params, self.name]
        path = f'$."{self.name}"'
        if self.boolean:
            return f"(CASE JSON_TYPE({column}, %s) WHEN 'true' THEN 1 WHEN 'false' THEN 0 END)", [*params, path]
        return f"JSON_EXTRACT({column}, %s)", [*params, path]
