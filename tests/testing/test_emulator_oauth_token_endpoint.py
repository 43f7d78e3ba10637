"""``POST /oauth2/token`` (``oauth/token_endpoint.py``): each grant type, client
authentication, malformed requests; through real HTTP."""

from __future__ import annotations

from typing import Any

import jwt
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intacct_connect.testing.emulator import EmulatorServer
from tests.testing.conftest import (
    CLIENT_ID,
    CLIENT_SECRET,
    REDIRECT_URI,
    authorize_url,
    exchange,
    get_code,
    query_of,
    refresh,
    token_request,
    vendor_status,
)

SANDBOX_ID = "demo-sandbox-client.app.sage.com"


SANDBOX_SECRET = "demo-sandbox-secret"


def verified_claims(emu: EmulatorServer, token: str) -> dict[str, object]:
    """Verify the JWT with the published JWKS, as a relying party would."""
    keys = requests.get(f"{emu.root_url}/.well-known/jwks.json", timeout=5).json()["keys"]
    header = jwt.get_unverified_header(token)
    jwk = next(k for k in keys if k["kid"] == header["kid"])
    key = jwt.PyJWK(jwk).key
    claims: dict[str, object] = jwt.decode(
        token,
        key,
        algorithms=["RS256"],
        audience=CLIENT_ID,
        issuer="https://api.intacct.com",
        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
    )
    return claims


def test_full_flow_issues_a_signed_jwt_with_intacct_claims(
    intacct_emulator: EmulatorServer,
) -> None:
    code, verifier = get_code(intacct_emulator, user="jane", entity="EAST")
    body = exchange(intacct_emulator, code, verifier)
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 21600
    assert body["refresh_token"]
    claims = verified_claims(intacct_emulator, body["access_token"])
    assert claims["iss"] == "https://api.intacct.com"
    assert claims["clientId"] == CLIENT_ID
    assert claims["cnyId"] == "DEMO-CO"
    assert claims["cnyKey"] == "10001"
    assert claims["userId"] == "jane"
    assert claims["userKey"]
    assert claims["entityId"] == "EAST"
    assert claims["sessionId"]
    assert claims["sub"] == "jane@DEMO-CO"
    assert isinstance(claims["exp"], int)
    assert isinstance(claims["iat"], int)
    assert claims["exp"] - claims["iat"] == 21600
    assert vendor_status(intacct_emulator, body["access_token"]).status_code == 200
    assert intacct_emulator.token_requests("authorization_code") == 1
    assert intacct_emulator.token_requests("authorization_code", company="DEMO-CO") == 1


def test_code_is_single_use_and_replay_revokes_its_tokens(
    intacct_emulator: EmulatorServer,
) -> None:
    code, verifier = get_code(intacct_emulator)
    first = exchange(intacct_emulator, code, verifier)
    again = redeem(intacct_emulator, code, verifier)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    assert (
        vendor_status(intacct_emulator, first["access_token"]).json()["error"]["errorId"]
        == "REST-2102"
    )


def test_code_expires_after_ten_minutes(intacct_emulator: EmulatorServer) -> None:
    code, verifier = get_code(intacct_emulator)
    intacct_emulator.advance_time(601)
    response = redeem(intacct_emulator, code, verifier)
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_grant",
        "error_description": "The authorization code has expired",
    }


def test_code_just_inside_its_lifetime_works(intacct_emulator: EmulatorServer) -> None:
    code, verifier = get_code(intacct_emulator)
    intacct_emulator.advance_time(590)
    assert exchange(intacct_emulator, code, verifier)["access_token"]


@pytest.mark.parametrize(
    "change",
    [
        {"code_verifier": "x" * 64},
        {"code_verifier": None},
        {"redirect_uri": "http://localhost:8000/intacct/callback/"},
        {"redirect_uri": None},
        {"code": "not-a-code"},
    ],
)
def test_code_is_bound_to_verifier_and_redirect_uri(
    intacct_emulator: EmulatorServer, change: dict[str, str | None]
) -> None:
    code, verifier = get_code(intacct_emulator)
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "redirect_uri": REDIRECT_URI,
        **change,
    }
    response = token_request(intacct_emulator, **data)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    # the failed attempt did not burn the code... unless the code itself was wrong
    assert exchange(intacct_emulator, code, verifier)["access_token"]


def test_code_is_bound_to_the_client(intacct_emulator: EmulatorServer) -> None:
    intacct_emulator.seed_application("other.app.sage.com", "other-secret")
    code, verifier = get_code(intacct_emulator)
    response = requests.post(
        intacct_emulator.token_url,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": verifier,
            "redirect_uri": REDIRECT_URI,
            "client_id": "other.app.sage.com",
            "client_secret": "other-secret",
        },
        timeout=5,
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_pkce_exchange_needs_no_secret_but_plain_code_does(
    intacct_emulator: EmulatorServer,
) -> None:
    code, verifier = get_code(intacct_emulator)
    response = requests.post(
        intacct_emulator.token_url,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": verifier,
            "redirect_uri": REDIRECT_URI,
            "client_id": CLIENT_ID,
        },
        timeout=5,
    )
    assert response.status_code == 200
    location = intacct_emulator.complete_authorization(
        authorize_url(intacct_emulator, None), "DEMO-CO", "admin", "admin"
    )
    response = requests.post(
        intacct_emulator.token_url,
        data={
            "grant_type": "authorization_code",
            "code": query_of(location)["code"],
            "redirect_uri": REDIRECT_URI,
            "client_id": CLIENT_ID,
        },
        timeout=5,
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_json_body_and_basic_auth_are_accepted(intacct_emulator: EmulatorServer) -> None:
    code, verifier = get_code(intacct_emulator)
    response = requests.post(
        intacct_emulator.token_url,
        json={
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": verifier,
            "redirect_uri": REDIRECT_URI,
        },
        auth=(CLIENT_ID, CLIENT_SECRET),
        timeout=5,
    )
    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"


def redeem(emu: EmulatorServer, code: str, verifier: str) -> requests.Response:
    """Exchange ``code`` as the demo client (the answer, whatever it is)."""
    return token_request(
        emu,
        grant_type="authorization_code",
        code=code,
        code_verifier=verifier,
        redirect_uri=REDIRECT_URI,
    )


def cc(**extra: str) -> dict[str, Any]:
    """``requests.post`` arguments of a client-credentials request of the demo client."""
    base = {"grant_type": "client_credentials", "client_id": CLIENT_ID}
    return {"data": {**base, "client_secret": CLIENT_SECRET, **extra}}


def gateway(response: requests.Response) -> str:
    body = response.json()
    assert set(body) == {"ia::error"}
    assert body["ia::error"]["details"]["requestId"]
    code: str = body["ia::error"]["code"]
    return code


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        (
            {"data": b"", "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
            400,
            "GW-0035",
        ),
        ({"data": b"   "}, 400, "GW-0035"),
        (
            {"data": b"grant_type=client_credentials", "headers": {"Content-Type": "text/plain"}},
            400,
            "GW-0032",
        ),
        ({"data": b"{not json", "headers": {"Content-Type": "application/json"}}, 400, "GW-0032"),
        ({"json": ["grant_type", "client_credentials"]}, 400, "GW-0032"),
        ({"json": {"grant_type": {"nested": 1}}}, 400, "GW-0032"),
        ({"data": {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}}, 400, "GW-0032"),
        (
            {
                "data": b"\xff\xfe=1",
                "headers": {"Content-Type": "application/x-www-form-urlencoded"},
            },
            400,
            "GW-0032",
        ),
        (
            {
                "data": {
                    "grant_type": "client_credentials",
                    "client_secret": CLIENT_SECRET,
                    "username": "admin@DEMO-CO",
                }
            },
            400,
            "GW-0037",
        ),
        (
            {
                "data": [
                    ("grant_type", "client_credentials"),
                    ("client_id", CLIENT_ID),
                    ("client_id", CLIENT_ID),
                    ("client_secret", CLIENT_SECRET),
                    ("username", "admin@DEMO-CO"),
                ]
            },
            400,
            "GW-0038",
        ),
        (
            {
                "data": [
                    ("grant_type", "client_credentials"),
                    ("client_id", CLIENT_ID),
                    ("client_secret", CLIENT_SECRET),
                    ("username", "admin@DEMO-CO"),
                    ("username", "jane@DEMO-CO"),
                ]
            },
            400,
            "GW-0039",
        ),
        (cc(username=""), 400, "GW-0036"),
        (cc(), 400, "GW-0036"),
        (cc(username="admin"), 400, "GW-0012"),
        (cc(username="admin@NOPE-CO"), 400, "GW-0011"),
    ],
)
def test_malformed_token_requests_get_gateway_errors(
    intacct_emulator: EmulatorServer, kwargs: dict[str, object], status: int, code: str
) -> None:
    response = requests.post(intacct_emulator.token_url, timeout=5, **kwargs)  # type: ignore[arg-type]
    assert response.status_code == status, response.text
    assert gateway(response) == code


def test_basic_and_body_client_ids_must_agree(intacct_emulator: EmulatorServer) -> None:
    response = requests.post(
        intacct_emulator.token_url,
        data={
            "grant_type": "client_credentials",
            "client_id": "other",
            "username": "admin@DEMO-CO",
        },
        auth=(CLIENT_ID, CLIENT_SECRET),
        timeout=5,
    )
    assert gateway(response) == "GW-0038"


def test_token_endpoint_method_and_unknown_oauth_endpoint(
    intacct_emulator: EmulatorServer,
) -> None:
    response = requests.get(intacct_emulator.token_url, timeout=5)
    assert response.status_code == 405
    assert gateway(response) == "GW-0033"
    response = requests.post(
        f"{intacct_emulator.base_url}/oauth2/device", data={"a": "b"}, timeout=5
    )
    assert response.status_code == 404
    assert gateway(response) == "GW-0033"


def test_unsupported_grant_type(intacct_emulator: EmulatorServer) -> None:
    response = token_request(intacct_emulator, grant_type="password", username="a", password="b")
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


@pytest.mark.parametrize(
    ("client_id", "secret"),
    [(CLIENT_ID, "wrong"), ("unknown.app.sage.com", CLIENT_SECRET), (CLIENT_ID, None)],
)
def test_bad_client_credentials_are_invalid_client(
    intacct_emulator: EmulatorServer, client_id: str, secret: str | None
) -> None:
    response = requests.post(
        intacct_emulator.token_url,
        data={
            k: v
            for k, v in {
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": secret,
                "username": "admin@DEMO-CO",
            }.items()
            if v is not None
        },
        timeout=5,
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    if secret is not None:
        assert response.json()["error_description"].startswith("REST-1216")


def test_intacct_error_style(intacct_emulator: EmulatorServer) -> None:
    intacct_emulator.configure(error_style="intacct")
    response = token_request(intacct_emulator, grant_type="refresh_token", refresh_token="nope")
    assert response.status_code == 400
    error = response.json()["ia::error"]
    assert error["code"] == "invalid_grant"
    assert error["message"] == "The refresh token is invalid"
    assert error["supportId"]
    response = token_request(
        intacct_emulator,
        grant_type="client_credentials",
        client_secret="bad",
        username="admin@DEMO-CO",
    )
    assert response.json()["ia::error"]["errorId"] == "REST-1216"


def test_default_refresh_rotates_with_reuse_detection(intacct_emulator: EmulatorServer) -> None:
    first = intacct_emulator.issue_tokens("DEMO-CO", "admin")
    second = refresh(intacct_emulator, first["refresh_token"])
    assert second.status_code == 200
    new = second.json()
    assert new["refresh_token"] != first["refresh_token"]
    assert vendor_status(intacct_emulator, new["access_token"]).status_code == 200
    replay = refresh(intacct_emulator, first["refresh_token"])
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    # the whole grant is revoked (RFC 9700 4.14.2)
    assert refresh(intacct_emulator, new["refresh_token"]).json()["error"] == "invalid_grant"
    assert (
        vendor_status(intacct_emulator, new["access_token"]).json()["error"]["code"]
        == "tokenInvalid"
    )
    assert intacct_emulator.token_requests("refresh_token") == 3


def test_rotate_mode_rejects_old_token_but_keeps_the_grant(
    intacct_emulator: EmulatorServer,
) -> None:
    intacct_emulator.configure(refresh_mode="rotate")
    first = intacct_emulator.issue_tokens("DEMO-CO", "admin")
    new = refresh(intacct_emulator, first["refresh_token"]).json()
    assert refresh(intacct_emulator, first["refresh_token"]).json()["error"] == "invalid_grant"
    again = refresh(intacct_emulator, new["refresh_token"])
    assert again.status_code == 200


def test_no_rotation_mode_returns_the_same_refresh_token(
    intacct_emulator: EmulatorServer,
) -> None:
    intacct_emulator.configure(refresh_mode="none")
    first = intacct_emulator.issue_tokens("DEMO-CO", "admin")
    for _ in range(3):
        response = refresh(intacct_emulator, first["refresh_token"])
        assert response.status_code == 200
        assert response.json()["refresh_token"] == first["refresh_token"]


def test_refresh_with_entity_id_mints_an_entity_token(intacct_emulator: EmulatorServer) -> None:
    first = intacct_emulator.issue_tokens("DEMO-CO", "admin")
    body = refresh(intacct_emulator, first["refresh_token"], entity_id="WEST").json()
    assert (
        jwt.decode(body["access_token"], options={"verify_signature": False})["entityId"] == "WEST"
    )
    bad = refresh(intacct_emulator, body["refresh_token"], entity_id="NORTH")
    assert bad.status_code == 400
    assert bad.json()["error"] == "invalid_request"


def test_refresh_needs_client_authentication(intacct_emulator: EmulatorServer) -> None:
    first = intacct_emulator.issue_tokens("DEMO-CO", "admin")
    response = requests.post(
        intacct_emulator.token_url,
        data={
            "grant_type": "refresh_token",
            "refresh_token": first["refresh_token"],
            "client_id": CLIENT_ID,
        },
        timeout=5,
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_client_credentials_top_level_and_entity(intacct_emulator: EmulatorServer) -> None:
    response = token_request(
        intacct_emulator, grant_type="client_credentials", username="admin@DEMO-CO"
    )
    assert response.status_code == 200
    body = response.json()
    assert "refresh_token" not in body
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert (claims["cnyId"], claims["userId"], claims["entityId"]) == ("DEMO-CO", "admin", None)
    body = token_request(
        intacct_emulator, grant_type="client_credentials", username="admin@DEMO-CO|WEST"
    ).json()
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["entityId"] == "WEST"
    assert vendor_status(intacct_emulator, body["access_token"]).status_code in (200, 404)
    assert intacct_emulator.token_requests("client_credentials", company="DEMO-CO") == 2


def test_client_credentials_even_with_offline_access_has_no_refresh_token(
    intacct_emulator: EmulatorServer,
) -> None:
    body = token_request(
        intacct_emulator,
        grant_type="client_credentials",
        username="admin@DEMO-CO",
        scope="offline_access",
    ).json()
    assert "refresh_token" not in body


def test_client_credentials_need_an_authorized_client_application(
    intacct_emulator: EmulatorServer,
) -> None:
    response = token_request(
        intacct_emulator, grant_type="client_credentials", username="jane@DEMO-CO"
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert "REST-1216" in response.json()["error_description"]
    intacct_emulator.authorize_client("DEMO-CO", "jane")
    response = token_request(
        intacct_emulator, grant_type="client_credentials", username="jane@DEMO-CO"
    )
    assert response.status_code == 200
    response = token_request(
        intacct_emulator, grant_type="client_credentials", username="admin@DEMO-CO|NORTH"
    )
    assert response.json()["error"] == "invalid_grant"


def test_client_credentials_with_session_id(intacct_emulator: EmulatorServer) -> None:
    access = intacct_emulator.issue_tokens("DEMO-CO", "admin")["access_token"]
    session_id = jwt.decode(access, options={"verify_signature": False})["sessionId"]
    response = token_request(
        intacct_emulator, grant_type="client_credentials", session_id=session_id
    )
    assert response.status_code == 200
    response = token_request(intacct_emulator, grant_type="client_credentials", session_id="nope")
    assert response.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    ("client_id", "secret", "username", "ok"),
    [
        (SANDBOX_ID, SANDBOX_SECRET, "admin@DEMO-SANDBOX", True),
        (SANDBOX_ID, SANDBOX_SECRET, "admin@DEMO-CO", False),
        (CLIENT_ID, CLIENT_SECRET, "admin@DEMO-SANDBOX", False),
    ],
)
def test_client_scope_must_match_the_company_type(
    intacct_emulator: EmulatorServer, client_id: str, secret: str, username: str, ok: bool
) -> None:
    intacct_emulator.authorize_client("DEMO-CO", "admin", SANDBOX_ID)
    intacct_emulator.authorize_client("DEMO-SANDBOX", "admin", CLIENT_ID)
    response = requests.post(
        intacct_emulator.token_url,
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret,
            "username": username,
        },
        timeout=5,
    )
    if ok:
        assert response.status_code == 200
    else:
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_client"
        assert "REST-1216" in response.json()["error_description"]


def test_wrong_scope_authorization_code_fails_at_the_token_endpoint(
    intacct_emulator: EmulatorServer,
) -> None:
    code, verifier = get_code(intacct_emulator, company="DEMO-SANDBOX")
    response = redeem(intacct_emulator, code, verifier)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.dictionaries(
        st.sampled_from(
            [
                "grant_type",
                "client_id",
                "client_secret",
                "code",
                "refresh_token",
                "username",
                "redirect_uri",
                "code_verifier",
                "entity_id",
                "session_id",
            ]
        ),
        st.one_of(
            st.text(max_size=20),
            st.sampled_from(
                [
                    "authorization_code",
                    "refresh_token",
                    "client_credentials",
                    CLIENT_ID,
                    CLIENT_SECRET,
                    "admin@DEMO-CO",
                    "admin@DEMO-CO|",
                    "@",
                    "admin@|X",
                ]
            ),
        ),
    ),
    as_json=st.booleans(),
)
def test_arbitrary_token_requests_never_break_the_server(
    intacct_emulator: EmulatorServer, data: dict[str, str], as_json: bool
) -> None:
    kwargs: dict[str, object] = {"json": data} if as_json else {"data": data}
    for url in (intacct_emulator.token_url, intacct_emulator.revoke_url):
        response = requests.post(url, timeout=5, **kwargs)  # type: ignore[arg-type]
        assert response.status_code < 500, response.text
        assert response.headers["Content-Type"] == "application/json"
    assert intacct_emulator.unexpected_errors() == 0
