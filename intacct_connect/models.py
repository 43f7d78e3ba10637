"""Connected Intacct companies, their tokens, authorization requests and event history."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any, Self, TypeVar

from django.conf import settings
from django.db import connection as db_connection
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from intacct_connect.fields import EncryptedTextField


class ConnectionStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    NEEDS_REAUTH = "needs_reauth", _("Needs re-authorisation")
    SUPERSEDED = "superseded", _("Superseded")
    REVOKED = "revoked", _("Revoked")
    ERROR = "error", _("Error")


class Environment(models.TextChoices):
    PRODUCTION = "production", _("Production")
    SANDBOX = "sandbox", _("Sandbox (non-production)")


class GrantType(models.TextChoices):
    AUTHORIZATION_CODE = "authorization_code", _("Authorization code")
    CLIENT_CREDENTIALS = "client_credentials", _("Client credentials")


_M = TypeVar("_M", bound=models.Model)


class LockingQuerySet(models.QuerySet[_M]):
    """A queryset that can lock its rows: the one row-lock rule of the app."""

    def locked(
        self,
        *,
        skip_locked: bool = False,
        nowait: bool = False,
        no_key: bool = False,
        of: tuple[str, ...] = ("self",),
    ) -> Self:
        """These rows, locked by the transaction that reads them, as far as the database can.

        ``SELECT … FOR [NO KEY] UPDATE [OF …] [SKIP LOCKED | NOWAIT]``; each option is used
        only where the database supports it. ``of`` names the rows to lock (default: the
        model's own rows, not those of ``select_related`` tables). ``skip_locked`` on a
        database without it returns the rows unlocked, as does SQLite, which has no row
        locks: its writing transactions are serialised instead.
        """
        features = db_connection.features
        if not features.has_select_for_update:
            return self
        if skip_locked and not features.has_select_for_update_skip_locked:
            return self
        return self.select_for_update(
            skip_locked=skip_locked,
            nowait=nowait and features.has_select_for_update_nowait,
            no_key=no_key and features.has_select_for_no_key_update,
            of=of if features.has_select_for_update_of else (),
        )


class TokenQuerySet(LockingQuerySet["Token"]):
    pass


class OAuthFlowQuerySet(LockingQuerySet["OAuthFlow"]):
    pass


class ScheduleQuerySet(LockingQuerySet["Schedule"]):
    pass


class JobRunQuerySet(LockingQuerySet["JobRun"]):
    pass


class ConnectionQuerySet(LockingQuerySet["Connection"]):
    def for_tenant(self, tenant_key: str) -> ConnectionQuerySet:
        """Only the tenant's connections: every tenant-facing query path starts here."""
        return self.filter(tenant_key=tenant_key)

    def active(self) -> ConnectionQuerySet:
        return self.filter(status=ConnectionStatus.ACTIVE)


class Connection(models.Model):
    """One tenant's connection to one Intacct company (as one Intacct user).

    Re-authorising updates the row in place, so its primary key, schedules and history
    survive a reconnect. Tokens live in the related :class:`Token` row.
    """

    tenant_key = models.CharField(
        _("tenant"), max_length=255, db_index=True, help_text=_("Set by the site's adapter.")
    )
    company_id = models.CharField(_("Intacct company ID"), max_length=100)
    company_name = models.CharField(_("company name"), max_length=200, blank=True)
    entity_id = models.CharField(
        _("default entity"),
        max_length=100,
        blank=True,
        help_text=_("Sent as X-IA-API-Param-Entity; blank means top level."),
    )
    environment = models.CharField(
        _("environment"), max_length=20, choices=Environment.choices, default=Environment.PRODUCTION
    )
    intacct_user_id = models.CharField(
        _("Intacct user ID"), max_length=100, help_text=_("Read from the access token's claims.")
    )
    grant_type = models.CharField(
        _("grant type"),
        max_length=30,
        choices=GrantType.choices,
        default=GrantType.AUTHORIZATION_CODE,
    )
    status = models.CharField(
        _("status"),
        max_length=20,
        choices=ConnectionStatus.choices,
        default=ConnectionStatus.ACTIVE,
        db_index=True,
    )
    last_error_code = models.CharField(_("last error code"), max_length=100, blank=True)
    last_error_message = models.TextField(_("last error message"), blank=True)
    last_error_at = models.DateTimeField(_("last error at"), null=True, blank=True)
    connected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("connected by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # Background refresh bookkeeping (see tasks).
    next_refresh_at = models.DateTimeField(_("next proactive refresh"), null=True, blank=True)
    refresh_failures = models.PositiveIntegerField(_("consecutive refresh failures"), default=0)
    # Health as last observed by a cheap API call.
    health_checked_at = models.DateTimeField(_("health checked at"), null=True, blank=True)
    health_ok = models.BooleanField(_("healthy"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = ConnectionQuerySet.as_manager()

    class Meta:
        verbose_name = _("Intacct connection")
        verbose_name_plural = _("Intacct connections")
        ordering = ("company_id", "pk")
        permissions = [
            ("disconnect_connection", "Can disconnect and revoke connections"),
        ]
        constraints = [
            # Intacct pools grants per (user, company): one authorization-code connection
            # per tenant, company and user; reconnecting updates it in place.
            models.UniqueConstraint(
                fields=("tenant_key", "company_id", "intacct_user_id"),
                condition=Q(grant_type="authorization_code"),
                name="intacct_connect_one_grant_per_user_company",
            ),
            models.UniqueConstraint(
                fields=("tenant_key", "company_id", "intacct_user_id", "entity_id"),
                condition=Q(grant_type="client_credentials"),
                name="intacct_connect_one_cc_per_user_company_entity",
            ),
        ]
        indexes = [
            models.Index(fields=("status", "next_refresh_at"), name="intacct_conn_refresh_due"),
        ]

    def __str__(self) -> str:
        entity = f"|{self.entity_id}" if self.entity_id else ""
        return f"{self.company_id}{entity} ({self.intacct_user_id}, {self.get_status_display()})"

    def __repr__(self) -> str:
        return (
            f"<Connection pk={self.pk} company={self.company_id!r} user={self.intacct_user_id!r} "
            f"status={self.status!r}>"
        )

    @property
    def is_usable(self) -> bool:
        return self.status == ConnectionStatus.ACTIVE

    def record_error(self, code: str, message: str) -> None:
        """Set the last-error fields (caller saves)."""
        self.last_error_code = code[:100]
        self.last_error_message = message
        self.last_error_at = timezone.now()


class Token(models.Model):
    """The OAuth tokens of one connection, encrypted at rest.

    ``version`` is bumped on every write and used as a fencing token: a writer holding a
    stale version cannot overwrite a newer token set.
    """

    connection = models.OneToOneField(
        Connection, on_delete=models.CASCADE, primary_key=True, related_name="token"
    )
    access_token = EncryptedTextField(_("access token"))
    refresh_token = EncryptedTextField(_("refresh token"), blank=True, default="")
    token_type = models.CharField(_("token type"), max_length=20, default="Bearer")
    scope = models.CharField(_("scope"), max_length=255, blank=True)
    expires_at = models.DateTimeField(_("access token expires at"))
    version = models.PositiveBigIntegerField(_("version"), default=1)
    last_refreshed_at = models.DateTimeField(_("last refreshed at"), null=True, blank=True)
    refresh_count = models.PositiveIntegerField(_("refresh count"), default=0)
    fingerprint = models.CharField(
        _("fingerprint"),
        max_length=12,
        blank=True,
        help_text=_("First hex digits of the access token's SHA-256, for support; not secret."),
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = TokenQuerySet.as_manager()

    class Meta:
        verbose_name = _("token")
        verbose_name_plural = _("tokens")

    def __str__(self) -> str:
        return f"Token of connection {self.pk} (v{self.version}, {self.fingerprint or 'no fp'})"

    def __repr__(self) -> str:
        return f"<Token connection={self.pk} version={self.version} fp={self.fingerprint!r}>"

    def expires_within(self, seconds: float, now: datetime | None = None) -> bool:
        return self.expires_at <= (now or timezone.now()) + timedelta(seconds=seconds)


class OAuthFlow(models.Model):
    """A pending authorization request: the server-side half of ``state``.

    Only a hash of ``state`` is stored; the PKCE verifier is encrypted. A flow is bound
    to the browser session, the Django user and the tenant that started it, expires
    after ``STATE_TTL`` and is consumed exactly once.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    state_hash = models.CharField(max_length=64, unique=True)
    session_key_hash = models.CharField(max_length=64)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    tenant_key = models.CharField(max_length=255)
    code_verifier = EncryptedTextField()
    redirect_uri = models.CharField(max_length=500)
    token_url = models.CharField(max_length=500)
    entity_id = models.CharField(max_length=100, blank=True)
    next_url = models.CharField(max_length=2000, blank=True)
    reconnect = models.ForeignKey(
        Connection, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    consumed_at = models.DateTimeField(null=True, blank=True)

    objects = OAuthFlowQuerySet.as_manager()

    class Meta:
        verbose_name = _("authorization request")
        verbose_name_plural = _("authorization requests")

    def __str__(self) -> str:
        return f"Authorization request {self.pk} ({self.tenant_key})"

    def __repr__(self) -> str:
        return f"<OAuthFlow pk={self.pk} tenant={self.tenant_key!r} consumed={self.consumed_at}>"


class EventKind(models.TextChoices):
    CONNECTED = "connected", _("Connected")
    RECONNECTED = "reconnected", _("Reconnected")
    REFRESHED = "refreshed", _("Token refreshed")
    REFRESH_FAILED = "refresh_failed", _("Refresh failed")
    SUPERSEDED = "superseded", _("Superseded")
    NEEDS_REAUTH = "needs_reauth", _("Needs re-authorisation")
    REVOKED = "revoked", _("Revoked")
    DISCONNECTED = "disconnected", _("Disconnected")
    KEYS_ROTATED = "keys_rotated", _("Re-encrypted under a new key")
    HEALTH_CHECK = "health_check", _("Health check")


class ConnectionEvent(models.Model):
    """One entry of a connection's history. Never holds a token or a secret."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=30, choices=EventKind.choices)
    message = models.TextField(blank=True)
    error_code = models.CharField(max_length=100, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("connection event")
        verbose_name_plural = _("connection events")
        ordering = ("-created_at", "-pk")

    def __str__(self) -> str:
        return f"{self.get_kind_display()} at {self.created_at:%Y-%m-%d %H:%M:%S}"

    @classmethod
    def log(cls, connection: Connection, kind: str, message: str = "", **kwargs: Any) -> Any:
        return cls.objects.create(connection=connection, kind=kind, message=message, **kwargs)


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


class ScheduleScope(models.TextChoices):
    CONNECTION = "connection", _("One connection")
    TENANT = "tenant", _("All active connections of a tenant")
    SITE = "site", _("All active connections of the site")


class Schedule(models.Model):
    """When to run a registered job (see :mod:`intacct_connect.jobs`) and for which connections.

    Either ``interval_seconds`` or ``crontab`` (five fields, evaluated in ``TIME_ZONE`` by
    ``celery.schedules.crontab``) is set. One dispatcher task claims due rows with
    ``SKIP LOCKED`` and fans them out to one job run per connection
    (:func:`intacct_connect.scheduling.dispatch_due_schedules`).
    """

    name = models.CharField(_("name"), max_length=200)
    job = models.CharField(_("job"), max_length=100, help_text=_("A registered job name."))
    params = models.JSONField(_("parameters"), default=dict, blank=True)
    scope = models.CharField(
        _("scope"), max_length=20, choices=ScheduleScope.choices, default=ScheduleScope.CONNECTION
    )
    connection = models.ForeignKey(
        Connection,
        verbose_name=_("connection"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="schedules",
        help_text=_("For the 'one connection' scope."),
    )
    tenant_key = models.CharField(
        _("tenant"), max_length=255, blank=True, help_text=_("For the 'tenant' scope.")
    )
    interval_seconds = models.PositiveIntegerField(
        _("every (seconds)"), null=True, blank=True, help_text=_("Leave empty to use a crontab.")
    )
    crontab = models.CharField(
        _("crontab"),
        max_length=200,
        blank=True,
        help_text=_("minute hour day-of-month month day-of-week, e.g. '*/15 * * * *'."),
    )
    enabled = models.BooleanField(_("enabled"), default=True, help_text=_("Off = paused."))
    next_run_at = models.DateTimeField(_("next run at"), null=True, blank=True)
    last_run_at = models.DateTimeField(_("last run at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = ScheduleQuerySet.as_manager()

    class Meta:
        verbose_name = _("job schedule")
        verbose_name_plural = _("job schedules")
        ordering = ("name", "pk")
        indexes = [
            models.Index(fields=("enabled", "next_run_at"), name="intacct_schedule_due"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.job})"

    def __repr__(self) -> str:
        return f"<Schedule pk={self.pk} job={self.job!r} scope={self.scope!r}>"


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


class JobRun(models.Model):
    """One run of one job for one connection.

    ``delivery_count`` counts the deliveries of the current attempt (counted in the
    database at task start, so a run that keeps killing its worker is parked);
    ``lease_until`` bounds a running run, so a run whose worker died can be taken over.
    At most one run per (job, connection) is running at a time (a partial unique index).
    """

    job = models.CharField(_("job"), max_length=100)
    schedule = models.ForeignKey(
        Schedule,
        verbose_name=_("schedule"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="runs",
    )
    connection = models.ForeignKey(
        Connection, verbose_name=_("connection"), on_delete=models.CASCADE, related_name="job_runs"
    )
    params = models.JSONField(_("parameters"), default=dict, blank=True)
    trigger = models.CharField(
        _("trigger"), max_length=20, choices=JobRunTrigger.choices, default=JobRunTrigger.SCHEDULE
    )
    status = models.CharField(
        _("status"),
        max_length=20,
        choices=JobRunStatus.choices,
        default=JobRunStatus.QUEUED,
        db_index=True,
    )
    queued_at = models.DateTimeField(_("queued at"), default=timezone.now, db_index=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    lease_until = models.DateTimeField(_("lease until"), null=True, blank=True)
    records_processed = models.PositiveIntegerField(_("records processed"), default=0)
    error_code = models.CharField(_("error code"), max_length=100, blank=True)
    error_message = models.TextField(_("error"), blank=True)
    attempt = models.PositiveSmallIntegerField(_("attempt"), default=0)
    delivery_count = models.PositiveSmallIntegerField(_("deliveries of this attempt"), default=0)
    task_id = models.CharField(_("Celery task ID"), max_length=64, blank=True)

    objects = JobRunQuerySet.as_manager()

    class Meta:
        verbose_name = _("job run")
        verbose_name_plural = _("job runs")
        ordering = ("-queued_at", "-pk")
        permissions = [("rerun_jobrun", "Can run jobs again")]
        constraints = [
            models.UniqueConstraint(
                fields=("job", "connection"),
                condition=Q(status="running"),
                name="intacct_connect_one_running_job_per_connection",
            ),
        ]
        indexes = [
            models.Index(fields=("connection", "job", "status"), name="intacct_run_conn_job"),
        ]

    def __str__(self) -> str:
        return f"{self.job} on connection {self.connection_id} ({self.get_status_display()})"

    def __repr__(self) -> str:
        return (
            f"<JobRun pk={self.pk} job={self.job!r} connection={self.connection_id} "
            f"status={self.status!r} attempt={self.attempt} deliveries={self.delivery_count}>"
        )

    @property
    def duration(self) -> timedelta | None:
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None


class StoredRecord(models.Model):
    """A row stored by the ``query_to_storage`` job, upserted by (connection, object, key)."""

    connection = models.ForeignKey(
        Connection,
        verbose_name=_("connection"),
        on_delete=models.CASCADE,
        related_name="stored_records",
    )
    object = models.CharField(_("object"), max_length=200)
    key = models.CharField(_("key"), max_length=200)
    data = models.JSONField(_("data"), default=dict)
    run = models.ForeignKey(
        JobRun,
        verbose_name=_("stored by run"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    updated_at = models.DateTimeField(_("updated"), default=timezone.now)

    class Meta:
        verbose_name = _("stored record")
        verbose_name_plural = _("stored records")
        ordering = ("connection", "object", "key")
        constraints = [
            models.UniqueConstraint(
                fields=("connection", "object", "key"), name="intacct_connect_one_record_per_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.object} {self.key} (connection {self.connection_id})"


class Watermark(models.Model):
    """A job's cursor for one connection (e.g. the last ``audit.modifiedDateTime`` stored).

    ``name`` is ``schedule:<pk>`` for scheduled runs, ``job:<job name>`` otherwise (the
    ``query_to_storage`` job appends ``:<object>``). Written in the same transaction as the
    data it covers, so it is never ahead of committed data.
    """

    connection = models.ForeignKey(
        Connection, verbose_name=_("connection"), on_delete=models.CASCADE, related_name="+"
    )
    name = models.CharField(_("name"), max_length=200)
    value = models.CharField(_("value"), max_length=200, blank=True)
    updated_at = models.DateTimeField(_("updated"), default=timezone.now)

    class Meta:
        verbose_name = _("watermark")
        verbose_name_plural = _("watermarks")
        constraints = [
            models.UniqueConstraint(
                fields=("connection", "name"), name="intacct_connect_one_watermark"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} = {self.value or '(none)'}"


class TaskDelivery(models.Model):
    """How many times the broker delivered one Celery task message (by task ID).

    Brokers do not count redeliveries; tasks with ``reject_on_worker_lost`` count them
    here at start and give up after ``MAX_DELIVERIES``. Old rows are pruned by the
    refresh dispatcher.
    """

    task_id = models.CharField(max_length=64, primary_key=True)
    task_name = models.CharField(max_length=200)
    deliveries = models.PositiveIntegerField(default=0)
    first_delivered_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("task delivery")
        verbose_name_plural = _("task deliveries")

    def __str__(self) -> str:
        return f"{self.task_name} {self.task_id}: {self.deliveries}"
