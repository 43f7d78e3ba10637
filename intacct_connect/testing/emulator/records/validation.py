"""A write body checked against an object's fields: types and enums, groups, references
and line lists. What is read-only or unknown to create is dropped or refused; the result is
the writable part of the body, values coerced (decimals as two-place strings)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

from intacct_connect.testing.emulator.catalogue.spec import FieldSpec, LineSpec, ObjectSpec, RefSpec
from intacct_connect.testing.emulator.responses import APIError, detail, payload_errors


def _type_error(path: str, spec: FieldSpec, value: Any) -> str | None:
    if value is None:
        return None if spec.nullable else f"{path} cannot be null"
    kind = spec.type
    if spec.enum is not None:
        if value not in spec.enum:
            return f"{value!r} is not a valid value for {path}; use one of {', '.join(spec.enum)}"
        return None
    if kind == "string" and not isinstance(value, str):
        return f"{path} must be a string"
    if kind == "boolean" and not isinstance(value, bool):
        return f"{path} must be a boolean"
    if kind == "integer" and (isinstance(value, bool) or not isinstance(value, int)):
        return f"{path} must be an integer"
    if kind in ("number", "decimal"):
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            return f"{path} must be a number"
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            return f"{path} must be a number"
        if not number.is_finite():
            return f"{path} must be a finite number"
    if kind == "date":
        if not isinstance(value, str):
            return f"{path} must be a date (YYYY-MM-DD)"
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            return f"{value!r} is not a valid date for {path} (YYYY-MM-DD)"
        if len(value) != 10:
            return f"{value!r} is not a valid date for {path} (YYYY-MM-DD)"
    return None


def _coerce(spec: FieldSpec, value: Any) -> Any:
    if value is None:
        return None
    if spec.type == "decimal":
        number = Decimal(str(value))
        if isinstance(value, str) and number.as_tuple().exponent < -2:  # type: ignore[operator]
            return value.strip()
        return f"{number:.2f}"
    if spec.type == "number" and isinstance(value, str):
        number = Decimal(value)
        return int(number) if number == number.to_integral_value() else float(number)
    return value


def invalid_field(path: str) -> dict[str, Any]:
    return detail(
        "invalidRequest",
        f"/{path.replace('.', '/')} is not a valid field",
        error_id="REST-1043",
        target=f"/{path.replace('.', '/')}",
        message_id="IA.NOT_A_VALID_FIELD",
        placeholders={"FIELD": f"/{path.replace('.', '/')}"},
    )


def _check_ref(path: str, value: Any, errors: list[dict[str, Any]]) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        errors.append(
            detail("invalidRequest", f"{path} must be an object with key or id", target=f"/{path}")
        )
        return None
    out: dict[str, Any] = {}
    for sub, item in value.items():
        if sub in ("href", "name"):
            continue
        if sub not in ("key", "id"):
            errors.append(invalid_field(f"{path}.{sub}"))
            continue
        if item is not None and not isinstance(item, str):
            errors.append(
                detail("invalidRequest", f"{path}.{sub} must be a string", target=f"/{path}/{sub}")
            )
            continue
        if item == "":
            errors.append(
                detail("invalidRequest", f"{path}.{sub} cannot be blank", target=f"/{path}/{sub}")
            )
            continue
        out[sub] = item
    return out


def _walk(
    fields: dict[str, FieldSpec],
    refs: dict[str, RefSpec],
    groups: frozenset[str],
    lines: LineSpec | None,
    body: dict[str, Any],
    prefix: str,
    errors: list[dict[str, Any]],
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in body.items():
        path = f"{prefix}{name}"
        if path in fields:
            field_spec = fields[path]
            if field_spec.read_only:
                continue
            problem = _type_error(path, field_spec, value)
            if problem:
                errors.append(
                    detail("invalidRequest", problem, target=f"/{path.replace('.', '/')}")
                )
                continue
            out[name] = _coerce(field_spec, value)
        elif not prefix and name in refs:
            checked = _check_ref(path, value, errors)
            if checked is not None or value is None:
                out[name] = checked
        elif path in groups:
            if path in ("audit", "entity"):
                continue
            if not isinstance(value, dict):
                errors.append(
                    detail(
                        "invalidRequest",
                        f"{path} must be an object",
                        target=f"/{path.replace('.', '/')}",
                    )
                )
                continue
            out[name] = _walk(fields, refs, groups, None, value, f"{path}.", errors)
        elif lines is not None and not prefix and name == lines.name:
            if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                errors.append(
                    detail(
                        "invalidRequest", f"{name} must be an array of objects", target=f"/{name}"
                    )
                )
                continue
            out_lines = []
            for index, line in enumerate(value):
                line_errors: list[dict[str, Any]] = []
                out_lines.append(
                    _walk(lines.fields, lines.refs, frozenset(), None, line, "", line_errors)
                )
                for item in line_errors:
                    item["target"] = f"/{name}/{index}{item.get('target', '')}"
                    errors.append(item)
            out[name] = out_lines
        elif name in ("key", "href", "webURL", "ia::operation"):
            continue
        else:
            errors.append(invalid_field(path))
    return out


def validate_body(spec: ObjectSpec, body: Any) -> dict[str, Any]:
    """The writable part of ``body``; raises 400 ``invalidRequest`` REST-1064 with details."""
    if not isinstance(body, dict):
        raise APIError(
            400,
            "invalidRequest",
            "The request payload must be a JSON object",
            error_id="REST-1064",
            message_id="IA.PAYLOAD_CONTAINS_ERRORS",
        )
    errors: list[dict[str, Any]] = []
    cleaned = _walk(spec.fields, spec.refs, spec.groups, spec.lines, body, "", errors)
    if errors:
        raise payload_errors(errors)
    return cleaned
