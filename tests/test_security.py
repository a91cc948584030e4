"""QUALITY 3 (stored XSS) and 14 (deployment checks, sessions), plus the Content-Security-Policy."""

import datetime
import os
import secrets
import string
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from schemes.registry import services
from schemes.registry.models import MemberRole
from tests.factories import (
    HouseholdFactory,
    LocationFactory,
    MembershipFactory,
    UserFactory,
)

BASE_DIR = Path(__file__).resolve().parent.parent
IMG = "<img src=x onerror=alert(1)>"
SCRIPT = '"><script>alert(1)</script>'
RAW = [IMG, "<script>alert(1)</script>", "onerror=alert(1)>"]


def body(response):
    raw = b"".join(response.streaming_content) if response.streaming else response.content
    return raw.decode("utf-8")


# --- stored XSS --------------------------------------------------------------------------------

@pytest.fixture
def hostile(db, member_roles):
    """Records, a location and a user whose names are payloads, and the pages that show them."""
    region = LocationFactory(name=IMG, code="XR")
    district = LocationFactory(name=SCRIPT, code="XD", parent=region)
    auditor = UserFactory(username="xss_admin", role=["System administrator", "Clerk"], national=True,
                          first_name=IMG, last_name=SCRIPT)
    # Changes made through the services, by the hostile-named user, so that audit and history show them.
    person = services.individual_create(fields={
        "first_name": IMG, "last_name": SCRIPT, "dob": datetime.date(1990, 1, 1), "sex": "F", "location": district,
        "national_id": "XSS-1"}, by=UserFactory(username="xss_clerk", role="Clerk", national=True,
                                                first_name=IMG, last_name=SCRIPT))
    household = HouseholdFactory(code=IMG, location=district)
    MembershipFactory(household=household, individual=person, role=MemberRole.objects.get(pk="HEAD"),
                      recipient_type="PRIMARY")
    return {"person": person, "household": household, "district": district, "auditor": auditor}


def test_payload_names_render_escaped_on_every_page(hostile):
    person, household = hostile["person"], hostile["household"]
    client = Client()
    client.force_login(hostile["auditor"])
    pages = {
        "individual list": reverse("registry_individual:index"),
        "individual list results": reverse("registry_individual:index_results"),
        "individual record": reverse("registry_individual:inspect", args=[person.pk]),
        "individual edit form": reverse("registry_individual:edit", args=[person.pk]),
        "individual delete form": reverse("registry_individual:delete", args=[person.pk]),
        "individual history": reverse("registry_individual:history", args=[person.pk]),
        "household list": reverse("registry_household:index"),
        "household page": reverse("registry_household:inspect", args=[household.pk]),
        "household edit form": reverse("registry_household:edit", args=[household.pk]),
        "household history": reverse("registry_household:history", args=[household.pk]),
        "household page, people to add": reverse("registry_household:inspect", args=[household.pk]) + "?person_q=img",
        "locations list": reverse("sites_location:index"),
        "location edit form": reverse("sites_location:edit", args=[hostile["district"].pk]),
        "audit trail": reverse("mizani_site_history"),
        "audit trail results": reverse("mizani_site_history_results"),
        "dashboard": reverse("wagtailadmin_home"),
    }
    # Pages that show the hostile user only by username (no escaped name to find), still checked for raw payloads.
    unnamed = {"user access list": reverse("sites_useraccess:index"),
               "user access edit form": reverse("sites_useraccess:edit", args=[hostile["auditor"].access.pk])}
    problems = []
    for label, path in {**pages, **unnamed}.items():
        response = client.get(path)
        if response.status_code != 200:
            problems.append(f"{label} {path} -> {response.status_code}")
            continue
        html = body(response)
        if raw := [r for r in RAW if r in html]:
            problems.append(f"{label} {path} contains unescaped {raw}")
        if label in pages and "&lt;img src=x onerror=alert(1)&gt;" not in html:
            problems.append(f"{label} {path} does not show the escaped name at all")
    assert not problems, "\n  ".join(["Stored XSS:"] + problems)


def test_payload_names_in_the_household_page_and_record_appear_escaped_exactly(hostile):
    client = Client()
    client.force_login(hostile["auditor"])
    html = body(client.get(reverse("registry_individual:inspect", args=[hostile["person"].pk])))

    assert ('<dd data-testid="person-name">&lt;img src=x onerror=alert(1)&gt; '
            '&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;</dd>') in html


def test_audit_trail_shows_the_hostile_user_name_escaped(hostile):
    client = Client()
    client.force_login(hostile["auditor"])
    html = body(client.get(reverse("mizani_site_history")))

    assert "&lt;img src=x onerror=alert(1)&gt;" in html  # the actor's name is listed, escaped
    assert not [r for r in RAW if r in html]


# --- sessions and headers ----------------------------------------------------------------------

def test_sessions_expire_after_thirty_idle_minutes():
    assert settings.SESSION_COOKIE_AGE == 1800
    assert settings.SESSION_SAVE_EVERY_REQUEST is True
    assert settings.SESSION_COOKIE_HTTPONLY is True


@pytest.mark.django_db
def test_session_expiry_moves_forward_with_each_request(clerk_a):
    client = Client()
    client.force_login(clerk_a)

    response = client.get(reverse("wagtailadmin_home"))

    assert response.status_code == 200
    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie.value  # re-sent on an ordinary request: the idle timer restarts
    assert client.session.get_expiry_age() == 1800


def _csp_directives(header):
    return {part.split()[0]: part.split()[1:] for part in header.split(";") if part.strip()}


@pytest.mark.django_db
@pytest.mark.parametrize("url_name", ["wagtailadmin_login", "wagtailadmin_home", "registry_individual:index"])
def test_responses_carry_a_content_security_policy_without_inline_scripts(clerk_a, url_name):
    client = Client()
    if url_name != "wagtailadmin_login":
        client.force_login(clerk_a)

    response = client.get(reverse(url_name))

    assert response.status_code == 200
    policy = _csp_directives(response["Content-Security-Policy"])
    assert policy["script-src"] == ["'self'"]
    assert "'unsafe-inline'" not in policy["script-src"] and "'unsafe-eval'" not in policy["script-src"]
    assert policy["object-src"] == ["'none'"]
    assert "frame-ancestors" in policy
    assert response["X-Content-Type-Options"] == "nosniff"


# --- production settings -----------------------------------------------------------------------

PG_URL = "postgres://root@127.0.0.1:5432/test"


def _postgres_reachable():
    try:
        import psycopg

        with psycopg.connect("postgresql://root@127.0.0.1:5432/test", connect_timeout=3):
            return True
    except Exception:
        return False


def _production_env(**overrides):
    """A clean environment, as a server would have: nothing inherited from the test process (pytest
    plugins set variables such as DJANGO_ALLOW_ASYNC_UNSAFE that a deployment must not have)."""
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
           if key in os.environ}
    env.update({
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "SECRET_KEY": "".join(secrets.choice(string.ascii_letters + string.digits + "!@#%^&*(-_=+)")
                              for _ in range(60)),
        "DATABASE_URL": PG_URL,
        "ALLOWED_HOSTS": "example.org",
        # As deployed (and as .ci/run does): the job queue on PostgreSQL too. Without it the settings
        # fall back to a SQLite queue under var/, which a fresh clone does not have.
        "HUEY_URL": PG_URL,
        "CACHE_URL": "redis://127.0.0.1:6379/1",  # the shared cache (mizani.W001 without it)
    })
    env.update(overrides)
    return {key: value for key, value in env.items() if value is not None}


def _manage(*args, env):
    return subprocess.run([sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env,
                          capture_output=True, text=True, timeout=120)


def test_check_deploy_is_clean_with_production_settings():
    if not _postgres_reachable():
        pytest.skip("PostgreSQL at 127.0.0.1:5432 is not reachable")

    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=_production_env())

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_settings_refuse_to_start_without_secret_key():
    result = _manage("check", env=_production_env(SECRET_KEY=None))

    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr
    assert "ImproperlyConfigured" in result.stderr


def test_production_settings_refuse_a_short_secret_key():
    result = _manage("check", env=_production_env(SECRET_KEY="too-short"))

    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr
