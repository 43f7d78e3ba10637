"""The fields a query names (``query/fields.py``): short object names, default fields, flat
dotted keys. Expected results are computed from the stored records (``records()``)."""

from __future__ import annotations

from intacct_connect.testing.emulator import EmulatorServer
from tests.testing.conftest import run_query


def test_short_object_name_and_default_fields(
    intacct_emulator: EmulatorServer, admin_token: str
) -> None:
    body = run_query(intacct_emulator, admin_token, {"object": "vendor", "size": 1})
    assert set(body["ia::result"][0]) == {"key", "id", "href"}


def test_fields_are_returned_flat_with_dotted_names(
    intacct_emulator: EmulatorServer, admin_token: str
) -> None:
    body = run_query(
        intacct_emulator,
        admin_token,
        {
            "object": "accounts-payable/bill",
            "fields": [
                "key",
                "id",
                "vendor.id",
                "vendor.name",
                "vendor.href",
                "currency.txnCurrency",
                "totalTxnAmount",
                "href",
                "entity.id",
            ],
            "size": 2,
        },
    )
    bills = intacct_emulator.records("DEMO-CO", "accounts-payable/bill")
    row = body["ia::result"][0]
    bill = bills[0]
    assert row == {
        "key": bill["key"],
        "id": bill["id"],
        "vendor.id": bill["vendor"]["id"],
        "vendor.name": bill["vendor"]["name"],
        "vendor.href": bill["vendor"]["href"],
        "currency.txnCurrency": "USD",
        "totalTxnAmount": bill["totalTxnAmount"],
        "href": f"/objects/accounts-payable/bill/{bill['key']}",
        "entity.id": bill["entity"]["id"],
    }
