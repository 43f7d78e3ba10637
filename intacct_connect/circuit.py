"""Per-company circuit breaker: stop sending to an Intacct company that only fails.

A company whose API answers nothing but timeouts, connection errors or 502/503/504 ties
up workers for a whole read timeout per attempt and holds its concurrency slots, while the
other companies' calls wait behind it. After ``CIRCUIT_FAILURE_THRESHOLD`` consecutive
failed attempts to one company (across every process sharing ``CIRCUIT_CACHE``), its
breaker **opens**: for ``CIRCUIT_OPEN_SECONDS`` every call to that company raises
:class:`~intacct_connect.exceptions.CompanyUnavailable` at once, sending nothing and
holding no slot (a :class:`~intacct_connect.exceptions.TransportError`, so job runs retry
it later, with ``retry_after`` saying when the breaker lets a request through again).

Then the breaker is **half-open**: one request in the whole site (the first to claim the
probe key) is sent; the others still raise. A probe that gets an answer closes the breaker;
one that fails opens it again for twice as long, up to ``CIRCUIT_OPEN_MAX``. Any answer
from Intacct (2xx, 4xx, 429, 500) counts as a success: only "Intacct did not answer
usefully" is a failure. ``CIRCUIT_FAILURE_THRESHOLD = 0`` turns the breaker off.

State, in the Django cache ``CIRCUIT_CACHE`` (Redis or Memcached to share it between
processes; a process-local cache gives each process its own breaker):

* ``intacct_connect:circuit:<company>:failures``: consecutive failures (``incr``), deleted
  by a success;
* ``…:open``: ``"<open until, epoch seconds> <trips>"`` while open or half-open;
* ``…:probe``: the holder of the half-open probe (``cache.add``, expires with the read
  timeout).

A process reads the shared state of a company at most once per
:data:`SHARED_READ_INTERVAL` seconds (its own failures and openings are seen at once), so a
closed breaker costs nothing per call. Opening and closing send the signals
:data:`~intacct_connect.signals.company_circuit_opened` and
:data:`~intacct_connect.signals.company_circuit_closed` and log one WARNING / INFO line.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import requests
from django.core.cache import InvalidCacheBackendError, caches
from django.core.cache.backends.base import BaseCache

from intacct_connect import concurrency, signals
from intacct_connect.conf import app_settings
from intacct_connect.exceptions import CompanyUnavailable, IntacctConfigurationError

logger = logging.getLogger(__name__)

KEY_PREFIX = "intacct_connect:circuit"
#: HTTP statuses that count as "Intacct did not answer usefully" (gateway failures).
FAILURE_STATUSES = frozenset({502, 503, 504})
#: Seconds a process trusts its copy of a company's shared breaker state.
SHARED_READ_INTERVAL = 1.0

#: The clock of open periods (epoch seconds: shared by every process). Tests move it.
clock = time.time


@dataclass
class _View:
    """This process's copy of one company's breaker."""

    read_at: float = float("-inf")
    failures: int = 0
    open_until: float | None = None
    trips: int = 0


_views: dict[str, _View] = {}
_lock = threading.Lock()


def enabled() -> bool:
    return app_settings.CIRCUIT_FAILURE_THRESHOLD > 0


def _cache() -> BaseCache:
    alias = app_settings.CIRCUIT_CACHE
    try:
        return caches[alias]
    except InvalidCacheBackendError as err:
        raise IntacctConfigurationError(
            f"INTACCT_CONNECT['CIRCUIT_CACHE'] is {alias!r}, which is not in CACHES"
        ) from err


def _keys(company_id: str) -> tuple[str, str, str]:
    base = f"{KEY_PREFIX}:{concurrency.company_key(company_id)}"
    return f"{base}:failures", f"{base}:open", f"{base}:probe"


def _parse_open(value: Any) -> tuple[float | None, int]:
    try:
        until, trips = str(value).split()
        return float(until), int(trips)
    except (TypeError, ValueError):
        return None, 0


def _read(company_id: str, *, force: bool = False) -> _View:
    """The company's breaker as this process knows it (read again when stale)."""
    now = time.monotonic()
    with _lock:
        view = _views.setdefault(company_id, _View())
        if not force and now - view.read_at < SHARED_READ_INTERVAL:
            return view
    failures_key, open_key, _probe = _keys(company_id)
    values = _cache().get_many([failures_key, open_key])
    until, trips = _parse_open(values.get(open_key))
    with _lock:
        view.read_at = now
        view.failures = int(values.get(failures_key) or 0)
        view.open_until, view.trips = until, trips
    return view


@dataclass(frozen=True)
class Attempt:
    """Permission to send one request to a company; ``probe`` holds the half-open probe
    key (its holder id) when this request is the one probe."""

    company_id: str
    probe: str = ""


def before_request(company_id: str) -> Attempt:
    """Permission to send one request now, or :class:`CompanyUnavailable` while the
    company's breaker is open (or half-open with its probe already in flight)."""
    if not enabled():
        return Attempt(company_id)
    view = _read(company_id)
    if view.open_until is None:
        return Attempt(company_id)
    now = clock()
    if now < view.open_until:
        raise _unavailable(company_id, view.open_until - now)
    view = _read(company_id, force=True)  # half-open: another process may have closed it
    if view.open_until is None:
        return Attempt(company_id)
    holder = uuid.uuid4().hex
    connect, read = app_settings.HTTP_TIMEOUT
    probe_key = _keys(company_id)[2]
    if _cache().add(probe_key, holder, timeout=int(connect + read) + 5):
        logger.info("Circuit of Intacct company %s half-open: sending one probe", company_id)
        return Attempt(company_id, probe=holder)
    raise _unavailable(company_id, SHARED_READ_INTERVAL)


def recheck(attempt: Attempt) -> None:
    """Just before sending (after waiting for a concurrency slot): raise
    :class:`CompanyUnavailable` if the breaker opened while this attempt waited, so the
    callers queued behind a hanging company do not each send one more doomed request."""
    if attempt.probe or not enabled():
        return
    view = _read(attempt.company_id)
    if view.open_until is not None and clock() < view.open_until:
        raise _unavailable(attempt.company_id, view.open_until - clock())


def _unavailable(company_id: str, retry_after: float) -> CompanyUnavailable:
    return CompanyUnavailable(
        f"Intacct company {company_id} failed {app_settings.CIRCUIT_FAILURE_THRESHOLD} "
        "requests in a row (timeouts or gateway errors); its circuit breaker is open and "
        "nothing was sent",
        code="circuit_open",
        retry_after=max(round(retry_after, 1), 0.1),
    )


def is_failure(outcome: BaseException | int) -> bool:
    """Whether an attempt's outcome (a ``requests`` exception or an HTTP status) counts
    as a failure of the company."""
    if isinstance(outcome, int):
        return outcome in FAILURE_STATUSES
    return isinstance(outcome, requests.Timeout | requests.ConnectionError)


def after_request(attempt: Attempt, outcome: BaseException | int) -> None:
    """Record the outcome of an attempt :func:`before_request` allowed."""
    if not enabled():
        return
    if is_failure(outcome):
        _failed(attempt)
    else:
        _succeeded(attempt)


def abandon(attempt: Attempt) -> None:
    """The attempt ended before its request was sent (e.g. no concurrency slot): give the
    half-open probe, if it held it, to the next request."""
    if attempt.probe and enabled():
        probe_key = _keys(attempt.company_id)[2]
        cache = _cache()
        if cache.get(probe_key) == attempt.probe:
            cache.delete(probe_key)


def _succeeded(attempt: Attempt) -> None:
    company_id = attempt.company_id
    with _lock:
        view = _views.get(company_id)
        dirty = view is not None and (view.failures > 0 or view.open_until is not None)
    if not (dirty or attempt.probe):
        return
    _cache().delete_many(list(_keys(company_id)))
    with _lock:
        _views[company_id] = _View(read_at=time.monotonic())
    if attempt.probe or (view is not None and view.open_until is not None):
        logger.info("Circuit of Intacct company %s closed: it answers again", company_id)
        signals.send_now(signals.company_circuit_closed, company_id=company_id)


def _failed(attempt: Attempt) -> None:
    company_id = attempt.company_id
    cache = _cache()
    failures_key, open_key, probe_key = _keys(company_id)
    if attempt.probe:
        view = _read(company_id, force=True)
        _open(company_id, cache, open_key, view.trips + 1, view.failures)
        cache.delete(probe_key)
        return
    ttl = int(app_settings.CIRCUIT_OPEN_MAX) + 60
    cache.add(failures_key, 0, timeout=ttl)
    try:
        failures = int(cache.incr(failures_key))
    except ValueError:  # expired between add and incr
        cache.add(failures_key, 1, timeout=ttl)
        failures = 1
    with _lock:
        view = _views.setdefault(company_id, _View())
        view.failures = failures
        already_open = view.open_until is not None
    if failures >= app_settings.CIRCUIT_FAILURE_THRESHOLD and not already_open:
        view = _read(company_id, force=True)
        if view.open_until is None:
            _open(company_id, cache, open_key, 0, failures)


def _open(company_id: str, cache: BaseCache, open_key: str, trips: int, failures: int) -> None:
    seconds = min(
        float(app_settings.CIRCUIT_OPEN_SECONDS) * 2**trips,
        float(app_settings.CIRCUIT_OPEN_MAX),
    )
    until = clock() + seconds
    cache.set(open_key, f"{until:.3f} {trips}", timeout=int(app_settings.CIRCUIT_OPEN_MAX) + 60)
    with _lock:
        view = _views.setdefault(company_id, _View())
        view.open_until, view.trips, view.read_at = until, trips, time.monotonic()
    logger.warning(
        "Circuit of Intacct company %s opened for %.0f s after %s failed requests "
        "(timeouts or gateway errors)%s",
        company_id,
        seconds,
        failures,
        "; the probe failed too" if trips else "",
    )
    signals.send_now(
        signals.company_circuit_opened, company_id=company_id, open_seconds=seconds, trips=trips
    )


def state(company_id: str) -> dict[str, Any]:
    """The company's breaker as the shared cache holds it now: ``{"state": "closed" |
    "open" | "half-open", "failures": n, "open_for": seconds or 0}`` (admin and tests)."""
    view = _read(company_id, force=True)
    if view.open_until is None:
        return {"state": "closed", "failures": view.failures, "open_for": 0.0}
    left = view.open_until - clock()
    return {
        "state": "open" if left > 0 else "half-open",
        "failures": view.failures,
        "open_for": max(left, 0.0),
    }


def reset(company_id: str | None = None) -> None:
    """Close breakers: one company's, or every one this process has seen (between tests)."""
    with _lock:
        companies = [company_id] if company_id is not None else list(_views)
        for company in companies:
            _views.pop(company, None)
    if companies and enabled():
        _cache().delete_many([key for company in companies for key in _keys(company)])
