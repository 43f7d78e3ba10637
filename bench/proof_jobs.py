"""Loaded by the failure-proof workers (``bench.proof_celery_app``) and by the proof
scripts and tests.

- ``PROOF_MIN_INTERVAL`` (seconds): lowers the dispatcher's 60-second floor on schedule
  intervals in this process, so a few minutes hold many periods. The dispatch rule itself
  (``scheduling.schedules.next_run_time``) is unchanged;
- ``PROOF_REDISPATCH_SECONDS``: lowers ``scheduling.schedules.RUN_REDISPATCH_SECONDS``
  (60 s: how long a queued run waits for its message before it is sent again) in scale
  with the lowered intervals;
- ``PROOF_COMPANY_CONCURRENCY``: the worker's ``COMPANY_CONCURRENCY`` (see below);
- ``PROOF_REDIS_GUARD=0``: the worker without the Redis channel guard (proof 4's control);
- the job ``proof_sleep`` appends ``start``/``end`` lines (event, pid, run, connection,
  wall-clock time) to ``params["log"]`` and sleeps ``params["sleep"]`` seconds in between:
  the proofs read overlaps and executions from that file, not from the library's records.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from intacct_connect import jobs, scheduling  # noqa: F401  - loads the modules to patch


def lower_interval_floor(seconds: int) -> None:
    """Wherever the floor is read (``scheduling.schedules`` today)."""
    for name, module in list(sys.modules.items()):
        if name.startswith("intacct_connect") and hasattr(module, "MIN_INTERVAL_SECONDS"):
            module.MIN_INTERVAL_SECONDS = seconds  # type: ignore[attr-defined]


if os.environ.get("PROOF_MIN_INTERVAL"):
    lower_interval_floor(int(os.environ["PROOF_MIN_INTERVAL"]))


def lower_redispatch_delay(seconds: int) -> None:
    from intacct_connect.scheduling import schedules

    schedules.RUN_REDISPATCH_SECONDS = seconds


if os.environ.get("PROOF_REDISPATCH_SECONDS"):
    lower_redispatch_delay(int(os.environ["PROOF_REDISPATCH_SECONDS"]))

if os.environ.get("PROOF_REDIS_GUARD") == "0":
    # The control run of proof 4 (``proof_redis_restart.py --no-guard``): the worker
    # without intacct_connect.celery.guard_redis_channels (installed at worker_init,
    # after this module is imported).
    from intacct_connect import celery as intacct_celery

    intacct_celery.REDIS_GUARD_KOMBU_VERSIONS = ((0, 0), (0, 0))

if os.environ.get("PROOF_COMPANY_CONCURRENCY"):
    # The kill proofs SIGKILL a child in the middle of an API request: the per-company
    # slot it held stays taken until CONCURRENCY_SLOT_TTL (120 s), so with the cap on,
    # every other trial would wait two minutes for its redelivery. The cap is not what
    # these proofs are about; they turn it off in the worker.
    from django.conf import settings

    from intacct_connect.conf import app_settings

    settings.INTACCT_CONNECT = {
        **settings.INTACCT_CONNECT,
        "COMPANY_CONCURRENCY": int(os.environ["PROOF_COMPANY_CONCURRENCY"]),
    }
    app_settings.reload()


def _log(path: str, event: str, ctx: jobs.JobContext) -> None:
    line = f"{event} {os.getpid()} {ctx.run.pk} {ctx.connection.pk} {time.time():.6f}\n"
    with Path(path).open("a") as out:  # one short append: atomic between processes
        out.write(line)


@jobs.register("proof_sleep", description="failure proofs: log start, sleep, log end")
def proof_sleep(client: Any, ctx: jobs.JobContext) -> int:
    _log(ctx.params["log"], "start", ctx)
    time.sleep(float(ctx.params.get("sleep", 0.5)))
    _log(ctx.params["log"], "end", ctx)
    return 1
