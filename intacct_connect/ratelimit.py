"""Per-company concurrency cap shared by every process and thread of the site.

Intacct enforces a per-company concurrency limit (a third request beyond the limit waits,
then fails with ``GW-0010``). :func:`company_slot` keeps the site's own requests to one
company at ``COMPANY_CONCURRENCY`` (default 2) at any moment, whatever the number of web
and Celery workers, using the database the site already has:

* each company has ``COMPANY_CONCURRENCY`` rows in :class:`ConcurrencySlot`;
* a slot is claimed with one short conditional ``UPDATE … WHERE held_until IS NULL OR
  held_until < now``, which is atomic on PostgreSQL and SQLite alike, and released by an
  ``UPDATE … WHERE holder = <our id>``;
* a holder that crashed keeps its slot for at most ``CONCURRENCY_SLOT_TTL`` seconds;
* a caller that finds every slot busy polls with jittered sleeps, and raises
  :class:`~intacct_connect.exceptions.RateLimited` after ``CONCURRENCY_SLOT_TTL`` seconds.

On PostgreSQL the slot statements run on a private autocommit connection per thread, so a
claim is visible to other workers at once and never joins (or is held until the end of)
the caller's transaction; that connection sets ``synchronous_commit = off`` (a claim or
release lost in a crash is harmless: the TTL reclaims the slot). On SQLite they run on
the default connection (single-process development). ``COMPANY_CONCURRENCY = 0`` disables the cap.
"""

from __future__ import annotations

import os
import random
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from django.db import DEFAULT_DB_ALIAS, OperationalError, connections
from django.utils import timezone

from intacct_connect.conf import app_settings
from intacct_connect.exceptions import RateLimited
from intacct_connect.models import ConcurrencySlot

_local = threading.local()


def _wrapper() -> Any:
    """The database connection the slot statements use (see the module docstring)."""
    default = connections[DEFAULT_DB_ALIAS]
    if default.vendor != "postgresql":
        return default
    private = getattr(_local, "conn", None)
    if private is None or getattr(_local, "pid", None) != os.getpid():
        private = connections.create_connection(DEFAULT_DB_ALIAS)
        _local.conn = private
        _local.pid = os.getpid()
    if private.connection is None:
        # A lost claim or release after a crash is harmless (the TTL reclaims slots), so
        # slot statements need not wait for the WAL flush.
        with private.cursor() as cursor:
            cursor.execute("SET synchronous_commit TO off")
    elif private.connection is not None and private.errors_occurred:
        # After a database error, keep the connection only if it still works (it then
        # reconnects on next use). CONN_MAX_AGE does not apply to this connection.
        if private.is_usable():
            private.errors_occurred = False
        else:
            private.close()
    return private


def close_private_connection() -> None:
    """Close this thread's private slot connection (tests, worker shutdown)."""
    private = getattr(_local, "conn", None)
    if private is not None and getattr(_local, "pid", None) == os.getpid():
        private.close()
    _local.conn = None


def _table() -> str:
    return ConcurrencySlot._meta.db_table


def _execute(db: Any, sql: str, params: list[Any], *, attempts: int = 1) -> int:
    """Run one statement; SQLite's "database is locked" is retried ``attempts`` times."""
    for attempt in range(attempts):
        try:
            with db.cursor() as cursor:
                cursor.execute(sql, params)
                return int(cursor.rowcount)
        except OperationalError as err:
            if "locked" not in str(err) or attempt == attempts - 1:
                raise
            time.sleep(random.uniform(0.005, 0.02))  # noqa: S311
    return 0  # pragma: no cover - attempts >= 1


def _ensure_slots(db: Any, company_id: str, limit: int) -> None:
    table = db.ops.quote_name(_table())
    values = ", ".join(["(%s, %s, %s, NULL)"] * limit)
    params: list[Any] = []
    for slot in range(limit):
        params += [company_id, slot, ""]
    _execute(
        db,
        f"INSERT INTO {table} (company_id, slot, holder, held_until) VALUES {values} "  # noqa: S608
        "ON CONFLICT (company_id, slot) DO NOTHING",
        params,
    )


def try_acquire(company_id: str, limit: int | None = None) -> tuple[int, str] | None:
    """Claim a free slot of the company now: ``(slot, holder id)``, or None if all are busy."""
    limit = app_settings.COMPANY_CONCURRENCY if limit is None else limit
    db = _wrapper()
    table = db.ops.quote_name(_table())
    holder = uuid.uuid4().hex
    now = timezone.now()
    until = db.ops.adapt_datetimefield_value(
        now + timedelta(seconds=app_settings.CONCURRENCY_SLOT_TTL)
    )
    now_db = db.ops.adapt_datetimefield_value(now)
    sql = (
        f"UPDATE {table} SET holder = %s, held_until = %s "  # noqa: S608
        "WHERE company_id = %s AND slot = %s AND (held_until IS NULL OR held_until < %s)"
    )
    first = random.randrange(limit)  # noqa: S311 - spread claims over the slots
    order = [(first + i) % limit for i in range(limit)]
    try:
        for ensured in (False, True):
            for slot in order:
                if _execute(db, sql, [holder, until, company_id, slot, now_db]) == 1:
                    return slot, holder
            if ensured:
                break
            # All busy, or the rows do not exist yet: create missing rows, try once more.
            _ensure_slots(db, company_id, limit)
    except OperationalError as err:
        if "locked" not in str(err):  # SQLite: another writer holds the database
            raise
    return None


def release(company_id: str, slot: int, holder: str) -> None:
    """Give a slot back (no-op if it was reclaimed after its TTL)."""
    db = _wrapper()
    table = db.ops.quote_name(_table())
    _execute(
        db,
        f"UPDATE {table} SET holder = '', held_until = NULL "  # noqa: S608
        "WHERE company_id = %s AND slot = %s AND holder = %s",
        [company_id, slot, holder],
        attempts=50,
    )


def acquire(company_id: str, *, timeout: float | None = None) -> tuple[int, str]:
    """Claim a slot, waiting up to ``timeout`` seconds (default ``CONCURRENCY_SLOT_TTL``)."""
    limit = app_settings.COMPANY_CONCURRENCY
    timeout = float(app_settings.CONCURRENCY_SLOT_TTL) if timeout is None else timeout
    deadline = time.monotonic() + timeout
    pause = 0.01
    while True:
        claimed = try_acquire(company_id, limit)
        if claimed is not None:
            return claimed
        if time.monotonic() >= deadline:
            raise RateLimited(
                f"All {limit} concurrency slots of Intacct company {company_id} stayed busy "
                f"for {timeout:g} s (COMPANY_CONCURRENCY); try again later",
                retry_after=1.0,
            )
        time.sleep(random.uniform(pause / 2, pause))  # noqa: S311
        pause = min(pause * 2, 0.25)


@contextmanager
def company_slot(company_id: str, *, timeout: float | None = None) -> Iterator[int | None]:
    """Hold one of the company's concurrency slots for the duration of the block.

    Yields the slot number, or None when the cap is disabled (``COMPANY_CONCURRENCY = 0``).
    """
    if app_settings.COMPANY_CONCURRENCY <= 0:
        yield None
        return
    slot, holder = acquire(company_id, timeout=timeout)
    try:
        yield slot
    finally:
        release(company_id, slot, holder)


def busy_slots(company_id: str) -> int:
    """How many of the company's slots are held right now (for admin screens and tests)."""
    return ConcurrencySlot.objects.filter(
        company_id=company_id, held_until__gt=timezone.now()
    ).count()
