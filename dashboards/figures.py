"""Plotly figures made from a metric's Table. The figure goes to the page as JSON data (never as a
script) and static/dashboards/dashboards.js draws it with the self-hosted plotly.js."""

import datetime
from decimal import Decimal

import plotly.graph_objects as go

# Plotly.js options for every figure: no "send to cloud" button, no logo, redrawn on resize.
PLOTLY_CONFIG = {"responsive": True, "displaylogo": False, "showSendToCloud": False,
                 "modeBarButtonsToRemove": ["sendDataToCloud", "lasso2d", "select2d"]}
COLOURS = ["#007d7e", "#e07a1f", "#5b4a9c", "#c43d5a", "#3c8d2f", "#2d6cb5", "#a5862b", "#6d6d6d"]
DEFAULT_HEIGHT = 360


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
        "showlegend": legend, "legend": {"orientation": "h", "y": -0.2},
        "xaxis": {"automargin": True, "gridcolor": "#e5e5e5"},
        "yaxis": {"automargin": True, "gridcolor": "#e5e5e5", "rangemode": "tozero"},
        "hoverlabel": {"namelength": -1},
    }


def _traces(table, metric, value_keys):
    """[(name, categories, values)] per value column, split by the metric's series column if any."""
    categories = table.values(metric.category)
    traces = []
    for key in value_keys:
        label = table.column(key).label
        values = [_number(v) for v in table.values(key)]
        if metric.series:
            series = table.values(metric.series)
            for name in dict.fromkeys(series):
                picked = [(c, v) for c, s, v in zip(categories, series, values, strict=True) if s == name]
                traces.append((_text(f"{name} · {label}" if len(value_keys) > 1 else str(name)),
                               [c for c, _ in picked], [v for _, v in picked]))
        else:
            traces.append((_text(label), categories, values))
    return traces


def _value_keys(table, metric, chosen):
    return (chosen,) if chosen and chosen in {c.key for c in table.columns} else metric.values


def bar(table, metric, *, value="", horizontal=False, stacked=False, height=None):
    traces = _traces(table, metric, _value_keys(table, metric, value))
    figure = go.Figure(layout=_layout(height, legend=len(traces) > 1))
    for name, categories, values in traces:
        if horizontal:
            figure.add_trace(go.Bar(name=name, x=values, y=[_axis(c) for c in categories], orientation="h"))
        else:
            figure.add_trace(go.Bar(name=name, x=[_axis(c) for c in categories], y=values))
    figure.update_layout(barmode="stack" if stacked else "group")
    if horizontal:
        figure.update_layout(yaxis={"autorange": "reversed", "type": "category"}, xaxis={"rangemode": "tozero"})
    else:
        figure.update_layout(xaxis={"type": "category" if table.column(metric.category).kind != "date" else "date"})
    return figure.to_plotly_json()


def line(table, metric, *, value="", markers=True, height=None):
    keys = _value_keys(table, metric, value)
    traces = _traces(table, metric, keys)
    figure = go.Figure(layout=_layout(height, legend=len(traces) > 1))
    for name, categories, values in traces:
        figure.add_trace(go.Scatter(name=name, x=[_axis(c) for c in categories], y=values,
                                    mode="lines+markers" if markers else "lines"))
    if table.column(metric.category).kind == "date":
        _monthly_axis(figure, table.values(metric.category))
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
    key = _value_keys(table, metric, value)[0]
    totals = {}
    for category, number in zip(table.values(metric.category), table.values(key), strict=True):
        if number:  # an empty slice would only print "0%"
            totals[category] = totals.get(category, 0) + number
    figure = go.Figure(go.Pie(labels=[_axis(label) for label in totals], values=[_number(v) for v in totals.values()],
                              hole=0.5 if donut else 0, sort=False, textinfo="percent",
                              marker={"colors": COLOURS}),
                       layout=_layout(height))
    figure.update_layout(legend={"orientation": "v", "y": 0.5, "x": 1.02})
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
