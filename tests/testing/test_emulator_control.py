"""The test-control API under /__emulator__/ (JSON over HTTP) and the Python methods."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from intacct_connect.testing.emulator import EmulatorServer
from tests.testing.conftest import api


def control(emu: EmulatorServer, method: str, name: str, **kwargs: Any) -> requests.Response:
    return requests.request(method, f"{emu.control_url}/{name}", timeout=10, **kwargs)


def test_tokens_counters_and_reset(intacct_emulator: EmulatorServer) -> None:
    response = control(
        intacct_emulator,
        "POST",
        "tokens",
        json={"company_id": "DEMO-CO", "user_id": "jane", "entity": "WEST"},
    )
    assert response.status_code == 200
    token = response.json()["access_token"]
    assert api(intacct_emulator, "GET", "/objects/accounts-payable/vendor", token).ok
    counters = control(intacct_emulator, "GET", "counters").json()
    assert counters["api_calls"] == {"DEMO-CO": 1}
    assert counters["unexpected_errors"] == 0
    assert control(intacct_emulator, "POST", "reset").json() == {"reset": True}
    assert control(intacct_emulator, "GET", "counters").json()["api_calls"] == {}
    assert (
        api(intacct_emulator, "GET", "/objects/accounts-payable/vendor", token).json()["error"][
            "errorId"
        ]
        == "REST-2102"
    )


def test_config(intacct_emulator: EmulatorServer) -> None:
    response = control(
        intacct_emulator, "POST", "config", json={"refresh_mode": "rotate", "per_minute_limit": 10}
    )
    assert response.json()["refresh_mode"] == "rotate"
    assert control(intacct_emulator, "GET", "config").json()["per_minute_limit"] == 10
    for bad in (
        {"refresh_mode": "sometimes"},
        {"nope": 1},
        {"access_token_ttl": 0},
        {"concurrency_limit": "2"},
        {"error_style": "xml"},
    ):
        response = control(intacct_emulator, "POST", "config", json=bad)
        assert response.status_code == 400
        assert response.json()["error"]


def test_faults(intacct_emulator: EmulatorServer, admin_token: str) -> None:
    response = control(
        intacct_emulator, "POST", "faults", json={"kind": "503", "company": "DEMO-CO", "count": 1}
    )
    assert response.json()["kind"] == "503"
    assert len(control(intacct_emulator, "GET", "faults").json()["faults"]) == 1
    assert (
        api(intacct_emulator, "GET", "/objects/accounts-payable/vendor", admin_token).status_code
        == 503
    )
    control(intacct_emulator, "POST", "faults", json={"kind": "500"})
    assert control(intacct_emulator, "DELETE", "faults").json() == {"faults": []}
    assert (
        api(intacct_emulator, "GET", "/objects/accounts-payable/vendor", admin_token).status_code
        == 200
    )
    assert control(intacct_emulator, "POST", "faults", json={"kind": "teapot"}).status_code == 400
    assert control(intacct_emulator, "POST", "faults", json={}).status_code == 400


def test_time_expiry_and_revocation(intacct_emulator: EmulatorServer, admin_token: str) -> None:
    now = control(intacct_emulator, "GET", "time").json()["now"]
    later = control(intacct_emulator, "POST", "time", json={"advance": 100}).json()["now"]
    assert later - now >= 100
    assert control(
        intacct_emulator, "POST", "expire-tokens", json={"company": "DEMO-CO"}
    ).json() == {"expired": 1}
    assert (
        api(intacct_emulator, "GET", "/objects/accounts-payable/vendor", admin_token).json()[
            "ia::error"
        ]["code"]
        == "GW-0040"
    )
    assert control(
        intacct_emulator, "POST", "revoke", json={"company": "DEMO-CO", "user": "admin"}
    ).json() == {"revoked": 1}
    assert control(intacct_emulator, "GET", "grants").json()["grants"][0]["status"] == "revoked"


def test_seeding_companies_users_and_applications(intacct_emulator: EmulatorServer) -> None:
    response = control(
        intacct_emulator,
        "POST",
        "companies",
        json={
            "company_id": "NEW-CO",
            "entities": ["NORTH"],
            "sender_authorized": False,
            "users": {"admin": "pw", "ws": "pw2"},
        },
    )
    assert response.status_code == 200
    assert (
        control(
            intacct_emulator,
            "POST",
            "users",
            json={
                "company_id": "NEW-CO",
                "user_id": "carol",
                "password": "c",
                "admin": True,
            },
        ).json()["admin"]
        is True
    )
    assert (
        control(
            intacct_emulator,
            "POST",
            "applications",
            json={
                "client_id": "new.app.sage.com",
                "client_secret": "s",
                "redirect_uris": ["https://new.example.com/cb/"],
            },
        ).json()["scope"]
        == "production"
    )
    bad = control(
        intacct_emulator,
        "POST",
        "applications",
        json={
            "client_id": "bad.app.sage.com",
            "client_secret": "s",
            "redirect_uris": ["http://new.example.com/cb/"],
        },
    )
    assert bad.status_code == 400
    assert control(
        intacct_emulator, "POST", "authorize-client", json={"company": "NEW-CO", "user_id": "ws"}
    ).json() == {"authorized": True}
    token = requests.post(
        intacct_emulator.token_url,
        data={
            "grant_type": "client_credentials",
            "client_id": "demo-client.app.sage.com",
            "client_secret": "demo-secret",
            "username": "ws@NEW-CO|NORTH",
        },
        timeout=5,
    ).json()["access_token"]
    assert (
        api(intacct_emulator, "GET", "/objects/accounts-payable/vendor", token).status_code == 403
    )
    assert control(
        intacct_emulator, "POST", "authorize-sender", json={"company": "NEW-CO"}
    ).json() == {"authorized": True}
    assert api(intacct_emulator, "GET", "/objects/accounts-payable/vendor", token).ok
    carol = intacct_emulator.complete_authorization(
        f"{intacct_emulator.authorize_url}?response_type=code&client_id=new.app.sage.com"
        "&redirect_uri=https%3A%2F%2Fnew.example.com%2Fcb%2F&state=s",
        "NEW-CO",
        "carol",
        "c",
    )
    assert "code=" in carol


def test_records_and_generate(intacct_emulator: EmulatorServer) -> None:
    body = control(
        intacct_emulator, "GET", "records/DEMO-CO/general-ledger/account", params={"limit": 2}
    ).json()
    assert body["count"] == intacct_emulator.record_count("DEMO-CO", "general-ledger/account")
    assert len(body["records"]) == 2
    assert control(
        intacct_emulator,
        "POST",
        "generate",
        json={
            "company": "DEMO-CO",
            "object": "accounts-receivable/customer",
            "count": 50,
        },
    ).json() == {"total": 250}
    assert control(intacct_emulator, "GET", "records/DEMO-CO/x").status_code == 400
    assert control(intacct_emulator, "GET", "records/DEMO-CO/a/b").status_code == 400
    assert (
        control(
            intacct_emulator,
            "POST",
            "generate",
            json={
                "company": "DEMO-CO",
                "object": "accounts-receivable/customer",
                "count": -1,
            },
        ).status_code
        == 400
    )


@pytest.mark.parametrize(
    ("method", "name", "kwargs", "status"),
    [
        ("GET", "nothing", {}, 404),
        ("PUT", "config", {}, 404),
        ("POST", "config", {"data": "{bad"}, 400),
        ("POST", "config", {"json": [1]}, 400),
        ("POST", "tokens", {"json": {"company_id": "DEMO-CO"}}, 400),
        ("POST", "tokens", {"json": {"company_id": "NOPE", "user_id": "x"}}, 400),
        ("POST", "tokens", {"json": {"company_id": "DEMO-CO", "user_id": "admin", "x": 1}}, 400),
    ],
)
def test_control_errors(
    intacct_emulator: EmulatorServer, method: str, name: str, kwargs: dict[str, Any], status: int
) -> None:
    response = control(intacct_emulator, method, name, **kwargs)
    assert response.status_code == status
    assert response.json()["error"]


def test_handle_urls_and_connect_settings(intacct_emulator: EmulatorServer) -> None:
    root = intacct_emulator.root_url
    assert root.startswith("http://127.0.0.1:")
    assert intacct_emulator.base_url == f"{root}/ia/api/v1"
    assert intacct_emulator.token_url == f"{root}/ia/api/v1/oauth2/token"
    settings = intacct_emulator.connect_settings()
    assert settings == {
        "CLIENT_ID": "demo-client.app.sage.com",
        "CLIENT_SECRET": "demo-secret",
        "SENDER_ID": "DEMO-SENDER",
        "API_BASE_URL": f"{root}/ia/api/v1",
        "AUTHORIZE_URL": f"{root}/ia/api/v1/oauth2/authorize",
        "TOKEN_URL": f"{root}/ia/api/v1/oauth2/token",
        "REVOKE_URL": f"{root}/ia/api/v1/oauth2/revoke",
        "REDIRECT_URI": "https://app.example.com/intacct/callback/",
    }
    assert intacct_emulator.connect_settings(sandbox=True)["CLIENT_ID"] == (
        "demo-sandbox-client.app.sage.com"
    )
    index = requests.get(root + "/", timeout=5)
    assert "Sage Intacct emulator" in index.text
    assert requests.get(root + "/favicon.ico", timeout=5).status_code == 404


def test_huge_body_is_rejected_without_error(
    intacct_emulator: EmulatorServer, admin_token: str
) -> None:
    response = api(
        intacct_emulator,
        "POST",
        "/objects/accounts-payable/vendor",
        admin_token,
        data=b"x" * (33 * 1024 * 1024),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413


def test_redirect_uris_register_list_and_authorize(intacct_emulator: EmulatorServer) -> None:
    uri = "http://localhost:28123/intacct/callback/"
    authorize = {
        "response_type": "code",
        "client_id": "demo-client.app.sage.com",
        "redirect_uri": uri,
        "state": "s",
    }
    before = requests.get(intacct_emulator.authorize_url, params=authorize, timeout=10)
    assert before.status_code == 400  # not registered yet: an error page, not a redirect
    listed = control(intacct_emulator, "GET", "redirect-uris").json()
    assert listed["client_id"] == "demo-client.app.sage.com"
    assert uri not in listed["redirect_uris"]

    added = control(intacct_emulator, "POST", "redirect-uris", json={"uri": uri})
    assert added.status_code == 200, added.text
    assert added.json()["redirect_uris"][-1] == uri
    again = control(intacct_emulator, "POST", "redirect-uris", json={"uri": uri}).json()
    assert again["redirect_uris"].count(uri) == 1  # idempotent
    assert uri in intacct_emulator.redirect_uris()
    page = requests.get(intacct_emulator.authorize_url, params=authorize, timeout=10)
    assert page.status_code == 200
    assert 'name="password"' in page.text

    sandbox = "demo-sandbox-client.app.sage.com"
    other = control(
        intacct_emulator,
        "POST",
        "redirect-uris",
        json={"uri": "https://other.example.com/cb/", "client_id": sandbox},
    ).json()
    assert other["client_id"] == sandbox
    listed = control(intacct_emulator, "GET", "redirect-uris", params={"client_id": sandbox})
    assert "https://other.example.com/cb/" in listed.json()["redirect_uris"]
    assert "https://other.example.com/cb/" not in intacct_emulator.redirect_uris()


@pytest.mark.parametrize(
    ("method", "kwargs", "message"),
    [
        ("POST", {"json": {"uri": "not a url"}}, "is not an absolute URL"),
        ("POST", {"json": {"uri": "/intacct/callback/"}}, "is not an absolute URL"),
        ("POST", {"json": {"uri": "http://app.example.com/cb/"}}, "use https"),
        ("POST", {"json": {"uri": "https://app.example.com/cb/#x"}}, "must not have a fragment"),
        ("POST", {"json": {"uri": 5}}, "uri must be a string"),
        ("POST", {"json": {}}, "uri is required"),
        ("POST", {"json": {"uri": "https://a.example.com/", "x": 1}}, "Unknown field(s) x"),
        (
            "POST",
            {"json": {"uri": "https://a.example.com/", "client_id": "nope"}},
            "Unknown client 'nope'",
        ),
        ("POST", {"json": {"uri": "https://a.example.com/", "client_id": 3}}, "client_id must"),
        ("POST", {"data": "uri=https://a.example.com/"}, "must be a JSON object"),
        ("POST", {"json": ["https://a.example.com/"]}, "must be a JSON object"),
        ("GET", {"params": {"client_id": "nope"}}, "Unknown client 'nope'"),
        ("GET", {"params": {"uri": "x"}}, "Unknown parameter(s) uri"),
    ],
)
def test_redirect_uris_bad_input(
    intacct_emulator: EmulatorServer, method: str, kwargs: dict[str, Any], message: str
) -> None:
    response = control(intacct_emulator, method, "redirect-uris", **kwargs)
    assert response.status_code == 400
    assert message in response.json()["error"]
