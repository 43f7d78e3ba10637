"""Schedules in motion: pause/resume, giving new schedules their first run, and the
dispatcher that claims due schedules, advances them and fans each out into one run per
target connection. A schedule's own rules (validation, the next run time) are methods of
:class:`~intacct_connect.models.Schedule`."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from intacct_connect import jobs
from intacct_connect.conf import app_settings
from intacct_connect.models import (
    AWAITING_ACTION,
    Connection,
    ConnectionStatus,
    JobRun,
    JobRunStatus,
    JobRunTrigger,
    Schedule,
    ScheduleQuerySet,
    ScheduleScope,
)
from intacct_connect.scheduling.common import (
    ACTIVE_RUN_STATUSES,
    DISPATCH_TIME_BUDGET,
    QUEUED_RUN_STALE_SECONDS,
    RUN_JOB_TASK,
    _enqueue_on_commit,
    _time_left,
)

# The package's logger, as before the split into modules.
logger = logging.getLogger("intacct_connect.scheduling")


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
                schedule.next_run_at = schedule.next_run_after(now)
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
    connections and those awaiting a person (needs re-authorisation, refresh in doubt:
    recorded as skipped)."""
    conn_ids = {s.connection_id for s in schedules if s.scope == ScheduleScope.CONNECTION}
    tenants = {s.tenant_key for s in schedules if s.scope == ScheduleScope.TENANT}
    site = any(s.scope == ScheduleScope.SITE for s in schedules)
    listed = (ConnectionStatus.ACTIVE, *AWAITING_ACTION)
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
    elif conn.status == ConnectionStatus.REFRESH_IN_DOUBT:
        message += (
            "; an operator must try its stored refresh token once (admin action) "
            "or a user must reconnect it"
        )
    if conn.last_error_code:
        message += f" (last error {conn.last_error_code})"
    return code, message + "."


#: A queued run that has not started this long after its message was sent (the message
#: was lost, e.g. held by a worker when the broker restarted) has its message sent again;
#: a running run whose worker is gone (its run lock is free) at once. At most once per
#: this many seconds per run; the run row keeps it exactly-once (``execute_run``).
RUN_REDISPATCH_SECONDS = 60
#: PostgreSQL advisory lock key of run ``pk``: ``RUN_LOCK_BASE + pk``, held by the
#: process executing the run for as long as it executes it (``runs.execute_run``).
RUN_LOCK_BASE = 0x1A7C << 48


def _executing_runs() -> set[int] | None:
    """IDs of the runs whose run lock some live database session holds (PostgreSQL), or
    None where the database has no advisory locks."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (classid::bigint << 32) | objid::bigint FROM pg_locks "
            "WHERE locktype = 'advisory' AND objsubid = 1 AND granted AND database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        return {key - RUN_LOCK_BASE for (key,) in cursor.fetchall() if key >= RUN_LOCK_BASE}


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


def redispatch_lost_runs(*, now: datetime | None = None) -> int:
    """Send again the task messages of live runs that lost theirs (PostgreSQL); returns
    how many. Called by every ``dispatch_due_schedules``.

    A message is lost when the broker restarts while a worker holds it unacknowledged
    (Redis restores those only after the visibility timeout, 2 h) or when it could not be
    sent. Sent again: a queued run never started ``RUN_REDISPATCH_SECONDS`` after it was
    queued (then at most once per that time), and a running run nobody executes (its run
    lock is free: its worker is gone), once. The run row keeps it exactly-once: a
    delivery of a finished run is ignored, one of a run being executed waits for nothing
    (``runs.execute_run``), and deliveries are counted towards ``MAX_DELIVERIES``."""
    now = now or timezone.now()
    if connection.vendor != "postgresql":
        return 0
    again = now + timedelta(seconds=RUN_REDISPATCH_SECONDS)
    resend_before = now - timedelta(seconds=RUN_REDISPATCH_SECONDS)
    with transaction.atomic():
        rows = list(
            JobRun.objects.filter(
                status__in=ACTIVE_RUN_STATUSES,
                queued_at__gte=now - timedelta(seconds=2 * QUEUED_RUN_STALE_SECONDS),
                queued_at__lt=resend_before,
            )
            .order_by("pk")
            .locked(skip_locked=True)  # not those a worker is starting now
            .values_list("pk", "status", "lease_until", "started_at")[:1000]
        )
        if not rows:
            return 0
        executing = _executing_runs() or set()
        pks = [
            pk
            for pk, status, lease_until, started_at in rows
            if pk not in executing
            and (
                (
                    status == JobRunStatus.QUEUED
                    and started_at is None  # a retry waits for its countdown
                    and (lease_until is None or lease_until < now)
                )
                or (
                    status == JobRunStatus.RUNNING
                    and lease_until is not None
                    and lease_until > again  # once per lost worker; then it expires
                )
            )
        ]
        if not pks:
            return 0
        # A queued run may be sent again after this; a running one that the new delivery
        # does not start is failed as lost (lease expired) by then.
        JobRun.objects.filter(pk__in=pks).update(lease_until=again)
        logger.warning("Job runs %s lost their task message; sending it again", pks)
        _enqueue_on_commit(RUN_JOB_TASK, [[pk] for pk in pks])
    return len(pks)


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
                s.next_run_at = s.next_run_after(now, previous=s.next_run_at)
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
                s.next_run_at = s.next_run_after(now)
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
    redispatch_lost_runs(now=now)
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
