"""The Python control methods of ``Emulator`` (``control_methods.py``), called directly."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
import requests

from intacct_connect.testing.emulator import EmulatorServer
from tests.testing.conftest import CLIENT_ID


def test_redirect_uri_registration_rules(intacct_emulator: EmulatorServer) -> None:
    with pytest.raises(ValueError, match="not allowed"):
        intacct_emulator.add_redirect_uri("http://app.example.com/cb/")
    intacct_emulator.add_redirect_uri("http://localhost:9000/cb/")
    intacct_emulator.add_redirect_uri("https://site.example.org/cb/")
    url = f"{intacct_emulator.authorize_url}?" + urlencode(
        {
            "response_type": "code",
            "client_id": CLIENT_ID,
            "redirect_uri": "https://site.example.org/cb/",
            "state": "s",
        }
    )
    assert requests.get(url, timeout=5).status_code == 200


def test_unknown_objects_companies_and_clients_are_value_errors(
    intacct_emulator: EmulatorServer,
) -> None:
    with pytest.raises(ValueError, match="Unknown object 'x/y'"):
        intacct_emulator.records("DEMO-CO", "x/y")
    with pytest.raises(ValueError, match="Unknown company 'NOPE'"):
        intacct_emulator.record_count("NOPE", "accounts-payable/vendor")
    with pytest.raises(ValueError, match="has no generator"):
        intacct_emulator.generate_records("DEMO-CO", "company-config/entity", 1)
    with pytest.raises(ValueError, match="count must be an integer"):
        intacct_emulator.generate_records("DEMO-CO", "accounts-payable/vendor", 0)
    with pytest.raises(ValueError, match="Unknown client 'nope'"):
        intacct_emulator.redirect_uris("nope")
    with pytest.raises(ValueError, match="Unknown user 'nobody'"):
        intacct_emulator.authorize_client("DEMO-CO", "nobody")


def test_returned_objects_are_copies(intacct_emulator: EmulatorServer) -> None:
    company = intacct_emulator.seed_company("COPY-CO", users={"admin": "pw"})
    company["users"].clear()
    intacct_emulator.seed_user("COPY-CO", "second", "pw")["admin"] = True
    assert intacct_emulator.issue_tokens("COPY-CO", "admin")["access_token"]
    grant = intacct_emulator.grants("COPY-CO")[0]
    grant["status"] = "revoked"
    assert intacct_emulator.grants("COPY-CO")[0]["status"] == "active"
    records = intacct_emulator.records("COPY-CO", "general-ledger/account")
    records[0]["name"] = "Changed"
    assert intacct_emulator.records("COPY-CO", "general-ledger/account")[0]["name"] != "Changed"


def test_seeding_a_company_again_replaces_its_records(intacct_emulator: EmulatorServer) -> None:
    intacct_emulator.generate_records("SECOND-CO", "accounts-payable/vendor", 5)
    assert intacct_emulator.record_count("SECOND-CO", "accounts-payable/vendor") == 255
    intacct_emulator.seed_company("SECOND-CO")
    assert intacct_emulator.record_count("SECOND-CO", "accounts-payable/vendor") == 250
