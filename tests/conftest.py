"""Shared fixtures. The emulator fixture (``intacct_emulator``) comes from the pytest
plugin shipped in ``intacct_connect.testing``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from intacct_connect.conf import app_settings


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
