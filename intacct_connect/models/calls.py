"""The API call log and the per-company concurrency slots."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from intacct_connect.models.connections import Connection


class ApiCallLog(models.Model):
    """One API call made by :class:`~intacct_connect.client.IntacctClient`.

    Never holds a body, a header value or a secret: the path is stored without its query
    string. Rows older than ``API_CALL_LOG_RETENTION_DAYS`` are deleted by
    :func:`intacct_connect.client.prune_api_call_log`.
    """

    connection = models.ForeignKey(
        Connection, on_delete=models.CASCADE, related_name="api_calls", verbose_name=_("connection")
    )
    method = models.CharField(_("method"), max_length=10)
    path = models.CharField(_("path"), max_length=500, help_text=_("Without the query string."))
    status = models.PositiveSmallIntegerField(
        _("HTTP status"), null=True, blank=True, help_text=_("Empty when no answer arrived.")
    )
    error_code = models.CharField(_("Intacct error code"), max_length=100, blank=True)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), default=0)
    retries = models.PositiveSmallIntegerField(_("retries"), default=0)
    request_id = models.CharField(_("request ID"), max_length=100, blank=True)
    created_at = models.DateTimeField(_("at"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("API call")
        verbose_name_plural = _("API calls")
        ordering = ("-created_at", "-pk")
        indexes = [
            models.Index(fields=("connection", "created_at"), name="intacct_call_conn_time"),
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.path} → {self.status or 'no answer'}"

    @property
    def is_error(self) -> bool:
        return self.status is None or self.status >= 400


class ConcurrencySlot(models.Model):
    """One of a company's ``COMPANY_CONCURRENCY`` request slots (see ``concurrency``).

    A slot is free when ``held_until`` is empty or in the past; a holder that crashed
    loses its slot after ``CONCURRENCY_SLOT_TTL`` seconds.
    """

    company_id = models.CharField(_("Intacct company ID"), max_length=100)
    slot = models.PositiveSmallIntegerField(_("slot"))
    holder = models.CharField(_("holder"), max_length=64, blank=True)
    held_until = models.DateTimeField(_("held until"), null=True, blank=True)

    class Meta:
        verbose_name = _("concurrency slot")
        verbose_name_plural = _("concurrency slots")
        constraints = [
            models.UniqueConstraint(
                fields=("company_id", "slot"), name="intacct_connect_one_slot_number"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.company_id} slot {self.slot}"
