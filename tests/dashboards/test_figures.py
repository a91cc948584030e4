"""Figures built from a metric's Table: labels stay text, the location breakdown starts where the
viewer's locations start, amounts in several currencies are never added together, a status has one
colour everywhere, long names are cut on the axis (whole in the hover), amounts name their currency."""

import datetime
from decimal import Decimal
from types import SimpleNamespace

from dashboards import figures
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


def by_status(*statuses):
    return Table(columns=(Column("status", "Status"), Column("n", "Beneficiaries", "number")),
                 rows=tuple((status, 5) for status in statuses))


BY_STATUS = SimpleNamespace(category="status", series="", values=("n",))
PLAN_BY_STATUS = Table(columns=(Column("plan", "Plan"), Column("status", "Status"), Column("n", "Beneficiaries", "number")),
                       rows=(("Child grant", "Active", 3), ("Child grant", "Suspended", 1), ("Elderly", "Active", 2)))


def test_a_status_has_one_colour_in_every_figure_whichever_statuses_it_holds():
    green = figures.STATUS_COLOURS["Active"]
    pie = figures.pie(by_status("Active", "Suspended"), BY_STATUS)["data"][0]
    pie_without_potential = figures.pie(by_status("Potential", "Active"), BY_STATUS)["data"][0]
    bars = figures.bar(by_status("Potential", "Active"), BY_STATUS)["data"][0]
    stacked = figures.bar(PLAN_BY_STATUS, SimpleNamespace(category="plan", series="status", values=("n",)),
                          stacked=True)["data"]

    assert dict(zip(pie["labels"], pie["marker"]["colors"], strict=False))["Active"] == green
    assert dict(zip(pie_without_potential["labels"], pie_without_potential["marker"]["colors"],
                    strict=False))["Active"] == green
    assert dict(zip(bars["x"], bars["marker"]["color"], strict=True))["Active"] == green
    assert {trace["name"]: trace["marker"]["color"] for trace in stacked} == {
        "Active": green, "Suspended": figures.STATUS_COLOURS["Suspended"]}


def test_no_status_label_has_two_colours():
    colours = {}
    for status, colour in figures.STATUS_MEANINGS:
        colours.setdefault(status.label, set()).add(colour)
    assert {label: found for label, found in colours.items() if len(found) > 1} == {}


LONG = "Kisarawe and Mkuranga Rural Districts Child Grant"
BY_PLAN = SimpleNamespace(category="plan", series="", values=("n",))


def test_long_names_are_cut_on_the_axis_and_whole_in_the_hover():
    table = Table(columns=(Column("plan", "Plan"), Column("n", "Beneficiaries", "number")),
                  rows=((LONG, 3), (LONG + " (Pwani)", 2), ("Elderly", 1)))
    figure = figures.bar(table, BY_PLAN)
    axis, trace = figure["layout"]["xaxis"], figure["data"][0]

    # Two names cut alike stay two bars: the bars keep the whole names, the ticks show them cut.
    assert list(trace["x"]) == [LONG, LONG + " (Pwani)", "Elderly"]
    assert list(axis["tickvals"]) == list(trace["x"])
    assert list(axis["ticktext"]) == ["Kisarawe and Mkuranga R…", "Kisarawe and Mkuranga R…", "Elderly"]
    assert axis["tickangle"] == -30 and axis["automargin"] is True
    assert trace["hovertemplate"].startswith("%{x}<br>")  # the whole name
    # Short names are left to plotly.
    assert "ticktext" not in figures.bar(by_status("Active"), BY_STATUS)["layout"]["xaxis"]


def test_a_long_series_name_is_cut_in_the_legend_but_not_what_tells_its_values_apart():
    table = Table(columns=(Column("cycle", "Cycle"), Column("plan", "Plan"), Column("currency", "Currency"),
                           Column("due", "Due", "money"), Column("paid", "Paid", "money")),
                  rows=(("C1", LONG, "TZS", Decimal("10.00"), Decimal("5.00")),))
    traces = figures.bar(table, SimpleNamespace(category="cycle", series="plan", values=("due", "paid")))["data"]

    assert [trace["name"] for trace in traces] == ["Kisarawe and Mkuranga R… · Due", "Kisarawe and Mkuranga R… · Paid"]
    assert [trace["meta"] for trace in traces] == [f"{LONG} · Due", f"{LONG} · Paid"]


def test_an_amount_axis_and_hover_name_the_currency():
    table = Table(columns=(Column("payroll", "Payroll"), Column("currency", "Currency"),
                           Column("total", "Total", "money")),
                  rows=(("P1", "TZS", Decimal("1500000.00")), ("P2", "USD", Decimal("20.00"))))
    metric = SimpleNamespace(category="payroll", series="", values=("total",))
    bar, line = figures.bar(table, metric), figures.line(table, metric)

    assert bar["layout"]["yaxis"]["title"]["text"] == "Total (TZS, USD)"
    assert list(bar["data"][0]["customdata"]) == ["TZS", "USD"]
    assert bar["data"][0]["hovertemplate"] == "%{x}<br>%{y:,.2f} %{customdata}<extra>%{meta}</extra>"
    assert line["layout"]["yaxis"]["title"]["text"] == "Total (TZS, USD)"
    horizontal = figures.bar(table, metric, horizontal=True)
    assert horizontal["layout"]["xaxis"]["title"]["text"] == "Total (TZS, USD)"
    # Counts have no unit.
    assert "customdata" not in figures.bar(by_status("Active"), BY_STATUS)["data"][0]


def test_a_month_reads_as_a_month_in_the_hover():
    table = Table(columns=(Column("month", "Month", "date"), Column("n", "Enrolments", "number")),
                  rows=((datetime.date(2026, 11, 1), 4),))
    metric = SimpleNamespace(category="month", series="", values=("n",))

    assert figures.line(table, metric)["data"][0]["hovertemplate"] == "%{x|%b %Y}<br>%{y:,}<extra>%{meta}</extra>"
    assert figures.bar(table, metric)["data"][0]["hovertemplate"].startswith("%{x|%b %Y}<br>")
