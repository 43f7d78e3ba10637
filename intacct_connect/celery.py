"""What a host site's Celery app needs from intacct_connect: the beat schedule, the task
routes and the recommended worker settings. The app never creates a Celery app itself.

In the site's ``celery.py``::

    from celery import Celery
    from intacct_connect.celery import beat_schedule, task_routes

    app = Celery("mysite")
    app.config_from_object("django.conf:settings", namespace="CELERY")
    app.conf.beat_schedule = {**app.conf.beat_schedule, **beat_schedule}
    app.conf.task_routes = {**task_routes, **(app.conf.task_routes or {})}
    app.autodiscover_tasks()

and run ``celery -A mysite worker -Q intacct.refresh,intacct.jobs`` plus one
``celery -A mysite beat``.
"""

from __future__ import annotations

import functools
import importlib
import logging
from typing import Any

# Importable from Django settings: this module imports no models (nor kombu or redis at
# import time: guard_redis_channels imports them when it runs).

logger = logging.getLogger(__name__)

#: The broker visibility timeout (seconds) the tasks' time limits are designed for: at
#: least twice the longest hard time limit (600 s) and longer than any countdown (≤ 15 min).
VISIBILITY_TIMEOUT = 7200

# Task time limits and retries (docs/tasks.rst, "Worker settings and why").

#: Time limits of the job-run task; a run's lease (``scheduling.JOB_LEASE_SECONDS``)
#: outlives the hard one.
JOB_SOFT_TIME_LIMIT = 540
JOB_HARD_TIME_LIMIT = 600
#: Refresh task limits: lock wait (20 s) + one token request (3.05 + 10 s) < soft limit.
REFRESH_SOFT_TIME_LIMIT = 60
REFRESH_HARD_TIME_LIMIT = 90
#: Dispatchers run every minute (and stop claiming after ``DISPATCH_TIME_BUDGET``).
DISPATCH_SOFT_TIME_LIMIT = 50
DISPATCH_HARD_TIME_LIMIT = 60
#: The daily pruning tasks.
PRUNE_SOFT_TIME_LIMIT = 240
PRUNE_HARD_TIME_LIMIT = 300
#: Celery retries of a failed run (transient errors only).
JOB_MAX_RETRIES = 5

#: Short, latency-sensitive tasks: dispatchers and token refreshes.
REFRESH_QUEUE = "intacct.refresh"
#: Long tasks: job runs (API calls, storage) and housekeeping.
JOBS_QUEUE = "intacct.jobs"

#: Two static beat entries (plus two daily prunes and an hourly purge); per-tenant
#: schedules are rows in the database, claimed by the dispatcher (never one beat entry per
#: tenant).
beat_schedule: dict[str, dict[str, Any]] = {
    "intacct-dispatch-due-refreshes": {
        "task": "intacct_connect.dispatch_due_refreshes",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "intacct-dispatch-due-schedules": {
        "task": "intacct_connect.dispatch_due_schedules",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "intacct-prune-api-call-log": {
        "task": "intacct_connect.prune_api_call_log",
        "schedule": 86400.0,
        "options": {"expires": 3600},
    },
    "intacct-prune-job-runs": {
        "task": "intacct_connect.prune_job_runs",
        "schedule": 86400.0,
        "options": {"expires": 3600},
    },
    "intacct-purge-authorization-requests": {
        "task": "intacct_connect.purge_authorization_requests",
        "schedule": 3600.0,
        "options": {"expires": 1800},
    },
}

#: Refreshes never wait behind long job runs.
task_routes: dict[str, dict[str, str]] = {
    "intacct_connect.dispatch_due_refreshes": {"queue": REFRESH_QUEUE},
    "intacct_connect.refresh_connection": {"queue": REFRESH_QUEUE},
    "intacct_connect.dispatch_due_schedules": {"queue": REFRESH_QUEUE},
    "intacct_connect.run_job": {"queue": JOBS_QUEUE},
    "intacct_connect.prune_api_call_log": {"queue": JOBS_QUEUE},
    "intacct_connect.prune_job_runs": {"queue": JOBS_QUEUE},
    "intacct_connect.purge_authorization_requests": {"queue": JOBS_QUEUE},
}

#: Worker and broker settings the tasks' reliability relies on (``CELERY_``-prefixed in
#: Django settings). ``broker_transport_options`` applies to Redis (and SQS).
recommended_settings: dict[str, Any] = {
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "task_acks_on_failure_or_timeout": True,
    "worker_prefetch_multiplier": 1,
    "task_ignore_result": True,
    "worker_cancel_long_running_tasks_on_connection_loss": True,
    "broker_transport_options": {"visibility_timeout": VISIBILITY_TIMEOUT},
}


#: The kombu versions (``[low, high)``, major and minor) whose Redis transport
#: :func:`guard_redis_channels` was measured on (``bench/proof_redis_restart.py``). Outside
#: the range the guard is not installed; ``tests/test_proof_redis_restart.py`` fails until
#: the proof is run again on the new version and the range moved.
REDIS_GUARD_KOMBU_VERSIONS = ((5, 3), (5, 8))


def guard_redis_channels() -> bool:
    """Make kombu's Redis channel raise a *connection error* (``redis.ConnectionError``)
    instead of ``AttributeError`` when it needs a Redis client after its connection was
    closed; returns whether the guard is installed (it is idempotent).

    Why: when a worker loses the broker, Celery's consumer collects and then closes the
    broken connection, which drops the transport (``transport.client = None``) while a
    channel whose close failed half-way (its pending ``BRPOP`` read raised) is still open.
    Everything that later needs that channel's Redis client rebuilds a connection pool from
    ``transport.client`` and fails with ``AttributeError: 'NoneType' object has no
    attribute 'hostname'`` (``kombu/transport/redis.py`` ``Channel._connparams``): the
    second close in ``Consumer.on_connection_error_after_connected`` (outside
    ``ignore_errors``, which only swallows connection errors), and the late
    acknowledgement or reject of a task that finishes after the loss (outside
    ``Message.ack_log_error``). Either one ends the worker ("Unrecoverable error"). As a
    connection error, the close is ignored and the consumer reconnects, and the ack is
    logged as ``Couldn't ack`` (the message stays in Redis's unacked set and comes back
    after the visibility timeout, when the finished run ignores it).

    Connected to ``worker_init`` by :mod:`intacct_connect.tasks`, so every worker that
    loads the app's tasks has it; a no-op without the Redis transport, or on a kombu
    outside :data:`REDIS_GUARD_KOMBU_VERSIONS`.
    """
    try:  # the stubs of celery-types do not have what is used here
        kombu: Any = importlib.import_module("kombu")
        kombu_redis: Any = importlib.import_module("kombu.transport.redis")
    except ImportError:  # pragma: no cover - kombu comes with celery
        return False
    if kombu_redis.redis is None:  # redis-py not installed: no Redis transport
        return False
    low, high = REDIS_GUARD_KOMBU_VERSIONS
    if not low <= tuple(kombu.VERSION[:2]) < high:
        logger.warning(
            "intacct_connect: kombu %s is outside %s: the Redis channel guard is not "
            "installed (see intacct_connect.celery.guard_redis_channels)",
            kombu.__version__,
            REDIS_GUARD_KOMBU_VERSIONS,
        )
        return False
    channel_cls = kombu_redis.Channel
    original = channel_cls._connparams
    if getattr(original, "intacct_guard", False):
        return True
    connection_error = kombu_redis.redis.exceptions.ConnectionError

    @functools.wraps(original)
    def _connparams(self: Any, *args: Any, **kwargs: Any) -> Any:
        transport = self.connection
        if transport is None or transport.client is None:
            logger.info("intacct_connect: a Redis channel was used after its connection closed")
            raise connection_error("the broker connection of this Redis channel was closed")
        return original(self, *args, **kwargs)

    _connparams.intacct_guard = True  # type: ignore[attr-defined]
    channel_cls._connparams = _connparams
    logger.info("intacct_connect: Redis channel guard installed (kombu %s)", kombu.__version__)
    return True
