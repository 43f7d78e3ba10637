"""``GET /services/core/model`` (``rest/model.py``)."""

from __future__ import annotations

from intacct_connect.testing.emulator import EmulatorServer
from tests.testing.conftest import api


def test_model_of_an_object(intacct_emulator: EmulatorServer, admin_token: str) -> None:
    body = api(
        intacct_emulator, "GET", "/services/core/model?name=accounts-payable/vendor", admin_token
    ).json()
    model = body["ia::result"]
    assert model["fields"]["id"]["type"] == "string"
    assert all(f["required"] is False for f in model["fields"].values())  # as Sage documents
    assert model["fields"]["status"]["enum"] == ["active", "activeNonPosting", "inactive"]
    assert model["fields"]["key"]["readOnly"] is True
    assert model["refs"]["term"]["apiObject"] == "accounts-payable/term"
    assert "audit" in model["groups"]
    assert model["httpMethods"] == "OPTIONS,GET,POST,PATCH,DELETE"
    assert model["idempotenceSupported"] is True
    je = api(
        intacct_emulator,
        "GET",
        "/services/core/model?name=general-ledger/journal-entry",
        admin_token,
    ).json()["ia::result"]
    assert je["lists"]["lines"]["fields"]["txnType"]["enum"] == ["debit", "credit"]


def test_model_of_unknown_object_is_an_empty_array(
    intacct_emulator: EmulatorServer, admin_token: str
) -> None:
    body = api(intacct_emulator, "GET", "/services/core/model?name=foo/bar", admin_token).json()
    assert body["ia::result"] == []
    listing = api(intacct_emulator, "GET", "/services/core/model", admin_token).json()
    names = {item["apiObject"] for item in listing["ia::result"]}
    assert "objects/general-ledger/journal-entry" in names
    assert "services/core/query" in names
