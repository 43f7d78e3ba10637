"""Fault injection and throttling, through HTTP."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from intacct_connect.testing.emulator import EmulatorServer
from tests.testing.conftest import CLIENT_ID, CLIENT_SECRET, api

VENDOR = "/objects/accounts-payable/vendor"


def refresh(emu: EmulatorServer, token: str) -> requests.Response:
    return requests.post(
        emu.token_url,
        data={
            "grant_type": "refresh_token",
            "refresh_token": token,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
        timeout=10,
    )


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


# --- throttling -----------------------------------------------------------------------------
def test_concurrency_limit(intacct_emulator: EmulatorServer, admin_token: str) -> None:
    intacct_emulator.configure(concurrency_limit=1, retry_after=3)
    intacct_emulator.set_fault("slow", count=1, seconds=2)
    holder = threading.Thread(target=api, args=(intacct_emulator, "GET", VENDOR, admin_token))
    holder.start()
    deadline = time.monotonic() + 5
    while intacct_emulator.max_concurrency("DEMO-CO") < 1 and time.monotonic() < deadline:
        time.sleep(0.01)  # until the slow request is in flight (not a fixed sleep: load)
    response = api(intacct_emulator, "GET", VENDOR, admin_token)
    holder.join()
    assert response.status_code == 429
    assert response.json()["ia::error"]["code"] == "GW-0010"
    assert response.headers["X-IA-Throttle-Limit"] == "1"
    assert response.headers["X-IA-Throttle-Limit-Remaining"] == "0"
    assert response.headers["X-IA-Throttle-Limit-RetryAfter"] == "3"
    assert response.headers["Retry-After"] == "3"
    ok = api(intacct_emulator, "GET", VENDOR, admin_token)
    assert ok.status_code == 200
    assert ok.headers["X-IA-Throttle-Limit"] == "1"
    assert intacct_emulator.counters()["throttled"] == {"DEMO-CO": 1}
    assert intacct_emulator.max_concurrency("DEMO-CO") == 2


def test_per_minute_limit(intacct_emulator: EmulatorServer, admin_token: str) -> None:
    intacct_emulator.configure(per_minute_limit=3)
    remaining = [
        api(intacct_emulator, "GET", VENDOR, admin_token).headers[
            "X-IA-Minute-Rate-Limit-Remaining"
        ]
        for _ in range(3)
    ]
    assert remaining == ["2", "1", "0"]
    response = api(intacct_emulator, "GET", VENDOR, admin_token)
    assert response.status_code == 429
    assert response.headers["X-IA-Minute-Rate-Limit"] == "3"
    assert response.headers["X-IA-Minute-Rate-Limit-Remaining"] == "0"
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    # another company has its own window
    other = intacct_emulator.issue_tokens(
        "DEMO-SANDBOX", "admin", client_id="demo-sandbox-client.app.sage.com"
    )["access_token"]
    assert api(intacct_emulator, "GET", VENDOR, other).status_code == 200
    intacct_emulator.advance_time(61)
    fresh = intacct_emulator.issue_tokens("DEMO-CO", "admin")["access_token"]
    assert api(intacct_emulator, "GET", VENDOR, fresh).status_code == 200


def test_not_throttled_by_default(intacct_emulator: EmulatorServer, admin_token: str) -> None:
    response = api(intacct_emulator, "GET", VENDOR, admin_token)
    assert "X-IA-Throttle-Limit" not in response.headers
    assert "X-IA-Minute-Rate-Limit" not in response.headers


def test_flood_of_concurrent_requests(intacct_emulator: EmulatorServer, admin_token: str) -> None:
    intacct_emulator.set_fault("slow", count=8, seconds=0.2)

    def call(i: int) -> int:
        if i % 3 == 0:
            return api(
                intacct_emulator,
                "POST",
                VENDOR,
                admin_token,
                json={"id": f"FLOOD-{i}", "name": "Flood"},
            ).status_code
        if i % 3 == 1:
            return api(
                intacct_emulator,
                "POST",
                "/services/core/query",
                admin_token,
                json={"object": "accounts-payable/vendor", "fields": ["id"]},
            ).status_code
        return api(intacct_emulator, "GET", f"{VENDOR}/{i % 200 + 1}", admin_token).status_code

    with ThreadPoolExecutor(max_workers=24) as pool:
        statuses = list(pool.map(call, range(240)))
    assert statuses.count(201) == 80
    assert statuses.count(200) == 160
    assert intacct_emulator.api_calls("DEMO-CO") == 240
    assert intacct_emulator.max_concurrency("DEMO-CO") >= 2
    ids = [v["id"] for v in intacct_emulator.records("DEMO-CO", "accounts-payable/vendor")]
    assert len(ids) == len(set(ids)) == 250 + 80


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
