"""`manage.py benchmark pages --rows N`: response times of the registry's admin pages (the people's
list, filtered, searched by ID and by name, a record; the households searched by a surname).

Measured in-process with Django's test client (no network, no browser), so the figures are the
server's time: views, queries, templates, session and audit writes.
"""

import random
import time
from urllib.parse import urlencode

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import CommandError
from django.db.models import Max, Min
from django.test import Client
from django.test.utils import override_settings
from django.urls import NoReverseMatch, reverse

from sites.benchmarking import percentile, register
from sites.models import UserAccess
from sites.scoping import scope_for

from .demo import seed_demo
from .models import Individual
from .selectors import individuals_for

WARMUP = 3
SAMPLES = 30
BENCHMARK_USERNAME = "benchmark_clerk"
DISTRICT_CLERK_USERNAME = "clerk"  # a demo user (sites.demo) scoped to one district


@register("pages")
def pages(*, rows, seed, log):
    started = time.perf_counter()
    live = Individual.objects.live().count()
    if live < rows:
        log(f"The registry holds {live:,} live individuals; seeding {rows:,}...")
    # Reuses the data when there is enough of it; otherwise starts the registry again.
    seed_demo(individuals=rows, seed=seed, reset=live < rows)
    seed_seconds = time.perf_counter() - started
    index_url = _index_url()
    rng = random.Random(seed)
    report = {"individuals": Individual.objects.live().count(), "seed_seconds": round(seed_seconds, 1)}
    with override_settings(ALLOWED_HOSTS=["testserver"], DEBUG=False):
        log("Measuring as a national clerk...")
        report.update(_measure(benchmark_clerk(), index_url, rng))
        district_clerk = get_user_model().objects.filter(username=DISTRICT_CLERK_USERNAME).first()
        if district_clerk is not None and individuals_for(district_clerk).exists():
            log("Measuring as a district clerk...")
            report["district_clerk"] = _measure(district_clerk, index_url, rng)
    return report


def _index_url():
    try:
        url = reverse("registry_individual:index")
        reverse("registry_individual:inspect", args=[1])
    except NoReverseMatch:
        raise CommandError(
            "The individual admin views (registry_individual:index and :inspect) are not registered."
        ) from None
    return url


def benchmark_clerk():
    """A Clerk with national scope, kept for benchmarks only (no password: it cannot log in)."""
    user, created = get_user_model().objects.get_or_create(username=BENCHMARK_USERNAME)
    if created:
        user.set_unusable_password()
        user.save()
        user.groups.add(Group.objects.get(name="Clerk"))
        UserAccess.objects.create(user=user, national_scope=True)
    return user


def _measure(user, index_url, rng):
    """p50 and p95 in ms for each page, over SAMPLES requests after WARMUP requests."""
    visible = individuals_for(user)
    count = WARMUP + SAMPLES
    people = _sample(visible, rng, count)
    identified = _sample(visible.filter(national_id__isnull=False), rng, count)
    districts = list(scope_for(user).locations().filter(depth=2).values_list("pk", flat=True))
    if not people or not identified or not districts:
        raise CommandError(f"{user.username} sees no individuals with national IDs in any district.")

    households_url = reverse("registry_household:index")

    def listing(**query):
        return f"{index_url}?{urlencode(query)}"

    # (url, text the page must contain) per request; the text shows the page found what was asked.
    requests = {
        "list": [(index_url, None)] * count,
        "filtered_list": [(listing(sex="F", age_band="18-59", location=rng.choice(districts)), None)
                          for _ in range(count)],
        "search_id": [(listing(q=p["national_id"]), p["last_name"]) for p in identified],
        "search_name": [(listing(q=f"{p['first_name']} {p['last_name']}"), p["last_name"]) for p in people],
        # A clerk looking for a family types its surname: the households with a member of that name.
        "search_household": [(f"{households_url}?{urlencode({'q': p['last_name']})}", None) for p in people],
        "record": [(reverse("registry_individual:inspect", args=[p["pk"]]), p["last_name"]) for p in people],
    }
    client = Client()
    client.force_login(user)
    timings = {page: _timings(client, user, urls) for page, urls in requests.items()}
    return {
        "p50_ms": {page: round(percentile(times, 0.50), 1) for page, times in timings.items()},
        "p95_ms": {page: round(percentile(times, 0.95), 1) for page, times in timings.items()},
    }


def _sample(queryset, rng, count):
    """`count` random rows (with repeats), drawn by id: ORDER BY random() would read every row."""
    bounds = queryset.aggregate(low=Min("pk"), high=Max("pk"))
    if bounds["low"] is None:
        return []
    rows = []
    for _ in range(count):
        start = rng.randint(bounds["low"], bounds["high"])
        rows.append(queryset.filter(pk__gte=start).order_by("pk")
                    .values("pk", "first_name", "last_name", "national_id").first())
    return rows


def _timings(client, user, requests):
    timings = []
    for number, (url, expected_text) in enumerate(requests):
        started = time.perf_counter()
        response = client.get(url)
        elapsed_ms = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise CommandError(f"GET {url} as {user.username} answered {response.status_code}, not 200.")
        if expected_text and expected_text not in response.content.decode():
            raise CommandError(f"GET {url} as {user.username} does not show {expected_text!r}.")
        if number >= WARMUP:
            timings.append(elapsed_ms)
    return timings
