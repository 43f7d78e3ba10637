"""Site-wide incidents (the site's client credentials rejected by Intacct)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from intacct_connect.models.choices import IncidentKind
from intacct_connect.models.querysets import SiteIncidentQuerySet


class SiteIncident(models.Model):
    """A site-wide problem no tenant caused, recorded once instead of on every connection.

    Today one kind: Intacct answers ``invalid_client`` to this site's client ID and secret.
    While an incident is open (``resolved_at`` empty) for the credentials it was opened for
    (``credentials``, a keyed digest, never the secret), token requests fail fast and the
    refresh dispatcher pauses, except one probe after ``probe_after``; the first token
    request that succeeds resolves it. See :mod:`intacct_connect.connection_state`.
    """

    kind = models.CharField(_("kind"), max_length=50, choices=IncidentKind.choices)
    credentials = models.CharField(
        _("credentials digest"),
        max_length=64,
        help_text=_("Keyed digest of the client ID and secret that were rejected; not secret."),
    )
    error_code = models.CharField(_("error code"), max_length=100, blank=True)
    message = models.TextField(_("message"), blank=True)
    opened_at = models.DateTimeField(_("opened at"), default=timezone.now)
    last_seen_at = models.DateTimeField(_("last seen at"), default=timezone.now)
    occurrences = models.PositiveIntegerField(_("rejections"), default=1)
    probe_failures = models.PositiveIntegerField(_("failed probes"), default=0)
    probe_after = models.DateTimeField(_("next probe after"))
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)

    objects = SiteIncidentQuerySet.as_manager()

    class Meta:
        verbose_name = _("site incident")
        verbose_name_plural = _("site incidents")
        ordering = ("-opened_at", "-pk")
        constraints = [
            models.UniqueConstraint(
                fields=("kind",),
                condition=Q(resolved_at__isnull=True),
                name="intacct_connect_one_open_incident_per_kind",
            ),
        ]

    def __str__(self) -> str:
        state = "resolved" if self.resolved_at else "open"
        return f"{self.get_kind_display()} ({state} since {self.opened_at:%Y-%m-%d %H:%M})"
