"""The README's demo (``make demo`` → ``example_project/run_demo.py``) as a user sees it:
all four processes start on moved ports, a tenant connects a company through the emulator's
pages, the admin shows the connection without its token, and Ctrl-C stops everything
cleanly; a port in use or a process failing at start-up stops it at once."""

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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def csrf(html: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert match, html[:500]
    return match.group(1)


def demo_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("INTACCT_", "DJANGO_", "CELERY_", "DEMO_")) and k != "DATABASE_URL"
    }
    env.update(DEMO_DIR=str(tmp_path / "demo"), PYTHONUNBUFFERED="1", **extra)
    return env


def run_demo(env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "example_project/run_demo.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.mark.parametrize("variable", ["DEMO_SITE_ADDRESS", "INTACCT_EMULATOR_PORT"])
def test_port_in_use_stops_before_anything_starts(tmp_path: Path, variable: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        other = free_port()
        ports = {
            "DEMO_SITE_ADDRESS": f"127.0.0.1:{port if variable == 'DEMO_SITE_ADDRESS' else other}",
            "INTACCT_EMULATOR_PORT": str(port if variable == "INTACCT_EMULATOR_PORT" else other),
        }
        started = time.monotonic()
        result = run_demo(demo_env(tmp_path, **ports), timeout=30)
    assert time.monotonic() - started < 10
    assert result.returncode == 1
    assert f"port {port} is already in use ({variable}={ports[variable]})" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "demo").exists()  # nothing ran: not even the migrations
    assert "Demo running" not in result.stdout


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEMO_SITE_ADDRESS": "127.0.0.1:web"}, "'web' is not a port number from 1 to 65535"),
        ({"DEMO_SITE_ADDRESS": ":28000"}, "':28000' has no host before the colon"),
        ({"INTACCT_EMULATOR_PORT": "0"}, "'0' is not a port number from 1 to 65535"),
        (
            {"DEMO_SITE_ADDRESS": "127.0.0.1:28999", "INTACCT_EMULATOR_PORT": "28999"},
            "the site and the emulator cannot share port 28999",
        ),
    ],
)
def test_bad_addresses_are_precise_errors(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    result = run_demo(demo_env(tmp_path, **env), timeout=30)
    assert result.returncode == 1
    assert result.stderr.startswith("Demo not started: ")
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "demo").exists()


@pytest.mark.slow
def test_process_failing_at_start_up_stops_the_rest_at_once(tmp_path: Path) -> None:
    emulator_port, site_port = free_port(), free_port()
    env = demo_env(
        tmp_path,
        INTACCT_EMULATOR_PORT=str(emulator_port),
        DEMO_SITE_ADDRESS=f"127.0.0.1:{site_port}",
        CELERY_BROKER_URL="no-such-transport://localhost//",  # the worker and beat exit
    )
    started = time.monotonic()
    result = run_demo(env, timeout=60)
    assert time.monotonic() - started < 30  # not the 60 s start-up timeout
    assert result.returncode == 1
    assert re.search(r"Demo not started: (the Celery worker|Celery beat) exited", result.stderr)
    assert "Emulator stopped." in result.stdout
    assert result.stdout.rstrip().endswith("Demo stopped.")
    assert "Demo running" not in result.stdout
    assert port_is_free(emulator_port)
    assert port_is_free(site_port)


@pytest.mark.slow
def test_demo_runs_connects_and_stops(tmp_path: Path) -> None:
    emulator_port, site_port = free_port(), free_port()
    # The site's REDIRECT_URI follows DEMO_SITE_ADDRESS; the emulator registers it.
    site = f"http://localhost:{site_port}"
    env = demo_env(
        tmp_path,
        INTACCT_EMULATOR_PORT=str(emulator_port),
        DEMO_SITE_ADDRESS=f"127.0.0.1:{site_port}",
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
        while "Press Ctrl-C to stop." not in (tmp_path / "demo.log").read_text():
            assert demo.poll() is None, (tmp_path / "demo.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the demo did not start in 90 s"
            time.sleep(0.5)
        banner = (tmp_path / "demo.log").read_text()
        # Printed last: after the worker and beat are ready.
        assert banner.index("ready.") < banner.index("Demo running")
        assert banner.index("beat: Starting...") < banner.index("Demo running")
        assert f"site      {site}/intacct/" in banner
        assert f"emulator  http://127.0.0.1:{emulator_port}/ia/api/v1" in banner
        registered = requests.get(
            f"http://127.0.0.1:{emulator_port}/__emulator__/redirect-uris", timeout=10
        ).json()["redirect_uris"]
        assert f"{site}/intacct/callback/" in registered
        icon = requests.get(f"{site}/favicon.ico", timeout=10)
        assert icon.status_code == 200
        assert icon.headers["Content-Type"] == "image/svg+xml"

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
            None,  # type: ignore[arg-type]  # uses no server state
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
                "post": "yes",  # the action's confirmation page, answered
            },
            timeout=10,
        )
        assert done.status_code == 200
        assert "Queued 1 run" in done.text, done.text[:2000]
        runs_url = f"{site}/admin/intacct_connect/jobrun/"
        deadline = time.monotonic() + 60
        while True:
            runs = operator.get(
                runs_url,
                params={"status__exact": "succeeded", "job__exact": "query_to_storage"},
                timeout=10,
            ).text
            # The changelist's result count ("1 job run"; 2 if beat's dispatcher has run the
            # schedule too), whatever the admin's markup.
            if re.search(r"(?<!\d)[1-9] job runs?\b", re.sub(r"<[^>]+>", " ", runs)):
                break
            assert time.monotonic() < deadline, (
                "the worker did not run the job in 60 s: "
                + (tmp_path / "demo.log").read_text()[-4000:]
            )
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
    assert output.rstrip().endswith("Demo stopped.")
    assert output.count("Emulator stopped.") == 1
    # Celery's lines carry a timestamp and a task ID: each appears once (no second handler).
    logged = [line for line in output.splitlines() if line.startswith("[20")]
    assert logged
    assert len(logged) == len(set(logged)), sorted(
        line for line in logged if logged.count(line) > 1
    )
    assert "No hostname was supplied" not in output
    # The filesystem broker's exchange tables stay in the demo directory.
    assert (tmp_path / "demo" / "broker" / "control" / "celery.exchange").is_file()
    assert not (ROOT / "control").exists()
    assert port_is_free(emulator_port)
    assert port_is_free(site_port)
