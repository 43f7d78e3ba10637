"""The Celery app of the failure-proof subprocesses: the test suite's app
(``tests.celery_app``) plus a fast beat entry and the proofs' module ``bench.proof_jobs``
(loaded by the worker once Django is set up).

``PROOF_BEAT_PERIOD`` (seconds, default 1): how often beat sends
``intacct_connect.dispatch_due_schedules`` (the site default is 60 s).
"""

from __future__ import annotations

import os

from tests.celery_app import app

__all__ = ["app"]

app.conf.imports = [*(app.conf.imports or ()), "bench.proof_jobs"]
app.conf.beat_schedule = {
    "proof-dispatch-due-schedules": {
        "task": "intacct_connect.dispatch_due_schedules",
        "schedule": float(os.environ.get("PROOF_BEAT_PERIOD", "1")),
        "options": {"expires": 30},
    }
}
