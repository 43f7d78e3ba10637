"""``POST /oauth2/revoke`` and ``/oauth2/introspect``, and access-token decoding for the
REST API."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jwt
from werkzeug.wrappers import Request, Response

from intacct_connect.testing.emulator.oauth.grants import ISSUER, digest, revoke_pool
from intacct_connect.testing.emulator.oauth.token_endpoint import (
    GatewayError,
    authenticate_client,
    client_credentials_of,
    parse_token_body,
    single,
)
from intacct_connect.testing.emulator.responses import (
    OAuthError,
    gateway_error,
    json_response,
    oauth_error_response,
)

if TYPE_CHECKING:
    from intacct_connect.testing.emulator.app import Emulator


def _grant_of_token(emu: Emulator, value: str) -> dict[str, Any] | None:
    data = emu.state.data
    record = data["refresh_tokens"].get(digest(value))
    if record:
        grant: dict[str, Any] | None = data["grants"].get(record["grant"])
        return grant
    claims = decode_access_token(emu, value, verify_exp=False)
    if claims:
        session = data["sessions"].get(claims.get("sessionId", ""))
        if session:
            found: dict[str, Any] | None = data["grants"].get(session["grant"])
            return found
    return None


def revoke(emu: Emulator, request: Request) -> Response:
    style = emu.state.config["error_style"]
    try:
        params = parse_token_body(request)
        client_id, secret = client_credentials_of(request, params)
        with emu.state.lock:
            app = authenticate_client(emu, client_id, secret, secret_required=True)
            value = single(params, "token")
            if not value:
                raise OAuthError("invalid_request", "token is missing")
            grant = _grant_of_token(emu, value)
            if grant is not None and grant["clientId"] == app["clientId"]:
                revoke_pool(emu, grant["company"], grant["user"])
        return json_response({"revoked": True}, 200, {"Cache-Control": "no-store"})
    except GatewayError as err:
        return gateway_error(err.status, err.code, err.description)
    except OAuthError as err:
        return oauth_error_response(err, style)


def introspect(emu: Emulator, request: Request) -> Response:
    style = emu.state.config["error_style"]
    try:
        params = parse_token_body(request)
        client_id, secret = client_credentials_of(request, params)
        with emu.state.lock:
            authenticate_client(emu, client_id, secret, secret_required=True)
            value = single(params, "token") or ""
            claims = decode_access_token(emu, value, verify_exp=False)
            session = (
                emu.state.data["sessions"].get(claims.get("sessionId", "")) if claims else None
            )
            grant = emu.state.data["grants"].get(session["grant"]) if session else None
            active = bool(
                claims
                and session
                and grant
                and grant["status"] == "active"
                and not session["expired"]
                and claims["exp"] > emu.state.now()
            )
            if not active or claims is None:
                return json_response({"active": False})
            return json_response(
                {
                    "active": True,
                    "token_type": "Bearer",
                    "client_id": claims["clientId"],
                    "user_id": claims["userId"],
                    "cny_id": claims["cnyId"],
                    "company_key": claims["cnyKey"],
                    "user_key": claims["userKey"],
                    "entity_id": claims.get("entityId"),
                    "entity_key": claims.get("entityKey"),
                    "exp": claims["exp"],
                    "iat": claims["iat"],
                }
            )
    except GatewayError as err:
        return gateway_error(err.status, err.code, err.description)
    except OAuthError as err:
        return oauth_error_response(err, style)


REQUIRED_CLAIMS = ("exp", "iat", "iss", "cnyId", "userId", "sessionId", "clientId")


def decode_access_token(
    emu: Emulator, value: str, *, verify_exp: bool = True
) -> dict[str, Any] | None:
    """Claims of a token this emulator signed, or None. Expiry is checked by the caller
    against the emulator clock."""
    try:
        claims: dict[str, Any] = jwt.decode(
            value,
            emu.public_key,
            algorithms=["RS256"],
            options={
                "verify_exp": False,
                "verify_aud": False,
                "verify_nbf": False,
                "verify_iat": False,
            },
            issuer=ISSUER,
        )
    except (jwt.PyJWTError, ValueError, TypeError):
        return None
    if any(claims.get(name) in (None, "") for name in REQUIRED_CLAIMS):
        return None
    return claims
