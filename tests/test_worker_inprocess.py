"""A real Celery worker (in-process thread, real broker transport) runs the tasks.

Unlike eager mode this exercises serialisation, routing to the two queues, enqueueing
after commit, acknowledgement, and the worker's own database connection (hence
``transaction=True``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.db import OperationalError, transaction
from django.utils import timezone

from intacct_connect import scheduling, tasks
from intacct_connect.models import JobRun, Schedule, Token
from intacct_connect.testing.emulator import EmulatorServer
from tests.celery_app import app
from tests.job_factories import (
    Recorder,
    count_job,
    emulator_connection,
    make_connection,
    make_schedule,
)

__all__ = ["count_job"]

QUEUES = ["intacct.refresh", "intacct.jobs"]


@pytest.fixture(scope="module")
def worker() -> Iterator[None]:
    app.conf.task_always_eager = False
    with app.connection_for_write() as broker:
        for queue in QUEUES:
            broker.SimpleQueue(queue).clear()
    try:
        with start_worker(
            app, pool="solo", perform_ping_check=False, queues=QUEUES, shutdown_timeout=20
        ):
            yield
    finally:
        app.conf.task_always_eager = settings.CELERY_TASK_ALWAYS_EAGER


def wait_for(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    """Poll ``predicate`` until it holds. The test database is SQLite's shared-cache
    in-memory database, where a read that meets the worker thread's write lock fails at
    once with "database table is locked" (no busy timeout applies): poll again."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except OperationalError as err:
            if "locked" not in str(err):
                raise
        time.sleep(0.05)
    raise AssertionError("condition not met within the timeout")


@pytest.mark.django_db(transaction=True)
def test_dispatcher_task_fans_out_runs_that_a_worker_executes(
    worker: None, count_job: Recorder
) -> None:
    conns = [make_connection(tenant="t1") for _ in range(3)]
    schedule = make_schedule(scope="tenant", tenant="t1")
    tasks.dispatch_due_schedules.delay()
    wait_for(lambda: JobRun.objects.filter(status="succeeded").count() == 3)
    runs = JobRun.objects.filter(schedule=schedule)
    assert sorted(r.connection_id for r in runs) == [c.pk for c in conns]
    for run in runs:
        assert run.task_id
        assert run.delivery_count == 1
        assert run.records_processed == 3
    assert sorted(c for c, _, _ in count_job.calls) == [c.pk for c in conns]
    schedule.refresh_from_db()
    assert schedule.last_run_at is not None


@pytest.mark.django_db(transaction=True)
def test_runs_are_enqueued_only_after_commit(worker: None, count_job: Recorder) -> None:
    conn = make_connection()
    make_schedule(connection=conn)
    with transaction.atomic():
        scheduling.dispatch_due_schedules()
        run = JobRun.objects.get()
        time.sleep(0.5)  # a worker would have picked it up by now if it were sent
        assert count_job.calls == []
    wait_for(lambda: JobRun.objects.get(pk=run.pk).status == "succeeded")


@pytest.mark.django_db(transaction=True)
def test_rolled_back_dispatch_enqueues_nothing(worker: None, count_job: Recorder) -> None:
    conn = make_connection()
    make_schedule(connection=conn)

    class Rollback(Exception):
        pass

    def dispatch_then_fail() -> None:
        with transaction.atomic():
            scheduling.dispatch_due_schedules()
            raise Rollback

    with pytest.raises(Rollback):
        dispatch_then_fail()
    time.sleep(0.5)
    assert count_job.calls == []
    assert not JobRun.objects.exists()
    assert Schedule.objects.get().next_run_at is not None


@pytest.mark.django_db(transaction=True)
def test_transient_failure_is_retried_by_the_worker(
    worker: None, count_job: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from intacct_connect.exceptions import RateLimited

    count_job.raise_ = RateLimited("slow down", status_code=429)
    monkeypatch.setattr(scheduling.runs, "JOB_RETRY_BACKOFF", 1)  # retry within a second
    run = scheduling.enqueue_run("count_job", make_connection().pk)
    wait_for(lambda: len(count_job.calls) >= 1)
    count_job.raise_ = None
    wait_for(lambda: JobRun.objects.get(pk=run.pk).status == "succeeded")
    run.refresh_from_db()
    assert run.attempt == 2
    assert run.delivery_count == 1


@pytest.mark.django_db(transaction=True)
def test_worker_refreshes_due_connections_through_the_emulator(
    worker: None, intacct_connect_settings: EmulatorServer
) -> None:
    emulator = intacct_connect_settings
    due = [
        emulator_connection(emulator, "DEMO-CO", user, expires_in=600, next_refresh_in=-1)
        for user in ("admin", "jane")
    ]
    fresh = emulator_connection(emulator, "SECOND-CO", "bob", next_refresh_in=3000)
    tasks.dispatch_due_refreshes.delay()
    wait_for(lambda: all(Token.objects.get(pk=c.pk).version == 2 for c in due))
    assert emulator.token_requests(grant_type="refresh_token") == 2
    assert Token.objects.get(pk=fresh.pk).version == 1
    for conn in due:
        conn.refresh_from_db()
        assert conn.next_refresh_at is not None
        assert conn.next_refresh_at > timezone.now()
        assert conn.refresh_failures == 0
