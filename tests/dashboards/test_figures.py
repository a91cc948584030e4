"""Figures and KPI tiles built from a metric's Table: labels stay text, the location breakdown starts
where the viewer's locations start, amounts in several currencies are never added together."""

import datetime
from decimal import Decimal
from types import SimpleNamespace

from dashboards import figures
from dashboards.forms import DashboardFilterForm
from dashboards.metrics import Column, Table

TREE = Table(
    columns=(Column("code", "Code"), Column("name", "Name"), Column("parent", "Parent"),
             Column("depth", "Depth", "number"), Column("n", "People", "number")),
    rows=(("D1", "District <b>One</b>", "", 2, 5), ("W1", "Ward 1", "D1", 3, 3), ("W2", "Ward 2", "D1", 3, 2),
          ("V1", "Village 1", "W1", 4, 3)))
HIERARCHY = SimpleNamespace(values=("n",))


def test_the_breakdown_counts_its_levels_from_the_top_the_viewer_sees():
    # A district manager's "two levels" are their district and its wards, not regions and districts.
    trace = figures.breakdown(TREE, HIERARCHY, depth=2)["data"][0]

    assert trace["ids"] == ["D1", "W1", "W2"]


def test_names_are_text_in_charts_not_plotly_markup():
    trace = figures.breakdown(TREE, HIERARCHY, depth=1)["data"][0]

    assert trace["labels"] == ["District &lt;b&gt;One&lt;/b&gt;"]


def test_amounts_in_several_currencies_are_totalled_per_currency():
    table = Table(columns=(Column("cycle", "Cycle"), Column("currency", "Currency"), Column("due", "Due", "money")),
                  rows=(("C1", "TZS", Decimal("50000.00")), ("C1", "USD", Decimal("20.00")),
                        ("C2", "TZS", Decimal("1000.00"))))

    assert table.totals_per("due", "currency") == {"TZS": Decimal("51000.00"), "USD": Decimal("20.00")}
    assert table.totals_per("due", "currency", where="c2") == {"TZS": Decimal("1000.00")}


def test_a_default_period_of_n_months_starts_n_months_back_on_the_first(monkeypatch):
    monkeypatch.setattr("dashboards.forms.timezone.localdate", lambda: datetime.date(2026, 3, 31))

    assert DashboardFilterForm.defaults(SimpleNamespace(default_period_months=12)) == {"start": "2025-04-01"}
    assert DashboardFilterForm.defaults(SimpleNamespace(default_period_months=2)) == {"start": "2026-02-01"}
    assert DashboardFilterForm.defaults(SimpleNamespace(default_period_months=1)) == {"start": "2026-03-01"}
