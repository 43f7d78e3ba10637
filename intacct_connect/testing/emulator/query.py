"""``POST /services/core/query``: validation, filter compilation, sorting, paging,
projection with flat dotted keys, and aggregates.

Results (the ordered list of matching keys) are cached per query and invalidated on every
record write, so paging through 100,000 records costs one filter+sort and then slicing.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from intacct_connect.testing.emulator.objects import SPECS, ObjectSpec
from intacct_connect.testing.emulator.records import collection, private_entities, visible
from intacct_connect.testing.emulator.responses import APIError, detail

if TYPE_CHECKING:
    from intacct_connect.testing.emulator.state import State

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
COMPARE_OPS = ("$eq", "$ne", "$lt", "$lte", "$gt", "$gte")
LIST_OPS = ("$in", "$notIn")
RANGE_OPS = ("$between", "$notBetween")
STRING_OPS = (
    "$contains",
    "$notContains",
    "$startsWith",
    "$notStartsWith",
    "$endsWith",
    "$notEndsWith",
)
OPERATORS = (*COMPARE_OPS, *LIST_OPS, *RANGE_OPS, *STRING_OPS, "$has")
AGGREGATES = ("count", "sum", "avg", "min", "max")
MACROS = (
    "today",
    "yesterday",
    "currentWeek",
    "lastWeek",
    "currentMonth",
    "priorMonth",
    "currentQuarter",
    "priorQuarter",
    "currentYear",
    "priorYear",
)
NUMERIC = ("number", "integer", "decimal")
Row = dict[str, Any]
Predicate = Callable[[Row], bool]


def bad_request(
    message: str,
    *,
    target: str | None = None,
    error_id: str | None = None,
    details: list[dict[str, Any]] | None = None,
) -> APIError:
    items = details or [detail("invalidRequest", message, target=target, error_id=error_id)]
    return APIError(
        400,
        "invalidRequest",
        message,
        error_id=error_id or "REST-1064",
        message_id="IA.PAYLOAD_CONTAINS_ERRORS" if not error_id else None,
        details=items,
    )


def invalid_field(name: str) -> APIError:
    return APIError(
        400,
        "invalidRequest",
        f"{name} is not a valid field",
        error_id="REST-1043",
        message_id="IA.NOT_A_VALID_FIELD",
        placeholders={"FIELD": name},
        details=[
            detail(
                "invalidRequest", f"{name} is not a valid field", error_id="REST-1043", target=name
            )
        ],
    )


def resolve_object(name: Any) -> ObjectSpec:
    if not isinstance(name, str) or not name:
        raise bad_request("object is required: '<application>/<object>'", target="object")
    spec = SPECS.get(name)
    if spec is None and "/" not in name:
        matches = [s for s in SPECS.values() if s.name == name]
        spec = matches[0] if len(matches) == 1 else None
    if spec is None:
        raise APIError(
            400,
            "invalidRequest",
            f"{name} is not a valid object",
            error_id="REST-1042",
            message_id="IA.NOT_A_VALID_OBJECT",
            placeholders={"OBJECT": name},
        )
    return spec


def getter(spec: ObjectSpec, path: str) -> Callable[[Row], Any]:
    if path == "href":
        return lambda row: spec.href(row["key"])
    parts = path.split(".")
    if len(parts) == 1:
        return lambda row: row.get(path)
    if len(parts) == 2:
        first, second = parts
        if first in spec.refs and second == "href":
            target = spec.refs[first].target

            def ref_href(row: Row) -> Any:
                value = row.get(first) or {}
                key = value.get("key")
                return f"/objects/{target}/{key}" if key is not None else None

            return ref_href
        return lambda row: (row.get(first) or {}).get(second)

    def nested(row: Row) -> Any:
        value: Any = row
        for part in parts:
            if not isinstance(value, dict):
                return None
            value = value.get(part)
        return value

    return nested


def field_type(spec: ObjectSpec, path: str) -> str:
    if path not in spec.query_paths:
        raise invalid_field(path)
    field_spec = spec.fields.get(path)
    if field_spec is not None and field_spec.type in ("date", "datetime", *NUMERIC, "boolean"):
        return field_spec.type
    return spec.query_paths[path]


# --- date macros --------------------------------------------------------------------------
def macro_range(macro: str, today: dt.date) -> tuple[str, str]:
    def quarter_start(d: dt.date) -> dt.date:
        return dt.date(d.year, 3 * ((d.month - 1) // 3) + 1, 1)

    def month_end(d: dt.date) -> dt.date:
        nxt = dt.date(d.year + d.month // 12, d.month % 12 + 1, 1)
        return nxt - dt.timedelta(days=1)

    if macro == "today":
        start = end = today
    elif macro == "yesterday":
        start = end = today - dt.timedelta(days=1)
    elif macro in ("currentWeek", "lastWeek"):
        start = today - dt.timedelta(days=today.weekday())
        if macro == "lastWeek":
            start -= dt.timedelta(days=7)
        end = start + dt.timedelta(days=6)
    elif macro in ("currentMonth", "priorMonth"):
        start = today.replace(day=1)
        if macro == "priorMonth":
            start = (start - dt.timedelta(days=1)).replace(day=1)
        end = month_end(start)
    elif macro in ("currentQuarter", "priorQuarter"):
        start = quarter_start(today)
        if macro == "priorQuarter":
            start = quarter_start(start - dt.timedelta(days=1))
        end = month_end(dt.date(start.year, start.month + 2, 1))
    else:  # currentYear / priorYear
        year = today.year - (1 if macro == "priorYear" else 0)
        start, end = dt.date(year, 1, 1), dt.date(year, 12, 31)
    return start.isoformat(), end.isoformat()


# --- filters -----------------------------------------------------------------------------
class Compiler:
    def __init__(self, spec: ObjectSpec, case_sensitive: bool, today: dt.date) -> None:
        self.spec = spec
        self.case_sensitive = case_sensitive
        self.today = today

    def number(self, value: Any, field: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise bad_request(f"{value!r} is not a valid number for {field}", target=field)
        try:
            return float(Decimal(str(value)))
        except (InvalidOperation, ValueError) as err:
            raise bad_request(f"{value!r} is not a valid number for {field}", target=field) from err

    def date(self, value: Any, field: str) -> str:
        if not isinstance(value, str):
            raise bad_request(f"{value!r} is not a valid date for {field}", target=field)
        try:
            parsed = dt.date.fromisoformat(value[:10])
        except ValueError as err:
            raise bad_request(
                f"{value!r} is not a valid date for {field} (YYYY-MM-DD)", target=field
            ) from err
        return parsed.isoformat() if len(value) == 10 else value

    def boolean(self, value: Any, field: str) -> bool:
        if isinstance(value, bool):
            return value
        if value in ("true", "false"):
            return bool(value == "true")
        raise bad_request(f"{value!r} is not a valid boolean for {field}", target=field)

    def scalar(self, kind: str, value: Any, field: str) -> Any:
        if value is None:
            return None
        if kind in NUMERIC:
            return self.number(value, field)
        if kind in ("date", "datetime"):
            return self.date(value, field)
        if kind == "boolean":
            return self.boolean(value, field)
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise bad_request(f"{value!r} is not a valid value for {field}", target=field)
        text = str(value)
        return text if self.case_sensitive else text.lower()

    def row_value(self, kind: str, get: Callable[[Row], Any]) -> Callable[[Row], Any]:
        if kind in NUMERIC:

            def numeric(row: Row) -> Any:
                value = get(row)
                if value is None or value == "":
                    return None
                try:
                    return float(value)
                except (TypeError, ValueError):
                    return None

            return numeric
        if kind == "boolean":
            return get
        if kind in ("date", "datetime"):
            return get
        if self.case_sensitive:
            return lambda row: None if (v := get(row)) is None else str(v)
        return lambda row: None if (v := get(row)) is None else str(v).lower()

    def compile(self, item: Any, index: int) -> Predicate:
        where = f"filters[{index}]"
        if not isinstance(item, dict) or len(item) != 1:
            raise bad_request(f"{where} must be an object with exactly one operator", target=where)
        op, condition = next(iter(item.items()))
        if op not in OPERATORS:
            raise bad_request(
                f"{op} is not a valid filter operator; use one of {', '.join(OPERATORS)}",
                target=where,
            )
        if not isinstance(condition, dict) or len(condition) != 1:
            raise bad_request(f"{op} takes an object with exactly one field", target=where)
        field, value = next(iter(condition.items()))
        kind = field_type(self.spec, field)
        value_of = self.row_value(kind, getter(self.spec, field))
        if op in COMPARE_OPS:
            return self.compare(op, kind, field, value, value_of)
        if op in LIST_OPS:
            if not isinstance(value, list) or not value:
                raise bad_request(
                    f"{op} needs a non-empty array of values for {field}", target=field
                )
            values = {self.scalar(kind, v, field) for v in value}
            if op == "$in":
                return lambda row: value_of(row) in values
            return lambda row: value_of(row) not in values
        if op in RANGE_OPS:
            if not isinstance(value, list) or len(value) != 2:
                raise bad_request(
                    f"{op} needs an array of exactly two values for {field}", target=field
                )
            if kind == "boolean":
                raise bad_request(f"{op} cannot be used with boolean field {field}", target=field)
            low = self.scalar(kind, value[0], field)
            high = self.scalar(kind, value[1], field)
            if low is None or high is None:
                raise bad_request(f"{op} values cannot be null", target=field)

            def between(row: Row) -> bool:
                current = value_of(row)
                return current is not None and low <= current <= high

            if op == "$between":
                return between
            return lambda row: not between(row)
        if op == "$has":
            if not isinstance(value, str | int | float) or isinstance(value, bool):
                raise bad_request(f"$has needs a single value for {field}", target=field)
            needle = str(value)

            def has(row: Row) -> bool:
                current = getter(self.spec, field)(row)
                if isinstance(current, list):
                    return needle in [str(v) for v in current]
                if current is None:
                    return False
                return needle in re.split(r"#~#|,", str(current))

            return has
        # string operators
        if kind not in ("string",):
            raise bad_request(
                f"{op} can only be used with text fields, not {field} ({kind})", target=field
            )
        if not isinstance(value, str):
            raise bad_request(f"{op} needs a text value for {field}", target=field)
        needle = value if self.case_sensitive else value.lower()
        base = op.replace("$not", "$").lower()
        if base == "$contains":
            test: Callable[[str], bool] = lambda s: needle in s  # noqa: E731
        elif base == "$startswith":
            test = lambda s: s.startswith(needle)  # noqa: E731
        else:
            test = lambda s: s.endswith(needle)  # noqa: E731
        if op.startswith("$not"):
            return lambda row: (v := value_of(row)) is None or not test(v)
        return lambda row: (v := value_of(row)) is not None and test(v)

    def compare(
        self, op: str, kind: str, field: str, value: Any, value_of: Callable[[Row], Any]
    ) -> Predicate:
        if isinstance(value, list | dict):
            raise bad_request(f"{op} needs a single value for {field}", target=field)
        if kind == "boolean" and op not in ("$eq", "$ne"):
            raise bad_request(f"{op} cannot be used with boolean field {field}", target=field)
        if kind in ("date", "datetime") and value in MACROS:
            start, end = macro_range(str(value), self.today)

            def day_of(row: Row) -> str | None:
                current = value_of(row)
                return None if current is None else str(current)[:10]

            tests: dict[str, Predicate] = {
                "$eq": lambda r: (d := day_of(r)) is not None and start <= d <= end,
                "$ne": lambda r: (d := day_of(r)) is None or not start <= d <= end,
                "$lt": lambda r: (d := day_of(r)) is not None and d < start,
                "$lte": lambda r: (d := day_of(r)) is not None and d <= end,
                "$gt": lambda r: (d := day_of(r)) is not None and d > end,
                "$gte": lambda r: (d := day_of(r)) is not None and d >= start,
            }
            return tests[op]
        target = self.scalar(kind, value, field)
        if target is None:
            if op == "$eq":
                return lambda row: value_of(row) is None
            if op == "$ne":
                return lambda row: value_of(row) is not None
            raise bad_request(f"{op} cannot compare {field} with null", target=field)
        if op == "$eq":
            return lambda row: value_of(row) == target
        if op == "$ne":
            return lambda row: value_of(row) != target
        if op == "$lt":
            return lambda row: (v := value_of(row)) is not None and v < target
        if op == "$lte":
            return lambda row: (v := value_of(row)) is not None and v <= target
        if op == "$gt":
            return lambda row: (v := value_of(row)) is not None and v > target
        return lambda row: (v := value_of(row)) is not None and v >= target


TOKEN_RE = re.compile(r"\s*(?:(\d+)|(and|or)\b|(\()|(\)))", re.IGNORECASE)


def parse_expression(text: Any, count: int) -> Callable[[list[Predicate]], Predicate]:
    """Compile ``filterExpression`` ("1 and (2 or 3)", "and", "or")."""
    if text is None:
        text = "and"
    if not isinstance(text, str) or not text.strip():
        raise bad_request("filterExpression must be a non-empty string", target="filterExpression")
    stripped = text.strip().lower()
    if stripped in ("and", "or"):
        if stripped == "and":
            return lambda preds: lambda row: all(p(row) for p in preds)
        return lambda preds: lambda row: any(p(row) for p in preds)
    tokens: list[str] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = TOKEN_RE.match(text, position)
        if match is None:
            raise bad_request(f"Invalid filterExpression {text!r}", target="filterExpression")
        tokens.append(match.group(0).strip().lower())
        position = match.end()
    index = 0

    def peek() -> str | None:
        return tokens[index] if index < len(tokens) else None

    def expr() -> Any:
        nonlocal index
        node = term()
        while peek() == "or":
            index += 1
            node = ("or", node, term())
        return node

    def term() -> Any:
        nonlocal index
        node = factor()
        while peek() == "and":
            index += 1
            node = ("and", node, factor())
        return node

    def factor() -> Any:
        nonlocal index
        part = peek()
        if part is None:
            raise bad_request(f"Invalid filterExpression {text!r}", target="filterExpression")
        index += 1
        if part == "(":
            node = expr()
            if peek() != ")":
                raise bad_request(
                    f"Unbalanced parentheses in filterExpression {text!r}",
                    target="filterExpression",
                )
            index += 1
            return node
        if part.isdigit():
            number = int(part)
            if not 1 <= number <= count:
                raise bad_request(
                    f"filterExpression refers to filter {number} but there are {count} filters",
                    target="filterExpression",
                )
            return number
        raise bad_request(f"Invalid filterExpression {text!r}", target="filterExpression")

    tree = expr()
    if index != len(tokens):
        raise bad_request(f"Invalid filterExpression {text!r}", target="filterExpression")

    def build(node: Any, preds: list[Predicate]) -> Predicate:
        if isinstance(node, int):
            return preds[node - 1]
        op, left, right = node
        lhs, rhs = build(left, preds), build(right, preds)
        if op == "and":
            return lambda row: lhs(row) and rhs(row)
        return lambda row: lhs(row) or rhs(row)

    return lambda preds: build(tree, preds)


# --- the query ---------------------------------------------------------------------------
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


def run(state: State, company: dict[str, Any], entity: str | None, body: Any) -> dict[str, Any]:
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
        else dt.datetime.fromtimestamp(state.now(), dt.UTC).date()
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
        company["id"],
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
        state.version,
    )
    rows = collection(state, company["id"], spec.path)["rows"]
    keys: list[str] | None = state.query_cache.get(cache_key)
    if keys is None:
        private = private_entities(company)
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
        if len(state.query_cache) > 64:
            state.query_cache.clear()
        state.query_cache[cache_key] = keys
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
    state.count("transactions", company["id"])
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
