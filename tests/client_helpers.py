"""Helpers for the API client and token tests: connections whose tokens the emulator issued."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from intacct_connect import client as client_module
from intacct_connect import crypto
from intacct_connect.models import Connection, GrantType, Token
from intacct_connect.testing.emulator import EmulatorServer

#: Fast retries for the test suite (the retry policy itself is what is tested).
FAST_RETRIES = {"RETRY_BACKOFF": 0.01, "RETRY_BACKOFF_MAX": 0.05}


def point_at_emulator(settings: Any, emulator: EmulatorServer, **overrides: Any) -> None:
    """Merge the emulator's URLs and credentials (and ``overrides``) into INTACCT_CONNECT."""
    current = dict(settings.INTACCT_CONNECT)
    current.update(emulator.connect_settings(redirect_uri=current["REDIRECT_URI"]))
    current.update(FAST_RETRIES)
    current.update(overrides)
    settings.INTACCT_CONNECT = current


def make_connection(
    emulator: EmulatorServer,
    *,
    company: str = "DEMO-CO",
    user: str = "admin",
    entity: str = "",
    expires_in: float | None = None,
    tenant: str = "tenant-1",
) -> Connection:
    """An authorization-code connection with tokens minted by the emulator.

    ``expires_in`` overrides the stored expiry (negative: already expired locally)."""
    issued = emulator.issue_tokens(company, user, entity or None)
    conn = Connection.objects.create(
        tenant_key=tenant,
        company_id=company,
        intacct_user_id=user,
        entity_id=entity,
        grant_type=GrantType.AUTHORIZATION_CODE,
    )
    lifetime = float(issued["expires_in"]) if expires_in is None else expires_in
    Token.objects.create(
        connection=conn,
        access_token=issued["access_token"],
        refresh_token=issued.get("refresh_token") or "",
        expires_at=timezone.now() + timedelta(seconds=lifetime),
        version=1,
        fingerprint=crypto.fingerprint(issued["access_token"]),
    )
    return conn


def make_cc_connection(
    emulator: EmulatorServer, *, company: str = "DEMO-CO", user: str = "admin"
) -> Connection:
    """A client-credentials connection whose stored token is already expired."""
    conn = Connection.objects.create(
        tenant_key="tenant-1",
        company_id=company,
        intacct_user_id=user,
        grant_type=GrantType.CLIENT_CREDENTIALS,
    )
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


@pytest.fixture
def emulator(intacct_emulator: EmulatorServer, settings: Any) -> Iterator[EmulatorServer]:
    """The emulator, with INTACCT_CONNECT pointed at it and fast retries."""
    point_at_emulator(settings, intacct_emulator)
    yield intacct_emulator
    assert intacct_emulator.unexpected_errors() == 0


class FakeSleep:
    """A ``sleep`` that records the delays instead of waiting, and a ``clock`` that moves
    forward by what was "slept" (so call durations still include the waits)."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)

    def clock(self) -> float:
        return time.monotonic() + sum(self.delays)


@pytest.fixture
def fake_sleep(monkeypatch: pytest.MonkeyPatch) -> FakeSleep:
    """Every client created without its own ``sleep=`` retries without sleeping."""
    fake = FakeSleep()
    monkeypatch.setattr(client_module.default_retry_policy, "sleep", fake)
    monkeypatch.setattr(client_module.default_retry_policy, "clock", fake.clock)
    return fake
