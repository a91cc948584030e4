"""Settings read from the environment, and our deployment checks."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test import override_settings

from config.settings.base import cache_settings
from sites.checks import shared_cache, sqlite_version


def test_a_redis_cache_url_shares_the_cache_and_none_keeps_it_per_process():
    assert cache_settings("redis://127.0.0.1:6379/1")["default"] == {
        "BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:6379/1",
        "KEY_PREFIX": "mizani"}
    assert cache_settings("")["default"]["BACKEND"].endswith("LocMemCache")
    with pytest.raises(ImproperlyConfigured, match="CACHE_URL must start with redis://"):
        cache_settings("memcached://127.0.0.1")


def test_check_deploy_warns_of_a_cache_per_process():
    with override_settings(CACHES=cache_settings("")):
        assert [warning.id for warning in shared_cache(None)] == ["mizani.W001"]
    with override_settings(CACHES=cache_settings("redis://127.0.0.1:6379/1")):
        assert shared_cache(None) == []


def test_an_sqlite_without_full_join_is_refused(monkeypatch):
    import sqlite3

    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 38, 5))
    monkeypatch.setattr(sqlite3, "sqlite_version", "3.38.5")
    errors = sqlite_version(None, databases=["default"])
    if connection.vendor == "sqlite":
        assert [error.id for error in errors] == ["mizani.E001"]
    else:
        assert errors == []
