"""The dashboards' filter form: a default period counted back from today, and a period whose end is
before its start refused on the form (it showed nothing, without a word)."""

import datetime
from types import SimpleNamespace

import pytest

from dashboards.forms import DashboardFilterForm

NO_DEFAULTS = SimpleNamespace(default_period_months=None)


def test_a_default_period_of_n_months_starts_n_months_back_on_the_first(monkeypatch):
    monkeypatch.setattr("dashboards.forms.timezone.localdate", lambda: datetime.date(2026, 3, 31))

    assert DashboardFilterForm.defaults(SimpleNamespace(default_period_months=12)) == {"start": "2025-04-01"}
    assert DashboardFilterForm.defaults(SimpleNamespace(default_period_months=2)) == {"start": "2026-02-01"}
    assert DashboardFilterForm.defaults(SimpleNamespace(default_period_months=1)) == {"start": "2026-03-01"}


@pytest.mark.django_db
def test_to_before_from_is_an_error_on_to_and_the_figures_run_from_from(superuser):
    form = DashboardFilterForm({"start": "2026-12-01", "end": "2026-01-01"}, user=superuser, page=NO_DEFAULTS)
    filters = form.filters()

    assert form.errors == {"end": ["'To' (1 Jan 2026) is before 'From' (1 Dec 2026): the figures run from "
                                   "'From' on."]}
    assert (filters.start, filters.end) == (datetime.date(2026, 12, 1), None)
    assert form.query() == "start=2026-12-01"  # the CSV links leave the refused date out too


@pytest.mark.django_db
def test_a_period_of_one_day_is_kept(superuser):
    form = DashboardFilterForm({"start": "2026-12-01", "end": "2026-12-01"}, user=superuser, page=NO_DEFAULTS)
    filters = form.filters()

    assert form.errors == {}
    assert filters.start == filters.end == datetime.date(2026, 12, 1)


@pytest.mark.django_db
def test_a_page_tied_to_a_plan_offers_no_plan_and_counts_its_own_whatever_is_asked(superuser):
    tied = SimpleNamespace(default_period_months=None, plan_id=7)
    form = DashboardFilterForm({"plan": "8", "start": "2026-12-01"}, user=superuser, page=tied)

    assert "plan" not in form.fields
    assert form.filters().plan_id == 7
    assert form.query() == "start=2026-12-01"
