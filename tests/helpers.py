"""Small helpers shared by the test modules."""

from __future__ import annotations

import base64
import json
import os
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.utils import timezone

from intacct_connect.flows import store_tokens
from intacct_connect.models import Connection
from intacct_connect.oauth import TokenSet


def require_postgres() -> None:
    """Skip the calling test unless the database is PostgreSQL.

    When ``INTACCT_REQUIRE_POSTGRES`` is set (CI's PostgreSQL job), a PostgreSQL-only test
    that would be skipped fails instead, so a misconfigured job cannot hide it.
    Call it at the top of tests marked ``@pytest.mark.postgres``.
    """
    if connection.vendor == "postgresql":
        return
    reason = (
        f"needs PostgreSQL (row locks / SKIP LOCKED); the database is {connection.vendor}. "
        "Run with DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres"
    )
    if os.environ.get("INTACCT_REQUIRE_POSTGRES"):
        pytest.fail(f"INTACCT_REQUIRE_POSTGRES is set but this test {reason}")
    pytest.skip(reason)


def fake_jwt(claims: dict[str, Any]) -> str:
    """An unsigned JWT-shaped string carrying ``claims`` (for rows made without Intacct)."""

    def part(data: dict[str, Any]) -> str:
        raw = json.dumps(data, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.sig-{secrets.token_hex(8)}"


def token_set(
    *,
    company: str = "ACME",
    user: str = "alice",
    entity: str = "",
    refresh: str | None = "auto",
    expires_in: int = 21600,
) -> TokenSet:
    """A token set shaped like Intacct's, with fresh random secrets."""
    claims = {"cnyId": company, "userId": user, "entityId": entity or None}
    access = fake_jwt(claims)
    return TokenSet(
        access_token=access,
        refresh_token=f"rt-{secrets.token_urlsafe(24)}" if refresh == "auto" else refresh,
        token_type="Bearer",
        expires_in=expires_in,
        expires_at=timezone.now() + timedelta(seconds=expires_in),
        scope="offline_access",
        claims=claims,
    )


def make_connection(
    *,
    tenant: str = "user:1",
    company: str = "ACME",
    user: str = "alice",
    entity: str = "",
    status: str = "active",
    grant_type: str = "authorization_code",
    tokens: TokenSet | None = None,
) -> Connection:
    """A connection row with encrypted tokens, written through the same code as the flows."""
    conn = Connection.objects.create(
        tenant_key=tenant,
        company_id=company,
        intacct_user_id=user,
        entity_id=entity,
        status=status,
        grant_type=grant_type,
    )
    store_tokens(conn, tokens or token_set(company=company, user=user, entity=entity))
    return conn


def run_released_together(
    command: list[str], *, count: int, env: dict[str, str], cwd: str | os.PathLike[str]
) -> list[str]:
    """Start ``count`` processes of ``command``; each prints ``ready`` once set up, then
    waits for ``go`` on stdin. All are released at once, so they race for real. Returns
    each process's stdout (every process must exit 0); kills stragglers on failure."""
    import subprocess

    workers = [
        subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            line = worker.stdout.readline()
            assert line.strip() == "ready", (line, worker.stderr.read() if worker.stderr else "")
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        outputs = []
        for worker in workers:
            out, err = worker.communicate(timeout=60)
            assert worker.returncode == 0, err
            outputs.append(out)
        return outputs
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()


def count_statements(function: Callable[[], Any]) -> int:
    """Database statements run by ``function`` on the default connection and (PostgreSQL)
    on the rate limiter's private connection."""
    from intacct_connect import concurrency

    count = 0

    def record(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        nonlocal count
        count += 1
        return execute(sql, params, many, context)

    private = concurrency._wrapper()
    with connection.execute_wrapper(record):
        if private is connections[DEFAULT_DB_ALIAS]:  # SQLite: the same connection
            function()
        else:
            with private.execute_wrapper(record):
                function()
    return count
