"""Who calls the REST API (``rest/auth.py``): the bearer token, its session and grant, the
company, application and user, and the entity header; through HTTP."""

from __future__ import annotations

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from intacct_connect.testing.emulator import EmulatorServer
from tests.testing.conftest import VENDOR, api, error_of


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


def test_unknown_entity_header(intacct_emulator: EmulatorServer, admin_token: str) -> None:
    response = api(intacct_emulator, "GET", VENDOR, admin_token, entity="NORTH")
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalidRequest"


def test_api_calls_are_counted_per_company(
    intacct_emulator: EmulatorServer, admin_token: str
) -> None:
    for _ in range(3):
        api(intacct_emulator, "GET", VENDOR, admin_token)
    requests.get(f"{intacct_emulator.base_url}{VENDOR}", timeout=5)  # unauthenticated
    assert intacct_emulator.api_calls("DEMO-CO") == 3
    assert intacct_emulator.api_calls("SECOND-CO") == 0
    assert intacct_emulator.api_calls() == 3
