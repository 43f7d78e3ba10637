"""Write bodies checked against an object's fields (``records/validation.py``): 400 REST-1064
with a detail per problem."""

from __future__ import annotations

from typing import Any

import pytest

from intacct_connect.testing.emulator import EmulatorServer
from tests.testing.conftest import VENDOR, api, error_of


@pytest.mark.parametrize(
    ("body", "target"),
    [
        ({"id": "V-2", "name": "X", "newDate": "2025-01-01"}, "/newDate"),
        ({"id": "V-2", "name": "X", "status": "bogus"}, "/status"),
        ({"id": "V-2", "name": 5}, "/name"),
        ({"id": "V-2", "name": "X", "isOnHold": "yes"}, "/isOnHold"),
        ({"id": "V-2", "name": "X", "creditLimit": "lots"}, "/creditLimit"),
        ({"id": "V-2", "name": "X", "term": "Net 30"}, "/term"),
        ({"id": "V-2", "name": "X", "term": {"id": ""}}, "/term/id"),
        ({"id": "V-2", "name": "X", "term": {"code": "x"}}, "/term/code"),
        ({"id": "V-2", "name": "X", "billPayment": {"nope": 1}}, "/billPayment/nope"),
        ({"id": "V-2", "name": "X", "contacts": []}, "/contacts"),
    ],
)
def test_invalid_payloads_are_400_with_details(
    intacct_emulator: EmulatorServer, admin_token: str, body: dict[str, Any], target: str
) -> None:
    response = api(intacct_emulator, "POST", VENDOR, admin_token, json=body)
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalidRequest"
    assert error["errorId"] == "REST-1064"
    assert target in [d.get("target") for d in error["details"]]
