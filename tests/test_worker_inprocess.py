"""A real Celery worker (in-process thread, real broker transport) runs the tasks.

Unlike eager mode this exercises serialisation, routing to the two queues, enqueueing
after commit, acknowledgement, and the worker's own database connection (hence
``transaction=True``)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import celery.contrib.testing.tasks  # noqa: F401 - registers celery.ping
import pytest
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun
from celery.worker import state as worker_state
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from intacct_connect import scheduling, tasks
from intacct_connect.celery import JOBS_QUEUE, REFRESH_QUEUE
from intacct_connect.models import JobRun, Schedule, Token
from intacct_connect.testing.emulator import EmulatorServer
from tests import factories
from tests.celery_app import app
from tests.helpers import Recorder

QUEUES = [REFRESH_QUEUE, JOBS_QUEUE]


@pytest.fixture(scope="module")
def worker() -> Iterator[None]:
    app.conf.task_always_eager = False
    transport_options = app.conf.broker_transport_options
    # The memory transport polls its queues; every 10 ms instead of every second.
    app.conf.broker_transport_options = {**transport_options, "polling_interval": 0.01}
    with app.connection_for_write() as broker:
        for queue in QUEUES:
            broker.SimpleQueue(queue).clear()
    try:
        with start_worker(
            app, pool="solo", perform_ping_check=False, queues=QUEUES, shutdown_timeout=20
        ):
            yield
            # start_worker stops the worker when its loop next checks the stop flag: after
            # the broker poll in progress (up to 2 s), and once more after a last poll.
            # Two messages end both polls at once.
            worker_state.should_terminate = 0  # type: ignore[assignment]
            ping(JOBS_QUEUE)
            ping(JOBS_QUEUE)
    finally:
        app.conf.task_always_eager = settings.CELERY_TASK_ALWAYS_EAGER
        app.conf.broker_transport_options = transport_options


def ping(queue: str, task_id: str | None = None) -> None:
    app.send_task("celery.ping", queue=queue, task_id=task_id)


def drain(*queues: str, timeout: float = 15.0) -> None:
    """Wait until the worker has handled every message published to ``queues`` so far:
    it runs a queue's messages one by one in order (solo pool), so a ping sent now runs
    after all of them. Proves that something was *not* enqueued without a fixed sleep."""
    for queue in queues or QUEUES:
        _ping_and_wait(queue, timeout)


def _ping_and_wait(queue: str, timeout: float) -> None:
    done = threading.Event()
    expected = uuid.uuid4().hex

    def ran(sender: Any = None, task_id: str = "", **kwargs: Any) -> None:
        if task_id == expected:
            done.set()

    task_postrun.connect(ran, weak=False)
    try:
        ping(queue, expected)
        assert done.wait(timeout), f"the worker did not drain {queue} in {timeout} s"
    finally:
        task_postrun.disconnect(ran)


class Finished:
    """The names of the tasks the worker finished (successfully, failed or retrying)."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.changed = threading.Condition()

    def __call__(self, sender: Any = None, task: Any = None, **kwargs: Any) -> None:
        with self.changed:
            self.names.append(str(getattr(task, "name", "")))
            self.changed.notify_all()

    def wait(self, name: str, count: int = 1, timeout: float = 15.0) -> None:
        """Until the worker finished ``name`` ``count`` times. The test then reads the
        database while the worker is idle: SQLite's shared-cache in-memory database fails
        a write that meets another thread's read at once ("database table is locked")."""
        with self.changed:
            done = self.changed.wait_for(lambda: self.names.count(name) >= count, timeout)
        assert done, f"{name} finished {self.names.count(name)} of {count} times in {timeout} s"


@pytest.fixture
def finished() -> Iterator[Finished]:
    recorder = Finished()
    task_postrun.connect(recorder, weak=False)
    yield recorder
    task_postrun.disconnect(recorder)


RUN_JOB = "intacct_connect.run_job"
REFRESH = "intacct_connect.refresh_connection"


@pytest.mark.django_db(transaction=True)
def test_dispatcher_task_fans_out_runs_that_a_worker_executes(
    worker: None, count_job: Recorder, finished: Finished
) -> None:
    conns = [factories.connection(tenant="t1", company=f"CO-{i}") for i in range(3)]
    schedule = factories.schedule(scope="tenant", tenant="t1")
    tasks.dispatch_due_schedules.delay()
    finished.wait(RUN_JOB, 3)
    assert JobRun.objects.filter(status="succeeded").count() == 3
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
def test_runs_are_enqueued_only_after_commit(
    worker: None, count_job: Recorder, finished: Finished
) -> None:
    conn = factories.connection()
    factories.schedule(connection=conn)
    with transaction.atomic():
        scheduling.dispatch_due_schedules()
        run = JobRun.objects.get()
        drain(JOBS_QUEUE)  # had the run been sent, the worker would have run it by now
        assert count_job.calls == []
    finished.wait(RUN_JOB)
    assert JobRun.objects.get(pk=run.pk).status == "succeeded"


@pytest.mark.django_db(transaction=True)
def test_rolled_back_dispatch_enqueues_nothing(worker: None, count_job: Recorder) -> None:
    conn = factories.connection()
    factories.schedule(connection=conn)

    class Rollback(Exception):
        pass

    def dispatch_then_fail() -> None:
        with transaction.atomic():
            scheduling.dispatch_due_schedules()
            raise Rollback

    with pytest.raises(Rollback):
        dispatch_then_fail()
    drain()
    assert count_job.calls == []
    assert not JobRun.objects.exists()
    assert Schedule.objects.get().next_run_at is not None


@pytest.mark.django_db(transaction=True)
def test_transient_failure_is_retried_by_the_worker(
    worker: None, count_job: Recorder, finished: Finished, monkeypatch: pytest.MonkeyPatch
) -> None:
    from intacct_connect.exceptions import RateLimited

    count_job.raise_ = RateLimited("slow down", status_code=429)
    count_job.raise_times = 1  # the first attempt fails, the retry succeeds
    monkeypatch.setattr(scheduling.runs, "JOB_RETRY_BACKOFF", 0.02)  # retry within 20 ms
    run = scheduling.enqueue_run("count_job", factories.connection().pk)
    finished.wait(RUN_JOB, 2)  # the attempt that asks for a retry, then the retry
    assert len(count_job.calls) == 2
    run.refresh_from_db()
    assert run.status == "succeeded"
    assert run.attempt == 2
    assert run.delivery_count == 1


@pytest.mark.django_db(transaction=True)
def test_worker_refreshes_due_connections_through_the_emulator(
    worker: None, intacct_connect_settings: EmulatorServer, finished: Finished
) -> None:
    emulator = intacct_connect_settings
    due = [
        factories.connection(emulator, user=user, expires_in=600, next_refresh_in=-1)
        for user in ("admin", "jane")
    ]
    fresh = factories.connection(emulator, company="SECOND-CO", user="bob", next_refresh_in=3000)
    tasks.dispatch_due_refreshes.delay()
    finished.wait(REFRESH, 2)
    assert [Token.objects.get(pk=c.pk).version for c in due] == [2, 2]
    assert emulator.token_requests(grant_type="refresh_token") == 2
    assert Token.objects.get(pk=fresh.pk).version == 1
    for conn in due:
        conn.refresh_from_db()
        assert conn.next_refresh_at is not None
        assert conn.next_refresh_at > timezone.now()
        assert conn.refresh_failures == 0
