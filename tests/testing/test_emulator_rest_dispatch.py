"""A REST call from request to handler (``rest/dispatch.py``): body parsing, the error shape,
``/services/core/session/id``, and arbitrary JSON never breaking the API."""

from __future__ import annotations

from typing import Any

import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intacct_connect.testing.emulator import EmulatorServer
from tests.testing.conftest import VENDOR, api


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        (
            {"data": "{bad json", "headers": {"Content-Type": "application/json"}},
            400,
            "invalidRequest",
        ),
        (
            {"data": "id=1", "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
            415,
            "GW-0014",
        ),
        ({"data": "<vendor/>", "headers": {"Content-Type": "application/xml"}}, 415, "GW-0014"),
        ({}, 400, "invalidRequest"),
        ({"json": "a string"}, 400, "invalidRequest"),
        ({"json": 5}, 400, "invalidRequest"),
        ({"json": []}, 400, "invalidRequest"),
    ],
)
def test_bad_request_bodies(
    intacct_emulator: EmulatorServer,
    admin_token: str,
    kwargs: dict[str, Any],
    status: int,
    code: str,
) -> None:
    response = api(intacct_emulator, "POST", VENDOR, admin_token, **kwargs)
    assert response.status_code == status
    assert response.json()["ia::error"]["code"] == code


def test_non_standard_json_constants_are_rejected(
    intacct_emulator: EmulatorServer, admin_token: str
) -> None:
    response = api(
        intacct_emulator,
        "POST",
        VENDOR,
        admin_token,
        data='{"id": "N", "name": "N", "creditLimit": NaN}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["ia::error"]["message"] == "The request payload is not valid JSON"


def test_nested_error_shape_option(intacct_emulator: EmulatorServer, admin_token: str) -> None:
    intacct_emulator.configure(rest_error_shape="nested")
    response = api(intacct_emulator, "GET", f"{VENDOR}/999999", admin_token)
    body = response.json()
    assert body["ia::result"]["ia::error"]["code"] == "notFound"
    assert body["ia::meta"]["totalError"] == 1


def test_session_id_service(intacct_emulator: EmulatorServer) -> None:
    tokens = intacct_emulator.issue_tokens("DEMO-CO", "admin")
    body = api(intacct_emulator, "GET", "/services/core/session/id", tokens["access_token"]).json()
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert body["ia::result"]["sessionId"] == claims["sessionId"]
    assert 21500 < body["ia::result"]["expiresIn"] <= 21600


JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=10),
    st.sampled_from(["2025-01-01", "active", "debit", "VEND-00001", "1000", "today", "@{v.key}"]),
)


JSON_KEYS = st.one_of(
    st.text(max_size=6),
    st.sampled_from(
        [
            "id",
            "name",
            "status",
            "lines",
            "glAccount",
            "txnAmount",
            "txnType",
            "vendor",
            "key",
            "contacts",
            "object",
            "fields",
            "filters",
            "orderBy",
            "start",
            "size",
            "$eq",
            "$in",
            "glJournal",
            "postingDate",
            "method",
            "path",
            "body",
            "createdDate",
            "dueDate",
        ]
    ),
)


JSON = st.recursive(
    JSON_LEAVES,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(JSON_KEYS, children, max_size=5)
    ),
    max_leaves=20,
)


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    path=st.sampled_from(
        [
            "/objects/accounts-payable/vendor",
            "/objects/accounts-payable/bill",
            "/objects/general-ledger/journal-entry",
            "/objects/accounts-receivable/invoice",
            "/services/core/query",
            "/services/core/composite",
            "/objects/accounts-payable/vendor/3",
        ]
    ),
    body=JSON,
)
def test_arbitrary_json_never_breaks_the_api(
    intacct_emulator: EmulatorServer, admin_token: str, path: str, body: Any
) -> None:
    method = "PATCH" if path.endswith("/3") else "POST"
    response = api(intacct_emulator, method, path, admin_token, json=body)
    assert response.status_code < 500, response.text
    assert response.headers["Content-Type"] == "application/json"
    assert intacct_emulator.unexpected_errors() == 0
