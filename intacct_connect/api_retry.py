"""When the API client retries a call and how long it waits first.

:class:`RetryPolicy` answers two questions for :class:`~intacct_connect.client.IntacctClient`:
may a call be retried once more (``MAX_RETRIES``, and a server-given wait no longer than
``RETRY_AFTER_MAX``), and how long to wait (exponential backoff with full jitter, or the
server's wait plus a little jitter). It waits with its ``sleep`` and times calls with its
``clock``, so tests pass fakes and nothing sleeps for real. :func:`retry_after` reads the
wait Intacct asks for from its ``Retry-After`` style headers. Which calls are retryable is
the client's decision; this module holds no state besides the shared default policy.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC

from django.utils import timezone

from intacct_connect.conf import app_settings

#: Statuses a retryable call is retried on. Intacct's gateway answers every 5xx with
#: GW-0001, so a 500 is treated as transient like 502-504.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
#: Headers carrying a wait time, in the order they are consulted (all are honoured: max).
RETRY_AFTER_HEADERS = (
    "Retry-After",
    "X-IA-Throttle-Limit-RetryAfter",
    "X-IA-Throttle-Limit-Retry-After",
    "X-IA-Minute-Rate-Limit-Retry-After",
    "X-IA-Hour-Rate-Limit-Retry-After",
    "X-IA-TENANT-Throttle-Limit-Retry-After",
)


@dataclass
class RetryPolicy:
    """How long the client waits before each retry, and the ``sleep`` and ``clock`` it
    waits and measures with (tests pass fakes: nothing sleeps for real)."""

    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic

    @property
    def max_retries(self) -> int:
        return max(0, app_settings.MAX_RETRIES)

    def allows(self, retries: int, wait: float | None) -> bool:
        """Whether a call that was retried ``retries`` times may be retried again, when
        the server asks for ``wait`` seconds (None: it did not say)."""
        return retries < self.max_retries and (wait is None or wait <= app_settings.RETRY_AFTER_MAX)

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with full jitter; a server-given wait plus a little jitter."""
        cap = min(
            app_settings.RETRY_BACKOFF_MAX,
            app_settings.RETRY_BACKOFF * (2**attempt),
        )
        delay = random.uniform(0, cap)  # noqa: S311 - full jitter
        if retry_after is not None:
            delay = retry_after + random.uniform(0, min(1.0, app_settings.RETRY_BACKOFF))  # noqa: S311
        return delay


#: The policy of every client created without ``sleep=`` or ``clock=`` (a test can swap
#: its ``sleep`` for all clients, including those made inside flows and tasks).
default_retry_policy = RetryPolicy()


def retry_after(headers: Mapping[str, str]) -> float | None:
    """The longest wait any of the Retry-After style headers asks for, in seconds (a
    number of seconds or an HTTP date); None when none of them says."""
    waits: list[float] = []
    for name in RETRY_AFTER_HEADERS:
        raw = headers.get(name)
        if raw is None:
            continue
        raw = str(raw).strip()
        try:
            waits.append(max(0.0, float(raw)))
            continue
        except ValueError:
            pass
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            continue
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        waits.append(max(0.0, (when - timezone.now()).total_seconds()))
    return max(waits) if waits else None
