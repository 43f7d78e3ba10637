"""Where the system Chromium is, and whether the browser tests can run (no Playwright
import at module level: ``tests/conftest.py`` reads this for the report header)."""

from __future__ import annotations

import importlib.util
import os
import shutil

INSTALL_HINT = "install it with `apt-get install -y chromium` (Debian) or set INTACCT_CHROMIUM"


def chromium_path() -> str | None:
    explicit = os.environ.get("INTACCT_CHROMIUM")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def browser_unavailable() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if importlib.util.find_spec("playwright") is None:
        return "Playwright for Python is not installed (it is in the `test` dependency group)"
    if chromium_path() is None:
        return f"Chromium was not found: {INSTALL_HINT}"
    return None


def report_header() -> str:
    reason = browser_unavailable()
    if reason is None:
        return f"browser tests: Chromium at {chromium_path()}"
    return f"browser tests: SKIPPED, {reason}"
