"""Grant bookkeeping (``oauth/grants.py``): what a minted token carries, superseded consents,
tokens issued without the browser."""

from __future__ import annotations

import jwt
import pytest

from intacct_connect.testing.emulator import EmulatorServer
from tests.testing.conftest import exchange, get_code, refresh, vendor_status


def test_configured_access_token_lifetime(intacct_emulator: EmulatorServer) -> None:
    intacct_emulator.configure(access_token_ttl=43200)
    body = intacct_emulator.issue_tokens("DEMO-CO", "admin")
    assert body["expires_in"] == 43200
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 43200


def test_no_refresh_token_without_offline_access(intacct_emulator: EmulatorServer) -> None:
    code, verifier = get_code(intacct_emulator, scope="openid")
    body = exchange(intacct_emulator, code, verifier)
    assert "refresh_token" not in body


def test_new_consent_supersedes_the_previous_grant(intacct_emulator: EmulatorServer) -> None:
    old = intacct_emulator.issue_tokens("DEMO-CO", "jane")
    other_user = intacct_emulator.issue_tokens("DEMO-CO", "admin")
    code, verifier = get_code(intacct_emulator, user="jane")
    new = exchange(intacct_emulator, code, verifier)
    stale = vendor_status(intacct_emulator, old["access_token"])
    assert stale.status_code == 401
    assert stale.json() == {
        "error": {
            "code": "tokenInvalid",
            "message": "Token is not valid",
            "errorId": "REST-2102",
            "additionalInfo": {
                "messageId": "IA.TOKEN_IS_INVALID",
                "placeholders": {},
                "propertySet": {},
            },
            "supportId": stale.json()["error"]["supportId"],
        }
    }
    assert refresh(intacct_emulator, old["refresh_token"]).json()["error"] == "invalid_grant"
    assert vendor_status(intacct_emulator, new["access_token"]).status_code == 200
    assert vendor_status(intacct_emulator, other_user["access_token"]).status_code == 200
    statuses = sorted(g["status"] for g in intacct_emulator.grants("DEMO-CO"))
    assert statuses == ["active", "active", "superseded"]


def test_superseding_can_be_switched_off(intacct_emulator: EmulatorServer) -> None:
    intacct_emulator.configure(supersede_grants=False)
    old = intacct_emulator.issue_tokens("DEMO-CO", "jane")
    intacct_emulator.issue_tokens("DEMO-CO", "jane")
    assert vendor_status(intacct_emulator, old["access_token"]).status_code == 200


def test_issue_tokens_validates_its_arguments(intacct_emulator: EmulatorServer) -> None:
    with pytest.raises(ValueError, match="Unknown company"):
        intacct_emulator.issue_tokens("NOPE", "admin")
    with pytest.raises(ValueError, match="Unknown user"):
        intacct_emulator.issue_tokens("DEMO-CO", "nobody")
    with pytest.raises(ValueError, match="Unknown entity"):
        intacct_emulator.issue_tokens("DEMO-CO", "admin", entity="NORTH")
    body = intacct_emulator.issue_tokens("DEMO-CO", "admin", offline=False)
    assert "refresh_token" not in body
