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

Every HTTP exchange goes through :meth:`IntacctClient._request`, in layers: retries →
token replay → one send → error mapping. It

* takes the access token from :func:`intacct_connect.tokens.current_token` (cached on the
  client while it stays fresh) and, on 401 / ``GW-0040`` / ``REST-1206`` / ``REST-2102``,
  refreshes it once through the single-flight path and replays the request once;
* holds one of the company's concurrency slots (the concurrency cap,
  :mod:`intacct_connect.concurrency`, in the database or in the cache) while the request
  is in flight; the slot is then parked for ``CONCURRENCY_SLOT_LINGER`` seconds, so
  back-to-back calls to one company make no round trip for it;
* asks the company's circuit breaker (:mod:`intacct_connect.circuit`) first: after
  consecutive timeouts or gateway errors the call fails fast with
  :class:`~intacct_connect.exceptions.CompanyUnavailable`, sending nothing;
* waits and tries again (within its retry policy) when the token refresh failed
  transiently (``RefreshBackoff``, or this caller's own 5xx from the token endpoint):
  nothing reached the API, so this holds for every method;
* retries GETs, queries and writes carrying an ``Idempotency-Key`` on 429, 500, 502-504
  and connection errors, as :mod:`intacct_connect.api_retry` decides and waits;
* maps errors onto :mod:`intacct_connect.exceptions` (:mod:`intacct_connect.api_errors`);
* logs one :class:`~intacct_connect.models.ApiCallLog` row per call (never a body or a
  secret) through :mod:`intacct_connect.calllog`, which writes them in batches.

The client's other parts each have their module: :mod:`~intacct_connect.api_call` (a
call's data: what it sends and gets back), :mod:`~intacct_connect.api_paths` (object
paths, keys, batch limits) and :mod:`~intacct_connect.api_query` (the query service's body
and pages). Their public names, and the call log's :func:`~intacct_connect.calllog.usage`,
:class:`~intacct_connect.calllog.Usage` and
:func:`~intacct_connect.calllog.prune_api_call_log`, are importable from here too.
"""

from __future__ import annotations

import builtins
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import requests
from django.utils import timezone

from intacct_connect import adapter, calllog, circuit, concurrency, http, tokens
from intacct_connect.api_call import (
    GARBAGE,
    REQUEST_ID_HEADERS,
    ApiResponse,
    Call,
    ErrorAnswer,
    Outgoing,
    parse_json,
    request_id,
)
from intacct_connect.api_errors import (
    ERROR_HINTS,
    TOKEN_ERROR_CODES,
    error_for,
    extract_error,
    is_token_error,
)
from intacct_connect.api_paths import MAX_BATCH, check_batch, keys_segment, quote_key, quote_object
from intacct_connect.api_query import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    QUERY_PATH,
    iter_rows,
    query_body,
)
from intacct_connect.api_retry import (
    RETRY_AFTER_HEADERS,
    RETRY_STATUSES,
    RetryPolicy,
    default_retry_policy,
    retry_after,
)
from intacct_connect.calllog import Usage, prune_api_call_log, usage
from intacct_connect.conf import app_settings
from intacct_connect.exceptions import (
    AuthenticationError,
    IntacctConnectError,
    InvalidGrant,
    NeedsReauthorization,
    NotFoundError,
    RefreshBackoff,
    TokenRequestError,
    TransportError,
)
from intacct_connect.models import Connection, ConnectionEvent, EventKind

__all__ = [
    "COMPOSITE_PATH",
    "DEFAULT_PAGE_SIZE",
    "ERROR_HINTS",
    "MAX_BATCH",
    "MAX_PAGE_SIZE",
    "MODEL_PATH",
    "QUERY_PATH",
    "REQUEST_ID_HEADERS",
    "RETRY_AFTER_HEADERS",
    "RETRY_STATUSES",
    "TOKEN_ERROR_CODES",
    "ApiResponse",
    "HealthResult",
    "IntacctClient",
    "RetryPolicy",
    "Usage",
    "build_session",
    "default_retry_policy",
    "default_session",
    "error_for",
    "extract_error",
    "finish_pending_work",
    "prune_api_call_log",
    "usage",
]

logger = logging.getLogger(__name__)

COMPOSITE_PATH = "/services/core/composite"
MODEL_PATH = "/services/core/model"


@dataclass(frozen=True)
class HealthResult:
    """What :meth:`IntacctClient.health_check` observed."""

    ok: bool
    status_code: int | None
    duration_ms: int
    error_code: str = ""
    message: str = ""


#: Kept here for callers that imported it from the client; see :mod:`intacct_connect.http`.
build_session = http.build_session


def default_session() -> requests.Session:
    """This thread's API session (:func:`intacct_connect.http.get_session` ``("api")``),
    shared by the clients created on that thread."""
    return http.get_session("api", adapter.requests_session)


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
        #: ``entity_id=""`` asks for the top level whatever the token's default entity:
        #: the header is then sent, empty.
        self._top_level = entity_id == ""
        self.session = session or default_session()
        self.retry_policy = (
            default_retry_policy
            if sleep is None and clock is None
            else RetryPolicy(sleep or time.sleep, clock or time.monotonic)
        )
        self._token: tokens.AccessToken | None = None

    def for_entity(self, entity_id: str) -> IntacctClient:
        """A client of the same connection scoped to ``entity_id`` (sent as
        ``X-IA-API-Param-Entity`` on every call); shares this client's session and retry
        policy."""
        if not entity_id or not entity_id.strip():
            raise ValueError("for_entity() needs an entity ID; use top_level() for the top level")
        return self._scoped(entity_id.strip())

    def top_level(self) -> IntacctClient:
        """A client of the same connection at the company's top level, whatever entity the
        token defaults to (an entity-scoped login or ``user@company|ENTITY``): it sends the
        entity header empty."""
        return self._scoped("")

    def _scoped(self, entity_id: str) -> IntacctClient:
        client = IntacctClient(self.connection, entity_id=entity_id, session=self.session)
        client.retry_policy = self.retry_policy
        return client

    def __repr__(self) -> str:
        return (
            f"<IntacctClient connection={self.connection.pk} "
            f"company={self.connection.company_id!r} entity={self.entity_id!r}>"
        )

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
        if self.entity_id or self._top_level:
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
        keyed: bool = True,
    ) -> ApiResponse:
        """Send one logical call (with its retries and at most one token replay).

        ``keyed=False``: no ``Idempotency-Key`` is generated (the query service, and a
        composite, whose write sub-requests carry their own)."""
        method = method.upper()
        if keyed and method in ("POST", "PATCH") and not idempotency_key:
            idempotency_key = str(uuid.uuid4())
        if idempotency_key is not None and not 0 < len(idempotency_key) <= 256:
            raise ValueError("an Idempotency-Key must be 1 to 256 characters long")
        if retryable is None:
            retryable = method == "GET" or idempotency_key is not None
        if not path.startswith("/"):
            path = "/" + path
        call = Call(method, path.split("?", 1)[0][:500], started=self.retry_policy.clock())
        outgoing = Outgoing(
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

    def _send_with_retries(self, call: Call, outgoing: Outgoing) -> ApiResponse:
        """Retry transport failures (any that cannot have reached Intacct, and all of a
        retryable call) and transient statuses; map the last failure onto an exception."""
        while True:
            try:
                answer = self._send_with_token_replay(call, outgoing)
            except TokenRequestError as err:
                # The token refresh failed transiently (this caller's request, or another
                # worker's moments ago): nothing reached the API, so any call may wait and
                # try again, fetching the token afresh.
                if not _transient_token_error(err) or not self._retry(
                    call, f"token refresh failed ({type(err).__name__})", err.retry_after
                ):
                    raise
                call.token, call.replayed, self._token = None, False, None
                continue
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
                and self._retry(call, f"HTTP {answer.status}", retry_after(answer.headers))
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

    def _retry(self, call: Call, reason: str, wait: float | None) -> bool:
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

    def _send_with_token_replay(self, call: Call, outgoing: Outgoing) -> ApiResponse | ErrorAnswer:
        """Send; if the token is rejected, refresh it once per call and send again."""
        if call.token is None:  # the first attempt: the token stays for all the others
            call.token = self._current_token()
        answer = self._send_once(call, outgoing, call.token)
        if (
            isinstance(answer, ApiResponse)
            or call.replayed
            or not is_token_error(answer.status, answer.error)
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
        self, call: Call, outgoing: Outgoing, token: tokens.AccessToken
    ) -> ApiResponse | ErrorAnswer:
        """One attempt: hold a concurrency slot, send, read the answer."""
        headers = self._headers(token, outgoing.idempotency_key, outgoing.headers)
        attempt = circuit.before_request(self.connection.company_id)  # or CompanyUnavailable
        try:
            if app_settings.COMPANY_CONCURRENCY > 0:
                call.lease = concurrency.acquire(self.connection.company_id)
                circuit.recheck(attempt)  # it may have opened while this call waited
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
        except requests.RequestException as err:
            circuit.after_request(attempt, err)
            raise
        except BaseException:
            circuit.abandon(attempt)
            raise
        circuit.after_request(attempt, response.status_code)
        self._release_slot(call)
        call.status = status = response.status_code
        body = parse_json(response)
        if status >= 400:
            error = extract_error(body if body is not GARBAGE else None)
            call.error_code = str(error.get("errorId") or error.get("code") or "")[:100]
            call.request_id = request_id(response, error)
            return ErrorAnswer(
                status, body if body is not GARBAGE else None, response.headers, error
            )
        if body is GARBAGE:
            call.error_code = "unreadable_body"
            raise TransportError(
                f"{call.method} {call.path}: HTTP {status} with a body that is not JSON",
                status_code=status,
                connection_id=self.connection.pk,
            )
        call.request_id = request_id(response, {})
        call.error_code = ""  # an earlier attempt may have failed
        return ApiResponse(status, body, response.headers, call.retries, call.request_id)

    def _release_slot(self, call: Call) -> None:
        """The current attempt is over: park or release its slot (``concurrency.finish``:
        a failure is logged, never raised; the slot is then reclaimed after
        ``CONCURRENCY_SLOT_TTL``)."""
        lease, call.lease = call.lease, None
        if lease is not None:
            concurrency.finish(self.connection.company_id, lease)

    def _finish(self, call: Call) -> None:
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

    def get(self, object_path: str, key: str | int, fields: Sequence[str] | None = None) -> Any:
        """One record (``ia::result``) by its system key. ``NotFoundError`` if missing.

        With ``fields``, the record is read through the query service (Sage documents no
        field selection on ``GET /objects/...``): one row with those fields, related
        fields as flat dotted keys, as :meth:`query` returns them."""
        if fields:
            rows = list(
                self.query(
                    object_path, list(fields), filters=[{"$eq": {"key": str(key)}}], page_size=1,
                    max_pages=1,
                )
            )  # fmt: skip
            if not rows:
                raise NotFoundError(
                    f"GET {object_path} {key}: no such record",
                    status_code=404,
                    connection_id=self.connection.pk,
                )
            return rows[0]
        path = f"/objects/{quote_object(object_path)}/{quote_key(key)}"
        return self._request("GET", path).result

    def get_many(self, object_path: str, keys: Iterable[str | int]) -> list[Any]:
        """Several records by key (one request, at most 500 keys)."""
        path = f"/objects/{quote_object(object_path)}/{keys_segment(keys)}"
        result = self._request("GET", path).result
        return result if isinstance(result, list) else [result]

    def list(self, object_path: str) -> list[Any]:
        """The list endpoint: up to 100 references ``{key, id, href}``; use :meth:`query`."""
        result = self._request("GET", f"/objects/{quote_object(object_path)}").result
        return result if isinstance(result, list) else []

    def create(
        self, object_path: str, data: Mapping[str, Any], idempotency_key: str | None = None
    ) -> Any:
        """Create a record; returns its reference ``{key, id, href}``.

        A generated (or the given) ``Idempotency-Key`` makes retries safe: Intacct answers a
        repeat with the original result instead of creating a second record.
        """
        path = f"/objects/{quote_object(object_path)}"
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
        check_batch(body)
        return self._batch("POST", object_path, body, idempotency_key, atomic)

    def update(
        self,
        object_path: str,
        key: str | int,
        data: Mapping[str, Any],
        idempotency_key: str | None = None,
    ) -> Any:
        """Partially update a record (PATCH); returns its reference."""
        path = f"/objects/{quote_object(object_path)}/{quote_key(key)}"
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
        check_batch(body)
        if any("key" not in r for r in body):
            raise ValueError("every record of update_many() needs its 'key'")
        return self._batch("PATCH", object_path, body, idempotency_key, atomic)

    def delete(self, object_path: str, key: str | int) -> None:
        """Delete a record (204). ``NotFoundError`` if it does not exist."""
        self._request("DELETE", f"/objects/{quote_object(object_path)}/{quote_key(key)}")

    def delete_many(self, object_path: str, keys: Iterable[str | int]) -> builtins.list[Any]:
        """Delete up to 500 records; [] when all succeeded (204), else per-item results."""
        path = f"/objects/{quote_object(object_path)}/{keys_segment(keys)}"
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
            f"/objects/{quote_object(object_path)}",
            json=body,
            headers=headers,
            idempotency_key=idempotency_key,
        )
        result = response.result
        return result if isinstance(result, list) else [result]

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
        body = query_body(
            object, fields, filters, filter_expression, filter_parameters, order_by, page_size
        )
        return iter_rows(self._query_page, body, start, max_pages, connection_id=self.connection.pk)

    def _query_page(self, body: dict[str, Any]) -> ApiResponse:
        # Reads: retried; no Idempotency-Key (Sage: the query service does not support it).
        return self._request("POST", QUERY_PATH, json=body, retryable=True, keyed=False)

    def composite(self, requests_: Sequence[Mapping[str, Any]]) -> builtins.list[Any]:
        """Run 2 to 10 sub-requests in order (``POST /services/core/composite``); returns
        the per-request results ``{"ia::result"|"ia::error", "ia::status", …}``.

        Sage runs them in order with no rollback, and documents ``Idempotency-Key`` per
        sub-request: every POST and PATCH sub-request without one gets its own key in its
        ``headers``, so a retry of the composite replays the writes that already happened
        instead of running them again. A composite holding a DELETE is never retried (a
        delete has no key: its repeat would fail or delete something else)."""
        if not 2 <= len(requests_) <= 10:
            raise ValueError("a composite request holds 2 to 10 sub-requests")
        body = [_keyed_sub_request(r) for r in requests_]
        retryable = not any(str(r.get("method", "")).upper() == "DELETE" for r in body)
        response = self._request(
            "POST", COMPOSITE_PATH, json=body, retryable=retryable, keyed=False
        )
        result = response.result
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


def _keyed_sub_request(request: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a composite sub-request; a POST or PATCH gets an ``Idempotency-Key``
    header of its own unless it has one (any case)."""
    item = dict(request)
    if str(item.get("method", "")).upper() in ("POST", "PATCH"):
        headers = dict(item.get("headers") or {})
        if not any(name.lower() == "idempotency-key" for name in headers):
            headers["Idempotency-Key"] = str(uuid.uuid4())
        item["headers"] = headers
    return item


def _transient_token_error(err: TokenRequestError) -> bool:
    """A token-endpoint failure worth waiting for: the short back-off after a transient
    failure, or the transient failure itself (5xx, garbage, nothing sent); never
    invalid_grant, invalid_client, a lost answer or a lock timeout."""
    return isinstance(err, RefreshBackoff) or type(err) is TokenRequestError


def finish_pending_work(**kwargs: Any) -> None:
    """Write the call-log rows still waiting and release the concurrency slots this
    process keeps parked. Connected by the app to the end of every web request
    (``request_finished``) and Celery task (``task_postrun``) and to the shutdown of a
    worker process, so no row waits past the unit of work that made its call."""
    calllog.flush()
    concurrency.release_parked()
