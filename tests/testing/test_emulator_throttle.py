"""Throttling (``throttle.py``): the concurrency and per-minute limits, through HTTP."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from intacct_connect.testing.emulator import EmulatorServer
from tests.testing.conftest import VENDOR, api


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
