"""The blocks a dashboard is assembled from. Each figure block names a metric (metrics.py) and its
options; `figure(value, table, metric)` turns the metric's Table into Plotly JSON (figures.py)."""

from wagtail import blocks

from . import figures
from .metrics import CHART, HIERARCHY, metric_choices


def chart_metrics():
    return metric_choices(CHART)


def hierarchy_metrics():
    return metric_choices(HIERARCHY)


WIDTHS = [("half", "Half the width"), ("full", "Full width")]
VALUE_HELP = ("Which number to show, by its column key (e.g. 'paid' of payments due and paid); empty: the "
              "metric's main number(s).")


class FigureBlock(blocks.StructBlock):
    metric = blocks.ChoiceBlock(choices=chart_metrics)
    title = blocks.CharBlock(required=False, max_length=120, help_text="Empty: the metric's name.")
    description = blocks.CharBlock(required=False, max_length=300)
    width = blocks.ChoiceBlock(choices=WIDTHS, default="half")
    height = blocks.IntegerBlock(default=figures.DEFAULT_HEIGHT, min_value=200, max_value=900)

    class Meta:
        icon = "table"


class BarChartBlock(FigureBlock):
    value = blocks.CharBlock(required=False, max_length=40, help_text=VALUE_HELP)
    horizontal = blocks.BooleanBlock(required=False, help_text="Bars run across (long labels read better).")
    stacked = blocks.BooleanBlock(required=False, help_text="Stack the series instead of placing them side by side.")

    def figure(self, value, table, metric):
        return figures.bar(table, metric, value=value["value"], horizontal=value["horizontal"],
                           stacked=value["stacked"], height=value["height"])

    class Meta:
        icon = "list-ul"
        label = "Bar chart"


class LineChartBlock(FigureBlock):
    value = blocks.CharBlock(required=False, max_length=40, help_text=VALUE_HELP)
    markers = blocks.BooleanBlock(required=False, default=True, help_text="Mark each point.")

    def figure(self, value, table, metric):
        return figures.line(table, metric, value=value["value"], markers=value["markers"], height=value["height"])

    class Meta:
        icon = "history"
        label = "Line chart"


class PieChartBlock(FigureBlock):
    value = blocks.CharBlock(required=False, max_length=40, help_text=VALUE_HELP)
    donut = blocks.BooleanBlock(required=False, default=True, help_text="A ring (donut) instead of a full pie.")

    def figure(self, value, table, metric):
        return figures.pie(table, metric, value=value["value"], donut=value["donut"], height=value["height"])

    class Meta:
        icon = "resubmit"
        label = "Pie or donut chart"


class LocationBreakdownBlock(FigureBlock):
    metric = blocks.ChoiceBlock(choices=hierarchy_metrics)
    depth = blocks.IntegerBlock(default=2, min_value=1, max_value=8,
                                help_text="How many levels of the location tree to show (1: regions only).")
    style = blocks.ChoiceBlock(choices=[("treemap", "Treemap"), ("sunburst", "Sunburst")], default="treemap")

    def figure(self, value, table, metric):
        return figures.breakdown(table, metric, depth=value["depth"], style=value["style"], height=value["height"])

    class Meta:
        icon = "site"
        label = "Breakdown by location"


class MetricTableBlock(blocks.StructBlock):
    metric = blocks.ChoiceBlock(choices=chart_metrics)
    title = blocks.CharBlock(required=False, max_length=120, help_text="Empty: the metric's name.")
    description = blocks.CharBlock(required=False, max_length=300)
    width = blocks.ChoiceBlock(choices=WIDTHS, default="full")
    max_rows = blocks.IntegerBlock(default=50, min_value=1, max_value=500,
                                   help_text="Rows shown on the page (the CSV holds them all).")

    class Meta:
        icon = "table"
        label = "Table"


class KpiBlock(blocks.StructBlock):
    metric = blocks.ChoiceBlock(choices=chart_metrics)
    label = blocks.CharBlock(max_length=60)
    value = blocks.CharBlock(required=False, max_length=40, help_text=VALUE_HELP)
    row = blocks.CharBlock(required=False, max_length=60,
                           help_text="Only the row whose first column reads this (e.g. 'Active' of beneficiaries "
                                     "by status); empty: the total of every row.")

    class Meta:
        icon = "pick"
        label = "KPI tile"


class DashboardStreamBlock(blocks.StreamBlock):
    text = blocks.RichTextBlock(features=["h2", "h3", "bold", "italic", "link", "ol", "ul"], icon="doc-full")
    kpis = blocks.ListBlock(KpiBlock(), label="KPI tiles", icon="pick", min_num=1, max_num=6)
    bar = BarChartBlock()
    line = LineChartBlock()
    pie = PieChartBlock()
    table = MetricTableBlock()
    breakdown = LocationBreakdownBlock()
