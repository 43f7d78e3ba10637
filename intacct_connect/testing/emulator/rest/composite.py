"""``POST /services/core/composite``: 2 to 10 sub-requests run in order, each one's result
available to later ones as ``@{reference.path}``; the first failure stops the rest
(``unprocessed``). Composites cannot nest. Each sub-request runs through the ``execute``
the dispatcher passes in (so this module does not import it)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from intacct_connect.testing.emulator.responses import APIError, detail, payload_errors
from intacct_connect.testing.emulator.rest.calls import (
    ENTITY_HEADER,
    MISSING,
    Call,
    Context,
    Result,
    error_result,
    item_error,
    meta,
    require_body,
)

COMPOSITE_PATH = re.compile(r"^/(objects|services)/[a-z_][a-z_0-9.\-:]+(.*)?$")
REFERENCE = re.compile(r"@\{([^}]+)\}")
#: Runs one sub-request: the dispatcher's ``execute``.
Execute = Callable[[Context, Call], Result]


def _lookup(results: dict[str, Any], expression: str) -> Any:
    """``ref.field`` or ``ref.<n>.field``: array positions count from 1, as in Sage's
    composite example (``@{vendor.1.key}`` after a one-vendor POST); a single record counts
    as an array of one, so ``.1`` is the record itself."""
    parts = expression.split(".")
    if parts[0] not in results:
        raise KeyError(expression)
    value = results[parts[0]]
    for part in parts[1:]:
        if isinstance(value, list) and part.isdigit() and 1 <= int(part) <= len(value):
            value = value[int(part) - 1]
        elif isinstance(value, dict) and part == "1" and part not in value:
            continue
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            raise KeyError(expression)
    return value


def _substitute(value: Any, results: dict[str, Any]) -> Any:
    if isinstance(value, str):
        whole = REFERENCE.fullmatch(value)
        if whole:
            return _lookup(results, whole.group(1))
        return REFERENCE.sub(lambda m: str(_lookup(results, m.group(1))), value)
    if isinstance(value, list):
        return [_substitute(v, results) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, results) for k, v in value.items()}
    return value


def composite(ctx: Context, call: Call, execute: Execute) -> Result:
    body = _checked(require_body(call))
    return _run(ctx, body, execute)


def _checked(body: Any) -> list[dict[str, Any]]:
    """The sub-requests, or 400 REST-1064 naming every problem of the first bad one."""
    if not isinstance(body, list) or not 2 <= len(body) <= 10:
        raise APIError(
            400,
            "invalidRequest",
            "A composite request is an array of 2 to 10 sub-requests",
            error_id="REST-1064",
            message_id="IA.PAYLOAD_CONTAINS_ERRORS",
        )
    for index, item in enumerate(body):
        problems = []
        if not isinstance(item, dict):
            problems.append("must be an object")
        else:
            if item.get("method") not in ("GET", "POST", "PATCH", "DELETE"):
                problems.append("method must be GET, POST, PATCH or DELETE")
            if not isinstance(item.get("path"), str) or not COMPOSITE_PATH.match(item["path"]):
                problems.append("path must start with /objects/ or /services/")
            if "headers" in item and not isinstance(item["headers"], dict):
                problems.append("headers must be an object")
            if "resultReference" in item and not isinstance(item["resultReference"], str):
                problems.append("resultReference must be a string")
            unknown = set(item) - {"method", "path", "headers", "body", "resultReference"}
            if unknown:
                problems.append(f"unknown member(s) {', '.join(sorted(unknown))}")
        if problems:
            raise payload_errors(
                [
                    detail("invalidRequest", f"Sub-request {index}: {p}", target=f"/{index}")
                    for p in problems
                ]
            )
    return body


def _run(ctx: Context, body: list[dict[str, Any]], execute: Execute) -> Result:
    results: dict[str, Any] = {}
    output: list[Any] = []
    failed = False
    for item in body:
        if failed:
            output.append(
                {
                    "ia::error": {
                        "code": "unprocessed",
                        "message": "Not executed: an earlier sub-request failed",
                    },
                    "ia::status": 422,
                }
            )
            continue
        try:
            path = _substitute(item["path"], results)
            sub_body = _substitute(item["body"], results) if "body" in item else MISSING
        except KeyError as err:
            failed = True
            error = APIError(
                400,
                "invalidRequest",
                f"Cannot resolve the reference @{{{err.args[0]}}}",
                error_id="REST-1064",
            )
            output.append(item_error(error))
            continue
        headers = {k.lower(): str(v) for k, v in (item.get("headers") or {}).items()}
        path_only, _, query_string = str(path).partition("?")
        args = dict(parse_qsl(query_string, keep_blank_values=True))
        sub_ctx = ctx
        if ENTITY_HEADER.lower() in headers:
            entity = headers[ENTITY_HEADER.lower()].strip() or None
            if entity is not None and entity not in ctx.company.entities:
                failed = True
                output.append(
                    item_error(
                        APIError(
                            400,
                            "invalidRequest",
                            f"{entity} is not a valid entity for this company",
                        )
                    )
                )
                continue
            sub_ctx = Context(ctx.company, ctx.user, entity, ctx.claims, ctx.app)
        raw = json.dumps(sub_body).encode() if sub_body is not MISSING else b""
        sub_call = Call(item["method"], path_only, args, sub_body, raw, headers)
        if path_only.startswith("/services/core/composite"):
            result = error_result(
                APIError(400, "invalidRequest", "Composite requests cannot be nested"), "top"
            )
        else:
            result = execute(sub_ctx, sub_call)
        if result.status >= 400:
            failed = True
            error_body = result.body or {}
            error = error_body.get("ia::error") or error_body.get("ia::result", {}).get("ia::error")
            entry: dict[str, Any] = {"ia::error": error, "ia::status": result.status}
            if isinstance(error_body.get("ia::result"), list):
                entry["ia::result"] = error_body["ia::result"]
            output.append(entry)
            continue
        if result.body is None:
            output.append({"ia::status": result.status})
        else:
            output.append({**result.body, "ia::status": result.status})
            if item.get("resultReference"):
                results[item["resultReference"]] = result.body.get("ia::result")
    errors = sum(1 for r in output if "ia::error" in r)
    return Result(
        207 if errors else 200,
        {"ia::result": output, "ia::meta": meta(len(body), len(body) - errors, errors)},
    )
