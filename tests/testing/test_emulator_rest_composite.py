"""``POST /services/core/composite`` (``rest/composite.py``): order, references, the first
failure, validation."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from intacct_connect.testing.emulator import EmulatorServer
from tests.testing.conftest import api, error_of


def composite(emu: EmulatorServer, token: str, body: Any) -> requests.Response:
    return api(emu, "POST", "/services/core/composite", token, json=body)


def test_composite_runs_in_order_with_references(
    intacct_emulator: EmulatorServer, admin_token: str
) -> None:
    response = composite(
        intacct_emulator,
        admin_token,
        [
            {
                "method": "POST",
                "path": "/objects/accounts-payable/vendor",
                "body": {"id": "COMP-1", "name": "Composite vendor"},
                "resultReference": "vendor",
            },
            {
                "method": "POST",
                "path": "/objects/accounts-payable/bill",
                "body": {
                    "vendor": {"id": "@{vendor.id}"},
                    "createdDate": "2025-06-01",
                    "dueDate": "2025-07-01",
                    "currency": {"txnCurrency": "USD"},
                    "description": "for @{vendor.id}",
                    "lines": [{"glAccount": {"id": "6100"}, "txnAmount": "50.00"}],
                },
                "resultReference": "bill",
            },
            {"method": "GET", "path": "/objects/accounts-payable/bill/@{bill.key}"},
        ],
    )
    assert response.status_code == 200
    results = response.json()["ia::result"]
    assert [r["ia::status"] for r in results] == [201, 201, 200]
    bill = results[2]["ia::result"]
    assert bill["vendor"]["id"] == "COMP-1"
    assert bill["description"] == "for COMP-1"
    assert response.json()["ia::meta"] == {"totalCount": 3, "totalSuccess": 3, "totalError": 0}


def test_composite_stops_at_the_first_failure(
    intacct_emulator: EmulatorServer, admin_token: str
) -> None:
    response = composite(
        intacct_emulator,
        admin_token,
        [
            {
                "method": "POST",
                "path": "/objects/accounts-payable/vendor",
                "body": {"id": "C-OK", "name": "ok"},
            },
            {"method": "GET", "path": "/objects/accounts-payable/vendor/999999"},
            {
                "method": "POST",
                "path": "/objects/accounts-payable/vendor",
                "body": {"id": "C-NEVER", "name": "never"},
            },
        ],
    )
    assert response.status_code == 207
    results = response.json()["ia::result"]
    assert [r["ia::status"] for r in results] == [201, 404, 422]
    assert results[1]["ia::error"]["code"] == "notFound"
    assert results[2]["ia::error"]["code"] == "unprocessed"
    ids = {v["id"] for v in intacct_emulator.records("DEMO-CO", "accounts-payable/vendor")}
    assert "C-OK" in ids
    assert "C-NEVER" not in ids


@pytest.mark.parametrize(
    "body",
    [
        [{"method": "GET", "path": "/objects/accounts-payable/vendor/1"}],
        [{"method": "GET", "path": "/objects/accounts-payable/vendor/1"}] * 11,
        {"method": "GET"},
        [{"method": "PUT", "path": "/objects/accounts-payable/vendor/1"}] * 2,
        [{"method": "GET", "path": "objects/accounts-payable/vendor/1"}] * 2,
        [{"method": "GET", "path": "/objects/accounts-payable/vendor/1", "extra": 1}] * 2,
        ["not an object", "x"],
    ],
)
def test_composite_validation(
    intacct_emulator: EmulatorServer, admin_token: str, body: Any
) -> None:
    response = composite(intacct_emulator, admin_token, body)
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalidRequest"


def test_composite_unresolvable_reference(
    intacct_emulator: EmulatorServer, admin_token: str
) -> None:
    response = composite(
        intacct_emulator,
        admin_token,
        [
            {"method": "GET", "path": "/objects/accounts-payable/vendor/1", "resultReference": "v"},
            {"method": "GET", "path": "/objects/accounts-payable/vendor/@{v.nothing}"},
        ],
    )
    assert response.status_code == 207
    assert response.json()["ia::result"][1]["ia::status"] == 400


@pytest.mark.parametrize(("position", "resolves"), [("1", True), ("0", False), ("3", False)])
def test_references_count_positions_from_one(
    intacct_emulator: EmulatorServer, admin_token: str, position: str, resolves: bool
) -> None:
    """Sage's example: ``@{vendor.1.key}`` after a one-vendor request; a single record is an
    array of one; a batch result is indexed from 1 too."""
    single = composite(
        intacct_emulator,
        admin_token,
        [
            {"method": "GET", "path": "/objects/accounts-payable/vendor/1", "resultReference": "v"},
            {"method": "GET", "path": f"/objects/accounts-payable/vendor/@{{v.{position}.key}}"},
        ],
    )
    batch = composite(
        intacct_emulator,
        admin_token,
        [
            {
                "method": "GET",
                "path": "/objects/accounts-payable/vendor/2,1",
                "resultReference": "b",
            },
            {"method": "GET", "path": f"/objects/accounts-payable/vendor/@{{b.{position}.key}}"},
        ],
    )
    for response, expected_key in ((single, "1"), (batch, "2")):
        second = response.json()["ia::result"][1]
        if resolves:
            assert response.status_code == 200
            assert second["ia::result"]["key"] == expected_key
        else:
            assert (response.status_code, second["ia::status"]) == (207, 400)
