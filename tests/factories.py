"""The test suite's object factories, with one set of defaults.

Every connection a test makes is, unless the test says otherwise, tenant ``tenant-1``'s
authorization-code connection to the emulator's seeded company ``DEMO-CO`` as its user
``admin``, active, with a token that is valid for hours:

* ``connection()`` stores a token set shaped like Intacct's (random secrets, JWT claims)
  through the flows' own ``store_tokens``; no server is needed;
* ``connection(emulator)`` stores tokens the emulator issued, so API calls succeed.

Two connections of one tenant, company and user would break the one-grant constraint:
tests that need several pass distinct ``company=`` or ``user=`` values.
The fixtures (``emulator``, ``fake_sleep``, ``count_job``, ...) live in ``conftest.py``.
"""

from __future__ import annotations

import base64
import itertools
import json
import secrets
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from intacct_connect.flows import store_tokens
from intacct_connect.models import (
    Connection,
    ConnectionStatus,
    GrantType,
    Schedule,
    ScheduleScope,
    Token,
)
from intacct_connect.oauth import TokenSet

if TYPE_CHECKING:
    from intacct_connect.testing.emulator import EmulatorServer

#: The defaults of every factory (the emulator's seed data has this company and user).
TENANT = "tenant-1"
COMPANY = "DEMO-CO"
USER = "admin"
#: Lifetime of a token made without the emulator (Intacct's access tokens last 6 hours).
TOKEN_LIFETIME = 21600

_seq = itertools.count(1)


def fake_jwt(claims: dict[str, Any]) -> str:
    """An unsigned JWT-shaped string carrying ``claims`` (for rows made without Intacct)."""

    def part(data: dict[str, Any]) -> str:
        raw = json.dumps(data, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.sig-{secrets.token_hex(8)}"


def token_set(
    *,
    company: str = COMPANY,
    user: str = USER,
    entity: str = "",
    refresh: str | None = "auto",
    expires_in: int = TOKEN_LIFETIME,
) -> TokenSet:
    """A token set shaped like Intacct's, with fresh random secrets."""
    claims = {"cnyId": company, "userId": user, "entityId": entity or None}
    return TokenSet(
        access_token=fake_jwt(claims),
        refresh_token=f"rt-{secrets.token_urlsafe(24)}" if refresh == "auto" else refresh,
        token_type="Bearer",
        expires_in=expires_in,
        expires_at=timezone.now() + timedelta(seconds=expires_in),
        scope="offline_access",
        claims=claims,
    )


def connection(
    emulator: EmulatorServer | None = None,
    *,
    tenant: str = TENANT,
    company: str = COMPANY,
    user: str = USER,
    entity: str = "",
    status: str = ConnectionStatus.ACTIVE,
    grant_type: str = GrantType.AUTHORIZATION_CODE,
    tokens: TokenSet | None = None,
    with_token: bool = True,
    expires_in: float | None = None,
    next_refresh_in: float | None = None,
    **fields: Any,
) -> Connection:
    """A connection row (extra model ``fields`` allowed) with its encrypted tokens.

    * ``emulator``: the tokens are issued by it (a fresh consent grant of ``company`` /
      ``user`` / ``entity``); otherwise ``tokens`` or a new :func:`token_set`;
    * ``with_token=False``: no token row at all;
    * ``expires_in``: overrides the stored expiry in seconds (negative: already expired
      locally; the token itself stays valid at the emulator);
    * ``next_refresh_in``: sets ``next_refresh_at`` that many seconds from now.
    """
    now = timezone.now()
    conn = Connection.objects.create(
        tenant_key=tenant,
        company_id=company,
        intacct_user_id=user,
        entity_id=entity,
        status=status,
        grant_type=grant_type,
        next_refresh_at=None
        if next_refresh_in is None
        else now + timedelta(seconds=next_refresh_in),
        **fields,
    )
    if not with_token:
        return conn
    if emulator is not None:
        if tokens is not None:
            raise TypeError("pass either emulator or tokens")
        tokens = issued_token_set(emulator, company=company, user=user, entity=entity)
    token = store_tokens(conn, tokens or token_set(company=company, user=user, entity=entity))
    if expires_in is not None:
        token.expires_at = now + timedelta(seconds=expires_in)
        token.save(update_fields=["expires_at"])
    return conn


def issued_token_set(
    emulator: EmulatorServer, *, company: str = COMPANY, user: str = USER, entity: str = ""
) -> TokenSet:
    """Tokens the emulator issues for a fresh consent grant, as a :class:`TokenSet`."""
    issued = emulator.issue_tokens(company, user, entity or None)
    lifetime = int(issued["expires_in"])
    return TokenSet(
        access_token=issued["access_token"],
        refresh_token=issued.get("refresh_token") or None,
        token_type=issued.get("token_type") or "Bearer",
        expires_in=lifetime,
        expires_at=timezone.now() + timedelta(seconds=lifetime),
        scope=issued.get("scope") or "",
        claims={"cnyId": company, "userId": user, "entityId": entity or None},
    )


def cc_connection(**options: Any) -> Connection:
    """A client-credentials connection (``options`` as for :func:`connection`) whose
    stored token is already expired: its first call fetches a token with the client
    credentials grant."""
    conn = connection(grant_type=GrantType.CLIENT_CREDENTIALS, with_token=False, **options)
    Token.objects.create(
        connection=conn,
        access_token="expired-placeholder",
        expires_at=timezone.now() - timedelta(seconds=1),
        version=1,
    )
    return conn


def expire_locally(conn: Connection) -> None:
    """Make the stored access token count as expired (the emulator still accepts it)."""
    Token.objects.filter(pk=conn.pk).update(expires_at=timezone.now() - timedelta(seconds=1))


def schedule(
    job: str = "count_job",
    *,
    connection: Connection | None = None,
    scope: str = ScheduleScope.CONNECTION,
    tenant: str = "",
    interval: int | None = 300,
    crontab: str = "",
    due: bool = True,
    params: dict[str, Any] | None = None,
    **fields: Any,
) -> Schedule:
    """A schedule of ``job`` (the ``count_job`` fixture's by default), due now unless
    ``due=False`` (then in an hour)."""
    now = timezone.now()
    return Schedule.objects.create(
        name=f"schedule {next(_seq)}",
        job=job,
        params=params or {},
        scope=scope,
        connection=connection,
        tenant_key=tenant,
        interval_seconds=interval,
        crontab=crontab,
        next_run_at=now - timedelta(seconds=1) if due else now + timedelta(hours=1),
        **fields,
    )
