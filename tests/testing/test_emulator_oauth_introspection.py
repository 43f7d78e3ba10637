"""``/oauth2/revoke`` and ``/oauth2/introspect`` (``oauth/introspection.py``)."""

from __future__ import annotations

import requests

from intacct_connect.testing.emulator import EmulatorServer
from tests.testing.conftest import CLIENT_ID, CLIENT_SECRET, refresh, vendor_status


def test_revoke_kills_every_token_of_that_user_and_company(
    intacct_emulator: EmulatorServer,
) -> None:
    a = intacct_emulator.issue_tokens("DEMO-CO", "jane")
    intacct_emulator.configure(supersede_grants=False)
    b = intacct_emulator.issue_tokens("DEMO-CO", "jane")
    other = intacct_emulator.issue_tokens("DEMO-CO", "admin")
    response = requests.post(
        intacct_emulator.revoke_url,
        data={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "token": a["access_token"]},
        timeout=5,
    )
    assert response.status_code == 200
    assert response.json() == {"revoked": True}
    for tokens in (a, b):
        assert (
            vendor_status(intacct_emulator, tokens["access_token"]).json()["error"]["errorId"]
            == "REST-2102"
        )
        assert refresh(intacct_emulator, tokens["refresh_token"]).json()["error"] == "invalid_grant"
    assert vendor_status(intacct_emulator, other["access_token"]).status_code == 200


def test_revoke_by_refresh_token_unknown_token_and_bad_client(
    intacct_emulator: EmulatorServer,
) -> None:
    tokens = intacct_emulator.issue_tokens("DEMO-CO", "jane")
    response = requests.post(
        intacct_emulator.revoke_url,
        data={
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "token": tokens["refresh_token"],
        },
        timeout=5,
    )
    assert response.json() == {"revoked": True}
    assert vendor_status(intacct_emulator, tokens["access_token"]).status_code == 401
    response = requests.post(
        intacct_emulator.revoke_url,
        data={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "token": "unknown"},
        timeout=5,
    )
    assert response.json() == {"revoked": True}
    response = requests.post(
        intacct_emulator.revoke_url,
        data={"client_id": CLIENT_ID, "client_secret": "bad", "token": "unknown"},
        timeout=5,
    )
    assert response.status_code == 401
    response = requests.post(
        intacct_emulator.revoke_url,
        data={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
        timeout=5,
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_introspect(intacct_emulator: EmulatorServer) -> None:
    tokens = intacct_emulator.issue_tokens("DEMO-CO", "jane", entity="EAST")
    url = f"{intacct_emulator.base_url}/oauth2/introspect"
    response = requests.post(
        url, data={"token": tokens["access_token"]}, auth=(CLIENT_ID, CLIENT_SECRET), timeout=5
    )
    body = response.json()
    assert body["active"] is True
    assert (body["cny_id"], body["user_id"], body["entity_id"]) == ("DEMO-CO", "jane", "EAST")
    intacct_emulator.revoke_grants("DEMO-CO", "jane")
    response = requests.post(
        url, data={"token": tokens["access_token"]}, auth=(CLIENT_ID, CLIENT_SECRET), timeout=5
    )
    assert response.json() == {"active": False}
