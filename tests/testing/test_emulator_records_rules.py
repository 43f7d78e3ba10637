"""Business rules of a write (``records/rules.py``): required fields, references, balanced
journal entries, unique IDs (422 REST-1150)."""

from __future__ import annotations

from typing import Any

from intacct_connect.testing.emulator import EmulatorServer
from tests.testing.conftest import VENDOR, api, error_of


def test_missing_required_fields_are_422(
    intacct_emulator: EmulatorServer, admin_token: str
) -> None:
    response = api(intacct_emulator, "POST", VENDOR, admin_token, json={"id": "V-1"})
    assert response.status_code == 422
    assert [d["target"] for d in error_of(response)["details"]] == ["/name"]
    response = api(
        intacct_emulator,
        "POST",
        "/objects/accounts-payable/bill",
        admin_token,
        json={"billNumber": "X"},
    )
    targets = {d["target"] for d in error_of(response)["details"]}
    # accounts-payable-billRequiredProperties: dueDate, createdDate, vendor.id,
    # currency.txnCurrency (lines: an emulator rule, a bill needs something to total)
    assert targets == {"/createdDate", "/dueDate", "/vendor/id", "/currency/txnCurrency", "/lines"}


def test_duplicate_vendor_id_is_422(intacct_emulator: EmulatorServer, admin_token: str) -> None:
    response = api(
        intacct_emulator, "POST", VENDOR, admin_token, json={"id": "VEND-00001", "name": "Again"}
    )
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "operationFailed"
    assert "already exists" in error["details"][0]["message"]


def test_journal_entry_must_balance(intacct_emulator: EmulatorServer, admin_token: str) -> None:
    def entry(credit: str) -> dict[str, Any]:
        return {
            "glJournal": {"id": "GJ"},
            "postingDate": "2025-03-31",
            "description": "Accrual",
            "lines": [
                {"glAccount": {"id": "6100"}, "txnAmount": "100.00", "txnType": "debit"},
                {"glAccount": {"id": "2100"}, "txnAmount": credit, "txnType": "credit"},
            ],
        }

    path = "/objects/general-ledger/journal-entry"
    response = api(intacct_emulator, "POST", path, admin_token, json=entry("99.99"))
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "operationFailed"
    assert "not balanced" in error["details"][0]["message"]
    response = api(intacct_emulator, "POST", path, admin_token, json=entry("100"))
    assert response.status_code == 201
    record = api(
        intacct_emulator, "GET", response.json()["ia::result"]["href"], admin_token
    ).json()["ia::result"]
    assert "totalDebit" not in record  # not Sage fields
    assert "totalCredit" not in record
    assert record["glJournal"] == {"id": "GJ"}
    assert record["state"] == "posted"
    assert [line["lineNumber"] for line in record["lines"]] == [1, 2]
    assert record["lines"][1]["txnAmount"] == "100.00"
    assert record["lines"][0]["glAccount"]["name"] == "Rent Expense"
    bad_account = entry("100.00")
    bad_account["lines"][0]["glAccount"] = {"id": "9999"}
    response = api(intacct_emulator, "POST", path, admin_token, json=bad_account)
    assert response.status_code == 422


def test_bill_links_its_vendor_and_totals(
    intacct_emulator: EmulatorServer, admin_token: str
) -> None:
    path = "/objects/accounts-payable/bill"
    response = api(
        intacct_emulator,
        "POST",
        path,
        admin_token,
        json={
            "vendor": {"id": "VEND-00004"},
            "createdDate": "2025-05-01",
            "dueDate": "2025-05-31",
            "currency": {"txnCurrency": "USD"},
            "lines": [
                {"glAccount": {"id": "6300"}, "txnAmount": "10.50"},
                {"glAccount": {"id": "6400"}, "txnAmount": 4.5},
            ],
        },
    )
    assert response.status_code == 201
    result = response.json()["ia::result"]
    assert result["id"] == result["key"]
    bill = api(intacct_emulator, "GET", result["href"], admin_token).json()["ia::result"]
    assert bill["vendor"]["id"] == "VEND-00004"
    assert bill["vendor"]["href"].startswith("/objects/accounts-payable/vendor/")
    assert bill["totalTxnAmount"] == "15.00"
    assert bill["state"] == "draft"  # Sage's documented default for a new bill
    assert [line["lineNumber"] for line in bill["lines"]] == ["1", "2"]  # a string for bills
    one_line = {
        "vendor": {"id": "VEND-00004"},
        "createdDate": "2025-05-01",
        "dueDate": "2025-05-31",
        "currency": {"txnCurrency": "USD"},
        "lines": [{"glAccount": {"id": "6300"}, "txnAmount": "1"}],
    }
    unknown_vendor = {**one_line, "vendor": {"id": "NO-SUCH"}}
    assert api(intacct_emulator, "POST", path, admin_token, json=unknown_vendor).status_code == 422
    no_such_day = {**one_line, "createdDate": "2025-02-30"}
    assert api(intacct_emulator, "POST", path, admin_token, json=no_such_day).status_code == 400
