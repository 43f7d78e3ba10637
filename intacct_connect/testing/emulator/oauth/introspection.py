"""``POST /oauth2/revoke`` (RFC 7009: revokes the token's whole grant pool, as Intacct does)
and ``/oauth2/introspect`` (RFC 7662), both behind client authentication."""

from __future__ import annotations

from werkzeug.wrappers import Request, Response

from intacct_connect.testing.emulator.oauth.grants import digest, revoke_pool
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
from intacct_connect.testing.emulator.signing import Signer
from intacct_connect.testing.emulator.state import State
from intacct_connect.testing.emulator.store import Grant, Store


def _grant_of_token(store: Store, signer: Signer, value: str) -> Grant | None:
    """The grant of a refresh token or of an access token (expired or not)."""
    record = store.refresh_token(digest(value))
    if record:
        return store.grant(record.grant)
    claims = signer.decode(value)
    if claims:
        return store.grant_of_session(store.session(claims.get("sessionId", "")))
    return None


def revoke(state: State, signer: Signer, request: Request) -> Response:
    style = state.config.error_style
    try:
        params = parse_token_body(request)
        client_id, secret = client_credentials_of(request, params)
        with state.transaction() as store:
            app = authenticate_client(store, client_id, secret, secret_required=True)
            value = single(params, "token")
            if not value:
                raise OAuthError("invalid_request", "token is missing")
            grant = _grant_of_token(store, signer, value)
            if grant is not None and grant.client_id == app.client_id:
                revoke_pool(store, grant.company, grant.user)
        return json_response({"revoked": True}, 200, {"Cache-Control": "no-store"})
    except GatewayError as err:
        return gateway_error(err.status, err.code, err.description)
    except OAuthError as err:
        return oauth_error_response(err, style)


def introspect(state: State, signer: Signer, request: Request) -> Response:
    style = state.config.error_style
    try:
        params = parse_token_body(request)
        client_id, secret = client_credentials_of(request, params)
        with state.read() as store:
            authenticate_client(store, client_id, secret, secret_required=True)
            claims = signer.decode(single(params, "token") or "")
            session = store.session(claims.get("sessionId", "")) if claims else None
            grant = store.grant_of_session(session)
            active = bool(
                claims
                and session
                and grant
                and grant.active
                and not session.expired
                and claims["exp"] > store.now()
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
