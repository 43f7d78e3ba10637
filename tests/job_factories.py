"""Factories and job fixtures shared by the background-job test modules."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from intacct_connect import jobs
from intacct_connect.models import Connection, ConnectionStatus, Schedule, ScheduleScope, Token

_seq = itertools.count(1)


def make_connection(
    *,
    tenant: str = "tenant-a",
    status: str = ConnectionStatus.ACTIVE,
    expires_in: float | None = 3600,
    next_refresh_in: float | None = None,
    company: str | None = None,
    **fields: Any,
) -> Connection:
    n = next(_seq)
    now = timezone.now()
    conn = Connection.objects.create(
        tenant_key=tenant,
        company_id=company or f"CO-{n}",
        intacct_user_id=f"user-{n}",
        status=status,
        next_refresh_at=None
        if next_refresh_in is None
        else now + timedelta(seconds=next_refresh_in),
        **fields,
    )
    if expires_in is not None:
        Token.objects.create(
            connection=conn,
            access_token=f"test-access-{n}",
            refresh_token=f"test-refresh-{n}",
            expires_at=now + timedelta(seconds=expires_in),
            last_refreshed_at=now,
        )
    return conn


def make_schedule(
    job: str = "count_job",
    *,
    connection: Connection | None = None,
    scope: str = ScheduleScope.CONNECTION,
    tenant: str = "",
    interval: int | None = 300,
    crontab: str = "",
    due: bool = True,
    params: dict[str, Any] | None = None,
    **fields: Any,
) -> Schedule:
    now = timezone.now()
    return Schedule.objects.create(
        name=f"schedule {next(_seq)}",
        job=job,
        params=params or {},
        scope=scope,
        connection=connection,
        tenant_key=tenant,
        interval_seconds=interval,
        crontab=crontab,
        next_run_at=now - timedelta(seconds=1) if due else now + timedelta(hours=1),
        **fields,
    )


class Recorder:
    """What the test jobs saw."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int, dict[str, Any]]] = []
        self.raise_: BaseException | None = None
        self.records = 3


@pytest.fixture
def count_job() -> Iterator[Recorder]:
    """A registered job ``count_job`` recording its calls; no API call."""
    rec = Recorder()

    def count_job(client: Any, ctx: jobs.JobContext) -> int:
        rec.calls.append((ctx.connection.pk, ctx.run.pk, dict(ctx.params)))
        if rec.raise_ is not None:
            raise rec.raise_
        return rec.records

    jobs.register("count_job", description="test job")(count_job)
    yield rec
    jobs.unregister("count_job")


def emulator_connection(
    emulator: Any,
    company: str = "DEMO-CO",
    user: str = "admin",
    *,
    tenant: str = "tenant-a",
    expires_in: float | None = None,
    next_refresh_in: float | None = None,
) -> Connection:
    """A connection holding real tokens issued by the emulator (a fresh consent grant).

    ``expires_in`` overrides the stored expiry (the token itself stays valid at Intacct)."""
    issued = emulator.issue_tokens(company, user)
    now = timezone.now()
    conn = Connection.objects.create(
        tenant_key=tenant,
        company_id=company,
        intacct_user_id=user,
        next_refresh_at=None
        if next_refresh_in is None
        else now + timedelta(seconds=next_refresh_in),
    )
    Token.objects.create(
        connection=conn,
        access_token=issued["access_token"],
        refresh_token=issued.get("refresh_token", ""),
        expires_at=now
        + timedelta(seconds=issued["expires_in"] if expires_in is None else expires_in),
        last_refreshed_at=now,
    )
    return conn
