"""Development: `make run`. SQLite file and SqliteHuey under var/, console e-mail, demo logins allowed."""

import os

from .base import *  # noqa: F403
from .base import VAR_DIR

DEBUG = os.environ.get("DEBUG", "1") != "0"
SECRET_KEY = os.environ.get("SECRET_KEY") or "dev-only-insecure-key-never-use-in-production"
VAR_DIR.mkdir(parents=True, exist_ok=True)
MIZANI_DEMO = True
