"""Every outcome of a refresh is written under the connection's lock, and later callers
answer from it without a token request of their own (issue 12). These tests run on any
database, one caller after another; ``test_refresh_outcomes_postgres.py`` races 8 callers
in threads and in processes on PostgreSQL row locks.

All of them go through real HTTP against the emulator and count what reached it.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone

import tests.celery_app  # noqa: F401  (the suite's Celery app: tasks run eagerly)
from intacct_connect import connection_state, incidents, oauth, scheduling, signals, tokens
from intacct_connect.client import IntacctClient
from intacct_connect.exceptions import (
    ClientCredentialsRejected,
    GrantRejected,
    IntacctConfigurationError,
    InvalidGrant,
    NeedsReauthorization,
    RefreshBackoff,
    RefreshInDoubt,
    TokenRequestError,
)
from intacct_connect.models import (
    Connection,
    ConnectionEvent,
    ConnectionStatus,
    EventKind,
    SiteIncident,
    Token,
)
from intacct_connect.testing.emulator import EmulatorServer
from intacct_connect.testing.emulator.seed import DEMO_CLIENT_ID
from tests import factories
from tests.helpers import point_at_emulator

pytestmark = pytest.mark.django_db


@pytest.fixture
def emulator(socket_emulator: EmulatorServer) -> EmulatorServer:
    """Real HTTP: every call goes over the emulator's socket (lost answers are dropped
    connections, other processes reach it too)."""
    return socket_emulator


WRONG_SECRET = "rotated-by-mistake-0123456789"


@pytest.fixture
def received() -> Iterator[dict[str, list[dict[str, Any]]]]:
    """Every signal of interest sent during the test, by name."""
    names = ("refresh_in_doubt", "client_credentials_rejected", "connection_needs_reauth")
    seen: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    handlers = {}
    for name in names:

        def handler(name: str = name, **kwargs: Any) -> None:
            seen[name].append(kwargs)

        handlers[name] = handler
        getattr(signals, name).connect(handler, dispatch_uid=f"test-outcomes-{name}")
    try:
        yield seen
    finally:
        for name in names:
            getattr(signals, name).disconnect(dispatch_uid=f"test-outcomes-{name}")


@pytest.fixture
def commit(django_capture_on_commit_callbacks: Callable[..., Any]) -> Callable[..., Any]:
    """``with commit():`` runs the on-commit callbacks (the signals) of the block."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def _raises(call: Callable[[], Any]) -> BaseException:
    try:
        call()
    except BaseException as err:
        return err
    raise AssertionError("no exception")


# --- consistent errors: NeedsReauthorization whenever a user must reconnect --------------


def test_a_locally_expired_token_whose_refresh_meets_invalid_grant_raises_needs_reauth(
    emulator: EmulatorServer,
) -> None:
    """The client's ``except NeedsReauthorization`` catches it (it used to get InvalidGrant)."""
    conn = factories.connection(emulator)
    emulator.revoke_grants("DEMO-CO")
    factories.expire_locally(conn)
    client = IntacctClient(conn.pk)
    with pytest.raises(NeedsReauthorization) as info:
        client.get("accounts-payable/vendor", "1")
    assert isinstance(info.value, GrantRejected)
    assert isinstance(info.value, InvalidGrant)  # still caught by older handlers
    assert info.value.code == "invalid_grant"
    assert info.value.connection_id == conn.pk
    # And every later call raises NeedsReauthorization without a request.
    with pytest.raises(NeedsReauthorization):
        client.get("accounts-payable/vendor", "1")
    assert emulator.token_requests("refresh_token") == 1
    assert emulator.api_calls("DEMO-CO") == 0


def test_a_rejected_token_whose_refresh_meets_invalid_grant_raises_needs_reauth(
    emulator: EmulatorServer,
) -> None:
    conn = factories.connection(emulator)
    emulator.revoke_grants("DEMO-CO")  # the API answers 401 REST-2102, the refresh invalid_grant
    with pytest.raises(NeedsReauthorization):
        IntacctClient(conn.pk).get("accounts-payable/vendor", "1")
    conn.refresh_from_db()
    assert conn.status == ConnectionStatus.NEEDS_REAUTH
    assert emulator.token_requests("refresh_token") == 1


def test_a_connection_in_doubt_raises_needs_reauth_on_every_client_path(
    emulator: EmulatorServer,
) -> None:
    conn = factories.connection(emulator)
    factories.expire_locally(conn)
    emulator.set_fault("token_lost", count=1)
    client = IntacctClient(conn.pk)
    first = _raises(lambda: client.get("accounts-payable/vendor", "1"))
    assert isinstance(first, RefreshInDoubt)
    for call in (
        lambda: client.get("accounts-payable/vendor", "1"),
        lambda: tokens.get_access_token(conn.pk),
        lambda: tokens.current_token(conn.pk),
        lambda: tokens.refresh_connection(conn.pk, force=True),
    ):
        err = _raises(call)
        assert isinstance(err, RefreshInDoubt)
        assert isinstance(err, NeedsReauthorization)
    assert emulator.token_requests("refresh_token") == 1
    assert emulator.api_calls("DEMO-CO") == 0


# --- refresh in doubt ----------------------------------------------------------------------


def test_refresh_in_doubt_is_signalled_once_and_never_dispatched(
    emulator: EmulatorServer,
    received: dict[str, list[dict[str, Any]]],
    commit: Callable[..., Any],
) -> None:
    conn = factories.connection(emulator)
    factories.expire_locally(conn)
    emulator.set_fault("token_lost", count=1)
    with commit():
        for _ in range(3):
            with pytest.raises(RefreshInDoubt):
                tokens.get_access_token(conn.pk)
    assert [(s["connection"].pk, s["error_code"]) for s in received["refresh_in_doubt"]] == [
        (conn.pk, "response_lost")
    ]
    assert received["connection_needs_reauth"] == []
    # The background refresher never picks it up again, whatever its next_refresh_at.
    Connection.objects.filter(pk=conn.pk).update(next_refresh_at=timezone.now())
    with commit():
        assert scheduling.dispatch_due_refreshes() == 0
    outcome = scheduling.refresh_one(conn.pk, seen_version=1)
    assert outcome.result == "in_doubt"
    assert emulator.token_requests("refresh_token") == 1


def test_a_lost_answer_to_a_background_refresh_is_in_doubt_too(
    emulator: EmulatorServer, received: dict[str, list[dict[str, Any]]], commit: Callable[..., Any]
) -> None:
    conn = factories.connection(emulator)
    emulator.set_fault("token_lost", count=1)
    with commit():
        outcome = scheduling.refresh_one(conn.pk, seen_version=1)
    assert (outcome.result, outcome.error_code) == ("in_doubt", "refresh_in_doubt")
    conn.refresh_from_db()
    assert conn.status == ConnectionStatus.REFRESH_IN_DOUBT
    assert conn.refresh_failures == 0
    assert len(received["refresh_in_doubt"]) == 1


def test_a_lost_client_credentials_answer_is_transient(emulator: EmulatorServer) -> None:
    """No refresh token is at stake: the next attempt (after the back-off) asks again."""
    conn = factories.cc_connection()
    emulator.set_fault("token_lost", count=1)
    err = _raises(lambda: tokens.get_access_token(conn.pk))
    assert isinstance(err, TokenRequestError)
    assert not isinstance(err, NeedsReauthorization)
    conn.refresh_from_db()
    assert conn.status == ConnectionStatus.ACTIVE
    assert conn.refresh_failures == 1
    assert isinstance(_raises(lambda: tokens.get_access_token(conn.pk)), RefreshBackoff)
    assert emulator.token_requests("client_credentials") == 1
    Connection.objects.filter(pk=conn.pk).update(refresh_retry_at=timezone.now())
    assert tokens.get_access_token(conn.pk)
    assert emulator.token_requests("client_credentials") == 2


def _in_doubt(emulator: EmulatorServer) -> Connection:
    conn = factories.connection(emulator)
    factories.expire_locally(conn)
    emulator.set_fault("token_lost", count=1)
    with pytest.raises(RefreshInDoubt):
        tokens.get_access_token(conn.pk)
    conn.refresh_from_db()
    assert conn.status == ConnectionStatus.REFRESH_IN_DOUBT
    return conn


def test_trying_the_stored_token_with_a_grace_period_ends_active(
    emulator: EmulatorServer, received: dict[str, list[dict[str, Any]]], commit: Callable[..., Any]
) -> None:
    emulator.configure(refresh_grace_seconds=60)
    conn = _in_doubt(emulator)
    stored_refresh = str(Token.objects.get(pk=conn.pk).refresh_token)
    with commit():
        trial = tokens.try_stored_refresh_token(conn.pk)
    assert (trial.connection_id, trial.outcome) == (conn.pk, "active")
    conn.refresh_from_db()
    assert conn.status == ConnectionStatus.ACTIVE
    assert conn.last_error_code == ""
    assert conn.next_refresh_at is not None
    token = Token.objects.get(pk=conn.pk)
    assert token.version == 2
    assert str(token.refresh_token) != stored_refresh
    assert emulator.token_requests("refresh_token") == 2  # the lost one and the trial
    assert [g["status"] for g in emulator.grants("DEMO-CO")] == ["active"]
    events = list(ConnectionEvent.objects.filter(connection=conn).values_list("kind", flat=True))
    assert EventKind.REFRESH_IN_DOUBT in events
    assert EventKind.REFRESHED in events
    # The connection works again, with the new token.
    assert IntacctClient(conn.pk).get("accounts-payable/vendor", "1")["key"] == "1"
    assert received["connection_needs_reauth"] == []


def test_trying_the_stored_token_under_reuse_detection_ends_needs_reauth(
    emulator: EmulatorServer, received: dict[str, list[dict[str, Any]]], commit: Callable[..., Any]
) -> None:
    conn = _in_doubt(emulator)  # the emulator's default: rotation with reuse detection
    with commit():
        trial = tokens.try_stored_refresh_token(conn.pk)
    assert trial.outcome == "needs_reauth"
    conn.refresh_from_db()
    assert conn.status == ConnectionStatus.NEEDS_REAUTH
    assert [s["reason"] for s in received["connection_needs_reauth"]] == ["invalid_grant"]
    assert emulator.token_requests("refresh_token") == 2
    # A second trial does nothing: the connection is no longer in doubt.
    assert tokens.try_stored_refresh_token(conn.pk).outcome == "not_in_doubt"
    assert emulator.token_requests("refresh_token") == 2
    with pytest.raises(NeedsReauthorization):
        tokens.get_access_token(conn.pk)


def test_a_trial_whose_answer_is_lost_again_ends_needs_reauth(emulator: EmulatorServer) -> None:
    emulator.configure(refresh_grace_seconds=60)
    conn = _in_doubt(emulator)
    emulator.set_fault("token_lost", count=1)
    assert tokens.try_stored_refresh_token(conn.pk).outcome == "needs_reauth"
    conn.refresh_from_db()
    assert conn.status == ConnectionStatus.NEEDS_REAUTH


def test_a_trial_that_decides_nothing_keeps_the_connection_in_doubt(
    emulator: EmulatorServer,
) -> None:
    emulator.configure(refresh_grace_seconds=60)
    conn = _in_doubt(emulator)
    emulator.set_fault("503", endpoint="token", count=1)
    trial = tokens.try_stored_refresh_token(conn.pk)
    assert trial.outcome == "unchanged"
    assert "503" in trial.detail
    conn.refresh_from_db()
    assert conn.status == ConnectionStatus.REFRESH_IN_DOUBT
    # The operator tries again: Intacct still accepts it in its grace period.
    assert tokens.try_stored_refresh_token(conn.pk).outcome == "active"


def test_a_connection_in_doubt_can_be_marked_or_reconnected(emulator: EmulatorServer) -> None:
    """Never stuck: marking it needs_reauth works from refresh_in_doubt."""
    conn = _in_doubt(emulator)
    assert connection_state.mark_needs_reauth(conn.pk, reason="admin") is True
    conn.refresh_from_db()
    assert conn.status == ConnectionStatus.NEEDS_REAUTH


def test_the_emulator_grace_period_accepts_a_rotated_token_for_its_duration(
    emulator: EmulatorServer,
) -> None:
    emulator.configure(refresh_grace_seconds=30)
    issued = emulator.issue_tokens("DEMO-CO", "admin")
    first = oauth.refresh(issued["refresh_token"])
    again = oauth.refresh(issued["refresh_token"])  # rotated away, inside the grace period
    assert again.access_token != first.access_token
    assert oauth.refresh(str(first.refresh_token)).access_token  # the successor still works
    emulator.advance_time(31)
    with pytest.raises(InvalidGrant):
        oauth.refresh(issued["refresh_token"])
    # Outside the grace period, reuse detection revoked the grant.
    assert [g["status"] for g in emulator.grants("DEMO-CO")] == ["revoked"]
    with pytest.raises(ValueError, match="refresh_grace_seconds"):
        emulator.configure(refresh_grace_seconds=-1)


# --- transient failures: one request, then a short back-off ---------------------------------


@pytest.mark.parametrize("fault", ["500", "503", "garbage"])
def test_a_transient_failure_backs_off_callers_without_a_second_request(
    emulator: EmulatorServer, fault: str
) -> None:
    conn = factories.connection(emulator)
    factories.expire_locally(conn)
    emulator.set_fault(fault, endpoint="token", count=1)
    first = _raises(lambda: tokens.get_access_token(conn.pk))
    assert isinstance(first, TokenRequestError)
    assert not isinstance(first, RefreshBackoff | NeedsReauthorization)
    for _ in range(3):
        err = _raises(lambda: tokens.get_access_token(conn.pk))
        assert isinstance(err, RefreshBackoff)
        assert err.retry_after is not None
        assert 0 < err.retry_after <= tokens.REFRESH_RETRY_BACKOFF_BASE
    assert emulator.token_requests("refresh_token") == 1
    conn.refresh_from_db()
    assert conn.status == ConnectionStatus.ACTIVE
    assert conn.refresh_failures == 1
    assert ConnectionEvent.objects.filter(connection=conn, kind=EventKind.REFRESH_FAILED).count()


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_the_client_waits_out_a_transient_refresh_failure_and_goes_on(
    emulator: EmulatorServer, method: str
) -> None:
    """The client's retry policy decides: the refresh's 503, then the back-off other
    callers would get, are waited out (any method: nothing reached the API), and the
    call succeeds with one more token request once the back-off is over."""
    conn = factories.connection(emulator)
    factories.expire_locally(conn)
    emulator.set_fault("503", endpoint="token", count=1)
    waits: list[float] = []
    with time_machine.travel(timezone.now(), tick=False) as traveller:

        def sleep(seconds: float) -> None:
            waits.append(seconds)
            traveller.shift(seconds)

        client = IntacctClient(conn, sleep=sleep)
        if method == "GET":
            assert client.get("accounts-payable/vendor", "1")["key"] == "1"
        else:
            assert client.create("accounts-payable/vendor", {"id": "V-NEW", "name": "New"})
    assert emulator.token_requests("refresh_token") == 2
    assert len(waits) >= 1
    assert sum(waits) >= 0.9 * tokens.REFRESH_RETRY_BACKOFF_BASE  # the back-off was honoured
    conn.refresh_from_db()
    assert (conn.status, conn.refresh_failures) == (ConnectionStatus.ACTIVE, 0)


def test_the_client_does_not_retry_a_lost_refresh_answer(emulator: EmulatorServer) -> None:
    conn = factories.connection(emulator)
    factories.expire_locally(conn)
    emulator.set_fault("token_lost", count=1)
    waits: list[float] = []
    with pytest.raises(RefreshInDoubt):
        IntacctClient(conn, sleep=waits.append).get("accounts-payable/vendor", "1")
    assert waits == []
    assert emulator.token_requests("refresh_token") == 1


# --- invalid_client: one site-wide incident -------------------------------------------------


def test_invalid_client_opens_one_incident_and_pauses_every_connection(
    emulator: EmulatorServer,
    settings: Any,
    received: dict[str, list[dict[str, Any]]],
    commit: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    conns = [factories.connection(emulator, user=u, tenant=f"t-{u}") for u in ("admin", "jane")]
    point_at_emulator(settings, emulator, CLIENT_SECRET=WRONG_SECRET)
    for conn in conns:
        factories.expire_locally(conn)
    with caplog.at_level(logging.DEBUG), commit():
        first = _raises(lambda: tokens.get_access_token(conns[0].pk))
        later = [_raises(functools.partial(tokens.get_access_token, c.pk)) for c in conns * 3]
    assert isinstance(first, ClientCredentialsRejected)
    assert isinstance(first, IntacctConfigurationError)
    assert all(isinstance(err, ClientCredentialsRejected) for err in later)
    assert emulator.token_requests("refresh_token") == 1  # one for the whole site
    incident = SiteIncident.objects.get()
    assert incident.resolved_at is None
    assert incident.error_code == "invalid_client"  # "rfc" error style: no error ID
    assert incident.probe_after > timezone.now()
    # One ERROR line, one signal; no connection touched; no secret anywhere.
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "invalid_client" in errors[0].getMessage()
    assert len(received["client_credentials_rejected"]) == 1
    signal = received["client_credentials_rejected"][0]
    assert (signal["connection"].pk, signal["error_code"], signal["error_id"]) == (
        conns[0].pk,
        "invalid_client",
        "",
    )
    for conn in conns:
        conn.refresh_from_db()
        assert (conn.status, conn.refresh_failures, conn.last_error_code) == ("active", 0, "")
        assert not ConnectionEvent.objects.filter(connection=conn).exists()
    text = "\n".join(r.getMessage() for r in caplog.records) + str(first) + str(later)
    text += repr(signal) + incident.credentials + incident.message
    assert WRONG_SECRET not in text
    assert "demo-secret" not in text


def test_the_incident_probes_with_back_off_and_resolves_when_credentials_work(
    emulator: EmulatorServer, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    conn = factories.connection(emulator)
    point_at_emulator(settings, emulator, CLIENT_SECRET=WRONG_SECRET)
    factories.expire_locally(conn)
    with pytest.raises(ClientCredentialsRejected):
        tokens.get_access_token(conn.pk)
    # The probe is due: one request goes out, fails, and the next probe is later.
    SiteIncident.objects.update(probe_after=timezone.now() - timedelta(seconds=1))
    with pytest.raises(ClientCredentialsRejected):
        tokens.get_access_token(conn.pk)
    assert emulator.token_requests("refresh_token") == 2
    incident = SiteIncident.objects.get()
    assert incident.probe_failures == 1
    assert incident.occurrences == 2
    wait = (incident.probe_after - timezone.now()).total_seconds()
    assert 0.9 * 2 * incidents.INCIDENT_PROBE_BACKOFF_BASE <= wait
    with pytest.raises(ClientCredentialsRejected):
        tokens.get_access_token(conn.pk)
    assert emulator.token_requests("refresh_token") == 2
    # The probe is due and the credentials are fine again: it refreshes and resolves.
    point_at_emulator(settings, emulator)
    SiteIncident.objects.update(probe_after=timezone.now() - timedelta(seconds=1))
    with caplog.at_level(logging.INFO):
        assert tokens.get_access_token(conn.pk)
    assert SiteIncident.objects.get().resolved_at is not None
    assert "accepts this site's client credentials again" in caplog.text
    assert emulator.token_requests("refresh_token") == 3


def test_changed_credentials_are_tried_at_once(emulator: EmulatorServer, settings: Any) -> None:
    """An operator fixed the secret: the incident (about the old one) does not block."""
    conn = factories.connection(emulator)
    point_at_emulator(settings, emulator, CLIENT_SECRET=WRONG_SECRET)
    factories.expire_locally(conn)
    with pytest.raises(ClientCredentialsRejected):
        tokens.get_access_token(conn.pk)
    assert incidents.credentials_incident() is not None
    point_at_emulator(settings, emulator)
    assert incidents.credentials_incident() is None
    assert tokens.get_access_token(conn.pk)
    assert SiteIncident.objects.get().resolved_at is not None
    assert emulator.token_requests("refresh_token") == 2


def test_the_background_refresher_pauses_and_changes_no_connection_on_invalid_client(
    emulator: EmulatorServer, settings: Any, commit: Callable[..., Any]
) -> None:
    due = [factories.connection(emulator, user=u, tenant=f"t-{u}") for u in ("admin", "jane")]
    Connection.objects.update(next_refresh_at=timezone.now() - timedelta(seconds=5))
    point_at_emulator(settings, emulator, CLIENT_SECRET=WRONG_SECRET)
    with commit():
        assert scheduling.dispatch_due_refreshes() == 2  # tasks run eagerly
    assert emulator.token_requests("refresh_token") == 1  # the second failed fast
    started = timezone.now()
    for conn in due:
        conn.refresh_from_db()
        assert conn.status == ConnectionStatus.ACTIVE
        assert conn.refresh_failures == 0
        assert conn.next_refresh_at is not None
        assert conn.next_refresh_at <= started  # still due: refreshed once the pause ends
    # Paused: the dispatcher claims nothing until the probe is due...
    with commit():
        assert scheduling.dispatch_due_refreshes() == 0
    assert emulator.token_requests("refresh_token") == 1
    # ... then exactly one connection, the probe. Intacct accepts the credentials again (the
    # application's secret at Intacct is now the site's): it succeeds and the pause ends.
    emulator.seed_application(DEMO_CLIENT_ID, WRONG_SECRET)
    SiteIncident.objects.update(probe_after=timezone.now() - timedelta(seconds=1))
    with commit():
        assert scheduling.dispatch_due_refreshes() == 1
    assert SiteIncident.objects.get().resolved_at is not None
    with commit():
        assert scheduling.dispatch_due_refreshes() == 1  # the other one, now
    assert emulator.token_requests("refresh_token") == 3
    assert {Token.objects.get(pk=c.pk).version for c in due} == {2}


def test_invalid_client_waiting_callers_raise_the_configuration_error(
    emulator: EmulatorServer, settings: Any
) -> None:
    """What a waiter sees after the lock: the incident the one request recorded."""
    conn = factories.connection(emulator)
    point_at_emulator(settings, emulator, CLIENT_SECRET=WRONG_SECRET)
    factories.expire_locally(conn)
    with pytest.raises(ClientCredentialsRejected):
        tokens.refresh_connection(conn.pk)
    with pytest.raises(ClientCredentialsRejected, match="paused site-wide"):
        tokens.refresh_connection(conn.pk, force=True, seen_version=1)
    assert emulator.token_requests("refresh_token") == 1
