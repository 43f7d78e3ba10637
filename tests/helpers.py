"""Small helpers shared by the test modules (objects are made in ``factories``, fixtures
live in ``conftest``)."""

from __future__ import annotations

import os
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from django.db import DEFAULT_DB_ALIAS, connection, connections

if TYPE_CHECKING:
    from intacct_connect.testing.emulator import EmulatorServer


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


class FakeSleep:
    """A ``sleep`` that records the delays instead of waiting, and a ``clock`` that moves
    forward by what was "slept" (so call durations still include the waits)."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)

    def clock(self) -> float:
        return time.monotonic() + sum(self.delays)


#: Short retry backoffs (the waits are recorded, not slept: see the ``fake_sleep`` fixture;
#: the worker subprocesses of the race tests sleep them for real).
FAST_RETRIES = {"RETRY_BACKOFF": 0.01, "RETRY_BACKOFF_MAX": 0.05}


def point_at_emulator(settings: Any, emulator: EmulatorServer, **overrides: Any) -> None:
    """Merge the emulator's URLs and credentials, FAST_RETRIES and ``overrides`` into
    ``settings.INTACCT_CONNECT``."""
    current = dict(settings.INTACCT_CONNECT)
    current.update(emulator.connect_settings(redirect_uri=current["REDIRECT_URI"]))
    current.update(FAST_RETRIES)
    current.update(overrides)
    settings.INTACCT_CONNECT = current


def finish_emulator_requests(before: set[threading.Thread], timeout: float = 10.0) -> None:
    """Wait until the emulator's socket server has answered every request it accepted
    after ``before = set(threading.enumerate())`` was taken (one handler thread per
    connection). This thread's pooled connections are closed first, so handlers idling
    on a keep-alive connection end too. For a request whose answer the client gave up on:
    the test then sees what the emulator did once it finished, without a fixed sleep."""
    from intacct_connect import http

    http.forget_sessions()
    for thread in set(threading.enumerate()) - before:
        if thread.name.endswith("(process_request_thread)"):
            thread.join(timeout)
            assert not thread.is_alive(), f"the emulator is still answering ({thread.name})"


class Recorder:
    """What the ``count_job`` test job saw (``calls``), what it raises (``raise_``: on
    every call, or on the next ``raise_times`` calls only) and how many records it
    reports."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int, dict[str, Any]]] = []
        self.raise_: BaseException | None = None
        self.raise_times: int | None = None
        self.records = 3

    def maybe_raise(self) -> None:
        if self.raise_ is None or self.raise_times == 0:
            return
        if self.raise_times is not None:
            self.raise_times -= 1
        raise self.raise_


def run_released_together(
    command: list[str], *, count: int, env: dict[str, str], cwd: str | os.PathLike[str]
) -> list[str]:
    """Start ``count`` processes of ``command``; each prints ``ready`` once set up, then
    waits for ``go`` on stdin. All are released at once, so they race for real. Returns
    each process's stdout (every process must exit 0); kills stragglers on failure."""
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


def run_in_threads(count: int, work: Callable[[], Any]) -> list[Any]:
    """Run ``work`` in ``count`` threads released together; returns results or errors.
    Each thread closes its database connections (default and private) when it ends."""
    import threading

    from django.db import connection as db_connection

    from intacct_connect import concurrency

    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(index: int) -> None:
        try:
            barrier.wait(10)
            results[index] = work()
        except BaseException as err:
            results[index] = err
        finally:
            concurrency.close_private_connection()
            db_connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def cache_config(kind: str, location: str = "tests") -> dict[str, Any]:
    """A ``CACHES`` entry: the real Redis at ``REDIS_URL`` (``kind="redis"``, keys under a
    prefix of their own) or a ``LocMemCache`` named ``location``."""
    if kind == "redis":
        return {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["REDIS_URL"],
            "KEY_PREFIX": f"test-{uuid.uuid4().hex}",  # isolated from other runs
        }
    return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": location}
