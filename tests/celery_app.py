"""The Celery app of the test suite (the package itself never creates one).

Importing this module makes it the default app, configured from Django settings: eager
in unit tests (``CELERY_TASK_ALWAYS_EAGER``), and a real broker for the worker tests
(``memory://`` in process, ``REDIS_URL`` for the worker subprocess). The worker subprocess
is started as ``celery -A tests.celery_app worker`` with
``DJANGO_SETTINGS_MODULE=tests.worker_settings``.
"""

from __future__ import annotations

import os

from celery import Celery

from intacct_connect.celery import recommended_settings, task_routes

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

app = Celery("tests")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(recommended_settings)
app.conf.task_routes = task_routes
if os.environ.get("INTACCT_WORKER_BROKER_URL"):
    app.conf.broker_url = os.environ["INTACCT_WORKER_BROKER_URL"]
    app.conf.task_always_eager = False
if os.environ.get("INTACCT_WORKER_TEST_JOBS"):
    app.conf.imports = ["tests.worker_jobs"]
app.autodiscover_tasks(["intacct_connect"])
app.set_default()
