"""Connected Intacct companies, their encrypted tokens and token journal, authorization
requests and event history."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from intacct_connect.fields import EncryptedTextField
from intacct_connect.models.choices import ConnectionStatus, Environment, EventKind, GrantType
from intacct_connect.models.querysets import ConnectionQuerySet, OAuthFlowQuerySet, TokenQuerySet


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
    refresh_retry_at = models.DateTimeField(
        _("refresh back-off until"),
        null=True,
        blank=True,
        help_text=_(
            "After a transient refresh failure, callers get a retryable error without a new "
            "token request until then."
        ),
    )
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
            ("retry_refresh_connection", "Can try a stored refresh token after a lost answer"),
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


class TokenJournalEntry(models.Model):
    """A token response written ahead of the transaction that stores it, so that a token
    set Intacct has issued survives a failed commit (see :mod:`intacct_connect.token_journal`).

    ``base_version`` is the ``Token.version`` the response replaces: an entry whose base is
    the stored version is a response that was never committed and is adopted by the next
    refresh; an older one was committed and is deleted. The tokens are encrypted like
    :class:`Token`'s, bound to this row.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No database constraint: the entry is written by another connection while the
    # connection row may be uncommitted (a test's transaction) or locked.
    connection = models.ForeignKey(
        Connection, on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    base_version = models.PositiveBigIntegerField(_("replaces token version"))
    access_token = EncryptedTextField(_("access token"))
    refresh_token = EncryptedTextField(_("refresh token"), blank=True, default="")
    token_type = models.CharField(_("token type"), max_length=20, default="Bearer")
    scope = models.CharField(_("scope"), max_length=255, blank=True)
    expires_at = models.DateTimeField(_("access token expires at"))
    created_at = models.DateTimeField(_("received at"), default=timezone.now)

    class Meta:
        verbose_name = _("token journal entry")
        verbose_name_plural = _("token journal entries")
        indexes = [
            models.Index(fields=("connection", "base_version"), name="intacct_journal_conn_base"),
        ]

    def __str__(self) -> str:
        return f"Token response for connection {self.connection_id} (after v{self.base_version})"

    def __repr__(self) -> str:
        return (
            f"<TokenJournalEntry connection={self.connection_id} base={self.base_version} "
            f"received={self.created_at:%Y-%m-%d %H:%M:%S}>"
        )
