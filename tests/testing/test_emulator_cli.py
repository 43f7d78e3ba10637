"""``python -m intacct_connect.testing.emulator`` as a real subprocess (marked slow:
subprocesses)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.slow


class Running:
    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "intacct_connect.testing.emulator", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        match = re.search(r"API base URL (http://127\.0\.0\.1:\d+/ia/api/v1)", line)
        assert match, line + (self.process.stderr.read() if self.process.stderr else "")
        self.base_url = match.group(1)
        self.root_url = self.base_url.removesuffix("/ia/api/v1")

    def stop(self, sig: int = signal.SIGINT) -> tuple[int, str, str]:
        self.process.send_signal(sig)
        out, err = self.process.communicate(timeout=10)
        return self.process.returncode, out, err


@pytest.fixture
def state_file(tmp_path: Path) -> Path:
    return tmp_path / "emulator-state.json"


def test_cli_serves_and_stops_cleanly_on_ctrl_c(state_file: Path) -> None:
    server = Running("--state", str(state_file))
    try:
        config = requests.get(
            f"{server.root_url}/.well-known/openid-configuration", timeout=5
        ).json()
        assert config["token_endpoint"] == f"{server.base_url}/oauth2/token"
        tokens = requests.post(
            f"{server.root_url}/__emulator__/tokens",
            json={"company_id": "DEMO-CO", "user_id": "admin"},
            timeout=5,
        ).json()
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        created = requests.post(
            f"{server.base_url}/objects/accounts-payable/vendor",
            headers=headers,
            json={"id": "CLI-1", "name": "Persisted"},
            timeout=5,
        )
        assert created.status_code == 201
    finally:
        code, out, err = server.stop(signal.SIGINT)
    assert code == 0, err
    assert "Traceback" not in err
    assert "Traceback" not in out
    assert "Emulator stopped." in out
    data = json.loads(state_file.read_text())
    assert data["version"] == 1
    assert not list(state_file.parent.glob(".emulator-state-*"))  # no temporary files left

    # a restart with the same state file keeps keys, tokens and records
    again = Running("--state", str(state_file))
    try:
        vendor = requests.get(
            f"{again.base_url}/objects/accounts-payable/vendor/{created.json()['ia::result']['key']}",
            headers=headers,
            timeout=5,
        )
        assert vendor.status_code == 200
        assert vendor.json()["ia::result"]["id"] == "CLI-1"
        refreshed = requests.post(
            f"{again.base_url}/oauth2/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": tokens["refresh_token"],
                "client_id": "demo-client.app.sage.com",
                "client_secret": "demo-secret",
            },
            timeout=5,
        )
        assert refreshed.status_code == 200
    finally:
        code, out, err = again.stop(signal.SIGTERM)
    assert code == 0, err
    assert "Traceback" not in err


def test_cli_without_state_and_bad_state_file(tmp_path: Path) -> None:
    server = Running()
    try:
        assert requests.get(server.root_url + "/", timeout=5).status_code == 200
    finally:
        code, _out, err = server.stop()
    assert code == 0
    assert "Traceback" not in err
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "intacct_connect.testing.emulator",
            "--port",
            "0",
            "--state",
            str(bad),
        ],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == 1
    assert "not an emulator state file" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_port_in_use(tmp_path: Path) -> None:
    server = Running()
    try:
        port = server.root_url.rsplit(":", 1)[1]
        result = subprocess.run(
            [sys.executable, "-m", "intacct_connect.testing.emulator", "--port", port],
            capture_output=True,
            text=True,
            timeout=20,
        )
        assert result.returncode == 1
        assert "Could not start the emulator" in result.stderr
        assert "Traceback" not in result.stderr
    finally:
        server.stop()


def test_cli_options_configure_token_lifetime_and_refresh_mode() -> None:
    server = Running("--access-token-ttl", "900", "--refresh-mode", "rotate")
    try:
        tokens = requests.post(
            f"{server.root_url}/__emulator__/tokens",
            json={"company_id": "DEMO-CO", "user_id": "admin"},
            timeout=5,
        ).json()
        assert tokens["expires_in"] == 900
    finally:
        code, _out, err = server.stop()
    assert code == 0
    assert "Traceback" not in err
    bad = subprocess.run(
        [sys.executable, "-m", "intacct_connect.testing.emulator", "--access-token-ttl", "-5"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert bad.returncode == 1
    assert "access_token_ttl must be a positive number" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_cli_registers_redirect_uris(state_file: Path) -> None:
    uris = ["http://localhost:28123/intacct/callback/", "https://app.example.org/cb/"]
    server = Running(
        "--state", str(state_file), "--redirect-uri", uris[0], "--redirect-uri", uris[1]
    )
    try:
        # Read the start-up lines here: communicate() would miss what readline() buffered.
        assert server.process.stdout is not None
        startup = [server.process.stdout.readline() for _ in range(6)]
        assert startup[-2:] == [
            f"  redirect URI registered for demo-client.app.sage.com: {uri}\n" for uri in uris
        ]
        listed = requests.get(f"{server.root_url}/__emulator__/redirect-uris", timeout=5).json()
        assert listed["client_id"] == "demo-client.app.sage.com"
        assert listed["redirect_uris"][-2:] == uris
        page = requests.get(
            f"{server.base_url}/oauth2/authorize",
            params={
                "response_type": "code",
                "client_id": "demo-client.app.sage.com",
                "redirect_uri": uris[0],
            },
            timeout=5,
        )
        assert page.status_code == 200
        assert 'name="password"' in page.text
    finally:
        code, out, err = server.stop()
    assert code == 0, err
    assert "Emulator stopped." in out
    # kept in the state file, and registering again does not duplicate it
    again = Running("--state", str(state_file), "--redirect-uri", uris[0])
    try:
        listed = requests.get(f"{again.root_url}/__emulator__/redirect-uris", timeout=5).json()
        assert listed["redirect_uris"].count(uris[0]) == 1
    finally:
        again.stop()

    sandbox = Running("--client-id", "demo-sandbox-client.app.sage.com", "--redirect-uri", uris[1])
    try:
        listed = requests.get(
            f"{sandbox.root_url}/__emulator__/redirect-uris",
            params={"client_id": "demo-sandbox-client.app.sage.com"},
            timeout=5,
        ).json()
        assert uris[1] in listed["redirect_uris"]
    finally:
        sandbox.stop()


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["--redirect-uri", "localhost:8000/cb"], 1, "is not an absolute URL"),
        (["--redirect-uri", "http://app.example.com/cb/"], 1, "use https"),
        (
            ["--redirect-uri", "https://a.example.com/", "--client-id", "nope"],
            1,
            "Unknown client 'nope'",
        ),
        (["--client-id", "demo-client.app.sage.com"], 2, "--client-id needs"),
        (["--redirect-uri"], 2, "expected one argument"),
    ],
)
def test_cli_bad_redirect_uri(args: list[str], status: int, message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "intacct_connect.testing.emulator", "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == status, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    if status == 1:
        assert result.stderr.startswith("Could not start the emulator: ")
    assert result.stdout == ""  # refused before it listened
