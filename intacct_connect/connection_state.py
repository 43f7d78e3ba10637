"""Rules about a connection's state that several layers share, in one place.

Below :mod:`~intacct_connect.flows` (connect, reconnect, disconnect),
:mod:`~intacct_connect.tokens` (the single-flight refresh) and
:mod:`~intacct_connect.scheduling` (the proactive refresher), above the models: it imports
only models, settings, exceptions and signals, so each of those layers can use it without
importing the others.

* :func:`next_refresh_at`: when the background refresher should renew a token set (the one
  rule, with the one jitter).
* :func:`mark_needs_reauth`: the one way a connection becomes ``needs_reauth``;
  :func:`mark_refresh_in_doubt`: the one way it becomes ``refresh_in_doubt``.
* the site-wide ``invalid_client`` incident lives beside it, in
  :mod:`intacct_connect.incidents`.
* :class:`ClientCredentialsUser`, :func:`parse_username` and
  :func:`client_credentials_username`: the Web Services user a client-credentials
  connection authenticates as.
"""

from __future__ import annotations

import logging
import random
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from intacct_connect import signals
from intacct_connect.conf import app_settings
from intacct_connect.models import (
    Connection,
    ConnectionEvent,
    ConnectionStatus,
    EventKind,
)

logger = logging.getLogger(__name__)

UserLike = AbstractBaseUser | AnonymousUser | None


def user_id_of(user: UserLike) -> Any:
    """The primary key of an authenticated user, else None."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return user.pk


def actor_of(user: UserLike) -> Any:
    """``user`` when authenticated (for an event's ``actor``), else None."""
    return user if user_id_of(user) is not None else None


def next_refresh_at(
    expires_at: datetime,
    *,
    last_refreshed_at: datetime | None = None,
    now: datetime | None = None,
) -> datetime:
    """When the background refresher should renew a token set expiring at ``expires_at``.

    ``REFRESH_WINDOW`` plus a random share of ``REFRESH_JITTER`` seconds before the access
    token expires, and never later than ``IDLE_REFRESH_AFTER`` (less the same jitter) after
    the last refresh (``last_refreshed_at``, default ``now``: tokens just stored), so an
    idle refresh token is used before Intacct forgets it. Never in the past.
    """
    now = now or timezone.now()
    jitter = random.uniform(0, max(app_settings.REFRESH_JITTER, 0))  # noqa: S311 - not crypto
    due = expires_at - timedelta(seconds=app_settings.REFRESH_WINDOW + jitter)
    idle_due = (last_refreshed_at or now) + timedelta(
        seconds=max(app_settings.IDLE_REFRESH_AFTER - jitter, 0)
    )
    return max(min(due, idle_due), now)


def mark_authorised(connection: Connection, *, environment: str, actor: UserLike) -> None:
    """Set (unsaved) what a fresh authorisation means for ``connection``: active in
    ``environment``, no last error, no refresh failures, connected by ``actor`` (a user)."""
    connection.environment = environment
    connection.status = ConnectionStatus.ACTIVE
    connection.last_error_code = ""
    connection.last_error_message = ""
    connection.last_error_at = None
    connection.refresh_failures = 0
    connection.refresh_retry_at = None
    if user_id_of(actor) is not None:
        connection.connected_by = actor  # type: ignore[assignment]


def mark_needs_reauth(
    connection: Connection | int,
    *,
    reason: str,
    error_code: str = "",
    message: str = "",
    actor: UserLike = None,
) -> bool:
    """Mark an active (or failing, or refresh-in-doubt) connection as needing
    re-authorisation.

    Returns True if the status changed; the ``connection_needs_reauth`` signal is sent
    once per incident (not again while the connection stays in that state).
    """
    pk = connection.pk if isinstance(connection, Connection) else connection
    with transaction.atomic():
        conn = Connection.objects.filter(pk=pk).locked(no_key=True).get()
        if conn.status not in (
            ConnectionStatus.ACTIVE,
            ConnectionStatus.ERROR,
            ConnectionStatus.REFRESH_IN_DOUBT,
        ):
            return False
        conn.status = ConnectionStatus.NEEDS_REAUTH
        conn.next_refresh_at = None
        conn.refresh_retry_at = None
        conn.record_error(error_code or reason, message or f"Needs re-authorisation ({reason}).")
        conn.save()
        ConnectionEvent.log(
            conn,
            EventKind.NEEDS_REAUTH,
            message or f"Needs re-authorisation ({reason}).",
            error_code=error_code[:100],
            actor=actor_of(actor),
        )
        signals.send_on_commit(
            signals.connection_needs_reauth,
            connection=conn,
            reason=reason,
            error_code=error_code,
            actor=actor_of(actor),
        )
    if isinstance(connection, Connection):
        connection.refresh_from_db()
    return True


#: What ``refresh_in_doubt`` means, for events, admin pages and exceptions.
REFRESH_IN_DOUBT_MEANING = (
    "The token refresh request was sent but its answer was lost, so Intacct may already have "
    "replaced the refresh token. It is never re-sent automatically (Intacct could revoke the "
    "whole grant); the connection is not used until an operator tries the stored refresh "
    "token once (it ends active or needing re-authorisation) or a user reconnects it."
)


def mark_refresh_in_doubt(connection: Connection, *, error_code: str, detail: str = "") -> bool:
    """Mark an active connection ``refresh_in_doubt`` (caller holds its row lock in the
    current transaction). Returns True if the status changed; the ``refresh_in_doubt``
    signal is sent once, after commit."""
    if connection.status != ConnectionStatus.ACTIVE:
        return False
    message = f"{REFRESH_IN_DOUBT_MEANING} ({detail})" if detail else REFRESH_IN_DOUBT_MEANING
    connection.status = ConnectionStatus.REFRESH_IN_DOUBT
    connection.next_refresh_at = None
    connection.refresh_retry_at = None
    connection.record_error(error_code, message)
    connection.save(
        update_fields=[
            "status",
            "next_refresh_at",
            "refresh_retry_at",
            "last_error_code",
            "last_error_message",
            "last_error_at",
            "updated_at",
        ]
    )
    ConnectionEvent.log(
        connection, EventKind.REFRESH_IN_DOUBT, message, error_code=error_code[:100]
    )
    signals.send_on_commit(signals.refresh_in_doubt, connection=connection, error_code=error_code)
    return True


@dataclass(frozen=True)
class ClientCredentialsUser:
    user_id: str
    company_id: str
    entity_id: str

    @property
    def username(self) -> str:
        entity = f"|{self.entity_id}" if self.entity_id else ""
        return f"{self.user_id}@{self.company_id}{entity}"


def parse_username(username: str) -> ClientCredentialsUser:
    """Parse ``user@company`` or ``user@company|entity`` (raises ``ValidationError``)."""
    value = (username or "").strip()
    if any(unicodedata.category(ch)[0] == "C" for ch in value):
        raise ValidationError("The username contains control characters.")
    user_part, at, rest = value.partition("@")
    company, bar, entity = rest.partition("|")
    user_part, company, entity = user_part.strip(), company.strip(), entity.strip()
    if (
        not at
        or not user_part
        or not company
        or "@" in rest
        or "|" in entity
        or (bar and not entity)
    ):
        raise ValidationError(
            "Enter the Web Services user as user@company or user@company|entity "
            "(for example ws_user@ACME or ws_user@ACME|US-EAST)."
        )
    if len(user_part) > 100 or len(company) > 100 or len(entity) > 100:
        raise ValidationError("Each part of the username is limited to 100 characters.")
    return ClientCredentialsUser(user_id=user_part, company_id=company, entity_id=entity)


def client_credentials_username(connection: Connection) -> str:
    """The ``user@company|entity`` a client-credentials connection authenticates as."""
    return ClientCredentialsUser(
        connection.intacct_user_id, connection.company_id, connection.entity_id
    ).username
