"""Settings for the test suite: deterministic, no servers needed.

``DATABASE_URL`` switches the database (CI runs the suite again on PostgreSQL);
``REDIS_URL`` enables the tests that need Redis.
"""

from __future__ import annotations

import os

import environ

SECRET_KEY = "tests-only-secret-key-not-for-production-use-0123456789"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
USE_TZ = True
TIME_ZONE = "UTC"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "intacct_connect",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "tests.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
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
STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

DATABASE_URL = os.environ.get("DATABASE_URL", "sqlite:///:memory:")
DATABASES = {"default": environ.Env.db_url_config(DATABASE_URL)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["TEST"] = {
        "NAME": os.environ.get("INTACCT_TEST_DB_NAME", "test_intacct_connect")
    }
REDIS_URL = os.environ.get("REDIS_URL", "")

# Fixed keys: the first encrypts, both decrypt.
TEST_TOKEN_KEY = "dGVzdC1rZXktMC1pbnRhY2N0LWNvbm5lY3QtdGVzdCE="
TEST_OLD_TOKEN_KEY = "b2xkLWtleS0xLWludGFjY3QtY29ubmVjdC10ZXN0cyE="

INTACCT_CONNECT = {
    "CLIENT_ID": "demo-client.app.sage.com",
    "CLIENT_SECRET": "demo-secret",
    "SENDER_ID": "DEMO-SENDER",
    "REDIRECT_URI": "https://app.example.com/intacct/callback/",
    "API_BASE_URL": "http://127.0.0.1:1/ia/api/v1",  # tests point it at a live emulator
    "TOKEN_KEYS": [TEST_TOKEN_KEY, TEST_OLD_TOKEN_KEY],
}

CELERY_TASK_ALWAYS_EAGER = True
CELERY_BROKER_URL = "memory://"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": "DEBUG"},  # secrets must stay out of logs even at DEBUG
}
