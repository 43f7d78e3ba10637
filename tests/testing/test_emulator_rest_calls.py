"""The checks every REST handler shares (``rest/calls.py``): allowed methods (405 REST-1020
with ``Allow``) and a required body (400 REST-1028)."""

from __future__ import annotations

import pytest

from intacct_connect.testing.emulator import EmulatorServer
from tests.testing.conftest import VENDOR, api, error_of


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


def test_empty_post_is_rest1028(intacct_emulator: EmulatorServer, admin_token: str) -> None:
    response = api(intacct_emulator, "POST", VENDOR, admin_token)
    error = error_of(response)
    assert error["errorId"] == "REST-1028"
    assert error["message"] == "A POST request requires a payload"
