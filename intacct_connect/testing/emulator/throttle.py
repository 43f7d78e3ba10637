"""Throttling of the REST API per company: the concurrency limit (requests in flight) and the
per-minute limit, answered with 429 GW-0010 and the ``X-IA-*`` rate-limit headers; a request
within the limits gets the headers saying what is left."""

from __future__ import annotations

import math

from werkzeug.wrappers import Response

from intacct_connect.testing.emulator.responses import gateway_error
from intacct_connect.testing.emulator.state import State


def throttle_response(
    retry_after: int,
    concurrency_limit: int | None,
    minute: tuple[int, int] | None,
    reason: str = "",
) -> Response:
    headers = {"Retry-After": str(retry_after)}
    if concurrency_limit:
        headers["X-IA-Throttle-Limit"] = str(concurrency_limit)
        headers["X-IA-Throttle-Limit-Remaining"] = "0"
        headers["X-IA-Throttle-Limit-RetryAfter"] = str(retry_after)
    if minute is not None:
        limit, reset_in = minute
        headers["X-IA-Minute-Rate-Limit"] = str(limit)
        headers["X-IA-Minute-Rate-Limit-Remaining"] = "0"
        headers["X-IA-Minute-Rate-Limit-Retry-After"] = str(reset_in)
        headers["Retry-After"] = str(max(retry_after, reset_in))
    return gateway_error(429, "GW-0010", reason or "Rate limit exceeded.", headers)


def check_throttle(
    state: State, company: str, inflight: int
) -> tuple[Response | None, dict[str, str]]:
    """(a 429 response or None, headers to add to a successful response)."""
    config = state.config
    retry_after = int(config.retry_after)
    concurrency_limit = config.concurrency_limit
    per_minute = config.per_minute_limit
    headers: dict[str, str] = {}
    if concurrency_limit is not None:
        if inflight > concurrency_limit:
            state.count_throttled(company)
            return (
                throttle_response(
                    retry_after,
                    concurrency_limit,
                    None,
                    f"More than {concurrency_limit} concurrent requests for this company.",
                ),
                headers,
            )
        headers["X-IA-Throttle-Limit"] = str(concurrency_limit)
        headers["X-IA-Throttle-Limit-Remaining"] = str(max(concurrency_limit - inflight, 0))
    if per_minute is not None:
        now = state.now()
        used = state.take_minute_slot(company, per_minute, now)
        if used is None:
            reset_in = max(1, math.ceil((int(now // 60) + 1) * 60 - now))
            return (
                throttle_response(
                    retry_after,
                    concurrency_limit,
                    (per_minute, reset_in),
                    f"More than {per_minute} requests this minute for this company.",
                ),
                headers,
            )
        headers["X-IA-Minute-Rate-Limit"] = str(per_minute)
        headers["X-IA-Minute-Rate-Limit-Remaining"] = str(per_minute - used)
    return None, headers
