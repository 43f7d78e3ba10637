"""The pytest plugin shipped for host sites: fixtures, reset per test, lazy imports."""

from __future__ import annotations

import subprocess
import sys
from urllib.parse import parse_qs, urlsplit

import pytest

from intacct_connect.conf import app_settings
from intacct_connect.testing.emulator import EmulatorServer

pytest_plugins = ["pytester"]

SITE_TESTS = """
import requests

def test_one_creates(intacct_emulator):
    token = intacct_emulator.issue_tokens("DEMO-CO", "admin")["access_token"]
    response = requests.post(
        intacct_emulator.base_url + "/objects/accounts-payable/vendor",
        headers={"Authorization": "Bearer " + token},
        json={"id": "SITE-1", "name": "Site vendor"},
    )
    assert response.status_code == 201
    intacct_emulator.configure(refresh_mode="none")
    intacct_emulator.set_fault("500")
    with open("port.txt", "a") as handle:
        handle.write(intacct_emulator.base_url + "\\n")

def test_two_sees_fresh_state(intacct_emulator):
    ids = {v["id"] for v in intacct_emulator.records("DEMO-CO", "accounts-payable/vendor")}
    assert "SITE-1" not in ids
    assert intacct_emulator.faults() == []
    assert intacct_emulator.emulator.config()["refresh_mode"] == "reuse_detection"
    assert intacct_emulator.counters()["api_calls"] == {}
    with open("port.txt", "a") as handle:
        handle.write(intacct_emulator.base_url + "\\n")
"""


@pytest.mark.slow
def test_fixture_in_a_site_test_suite(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_site=SITE_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    urls = (pytester.path / "port.txt").read_text().split()
    assert len(urls) == 2
    assert urls[0] == urls[1]


@pytest.mark.slow
def test_plugin_import_is_lazy() -> None:
    code = (
        "import sys\n"
        "import intacct_connect.testing.pytest_plugin\n"
        "import intacct_connect.testing\n"
        "loaded = [m for m in ('werkzeug', 'jwt', 'django', 'requests') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr


def test_intacct_connect_settings_points_the_app_at_the_emulator(
    intacct_connect_settings: EmulatorServer,
) -> None:
    assert app_settings.API_BASE_URL == intacct_connect_settings.base_url
    assert app_settings.TOKEN_URL == intacct_connect_settings.token_url
    assert app_settings.CLIENT_ID == "demo-client.app.sage.com"
    # the site's own REDIRECT_URI is kept (and registered for the demo application)
    assert app_settings.REDIRECT_URI == "https://app.example.com/intacct/callback/"
    assert app_settings.TOKEN_KEYS  # other keys are untouched


def test_the_package_oauth_client_against_the_emulator(
    intacct_connect_settings: EmulatorServer,
) -> None:
    from intacct_connect import oauth

    request = oauth.start_authorization()
    location = intacct_connect_settings.complete_authorization(
        request.url, "DEMO-CO", "jane", "jane", entity="WEST"
    )
    params = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    assert params["state"] == request.state
    tokens = oauth.exchange_code(params["code"], request.code_verifier)
    assert (tokens.company_id, tokens.user_id, tokens.entity_id) == ("DEMO-CO", "jane", "WEST")
    assert tokens.refresh_token
    refreshed = oauth.refresh(tokens.refresh_token)
    assert refreshed.refresh_token != tokens.refresh_token
    assert intacct_connect_settings.token_requests("refresh_token") == 1
