"""Settings of the Celery worker subprocess started by tests/test_worker_processes.py.

Same as ``tests.settings`` but pointed at the test's database (``DATABASE_URL`` naming the
pytest-django test database), the test's Redis broker and the test's emulator.
"""

from __future__ import annotations

import os

from tests.settings import *  # noqa: F403
from tests.settings import INTACCT_CONNECT

# Workers keep their database connections between tasks: Celery's Django fixup closes them
# around every task unless CELERY_DB_REUSE_MAX is set; tests/celery_app.py then applies
# Django's rules (CONN_MAX_AGE, health checks). docs/tasks.rst recommends the same.
DATABASES["default"]["CONN_MAX_AGE"] = 600  # noqa: F405
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True  # noqa: F405
CELERY_DB_REUSE_MAX = 1000
CELERY_TASK_ALWAYS_EAGER = False
CELERY_BROKER_URL = os.environ.get("INTACCT_WORKER_BROKER_URL", "redis://127.0.0.1:6379/15")
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 7200}
if os.environ.get("INTACCT_WORKER_API_BASE_URL"):
    INTACCT_CONNECT = {
        **INTACCT_CONNECT,
        "API_BASE_URL": os.environ["INTACCT_WORKER_API_BASE_URL"],
    }
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "INFO"},
}
