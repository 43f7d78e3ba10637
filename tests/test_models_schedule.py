"""The rules of one job schedule, on the model: ``Schedule.clean()`` and
``Schedule.next_run_after()`` (the dispatcher and the admin use them; see test_scheduling
and test_admin_jobs)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError

from intacct_connect.models import MIN_INTERVAL_SECONDS, Schedule, ScheduleScope
from tests import factories

pytestmark = pytest.mark.django_db


def test_clean_reports_each_problem_by_field() -> None:
    conn = factories.connection()
    bad = Schedule(name="x", job="nope", scope=ScheduleScope.CONNECTION, interval_seconds=10)
    with pytest.raises(ValidationError) as err:
        bad.clean()
    fields = err.value.message_dict
    assert set(fields) == {"interval_seconds", "connection"}  # the job is the registry's
    assert fields["interval_seconds"] == [
        f"The shortest interval is {MIN_INTERVAL_SECONDS} seconds."
    ]
    assert "Choose the connection" in fields["connection"][0]
    both = Schedule(name="x", job="j", connection=conn, interval_seconds=60, crontab="* * * * *")
    with pytest.raises(ValidationError, match="not both"):
        both.clean()
    neither = Schedule(name="x", job="j", connection=conn)
    with pytest.raises(ValidationError, match="not both"):
        neither.clean()
    with pytest.raises(ValidationError, match="Invalid crontab") as err:
        Schedule(name="x", job="j", connection=conn, crontab="61 * * * *").clean()
    assert list(err.value.message_dict) == ["crontab"]
    Schedule(name="x", job="j", connection=conn, crontab="*/5 * * * *").clean()
    Schedule(name="x", job="j", connection=conn, interval_seconds=60).clean()


@pytest.mark.parametrize(
    ("scope", "connection", "tenant", "errors"),
    [
        (ScheduleScope.CONNECTION, True, "t", {"tenant_key": "Leave the tenant empty"}),
        (ScheduleScope.TENANT, False, "", {"tenant_key": "Enter the tenant"}),
        (ScheduleScope.TENANT, True, "t", {"connection": "Leave the connection empty"}),
        (ScheduleScope.SITE, False, "t", {"scope": "neither a connection nor a tenant"}),
        (ScheduleScope.SITE, True, "", {"scope": "neither a connection nor a tenant"}),
        ("planet", False, "", {"scope": "Unknown scope 'planet'."}),
    ],
)
def test_clean_checks_the_target_of_each_scope(
    scope: str, connection: bool, tenant: str, errors: dict[str, str]
) -> None:
    schedule = Schedule(
        name="x",
        job="j",
        scope=scope,
        connection=factories.connection() if connection else None,
        tenant_key=tenant,
        interval_seconds=60,
    )
    with pytest.raises(ValidationError) as err:
        schedule.clean()
    found = err.value.message_dict
    assert set(found) == set(errors)
    for field, text in errors.items():
        assert text in found[field][0]
    Schedule(
        name="x", job="j", scope=ScheduleScope.TENANT, tenant_key="t", crontab="0 * * * *"
    ).clean()
    Schedule(name="x", job="j", scope=ScheduleScope.SITE, crontab="0 * * * *").clean()


def test_an_interval_schedule_keeps_its_phase_and_does_not_catch_up() -> None:
    now = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    s = Schedule(name="x", job="j", interval_seconds=600)
    assert s.next_run_after(now) == now + timedelta(seconds=600)
    assert s.next_run_after(now, previous=now - timedelta(hours=5)) == now + timedelta(seconds=600)
    assert s.next_run_after(now, previous=now - timedelta(seconds=100)) == now + timedelta(
        seconds=500
    )  # keeps its phase


def test_a_crontab_schedule_runs_at_its_next_match() -> None:
    now = datetime(2026, 3, 1, 10, 7, 30, tzinfo=UTC)
    s = Schedule(name="x", job="j", crontab="*/15 * * * *")
    assert s.next_run_after(now) == datetime(2026, 3, 1, 10, 15, tzinfo=UTC)
    assert s.next_run_after(now, previous=now) == datetime(2026, 3, 1, 10, 15, tzinfo=UTC)
    with pytest.raises(ValidationError, match="Invalid crontab"):
        Schedule(name="x", job="j", crontab="61 * * * *").next_run_after(now)


def test_an_interval_below_the_floor_runs_at_the_floor() -> None:
    """Saved without clean(): the dispatcher still never runs it more than once a minute."""
    now = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    s = Schedule(name="x", job="j", interval_seconds=5)
    assert s.next_run_after(now) == now + timedelta(seconds=MIN_INTERVAL_SECONDS)
