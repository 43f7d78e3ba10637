"""``POST /oauth2/token``: request parsing, client authentication, one function per grant
type. A grant runs in one ``state.transaction()``: the code or refresh token it checks is the
one it marks used."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import unquote

from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Request, Response

from intacct_connect.testing.emulator.oauth.grants import (
    PKCE_RE,
    SUPPORTED_GRANTS,
    create_grant,
    digest,
    mint_tokens,
    s256,
)
from intacct_connect.testing.emulator.responses import (
    OAuthError,
    gateway_error,
    json_response,
    loads,
    oauth_error_response,
)
from intacct_connect.testing.emulator.signing import Signer
from intacct_connect.testing.emulator.state import State
from intacct_connect.testing.emulator.store import Application, Company, Store

#: (grant_type, parameters, the company the request is about) of a parsed request.
Prepared = tuple[str, MultiDict[str, str], str | None]
INCORRECT_CLIENT = "The Client ID, Client Secret, and/or 3rd Party Application are incorrect"


class GatewayError(Exception):
    def __init__(self, status: int, code: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.code = code
        self.description = description


def parse_token_body(request: Request) -> MultiDict[str, str]:
    """Form or JSON body as a MultiDict (form keeps repeated parameters)."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise GatewayError(400, "GW-0035", "The token request has no payload.")
    mimetype = request.mimetype
    if mimetype == "application/x-www-form-urlencoded":
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise GatewayError(400, "GW-0032", "The payload is not valid UTF-8.") from err
        form: MultiDict[str, str] = request.form
        if not form:
            raise GatewayError(400, "GW-0032", "The payload is not key/value pairs.")
        return form
    if mimetype == "application/json":
        try:
            value = loads(raw)
        except ValueError as err:
            raise GatewayError(400, "GW-0032", "The JSON payload cannot be parsed.") from err
        if not isinstance(value, dict):
            raise GatewayError(400, "GW-0032", "The JSON payload must be an object.")
        result: MultiDict[str, str] = MultiDict()
        for key, item in value.items():
            if isinstance(item, bool) or not isinstance(item, str | int | float):
                raise GatewayError(400, "GW-0032", f"The value of {key!r} must be a string.")
            result.add(key, str(item))
        return result
    raise GatewayError(
        400,
        "GW-0032",
        "Unsupported content type: send application/x-www-form-urlencoded or application/json.",
    )


def client_credentials_of(request: Request, params: MultiDict[str, str]) -> tuple[str, str | None]:
    """(client_id, client_secret or None) from HTTP Basic or the body."""
    ids = params.getlist("client_id")
    secrets_in_body = params.getlist("client_secret")
    if len(ids) > 1:
        raise GatewayError(400, "GW-0038", "client_id is repeated.")
    if len(secrets_in_body) > 1:
        raise OAuthError("invalid_request", "client_secret is repeated")
    basic = request.authorization
    header = request.headers.get("Authorization")
    if header is not None and (basic is None or basic.type != "basic"):
        raise OAuthError("invalid_client", "The Authorization header is not valid HTTP Basic")
    if basic is not None:
        basic_id = unquote((basic.username or "").replace("+", " "))
        basic_secret = unquote((basic.password or "").replace("+", " "))
        if ids and ids[0] != basic_id:
            raise GatewayError(400, "GW-0038", "client_id differs between header and body.")
        if secrets_in_body:
            raise OAuthError(
                "invalid_request", "Use one client authentication method (Basic or body)"
            )
        if not basic_id:
            raise GatewayError(400, "GW-0037", "client_id is missing.")
        return basic_id, basic_secret
    if not ids or not ids[0]:
        raise GatewayError(400, "GW-0037", "client_id is missing.")
    return ids[0], (secrets_in_body[0] if secrets_in_body else None)


def authenticate_client(
    store: Store, client_id: str, secret: str | None, *, secret_required: bool
) -> Application:
    app = store.application(client_id)
    if app is None:
        raise OAuthError("invalid_client", INCORRECT_CLIENT, error_id="REST-1216")
    if secret is None:
        if secret_required:
            raise OAuthError("invalid_client", "Client authentication is required")
        return app
    if not secrets.compare_digest(secret.encode(), app.client_secret.encode()):
        raise OAuthError("invalid_client", INCORRECT_CLIENT, error_id="REST-1216")
    return app


def check_scope(app: Application, company: Company) -> None:
    """Production keys work only with production companies, non-production keys only
    with sandbox/implementation companies: a mismatch fails like a wrong key."""
    if app.scope != company.type:
        raise OAuthError(
            "invalid_client",
            f"{INCORRECT_CLIENT} ({app.scope} API keys cannot be used with {company.type} "
            f"company {company.id})",
            error_id="REST-1216",
        )


def single(params: MultiDict[str, str], name: str) -> str | None:
    values = params.getlist(name)
    if len(values) > 1:
        raise OAuthError("invalid_request", f"The parameter {name} is repeated")
    return values[0] if values else None


def token_company_hint(store: Store, grant_type: str, params: MultiDict[str, str]) -> str | None:
    """The company a token request is about (for per-company faults and counters)."""
    if grant_type == "authorization_code":
        code = store.code(digest(params.get("code", "")))
        return code.company if code else None
    if grant_type == "refresh_token":
        record = store.refresh_token(digest(params.get("refresh_token", "")))
        if record:
            grant = store.grant(record.grant)
            return grant.company if grant else None
        return None
    if grant_type == "client_credentials":
        username = params.get("username", "")
        if "@" in username:
            company_id = username.split("@", 1)[1].split("|", 1)[0]
            company = store.find_company(company_id)
            return company.id if company else company_id
    return None


def token(
    state: State, signer: Signer, request: Request, prepared: Prepared | None = None
) -> Response:
    """``POST /oauth2/token``. Faults are applied by the caller (app.py) around this."""
    style = state.config.error_style
    try:
        return json_response(
            handle_token(state, signer, request, prepared),
            200,
            {"Cache-Control": "no-store", "Pragma": "no-cache"},
        )
    except GatewayError as err:
        return gateway_error(err.status, err.code, err.description)
    except OAuthError as err:
        return oauth_error_response(err, style)


def prepare_token_request(state: State, request: Request) -> Prepared:
    """Parse a token request: (grant_type, params, company hint). Raises GatewayError."""
    params = parse_token_body(request)
    grant_types = params.getlist("grant_type")
    if len(grant_types) > 1:
        raise GatewayError(400, "GW-0032", "grant_type is repeated.")
    grant_type = grant_types[0] if grant_types else ""
    if not grant_type:
        raise GatewayError(400, "GW-0032", "grant_type is missing.")
    with state.read() as store:
        hint = token_company_hint(store, grant_type, params)
    return grant_type, params, hint


def handle_token(
    state: State, signer: Signer, request: Request, prepared: Prepared | None = None
) -> dict[str, Any]:
    grant_type, params, _hint = prepared or prepare_token_request(state, request)
    if grant_type not in SUPPORTED_GRANTS:
        raise OAuthError("unsupported_grant_type", f"Unsupported grant_type {grant_type!r}")
    if grant_type == "client_credentials":
        usernames = params.getlist("username")
        if len(usernames) > 1:
            raise GatewayError(400, "GW-0039", "username is repeated.")
    client_id, secret = client_credentials_of(request, params)
    with state.transaction() as store:
        if grant_type == "authorization_code":
            return _authorization_code(store, signer, params, client_id, secret)
        if grant_type == "refresh_token":
            return _refresh(store, signer, params, client_id, secret)
        return _client_credentials(store, signer, params, client_id, secret)


def _authorization_code(
    store: Store, signer: Signer, params: MultiDict[str, str], client_id: str, secret: str | None
) -> dict[str, Any]:
    code_value = single(params, "code")
    verifier = single(params, "code_verifier")
    redirect_uri = single(params, "redirect_uri")
    app = authenticate_client(store, client_id, secret, secret_required=verifier is None)
    if not code_value:
        raise OAuthError("invalid_request", "code is missing")
    code = store.code(digest(code_value))
    if code is None:
        raise OAuthError("invalid_grant", "The authorization code is invalid")
    if code.used:
        # RFC 6749 section 4.1.2: a replayed code revokes what it issued.
        replayed = store.grant(code.grant)
        if replayed:
            replayed.status = "revoked"
        raise OAuthError("invalid_grant", "The authorization code has already been used")
    if store.now() - code.created_at > float(store.config.code_ttl):
        raise OAuthError("invalid_grant", "The authorization code has expired")
    if code.client_id != app.client_id:
        raise OAuthError("invalid_grant", "The authorization code was issued to another client")
    if redirect_uri != code.redirect_uri:
        raise OAuthError("invalid_grant", "redirect_uri does not match the authorization request")
    if code.challenge:
        if not verifier:
            raise OAuthError("invalid_grant", "code_verifier is required (PKCE)")
        if not PKCE_RE.match(verifier) or not secrets.compare_digest(
            s256(verifier), code.challenge
        ):
            raise OAuthError("invalid_grant", "code_verifier does not match the code_challenge")
    elif verifier:
        raise OAuthError("invalid_grant", "code_verifier given but no code_challenge was sent")
    check_scope(app, store.companies[code.company])
    code.used = True
    grant = create_grant(
        store,
        kind="authorization_code",
        client_id=app.client_id,
        company=code.company,
        user=code.user,
        entity=code.entity,
        scope=code.scope,
    )
    code.grant = grant.id
    return mint_tokens(store, signer, grant)


def _refresh(
    store: Store, signer: Signer, params: MultiDict[str, str], client_id: str, secret: str | None
) -> dict[str, Any]:
    app = authenticate_client(store, client_id, secret, secret_required=True)
    value = single(params, "refresh_token")
    entity = single(params, "entity_id")
    if not value:
        raise OAuthError("invalid_request", "refresh_token is missing")
    record = store.refresh_token(digest(value))
    if record is None:
        raise OAuthError("invalid_grant", "The refresh token is invalid")
    grant = store.grant(record.grant)
    if grant is None or grant.client_id != app.client_id:
        raise OAuthError("invalid_grant", "The refresh token is invalid")
    if not grant.active:
        raise OAuthError("invalid_grant", f"The refresh token's grant was {grant.status}")
    mode = store.config.refresh_mode
    grace = float(store.config.refresh_grace_seconds)
    if record.used and grace and store.now() - record.used_at <= grace:
        # Grace period: the rotated-away token still works (its successor stays valid too).
        check_scope(app, store.companies[grant.company])
        return mint_tokens(store, signer, grant, entity=entity or None)
    if record.used:
        if mode == "reuse_detection":
            grant.status = "revoked"
            raise OAuthError(
                "invalid_grant",
                "The refresh token was already used; the grant has been revoked",
            )
        raise OAuthError("invalid_grant", "The refresh token was already used")
    company = store.companies[grant.company]
    check_scope(app, company)
    if entity and entity not in company.entities:
        raise OAuthError("invalid_request", f"Unknown entity_id {entity!r}")
    if mode == "none":
        body = mint_tokens(store, signer, grant, entity=entity or None, refresh=False)
        body["refresh_token"] = value
        return body
    record.used = True
    record.used_at = store.now()
    return mint_tokens(store, signer, grant, entity=entity or None)


def _client_credentials(
    store: Store, signer: Signer, params: MultiDict[str, str], client_id: str, secret: str | None
) -> dict[str, Any]:
    username = params.get("username")
    session_id = params.get("session_id")
    if username is None and session_id is None:
        raise GatewayError(400, "GW-0036", "username is missing.")
    if username is not None and not username.strip():
        raise GatewayError(400, "GW-0036", "username is empty.")
    app = authenticate_client(store, client_id, secret, secret_required=True)
    if username is None:
        # session_id: an API session (an access token's sessionId) of this company.
        session = store.session(session_id or "")
        grant = store.grant_of_session(session)
        if session is None or grant is None or not grant.active:
            raise OAuthError("invalid_grant", "The session_id is not valid")
        company_id, user_id, entity = grant.company, grant.user, session.entity
    else:
        if "@" not in username:
            raise GatewayError(
                400, "GW-0012", "username must be user@company or user@company|entity."
            )
        user_id, rest = username.split("@", 1)
        company_id, _, entity_part = rest.partition("|")
        entity = entity_part or None
        if not user_id or not company_id:
            raise GatewayError(400, "GW-0012", "username lacks the user or company part.")
    company = store.find_company(company_id)
    if company is None or not company.active:
        raise GatewayError(400, "GW-0011", f"Company {company_id} is unknown or inactive.")
    check_scope(app, company)
    if user_id not in company.authorized_clients.get(app.client_id, []):
        raise OAuthError(
            "invalid_client",
            f"{INCORRECT_CLIENT} (the client is not an authorized client application of "
            f"{company.id} for user {user_id})",
            error_id="REST-1216",
        )
    if user_id not in company.users:
        raise OAuthError("invalid_grant", f"Unknown user {user_id}")
    if entity is not None and entity not in company.entities:
        raise OAuthError("invalid_grant", f"Unknown entity {entity}")
    grant = create_grant(
        store,
        kind="client_credentials",
        client_id=app.client_id,
        company=company.id,
        user=user_id,
        entity=entity,
        scope="",
    )
    return mint_tokens(store, signer, grant, refresh=False)
