"""The dashboard blocks refuse a key their metric does not have (a mistyped KPI row showed a 0 tile, a
mistyped value another number), naming it and the keys there are; the metrics declare the number
columns and fixed rows their tables have."""

import pytest
from wagtail.blocks.struct_block import StructBlockValidationError

from dashboards.blocks import BarChartBlock, KpiBlock, LocationBreakdownBlock
from dashboards.metrics import CHART, compute, registered_metrics

pytestmark = pytest.mark.django_db


def kpi(metric, value="", row=""):
    block = KpiBlock()
    return block, block.to_python({"metric": metric, "label": "Tile", "value": value, "row": row})


def errors_of(block, value):
    with pytest.raises(StructBlockValidationError) as refused:
        block.clean(value)
    return {field: error.messages[0] for field, error in refused.value.block_errors.items()}


def test_a_tile_of_an_unknown_metric_is_refused_naming_it_and_the_metrics_there_are():
    errors = errors_of(*kpi("beneficiaries_by_statu"))

    assert errors["metric"].startswith("Unknown metric 'beneficiaries_by_statu'. Choose one of: ")
    assert "'beneficiaries_by_status'" in errors["metric"] and "'registry_totals'" in errors["metric"]
    # A location tree is not a KPI's metric.
    assert "'people_by_location'" not in errors["metric"]


def test_a_tile_with_a_mistyped_row_or_value_is_refused():
    errors = errors_of(*kpi("beneficiaries_by_status", value="benefciaries", row="Actve"))

    assert errors == {
        "value": "Unknown value 'benefciaries'. Choose one of: 'beneficiaries'; or leave it empty for the "
                 "metric's main number.",
        "row": "Unknown row 'Actve'. Choose one of: 'Potential', 'Active', 'Suspended', 'Graduated', "
               "'Rejected'; or leave it empty for the total of every row."}
    payments_errors = errors_of(*kpi("payments_due_vs_paid", value="Paied"))
    assert payments_errors["value"].startswith("Unknown value 'Paied'. Choose one of: 'due', 'paid', "
                                               "'due_lines', 'paid_lines'")


def test_the_other_errors_of_a_tile_are_shown_with_its_unknown_keys():
    block = KpiBlock()
    value = block.to_python({"metric": "beneficiaries_by_status", "label": "", "value": "", "row": "Actve"})

    assert set(errors_of(block, value)) == {"label", "row"}


def test_a_tile_with_known_keys_is_kept():
    for metric, value, row in (("beneficiaries_by_status", "", " active "), ("registry_totals", "count", "People"),
                               ("payments_due_vs_paid", "paid_lines", ""),
                               # Plans and cycles come from the data: any row is taken.
                               ("beneficiaries_by_plan", "", "Child grant")):
        block, tile = kpi(metric, value, row)
        assert block.clean(tile)["metric"] == metric


def test_figures_check_their_metric_and_value_too():
    bar = BarChartBlock()
    value = bar.to_python({"metric": "payroll_totals", "title": "", "description": "", "width": "half",
                           "height": 360, "value": "totl", "horizontal": False, "stacked": False})
    assert errors_of(bar, value) == {"value": "Unknown value 'totl'. Choose one of: 'total', 'lines'; or leave "
                                              "it empty for the metric's main number."}
    breakdown = LocationBreakdownBlock()
    chart_metric = breakdown.to_python({"metric": "beneficiaries_by_status", "title": "", "description": "",
                                        "width": "half", "height": 360, "depth": 2, "style": "treemap"})
    assert [key.field for key in breakdown.unknown_keys(chart_metric)] == ["metric"]


def test_every_metric_declares_the_number_columns_and_fixed_rows_of_its_table(people, approved_payroll,
                                                                               superuser):
    for name, metric in registered_metrics().items():
        table = compute(name, superuser)
        numbers = {column.key for column in table.columns if column.kind in ("number", "money")}
        if metric.shape == CHART:
            assert numbers == set(metric.value_keys), name
        if any(column.kind == "money" for column in table.columns):
            assert "currency" in {column.key for column in table.columns}, name  # amounts keep their unit
        if metric.rows is not None:
            assert {row[0] for row in table.rows} <= set(metric.rows()), name


def test_a_kpi_tile_lists_each_metrics_values_and_rows_for_the_editor():
    """QA: "Value" and "Row" were guesses ("ACTIVE"), refused only on save. The tile's help lists them."""
    help_text = str(KpiBlock().meta.help_text)

    assert "Beneficiaries by status: values <b>beneficiaries</b>; rows <b>Potential, Active, Suspended, " \
           "Graduated, Rejected</b>" in help_text
    assert "Payments due and paid per cycle: values <b>due, paid, due_lines" in help_text
    assert "Beneficiaries by plan and status: values <b>beneficiaries</b>; rows <b>its first column" in help_text
    assert "Change a household&#x27;s members" in help_text  # labels are escaped (the editor reads it as HTML)
