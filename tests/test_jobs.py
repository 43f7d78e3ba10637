"""The job registry and the built-in jobs, through real HTTP against the emulator."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured, ValidationError

import tests.celery_app  # noqa: F401
from intacct_connect import jobs, scheduling
from intacct_connect.client import IntacctClient
from intacct_connect.models import (
    ConnectionEvent,
    JobRun,
    StoredRecord,
    Watermark,
)
from intacct_connect.testing.emulator import EmulatorServer
from tests import factories

pytestmark = pytest.mark.django_db

VENDORS = {
    "object": "accounts-payable/vendor",
    "fields": ["key", "id", "name", "audit.modifiedDateTime"],
    "watermark_field": "audit.modifiedDateTime",
    "page_size": 100,
}


def run_now(job: str, conn_id: int, params: dict[str, Any] | None = None, **kw: Any) -> JobRun:
    run = JobRun.objects.create(job=job, connection_id=conn_id, params=params or {}, **kw)
    done = scheduling.execute_run(run.pk, task_id=f"task-{run.pk}")
    assert done is not None
    return done


# --- registry ---------------------------------------------------------------------------


def test_registry_registers_lists_and_rejects_duplicates() -> None:
    def mine(client: IntacctClient, ctx: jobs.JobContext) -> int:
        return 0

    jobs.register("sync_vendors", description="Copy vendors")(mine)
    try:
        assert jobs.get("sync_vendors").func is mine
        assert ("sync_vendors", "sync_vendors — Copy vendors") in jobs.choices()
        assert {"health_check", "query_to_storage"} <= set(jobs.registered())
        jobs.register("sync_vendors")(mine)  # same function again: fine (module reload)

        def other(client: IntacctClient, ctx: jobs.JobContext) -> int:
            return 1

        with pytest.raises(ImproperlyConfigured, match="already registered"):
            jobs.register("sync_vendors")(other)
    finally:
        jobs.unregister("sync_vendors")
    with pytest.raises(jobs.UnknownJob, match="No job is registered as 'sync_vendors'"):
        jobs.get("sync_vendors")
    with pytest.raises(ImproperlyConfigured):
        jobs.register("")


def test_query_to_storage_validates_params_precisely() -> None:
    job = jobs.get("query_to_storage")
    with pytest.raises(ValidationError) as err:
        job.clean_params({"fields": ["id"], "page_size": 0, "colour": 1})
    text = " ".join(err.value.messages)
    assert "unknown parameter(s): colour" in text
    assert "'object' is required" in text
    assert "must include the key field 'key'" in text
    assert "'page_size' must be an integer from 1 to 4000" in text
    with pytest.raises(ValidationError, match="watermark field"):
        job.clean_params({"object": "x/y", "fields": ["key"], "watermark_field": "audit.x"})
    with pytest.raises(ValidationError, match="one-operator objects"):
        job.clean_params({"object": "x/y", "fields": ["key"], "filters": [{"$eq": 1, "$ne": 2}]})
    assert job.clean_params(VENDORS) == VENDORS


# --- health_check -------------------------------------------------------------------------


def test_health_check_job_updates_connection_health(
    emulator: EmulatorServer,
) -> None:
    conn = factories.connection(emulator)
    run = run_now("health_check", conn.pk)
    assert (run.status, run.records_processed) == ("succeeded", 1)
    conn.refresh_from_db()
    assert conn.health_ok is True
    assert conn.health_checked_at is not None
    assert ConnectionEvent.objects.filter(connection=conn, kind="health_check").count() == 1


def test_failed_health_check_fails_the_run_and_marks_the_connection(
    emulator: EmulatorServer,
) -> None:
    conn = factories.connection(emulator)
    emulator.revoke_grants("DEMO-CO")  # tokens now answer REST-2102
    run = run_now("health_check", conn.pk)
    conn.refresh_from_db()
    assert conn.health_ok is False
    assert conn.status == "needs_reauth"  # the client's refresh met invalid_grant
    assert (run.status, run.error_code) == ("failed", "invalid_grant")
    assert "reconnect" in run.error_message


# --- query_to_storage ---------------------------------------------------------------------


def test_query_to_storage_stores_rows_once_and_advances_the_watermark(
    emulator: EmulatorServer,
) -> None:
    conn = factories.connection(emulator)
    schedule = factories.schedule("query_to_storage", connection=conn, params=VENDORS)
    first = run_now("query_to_storage", conn.pk, VENDORS, schedule=schedule)
    assert (first.status, first.records_processed) == ("succeeded", 250)
    assert StoredRecord.objects.filter(connection=conn).count() == 250
    assert StoredRecord.objects.filter(run=first).count() == 250
    mark = Watermark.objects.get(connection=conn, name=f"schedule:{schedule.pk}")
    assert mark.value  # the newest audit.modifiedDateTime

    # a redelivery of the finished run does nothing
    first_done = scheduling.execute_run(first.pk)
    assert first_done is not None
    assert first_done.records_processed == 250

    # one vendor changes at Intacct: the next run fetches from the watermark only
    rows = emulator.records("DEMO-CO", "accounts-payable/vendor")
    target_key = str(rows[0]["key"])
    IntacctClient(conn).update("accounts-payable/vendor", target_key, {"name": "Renamed Ltd"})
    second = run_now("query_to_storage", conn.pk, VENDORS, schedule=schedule)
    # the seed rows share the watermark's timestamp ($gte): fetched again and upserted
    assert (second.status, second.records_processed) == ("succeeded", 250)
    assert StoredRecord.objects.filter(connection=conn).count() == 250  # no duplicate
    stored = StoredRecord.objects.get(connection=conn, object=VENDORS["object"], key=target_key)
    assert stored.data["name"] == "Renamed Ltd"
    assert stored.run_id == second.pk
    mark2 = Watermark.objects.get(pk=mark.pk)
    assert mark2.value > mark.value
    # from now on only rows at or after the new watermark come back
    third = run_now("query_to_storage", conn.pk, VENDORS, schedule=schedule)
    assert (third.status, third.records_processed) == ("succeeded", 1)
    assert StoredRecord.objects.filter(connection=conn).count() == 250


def test_failed_run_leaves_previous_data_and_watermark_intact(
    emulator: EmulatorServer,
) -> None:
    conn = factories.connection(emulator)
    first = run_now("query_to_storage", conn.pk, VENDORS)
    assert first.status == "succeeded"
    mark = Watermark.objects.get(
        connection=conn, name="job:query_to_storage:accounts-payable/vendor"
    )
    before = sorted(StoredRecord.objects.values_list("key", "data", "run_id"))
    # the next run reads some pages, then Intacct fails for good
    emulator.generate_records("DEMO-CO", "accounts-payable/vendor", 500)
    emulator.set_fault("500", company="DEMO-CO", endpoint="api")
    failed = run_now("query_to_storage", conn.pk, VENDORS)
    assert failed.status == "failed"  # final attempt: no retry left
    assert sorted(StoredRecord.objects.values_list("key", "data", "run_id")) == before
    assert Watermark.objects.get(pk=mark.pk).value == mark.value


def test_too_many_rows_fails_without_storing(emulator: EmulatorServer) -> None:
    conn = factories.connection(emulator)
    run = run_now("query_to_storage", conn.pk, {**VENDORS, "max_records": 10})
    assert (run.status, run.error_code) == ("failed", "too_many_records")
    assert not StoredRecord.objects.exists()
    assert not Watermark.objects.exists()


def test_query_to_storage_without_watermark_refreshes_every_row(
    emulator: EmulatorServer,
) -> None:
    conn = factories.connection(emulator)
    params = {"object": "general-ledger/account", "fields": ["key", "id", "name"]}
    for _ in range(2):
        run = run_now("query_to_storage", conn.pk, params)
        assert (run.status, run.records_processed) == ("succeeded", 28)
    assert StoredRecord.objects.filter(object="general-ledger/account").count() == 28


def test_job_receives_an_authenticated_client(emulator: EmulatorServer) -> None:
    conn = factories.connection(emulator)
    seen = {}

    def sync_accounts(client: IntacctClient, ctx: jobs.JobContext) -> int:
        seen["client"] = client
        return sum(1 for _ in client.query("general-ledger/account", ["key"]))

    jobs.register("sync_accounts")(sync_accounts)
    try:
        run = run_now("sync_accounts", conn.pk)
    finally:
        jobs.unregister("sync_accounts")
    assert (run.status, run.records_processed) == ("succeeded", 28)
    assert seen["client"].connection.pk == conn.pk


def test_needs_reauth_connection_job_is_skipped_not_called(
    emulator: EmulatorServer,
) -> None:
    conn = factories.connection(status="needs_reauth", company="DEMO-CO")
    calls = emulator.api_calls()
    run = run_now("health_check", conn.pk)
    assert (run.status, run.error_code) == ("skipped", "needs_reauth")
    assert emulator.api_calls() == calls
