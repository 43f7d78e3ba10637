"""Proof 4 of issue 12, sized for CI (the full size: ``bench/proof_redis_restart.py``): the
broker, a private ``redis-server`` with the append-only file on, restarted while a beat and
two workers run database schedules, on PostgreSQL.

Also the worker-side guard the proof needed (``intacct_connect.celery.guard_redis_channels``):
kombu's Redis channel raising ``AttributeError`` instead of a connection error once its
connection was closed ended the worker after a restart (``docs/reliability.rst``)."""

from __future__ import annotations

import importlib
import logging
import os
import shutil
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kombu
import pytest
import redis
from kombu import Consumer, Exchange, Queue
from kombu.common import ignore_errors

from bench.proof_harness import REDIS_SERVER, RedisServer, cluster
from bench.proof_redis_restart import run_restarts
from intacct_connect import celery as intacct_celery
from intacct_connect.testing.emulator import EmulatorServer

kombu_redis: Any = importlib.import_module("kombu.transport.redis")  # beyond celery-types


def require_redis_server() -> None:
    """The proofs start their own ``redis-server``: skip without the binary, and fail
    instead when ``INTACCT_REQUIRE_REDIS`` is set (CI)."""
    if shutil.which(REDIS_SERVER) or os.access(REDIS_SERVER, os.X_OK):
        return
    reason = f"needs the redis-server binary ({REDIS_SERVER})"
    if os.environ.get("INTACCT_REQUIRE_REDIS"):
        pytest.fail(f"INTACCT_REQUIRE_REDIS is set but this test {reason}")
    pytest.skip(reason)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    require_redis_server()
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def unguarded(monkeypatch: pytest.MonkeyPatch) -> Any:
    """kombu's own ``Channel._connparams`` for the test (the guard may be installed in this
    process: a worker_init test or the app's worker signal); returns the guarded one's
    installer."""
    current = kombu_redis.Channel._connparams
    monkeypatch.setattr(
        kombu_redis.Channel, "_connparams", getattr(current, "__wrapped__", current)
    )
    return intacct_celery.guard_redis_channels


# --- the guard ------------------------------------------------------------------------


def test_guard_covers_the_installed_kombu() -> None:
    """The guard is measured on these kombu versions only; on another one, run
    ``bench/proof_redis_restart.py`` again and move ``REDIS_GUARD_KOMBU_VERSIONS`` (or drop
    the guard if kombu fixed ``Channel._connparams``)."""
    low, high = intacct_celery.REDIS_GUARD_KOMBU_VERSIONS
    version: Any = kombu
    assert low <= tuple(version.VERSION[:2]) < high, version.__version__


def test_closed_channel_raises_a_connection_error(unguarded: Any) -> None:
    """What the worker's log shows, without and with the guard: a channel whose transport
    was dropped (``transport.client = None``) or that was closed (``connection = None``)."""
    dropped = types.SimpleNamespace(connection=types.SimpleNamespace(client=None))
    closed = types.SimpleNamespace(connection=None)
    with pytest.raises(AttributeError, match="hostname"):
        kombu_redis.Channel._connparams(dropped)
    assert unguarded() is True
    assert unguarded() is True  # idempotent
    for channel in (dropped, closed):
        with pytest.raises(redis.exceptions.ConnectionError, match="connection of this Redis"):
            kombu_redis.Channel._connparams(channel)
    assert redis.exceptions.ConnectionError in kombu_redis.Transport.connection_errors


def test_guard_is_installed_when_a_worker_starts(unguarded: Any) -> None:
    from celery import Celery
    from celery.signals import worker_init

    import intacct_connect.tasks  # noqa: F401  - connects the receiver

    assert not getattr(kombu_redis.Channel._connparams, "intacct_guard", False)
    # A worker of another app: the Django fixup of the test app ignores it.
    other = Celery("guard-test", set_as_current=False)

    class OtherWorker:
        app = other

    try:
        worker_init.send(sender=OtherWorker())
    finally:
        other.close()
    assert kombu_redis.Channel._connparams.intacct_guard


def test_guard_not_installed_outside_the_measured_versions(
    unguarded: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(intacct_celery, "REDIS_GUARD_KOMBU_VERSIONS", ((4, 0), (4, 1)))
    assert unguarded() is False
    assert not getattr(kombu_redis.Channel._connparams, "intacct_guard", False)


@pytest.mark.redis
@pytest.mark.parametrize("guarded", [False, True], ids=["kombu", "guarded"])
def test_connection_lost_mid_close(
    private_redis: RedisServer, unguarded: Any, guarded: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """Celery's consumer on a connection loss (``on_connection_error_after_connected``):
    ``collect()``, then ``close()`` under ``ignore_errors``, then the late ack of a task
    that finished meanwhile (``Message.ack_log_error``). The first close of the channel
    fails in the pending ``BRPOP`` read, so the channel is still open with unacknowledged
    messages when ``collect()`` drops the transport: kombu then raises ``AttributeError``
    (which ended the worker), the guard a connection error (ignored, logged)."""
    if guarded:
        assert unguarded() is True
    conn = kombu.Connection(private_redis.url)
    queue = Queue("guard-proof", Exchange("guard-proof"), "guard-proof")
    with conn.Producer() as producer:
        for n in range(2):
            producer.publish({"n": n}, exchange=queue.exchange, routing_key=queue.routing_key,
                             declare=[queue])  # fmt: skip
    got: list[Any] = []
    consumer = Consumer(conn.default_channel, [queue], callbacks=[lambda _, m: got.append(m)])
    consumer.qos(prefetch_count=2)
    consumer.consume()
    conn.drain_events(timeout=5)
    conn.drain_events(timeout=5)
    channel = got[0].channel

    def brpop_lost(**kwargs: Any) -> None:
        raise redis.exceptions.ConnectionError("Connection closed by server.")

    channel._in_poll = channel.client.connection  # a BRPOP waiting, as in the event loop
    channel._brpop_read = brpop_lost
    private_redis.stop()
    conn.collect(socket_timeout=1)
    assert not channel.closed
    assert channel.connection.client is None  # the transport is dropped
    channel._in_poll = None  # the read's disconnect ended the poll
    private_redis.start()
    if not guarded:
        with pytest.raises(AttributeError, match="hostname"):
            ignore_errors(conn, conn.close)
        with pytest.raises(AttributeError, match="hostname"):
            got[1].ack_log_error(logging.getLogger(__name__), conn.connection_errors)
        return
    ignore_errors(conn, conn.close)
    with caplog.at_level(logging.CRITICAL):
        got[1].ack_log_error(logging.getLogger(__name__), conn.connection_errors)
    assert "Couldn't ack" in caplog.text
    # Still in Redis's unacked set (AOF): restored after the visibility timeout.
    assert redis.Redis.from_url(private_redis.url).hlen("unacked") == 2


# --- the proof ------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_redis_restarted_workers_resume_no_run_lost(
    intacct_connect_settings: EmulatorServer, short_periods: None, tmp_path: Path
) -> None:
    require_redis_server()
    restarts, period = 2, 10
    server = RedisServer(tmp_path)
    server.start()
    try:
        with cluster(
            server.url,
            intacct_connect_settings.base_url,
            PROOF_MIN_INTERVAL="1",
            PROOF_REDISPATCH_SECONDS=str(period // 2),
        ) as group:
            group.worker(concurrency=2)
            group.worker(concurrency=2)
            group.beat()
            out, figures = run_restarts(group, server, restarts, period, 8, down=2.0)
    finally:
        server.stop()
    summary = (out.violations, figures, out.figures())
    assert not out.violations, summary
    assert figures["restarts"] == restarts, summary
    assert figures["restarts after which every worker ran jobs"] == f"{restarts}/{restarts}"
    assert figures["worker processes alive at the end"] == "2/2", summary
    assert figures["scheduled runs lost (failed or never finished)"] == 0, summary
    assert out.longest_gap_periods <= 2, summary
    assert out.overlaps == out.double_periods == 0, summary
    # An execution interrupted by the connection loss is run again; a job that had run to
    # its end never is.
    assert out.completed_twice == out.started_after_end == 0, summary
    assert out.runs["succeeded"] >= restarts * 8, summary
