"""The README's demo (``make demo`` → ``example_project/run_demo.py``) as a user sees it:
all four processes start, a tenant connects a company through the emulator's pages, the
admin shows the connection without its token, and Ctrl-C stops everything cleanly."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from intacct_connect.testing.emulator.server import EmulatorServer

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def csrf(html: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert match, html[:500]
    return match.group(1)


def test_demo_runs_connects_and_stops(tmp_path: Path) -> None:
    emulator_port, site_port = free_port(), free_port()
    site = f"http://127.0.0.1:{site_port}"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("INTACCT_", "DJANGO_", "CELERY_")) and k != "DATABASE_URL"
    }
    env.update(
        DEMO_DIR=str(tmp_path / "demo"),
        INTACCT_EMULATOR_PORT=str(emulator_port),
        DEMO_SITE_ADDRESS=f"127.0.0.1:{site_port}",
        INTACCT_REDIRECT_URI=f"{site}/intacct/callback/",
        PYTHONUNBUFFERED="1",
    )
    log = (tmp_path / "demo.log").open("w+")
    demo = subprocess.Popen(
        [sys.executable, "example_project/run_demo.py"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        while "Demo running" not in (tmp_path / "demo.log").read_text():
            assert demo.poll() is None, (tmp_path / "demo.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the demo did not start in 90 s"
            time.sleep(0.5)
        root = f"http://127.0.0.1:{emulator_port}"
        # The emulator registers the demo's usual callback URLs; add this run's port.
        app = requests.post(
            f"{root}/__emulator__/applications",
            json={
                "client_id": "demo-client.app.sage.com",
                "client_secret": "demo-secret",
                "redirect_uris": [f"{site}/intacct/callback/"],
            },
            timeout=10,
        )
        assert app.status_code == 200, app.text

        browser = requests.Session()
        page = browser.get(f"{site}/accounts/login/", timeout=10)
        page = browser.post(
            f"{site}/accounts/login/",
            data={
                "username": "alice",
                "password": "alice",
                "csrfmiddlewaretoken": csrf(page.text),
                "next": "/intacct/",
            },
            timeout=10,
        )
        assert page.url == f"{site}/intacct/"
        start = browser.post(
            f"{site}/intacct/connect/",
            data={"csrfmiddlewaretoken": csrf(page.text)},
            allow_redirects=False,
            timeout=10,
        )
        assert start.status_code in (302, 303)
        location = EmulatorServer.complete_authorization(
            None,  # type: ignore[arg-type]  (uses no server state)
            start.headers["Location"],
            "DEMO-CO",
            "admin",
            "admin",
            entity="EAST",
        )
        back = browser.get(location, allow_redirects=False, timeout=10)
        assert back.status_code == 303
        assert back.headers["Cache-Control"].startswith("no-store")
        listing = browser.get(f"{site}{back.headers['Location']}", timeout=10).text
        assert "DEMO-CO" in listing
        assert "Active" in listing

        operator = requests.Session()
        login = operator.get(f"{site}/admin/login/", timeout=10)
        operator.post(
            f"{site}/admin/login/",
            data={
                "username": "admin",
                "password": "admin",
                "csrfmiddlewaretoken": csrf(login.text),
                "next": "/admin/",
            },
            timeout=10,
        )
        changelist = operator.get(f"{site}/admin/intacct_connect/connection/", timeout=10)
        assert changelist.status_code == 200
        assert "DEMO-CO" in changelist.text
        assert "eyJ" not in changelist.text  # no JWT (access token) on the page

        # The operator runs the demo's vendor-copy schedule now; the real worker runs it.
        schedules_url = f"{site}/admin/intacct_connect/schedule/"
        schedules = operator.get(schedules_url, timeout=10).text
        match = re.search(
            r'name="_selected_action" value="(\d+)"[^>]*>.{0,400}?copy vendors', schedules, re.S
        )
        assert match, schedules[:2000]
        done = operator.post(
            schedules_url,
            data={
                "csrfmiddlewaretoken": csrf(schedules),
                "action": "run_now",
                "_selected_action": match.group(1),
            },
            timeout=10,
        )
        assert done.status_code == 200
        runs_url = f"{site}/admin/intacct_connect/jobrun/"
        deadline = time.monotonic() + 60
        while True:
            runs = operator.get(
                runs_url,
                params={"status__exact": "succeeded", "job__exact": "query_to_storage"},
                timeout=10,
            ).text
            # The changelist's result count ("1 job run"), whatever the admin's markup.
            if re.search(r"(?<!\d)1 job run(?!s)", re.sub(r"<[^>]+>", " ", runs)):
                break
            assert time.monotonic() < deadline, "the worker did not run the job in 60 s"
            time.sleep(1)
        stored = operator.get(f"{site}/admin/intacct_connect/storedrecord/", timeout=10).text
        assert "accounts-payable/vendor" in stored
    finally:
        demo.send_signal(signal.SIGINT)
        try:
            code = demo.wait(timeout=40)
        except subprocess.TimeoutExpired:
            demo.kill()
            raise
        log.close()
    output = (tmp_path / "demo.log").read_text()
    assert code == 0, output[-3000:]
    assert "Traceback" not in output
