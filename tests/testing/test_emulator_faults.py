"""Fault injection (``faults.py``), through HTTP."""

from __future__ import annotations

import time

import pytest
import requests

from intacct_connect.testing.emulator import EmulatorServer
from tests.testing.conftest import VENDOR, api, refresh


def test_500_for_the_next_request_only(intacct_emulator: EmulatorServer, admin_token: str) -> None:
    intacct_emulator.set_fault("500", count=1)
    response = api(intacct_emulator, "GET", VENDOR, admin_token)
    assert response.status_code == 500
    assert response.json()["ia::error"]["code"] == "GW-0001"
    assert api(intacct_emulator, "GET", VENDOR, admin_token).status_code == 200
    assert intacct_emulator.counters()["faults_injected"] == 1
    assert intacct_emulator.faults() == []


def test_503_carries_retry_after(intacct_emulator: EmulatorServer, admin_token: str) -> None:
    intacct_emulator.configure(retry_after=7)
    intacct_emulator.set_fault("503", count=2)
    for _ in range(2):
        response = api(intacct_emulator, "GET", VENDOR, admin_token)
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "7"
    assert api(intacct_emulator, "GET", VENDOR, admin_token).status_code == 200


def test_fault_until_cleared(intacct_emulator: EmulatorServer, admin_token: str) -> None:
    intacct_emulator.set_fault("500")
    for _ in range(3):
        assert api(intacct_emulator, "GET", VENDOR, admin_token).status_code == 500
    intacct_emulator.clear_faults()
    assert api(intacct_emulator, "GET", VENDOR, admin_token).status_code == 200


def test_dropped_connection_looks_like_one(
    intacct_emulator: EmulatorServer, admin_token: str
) -> None:
    intacct_emulator.set_fault("drop", count=1)
    with pytest.raises(requests.ConnectionError):
        api(intacct_emulator, "GET", VENDOR, admin_token)
    assert api(intacct_emulator, "GET", VENDOR, admin_token).status_code == 200


def test_garbage_body(intacct_emulator: EmulatorServer, admin_token: str) -> None:
    intacct_emulator.set_fault("garbage", count=1)
    response = api(intacct_emulator, "GET", VENDOR, admin_token)
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()


def test_slow_response(intacct_emulator: EmulatorServer, admin_token: str) -> None:
    intacct_emulator.set_fault("slow", count=1, seconds=0.4)
    began = time.perf_counter()
    response = api(intacct_emulator, "GET", VENDOR, admin_token)
    assert response.status_code == 200
    assert time.perf_counter() - began >= 0.4
    intacct_emulator.set_fault("slow", count=1, seconds=0.5)
    with pytest.raises(requests.ReadTimeout):
        api(intacct_emulator, "GET", VENDOR, admin_token, timeout=0.1)


def test_injected_429(intacct_emulator: EmulatorServer, admin_token: str) -> None:
    intacct_emulator.set_fault("429", count=1)
    response = api(intacct_emulator, "GET", VENDOR, admin_token)
    assert response.status_code == 429
    assert response.json()["ia::error"]["code"] == "GW-0010"
    assert response.headers["Retry-After"]


def test_faults_per_company_and_endpoint(
    intacct_emulator: EmulatorServer, admin_token: str
) -> None:
    sandbox = intacct_emulator.issue_tokens(
        "DEMO-SANDBOX", "admin", client_id="demo-sandbox-client.app.sage.com"
    )["access_token"]
    intacct_emulator.set_fault("500", company="DEMO-SANDBOX")
    intacct_emulator.set_fault("503", endpoint="token")
    assert api(intacct_emulator, "GET", VENDOR, admin_token).status_code == 200
    assert api(intacct_emulator, "GET", VENDOR, sandbox).status_code == 500
    tokens = intacct_emulator.issue_tokens("DEMO-CO", "admin")
    assert refresh(intacct_emulator, tokens["refresh_token"]).status_code == 503


def test_token_endpoint_faults(intacct_emulator: EmulatorServer) -> None:
    tokens = intacct_emulator.issue_tokens("DEMO-CO", "admin")
    intacct_emulator.set_fault("drop", endpoint="token", company="DEMO-CO", count=1)
    with pytest.raises(requests.ConnectionError):
        refresh(intacct_emulator, tokens["refresh_token"])
    # dropped before processing: the refresh token is still good
    assert refresh(intacct_emulator, tokens["refresh_token"]).status_code == 200
    assert intacct_emulator.token_requests("refresh_token", company="DEMO-CO") == 2


def test_token_lost_rotates_then_drops(intacct_emulator: EmulatorServer) -> None:
    tokens = intacct_emulator.issue_tokens("DEMO-CO", "admin")
    intacct_emulator.set_fault("token_lost", count=1)
    with pytest.raises(requests.ConnectionError):
        refresh(intacct_emulator, tokens["refresh_token"])
    # the server did rotate: presenting the old refresh token again is a reuse
    retry = refresh(intacct_emulator, tokens["refresh_token"])
    assert retry.status_code == 400
    assert retry.json()["error"] == "invalid_grant"
    assert [g["status"] for g in intacct_emulator.grants("DEMO-CO")] == ["revoked"]


def test_bad_fault_definitions(intacct_emulator: EmulatorServer) -> None:
    with pytest.raises(ValueError, match="Unknown fault kind"):
        intacct_emulator.set_fault("404")
    with pytest.raises(ValueError, match="endpoint"):
        intacct_emulator.set_fault("500", endpoint="oauth")
    with pytest.raises(ValueError, match="count"):
        intacct_emulator.set_fault("500", count=0)
    with pytest.raises(ValueError, match="token endpoint only"):
        intacct_emulator.set_fault("token_lost", endpoint="api")
    with pytest.raises(ValueError, match="seconds"):
        intacct_emulator.set_fault("slow", seconds=-1)


def test_unexpected_exceptions_become_json_500_and_are_counted(
    intacct_emulator: EmulatorServer, admin_token: str
) -> None:
    intacct_emulator.set_fault("exception", count=1)
    response = api(intacct_emulator, "GET", VENDOR, admin_token)
    assert response.status_code == 500
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["ia::error"]["code"] == "GW-0001"
    assert "Traceback" not in response.text
    assert intacct_emulator.unexpected_errors() == 1
    assert "Injected fault" in (intacct_emulator.emulator.last_unexpected_error() or "")
    assert api(intacct_emulator, "GET", VENDOR, admin_token).status_code == 200
    intacct_emulator.reset()  # the fixture asserts no unexpected error remains
    assert intacct_emulator.unexpected_errors() == 0
