"""The app's choice enumerations (statuses, kinds, scopes), used by the models and by
code that filters on them."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class ConnectionStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    NEEDS_REAUTH = "needs_reauth", _("Needs re-authorisation")
    SUPERSEDED = "superseded", _("Superseded")
    REVOKED = "revoked", _("Revoked")
    ERROR = "error", _("Error")
    #: The last refresh request was sent and its answer lost: Intacct may have rotated the
    #: refresh token, so it is never re-sent automatically (see tokens.try_stored_refresh_token).
    REFRESH_IN_DOUBT = "refresh_in_doubt", _("Refresh in doubt")


#: Statuses in which a person must act before the connection can be used again (reconnect,
#: or an operator's one try of the stored refresh token). Schedules keep listing such
#: connections (their runs are recorded as skipped, so the gap shows), and a new grant of
#: the same Intacct user and company supersedes them.
AWAITING_ACTION: tuple[str, ...] = (
    ConnectionStatus.NEEDS_REAUTH,
    ConnectionStatus.REFRESH_IN_DOUBT,
)


class Environment(models.TextChoices):
    PRODUCTION = "production", _("Production")
    SANDBOX = "sandbox", _("Sandbox (non-production)")


class GrantType(models.TextChoices):
    AUTHORIZATION_CODE = "authorization_code", _("Authorization code")
    CLIENT_CREDENTIALS = "client_credentials", _("Client credentials")


class EventKind(models.TextChoices):
    CONNECTED = "connected", _("Connected")
    RECONNECTED = "reconnected", _("Reconnected")
    REFRESHED = "refreshed", _("Token refreshed")
    REFRESH_FAILED = "refresh_failed", _("Refresh failed")
    REFRESH_IN_DOUBT = "refresh_in_doubt", _("Refresh in doubt")
    SUPERSEDED = "superseded", _("Superseded")
    NEEDS_REAUTH = "needs_reauth", _("Needs re-authorisation")
    REVOKED = "revoked", _("Revoked")
    DISCONNECTED = "disconnected", _("Disconnected")
    KEYS_ROTATED = "keys_rotated", _("Re-encrypted under a new key")
    HEALTH_CHECK = "health_check", _("Health check")


class ScheduleScope(models.TextChoices):
    CONNECTION = "connection", _("One connection")
    TENANT = "tenant", _("All active connections of a tenant")
    SITE = "site", _("All active connections of the site")


class JobRunStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    SKIPPED = "skipped", _("Skipped")
    PARKED = "parked", _("Parked (failed after too many deliveries)")


class JobRunTrigger(models.TextChoices):
    SCHEDULE = "schedule", _("Schedule")
    MANUAL = "manual", _("Run now (admin)")
    COMMAND = "command", _("Management command")
    API = "api", _("Code")


class IncidentKind(models.TextChoices):
    CLIENT_CREDENTIALS_REJECTED = (
        "invalid_client",
        _("Intacct rejects the site's client credentials"),
    )
