"""The emulator's URL map: wrong methods, trailing and doubled slashes, prefix fallbacks."""

from __future__ import annotations

import pytest
import requests

from intacct_connect.testing.emulator import EmulatorServer


def error_code(response: requests.Response) -> str:
    code: str = response.json()["ia::error"]["code"]
    return code


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        # A rule limited to POST answers its own 405 for any other method.
        ("GET", "/ia/api/v1/oauth2/token", 405, "GW-0033"),
        ("PUT", "/ia/api/v1/oauth2/revoke", 405, "GW-0033"),
        ("DELETE", "/ia/api/v1/oauth2/introspect", 405, "GW-0033"),
        # Sign-in and consent with another method are unknown OAuth endpoints.
        ("GET", "/ia/api/v1/oauth2/signin", 404, "GW-0033"),
        ("GET", "/ia/api/v1/oauth2/consent", 404, "GW-0033"),
        # A trailing slash never matches a rule without one (no redirect).
        ("POST", "/ia/api/v1/oauth2/token/", 404, "GW-0033"),
        ("GET", "/ia/api/v1/oauth2/authorize/", 404, "GW-0033"),
        ("GET", "/ia/api/v1/oauth2/", 404, "GW-0033"),
        ("GET", "/.well-known/jwks.json/", 404, "notFound"),
        # Doubled slashes are not merged.
        ("POST", "/ia/api/v1/oauth2//token", 404, "GW-0033"),
        # Outside every prefix.
        ("GET", "/ia/api/v1", 404, "notFound"),
        ("GET", "/ia/authorize/x", 404, "notFound"),
        ("GET", "/.well-known/", 404, "notFound"),
    ],
)
def test_routing_edges(
    intacct_emulator: EmulatorServer, method: str, path: str, status: int, code: str
) -> None:
    response = requests.request(method, intacct_emulator.root_url + path, timeout=5)
    assert response.status_code == status
    assert error_code(response) == code


@pytest.mark.parametrize("path", ["/ia/authorize", "/ia/api/v1/oauth2/authorize"])
def test_authorize_with_another_method_is_an_error_page(
    intacct_emulator: EmulatorServer, path: str
) -> None:
    response = requests.post(intacct_emulator.root_url + path, timeout=5)
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("text/html")
    assert "Use GET for the authorization endpoint." in response.text


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_discovery_documents_and_index_answer_any_method(
    intacct_emulator: EmulatorServer, method: str
) -> None:
    root = intacct_emulator.root_url
    for path in ("/.well-known/openid-configuration", "/.well-known/jwks.json", "/"):
        assert requests.request(method, root + path, timeout=5).status_code == 200
