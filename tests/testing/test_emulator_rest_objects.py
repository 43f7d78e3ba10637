"""``/objects`` list and get (``rest/objects.py``): pages of references, full records,
``?fields=`` projections and 404s, through HTTP."""

from __future__ import annotations

import pytest

from intacct_connect.testing.emulator import EmulatorServer
from tests.testing.conftest import VENDOR, api, error_of


def test_list_returns_at_most_100_references(
    intacct_emulator: EmulatorServer, admin_token: str
) -> None:
    response = api(intacct_emulator, "GET", VENDOR, admin_token)
    body = response.json()
    total = intacct_emulator.record_count("DEMO-CO", "accounts-payable/vendor")
    assert len(body["ia::result"]) == 100
    assert body["ia::meta"] == {
        "totalCount": total,
        "start": 1,
        "pageSize": 100,
        "next": 101,
        "previous": None,
    }
    first = body["ia::result"][0]
    assert set(first) == {"key", "id", "href"}
    assert first["href"] == f"/objects/accounts-payable/vendor/{first['key']}"


def test_get_one_returns_the_full_object(
    intacct_emulator: EmulatorServer, admin_token: str
) -> None:
    body = api(intacct_emulator, "GET", f"{VENDOR}/7", admin_token).json()
    assert body["ia::meta"] == {"totalCount": 1, "totalSuccess": 1, "totalError": 0}
    vendor = body["ia::result"]
    stored = next(
        v for v in intacct_emulator.records("DEMO-CO", "accounts-payable/vendor") if v["key"] == "7"
    )
    assert vendor == stored
    assert vendor["href"] == "/objects/accounts-payable/vendor/7"
    assert set(vendor["audit"]) >= {
        "createdDateTime",
        "modifiedDateTime",
        "createdByUser",
        "modifiedByUser",
        "createdBy",
        "modifiedBy",
    }
    assert isinstance(vendor["totalDue"], str)


@pytest.mark.parametrize(
    "path",
    [
        "/objects/accounts-receivable/customer",
        "/objects/accounts-receivable/invoice",
        "/objects/accounts-payable/bill",
        "/objects/general-ledger/account",
        "/objects/general-ledger/journal-entry",
        "/objects/company-config/entity",
    ],
)
def test_every_object_lists_and_gets(
    intacct_emulator: EmulatorServer, admin_token: str, path: str
) -> None:
    listing = api(intacct_emulator, "GET", path, admin_token).json()
    assert listing["ia::meta"]["totalCount"] >= 2
    key = listing["ia::result"][0]["key"]
    record = api(intacct_emulator, "GET", f"{path}/{key}", admin_token).json()["ia::result"]
    assert record["key"] == key
    assert isinstance(record["id"], str)


def test_unknown_key_and_unknown_object_are_404(
    intacct_emulator: EmulatorServer, admin_token: str
) -> None:
    response = api(intacct_emulator, "GET", f"{VENDOR}/999999", admin_token)
    assert response.status_code == 404
    assert error_of(response)["code"] == "notFound"
    for path in (
        "/objects/accounts-payable/nothing",
        "/objects/accounts-payable",
        "/objects/x/y/1/2",
        "/services/core/nothing",
        "/nowhere",
    ):
        response = api(intacct_emulator, "GET", path, admin_token)
        assert response.status_code == 404, path
        assert error_of(response)["code"] == "notFound"


def test_get_with_fields_parameter(intacct_emulator: EmulatorServer, admin_token: str) -> None:
    response = api(
        intacct_emulator,
        "GET",
        "/objects/accounts-payable/bill/2",
        admin_token,
        params={"fields": "id,vendor.id,totalTxnAmount"},
    )
    bill = next(
        b for b in intacct_emulator.records("DEMO-CO", "accounts-payable/bill") if b["key"] == "2"
    )
    assert response.json()["ia::result"] == {
        "id": "2",
        "vendor": {"id": bill["vendor"]["id"]},
        "totalTxnAmount": bill["totalTxnAmount"],
    }
    many = api(intacct_emulator, "GET", f"{VENDOR}/1,2", admin_token, params={"fields": "name"})
    assert [set(r) for r in many.json()["ia::result"]] == [{"name"}, {"name"}]
    bad = api(intacct_emulator, "GET", f"{VENDOR}/1", admin_token, params={"fields": "id,nope"})
    assert bad.status_code == 400
    assert bad.json()["ia::error"]["errorId"] == "REST-1043"
