"""The query service (``POST /services/core/query``): the request body and the rows, page
after page.

:func:`query_body` checks the arguments and builds the body (``ValueError`` before any
request); :func:`iter_rows` is a generator that sends one page at a time through the
``send`` it is given (the client's one logical call, with its retries and token replay),
follows ``ia::meta.next`` and holds only one page in memory. A ``next`` that is not a
number or does not move forward raises :class:`~intacct_connect.exceptions.IntacctAPIError`
instead of looping.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from intacct_connect.api_call import ApiResponse
from intacct_connect.exceptions import IntacctAPIError

QUERY_PATH = "/services/core/query"
DEFAULT_PAGE_SIZE = 1000
MAX_PAGE_SIZE = 4000


def query_body(
    object: str,
    fields: Sequence[str],
    filters: Sequence[Mapping[str, Any]] | None = None,
    filter_expression: str | None = None,
    filter_parameters: Mapping[str, Any] | None = None,
    order_by: Sequence[Mapping[str, str]] | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> dict[str, Any]:
    """The body of a query request (without ``start``, which :func:`iter_rows` sets)."""
    if not fields:
        raise ValueError("query() needs at least one field")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
    body: dict[str, Any] = {"object": object, "fields": list(fields)}
    if filters:
        body["filters"] = [dict(f) for f in filters]
    if filter_expression:
        body["filterExpression"] = filter_expression
    if filter_parameters:
        body["filterParameters"] = dict(filter_parameters)
    if order_by:
        body["orderBy"] = [dict(o) for o in order_by]
    body["size"] = page_size
    return body


def iter_rows(
    send: Callable[[dict[str, Any]], ApiResponse],
    body: dict[str, Any],
    start: int,
    max_pages: int | None,
    *,
    connection_id: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Every row, page by page from ``start``: ``send(body)`` fetches one page."""
    pages = 0
    while True:
        body["start"] = start
        response = send(body)
        rows = response.result
        meta = response.meta
        del response
        if not isinstance(rows, list):
            raise IntacctAPIError(
                f"POST {QUERY_PATH}: the answer has no list of rows",
                connection_id=connection_id,
            )
        yield from rows
        del rows
        pages += 1
        nxt = meta.get("next")
        if nxt in (None, "", 0) or (max_pages is not None and pages >= max_pages):
            return
        try:
            nxt_start = int(nxt)
        except (TypeError, ValueError):
            raise IntacctAPIError(
                f"POST {QUERY_PATH}: ia::meta.next is not a number ({nxt!r})",
                connection_id=connection_id,
            ) from None
        if nxt_start <= start:
            raise IntacctAPIError(
                f"POST {QUERY_PATH}: ia::meta.next ({nxt_start}) does not advance past "
                f"start {start}; stopping instead of looping",
                connection_id=connection_id,
            )
        start = nxt_start
