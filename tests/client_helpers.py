"""Old names kept for test modules written against them (new code: ``tests.factories``
for objects, ``tests.helpers`` for helpers, the fixtures of ``tests/conftest.py``).

Importing ``emulator`` from here still gives the emulator over its real socket, as before
the in-process transport; ``fake_sleep`` is the conftest's (autouse) fixture.
"""

from __future__ import annotations

from typing import Any

import pytest

from intacct_connect.models import Connection
from intacct_connect.testing.emulator import EmulatorServer
from tests import factories
from tests.factories import expire_locally
from tests.helpers import FAST_RETRIES, FakeSleep, point_at_emulator

__all__ = [
    "FAST_RETRIES",
    "FakeSleep",
    "emulator",
    "expire_locally",
    "fake_sleep",
    "make_cc_connection",
    "make_connection",
    "point_at_emulator",
]


def make_connection(emulator: EmulatorServer, **options: Any) -> Connection:
    return factories.connection(emulator, **options)


def make_cc_connection(emulator: EmulatorServer, **options: Any) -> Connection:
    return factories.cc_connection(**options)


@pytest.fixture(name="emulator")
def emulator(socket_emulator: EmulatorServer) -> EmulatorServer:
    return socket_emulator


@pytest.fixture(name="fake_sleep")
def fake_sleep(fake_sleep: FakeSleep) -> FakeSleep:
    return fake_sleep
