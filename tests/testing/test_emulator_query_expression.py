"""``filterExpression`` (``query/expression.py``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from intacct_connect.testing.emulator import EmulatorServer
from tests.testing.conftest import QUERY, api, query_ids


def test_filter_expression(
    intacct_emulator: EmulatorServer, admin_token: str, vendors: list[dict[str, Any]]
) -> None:
    filters = [
        {"$eq": {"status": "inactive"}},
        {"$gt": {"creditLimit": 20000}},
        {"$startsWith": {"name": "Acme"}},
    ]

    def matches(v: dict[str, Any]) -> tuple[bool, bool, bool]:
        return v["status"] == "inactive", v["creditLimit"] > 20000, v["name"].startswith("Acme")

    cases: dict[str, Callable[[bool, bool, bool], bool]] = {
        "(1 and 2) or 3": lambda a, b, c: (a and b) or c,
        "1 and (2 or 3)": lambda a, b, c: a and (b or c),
        "1 or 2 and 3": lambda a, b, c: a or (b and c),
        "or": lambda a, b, c: a or b or c,
        "and": lambda a, b, c: a and b and c,
        "((1) OR 3)": lambda a, b, c: a or c,
    }
    for expression, logic in cases.items():
        expected = [v["id"] for v in vendors if logic(*matches(v))]
        got = query_ids(intacct_emulator, admin_token, filters, filterExpression=expression)
        assert got == expected, expression


@pytest.mark.parametrize("expression", ["1 and 2", "(1", "1 xor 1", "1 1", "", 1])
def test_bad_filter_expressions_are_400(
    intacct_emulator: EmulatorServer, admin_token: str, expression: object
) -> None:
    body = {
        "object": "accounts-payable/vendor",
        "filters": [{"$eq": {"id": "a"}}],
        "filterExpression": expression,
    }
    response = api(intacct_emulator, "POST", QUERY, admin_token, json=body)
    assert response.status_code == 400, response.text
    assert response.json()["ia::error"]["errorId"] == "REST-1064"
