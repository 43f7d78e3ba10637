"""Proactive refresh: schedule, claim and dispatch the connections whose tokens are due,
refresh one connection (the task's body) and back off or park failed refreshes."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import DatabaseError, transaction
from django.utils import timezone

from intacct_connect import tokens
from intacct_connect.conf import app_settings
from intacct_connect.connection_state import next_refresh_at
from intacct_connect.exceptions import (
    IntacctConfigurationError,
    IntacctConnectError,
    InvalidGrant,
    NeedsReauthorization,
    RefreshInDoubt,
)
from intacct_connect.incidents import credentials_incident
from intacct_connect.models import Connection, ConnectionStatus
from intacct_connect.scheduling.common import (
    DISPATCH_TIME_BUDGET,
    REFRESH_BACKOFF_BASE,
    REFRESH_BACKOFF_MAX,
    REFRESH_CLAIM_SECONDS,
    REFRESH_TASK,
    _enqueue_on_commit,
    _jitter,
    _time_left,
    prune_deliveries,
)

# The package's logger, as before the split into modules.
logger = logging.getLogger("intacct_connect.scheduling")


def refresh_due_at(
    connection_id: int,
    expires_at: datetime,
    last_refreshed_at: datetime | None,
    now: datetime,
) -> datetime:
    """When the proactive refresh of a token should happen: kept for callers of this name;
    the rule is :func:`intacct_connect.connection_state.next_refresh_at`."""
    return next_refresh_at(expires_at, last_refreshed_at=last_refreshed_at, now=now)


def schedule_missing_refreshes(*, now: datetime | None = None, limit: int | None = None) -> int:
    """Give active connections that have a token but no ``next_refresh_at`` one."""
    now = now or timezone.now()
    limit = limit or app_settings.DISPATCH_BATCH_SIZE
    with transaction.atomic():
        rows = list(
            Connection.objects.filter(
                status=ConnectionStatus.ACTIVE,
                next_refresh_at__isnull=True,
                token__isnull=False,
            )
            .locked(skip_locked=True)
            .order_by("pk")
            .values_list("pk", "token__expires_at", "token__last_refreshed_at", "created_at")[
                :limit
            ]
        )
        if not rows:
            return 0
        conns = [
            Connection(
                pk=pk,
                next_refresh_at=next_refresh_at(exp, last_refreshed_at=last or created, now=now),
            )
            for pk, exp, last, created in rows
        ]
        Connection.objects.bulk_update(conns, ["next_refresh_at"])
    return len(conns)


def claim_due_refreshes(
    *, now: datetime | None = None, limit: int | None = None
) -> list[tuple[int, int | None]]:
    """Claim one batch of due refreshes and enqueue their tasks after commit.

    Returns ``(connection_id, token_version)`` pairs. The claim moves ``next_refresh_at``
    ``REFRESH_CLAIM_SECONDS`` ahead in the same transaction; a successful refresh then
    sets the real next time."""
    now = now or timezone.now()
    limit = limit or app_settings.DISPATCH_BATCH_SIZE
    with transaction.atomic():
        rows: list[tuple[int, int | None]] = list(
            Connection.objects.filter(status=ConnectionStatus.ACTIVE, next_refresh_at__lte=now)
            .order_by("next_refresh_at", "pk")
            .locked(skip_locked=True)
            .values_list("pk", "token__version")[:limit]
        )
        if not rows:
            return []
        Connection.objects.filter(pk__in=[pk for pk, _ in rows]).update(
            next_refresh_at=now + timedelta(seconds=REFRESH_CLAIM_SECONDS)
        )
        _enqueue_on_commit(REFRESH_TASK, [[pk, version] for pk, version in rows])
    return rows


def dispatch_due_refreshes(
    *, now: datetime | None = None, time_budget: float = DISPATCH_TIME_BUDGET
) -> int:
    """Claim every due refresh (batch after batch, within ``time_budget`` seconds);
    returns the number of refresh tasks enqueued."""
    started = time.monotonic()
    now = now or timezone.now()
    limit = app_settings.DISPATCH_BATCH_SIZE
    prune_deliveries(now)
    incident = credentials_incident()
    if incident is not None:  # invalid_client: paused until a probe succeeds
        if incident.probe_after > now:
            logger.info(
                "Proactive refreshes paused: Intacct rejects the client credentials "
                "(next probe after %s)",
                incident.probe_after.isoformat(),
            )
            return 0
        claimed = claim_due_refreshes(now=now, limit=1)  # one refresh is the probe
        return len(claimed)
    while schedule_missing_refreshes(now=now, limit=limit) == limit and _time_left(
        started, time_budget
    ):
        pass
    total = 0
    while True:
        claimed = claim_due_refreshes(now=now, limit=limit)
        total += len(claimed)
        if len(claimed) < limit or not _time_left(started, time_budget):
            break
    if total:
        logger.info("Enqueued %s proactive token refreshes", total)
    return total


@dataclass(frozen=True)
class RefreshOutcome:
    """What one proactive refresh did (``result`` is a short word, for logs and tests)."""

    result: str
    connection_id: int
    error_code: str = ""


def _back_off_refresh(connection_id: int, *, count_failure: bool, now: datetime) -> None:
    try:
        with transaction.atomic():
            conn = (
                Connection.objects.filter(pk=connection_id)
                .locked()
                .only("pk", "refresh_failures")
                .first()
            )
            if conn is None:
                return
            failures = conn.refresh_failures + (1 if count_failure else 0)
            delay = min(REFRESH_BACKOFF_BASE * 2 ** max(failures - 1, 0), REFRESH_BACKOFF_MAX)
            delay += _jitter(connection_id, max(delay // 10, 1))
            Connection.objects.filter(pk=connection_id).update(
                refresh_failures=failures, next_refresh_at=now + timedelta(seconds=delay)
            )
    except DatabaseError:
        logger.exception("Could not back off the refresh of connection %s", connection_id)


def refresh_one(connection_id: int, seen_version: int | None = None) -> RefreshOutcome:
    """One proactive refresh through the single-flight path.

    ``seen_version`` is the token version the dispatcher saw: when another worker has
    refreshed since, its token is kept and Intacct is not called."""
    now = timezone.now()
    try:
        token = tokens.refresh_connection(
            connection_id, force=True, wait=False, seen_version=seen_version
        )
    except InvalidGrant as err:
        # tokens.py marked the connection needs_reauth: it is not dispatched again.
        return RefreshOutcome("needs_reauth", connection_id, err.code or "invalid_grant")
    except RefreshInDoubt:
        # The answer was lost (now or earlier): never re-sent; an operator decides.
        return RefreshOutcome("in_doubt", connection_id, "refresh_in_doubt")
    except NeedsReauthorization:
        # Not active (or gone): nothing to refresh. Only this rare path reads the status.
        status = (
            Connection.objects.filter(pk=connection_id).values_list("status", flat=True).first()
        )
        if status is None:
            return RefreshOutcome("missing", connection_id)
        return RefreshOutcome("skipped", connection_id, status)
    except IntacctConfigurationError:
        # invalid_client: this site's credentials, one site-wide incident (tokens.py logged
        # it once and paused the dispatcher). No counter or status of the connection
        # changes; the dispatcher's claim is undone, so it is due again once a probe works.
        Connection.objects.filter(pk=connection_id, status=ConnectionStatus.ACTIVE).update(
            next_refresh_at=now
        )
        return RefreshOutcome("config_error", connection_id, "invalid_client")
    except tokens.RefreshLockTimeout:
        _back_off_refresh(connection_id, count_failure=False, now=now)
        return RefreshOutcome("busy", connection_id, "lock_timeout")
    except IntacctConnectError as err:
        # tokens.py recorded the failure and counted it in refresh_failures.
        _back_off_refresh(connection_id, count_failure=False, now=now)
        return RefreshOutcome("failed", connection_id, err.error_id or err.code or "")
    except DatabaseError as err:
        _back_off_refresh(connection_id, count_failure=True, now=now)
        return RefreshOutcome("failed", connection_id, type(err).__name__)
    if token is None:
        return RefreshOutcome("busy", connection_id)  # another worker holds the lock
    return RefreshOutcome("ok", connection_id)


def park_refresh(connection_id: int, deliveries: int) -> None:
    """A refresh message delivered too often (it keeps killing its worker): back off."""
    logger.error(
        "Refresh of connection %s was delivered %s times (MAX_DELIVERIES=%s); parked, "
        "retrying through the dispatcher with backoff",
        connection_id,
        deliveries,
        app_settings.MAX_DELIVERIES,
    )
    _back_off_refresh(connection_id, count_failure=True, now=timezone.now())
