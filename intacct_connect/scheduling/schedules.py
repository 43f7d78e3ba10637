"""Schedules: crontab and interval rules, validation, next run times, pause/resume, and
the dispatcher that fans a due schedule out into one run per target connection."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from celery.schedules import crontab as celery_crontab
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from intacct_connect import jobs
from intacct_connect.conf import app_settings
from intacct_connect.models import (
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
    MIN_INTERVAL_SECONDS,
    QUEUED_RUN_STALE_SECONDS,
    RUN_JOB_TASK,
    _enqueue_on_commit,
    _time_left,
)

# The package's logger, as before the split into modules.
logger = logging.getLogger("intacct_connect.scheduling")


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
