"""``POST /services/core/query``: the query body validated, filtered, sorted and paged, with
flat dotted keys (``vendor.id``) and aggregates (``sum:totalDue``).

Results (the ordered list of matching keys) are cached per query and invalidated on every
record write, so paging through 100,000 records costs one filter+sort and then slicing.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from intacct_connect.testing.emulator.catalogue.spec import ObjectSpec
from intacct_connect.testing.emulator.query.expression import parse_expression
from intacct_connect.testing.emulator.query.fields import (
    NUMERIC,
    Row,
    bad_request,
    field_type,
    getter,
    invalid_field,
    resolve_object,
)
from intacct_connect.testing.emulator.query.filters import Compiler
from intacct_connect.testing.emulator.records.storage import collection, visible
from intacct_connect.testing.emulator.store import Company, Store

MAX_SIZE = 4000
DEFAULT_SIZE = 100
TOP_KEYS = frozenset(
    (
        "object",
        "fields",
        "filters",
        "filterExpression",
        "filterParameters",
        "orderBy",
        "start",
        "size",
    )
)
PARAMETER_KEYS = {
    "asOfDate": "date",
    "caseSensitiveComparison": "boolean",
    "includeHierarchyFields": "boolean",
    "includePrivate": "boolean",
}
AGGREGATES = ("count", "sum", "avg", "min", "max")


def _int(value: Any, name: str, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_request(f"{name} must be a positive integer", target=name)
    if value < 1:
        raise bad_request(f"{name} must be 1 or more", target=name)
    return value


def sort_key(kind: str, get: Callable[[Row], Any]) -> Callable[[Row], Any]:
    if kind in NUMERIC:

        def numeric(row: Row) -> tuple[int, float]:
            value = get(row)
            try:
                return (0, float(value)) if value not in (None, "") else (-1, 0.0)
            except (TypeError, ValueError):
                return (-1, 0.0)

        return numeric
    if kind == "boolean":
        return lambda row: (0, bool(v)) if (v := get(row)) is not None else (-1, False)
    return lambda row: (0, str(v)) if (v := get(row)) is not None else (-1, "")


def run(store: Store, company: Company, entity: str | None, body: Any) -> dict[str, Any]:
    """The ``ia::result`` page and ``ia::meta`` of one query (counted as a transaction)."""
    if not isinstance(body, dict):
        raise bad_request("The query must be a JSON object")
    for name in body:
        if name in PARAMETER_KEYS:
            raise bad_request(
                f"{name} must be inside filterParameters, not at the top level of the query",
                target=name,
            )
        if name not in TOP_KEYS:
            raise invalid_field(name)
    spec = resolve_object(body.get("object"))
    params = body.get("filterParameters") or {}
    if not isinstance(params, dict):
        raise bad_request("filterParameters must be an object", target="filterParameters")
    for name, value in params.items():
        kind = PARAMETER_KEYS.get(name)
        if kind is None:
            raise invalid_field(f"filterParameters.{name}")
        if kind == "boolean" and not isinstance(value, bool):
            raise bad_request(f"filterParameters.{name} must be true or false", target=name)
        if kind == "date":
            try:
                dt.date.fromisoformat(str(value))
            except ValueError as err:
                raise bad_request(
                    f"filterParameters.asOfDate {value!r} is not a valid date", target=name
                ) from err
    case_sensitive = params.get("caseSensitiveComparison", True)
    include_private = bool(params.get("includePrivate", False))
    today = (
        dt.date.fromisoformat(params["asOfDate"])
        if params.get("asOfDate")
        else dt.datetime.fromtimestamp(store.now(), dt.UTC).date()
    )
    fields = body.get("fields")
    if fields is None:
        fields = ["key", "id", "href"]
    if not isinstance(fields, list) or not fields or not all(isinstance(f, str) for f in fields):
        raise bad_request("fields must be a non-empty array of field names", target="fields")
    plain: list[str] = []
    aggregates: list[tuple[str, str, str]] = []
    for name in fields:
        if ":" in name:
            function, _, path = name.partition(":")
            if function not in AGGREGATES:
                raise bad_request(
                    f"{function} is not a valid aggregate function; use one of "
                    f"{', '.join(AGGREGATES)}",
                    target=name,
                )
            kind = field_type(spec, path)
            if function in ("sum", "avg") and kind not in NUMERIC:
                raise bad_request(f"{function} needs a numeric field, not {path}", target=name)
            aggregates.append((name, function, path))
        else:
            field_type(spec, name)
            plain.append(name)
    filters = body.get("filters") or []
    if not isinstance(filters, list):
        raise bad_request("filters must be an array", target="filters")
    order_by = body.get("orderBy") or []
    if not isinstance(order_by, list):
        raise bad_request("orderBy must be an array of {field: 'asc'|'desc'}", target="orderBy")
    orders: list[tuple[str, bool]] = []
    for item in order_by:
        if not isinstance(item, dict) or len(item) != 1:
            raise bad_request("Each orderBy item must be {field: 'asc'|'desc'}", target="orderBy")
        name, direction = next(iter(item.items()))
        if direction not in ("asc", "desc"):
            raise bad_request(f"Sort order for {name} must be 'asc' or 'desc'", target="orderBy")
        field_type(spec, name)
        orders.append((name, direction == "desc"))
    start = _int(body.get("start"), "start", 1)
    size = min(_int(body.get("size"), "size", DEFAULT_SIZE), MAX_SIZE)
    compiler = Compiler(spec, bool(case_sensitive), today)
    predicates = [compiler.compile(item, i) for i, item in enumerate(filters)]
    combine = parse_expression(body.get("filterExpression"), len(predicates))
    if body.get("filterExpression") is not None and not predicates:
        raise bad_request("filterExpression needs filters", target="filterExpression")

    cache_key = (
        company.id,
        spec.path,
        entity,
        include_private,
        json.dumps(
            [
                filters,
                body.get("filterExpression"),
                orders,
                bool(case_sensitive),
                today.isoformat(),
            ],
            sort_keys=True,
            default=str,
        ),
        store.records_version,
    )
    rows = collection(store, company.id, spec.path).rows
    keys: list[str] | None = store.query_cache.get(cache_key)
    if keys is None:
        private = company.private_entities()
        candidates: list[Row]
        if entity is None and not private:
            candidates = list(rows.values())
        else:
            candidates = [r for r in rows.values() if visible(r, entity, private, include_private)]
        if predicates:
            predicate = combine(predicates)
            candidates = [r for r in candidates if predicate(r)]
        for name, descending in reversed(orders):
            candidates.sort(
                key=sort_key(field_type(spec, name), getter(spec, name)), reverse=descending
            )
        keys = [r["key"] for r in candidates]
        if len(store.query_cache) > 64:
            store.query_cache.clear()
        store.query_cache[cache_key] = keys
    if aggregates:
        result_rows = _aggregate(spec, [rows[k] for k in keys], plain, aggregates)
        total = len(result_rows)
        page = result_rows[start - 1 : start - 1 + size]
    else:
        total = len(keys)
        getters = [(name, getter(spec, name)) for name in plain]
        page = []
        for key in keys[start - 1 : start - 1 + size]:
            row = rows[key]
            page.append({name: get(row) for name, get in getters})
    store.counters.add_transactions(company.id)
    return {
        "ia::result": page,
        "ia::meta": {
            "totalCount": total,
            "start": start,
            "pageSize": size,
            "next": start + size if start - 1 + size < total else None,
            "previous": max(1, start - size) if start > 1 else None,
        },
    }


def _aggregate(
    spec: ObjectSpec, rows: list[Row], plain: list[str], aggregates: list[tuple[str, str, str]]
) -> list[Row]:
    group_getters = [(name, getter(spec, name)) for name in plain]
    groups: dict[tuple[Any, ...], list[Row]] = {}
    for row in rows:
        groups.setdefault(tuple(get(row) for _, get in group_getters), []).append(row)
    if not groups and not plain:
        groups[()] = []
    out: list[Row] = []
    for values, members in groups.items():
        result: Row = {name: value for (name, _), value in zip(group_getters, values, strict=True)}
        for label, function, path in aggregates:
            get = getter(spec, path)
            kind = field_type(spec, path)
            present = [v for v in (get(r) for r in members) if v not in (None, "")]
            if function == "count":
                result[label] = len(present)
                continue
            if not present:
                result[label] = None
                continue
            if kind in NUMERIC:
                numbers = [Decimal(str(v)) for v in present]
                if function == "sum":
                    value: Any = sum(numbers, Decimal(0))
                elif function == "avg":
                    value = sum(numbers, Decimal(0)) / len(numbers)
                elif function == "min":
                    value = min(numbers)
                else:
                    value = max(numbers)
                result[label] = (
                    f"{value:.2f}"
                    if kind == "decimal"
                    else float(value)
                    if value != value.to_integral_value()
                    else int(value)
                )
            else:
                result[label] = min(present) if function == "min" else max(present)
        out.append(result)
    return out
