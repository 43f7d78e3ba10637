"""``filters`` of a query compiled to predicates over records: comparison, list, range,
string and ``$has`` operators, typed by the field, and the date macros (``today``,
``priorQuarter``...) of comparisons on dates."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from intacct_connect.testing.emulator.catalogue.spec import ObjectSpec
from intacct_connect.testing.emulator.query.fields import (
    NUMERIC,
    Row,
    bad_request,
    field_type,
    getter,
)

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
Predicate = Callable[[Row], bool]


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
