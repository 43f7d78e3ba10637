"""Claiming due refreshes and schedules, fan-out, leases, delivery counting, parking."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

import tests.celery_app  # noqa: F401  (the suite's Celery app)
from intacct_connect import jobs, scheduling
from intacct_connect.exceptions import NeedsReauthorization, ServerError
from intacct_connect.models import (
    Connection,
    ConnectionStatus,
    JobRun,
    JobRunStatus,
    Schedule,
    ScheduleScope,
    TaskDelivery,
)
from intacct_connect.testing.emulator import EmulatorServer
from tests import factories
from tests.helpers import Recorder

pytestmark = pytest.mark.django_db


# --- proactive refresh ------------------------------------------------------------------


def test_claim_due_refreshes_claims_due_active_connections_once(
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    due = factories.connection(next_refresh_in=-10)
    factories.connection(company="LATER-CO", next_refresh_in=600)  # not due
    for status in (
        ConnectionStatus.NEEDS_REAUTH,
        ConnectionStatus.SUPERSEDED,
        ConnectionStatus.REVOKED,
    ):
        factories.connection(company=f"{status}-CO", status=status, next_refresh_in=-10)
    with django_capture_on_commit_callbacks() as callbacks:
        claimed = scheduling.claim_due_refreshes()
    assert claimed == [(due.pk, 1)]
    assert len(callbacks) == 1  # the enqueue waits for the commit
    due.refresh_from_db()
    assert due.next_refresh_at is not None
    assert due.next_refresh_at > timezone.now() + timedelta(
        seconds=scheduling.REFRESH_CLAIM_SECONDS - 5
    )
    assert scheduling.claim_due_refreshes() == []  # claimed once


def test_claim_due_refreshes_works_in_batches(
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    conns = [factories.connection(company=f"CO-{i}", next_refresh_in=-100 + i) for i in range(7)]
    with django_capture_on_commit_callbacks():
        first = scheduling.claim_due_refreshes(limit=3)
        second = scheduling.claim_due_refreshes(limit=3)
        third = scheduling.claim_due_refreshes(limit=3)
    ids = [pk for pk, _ in first + second + third]
    assert [len(first), len(second), len(third)] == [3, 3, 1]
    assert ids == [c.pk for c in conns]  # oldest due first, each exactly once


def test_dispatch_due_refreshes_drains_all_batches(
    settings: Any, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    settings.INTACCT_CONNECT = {**settings.INTACCT_CONNECT, "DISPATCH_BATCH_SIZE": 2}
    for i in range(5):
        factories.connection(company=f"CO-{i}", next_refresh_in=-1)
    with django_capture_on_commit_callbacks() as callbacks:
        assert scheduling.dispatch_due_refreshes() == 5
    assert len(callbacks) == 3  # one publish per batch (2 + 2 + 1)


def test_missing_next_refresh_is_scheduled_with_per_connection_jitter() -> None:
    conns = [factories.connection(company=f"CO-{i}", expires_in=3600) for i in range(40)]
    assert scheduling.schedule_missing_refreshes() == 40
    times = set()
    for conn in conns:
        conn.refresh_from_db()
        token = conn.token
        assert conn.next_refresh_at is not None
        lead = (token.expires_at - conn.next_refresh_at).total_seconds()
        assert 900 <= lead <= 900 + 300  # REFRESH_WINDOW + up to REFRESH_JITTER
        times.add(conn.next_refresh_at)
    assert len(times) > 30  # tokens issued together do not all refresh together


def test_idle_connection_is_refreshed_before_the_refresh_token_idles_out() -> None:
    now = timezone.now()
    due = scheduling.refresh_due_at(7, now + timedelta(days=30), now - timedelta(hours=1), now)
    assert now < due <= now + timedelta(hours=23)  # IDLE_REFRESH_AFTER = 24 h


def test_refresh_one_skips_unusable_and_missing_connections() -> None:
    conn = factories.connection(status=ConnectionStatus.NEEDS_REAUTH)
    assert scheduling.refresh_one(conn.pk).result == "skipped"
    assert scheduling.refresh_one(987654).result == "missing"


def test_failed_refreshes_back_off_exponentially() -> None:
    """Token endpoint unreachable (tests' dead URL): no status change, growing backoff."""
    conn = factories.connection(expires_in=60, next_refresh_in=-1)
    delays = []
    for _ in range(3):
        # The refresher's back-off (>= 60 s) outlasts the token path's short one (<= 60 s).
        Connection.objects.filter(pk=conn.pk).update(refresh_retry_at=None)
        before = timezone.now()
        outcome = scheduling.refresh_one(conn.pk, seen_version=1)
        assert outcome.result == "failed"
        conn.refresh_from_db()
        assert conn.next_refresh_at is not None
        delays.append((conn.next_refresh_at - before).total_seconds())
    assert conn.status == ConnectionStatus.ACTIVE
    assert conn.refresh_failures == 3
    assert 60 <= delays[0] < 120 <= delays[1] < 240 <= delays[2] < 480


def test_count_delivery_counts_per_task_id() -> None:
    assert scheduling.count_delivery("task-1", "x") == 1
    assert scheduling.count_delivery("task-1", "x") == 2
    assert scheduling.count_delivery("task-2", "x") == 1
    TaskDelivery.objects.filter(task_id="task-1").update(
        first_delivered_at=timezone.now() - timedelta(days=3)
    )
    assert scheduling.prune_deliveries() == 1


# --- schedules --------------------------------------------------------------------------


def test_dispatch_fans_out_per_scope_and_records_skips(
    count_job: Recorder, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    a1 = factories.connection(tenant="a", company="A1")
    a2 = factories.connection(tenant="a", company="A2")
    a3 = factories.connection(
        tenant="a", company="A3", status=ConnectionStatus.NEEDS_REAUTH, last_error_code="x1"
    )
    factories.connection(tenant="a", company="A4", status=ConnectionStatus.REVOKED)  # not listed
    a5 = factories.connection(tenant="a", company="A5", status=ConnectionStatus.REFRESH_IN_DOUBT)
    b1 = factories.connection(tenant="b")
    s_conn = factories.schedule(connection=b1)
    s_tenant = factories.schedule(scope=ScheduleScope.TENANT, tenant="a")
    s_site = factories.schedule(scope=ScheduleScope.SITE, interval=None, crontab="*/5 * * * *")
    factories.schedule(connection=a1, enabled=False)  # paused
    factories.schedule(connection=a1, due=False)  # not due
    with django_capture_on_commit_callbacks() as callbacks:
        queued = scheduling.dispatch_due_schedules()
    assert len(callbacks) == 1
    runs = JobRun.objects.all()
    by_schedule = {
        s.pk: sorted((r.connection_id, r.status) for r in runs if r.schedule_id == s.pk)
        for s in (s_conn, s_tenant, s_site)
    }
    assert by_schedule[s_conn.pk] == [(b1.pk, "queued")]
    assert by_schedule[s_tenant.pk] == [
        (a1.pk, "queued"),
        (a2.pk, "queued"),
        (a3.pk, "skipped"),
        (a5.pk, "skipped"),
    ]
    # the site schedule overlaps the tenant one for the same job: skipped as overlap
    site = {r.connection_id: r for r in runs if r.schedule_id == s_site.pk}
    assert set(site) == {a1.pk, a2.pk, a3.pk, a5.pk, b1.pk}
    assert all(r.status == "skipped" for r in site.values())
    assert site[a1.pk].error_code == "overlap"
    assert queued == 3
    skipped = JobRun.objects.get(schedule=s_tenant, connection=a3)
    assert skipped.error_code == "needs_reauth"
    assert "reconnect" in skipped.error_message
    assert "x1" in skipped.error_message
    in_doubt = JobRun.objects.get(schedule=s_tenant, connection=a5)
    assert (in_doubt.status, in_doubt.error_code) == ("skipped", "refresh_in_doubt")
    assert "try its stored refresh token once" in in_doubt.error_message
    # schedules advanced in the same transaction: a second dispatch claims nothing
    s_conn.refresh_from_db()
    assert s_conn.next_run_at is not None
    assert s_conn.next_run_at > timezone.now() + timedelta(seconds=250)
    assert s_conn.last_run_at is not None
    with django_capture_on_commit_callbacks():
        assert scheduling.dispatch_due_schedules() == 0
    assert JobRun.objects.count() == len(runs)


def test_connection_scope_records_skip_for_revoked_connection(
    count_job: Recorder, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    conn = factories.connection(status=ConnectionStatus.REVOKED)
    factories.schedule(connection=conn)
    with django_capture_on_commit_callbacks():
        assert scheduling.dispatch_due_schedules() == 0
    run = JobRun.objects.get()
    assert (run.status, run.error_code) == ("skipped", "revoked")


def test_unscheduled_schedule_gets_a_first_run(count_job: Recorder) -> None:
    s = factories.schedule(connection=factories.connection(), interval=120)
    Schedule.objects.filter(pk=s.pk).update(next_run_at=None)
    assert scheduling.schedule_unscheduled() == 1
    s.refresh_from_db()
    assert s.next_run_at is not None


def test_stale_queued_run_is_failed_as_lost_and_replaced(
    count_job: Recorder, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    conn = factories.connection()
    s = factories.schedule(connection=conn)
    old = JobRun.objects.create(
        job="count_job",
        connection=conn,
        schedule=s,
        queued_at=timezone.now() - timedelta(seconds=scheduling.QUEUED_RUN_STALE_SECONDS + 5),
    )
    with django_capture_on_commit_callbacks():
        assert scheduling.dispatch_due_schedules() == 1
    old.refresh_from_db()
    assert (old.status, old.error_code) == ("failed", "lost")


def test_pause_resume_and_run_now(
    count_job: Recorder, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    conn = factories.connection()
    factories.schedule(connection=conn, due=False)
    qs = Schedule.objects.all()
    assert scheduling.pause_schedules(qs) == 1
    assert scheduling.pause_schedules(qs) == 0
    assert scheduling.resume_schedules(qs) == 1
    s = qs.get()
    assert s.enabled
    assert s.next_run_at is not None
    assert s.next_run_at > timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        assert scheduling.run_schedules_now(qs) == 1
    run = JobRun.objects.get()
    assert (run.trigger, run.status, run.records_processed) == ("manual", "succeeded", 3)
    s.refresh_from_db()
    assert s.next_run_at is not None
    assert s.next_run_at > timezone.now()  # run now does not move the schedule


# --- executing runs ---------------------------------------------------------------------


def _queued_run(conn: Connection | None = None, job: str = "count_job") -> JobRun:
    conn = conn or factories.connection(company=f"RUN-{JobRun.objects.count()}")
    return JobRun.objects.create(job=job, connection=conn, params={"a": 1})


def test_execute_run_success_records_everything(count_job: Recorder) -> None:
    run = _queued_run()
    done = scheduling.execute_run(run.pk, task_id="t-1", attempt=1)
    assert done is not None
    assert (done.status, done.records_processed, done.attempt, done.delivery_count) == (
        "succeeded",
        3,
        1,
        1,
    )
    assert done.started_at is not None
    assert done.finished_at is not None
    assert done.started_at <= done.finished_at
    assert done.lease_until is None
    assert done.task_id == "t-1"
    assert count_job.calls == [(run.connection_id, run.pk, {"a": 1})]
    # a duplicate delivery of a finished run does nothing
    again = scheduling.execute_run(run.pk, task_id="t-1")
    assert again is not None
    assert again.status == "succeeded"
    assert len(count_job.calls) == 1


def test_job_error_fails_run_without_retry(count_job: Recorder) -> None:
    count_job.raise_ = jobs.JobError("bad data", code="bad_data")
    run = scheduling.execute_run(_queued_run().pk, final_attempt=False)
    assert run is not None
    assert (run.status, run.error_code, run.error_message) == ("failed", "bad_data", "bad data")


def test_transient_error_requeues_for_retry_then_fails_on_last_attempt(count_job: Recorder) -> None:
    count_job.raise_ = ServerError("Intacct is down", status_code=503)
    run = _queued_run()
    with pytest.raises(scheduling.RetryRun):
        scheduling.execute_run(run.pk, attempt=1, final_attempt=False)
    run.refresh_from_db()
    assert (run.status, run.attempt, run.lease_until) == ("queued", 1, None)
    assert "retrying" in run.error_message
    done = scheduling.execute_run(run.pk, attempt=2, final_attempt=True)
    assert done is not None
    assert (done.status, done.attempt, done.delivery_count) == ("failed", 2, 1)
    assert "gave up after attempt 2" in done.error_message


def test_needs_reauth_during_run_is_recorded_as_skipped(count_job: Recorder) -> None:
    count_job.raise_ = NeedsReauthorization("reconnect me", connection_id=1)
    run = scheduling.execute_run(_queued_run().pk, final_attempt=False)
    assert run is not None
    assert run.status == "skipped"


def test_connection_needing_reauth_at_start_is_skipped_with_reason(count_job: Recorder) -> None:
    conn = factories.connection()
    run = _queued_run(conn)
    Connection.objects.filter(pk=conn.pk).update(status=ConnectionStatus.NEEDS_REAUTH)
    done = scheduling.execute_run(run.pk)
    assert done is not None
    assert (done.status, done.error_code) == ("skipped", "needs_reauth")
    assert count_job.calls == []


def test_unknown_job_fails_the_run() -> None:
    run = scheduling.execute_run(_queued_run(job="no_such_job").pk)
    assert run is not None
    assert (run.status, run.error_code) == ("failed", "unknown_job")


def test_run_killed_repeatedly_is_parked_after_max_deliveries(count_job: Recorder) -> None:
    """A delivery that claims the run and dies (no settle) is what a killed worker leaves."""
    run = _queued_run()
    for delivery in (1, 2, 3):
        claim = scheduling._start(run.pk, "task-x", 1)  # worker dies right after
        assert claim is not None
        assert claim.delivery == delivery
    done = scheduling.execute_run(run.pk, task_id="task-x", attempt=1)
    assert done is not None
    assert (done.status, done.error_code, done.delivery_count) == ("parked", "max_deliveries", 4)
    assert count_job.calls == []
    assert "MAX_DELIVERIES=3" in done.error_message


def test_a_retry_attempt_starts_its_own_delivery_count(count_job: Recorder) -> None:
    run = _queued_run()
    for _ in range(3):
        scheduling._start(run.pk, "t", 1)
    done = scheduling.execute_run(run.pk, attempt=2)
    assert done is not None
    assert (done.status, done.attempt, done.delivery_count) == ("succeeded", 2, 1)


def test_no_overlap_on_the_same_connection(count_job: Recorder) -> None:
    conn = factories.connection()
    first = _queued_run(conn)
    second = _queued_run(conn)
    assert scheduling._start(first.pk, "a", 1) is not None  # running, live lease
    done = scheduling.execute_run(second.pk)
    assert done is not None
    assert (done.status, done.error_code) == ("skipped", "overlap")
    assert count_job.calls == []
    # another job on the same connection is not blocked
    jobs.register("other_job")(lambda client, ctx: 0)
    try:
        other = scheduling.execute_run(_queued_run(conn, job="other_job").pk)
        assert other is not None
        assert other.status == "succeeded"
    finally:
        jobs.unregister("other_job")


def test_expired_lease_is_taken_over(count_job: Recorder) -> None:
    conn = factories.connection()
    first = _queued_run(conn)
    scheduling._start(first.pk, "a", 1)
    JobRun.objects.filter(pk=first.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    second = scheduling.execute_run(_queued_run(conn).pk)
    assert second is not None
    assert second.status == "succeeded"
    first.refresh_from_db()
    assert (first.status, first.error_code) == ("failed", "lease_expired")


def test_taken_over_delivery_cannot_commit_its_results(count_job: Recorder) -> None:
    """Fencing: a delivery whose run was taken over discards its writes."""
    run = _queued_run()
    stale = scheduling._start(run.pk, "t", 1)
    assert stale is not None
    scheduling._start(run.pk, "t", 1)  # redelivered: delivery 2 owns the run now
    written = []
    ctx = jobs.JobContext(
        run=stale.run, connection=stale.run.connection, params={}, cursor_name="c"
    )
    ctx.on_success(lambda: written.append(1))
    assert scheduling._settle(stale, JobRunStatus.SUCCEEDED, ctx=ctx) is False
    assert written == []
    run.refresh_from_db()
    assert run.status == "running"


def test_enqueue_run_validates_input(
    count_job: Recorder, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    conn = factories.connection()
    with pytest.raises(jobs.UnknownJob):
        scheduling.enqueue_run("nope", conn.pk)
    with pytest.raises(ValidationError):
        scheduling.enqueue_run("count_job", conn.pk, params=[1])  # type: ignore[arg-type]
    with django_capture_on_commit_callbacks(execute=True):
        run = scheduling.enqueue_run("count_job", conn.pk, {"x": 2})
    run.refresh_from_db()
    assert run.status == "succeeded"
    assert count_job.calls[0][2] == {"x": 2}


# --- proactive refresh through the emulator ----------------------------------------------


def test_proactive_refresh_end_to_end(
    intacct_connect_settings: EmulatorServer, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    emulator = intacct_connect_settings
    conn = factories.connection(emulator, expires_in=600, next_refresh_in=-1)
    fresh = factories.connection(emulator, user="jane", next_refresh_in=3000)
    with django_capture_on_commit_callbacks(execute=True):
        assert scheduling.dispatch_due_refreshes() == 1
    assert emulator.token_requests(grant_type="refresh_token") == 1
    conn.refresh_from_db()
    token = conn.token
    assert token.version == 2
    assert token.refresh_count == 1
    assert conn.refresh_failures == 0
    assert conn.next_refresh_at is not None
    lead = (token.expires_at - conn.next_refresh_at).total_seconds()
    assert 900 <= lead <= 1200  # REFRESH_WINDOW + jitter before the new expiry
    # a second dispatcher round finds nothing due
    with django_capture_on_commit_callbacks(execute=True):
        assert scheduling.dispatch_due_refreshes() == 0
    assert emulator.token_requests(grant_type="refresh_token") == 1
    fresh.refresh_from_db()
    assert fresh.token.version == 1


def test_refresh_seen_by_dispatcher_but_done_elsewhere_is_not_repeated(
    intacct_connect_settings: EmulatorServer,
) -> None:
    emulator = intacct_connect_settings
    conn = factories.connection(emulator, expires_in=600)
    # the dispatcher saw version 0; the stored token is already version 1
    assert scheduling.refresh_one(conn.pk, seen_version=0).result == "ok"
    assert emulator.token_requests(grant_type="refresh_token") == 0


def test_invalid_grant_marks_needs_reauth_and_stops_dispatching(
    intacct_connect_settings: EmulatorServer, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    emulator = intacct_connect_settings
    conn = factories.connection(emulator, expires_in=600, next_refresh_in=-1)
    emulator.revoke_grants("DEMO-CO")
    with django_capture_on_commit_callbacks(execute=True):
        assert scheduling.dispatch_due_refreshes() == 1
    conn.refresh_from_db()
    assert conn.status == ConnectionStatus.NEEDS_REAUTH
    Connection.objects.filter(pk=conn.pk).update(next_refresh_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        assert scheduling.dispatch_due_refreshes() == 0  # skipped from now on
    assert emulator.token_requests(grant_type="refresh_token") == 1


def test_invalid_client_changes_no_connection_and_pauses_the_dispatcher(
    intacct_connect_settings: EmulatorServer, settings: Any
) -> None:
    """invalid_client is the site's incident (tests/test_refresh_outcomes.py): no counter
    or status of the connection changes, and it stays due for when the pause ends."""
    emulator = intacct_connect_settings
    conn = factories.connection(emulator, expires_in=600)
    settings.INTACCT_CONNECT = {**settings.INTACCT_CONNECT, "CLIENT_SECRET": "wrong-secret"}
    before = timezone.now()
    outcome = scheduling.refresh_one(conn.pk, seen_version=1)
    assert (outcome.result, outcome.error_code) == ("config_error", "invalid_client")
    conn.refresh_from_db()
    assert conn.status == ConnectionStatus.ACTIVE
    assert conn.refresh_failures == 0
    assert conn.last_error_code == ""
    assert conn.next_refresh_at is not None
    assert conn.next_refresh_at <= before + timedelta(seconds=1)
    assert conn.token.version == 1
    assert scheduling.dispatch_due_refreshes() == 0  # paused until the probe is due
    assert emulator.token_requests("refresh_token") == 1


def test_prune_job_runs_keeps_recent_and_unfinished_runs() -> None:
    conn = factories.connection()
    old = timezone.now() - timedelta(days=scheduling.JOB_RUN_RETENTION_DAYS + 1)
    for status in ("succeeded", "failed", "skipped", "parked", "queued", "running"):
        JobRun.objects.create(job=f"j-{status}", connection=conn, status=status, queued_at=old)
    recent = JobRun.objects.create(job="recent", connection=conn, status="succeeded")
    assert scheduling.prune_job_runs(batch_size=2) == 4
    assert set(JobRun.objects.values_list("job", flat=True)) == {
        "j-queued",
        "j-running",
        recent.job,
    }


def test_broken_schedule_is_paused_without_blocking_others(
    count_job: Recorder, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    conn = factories.connection()
    # Rows written without validation:
    broken = factories.schedule(connection=conn, interval=None, crontab="61 * * * *")
    unscheduled = factories.schedule(connection=conn, interval=None, crontab="x y")
    Schedule.objects.filter(pk=unscheduled.pk).update(next_run_at=None)
    good = factories.schedule(connection=factories.connection(company="GOOD-CO"))
    with django_capture_on_commit_callbacks(execute=True):
        assert scheduling.dispatch_due_schedules() == 1
    assert JobRun.objects.get().schedule_id == good.pk
    for s in (broken, unscheduled):
        s.refresh_from_db()
        assert s.enabled is False
        assert s.next_run_at is None
