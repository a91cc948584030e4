"""What a dashboard page shows one viewer: each block's metric computed for them (metrics.compute:
scoped, cached) and shaped into a KPI, a table or Plotly figure data."""

from dataclasses import dataclass, field
from decimal import Decimal

from django.urls import reverse
from django.utils.html import escape, format_html
from django.utils.safestring import mark_safe

from .blocks import FigureBlock, MetricTableBlock
from .figures import PLOTLY_CONFIG
from .forms import DashboardFilterForm
from .metrics import Filters, compute, compute_many, get_metric

# Money is only ever in payments: an empty money figure says so rather than showing a bare 0.
NO_PAYMENTS = "No payments yet."
NO_PAYMENTS_FILTERED = "No payments for these filters."
NO_DATA = "No data for these filters."
NOTHING_YET = "Nothing recorded yet in your locations."
# A tile is narrow: what it says when it has no amount, by whether filters narrowed the figures.
TILE_NO_PAYMENTS = {NO_PAYMENTS: "No payments yet", NO_PAYMENTS_FILTERED: "No payments"}
# A tile shows millions and more as "1.23 M": a dozen digits do not fit a tile on a phone.
COMPACT_UNITS = ((10**6, "M"), (10**9, "B"), (10**12, "T"))
CENT = Decimal("0.01")


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
    empty: str = ""  # what to say when there is nothing to draw
    notice: str = ""  # a key of the block its metric does not have
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


def compact_number(value, kind="number"):
    """`value` as a tile shows it: as format_number below a million, else in millions, billions or
    trillions with two decimals ("1.23 M"); a rounding up to 1,000 of a unit moves to the next one."""
    if abs(value) < COMPACT_UNITS[0][0]:
        return format_number(value, kind)
    for size, unit in COMPACT_UNITS:
        scaled = (Decimal(value) / size).quantize(CENT)
        if abs(scaled) < 1000 or unit == COMPACT_UNITS[-1][1]:
            return f"{scaled:,} {unit}"


def figure_blocks(page):
    """(block id, block, value) of the page's figure and table blocks: what has data to download."""
    return [(child.id, child.block, child.value) for child in page.body
            if isinstance(child.block, FigureBlock | MetricTableBlock)]


def table_of(user, block_value, filters):
    return compute(block_value["metric"], user, filters)


def _is_empty(table):
    numeric = [c.key for c in table.columns if c.kind in ("number", "money")]
    return not table.rows or not any(table.total(key) for key in numeric)


def _empty_text(table, metric, filters):
    """Why a figure is empty; "for these filters" only when a filter its metric applies is set."""
    if not any(column.kind == "money" for column in table.columns):
        return NO_DATA
    return NO_PAYMENTS if filters.only(metric.filters_used) == Filters() else NO_PAYMENTS_FILTERED


def _kpi(tile, table, metric, filters):
    """{value: what the tile shows, title: the exact number} of one KPI tile: amounts per currency
    (never added together), one currency a line; {empty: why there is none} without amounts."""
    key = tile["value"] or metric.values[0]
    kind = table.column(key).kind
    if kind != "money":
        total = table.total(key, where=tile["row"])
        shown, exact = compact_number(total, kind), format_number(total, kind)
    else:
        per_currency = sorted(table.totals_per(key, "currency", where=tile["row"]).items())
        if not per_currency:
            empty = _empty_text(table, metric, filters)
            return {"empty": TILE_NO_PAYMENTS[empty], "title": empty}
        shown = "\n".join(f"{compact_number(total, kind)} {currency}" for currency, total in per_currency)
        exact = " · ".join(f"{format_number(total, kind)} {currency}" for currency, total in per_currency)
    return {"value": shown, "title": exact if exact != shown else ""}


def _notice(unknown):
    """What a block shows for a key its metric lacks; the key may break after an underscore (a metric's
    key is longer than a tile is wide)."""
    key = mark_safe("_<wbr>".join(escape(part) for part in unknown.key.split("_")))  # each part escaped
    return format_html("Unknown {} '{}'", unknown.field, key)


def _kpis(block, user, value, filters):
    tiles = []
    for tile in value:
        unknown = block.child_block.unknown_keys(tile)
        if unknown:
            tiles.append({"label": tile["label"], "notice": _notice(unknown[0])})
            continue
        table = compute(tile["metric"], user, filters)
        if table is None:
            tiles.append({"label": tile["label"], "denied": True})
        else:
            tiles.append({"label": tile["label"], **_kpi(tile, table, get_metric(tile["metric"]), filters)})
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
            items.append(Item(type="kpis", tiles=_kpis(child.block, user, value, filters)))
            continue
        metric = get_metric(value["metric"])
        item = Item(type=name, id=child.id, title=value["title"] or (metric.label if metric else value["metric"]),
                    description=value["description"] or (metric.description if metric else ""),
                    width=value["width"])
        unknown = child.block.unknown_keys(value)
        table = None if unknown else table_of(user, value, filters)
        if unknown:
            item.notice = _notice(unknown[0])
        elif table is None:
            item.denied = True
        elif _is_empty(table):
            item.empty = _empty_text(table, metric, filters)
        elif name == "table":
            item.columns = table.columns
            item.rows = tuple(tuple({"text": format_number(cell, column.kind), "number": column.kind != "text"}
                                    for cell, column in zip(row, table.columns, strict=True))
                              for row in table.rows[:value["max_rows"]])
            item.total_rows = len(table.rows)
        else:
            item.figure = child.block.figure(value, table, metric)
        if csv_query is not None and not (item.denied or item.notice):
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
