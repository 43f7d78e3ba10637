"""Grant and token bookkeeping: create, mint, supersede and revoke grants (the REST API
checks access tokens against them), plus the constants and digests the endpoints share."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from typing import TYPE_CHECKING, Any

import jwt

from intacct_connect.testing.emulator.seed import DEMO_CLIENT_ID

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
