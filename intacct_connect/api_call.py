"""One API call of the client, as data: what every attempt sends (:class:`Outgoing`),
what comes back (:class:`ApiResponse` for a success, :class:`ErrorAnswer` before it is
mapped onto an exception), the call's bookkeeping across its attempts (:class:`Call`, which
becomes the call's one :class:`~intacct_connect.models.ApiCallLog` row), and reading an
answer (:func:`parse_json`, :func:`request_id`). No I/O happens here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

from intacct_connect import concurrency, tokens

REQUEST_ID_HEADERS = ("X-Request-Id", "X-IA-Request-Id", "Ia-Request-Id", "X-Kong-Request-Id")


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
class Outgoing:
    """What every attempt of one call sends."""

    url: str
    json: Any = field(repr=False)
    params: Mapping[str, Any] | None = field(repr=False)
    headers: Mapping[str, str] = field(repr=False)
    idempotency_key: str | None
    retryable: bool


@dataclass
class ErrorAnswer:
    """An answer of status 400 or more, before it is mapped onto an exception."""

    status: int
    body: Any
    headers: Mapping[str, str]
    error: dict[str, Any]


@dataclass
class Call:
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
    #: The concurrency slot held by the current attempt (released when the attempt ends
    #: or, for the last attempt, together with the call-log write).
    lease: concurrency.Lease | None = None


def request_id(response: requests.Response, error: Mapping[str, Any]) -> str:
    """Intacct's id of the request, from its headers or the error's details ('' if none)."""
    for name in REQUEST_ID_HEADERS:
        value = response.headers.get(name)
        if value:
            return str(value)[:100]
    details = error.get("details")
    if isinstance(details, dict) and details.get("requestId"):
        return str(details["requestId"])[:100]
    return ""


#: What :func:`parse_json` returns for a body that is not JSON.
GARBAGE: Any = object()


def parse_json(response: requests.Response) -> Any:
    """The JSON body, None for an empty body, GARBAGE for anything unreadable."""
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return GARBAGE
