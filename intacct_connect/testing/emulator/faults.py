"""Switchable faults and throttling.

A fault is ``{"kind", "company", "endpoint", "remaining", "params"}``: it applies to the
requests of one company (or every company when ``company`` is None), of one endpoint kind
(``"api"`` for the REST API, ``"token"`` for the token endpoint, None for both), for the
next ``remaining`` matching requests (None: until cleared).
"""

from __future__ import annotations

import contextlib
import math
import secrets
import socket
import time
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Response

from intacct_connect.testing.emulator.responses import gateway_error

if TYPE_CHECKING:
    from intacct_connect.testing.emulator.state import State

FAULT_KINDS = {
    "500": "HTTP 500 with a GW-0001 gateway error",
    "503": "HTTP 503 (service overloaded) with Retry-After",
    "429": "HTTP 429 GW-0010 rate limit with the X-IA-* headers and Retry-After",
    "slow": "sleep params['seconds'] (default 2) before answering normally",
    "drop": "close the connection without sending a response",
    "garbage": "HTTP 200 with a body that is not JSON",
    "token_lost": "token endpoint only: process the request (rotating tokens), then drop "
    "the connection so the response is lost",
    "exception": "raise an unexpected exception inside the emulator (tests its 500 GW-0001 "
    "safety net; counted by unexpected_errors())",
}
ENDPOINTS = ("api", "token")


class DropConnection(ConnectionAbortedError):
    """Raised to make the server close the socket without answering."""


def add_fault(
    state: State,
    kind: str,
    *,
    company: str | None = None,
    endpoint: str | None = None,
    count: int | None = None,
    **params: Any,
) -> dict[str, Any]:
    kind = str(kind)
    if kind not in FAULT_KINDS:
        raise ValueError(f"Unknown fault kind {kind!r}; choose from {', '.join(FAULT_KINDS)}")
    if endpoint is not None and endpoint not in ENDPOINTS:
        raise ValueError("endpoint must be 'api', 'token' or None")
    if kind == "token_lost":
        if endpoint == "api":
            raise ValueError("token_lost applies to the token endpoint only")
        endpoint = "token"
    if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 1):
        raise ValueError("count must be a positive integer or None")
    if kind == "slow":
        seconds = params.get("seconds", 2)
        if (
            not isinstance(seconds, int | float)
            or isinstance(seconds, bool)
            or not (0 <= seconds <= 120)
        ):
            raise ValueError("seconds must be a number between 0 and 120")
    fault = {
        "id": secrets.token_hex(4),
        "kind": kind,
        "company": company,
        "endpoint": endpoint,
        "remaining": count,
        "params": params,
    }
    with state.lock:
        state.data["faults"].append(fault)
        state.dirty = True
    return dict(fault)


def clear_faults(state: State) -> None:
    with state.lock:
        state.data["faults"] = []
        state.dirty = True


def take_fault(
    state: State, endpoint: str, company: str | None, *, kinds: tuple[str, ...] | None = None
) -> dict[str, Any] | None:
    """The first fault matching this request (consuming one of its ``remaining``)."""
    with state.lock:
        faults: list[dict[str, Any]] = state.data["faults"]
        for fault in faults:
            if fault["endpoint"] not in (None, endpoint):
                continue
            if fault["company"] is not None and fault["company"] != company:
                continue
            if kinds is not None and fault["kind"] not in kinds:
                continue
            if fault["remaining"] is not None:
                fault["remaining"] -= 1
                if fault["remaining"] <= 0:
                    faults.remove(fault)
            state.data["counters"]["faults_injected"] += 1
            state.dirty = True
            return dict(fault)
    return None


def drop_connection(environ: dict[str, Any]) -> None:
    """Close the client socket without a response and abort the request."""
    sock = environ.get("werkzeug.socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    raise DropConnection("fault: connection dropped")


def fault_response(
    fault: dict[str, Any], environ: dict[str, Any], retry_after: int
) -> Response | None:
    """Apply a (pre-processing) fault. Returns a response, or None to continue normally."""
    kind = fault["kind"]
    if kind == "slow":
        time.sleep(float(fault["params"].get("seconds", 2)))
        return None
    if kind == "drop":
        drop_connection(environ)
    if kind == "500":
        return gateway_error(500, "GW-0001", "Injected fault: internal error.")
    if kind == "503":
        response = Response(
            '{"ia::error":{"code":"GW-0001","message":"Unable to process request",'
            '"details":{"description":"Injected fault: service unavailable"}}}',
            status=503,
            mimetype="application/json",
            headers={"Retry-After": str(retry_after)},
        )
        return response
    if kind == "429":
        return throttle_response(retry_after, 0, None, reason="Injected fault")
    if kind == "exception":
        raise RuntimeError("Injected fault: unexpected emulator exception")
    if kind == "garbage":
        return Response(
            "<html><body>Service temporarily unavailable.</body></html>\x00\xff",
            status=200,
            mimetype="text/html",
        )
    return None


def throttle_response(
    retry_after: int,
    concurrency_limit: int | None,
    minute: tuple[int, int] | None,
    reason: str = "",
) -> Response:
    headers = {"Retry-After": str(retry_after)}
    if concurrency_limit:
        headers["X-IA-Throttle-Limit"] = str(concurrency_limit)
        headers["X-IA-Throttle-Limit-Remaining"] = "0"
        headers["X-IA-Throttle-Limit-RetryAfter"] = str(retry_after)
    if minute is not None:
        limit, reset_in = minute
        headers["X-IA-Minute-Rate-Limit"] = str(limit)
        headers["X-IA-Minute-Rate-Limit-Remaining"] = "0"
        headers["X-IA-Minute-Rate-Limit-Retry-After"] = str(reset_in)
        headers["Retry-After"] = str(max(retry_after, reset_in))
    return gateway_error(429, "GW-0010", reason or "Rate limit exceeded.", headers)


def check_throttle(
    state: State, company: str, inflight: int
) -> tuple[Response | None, dict[str, str]]:
    """(a 429 response or None, headers to add to a successful response)."""
    config = state.config
    retry_after = int(config["retry_after"])
    concurrency_limit = config["concurrency_limit"]
    per_minute = config["per_minute_limit"]
    headers: dict[str, str] = {}
    if concurrency_limit is not None:
        if inflight > concurrency_limit:
            state.count("throttled", company)
            return (
                throttle_response(
                    retry_after,
                    concurrency_limit,
                    None,
                    f"More than {concurrency_limit} concurrent requests for this company.",
                ),
                headers,
            )
        headers["X-IA-Throttle-Limit"] = str(concurrency_limit)
        headers["X-IA-Throttle-Limit-Remaining"] = str(max(concurrency_limit - inflight, 0))
    if per_minute is not None:
        now = state.now()
        window = int(now // 60)
        with state.lock:
            start, used = state.minute_windows.get(company, (window, 0))
            if start != window:
                start, used = window, 0
            reset_in = max(1, math.ceil((window + 1) * 60 - now))
            if used >= per_minute:
                state.minute_windows[company] = (start, used)
                state.count("throttled", company)
                return (
                    throttle_response(
                        retry_after,
                        concurrency_limit,
                        (per_minute, reset_in),
                        f"More than {per_minute} requests this minute for this company.",
                    ),
                    headers,
                )
            used += 1
            state.minute_windows[company] = (start, used)
        headers["X-IA-Minute-Rate-Limit"] = str(per_minute)
        headers["X-IA-Minute-Rate-Limit-Remaining"] = str(per_minute - used)
    return None, headers
