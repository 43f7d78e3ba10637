"""intacct_connect.api_query: the query body and the page-by-page iteration, with a fake
``send`` (the client's own paging is tested through the emulator in test_client)."""

from __future__ import annotations

from typing import Any

import pytest

from intacct_connect.api_call import ApiResponse
from intacct_connect.api_query import MAX_PAGE_SIZE, iter_rows, query_body
from intacct_connect.exceptions import IntacctAPIError


def test_the_body_carries_only_what_was_given() -> None:
    assert query_body("a/b", ("key",)) == {"object": "a/b", "fields": ["key"], "size": 1000}
    body = query_body(
        "a/b",
        ["key"],
        filters=[{"$eq": {"status": "active"}}],
        filter_expression="1",
        filter_parameters={"asOfDate": "2026-01-01"},
        order_by=[{"key": "asc"}],
        page_size=10,
    )
    assert body == {
        "object": "a/b",
        "fields": ["key"],
        "filters": [{"$eq": {"status": "active"}}],
        "filterExpression": "1",
        "filterParameters": {"asOfDate": "2026-01-01"},
        "orderBy": [{"key": "asc"}],
        "size": 10,
    }
    with pytest.raises(ValueError, match="at least one field"):
        query_body("a/b", [])
    with pytest.raises(ValueError, match="page_size"):
        query_body("a/b", ["key"], page_size=MAX_PAGE_SIZE + 1)


class Pages:
    """A fake ``send``: answers each start with its page, recording the starts asked for."""

    def __init__(self, pages: dict[int, tuple[Any, Any]]) -> None:
        self.pages = pages
        self.starts: list[int] = []

    def __call__(self, body: dict[str, Any]) -> ApiResponse:
        self.starts.append(body["start"])
        rows, nxt = self.pages[body["start"]]
        return ApiResponse(200, {"ia::result": rows, "ia::meta": {"next": nxt}})


def test_pages_are_followed_lazily_until_next_is_empty() -> None:
    send = Pages({1: ([{"key": "1"}, {"key": "2"}], 3), 3: ([{"key": "3"}], None)})
    rows = iter_rows(send, {"object": "a/b"}, 1, None)
    assert send.starts == []  # nothing is fetched before the first row is asked for
    assert next(rows) == {"key": "1"}
    assert send.starts == [1]
    assert [r["key"] for r in rows] == ["2", "3"]
    assert send.starts == [1, 3]


def test_max_pages_stops_early() -> None:
    send = Pages({1: ([{"key": "1"}], 2), 2: ([{"key": "2"}], 3)})
    assert list(iter_rows(send, {}, 1, 1)) == [{"key": "1"}]


@pytest.mark.parametrize(
    ("pages", "message"),
    [
        ({1: ({"not": "a list"}, None)}, "no list of rows"),
        ({1: ([], "later")}, "is not a number"),
        ({1: ([], 1)}, "does not advance"),
    ],
)
def test_a_bad_page_raises_instead_of_looping(pages: dict[int, Any], message: str) -> None:
    with pytest.raises(IntacctAPIError, match=message) as info:
        list(iter_rows(Pages(pages), {}, 1, None, connection_id=5))
    assert info.value.connection_id == 5
