"""The authorization-request table stays bounded: connects are rate-limited per user (or
browser session) by ``CONNECT_RATE_LIMIT`` within ``STATE_TTL``, and used or expired
requests are purged hourly by the ``intacct_connect.purge_authorization_requests`` task."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import AbstractBaseUser
from django.test import Client
from django.utils import timezone

from intacct_connect import flows, tasks
from intacct_connect.celery import beat_schedule, task_routes
from intacct_connect.exceptions import TooManyConnectAttempts
from intacct_connect.models import OAuthFlow

pytestmark = pytest.mark.django_db

CONNECT = "/intacct/connect/"


@pytest.fixture
def limited(settings: Any) -> int:
    settings.INTACCT_CONNECT = {
        **settings.INTACCT_CONNECT,
        "CONNECT_RATE_LIMIT": 3,
        "STATE_TTL": 600,
    }
    return 3


@pytest.fixture
def alice(django_user_model: Any) -> AbstractBaseUser:
    return django_user_model.objects.create_user("alice", password="pw")  # type: ignore[no-any-return]


def start(user: Any, session: str = "session-1") -> Any:
    return flows.start_connect(session_key=session, user=user, tenant_key="user:1")


def test_a_user_may_start_the_limit_then_is_told_when_to_retry(
    alice: AbstractBaseUser, limited: int
) -> None:
    with time_machine.travel("2026-12-03 10:00:00+00:00", tick=False):
        for _ in range(limited):
            start(alice)
    with time_machine.travel("2026-12-03 10:04:00+00:00", tick=False):
        with pytest.raises(TooManyConnectAttempts) as caught:
            start(alice, session="another-browser")  # the limit is per user, not per session
    assert caught.value.status_code == 429
    assert caught.value.code == "too_many_attempts"
    assert caught.value.retry_after == 360  # the oldest of the three leaves the window at 10:10
    assert "try again in 360 seconds" in str(caught.value)
    assert OAuthFlow.objects.count() == limited  # nothing written for the refused attempt
    with time_machine.travel("2026-12-03 10:10:01+00:00", tick=False):
        start(alice)  # the window moved on
    assert OAuthFlow.objects.count() == limited + 1


def test_used_requests_still_count(alice: AbstractBaseUser, limited: int) -> None:
    """Consuming a request does not free a place: the limit is a rate, so a script that
    completes flows in a loop is held back too."""
    from urllib.parse import parse_qs, urlsplit

    for _ in range(limited):
        state = parse_qs(urlsplit(start(alice).authorize_url).query)["state"][0]
        flows.consume_flow(state=state, session_key="session-1", user=alice, tenant_key="user:1")
    with pytest.raises(TooManyConnectAttempts):
        start(alice)


def test_signed_out_requests_are_counted_per_browser_session(limited: int) -> None:
    for _ in range(limited):
        start(None, session="browser-a")
    with pytest.raises(TooManyConnectAttempts):
        start(None, session="browser-a")
    start(None, session="browser-b")  # another browser is not held back


def test_zero_turns_the_limit_off(alice: AbstractBaseUser, settings: Any) -> None:
    settings.INTACCT_CONNECT = {**settings.INTACCT_CONNECT, "CONNECT_RATE_LIMIT": 0}
    for _ in range(25):
        start(alice)
    assert OAuthFlow.objects.count() == 25


def test_connect_view_answers_429_with_retry_after(
    alice: AbstractBaseUser, limited: int, intacct_connect_settings: Any
) -> None:
    client = Client()
    client.force_login(alice)  # type: ignore[arg-type]
    for _ in range(limited):
        assert client.post(CONNECT).status_code == 303
    response = client.post(CONNECT)
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 600
    body = response.content.decode()
    assert "too many times" in body
    assert f"try again in {response['Retry-After']} seconds" in body
    assert "Traceback" not in body
    assert "no-store" in response["Cache-Control"]
    assert OAuthFlow.objects.count() == limited
    assert intacct_connect_settings.token_requests() == 0


def test_purge_task_deletes_used_and_expired_requests(alice: AbstractBaseUser) -> None:
    from urllib.parse import parse_qs, urlsplit

    used = start(alice)
    state = parse_qs(urlsplit(used.authorize_url).query)["state"][0]
    flows.consume_flow(state=state, session_key="session-1", user=alice, tenant_key="user:1")
    with time_machine.travel(timezone.now() - timedelta(hours=1), tick=False):
        start(alice)  # expired by now
    pending = start(alice)
    assert tasks.purge_authorization_requests.apply().get() == 2
    assert list(OAuthFlow.objects.values_list("pk", flat=True)) == [pending.flow_id]


def test_purge_task_is_in_the_beat_schedule_on_the_jobs_queue() -> None:
    entry = beat_schedule["intacct-purge-authorization-requests"]
    assert entry["task"] == tasks.purge_authorization_requests.name
    assert entry["schedule"] == 3600.0
    assert task_routes[entry["task"]] == {"queue": "intacct.jobs"}
