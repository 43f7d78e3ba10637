# --- intacct_connect: Celery (read by mysite/celery.py, namespace "CELERY") -------------
from intacct_connect.celery import VISIBILITY_TIMEOUT, beat_schedule, task_routes

CELERY_BROKER_URL = required("CELERY_BROKER_URL")  # e.g. redis://localhost:6379/0
CELERY_BEAT_SCHEDULE = {**beat_schedule}  # plus your own entries
CELERY_TASK_ROUTES = {**task_routes}  # intacct.refresh and intacct.jobs queues
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_TASK_ACKS_ON_FAILURE_OR_TIMEOUT = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": VISIBILITY_TIMEOUT}  # 7200 s
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_DB_REUSE_MAX = 1000  # with the handler in mysite/celery.py; see docs/tasks.rst
DATABASES["default"]["CONN_MAX_AGE"] = 600
