"""Query ``filters`` (``query/filters.py``): each operator, typed by its field, and the date
macros. Expected results are computed from the stored records (``records()``)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from intacct_connect.testing.emulator import EmulatorServer
from tests.testing.conftest import query_ids, run_query


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
    assert query_ids(intacct_emulator, admin_token, [{op: {"status": value}}]) == expected


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
    assert query_ids(intacct_emulator, admin_token, [{op: {"totalDue": value}}]) == expected


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
    assert query_ids(intacct_emulator, admin_token, [{op: {"name": value}}]) == expected


def test_case_insensitive_comparison(
    intacct_emulator: EmulatorServer, admin_token: str, vendors: list[dict[str, Any]]
) -> None:
    assert query_ids(intacct_emulator, admin_token, [{"$contains": {"name": "systems"}}]) == []
    expected = [v["id"] for v in vendors if "systems" in v["name"].lower()]
    got = query_ids(
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
    got = query_ids(
        intacct_emulator,
        admin_token,
        [{"$eq": {"term.id": "Net 30"}}, {"$eq": {"isOnHold": False}}],
    )
    assert got == expected
    assert expected


def test_has_operator(intacct_emulator: EmulatorServer, admin_token: str) -> None:
    got = query_ids(intacct_emulator, admin_token, [{"$has": {"currency": "USD"}}])
    assert len(got) == intacct_emulator.record_count("DEMO-CO", "accounts-payable/vendor")


def test_date_filters_and_macros(intacct_emulator: EmulatorServer, admin_token: str) -> None:
    bills = intacct_emulator.records("DEMO-CO", "accounts-payable/bill")

    def query(filters: list[Any], **extra: Any) -> list[str]:
        body = run_query(
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
