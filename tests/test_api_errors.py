"""intacct_connect.api_errors: Intacct's error shapes mapped onto the exception tree."""

from __future__ import annotations

import pytest

from intacct_connect import client
from intacct_connect.api_errors import ERROR_HINTS, error_for, extract_error, is_token_error
from intacct_connect.exceptions import (
    AuthenticationError,
    ConflictError,
    IntacctAPIError,
    IntacctConnectError,
    IntacctValidationError,
    MethodNotAllowedError,
    NeedsReauthorization,
    NotFoundError,
    PermissionDeniedError,
    RateLimited,
    ServerError,
    TransportError,
)


def test_client_errors_are_one_tree() -> None:
    for cls in (
        AuthenticationError,
        NeedsReauthorization,
        NotFoundError,
        RateLimited,
        ServerError,
        TransportError,
        IntacctValidationError,
        PermissionDeniedError,
    ):
        assert issubclass(cls, IntacctConnectError)
    error = client.error_for(
        429,
        {"ia::error": {"code": "GW-0010", "message": "API rate limit exceeded"}},
        method="GET",
        path="/objects/x/y",
        headers={"X-IA-Throttle-Limit-RetryAfter": "4", "Retry-After": "2"},
    )
    assert isinstance(error, RateLimited)
    assert error.retry_after == 4
    bare = client.error_for(
        401,
        {
            "error": {
                "code": "tokenInvalid",
                "message": "Token is not valid",
                "errorId": "REST-2102",
            }
        },
        method="GET",
        path="/objects/x/y",
    )
    assert isinstance(bare, AuthenticationError)
    assert bare.error_id == "REST-2102"


def test_the_error_object_is_found_in_every_shape() -> None:
    inner = {"code": "x", "message": "m"}
    assert extract_error({"ia::error": inner}) == inner
    assert extract_error({"ia::result": {"ia::error": inner}}) == inner
    assert extract_error({"error": inner}) == inner
    assert extract_error({"error": "invalid_grant", "error_description": "gone"}) == {
        "code": "invalid_grant",
        "message": "gone",
    }
    assert extract_error({"ia::result": []}) == {}
    assert extract_error(None) == {}
    assert extract_error(["not", "an", "object"]) == {}


@pytest.mark.parametrize(
    ("status", "body", "cls"),
    [
        (403, None, PermissionDeniedError),
        (400, {"ia::error": {"code": "GW-0011"}}, PermissionDeniedError),
        (401, {"ia::error": {"code": "GW-0011"}}, PermissionDeniedError),  # never a token error
        (401, {"ia::error": {"errorId": "GW-0011"}}, PermissionDeniedError),
        (404, None, NotFoundError),
        (405, None, MethodNotAllowedError),
        (409, None, ConflictError),
        (400, None, IntacctValidationError),
        (422, None, IntacctValidationError),
        (503, None, ServerError),
        (418, None, IntacctAPIError),
        (400, {"ia::error": {"errorId": "GW-0040"}}, AuthenticationError),
    ],
)
def test_each_status_maps_to_its_exception(status: int, body: object, cls: type) -> None:
    error = error_for(status, body, method="GET", path="/objects/x/y", connection_id=7)
    assert type(error) is cls
    assert (error.status_code, error.connection_id) == (status, 7)


def test_the_message_names_the_call_and_adds_the_documented_hint() -> None:
    error = error_for(
        400,
        {"ia::error": {"code": "GW-0011", "message": "Refused", "supportId": "s-1"}},
        method="POST",
        path="/objects/a/b",
    )
    assert error.message.startswith("POST /objects/a/b: Refused — ")
    assert ERROR_HINTS["GW-0011"] in error.message
    assert error.support_id == "s-1"
    assert "no JSON body" in error_for(500, None, method="GET", path="/x").message


def test_token_errors_are_401_or_a_token_code() -> None:
    assert is_token_error(401, {})
    assert is_token_error(400, {"code": "REST-1206"})
    assert is_token_error(400, {"errorId": "GW-0040"})
    assert not is_token_error(400, {"code": "GW-0011"})
    assert not is_token_error(401, {"code": "GW-0011"})  # the sender-ID hint must reach the user
