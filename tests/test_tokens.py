"""The single-flight token path (intacct_connect.tokens) against the live emulator."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.db import transaction
from django.utils import timezone

from intacct_connect import crypto, oauth, signals, tokens
from intacct_connect.exceptions import (
    ClientCredentialsRejected,
    GrantRejected,
    IntacctConfigurationError,
    InvalidClient,
    InvalidGrant,
    NeedsReauthorization,
    RefreshBackoff,
    RefreshInDoubt,
    TokenRequestError,
    TokenResponseLost,
)
from intacct_connect.models import (
    Connection,
    ConnectionEvent,
    ConnectionStatus,
    EventKind,
    Token,
)
from intacct_connect.testing.emulator import EmulatorServer
from tests import factories
from tests.helpers import point_at_emulator

pytestmark = pytest.mark.django_db


@pytest.fixture
def received() -> Iterator[dict[str, list[dict[str, Any]]]]:
    """Every token_refreshed / connection_needs_reauth signal sent during the test."""
    seen: dict[str, list[dict[str, Any]]] = {"refreshed": [], "needs_reauth": []}

    def on_refreshed(**kwargs: Any) -> None:
        seen["refreshed"].append(kwargs)

    def on_reauth(**kwargs: Any) -> None:
        seen["needs_reauth"].append(kwargs)

    signals.token_refreshed.connect(on_refreshed, dispatch_uid="test-refreshed")
    signals.connection_needs_reauth.connect(on_reauth, dispatch_uid="test-reauth")
    try:
        yield seen
    finally:
        signals.token_refreshed.disconnect(dispatch_uid="test-refreshed")
        signals.connection_needs_reauth.disconnect(dispatch_uid="test-reauth")


def test_fresh_token_is_used_without_a_lock_and_in_one_query(
    emulator: EmulatorServer, django_assert_num_queries: Callable[..., Any]
) -> None:
    conn = factories.connection(emulator)
    stored = Token.objects.get(pk=conn.pk).access_token
    with django_assert_num_queries(1):
        assert tokens.get_access_token(conn) == stored
    assert emulator.token_requests() == 0


def test_expired_token_is_refreshed_and_persisted(
    emulator: EmulatorServer,
    received: dict[str, list[dict[str, Any]]],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    conn = factories.connection(emulator)
    before = Token.objects.get(pk=conn.pk)
    old_access, old_refresh = before.access_token, before.refresh_token
    factories.expire_locally(conn)
    with django_capture_on_commit_callbacks(execute=True):
        access = tokens.get_access_token(conn.pk)
    after = Token.objects.get(pk=conn.pk)
    assert emulator.token_requests("refresh_token") == 1
    assert access == after.access_token != old_access
    # The emulator rotates refresh tokens: the new one is stored.
    assert after.refresh_token != old_refresh
    assert after.version == 2
    assert after.refresh_count == 1
    assert after.fingerprint == crypto.fingerprint(access)
    assert after.last_refreshed_at is not None
    assert after.expires_at > timezone.now() + timedelta(hours=1)
    conn.refresh_from_db()
    assert conn.next_refresh_at is not None
    assert timezone.now() <= conn.next_refresh_at < after.expires_at
    assert ConnectionEvent.objects.filter(connection=conn, kind=EventKind.REFRESHED).count() == 1
    assert [s["token_version"] for s in received["refreshed"]] == [2]
    assert received["refreshed"][0]["connection"].pk == conn.pk
    # The new token works at the emulator; the fast path now applies.
    assert tokens.get_access_token(conn.pk) == access
    assert emulator.token_requests("refresh_token") == 1


def test_refresh_token_is_kept_when_the_response_has_none(emulator: EmulatorServer) -> None:
    conn = factories.connection(emulator)
    token = Token.objects.get(pk=conn.pk)
    old_refresh = token.refresh_token
    token_set = oauth.TokenSet(
        access_token="new-access",
        refresh_token=None,
        token_type="Bearer",
        expires_in=3600,
        expires_at=timezone.now() + timedelta(hours=1),
        scope="",
        claims={},
    )
    with transaction.atomic():
        tokens._store(conn, token, token_set)
    stored = Token.objects.get(pk=conn.pk)
    assert stored.refresh_token == old_refresh
    assert stored.access_token == "new-access"
    assert stored.version == 2


def test_waiter_reuses_a_token_refreshed_meanwhile(emulator: EmulatorServer) -> None:
    """Double-check after the lock: a fresh token in the database is not refreshed again."""
    conn = factories.connection(emulator)
    token = tokens.refresh_connection(conn.pk)
    assert token is not None
    assert token.version == 1
    assert emulator.token_requests() == 0


def test_forced_refresh_is_skipped_when_someone_else_refreshed(emulator: EmulatorServer) -> None:
    conn = factories.connection(emulator)
    first = tokens.refresh_connection(conn.pk, force=True, seen_version=1)
    assert first is not None
    assert first.version == 2
    # A second caller that also saw version 1 rejected finds version 2: no new request.
    second = tokens.refresh_connection(conn.pk, force=True, seen_version=1)
    assert second is not None
    assert second.version == 2
    assert second.access_token == first.access_token
    assert emulator.token_requests("refresh_token") == 1


def test_invalid_grant_marks_needs_reauth_once(
    emulator: EmulatorServer,
    received: dict[str, list[dict[str, Any]]],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    conn = factories.connection(emulator)
    emulator.revoke_grants("DEMO-CO")
    factories.expire_locally(conn)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(InvalidGrant) as info:
        tokens.get_access_token(conn)
    assert info.value.connection_id == conn.pk
    # The same error is a NeedsReauthorization, as every "reconnect" situation is.
    assert isinstance(info.value, GrantRejected)
    assert isinstance(info.value, NeedsReauthorization)
    conn.refresh_from_db()
    assert conn.status == ConnectionStatus.NEEDS_REAUTH
    assert conn.last_error_code == "invalid_grant"
    events = ConnectionEvent.objects.filter(connection=conn, kind=EventKind.NEEDS_REAUTH)
    assert events.count() == 1
    assert len(received["needs_reauth"]) == 1
    assert received["needs_reauth"][0]["reason"] == "invalid_grant"
    # Later calls fail fast: no token request, no second signal.
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):
            with pytest.raises(NeedsReauthorization):
                tokens.get_access_token(conn)
    assert emulator.token_requests("refresh_token") == 1
    assert len(received["needs_reauth"]) == 1
    assert ConnectionEvent.objects.filter(connection=conn, kind=EventKind.NEEDS_REAUTH).count() == 1


def test_loser_rule_keeps_a_connection_another_worker_rotated(
    emulator: EmulatorServer,
    received: dict[str, list[dict[str, Any]]],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    """A worker that refreshed with a refresh token another worker had already rotated
    gets invalid_grant from Intacct; the re-read shows the rotation, so nothing is marked."""
    emulator.configure(refresh_mode="rotate")
    conn = factories.connection(emulator)
    stale = Token.objects.get(pk=conn.pk)
    stale_refresh = str(stale.refresh_token)
    # Another worker wins the race and rotates the tokens.
    winner = tokens.refresh_connection(conn.pk, force=True)
    assert winner is not None
    # The loser's request, sent with the refresh token it had read, is refused (real HTTP).
    with pytest.raises(InvalidGrant) as info:
        oauth.refresh(stale_refresh)
    with django_capture_on_commit_callbacks(execute=True):
        kept = tokens.resolve_invalid_grant(
            conn.pk,
            used_version=stale.version,
            used_fingerprint=crypto.fingerprint(stale_refresh),
            error=info.value,
        )
    assert kept.version == winner.version == 2
    assert kept.access_token == winner.access_token
    conn.refresh_from_db()
    assert conn.status == ConnectionStatus.ACTIVE
    assert received["needs_reauth"] == []
    # Without a rotation, the same answer marks the connection (exactly once).
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(InvalidGrant):
        tokens.resolve_invalid_grant(conn.pk, used_version=kept.version, error=info.value)
    conn.refresh_from_db()
    assert conn.status == ConnectionStatus.NEEDS_REAUTH
    assert len(received["needs_reauth"]) == 1


def test_invalid_client_leaves_every_connection_untouched(
    emulator: EmulatorServer,
    settings: Any,
    received: dict[str, list[dict[str, Any]]],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    first = factories.connection(emulator)
    second = factories.connection(emulator, user="jane", tenant="tenant-2")
    point_at_emulator(settings, emulator, CLIENT_SECRET="rotated-by-mistake")
    factories.expire_locally(first)
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(IntacctConfigurationError, match="invalid_client") as info,
    ):
        tokens.get_access_token(first)
    assert isinstance(info.value, ClientCredentialsRejected)
    assert isinstance(info.value.__cause__, InvalidClient)
    assert "rotated-by-mistake" not in str(info.value)
    for conn in (first, second):
        conn.refresh_from_db()
        assert conn.status == ConnectionStatus.ACTIVE
        assert conn.last_error_code == ""
        assert conn.refresh_failures == 0
        assert not ConnectionEvent.objects.filter(connection=conn).exists()
    assert Token.objects.get(pk=first.pk).version == 1
    assert received == {"refreshed": [], "needs_reauth": []}


def test_lost_token_response_marks_refresh_in_doubt_and_is_never_resent(
    emulator: EmulatorServer,
    received: dict[str, list[dict[str, Any]]],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    conn = factories.connection(emulator)
    factories.expire_locally(conn)
    emulator.set_fault("token_lost", count=1)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RefreshInDoubt) as info:
        tokens.get_access_token(conn)
    assert isinstance(info.value, TokenResponseLost)
    assert isinstance(info.value, NeedsReauthorization)
    assert isinstance(info.value.__cause__, TokenResponseLost)
    assert emulator.token_requests("refresh_token") == 1  # sent once
    conn.refresh_from_db()
    assert conn.status == ConnectionStatus.REFRESH_IN_DOUBT
    assert conn.last_error_code == "response_lost"
    assert conn.next_refresh_at is None  # the background refresher leaves it alone
    event = ConnectionEvent.objects.get(connection=conn, kind=EventKind.REFRESH_IN_DOUBT)
    assert "never re-sent automatically" in event.message
    assert Token.objects.get(pk=conn.pk).version == 1
    # Every later call answers from the recorded outcome: nothing is re-sent, ever.
    for _ in range(3):
        with pytest.raises(RefreshInDoubt):
            tokens.get_access_token(conn)
        with pytest.raises(RefreshInDoubt):
            tokens.refresh_connection(conn.pk, force=True)
    assert emulator.token_requests("refresh_token") == 1
    assert received["needs_reauth"] == []
    assert [g["status"] for g in emulator.grants("DEMO-CO")] == ["active"]


def test_transient_token_endpoint_failure_backs_off_then_refreshes(
    emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tokens, "REFRESH_RETRY_BACKOFF_BASE", 0.3)
    conn = factories.connection(emulator)
    factories.expire_locally(conn)
    emulator.set_fault("500", endpoint="token", count=1)
    with pytest.raises(TokenRequestError) as info:
        tokens.get_access_token(conn)
    assert info.value.status_code == 500
    assert not isinstance(info.value, RefreshBackoff)
    conn.refresh_from_db()
    assert conn.status == ConnectionStatus.ACTIVE
    assert conn.refresh_failures == 1
    assert conn.refresh_retry_at is not None
    # Within the back-off: a retryable error, and no second request.
    with pytest.raises(RefreshBackoff) as backoff:
        tokens.get_access_token(conn)
    assert backoff.value.retry_after is not None
    assert 0 < backoff.value.retry_after <= 0.3
    assert emulator.token_requests("refresh_token") == 1
    # After it, the next call refreshes normally and resets the failure counter.
    after = timezone.now() + timedelta(seconds=backoff.value.retry_after + 0.05)
    with time_machine.travel(after, tick=False):
        assert tokens.get_access_token(conn)
    conn.refresh_from_db()
    assert conn.refresh_failures == 0
    assert conn.refresh_retry_at is None
    assert Token.objects.get(pk=conn.pk).version == 2
    assert emulator.token_requests("refresh_token") == 2


def test_client_credentials_connection_requests_a_new_token(emulator: EmulatorServer) -> None:
    conn = factories.cc_connection()
    access = tokens.get_access_token(conn)
    assert emulator.token_requests("client_credentials") == 1
    assert emulator.token_requests("refresh_token") == 0
    claims = oauth.decode_claims(access)
    assert claims["cnyId"] == "DEMO-CO"
    assert claims["userId"] == "admin"
    token = Token.objects.get(pk=conn.pk)
    assert token.version == 2
    assert token.refresh_token == ""


def test_connection_without_token_or_inactive_needs_reauthorization(
    emulator: EmulatorServer,
) -> None:
    conn = Connection.objects.create(tenant_key="t", company_id="DEMO-CO", intacct_user_id="admin")
    with pytest.raises(NeedsReauthorization, match="no stored token"):
        tokens.get_access_token(conn)
    active = factories.connection(emulator, user="jane")
    Connection.objects.filter(pk=active.pk).update(status=ConnectionStatus.REVOKED)
    with pytest.raises(NeedsReauthorization, match="revoked"):
        tokens.get_access_token(active)
    with pytest.raises(NeedsReauthorization, match="revoked"):
        tokens.refresh_connection(active.pk, force=True)
    assert emulator.token_requests() == 0


def test_no_secret_reaches_the_logs(
    emulator: EmulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    conn = factories.connection(emulator)
    old = Token.objects.get(pk=conn.pk)
    secrets = {old.access_token, old.refresh_token}
    factories.expire_locally(conn)
    with caplog.at_level("DEBUG"):
        tokens.get_access_token(conn)
    new = Token.objects.get(pk=conn.pk)
    secrets |= {new.access_token, new.refresh_token}
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "Refreshed the token of connection" in text
    for secret in secrets:
        assert secret not in text
