"""Single-flight on every outcome, raced for real on PostgreSQL row locks (issue 12).

Eight callers find the same expired token at once, in eight threads or in eight separate
processes, while the emulator's token endpoint answers ``invalid_grant``, ``invalid_client``,
drops the answer after processing the request, or fails with a 500. Each episode must cost
exactly one token request, and every caller must raise the error of that outcome. The
emulator runs with reuse detection: a second request with the same refresh token would
revoke the grant.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from django.db import connection as db_connection

from intacct_connect import tokens
from intacct_connect.client import IntacctClient
from intacct_connect.exceptions import (
    ClientCredentialsRejected,
    GrantRejected,
    NeedsReauthorization,
    RefreshBackoff,
    RefreshInDoubt,
    TokenRequestError,
)
from intacct_connect.models import Connection, ConnectionStatus, SiteIncident, Token
from intacct_connect.testing.emulator import EmulatorServer
from tests import factories
from tests.helpers import FAST_RETRIES, require_postgres, run_in_threads, run_released_together
from tests.helpers import point_at_emulator as _point_at_emulator

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def emulator(socket_emulator: EmulatorServer) -> EmulatorServer:
    """Real HTTP: every call goes over the emulator's socket (lost answers are dropped
    connections, other processes reach it too)."""
    return socket_emulator


ROOT = Path(__file__).resolve().parent.parent
CALLERS = 8
WRONG_SECRET = "rotated-by-mistake-0123456789"
OUTCOMES = ("invalid_grant", "invalid_client", "lost", "transient")

#: What the one caller whose request was answered raises, and what the seven waiters raise.
EXPECTED = {
    "invalid_grant": {"GrantRejected": 1, "NeedsReauthorization": CALLERS - 1},
    "invalid_client": {"ClientCredentialsRejected": CALLERS},
    "lost": {"RefreshInDoubt": CALLERS},
    "transient": {"TokenRequestError": 1, "RefreshBackoff": CALLERS - 1},
}


@pytest.fixture(autouse=True)
def _postgres_only() -> None:
    require_postgres()


def _prepare(
    emulator: EmulatorServer, settings: Any, outcome: str
) -> tuple[Connection, dict[str, Any]]:
    """An expired connection and the token endpoint set up for ``outcome``; returns the
    INTACCT_CONNECT overrides the callers use."""
    conn = factories.connection(emulator)
    factories.expire_locally(conn)
    overrides: dict[str, Any] = {}
    if outcome == "invalid_grant":
        emulator.revoke_grants("DEMO-CO")
    elif outcome == "invalid_client":
        overrides["CLIENT_SECRET"] = WRONG_SECRET
        _point_at_emulator(settings, emulator, **overrides)
    elif outcome == "lost":
        emulator.set_fault("token_lost", count=1)  # a second request would be answered
    else:
        emulator.set_fault("500", endpoint="token", count=1)  # a second would succeed
    return conn, overrides


def _class_name(err: BaseException) -> str:
    """The most specific class of the exception tree that an outcome raises."""
    for cls in (
        GrantRejected,
        RefreshInDoubt,
        ClientCredentialsRejected,
        RefreshBackoff,
        NeedsReauthorization,
        TokenRequestError,
    ):
        if isinstance(err, cls):
            return cls.__name__
    return type(err).__name__


def _assert_recorded(emulator: EmulatorServer, conn: Connection, outcome: str) -> None:
    """One token request reached Intacct, and the outcome is recorded as it should be."""
    assert emulator.token_requests() == 1, emulator.counters()["token_requests"]
    conn.refresh_from_db()
    token = Token.objects.get(pk=conn.pk)
    assert token.version == 1
    grants = [g["status"] for g in emulator.grants("DEMO-CO")]
    if outcome == "invalid_grant":
        assert conn.status == ConnectionStatus.NEEDS_REAUTH
        assert grants == ["revoked"]
    elif outcome == "invalid_client":
        assert (conn.status, conn.refresh_failures, conn.last_error_code) == ("active", 0, "")
        assert SiteIncident.objects.open().count() == 1
        assert grants == ["active"]
    elif outcome == "lost":
        assert conn.status == ConnectionStatus.REFRESH_IN_DOUBT
        assert grants == ["active"]  # never re-sent: reuse detection did not fire
    else:
        assert conn.status == ConnectionStatus.ACTIVE
        assert conn.refresh_failures == 1
        assert conn.refresh_retry_at is not None
        assert grants == ["active"]


def _report(mode: str, outcome: str, emulator: EmulatorServer, names: list[str]) -> None:
    sys.stderr.write(
        f"\n[issue-12] {mode}: {CALLERS} callers, outcome {outcome}: "
        f"{emulator.token_requests()} token request(s); raised {dict(Counter(names))}\n"
    )


@pytest.mark.parametrize("outcome", OUTCOMES)
def test_eight_threads_one_token_request_per_failure(
    emulator: EmulatorServer, settings: Any, outcome: str
) -> None:
    conn, _overrides = _prepare(emulator, settings, outcome)
    results = run_in_threads(CALLERS, lambda: tokens.get_access_token(conn.pk))
    assert all(isinstance(r, BaseException) for r in results), results
    names = [_class_name(r) for r in results]
    _report("threads", outcome, emulator, names)
    assert Counter(names) == EXPECTED[outcome]
    _assert_recorded(emulator, conn, outcome)


@pytest.mark.parametrize("outcome", ["invalid_grant", "lost"])
def test_eight_threads_through_the_client_all_raise_needs_reauthorization(
    emulator: EmulatorServer, settings: Any, outcome: str
) -> None:
    """The API client's callers, expired token and all: ``except NeedsReauthorization``
    catches every one of them."""
    conn, _overrides = _prepare(emulator, settings, outcome)
    results = run_in_threads(
        CALLERS, lambda: IntacctClient(conn.pk).get("accounts-payable/vendor", "1")
    )
    assert all(isinstance(r, NeedsReauthorization) for r in results), results
    _assert_recorded(emulator, conn, outcome)
    assert emulator.api_calls("DEMO-CO") == 0


def _spawn_workers(
    emulator: EmulatorServer, conn: Connection, count: int, overrides: dict[str, Any]
) -> list[dict[str, Any]]:
    """``count`` worker processes (tests/token_worker.py, ``token`` mode) on the test
    database, released together."""
    name = db_connection.settings_dict["NAME"]
    assert name.startswith("test_"), name  # never the development database
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{name}",
        "INTACCT_TEST_SETTINGS": json.dumps(
            {**emulator.connect_settings(), **FAST_RETRIES, **overrides}
        ),
    }
    outputs = run_released_together(
        [sys.executable, "-m", "tests.token_worker", "token", str(conn.pk)],
        count=count,
        env=env,
        cwd=ROOT,
    )
    return [json.loads(out.strip().splitlines()[-1]) for out in outputs]


@pytest.mark.slow
@pytest.mark.parametrize("outcome", OUTCOMES)
def test_eight_processes_one_token_request_per_failure(
    emulator: EmulatorServer, settings: Any, outcome: str
) -> None:
    conn, overrides = _prepare(emulator, settings, outcome)
    outcomes = _spawn_workers(emulator, conn, CALLERS, overrides)
    assert len({o["pid"] for o in outcomes}) == CALLERS
    names = [str(o.get("error_class")) for o in outcomes]
    _report("processes", outcome, emulator, names)
    assert Counter(names) == EXPECTED[outcome], outcomes
    _assert_recorded(emulator, conn, outcome)
    for o in outcomes:  # no secret in what a caller sees
        assert WRONG_SECRET not in o["error"]
