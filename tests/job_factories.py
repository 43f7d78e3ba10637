"""Old names kept for ``tests/browser`` and ``bench/`` (tests use ``tests.factories``).

``make_connection()`` keeps its old promise that every call makes a distinct connection
(company ``CO-<n>``, user ``user-<n>``), which the bench scripts rely on.
"""

from __future__ import annotations

import itertools
from typing import Any

from intacct_connect.models import Connection
from tests.factories import COMPANY, USER, connection
from tests.factories import schedule as make_schedule

__all__ = ["emulator_connection", "make_connection", "make_schedule"]

_seq = itertools.count(1)


def make_connection(*, company: str | None = None, **options: Any) -> Connection:
    n = next(_seq)
    options.setdefault("user", f"user-{n}")
    return connection(company=company or f"CO-{n}", **options)


def emulator_connection(
    emulator: Any, company: str = COMPANY, user: str = USER, **options: Any
) -> Connection:
    return connection(emulator, company=company, user=user, **options)
