"""Executing a run: delivery counting and parking, the lease, running the job, settling
the run record, Celery retries with backoff, and pruning old runs."""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.core.exceptions import ValidationError
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from intacct_connect import jobs
from intacct_connect.celery import JOB_SOFT_TIME_LIMIT
from intacct_connect.client import IntacctClient
from intacct_connect.conf import app_settings
from intacct_connect.exceptions import IntacctConnectError, InvalidGrant, NeedsReauthorization
from intacct_connect.models import ConnectionStatus, JobRun, JobRunStatus
from intacct_connect.scheduling.common import (
    JOB_LEASE_SECONDS,
    JOB_RETRY_BACKOFF,
    JOB_RETRY_BACKOFF_MAX,
    JOB_RUN_RETENTION_DAYS,
    PERMANENT_ERRORS,
    TERMINAL_STATUSES,
    TRANSIENT_ERRORS,
)
from intacct_connect.scheduling.schedules import RUN_LOCK_BASE, _skip_reason

# The package's logger, as before the split into modules.
logger = logging.getLogger("intacct_connect.scheduling")


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


#: How long a delivery waits for a run's lock (the session of a worker just killed
#: takes a moment to end) before leaving the run to the delivery that holds it.
RUN_LOCK_WAIT = 2.0


def _lock_run(run_id: int) -> bool:
    """Take the run's session-level advisory lock (PostgreSQL; elsewhere always True).

    Held by the process executing the run from before it is claimed until after it is
    settled, it ends with the process's database session: so a run whose lock is free is
    executed by nobody, and a second delivery of a run never executes it alongside the
    first while the first's worker is alive."""
    if connection.vendor != "postgresql":
        return True
    deadline = time.monotonic() + RUN_LOCK_WAIT
    while True:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [RUN_LOCK_BASE + run_id])
            (held,) = cursor.fetchone()
        if held or time.monotonic() >= deadline:
            return bool(held)
        time.sleep(0.1)


def _unlock_run(run_id: int) -> None:
    if connection.vendor != "postgresql":
        return
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [RUN_LOCK_BASE + run_id])
    except DatabaseError:  # the session is gone, and its locks with it
        logger.warning("Could not release the lock of job run %s", run_id, exc_info=True)


def execute_run(
    run_id: int, *, task_id: str = "", attempt: int = 1, final_attempt: bool = True
) -> JobRun | None:
    """Run one queued job run (the body of the ``run_job`` task).

    Returns the run as finished (or None when this delivery had nothing to do). Raises
    :class:`RetryRun` for a transient failure when ``final_attempt`` is false; the run is
    then back in the queued state with the error recorded. A delivery of a run that
    another live process is executing (it holds the run's lock) does nothing."""
    if not _lock_run(run_id):
        logger.warning(
            "Job run %s is being executed by another live delivery; ignoring this one", run_id
        )
        return JobRun.objects.filter(pk=run_id).first()
    try:
        return _execute_run(run_id, task_id, attempt, final_attempt)
    finally:
        _unlock_run(run_id)


def _execute_run(run_id: int, task_id: str, attempt: int, final_attempt: bool) -> JobRun | None:
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
