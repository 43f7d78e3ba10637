"""``IntacctClient``: the one way the site talks to the Sage Intacct REST API.

A client is bound to one :class:`~intacct_connect.models.Connection` (and optionally one
entity, sent as ``X-IA-API-Param-Entity``)::

    from intacct_connect.client import IntacctClient

    client = IntacctClient(connection)
    vendor = client.get("accounts-payable/vendor", "84")
    for row in client.query(
        "accounts-payable/vendor",
        ["key", "id", "name"],
        filters=[{"$eq": {"status": "active"}}],
        order_by=[{"id": "asc"}],
    ):
        ...

Every HTTP exchange goes through :meth:`IntacctClient._request`, which

* takes the access token from :func:`intacct_connect.tokens.get_token` (cached on the
  client while it stays fresh) and, on 401 / ``GW-0040`` / ``REST-1206`` / ``REST-2102``,
  refreshes it once through the single-flight path and replays the request once;
* holds one of the company's concurrency slots (:mod:`intacct_connect.concurrency`, in the
  database or in the cache) while the request is in flight; the slot is then parked for
  ``CONCURRENCY_SLOT_LINGER`` seconds, so back-to-back calls to one company make no
  round trip for it;
* retries GETs, queries and writes carrying an ``Idempotency-Key`` on 429, 500, 502-504
  and connection errors, with exponential backoff and full jitter, honouring
  ``Retry-After`` (and Intacct's ``X-IA-*-Retry-After`` headers) up to ``RETRY_AFTER_MAX``;
* maps errors onto :mod:`intacct_connect.exceptions`;
* logs one :class:`~intacct_connect.models.ApiCallLog` row per call (never a body or a
  secret) through :mod:`intacct_connect.calllog`, which writes them in batches.

The call log's usage figures and retention (:func:`~intacct_connect.calllog.usage`,
:class:`~intacct_connect.calllog.Usage`, :func:`~intacct_connect.calllog.prune_api_call_log`)
live in :mod:`intacct_connect.calllog` and are importable from here too.
"""

from __future__ import annotations

import builtins
import email.utils
import logging
import random
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from typing import Any
from urllib.parse import quote

import requests
from django.utils import timezone

from intacct_connect import adapter, calllog, concurrency, http, tokens
from intacct_connect.calllog import Usage as Usage
from intacct_connect.calllog import prune_api_call_log as prune_api_call_log
from intacct_connect.calllog import usage as usage
from intacct_connect.conf import app_settings
from intacct_connect.exceptions import (
    AuthenticationError,
    ConflictError,
    IntacctAPIError,
    IntacctConnectError,
    IntacctValidationError,
    InvalidGrant,
    MethodNotAllowedError,
    NeedsReauthorization,
    NotFoundError,
    PermissionDeniedError,
    RateLimited,
    ServerError,
    TransportError,
)
from intacct_connect.models import Connection, ConnectionEvent, EventKind

logger = logging.getLogger(__name__)

QUERY_PATH = "/services/core/query"
COMPOSITE_PATH = "/services/core/composite"
MODEL_PATH = "/services/core/model"
#: Statuses a retryable call is retried on. Intacct's gateway answers every 5xx with
#: GW-0001, so a 500 is treated as transient like 502-504.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
#: Answers that mean "this access token is not accepted": refresh once, replay once.
TOKEN_ERROR_CODES = frozenset({"GW-0040", "REST-1206", "REST-2102", "tokenInvalid"})
#: Headers carrying a wait time, in the order they are consulted (all are honoured: max).
RETRY_AFTER_HEADERS = (
    "Retry-After",
    "X-IA-Throttle-Limit-RetryAfter",
    "X-IA-Throttle-Limit-Retry-After",
    "X-IA-Minute-Rate-Limit-Retry-After",
    "X-IA-Hour-Rate-Limit-Retry-After",
    "X-IA-TENANT-Throttle-Limit-Retry-After",
)
REQUEST_ID_HEADERS = ("X-Request-Id", "X-IA-Request-Id", "Ia-Request-Id", "X-Kong-Request-Id")
DEFAULT_PAGE_SIZE = 1000
MAX_PAGE_SIZE = 4000
MAX_BATCH = 500
_OBJECT_PATH = re.compile(r"^[a-z][a-z0-9\-]*/[A-Za-z0-9_\-.: %]+$")

#: Hints appended to the message of well-known Intacct errors (see docs/errors.rst).
ERROR_HINTS = {
    "GW-0010": "the company's API rate or concurrency limit was reached; retry later",
    "GW-0011": (
        "Intacct refused the request: the company is unknown or inactive, or it has not "
        "authorised this site's Web Services sender ID (Company > Setup > Company > "
        "Security > Web Services authorizations), or the client ID is inactive"
    ),
    "GW-0040": "the access token expired",
    "REST-1206": "the access token is not valid (often an expired token)",
    "REST-2102": (
        "the token was rejected; another authorization for the same Intacct user and "
        "company may have superseded this connection's grant"
    ),
}


# --- results -------------------------------------------------------------------------


@dataclass
class ApiResponse:
    """A successful answer: status, parsed JSON (None for 204) and the useful headers."""

    status_code: int
    data: Any
    headers: Mapping[str, str] = field(repr=False, default_factory=dict)
    retries: int = 0
    request_id: str = ""

    @property
    def result(self) -> Any:
        """``ia::result`` of the envelope (the whole body if it is not an envelope)."""
        if isinstance(self.data, dict) and "ia::result" in self.data:
            return self.data["ia::result"]
        return self.data

    @property
    def meta(self) -> dict[str, Any]:
        meta = self.data.get("ia::meta") if isinstance(self.data, dict) else None
        return meta if isinstance(meta, dict) else {}


@dataclass(frozen=True)
class HealthResult:
    """What :meth:`IntacctClient.health_check` observed."""

    ok: bool
    status_code: int | None
    duration_ms: int
    error_code: str = ""
    message: str = ""


@dataclass(frozen=True)
class _Outgoing:
    """What every attempt of one call sends."""

    url: str
    json: Any = field(repr=False)
    params: Mapping[str, Any] | None = field(repr=False)
    headers: Mapping[str, str] = field(repr=False)
    idempotency_key: str | None
    retryable: bool


@dataclass
class _ErrorAnswer:
    """An answer of status 400 or more, before it is mapped onto an exception."""

    status: int
    body: Any
    headers: Mapping[str, str]
    error: dict[str, Any]


@dataclass
class _Call:
    """Bookkeeping of one logical call (all its attempts)."""

    method: str
    path: str
    retries: int = 0
    status: int | None = None
    error_code: str = ""
    request_id: str = ""
    started: float = 0.0
    #: The access token the attempts send, and whether it was already replaced once.
    token: tokens.AccessToken | None = field(default=None, repr=False)
    replayed: bool = False
    #: The concurrency slot held by the current attempt (released by ``_release_slot`` or,
    #: for the last attempt, together with the call-log write).
    lease: concurrency.Lease | None = None


# --- sessions ------------------------------------------------------------------------

#: Kept here for callers that imported it from the client; see :mod:`intacct_connect.http`.
build_session = http.build_session


def default_session() -> requests.Session:
    """This thread's API session (:func:`intacct_connect.http.get_session` ``("api")``),
    shared by the clients created on that thread."""
    return http.get_session("api", adapter.requests_session)


# --- retries -------------------------------------------------------------------------


@dataclass
class RetryPolicy:
    """How long the client waits before each retry, and the ``sleep`` and ``clock`` it
    waits and measures with (tests pass fakes: nothing sleeps for real)."""

    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic

    @property
    def max_retries(self) -> int:
        return max(0, app_settings.MAX_RETRIES)

    def allows(self, retries: int, wait: float | None) -> bool:
        """Whether a call that was retried ``retries`` times may be retried again, when
        the server asks for ``wait`` seconds (None: it did not say)."""
        return retries < self.max_retries and (wait is None or wait <= app_settings.RETRY_AFTER_MAX)

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with full jitter; a server-given wait plus a little jitter."""
        cap = min(
            app_settings.RETRY_BACKOFF_MAX,
            app_settings.RETRY_BACKOFF * (2**attempt),
        )
        delay = random.uniform(0, cap)  # noqa: S311 - full jitter
        if retry_after is not None:
            delay = retry_after + random.uniform(0, min(1.0, app_settings.RETRY_BACKOFF))  # noqa: S311
        return delay


#: The policy of every client created without ``sleep=`` or ``clock=`` (a test can swap
#: its ``sleep`` for all clients, including those made inside flows and tasks).
default_retry_policy = RetryPolicy()


# --- error parsing -------------------------------------------------------------------


def extract_error(body: Any) -> dict[str, Any]:
    """The error object of an Intacct answer: ``ia::error`` at the top level, under
    ``ia::result``, or the bare ``error`` shape; {} if there is none."""
    if not isinstance(body, dict):
        return {}
    for candidate in (
        body.get("ia::error"),
        body.get("ia::result", {}).get("ia::error")
        if isinstance(body.get("ia::result"), dict)
        else None,
        body.get("error"),
    ):
        if isinstance(candidate, dict):
            return candidate
        if isinstance(candidate, str):  # RFC 6749 style {"error": "...", ...}
            return {"code": candidate, "message": body.get("error_description") or candidate}
    return {}


def _request_id(response: requests.Response, error: Mapping[str, Any]) -> str:
    for name in REQUEST_ID_HEADERS:
        value = response.headers.get(name)
        if value:
            return str(value)[:100]
    details = error.get("details")
    if isinstance(details, dict) and details.get("requestId"):
        return str(details["requestId"])[:100]
    return ""


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """The longest wait any of the Retry-After style headers asks for, in seconds."""
    waits: list[float] = []
    for name in RETRY_AFTER_HEADERS:
        raw = headers.get(name)
        if raw is None:
            continue
        raw = str(raw).strip()
        try:
            waits.append(max(0.0, float(raw)))
            continue
        except ValueError:
            pass
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            continue
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        waits.append(max(0.0, (when - timezone.now()).total_seconds()))
    return max(waits) if waits else None


def _is_token_error(status: int, error: Mapping[str, Any]) -> bool:
    if status == 401:
        return True
    return bool({str(error.get("code")), str(error.get("errorId"))} & TOKEN_ERROR_CODES)


def error_for(
    status: int,
    body: Any,
    *,
    method: str,
    path: str,
    headers: Mapping[str, str] | None = None,
    connection_id: int | None = None,
) -> IntacctAPIError:
    """Map an error answer onto the exception tree (the client's one error mapping)."""
    error = extract_error(body)
    code = str(error["code"]) if error.get("code") else None
    error_id = str(error["errorId"]) if error.get("errorId") else None
    support_id = str(error["supportId"]) if error.get("supportId") else None
    details = error.get("details") or None
    text = str(error.get("message") or "").strip()
    hint = ERROR_HINTS.get(code or "") or ERROR_HINTS.get(error_id or "")
    message = f"{method} {path}: {text or f'HTTP {status}'}"
    if hint:
        message += f" — {hint}"
    if not error and body is None:
        message += " (the answer had no JSON body)"
    kwargs: dict[str, Any] = {
        "status_code": status,
        "code": code,
        "error_id": error_id,
        "support_id": support_id,
        "details": details,
        "connection_id": connection_id,
    }
    cls: type[IntacctAPIError]
    if _is_token_error(status, error):
        cls = AuthenticationError
    elif code == "GW-0011" or status == 403:
        cls = PermissionDeniedError
    elif status == 429 or code == "GW-0010":
        cls = RateLimited
        kwargs["retry_after"] = _retry_after(headers or {})
    elif status == 404:
        cls = NotFoundError
    elif status == 405:
        cls = MethodNotAllowedError
    elif status == 409:
        cls = ConflictError
    elif status in (400, 422):
        cls = IntacctValidationError
    elif status >= 500:
        cls = ServerError
    else:
        cls = IntacctAPIError
    return cls(message, **kwargs)


# --- the client ----------------------------------------------------------------------


def _quote_object(object_path: str) -> str:
    object_path = object_path.strip("/")
    if object_path.startswith("objects/"):
        object_path = object_path[len("objects/") :]
    if not _OBJECT_PATH.match(object_path):
        raise ValueError(
            f"{object_path!r} is not an Intacct object path such as 'accounts-payable/vendor'"
        )
    return quote(object_path, safe="/:")


def _quote_key(key: str | int) -> str:
    text = str(key)
    if not text or "," in text or "/" in text:
        raise ValueError(f"{text!r} is not a valid record key")
    return quote(text, safe="")


def _keys_segment(keys: Iterable[str | int]) -> str:
    quoted = [_quote_key(k) for k in keys]
    if not quoted:
        raise ValueError("at least one key is required")
    if len(quoted) > MAX_BATCH:
        raise ValueError(f"at most {MAX_BATCH} keys per request, not {len(quoted)}")
    return ",".join(quoted)


class IntacctClient:
    """API client bound to one connection (and optionally one entity).

    :param connection: a :class:`~intacct_connect.models.Connection` or its primary key.
    :param entity_id: entity sent as ``X-IA-API-Param-Entity`` on every call; defaults to
        the connection's entity (blank = top level). Pass ``""`` to force top level.
    :param session: a ``requests.Session`` to use (default: this thread's ``"api"``
        session, made by the adapter's ``get_requests_session()``).
    :param sleep: how to wait between retries (default ``time.sleep``).
    :param clock: the monotonic clock that times calls (default ``time.monotonic``).
    """

    def __init__(
        self,
        connection: Connection | int,
        *,
        entity_id: str | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if not isinstance(connection, Connection):
            connection = Connection.objects.get(pk=connection)
        self.connection = connection
        self.entity_id = connection.entity_id if entity_id is None else entity_id
        self.session = session or default_session()
        self.retry_policy = (
            default_retry_policy
            if sleep is None and clock is None
            else RetryPolicy(sleep or time.sleep, clock or time.monotonic)
        )
        self._token: tokens.AccessToken | None = None

    def __repr__(self) -> str:
        return (
            f"<IntacctClient connection={self.connection.pk} "
            f"company={self.connection.company_id!r} entity={self.entity_id!r}>"
        )

    # --- token ---------------------------------------------------------------------

    def _current_token(self) -> tokens.AccessToken:
        token = self._token
        skew = timedelta(seconds=app_settings.TOKEN_REFRESH_SKEW)
        if token is None or token.expires_at <= timezone.now() + skew:
            token = tokens.current_token(self.connection.pk)
            self._token = token
        return token

    def _refresh_after_rejection(self, used: tokens.AccessToken) -> tokens.AccessToken:
        try:
            token = tokens.refresh_connection(
                self.connection.pk, force=True, seen_version=used.version
            )
        except NeedsReauthorization:
            self._token = None
            raise
        except InvalidGrant as err:
            self._token = None
            raise NeedsReauthorization(
                f"Intacct no longer accepts connection {self.connection.pk}'s grant "
                "(invalid_grant); a user must reconnect the company",
                code="invalid_grant",
                connection_id=self.connection.pk,
            ) from err
        if token is None:  # pragma: no cover - wait=True never returns None
            raise AuthenticationError(connection_id=self.connection.pk)
        self._token = tokens.AccessToken.of(token)
        return self._token

    # --- the choke point -----------------------------------------------------------

    def _url(self, path: str) -> str:
        return f"{app_settings.API_BASE_URL}{path}"

    def _headers(
        self, token: tokens.AccessToken, idempotency_key: str | None, extra: Mapping[str, str]
    ) -> dict[str, str]:
        headers = {
            "Authorization": f"Bearer {token.value}",
            "Accept": "application/json",
            "User-Agent": app_settings.USER_AGENT,
        }
        if self.entity_id:
            headers["X-IA-API-Param-Entity"] = self.entity_id
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        headers.update(extra)
        return headers

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        retryable: bool | None = None,
    ) -> ApiResponse:
        """Send one logical call (with its retries and at most one token replay)."""
        method = method.upper()
        if method in ("POST", "PATCH") and not idempotency_key:
            idempotency_key = str(uuid.uuid4())
        if idempotency_key is not None and not 0 < len(idempotency_key) <= 256:
            raise ValueError("an Idempotency-Key must be 1 to 256 characters long")
        if retryable is None:
            retryable = method == "GET" or idempotency_key is not None
        if not path.startswith("/"):
            path = "/" + path
        call = _Call(method, path.split("?", 1)[0][:500], started=self.retry_policy.clock())
        outgoing = _Outgoing(
            self._url(path), json, params, headers or {}, idempotency_key, retryable
        )
        try:
            return self._send_with_retries(call, outgoing)
        except IntacctConnectError as err:
            if not call.error_code:
                call.error_code = (err.error_id or err.code or type(err).__name__)[:100]
            raise
        except Exception as err:  # e.g. the slot cache is down: still logged, then raised
            if not call.error_code:
                call.error_code = type(err).__name__[:100]
            raise
        finally:
            self._finish(call)

    # The layers of one call: retries -> token replay -> one send -> error mapping.

    def _send_with_retries(self, call: _Call, outgoing: _Outgoing) -> ApiResponse:
        """Retry transport failures (any that cannot have reached Intacct, and all of a
        retryable call) and transient statuses; map the last failure onto an exception."""
        while True:
            try:
                answer = self._send_with_token_replay(call, outgoing)
            except requests.RequestException as err:
                sent = not isinstance(err, requests.ConnectTimeout) and not http.never_sent(err)
                if (outgoing.retryable or not sent) and self._retry(call, type(err).__name__, None):
                    continue
                call.error_code = type(err).__name__
                raise TransportError(
                    f"{call.method} {call.path}: {type(err).__name__}"
                    + (" (the request may have reached Intacct)" if sent else ""),
                    connection_id=self.connection.pk,
                ) from err
            if isinstance(answer, ApiResponse):
                return answer
            if (
                answer.status in RETRY_STATUSES
                and (outgoing.retryable or answer.status == 429)
                and self._retry(call, f"HTTP {answer.status}", _retry_after(answer.headers))
            ):
                continue
            raise error_for(
                answer.status,
                answer.body,
                method=call.method,
                path=call.path,
                headers=answer.headers,
                connection_id=self.connection.pk,
            )

    def _retry(self, call: _Call, reason: str, wait: float | None) -> bool:
        """Wait before the next attempt if the policy allows one; False if it does not."""
        policy = self.retry_policy
        if not policy.allows(call.retries, wait):
            return False
        delay = policy.delay(call.retries, wait)
        logger.info(
            "%s %s: %s; retry %s in %.2f s", call.method, call.path, reason, call.retries + 1, delay
        )
        call.retries += 1
        self._release_slot(call)
        policy.sleep(delay)
        return True

    def _send_with_token_replay(
        self, call: _Call, outgoing: _Outgoing
    ) -> ApiResponse | _ErrorAnswer:
        """Send; if the token is rejected, refresh it once per call and send again."""
        if call.token is None:  # the first attempt: the token stays for all the others
            call.token = self._current_token()
        answer = self._send_once(call, outgoing, call.token)
        if (
            isinstance(answer, ApiResponse)
            or call.replayed
            or not _is_token_error(answer.status, answer.error)
        ):
            return answer
        call.replayed = True
        logger.info(
            "%s %s: token rejected (%s); refreshing once and replaying",
            call.method,
            call.path,
            call.error_code or answer.status,
        )
        self._release_slot(call)
        call.token = self._refresh_after_rejection(call.token)
        return self._send_once(call, outgoing, call.token)

    def _send_once(
        self, call: _Call, outgoing: _Outgoing, token: tokens.AccessToken
    ) -> ApiResponse | _ErrorAnswer:
        """One attempt: hold a concurrency slot, send, read the answer."""
        headers = self._headers(token, outgoing.idempotency_key, outgoing.headers)
        if app_settings.COMPANY_CONCURRENCY > 0:
            call.lease = concurrency.acquire(self.connection.company_id)
        response = self.session.request(
            call.method,
            outgoing.url,
            json=outgoing.json,
            params=outgoing.params,
            headers=headers,
            timeout=app_settings.HTTP_TIMEOUT,
            allow_redirects=False,
            proxies=http.proxies_for(app_settings.API_BASE_URL),
        )
        self._release_slot(call)
        call.status = status = response.status_code
        body = _parse_json(response)
        if status >= 400:
            error = extract_error(body if body is not _GARBAGE else None)
            call.error_code = str(error.get("errorId") or error.get("code") or "")[:100]
            call.request_id = _request_id(response, error)
            return _ErrorAnswer(
                status, body if body is not _GARBAGE else None, response.headers, error
            )
        if body is _GARBAGE:
            call.error_code = "unreadable_body"
            raise TransportError(
                f"{call.method} {call.path}: HTTP {status} with a body that is not JSON",
                status_code=status,
                connection_id=self.connection.pk,
            )
        call.request_id = _request_id(response, {})
        call.error_code = ""  # an earlier attempt may have failed
        return ApiResponse(status, body, response.headers, call.retries, call.request_id)

    def _release_slot(self, call: _Call) -> None:
        """The current attempt is over: park or release its slot (``concurrency.finish``:
        a failure is logged, never raised; the slot is then reclaimed after
        ``CONCURRENCY_SLOT_TTL``)."""
        lease, call.lease = call.lease, None
        if lease is not None:
            concurrency.finish(self.connection.company_id, lease)

    def _finish(self, call: _Call) -> None:
        """Give back the slot still held (if any) and hand the call's one log row to
        :mod:`intacct_connect.calllog` (no round trip of its own in autocommit mode)."""
        self._release_slot(call)
        calllog.record(
            calllog.CallRow(
                self.connection.pk,
                call.method,
                call.path,
                call.status,
                call.error_code,
                int((self.retry_policy.clock() - call.started) * 1000),
                call.retries,
                call.request_id,
                timezone.now(),
            )
        )

    def close(self) -> None:
        """Write the call log rows still waiting and release the concurrency slots this
        process keeps parked for the company. The client stays usable; ``with
        IntacctClient(connection) as client:`` calls this on exit."""
        calllog.flush()
        concurrency.release_parked(self.connection.company_id)

    def __enter__(self) -> IntacctClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- escape hatch ----------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        json: Any = None,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> ApiResponse:
        """Any call, e.g. ``request("POST", "/workflows/accounts-payable/bill/submit", {...})``.

        ``path`` is relative to ``API_BASE_URL``. Errors raise as for every other method.
        """
        return self._request(
            method, path, json=json, params=params, headers=headers, idempotency_key=idempotency_key
        )

    # --- objects ---------------------------------------------------------------------

    def get(self, object_path: str, key: str | int, fields: Sequence[str] | None = None) -> Any:
        """One record (``ia::result``) by its system key. ``NotFoundError`` if missing."""
        params = {"fields": ",".join(fields)} if fields else None
        path = f"/objects/{_quote_object(object_path)}/{_quote_key(key)}"
        return self._request("GET", path, params=params).result

    def get_many(self, object_path: str, keys: Iterable[str | int]) -> list[Any]:
        """Several records by key (one request, at most 500 keys)."""
        path = f"/objects/{_quote_object(object_path)}/{_keys_segment(keys)}"
        result = self._request("GET", path).result
        return result if isinstance(result, list) else [result]

    def list(self, object_path: str) -> list[Any]:
        """The list endpoint: up to 100 references ``{key, id, href}``; use :meth:`query`."""
        result = self._request("GET", f"/objects/{_quote_object(object_path)}").result
        return result if isinstance(result, list) else []

    def create(
        self, object_path: str, data: Mapping[str, Any], idempotency_key: str | None = None
    ) -> Any:
        """Create a record; returns its reference ``{key, id, href}``.

        A generated (or the given) ``Idempotency-Key`` makes retries safe: Intacct answers a
        repeat with the original result instead of creating a second record.
        """
        path = f"/objects/{_quote_object(object_path)}"
        return self._request("POST", path, json=dict(data), idempotency_key=idempotency_key).result

    def create_many(
        self,
        object_path: str,
        records: Sequence[Mapping[str, Any]],
        idempotency_key: str | None = None,
        *,
        atomic: bool = False,
    ) -> builtins.list[Any]:
        """Create up to 500 records in one request; returns the per-record results in order
        (on partial success, HTTP 207, failed items carry ``ia::error`` and ``ia::status``)."""
        body = [dict(r) for r in records]
        _check_batch(body)
        return self._batch("POST", object_path, body, idempotency_key, atomic)

    def update(
        self,
        object_path: str,
        key: str | int,
        data: Mapping[str, Any],
        idempotency_key: str | None = None,
    ) -> Any:
        """Partially update a record (PATCH); returns its reference."""
        path = f"/objects/{_quote_object(object_path)}/{_quote_key(key)}"
        return self._request("PATCH", path, json=dict(data), idempotency_key=idempotency_key).result

    def update_many(
        self,
        object_path: str,
        records: Sequence[Mapping[str, Any]],
        idempotency_key: str | None = None,
        *,
        atomic: bool = False,
    ) -> builtins.list[Any]:
        """Update up to 500 records; each record carries its ``key``."""
        body = [dict(r) for r in records]
        _check_batch(body)
        if any("key" not in r for r in body):
            raise ValueError("every record of update_many() needs its 'key'")
        return self._batch("PATCH", object_path, body, idempotency_key, atomic)

    def delete(self, object_path: str, key: str | int) -> None:
        """Delete a record (204). ``NotFoundError`` if it does not exist."""
        self._request("DELETE", f"/objects/{_quote_object(object_path)}/{_quote_key(key)}")

    def delete_many(self, object_path: str, keys: Iterable[str | int]) -> builtins.list[Any]:
        """Delete up to 500 records; [] when all succeeded (204), else per-item results."""
        path = f"/objects/{_quote_object(object_path)}/{_keys_segment(keys)}"
        response = self._request("DELETE", path)
        result = response.result
        return result if isinstance(result, list) else []

    def _batch(
        self,
        method: str,
        object_path: str,
        body: builtins.list[dict[str, Any]],
        idempotency_key: str | None,
        atomic: bool,
    ) -> builtins.list[Any]:
        headers = {"X-IA-API-Param-Transaction": "true"} if atomic else None
        response = self._request(
            method,
            f"/objects/{_quote_object(object_path)}",
            json=body,
            headers=headers,
            idempotency_key=idempotency_key,
        )
        result = response.result
        return result if isinstance(result, list) else [result]

    # --- services --------------------------------------------------------------------

    def query(
        self,
        object: str,
        fields: Sequence[str],
        filters: Sequence[Mapping[str, Any]] | None = None,
        filter_expression: str | None = None,
        filter_parameters: Mapping[str, Any] | None = None,
        order_by: Sequence[Mapping[str, str]] | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        *,
        start: int = 1,
        max_pages: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every row of a query, page by page (``POST /services/core/query``).

        A generator: pages are fetched as you iterate, following ``ia::meta.next``, and
        only one page is held in memory. A ``next`` that does not move forward raises
        :class:`~intacct_connect.exceptions.IntacctAPIError` instead of looping.
        """
        if not fields:
            raise ValueError("query() needs at least one field")
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        body: dict[str, Any] = {"object": object, "fields": list(fields)}
        if filters:
            body["filters"] = [dict(f) for f in filters]
        if filter_expression:
            body["filterExpression"] = filter_expression
        if filter_parameters:
            body["filterParameters"] = dict(filter_parameters)
        if order_by:
            body["orderBy"] = [dict(o) for o in order_by]
        body["size"] = page_size
        return self._pages(body, start, max_pages)

    def _pages(
        self, body: dict[str, Any], start: int, max_pages: int | None
    ) -> Iterator[dict[str, Any]]:
        pages = 0
        while True:
            body["start"] = start
            response = self._request("POST", QUERY_PATH, json=body, retryable=True)
            rows = response.result
            meta = response.meta
            del response
            if not isinstance(rows, list):
                raise IntacctAPIError(
                    f"POST {QUERY_PATH}: the answer has no list of rows",
                    connection_id=self.connection.pk,
                )
            yield from rows
            del rows
            pages += 1
            nxt = meta.get("next")
            if nxt in (None, "", 0) or (max_pages is not None and pages >= max_pages):
                return
            try:
                nxt_start = int(nxt)
            except (TypeError, ValueError):
                raise IntacctAPIError(
                    f"POST {QUERY_PATH}: ia::meta.next is not a number ({nxt!r})",
                    connection_id=self.connection.pk,
                ) from None
            if nxt_start <= start:
                raise IntacctAPIError(
                    f"POST {QUERY_PATH}: ia::meta.next ({nxt_start}) does not advance past "
                    f"start {start}; stopping instead of looping",
                    connection_id=self.connection.pk,
                )
            start = nxt_start

    def composite(self, requests_: Sequence[Mapping[str, Any]]) -> builtins.list[Any]:
        """Run 2 to 10 sub-requests in order (``POST /services/core/composite``); returns
        the per-request results ``{"ia::result"|"ia::error", "ia::status", …}``."""
        if not 2 <= len(requests_) <= 10:
            raise ValueError("a composite request holds 2 to 10 sub-requests")
        result = self._request("POST", COMPOSITE_PATH, json=[dict(r) for r in requests_]).result
        return result if isinstance(result, list) else [result]

    def model(self, name: str, **params: Any) -> Any:
        """The object model of ``name`` (``GET /services/core/model?name=…``)."""
        return self._request("GET", MODEL_PATH, params={"name": name, **params}).result

    def health_check(self) -> HealthResult:
        """One cheap call proving the connection works; records the outcome on the
        connection (``health_ok``, ``health_checked_at``) and as a HEALTH_CHECK event.
        Never raises for API or transport errors (configuration errors still raise)."""
        clock = self.retry_policy.clock
        started = clock()
        status: int | None = None
        code = message = ""
        ok = False
        try:
            response = self._request("GET", "/objects/company-config/entity")
            status, ok = response.status_code, True
            message = "The connection works."
        except IntacctConnectError as err:
            status = err.status_code
            code = (err.error_id or err.code or type(err).__name__)[:100]
            message = err.message
        duration = int((clock() - started) * 1000)
        now = timezone.now()
        Connection.objects.filter(pk=self.connection.pk).update(
            health_ok=ok, health_checked_at=now, updated_at=now
        )
        self.connection.health_ok, self.connection.health_checked_at = ok, now
        ConnectionEvent.log(
            self.connection,
            EventKind.HEALTH_CHECK,
            f"Health check {'passed' if ok else 'failed'} in {duration} ms: {message}",
            error_code=code,
        )
        return HealthResult(ok, status, duration, code, message)


def finish_pending_work(**kwargs: Any) -> None:
    """Write the call-log rows still waiting and release the concurrency slots this
    process keeps parked. Connected by the app to the end of every web request
    (``request_finished``) and Celery task (``task_postrun``) and to the shutdown of a
    worker process, so no row waits past the unit of work that made its call."""
    calllog.flush()
    concurrency.release_parked()


def _check_batch(body: list[dict[str, Any]]) -> None:
    if not body:
        raise ValueError("at least one record is required")
    if len(body) > MAX_BATCH:
        raise ValueError(f"at most {MAX_BATCH} records per request, not {len(body)}")


_GARBAGE: Any = object()


def _parse_json(response: requests.Response) -> Any:
    """The JSON body, None for an empty body, _GARBAGE for anything unreadable."""
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return _GARBAGE
