"""Shared fixtures. The emulator fixtures (``intacct_emulator``,
``intacct_emulator_in_process``, ``intacct_connect_settings``) come from the pytest plugin
shipped in ``intacct_connect.testing``; objects are made with ``tests.factories``.

* ``emulator`` - the emulator with ``INTACCT_CONNECT`` pointed at it, called in-process by
  this thread's sessions (no socket); ``socket_emulator`` - the same over its real socket
  (timeouts, proxies, dropped connections as the operating system reports them);
* ``fake_sleep`` - no client sleeps before a retry: the waits are recorded (both emulator
  fixtures use it);
* ``count_job`` - a registered job recording its calls;
* ``live_connection`` - a client-credentials connection holding emulator-issued tokens.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest


def _cache_bytecode_outside_the_tree() -> None:
    """With ``PYTHONDONTWRITEBYTECODE`` set (CI, this repository's shells), pytest would
    compile and rewrite every test module again on each run (about 6 s). Its bytecode,
    and that of the modules imported from here on, goes to a cache outside the source
    tree instead (an explicit ``PYTHONPYCACHEPREFIX`` wins), so the tree stays clean."""
    if sys.dont_write_bytecode and not sys.pycache_prefix:
        sys.pycache_prefix = os.path.join(
            tempfile.gettempdir(), f"intacct-connect-tests-pycache-{os.getuid()}"
        )
        sys.dont_write_bytecode = False


_cache_bytecode_outside_the_tree()

from intacct_connect import jobs  # noqa: E402 - after the bytecode cache is chosen
from intacct_connect.client import default_retry_policy  # noqa: E402
from intacct_connect.conf import app_settings  # noqa: E402
from intacct_connect.models import Connection  # noqa: E402
from intacct_connect.testing.emulator import EmulatorServer  # noqa: E402
from tests.helpers import FakeSleep, Recorder, point_at_emulator  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _warm_python() -> Iterator[None]:
    """The server :func:`tests.warm_python.run_python` forks from stops with the session."""
    yield
    from tests import warm_python

    warm_python.stop()


@pytest.fixture(autouse=True)
def _fresh_app_settings() -> Iterator[None]:
    """Each test starts with settings re-read from django.conf.settings, and leaves no
    parked slot, waiting call-log row or private database connection (the concurrency
    cap's) behind for the next test or teardown to trip on."""
    app_settings.reload()
    yield
    from intacct_connect import concurrency
    from intacct_connect.testing.pytest_plugin import forget_pending_work

    forget_pending_work()
    concurrency.close_private_connection()


@pytest.fixture
def fake_sleep(monkeypatch: pytest.MonkeyPatch) -> FakeSleep:
    """Every client created without its own ``sleep=`` records its retry waits here
    instead of sleeping, and its clock moves on by them (call durations include them).
    The emulator fixtures use it: no test that calls the emulator sleeps before a retry."""
    fake = FakeSleep()
    monkeypatch.setattr(default_retry_policy, "sleep", fake)
    monkeypatch.setattr(default_retry_policy, "clock", fake.clock)
    return fake


@pytest.fixture
def emulator(
    intacct_emulator_in_process: EmulatorServer, settings: Any, fake_sleep: FakeSleep
) -> Iterator[EmulatorServer]:
    """The emulator, with INTACCT_CONNECT pointed at it (fast retries), called in-process;
    the test fails if the emulator hit an unexpected error."""
    point_at_emulator(settings, intacct_emulator_in_process)
    yield intacct_emulator_in_process
    assert intacct_emulator_in_process.unexpected_errors() == 0


@pytest.fixture
def socket_emulator(
    intacct_emulator: EmulatorServer, settings: Any, fake_sleep: FakeSleep
) -> Iterator[EmulatorServer]:
    """As ``emulator``, but every call goes over the emulator's real socket."""
    point_at_emulator(settings, intacct_emulator)
    yield intacct_emulator
    assert intacct_emulator.unexpected_errors() == 0


@pytest.fixture
def short_periods() -> Iterator[None]:
    """The proofs' real beats and workers: the 60-second floor on intervals lowered to 1 s
    in this process too (the workers get it from ``PROOF_MIN_INTERVAL``)."""
    from bench.proof_jobs import lower_interval_floor
    from intacct_connect.scheduling import common

    lower_interval_floor(1)
    yield
    lower_interval_floor(common.MIN_INTERVAL_SECONDS)


@pytest.fixture
def count_job() -> Iterator[Recorder]:
    """A registered job ``count_job`` recording its calls; no API call."""
    rec = Recorder()

    def count_job(client: Any, ctx: jobs.JobContext) -> int:
        rec.calls.append((ctx.connection.pk, ctx.run.pk, dict(ctx.params)))
        rec.maybe_raise()
        return rec.records

    jobs.register("count_job", description="test job")(count_job)
    yield rec
    jobs.unregister("count_job")


@pytest.fixture
def live_connection(emulator: EmulatorServer) -> Connection:
    """Team 1's client-credentials connection holding real (emulator-issued) tokens."""
    from intacct_connect import flows

    return flows.create_client_credentials_connection(tenant_key="team:1", username="admin@DEMO-CO")


def pytest_report_header(config: pytest.Config) -> str:
    from tests.browser.support import report_header

    return report_header()


def pytest_runtest_setup(item: pytest.Item) -> None:
    """``postgres``/``redis`` tests skip without the server, and fail instead in CI."""
    import os

    if item.get_closest_marker("postgres"):
        from tests.helpers import require_postgres

        require_postgres()
    if item.get_closest_marker("redis") and not os.environ.get("REDIS_URL"):
        reason = "needs Redis: set REDIS_URL=redis://127.0.0.1:6379/0"
        if os.environ.get("INTACCT_REQUIRE_REDIS"):
            pytest.fail(f"INTACCT_REQUIRE_REDIS is set but REDIS_URL is not: {reason}")
        pytest.skip(reason)
