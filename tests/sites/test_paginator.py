"""Listings count exactly up to MIZANI_LISTING_EXACT_COUNT rows and say "more than" beyond, without
claiming a last page they did not count."""

import re

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from schemes.registry.models import Individual
from sites.paginator import ListingPaginator
from tests.factories import IndividualFactory

pytestmark = pytest.mark.django_db
# Past the limit the pages run as far as PostgreSQL's planner expects rows; SQLite counts exactly.
postgres_only = pytest.mark.skipif("connection.vendor != 'postgresql'", reason="the planner's estimate")

INDEX = "registry_individual:index"


def page_text(user, **query):
    client = Client()
    client.force_login(user)
    response = client.get(reverse(INDEX), query)
    assert response.status_code == 200
    return re.sub(r"\s+", " ", response.content.decode())


def test_a_listing_within_the_limit_counts_exactly(geo, clerk_a, settings):
    settings.MIZANI_LISTING_EXACT_COUNT = 5
    for _ in range(5):
        IndividualFactory(location=geo.village_a)
    IndividualFactory(location=geo.village_b)  # out of clerk A's reach: not counted

    text = page_text(clerk_a)

    assert "5 individuals" in text
    assert "Page 1 of 1" in text
    assert "More than" not in text


@postgres_only
def test_a_listing_past_the_limit_says_more_than_and_claims_no_last_page(geo, clerk_a, settings):
    settings.MIZANI_LISTING_EXACT_COUNT = 5
    for _ in range(7):
        IndividualFactory(location=geo.village_a, sex="F")

    listing = page_text(clerk_a)
    filtered = page_text(clerk_a, sex="F")

    assert "More than 5 individuals" in listing
    assert "Page 1 of" not in listing and "Page 1" in listing
    assert "More than 5 individuals match" in filtered


@postgres_only
def test_the_pages_go_on_past_the_limit_without_the_last_page_number(geo):
    for _ in range(12):
        IndividualFactory(location=geo.village_a)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE registry_individual")  # as the jobs do after loading people
    paginator = ListingPaginator(Individual.objects.order_by("pk"), per_page=2)
    paginator.exact_limit = 5

    assert paginator.count == 12 and paginator.count_is_estimate  # the planner's figure
    assert paginator.items_count_label == "More than 5 individuals"
    pages = list(paginator.get_elided_page_range(1))
    assert paginator.num_pages not in pages
    assert pages[-1] == paginator.ELLIPSIS
    assert paginator.page(3).has_next()  # Next goes on past the rows counted


def test_a_small_listing_is_counted_exactly_without_asking_the_planner(geo, django_assert_num_queries):
    for _ in range(3):
        IndividualFactory(location=geo.village_a)
    paginator = ListingPaginator(Individual.objects.order_by("pk"), per_page=2)

    with django_assert_num_queries(1):
        assert paginator.count == 3
    assert not paginator.count_is_estimate
    assert list(paginator.get_elided_page_range(1)) == [1, 2]
