# mysite/__init__.py: load the Celery app whenever Django starts (web, manage.py, worker),
# so @shared_task's publish through it and its broker, not through Celery's fallback app.
from .celery import app as celery_app

__all__ = ("celery_app",)
