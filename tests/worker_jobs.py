"""Jobs registered only in the Celery worker subprocess of tests/test_worker_processes.py
(loaded through ``CELERY_IMPORTS`` when ``INTACCT_WORKER_TEST_JOBS`` is set)."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

from intacct_connect import jobs


@jobs.register("test_kill_own_worker", description="test: records a delivery, then dies")
def kill_own_worker(client: Any, ctx: jobs.JobContext) -> int:
    with Path(ctx.params["log"]).open("a") as log:
        log.write(f"{os.getpid()}\n")
    os.kill(os.getpid(), signal.SIGKILL)
    return 0  # pragma: no cover
