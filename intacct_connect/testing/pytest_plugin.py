"""pytest plugin (registered as the ``intacct_connect`` pytest11 entry point).

Fixtures:

* ``intacct_emulator`` - a live emulator (started once per session in a thread on a free
  port of 127.0.0.1), reset to its seed data before each test. Returns the
  :class:`~intacct_connect.testing.emulator.EmulatorServer` handle.
* ``intacct_connect_settings`` - (with pytest-django) points ``settings.INTACCT_CONNECT`` at
  the emulator and returns the same handle.
* ``intacct_emulator_in_process`` - (with pytest-django) the same emulator, called
  in-process by this thread's intacct_connect sessions (token endpoint and REST API): an
  :class:`~intacct_connect.testing.inprocess.EmulatorAdapter` is mounted for its origin on
  the sessions the site's adapter builds, so those calls need no socket. Returns the
  same handle.

This module is imported by every pytest run of a site that installs intacct_connect, so it
imports nothing optional at module level: werkzeug, PyJWT and Django are imported inside
the fixtures.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from intacct_connect.testing.emulator import EmulatorServer

MISSING_EXTRA = (
    "The intacct_emulator fixture needs the emulator's dependencies (werkzeug, PyJWT): "
    'install them with pip install "intacct-connect[testing]"'
)


@pytest.fixture(scope="session")
def _intacct_emulator_server() -> Iterator[EmulatorServer]:
    try:
        from intacct_connect.testing.emulator import EmulatorServer
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise pytest.UsageError(f"{MISSING_EXTRA} ({err})") from err
    server = EmulatorServer("127.0.0.1", 0)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def intacct_emulator(_intacct_emulator_server: EmulatorServer) -> Iterator[EmulatorServer]:
    """A live Sage Intacct emulator with fresh seed data.

    On teardown it releases the concurrency slots the client keeps parked and drops the
    call-log rows still waiting for their batch, so no test inherits another's (a test
    that checks the call log in autocommit mode calls ``client.close()`` first)."""
    _intacct_emulator_server.reset()
    yield _intacct_emulator_server
    forget_pending_work()


def forget_pending_work() -> None:
    """Release parked concurrency slots, drop unwritten call-log rows and close the circuit
    breakers this process opened (between tests).
    Nothing to do in a test session without Django or without the app installed."""
    try:
        from django.apps import apps
    except ImportError:  # pragma: no cover - the emulator alone, without Django
        return
    if not apps.ready or not apps.is_installed("intacct_connect"):
        return
    from intacct_connect import calllog, circuit, concurrency

    concurrency.release_parked()
    calllog.discard()
    circuit.reset()


if importlib.util.find_spec("pytest_django") is not None:

    @pytest.fixture
    def intacct_connect_settings(intacct_emulator: EmulatorServer, settings: Any) -> EmulatorServer:
        """Point ``settings.INTACCT_CONNECT`` at the emulator (demo application).

        A ``REDIRECT_URI`` already in the site's settings is kept and registered for the
        demo application."""
        current = dict(getattr(settings, "INTACCT_CONNECT", None) or {})
        overrides = intacct_emulator.connect_settings()
        redirect_uri = current.get("REDIRECT_URI")
        if redirect_uri:
            intacct_emulator.add_redirect_uri(redirect_uri)
            overrides["REDIRECT_URI"] = redirect_uri
        current.update(overrides)
        settings.INTACCT_CONNECT = current
        return intacct_emulator

    @pytest.fixture
    def intacct_emulator_in_process(intacct_emulator: EmulatorServer) -> Iterator[EmulatorServer]:
        """The live emulator, called in-process by this thread's intacct_connect sessions.

        The sessions :func:`intacct_connect.http.get_session` hands out (made by the site's
        adapter, ``get_requests_session()``) get an adapter mounted for the emulator's
        origin that hands each request to the emulator's WSGI app; they are forgotten on
        teardown. Other threads, other processes and other sessions (a browser) still
        reach the emulator over its socket, with the same state. Timeouts cannot
        interrupt an in-process call: test them over the socket."""
        from intacct_connect import http
        from intacct_connect.testing.inprocess import route_in_process

        http.forget_sessions()
        route_in_process(intacct_emulator.root_url, intacct_emulator.emulator)
        yield intacct_emulator
        http.forget_sessions()
