"""The emulator's REST API (objects, batch, composite, model, idempotency), through HTTP."""

from __future__ import annotations

from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intacct_connect.testing.emulator import EmulatorServer
from tests.testing.conftest import api

VENDOR = "/objects/accounts-payable/vendor"


def error_of(response: requests.Response) -> dict[str, Any]:
    body = response.json()
    assert body["ia::meta"] == {"totalCount": 1, "totalSuccess": 0, "totalError": 1}
    error: dict[str, Any] = body["ia::error"]
    assert error["supportId"]
    return error


# --- authentication ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "GW-0034"),
        ("Basic YTpi", "GW-0034"),
        ("Bearer", "GW-0034"),
        ("Bearer not-a-jwt", "GW-0031"),
        ("Bearer a.b.c", "GW-0031"),
    ],
)
def test_missing_or_garbled_bearer_token(
    intacct_emulator: EmulatorServer, header: str | None, code: str
) -> None:
    headers = {"Authorization": header} if header else {}
    response = requests.get(f"{intacct_emulator.base_url}{VENDOR}", headers=headers, timeout=5)
    assert response.status_code == 401
    assert response.json()["ia::error"]["code"] == code


def test_token_signed_by_another_key_is_invalid(intacct_emulator: EmulatorServer) -> None:
    good = intacct_emulator.issue_tokens("DEMO-CO", "admin")["access_token"]
    claims = jwt.decode(good, options={"verify_signature": False})
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims, other_key, algorithm="RS256")
    response = api(intacct_emulator, "GET", VENDOR, forged)
    assert response.status_code == 401
    assert response.json()["ia::error"]["code"] == "GW-0031"
    unsigned = jwt.encode(claims, "s" * 32, algorithm="HS256")
    assert api(intacct_emulator, "GET", VENDOR, unsigned).json()["ia::error"]["code"] == "GW-0031"


def test_expired_token_is_401_gw0040(intacct_emulator: EmulatorServer) -> None:
    tokens = intacct_emulator.issue_tokens("DEMO-CO", "admin")
    assert api(intacct_emulator, "GET", VENDOR, tokens["access_token"]).status_code == 200
    intacct_emulator.advance_time(21601)
    response = api(intacct_emulator, "GET", VENDOR, tokens["access_token"])
    assert response.status_code == 401
    assert response.json()["ia::error"]["code"] == "GW-0040"
    assert response.json()["ia::error"]["message"] == "Expired token"
    # the refresh token still works and yields a usable token
    fresh = requests.post(
        intacct_emulator.token_url,
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": "demo-client.app.sage.com",
            "client_secret": "demo-secret",
        },
        timeout=5,
    ).json()
    assert api(intacct_emulator, "GET", VENDOR, fresh["access_token"]).status_code == 200


def test_forced_expiry_and_rest1206_variant(intacct_emulator: EmulatorServer) -> None:
    east = intacct_emulator.issue_tokens("DEMO-CO", "admin")["access_token"]
    other = intacct_emulator.issue_tokens(
        "DEMO-SANDBOX", "admin", client_id="demo-sandbox-client.app.sage.com"
    )
    assert intacct_emulator.expire_tokens("DEMO-CO") == 1
    assert api(intacct_emulator, "GET", VENDOR, east).json()["ia::error"]["code"] == "GW-0040"
    assert api(intacct_emulator, "GET", VENDOR, other["access_token"]).status_code == 200
    intacct_emulator.configure(expired_token_error="rest1206")
    response = api(intacct_emulator, "GET", VENDOR, east)
    assert response.status_code == 400
    assert response.json()["ia::error"]["errorId"] == "REST-1206"


def test_revoked_token_is_rest2102(intacct_emulator: EmulatorServer, admin_token: str) -> None:
    assert intacct_emulator.revoke_grants("DEMO-CO", "admin") == 1
    response = api(intacct_emulator, "GET", VENDOR, admin_token)
    assert response.status_code == 401
    assert response.json()["error"]["errorId"] == "REST-2102"
    assert response.json()["error"]["code"] == "tokenInvalid"


def test_api_calls_are_counted_per_company(
    intacct_emulator: EmulatorServer, admin_token: str
) -> None:
    for _ in range(3):
        api(intacct_emulator, "GET", VENDOR, admin_token)
    requests.get(f"{intacct_emulator.base_url}{VENDOR}", timeout=5)  # unauthenticated
    assert intacct_emulator.api_calls("DEMO-CO") == 3
    assert intacct_emulator.api_calls("SECOND-CO") == 0
    assert intacct_emulator.api_calls() == 3


# --- entities -------------------------------------------------------------------------
def visible_ids(emu: EmulatorServer, token: str, entity: str | None = None) -> set[str]:
    body = api(
        emu,
        "POST",
        "/services/core/query",
        token,
        entity=entity,
        json={"object": "accounts-payable/vendor", "fields": ["id", "entity.id"], "size": 4000},
    ).json()
    return {row["id"] for row in body["ia::result"]}


def test_entity_header_scopes_the_data(intacct_emulator: EmulatorServer, admin_token: str) -> None:
    vendors = intacct_emulator.records("DEMO-CO", "accounts-payable/vendor")
    shared = {v["id"] for v in vendors if v["entity"]["id"] is None}
    west = {v["id"] for v in vendors if v["entity"]["id"] == "WEST"}
    assert shared
    assert west
    assert visible_ids(intacct_emulator, admin_token) == {v["id"] for v in vendors}
    assert visible_ids(intacct_emulator, admin_token, "WEST") == shared | west
    # an entity-level token defaults to its entity; the header overrides it
    east_token = intacct_emulator.issue_tokens("DEMO-CO", "jane", entity="EAST")["access_token"]
    east = {v["id"] for v in vendors if v["entity"]["id"] == "EAST"}
    assert visible_ids(intacct_emulator, east_token) == shared | east
    assert visible_ids(intacct_emulator, east_token, "") == {v["id"] for v in vendors}
    # a record of another entity is not found
    west_key = next(v["key"] for v in vendors if v["entity"]["id"] == "WEST")
    assert api(intacct_emulator, "GET", f"{VENDOR}/{west_key}", east_token).status_code == 404


def test_unknown_entity_header(intacct_emulator: EmulatorServer, admin_token: str) -> None:
    response = api(intacct_emulator, "GET", VENDOR, admin_token, entity="NORTH")
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalidRequest"


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


# --- list / get -------------------------------------------------------------------------
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


def test_seed_data_is_deterministic_and_sizeable(intacct_emulator: EmulatorServer) -> None:
    first = intacct_emulator.records("DEMO-CO", "accounts-payable/bill")
    intacct_emulator.reset()
    assert intacct_emulator.records("DEMO-CO", "accounts-payable/bill") == first
    assert len(first) >= 300
    assert intacct_emulator.record_count("SECOND-CO", "accounts-payable/vendor") >= 100
    entities = {e["id"] for e in intacct_emulator.records("DEMO-CO", "company-config/entity")}
    assert entities == {"EAST", "WEST"}
    for bill in first[:20]:
        total = sum(float(line["txnAmount"]) for line in bill["lines"])
        assert float(bill["totalTxnAmount"]) == pytest.approx(total)


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


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", VENDOR, "GET, POST, PATCH"),
        ("DELETE", VENDOR, "GET, POST, PATCH"),
        ("POST", f"{VENDOR}/1", "GET, PATCH, DELETE"),
        ("GET", "/services/core/query", "POST"),
        ("POST", "/services/core/model", "GET"),
    ],
)
def test_unsupported_methods_are_405(
    intacct_emulator: EmulatorServer, admin_token: str, method: str, path: str, allow: str
) -> None:
    response = api(intacct_emulator, method, path, admin_token, json={"a": 1})
    assert response.status_code == 405
    assert response.headers["Allow"] == allow
    assert error_of(response)["code"] == "methodNotAllowed"


# --- create / update / delete -----------------------------------------------------------
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


def test_duplicate_vendor_id_is_422(intacct_emulator: EmulatorServer, admin_token: str) -> None:
    response = api(
        intacct_emulator, "POST", VENDOR, admin_token, json={"id": "VEND-00001", "name": "Again"}
    )
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "operationFailed"
    assert "already exists" in error["details"][0]["message"]


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


@pytest.mark.parametrize(
    ("body", "target"),
    [
        ({"id": "V-2", "name": "X", "newDate": "2025-01-01"}, "/newDate"),
        ({"id": "V-2", "name": "X", "status": "bogus"}, "/status"),
        ({"id": "V-2", "name": 5}, "/name"),
        ({"id": "V-2", "name": "X", "isOnHold": "yes"}, "/isOnHold"),
        ({"id": "V-2", "name": "X", "creditLimit": "lots"}, "/creditLimit"),
        ({"id": "V-2", "name": "X", "term": "Net 30"}, "/term"),
        ({"id": "V-2", "name": "X", "term": {"id": ""}}, "/term/id"),
        ({"id": "V-2", "name": "X", "term": {"code": "x"}}, "/term/code"),
        ({"id": "V-2", "name": "X", "billPayment": {"nope": 1}}, "/billPayment/nope"),
        ({"id": "V-2", "name": "X", "contacts": []}, "/contacts"),
    ],
)
def test_invalid_payloads_are_400_with_details(
    intacct_emulator: EmulatorServer, admin_token: str, body: dict[str, Any], target: str
) -> None:
    response = api(intacct_emulator, "POST", VENDOR, admin_token, json=body)
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalidRequest"
    assert error["errorId"] == "REST-1064"
    assert target in [d.get("target") for d in error["details"]]


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        (
            {"data": "{bad json", "headers": {"Content-Type": "application/json"}},
            400,
            "invalidRequest",
        ),
        (
            {"data": "id=1", "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
            415,
            "GW-0014",
        ),
        ({"data": "<vendor/>", "headers": {"Content-Type": "application/xml"}}, 415, "GW-0014"),
        ({}, 400, "invalidRequest"),
        ({"json": "a string"}, 400, "invalidRequest"),
        ({"json": 5}, 400, "invalidRequest"),
        ({"json": []}, 400, "invalidRequest"),
    ],
)
def test_bad_request_bodies(
    intacct_emulator: EmulatorServer,
    admin_token: str,
    kwargs: dict[str, Any],
    status: int,
    code: str,
) -> None:
    response = api(intacct_emulator, "POST", VENDOR, admin_token, **kwargs)
    assert response.status_code == status
    assert response.json()["ia::error"]["code"] == code


def test_empty_post_is_rest1028(intacct_emulator: EmulatorServer, admin_token: str) -> None:
    response = api(intacct_emulator, "POST", VENDOR, admin_token)
    error = error_of(response)
    assert error["errorId"] == "REST-1028"
    assert error["message"] == "A POST request requires a payload"


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
    response = api(
        intacct_emulator,
        "POST",
        path,
        admin_token,
        json={
            "vendor": {"id": "NO-SUCH"},
            "createdDate": "2025-05-01",
            "dueDate": "2025-05-31",
            "currency": {"txnCurrency": "USD"},
            "lines": [{"glAccount": {"id": "6300"}, "txnAmount": "1"}],
        },
    )
    assert response.status_code == 422
    response = api(
        intacct_emulator,
        "POST",
        path,
        admin_token,
        json={
            "vendor": {"id": "VEND-00004"},
            "createdDate": "2025-02-30",
            "dueDate": "2025-05-31",
            "currency": {"txnCurrency": "USD"},
            "lines": [{"glAccount": {"id": "6300"}, "txnAmount": "1"}],
        },
    )
    assert response.status_code == 400


# --- batch --------------------------------------------------------------------------------
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


# --- idempotency ---------------------------------------------------------------------------
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


# --- services -------------------------------------------------------------------------------
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


def test_session_id_service(intacct_emulator: EmulatorServer) -> None:
    tokens = intacct_emulator.issue_tokens("DEMO-CO", "admin")
    body = api(intacct_emulator, "GET", "/services/core/session/id", tokens["access_token"]).json()
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert body["ia::result"]["sessionId"] == claims["sessionId"]
    assert 21500 < body["ia::result"]["expiresIn"] <= 21600


def test_composite_runs_in_order_with_references(
    intacct_emulator: EmulatorServer, admin_token: str
) -> None:
    response = api(
        intacct_emulator,
        "POST",
        "/services/core/composite",
        admin_token,
        json=[
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
    response = api(
        intacct_emulator,
        "POST",
        "/services/core/composite",
        admin_token,
        json=[
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
    response = api(intacct_emulator, "POST", "/services/core/composite", admin_token, json=body)
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalidRequest"


def test_composite_unresolvable_reference(
    intacct_emulator: EmulatorServer, admin_token: str
) -> None:
    response = api(
        intacct_emulator,
        "POST",
        "/services/core/composite",
        admin_token,
        json=[
            {"method": "GET", "path": "/objects/accounts-payable/vendor/1", "resultReference": "v"},
            {"method": "GET", "path": "/objects/accounts-payable/vendor/@{v.nothing}"},
        ],
    )
    assert response.status_code == 207
    assert response.json()["ia::result"][1]["ia::status"] == 400


def test_nested_error_shape_option(intacct_emulator: EmulatorServer, admin_token: str) -> None:
    intacct_emulator.configure(rest_error_shape="nested")
    response = api(intacct_emulator, "GET", f"{VENDOR}/999999", admin_token)
    body = response.json()
    assert body["ia::result"]["ia::error"]["code"] == "notFound"
    assert body["ia::meta"]["totalError"] == 1


JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=10),
    st.sampled_from(["2025-01-01", "active", "debit", "VEND-00001", "1000", "today", "@{v.key}"]),
)
JSON_KEYS = st.one_of(
    st.text(max_size=6),
    st.sampled_from(
        [
            "id",
            "name",
            "status",
            "lines",
            "glAccount",
            "txnAmount",
            "txnType",
            "vendor",
            "key",
            "contacts",
            "object",
            "fields",
            "filters",
            "orderBy",
            "start",
            "size",
            "$eq",
            "$in",
            "glJournal",
            "postingDate",
            "method",
            "path",
            "body",
            "createdDate",
            "dueDate",
        ]
    ),
)
JSON = st.recursive(
    JSON_LEAVES,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(JSON_KEYS, children, max_size=5)
    ),
    max_leaves=20,
)


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    path=st.sampled_from(
        [
            "/objects/accounts-payable/vendor",
            "/objects/accounts-payable/bill",
            "/objects/general-ledger/journal-entry",
            "/objects/accounts-receivable/invoice",
            "/services/core/query",
            "/services/core/composite",
            "/objects/accounts-payable/vendor/3",
        ]
    ),
    body=JSON,
)
def test_arbitrary_json_never_breaks_the_api(
    intacct_emulator: EmulatorServer, admin_token: str, path: str, body: Any
) -> None:
    method = "PATCH" if path.endswith("/3") else "POST"
    response = api(intacct_emulator, method, path, admin_token, json=body)
    assert response.status_code < 500, response.text
    assert response.headers["Content-Type"] == "application/json"
    assert intacct_emulator.unexpected_errors() == 0


def test_non_standard_json_constants_are_rejected(
    intacct_emulator: EmulatorServer, admin_token: str
) -> None:
    response = api(
        intacct_emulator,
        "POST",
        VENDOR,
        admin_token,
        data='{"id": "N", "name": "N", "creditLimit": NaN}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["ia::error"]["message"] == "The request payload is not valid JSON"


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


# --- company preferences (a singleton) ------------------------------------------------------
PREFERENCE = "/objects/company-config/company-preference"


def test_company_preference_carries_the_company_id_and_name(
    intacct_emulator: EmulatorServer, admin_token: str
) -> None:
    response = api(intacct_emulator, "GET", f"{PREFERENCE}/setup", admin_token)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"ia::result", "ia::meta"}
    assert body["ia::meta"] == {"totalCount": 1}
    result = body["ia::result"]
    # Inside ia::result, as Sage's schema has it (its example shows them beside it).
    assert (result["key"], result["id"], result["name"]) == ("setup", "DEMO-CO", "Demo Company")
    assert result["accounting"]["baseCurrency"] == "USD"
    assert not {"href", "audit", "entity"} & set(result)
    sandbox = intacct_emulator.issue_tokens("DEMO-SANDBOX", "admin")["access_token"]
    other = api(intacct_emulator, "GET", f"{PREFERENCE}/setup", sandbox).json()["ia::result"]
    assert (other["id"], other["name"]) == ("DEMO-SANDBOX", "Demo Company (sandbox)")


def test_company_preference_is_company_wide_at_every_entity(
    intacct_emulator: EmulatorServer, admin_token: str
) -> None:
    top = api(intacct_emulator, "GET", f"{PREFERENCE}/setup", admin_token).json()
    for entity in ("", "EAST"):
        at = api(intacct_emulator, "GET", f"{PREFERENCE}/setup", admin_token, entity=entity)
        assert at.status_code == 200
        assert at.json() == top
    east = intacct_emulator.issue_tokens("DEMO-CO", "jane", entity="EAST")["access_token"]
    assert api(intacct_emulator, "GET", f"{PREFERENCE}/setup", east).json() == top
    bad = api(intacct_emulator, "GET", f"{PREFERENCE}/setup", admin_token, entity="NOPE")
    assert bad.status_code == 400
    assert error_of(bad)["errorId"] == "REST-1071"


def test_company_preference_fields_projection(
    intacct_emulator: EmulatorServer, admin_token: str
) -> None:
    response = api(
        intacct_emulator,
        "GET",
        f"{PREFERENCE}/setup?fields=name,accounting.baseCurrency",
        admin_token,
    )
    assert response.json()["ia::result"] == {
        "name": "Demo Company",
        "accounting": {"baseCurrency": "USD"},
    }
    bad = api(intacct_emulator, "GET", f"{PREFERENCE}/setup?fields=href", admin_token)
    assert bad.status_code == 400
    assert error_of(bad)["details"][0]["errorId"] == "REST-1043"


@pytest.mark.parametrize("path", [f"{PREFERENCE}/1", f"{PREFERENCE}/SETUP", PREFERENCE])
def test_company_preference_other_keys_are_404(
    intacct_emulator: EmulatorServer, admin_token: str, path: str
) -> None:
    response = api(intacct_emulator, "GET", path, admin_token)
    assert response.status_code == 404
    error = error_of(response)
    assert (error["code"], error["errorId"]) == ("notFound", "REST-1019")


@pytest.mark.parametrize("method", ["PATCH", "POST", "DELETE", "PUT"])
def test_company_preference_writes_are_405(
    intacct_emulator: EmulatorServer, admin_token: str, method: str
) -> None:
    # Sage documents PATCH (update-company-config-company-preference); it is not emulated.
    body = {"userSessionSettings": {"sessionTimeoutMinutes": 10}}
    response = api(intacct_emulator, method, f"{PREFERENCE}/setup", admin_token, json=body)
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET"
    error = error_of(response)
    assert (error["code"], error["errorId"]) == ("methodNotAllowed", "REST-1020")
    assert intacct_emulator.unexpected_errors() == 0


def test_company_preference_model(intacct_emulator: EmulatorServer, admin_token: str) -> None:
    path = "/services/core/model?name=company-config/company-preference"
    model = api(intacct_emulator, "GET", path, admin_token).json()["ia::result"]
    assert model["fields"]["name"]["type"] == "string"
    assert model["fields"]["key"]["readOnly"] is True
    assert model["groups"]["accounting"]["fields"]["firstFiscalMonth"]["enum"][0] == "january"
    assert "audit" not in model["groups"]
    assert model["refs"] == {}
    assert model["httpMethods"] == "GET"
    listing = api(intacct_emulator, "GET", "/services/core/model", admin_token).json()
    names = {item["apiObject"] for item in listing["ia::result"]}
    assert "objects/company-config/company-preference" in names
