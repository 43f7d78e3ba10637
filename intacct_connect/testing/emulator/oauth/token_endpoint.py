"""``POST /oauth2/token``: request parsing, client authentication, one function per grant
type."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Request, Response

from intacct_connect.testing.emulator.oauth.grants import (
    PKCE_RE,
    SUPPORTED_GRANTS,
    create_grant,
    digest,
    find_company,
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

if TYPE_CHECKING:
    from intacct_connect.testing.emulator.app import Emulator


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
    emu: Emulator, client_id: str, secret: str | None, *, secret_required: bool
) -> dict[str, Any]:
    app: dict[str, Any] | None = emu.state.data["applications"].get(client_id)
    if app is None:
        raise OAuthError(
            "invalid_client",
            "The Client ID, Client Secret, and/or 3rd Party Application are incorrect",
            error_id="REST-1216",
        )
    if secret is None:
        if secret_required:
            raise OAuthError("invalid_client", "Client authentication is required")
        return app
    if not secrets.compare_digest(secret.encode(), app["clientSecret"].encode()):
        raise OAuthError(
            "invalid_client",
            "The Client ID, Client Secret, and/or 3rd Party Application are incorrect",
            error_id="REST-1216",
        )
    return app


def check_scope(app: dict[str, Any], company: dict[str, Any]) -> None:
    """Production keys work only with production companies, non-production keys only
    with sandbox/implementation companies: a mismatch fails like a wrong key."""
    if app["scope"] != company["type"]:
        raise OAuthError(
            "invalid_client",
            "The Client ID, Client Secret, and/or 3rd Party Application are incorrect "
            f"({app['scope']} API keys cannot be used with {company['type']} company "
            f"{company['id']})",
            error_id="REST-1216",
        )


def single(params: MultiDict[str, str], name: str) -> str | None:
    values = params.getlist(name)
    if len(values) > 1:
        raise OAuthError("invalid_request", f"The parameter {name} is repeated")
    return values[0] if values else None


def token_company_hint(emu: Emulator, grant_type: str, params: MultiDict[str, str]) -> str | None:
    """The company a token request is about (for per-company faults and counters)."""
    data = emu.state.data
    if grant_type == "authorization_code":
        code = data["codes"].get(digest(params.get("code", "")))
        return code["company"] if code else None
    if grant_type == "refresh_token":
        record = data["refresh_tokens"].get(digest(params.get("refresh_token", "")))
        if record:
            grant = data["grants"].get(record["grant"])
            return grant["company"] if grant else None
        return None
    if grant_type == "client_credentials":
        username = params.get("username", "")
        if "@" in username:
            company_id = username.split("@", 1)[1].split("|", 1)[0]
            company = find_company(emu, company_id)
            return company["id"] if company else company_id
    return None


def token(
    emu: Emulator,
    request: Request,
    prepared: tuple[str, MultiDict[str, str], str | None] | None = None,
) -> Response:
    """``POST /oauth2/token``. Faults are applied by the caller (app.py) around this."""
    style = emu.state.config["error_style"]
    try:
        return json_response(
            handle_token(emu, request, prepared),
            200,
            {"Cache-Control": "no-store", "Pragma": "no-cache"},
        )
    except GatewayError as err:
        return gateway_error(err.status, err.code, err.description)
    except OAuthError as err:
        return oauth_error_response(err, style)


def prepare_token_request(
    emu: Emulator, request: Request
) -> tuple[str, MultiDict[str, str], str | None]:
    """Parse a token request: (grant_type, params, company hint). Raises GatewayError."""
    params = parse_token_body(request)
    grant_types = params.getlist("grant_type")
    if len(grant_types) > 1:
        raise GatewayError(400, "GW-0032", "grant_type is repeated.")
    grant_type = grant_types[0] if grant_types else ""
    if not grant_type:
        raise GatewayError(400, "GW-0032", "grant_type is missing.")
    with emu.state.lock:
        hint = token_company_hint(emu, grant_type, params)
    return grant_type, params, hint


def handle_token(
    emu: Emulator,
    request: Request,
    prepared: tuple[str, MultiDict[str, str], str | None] | None = None,
) -> dict[str, Any]:
    grant_type, params, _hint = prepared or prepare_token_request(emu, request)
    state = emu.state
    if grant_type not in SUPPORTED_GRANTS:
        raise OAuthError("unsupported_grant_type", f"Unsupported grant_type {grant_type!r}")
    if grant_type == "client_credentials":
        usernames = params.getlist("username")
        if len(usernames) > 1:
            raise GatewayError(400, "GW-0039", "username is repeated.")
    client_id, secret = client_credentials_of(request, params)
    with state.lock:
        if grant_type == "authorization_code":
            return _authorization_code(emu, params, client_id, secret)
        if grant_type == "refresh_token":
            return _refresh(emu, params, client_id, secret)
        return _client_credentials(emu, params, client_id, secret)


def _authorization_code(
    emu: Emulator, params: MultiDict[str, str], client_id: str, secret: str | None
) -> dict[str, Any]:
    state = emu.state
    code_value = single(params, "code")
    verifier = single(params, "code_verifier")
    redirect_uri = single(params, "redirect_uri")
    app = authenticate_client(emu, client_id, secret, secret_required=verifier is None)
    if not code_value:
        raise OAuthError("invalid_request", "code is missing")
    code = state.data["codes"].get(digest(code_value))
    if code is None:
        raise OAuthError("invalid_grant", "The authorization code is invalid")
    if code["used"]:
        # RFC 6749 section 4.1.2: a replayed code revokes what it issued.
        if code["grant"]:
            grant = state.data["grants"].get(code["grant"])
            if grant:
                grant["status"] = "revoked"
        state.dirty = True
        raise OAuthError("invalid_grant", "The authorization code has already been used")
    if state.now() - code["createdAt"] > float(state.config["code_ttl"]):
        raise OAuthError("invalid_grant", "The authorization code has expired")
    if code["clientId"] != app["clientId"]:
        raise OAuthError("invalid_grant", "The authorization code was issued to another client")
    if redirect_uri != code["redirectUri"]:
        raise OAuthError("invalid_grant", "redirect_uri does not match the authorization request")
    if code["challenge"]:
        if not verifier:
            raise OAuthError("invalid_grant", "code_verifier is required (PKCE)")
        if not PKCE_RE.match(verifier) or not secrets.compare_digest(
            s256(verifier), code["challenge"]
        ):
            raise OAuthError("invalid_grant", "code_verifier does not match the code_challenge")
    elif verifier:
        raise OAuthError("invalid_grant", "code_verifier given but no code_challenge was sent")
    company = state.data["companies"][code["company"]]
    check_scope(app, company)
    code["used"] = True
    grant = create_grant(
        emu,
        kind="authorization_code",
        client_id=app["clientId"],
        company=code["company"],
        user=code["user"],
        entity=code["entity"],
        scope=code["scope"],
    )
    code["grant"] = grant["id"]
    return mint_tokens(emu, grant)


def _refresh(
    emu: Emulator, params: MultiDict[str, str], client_id: str, secret: str | None
) -> dict[str, Any]:
    state = emu.state
    app = authenticate_client(emu, client_id, secret, secret_required=True)
    value = single(params, "refresh_token")
    entity = single(params, "entity_id")
    if not value:
        raise OAuthError("invalid_request", "refresh_token is missing")
    record = state.data["refresh_tokens"].get(digest(value))
    if record is None:
        raise OAuthError("invalid_grant", "The refresh token is invalid")
    grant = state.data["grants"].get(record["grant"])
    if grant is None or grant["clientId"] != app["clientId"]:
        raise OAuthError("invalid_grant", "The refresh token is invalid")
    if grant["status"] != "active":
        raise OAuthError("invalid_grant", f"The refresh token's grant was {grant['status']}")
    mode = state.config["refresh_mode"]
    if record["used"]:
        if mode == "reuse_detection":
            grant["status"] = "revoked"
            state.dirty = True
            raise OAuthError(
                "invalid_grant",
                "The refresh token was already used; the grant has been revoked",
            )
        raise OAuthError("invalid_grant", "The refresh token was already used")
    company = state.data["companies"][grant["company"]]
    check_scope(app, company)
    if entity and entity not in company["entities"]:
        raise OAuthError("invalid_request", f"Unknown entity_id {entity!r}")
    if mode == "none":
        body = mint_tokens(emu, grant, entity=entity or None, refresh=False)
        body["refresh_token"] = value
        return body
    record["used"] = True
    return mint_tokens(emu, grant, entity=entity or None)


def _client_credentials(
    emu: Emulator, params: MultiDict[str, str], client_id: str, secret: str | None
) -> dict[str, Any]:
    state = emu.state
    username = params.get("username")
    session_id = params.get("session_id")
    if username is None and session_id is None:
        raise GatewayError(400, "GW-0036", "username is missing.")
    if username is not None and not username.strip():
        raise GatewayError(400, "GW-0036", "username is empty.")
    app = authenticate_client(emu, client_id, secret, secret_required=True)
    if username is None:
        # session_id: an API session (an access token's sessionId) of this company.
        session = state.data["sessions"].get(session_id or "")
        grant = state.data["grants"].get(session["grant"]) if session else None
        if grant is None or grant["status"] != "active":
            raise OAuthError("invalid_grant", "The session_id is not valid")
        company_id, user_id, entity = grant["company"], grant["user"], session["entity"]
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
    company = find_company(emu, company_id)
    if company is None or not company["active"]:
        raise GatewayError(400, "GW-0011", f"Company {company_id} is unknown or inactive.")
    check_scope(app, company)
    users = company["authorizedClients"].get(app["clientId"], [])
    if user_id not in users:
        raise OAuthError(
            "invalid_client",
            "The Client ID, Client Secret, and/or 3rd Party Application are incorrect "
            f"(the client is not an authorized client application of {company['id']} "
            f"for user {user_id})",
            error_id="REST-1216",
        )
    if user_id not in company["users"]:
        raise OAuthError("invalid_grant", f"Unknown user {user_id}")
    if entity is not None and entity not in company["entities"]:
        raise OAuthError("invalid_grant", f"Unknown entity {entity}")
    grant = create_grant(
        emu,
        kind="client_credentials",
        client_id=app["clientId"],
        company=company["id"],
        user=user_id,
        entity=entity,
        scope="",
    )
    return mint_tokens(emu, grant, refresh=False)
