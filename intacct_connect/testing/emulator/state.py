"""The emulator's state: one lock, an injectable clock, counters and JSON persistence.

Everything that must survive a restart (applications, companies, grants, tokens, records,
configuration, the signing key) lives in the plain-JSON ``data`` dict, so it can be written
atomically to a state file. In-flight bookkeeping (concurrency, per-minute windows) does not.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

#: Defaults of :meth:`State.configure`. ``None`` disables a limit.
DEFAULT_CONFIG: dict[str, Any] = {
    # "none" (no rotation: the same refresh token is returned), "rotate" (a new refresh token
    # each time, the old one dies) or "reuse_detection" (rotate; presenting a used refresh
    # token revokes the whole grant, RFC 9700 section 4.14.2).
    "refresh_mode": "reuse_detection",
    "access_token_ttl": 21600,
    # Token-endpoint OAuth errors: "rfc" ({"error", "error_description"}) or "intacct"
    # ({"ia::error": {...}}). Gateway errors (GW-00xx) always use the ia::error shape.
    "error_style": "rfc",
    # REST errors: "top" ({"ia::error": ..., "ia::meta": ...}) or "nested"
    # ({"ia::result": {"ia::error": ...}, "ia::meta": ...}) as in Sage's OpenAPI documents.
    "rest_error_shape": "top",
    # A new consent by the same Intacct user for the same company supersedes earlier grants.
    "supersede_grants": True,
    "code_ttl": 600,
    "concurrency_limit": None,
    "per_minute_limit": None,
    "retry_after": 1,
    # An expired token answers 401 GW-0040 ("gw0040") or 400 REST-1206 ("rest1206").
    "expired_token_error": "gw0040",
}


def new_data() -> dict[str, Any]:
    """An empty state (no seed data, default configuration)."""
    return {
        "version": 1,
        "config": dict(DEFAULT_CONFIG),
        "clock_offset": 0.0,
        "applications": {},
        "companies": {},
        "pending": {},
        "codes": {},
        "grants": {},
        "refresh_tokens": {},
        "sessions": {},
        "records": {},
        "idempotency": {},
        "faults": [],
        "counters": new_counters(),
        "sequence": 1000,
    }


def new_counters() -> dict[str, Any]:
    return {
        "token_requests": {},  # grant_type -> count
        "token_requests_by_company": {},  # company -> grant_type -> count
        "api_calls": {},  # company -> count
        "max_concurrency": {},  # company -> highest number of simultaneous API calls
        "throttled": {},  # company -> count of 429 answers
        "faults_injected": 0,
        "unexpected_errors": 0,
        "transactions": {},  # company -> records written + queries (usage, never blocking)
    }


class State:
    """Thread-safe holder of the emulator's data. Hold :attr:`lock` while reading or
    writing :attr:`data` (it is re-entrant)."""

    def __init__(self, path: str | None = None) -> None:
        self.lock = threading.RLock()
        self.path = path
        self.data: dict[str, Any] = new_data()
        self.inflight: dict[str, int] = {}
        self.minute_windows: dict[str, tuple[int, int]] = {}
        self.dirty = False
        self.version = 0  # bumped on every record write (query caches key on it)
        self.query_cache: dict[Any, Any] = {}
        self.last_error: str | None = None

    # --- clock -------------------------------------------------------------------
    def now(self) -> float:
        """Emulator time: wall-clock time plus the offset set by :meth:`advance_time`."""
        return time.time() + float(self.data["clock_offset"])

    def advance_time(self, seconds: float) -> None:
        with self.lock:
            self.data["clock_offset"] = float(self.data["clock_offset"]) + float(seconds)
            self.dirty = True

    # --- config ------------------------------------------------------------------
    @property
    def config(self) -> dict[str, Any]:
        config: dict[str, Any] = self.data["config"]
        return config

    def configure(self, **options: Any) -> dict[str, Any]:
        unknown = sorted(set(options) - set(DEFAULT_CONFIG))
        if unknown:
            raise ValueError(f"Unknown emulator option(s): {', '.join(unknown)}")
        checks = {
            "refresh_mode": ("none", "rotate", "reuse_detection"),
            "error_style": ("rfc", "intacct"),
            "rest_error_shape": ("top", "nested"),
            "expired_token_error": ("gw0040", "rest1206"),
        }
        for name, allowed in checks.items():
            if name in options and options[name] not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}")
        for name in ("access_token_ttl", "code_ttl", "retry_after"):
            if name in options and (
                not isinstance(options[name], int | float)
                or isinstance(options[name], bool)
                or options[name] <= 0
            ):
                raise ValueError(f"{name} must be a positive number")
        for name in ("concurrency_limit", "per_minute_limit"):
            value = options.get(name)
            if (
                name in options
                and value is not None
                and (not isinstance(value, int) or isinstance(value, bool) or value < 1)
            ):
                raise ValueError(f"{name} must be a positive integer or None")
        with self.lock:
            self.config.update(options)
            self.dirty = True
            return dict(self.config)

    # --- counters ----------------------------------------------------------------
    def count(self, name: str, *keys: str, amount: int = 1) -> None:
        with self.lock:
            target: dict[str, Any] = self.data["counters"][name]
            for key in keys[:-1]:
                target = target.setdefault(key, {})
            last = keys[-1]
            target[last] = int(target.get(last, 0)) + amount

    def count_unexpected(self, description: str) -> None:
        with self.lock:
            self.data["counters"]["unexpected_errors"] += 1
            self.last_error = description

    def counters(self) -> dict[str, Any]:
        with self.lock:
            return copy.deepcopy(self.data["counters"])

    @contextlib.contextmanager
    def tracking_concurrency(self, company: str) -> Iterator[int]:
        """Count one in-flight API call of ``company``; yields the number in flight
        (including this one)."""
        with self.lock:
            current = self.inflight.get(company, 0) + 1
            self.inflight[company] = current
            highest = self.data["counters"]["max_concurrency"]
            if current > int(highest.get(company, 0)):
                highest[company] = current
        try:
            yield current
        finally:
            with self.lock:
                self.inflight[company] -= 1

    # --- persistence -------------------------------------------------------------
    def reset(self, data: dict[str, Any] | None = None) -> None:
        with self.lock:
            self.data = data if data is not None else new_data()
            self.inflight = {}
            self.minute_windows = {}
            self.query_cache = {}
            self.version += 1
            self.dirty = True
            self.last_error = None

    def touch_records(self) -> None:
        """Note that records changed (invalidates query caches)."""
        self.version += 1
        self.query_cache.clear()
        self.dirty = True

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return copy.deepcopy(self.data)

    def load(self) -> bool:
        """Load :attr:`path` if it exists. Returns whether something was loaded."""
        if not self.path or not os.path.exists(self.path):
            return False
        with open(self.path, encoding="utf-8") as handle:
            data = json.load(handle)
        if not isinstance(data, dict) or data.get("version") != 1:
            raise ValueError(f"{self.path} is not an emulator state file")
        fresh = new_data()
        fresh.update(data)
        fresh["config"] = {**DEFAULT_CONFIG, **data.get("config", {})}
        fresh["counters"] = {**new_counters(), **data.get("counters", {})}
        with self.lock:
            self.reset(fresh)
            self.dirty = False
        return True

    def save(self, *, force: bool = False) -> bool:
        """Write the state atomically (temporary file + rename) when it changed."""
        if not self.path:
            return False
        with self.lock:
            if not (self.dirty or force):
                return False
            text = json.dumps(self.data, separators=(",", ":"))
            self.dirty = False
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

    def next_sequence(self) -> int:
        with self.lock:
            self.data["sequence"] += 1
            return int(self.data["sequence"])
