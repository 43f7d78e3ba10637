"""A real ``celery worker`` subprocess (prefork, 2 children) against Redis and PostgreSQL.

Run on CI with::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/0 \\
        python -m pytest tests/test_worker_processes.py -m slow

The worker uses the test's database (``DATABASE_URL`` names the pytest-django test
database), a private Redis database as broker and the test's emulator.
"""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import psutil
import pytest
from celery import Celery
from django.conf import settings
from django.db import connection, connections
from django.utils import timezone

from intacct_connect import concurrency, scheduling
from intacct_connect.celery import task_routes
from intacct_connect.models import (
    Connection,
    JobRun,
    Schedule,
    StoredRecord,
    Watermark,
)
from intacct_connect.testing.emulator import EmulatorServer
from tests import factories
from tests.celery_app import app

ROOT = Path(__file__).resolve().parent.parent
QUEUES = "intacct.refresh,intacct.jobs"
VENDORS = {
    "object": "accounts-payable/vendor",
    "fields": ["key", "id", "name", "audit.modifiedDateTime"],
    "watermark_field": "audit.modifiedDateTime",
    "page_size": 100,
}


def broker_url() -> str:
    """REDIS_URL with database 14, so the test's queues stay private."""
    parts = urlsplit(os.environ["REDIS_URL"])
    return urlunsplit((parts.scheme, parts.netloc, "/14", "", ""))


def wait_for(predicate: Callable[[], bool], timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        gc.collect()  # connections of ended threads that sit in reference cycles
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what or 'a condition'}")


class Worker:
    def __init__(self, proc: subprocess.Popen[bytes], log: Path, sender: Celery) -> None:
        self.proc = proc
        self.log = log
        self.sender = sender

    def children(self) -> list[psutil.Process]:
        return psutil.Process(self.proc.pid).children(recursive=True)

    def send(self, name: str, *args: object) -> None:
        self.sender.send_task(name, args=args)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def worker(intacct_connect_settings: EmulatorServer, tmp_path: Path) -> Iterator[Worker]:
    if not os.environ.get("REDIS_URL"):  # the redis marker skips first; keep mypy calm
        pytest.skip("needs REDIS_URL")
    sender = Celery("sender", broker=broker_url())
    sender.conf.task_routes = task_routes
    with sender.connection_for_write() as conn:
        for queue in QUEUES.split(","):
            conn.SimpleQueue(queue).clear()
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.worker_settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "INTACCT_WORKER_BROKER_URL": broker_url(),
        "INTACCT_WORKER_API_BASE_URL": intacct_connect_settings.base_url,
        "INTACCT_WORKER_TEST_JOBS": "1",
        "PYTHONPATH": str(ROOT),
    }
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "tests.celery_app", "worker",
                "-P", "prefork", "-c", "2", "-Q", QUEUES, "--loglevel", "INFO",
                "-n", f"test-{uuid.uuid4().hex[:8]}@%h",
                "--without-heartbeat", "--without-mingle", "--without-gossip",
            ],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    handle = Worker(proc, log, sender)
    try:
        wait_for(lambda: "ready." in handle.output() or proc.poll() is not None, 60, "worker")
        assert proc.poll() is None, handle.output()
        yield handle
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            for child in psutil.Process(proc.pid).children(recursive=True):
                child.kill()
            proc.kill()
            proc.wait(10)
        sender.close()
        wait_for_other_sessions_to_end()


def wait_for_other_sessions_to_end(timeout: float = 20.0) -> None:
    """Let the worker's (or threads') PostgreSQL sessions end before the test database is
    flushed or dropped."""
    concurrency.close_private_connection()  # the API client's slot connection (this thread)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"
            )
            (others,) = cursor.fetchone()
        if not others:
            return
        time.sleep(0.2)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, client_port, state, left(query, 80) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        rows = cursor.fetchall()
    raise AssertionError(f"database sessions left behind: {rows}")


def child_talking_to(worker: Worker, port: int) -> psutil.Process | None:
    for child in worker.children():
        try:
            conns = child.net_connections(kind="tcp")
        except psutil.Error:
            continue
        if any(c.raddr and c.raddr.port == port for c in conns):
            return child
    return None


pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.mark.slow
@pytest.mark.redis
def test_worker_refreshes_due_connections(
    worker: Worker, intacct_connect_settings: EmulatorServer
) -> None:
    emulator = intacct_connect_settings
    conns = [
        factories.connection(emulator, user=user, expires_in=600, next_refresh_in=-1)
        for user in ("admin", "jane")
    ]
    worker.send("intacct_connect.dispatch_due_refreshes")
    wait_for(
        lambda: all(t == 2 for t in Connection.objects.values_list("token__version", flat=True)),
        60,
        "refreshes",
    )
    assert emulator.token_requests(grant_type="refresh_token") == len(conns)


@pytest.mark.slow
@pytest.mark.redis
def test_killed_child_mid_run_is_redelivered_and_completes(
    worker: Worker, intacct_connect_settings: EmulatorServer
) -> None:
    emulator = intacct_connect_settings
    conn = factories.connection(emulator)
    first = JobRun.objects.create(job="query_to_storage", connection=conn, params=VENDORS)
    previous = scheduling.execute_run(first.pk)
    assert previous is not None
    assert previous.status == "succeeded"  # previous data
    before = sorted(StoredRecord.objects.values_list("key", "data"))
    mark = Watermark.objects.get(connection=conn)
    emulator.generate_records("DEMO-CO", "accounts-payable/vendor", 50)
    port = urlsplit(emulator.base_url).port
    assert port is not None
    emulator.set_fault("slow", company="DEMO-CO", endpoint="api", count=1, seconds=8)
    run = JobRun.objects.create(job="query_to_storage", connection=conn, params=VENDORS)
    worker.send("intacct_connect.run_job", run.pk)
    wait_for(lambda: child_talking_to(worker, port) is not None, 30, "the run's API call")
    victim = child_talking_to(worker, port)
    assert victim is not None
    # mid-run: the run is running, nothing of it is stored yet
    assert JobRun.objects.get(pk=run.pk).status == "running"
    assert sorted(StoredRecord.objects.values_list("key", "data")) == before
    victim.send_signal(signal.SIGKILL)
    assert sorted(StoredRecord.objects.values_list("key", "data")) == before
    assert Watermark.objects.get(pk=mark.pk).value == mark.value
    wait_for(lambda: JobRun.objects.get(pk=run.pk).status == "succeeded", 90, "redelivery")
    run.refresh_from_db()
    assert run.delivery_count == 2, worker.output()[-3000:]
    total = emulator.record_count("DEMO-CO", "accounts-payable/vendor")
    assert run.records_processed == total  # the new rows share no timestamp with the old
    assert StoredRecord.objects.filter(connection=conn).count() == total  # no duplicate
    assert len(set(StoredRecord.objects.values_list("key", flat=True))) == total
    assert "WorkerLostError" in worker.output() or "SIGKILL" in worker.output()


@pytest.mark.slow
@pytest.mark.redis
def test_run_that_keeps_killing_its_worker_is_parked(worker: Worker, tmp_path: Path) -> None:
    conn = factories.connection()
    log = tmp_path / "deliveries.log"
    run = JobRun.objects.create(
        job="test_kill_own_worker", connection=conn, params={"log": str(log)}
    )
    worker.send("intacct_connect.run_job", run.pk)
    wait_for(lambda: JobRun.objects.get(pk=run.pk).status == "parked", 120, "parking")
    run.refresh_from_db()
    assert run.error_code == "max_deliveries"
    assert run.delivery_count == cast(int, settings.INTACCT_CONNECT.get("MAX_DELIVERIES", 3)) + 1
    pids = log.read_text().split()
    assert len(pids) == 3  # ran (and died) exactly MAX_DELIVERIES times
    time.sleep(2)  # not requeued again
    assert len(log.read_text().split()) == 3
    assert worker.proc.poll() is None


def _race(targets: list[Callable[[], list[int]]]) -> list[list[int]]:
    barrier = threading.Barrier(len(targets))
    results: list[list[int]] = [[] for _ in targets]
    errors: list[BaseException] = []

    def runner(i: int) -> None:
        try:
            barrier.wait()
            results[i] = targets[i]()
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=runner, args=(i,)) for i in range(len(targets))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    return results


def test_two_dispatchers_racing_claim_every_due_item_once(settings: Any) -> None:
    """Two dispatcher threads (own PostgreSQL connections) at once: SKIP LOCKED claims."""
    settings.INTACCT_CONNECT = {**settings.INTACCT_CONNECT, "DISPATCH_BATCH_SIZE": 25}
    due = [
        factories.connection(company=f"CO-{i}", next_refresh_in=-1, with_token=False)
        for i in range(400)
    ]
    from intacct_connect import jobs

    jobs.register("race_job")(lambda client, ctx: 0)
    schedules = [factories.schedule("race_job", connection=c) for c in due[:300]]
    app.conf.task_always_eager = False  # messages go to the (memory) broker, not run here
    try:

        def refreshes() -> list[int]:
            claimed: list[int] = []
            while batch := scheduling.claim_due_refreshes():
                claimed += [pk for pk, _ in batch]
            return claimed

        def schedules_() -> list[int]:
            runs: list[int] = []
            while batch := scheduling.claim_due_schedules():
                runs += [cast(int, r.schedule_id) for r in batch]
            return runs

        a, b = _race([refreshes, refreshes])
        assert not set(a) & set(b)
        assert sorted(a + b) == sorted(c.pk for c in due)
        c, d = _race([schedules_, schedules_])
        assert sorted(c + d) == sorted(s.pk for s in schedules)
        assert JobRun.objects.count() == len(schedules)
        assert not Schedule.objects.filter(next_run_at__lte=timezone.now()).exists()
    finally:
        app.conf.task_always_eager = True
        jobs.unregister("race_job")
        wait_for_other_sessions_to_end()
