"""Create, update and delete one record (``records/writes.py``): defaults, numbering, audit
and entity stamps, partial updates, what cannot be deleted."""

from __future__ import annotations

from intacct_connect.testing.emulator import EmulatorServer
from tests.testing.conftest import VENDOR, api


def test_create_vendor(intacct_emulator: EmulatorServer, admin_token: str) -> None:
    before = intacct_emulator.record_count("DEMO-CO", "accounts-payable/vendor")
    response = api(
        intacct_emulator,
        "POST",
        VENDOR,
        admin_token,
        json={
            "id": "V-100",
            "name": "Design Works",
            "creditLimit": 40000,
            "term": {"id": "Net 30"},
            "billPayment": {"defaultDateOptions": "none"},
        },
    )
    assert response.status_code == 201
    result = response.json()["ia::result"]
    assert result == {
        "key": str(before + 1),
        "id": "V-100",
        "href": f"/objects/accounts-payable/vendor/{before + 1}",
    }
    assert response.json()["ia::meta"] == {"totalCount": 1, "totalSuccess": 1, "totalError": 0}
    record = api(intacct_emulator, "GET", result["href"], admin_token).json()["ia::result"]
    assert record["name"] == "Design Works"
    assert record["status"] == "active"
    assert record["creditLimit"] == 40000
    assert record["billPayment"] == {"defaultDateOptions": "none"}
    assert record["audit"]["createdByUser"]["id"] == "admin"
    assert intacct_emulator.record_count("DEMO-CO", "accounts-payable/vendor") == before + 1


def test_customer_id_is_auto_numbered(intacct_emulator: EmulatorServer, admin_token: str) -> None:
    response = api(
        intacct_emulator,
        "POST",
        "/objects/accounts-receivable/customer",
        admin_token,
        json={"name": "No id"},
    )
    assert response.status_code == 201
    assert response.json()["ia::result"]["id"].startswith("CUST-")


def test_created_record_belongs_to_the_requested_entity(
    intacct_emulator: EmulatorServer, admin_token: str
) -> None:
    response = api(
        intacct_emulator,
        "POST",
        VENDOR,
        admin_token,
        entity="EAST",
        json={"id": "V-EAST", "name": "East only"},
    )
    key = response.json()["ia::result"]["key"]
    record = api(intacct_emulator, "GET", f"{VENDOR}/{key}", admin_token).json()["ia::result"]
    assert record["entity"] == {
        "key": "1",
        "id": "EAST",
        "name": "East Region",
        "href": "/objects/company-config/entity/1",
    }
    assert (
        api(intacct_emulator, "GET", f"{VENDOR}/{key}", admin_token, entity="WEST").status_code
        == 404
    )


def test_patch_is_partial(intacct_emulator: EmulatorServer, admin_token: str) -> None:
    before = api(intacct_emulator, "GET", f"{VENDOR}/3", admin_token).json()["ia::result"]
    response = api(
        intacct_emulator,
        "PATCH",
        f"{VENDOR}/3",
        admin_token,
        json={"name": "Renamed", "contacts": {"default": {"email1": "new@x.com"}}},
    )
    assert response.status_code == 200
    assert response.json()["ia::result"] == {
        "key": "3",
        "id": before["id"],
        "href": "/objects/accounts-payable/vendor/3",
    }
    after = api(intacct_emulator, "GET", f"{VENDOR}/3", admin_token).json()["ia::result"]
    assert after["name"] == "Renamed"
    assert after["contacts"]["default"]["email1"] == "new@x.com"
    assert after["contacts"]["default"]["phone1"] == before["contacts"]["default"]["phone1"]
    assert after["taxId"] == before["taxId"]
    assert after["audit"]["createdDateTime"] == before["audit"]["createdDateTime"]
    response = api(intacct_emulator, "PATCH", f"{VENDOR}/3", admin_token, json={"id": "CHANGED"})
    assert response.status_code == 400
    response = api(intacct_emulator, "PATCH", f"{VENDOR}/999999", admin_token, json={"name": "x"})
    assert response.status_code == 404


def test_delete(intacct_emulator: EmulatorServer, admin_token: str) -> None:
    key = api(
        intacct_emulator, "POST", VENDOR, admin_token, json={"id": "V-DEL", "name": "To delete"}
    ).json()["ia::result"]["key"]
    response = api(intacct_emulator, "DELETE", f"{VENDOR}/{key}", admin_token)
    assert response.status_code == 204
    assert response.content == b""
    assert api(intacct_emulator, "GET", f"{VENDOR}/{key}", admin_token).status_code == 404
    assert api(intacct_emulator, "DELETE", f"{VENDOR}/{key}", admin_token).status_code == 404
    # the id can be reused after deletion
    assert (
        api(
            intacct_emulator, "POST", VENDOR, admin_token, json={"id": "V-DEL", "name": "Again"}
        ).status_code
        == 201
    )


def test_vendor_with_bills_cannot_be_deleted(
    intacct_emulator: EmulatorServer, admin_token: str
) -> None:
    bill = intacct_emulator.records("DEMO-CO", "accounts-payable/bill")[0]
    response = api(intacct_emulator, "DELETE", f"{VENDOR}/{bill['vendor']['key']}", admin_token)
    assert response.status_code == 422
