from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IntacctConnectConfig(AppConfig):
    name = "intacct_connect"
    verbose_name = _("Sage Intacct connections")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Register the @shared_task's with every Celery app of the process, so publishing by
        # name (intacct_connect.scheduling) finds the task, its options and eager mode even
        # in a process whose Celery app never autodiscovers tasks (a site's web process).
        from intacct_connect import (  # noqa: F401  (registers checks)
            checks,
            logging_filters,
            tasks,
        )

        logging_filters.install()
        _connect_end_of_work_handlers()
        _show_incidents_on_the_admin_index()


#: The admin index template the app gives ``django.contrib.admin.site`` (when it has none).
ADMIN_INDEX_TEMPLATE = "intacct_connect/admin/index.html"


def _show_incidents_on_the_admin_index() -> None:
    """The default admin site's index shows open site-wide incidents (``{% intacct_incidents
    %}``), unless the site chose its own index template."""
    from django.apps import apps

    if not apps.is_installed("django.contrib.admin"):
        return
    from django.contrib import admin

    if admin.site.index_template is None:
        admin.site.index_template = ADMIN_INDEX_TEMPLATE


def _connect_end_of_work_handlers() -> None:
    """Write waiting call-log rows and release parked slots at the end of each unit of
    work (see :func:`intacct_connect.client.finish_pending_work`)."""
    from celery.signals import task_postrun, worker_process_shutdown
    from django.core.signals import request_finished

    from intacct_connect.client import finish_pending_work

    for signal in (request_finished, task_postrun, worker_process_shutdown):
        signal.connect(finish_pending_work, dispatch_uid="intacct_connect.finish_pending_work")
