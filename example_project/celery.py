"""The example site's Celery app. intacct_connect ships @shared_task's only."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from celery import Celery
from celery.signals import beat_init, task_postrun, task_prerun, worker_ready
from django.db import close_old_connections

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")

app = Celery("example_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


# Celery's Django integration closes the database connection around every task unless
# CELERY_DB_REUSE_MAX is set (settings.py sets it); then Django's own rules apply instead:
# CONN_MAX_AGE, CONN_HEALTH_CHECKS and connections left broken by an error.
@task_prerun.connect
@task_postrun.connect
def _close_old_connections(task: Any = None, **kwargs: Any) -> None:
    if task is not None and not getattr(task.request, "is_eager", False):
        close_old_connections()


# run_demo.py sets DEMO_READY_DIR and prints its banner once both files exist.
@worker_ready.connect
def _worker_ready(**kwargs: Any) -> None:
    _touch_ready_file("worker.ready")


@beat_init.connect
def _beat_ready(**kwargs: Any) -> None:
    _touch_ready_file("beat.ready")


def _touch_ready_file(name: str) -> None:
    ready_dir = os.environ.get("DEMO_READY_DIR")
    if ready_dir:
        Path(ready_dir, name).touch()
