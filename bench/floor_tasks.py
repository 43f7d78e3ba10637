"""A no-op task for ``bench_dispatch.py``'s Celery floor (loaded into the bench worker with
``--include bench.floor_tasks``; never part of the package).

It runs with the options of the app's own tasks (``acks_late``, ``reject_on_worker_lost``,
no result) on the same worker, so its rate is the most the worker can deliver for one
task per connection before any refresh work: the ceiling of the refresh rate."""

from __future__ import annotations

import os

import redis
from celery import shared_task

from intacct_connect.tasks import COMMON_OPTIONS

COUNTER = "intacct-bench:floor-done"
_redis = redis.Redis.from_url(os.environ.get("INTACCT_WORKER_BROKER_URL", "redis://"))


@shared_task(name="bench.noop", **COMMON_OPTIONS)
def noop(index: int) -> None:
    """Count one delivery (one Redis INCR) and do nothing else."""
    _redis.incr(COUNTER)
