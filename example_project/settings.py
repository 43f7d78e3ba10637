"""Settings of the example site, read from the environment with django-environ.

Every variable is documented in ``.env.example``. With nothing set, the site runs the
demo: SQLite, Celery on kombu's filesystem transport (no server), and Intacct URLs
pointing at the local emulator (``python -m intacct_connect.testing.emulator``).
``DATABASE_URL`` and ``CELERY_BROKER_URL`` switch to PostgreSQL and Redis.
"""

from __future__ import annotations

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

# Plain dicts and constants (this module imports no models).
from intacct_connect.celery import VISIBILITY_TIMEOUT as INTACCT_VISIBILITY_TIMEOUT
from intacct_connect.celery import beat_schedule as intacct_beat_schedule
from intacct_connect.celery import task_routes as intacct_task_routes

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env")  # optional: a missing file is fine

# Where the demo keeps its SQLite database, broker queue and emulator state.
DEMO_DIR = Path(env.str("DEMO_DIR", default=str(BASE_DIR / ".demo")))

DEBUG = env.bool("DJANGO_DEBUG", default=True)
# The fallback secret is for the local demo only; `check --deploy` rejects it.
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="django-insecure-demo-only-key")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "intacct_connect",
    "example_project.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "example_project.urls"
WSGI_APPLICATION = "example_project.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "example_project" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{DEMO_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Writers wait for SQLite's lock instead of failing (web, worker and beat share the file).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 20}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = env.path("DJANGO_STATIC_ROOT", default=DEMO_DIR / "static")
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "intacct_connect:connections"
LOGOUT_REDIRECT_URL = "login"

# --- Security (production values whenever DEBUG is off) --------------------------------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if not DEBUG else None
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SESSION_COOKIE_SAMESITE = "Lax"  # 'Strict' would break the return from Intacct

# --- Sage Intacct ---------------------------------------------------------------------
# Where `make demo` serves the site ([host:]port): the default redirect URI follows its port.
DEMO_SITE_ADDRESS = env.str("DEMO_SITE_ADDRESS", default="127.0.0.1:8000")
_site_port = DEMO_SITE_ADDRESS.rpartition(":")[2]
if not _site_port.isdigit() or not 0 < int(_site_port) < 65536:
    raise ImproperlyConfigured(
        f"DEMO_SITE_ADDRESS={DEMO_SITE_ADDRESS!r} is not [host:]port, e.g. 127.0.0.1:8000"
    )
EMULATOR_BASE_URL = f"http://127.0.0.1:{env.int('INTACCT_EMULATOR_PORT', default=8765)}/ia/api/v1"
INTACCT_API_BASE_URL = env.str("INTACCT_API_BASE_URL", default=EMULATOR_BASE_URL).rstrip("/")
# Demo-only key, used only while DEBUG is on and INTACCT_TOKEN_KEYS is unset.
DEMO_TOKEN_KEY = "ZGVtby1vbmx5LWtleS1uZXZlci11c2UtaW4tcHJvZCE="  # noqa: S105 (demo only)

INTACCT_CONNECT = {
    # The defaults are the emulator's seeded demo application.
    "CLIENT_ID": env.str("INTACCT_CLIENT_ID", default="demo-client.app.sage.com"),
    "CLIENT_SECRET": env.str("INTACCT_CLIENT_SECRET", default="demo-secret"),
    "SENDER_ID": env.str("INTACCT_SENDER_ID", default="DEMO-SENDER"),
    "REDIRECT_URI": env.str(
        "INTACCT_REDIRECT_URI", default=f"http://localhost:{int(_site_port)}/intacct/callback/"
    ),
    "CLIENT_SCOPE": env.str("INTACCT_CLIENT_SCOPE", default="production"),
    "API_BASE_URL": INTACCT_API_BASE_URL,
    "AUTHORIZE_URL": env.str(
        "INTACCT_AUTHORIZE_URL", default=f"{INTACCT_API_BASE_URL}/oauth2/authorize"
    ),
    "TOKEN_URL": env.str("INTACCT_TOKEN_URL", default=f"{INTACCT_API_BASE_URL}/oauth2/token"),
    "REVOKE_URL": env.str("INTACCT_REVOKE_URL", default=f"{INTACCT_API_BASE_URL}/oauth2/revoke"),
    "TOKEN_KEYS": env.list("INTACCT_TOKEN_KEYS", default=[DEMO_TOKEN_KEY] if DEBUG else []),
}

# --- Celery ---------------------------------------------------------------------------
# Worker settings and why: docs/tasks.rst.
# "localhost" only names the filesystem transport's (unused) host: kombu warns without one.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://localhost//")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _queue_dir = DEMO_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        # kombu's exchange tables; without this option they land in ./control/.
        "control_folder": str(_queue_dir / "control"),
        "store_processed": False,
    }
    (_queue_dir / "control").mkdir(parents=True, exist_ok=True)
    # The demo runs one worker process with one child: SQLite's missing row locks are moot.
    SILENCED_SYSTEM_CHECKS = ["intacct_connect.W001"]
else:
    # Redis redelivers unacknowledged tasks after this many seconds; keep it above twice
    # the longest hard time limit of any task (see docs/tasks.rst).
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": INTACCT_VISIBILITY_TIMEOUT}
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_ACKS_ON_FAILURE_OR_TIMEOUT = True
# Workers keep database connections between tasks (see example_project/celery.py).
CELERY_DB_REUSE_MAX = 1000
DATABASES["default"].setdefault("CONN_MAX_AGE", 600)
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
# Two dispatchers every minute (schedules are database rows, not beat entries) + daily prune.
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {**intacct_beat_schedule}
# Refreshes (short) never wait behind job runs (long): two queues.
CELERY_TASK_ROUTES = {**intacct_task_routes}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("DJANGO_LOG_LEVEL", default="INFO")},
}
