"""Runs whose task message was lost are sent again, and a run is never executed by two
live deliveries at once (issue 12, proof 4): the run lock (a PostgreSQL advisory lock held
by the process executing the run) and ``schedules.redispatch_lost_runs``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from unittest import mock

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from intacct_connect import scheduling
from intacct_connect.models import JobRun
from intacct_connect.scheduling import runs, schedules
from tests import factories
from tests.helpers import Recorder

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def sent() -> Iterator[list[list[Any]]]:
    """The argument lists of the ``run_job`` messages published."""
    out: list[list[Any]] = []
    with mock.patch(
        "intacct_connect.scheduling.common._publish",
        side_effect=lambda name, args: out.extend(args),
    ):
        yield out


@pytest.fixture
def other_session() -> Iterator[psycopg.Connection[Any]]:
    """A second database session (another worker's), to hold run locks."""
    db = connection.settings_dict
    with psycopg.connect(
        dbname=db["NAME"],
        user=db["USER"],
        host=db["HOST"] or None,
        port=db["PORT"] or None,
        password=db["PASSWORD"] or None,
        autocommit=True,
    ) as conn:
        yield conn


def hold_lock(session: psycopg.Connection[Any], run: JobRun) -> None:
    session.execute("SELECT pg_advisory_lock(%s)", [schedules.RUN_LOCK_BASE + run.pk])


def make_run(count_job: Recorder, age: float, **fields: Any) -> JobRun:
    return JobRun.objects.create(
        job="count_job",
        connection=factories.connection(company=f"CO-{JobRun.objects.count()}"),
        queued_at=timezone.now() - timedelta(seconds=age),
        **fields,
    )


def test_queued_run_that_never_started_is_sent_again_once_per_delay(
    count_job: Recorder, sent: list[list[Any]]
) -> None:
    delay = schedules.RUN_REDISPATCH_SECONDS
    lost = make_run(count_job, delay + 5)
    young = make_run(count_job, delay - 5)  # its message may still be in the queue
    make_run(count_job, delay + 5, started_at=timezone.now(), attempt=1)  # retry countdown
    assert schedules.redispatch_lost_runs() == 1
    assert sent == [[lost.pk]]
    assert schedules.redispatch_lost_runs() == 0  # not again before the delay
    later = timezone.now() + timedelta(seconds=delay + 1)
    assert schedules.redispatch_lost_runs(now=later) == 2  # the young one is old by then
    assert sent == [[lost.pk], [lost.pk], [young.pk]]
    scheduling.execute_run(lost.pk, task_id="again", attempt=1)
    lost.refresh_from_db()
    assert lost.status == "succeeded"
    assert len(count_job.calls) == 1
    assert schedules.redispatch_lost_runs(now=later + timedelta(seconds=delay + 1)) == 1


def test_running_run_whose_worker_is_gone_is_sent_again_once(
    count_job: Recorder, sent: list[list[Any]], other_session: psycopg.Connection[Any]
) -> None:
    now = timezone.now()
    alive = make_run(
        count_job, 120, status="running", started_at=now, lease_until=now + timedelta(seconds=600)
    )
    gone = make_run(
        count_job, 120, status="running", started_at=now, lease_until=now + timedelta(seconds=600)
    )
    hold_lock(other_session, alive)
    assert schedules.redispatch_lost_runs() == 1
    assert sent == [[gone.pk]]
    gone.refresh_from_db()
    assert gone.lease_until is not None
    assert gone.lease_until < now + timedelta(seconds=schedules.RUN_REDISPATCH_SECONDS + 5)
    assert schedules.redispatch_lost_runs() == 0  # once; then the lease expires
    scheduling.execute_run(gone.pk, task_id="again", attempt=1)
    gone.refresh_from_db()
    assert gone.status == "succeeded"
    assert gone.delivery_count == 1


def test_delivery_of_a_run_another_live_worker_executes_does_nothing(
    count_job: Recorder, other_session: psycopg.Connection[Any]
) -> None:
    now = timezone.now()
    run = make_run(
        count_job,
        5,
        status="running",
        started_at=now,
        lease_until=now + timedelta(seconds=600),
        attempt=1,
        delivery_count=1,
        task_id="first",
    )
    hold_lock(other_session, run)
    with mock.patch.object(runs, "RUN_LOCK_WAIT", 0.2):
        scheduling.execute_run(run.pk, task_id="second", attempt=1)
    run.refresh_from_db()
    assert (run.status, run.delivery_count, run.task_id) == ("running", 1, "first")
    assert count_job.calls == []
    other_session.execute("SELECT pg_advisory_unlock_all()")  # the first worker dies
    scheduling.execute_run(run.pk, task_id="second", attempt=1)
    run.refresh_from_db()
    assert (run.status, run.delivery_count) == ("succeeded", 2)
    assert len(count_job.calls) == 1


def test_dispatcher_sends_lost_messages_again(count_job: Recorder, sent: list[list[Any]]) -> None:
    lost = make_run(count_job, schedules.RUN_REDISPATCH_SECONDS + 5)
    scheduling.dispatch_due_schedules()
    assert [lost.pk] in sent
