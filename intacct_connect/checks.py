"""Django system checks for intacct_connect's configuration.

Every message names the setting to fix. IDs are stable; silence one with
``SILENCED_SYSTEM_CHECKS`` only when you know why.

==========================  ==============================================================
ID                          Problem
==========================  ==============================================================
intacct_connect.E001        INTACCT_CONNECT is malformed (not a dict, unknown key, wrong type)
intacct_connect.E002        CLIENT_ID missing
intacct_connect.E003        CLIENT_SECRET missing
intacct_connect.E004        TOKEN_KEYS missing or empty
intacct_connect.E005        a TOKEN_KEYS entry is malformed
intacct_connect.E006        a TOKEN_KEYS entry equals SECRET_KEY (or a SECRET_KEY_FALLBACKS entry)
intacct_connect.E007        REDIRECT_URI missing or not an absolute URL
intacct_connect.E008        REDIRECT_URI is not https while DEBUG is off
intacct_connect.E009        SESSION_COOKIE_SAMESITE = 'Strict' breaks the OAuth return
intacct_connect.E010        an Intacct URL setting is not an absolute http(s) URL
intacct_connect.E011        CLIENT_SCOPE is not 'production' or 'non-production'
intacct_connect.E012        the same key appears twice in TOKEN_KEYS
intacct_connect.E013        ADAPTER cannot be imported
intacct_connect.E014        CONCURRENCY_BACKEND unknown, or CONCURRENCY_CACHE not in CACHES
intacct_connect.E015        a number setting is out of its range (a count or time below its minimum)
intacct_connect.E016        CIRCUIT_CACHE not in CACHES (while the circuit breaker is on)
intacct_connect.W001        SQLite used with a configured real (non-eager) Celery broker
intacct_connect.W002        CONCURRENCY_BACKEND = 'cache' on a cache not shared by processes
intacct_connect.W003        tasks would be sent through Celery's fallback app or its default broker
==========================  ==============================================================
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured

from intacct_connect import crypto
from intacct_connect.conf import DEFAULTS, SETTINGS_NAME, app_settings

URL_SETTINGS = ("API_BASE_URL", "AUTHORIZE_URL", "TOKEN_URL", "REVOKE_URL")


def _name(key: str) -> str:
    return f"{SETTINGS_NAME}[{key!r}]"


def _absolute_http(url: Any) -> bool:
    if not isinstance(url, str):
        return False
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


@register(Tags.security)
def check_settings(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    # E001: the dict itself, and each key's type.
    try:
        app_settings.user_settings  # noqa: B018  (validates the dict and its keys)
        for key in DEFAULTS:
            try:
                getattr(app_settings, key)
            except ImproperlyConfigured as err:
                if key == "ADAPTER" and "cannot be imported" in str(err):
                    messages.append(
                        Error(str(err), hint=f"Fix {_name('ADAPTER')}.", id="intacct_connect.E013")
                    )
                else:
                    messages.append(
                        Error(str(err), hint=f"Fix {_name(key)}.", id="intacct_connect.E001")
                    )
    except ImproperlyConfigured as err:
        return [Error(str(err), hint=f"Fix settings.{SETTINGS_NAME}.", id="intacct_connect.E001")]
    if messages:
        return messages

    messages.extend(_check_client())
    messages.extend(_check_keys())
    messages.extend(_check_redirect_uri())
    messages.extend(_check_urls())
    messages.extend(_check_session_cookie())
    messages.extend(_check_concurrency_backend())
    messages.extend(_check_ranges())
    messages.extend(_check_circuit_cache())
    return messages


def _check_circuit_cache() -> Iterable[CheckMessage]:
    alias = app_settings.CIRCUIT_CACHE
    if app_settings.CIRCUIT_FAILURE_THRESHOLD > 0 and alias not in getattr(settings, "CACHES", {}):
        yield Error(
            f"{_name('CIRCUIT_CACHE')} is {alias!r}, which is not a key of CACHES.",
            hint="Name a cache of CACHES (shared by every process: Redis or Memcached), or "
            "set CIRCUIT_FAILURE_THRESHOLD = 0 to turn the circuit breaker off.",
            id="intacct_connect.E016",
        )


#: Number settings and their smallest valid value.
MINIMUMS: dict[str, float] = {
    "COMPANY_CONCURRENCY": 0,
    "CONCURRENCY_SLOT_TTL": 1,
    "CONCURRENCY_SLOT_LINGER": 0,
    "API_CALL_LOG_BATCH_SIZE": 1,
    "API_CALL_LOG_MAX_DELAY": 0,
    "CIRCUIT_FAILURE_THRESHOLD": 0,
    "CIRCUIT_OPEN_SECONDS": 0,
    "CIRCUIT_OPEN_MAX": 0,
}


def _check_ranges() -> Iterable[CheckMessage]:
    for key, minimum in MINIMUMS.items():
        try:
            value = getattr(app_settings, key)
        except ImproperlyConfigured:
            continue  # a wrong type: reported as E001
        if value < minimum:
            yield Error(
                f"{_name(key)} is {value!r}; it must be at least {minimum:g}.",
                hint=DEFAULTS[key].doc,
                id="intacct_connect.E015",
            )


def _check_client() -> Iterable[CheckMessage]:
    if not app_settings.CLIENT_ID.strip():
        yield Error(
            f"{_name('CLIENT_ID')} is not set.",
            hint="Copy the client ID of your application from Sage's developer workspace "
            "(Apps > your application > API keys).",
            id="intacct_connect.E002",
        )
    if not app_settings.CLIENT_SECRET.strip():
        yield Error(
            f"{_name('CLIENT_SECRET')} is not set.",
            hint="Copy the client secret issued with your client ID; keep it out of source "
            "control (for example in an environment variable).",
            id="intacct_connect.E003",
        )
    if app_settings.CLIENT_SCOPE not in ("production", "non-production"):
        yield Error(
            f"{_name('CLIENT_SCOPE')} is {app_settings.CLIENT_SCOPE!r}.",
            hint="Use 'production' or 'non-production', as chosen when the API keys were "
            "created in Sage's developer workspace.",
            id="intacct_connect.E011",
        )


def _check_keys() -> Iterable[CheckMessage]:
    keys = app_settings.TOKEN_KEYS
    if not keys:
        yield Error(
            f"{_name('TOKEN_KEYS')} is empty: tokens cannot be encrypted at rest.",
            hint="Generate a key with `python -m intacct_connect.crypto` and list it first in "
            f"{_name('TOKEN_KEYS')}.",
            id="intacct_connect.E004",
        )
        return
    secrets = [
        getattr(settings, "SECRET_KEY", None),
        *getattr(settings, "SECRET_KEY_FALLBACKS", []),
    ]
    seen: set[bytes] = set()
    for index, key in enumerate(keys):
        if key in secrets:
            yield Error(
                f"{_name('TOKEN_KEYS')} entry {index} equals SECRET_KEY or a SECRET_KEY_FALLBACKS "
                "entry.",
                hint="Token keys must be independent of SECRET_KEY so rotating one does not "
                "expose or destroy the other. Generate a separate key.",
                id="intacct_connect.E006",
            )
            continue
        try:
            raw = crypto.parse_key(key)
        except crypto.KeyFormatError as err:
            yield Error(
                f"{_name('TOKEN_KEYS')} entry {index} is malformed: {err}.",
                hint="Each key must be 32 random bytes in URL-safe base64; generate one with "
                "`python -m intacct_connect.crypto`.",
                id="intacct_connect.E005",
            )
            continue
        if raw in seen:
            yield Error(
                f"{_name('TOKEN_KEYS')} entry {index} repeats an earlier key.",
                hint="List each key once, newest first.",
                id="intacct_connect.E012",
            )
        seen.add(raw)


def _check_redirect_uri() -> Iterable[CheckMessage]:
    uri = app_settings.REDIRECT_URI
    if not _absolute_http(uri):
        yield Error(
            f"{_name('REDIRECT_URI')} is {'not set' if not uri else repr(uri)}: it must be the "
            "absolute URL of the callback view, exactly as registered with Sage.",
            hint="For example 'https://app.example.com/intacct/callback/'.",
            id="intacct_connect.E007",
        )
    elif not settings.DEBUG and urlsplit(uri).scheme != "https":
        yield Error(
            f"{_name('REDIRECT_URI')} is not https while DEBUG is off.",
            hint="Sage accepts only https redirect URIs; serve the callback over https.",
            id="intacct_connect.E008",
        )


def _check_urls() -> Iterable[CheckMessage]:
    for key in URL_SETTINGS:
        if not _absolute_http(getattr(app_settings, key)):
            yield Error(
                f"{_name(key)} = {getattr(app_settings, key)!r} is not an absolute http(s) URL.",
                hint="Point it at Intacct, a sandbox, a proxy or the emulator.",
                id="intacct_connect.E010",
            )


def _check_session_cookie() -> Iterable[CheckMessage]:
    if str(getattr(settings, "SESSION_COOKIE_SAMESITE", "Lax")).lower() == "strict":
        yield Error(
            "SESSION_COOKIE_SAMESITE = 'Strict' breaks the OAuth return: the browser does not "
            "send the session cookie when Intacct redirects back, so the state check fails.",
            hint="Use SESSION_COOKIE_SAMESITE = 'Lax' (Django's default).",
            id="intacct_connect.E009",
        )


#: Cache backends whose ``add`` cannot cap requests across processes, and why.
UNSHARED_CACHES = {
    "django.core.cache.backends.locmem.LocMemCache": (
        "is local to each process: every web and Celery process would get its own slots"
    ),
    "django.core.cache.backends.dummy.DummyCache": (
        "stores nothing: every claim succeeds and the cap is not enforced at all"
    ),
    "django.core.cache.backends.filebased.FileBasedCache": (
        "does not add keys atomically: concurrent processes can claim the same slot"
    ),
    "django.core.cache.backends.db.DatabaseCache": (
        "does not add keys atomically once a key has expired: concurrent processes can "
        "claim the same slot (use CONCURRENCY_BACKEND = 'database' instead)"
    ),
}


def _check_concurrency_backend() -> Iterable[CheckMessage]:
    backend = app_settings.CONCURRENCY_BACKEND
    if backend not in ("database", "cache"):
        yield Error(
            f"{_name('CONCURRENCY_BACKEND')} is {backend!r}.",
            hint="Use 'database' (slots in the site's database, the default) or 'cache' "
            "(slots in the Django cache named by CONCURRENCY_CACHE).",
            id="intacct_connect.E014",
        )
        return
    if backend != "cache":
        return
    alias = app_settings.CONCURRENCY_CACHE
    caches_setting = getattr(settings, "CACHES", {})
    if alias not in caches_setting:
        yield Error(
            f"{_name('CONCURRENCY_CACHE')} is {alias!r}, which is not a key of CACHES.",
            hint="Name a cache shared by every process (Redis or Memcached), or use "
            "CONCURRENCY_BACKEND = 'database'.",
            id="intacct_connect.E014",
        )
        return
    yield from unshared_cache_messages(alias, str(caches_setting[alias].get("BACKEND", "")))


def unshared_cache_messages(alias: str, backend: str) -> list[CheckMessage]:
    reason = UNSHARED_CACHES.get(backend)
    if reason is None:
        return []
    return [
        Warning(
            f"{_name('CONCURRENCY_BACKEND')} is 'cache' but the cache {alias!r} "
            f"({backend.rsplit('.', 1)[-1]}) {reason}, so the per-company concurrency cap "
            "does not hold across the site's processes.",
            hint="Point CONCURRENCY_CACHE at a cache shared by every process "
            "(django.core.cache.backends.redis.RedisCache, or Memcached), or use "
            "CONCURRENCY_BACKEND = 'database'. A single-process site may silence this "
            "warning.",
            id="intacct_connect.W002",
        )
    ]


@register(Tags.compatibility)
def check_sqlite_with_real_broker(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    return sqlite_broker_messages(
        engine=settings.DATABASES.get("default", {}).get("ENGINE", ""),
        eager=bool(getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False)),
        broker=str(getattr(settings, "CELERY_BROKER_URL", "") or ""),
    )


def sqlite_broker_messages(*, engine: str, eager: bool, broker: str) -> list[CheckMessage]:
    # No CELERY_BROKER_URL: the site has not configured Celery workers (yet).
    if "sqlite" in engine and broker and not eager and not broker.startswith("memory://"):
        return [
            Warning(
                "SQLite is the default database while Celery runs tasks in real workers "
                f"(CELERY_BROKER_URL={broker.split('@')[-1]!r}). SQLite has no row "
                "locks: concurrent workers cannot single-flight token refreshes or claim "
                "work with SKIP LOCKED.",
                hint="Use PostgreSQL (DATABASES) with real workers, or CELERY_TASK_ALWAYS_EAGER "
                "= True for development.",
                id="intacct_connect.W001",
            )
        ]
    return []


#: Where the warning below sends the reader (docs/installation.rst, step 7).
CELERY_DOC = "docs/installation.rst, section 'Wire up Celery'"


@register(Tags.compatibility)
def check_celery_app(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    from celery import _state

    # Read Celery's state without creating its fallback app (``celery.current_app`` would
    # create one, and the Django fix-up then no longer makes the site's app the default).
    # Web request threads see ``default_app``: the thread-local current app is per thread.
    return celery_app_messages(
        app=getattr(_state, "default_app", None),  # not in celery-types' stub
        eager=bool(getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False)),
    )


def _is_fallback_app(app: Any) -> bool:
    """Celery's own fallback app (``Celery("default", set_as_current=False)``), made on
    first use when no app of the site set itself as the default."""
    return getattr(app, "main", None) in (None, "default") and not getattr(
        app, "set_as_current", True
    )


def celery_app_messages(*, app: Any, eager: bool) -> list[CheckMessage]:
    """W003: intacct_connect's ``@shared_task``\\ s (the admin's *run now*, the dispatchers'
    refreshes) would be published through Celery's fallback app, or through the site's app
    with no broker configured (Celery then uses ``amqp://guest@localhost//``)."""
    if eager:
        return []
    hint = (
        "Create the site's Celery app in <project>/celery.py, configured from Django settings "
        "(app.config_from_object('django.conf:settings', namespace='CELERY')), import it in "
        "the project package (<project>/__init__.py: from .celery import app as celery_app) "
        f"and set CELERY_BROKER_URL. See {CELERY_DOC}. "
        "(CELERY_TASK_ALWAYS_EAGER = True, which runs tasks in the calling process, "
        "silences this check.)"
    )
    if app is None or _is_fallback_app(app):
        return [
            Warning(
                "No Celery app of the site is loaded in this process: intacct_connect's tasks "
                "(the admin's 'run now', token refreshes) would be sent through Celery's "
                "fallback app, to its default broker amqp://guest@localhost//, and never "
                "reach your workers.",
                hint=hint,
                id="intacct_connect.W003",
            )
        ]
    broker = app.conf.broker_write_url
    if not broker:
        return [
            Warning(
                f"The Celery app {app.main!r} has no broker URL: intacct_connect's tasks would "
                "be sent to Celery's default broker amqp://guest@localhost//.",
                hint=hint,
                id="intacct_connect.W003",
            )
        ]
    return []
