"""The Celery app of the test suite (the package itself never creates one).

Importing this module makes it the default app, configured from Django settings: eager
in unit tests (``CELERY_TASK_ALWAYS_EAGER``), and a real broker for the worker tests
(``memory://`` in process, ``REDIS_URL`` for the worker subprocess). The worker subprocess
is started as ``celery -A tests.celery_app worker`` with
``DJANGO_SETTINGS_MODULE=tests.worker_settings``.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import task_postrun, task_prerun
from django.db import close_old_connections

from intacct_connect.celery import recommended_settings, task_routes

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

app = Celery("tests")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(recommended_settings)
app.conf.task_routes = task_routes
if os.environ.get("INTACCT_WORKER_BROKER_URL"):
    app.conf.broker_url = os.environ["INTACCT_WORKER_BROKER_URL"]  # type: ignore[misc]
    app.conf.task_always_eager = False
if os.environ.get("INTACCT_WORKER_TEST_JOBS"):
    app.conf.imports = ["tests.worker_jobs"]
app.autodiscover_tasks(["intacct_connect"])
app.set_default()


@task_prerun.connect
@task_postrun.connect
def _close_old_connections(task: Any = None, **kwargs: Any) -> None:
    """With CELERY_DB_REUSE_MAX set (worker_settings), Django's rules decide when a worker
    closes its database connection (as in example_project/celery.py)."""
    if task is not None and not getattr(task.request, "is_eager", False):
        close_old_connections()
