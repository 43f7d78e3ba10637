"""Reliability invariants of every task the app registers, payloads, example settings."""

from __future__ import annotations

import json
import re
import runpy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from celery import Task
from django.conf import settings
from django.db import connection as db_connection
from django.db import transaction
from django.test.utils import CaptureQueriesContext

from intacct_connect import celery as intacct_celery
from intacct_connect import scheduling, tasks, tokens
from intacct_connect.conf import app_settings
from intacct_connect.exceptions import InvalidGrant
from intacct_connect.models import (
    ConnectionEvent,
    JobRun,
    SiteIncident,
    TaskDelivery,
    Token,
    TokenJournalEntry,
)
from intacct_connect.testing.emulator import EmulatorServer
from tests import factories
from tests.celery_app import app
from tests.helpers import Recorder, require_postgres

MAX_COUNTDOWN = 15 * 60
ROOT = Path(__file__).resolve().parent.parent


TASK_NAMES = (
    "intacct_connect.dispatch_due_refreshes",
    "intacct_connect.refresh_connection",
    "intacct_connect.dispatch_due_schedules",
    "intacct_connect.run_job",
    "intacct_connect.prune_api_call_log",
    "intacct_connect.prune_job_runs",
    "intacct_connect.purge_authorization_requests",
)


def app_tasks() -> dict[str, Task[Any, Any]]:
    """Every task registered under the app's prefix (intacct_connect.tasks is imported)."""
    found = {name: task for name, task in app.tasks.items() if name.startswith("intacct_connect.")}
    assert found, "no intacct_connect task registered"
    return found


def _total(timeout: tuple[float, float]) -> float:
    return float(sum(timeout))


def test_the_app_registers_the_documented_tasks() -> None:
    assert set(app_tasks()) == set(TASK_NAMES)
    assert set(intacct_celery.task_routes) == set(app_tasks())


@pytest.mark.parametrize("name", TASK_NAMES)
def test_reliability_invariants(name: str) -> None:
    task = app_tasks()[name]
    # idempotent tasks: acknowledged after they finish, requeued if the worker dies ...
    assert task.acks_late is True
    assert task.reject_on_worker_lost is True
    # ... with a bound on redeliveries counted in the database
    assert getattr(task, "max_deliveries_counted", False) is True
    assert 1 <= app_settings.MAX_DELIVERIES <= 10
    assert task.ignore_result is True
    soft, hard = task.soft_time_limit, task.time_limit
    assert soft is not None
    assert hard is not None
    assert soft < hard
    # a blocked HTTP call must end before the soft limit interrupts cleanup
    assert _total(app_settings.HTTP_TIMEOUT) < soft
    assert _total(app_settings.TOKEN_HTTP_TIMEOUT) + tokens.LOCK_TIMEOUT_SECONDS < soft
    # Redis redelivers unacked messages after the visibility timeout
    assert hard * 2 <= intacct_celery.VISIBILITY_TIMEOUT
    # retries are explicit (run_job, transient errors only), never automatic elsewhere
    assert not getattr(task, "autoretry_for", ())
    if name == "intacct_connect.run_job":
        assert task.max_retries == scheduling.JOB_MAX_RETRIES <= 10


def test_leases_and_claims_outlive_hard_limits() -> None:
    run_job = app_tasks()["intacct_connect.run_job"]
    refresh = app_tasks()["intacct_connect.refresh_connection"]
    assert run_job.time_limit is not None
    assert refresh.time_limit is not None
    assert scheduling.JOB_LEASE_SECONDS >= run_job.time_limit
    assert scheduling.REFRESH_CLAIM_SECONDS >= refresh.time_limit
    assert max(scheduling.retry_countdown(n) for n in range(20)) <= MAX_COUNTDOWN


def test_no_countdown_or_eta_beyond_15_minutes_in_the_code() -> None:
    """Static check of every call site: literal countdowns/ETAs stay under 15 minutes."""
    pattern = re.compile(r"\b(countdown|eta|expires)\s*=\s*([0-9_.]+)")
    for path in (ROOT / "intacct_connect").rglob("*.py"):
        for match in pattern.finditer(path.read_text()):
            assert float(match.group(2).replace("_", "")) <= MAX_COUNTDOWN, (path, match.group(0))
    for entry in intacct_celery.beat_schedule.values():
        assert entry["options"]["expires"] <= entry["schedule"]


def test_transient_and_permanent_errors_do_not_overlap() -> None:
    for permanent in scheduling.PERMANENT_ERRORS:
        # execute_run checks PERMANENT_ERRORS first, so a subclass of a transient error
        # (InvalidGrant is a TokenRequestError) is still never retried
        assert permanent not in scheduling.TRANSIENT_ERRORS


@pytest.mark.django_db
def test_permanent_errors_are_never_retried(count_job: Recorder) -> None:
    count_job.raise_ = InvalidGrant("revoked", code="invalid_grant")
    conn = factories.connection()
    row = JobRun.objects.create(job="count_job", connection=conn)
    done = scheduling.execute_run(row.pk, final_attempt=False)  # would raise RetryRun if retried
    assert done is not None
    assert done.status == "skipped"


def test_example_project_worker_settings_match(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
    conf = runpy.run_path(str(ROOT / "example_project" / "settings.py"))
    assert conf["CELERY_TASK_ACKS_LATE"] is True
    assert conf["CELERY_TASK_REJECT_ON_WORKER_LOST"] is True
    assert conf["CELERY_WORKER_PREFETCH_MULTIPLIER"] == 1
    assert conf["CELERY_TASK_IGNORE_RESULT"] is True
    assert conf["CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS"] is True
    visibility = conf["CELERY_BROKER_TRANSPORT_OPTIONS"]["visibility_timeout"]
    assert visibility == intacct_celery.VISIBILITY_TIMEOUT
    assert all(
        t.time_limit is not None and t.time_limit * 2 <= visibility for t in app_tasks().values()
    )
    beat = conf["CELERY_BEAT_SCHEDULE"]
    by_task = {entry["task"]: entry["schedule"] for entry in beat.values()}
    assert by_task["intacct_connect.dispatch_due_refreshes"] == 60.0
    assert by_task["intacct_connect.dispatch_due_schedules"] == 60.0
    assert conf["CELERY_TASK_ROUTES"]["intacct_connect.refresh_connection"] == {
        "queue": "intacct.refresh"
    }
    assert conf["CELERY_TASK_ROUTES"]["intacct_connect.run_job"] == {"queue": "intacct.jobs"}
    # workers keep database connections between tasks (Django's rules, not Celery's)
    assert conf["CELERY_DB_REUSE_MAX"] >= 100
    assert conf["DATABASES"]["default"]["CONN_MAX_AGE"] > 0
    for key, value in intacct_celery.recommended_settings.items():
        if key != "broker_transport_options":
            assert conf[f"CELERY_{key.upper()}"] == value, key


@pytest.mark.django_db
def test_payloads_carry_ids_only(
    count_job: Recorder, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    """Messages published after commit hold IDs and numbers: no token, no model."""
    conn = factories.connection(next_refresh_in=-5)
    factories.schedule(connection=conn)
    app.conf.task_always_eager = False
    try:
        with app.connection_for_write() as broker:
            for queue in ("intacct.refresh", "intacct.jobs"):
                broker.SimpleQueue(queue).clear()
        with django_capture_on_commit_callbacks(execute=True):
            scheduling.claim_due_refreshes()
            scheduling.dispatch_due_schedules()
        bodies = []
        with app.connection_for_read() as broker:
            for queue in ("intacct.refresh", "intacct.jobs"):
                q = broker.SimpleQueue(queue)
                while True:
                    try:
                        message = q.get(block=False)
                    except q.Empty:
                        break
                    bodies.append((message.headers["task"], message.decode()))
                    message.ack()
    finally:
        app.conf.task_always_eager = settings.CELERY_TASK_ALWAYS_EAGER
    token = conn.token
    assert sorted(name for name, _ in bodies) == [
        "intacct_connect.refresh_connection",
        "intacct_connect.run_job",
    ]
    for _name, (args, kwargs, _embed) in bodies:
        assert kwargs == {}
        assert all(isinstance(a, int) for a in args)
        dumped = json.dumps(args)
        assert str(token.access_token) not in dumped
        assert str(token.refresh_token) not in dumped


@pytest.mark.django_db
def test_tasks_run_eagerly_end_to_end(
    count_job: Recorder, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    conn = factories.connection()
    factories.schedule(connection=conn)
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.dispatch_due_schedules.delay().get() == 1
    assert len(count_job.calls) == 1
    assert tasks.refresh_connection.delay(987654).get() == "missing"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_proactive_refresh_is_one_delivery_statement_and_one_short_transaction(
    emulator: EmulatorServer,
) -> None:
    """The statements of one ``refresh_connection`` task on PostgreSQL (bench figures in
    docs/tasks.rst): the delivery count committed on its own (autocommit, so it survives a
    killed worker), then one transaction: the connection and token rows locked and read in
    one ``SELECT … FOR NO KEY UPDATE OF connection, token NOWAIT``, the token and the
    connection written, the ``refreshed`` event inserted. The token journal adds one
    ``SELECT`` (nothing to adopt) and the ``DELETE`` of its entry, in the same transaction
    (the entry itself is written on a connection of its own, not captured here), and the
    ``invalid_client`` incident check one ``SELECT``."""
    require_postgres()
    conn = factories.connection(emulator)
    with CaptureQueriesContext(db_connection) as ctx:
        result = tasks.refresh_connection.apply(args=(conn.pk, 1), task_id="refresh-1").get()
    assert result == "ok"
    token_table, conn_table = Token._meta.db_table, conn._meta.db_table
    statements = [q["sql"] for q in ctx.captured_queries]
    assert [sql.split()[0] for sql in statements] == [
        "INSERT", "BEGIN", "SELECT", "SELECT", "SELECT",
        "UPDATE", "UPDATE", "INSERT", "DELETE", "COMMIT",
    ]  # fmt: skip
    journal_table = TokenJournalEntry._meta.db_table
    assert TaskDelivery._meta.db_table in statements[0]
    assert statements[2].endswith(f'FOR NO KEY UPDATE OF "{conn_table}", "{token_table}" NOWAIT')
    assert journal_table in statements[3]
    assert SiteIncident._meta.db_table in statements[4]  # no invalid_client incident open
    assert token_table in statements[5]
    assert conn_table in statements[6]
    assert ConnectionEvent._meta.db_table in statements[7]
    assert journal_table in statements[8]
    assert not TokenJournalEntry.objects.exists()
    assert Token.objects.get(pk=conn.pk).version == 2
    assert conn.events.filter(kind="refreshed").count() == 1
    assert TaskDelivery.objects.get(task_id="refresh-1").deliveries == 1
    assert emulator.token_requests("refresh_token") == 1


@pytest.mark.django_db(transaction=True)
def test_the_delivery_count_commits_on_its_own() -> None:
    """Counted in autocommit mode: the count stands when the task's work then rolls back
    (a killed worker); inside an atomic block it is part of that block's transaction."""
    name = "intacct_connect.refresh_connection"

    def killed_task() -> None:
        with transaction.atomic():
            Token.objects.all().delete()
            raise RuntimeError("worker killed in the middle of the task")

    def counted_in_a_block() -> None:
        with transaction.atomic():
            assert scheduling.count_delivery("task-x", name) == 2
            raise RuntimeError("rolled back with the block")

    assert not db_connection.in_atomic_block
    assert scheduling.count_delivery("task-x", name) == 1
    with pytest.raises(RuntimeError):
        killed_task()
    assert TaskDelivery.objects.get(task_id="task-x").deliveries == 1
    with pytest.raises(RuntimeError):
        counted_in_a_block()
    assert scheduling.count_delivery("task-x", name) == 2
