"""The batch forms of ``/objects`` (``rest/batch.py``): arrays of creates and patches,
comma-separated keys, and atomic batches."""

from __future__ import annotations

from intacct_connect.testing.emulator import EmulatorServer
from tests.testing.conftest import VENDOR, api


def test_batch_get_with_comma_separated_keys(
    intacct_emulator: EmulatorServer, admin_token: str
) -> None:
    response = api(intacct_emulator, "GET", f"{VENDOR}/1,2,3", admin_token)
    assert response.status_code == 200
    assert [r["key"] for r in response.json()["ia::result"]] == ["1", "2", "3"]
    response = api(intacct_emulator, "GET", f"{VENDOR}/1,999999", admin_token)
    assert response.status_code == 207
    results = response.json()["ia::result"]
    assert results[0]["key"] == "1"
    assert results[1]["ia::status"] == 404
    assert results[1]["ia::error"]["code"] == "notFound"
    assert response.json()["ia::meta"] == {"totalCount": 2, "totalSuccess": 1, "totalError": 1}


def test_batch_create_partial_success_is_207(
    intacct_emulator: EmulatorServer, admin_token: str
) -> None:
    before = intacct_emulator.record_count("DEMO-CO", "accounts-payable/vendor")
    response = api(
        intacct_emulator,
        "POST",
        VENDOR,
        admin_token,
        json=[
            {"id": "B-1", "name": "One"},
            {"id": "VEND-00001", "name": "Duplicate"},
            {"id": "B-3", "name": "Three"},
        ],
    )
    assert response.status_code == 207
    results = response.json()["ia::result"]
    assert [r["ia::status"] for r in results] == [201, 422, 201]
    assert results[0]["id"] == "B-1"
    assert results[0]["href"]
    assert results[1]["ia::error"]["code"] == "operationFailed"
    assert response.json()["ia::meta"] == {"totalCount": 3, "totalSuccess": 2, "totalError": 1}
    assert intacct_emulator.record_count("DEMO-CO", "accounts-payable/vendor") == before + 2


def test_batch_create_all_ok_is_201(intacct_emulator: EmulatorServer, admin_token: str) -> None:
    response = api(
        intacct_emulator,
        "POST",
        VENDOR,
        admin_token,
        json=[{"id": f"OK-{i}", "name": f"Vendor {i}"} for i in range(5)],
    )
    assert response.status_code == 201
    assert [r["id"] for r in response.json()["ia::result"]] == [f"OK-{i}" for i in range(5)]


def test_atomic_batch_is_all_or_nothing(intacct_emulator: EmulatorServer, admin_token: str) -> None:
    before = intacct_emulator.records("DEMO-CO", "accounts-payable/vendor")
    response = api(
        intacct_emulator,
        "POST",
        VENDOR,
        admin_token,
        headers={"X-IA-API-Param-Transaction": "true"},
        json=[{"id": "A-1", "name": "One"}, {"id": "A-2"}, {"id": "A-3", "name": "Three"}],
    )
    assert response.status_code == 422
    results = response.json()["ia::result"]
    assert results[0]["ia::error"]["code"] == "unprocessed"
    assert results[1]["ia::error"]["code"] == "operationFailed"
    assert results[2] == {
        "ia::error": {
            "code": "unprocessed",
            "message": "Operation skipped due to atomic transaction failure",
        },
        "ia::status": 422,
    }
    assert intacct_emulator.records("DEMO-CO", "accounts-payable/vendor") == before
    # the next create gets the next key as if nothing happened
    created = api(
        intacct_emulator, "POST", VENDOR, admin_token, json={"id": "A-1", "name": "One"}
    ).json()["ia::result"]
    assert created["key"] == str(len(before) + 1)


def test_batch_patch_needs_keys(intacct_emulator: EmulatorServer, admin_token: str) -> None:
    response = api(
        intacct_emulator,
        "PATCH",
        VENDOR,
        admin_token,
        json=[{"key": "1", "name": "P1"}, {"name": "no key"}, {"key": "2", "notes": "n"}],
    )
    assert response.status_code == 207
    assert [r["ia::status"] for r in response.json()["ia::result"]] == [200, 400, 200]
    assert (
        api(intacct_emulator, "GET", f"{VENDOR}/1", admin_token).json()["ia::result"]["name"]
        == "P1"
    )


def test_batch_delete(intacct_emulator: EmulatorServer, admin_token: str) -> None:
    keys = [
        api(
            intacct_emulator, "POST", VENDOR, admin_token, json={"id": f"D-{i}", "name": "d"}
        ).json()["ia::result"]["key"]
        for i in range(3)
    ]
    response = api(intacct_emulator, "DELETE", f"{VENDOR}/{keys[0]},{keys[1]}", admin_token)
    assert response.status_code == 204
    response = api(
        intacct_emulator,
        "DELETE",
        f"{VENDOR}/{keys[2]},999999",
        admin_token,
        headers={"X-IA-API-Param-Transaction": "true"},
    )
    assert response.status_code == 404
    assert api(intacct_emulator, "GET", f"{VENDOR}/{keys[2]}", admin_token).status_code == 200
    response = api(intacct_emulator, "DELETE", f"{VENDOR}/{keys[2]},999999", admin_token)
    assert response.status_code == 207
    assert [r["ia::status"] for r in response.json()["ia::result"]] == [204, 404]


def test_batch_limits(intacct_emulator: EmulatorServer, admin_token: str) -> None:
    response = api(
        intacct_emulator,
        "POST",
        VENDOR,
        admin_token,
        json=[{"id": f"L-{i}", "name": "x"} for i in range(501)],
    )
    assert response.status_code == 400
    assert intacct_emulator.record_count("DEMO-CO", "accounts-payable/vendor") == 250
    keys = ",".join(str(i) for i in range(1, 502))
    assert api(intacct_emulator, "GET", f"{VENDOR}/{keys}", admin_token).status_code == 400
    assert api(intacct_emulator, "GET", f"{VENDOR}/1,,2", admin_token).status_code == 400
