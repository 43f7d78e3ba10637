"""Single-flight refresh across threads and processes, on PostgreSQL row locks.

The emulator runs with reuse detection on (its default): if two refresh requests carried
the same refresh token, the second would revoke the whole grant. Every test checks that
exactly one refresh request reached the emulator and that the grant is still active.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from django.db import connection as db_connection
from django.db import transaction

from intacct_connect import crypto, oauth, tokens
from intacct_connect.client import IntacctClient
from intacct_connect.exceptions import GrantRejected, NeedsReauthorization
from intacct_connect.models import Connection, ConnectionStatus, Token
from intacct_connect.testing.emulator import EmulatorServer
from tests import factories
from tests.helpers import FAST_RETRIES, require_postgres, run_in_threads, run_released_together

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _postgres_only() -> None:
    require_postgres()


def _assert_one_refresh(emulator: EmulatorServer, conn: Connection) -> Token:
    assert emulator.token_requests("refresh_token") == 1
    assert [g["status"] for g in emulator.grants("DEMO-CO")] == ["active"]
    token = Token.objects.get(pk=conn.pk)
    assert token.version == 2
    conn.refresh_from_db()
    assert conn.status == ConnectionStatus.ACTIVE
    return token


@pytest.mark.parametrize("threads", [2, 8])
def test_threads_with_an_expired_token_refresh_once(emulator: EmulatorServer, threads: int) -> None:
    conn = factories.connection(emulator)
    factories.expire_locally(conn)
    results = run_in_threads(threads, lambda: tokens.get_access_token(conn.pk))
    token = _assert_one_refresh(emulator, conn)
    assert results == [token.access_token] * threads


def test_threads_rejected_by_intacct_refresh_once(emulator: EmulatorServer) -> None:
    """Intacct answers 401 GW-0040 to every thread at once: one refresh, every call replayed."""
    conn = factories.connection(emulator)
    emulator.expire_tokens("DEMO-CO")
    results = run_in_threads(4, lambda: IntacctClient(conn.pk).get("accounts-payable/vendor", "1"))
    _assert_one_refresh(emulator, conn)
    assert [r["key"] for r in results] == ["1"] * 4


def _spawn_workers(
    emulator: EmulatorServer, conn: Connection, mode: str, count: int
) -> list[dict[str, Any]]:
    """Start ``count`` worker processes on the test database, release them together."""
    name = db_connection.settings_dict["NAME"]
    assert name.startswith("test_"), name  # never the development database
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{name}",
        "INTACCT_TEST_SETTINGS": json.dumps({**emulator.connect_settings(), **FAST_RETRIES}),
    }
    outputs = run_released_together(
        [sys.executable, "-m", "tests.token_worker", mode, str(conn.pk)],
        count=count,
        env=env,
        cwd=ROOT,
    )
    return [json.loads(out.strip().splitlines()[-1]) for out in outputs]


@pytest.mark.slow
def test_processes_with_an_expired_token_refresh_once(emulator: EmulatorServer) -> None:
    conn = factories.connection(emulator)
    factories.expire_locally(conn)
    outcomes = _spawn_workers(emulator, conn, "token", 2)
    token = _assert_one_refresh(emulator, conn)
    assert [o.get("error") for o in outcomes] == [None, None]
    assert {o["fingerprint"] for o in outcomes} == {crypto.fingerprint(token.access_token)}
    assert len({o["pid"] for o in outcomes}) == 2


@pytest.mark.slow
def test_processes_rejected_by_intacct_refresh_once(emulator: EmulatorServer) -> None:
    conn = factories.connection(emulator)
    emulator.expire_tokens("DEMO-CO")
    outcomes = _spawn_workers(emulator, conn, "client", 3)
    token = _assert_one_refresh(emulator, conn)
    assert [o.get("error") for o in outcomes] == [None] * 3
    assert [o["key"] for o in outcomes] == ["1"] * 3
    assert {o["fingerprint"] for o in outcomes} == {crypto.fingerprint(token.access_token)}


@pytest.mark.slow
def test_processes_share_the_company_concurrency_cap(emulator: EmulatorServer) -> None:
    """Three processes call one slow company: the cap (2) holds across processes, so
    Intacct's own limit of 2 concurrent requests is never hit."""
    emulator.configure(concurrency_limit=2)
    emulator.set_fault("slow", company="DEMO-CO", seconds=0.1)
    conn = factories.connection(emulator)
    outcomes = _spawn_workers(emulator, conn, "calls", 3)
    assert [o.get("error") for o in outcomes] == [None] * 3
    assert [o["keys"] for o in outcomes] == [["1"] * 4] * 3
    assert emulator.max_concurrency("DEMO-CO") == 2
    assert emulator.counters()["throttled"].get("DEMO-CO", 0) == 0


def test_background_refresh_skips_a_connection_being_refreshed(emulator: EmulatorServer) -> None:
    """wait=False returns None at once while another worker holds the row lock."""
    conn = factories.connection(emulator)
    locked = threading.Event()
    release = threading.Event()

    def hold_lock() -> None:
        try:
            with transaction.atomic():
                Connection.objects.select_for_update().get(pk=conn.pk)
                locked.set()
                release.wait(10)
        finally:
            db_connection.close()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert locked.wait(10)
        assert tokens.refresh_connection(conn.pk, force=True, wait=False) is None
    finally:
        release.set()
        holder.join(10)
    assert emulator.token_requests() == 0
    refreshed = tokens.refresh_connection(conn.pk, force=True, wait=False)
    assert refreshed is not None
    assert refreshed.version == 2


def test_invalid_grant_under_the_lock_is_the_outcome_even_if_an_unlocked_writer_races(
    emulator: EmulatorServer,
) -> None:
    """An actor outside the lock protocol (it neither refreshes through ``tokens`` nor locks
    the connection before writing) rotates the refresh token at Intacct right after our
    locked read, then writes its tokens: its write waits for our row lock (the token row is
    locked together with the connection). Our request with the old refresh token gets
    invalid_grant, and that outcome is committed *before* the lock is released, so that any
    waiter answers from it (single flight on every outcome, issue 12). The actor's write
    lands afterwards and leaves the status alone: a writer of new tokens from Intacct must
    lock the connection first and set its status, as the connect and reconnect flows do."""
    emulator.configure(refresh_mode="rotate")  # reuse detection would revoke the grant
    conn = factories.connection(emulator)
    factories.expire_locally(conn)
    old_refresh_token = str(Token.objects.get(pk=conn.pk).refresh_token)
    token_table = Token._meta.db_table
    rotated_at_intacct = threading.Event()
    racers: list[threading.Thread] = []
    written: list[int] = []

    def other_actor() -> None:
        try:
            issued = oauth.refresh(old_refresh_token)
            rotated_at_intacct.set()
            stored = Token.objects.get(pk=conn.pk)
            stored.access_token = issued.access_token
            stored.refresh_token = issued.refresh_token or stored.refresh_token
            stored.expires_at = issued.expires_at
            stored.version += 1
            stored.save()  # waits for the refresh transaction's row lock
            written.append(stored.version)
        finally:
            rotated_at_intacct.set()
            db_connection.close()

    def race(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        locking = "FOR NO KEY UPDATE" in sql
        result = execute(sql, params, many, context)
        if locking and token_table in sql and not racers:  # our locked read of the token
            racers.append(threading.Thread(target=other_actor))
            racers[0].start()
            assert rotated_at_intacct.wait(30)
        return result

    with db_connection.execute_wrapper(race), pytest.raises(GrantRejected):
        tokens.refresh_connection(conn.pk)
    assert racers  # the race was injected
    racers[0].join(30)
    assert written == [2]  # the actor's write waited for our lock, then landed
    assert emulator.token_requests("refresh_token") == 2  # the actor's and ours
    conn.refresh_from_db()
    assert conn.status == ConnectionStatus.NEEDS_REAUTH
    assert conn.events.filter(kind="needs_reauth").count() == 1
    with pytest.raises(NeedsReauthorization):
        tokens.get_access_token(conn.pk)
    assert emulator.token_requests("refresh_token") == 2


def _hold_token_row_lock(pk: int, locked: threading.Event, release: threading.Event) -> None:
    """In another connection: lock the token row alone (as ``rotate_keys`` does)."""
    try:
        with transaction.atomic():
            Token.objects.select_for_update(no_key=True).get(pk=pk)
            locked.set()
            release.wait(30)
    finally:
        locked.set()
        db_connection.close()


def test_background_refresh_skips_a_token_row_locked_elsewhere(emulator: EmulatorServer) -> None:
    """The token row is locked together with the connection, before the token request: a
    background refresh (``wait=False``) that finds it locked by someone else returns at once
    without calling Intacct (it used to call Intacct, then wait to write the new token)."""
    conn = factories.connection(emulator)
    factories.expire_locally(conn)
    locked, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold_token_row_lock, args=(conn.pk, locked, release))
    holder.start()
    try:
        assert locked.wait(10)
        assert tokens.refresh_connection(conn.pk, force=True, wait=False, seen_version=1) is None
        assert emulator.token_requests("refresh_token") == 0
    finally:
        release.set()
        holder.join(30)
    # Once the lock is gone the same call refreshes.
    token = tokens.refresh_connection(conn.pk, force=True, wait=False, seen_version=1)
    assert token is not None
    assert token.version == 2
    _assert_one_refresh(emulator, conn)


def test_a_refresh_waiting_for_the_lock_reads_the_newest_token(emulator: EmulatorServer) -> None:
    """A refresh that waits on the lock while another transaction rotates the token (and
    touches the connection row) reads the rotated token after the lock: it does not
    refresh again with the old refresh token (reuse detection would revoke the grant)."""
    conn = factories.connection(emulator)
    factories.expire_locally(conn)
    locked, release = threading.Event(), threading.Event()
    results: list[Any] = []

    def winner() -> None:
        try:
            with transaction.atomic():
                tokens._lock_for_refresh(conn.pk, wait=True)
                locked.set()
                release.wait(30)
                tokens._locked_refresh(conn.pk, True, True, None, tokens._Attempt())
        finally:
            locked.set()
            db_connection.close()

    def waiter() -> None:
        try:
            results.append(tokens.refresh_connection(conn.pk))  # not forced: still needed?
        except BaseException as err:
            results.append(err)
        finally:
            db_connection.close()

    first = threading.Thread(target=winner)
    first.start()
    assert locked.wait(10)
    second = threading.Thread(target=waiter)
    second.start()
    second.join(0.5)  # the waiter's statement has started and waits on the lock
    assert second.is_alive()
    release.set()
    first.join(30)
    second.join(30)
    token = _assert_one_refresh(emulator, conn)
    assert [getattr(r, "version", r) for r in results] == [token.version]
