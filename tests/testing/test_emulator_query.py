"""``POST /services/core/query`` on the emulator, through HTTP.

Expected results are computed independently from the stored records (``records()``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from intacct_connect.testing.emulator import EmulatorServer
from tests.testing.conftest import api

QUERY = "/services/core/query"


def run(emu: EmulatorServer, token: str, body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    response = api(emu, "POST", QUERY, token, json=body, **kwargs)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def ids(
    emu: EmulatorServer,
    token: str,
    filters: list[Any],
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> list[str]:
    body = run(
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
    return intacct_emulator.records("DEMO-CO", "accounts-payable/vendor")


def test_fields_are_returned_flat_with_dotted_names(
    intacct_emulator: EmulatorServer, admin_token: str
) -> None:
    body = run(
        intacct_emulator,
        admin_token,
        {
            "object": "accounts-payable/bill",
            "fields": [
                "key",
                "id",
                "vendor.id",
                "vendor.name",
                "vendor.href",
                "currency.txnCurrency",
                "totalTxnAmount",
                "href",
                "entity.id",
            ],
            "size": 2,
        },
    )
    bills = intacct_emulator.records("DEMO-CO", "accounts-payable/bill")
    row = body["ia::result"][0]
    bill = bills[0]
    assert row == {
        "key": bill["key"],
        "id": bill["id"],
        "vendor.id": bill["vendor"]["id"],
        "vendor.name": bill["vendor"]["name"],
        "vendor.href": bill["vendor"]["href"],
        "currency.txnCurrency": "USD",
        "totalTxnAmount": bill["totalTxnAmount"],
        "href": f"/objects/accounts-payable/bill/{bill['key']}",
        "entity.id": bill["entity"]["id"],
    }


def test_default_page_and_paging_meta(
    intacct_emulator: EmulatorServer, admin_token: str, vendors: list[dict[str, Any]]
) -> None:
    total = len(vendors)
    first = run(
        intacct_emulator, admin_token, {"object": "accounts-payable/vendor", "fields": ["key"]}
    )
    assert len(first["ia::result"]) == 100
    assert first["ia::meta"] == {
        "totalCount": total,
        "start": 1,
        "pageSize": 100,
        "next": 101,
        "previous": None,
    }
    seen: list[str] = []
    start: int | None = 1
    while start is not None:
        page = run(
            intacct_emulator,
            admin_token,
            {"object": "accounts-payable/vendor", "fields": ["key"], "start": start, "size": 60},
        )
        seen += [r["key"] for r in page["ia::result"]]
        if start > 1:
            assert page["ia::meta"]["previous"] == max(1, start - 60)
        start = page["ia::meta"]["next"]
    assert seen == [v["key"] for v in vendors]
    beyond = run(
        intacct_emulator,
        admin_token,
        {"object": "accounts-payable/vendor", "fields": ["key"], "start": total + 5},
    )
    assert beyond["ia::result"] == []
    assert beyond["ia::meta"]["next"] is None


def test_short_object_name_and_default_fields(
    intacct_emulator: EmulatorServer, admin_token: str
) -> None:
    body = run(intacct_emulator, admin_token, {"object": "vendor", "size": 1})
    assert set(body["ia::result"][0]) == {"key", "id", "href"}


def test_oversize_pages_are_capped_at_4000(
    intacct_emulator: EmulatorServer, admin_token: str
) -> None:
    intacct_emulator.generate_records("DEMO-CO", "accounts-payable/vendor", 4500)
    body = run(
        intacct_emulator,
        admin_token,
        {"object": "accounts-payable/vendor", "fields": ["key"], "size": 10000},
    )
    assert body["ia::meta"]["pageSize"] == 4000
    assert len(body["ia::result"]) == 4000
    assert body["ia::meta"]["next"] == 4001


@pytest.mark.parametrize(
    ("op", "value", "check"),
    [
        ("$eq", "active", lambda v: v["status"] == "active"),
        ("$ne", "active", lambda v: v["status"] != "active"),
        ("$in", ["inactive", "activeNonPosting"], lambda v: v["status"] in ("inactive",)),
        ("$notIn", ["inactive"], lambda v: v["status"] != "inactive"),
    ],
)
def test_equality_operators(
    intacct_emulator: EmulatorServer,
    admin_token: str,
    vendors: list[dict[str, Any]],
    op: str,
    value: Any,
    check: Any,
) -> None:
    expected = [v["id"] for v in vendors if check(v)]
    assert expected
    assert ids(intacct_emulator, admin_token, [{op: {"status": value}}]) == expected


@pytest.mark.parametrize(
    ("op", "value", "check"),
    [
        ("$lt", "1000", lambda d: d < 1000),
        ("$lte", "1000.5", lambda d: d <= Decimal("1000.5")),
        ("$gt", 40000, lambda d: d > 40000),
        ("$gte", "40000.00", lambda d: d >= 40000),
        ("$between", ["1000", "5000"], lambda d: 1000 <= d <= 5000),
        ("$notBetween", ["1000", "45000"], lambda d: not 1000 <= d <= 45000),
    ],
)
def test_numeric_comparisons_on_decimal_strings(
    intacct_emulator: EmulatorServer,
    admin_token: str,
    vendors: list[dict[str, Any]],
    op: str,
    value: Any,
    check: Any,
) -> None:
    expected = [v["id"] for v in vendors if check(Decimal(v["totalDue"]))]
    assert expected
    assert ids(intacct_emulator, admin_token, [{op: {"totalDue": value}}]) == expected


@pytest.mark.parametrize(
    ("op", "value", "check"),
    [
        ("$contains", "Systems", lambda n: "Systems" in n),
        ("$notContains", "Systems", lambda n: "Systems" not in n),
        ("$startsWith", "Acme", lambda n: n.startswith("Acme")),
        ("$notStartsWith", "Acme", lambda n: not n.startswith("Acme")),
        ("$endsWith", "Inc", lambda n: n.endswith("Inc")),
        ("$notEndsWith", "Inc", lambda n: not n.endswith("Inc")),
    ],
)
def test_string_operators(
    intacct_emulator: EmulatorServer,
    admin_token: str,
    vendors: list[dict[str, Any]],
    op: str,
    value: str,
    check: Any,
) -> None:
    expected = [v["id"] for v in vendors if check(v["name"])]
    assert expected
    assert ids(intacct_emulator, admin_token, [{op: {"name": value}}]) == expected


def test_case_insensitive_comparison(
    intacct_emulator: EmulatorServer, admin_token: str, vendors: list[dict[str, Any]]
) -> None:
    assert ids(intacct_emulator, admin_token, [{"$contains": {"name": "systems"}}]) == []
    expected = [v["id"] for v in vendors if "systems" in v["name"].lower()]
    got = ids(
        intacct_emulator,
        admin_token,
        [{"$contains": {"name": "sYsTeMs"}}],
        filterParameters={"caseSensitiveComparison": False},
    )
    assert got == expected
    assert expected


def test_related_field_and_boolean_filters(
    intacct_emulator: EmulatorServer, admin_token: str, vendors: list[dict[str, Any]]
) -> None:
    expected = [v["id"] for v in vendors if v["term"]["id"] == "Net 30" and not v["isOnHold"]]
    got = ids(
        intacct_emulator,
        admin_token,
        [{"$eq": {"term.id": "Net 30"}}, {"$eq": {"isOnHold": False}}],
    )
    assert got == expected
    assert expected


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
        got = ids(intacct_emulator, admin_token, filters, filterExpression=expression)
        assert got == expected, expression


def test_has_operator(intacct_emulator: EmulatorServer, admin_token: str) -> None:
    got = ids(intacct_emulator, admin_token, [{"$has": {"currency": "USD"}}])
    assert len(got) == intacct_emulator.record_count("DEMO-CO", "accounts-payable/vendor")


def test_date_filters_and_macros(intacct_emulator: EmulatorServer, admin_token: str) -> None:
    bills = intacct_emulator.records("DEMO-CO", "accounts-payable/bill")

    def query(filters: list[Any], **extra: Any) -> list[str]:
        body = run(
            intacct_emulator,
            admin_token,
            {
                "object": "accounts-payable/bill",
                "fields": ["key"],
                "filters": filters,
                "size": 4000,
                **extra,
            },
        )
        return [r["key"] for r in body["ia::result"]]

    expected = [b["key"] for b in bills if "2025-03-01" <= b["createdDate"] <= "2025-03-31"]
    assert expected
    assert query([{"$between": {"createdDate": ["2025-03-01", "2025-03-31"]}}]) == expected
    march = {"filterParameters": {"asOfDate": "2025-04-15"}}
    assert query([{"$eq": {"createdDate": "priorMonth"}}], **march) == expected
    april = [b["key"] for b in bills if b["createdDate"].startswith("2025-04")]
    assert query([{"$eq": {"createdDate": "currentMonth"}}], **march) == april
    q1 = [b["key"] for b in bills if "2025-01-01" <= b["createdDate"] <= "2025-03-31"]
    assert query([{"$eq": {"createdDate": "priorQuarter"}}], **march) == q1
    y2025 = [b["key"] for b in bills if b["createdDate"].startswith("2025")]
    assert query([{"$eq": {"createdDate": "currentYear"}}], **march) == y2025
    before = [b["key"] for b in bills if b["createdDate"] < "2025-04-15"]
    assert query([{"$lt": {"createdDate": "today"}}], **march) == before


def test_order_by(
    intacct_emulator: EmulatorServer, admin_token: str, vendors: list[dict[str, Any]]
) -> None:
    body = run(
        intacct_emulator,
        admin_token,
        {
            "object": "accounts-payable/vendor",
            "fields": ["id", "status", "totalDue"],
            "orderBy": [{"status": "asc"}, {"totalDue": "desc"}],
            "size": 4000,
        },
    )
    expected = sorted(vendors, key=lambda v: -Decimal(v["totalDue"]))
    expected = sorted(expected, key=lambda v: v["status"])
    assert [r["id"] for r in body["ia::result"]] == [v["id"] for v in expected]


def test_include_private_entities(intacct_emulator: EmulatorServer) -> None:
    intacct_emulator.seed_company(
        "PRIV-CO", entities=["PUB", "SECRET"], private_entities=["SECRET"]
    )
    token = intacct_emulator.issue_tokens("PRIV-CO", "admin")["access_token"]
    vendors = intacct_emulator.records("PRIV-CO", "accounts-payable/vendor")
    secret = {v["id"] for v in vendors if v["entity"]["id"] == "SECRET"}
    assert secret
    top = set(ids(intacct_emulator, token, []))
    assert not top & secret
    everything = set(ids(intacct_emulator, token, [], filterParameters={"includePrivate": True}))
    assert everything == {v["id"] for v in vendors}
    in_entity = set(ids(intacct_emulator, token, [], headers={"X-IA-API-Param-Entity": "SECRET"}))
    assert secret <= in_entity


def test_aggregates(
    intacct_emulator: EmulatorServer, admin_token: str, vendors: list[dict[str, Any]]
) -> None:
    body = run(
        intacct_emulator,
        admin_token,
        {
            "object": "accounts-payable/vendor",
            "fields": ["status", "count:id", "sum:totalDue", "max:creditLimit"],
            "orderBy": [{"status": "asc"}],
        },
    )
    rows = {r["status"]: r for r in body["ia::result"]}
    for status in {v["status"] for v in vendors}:
        group = [v for v in vendors if v["status"] == status]
        assert rows[status]["count:id"] == len(group)
        assert Decimal(rows[status]["sum:totalDue"]) == sum(Decimal(v["totalDue"]) for v in group)
        assert rows[status]["max:creditLimit"] == max(v["creditLimit"] for v in group)
    total = run(
        intacct_emulator,
        admin_token,
        {"object": "accounts-payable/vendor", "fields": ["count:key"]},
    )
    assert total["ia::result"] == [{"count:key": len(vendors)}]


def test_a_query_sees_writes(intacct_emulator: EmulatorServer, admin_token: str) -> None:
    filters = [{"$eq": {"name": "Brand new vendor"}}]
    assert ids(intacct_emulator, admin_token, filters) == []
    api(
        intacct_emulator,
        "POST",
        "/objects/accounts-payable/vendor",
        admin_token,
        json={"id": "NEW-Q", "name": "Brand new vendor"},
    )
    assert ids(intacct_emulator, admin_token, filters) == ["NEW-Q"]


# --- bad queries -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "error_id"),
    [
        ({"object": "accounts-payable/nothing"}, "REST-1042"),
        ({"object": ""}, "REST-1064"),
        ({"fields": ["id"]}, "REST-1064"),
        ({"object": "accounts-payable/vendor", "fields": ["id", "nope"]}, "REST-1043"),
        ({"object": "accounts-payable/vendor", "fields": ["vendorType.nope"]}, "REST-1043"),
        ({"object": "accounts-payable/vendor", "fields": "id"}, "REST-1064"),
        ({"object": "accounts-payable/vendor", "fields": []}, "REST-1064"),
        ({"object": "accounts-payable/vendor", "fields": ["median:totalDue"]}, "REST-1064"),
        ({"object": "accounts-payable/vendor", "fields": ["sum:name"]}, "REST-1064"),
        ({"object": "accounts-payable/vendor", "includePrivate": True}, "REST-1064"),
        ({"object": "accounts-payable/vendor", "caseSensitiveComparison": False}, "REST-1064"),
        ({"object": "accounts-payable/vendor", "asOfDate": "2025-01-01"}, "REST-1064"),
        ({"object": "accounts-payable/vendor", "limit": 5}, "REST-1043"),
        ({"object": "accounts-payable/vendor", "filterParameters": {"x": 1}}, "REST-1043"),
        (
            {"object": "accounts-payable/vendor", "filterParameters": {"includePrivate": "yes"}},
            "REST-1064",
        ),
        (
            {"object": "accounts-payable/vendor", "filterParameters": {"asOfDate": "someday"}},
            "REST-1064",
        ),
        ({"object": "accounts-payable/vendor", "filters": {"$eq": {"id": "x"}}}, "REST-1064"),
        ({"object": "accounts-payable/vendor", "filters": [{"$like": {"name": "x"}}]}, "REST-1064"),
        (
            {
                "object": "accounts-payable/vendor",
                "filters": [{"$eq": {"id": "a"}, "$ne": {"id": "b"}}],
            },
            "REST-1064",
        ),
        (
            {"object": "accounts-payable/vendor", "filters": [{"$eq": {"id": "a", "name": "b"}}]},
            "REST-1064",
        ),
        ({"object": "accounts-payable/vendor", "filters": [{"$eq": {"nope": "a"}}]}, "REST-1043"),
        ({"object": "accounts-payable/vendor", "filters": [{"$in": {"id": "a"}}]}, "REST-1064"),
        ({"object": "accounts-payable/vendor", "filters": [{"$in": {"id": []}}]}, "REST-1064"),
        (
            {"object": "accounts-payable/vendor", "filters": [{"$between": {"totalDue": [1]}}]},
            "REST-1064",
        ),
        (
            {
                "object": "accounts-payable/vendor",
                "filters": [{"$between": {"totalDue": [1, 2, 3]}}],
            },
            "REST-1064",
        ),
        (
            {"object": "accounts-payable/vendor", "filters": [{"$contains": {"totalDue": "1"}}]},
            "REST-1064",
        ),
        (
            {"object": "accounts-payable/vendor", "filters": [{"$contains": {"name": 5}}]},
            "REST-1064",
        ),
        (
            {"object": "accounts-payable/vendor", "filters": [{"$lt": {"isOnHold": True}}]},
            "REST-1064",
        ),
        (
            {"object": "accounts-payable/vendor", "filters": [{"$eq": {"totalDue": "abc"}}]},
            "REST-1064",
        ),
        (
            {"object": "accounts-payable/vendor", "filters": [{"$eq": {"isOnHold": "maybe"}}]},
            "REST-1064",
        ),
        ({"object": "accounts-payable/vendor", "filters": [{"$eq": {"name": ["a"]}}]}, "REST-1064"),
        (
            {"object": "accounts-payable/bill", "filters": [{"$eq": {"createdDate": "nextMonth"}}]},
            "REST-1064",
        ),
        (
            {
                "object": "accounts-payable/vendor",
                "filters": [{"$eq": {"id": "a"}}],
                "filterExpression": "1 and 2",
            },
            "REST-1064",
        ),
        (
            {
                "object": "accounts-payable/vendor",
                "filters": [{"$eq": {"id": "a"}}],
                "filterExpression": "(1",
            },
            "REST-1064",
        ),
        (
            {
                "object": "accounts-payable/vendor",
                "filters": [{"$eq": {"id": "a"}}],
                "filterExpression": "1 xor 1",
            },
            "REST-1064",
        ),
        (
            {
                "object": "accounts-payable/vendor",
                "filters": [{"$eq": {"id": "a"}}],
                "filterExpression": "1 1",
            },
            "REST-1064",
        ),
        ({"object": "accounts-payable/vendor", "filterExpression": 1}, "REST-1064"),
        ({"object": "accounts-payable/vendor", "orderBy": [{"id": "up"}]}, "REST-1064"),
        ({"object": "accounts-payable/vendor", "orderBy": [{"nope": "asc"}]}, "REST-1043"),
        ({"object": "accounts-payable/vendor", "orderBy": {"id": "asc"}}, "REST-1064"),
        ({"object": "accounts-payable/vendor", "size": 0}, "REST-1064"),
        ({"object": "accounts-payable/vendor", "size": -5}, "REST-1064"),
        ({"object": "accounts-payable/vendor", "size": "100"}, "REST-1064"),
        ({"object": "accounts-payable/vendor", "size": 1.5}, "REST-1064"),
        ({"object": "accounts-payable/vendor", "start": 0}, "REST-1064"),
        ({"object": "accounts-payable/vendor", "start": True}, "REST-1064"),
    ],
)
def test_bad_queries_are_400(
    intacct_emulator: EmulatorServer, admin_token: str, body: dict[str, Any], error_id: str
) -> None:
    response = api(intacct_emulator, "POST", QUERY, admin_token, json=body)
    assert response.status_code == 400, response.text
    error = response.json()["ia::error"]
    assert error["code"] == "invalidRequest"
    assert error["errorId"] == error_id


@pytest.mark.parametrize(
    "kwargs",
    [
        {"data": "{not json", "headers": {"Content-Type": "application/json"}},
        {"json": ["object", "accounts-payable/vendor"]},
        {"json": "accounts-payable/vendor"},
        {},
    ],
)
def test_malformed_query_bodies(
    intacct_emulator: EmulatorServer, admin_token: str, kwargs: dict[str, Any]
) -> None:
    response = api(intacct_emulator, "POST", QUERY, admin_token, **kwargs)
    assert response.status_code == 400
    assert response.json()["ia::error"]["code"] == "invalidRequest"


def test_generated_records_page_quickly(intacct_emulator: EmulatorServer, admin_token: str) -> None:
    started = time.perf_counter()
    total = intacct_emulator.generate_records("DEMO-CO", "accounts-payable/vendor", 20000)
    assert total == 20250
    assert time.perf_counter() - started < 3
    start: int | None = 1
    keys = 0
    slowest = 0.0
    while start is not None:
        began = time.perf_counter()
        body = run(
            intacct_emulator,
            admin_token,
            {
                "object": "accounts-payable/vendor",
                "fields": ["key", "id", "name", "totalDue"],
                "start": start,
                "size": 4000,
            },
        )
        slowest = max(slowest, time.perf_counter() - began)
        keys += len(body["ia::result"])
        start = body["ia::meta"]["next"]
    assert keys == total
    assert slowest < 0.5


@pytest.mark.slow
def test_100k_records_benchmark(intacct_emulator: EmulatorServer, admin_token: str) -> None:
    intacct_emulator.generate_records("DEMO-CO", "accounts-payable/vendor", 100_000)
    slowest = 0.0
    start: int | None = 1
    seen = 0
    filters = [{"$eq": {"status": "active"}}]
    while start is not None:
        began = time.perf_counter()
        body = run(
            intacct_emulator,
            admin_token,
            {
                "object": "accounts-payable/vendor",
                "fields": ["key", "id", "name", "term.id"],
                "filters": filters,
                "orderBy": [{"name": "asc"}],
                "start": start,
                "size": 4000,
            },
        )
        slowest = max(slowest, time.perf_counter() - began)
        seen += len(body["ia::result"])
        start = body["ia::meta"]["next"]
    assert seen == body["ia::meta"]["totalCount"]
    assert slowest < 1.0
