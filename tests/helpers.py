"""Small helpers shared by the test modules."""

from __future__ import annotations

import os

import pytest
from django.db import connection


def require_postgres() -> None:
    """Skip the calling test unless the database is PostgreSQL.

    When ``INTACCT_REQUIRE_POSTGRES`` is set (CI's PostgreSQL job), a PostgreSQL-only test
    that would be skipped fails instead, so a misconfigured job cannot hide it.
    Call it at the top of tests marked ``@pytest.mark.postgres``.
    """
    if connection.vendor == "postgresql":
        return
    reason = (
        f"needs PostgreSQL (row locks / SKIP LOCKED); the database is {connection.vendor}. "
        "Run with DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres"
    )
    if os.environ.get("INTACCT_REQUIRE_POSTGRES"):
        pytest.fail(f"INTACCT_REQUIRE_POSTGRES is set but this test {reason}")
    pytest.skip(reason)
