"""The fields a query names: the object (``"accounts-payable/vendor"`` or ``"vendor"``),
its typed dotted paths, a getter per path, and the 400 errors that name a bad one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from intacct_connect.testing.emulator.catalogue.registry import SPECS
from intacct_connect.testing.emulator.catalogue.spec import ObjectSpec
from intacct_connect.testing.emulator.responses import APIError, detail

NUMERIC = ("number", "integer", "decimal")
Row = dict[str, Any]


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
