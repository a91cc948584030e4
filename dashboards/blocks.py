"""The blocks a dashboard is assembled from. Each figure block names a metric (metrics.py) and its
options; `figure(value, table, metric)` turns the metric's Table into Plotly JSON (figures.py)."""

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.utils.functional import lazy
from django.utils.html import format_html, format_html_join
from wagtail import blocks
from wagtail.blocks.struct_block import StructBlockValidationError

from . import figures
from .metrics import CHART, HIERARCHY, get_metric, metric_choices


def chart_metrics():
    return metric_choices(CHART)


def hierarchy_metrics():
    return metric_choices(HIERARCHY)


WIDTHS = [("half", "Half the width"), ("full", "Full width")]
VALUE_HELP = ("Which number to show, by its column key (e.g. 'paid' of payments due and paid); empty: the "
              "metric's main number(s).")


# What leaving a key empty means (a metric must be chosen).
EMPTY_MEANS = {"value": "the metric's main number", "row": "the total of every row"}


@dataclass(frozen=True)
class UnknownKey:
    """A key of a block (its metric, value or row) that the metric does not have, and those it has."""

    field: str
    key: str
    known: tuple

    @property
    def notice(self):
        return f"Unknown {self.field} '{self.key}'"

    @property
    def message(self):
        known = ", ".join(f"'{key}'" for key in self.known)
        empty = f"; or leave it empty for {EMPTY_MEANS[self.field]}" if self.field in EMPTY_MEANS else ""
        return f"{self.notice}. Choose one of: {known}{empty}."


class MetricKeysBlock(blocks.StructBlock):
    """A block naming a metric, and maybe one of its number columns (`value`) and rows (`row`): each
    key is checked against the metric, so that a mistyped one is refused when the page is saved
    instead of showing a 0 or another number, and a page stored before shows which key is wrong."""

    metric_shape = CHART

    def unknown_keys(self, value):
        """The keys of `value` (a block value) its metric does not have, the metric first."""
        name = value["metric"]
        metric = get_metric(name)
        if metric is None or metric.shape != self.metric_shape:
            # No metric chosen at all: the field's own "required" error says so.
            known = tuple(key for key, _label in metric_choices(self.metric_shape))
            return [UnknownKey("metric", name, known)] if name else []
        unknown = []
        chosen = value.get("value")
        if chosen and chosen not in metric.value_keys:
            unknown.append(UnknownKey("value", chosen, metric.value_keys))
        row = (value.get("row") or "").strip()
        if row and metric.rows is not None:
            rows = tuple(str(known) for known in metric.rows())
            if row.lower() not in {known.lower() for known in rows}:
                unknown.append(UnknownKey("row", row, rows))
        return unknown

    def clean(self, value):
        errors = {unknown.field: ValidationError(unknown.message) for unknown in self.unknown_keys(value)}
        try:
            cleaned = super().clean(value)
        except StructBlockValidationError as error:
            raise StructBlockValidationError({**error.block_errors, **errors}) from error
        if errors:
            raise StructBlockValidationError(errors)
        return cleaned


class FigureBlock(MetricKeysBlock):
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
    metric_shape = HIERARCHY
    depth = blocks.IntegerBlock(default=2, min_value=1, max_value=8,
                                help_text="How many levels of the location tree to show (1: regions only).")
    style = blocks.ChoiceBlock(choices=[("treemap", "Treemap"), ("sunburst", "Sunburst")], default="treemap")

    def figure(self, value, table, metric):
        return figures.breakdown(table, metric, depth=value["depth"], style=value["style"], height=value["height"])

    class Meta:
        icon = "site"
        label = "Breakdown by location"


class MetricTableBlock(MetricKeysBlock):
    metric = blocks.ChoiceBlock(choices=chart_metrics)
    title = blocks.CharBlock(required=False, max_length=120, help_text="Empty: the metric's name.")
    description = blocks.CharBlock(required=False, max_length=300)
    width = blocks.ChoiceBlock(choices=WIDTHS, default="full")
    max_rows = blocks.IntegerBlock(default=50, min_value=1, max_value=500,
                                   help_text="Rows shown on the page (the CSV holds them all).")

    class Meta:
        icon = "table"
        label = "Table"


def metric_keys_help():
    """Each chart metric's values and rows, folded: what a KPI tile's "value" and "row" may name."""
    items = []
    for name, label in chart_metrics():
        metric = get_metric(name)
        rows = (", ".join(str(row) for row in metric.rows()) if metric.rows is not None
                else "its first column as its table shows it (e.g. a plan's name)")
        items.append((label, ", ".join(metric.value_keys), rows))
    return format_html("<details><summary>Show the values and rows of each metric</summary><ul>{}</ul></details>",
                       format_html_join("", "<li>{}: values <b>{}</b>; rows <b>{}</b></li>", items))


class KpiBlock(MetricKeysBlock):
    metric = blocks.ChoiceBlock(choices=chart_metrics)
    label = blocks.CharBlock(max_length=60)
    value = blocks.CharBlock(required=False, max_length=40, help_text=VALUE_HELP)
    row = blocks.CharBlock(required=False, max_length=60,
                           help_text="Only the row whose first column reads this (e.g. 'Active' of beneficiaries "
                                     "by status); empty: the total of every row.")

    class Meta:
        icon = "pick"
        label = "KPI tile"
        # Read when the editor opens (metrics register once the apps are ready); a Meta option, so not
        # frozen into migrations.
        help_text = lazy(metric_keys_help, str)()


class DashboardStreamBlock(blocks.StreamBlock):
    text = blocks.RichTextBlock(features=["h2", "h3", "bold", "italic", "link", "ol", "ul"], icon="doc-full")
    kpis = blocks.ListBlock(KpiBlock(), label="KPI tiles", icon="pick", min_num=1, max_num=6)
    bar = BarChartBlock()
    line = LineChartBlock()
    pie = PieChartBlock()
    table = MetricTableBlock()
    breakdown = LocationBreakdownBlock()
