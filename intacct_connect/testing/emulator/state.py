"""The emulator's state: one lock over one typed :class:`~.store.Store`, the clock, the
counters, the bookkeeping of requests in flight, and atomic JSON persistence.

The lock is private. Code elsewhere reaches the data in one of two ways, and never holds or
names the lock itself:

* ``with state.transaction() as store:`` (an operation that may write; marks the state
  changed so it is saved) or ``with state.read() as store:`` (reads only), around one whole
  operation, calling the typed accessors of :class:`~.store.Store` inside;
* the single-step methods below (clock, configuration, counters, faults, concurrency and
  per-minute windows), which take the lock themselves.

The lock is re-entrant, so an operation may call a single-step method inside a transaction.
What must survive a restart lives in the store; requests in flight and per-minute windows
do not.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from typing import Any

from intacct_connect.testing.emulator.config import Config
from intacct_connect.testing.emulator.store import Fault, Store


class State:
    """Thread-safe holder of the emulator's :class:`~.store.Store` (see the module)."""

    def __init__(self, path: str | None = None) -> None:
        self._lock = threading.RLock()
        self.path = path
        self._store = Store()
        self._inflight: dict[str, int] = {}
        self._minute_windows: dict[str, tuple[int, int]] = {}
        self.last_error: str | None = None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Store]:
        """The store, to read and write, with the lock held; the state counts as changed."""
        with self._lock:
            try:
                yield self._store
            finally:
                self._store.changed = True

    @contextlib.contextmanager
    def read(self) -> Iterator[Store]:
        """The store, to read, with the lock held (a lazily seeded record collection still
        marks the state changed)."""
        with self._lock:
            yield self._store

    # the clock and the configuration
    def now(self) -> float:
        """Emulator time: wall-clock time plus the offset set by :meth:`advance_time`."""
        return self._store.now()

    def advance_time(self, seconds: float) -> None:
        with self.transaction() as store:
            store.clock_offset = float(store.clock_offset) + float(seconds)

    @property
    def config(self) -> Config:
        """The switches now in force (a frozen object: read it once per request)."""
        return self._store.config

    def configure(self, **options: Any) -> dict[str, Any]:
        with self.transaction() as store:
            store.config = store.config.updated(**options)
            return store.config.to_json()

    # counters
    def count_token_request(self, grant_type: str, company: str | None = None) -> None:
        with self._lock:
            self._store.counters.token_request(grant_type, company)

    def count_api_call(self, company: str) -> None:
        with self._lock:
            self._store.counters.api_call(company)

    def count_throttled(self, company: str) -> None:
        with self._lock:
            self._store.counters.throttle(company)

    def count_unexpected(self, description: str) -> None:
        with self._lock:
            self._store.counters.unexpected_errors += 1
            self.last_error = description

    def counters(self) -> dict[str, Any]:
        """A copy of the counters, as the control API reports them."""
        with self._lock:
            return self._store.counters.to_json()

    @contextlib.contextmanager
    def tracking_concurrency(self, company: str) -> Iterator[int]:
        """Count one in-flight API call of ``company``; yields the number in flight
        (including this one). A call still running across :meth:`reset` leaves the new
        count alone."""
        with self._lock:
            inflight = self._inflight
            current = inflight.get(company, 0) + 1
            inflight[company] = current
            self._store.counters.concurrency(company, current)
        try:
            yield current
        finally:
            with self._lock:
                inflight[company] -= 1

    def take_minute_slot(self, company: str, limit: int, now: float) -> int | None:
        """Use one of ``company``'s ``limit`` requests of the current minute: how many it
        has used now, or None when none was left (counted as throttled)."""
        window = int(now // 60)
        with self._lock:
            start, used = self._minute_windows.get(company, (window, 0))
            if start != window:
                start, used = window, 0
            if used >= limit:
                self._minute_windows[company] = (start, used)
                self._store.counters.throttle(company)
                return None
            used += 1
            self._minute_windows[company] = (start, used)
            return used

    # faults
    def add_fault(self, fault: Fault) -> None:
        with self.transaction() as store:
            store.faults.append(fault)

    def clear_faults(self) -> None:
        with self.transaction() as store:
            store.faults = []

    def faults(self) -> list[dict[str, Any]]:
        with self._lock:
            return [fault.to_json() for fault in self._store.faults]

    def take_fault(
        self, endpoint: str, company: str | None, kinds: tuple[str, ...] | None = None
    ) -> Fault | None:
        """The first fault matching this request (a copy), consuming one of its
        ``remaining``."""
        with self._lock:
            faults = self._store.faults
            for fault in faults:
                if not fault.matches(endpoint, company, kinds):
                    continue
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        faults.remove(fault)
                self._store.counters.faults_injected += 1
                self._store.changed = True
                return dataclasses.replace(fault)
        return None

    # persistence
    def reset(self, store: Store | None = None) -> None:
        """Replace the whole store (a fresh empty one when None)."""
        with self._lock:
            self._store = store if store is not None else Store()
            self._store.changed = True
            self._inflight = {}
            self._minute_windows = {}
            self.last_error = None

    def load(self) -> bool:
        """Load :attr:`path` if it exists. Returns whether something was loaded."""
        if not self.path or not os.path.exists(self.path):
            return False
        with open(self.path, encoding="utf-8") as handle:
            data = json.load(handle)
        try:
            store = Store.from_json(data)
        except ValueError as err:
            raise ValueError(f"{self.path} is not an emulator state file") from err
        with self._lock:
            self.reset(store)
            store.changed = False
        return True

    def save(self, *, force: bool = False) -> bool:
        """Write the state atomically (temporary file + rename) when it changed."""
        if not self.path:
            return False
        with self._lock:
            if not (self._store.changed or force):
                return False
            text = json.dumps(self._store.to_json(), separators=(",", ":"))
            self._store.changed = False
        directory = os.path.dirname(os.path.abspath(self.path))
        fd, tmp = tempfile.mkstemp(prefix=".emulator-state-", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return True
