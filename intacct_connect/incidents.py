"""The site-wide ``invalid_client`` incident: Intacct rejects this site's client credentials.

One incident (a :class:`~intacct_connect.models.SiteIncident` row) per episode, whichever
connection met it: one ERROR log line and one ``client_credentials_rejected`` signal when it
opens; token requests fail fast with
:class:`~intacct_connect.exceptions.ClientCredentialsRejected` while it is open, except one
probe per back-off (30 s doubling to 15 min; claimed with ``SKIP LOCKED``) or at once when
the credentials change; the first success resolves it. No connection's status or counters
change. Used by :mod:`~intacct_connect.tokens` (the refresh path), the refresh dispatcher
and the admin's banner.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac

from intacct_connect import signals
from intacct_connect.conf import app_settings
from intacct_connect.exceptions import ClientCredentialsRejected, InvalidClient
from intacct_connect.models import Connection, IncidentKind, SiteIncident

logger = logging.getLogger(__name__)

#: Back-off of the probes while Intacct rejects the client credentials: 30 s, 60 s, … 15 min.
INCIDENT_PROBE_BACKOFF_BASE = 30
INCIDENT_PROBE_BACKOFF_MAX = 900


def credentials_digest() -> str:
    """A keyed digest (``SECRET_KEY``) of the current client ID and secret: tells whether an
    incident is about the credentials in use. Not reversible; never the secret."""
    value = f"{app_settings.CLIENT_ID}\x00{app_settings.CLIENT_SECRET}"
    return salted_hmac("intacct_connect.client_credentials", value, algorithm="sha256").hexdigest()[
        :32
    ]


def probe_backoff(failed_probes: int) -> timedelta:
    seconds = INCIDENT_PROBE_BACKOFF_BASE * 2 ** max(failed_probes, 0)
    return timedelta(seconds=min(seconds, INCIDENT_PROBE_BACKOFF_MAX))


def open_credentials_incident() -> SiteIncident | None:
    """The open ``invalid_client`` incident, whichever credentials it is about."""
    return (
        SiteIncident.objects.open()
        .filter(kind=IncidentKind.CLIENT_CREDENTIALS_REJECTED)
        .order_by("-opened_at")
        .first()
    )


def credentials_incident() -> SiteIncident | None:
    """The open ``invalid_client`` incident about the credentials in use, else None (none,
    or the credentials changed since: the next token request tries them)."""
    incident = open_credentials_incident()
    if incident is None or incident.credentials != credentials_digest():
        return None
    return incident


def credentials_incident_message(incident: SiteIncident) -> str:
    """What the admin tells operators while ``incident`` is open (no secret in it)."""
    from django.utils import timezone
    from django.utils.translation import gettext

    return gettext(
        "Intacct rejects this site's client ID or secret (invalid_client, %(code)s) since "
        "%(since)s: token refreshes are paused site-wide, with one probe after %(probe)s. "
        "No connection was changed; fix INTACCT_CONNECT['CLIENT_ID'] / ['CLIENT_SECRET']."
    ) % {
        "code": incident.error_code or "—",
        "since": timezone.localtime(incident.opened_at).strftime("%Y-%m-%d %H:%M"),
        "probe": timezone.localtime(incident.probe_after).strftime("%H:%M:%S"),
    }


def credentials_rejected_error(incident: SiteIncident) -> ClientCredentialsRejected:
    """The error raised while ``incident`` pauses token requests."""
    when = timezone.localtime(incident.probe_after).strftime("%Y-%m-%d %H:%M:%S %Z")
    return ClientCredentialsRejected(
        "Intacct rejected INTACCT_CONNECT['CLIENT_ID'] / ['CLIENT_SECRET'] "
        f"({_codes(incident.error_code)}). Check the client credentials "
        "and the client scope (production / non-production) in Sage's application registry. "
        "Connections were left untouched; token requests are paused site-wide until the next "
        f"probe after {when}, or until the credentials change."
    )


def _codes(code: str) -> str:
    return "invalid_client" if code in ("", "invalid_client") else f"invalid_client, {code}"


def _rejection_code(err: InvalidClient) -> str:
    return (err.error_id or err.code or "invalid_client")[:100]


def record_credentials_rejected(
    err: InvalidClient, *, connection: Connection | None = None
) -> ClientCredentialsRejected:
    """Record that Intacct answered ``invalid_client``: open the site-wide incident (one
    ERROR log line and one ``client_credentials_rejected`` signal, after commit) or count
    one more rejection in the open one. Changes no connection. Returns the error to raise."""
    now = timezone.now()
    digest = credentials_digest()
    code = _rejection_code(err)
    for _attempt in (1, 2):  # a concurrent first rejection may open it first
        try:
            with transaction.atomic():
                incident = (
                    SiteIncident.objects.open()
                    .filter(kind=IncidentKind.CLIENT_CREDENTIALS_REJECTED)
                    .locked()
                    .first()
                )
                if incident is not None and incident.credentials == digest:
                    incident.occurrences += 1
                    incident.last_seen_at = now
                    incident.save(update_fields=["occurrences", "last_seen_at"])
                    logger.info(
                        "invalid_client again (%s rejections since %s); token requests stay "
                        "paused until %s",
                        incident.occurrences,
                        incident.opened_at.isoformat(),
                        incident.probe_after.isoformat(),
                    )
                    return credentials_rejected_error(incident)
                if incident is not None:  # about credentials no longer in use
                    incident.resolved_at = now
                    incident.save(update_fields=["resolved_at"])
                incident = SiteIncident.objects.create(
                    kind=IncidentKind.CLIENT_CREDENTIALS_REJECTED,
                    credentials=digest,
                    error_code=code,
                    message=(err.message or "")[:2000],
                    opened_at=now,
                    last_seen_at=now,
                    probe_after=now + probe_backoff(0),
                )
        except IntegrityError:
            continue
        logger.error(
            "Intacct rejected this site's client credentials (%s)%s; no "
            "connection was changed. Token requests are paused site-wide, with one probe "
            "from %s (back-off up to %s s), until Intacct accepts the credentials.",
            _codes(code),
            f" while refreshing connection {connection.pk}" if connection is not None else "",
            incident.probe_after.isoformat(),
            INCIDENT_PROBE_BACKOFF_MAX,
        )
        signals.send_on_commit(
            signals.client_credentials_rejected,
            connection=connection,
            error_code=str(err.code or "invalid_client"),
            error_id=str(err.error_id or ""),
            incident=incident,
        )
        return credentials_rejected_error(incident)
    raise AssertionError("unreachable")  # pragma: no cover - the second attempt finds it


def claim_credentials_probe(now: datetime | None = None) -> SiteIncident | None:
    """Before a token request: the open incident this request may go ahead under, or None
    when there is none. Raises :class:`ClientCredentialsRejected` (nothing is sent) while
    the incident about the current credentials waits for its next probe, or another worker
    is probing. The one caller that claims the probe moves ``probe_after`` on (it holds
    the incident's row lock until its transaction ends). Credentials changed since the
    incident: the request goes ahead, and its success resolves the incident."""
    incident = open_credentials_incident()
    if incident is None or incident.credentials != credentials_digest():
        return incident
    now = now or timezone.now()
    if incident.probe_after > now:
        raise credentials_rejected_error(incident)
    claimed = (
        SiteIncident.objects.open()
        .filter(pk=incident.pk, probe_after__lte=now)
        .locked(skip_locked=True)
        .first()
    )
    if claimed is None:
        raise credentials_rejected_error(incident)  # another worker is probing
    claimed.probe_failures += 1  # counted now; a success resolves the incident anyway
    claimed.probe_after = now + probe_backoff(claimed.probe_failures)
    claimed.save(update_fields=["probe_failures", "probe_after"])
    logger.info("Probing the client credentials after invalid_client (probe %s)", claimed.pk)
    return claimed


def resolve_credentials_incident(incident: SiteIncident | None) -> None:
    """A token request succeeded: the incident (if any) is over."""
    if incident is None:
        return
    resolved = SiteIncident.objects.open().filter(pk=incident.pk).update(resolved_at=timezone.now())
    if resolved:
        logger.warning(
            "Intacct accepts this site's client credentials again; the invalid_client "
            "incident opened at %s is resolved and token requests resume",
            incident.opened_at.isoformat(),
        )
