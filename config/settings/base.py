"""Settings shared by every environment; everything that differs comes from the environment."""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(os.environ.get("MIZANI_VAR_DIR", BASE_DIR / "var"))


def env_bool(name, default=False):
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name, default=""):
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "sites",
    "schemes.registry",
    "schemes.rules",
    "schemes.plans",
    "schemes.bulk",
    "schemes.payments",
    "workflows",
    "dashboards",
    "wagtail.contrib.settings",
    "sites.users_app.MizaniUsersConfig",
    "wagtail.snippets",
    "wagtail.documents",
    "wagtail.images",
    "wagtail.search",
    "wagtail.admin",
    "wagtail.sites",
    "wagtail",
    "modelcluster",
    "taggit",
    "django_filters",
    "django_tables2",
    "import_export",
    "rest_framework",
    "drf_spectacular",
    "huey.contrib.djhuey",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "sites.middleware.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "wagtail.contrib.settings.context_processors.settings",
            ],
        },
    }
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'mizani.sqlite3'}",
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server and the Huey worker share the file; the timeout absorbs short write locks.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
     "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "static_collected"))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Sessions end after 30 idle minutes: every request pushes the expiry forward.
SESSION_COOKIE_AGE = int(os.environ.get("SESSION_IDLE_SECONDS", "1800"))
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = False  # Wagtail's admin JavaScript reads the token
X_FRAME_OPTIONS = "SAMEORIGIN"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# SQLite (development, tests) creates no unique constraint with NULLs not distinct: payroll totals
# rely on it only on PostgreSQL (elsewhere they are always written whole).
SILENCED_SYSTEM_CHECKS = ["models.W047"]

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'self'",
])

LOGIN_URL = "wagtailadmin_login"
LOGIN_REDIRECT_URL = "wagtailadmin_home"

WAGTAIL_SITE_NAME = "Mizani"
WAGTAILADMIN_BASE_URL = os.environ.get("WAGTAILADMIN_BASE_URL", "http://localhost:8000")
WAGTAILSEARCH_BACKENDS = {"default": {"BACKEND": "wagtail.search.backends.database"}}
WAGTAIL_ENABLE_UPDATE_CHECK = False
WAGTAIL_USAGE_COUNT_ENABLED = False
WAGTAILADMIN_COMMENTS_ENABLED = False
WAGTAIL_ENABLE_WHATS_NEW_BANNER = False
# No avatars from gravatar.com: it would send a hash of every user's e-mail address out of the network.
WAGTAIL_GRAVATAR_PROVIDER_URL = None

EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "mizani@localhost")


def huey_settings(url, *, immediate=False):
    """HUEY_URL picks the transport: redis://..., postgres://... or sqlite (default, a file in var/)."""
    if url.startswith(("redis://", "rediss://", "unix://")):
        return {"huey_class": "huey.RedisHuey", "name": "mizani", "immediate": immediate,
                "connection": {"url": url}, "consumer": {"workers": 2, "worker_type": "thread"}}
    if url.startswith(("postgres://", "postgresql://")):
        return {"huey_class": "huey.PostgresHuey", "name": "mizani", "immediate": immediate,
                "connection": {"dsn": url.replace("postgres://", "postgresql://", 1)},
                "consumer": {"workers": 2, "worker_type": "thread"}}
    if url and not url.startswith("sqlite://"):
        raise ImproperlyConfigured(f"HUEY_URL must start with redis://, postgres:// or sqlite://, not {url!r}")
    filename = url.removeprefix("sqlite://") or str(VAR_DIR / "huey.sqlite3")
    return {"huey_class": "huey.SqliteHuey", "name": "mizani", "immediate": immediate,
            "connection": {"filename": filename}, "consumer": {"workers": 2, "worker_type": "thread"}}


HUEY = huey_settings(os.environ.get("HUEY_URL", ""))


def cache_settings(url):
    """CACHE_URL=redis://... shares the cache (API throttles, dashboard figures) between every web
    process and the worker; unset, each process keeps its own in memory."""
    if not url:
        return {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured(f"CACHE_URL must start with redis://, rediss:// or unix://, not {url!r}")
    return {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url,
                        "KEY_PREFIX": "mizani"}}


CACHES = cache_settings(os.environ.get("CACHE_URL", ""))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        # Each of these already has a handler of its own (Django's defaults, Huey's consumer).
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "huey": {"level": "INFO", "propagate": False},
        "django.db.backends": {"level": "WARNING"},
        # Wagtail runs its reference-index updates as django-tasks and logs two lines per save.
        "django_tasks": {"level": "WARNING"},
    },
}

# Mizani settings
MIZANI_LIST_PAGE_SIZE = 25
# Listings count their rows exactly up to this many, and say "more than" beyond (sites.paginator).
MIZANI_LISTING_EXACT_COUNT = int(os.environ.get("MIZANI_LISTING_EXACT_COUNT", "100000"))
# A RUNNING job whose heartbeat is older than this is taken to be dead and is queued again.
MIZANI_JOB_HEARTBEAT_SECONDS = int(os.environ.get("MIZANI_JOB_HEARTBEAT_SECONDS", "120"))
# After this many attempts that each lost their worker, a job is failed instead of queued again.
MIZANI_JOB_MAX_ATTEMPTS = int(os.environ.get("MIZANI_JOB_MAX_ATTEMPTS", "5"))

# Imports: the largest file accepted, the most data rows, and the largest XLSX (read in memory-bound
# streaming mode, but a spreadsheet is slower to read than CSV).
MIZANI_IMPORT_MAX_BYTES = int(os.environ.get("MIZANI_IMPORT_MAX_BYTES", str(512 * 1024 * 1024)))
MIZANI_IMPORT_MAX_ROWS = int(os.environ.get("MIZANI_IMPORT_MAX_ROWS", "2000000"))
MIZANI_IMPORT_MAX_XLSX_BYTES = int(os.environ.get("MIZANI_IMPORT_MAX_XLSX_BYTES", str(20 * 1024 * 1024)))
# Database connections an import's chunks use at once on PostgreSQL (about the cores it may take).
MIZANI_IMPORT_CONNECTIONS = int(os.environ.get("MIZANI_IMPORT_CONNECTIONS", "2"))

# Exports: an XLSX workbook is built in memory, so past this many rows the export is refused and
# CSV (streamed, no limit) is offered instead.
MIZANI_EXPORT_XLSX_MAX_ROWS = int(os.environ.get("MIZANI_EXPORT_XLSX_MAX_ROWS", "50000"))

# Dashboards: each figure's numbers are kept in the cache (Django's default, per process, unless
# CACHES says otherwise) for this many seconds, per metric, filters and viewer's scope.
# Provider API answers kept for replay under their Idempotency-Key; older keys are pruned daily
# (a provider's retry comes within minutes; a key sent again after this is a new request).
MIZANI_API_IDEMPOTENCY_DAYS = int(os.environ.get("MIZANI_API_IDEMPOTENCY_DAYS", "30"))
MIZANI_DASHBOARD_CACHE_SECONDS = int(os.environ.get("MIZANI_DASHBOARD_CACHE_SECONDS", "300"))
# Database connections a dashboard's figures are computed on at once (PostgreSQL; 1: one by one).
MIZANI_DASHBOARD_CONNECTIONS = int(os.environ.get("MIZANI_DASHBOARD_CONNECTIONS", "2"))

# The provider API (/api/v1/): payment providers' systems authenticate with their own tokens only
# (no session: a logged-in browser cannot call it, so no CSRF either), speak JSON, and are throttled
# per token. Wagtail's admin API sets its own session authentication and is not affected.
MIZANI_API_THROTTLE_RATE = os.environ.get("MIZANI_API_THROTTLE_RATE", "120/min")
# The most rows one reconciliation batch may carry (a request body of about 200 bytes per row).
MIZANI_API_BATCH_MAX_ROWS = int(os.environ.get("MIZANI_API_BATCH_MAX_ROWS", "5000"))
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["schemes.payments.api_auth.ProviderTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_THROTTLE_CLASSES": ["schemes.payments.api_auth.ProviderTokenThrottle"],
    "DEFAULT_THROTTLE_RATES": {"provider_token": MIZANI_API_THROTTLE_RATE},
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Mizani provider API",
    "DESCRIPTION": "For payment providers: approved payrolls, their lines, and reconciliation batches.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["schemes.payments.api_auth.HasProviderToken"],
    "PREPROCESSING_HOOKS": ["schemes.payments.api.only_provider_api"],
    "ENUM_NAME_OVERRIDES": {"PayrollStatusEnum": "schemes.payments.models.PayrollStatus",
                            "LineStatusEnum": "schemes.payments.models.LineStatus"},
}
