"""Grant and token bookkeeping: create, mint, supersede and revoke grants (the REST API
checks access tokens against them), plus the constants and digests the endpoints share.

Every function runs inside its caller's ``state.transaction()``.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from typing import Any

from intacct_connect.testing.emulator.signing import ISSUER, Signer
from intacct_connect.testing.emulator.store import Grant, RefreshToken, Session, Store

PENDING_TTL = 1800
SUPPORTED_GRANTS = ("authorization_code", "refresh_token", "client_credentials")
PKCE_RE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")


def digest(secret: str) -> str:
    """Tokens, codes and refresh tokens are stored by SHA-256 digest only."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def s256(verifier: str) -> str:
    raw = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def supersede(store: Store, company: str, user: str) -> None:
    """A new consent by ``user`` for ``company`` supersedes its earlier consent grants."""
    for grant in store.grants_of(company, user):
        if grant.kind == "authorization_code" and grant.active:
            grant.status = "superseded"


def create_grant(
    store: Store,
    *,
    kind: str,
    client_id: str,
    company: str,
    user: str,
    entity: str | None,
    scope: str,
) -> Grant:
    grant = Grant(
        id="g" + secrets.token_hex(8),
        kind=kind,
        client_id=client_id,
        company=company,
        user=user,
        entity=entity,
        scope=scope,
        offline=kind == "authorization_code" and "offline_access" in scope.split(),
        created_at=store.now(),
    )
    if kind == "authorization_code" and store.config.supersede_grants:
        supersede(store, company, user)
    store.grants[grant.id] = grant
    return grant


def mint_tokens(
    store: Store,
    signer: Signer,
    grant: Grant,
    *,
    entity: str | None = None,
    refresh: bool = True,
) -> dict[str, Any]:
    """A token response for ``grant``: a new access token, and a refresh token when the
    grant is offline and ``refresh`` is true."""
    now = int(store.now())
    ttl = int(store.config.access_token_ttl)
    company = store.companies[grant.company]
    user = company.users.get(grant.user)
    entity_id = entity if entity is not None else grant.entity
    session_id = secrets.token_urlsafe(24)
    claims = {
        "iss": ISSUER,
        "aud": grant.client_id,
        "sub": f"{grant.user}@{grant.company}",
        "iat": now,
        "nbf": now,
        "exp": now + ttl,
        "jti": secrets.token_hex(12),
        "clientId": grant.client_id,
        "cnyId": grant.company,
        "cnyKey": company.key,
        "userId": grant.user,
        "userKey": user.key if user is not None else "0",
        "entityId": entity_id or None,
        "entityKey": company.entities[entity_id].key if entity_id else None,
        "sessionId": session_id,
    }
    token = signer.sign(claims)
    store.sessions[session_id] = Session(grant=grant.id, entity=entity_id, exp=now + ttl)
    body: dict[str, Any] = {"token_type": "Bearer", "access_token": token, "expires_in": ttl}
    if grant.offline and refresh:
        refresh_token = secrets.token_urlsafe(48)
        store.refresh_tokens[digest(refresh_token)] = RefreshToken(grant=grant.id, created_at=now)
        body["refresh_token"] = refresh_token
    return body


def revoke_pool(store: Store, company: str, user: str | None = None) -> int:
    """Revoke every grant (and so every token) of ``user`` in ``company`` (all users
    when ``user`` is None). Returns how many active grants were revoked."""
    revoked = 0
    for grant in store.grants_of(company, user):
        if grant.active:
            revoked += 1
        grant.status = "revoked"
    return revoked
