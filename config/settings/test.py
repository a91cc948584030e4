"""Tests: SQLite in memory unless DATABASE_URL is set; Huey runs tasks immediately, in-process."""

import tempfile
from pathlib import Path

from .base import *  # noqa: F403
from .base import huey_settings

SECRET_KEY = "test-only-key"
DEBUG = False
HUEY = huey_settings("", immediate=True)
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
MIZANI_DEMO = True
# Uploaded import files go to a throwaway folder, never the project's var/.
MEDIA_ROOT = Path(tempfile.mkdtemp(prefix="mizani-test-media-"))
