"""Plotly figures made from a metric's Table. The figure goes to the page as JSON data (never as a
script) and static/dashboards/dashboards.js draws it with the self-hosted plotly.js."""

import datetime
from dataclasses import dataclass
from decimal import Decimal

import plotly.graph_objects as go

from schemes.bulk.models import UploadStatus
from schemes.plans.models import BeneficiaryStatus

# Plotly.js options for every figure: no "send to cloud" button, no logo, redrawn on resize.
PLOTLY_CONFIG = {"responsive": True, "displaylogo": False, "showSendToCloud": False,
                 "modeBarButtonsToRemove": ["sendDataToCloud", "lasso2d", "select2d"]}
TEAL, ORANGE, PURPLE, RED, GREEN, BLUE, OCHRE, GREY = (
    "#007d7e", "#e07a1f", "#5b4a9c", "#c43d5a", "#3c8d2f", "#2d6cb5", "#a5862b", "#6d6d6d")
COLOURS = [TEAL, ORANGE, PURPLE, RED, GREEN, BLUE, OCHRE, GREY]
# A status has one colour in every figure, whichever statuses a chart happens to hold (a palette by
# position would give Active another colour as soon as Potential is missing): going well green,
# waiting blue, paused orange, ended purple, refused or failed red, dropped grey. Tables hold labels.
STATUS_MEANINGS = (
    (BeneficiaryStatus.POTENTIAL, BLUE), (BeneficiaryStatus.ACTIVE, GREEN), (BeneficiaryStatus.SUSPENDED, ORANGE),
    (BeneficiaryStatus.GRADUATED, PURPLE), (BeneficiaryStatus.REJECTED, RED),
    (UploadStatus.VALIDATING, BLUE), (UploadStatus.READY, BLUE), (UploadStatus.IMPORTING, BLUE),
    (UploadStatus.IMPORTED, GREEN), (UploadStatus.REFUSED, RED), (UploadStatus.FAILED, RED),
    (UploadStatus.DISCARDED, GREY),
)
STATUS_COLOURS = {status.label: colour for status, colour in STATUS_MEANINGS}
STATUS = "status"  # the column key of the statuses in the metrics' tables
DEFAULT_HEIGHT = 360
# Longer names are cut on the axis and in the legend; the hover shows them whole.
LABEL_CHARS = 24
MONTH = "x|%b %Y"  # a hover's date: the metrics count by month


def _number(value):
    """Plotly draws floats; amounts stay Decimal in the table and CSV."""
    return float(value) if isinstance(value, Decimal) else value


def _layout(height, *, legend=True):
    # template "none": the figure carries only what it needs (plotly's default template adds ~6 KB each).
    return {
        "template": "none", "height": height or DEFAULT_HEIGHT, "autosize": True,
        "margin": {"l": 56, "r": 16, "t": 16, "b": 48}, "colorway": COLOURS,
        "font": {"family": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", "size": 13},
        "paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)",
        # Above the plot: below it, long category names (turned on the axis) ran into the legend.
        "showlegend": legend, "legend": {"orientation": "h", "x": 0, "xanchor": "left", "y": 1.02, "yanchor": "bottom"},
        "xaxis": {"automargin": True, "gridcolor": "#e5e5e5"},
        "yaxis": {"automargin": True, "gridcolor": "#e5e5e5", "rangemode": "tozero"},
        "hoverlabel": {"namelength": -1},
    }


def status_colours(labels):
    """The colour of each status label; one this mapping does not know takes the palette's by position."""
    return [STATUS_COLOURS.get(label, COLOURS[position % len(COLOURS)]) for position, label in enumerate(labels)]


@dataclass
class Trace:
    name: str  # in full, escaped: the hover's
    legend: str  # the same, cut if long, escaped
    series: object  # the value of the metric's series column (None without one)
    categories: list
    values: list
    currencies: list  # per point: an amount's currency (None for counts)

    @property
    def customdata(self):
        return self.currencies if any(self.currencies) else None

    @property
    def colour(self):
        return STATUS_COLOURS.get(self.series)


def _traces(table, metric, value_keys):
    """A Trace per value column, split by the metric's series column if any."""
    categories = table.values(metric.category)
    currencies = table.values("currency") if _is_money(table, value_keys) else [None] * len(table.rows)
    traces = []
    for key in value_keys:
        label = table.column(key).label
        values = [_number(v) for v in table.values(key)]
        if metric.series:
            series = table.values(metric.series)
            for name in dict.fromkeys(series):
                picked = [(c, v, m) for c, s, v, m in zip(categories, series, values, currencies, strict=True)
                          if s == name]
                # Only the series' name is cut: "Due" and "Paid" of a long plan's name stay apart.
                suffix = f" · {label}" if len(value_keys) > 1 else ""
                traces.append(Trace(_text(f"{name}{suffix}"), _text(f"{_shorten(str(name))}{suffix}"),
                                    name if metric.series == STATUS else None,
                                    [c for c, _, _ in picked], [v for _, v, _ in picked], [m for _, _, m in picked]))
        else:
            traces.append(Trace(_text(label), _text(label), None, categories, values, currencies))
    return traces


def _is_money(table, value_keys):
    return any(table.column(key).kind == "money" for key in value_keys)


def _value_title(table, value_keys):
    """The value axis' title: for amounts, with their currencies (an axis of bare millions says nothing
    of the unit)."""
    if not _is_money(table, value_keys):
        return ""
    label = table.column(value_keys[0]).label if len(value_keys) == 1 else "Amount"
    return f"{label} ({', '.join(sorted(set(table.values('currency'))))})"


def _hover(trace, *, category, value):
    """The hover text: the category and the trace's name in full, amounts with their currency."""
    number = f"%{{{value}:,.2f}} %{{customdata}}" if trace.customdata else f"%{{{value}:,}}"
    return f"%{{{category}}}<br>{number}<extra>%{{meta}}</extra>"


def _category_axis(categories):
    """Axis settings that show long names cut (the bars keep them whole, so that two names cut alike
    stay two bars, and the hover shows them)."""
    names = [c for c in dict.fromkeys(categories) if isinstance(c, str)]
    if not any(len(name) > LABEL_CHARS for name in names):
        return {}
    # Turned up to the left, a name ends at its bar and reaches into the value axis' margin, not past
    # the plot's right edge.
    return {"tickmode": "array", "tickvals": [_text(name) for name in names],
            "ticktext": [_text(_shorten(name)) for name in names], "tickangle": -30}


def _shorten(name):
    return name if len(name) <= LABEL_CHARS else name[:LABEL_CHARS - 1].rstrip() + "…"


def _value_keys(metric, chosen):
    return (chosen,) if chosen else metric.values


def bar(table, metric, *, value="", horizontal=False, stacked=False, height=None):
    keys = _value_keys(metric, value)
    traces = _traces(table, metric, keys)
    figure = go.Figure(layout=_layout(height, legend=len(traces) > 1))
    by_status = metric.category == STATUS and not metric.series
    dated = table.column(metric.category).kind == "date"
    for trace in traces:
        colour = status_colours(trace.categories) if by_status else trace.colour
        options = {"name": trace.legend, "meta": trace.name, "marker": {"color": colour},
                   "customdata": trace.customdata}
        categories = [_axis(c) for c in trace.categories]
        if horizontal:
            figure.add_trace(go.Bar(x=trace.values, y=categories, orientation="h",
                                    hovertemplate=_hover(trace, category="y", value="x"), **options))
        else:
            figure.add_trace(go.Bar(x=categories, y=trace.values,
                                    hovertemplate=_hover(trace, category=MONTH if dated else "x", value="y"),
                                    **options))
    figure.update_layout(barmode="stack" if stacked else "group")
    category_axis = _category_axis(table.values(metric.category))
    value_axis = {"title": {"text": _value_title(table, keys)}, "rangemode": "tozero"}
    if horizontal:
        figure.update_layout(yaxis={"autorange": "reversed", "type": "category", **category_axis}, xaxis=value_axis)
    else:
        figure.update_layout(xaxis={"type": "date" if dated else "category", **category_axis}, yaxis=value_axis)
    return figure.to_plotly_json()


def line(table, metric, *, value="", markers=True, height=None):
    keys = _value_keys(metric, value)
    traces = _traces(table, metric, keys)
    figure = go.Figure(layout=_layout(height, legend=len(traces) > 1))
    dated = table.column(metric.category).kind == "date"
    for trace in traces:
        figure.add_trace(go.Scatter(name=trace.legend, meta=trace.name,
                                    x=[_axis(c) for c in trace.categories], y=trace.values,
                                    customdata=trace.customdata, line={"color": trace.colour},
                                    hovertemplate=_hover(trace, category=MONTH if dated else "x", value="y"),
                                    mode="lines+markers" if markers else "lines"))
    figure.update_layout(yaxis={"title": {"text": _value_title(table, keys)}})
    if dated:
        _monthly_axis(figure, table.values(metric.category))
    else:
        figure.update_layout(xaxis=_category_axis(table.values(metric.category)))
    return figure.to_plotly_json()


def _monthly_axis(figure, months):
    """Months read as "Nov 2026", one tick each; a lone month gets a month either side (plotly would
    otherwise zoom into milliseconds around it)."""
    axis = {"type": "date", "tickformat": "%b %Y", "dtick": "M1"}
    distinct = sorted(set(months))
    if len(distinct) < 2 and distinct:
        only = distinct[0]
        before = (only.replace(day=1) - datetime.timedelta(days=1)).replace(day=1)
        after = (only.replace(day=28) + datetime.timedelta(days=4)).replace(day=1)
        axis["range"] = [before.isoformat(), after.isoformat()]
    figure.update_layout(xaxis=axis)


def pie(table, metric, *, value="", donut=True, height=None):
    key = _value_keys(metric, value)[0]
    totals = {}
    for category, number in zip(table.values(metric.category), table.values(key), strict=True):
        if number:  # an empty slice would only print "0%"
            totals[category] = totals.get(category, 0) + number
    colours = status_colours(totals) if metric.category == STATUS else COLOURS
    figure = go.Figure(go.Pie(labels=[_axis(label) for label in totals], values=[_number(v) for v in totals.values()],
                              hole=0.5 if donut else 0, sort=False, textinfo="percent",
                              marker={"colors": colours}),
                       layout=_layout(height))
    figure.update_layout(legend={"orientation": "v", "x": 1.02, "xanchor": "left", "y": 0.5, "yanchor": "middle"})
    return figure.to_plotly_json()


def breakdown(table, metric, *, depth=2, style="treemap", height=None):
    """A treemap or sunburst of a hierarchy table, `depth` levels from the top the viewer sees (their
    scope, or the location they chose): a district manager's "region and district" is their district
    and its wards."""
    key = metric.values[0]
    top = min((row[table.index("depth")] for row in table.rows), default=1)
    rows = [row for row in table.rows if row[table.index("depth")] < top + depth]
    ids = [row[table.index("code")] or row[table.index("name")] for row in rows]
    kept = set(ids)
    parents = [row[table.index("parent")] if row[table.index("parent")] in kept else "" for row in rows]
    trace = go.Sunburst if style == "sunburst" else go.Treemap
    options = {"ids": ids, "labels": [_text(row[table.index("name")]) for row in rows], "parents": parents,
               "values": [_number(row[table.index(key)]) for row in rows], "branchvalues": "total",
               "hovertemplate": "%{label}: %{value:,}<extra></extra>"}
    if style != "sunburst":
        options["textinfo"] = "label+value"
    figure = go.Figure(trace(**options), layout=_layout(height, legend=False))
    figure.update_layout(margin={"l": 8, "r": 8, "t": 8, "b": 8}, treemapcolorway=COLOURS,
                         sunburstcolorway=COLOURS)
    return figure.to_plotly_json()


def _axis(value):
    return value.isoformat() if hasattr(value, "isoformat") else _text(value)


def _text(value):
    """Plotly reads <a href>, <b>, <span style> in labels as markup: a name stays text."""
    return value.replace("<", "&lt;").replace(">", "&gt;") if isinstance(value, str) else value
