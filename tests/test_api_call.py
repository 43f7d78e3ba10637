"""intacct_connect.api_call: a call's data and reading an answer."""

from __future__ import annotations

import requests

from intacct_connect import client
from intacct_connect.api_call import GARBAGE, ApiResponse, parse_json, request_id


def _response(content: bytes, headers: dict[str, str] | None = None) -> requests.Response:
    response = requests.Response()
    response.status_code = 200
    response._content = content
    response.headers.update(headers or {})
    return response


def test_the_result_and_meta_of_an_envelope() -> None:
    answer = ApiResponse(200, {"ia::result": [1], "ia::meta": {"next": 3}})
    assert (answer.result, answer.meta) == ([1], {"next": 3})
    bare = ApiResponse(204, None)
    assert (bare.result, bare.meta) == (None, {})
    assert ApiResponse(200, [1, 2]).result == [1, 2]
    assert client.ApiResponse is ApiResponse


def test_bodies_are_json_none_or_garbage() -> None:
    assert parse_json(_response(b'{"a": 1}')) == {"a": 1}
    assert parse_json(_response(b"")) is None
    assert parse_json(_response(b"<html>")) is GARBAGE


def test_the_request_id_comes_from_a_header_or_the_error_details() -> None:
    assert request_id(_response(b"", {"X-IA-Request-Id": "r-1"}), {}) == "r-1"
    assert request_id(_response(b""), {"details": {"requestId": "r-2"}}) == "r-2"
    assert request_id(_response(b""), {"details": "text"}) == ""
    assert len(request_id(_response(b"", {"X-Request-Id": "x" * 300}), {})) == 100
