"""intacct_connect.api_retry: the retry policy's decisions and delays, Retry-After parsing."""

from __future__ import annotations

import email.utils
import time
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from intacct_connect import api_retry, client
from intacct_connect.api_retry import RetryPolicy, retry_after


def test_backoff_is_exponential_with_full_jitter_and_capped(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The policy's delays: uniform(0, min(MAX, BASE * 2**attempt)); a server-given wait
    plus up to min(1, BASE) of jitter."""
    settings.INTACCT_CONNECT = {
        **settings.INTACCT_CONNECT,
        "RETRY_BACKOFF": 0.5,
        "RETRY_BACKOFF_MAX": 3.0,
    }
    monkeypatch.setattr("intacct_connect.api_retry.random.uniform", lambda low, high: high)
    policy = RetryPolicy()
    assert [policy.delay(n, None) for n in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert policy.delay(0, 7.0) == 7.5


def test_the_policy_allows_max_retries_and_waits_up_to_the_cap(settings: Any) -> None:
    settings.INTACCT_CONNECT = {
        **settings.INTACCT_CONNECT,
        "MAX_RETRIES": 2,
        "RETRY_AFTER_MAX": 30,
    }
    policy = RetryPolicy()
    assert [policy.allows(n, None) for n in range(3)] == [True, True, False]
    assert policy.allows(0, 30.0)
    assert not policy.allows(0, 30.5)  # the server asks for longer than the cap


def test_the_default_policy_sleeps_for_real_and_is_the_clients() -> None:
    assert api_retry.default_retry_policy.sleep is time.sleep
    assert api_retry.default_retry_policy.clock is time.monotonic
    assert client.default_retry_policy is api_retry.default_retry_policy
    assert client.RetryPolicy is RetryPolicy


def test_retry_after_takes_the_longest_wait_of_any_header() -> None:
    assert retry_after({}) is None
    assert retry_after({"Retry-After": "2"}) == 2.0
    assert retry_after({"Retry-After": "2", "X-IA-Throttle-Limit-RetryAfter": "4"}) == 4.0
    assert retry_after({"Retry-After": "-3"}) == 0.0
    assert retry_after({"Retry-After": "soon"}) is None


@time_machine.travel("2026-03-01 10:00:00+00:00", tick=False)
def test_retry_after_reads_an_http_date() -> None:
    when = timezone.now() + timedelta(seconds=90)
    assert retry_after({"Retry-After": email.utils.format_datetime(when, usegmt=True)}) == 90.0
    past = timezone.now() - timedelta(seconds=90)
    assert retry_after({"Retry-After": email.utils.format_datetime(past, usegmt=True)}) == 0.0
