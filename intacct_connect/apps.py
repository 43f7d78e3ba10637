from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IntacctConnectConfig(AppConfig):
    name = "intacct_connect"
    verbose_name = _("Sage Intacct connections")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from intacct_connect import checks, logging_filters  # noqa: F401  (registers checks)

        logging_filters.install()
