# mysite/celery.py: the site's Celery app; intacct_connect only ships @shared_task's.
import os
from typing import Any

from celery import Celery
from celery.signals import task_postrun, task_prerun
from django.db import close_old_connections

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")

app = Celery("mysite")
# Every CELERY_* setting (broker, beat schedule, routes) comes from Django settings.
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


# With CELERY_DB_REUSE_MAX set, Django's own rules (CONN_MAX_AGE, CONN_HEALTH_CHECKS)
# decide when a worker closes its database connection.
@task_prerun.connect
@task_postrun.connect
def _close_old_connections(task: Any = None, **kwargs: Any) -> None:
    if task is not None and not getattr(task.request, "is_eager", False):
        close_old_connections()
