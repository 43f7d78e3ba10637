"""``Idempotency-Key`` replay (``rest/idempotency.py``)."""

from __future__ import annotations

from intacct_connect.testing.emulator import EmulatorServer
from tests.testing.conftest import VENDOR, api


def test_idempotency_key_replays_the_first_response(
    intacct_emulator: EmulatorServer, admin_token: str
) -> None:
    headers = {"Idempotency-Key": "key-1"}
    body = {"id": "IDEM-1", "name": "Once"}
    first = api(intacct_emulator, "POST", VENDOR, admin_token, headers=headers, json=body)
    assert first.status_code == 201
    assert first.headers["Idempotency-Key"] == "key-1"
    count = intacct_emulator.record_count("DEMO-CO", "accounts-payable/vendor")
    second = api(intacct_emulator, "POST", VENDOR, admin_token, headers=headers, json=body)
    assert second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["Idempotency-Key"] == "key-1"
    assert second.headers["x-ia-idempotency-cached-date"]
    assert intacct_emulator.record_count("DEMO-CO", "accounts-payable/vendor") == count
    conflict = api(
        intacct_emulator,
        "POST",
        VENDOR,
        admin_token,
        headers=headers,
        json={"id": "IDEM-2", "name": "Other"},
    )
    assert conflict.status_code == 409
    assert intacct_emulator.record_count("DEMO-CO", "accounts-payable/vendor") == count


def test_idempotency_caches_failures_and_expires(
    intacct_emulator: EmulatorServer, admin_token: str
) -> None:
    headers = {"Idempotency-Key": "key-2"}
    body = {"id": "VEND-00001", "name": "dup"}
    first = api(intacct_emulator, "POST", VENDOR, admin_token, headers=headers, json=body)
    assert first.status_code == 422
    again = api(intacct_emulator, "POST", VENDOR, admin_token, headers=headers, json=body)
    assert again.status_code == 422
    assert again.headers["x-ia-idempotency-cached-date"]
    intacct_emulator.advance_time(48 * 3600 + 1)
    fresh_token = intacct_emulator.issue_tokens("DEMO-CO", "admin")["access_token"]
    later = api(intacct_emulator, "POST", VENDOR, fresh_token, headers=headers, json=body)
    assert "x-ia-idempotency-cached-date" not in later.headers


def test_idempotency_on_patch_not_on_query(
    intacct_emulator: EmulatorServer, admin_token: str
) -> None:
    headers = {"Idempotency-Key": "key-3"}
    api(intacct_emulator, "PATCH", f"{VENDOR}/5", admin_token, headers=headers, json={"notes": "a"})
    replay = api(
        intacct_emulator, "PATCH", f"{VENDOR}/5", admin_token, headers=headers, json={"notes": "a"}
    )
    assert replay.headers.get("x-ia-idempotency-cached-date")
    query = {"object": "accounts-payable/vendor", "fields": ["id"], "size": 1}
    first = api(
        intacct_emulator, "POST", "/services/core/query", admin_token, headers=headers, json=query
    )
    assert first.status_code == 200
    assert "x-ia-idempotency-cached-date" not in first.headers
    too_long = api(
        intacct_emulator,
        "POST",
        VENDOR,
        admin_token,
        headers={"Idempotency-Key": "k" * 257},
        json={"id": "I", "name": "I"},
    )
    assert too_long.status_code == 400
