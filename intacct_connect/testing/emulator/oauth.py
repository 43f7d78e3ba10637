"""The emulated OAuth 2.0 authorization server: authorize pages, token, revoke, introspect,
discovery documents, and the grant/token bookkeeping the REST API checks tokens against."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlencode, urlsplit

import jwt
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Request, Response

from intacct_connect.testing.emulator.responses import (
    OAuthError,
    gateway_error,
    json_response,
    loads,
    oauth_error_response,
)

if TYPE_CHECKING:
    from intacct_connect.testing.emulator.app import Emulator

ISSUER = "https://api.intacct.com"
PENDING_TTL = 1800
SUPPORTED_GRANTS = ("authorization_code", "refresh_token", "client_credentials")
PKCE_RE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")


def digest(secret: str) -> str:
    """Tokens, codes and refresh tokens are stored by SHA-256 digest only."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def s256(verifier: str) -> str:
    raw = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


# --- grants and tokens ------------------------------------------------------------------
def find_company(emu: Emulator, company_id: str) -> dict[str, Any] | None:
    companies: dict[str, Any] = emu.state.data["companies"]
    company = companies.get(company_id)
    if company is None:
        lowered = company_id.lower()
        for candidate in companies.values():
            if candidate["id"].lower() == lowered:
                found: dict[str, Any] = candidate
                return found
    return company


def supersede(emu: Emulator, company: str, user: str, keep: str | None = None) -> None:
    """A new consent by ``user`` for ``company`` supersedes its earlier consent grants."""
    for grant in emu.state.data["grants"].values():
        if (
            grant["kind"] == "authorization_code"
            and grant["company"] == company
            and grant["user"] == user
            and grant["status"] == "active"
            and grant["id"] != keep
        ):
            grant["status"] = "superseded"


def create_grant(
    emu: Emulator,
    *,
    kind: str,
    client_id: str,
    company: str,
    user: str,
    entity: str | None,
    scope: str,
) -> dict[str, Any]:
    state = emu.state
    grant_id = "g" + secrets.token_hex(8)
    offline = kind == "authorization_code" and "offline_access" in scope.split()
    grant = {
        "id": grant_id,
        "kind": kind,
        "clientId": client_id,
        "company": company,
        "user": user,
        "entity": entity,
        "scope": scope,
        "offline": offline,
        "createdAt": state.now(),
        "status": "active",
    }
    if kind == "authorization_code" and state.config["supersede_grants"]:
        supersede(emu, company, user)
    state.data["grants"][grant_id] = grant
    state.dirty = True
    return grant


def mint_tokens(
    emu: Emulator, grant: dict[str, Any], *, entity: str | None = None, refresh: bool = True
) -> dict[str, Any]:
    """A token response for ``grant``: a new access token, and a refresh token when the
    grant is offline and ``refresh`` is true. Call with the state lock held."""
    state = emu.state
    now = int(state.now())
    ttl = int(state.config["access_token_ttl"])
    company = state.data["companies"][grant["company"]]
    user = company["users"].get(grant["user"], {"key": "0"})
    entity_id = entity if entity is not None else grant["entity"]
    session_id = secrets.token_urlsafe(24)
    claims = {
        "iss": ISSUER,
        "aud": grant["clientId"],
        "sub": f"{grant['user']}@{grant['company']}",
        "iat": now,
        "nbf": now,
        "exp": now + ttl,
        "jti": secrets.token_hex(12),
        "clientId": grant["clientId"],
        "cnyId": grant["company"],
        "cnyKey": company["key"],
        "userId": grant["user"],
        "userKey": user["key"],
        "entityId": entity_id or None,
        "entityKey": company["entities"][entity_id]["key"] if entity_id else None,
        "sessionId": session_id,
    }
    token = jwt.encode(claims, emu.private_key, algorithm="RS256", headers={"kid": emu.kid})
    state.data["sessions"][session_id] = {
        "grant": grant["id"],
        "entity": entity_id,
        "exp": now + ttl,
        "expired": False,
    }
    body: dict[str, Any] = {"token_type": "Bearer", "access_token": token, "expires_in": ttl}
    if grant["offline"] and refresh:
        refresh_token = secrets.token_urlsafe(48)
        state.data["refresh_tokens"][digest(refresh_token)] = {
            "grant": grant["id"],
            "used": False,
            "createdAt": now,
        }
        body["refresh_token"] = refresh_token
    state.dirty = True
    return body


def revoke_pool(emu: Emulator, company: str, user: str | None = None) -> int:
    """Revoke every grant (and so every token) of ``user`` in ``company`` (all users
    when ``user`` is None). Returns how many grants were revoked."""
    revoked = 0
    for grant in emu.state.data["grants"].values():
        if grant["company"] == company and (user is None or grant["user"] == user):
            if grant["status"] == "active":
                revoked += 1
            grant["status"] = "revoked"
    emu.state.dirty = True
    return revoked


def issue_tokens(
    emu: Emulator,
    company_id: str,
    user_id: str,
    *,
    entity: str | None = None,
    offline: bool = True,
    client_id: str | None = None,
) -> dict[str, Any]:
    """Mint an authorization-code grant without the browser (for client tests)."""
    from intacct_connect.testing.emulator.seed import DEMO_CLIENT_ID

    with emu.state.lock:
        company = find_company(emu, company_id)
        if company is None:
            raise ValueError(f"Unknown company {company_id!r}")
        if user_id not in company["users"]:
            raise ValueError(f"Unknown user {user_id!r} in {company['id']}")
        if entity and entity not in company["entities"]:
            raise ValueError(f"Unknown entity {entity!r} in {company['id']}")
        client = client_id or DEMO_CLIENT_ID
        if client not in emu.state.data["applications"]:
            raise ValueError(f"Unknown client {client!r}")
        grant = create_grant(
            emu,
            kind="authorization_code",
            client_id=client,
            company=company["id"],
            user=user_id,
            entity=entity or None,
            scope="offline_access" if offline else "",
        )
        return mint_tokens(emu, grant)


# --- HTML pages ---------------------------------------------------------------------------
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} - Sage Intacct (emulator)</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="{favicon}">
<style>body{{font-family:sans-serif;max-width:32em;margin:3em auto}}label{{display:block;
margin:.6em 0}}.error{{color:#b00}}.note{{background:#ffd;padding:.5em}}</style></head>
<body><p><strong>Sage Intacct emulator</strong> (local test server, not Sage Intacct)</p>
<h1>{title}</h1>{body}</body></html>"""


# An inline icon: browsers then never ask for /favicon.ico (a 404 in their console).
FAVICON = (
    "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E"
    "%3Crect width='16' height='16' rx='3' fill='%2300a65a'/%3E%3C/svg%3E"
)


def page(title: str, body: str, status: int = 200) -> Response:
    text = PAGE.format(title=html.escape(title), body=body, favicon=FAVICON)
    return Response(
        text,
        status=status,
        mimetype="text/html",
        headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"},
    )


def error_page(message: str) -> Response:
    return page("Authorization error", f'<p class="error">{html.escape(message)}</p>', 400)


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def signin_page(
    pending_id: str, app_name: str, error: str = "", company_id: str = "", user_id: str = ""
) -> Response:
    body = f"""<p>Sign in to Sage Intacct to connect <strong>{esc(app_name)}</strong>.</p>
{f'<p class="error">{esc(error)}</p>' if error else ""}
<form method="post" action="/ia/api/v1/oauth2/signin">
<input type="hidden" name="request_id" value="{esc(pending_id)}">
<label>Company ID <input name="company_id" value="{esc(company_id)}" required></label>
<label>User ID <input name="user_id" value="{esc(user_id)}" required></label>
<label>Password <input name="password" type="password" required></label>
<label>Entity (optional; multi-entity companies, also offered on the next page)
<input name="entity" value=""></label>
<button type="submit" name="sign_in" value="1">Sign in</button>
</form>"""
    return page("Sign in", body, 200)


def consent_page(emu: Emulator, pending: dict[str, Any], error: str = "") -> Response:
    data = emu.state.data
    app = data["applications"][pending["clientId"]]
    company = data["companies"][pending["company"]]
    user = company["users"][pending["user"]]
    notes = []
    if app["senderId"] not in company["senders"]:
        if user["admin"]:
            notes.append(
                f"Sender ID <strong>{esc(app['senderId'])}</strong> is not yet authorized for "
                f"{esc(company['id'])}; approving as a company administrator authorizes it."
            )
        else:
            notes.append(
                f"Sender ID <strong>{esc(app['senderId'])}</strong> is not authorized for "
                f"{esc(company['id'])}; only a company administrator can approve it."
            )
    entity_field = ""
    if company["multiEntity"]:
        chosen = pending.get("entity") or ""
        options = ['<option value="">Top level</option>'] + [
            f'<option value="{esc(e)}"{" selected" if e == chosen else ""}>'
            f"{esc(e)} - {esc(info['name'])}</option>"
            for e, info in company["entities"].items()
        ]
        entity_field = f'<label>Entity <select name="entity">{"".join(options)}</select></label>'
    scope = pending["scope"] or "(none)"
    body = f"""{f'<p class="error">{esc(error)}</p>' if error else ""}
<p><strong>{esc(app["name"])}</strong> ({esc(app["clientId"])}) asks to access company
<strong>{esc(company["id"])}</strong> as <strong>{esc(user["id"])}</strong>
with the same permissions as you. Scope: {esc(scope)}.</p>
{"".join(f'<p class="note">{n}</p>' for n in notes)}
<form method="post" action="/ia/api/v1/oauth2/consent">
<input type="hidden" name="request_id" value="{esc(pending["id"])}">
{entity_field}
<button type="submit" name="approve" value="1">Accept</button>
<button type="submit" name="deny" value="1">Deny</button>
</form>"""
    return page("Authorize application", body, 200)


def redirect(uri: str, params: dict[str, str]) -> Response:
    separator = "&" if urlsplit(uri).query else "?"
    location = f"{uri}{separator}{urlencode(params)}"
    return Response("", status=302, headers={"Location": location, "Cache-Control": "no-store"})


def error_redirect(pending: dict[str, Any], error: str, description: str = "") -> Response:
    params = {"error": error}
    if description:
        params["error_description"] = description
    if pending.get("state") is not None:
        params["state"] = pending["state"]
    return redirect(pending["redirectUri"], params)


# --- authorize ----------------------------------------------------------------------------
def authorize(emu: Emulator, request: Request) -> Response:
    args = request.args
    for name in (
        "client_id",
        "redirect_uri",
        "response_type",
        "state",
        "scope",
        "code_challenge",
        "code_challenge_method",
    ):
        if len(args.getlist(name)) > 1:
            return error_page(f"The parameter {name} is repeated.")
    client_id = args.get("client_id", "")
    redirect_uri = args.get("redirect_uri", "")
    with emu.state.lock:
        app = emu.state.data["applications"].get(client_id)
        if app is None:
            return error_page("Unknown client_id: this application is not registered.")
        if not redirect_uri:
            return error_page("The redirect_uri parameter is required.")
        if redirect_uri not in app["redirectUris"]:
            return error_page(
                "The redirect_uri does not exactly match a redirect URI registered for "
                "this application."
            )
        pending: dict[str, Any] = {
            "id": secrets.token_urlsafe(24),
            "clientId": client_id,
            "redirectUri": redirect_uri,
            "state": args.get("state"),
            "scope": args.get("scope", ""),
            "createdAt": emu.state.now(),
        }
        response_type = args.get("response_type")
        if response_type != "code":
            return error_redirect(
                pending,
                "unsupported_response_type" if response_type else "invalid_request",
                "response_type must be 'code'",
            )
        challenge = args.get("code_challenge")
        method = args.get("code_challenge_method")
        if method is not None and challenge is None:
            return error_redirect(pending, "invalid_request", "code_challenge is missing")
        if challenge is not None:
            if (method or "plain") != "S256":
                return error_redirect(
                    pending, "invalid_request", "code_challenge_method must be S256"
                )
            if not re.fullmatch(r"[A-Za-z0-9_-]{43}", challenge):
                return error_redirect(pending, "invalid_request", "invalid code_challenge")
        pending["challenge"] = challenge
        _expire_pending(emu)
        emu.state.data["pending"][pending["id"]] = pending
        emu.state.dirty = True
        return signin_page(pending["id"], app["name"])


def _expire_pending(emu: Emulator) -> None:
    now = emu.state.now()
    data = emu.state.data
    for key in [k for k, v in data["pending"].items() if now - v["createdAt"] > PENDING_TTL]:
        del data["pending"][key]
    for key in [k for k, v in data["codes"].items() if now - v["createdAt"] > 3600]:
        del data["codes"][key]


def _pending(emu: Emulator, request: Request) -> dict[str, Any] | None:
    pending_id = request.form.get("request_id", "")
    pending: dict[str, Any] | None = emu.state.data["pending"].get(pending_id)
    if pending is None or emu.state.now() - pending["createdAt"] > PENDING_TTL:
        return None
    return pending


def signin(emu: Emulator, request: Request) -> Response:
    with emu.state.lock:
        pending = _pending(emu, request)
        if pending is None:
            return error_page("This sign-in request is unknown or has expired; start again.")
        app = emu.state.data["applications"][pending["clientId"]]
        company_id = request.form.get("company_id", "").strip()
        user_id = request.form.get("user_id", "").strip()
        password = request.form.get("password", "")
        company = find_company(emu, company_id) if company_id else None
        user = company["users"].get(user_id) if company else None
        if (
            company is None
            or not company["active"]
            or user is None
            or not secrets.compare_digest(user["password"].encode(), password.encode())
        ):
            return signin_page(
                pending["id"],
                app["name"],
                "Invalid company ID, user ID or password.",
                company_id,
                user_id,
            )
        if user.get("webServices") and not user.get("admin"):
            return signin_page(
                pending["id"],
                app["name"],
                "Web Services users cannot sign in to the UI.",
                company_id,
                user_id,
            )
        entity = request.form.get("entity", "").strip() or None
        if entity is not None and entity not in company["entities"]:
            return signin_page(
                pending["id"], app["name"], f"Unknown entity {entity}.", company_id, user_id
            )
        pending["company"] = company["id"]
        pending["user"] = user_id
        pending["entity"] = entity
        emu.state.dirty = True
        return consent_page(emu, pending)


def consent(emu: Emulator, request: Request) -> Response:
    with emu.state.lock:
        pending = _pending(emu, request)
        if pending is None or "company" not in pending:
            return error_page("This authorization request is unknown or has expired.")
        del emu.state.data["pending"][pending["id"]]
        emu.state.dirty = True
        if "approve" not in request.form:
            return error_redirect(pending, "access_denied", "The user denied the request")
        company = emu.state.data["companies"][pending["company"]]
        if company["multiEntity"] and "entity" in request.form:
            entity = request.form.get("entity", "").strip() or None
            if entity is not None and entity not in company["entities"]:
                return error_redirect(pending, "invalid_request", f"Unknown entity {entity}")
            pending["entity"] = entity
        app = emu.state.data["applications"][pending["clientId"]]
        user = company["users"][pending["user"]]
        if app["senderId"] not in company["senders"]:
            if not user["admin"]:
                return error_redirect(
                    pending,
                    "access_denied",
                    f"Sender ID {app['senderId']} is not authorized for company "
                    f"{company['id']}: a company administrator must approve the application "
                    "(or add the sender ID under Web Services authorizations).",
                )
            company["senders"].append(app["senderId"])
        code = secrets.token_urlsafe(32)
        emu.state.data["codes"][digest(code)] = {
            "clientId": pending["clientId"],
            "redirectUri": pending["redirectUri"],
            "challenge": pending.get("challenge"),
            "company": pending["company"],
            "user": pending["user"],
            "entity": pending.get("entity"),
            "scope": pending["scope"],
            "createdAt": emu.state.now(),
            "used": False,
            "grant": None,
        }
        params = {"code": code}
        if pending.get("state") is not None:
            params["state"] = pending["state"]
        return redirect(pending["redirectUri"], params)


# --- token endpoint -------------------------------------------------------------------
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


# --- revoke and introspect ---------------------------------------------------------
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


# --- discovery -----------------------------------------------------------------------
def openid_configuration(emu: Emulator, request: Request) -> Response:
    root = request.host_url.rstrip("/")
    return json_response(
        {
            "issuer": ISSUER,
            "authorization_endpoint": f"{root}/ia/authorize",
            "token_endpoint": f"{root}/ia/api/v1/oauth2/token",
            "jwks_uri": f"{root}/.well-known/jwks.json",
            "scopes_supported": ["openid", "offline_access", "sage/ai-agents", "token-exchange"],
            "response_types_supported": ["code", "token", "id_token"],
            "subject_types_supported": ["public"],
            "grant_types_supported": [
                "authorization_code",
                "client_credentials",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ],
            "token_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
                "private_key_jwt",
            ],
            "token_endpoint_auth_signing_alg_values_supported": ["RS256"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "claims_supported": [
                "aud",
                "exp",
                "iat",
                "iss",
                "sub",
                "agentId",
                "clientId",
                "cnyId",
                "cnyKey",
                "userId",
                "userKey",
                "entityId",
                "sessionId",
                "oid",
                "aiEnabled",
            ],
            "request_uri_parameter_supported": False,
            "request_parameter_supported": False,
        }
    )


def jwks(emu: Emulator, request: Request) -> Response:
    return json_response({"keys": [emu.public_jwk]})
