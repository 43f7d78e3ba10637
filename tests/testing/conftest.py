"""Helpers for the emulator's own tests (everything goes through real HTTP)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from intacct_connect.testing.emulator import EmulatorServer

CLIENT_ID = "demo-client.app.sage.com"
CLIENT_SECRET = "demo-secret"
REDIRECT_URI = "https://app.example.com/intacct/callback/"


@pytest.fixture
def intacct_emulator(intacct_emulator: EmulatorServer) -> Iterator[EmulatorServer]:
    """The plugin's fixture, plus proof that the emulator never hit an unexpected
    exception during the test."""
    yield intacct_emulator
    assert intacct_emulator.unexpected_errors() == 0, (
        intacct_emulator.emulator.last_unexpected_error()
    )


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(64)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorize_url(emu: EmulatorServer, challenge: str | None, **overrides: Any) -> str:
    params: dict[str, Any] = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "state": "state-123",
        "scope": "offline_access",
    }
    if challenge is not None:
        params["code_challenge"] = challenge
        params["code_challenge_method"] = "S256"
    params.update(overrides)
    params = {k: v for k, v in params.items() if v is not None}
    return f"{emu.authorize_url}?{urlencode(params)}"


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def get_code(
    emu: EmulatorServer,
    company: str = "DEMO-CO",
    user: str = "admin",
    password: str | None = None,
    entity: str | None = None,
    **overrides: Any,
) -> tuple[str, str]:
    """(code, verifier) through the sign-in and consent pages."""
    verifier, challenge = pkce()
    location = emu.complete_authorization(
        authorize_url(emu, challenge, **overrides), company, user, password or user, entity
    )
    params = query_of(location)
    assert "code" in params, location
    return params["code"], verifier


def token_request(emu: EmulatorServer, **data: Any) -> requests.Response:
    body = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, **data}
    body = {k: v for k, v in body.items() if v is not None}
    return requests.post(emu.token_url, data=body, timeout=10)


def exchange(emu: EmulatorServer, code: str, verifier: str) -> dict[str, Any]:
    response = token_request(
        emu,
        grant_type="authorization_code",
        code=code,
        code_verifier=verifier,
        redirect_uri=REDIRECT_URI,
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def api(
    emu: EmulatorServer,
    method: str,
    path: str,
    token: str,
    *,
    entity: str | None = None,
    **kwargs: Any,
) -> requests.Response:
    headers = bearer(token)
    if entity is not None:
        headers["X-IA-API-Param-Entity"] = entity
    headers.update(kwargs.pop("headers", {}))
    kwargs.setdefault("timeout", 30)
    return requests.request(method, f"{emu.base_url}{path}", headers=headers, **kwargs)


@pytest.fixture
def admin_token(intacct_emulator: EmulatorServer) -> str:
    """A top-level access token of DEMO-CO's admin."""
    token: str = intacct_emulator.issue_tokens("DEMO-CO", "admin")["access_token"]
    return token


VENDOR = "/objects/accounts-payable/vendor"


def error_of(response: requests.Response) -> dict[str, Any]:
    """The ``ia::error`` of a one-record REST error answer (top-level shape)."""
    body = response.json()
    assert body["ia::meta"] == {"totalCount": 1, "totalSuccess": 0, "totalError": 1}
    error: dict[str, Any] = body["ia::error"]
    assert error["supportId"]
    return error


QUERY = "/services/core/query"


def run_query(
    emu: EmulatorServer, token: str, body: dict[str, Any], **kwargs: Any
) -> dict[str, Any]:
    """The answer to a query that must succeed."""
    response = api(emu, "POST", QUERY, token, json=body, **kwargs)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def query_ids(
    emu: EmulatorServer,
    token: str,
    filters: list[Any],
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> list[str]:
    """The IDs of the vendors matching ``filters``, in the query's order."""
    body = run_query(
        emu,
        token,
        {
            "object": "accounts-payable/vendor",
            "fields": ["id"],
            "filters": filters,
            "size": 4000,
            **extra,
        },
        headers=headers or {},
    )
    return [row["id"] for row in body["ia::result"]]


@pytest.fixture
def vendors(intacct_emulator: EmulatorServer) -> list[dict[str, Any]]:
    """DEMO-CO's vendors as stored (expected query results are computed from them)."""
    return intacct_emulator.records("DEMO-CO", "accounts-payable/vendor")


def vendor_status(emu: EmulatorServer, token: str) -> requests.Response:
    """GET one vendor with ``token`` (200, or the token's error)."""
    return api(emu, "GET", "/objects/accounts-payable/vendor/1", token)


def refresh(emu: EmulatorServer, token: str, **extra: str) -> requests.Response:
    """A refresh-token grant request with the demo client."""
    return token_request(emu, grant_type="refresh_token", refresh_token=token, **extra)
