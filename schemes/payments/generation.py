"""A payroll's lines as ONE statement: INSERT ... SELECT compiled from the payment plan's formula by the
rules compiler, then the seal (count, total, hash). The formula's inputs are read once per
beneficiary in an inner query (household counts are correlated subqueries: computing them twice
would double the work), the formula is computed once over those columns (an OFFSET 0 fence keeps
PostgreSQL from inlining it into every place the amount is used), then rounded and capped.

Rounding rule (ARCHITECTURE 7): half to even, to the cent, after the formula and before the ceiling;
a line is written only for a positive amount (a formula giving nothing, zero or less pays nothing:
e.g. a value it reads is unknown, or it divides by a value that is 0 for that beneficiary). An amount
above what a line holds (MAX_AMOUNT) refuses the whole payroll (AmountTooLarge): nothing is written."""

import hashlib
from decimal import ROUND_HALF_EVEN, Decimal

from django.db import DataError, connection, transaction
from django.db.models import Case, F, OuterRef, Q, Subquery, When
from django.db.models.expressions import RawSQL

from schemes.plans.catalogues import beneficiary_catalogue
from schemes.plans.models import PlanType
from schemes.registry.models import MemberRole, Membership, RecipientType
from schemes.rules import sql as rules_sql
from schemes.rules.catalogue import NUMBER, Catalogue, FieldSpec
from schemes.rules.compiler import compile_rule, evaluate, to_sql
from schemes.rules.nodes import Binary, BoolOp, Call, Condition, FieldRef, InList, Unary, from_json
from sites.dates import years_before

from .models import CENT, MAX_AMOUNT, LineStatus, PaymentLine
from .templatetags.payments_money import money as money_text

SOURCE = "source"  # the inner query's alias; its columns are named here, never by user text
COMPUTED = "computed_rows"  # the CTE of each beneficiary's amount the INSERT reads (write_and_seal)
HOUSEHOLD = "household_counts"
# The catalogue's household counts, read for a whole payroll from one aggregate over memberships
# joined by household (a hash join) instead of a correlated count per beneficiary and per field (ten
# times slower at a million lines). Same definitions as schemes.rules.catalogue.household_specs:
# live members; NULL for a person in no household. tests/schemes/payments prove the parity.
HOUSEHOLD_COUNTS = {"household_size": "size", "children_under_5": "under_5", "elderly_in_household": "from_60"}


def _nodes(node):
    """The rule's nodes, `node` and all below it."""
    yield node
    if isinstance(node, Unary):
        yield from _nodes(node.operand)
    elif isinstance(node, Binary):
        yield from _nodes(node.left)
        yield from _nodes(node.right)
    elif isinstance(node, BoolOp):
        for value in node.values:
            yield from _nodes(value)
    elif isinstance(node, InList):
        yield from _nodes(node.item)
    elif isinstance(node, Condition):
        for part in (node.test, node.then, node.otherwise):
            yield from _nodes(part)
    elif isinstance(node, Call):
        for arg in node.args:
            yield from _nodes(arg)


def field_names(node):
    """The fields a rule reads, sorted: the inputs frozen on each line."""
    return sorted({item.name for item in _nodes(node) if isinstance(item, FieldRef)})


def divisors(node):
    """The divisors of a rule's divisions."""
    return [item.right for item in _nodes(node) if isinstance(item, Binary) and item.op == "/"]


class AmountTooLarge(Exception):
    """A line's amount is above what a money column holds (MAX_AMOUNT): the payroll cannot be written."""


def money(value):
    """A formula's result as money: half to even, to the cent (Python's side of the SQL below)."""
    return None if value is None else Decimal(value).quantize(CENT, rounding=ROUND_HALF_EVEN)


def line_amount(raw, *, ceiling):
    """What a line pays for a formula result, or None when it pays nothing. Capped before rounding,
    which gives what rounding first does (the ceiling is a whole number of cents). An amount above
    MAX_AMOUNT, which generation refuses, is given as the formula's result."""
    if raw is None or raw <= 0:
        return None
    if ceiling is not None and raw > ceiling:
        raw = ceiling
    if raw > MAX_AMOUNT:
        return raw
    amount = money(raw)
    return amount if amount > 0 else None


def too_large_message(count, currency):
    return (f"{count:,} line{'s' if count != 1 else ''} would be above the largest amount a payment line holds "
            f"({money_text(MAX_AMOUNT, currency)}): nothing was written. Correct the formula, or set a ceiling per "
            "beneficiary.")


class Formula:
    """A payroll's formula and criteria, compiled over its benefit plan's beneficiaries."""

    def __init__(self, *, benefit_plan, formula, criteria, today):
        self.benefit_plan = benefit_plan
        self.catalogue = beneficiary_catalogue(benefit_plan, today=today)
        self.node = compile_rule(from_json(formula["rule"]), self.catalogue, expect=NUMBER)
        self.criteria = (compile_rule(from_json(criteria["rule"]), self.catalogue, expect="boolean")
                         if criteria and criteria.get("rule") else None)
        self.inputs = field_names(self.node)
        self.divisors = divisors(self.node)

    def selection(self, statuses, within=None, *, criteria=True):
        """The beneficiaries paid: of the plan, in `statuses`, their person or household not deleted,
        meeting the criteria when there are some (criteria meeting nobody select nobody; not applied
        with criteria=False); among `within` (beneficiary ids) when given."""
        model = self.benefit_plan.beneficiary_model
        queryset = model.objects.filter(plan=self.benefit_plan, status__in=list(statuses),
                                        **{f"{model.SUBJECT}__deleted_at__isnull": True})
        if within is not None:
            queryset = queryset.filter(pk__in=within)
        if criteria and self.criteria is not None:
            queryset = queryset.filter(rules_sql.IsTrue(to_sql(self.criteria, self.catalogue, "boolean")))
        return queryset

    def evaluate(self, beneficiary):
        """(inputs, raw result) for one beneficiary, in Python (the formula tester)."""
        inputs = {name: self.catalogue.value(name, beneficiary) for name in self.inputs}
        return inputs, evaluate(self.node, self.catalogue, beneficiary)

    def why_unpaid(self, beneficiary, raw):
        """Why a beneficiary whose formula result is `raw` is paid nothing, as `outcome` counts them:
        "division_by_zero" (no value: a divisor is 0 for them), "unknown" (no value: a value it reads
        is unknown) or "not_positive" (zero or less, to the cent)."""
        if raw is not None:
            return "not_positive"
        if any(evaluate(divisor, self.catalogue, beneficiary) == 0 for divisor in self.divisors):
            return "division_by_zero"
        return "unknown"

    # --- SQL ---------------------------------------------------------------------------------

    def _recipient(self):
        """Who is paid: the person, or the household's primary recipient (the member the household
        named to receive its payments), else its head; none when no live member is either (the
        household is then left out, counted by `outcome`)."""
        if self.benefit_plan.plan_type == PlanType.HOUSEHOLD:
            payees = (Membership.objects.filter(Q(recipient_type=RecipientType.PRIMARY) | Q(role_id=MemberRole.HEAD),
                                                household_id=OuterRef("household_id"),
                                                individual__deleted_at__isnull=True)
                      .order_by(Case(When(recipient_type=RecipientType.PRIMARY, then=0), default=1)))
            return Subquery(payees.values("individual_id")[:1])
        return F("individual_id")

    def _household_path(self):
        if self.benefit_plan.plan_type == PlanType.HOUSEHOLD:
            return "household_id"
        return "individual__membership__household_id"

    def _counted(self):
        return [name for name in self.inputs if name in HOUSEHOLD_COUNTS]

    def _source(self, statuses, within):
        """SELECT of beneficiary, recipient, location, household and each input as in_<n> (household
        counts come from the joined aggregate instead)."""
        subject = self.benefit_plan.beneficiary_model.SUBJECT
        columns = {f"in_{number}": self.catalogue.sql(name) for number, name in enumerate(self.inputs)
                   if name not in HOUSEHOLD_COUNTS}
        queryset = self.selection(statuses, within).order_by().values(
            line_beneficiary=F("pk"), line_recipient=self._recipient(), line_location=F(f"{subject}__location_id"),
            line_household=F(self._household_path()), **columns)
        sql, params = queryset.query.sql_with_params()
        # OFFSET 0: PostgreSQL would otherwise inline the inputs into each place that reads them.
        fence = "OFFSET 0" if connection.vendor == "postgresql" else "LIMIT -1 OFFSET 0"
        sql = f"SELECT * FROM ({sql}) inputs {fence}"
        if self._counted():
            sql, params = self._with_household_counts(sql, params)
        return (sql, params), queryset.query

    def _with_household_counts(self, sql, params):
        today = self.catalogue.today
        member, person = Membership._meta.db_table, Membership.individual.field.related_model._meta.db_table
        counts = (f"SELECT m.household_id, COUNT(*) AS size, "
                  f"SUM(CASE WHEN p.dob > %s THEN 1 ELSE 0 END) AS under_5, "
                  f"SUM(CASE WHEN p.dob <= %s THEN 1 ELSE 0 END) AS from_60 "
                  f"FROM {member} m JOIN {person} p ON p.id = m.individual_id AND p.deleted_at IS NULL "
                  f"GROUP BY m.household_id")
        dates = [years_before(today, 5), years_before(today, 60)]
        if connection.vendor == "sqlite":
            dates = [day.isoformat() for day in dates]
        joined = (f"SELECT counted.*, {HOUSEHOLD}.size, {HOUSEHOLD}.under_5, {HOUSEHOLD}.from_60 FROM ({sql}) counted "
                  f"LEFT JOIN ({counts}) {HOUSEHOLD} ON {HOUSEHOLD}.household_id = counted.line_household")
        return joined, [*params, *dates]

    def _over_columns(self, query):
        """The formula as SQL over the source's columns (compiled by the rules compiler)."""
        fields = []
        for number, name in enumerate(self.inputs):
            spec = self.catalogue[name]
            column = self._column(number, name)
            fields.append(FieldSpec(name, spec.type, spec.label,
                                    lambda prefix, column=column, kind=spec.type: RawSQL(
                                        column, [], output_field=rules_sql.field_for(kind)),
                                    lambda record: None))
        expression = to_sql(self.node, Catalogue(fields, today=self.catalogue.today), NUMBER)
        compiler = query.get_compiler(connection=connection)
        return compiler.compile(expression.resolve_expression(query))

    def _column(self, number, name):
        """How the formula reads input `name` from the source."""
        if name in HOUSEHOLD_COUNTS:
            count = f"{SOURCE}.{HOUSEHOLD_COUNTS[name]}"
            return f"(CASE WHEN {SOURCE}.line_household IS NULL THEN NULL ELSE COALESCE({count}, 0) END)"
        return f'{SOURCE}."in_{number}"'

    def _inputs_json(self):
        if not self.inputs:
            return ("'{}'::jsonb" if connection.vendor == "postgresql" else "'{}'"), []
        parts, params = [], []
        for number, name in enumerate(self.inputs):
            column = self._column(number, name)
            if connection.vendor == "postgresql" and self.catalogue[name].type == NUMBER:
                column = f"trim_scale({column})"  # 4, not 4.0000000000
            parts.append(f"%s, {column}")
            params.append(name)
        function = "jsonb_build_object" if connection.vendor == "postgresql" else "json_object"
        return f"{function}({', '.join(parts)})", params

    def _computed_sql(self, *, statuses, ceiling, within=None):
        """(sql, params): SELECT of beneficiary, recipient, location, inputs and amount (rounded, then
        capped; NULL when the formula gives nothing) of each beneficiary selected."""
        (source_sql, source_params), query = self._source(statuses, within)
        formula_sql, formula_params = self._over_columns(query)
        inputs_sql, inputs_params = self._inputs_json()
        rounded = _half_even_cents("valued.raw")
        m = _MONEY_PLACEHOLDER[connection.vendor == "postgresql"]
        fence = "OFFSET 0" if connection.vendor == "postgresql" else "LIMIT -1 OFFSET 0"
        # Each level is fenced (OFFSET 0) so that its column is computed once: PostgreSQL would
        # otherwise inline the rounding into each of the cap's three uses, and the capped amount into
        # the filter, the flag and the output.
        sql = (
            f"SELECT rounded.beneficiary, rounded.recipient, rounded.location, rounded.inputs, "
            f"CASE WHEN {m} IS NOT NULL AND rounded.amount > {m} THEN {m} ELSE rounded.amount END AS amount FROM ("
            f"SELECT valued.beneficiary, valued.recipient, valued.location, valued.inputs, {rounded} AS amount FROM ("
            f"SELECT {SOURCE}.line_beneficiary AS beneficiary, {SOURCE}.line_recipient AS recipient, "
            f"{SOURCE}.line_location AS location, {inputs_sql} AS inputs, ({formula_sql}) AS raw "
            f"FROM ({source_sql}) {SOURCE} {fence}) valued {fence}) rounded {fence}"
        )
        return sql, [_money(ceiling), _money(ceiling), _money(ceiling), *inputs_params, *formula_params,
                     *source_params]

    def insert_sql(self, *, payroll_id, limit):
        """(sql, params): the INSERT ... SELECT writing every line of the payroll from COMPUTED (the
        rows _computed_sql gives, a CTE: see write)."""
        table = connection.ops.quote_name(PaymentLine._meta.db_table)
        m = _MONEY_PLACEHOLDER[connection.vendor == "postgresql"]
        sql = (
            f"INSERT INTO {table} (payroll_id, beneficiary_id, recipient_id, location_id, amount, inputs, "
            f"flagged_over_limit, status, receipt, paid_on) "
            f"SELECT %s, computed.beneficiary, computed.recipient, computed.location, computed.amount, "
            f"computed.inputs, ({m} IS NOT NULL AND computed.amount > {m}), %s, '', NULL "
            f"FROM {COMPUTED} computed WHERE computed.amount > 0 AND computed.recipient IS NOT NULL"
        )
        return sql, [payroll_id, _money(limit), _money(limit), LineStatus.DUE]

    def write(self, *, payroll_id, statuses, ceiling, limit):
        """Write the payroll's lines: (count, total, hash, left_out). On PostgreSQL one statement writes
        them and counts who is left out and why (left_out) from the same computed rows. Raises
        AmountTooLarge as write_and_seal does."""
        insert_sql, insert_params = self.insert_sql(payroll_id=payroll_id, limit=limit)
        count, total, digest, counted = write_and_seal(
            insert_sql, insert_params, payroll_id, computed=self._computed_sql(statuses=statuses, ceiling=ceiling),
            also=self._left_out_sql())
        return count, total, digest, self._left_out(counted, statuses)

    def outcome(self, *, statuses, ceiling, within=None):
        """What the formula gives the beneficiaries selected (among `within` when given), counted in
        one pass of the statement generation runs: {"selected", "paid" (a positive amount), "left_out"
        (no amount: "unknown", the formula gives nothing; "not_positive", zero or less), "too_large"
        (above MAX_AMOUNT: generation refuses the payroll), "no_recipient" (a household with no live
        member to pay: left out too)}."""
        computed_sql, computed_params = self._computed_sql(statuses=statuses, ceiling=ceiling, within=within)
        m = _MONEY_PLACEHOLDER[connection.vendor == "postgresql"]
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT COUNT(*), COUNT(*) FILTER (WHERE c.amount > 0 AND c.recipient IS NOT NULL), "
                f"COUNT(*) FILTER (WHERE c.amount IS NULL), COUNT(*) FILTER (WHERE c.amount <= 0), "
                f"COUNT(*) FILTER (WHERE c.amount > {m}), COUNT(*) FILTER (WHERE c.amount > 0 AND c.recipient IS NULL) "
                f"FROM ({computed_sql}) c", [_money(MAX_AMOUNT), *computed_params])
            selected, paid, unknown, not_positive, too_large, no_recipient = cursor.fetchone()
        return {"selected": selected, "paid": paid, "left_out": unknown + not_positive + no_recipient,
                "unknown": unknown, "not_positive": not_positive, "no_recipient": no_recipient, "too_large": too_large}


    def _left_out_sql(self):
        """(sql, params): the counts _left_out reads, aggregated over the computed rows `c`: selected,
        no amount with an input unknown, no amount, zero or less, no recipient, then per input how
        many have no amount with it unknown."""
        unknown = [self._input_unknown(name) for name in self.inputs]
        any_unknown = " OR ".join(sql for sql, _ in unknown) or "1 = 0"
        per_input = "".join(f", COUNT(*) FILTER (WHERE c.amount IS NULL AND {sql})" for sql, _ in unknown)
        sql = (f"COUNT(*), COUNT(*) FILTER (WHERE c.amount IS NULL AND ({any_unknown})), "
               f"COUNT(*) FILTER (WHERE c.amount IS NULL), COUNT(*) FILTER (WHERE c.amount <= 0), "
               f"COUNT(*) FILTER (WHERE c.amount > 0 AND c.recipient IS NULL){per_input}")
        return sql, [param for _, param in unknown] * 2

    def _left_out(self, counted, statuses):
        """The beneficiaries in `statuses` (their person or household not deleted) to whom the payroll
        pays nothing, by why (models.LEFT_OUT_REASONS): {"criteria_not_met", "unknown" (the formula
        gives nothing: a value it reads is unknown; which inputs in "unknown_inputs"), "no_value"
        (nothing with every value known: a division by zero), "not_positive", "no_recipient"}; {}
        when nobody is. `counted`: the row _left_out_sql gives. Those the criteria leave out are the
        statuses' count less those selected (one count, only when there are criteria)."""
        selected, unknown, no_value, not_positive, no_recipient, *by_input = counted
        in_statuses = self.selection(statuses, criteria=False).count() if self.criteria is not None else selected
        counts = {"criteria_not_met": in_statuses - selected, "unknown": unknown, "no_value": no_value - unknown,
                  "not_positive": not_positive, "no_recipient": no_recipient}
        if not any(counts.values()):
            return {}
        return {**counts, "unknown_inputs": [name for name, n in zip(self.inputs, by_input, strict=True) if n]}

    def _input_unknown(self, name):
        """(sql, param): whether input `name` is unknown in a computed row's inputs (JSON)."""
        if connection.vendor == "postgresql":
            return "(c.inputs ->> %s) IS NULL", name
        return "json_extract(c.inputs, %s) IS NULL", f'$."{name}"'


NUMERIC_VALUE_OUT_OF_RANGE = "22003"  # PostgreSQL's SQLSTATE for a number its column cannot hold
# A money parameter may be NULL (no ceiling, no limit): PostgreSQL must be told its type.
_MONEY_PLACEHOLDER = {True: "%s::numeric", False: "CAST(%s AS NUMERIC)"}


def _money(value):
    if value is None:
        return None
    return value if connection.vendor == "postgresql" else str(value)


def _half_even_cents(column):
    """`column` rounded to the cent, half to even, as SQL (PostgreSQL's round() goes half away from
    zero; SQLite's computes in binary)."""
    if connection.vendor == "postgresql":
        cents = f"({column} * 100)"
        # Not cast to the column's numeric(18,2) here: an amount too large for it is counted (outcome)
        # or refused by the INSERT, and a ceiling may still bring it down.
        return (f"(CASE WHEN abs({cents} - trunc({cents})) = 0.5 AND mod(trunc({cents}), 2) = 0 "
                f"THEN round(trunc({cents}) / 100, 2) ELSE round({column}, 2) END)")
    cents = f"({column} * 100)"
    return (f"(CASE WHEN abs({cents} - CAST({cents} AS INTEGER)) = 0.5 AND CAST({cents} AS INTEGER) %% 2 = 0 "
            f"THEN CAST({cents} AS INTEGER) / 100.0 ELSE round({column}, 2) END)")


def seal_digest_python(lines):
    """SHA-256 of "beneficiary:amount" lines in beneficiary order (the same text PostgreSQL hashes)."""
    digest = hashlib.sha256()
    first = True
    for beneficiary_id, amount in lines:
        digest.update(("" if first else "\n").encode() + f"{beneficiary_id}:{amount:.2f}".encode())
        first = False
    return digest.hexdigest()


# The seal's hash: SHA-256 of "beneficiary:amount" lines in beneficiary order (seal_digest_python).
_HASH_SQL = ("encode(sha256(convert_to(coalesce(string_agg(beneficiary_id::text || ':' || amount::text, "
             "E'\\n' ORDER BY beneficiary_id), ''), 'UTF8')), 'hex')")


def write_and_seal(insert_sql, params, payroll_id, *, computed=None, also=None):
    """Run a payroll's INSERT ... SELECT; returns (count, total, hash) of the lines it wrote, then the
    row `also` gives (or None). Raises AmountTooLarge (the caller's transaction is to be rolled back)
    when an amount does not fit a line. `computed` (sql, params): the rows the INSERT reads as the CTE
    COMPUTED; `also` (sql, params): more aggregates over them (as `c`).

    PostgreSQL: read from the rows the INSERT returns, in the same statement, rather than by two more
    scans of a million freshly written lines (count and total, then the hash), and `also` from the
    same computed rows; the amount column refuses an amount too large (in a savepoint, so that the
    caller can still count them). SQLite: from the table afterwards (which takes any number: too large
    ones are looked for), the total added up as Decimals (SQLite sums in binary floating point), and
    `also` by a second statement."""
    computed_sql, computed_params = computed or (None, [])
    prefix = f"WITH {COMPUTED} AS ({computed_sql}) " if computed else ""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with_sql = f"WITH {COMPUTED} AS ({computed_sql}), " if computed else "WITH "
            sealed = f"SELECT count(*), coalesce(sum(amount), 0), {_HASH_SQL} FROM written"
            select = f"SELECT w.*, o.* FROM ({sealed}) w CROSS JOIN (SELECT {also[0]} FROM {COMPUTED} c) o" if also \
                else sealed
            try:
                with transaction.atomic():
                    cursor.execute(f"{with_sql}written AS ({insert_sql} RETURNING beneficiary_id, amount) {select}",
                                   [*computed_params, *params, *(also[1] if also else [])])
            except DataError as error:
                if getattr(error.__cause__, "sqlstate", None) == NUMERIC_VALUE_OUT_OF_RANGE:
                    raise AmountTooLarge from error
                raise
            count, total, digest, *counted = cursor.fetchone()
            return count, total, digest, counted or None
        cursor.execute(prefix + insert_sql, [*computed_params, *params])
        counted = None
        if also:
            cursor.execute(f"{prefix}SELECT {also[0]} FROM {COMPUTED} c", [*computed_params, *also[1]])
            counted = list(cursor.fetchone())
    lines = PaymentLine.objects.filter(payroll_id=payroll_id).order_by("beneficiary_id")
    if lines.filter(amount__gt=MAX_AMOUNT).exists():
        raise AmountTooLarge
    total = sum(lines.values_list("amount", flat=True).iterator(), start=CENT * 0)
    return lines.count(), total, seal_digest_python(lines.values_list("beneficiary_id", "amount").iterator()), counted
