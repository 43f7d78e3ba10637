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
"""

from __future__ import annotations

import functools
import logging
import random
import time
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from celery import current_app, signature
from celery.exceptions import SoftTimeLimitExceeded
from celery.schedules import crontab as celery_crontab
from django.core.exceptions import ValidationError
from django.db import DatabaseError, IntegrityError, OperationalError, connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from intacct_connect import jobs, tokens
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
from intacct_connect.client import IntacctClient
from intacct_connect.conf import app_settings
from intacct_connect.connection_state import next_refresh_at
from intacct_connect.exceptions import (
    IntacctConfigurationError,
    IntacctConnectError,
    InvalidClient,
    InvalidGrant,
    NeedsReauthorization,
    RateLimited,
    ServerError,
    TokenRequestError,
    TransportError,
)
from intacct_connect.models import (
    Connection,
    ConnectionStatus,
    JobRun,
    JobRunStatus,
    JobRunTrigger,
    Schedule,
    ScheduleQuerySet,
    ScheduleScope,
    TaskDelivery,
)

logger = logging.getLogger(__name__)

# --- timing constants (see docs/tasks.rst, "Worker settings and why") ------------------
# The tasks' time limits and JOB_MAX_RETRIES live in intacct_connect.celery.

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
#: Shortest schedule interval: the dispatcher runs once a minute.
MIN_INTERVAL_SECONDS = 60
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


# --- helpers ----------------------------------------------------------------------------
# Row locks: ``<queryset>.locked()`` (models.LockingQuerySet); SQLite's transaction write
# lock serialises claims instead (module docs).


def _jitter(seed: int, spread: int) -> int:
    """A stable per-connection offset in ``[0, spread)`` seconds (hash of the ID), for the
    backoff of failed refreshes."""
    if spread <= 0:
        return 0
    return zlib.crc32(str(seed).encode()) % spread


# --- delivery counting ----------------------------------------------------------------


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


# --- publishing -----------------------------------------------------------------------


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


# --- proactive refresh ------------------------------------------------------------------


def refresh_due_at(
    connection_id: int,
    expires_at: datetime,
    last_refreshed_at: datetime | None,
    now: datetime,
) -> datetime:
    """When the proactive refresh of a token should happen: kept for callers of this name;
    the rule is :func:`intacct_connect.connection_state.next_refresh_at`."""
    return next_refresh_at(expires_at, last_refreshed_at=last_refreshed_at, now=now)


def schedule_missing_refreshes(*, now: datetime | None = None, limit: int | None = None) -> int:
    """Give active connections that have a token but no ``next_refresh_at`` one."""
    now = now or timezone.now()
    limit = limit or app_settings.DISPATCH_BATCH_SIZE
    with transaction.atomic():
        rows = list(
            Connection.objects.filter(
                status=ConnectionStatus.ACTIVE,
                next_refresh_at__isnull=True,
                token__isnull=False,
            )
            .locked(skip_locked=True)
            .order_by("pk")
            .values_list("pk", "token__expires_at", "token__last_refreshed_at", "created_at")[
                :limit
            ]
        )
        if not rows:
            return 0
        conns = [
            Connection(
                pk=pk,
                next_refresh_at=next_refresh_at(exp, last_refreshed_at=last or created, now=now),
            )
            for pk, exp, last, created in rows
        ]
        Connection.objects.bulk_update(conns, ["next_refresh_at"])
    return len(conns)


def claim_due_refreshes(
    *, now: datetime | None = None, limit: int | None = None
) -> list[tuple[int, int | None]]:
    """Claim one batch of due refreshes and enqueue their tasks after commit.

    Returns ``(connection_id, token_version)`` pairs. The claim moves ``next_refresh_at``
    ``REFRESH_CLAIM_SECONDS`` ahead in the same transaction; a successful refresh then
    sets the real next time."""
    now = now or timezone.now()
    limit = limit or app_settings.DISPATCH_BATCH_SIZE
    with transaction.atomic():
        rows: list[tuple[int, int | None]] = list(
            Connection.objects.filter(status=ConnectionStatus.ACTIVE, next_refresh_at__lte=now)
            .order_by("next_refresh_at", "pk")
            .locked(skip_locked=True)
            .values_list("pk", "token__version")[:limit]
        )
        if not rows:
            return []
        Connection.objects.filter(pk__in=[pk for pk, _ in rows]).update(
            next_refresh_at=now + timedelta(seconds=REFRESH_CLAIM_SECONDS)
        )
        _enqueue_on_commit(REFRESH_TASK, [[pk, version] for pk, version in rows])
    return rows


def _time_left(started: float, budget: float) -> bool:
    return time.monotonic() - started < budget


def dispatch_due_refreshes(
    *, now: datetime | None = None, time_budget: float = DISPATCH_TIME_BUDGET
) -> int:
    """Claim every due refresh (batch after batch, within ``time_budget`` seconds);
    returns the number of refresh tasks enqueued."""
    started = time.monotonic()
    now = now or timezone.now()
    limit = app_settings.DISPATCH_BATCH_SIZE
    prune_deliveries(now)
    while schedule_missing_refreshes(now=now, limit=limit) == limit and _time_left(
        started, time_budget
    ):
        pass
    total = 0
    while True:
        claimed = claim_due_refreshes(now=now, limit=limit)
        total += len(claimed)
        if len(claimed) < limit or not _time_left(started, time_budget):
            break
    if total:
        logger.info("Enqueued %s proactive token refreshes", total)
    return total


@dataclass(frozen=True)
class RefreshOutcome:
    """What one proactive refresh did (``result`` is a short word, for logs and tests)."""

    result: str
    connection_id: int
    error_code: str = ""


def _back_off_refresh(connection_id: int, *, count_failure: bool, now: datetime) -> None:
    try:
        with transaction.atomic():
            conn = (
                Connection.objects.filter(pk=connection_id)
                .locked()
                .only("pk", "refresh_failures")
                .first()
            )
            if conn is None:
                return
            failures = conn.refresh_failures + (1 if count_failure else 0)
            delay = min(REFRESH_BACKOFF_BASE * 2 ** max(failures - 1, 0), REFRESH_BACKOFF_MAX)
            delay += _jitter(connection_id, max(delay // 10, 1))
            Connection.objects.filter(pk=connection_id).update(
                refresh_failures=failures, next_refresh_at=now + timedelta(seconds=delay)
            )
    except DatabaseError:
        logger.exception("Could not back off the refresh of connection %s", connection_id)


def refresh_one(connection_id: int, seen_version: int | None = None) -> RefreshOutcome:
    """One proactive refresh through the single-flight path.

    ``seen_version`` is the token version the dispatcher saw: when another worker has
    refreshed since, its token is kept and Intacct is not called."""
    now = timezone.now()
    try:
        token = tokens.refresh_connection(
            connection_id, force=True, wait=False, seen_version=seen_version
        )
    except InvalidGrant as err:
        # tokens.py marked the connection needs_reauth: it is not dispatched again.
        return RefreshOutcome("needs_reauth", connection_id, err.code or "invalid_grant")
    except NeedsReauthorization:
        # Not active (or gone): nothing to refresh. Only this rare path reads the status.
        status = (
            Connection.objects.filter(pk=connection_id).values_list("status", flat=True).first()
        )
        if status is None:
            return RefreshOutcome("missing", connection_id)
        return RefreshOutcome("skipped", connection_id, status)
    except IntacctConfigurationError:
        # invalid_client: this site's credentials. No connection changes status.
        _back_off_refresh(connection_id, count_failure=True, now=now)
        return RefreshOutcome("config_error", connection_id, "invalid_client")
    except tokens.RefreshLockTimeout:
        _back_off_refresh(connection_id, count_failure=False, now=now)
        return RefreshOutcome("busy", connection_id, "lock_timeout")
    except IntacctConnectError as err:
        # tokens.py recorded the failure and counted it in refresh_failures.
        _back_off_refresh(connection_id, count_failure=False, now=now)
        return RefreshOutcome("failed", connection_id, err.error_id or err.code or "")
    except DatabaseError as err:
        _back_off_refresh(connection_id, count_failure=True, now=now)
        return RefreshOutcome("failed", connection_id, type(err).__name__)
    if token is None:
        return RefreshOutcome("busy", connection_id)  # another worker holds the lock
    return RefreshOutcome("ok", connection_id)


def park_refresh(connection_id: int, deliveries: int) -> None:
    """A refresh message delivered too often (it keeps killing its worker): back off."""
    logger.error(
        "Refresh of connection %s was delivered %s times (MAX_DELIVERIES=%s); parked, "
        "retrying through the dispatcher with backoff",
        connection_id,
        deliveries,
        app_settings.MAX_DELIVERIES,
    )
    _back_off_refresh(connection_id, count_failure=True, now=timezone.now())


# --- schedules ------------------------------------------------------------------------


def parse_crontab(expression: str) -> celery_crontab:
    """A ``celery.schedules.crontab`` from 'minute hour day-of-month month day-of-week'."""
    parts = expression.split()
    if len(parts) != 5:
        raise ValidationError(
            f"A crontab has 5 fields (minute hour day-of-month month day-of-week); "
            f"{expression!r} has {len(parts)}.",
            code="invalid_crontab",
        )
    minute, hour, day_of_month, month, day_of_week = parts
    try:
        return celery_crontab(
            minute=minute,
            hour=hour,
            day_of_month=day_of_month,
            month_of_year=month,
            day_of_week=day_of_week,
        )
    except (ValueError, TypeError, IndexError) as err:
        raise ValidationError(
            f"Invalid crontab {expression!r}: {err}", code="invalid_crontab"
        ) from None


def next_crontab_run(expression: str, after: datetime) -> datetime:
    """The first time strictly after ``after`` matching the crontab (in ``TIME_ZONE``)."""
    cron = parse_crontab(expression)
    local = timezone.localtime(after).replace(microsecond=0)
    tz = local.tzinfo
    last, delta, _now = cron.remaining_delta(local, tz=tz)
    nxt: datetime = last + delta
    if nxt <= after:  # pragma: no cover - defensive: never schedule in the past
        nxt = next_crontab_run(expression, after + timedelta(minutes=1))
    return nxt


def validate_schedule(schedule: Schedule) -> None:
    """Raise ``ValidationError`` (with field keys) for an unusable schedule."""
    errors: dict[str, list[str]] = {}
    try:
        job = jobs.get(schedule.job)
    except jobs.UnknownJob as err:
        errors.setdefault("job", []).append(str(err))
    else:
        try:
            schedule.params = job.clean_params(schedule.params)
        except ValidationError as err:
            errors.setdefault("params", []).extend(err.messages)
    has_interval = schedule.interval_seconds is not None
    has_cron = bool(schedule.crontab.strip())
    if has_interval == has_cron:
        errors.setdefault("interval_seconds", []).append(
            "Set either an interval in seconds or a crontab, not both."
        )
    if has_interval and (schedule.interval_seconds or 0) < MIN_INTERVAL_SECONDS:
        errors.setdefault("interval_seconds", []).append(
            f"The shortest interval is {MIN_INTERVAL_SECONDS} seconds."
        )
    if has_cron:
        try:
            parse_crontab(schedule.crontab)
        except ValidationError as err:
            errors.setdefault("crontab", []).extend(err.messages)
    if schedule.scope == ScheduleScope.CONNECTION:
        if schedule.connection_id is None:
            errors.setdefault("connection", []).append("Choose the connection to run for.")
        if schedule.tenant_key:
            errors.setdefault("tenant_key", []).append("Leave the tenant empty for one connection.")
    elif schedule.scope == ScheduleScope.TENANT:
        if not schedule.tenant_key:
            errors.setdefault("tenant_key", []).append("Enter the tenant whose connections to run.")
        if schedule.connection_id is not None:
            errors.setdefault("connection", []).append("Leave the connection empty for a tenant.")
    elif schedule.scope == ScheduleScope.SITE:
        if schedule.connection_id is not None or schedule.tenant_key:
            errors.setdefault("scope", []).append(
                "A site-wide schedule has neither a connection nor a tenant."
            )
    else:
        errors.setdefault("scope", []).append(f"Unknown scope {schedule.scope!r}.")
    if errors:
        raise ValidationError(errors)


def next_run_time(schedule: Schedule, now: datetime) -> datetime:
    """The next run after ``now``; a late interval schedule does not catch up missed runs."""
    if schedule.crontab.strip():
        return next_crontab_run(schedule.crontab, now)
    interval = timedelta(seconds=max(schedule.interval_seconds or 0, MIN_INTERVAL_SECONDS))
    if schedule.next_run_at is not None and schedule.next_run_at + interval > now:
        return schedule.next_run_at + interval
    return now + interval


def first_run_time(schedule: Schedule, now: datetime | None = None) -> datetime:
    """When a new or resumed schedule first runs."""
    now = now or timezone.now()
    if schedule.crontab.strip():
        return next_crontab_run(schedule.crontab, now)
    return now + timedelta(seconds=max(schedule.interval_seconds or 0, MIN_INTERVAL_SECONDS))


def pause_schedules(schedules: QuerySet[Schedule]) -> int:
    return schedules.filter(enabled=True).update(enabled=False, updated_at=timezone.now())


def resume_schedules(schedules: QuerySet[Schedule]) -> int:
    now = timezone.now()
    with transaction.atomic():
        resumed = []
        pending = schedules.filter(enabled=False)
        if not isinstance(pending, ScheduleQuerySet):  # pragma: no cover - not from a manager
            pending = Schedule.objects.filter(pk__in=pending.values("pk"))
        for schedule in pending.locked():
            try:
                schedule.next_run_at = first_run_time(schedule, now)
            except ValidationError as err:  # saved without validation: stays paused
                logger.error("Schedule %s not resumed: %s", schedule.pk, "; ".join(err.messages))
                continue
            schedule.enabled = True
            schedule.updated_at = now
            resumed.append(schedule)
        Schedule.objects.bulk_update(resumed, ["enabled", "next_run_at", "updated_at"])
    return len(resumed)


def _targets(schedules: Sequence[Schedule]) -> dict[int, list[Connection]]:
    """Target connections of each schedule, in one query.

    One connection: that connection whatever its status. Tenant and site: the active
    connections and those needing re-authorisation (recorded as skipped)."""
    conn_ids = {s.connection_id for s in schedules if s.scope == ScheduleScope.CONNECTION}
    tenants = {s.tenant_key for s in schedules if s.scope == ScheduleScope.TENANT}
    site = any(s.scope == ScheduleScope.SITE for s in schedules)
    listed = (ConnectionStatus.ACTIVE, ConnectionStatus.NEEDS_REAUTH)
    q = Q(pk__in=[c for c in conn_ids if c is not None])
    if tenants:
        q |= Q(tenant_key__in=tenants, status__in=listed)
    if site:
        q |= Q(status__in=listed)
    conns = list(
        Connection.objects.filter(q)
        .only("pk", "tenant_key", "status", "last_error_code", "company_id")
        .order_by("pk")
    )
    by_id = {c.pk: c for c in conns}
    out: dict[int, list[Connection]] = {}
    for s in schedules:
        if s.scope == ScheduleScope.CONNECTION:
            out[s.pk] = [by_id[s.connection_id]] if s.connection_id in by_id else []
        elif s.scope == ScheduleScope.TENANT:
            out[s.pk] = [c for c in conns if c.tenant_key == s.tenant_key and c.status in listed]
        else:
            out[s.pk] = [c for c in conns if c.status in listed]
    return out


def _skip_reason(conn: Connection) -> tuple[str, str]:
    code = conn.status
    message = (
        f"Connection {conn.pk} to company {conn.company_id} is {conn.get_status_display().lower()}"
    )
    if conn.status == ConnectionStatus.NEEDS_REAUTH:
        message += "; a user must reconnect it"
    if conn.last_error_code:
        message += f" (last error {conn.last_error_code})"
    return code, message + "."


def _busy_runs(
    job_names: Iterable[str], conn_ids: Iterable[int], now: datetime
) -> set[tuple[str, int]]:
    """(job, connection) pairs with a live queued/running run; stale ones are failed."""
    ids = set(conn_ids)
    qs = JobRun.objects.filter(job__in=set(job_names), status__in=ACTIVE_RUN_STATUSES)
    if len(ids) <= 10_000:  # keep the IN list far below PostgreSQL's 65,535 parameters
        qs = qs.filter(connection_id__in=ids)
    rows = [
        row
        for row in qs.values_list(
            "pk", "job", "connection_id", "status", "queued_at", "lease_until"
        )
        if row[2] in ids
    ]
    busy: set[tuple[str, int]] = set()
    lost: list[int] = []
    expired: list[int] = []
    stale_before = now - timedelta(seconds=QUEUED_RUN_STALE_SECONDS)
    for pk, job, conn_id, status, queued_at, lease_until in rows:
        if status == JobRunStatus.QUEUED and queued_at < stale_before:
            lost.append(pk)
        elif status == JobRunStatus.RUNNING and lease_until is not None and lease_until < now:
            expired.append(pk)
        else:
            busy.add((job, conn_id))
    if lost:
        JobRun.objects.filter(pk__in=lost, status=JobRunStatus.QUEUED).update(
            status=JobRunStatus.FAILED,
            finished_at=now,
            error_code="lost",
            error_message="Queued for more than an hour without starting; the task was lost.",
        )
    if expired:
        JobRun.objects.filter(pk__in=expired, status=JobRunStatus.RUNNING).update(
            status=JobRunStatus.FAILED,
            finished_at=now,
            lease_until=None,
            error_code="lease_expired",
            error_message="The worker running it stopped without finishing (lease expired).",
        )
    return busy


def _fan_out(schedules: Sequence[Schedule], now: datetime, trigger: str) -> list[JobRun]:
    """Create the runs of ``schedules`` (caller holds the transaction) and enqueue the
    queued ones on commit."""
    targets = _targets(schedules)
    all_ids = {c.pk for conns in targets.values() for c in conns}
    busy = _busy_runs({s.job for s in schedules}, all_ids, now)
    runs: list[JobRun] = []
    for s in schedules:
        seen: set[int] = set()
        for conn in targets[s.pk]:
            if conn.pk in seen:  # pragma: no cover - defensive
                continue
            seen.add(conn.pk)
            run = JobRun(
                job=s.job,
                schedule=s,
                connection_id=conn.pk,
                params=s.params,
                trigger=trigger,
                queued_at=now,
            )
            if conn.status != ConnectionStatus.ACTIVE:
                run.error_code, run.error_message = _skip_reason(conn)
                run.status, run.finished_at = JobRunStatus.SKIPPED, now
            elif (s.job, conn.pk) in busy:
                run.status, run.finished_at = JobRunStatus.SKIPPED, now
                run.error_code = "overlap"
                run.error_message = (
                    "The previous run of this job on this connection is still active."
                )
            else:
                busy.add((s.job, conn.pk))
            runs.append(run)
    JobRun.objects.bulk_create(runs, batch_size=1000)
    _enqueue_on_commit(RUN_JOB_TASK, [[r.pk] for r in runs if r.status == JobRunStatus.QUEUED])
    return runs


def claim_due_schedules(*, now: datetime | None = None, limit: int | None = None) -> list[JobRun]:
    """Claim one batch of due schedules, advance them, create their runs and enqueue the
    queued runs after commit. Returns the runs created (queued and skipped)."""
    now = now or timezone.now()
    return _claim_schedule_batch(now, limit or app_settings.DISPATCH_BATCH_SIZE)[1]


def _claim_schedule_batch(now: datetime, limit: int) -> tuple[int, list[JobRun]]:
    with transaction.atomic():
        schedules = list(
            Schedule.objects.filter(enabled=True, next_run_at__lte=now)
            .order_by("next_run_at", "pk")
            .locked(skip_locked=True)[:limit]
        )
        if not schedules:
            return 0, []
        runnable = []
        for s in schedules:
            s.last_run_at = now
            try:
                s.next_run_at = next_run_time(s, now)
            except ValidationError as err:
                _pause_broken(s, err)
            else:
                runnable.append(s)
        Schedule.objects.bulk_update(schedules, ["next_run_at", "last_run_at", "enabled"])
        return len(schedules), _fan_out(runnable, now, JobRunTrigger.SCHEDULE)


def _pause_broken(schedule: Schedule, err: ValidationError) -> None:
    """A schedule saved without validation (bad crontab): paused, never blocking others."""
    schedule.enabled = False
    schedule.next_run_at = None
    logger.error("Schedule %s (%s) paused: %s", schedule.pk, schedule.name, "; ".join(err.messages))


def schedule_unscheduled(*, now: datetime | None = None, limit: int | None = None) -> int:
    """Give enabled schedules without ``next_run_at`` (created in code) their first run."""
    now = now or timezone.now()
    limit = limit or app_settings.DISPATCH_BATCH_SIZE
    with transaction.atomic():
        schedules = list(
            Schedule.objects.filter(enabled=True, next_run_at__isnull=True)
            .locked(skip_locked=True)
            .order_by("pk")[:limit]
        )
        for s in schedules:
            try:
                s.next_run_at = first_run_time(s, now)
            except ValidationError as err:
                _pause_broken(s, err)
        Schedule.objects.bulk_update(schedules, ["next_run_at", "enabled"])
    return len(schedules)


def dispatch_due_schedules(
    *, now: datetime | None = None, time_budget: float = DISPATCH_TIME_BUDGET
) -> int:
    """Fan every due schedule out to per-connection runs (batch after batch, within
    ``time_budget`` seconds); returns the number of runs queued."""
    started = time.monotonic()
    now = now or timezone.now()
    limit = app_settings.DISPATCH_BATCH_SIZE
    schedule_unscheduled(now=now, limit=limit)
    queued = 0
    while True:
        claimed, runs = _claim_schedule_batch(now, limit)
        queued += sum(1 for r in runs if r.status == JobRunStatus.QUEUED)
        if claimed < limit or not _time_left(started, time_budget):
            break
    if queued:
        logger.info("Queued %s scheduled job runs", queued)
    return queued


def run_schedules_now(schedules: Iterable[Schedule], *, trigger: str = JobRunTrigger.MANUAL) -> int:
    """Queue one run per target connection of each schedule now, without moving its
    ``next_run_at``; returns the number of runs queued."""
    now = timezone.now()
    with transaction.atomic():
        runs = _fan_out(list(schedules), now, trigger)
    return sum(1 for r in runs if r.status == JobRunStatus.QUEUED)


def enqueue_run(
    job: str,
    connection_id: int,
    params: dict[str, Any] | None = None,
    *,
    trigger: str = JobRunTrigger.API,
    schedule: Schedule | None = None,
) -> JobRun:
    """Create a queued run of ``job`` for one connection and enqueue it after commit.

    Raises :class:`~intacct_connect.jobs.UnknownJob` or ``ValidationError`` for bad input."""
    clean = jobs.get(job).clean_params(params or {})
    with transaction.atomic():
        run = JobRun.objects.create(
            job=job, connection_id=connection_id, params=clean, trigger=trigger, schedule=schedule
        )
        _enqueue_on_commit(RUN_JOB_TASK, [[run.pk]])
    return run


# --- executing a run -----------------------------------------------------------------


class RetryRun(Exception):
    """Raised by :func:`execute_run` to ask the task to retry the run later."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


@dataclass
class _Claim:
    run: JobRun
    delivery: int
    attempt: int


def _finish(run: JobRun, status: str, now: datetime, code: str = "", message: str = "") -> None:
    run.status = status
    run.finished_at = now
    run.lease_until = None
    run.error_code = code[:100]
    run.error_message = message


def _start(run_id: int, task_id: str, attempt: int) -> _Claim | None:
    """Count the delivery, park/skip as needed, claim the lease. Commits on return."""
    now = timezone.now()
    with transaction.atomic():
        run = JobRun.objects.filter(pk=run_id).select_related("connection").locked().first()
        if run is None:
            logger.warning("Job run %s no longer exists; ignoring its task", run_id)
            return None
        if run.status in TERMINAL_STATUSES:
            logger.info(
                "Job run %s is already %s; ignoring a duplicate delivery", run_id, run.status
            )
            return None
        if run.attempt != attempt:
            run.attempt, run.delivery_count = attempt, 0
        run.delivery_count += 1
        run.task_id = task_id[:64]
        fields = [
            "attempt",
            "delivery_count",
            "task_id",
            "status",
            "finished_at",
            "lease_until",
            "error_code",
            "error_message",
            "started_at",
        ]
        if run.delivery_count > app_settings.MAX_DELIVERIES:
            _finish(
                run,
                JobRunStatus.PARKED,
                now,
                "max_deliveries",
                f"Delivered {run.delivery_count} times without finishing (the worker was lost "
                f"each time); parked after MAX_DELIVERIES={app_settings.MAX_DELIVERIES}.",
            )
            run.save(update_fields=fields)
            logger.error(
                "Job run %s (%s) parked after %s deliveries",
                run.pk,
                run.job,
                run.delivery_count - 1,
            )
            return None
        conn = run.connection
        if conn.status != ConnectionStatus.ACTIVE:
            code, message = _skip_reason(conn)
            _finish(run, JobRunStatus.SKIPPED, now, code, message)
            run.save(update_fields=fields)
            return None
        try:
            jobs.get(run.job)
        except jobs.UnknownJob as err:
            _finish(run, JobRunStatus.FAILED, now, "unknown_job", str(err))
            run.save(update_fields=fields)
            return None
        other = (
            JobRun.objects.filter(
                job=run.job, connection_id=run.connection_id, status=JobRunStatus.RUNNING
            )
            .exclude(pk=run.pk)
            .locked()
            .first()
        )
        if other is not None:
            if other.lease_until is not None and other.lease_until > now:
                _finish(
                    run,
                    JobRunStatus.SKIPPED,
                    now,
                    "overlap",
                    f"Run {other.pk} of this job on this connection is still running.",
                )
                run.save(update_fields=fields)
                return None
            _finish(
                other,
                JobRunStatus.FAILED,
                now,
                "lease_expired",
                "The worker running it stopped without finishing (lease expired).",
            )
            other.save(
                update_fields=[
                    "status",
                    "finished_at",
                    "lease_until",
                    "error_code",
                    "error_message",
                ]
            )
        run.status = JobRunStatus.RUNNING
        run.started_at = now
        run.finished_at = None
        run.lease_until = now + timedelta(seconds=JOB_LEASE_SECONDS)
        try:
            with transaction.atomic():
                run.save(update_fields=fields)
        except IntegrityError:
            # Another run of the same job claimed the connection at the same moment.
            _finish(
                run,
                JobRunStatus.SKIPPED,
                now,
                "overlap",
                "Another run of this job on this connection started at the same time.",
            )
            run.save(update_fields=fields)
            return None
    return _Claim(run, run.delivery_count, attempt)


def _settle(
    claim: _Claim,
    status: str,
    *,
    code: str = "",
    message: str = "",
    records: int = 0,
    ctx: jobs.JobContext | None = None,
) -> bool:
    """Finish a run if this delivery still owns it; runs the job's success hooks in the
    same transaction. Returns False when another delivery took the run over."""
    now = timezone.now()
    with transaction.atomic():
        run = JobRun.objects.filter(pk=claim.run.pk).locked().first()
        if (
            run is None
            or run.status != JobRunStatus.RUNNING
            or run.delivery_count != claim.delivery
            or run.attempt != claim.attempt
        ):
            logger.warning(
                "Job run %s was taken over by another delivery; discarding this result",
                claim.run.pk,
            )
            return False
        if ctx is not None:
            for hook in ctx._hooks:
                hook()
        _finish(run, status, now, code, message)
        run.records_processed = records
        run.save(
            update_fields=[
                "status",
                "finished_at",
                "lease_until",
                "error_code",
                "error_message",
                "records_processed",
            ]
        )
        claim.run = run
    return True


def _error_code(err: BaseException) -> str:
    if isinstance(err, IntacctConnectError):
        return err.error_id or err.code or type(err).__name__
    if isinstance(err, jobs.JobError):
        return err.code
    return type(err).__name__


def execute_run(
    run_id: int, *, task_id: str = "", attempt: int = 1, final_attempt: bool = True
) -> JobRun | None:
    """Run one queued job run (the body of the ``run_job`` task).

    Returns the run as finished (or None when this delivery had nothing to do). Raises
    :class:`RetryRun` for a transient failure when ``final_attempt`` is false; the run is
    then back in the queued state with the error recorded."""
    claim = _start(run_id, task_id, attempt)
    if claim is None:
        return JobRun.objects.filter(pk=run_id).first()
    run = claim.run
    job = jobs.get(run.job)
    schedule_cursor = f"schedule:{run.schedule_id}" if run.schedule_id else f"job:{run.job}"
    ctx = jobs.JobContext(
        run=run,
        connection=run.connection,
        params=dict(run.params or {}),
        cursor_name=schedule_cursor,
    )
    client: IntacctClient | None = None
    try:
        client = IntacctClient(run.connection)
        records = job.func(client, ctx)
    except SoftTimeLimitExceeded:
        _settle(
            claim,
            JobRunStatus.FAILED,
            code="time_limit",
            message=f"Stopped by the soft time limit ({JOB_SOFT_TIME_LIMIT} s).",
        )
        return claim.run
    except PERMANENT_ERRORS as err:
        status = (
            JobRunStatus.SKIPPED
            if isinstance(err, NeedsReauthorization | InvalidGrant)
            else JobRunStatus.FAILED
        )
        _settle(claim, status, code=_error_code(err), message=str(err))
        return claim.run
    except TRANSIENT_ERRORS as err:
        if final_attempt:
            _settle(
                claim,
                JobRunStatus.FAILED,
                code=_error_code(err),
                message=f"{err} (gave up after attempt {attempt})",
            )
            return claim.run
        _requeue(claim, err)
        raise RetryRun(err) from err
    except (jobs.JobError, ValidationError, IntacctConnectError, ValueError) as err:
        _settle(claim, JobRunStatus.FAILED, code=_error_code(err), message=_message(err))
        return claim.run
    except Exception as err:
        logger.exception(
            "Job %s failed on connection %s (run %s)", run.job, run.connection_id, run.pk
        )
        _settle(claim, JobRunStatus.FAILED, code=type(err).__name__, message=str(err)[:2000])
        return claim.run
    finally:
        if client is not None:
            client.close()  # the run's call-log rows are written before it settles
    try:
        _settle(claim, JobRunStatus.SUCCEEDED, records=int(records or 0), ctx=ctx)
    except TRANSIENT_ERRORS as err:
        if final_attempt:
            _settle(claim, JobRunStatus.FAILED, code=_error_code(err), message=str(err))
            return claim.run
        _requeue(claim, err)
        raise RetryRun(err) from err
    except (DatabaseError, ValueError, TypeError) as err:
        # e.g. a hook's write violated a constraint: nothing of it was committed.
        _settle(claim, JobRunStatus.FAILED, code=type(err).__name__, message=str(err)[:2000])
    return claim.run


def _message(err: BaseException) -> str:
    if isinstance(err, ValidationError):
        return "; ".join(err.messages)
    return str(err)


def _requeue(claim: _Claim, err: BaseException) -> None:
    """Put a run back in the queued state before its retry (lease released)."""
    with transaction.atomic():
        updated = JobRun.objects.filter(
            pk=claim.run.pk, status=JobRunStatus.RUNNING, delivery_count=claim.delivery
        ).update(
            status=JobRunStatus.QUEUED,
            lease_until=None,
            error_code=_error_code(err)[:100],
            error_message=f"Attempt {claim.attempt} failed, retrying: {err}",
        )
    if not updated:
        logger.warning("Job run %s was taken over before its retry", claim.run.pk)


def prune_job_runs(*, days: int | None = None, batch_size: int = 5000) -> int:
    """Delete finished runs (succeeded, failed, skipped, parked) older than ``days``
    (default ``JOB_RUN_RETENTION_DAYS``), in batches; queued and running runs are kept."""
    days = JOB_RUN_RETENTION_DAYS if days is None else days
    cutoff = timezone.now() - timedelta(days=days)
    total = 0
    while True:
        pks = list(
            JobRun.objects.filter(status__in=TERMINAL_STATUSES, queued_at__lt=cutoff).values_list(
                "pk", flat=True
            )[:batch_size]
        )
        if not pks:
            return total
        total += JobRun.objects.filter(pk__in=pks).delete()[0]


def retry_countdown(retries: int) -> float:
    """Backoff before retry number ``retries + 1``: exponential from ``JOB_RETRY_BACKOFF``,
    capped at ``JOB_RETRY_BACKOFF_MAX`` (≤ 15 min), with "equal jitter" (half random)."""
    cap = min(JOB_RETRY_BACKOFF * 2 ** min(retries, 20), JOB_RETRY_BACKOFF_MAX)
    return float(cap / 2 + random.uniform(0, cap / 2))  # noqa: S311 - jitter, not crypto


__all__ = [
    # The Celery timing constants live in intacct_connect.celery; re-exported here.
    "DISPATCH_HARD_TIME_LIMIT",
    "DISPATCH_SOFT_TIME_LIMIT",
    "JOB_HARD_TIME_LIMIT",
    "JOB_MAX_RETRIES",
    "JOB_SOFT_TIME_LIMIT",
    "REFRESH_HARD_TIME_LIMIT",
    "REFRESH_SOFT_TIME_LIMIT",
    "VISIBILITY_TIMEOUT",
    "RefreshOutcome",
    "RetryRun",
    "claim_due_refreshes",
    "claim_due_schedules",
    "count_delivery",
    "dispatch_due_refreshes",
    "dispatch_due_schedules",
    "enqueue_run",
    "execute_run",
    "next_run_time",
    "parse_crontab",
    "refresh_one",
    "run_schedules_now",
    "validate_schedule",
]
