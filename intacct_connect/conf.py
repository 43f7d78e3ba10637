"""The app's settings object: one ``INTACCT_CONNECT`` dict in Django settings.

Follows django-oauth-toolkit's pattern: a table of documented defaults, unknown keys
rejected with a clear error, dotted paths imported on access, values cached and reloaded
when Django's ``setting_changed`` signal fires (``override_settings`` in tests).

Read settings through :data:`app_settings`::

    from intacct_connect.conf import app_settings
    app_settings.TOKEN_URL

The library never reads the environment; a site fills the dict however it likes
(the example project uses django-environ).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from intacct_connect import __version__

if TYPE_CHECKING:
    from intacct_connect.adapter import DefaultIntacctAdapter

SETTINGS_NAME = "INTACCT_CONNECT"
DEFAULT_API_BASE_URL = "https://api.intacct.com/ia/api/v1"


@dataclass(frozen=True)
class Setting:
    """One documented key of ``INTACCT_CONNECT``."""

    default: Any
    types: tuple[type, ...]
    doc: str
    import_string: bool = False


#: Every key a site may set. ``docs/settings.rst`` documents each one (a test checks).
DEFAULTS: dict[str, Setting] = {
    # Application registration (Sage developer workspace)
    "CLIENT_ID": Setting(
        "", (str,), "Client ID of the application registered in Sage's app registry."
    ),
    "CLIENT_SECRET": Setting("", (str,), "Client secret issued with the client ID."),
    "SENDER_ID": Setting(
        "", (str,), "Your Web Services sender ID; shown to customers who must authorise it."
    ),
    "REDIRECT_URI": Setting(
        "",
        (str,),
        "The exact redirect URI registered for the application; the callback view's URL. "
        "Never derived from the request's Host header.",
    ),
    "CLIENT_SCOPE": Setting(
        "production",
        (str,),
        "The application's client scope in Sage's registry: 'production' or 'non-production'. "
        "New connections record it as their environment.",
    ),
    # Intacct URLs
    "API_BASE_URL": Setting(DEFAULT_API_BASE_URL, (str,), "Base URL of the Intacct REST API."),
    "AUTHORIZE_URL": Setting(
        None,
        (str, type(None)),
        "OAuth authorize URL; defaults to API_BASE_URL + '/oauth2/authorize'.",
    ),
    "TOKEN_URL": Setting(
        None, (str, type(None)), "OAuth token URL; defaults to API_BASE_URL + '/oauth2/token'."
    ),
    "REVOKE_URL": Setting(
        None,
        (str, type(None)),
        "OAuth revocation URL; defaults to API_BASE_URL + '/oauth2/revoke'.",
    ),
    "SCOPE": Setting(
        "offline_access",
        (str,),
        "Scope requested on authorize; 'offline_access' is what yields a refresh token.",
    ),
    # Token storage
    "TOKEN_KEYS": Setting(
        [],
        (list, tuple),
        "Encryption keys for tokens at rest, newest first. Each is 32 random bytes, "
        "URL-safe base64 (generate with `python -m intacct_connect.crypto`). "
        "Never derived from SECRET_KEY.",
    ),
    # Extension points
    "ADAPTER": Setting(
        "intacct_connect.adapter.DefaultIntacctAdapter",
        (str,),
        "Dotted path of the adapter class that resolves tenants and permissions.",
        import_string=True,
    ),
    # OAuth flow
    "STATE_TTL": Setting(600, (int,), "Seconds an authorization request (state) stays valid."),
    "CONNECT_RATE_LIMIT": Setting(
        10,
        (int,),
        "Authorization requests one user (signed out: one browser session) may start within "
        "STATE_TTL seconds; more Connect or Reconnect clicks get a 429 page saying when to "
        "try again. 0 turns the limit off.",
    ),
    # HTTP
    "HTTP_TIMEOUT": Setting(
        (3.05, 30.0), (tuple, list), "(connect, read) timeout in seconds for API calls."
    ),
    "TOKEN_HTTP_TIMEOUT": Setting(
        (3.05, 10.0), (tuple, list), "(connect, read) timeout in seconds for token-endpoint calls."
    ),
    "USER_AGENT": Setting(
        None, (str, type(None)), "User-Agent header; defaults to 'intacct-connect/<version>'."
    ),
    "TOKEN_REFRESH_SKEW": Setting(
        300,
        (int,),
        "Seconds before expiry at which an access token counts as expired and is refreshed.",
    ),
    "MAX_RETRIES": Setting(
        3,
        (int,),
        "Retries of an idempotent API call on 429, 500, 502, 503, 504 or a connection error.",
    ),
    "RETRY_BACKOFF": Setting(0.5, (int, float), "Base of the exponential backoff, in seconds."),
    "RETRY_BACKOFF_MAX": Setting(30.0, (int, float), "Longest single backoff sleep, in seconds."),
    "RETRY_AFTER_MAX": Setting(
        120.0, (int, float), "Longest Retry-After the client honours by sleeping, in seconds."
    ),
    "COMPANY_CONCURRENCY": Setting(
        2,
        (int,),
        "Most concurrent API requests to one Intacct company, across all processes and threads.",
    ),
    "CONCURRENCY_SLOT_TTL": Setting(
        120,
        (int,),
        "Seconds after which a concurrency slot held by a crashed process is reclaimed.",
    ),
    "CONCURRENCY_SLOT_LINGER": Setting(
        0.2,
        (int, float),
        "Seconds a process keeps a company's concurrency slot after a request, so that its "
        "next request to that company reuses it without a round trip; 0 releases the slot "
        "at the end of every request.",
    ),
    "CONCURRENCY_BACKEND": Setting(
        "database",
        (str,),
        "Where the per-company concurrency slots live: 'database' (rows of the site's "
        "database) or 'cache' (keys of the Django cache CONCURRENCY_CACHE, which must be "
        "shared by every process, e.g. Redis or Memcached).",
    ),
    "CONCURRENCY_CACHE": Setting(
        "default",
        (str,),
        "Alias in CACHES of the cache holding the concurrency slots when "
        "CONCURRENCY_BACKEND is 'cache'.",
    ),
    "CIRCUIT_FAILURE_THRESHOLD": Setting(
        5,
        (int,),
        "Consecutive failed requests to one company (timeouts, connection errors, 502, 503, "
        "504) that open its circuit breaker; calls then fail fast with CompanyUnavailable. "
        "0 turns the breaker off.",
    ),
    "CIRCUIT_OPEN_SECONDS": Setting(
        30,
        (int, float),
        "Seconds an opened breaker stays open before one probe request is let through; "
        "doubled after every failed probe.",
    ),
    "CIRCUIT_OPEN_MAX": Setting(
        600, (int, float), "Longest time, in seconds, a breaker stays open between probes."
    ),
    "CIRCUIT_CACHE": Setting(
        "default",
        (str,),
        "Alias in CACHES of the cache holding the circuit breakers; shared by every process "
        "when it is Redis or Memcached, per process when it is LocMemCache.",
    ),
    "API_CALL_LOG_BATCH_SIZE": Setting(
        100,
        (int,),
        "API call log rows written in one INSERT; 1 writes every row as its call ends.",
    ),
    "API_CALL_LOG_MAX_DELAY": Setting(
        2.0,
        (int, float),
        "Longest time, in seconds, a call log row waits for its batch before the next call "
        "writes it (rows are also written at the end of every Celery task and web request, "
        "by IntacctClient.close() and at exit).",
    ),
    "API_CALL_LOG_RETENTION_DAYS": Setting(
        30, (int,), "Days API call log rows are kept before the pruning task deletes them."
    ),
    # Background jobs
    "REFRESH_WINDOW": Setting(
        900, (int,), "Proactive refresh claims tokens that expire within this many seconds."
    ),
    "REFRESH_JITTER": Setting(
        300,
        (int,),
        "Up to this many seconds of per-connection jitter spread proactive refreshes.",
    ),
    "IDLE_REFRESH_AFTER": Setting(
        86400,
        (int,),
        "Refresh a connection whose tokens have not been refreshed for this many seconds, "
        "so an idle refresh token is not lost.",
    ),
    "DISPATCH_BATCH_SIZE": Setting(
        500, (int,), "Rows a dispatcher claims per batch (SKIP LOCKED)."
    ),
    "MAX_DELIVERIES": Setting(
        3,
        (int,),
        "Deliveries of one job run after which a run that keeps killing its worker is parked.",
    ),
}


class AppSettings:
    """Attribute access to ``settings.INTACCT_CONNECT`` with defaults and validation.

    Every key is declared below with the type a reader gets (after defaults are derived
    and dotted paths imported), so code reads settings without casts; a test checks the
    declarations against :data:`DEFAULTS`.
    """

    CLIENT_ID: str
    CLIENT_SECRET: str
    SENDER_ID: str
    REDIRECT_URI: str
    CLIENT_SCOPE: str
    API_BASE_URL: str
    AUTHORIZE_URL: str
    TOKEN_URL: str
    REVOKE_URL: str
    SCOPE: str
    TOKEN_KEYS: tuple[str, ...]
    ADAPTER: type[DefaultIntacctAdapter]
    STATE_TTL: int
    CONNECT_RATE_LIMIT: int
    HTTP_TIMEOUT: tuple[float, float]
    TOKEN_HTTP_TIMEOUT: tuple[float, float]
    USER_AGENT: str
    TOKEN_REFRESH_SKEW: int
    MAX_RETRIES: int
    RETRY_BACKOFF: float
    RETRY_BACKOFF_MAX: float
    RETRY_AFTER_MAX: float
    COMPANY_CONCURRENCY: int
    CONCURRENCY_SLOT_TTL: int
    CONCURRENCY_SLOT_LINGER: float
    CONCURRENCY_BACKEND: str
    CONCURRENCY_CACHE: str
    CIRCUIT_FAILURE_THRESHOLD: int
    CIRCUIT_OPEN_SECONDS: float
    CIRCUIT_OPEN_MAX: float
    CIRCUIT_CACHE: str
    API_CALL_LOG_BATCH_SIZE: int
    API_CALL_LOG_MAX_DELAY: float
    API_CALL_LOG_RETENTION_DAYS: int
    REFRESH_WINDOW: int
    REFRESH_JITTER: int
    IDLE_REFRESH_AFTER: int
    DISPATCH_BATCH_SIZE: int
    MAX_DELIVERIES: int

    def __init__(self) -> None:
        self._cache: dict[str, Any] = {}
        self._user_settings: dict[str, Any] | None = None

    @property
    def user_settings(self) -> dict[str, Any]:
        if self._user_settings is None:
            value = getattr(settings, SETTINGS_NAME, {})
            if not isinstance(value, dict):
                raise ImproperlyConfigured(
                    f"settings.{SETTINGS_NAME} must be a dict, not {type(value).__name__}."
                )
            unknown = sorted(set(value) - set(DEFAULTS))
            if unknown:
                raise ImproperlyConfigured(
                    f"Unknown key(s) in settings.{SETTINGS_NAME}: {', '.join(unknown)}. "
                    f"Valid keys are listed in the settings reference (docs/settings.rst)."
                )
            self._user_settings = value
        return self._user_settings

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in DEFAULTS:
            raise AttributeError(f"Invalid {SETTINGS_NAME} setting: {name!r}")
        if name in self._cache:
            return self._cache[name]
        spec = DEFAULTS[name]
        value = self.user_settings.get(name, spec.default)
        if not isinstance(value, spec.types):
            expected = " or ".join(t.__name__ for t in spec.types)
            raise ImproperlyConfigured(
                f"settings.{SETTINGS_NAME}[{name!r}] must be {expected}, "
                f"not {type(value).__name__}."
            )
        value = self._derive(name, value)
        if spec.import_string:
            try:
                value = import_string(value)
            except ImportError as err:
                raise ImproperlyConfigured(
                    f"settings.{SETTINGS_NAME}[{name!r}] = {value!r} cannot be imported: {err}"
                ) from err
        self._cache[name] = value
        return value

    def _derive(self, name: str, value: Any) -> Any:
        base = str(self.user_settings.get("API_BASE_URL", DEFAULT_API_BASE_URL)).rstrip("/")
        if value is None:
            if name == "AUTHORIZE_URL":
                return f"{base}/oauth2/authorize"
            if name == "TOKEN_URL":
                return f"{base}/oauth2/token"
            if name == "REVOKE_URL":
                return f"{base}/oauth2/revoke"
            if name == "USER_AGENT":
                return f"intacct-connect/{__version__}"
        if name == "API_BASE_URL":
            return base
        if name in ("HTTP_TIMEOUT", "TOKEN_HTTP_TIMEOUT"):
            return tuple(value)
        if name == "TOKEN_KEYS":
            return tuple(value)
        return value

    def reload(self) -> None:
        self._cache.clear()
        self._user_settings = None


app_settings = AppSettings()


@receiver(setting_changed)
def _reload_app_settings(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTINGS_NAME:
        app_settings.reload()
