"""The intacct_run_job management command."""

from __future__ import annotations

import re
from collections.abc import Callable
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command

import tests.celery_app  # noqa: F401
from intacct_connect.models import JobRun, StoredRecord
from intacct_connect.testing.emulator import EmulatorServer
from tests import factories
from tests.helpers import Recorder

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("intacct_run_job", *args, stdout=out)
    return out.getvalue()


def test_runs_a_job_now_and_records_the_run(emulator: EmulatorServer) -> None:
    conn = factories.connection(emulator)
    params = '{"object": "general-ledger/account", "fields": ["key", "id"]}'
    out = run("query_to_storage", "--connection", str(conn.pk), "--params", params)
    assert "succeeded, 28 records" in out
    run_row = JobRun.objects.get()
    assert (run_row.trigger, run_row.status) == ("command", "succeeded")
    assert StoredRecord.objects.count() == 28


def test_enqueue_and_list(
    count_job: Recorder, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    conn = factories.connection()
    with django_capture_on_commit_callbacks(execute=True):
        out = run("count_job", "-c", str(conn.pk), "--enqueue")
    assert "Queued run" in out
    assert JobRun.objects.get().status == "succeeded"
    listing = run("--list")
    assert "health_check" in listing
    assert "query_to_storage" in listing


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "Name the job to run"),
        (("nope", "-c", "1"), "No job is registered as 'nope'"),
        (("count_job",), "--connection is required"),
        (("count_job", "-c", "999999"), "Connection 999999 does not exist."),
        (("count_job", "-c", "{conn}", "--params", "{bad"), "--params is not valid JSON"),
        (("count_job", "-c", "{conn}", "--params", "[1]"), "must be a JSON object"),
        (
            ("query_to_storage", "-c", "{conn}", "--params", "{}"),
            "Invalid parameters for query_to_storage: 'object' is required",
        ),
    ],
)
def test_bad_input_is_a_command_error(
    count_job: Recorder, args: tuple[str, ...], message: str
) -> None:
    conn = factories.connection()
    args = tuple(a.replace("{conn}", str(conn.pk)) for a in args)
    with pytest.raises(CommandError, match=re.escape(message)):
        run(*args)
    assert not JobRun.objects.exists()


def test_unusable_connection_and_failed_run_are_errors(count_job: Recorder) -> None:
    reauth = factories.connection(status="needs_reauth", user="jane")
    with pytest.raises(CommandError, match="needs re-authorisation"):
        run("count_job", "-c", str(reauth.pk))
    from intacct_connect.jobs import JobError

    count_job.raise_ = JobError("nothing to sync", code="empty")
    with pytest.raises(CommandError, match=re.escape("failed, 0 records. empty: nothing to sync")):
        run("count_job", "-c", str(factories.connection().pk))
