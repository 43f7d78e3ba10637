"""Record collections (``records/storage.py``): lazy seeding and its sizes, and which records
an entity sees."""

from __future__ import annotations

from intacct_connect.testing.emulator import EmulatorServer
from tests.testing.conftest import VENDOR, api


def test_seed_counts_are_unchanged(intacct_emulator: EmulatorServer) -> None:
    expected = {
        "accounts-payable/bill": 300,
        "accounts-payable/vendor": 250,
        "accounts-receivable/customer": 200,
        "accounts-receivable/invoice": 300,
        "company-config/entity": 2,
        "general-ledger/account": 28,
        "general-ledger/journal-entry": 150,
    }
    counts = {path: intacct_emulator.record_count("DEMO-CO", path) for path in expected}
    assert counts == expected


def test_a_non_production_company_gets_a_fifth_of_the_records(
    intacct_emulator: EmulatorServer,
) -> None:
    assert intacct_emulator.record_count("DEMO-SANDBOX", "accounts-payable/vendor") == 50
    assert intacct_emulator.record_count("DEMO-SANDBOX", "general-ledger/journal-entry") == 30
    # every account, whatever the company type: transactions reference them by number
    assert intacct_emulator.record_count("DEMO-SANDBOX", "general-ledger/account") == 28


def test_seeding_does_not_depend_on_what_was_read_first(intacct_emulator: EmulatorServer) -> None:
    bills = intacct_emulator.records("DEMO-CO", "accounts-payable/bill")
    intacct_emulator.reset()
    # a write to another object before the bills are first read
    token = intacct_emulator.issue_tokens("DEMO-CO", "admin")["access_token"]
    created = api(intacct_emulator, "POST", VENDOR, token, json={"id": "F-1", "name": "F"})
    assert created.status_code == 201
    assert intacct_emulator.records("DEMO-CO", "accounts-payable/bill") == bills


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
