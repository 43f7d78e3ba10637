"""The private database connection: one per thread and process, in autocommit mode,
outside whatever transaction the caller is in.

Two rules need writes that neither join nor wait for the caller's transaction: a
concurrency slot (:mod:`intacct_connect.concurrency`: visible to other workers at once)
and the token journal (:mod:`intacct_connect.token_journal`: durable before the caller's
transaction commits). On PostgreSQL, :func:`get` returns a second connection to the
default database for the slots, and :func:`durable` a short-lived one for the journal; on
other databases (SQLite: single-process development) it
returns the default connection itself, and the caller must allow for that.

The connection runs with ``synchronous_commit = off`` (a slot claim or release lost in a
crash is harmless: the slot TTL reclaims it). A write that must be durable uses
:func:`durable` instead: a connection of its own for one transaction with
``synchronous_commit`` on, closed after it. The thread's connection is created
on first use, opened again after a fork (Celery's prefork pool) and after an error that
left it unusable; ``CONN_MAX_AGE`` does not apply. :func:`close` ends this thread's
connection (tests, worker shutdown, a thread about to end).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections

_local = threading.local()


class _CloseWithThread:
    """Closes the private connection's socket when its thread ends: the thread's locals
    are freed then, and this holder (unlike Django's connection object, which sits in
    reference cycles and would wait for the garbage collector) goes at once."""

    __slots__ = ("wrapper",)

    def __init__(self, wrapper: Any) -> None:
        self.wrapper = wrapper

    def __del__(self) -> None:
        raw = getattr(self.wrapper, "connection", None)
        if raw is not None:
            with contextlib.suppress(Exception):  # best effort at thread exit
                raw.close()


def get() -> Any:
    """This thread's private connection (see the module docstring)."""
    default = connections[DEFAULT_DB_ALIAS]
    if default.vendor != "postgresql":
        return default
    private = getattr(_local, "conn", None)
    if private is None or getattr(_local, "pid", None) != os.getpid():
        private = connections.create_connection(DEFAULT_DB_ALIAS)
        _local.conn = private
        _local.closer = _CloseWithThread(private)
        _local.pid = os.getpid()
    if private.connection is None:
        with private.cursor() as cursor:
            cursor.execute("SET synchronous_commit TO off")
    elif private.errors_occurred:
        # After a database error, keep the connection only if it still works; otherwise
        # open it again.
        if private.is_usable():
            private.errors_occurred = False
        else:
            private.close()
            return get()
    return private


@contextmanager
def durable() -> Iterator[Any]:
    """A cursor whose statements commit durably (flushed to the WAL) when the block ends,
    or roll back if it raises. On PostgreSQL it runs on a connection of its own, opened
    for the block and closed after it: durable writes are rare (one per token response),
    so no thread keeps a connection for them. On other databases: a cursor of the default
    connection, in the caller's transaction."""
    default = connections[DEFAULT_DB_ALIAS]
    if default.vendor != "postgresql":
        with default.cursor() as cursor:
            yield cursor
        return
    db = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        with db.cursor() as cursor:
            cursor.execute("BEGIN")
            try:
                cursor.execute("SET LOCAL synchronous_commit TO on")
                yield cursor
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
            cursor.execute("COMMIT")
    finally:
        db.close()


def close() -> None:
    """Close this thread's private connection."""
    private = getattr(_local, "conn", None)
    if private is not None and getattr(_local, "pid", None) == os.getpid():
        private.close()
    _local.conn = None
    _local.closer = None
