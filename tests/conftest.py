"""Shared fixtures. The emulator fixture (``intacct_emulator``) comes from the pytest
plugin shipped in ``intacct_connect.testing``."""

from __future__ import annotations

import pytest

from intacct_connect.conf import app_settings


@pytest.fixture(autouse=True)
def _fresh_app_settings() -> None:
    """Each test starts with settings re-read from django.conf.settings."""
    app_settings.reload()
