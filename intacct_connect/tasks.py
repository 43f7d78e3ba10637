"""Celery tasks of intacct_connect. Task arguments are IDs and numbers only, never secrets.

The app ships ``@shared_task``\\ s only and never creates a Celery app; the host site's app
(see ``example_project/celery.py`` and :mod:`intacct_connect.celery`) runs them. Every task
is idempotent and runs with late acknowledgement, so a worker killed mid-task gets the
message redelivered (``reject_on_worker_lost``); each delivery is counted in the database
and a message delivered more than ``MAX_DELIVERIES`` times is parked instead of looping.
Time limits are consistent with the HTTP timeouts and with a broker visibility timeout of
:data:`~intacct_connect.celery.VISIBILITY_TIMEOUT` seconds (``docs/tasks.rst``).

=================================================  ========================================
Task name                                          What it does
=================================================  ========================================
``intacct_connect.dispatch_due_refreshes``         beat, every minute: claim due refreshes
``intacct_connect.refresh_connection``             refresh one connection's tokens
``intacct_connect.dispatch_due_schedules``         beat, every minute: fan out due schedules
``intacct_connect.run_job``                        run one job run (one job, one connection)
``intacct_connect.prune_api_call_log``             beat, daily: delete old API call log rows
``intacct_connect.prune_job_runs``                 beat, daily: delete finished runs > 30 days
``intacct_connect.purge_authorization_requests``   beat, hourly: delete used/expired requests
=================================================  ========================================
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, shared_task
from celery.signals import worker_init

from intacct_connect import calllog, flows, scheduling
from intacct_connect.celery import (
    DISPATCH_HARD_TIME_LIMIT,
    DISPATCH_SOFT_TIME_LIMIT,
    JOB_HARD_TIME_LIMIT,
    JOB_MAX_RETRIES,
    JOB_SOFT_TIME_LIMIT,
    PRUNE_HARD_TIME_LIMIT,
    PRUNE_SOFT_TIME_LIMIT,
    REFRESH_HARD_TIME_LIMIT,
    REFRESH_SOFT_TIME_LIMIT,
    guard_redis_channels,
)
from intacct_connect.conf import app_settings

logger = logging.getLogger(__name__)


@worker_init.connect(dispatch_uid="intacct_connect.guard_redis_channels")
def _guard_redis_channels(**kwargs: Any) -> None:
    """A worker survives the loss of its Redis broker (``docs/reliability.rst``, proof 4):
    see :func:`intacct_connect.celery.guard_redis_channels`."""
    guard_redis_channels()


#: Options shared by every task of the app (checked by tests/test_tasks.py).
COMMON_OPTIONS: dict[str, Any] = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "ignore_result": True,
}


def _over_delivered(task: Task[Any, Any]) -> int:
    """This message's delivery count when it exceeds ``MAX_DELIVERIES``, else 0."""
    deliveries = scheduling.count_delivery(task.request.id or "", task.name)
    return deliveries if deliveries > app_settings.MAX_DELIVERIES else 0


@shared_task(
    bind=True,
    name="intacct_connect.dispatch_due_refreshes",
    soft_time_limit=DISPATCH_SOFT_TIME_LIMIT,
    time_limit=DISPATCH_HARD_TIME_LIMIT,
    max_deliveries_counted=True,
    **COMMON_OPTIONS,
)
def dispatch_due_refreshes(self: Task[Any, Any]) -> int:
    """Claim due proactive refreshes and enqueue one ``refresh_connection`` per connection."""
    if deliveries := _over_delivered(self):
        logger.error("dispatch_due_refreshes delivered %s times; dropped", deliveries)
        return 0
    return scheduling.dispatch_due_refreshes()


@shared_task(
    bind=True,
    name=scheduling.REFRESH_TASK,
    soft_time_limit=REFRESH_SOFT_TIME_LIMIT,
    time_limit=REFRESH_HARD_TIME_LIMIT,
    max_deliveries_counted=True,
    **COMMON_OPTIONS,
)
def refresh_connection(
    self: Task[Any, Any], connection_id: int, seen_version: int | None = None
) -> str:
    """Refresh one connection's tokens through the single-flight path (no Celery retry:
    failures back off through ``Connection.next_refresh_at``)."""
    if deliveries := _over_delivered(self):
        scheduling.park_refresh(connection_id, deliveries)
        return "parked"
    outcome = scheduling.refresh_one(int(connection_id), seen_version)
    return outcome.result


@shared_task(
    bind=True,
    name="intacct_connect.dispatch_due_schedules",
    soft_time_limit=DISPATCH_SOFT_TIME_LIMIT,
    time_limit=DISPATCH_HARD_TIME_LIMIT,
    max_deliveries_counted=True,
    **COMMON_OPTIONS,
)
def dispatch_due_schedules(self: Task[Any, Any]) -> int:
    """Fan due schedules out to one ``run_job`` task per connection."""
    if deliveries := _over_delivered(self):
        logger.error("dispatch_due_schedules delivered %s times; dropped", deliveries)
        return 0
    return scheduling.dispatch_due_schedules()


@shared_task(
    bind=True,
    name=scheduling.RUN_JOB_TASK,
    soft_time_limit=JOB_SOFT_TIME_LIMIT,
    time_limit=JOB_HARD_TIME_LIMIT,
    max_retries=JOB_MAX_RETRIES,
    max_deliveries_counted=True,  # JobRun.delivery_count, see scheduling.execute_run
    **COMMON_OPTIONS,
)
def run_job(self: Task[Any, Any], run_id: int) -> str:
    """Run one :class:`~intacct_connect.models.JobRun`.

    Transient failures (429, 5xx, transport and token-endpoint errors, database
    disconnects) are retried with exponential backoff and jitter, up to ``max_retries``;
    needs-reauthorisation and configuration errors never are."""
    retries = int(self.request.retries or 0)
    try:
        run = scheduling.execute_run(
            int(run_id),
            task_id=self.request.id or "",
            attempt=retries + 1,
            final_attempt=retries >= (self.max_retries or 0),
        )
    except scheduling.RetryRun as err:
        # Only transient errors get here (scheduling.TRANSIENT_ERRORS); the countdown is
        # exponential with jitter and never above 10 minutes.
        raise self.retry(exc=err, countdown=scheduling.retry_countdown(retries)) from None
    return run.status if run is not None else "missing"


@shared_task(
    bind=True,
    name="intacct_connect.prune_api_call_log",
    soft_time_limit=PRUNE_SOFT_TIME_LIMIT,
    time_limit=PRUNE_HARD_TIME_LIMIT,
    max_deliveries_counted=True,
    **COMMON_OPTIONS,
)
def prune_api_call_log(self: Task[Any, Any]) -> int:
    """Delete API call log rows older than ``API_CALL_LOG_RETENTION_DAYS``."""
    if _over_delivered(self):
        return 0
    return calllog.prune_api_call_log()


@shared_task(
    bind=True,
    name="intacct_connect.prune_job_runs",
    soft_time_limit=PRUNE_SOFT_TIME_LIMIT,
    time_limit=PRUNE_HARD_TIME_LIMIT,
    max_deliveries_counted=True,
    **COMMON_OPTIONS,
)
def prune_job_runs(self: Task[Any, Any]) -> int:
    """Delete finished job runs older than ``scheduling.JOB_RUN_RETENTION_DAYS`` (30)."""
    if _over_delivered(self):
        return 0
    return scheduling.prune_job_runs()


@shared_task(
    bind=True,
    name="intacct_connect.purge_authorization_requests",
    soft_time_limit=PRUNE_SOFT_TIME_LIMIT,
    time_limit=PRUNE_HARD_TIME_LIMIT,
    max_deliveries_counted=True,
    **COMMON_OPTIONS,
)
def purge_authorization_requests(self: Task[Any, Any]) -> int:
    """Delete consumed and expired authorization requests (with their encrypted PKCE
    verifiers); returns how many."""
    if _over_delivered(self):
        return 0
    return flows.purge_flows()
