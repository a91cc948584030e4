"""`manage.py benchmark`: the registry of benchmarks and the JSON contract of its last line."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import override_settings
from django.urls import NoReverseMatch, reverse

from sites.benchmarking import available_benchmarks, percentile

PAGES = {"list", "filtered_list", "search_id", "search_name", "search_household", "record"}


def individual_views_registered():
    try:
        reverse("registry_individual:index")
    except NoReverseMatch:
        return False
    return True


def run_benchmark(*args):
    out = StringIO()
    call_command("benchmark", *args, stdout=out)
    return out.getvalue().strip().splitlines()


@pytest.mark.django_db
@pytest.mark.skipif(not individual_views_registered(), reason="the individual admin views are not registered")
def test_pages_prints_one_json_object_as_its_last_line(monkeypatch):
    monkeypatch.setattr("schemes.registry.benchmarks.SAMPLES", 4)  # the contract, not the timing
    lines = run_benchmark("pages", "--rows", "200")

    result = json.loads(lines[-1])
    assert result["benchmark"] == "pages"
    assert result["rows"] == 200
    assert result["individuals"] >= 200
    assert result["database"] == connection.vendor
    assert result["machine"]["cores"] >= 1
    if connection.vendor == "postgresql":
        assert {"shared_buffers", "max_wal_size", "checkpoint_timeout"} <= set(result["machine"]["postgresql"])
    assert isinstance(result["seconds"], float) and result["seconds"] > 0
    for report in (result, result["district_clerk"]):
        assert set(report["p50_ms"]) == set(report["p95_ms"]) == PAGES
        assert all(0 < report["p50_ms"][page] <= report["p95_ms"][page] for page in PAGES)


def test_pages_is_registered_and_unknown_names_are_refused():
    assert "pages" in available_benchmarks()
    with pytest.raises(CommandError, match="Unknown benchmark 'nope'.*pages"):
        run_benchmark("nope")


@override_settings(MIZANI_DEMO=False)
def test_benchmarks_refuse_without_the_demo_setting():
    # They replace the registry with synthetic data.
    with pytest.raises(CommandError, match="MIZANI_DEMO"):
        run_benchmark("pages", "--rows", "10")


def test_percentile_is_nearest_rank():
    values = list(range(100, 0, -1))
    assert percentile(values, 0.50) == 50
    assert percentile(values, 0.95) == 95
    assert percentile([7.5], 0.95) == 7.5


@pytest.mark.django_db
def test_enrol_benchmark_prints_its_figures_as_json(capsys):
    import json

    from django.core.management import call_command

    call_command("benchmark", "enrol", "--rows", "150")

    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["benchmark"] == "enrol"
    assert report["enrolled"] >= 150
    assert report["preview_seconds"] >= 0 and report["seconds"] >= 0


@pytest.mark.django_db
def test_import_benchmark_reports_its_figures_and_leaves_the_registry_as_it_was(settings, tmp_path):
    from schemes.registry.models import Household, Individual, Membership

    settings.MEDIA_ROOT = str(tmp_path)
    report = json.loads(run_benchmark("import", "--rows", "300")[-1])

    assert report["benchmark"] == "import" and report["rows"] == 300
    assert report["imported"] == 300 and report["households"] > 50
    assert report["rows_per_s"] > 0 and report["peak_rss_mb"] > 0
    assert report["baselines"]["django_import_export"] > 0 and report["ratios"]["vs_django_import_export"] > 0
    assert (report["baselines"]["copy"] is not None) == (connection.vendor == "postgresql")
    assert not Individual.objects.exists() and not Household.objects.exists() and not Membership.objects.exists()


@pytest.mark.django_db
def test_reconcile_benchmark_reconciles_its_payroll_and_the_same_file_again_changes_nothing(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    report = json.loads(run_benchmark("reconcile", "--rows", "50")[-1])

    assert report["benchmark"] == "reconcile" and report["rows"] == 50
    assert report["paid"] + report["unpaid"] == 50 and report["rows_per_s"] > 0
    assert report["same_file_again"]["unchanged"] == 50 and report["same_file_again"]["imported"] == 0


@pytest.mark.django_db
def test_dashboard_benchmark_pays_its_beneficiaries_and_times_the_overview(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    report = json.loads(run_benchmark("dashboard", "--rows", "120")[-1])

    assert report["benchmark"] == "dashboard" and report["beneficiaries"] >= 120
    assert report["payment_lines"] == report["beneficiaries"]
    assert report["cold_seconds"] > 0 and report["warm_seconds"] > 0
