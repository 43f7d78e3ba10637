"""Response builders shared by the emulator's endpoints: JSON bodies and Intacct's error
envelopes (REST ``ia::error``, gateway ``GW-00xx``, OAuth token-endpoint errors)."""

from __future__ import annotations

import json
import secrets
from typing import Any
from urllib.parse import quote

from werkzeug.wrappers import Response

JSON = "application/json"


def support_id() -> str:
    """An opaque, URL-encoded support ID like Intacct's (``…%7E…``)."""
    return quote(secrets.token_urlsafe(10) + "~" + secrets.token_urlsafe(14), safe="")


def request_id() -> str:
    a, b, c = (secrets.token_hex(n).upper() for n in (4, 2, 4))
    return f"{a}:{b}_{c}"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def loads(raw: bytes | str) -> Any:
    """Strict JSON: NaN and Infinity are refused, as JSON (RFC 8259) requires."""
    return json.loads(raw, parse_constant=_reject_constant)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    text = json.dumps(body, separators=(",", ":"))
    response = Response(text, status=status, mimetype=JSON, headers=headers)
    return response


class APIError(Exception):
    """Raised inside REST handlers; rendered as Intacct's error envelope."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        error_id: str | None = None,
        message_id: str | None = None,
        placeholders: dict[str, Any] | None = None,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.error_id = error_id
        self.message_id = message_id
        self.placeholders = placeholders or {}
        self.details = details
        self.headers = headers or {}

    def error_body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.error_id:
            error["errorId"] = self.error_id
        if self.message_id or self.placeholders:
            error["additionalInfo"] = {
                "messageId": self.message_id or "",
                "placeholders": self.placeholders,
                "propertySet": {},
            }
        error["supportId"] = support_id()
        if self.details:
            error["details"] = self.details
        return error


def detail(
    code: str,
    message: str,
    *,
    error_id: str | None = None,
    target: str | None = None,
    message_id: str | None = None,
    placeholders: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One entry of an error's ``details`` array."""
    item: dict[str, Any] = {"code": code, "message": message}
    if error_id:
        item["errorId"] = error_id
    if target:
        item["target"] = target
    if message_id or placeholders:
        item["additionalInfo"] = {
            "messageId": message_id or "",
            "placeholders": placeholders or {},
            "propertySet": {},
        }
    return item


def rest_error_body(error: APIError, shape: str = "top") -> dict[str, Any]:
    """A REST error's body: ``{"ia::error", "ia::meta"}`` (``shape="top"``) or, as in Sage's
    OpenAPI documents, ``{"ia::result": {"ia::error"}, "ia::meta"}`` (``"nested"``)."""
    meta = {"totalCount": 1, "totalSuccess": 0, "totalError": 1}
    if shape == "nested":
        return {"ia::result": {"ia::error": error.error_body()}, "ia::meta": meta}
    return {"ia::error": error.error_body(), "ia::meta": meta}


def payload_errors(details: list[dict[str, Any]]) -> APIError:
    """400 REST-1064 "Payload contains errors", one ``details`` entry per problem."""
    return APIError(
        400,
        "invalidRequest",
        "Payload contains errors",
        error_id="REST-1064",
        message_id="IA.PAYLOAD_CONTAINS_ERRORS",
        details=details,
    )


def not_found(resource: str) -> APIError:
    """404 REST-1019 for a resource path below ``/ia/api/v1`` (``/objects/...``)."""
    return APIError(
        404,
        "notFound",
        f"Requested resource {resource} was not found",
        error_id="REST-1019",
        message_id="IA.REQUESTED_RESOURCE_NOT_FOUND",
        placeholders={"RESOURCE": resource},
    )


GATEWAY_MESSAGES = {
    "GW-0001": "Unable to process request",
    "GW-0010": "API rate limit exceeded",
    "GW-0011": "Invalid Request",
    "GW-0012": "Missing Tenant Data",
    "GW-0014": "Invalid Content Type",
    "GW-0031": "Invalid Token",
    "GW-0032": "Invalid Token Payload",
    "GW-0033": "Invalid Token Endpoint",
    "GW-0034": "Invalid Authorization Header",
    "GW-0035": "Missing Token Payload",
    "GW-0036": "Missing User Name",
    "GW-0037": "Missing Client ID",
    "GW-0038": "Multiple Client IDs",
    "GW-0039": "Multiple Usernames",
    "GW-0040": "Expired token",
}


def gateway_error(
    status: int, code: str, description: str | None = None, headers: dict[str, str] | None = None
) -> Response:
    """A gateway error: ``{"ia::error": {"code": "GW-00xx", "message": …, "details":
    {"requestId": …}}}``. ``description`` (the emulator's explanation) goes in
    ``details.description``."""
    details: dict[str, Any] = {"requestId": request_id()}
    if description:
        details["description"] = description
    body = {"ia::error": {"code": code, "message": GATEWAY_MESSAGES[code], "details": details}}
    return json_response(body, status, headers)


def token_invalid_response() -> Response:
    """REST-2102 in the bare ``{"error": {...}}`` shape Intacct uses for it."""
    body = {
        "error": {
            "code": "tokenInvalid",
            "message": "Token is not valid",
            "errorId": "REST-2102",
            "additionalInfo": {
                "messageId": "IA.TOKEN_IS_INVALID",
                "placeholders": {},
                "propertySet": {},
            },
            "supportId": support_id(),
        }
    }
    return json_response(body, 401)


OAUTH_STATUS = {
    "invalid_request": 400,
    "invalid_grant": 400,
    "unsupported_grant_type": 400,
    "invalid_scope": 400,
    "unauthorized_client": 400,
    "invalid_client": 401,
}


class OAuthError(Exception):
    """A token-endpoint OAuth error (RFC 6749 section 5.2)."""

    def __init__(self, error: str, description: str, *, error_id: str | None = None) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.error_id = error_id


def oauth_error_response(error: OAuthError, style: str = "rfc") -> Response:
    status = OAUTH_STATUS.get(error.error, 400)
    headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="intacct"'
    if style == "intacct":
        ia_error: dict[str, Any] = {"code": error.error, "message": error.description}
        if error.error_id:
            ia_error["errorId"] = error.error_id
        ia_error["supportId"] = support_id()
        body: dict[str, Any] = {"ia::error": ia_error}
    else:
        body = {"error": error.error, "error_description": error.description}
        if error.error_id:
            body["error_description"] = f"{error.error_id}: {error.description}"
    return json_response(body, status, headers)
