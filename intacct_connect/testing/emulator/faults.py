"""Switchable faults: what each fault kind does to a request.

A :class:`~.store.Fault` applies to the requests of one company (or every company when
``company`` is None), of one endpoint kind (``"api"`` for the REST API, ``"token"`` for the
token endpoint, None for both), for the next ``remaining`` matching requests (None: until
cleared). The state keeps the faults and takes them (``State.take_fault``).
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import time
from typing import Any

from werkzeug.wrappers import Response

from intacct_connect.testing.emulator.responses import gateway_error
from intacct_connect.testing.emulator.state import State
from intacct_connect.testing.emulator.store import Fault
from intacct_connect.testing.emulator.throttle import throttle_response

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
    fault = Fault(
        id=secrets.token_hex(4),
        kind=kind,
        company=company,
        endpoint=endpoint,
        remaining=count,
        params=params,
    )
    state.add_fault(fault)
    return fault.to_json()


def drop_connection(environ: dict[str, Any]) -> None:
    """Close the client socket without a response and abort the request."""
    sock = environ.get("werkzeug.socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    raise DropConnection("fault: connection dropped")


def fault_response(fault: Fault, environ: dict[str, Any], retry_after: int) -> Response | None:
    """Apply a (pre-processing) fault. Returns a response, or None to continue normally."""
    kind = fault.kind
    if kind == "slow":
        time.sleep(float(fault.params.get("seconds", 2)))
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
