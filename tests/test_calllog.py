"""The API call log writer (intacct_connect.calllog), through real calls to the emulator."""

from __future__ import annotations

import os
from typing import Any

import pytest
from celery.signals import task_postrun, worker_process_shutdown
from django.core.signals import request_finished
from django.db import connection as db_connection
from django.db import transaction
from django.utils import timezone

from intacct_connect import calllog, concurrency
from intacct_connect.client import IntacctClient
from intacct_connect.exceptions import PermissionDeniedError
from intacct_connect.models import ApiCallLog
from intacct_connect.testing.emulator import EmulatorServer
from tests import factories
from tests.helpers import point_at_emulator

VENDOR = "accounts-payable/vendor"


@pytest.mark.django_db(transaction=True)
def test_batches_are_written_when_full_or_late(emulator: EmulatorServer, settings: Any) -> None:
    """A batch is written by the call that fills it, or by the first call after
    API_CALL_LOG_MAX_DELAY, with one INSERT."""
    point_at_emulator(settings, emulator, API_CALL_LOG_BATCH_SIZE=3, API_CALL_LOG_MAX_DELAY=60)
    client = IntacctClient(factories.connection(emulator))
    client.get(VENDOR, "1")
    client.get(VENDOR, "2")
    assert (calllog.pending(), ApiCallLog.objects.count()) == (2, 0)
    inserts: list[str] = []

    def record(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if sql.startswith("INSERT"):
            inserts.append(sql)
        return execute(sql, params, many, context)

    with db_connection.execute_wrapper(record):
        client.get(VENDOR, "3")  # the batch is full
    assert len(inserts) == 1
    assert ApiCallLog.objects.count() == 3
    client.get(VENDOR, "4")
    point_at_emulator(settings, emulator, API_CALL_LOG_BATCH_SIZE=3, API_CALL_LOG_MAX_DELAY=0)
    client.get(VENDOR, "5")  # the oldest waiting row is overdue
    assert ApiCallLog.objects.count() == 5
    assert [c.path.rsplit("/", 1)[1] for c in ApiCallLog.objects.order_by("pk")] == [
        "1",
        "2",
        "3",
        "4",
        "5",
    ]
    client.close()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("signal", [task_postrun, request_finished, worker_process_shutdown])
def test_the_end_of_a_task_or_request_writes_the_waiting_rows(
    emulator: EmulatorServer, signal: Any
) -> None:
    """The app connects the end of every Celery task and web request (and the shutdown
    of a worker process): the rows and parked slots of the unit of work are settled."""
    client = IntacctClient(factories.connection(emulator))
    client.get(VENDOR, "1")
    assert calllog.pending() == 1
    assert concurrency.parked_slots("DEMO-CO") == 1
    signal.send(sender=None)
    assert calllog.pending() == 0
    assert ApiCallLog.objects.count() == 1
    assert concurrency.parked_slots() == 0
    assert concurrency.busy_slots("DEMO-CO") == 0


@pytest.mark.django_db(transaction=True)
def test_rows_of_a_connection_deleted_while_they_wait_are_skipped(
    emulator: EmulatorServer,
) -> None:
    """A connection deleted before its waiting rows are written: those rows are skipped
    (they would have been deleted with it), the other connections' rows are kept."""
    gone = factories.connection(emulator)
    kept = factories.connection(emulator, company="SECOND-CO")
    with pytest.raises(PermissionDeniedError):  # sender ID not authorised: still logged
        IntacctClient(kept).get(VENDOR, "1")
    IntacctClient(gone).get(VENDOR, "1")
    gone.delete()
    assert calllog.flush() == 1
    assert [(c.connection_id, c.status) for c in ApiCallLog.objects.all()] == [(kept.pk, 403)]


@pytest.mark.django_db(transaction=True)
def test_a_batch_the_database_refuses_is_dropped_and_logged(
    emulator: EmulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Writing the log never raises into the caller: a refused batch is logged."""
    conn = factories.connection(emulator)
    row = calllog.CallRow(conn.pk, "GET", "/x", 200, "", 70_000_000_000, 0, "", timezone.now())
    calllog.record(row)  # duration_ms out of range for the column on PostgreSQL
    written = calllog.flush()
    if db_connection.vendor == "postgresql":
        assert written == 0
        assert "Could not write 1 API call log rows" in caplog.text
        assert not ApiCallLog.objects.exists()
    else:  # SQLite stores any integer
        assert written == 1
    assert calllog.pending() == 0


@pytest.mark.django_db
def test_inside_a_transaction_each_row_is_written_with_the_callers_work(
    emulator: EmulatorServer,
) -> None:
    """In a transaction (here the test's own) nothing waits: the row is written at once,
    and rolls back with the caller's work."""
    client = IntacctClient(factories.connection(emulator))
    client.get(VENDOR, "1")
    assert calllog.pending() == 0
    assert ApiCallLog.objects.count() == 1
    try:
        with transaction.atomic():
            client.get(VENDOR, "2")
            assert ApiCallLog.objects.count() == 2
            raise RuntimeError("the caller's work fails")
    except RuntimeError:
        pass
    assert ApiCallLog.objects.count() == 1
    if db_connection.vendor == "sqlite":  # slot statements share the transaction
        assert concurrency.parked_slots() == 0
        assert concurrency.busy_slots("DEMO-CO") == 0


@pytest.mark.django_db(transaction=True)
def test_batch_size_one_writes_every_row_as_its_call_ends(
    emulator: EmulatorServer, settings: Any
) -> None:
    point_at_emulator(settings, emulator, API_CALL_LOG_BATCH_SIZE=1)
    client = IntacctClient(factories.connection(emulator))
    client.get(VENDOR, "1")
    assert (calllog.pending(), ApiCallLog.objects.count()) == (0, 1)
    client.close()


@pytest.mark.django_db(transaction=True)
def test_a_forked_child_starts_with_no_waiting_rows(emulator: EmulatorServer) -> None:
    """Celery's prefork pool forks: the rows waiting in the parent are the parent's to
    write, never written twice."""
    client = IntacctClient(factories.connection(emulator))
    client.get(VENDOR, "1")
    assert calllog.pending() == 1
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        os.write(write, f"{calllog.pending()},{concurrency.parked_slots()}".encode())
        os._exit(0)
    os.close(write)
    reported = os.read(read, 100).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert reported == "0,0"
    assert calllog.pending() == 1
    client.close()
    assert ApiCallLog.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_discard_drops_the_waiting_rows(emulator: EmulatorServer) -> None:
    IntacctClient(factories.connection(emulator)).get(VENDOR, "1")
    assert calllog.discard() == 1
    assert calllog.pending() == 0
    assert calllog.flush() == 0
    assert not ApiCallLog.objects.exists()
