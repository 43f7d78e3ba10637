"""What the scheduling modules share: the timing constants (``docs/tasks.rst``, "Worker
settings and why"), the error classes a run retries or not, delivery counting, and
publishing tasks by name after commit."""

from __future__ import annotations

import functools
import time
import zlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from celery import current_app, signature
from django.db import OperationalError, connection, transaction
from django.utils import timezone

from intacct_connect.celery import JOB_HARD_TIME_LIMIT
from intacct_connect.exceptions import (
    IntacctConfigurationError,
    InvalidClient,
    InvalidGrant,
    NeedsReauthorization,
    RateLimited,
    ServerError,
    TokenRequestError,
    TransportError,
)
from intacct_connect.models import MIN_INTERVAL_SECONDS as MIN_INTERVAL_SECONDS
from intacct_connect.models import JobRunStatus, TaskDelivery

# Timing constants (docs/tasks.rst, "Worker settings and why"). The tasks' time limits and
# JOB_MAX_RETRIES live in intacct_connect.celery; the shortest schedule interval,
# MIN_INTERVAL_SECONDS, with the schedule rules in intacct_connect.models.

#: A run's lease outlives the hard time limit of the job-run task.
JOB_LEASE_SECONDS = JOB_HARD_TIME_LIMIT + 60
#: Dispatchers run every minute and stop claiming after this many seconds.
DISPATCH_TIME_BUDGET = 40.0
#: A claimed refresh that did not move ``next_refresh_at`` is claimed again after this.
REFRESH_CLAIM_SECONDS = 600
#: Exponential backoff of failed proactive refreshes: 60 s, 120 s, … up to 1 h.
REFRESH_BACKOFF_BASE = 60
REFRESH_BACKOFF_MAX = 3600
#: Countdown of the Celery retries of a failed run, capped at 10 min.
JOB_RETRY_BACKOFF = 30
JOB_RETRY_BACKOFF_MAX = 600
#: A queued run not started within this long is taken as lost (e.g. broker data lost).
QUEUED_RUN_STALE_SECONDS = 3600
#: TaskDelivery rows older than this are pruned.
DELIVERY_RECORD_TTL = timedelta(days=2)
#: Finished job runs older than this many days are deleted by ``prune_job_runs``.
JOB_RUN_RETENTION_DAYS = 30

#: Errors worth retrying a run for (with backoff). Never: needs-reauth, invalid_grant,
#: invalid_client, configuration errors, validation errors, JobError.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    RateLimited,
    ServerError,
    TransportError,
    TokenRequestError,
    OperationalError,
)
PERMANENT_ERRORS: tuple[type[BaseException], ...] = (
    NeedsReauthorization,
    InvalidGrant,
    InvalidClient,
    IntacctConfigurationError,
)

TERMINAL_STATUSES = (
    JobRunStatus.SUCCEEDED,
    JobRunStatus.FAILED,
    JobRunStatus.SKIPPED,
    JobRunStatus.PARKED,
)
ACTIVE_RUN_STATUSES = (JobRunStatus.QUEUED, JobRunStatus.RUNNING)


# Row locks: ``<queryset>.locked()`` (models.LockingQuerySet); SQLite's transaction write
# lock serialises claims instead (module docs).


def _jitter(seed: int, spread: int) -> int:
    """A stable per-connection offset in ``[0, spread)`` seconds (hash of the ID), for the
    backoff of failed refreshes."""
    if spread <= 0:
        return 0
    return zlib.crc32(str(seed).encode()) % spread


def count_delivery(task_id: str, task_name: str) -> int:
    """Record one more delivery of a task message; returns the count including this one.

    One ``INSERT … ON CONFLICT DO UPDATE … RETURNING`` (PostgreSQL, SQLite ≥ 3.35), run
    in autocommit mode: the statement is its own transaction, committed at once so the
    count survives the worker being killed (no ``BEGIN``/``COMMIT`` round trips around
    it). Inside an atomic block it joins that block's transaction."""
    if not task_id:
        return 1
    with connection.cursor() as cursor:
        cursor.execute(
            _count_delivery_sql(connection.vendor), [task_id[:64], task_name[:200], timezone.now()]
        )
        row = cursor.fetchone()
    return int(row[0]) if row else 1


@functools.cache
def _count_delivery_sql(vendor: str) -> str:
    table = connection.ops.quote_name(TaskDelivery._meta.db_table)
    return (
        f"INSERT INTO {table} (task_id, task_name, deliveries, first_delivered_at) "  # noqa: S608
        "VALUES (%s, %s, 1, %s) ON CONFLICT (task_id) DO UPDATE "
        f"SET deliveries = {table}.deliveries + 1 RETURNING deliveries"
    )


def prune_deliveries(now: datetime | None = None) -> int:
    cutoff = (now or timezone.now()) - DELIVERY_RECORD_TTL
    return TaskDelivery.objects.filter(first_delivered_at__lt=cutoff).delete()[0]


#: Names of the tasks this module publishes (defined in :mod:`intacct_connect.tasks`).
REFRESH_TASK = "intacct_connect.refresh_connection"
RUN_JOB_TASK = "intacct_connect.run_job"


def _publish(task_name: str, arg_lists: Sequence[Sequence[Any]]) -> None:
    """Send one message per argument list, reusing one broker connection.

    The task is named, not imported (``tasks`` imports this module): through the registered
    task when the app knows it (so eager mode and the task's options apply), else by name
    (``send_task``, routed by ``task_routes``; ``ignore_result`` as every task sets it)."""
    if not arg_lists:
        return
    app = current_app
    task = signature(task_name, app=app)
    with app.producer_or_acquire() as producer:
        for args in arg_lists:
            task.apply_async(args=tuple(args), producer=producer, ignore_result=True)


def _enqueue_on_commit(task_name: str, arg_lists: list[list[Any]]) -> None:
    """Enqueue after the surrounding transaction commits (never before: a worker must see
    the rows it is sent)."""
    if not arg_lists:
        return
    transaction.on_commit(lambda: _publish(task_name, arg_lists))


def _time_left(started: float, budget: float) -> bool:
    return time.monotonic() - started < budget
