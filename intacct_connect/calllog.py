"""The API call log writer: one :class:`~intacct_connect.models.ApiCallLog` row per call,
written in batches so that no API call waits for a database round trip of its own.

:meth:`IntacctClient._request <intacct_connect.client.IntacctClient>` hands each call's
row to :func:`record`. What happens next depends on where the caller stands:

* inside a transaction (``transaction.atomic``, ``ATOMIC_REQUESTS``, a test case): the
  row is written at once, in that transaction, exactly as any other write of the caller
  (it commits or rolls back with the caller's work);
* in autocommit mode (Celery tasks, management commands, most views): the row joins a
  process-wide batch, written in one ``INSERT`` when ``API_CALL_LOG_BATCH_SIZE`` rows are
  waiting, or by the first call after ``API_CALL_LOG_MAX_DELAY`` seconds, and in any case
  at the end of every Celery task and web request (signal handlers connected by the app),
  by :meth:`IntacctClient.close`, and at exit.

So a finished Celery task or web request has its calls logged before it acknowledges or
answers; only a process killed outright (``SIGKILL``, power loss) can lose the rows of its
last few calls. A connection deleted while its rows wait is skipped (its rows went with
it); a batch that cannot be written is logged as an error and dropped, never raised into
the caller.

:func:`usage` reads a connection's figures back from the log (one aggregate query), and
:func:`prune_api_call_log` deletes rows past ``API_CALL_LOG_RETENTION_DAYS``.
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.db.models import Count, Max, Q
from django.utils import timezone

from intacct_connect.conf import app_settings
from intacct_connect.models import ApiCallLog, Connection

logger = logging.getLogger(__name__)


class CallRow(NamedTuple):
    """One call-log row: the columns of :class:`~intacct_connect.models.ApiCallLog` it fills,
    in the order of the ``INSERT``."""

    connection_id: int
    method: str
    path: str
    status: int | None
    error_code: str
    duration_ms: int
    retries: int
    request_id: str
    created_at: datetime


COLUMNS = CallRow._fields


_pending: list[CallRow] = []
_first_at = 0.0  # time.monotonic() of the oldest waiting row
_lock = threading.Lock()


def _reset_after_fork() -> None:
    """A forked child (Celery's prefork pool) starts with an empty batch: the rows
    waiting at the fork are the parent's to write."""
    global _lock
    _pending.clear()
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_reset_after_fork)


def _deferrable() -> bool:
    default = connections[DEFAULT_DB_ALIAS]
    return bool(default.autocommit) and not default.in_atomic_block


def record(row: CallRow) -> None:
    """Log one call (see the module docstring for when the row is written)."""
    global _first_at
    batch_size = app_settings.API_CALL_LOG_BATCH_SIZE
    if batch_size <= 1 or not _deferrable():
        _write([row])
        return
    now = time.monotonic()
    with _lock:
        if not _pending:
            _first_at = now
        _pending.append(row)
        due = len(_pending) >= batch_size or now - _first_at >= float(
            app_settings.API_CALL_LOG_MAX_DELAY
        )
    if due:
        flush()


def pending() -> int:
    """Rows waiting to be written (diagnostics and tests)."""
    return len(_pending)


def discard() -> int:
    """Drop the waiting rows without writing them; returns how many (test suites call
    this between tests, through the ``intacct_emulator`` fixture)."""
    with _lock:
        count = len(_pending)
        _pending.clear()
    return count


def flush() -> int:
    """Write every waiting row now; returns how many were written. Does nothing inside a
    transaction (the rows would share its fate); the next flush outside one writes them."""
    if not _pending or not _deferrable():
        return 0
    with _lock:
        rows = _pending[:]
        _pending.clear()
    return _write(rows) if rows else 0


def _write(rows: Sequence[CallRow]) -> int:
    """INSERT the rows (one statement per ``API_CALL_LOG_BATCH_SIZE``); rows of
    connections deleted meanwhile are skipped. Never raises."""
    try:
        return _insert(rows)
    except DatabaseError:
        if connections[DEFAULT_DB_ALIAS].in_atomic_block:  # the caller's transaction
            logger.exception("Could not write %s API call log rows", len(rows))
            return 0
    try:  # most likely a connection deleted while its rows waited: keep the others
        alive = set(
            Connection.objects.filter(pk__in={r.connection_id for r in rows}).values_list(
                "pk", flat=True
            )
        )
        kept = [r for r in rows if r.connection_id in alive]
        return _insert(kept) if kept else 0
    except DatabaseError:
        logger.exception("Could not write %s API call log rows; they are dropped", len(rows))
        return 0


def _insert(rows: Sequence[CallRow]) -> int:
    db = connections[DEFAULT_DB_ALIAS]
    adapt = db.ops.adapt_datetimefield_value
    size = max(1, app_settings.API_CALL_LOG_BATCH_SIZE)
    with db.cursor() as cursor:
        for start in range(0, len(rows), size):
            chunk = rows[start : start + size]
            params: list[Any] = []
            for row in chunk:
                params += [*row[:-1], adapt(row.created_at)]
            cursor.execute(_insert_sql(db.vendor, len(chunk)), params)
    return len(rows)


@functools.cache
def _insert_sql(vendor: str, count: int) -> str:
    db = connections[DEFAULT_DB_ALIAS]
    quote = db.ops.quote_name
    table = quote(ApiCallLog._meta.db_table)
    columns = ", ".join(quote(c) for c in COLUMNS)
    values = ", ".join(["(" + ", ".join(["%s"] * len(COLUMNS)) + ")"] * count)
    return f"INSERT INTO {table} ({columns}) VALUES {values}"  # noqa: S608


def _flush_at_exit() -> None:
    try:
        flush()
    except Exception:  # pragma: no cover - interpreter shutdown
        logger.exception("Could not write the API call log at exit")


atexit.register(_flush_at_exit)


@dataclass(frozen=True)
class Usage:
    """Per-connection API usage derived from the call log."""

    calls: int
    errors: int
    last_call_at: datetime | None


def usage(connection: Connection | int, *, since: datetime | None = None) -> Usage:
    """Calls and errors of a connection since ``since`` (default: the last 24 hours);
    one aggregate query on the indexed call log."""
    since = since or timezone.now() - timedelta(days=1)
    pk = connection if isinstance(connection, int) else connection.pk
    row = ApiCallLog.objects.filter(connection_id=pk, created_at__gte=since).aggregate(
        calls=Count("pk"),
        errors=Count("pk", filter=Q(status__isnull=True) | Q(status__gte=400)),
        last=Max("created_at"),
    )
    return Usage(calls=row["calls"] or 0, errors=row["errors"] or 0, last_call_at=row["last"])


def prune_api_call_log(*, days: int | None = None, batch_size: int = 5000) -> int:
    """Delete call-log rows older than ``API_CALL_LOG_RETENTION_DAYS``; returns the count.

    Deletes in batches so a large backlog never holds a long lock."""
    days = app_settings.API_CALL_LOG_RETENTION_DAYS if days is None else days
    cutoff = timezone.now() - timedelta(days=days)
    total = 0
    while True:
        pks = list(
            ApiCallLog.objects.filter(created_at__lt=cutoff).values_list("pk", flat=True)[
                :batch_size
            ]
        )
        if not pks:
            return total
        total += ApiCallLog.objects.filter(pk__in=pks).delete()[0]
