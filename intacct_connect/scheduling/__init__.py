"""Background scheduling as plain functions: the Celery tasks in :mod:`intacct_connect.tasks`
are thin wrappers around them.

**Proactive refresh.** :func:`dispatch_due_refreshes` claims, in batches of
``DISPATCH_BATCH_SIZE``, the active connections whose ``next_refresh_at`` has passed.
``next_refresh_at`` is set whenever tokens are stored, by the one rule
:func:`intacct_connect.connection_state.next_refresh_at`: ``REFRESH_WINDOW`` plus up to
``REFRESH_JITTER`` seconds before the access token expires, and never later than
``IDLE_REFRESH_AFTER`` after the last refresh (connections without it are scheduled here,
by the same rule). A claim moves ``next_refresh_at`` forward in
the same transaction (``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL), so a second
dispatcher never claims the same connection, and one refresh task per connection is
enqueued after commit. The task calls :func:`intacct_connect.tokens.refresh_connection`
(the single-flight path) with the token version seen at claim time; failures back off
exponentially through ``next_refresh_at``.

**Scheduled jobs.** :func:`dispatch_due_schedules` claims due :class:`Schedule` rows the same
way, advances ``next_run_at`` and creates one :class:`JobRun` per target connection in the
same transaction: queued for active connections, skipped (with the reason) for connections
that need re-authorisation or still have a run in progress. The run task
(:func:`execute_run`) counts the delivery in the database, parks a run delivered more than
``MAX_DELIVERIES`` times, claims a lease (one running run per job and connection, enforced
by a partial unique index), runs the job, and commits the job's writes together with the
run record.

**SQLite.** SQLite has no row locks: ``select_for_update`` is a no-op there, and claims are
safe only because SQLite serialises writing transactions (use
``OPTIONS={"transaction_mode": "IMMEDIATE"}`` so a transaction takes the write lock at
``BEGIN``). Run one worker process on SQLite; use PostgreSQL in production.

**Modules.** Every name is importable from ``intacct_connect.scheduling``; each concern has
its module: :mod:`~intacct_connect.scheduling.refresh` (proactive refresh),
:mod:`~intacct_connect.scheduling.schedules` (pause/resume and dispatch; the rules of one
schedule are methods of :class:`~intacct_connect.models.Schedule`),
:mod:`~intacct_connect.scheduling.runs` (executing a run) and
:mod:`~intacct_connect.scheduling.common` (timing constants, delivery counting, publishing).
"""

from __future__ import annotations

import logging

from intacct_connect.celery import (
    DISPATCH_HARD_TIME_LIMIT,
    DISPATCH_SOFT_TIME_LIMIT,
    JOB_HARD_TIME_LIMIT,
    JOB_MAX_RETRIES,
    JOB_SOFT_TIME_LIMIT,
    REFRESH_HARD_TIME_LIMIT,
    REFRESH_SOFT_TIME_LIMIT,
    VISIBILITY_TIMEOUT,
)
from intacct_connect.crontab import next_crontab_run, parse_crontab
from intacct_connect.scheduling.common import (
    ACTIVE_RUN_STATUSES,
    DELIVERY_RECORD_TTL,
    DISPATCH_TIME_BUDGET,
    JOB_LEASE_SECONDS,
    JOB_RETRY_BACKOFF,
    JOB_RETRY_BACKOFF_MAX,
    JOB_RUN_RETENTION_DAYS,
    MIN_INTERVAL_SECONDS,
    PERMANENT_ERRORS,
    QUEUED_RUN_STALE_SECONDS,
    REFRESH_BACKOFF_BASE,
    REFRESH_BACKOFF_MAX,
    REFRESH_CLAIM_SECONDS,
    REFRESH_TASK,
    RUN_JOB_TASK,
    TERMINAL_STATUSES,
    TRANSIENT_ERRORS,
    count_delivery,
    prune_deliveries,
)
from intacct_connect.scheduling.refresh import (
    RefreshOutcome,
    claim_due_refreshes,
    dispatch_due_refreshes,
    park_refresh,
    refresh_due_at,
    refresh_one,
    schedule_missing_refreshes,
)
from intacct_connect.scheduling.runs import (
    RetryRun,
    _settle,
    _start,
    execute_run,
    prune_job_runs,
    retry_countdown,
)
from intacct_connect.scheduling.schedules import (
    _targets,
    claim_due_schedules,
    dispatch_due_schedules,
    enqueue_run,
    pause_schedules,
    resume_schedules,
    run_schedules_now,
    schedule_unscheduled,
)

logger = logging.getLogger("intacct_connect.scheduling")

# The Celery time limits and JOB_MAX_RETRIES live in intacct_connect.celery; re-exported
# here with every public name of the package's modules (and the private ones tests use).
__all__ = [
    "ACTIVE_RUN_STATUSES",
    "DELIVERY_RECORD_TTL",
    "DISPATCH_HARD_TIME_LIMIT",
    "DISPATCH_SOFT_TIME_LIMIT",
    "DISPATCH_TIME_BUDGET",
    "JOB_HARD_TIME_LIMIT",
    "JOB_LEASE_SECONDS",
    "JOB_MAX_RETRIES",
    "JOB_RETRY_BACKOFF",
    "JOB_RETRY_BACKOFF_MAX",
    "JOB_RUN_RETENTION_DAYS",
    "JOB_SOFT_TIME_LIMIT",
    "MIN_INTERVAL_SECONDS",
    "PERMANENT_ERRORS",
    "QUEUED_RUN_STALE_SECONDS",
    "REFRESH_BACKOFF_BASE",
    "REFRESH_BACKOFF_MAX",
    "REFRESH_CLAIM_SECONDS",
    "REFRESH_HARD_TIME_LIMIT",
    "REFRESH_SOFT_TIME_LIMIT",
    "REFRESH_TASK",
    "RUN_JOB_TASK",
    "TERMINAL_STATUSES",
    "TRANSIENT_ERRORS",
    "VISIBILITY_TIMEOUT",
    "RefreshOutcome",
    "RetryRun",
    "_settle",
    "_start",
    "_targets",
    "claim_due_refreshes",
    "claim_due_schedules",
    "count_delivery",
    "dispatch_due_refreshes",
    "dispatch_due_schedules",
    "enqueue_run",
    "execute_run",
    "next_crontab_run",
    "park_refresh",
    "parse_crontab",
    "pause_schedules",
    "prune_deliveries",
    "prune_job_runs",
    "refresh_due_at",
    "refresh_one",
    "resume_schedules",
    "retry_countdown",
    "run_schedules_now",
    "schedule_missing_refreshes",
    "schedule_unscheduled",
]
