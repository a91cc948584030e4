"""What a dashboard page shows one viewer: each block's metric computed for them (metrics.compute:
scoped, cached) and shaped into a KPI, a table or Plotly figure data."""

from dataclasses import dataclass, field
from decimal import Decimal

from django.urls import reverse

from .blocks import FigureBlock, MetricTableBlock
from .figures import PLOTLY_CONFIG
from .forms import DashboardFilterForm
from .metrics import compute, compute_many, get_metric


@dataclass
class Item:
    type: str
    id: str = ""
    title: str = ""
    description: str = ""
    width: str = "full"
    value: object = None
    figure: dict | None = None
    columns: tuple = ()
    rows: tuple = ()
    total_rows: int = 0
    tiles: list = field(default_factory=list)
    denied: bool = False
    empty: bool = False
    csv_url: str = ""

    @property
    def data_id(self):
        return f"figure-data-{self.id}"


def format_number(value, kind="number"):
    if value is None:
        return ""
    if kind == "money" or isinstance(value, Decimal):
        return f"{value:,.2f}"
    if isinstance(value, int | float):
        return f"{value:,}"
    return value


def figure_blocks(page):
    """(block id, block, value) of the page's figure and table blocks: what has data to download."""
    return [(child.id, child.block, child.value) for child in page.body
            if isinstance(child.block, FigureBlock | MetricTableBlock)]


def table_of(user, block_value, filters):
    return compute(block_value["metric"], user, filters)


def _is_empty(table):
    numeric = [c.key for c in table.columns if c.kind in ("number", "money")]
    return not table.rows or not any(table.total(key) for key in numeric)


def _kpis(user, value, filters):
    tiles = []
    for tile in value:
        metric = get_metric(tile["metric"])
        table = compute(tile["metric"], user, filters)
        if metric is None or table is None:
            tiles.append({"label": tile["label"], "value": "—", "denied": True})
            continue
        key = tile["value"] if tile["value"] in {c.key for c in table.columns} else metric.values[0]
        kind = table.column(key).kind
        if kind == "money" and "currency" in {c.key for c in table.columns}:
            per_currency = table.totals_per(key, "currency", where=tile["row"])
            shown = " · ".join(f"{format_number(total, kind)} {currency}"
                               for currency, total in sorted(per_currency.items())) or format_number(0, kind)
        else:
            shown = format_number(table.total(key, where=tile["row"]), kind)
        tiles.append({"label": tile["label"], "value": shown})
    return tiles


def metric_names(page):
    names = [value["metric"] for _id, _block, value in figure_blocks(page)]
    names += [tile["metric"] for child in page.body if child.block_type == "kpis" for tile in child.value]
    return names


def render_items(page, user, filters, *, csv_query=None):
    """The page's blocks as Items for this user. `csv_query` (the filters as a query string) adds a
    CSV link to each figure; None leaves them out (preview of unsaved content)."""
    compute_many(metric_names(page), user, filters)
    items = []
    for child in page.body:
        name, value = child.block_type, child.value
        if name == "text":
            items.append(Item(type="text", value=value))
            continue
        if name == "kpis":
            items.append(Item(type="kpis", tiles=_kpis(user, value, filters)))
            continue
        metric = get_metric(value["metric"])
        item = Item(type=name, id=child.id, title=value["title"] or (metric.label if metric else value["metric"]),
                    description=value["description"] or (metric.description if metric else ""),
                    width=value["width"])
        table = table_of(user, value, filters)
        if metric is None or table is None:
            item.denied = True
        elif _is_empty(table):
            item.empty = True
        elif name == "table":
            item.columns = table.columns
            item.rows = tuple(tuple({"text": format_number(cell, column.kind), "number": column.kind != "text"}
                                    for cell, column in zip(row, table.columns, strict=True))
                              for row in table.rows[:value["max_rows"]])
            item.total_rows = len(table.rows)
        else:
            item.figure = child.block.figure(value, table, metric)
        if csv_query is not None and not item.denied:
            url = reverse("dashboards:data", kwargs={"page_id": page.pk, "block_id": child.id})
            item.csv_url = f"{url}?{csv_query}" if csv_query else url
        items.append(item)
    return items


def dashboard_context(page, request, *, preview=False):
    # Without the filter bar, the page's defaults apply whatever the address says.
    form = DashboardFilterForm(request.GET if page.show_filters else {}, user=request.user, page=page)
    filters = form.filters()
    return {
        "page": page,
        "form": form if page.show_filters else None,
        "items": render_items(page, request.user, filters, csv_query=None if preview else form.query()),
        "plotly_config": PLOTLY_CONFIG,
        "preview": preview,
    }
