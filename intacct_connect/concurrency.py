"""Per-company concurrency cap shared by every process and thread of the site.

Intacct enforces a per-company concurrency limit (a third request beyond the limit waits,
then fails with ``GW-0010``). :func:`company_slot` keeps the site's own requests to one
company at ``COMPANY_CONCURRENCY`` (default 2) at any moment, whatever the number of web
and Celery workers. A company has ``COMPANY_CONCURRENCY`` numbered slots; a request holds
one while it is in flight. ``CONCURRENCY_BACKEND`` chooses where the slots live:

``"database"`` (default): rows of :class:`ConcurrencySlot` in the site's database.

* a slot is claimed with one short conditional ``UPDATE … WHERE held_until IS NULL OR
  held_until < now``, which is atomic on PostgreSQL and SQLite alike, and released by an
  ``UPDATE … WHERE holder = <our id>``;
* on PostgreSQL the slot statements run on a private autocommit connection per thread, so
  a claim is visible to other workers at once and never joins (or is held until the end
  of) the caller's transaction; that connection sets ``synchronous_commit = off`` (a claim
  or release lost in a crash is harmless: the TTL reclaims the slot). On SQLite they run
  on the default connection (single-process development).

``"cache"``: keys of the Django cache ``CONCURRENCY_CACHE`` (default ``"default"``).

* slot ``n`` of a company is the key ``intacct_connect:slot:<company>:<n>``, claimed with
  the atomic ``cache.add(key, holder, timeout=CONCURRENCY_SLOT_TTL)`` and released by
  deleting it if it still holds our holder id;
* on Django's Redis backend (``django.core.cache.backends.redis.RedisCache``) a claim is
  one round trip whatever the number of busy slots (a Lua script ``SET NX PX`` over the
  slots) and the release is an atomic compare-and-delete (another Lua script); other
  backends use ``cache.add`` per slot and ``get`` then ``delete`` (a release can then
  free a slot that expired and was re-claimed a moment before: only a holder that
  overran ``CONCURRENCY_SLOT_TTL`` can hit that window);
* the cache must be shared by every process (Redis, Memcached): a process-local cache
  (``LocMemCache``) caps each process separately, and system check
  ``intacct_connect.W002`` says so. It must also not evict the keys early (Redis:
  ``maxmemory-policy noeviction``, or enough memory).

With either backend, :func:`finish` ends a request by *parking* its slot in the process
for ``CONCURRENCY_SLOT_LINGER`` seconds: the next request to the same company takes it
back without a round trip, and a background thread releases it if nobody does (see "parked
slots" below). A holder that crashed keeps its slot for at most
``CONCURRENCY_SLOT_TTL`` seconds, and a caller that finds every slot busy polls with
jittered sleeps and raises :class:`~intacct_connect.exceptions.RateLimited` after
``CONCURRENCY_SLOT_TTL`` seconds. ``COMPANY_CONCURRENCY = 0`` disables the cap.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import random
import threading
import time
import uuid
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, NamedTuple
from urllib.parse import quote

from django.core.cache import InvalidCacheBackendError, caches
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.redis import RedisCache
from django.db import DEFAULT_DB_ALIAS, OperationalError, connections
from django.utils import timezone

from intacct_connect import private_db
from intacct_connect.conf import app_settings
from intacct_connect.exceptions import IntacctConfigurationError, RateLimited
from intacct_connect.models import ConcurrencySlot

BACKENDS = ("database", "cache")
KEY_PREFIX = "intacct_connect:slot"

logger = logging.getLogger(__name__)


class Lease(NamedTuple):
    """A claimed slot: its number, the random id of this holder, and when it was claimed
    (``time.monotonic()``; a parked slot is reused only while it is young, see
    :func:`finish`)."""

    slot: int
    holder: str
    claimed_at: float = 0.0


def backend_name() -> str:
    """The configured ``CONCURRENCY_BACKEND`` (validated)."""
    name = app_settings.CONCURRENCY_BACKEND
    if name not in BACKENDS:
        raise IntacctConfigurationError(
            f"INTACCT_CONNECT['CONCURRENCY_BACKEND'] is {name!r}; use 'database' or 'cache'"
        )
    return name


def _wrapper() -> Any:
    """The database connection the slot statements use (see the module docstring). A lost
    claim or release after a crash is harmless (the TTL reclaims slots), so slot
    statements need not wait for the WAL flush."""
    return private_db.get()


def close_private_connection() -> None:
    """Close this thread's private connection (the slots', shared with the token journal:
    :mod:`intacct_connect.private_db`); for tests and worker shutdown."""
    private_db.close()


def _table() -> str:
    return ConcurrencySlot._meta.db_table


def _execute(db: Any, sql: str, params: Sequence[Any], *, attempts: int = 1) -> int:
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


def _db_try_acquire(company_id: str, limit: int) -> Lease | None:
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
                    return Lease(slot, holder, time.monotonic())
            if ensured:
                break
            # All busy, or the rows do not exist yet: create missing rows, try once more.
            _ensure_slots(db, company_id, limit)
    except OperationalError as err:
        if "locked" not in str(err):  # SQLite: another writer holds the database
            raise
    return None


def _release_sql(db: Any) -> str:
    table = db.ops.quote_name(_table())
    return (
        f"UPDATE {table} SET holder = '', held_until = NULL "  # noqa: S608
        "WHERE company_id = %s AND slot = %s AND holder = %s"
    )


def _db_release(company_id: str, slot: int, holder: str) -> None:
    db = _wrapper()
    _execute(db, _release_sql(db), [company_id, slot, holder], attempts=50)


def _db_busy(company_id: str) -> int:
    return ConcurrencySlot.objects.filter(
        company_id=company_id, held_until__gt=timezone.now()
    ).count()


# KEYS: the company's slot keys; ARGV: holder, TTL in ms, first slot to try (0-based).
_CLAIM_LUA = """
local n = #KEYS
local first = tonumber(ARGV[3])
for i = 0, n - 1 do
  local slot = (first + i) % n
  if redis.call('SET', KEYS[slot + 1], ARGV[1], 'NX', 'PX', ARGV[2]) then
    return slot
  end
end
return -1
"""
# KEYS: one slot key; ARGV: holder. Deletes the key only if it is still ours.
_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
_scripts: dict[str, Any] = {}
_clients: weakref.WeakKeyDictionary[BaseCache, Any] = weakref.WeakKeyDictionary()


def _cache(alias: str | None = None) -> BaseCache:
    alias = app_settings.CONCURRENCY_CACHE if alias is None else alias
    try:
        return caches[alias]
    except InvalidCacheBackendError as err:
        raise IntacctConfigurationError(
            f"INTACCT_CONNECT['CONCURRENCY_CACHE'] is {alias!r}, which is not in CACHES"
        ) from err


def company_key(company_id: str) -> str:
    """The company part of a slot key: safe for every cache backend (memcached included)."""
    safe = quote(company_id, safe="")
    if len(safe) > 100:
        safe = hashlib.sha256(company_id.encode()).hexdigest()
    return safe


def slot_key(company_id: str, slot: int) -> str:
    """The cache key (before the cache's own prefix and version) of one slot."""
    return f"{KEY_PREFIX}:{company_key(company_id)}:{slot}"


def _redis(cache: BaseCache) -> Any:
    """The redis-py client (primary server) of Django's Redis backend, or None for any
    other backend. Kept per cache object: building a client costs as much as a round trip,
    and ``caches[alias]`` is already one object per thread."""
    if not isinstance(cache, RedisCache):
        return None
    client = _clients.get(cache)
    if client is None:
        client = cache._cache.get_client(None, write=True)
        _clients[cache] = client
    return client


def _script(client: Any, source: str) -> Any:
    script = _scripts.get(source)
    if script is None:
        script = client.register_script(source)
        _scripts[source] = script
    return script


def _cache_try_acquire(company_id: str, limit: int) -> Lease | None:
    cache = _cache()
    # Digits: Django's Redis serializer stores an int as is, so ``cache.get`` reads back
    # what the Lua script wrote.
    holder = str(uuid.uuid4().int)
    ttl = app_settings.CONCURRENCY_SLOT_TTL
    first = random.randrange(limit)  # noqa: S311 - spread claims over the slots
    client = _redis(cache)
    if client is not None:
        keys = [cache.make_key(slot_key(company_id, slot)) for slot in range(limit)]
        slot = int(_script(client, _CLAIM_LUA)(keys, [holder, ttl * 1000, first], client=client))
        return Lease(slot, holder, time.monotonic()) if slot >= 0 else None
    for i in range(limit):
        slot = (first + i) % limit
        if cache.add(slot_key(company_id, slot), holder, timeout=ttl):
            return Lease(slot, holder, time.monotonic())
    return None


def _cache_release(company_id: str, slot: int, holder: str, alias: str | None = None) -> None:
    cache = _cache(alias)
    key = slot_key(company_id, slot)
    client = _redis(cache)
    if client is not None:
        _script(client, _RELEASE_LUA)([cache.make_key(key)], [holder], client=client)
    elif cache.get(key) == holder:
        cache.delete(key)


def _cache_busy(company_id: str) -> int:
    cache = _cache()
    keys = [slot_key(company_id, slot) for slot in range(app_settings.COMPANY_CONCURRENCY)]
    client = _redis(cache)
    if client is not None:
        return int(client.exists(*[cache.make_key(k) for k in keys])) if keys else 0
    return len(cache.get_many(keys))


def try_acquire(company_id: str, limit: int | None = None) -> Lease | None:
    """Claim a free slot of the company now: a :class:`Lease` ``(slot, holder id)``, or
    None if all are busy."""
    limit = app_settings.COMPANY_CONCURRENCY if limit is None else limit
    if backend_name() == "cache":
        return _cache_try_acquire(company_id, limit)
    return _db_try_acquire(company_id, limit)


def release(company_id: str, slot: int, holder: str) -> None:
    """Give a slot back now (no-op if it was reclaimed after its TTL)."""
    if backend_name() == "cache":
        _cache_release(company_id, slot, holder)
    else:
        _db_release(company_id, slot, holder)


def acquire(company_id: str, *, timeout: float | None = None) -> Lease:
    """Claim a slot, waiting up to ``timeout`` seconds (default ``CONCURRENCY_SLOT_TTL``)."""
    limit = app_settings.COMPANY_CONCURRENCY
    timeout = app_settings.CONCURRENCY_SLOT_TTL if timeout is None else timeout
    deadline = time.monotonic() + timeout
    pause = 0.01
    while True:
        claimed = _unpark(company_id) or try_acquire(company_id, limit)
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
    After the block the slot is parked (see :func:`finish`), or released at once if the
    block raised.
    """
    if app_settings.COMPANY_CONCURRENCY <= 0:
        yield None
        return
    lease = acquire(company_id, timeout=timeout)
    try:
        yield lease.slot
    except BaseException:
        release(company_id, lease.slot, lease.holder)  # a failed block frees its slot now
        raise
    finish(company_id, lease)


def busy_slots(company_id: str) -> int:
    """How many of the company's slots are held right now (for admin screens and tests)."""
    if backend_name() == "cache":
        return _cache_busy(company_id)
    return _db_busy(company_id)


# Parked slots. A process that calls one company again and again (a query paging through
# thousands of records, a sync job) would claim and release a slot around every request:
# two round trips to the database or cache per API call. Instead, :func:`finish` parks the
# slot for ``CONCURRENCY_SLOT_LINGER`` seconds; the process's next request to that company
# (from any thread) takes it back without a round trip, and a background thread releases
# the slots nobody took back in time. A parked slot stays claimed in the shared store, so
# the cap still holds across processes: parking only delays the moment another process can
# take the slot, by at most the linger time.


class _Parked(NamedTuple):
    store: str  # "database", or the alias of the slot cache
    company_id: str
    lease: Lease
    release_at: float


def _store() -> str:
    """Where slots live now; parked slots are kept apart per store, so a change of the
    settings (tests) never hands a slot of one store to a request counting on another."""
    return app_settings.CONCURRENCY_CACHE if backend_name() == "cache" else "database"


#: Parked slots by (store, company).
_parked: dict[tuple[str, str], list[_Parked]] = {}
_parked_lock = threading.Condition()
_releaser: threading.Thread | None = None


def _reset_after_fork() -> None:
    """A forked child (Celery's prefork pool) starts with no parked slots: the parent's
    are the parent's to reuse or release."""
    global _parked_lock, _releaser
    _parked.clear()
    _parked_lock = threading.Condition()
    _releaser = None


os.register_at_fork(after_in_child=_reset_after_fork)


def _can_park() -> bool:
    """Whether a slot may outlive its request: lingering is on, and the slot statements
    do not run inside the caller's transaction (with the database backend on SQLite they
    use the default connection, which must then be in autocommit mode)."""
    if app_settings.CONCURRENCY_SLOT_LINGER <= 0:
        return False
    if backend_name() == "cache":
        return True
    default = connections[DEFAULT_DB_ALIAS]
    return default.vendor == "postgresql" or not default.in_atomic_block


def finish(company_id: str, lease: Lease) -> None:
    """The request holding ``lease`` is over: park the slot for this process's next
    request to the company, or release it (lingering off, the slot about to expire, or
    inside a transaction on SQLite). Never raises: a slot that cannot be released is
    logged and reclaimed after ``CONCURRENCY_SLOT_TTL``."""
    now = time.monotonic()
    young = now - lease.claimed_at < app_settings.CONCURRENCY_SLOT_TTL / 2
    try:
        if young and _can_park():
            linger = app_settings.CONCURRENCY_SLOT_LINGER
            _park(_Parked(_store(), company_id, lease, now + linger))
            return
        release(company_id, lease.slot, lease.holder)
    except Exception:  # never hide the caller's own outcome
        logger.exception(
            "Could not release concurrency slot %s of company %s", lease.slot, company_id
        )


def _park(entry: _Parked) -> None:
    global _releaser
    with _parked_lock:
        idle = not _parked
        _parked.setdefault((entry.store, entry.company_id), []).append(entry)
        if _releaser is None or not _releaser.is_alive():
            _releaser = threading.Thread(
                target=_release_loop, name="intacct-connect-slot-releaser", daemon=True
            )
            _releaser.start()
        elif idle:
            _parked_lock.notify()


def _unpark(company_id: str) -> Lease | None:
    """Take back a slot this process parked for the company, if one is still young."""
    if not _parked:
        return None
    key = (_store(), company_id)
    with _parked_lock:
        entries = _parked.get(key)
        if not entries:
            return None
        entry = entries.pop()
        if not entries:
            del _parked[key]
    if time.monotonic() - entry.lease.claimed_at < app_settings.CONCURRENCY_SLOT_TTL / 2:
        return entry.lease
    finish(company_id, entry.lease)  # too old to reuse: released now
    return None


def _take_due(
    now: float, company_id: str | None = None, *, everything: bool = False
) -> list[_Parked]:
    due: list[_Parked] = []
    with _parked_lock:
        for key in list(_parked):
            if company_id is not None and key[1] != company_id:
                continue
            entries = _parked[key]
            keep = [e for e in entries if not everything and e.release_at > now]
            due += [e for e in entries if everything or e.release_at <= now]
            if keep:
                _parked[key] = keep
            else:
                del _parked[key]
    return due


def _release_entries(entries: list[_Parked]) -> int:
    for entry in entries:
        try:
            if entry.store == "database":
                _db_release(entry.company_id, entry.lease.slot, entry.lease.holder)
            else:
                _cache_release(entry.company_id, entry.lease.slot, entry.lease.holder, entry.store)
        except Exception:
            logger.exception(
                "Could not release parked concurrency slot %s of company %s",
                entry.lease.slot,
                entry.company_id,
            )
    return len(entries)


def _release_loop() -> None:
    """The background releaser: gives back parked slots once their linger time is over,
    and closes its database connections whenever nothing is parked (so a test database
    can be dropped and an idle process holds no extra connection)."""
    while True:
        with _parked_lock:
            if not _parked:
                # Checked under the lock: another thread may have emptied the table
                # (release_parked) since this thread last released, with its connection
                # still open; waiting first would keep that connection forever.
                close_private_connection()
                connections[DEFAULT_DB_ALIAS].close()
                while not _parked:
                    _parked_lock.wait()
            wake = min(e.release_at for entries in _parked.values() for e in entries)
            pause = wake - time.monotonic()
            if pause > 0:
                _parked_lock.wait(pause)
        _release_entries(_take_due(time.monotonic()))


def release_parked(company_id: str | None = None) -> int:
    """Release now the slots this process parked (for one company, or all); returns how
    many. Called at the end of every Celery task and web request, by
    :meth:`IntacctClient.close`, and at exit."""
    if not _parked:
        return 0
    released = _release_entries(_take_due(time.monotonic(), company_id, everything=True))
    with _parked_lock:
        _parked_lock.notify()  # the releaser closes its connections if nothing is left
    return released


def parked_slots(company_id: str | None = None) -> int:
    """How many slots this process holds parked (for tests and diagnostics)."""
    with _parked_lock:
        return sum(
            len(entries)
            for (_store_name, company), entries in _parked.items()
            if company_id is None or company == company_id
        )


atexit.register(release_parked)
