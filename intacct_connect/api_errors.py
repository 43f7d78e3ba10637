"""Intacct's error answers, mapped onto :mod:`intacct_connect.exceptions`.

:func:`extract_error` finds the error object in any of the shapes Intacct answers with
(``ia::error`` at the top level or under ``ia::result``, or the bare ``error`` of the
gateway and of RFC 6749); :func:`error_for` turns an answer of status 400 or more into the
exception a caller catches, with the documented hint of well-known codes
(:data:`ERROR_HINTS`, see ``docs/errors.rst``); :func:`is_token_error` tells the client when
to refresh the token and replay. Pure functions: no I/O, no state.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from intacct_connect.api_retry import retry_after
from intacct_connect.exceptions import (
    AuthenticationError,
    ConflictError,
    IntacctAPIError,
    IntacctValidationError,
    MethodNotAllowedError,
    NotFoundError,
    PermissionDeniedError,
    RateLimited,
    ServerError,
)

#: Answers that mean "this access token is not accepted": refresh once, replay once.
TOKEN_ERROR_CODES = frozenset({"GW-0040", "REST-1206", "REST-2102", "tokenInvalid"})
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


#: Codes that say "the company or this site's sender/client is refused", whatever the HTTP
#: status (Sage does not document it; the emulator answers 401 for an unknown or inactive
#: company and 403 for a sender ID the company has not authorised): never a token problem.
PERMISSION_ERROR_CODES = frozenset({"GW-0011"})


def _codes(error: Mapping[str, Any]) -> set[str]:
    return {str(error.get("code")), str(error.get("errorId"))}


def is_token_error(status: int, error: Mapping[str, Any]) -> bool:
    """Whether an error answer means "this access token is not accepted" (401 or one of
    :data:`TOKEN_ERROR_CODES`, but never :data:`PERMISSION_ERROR_CODES`): the client
    refreshes once and replays."""
    codes = _codes(error)
    if codes & PERMISSION_ERROR_CODES:
        return False
    if status == 401:
        return True
    return bool(codes & TOKEN_ERROR_CODES)


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
    if _codes(error) & PERMISSION_ERROR_CODES or status == 403:
        cls = PermissionDeniedError
    elif is_token_error(status, error):
        cls = AuthenticationError
    elif status == 429 or code == "GW-0010":
        cls = RateLimited
        kwargs["retry_after"] = retry_after(headers or {})
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
