"""One REST call as the handlers see it: who calls (:class:`Context`), what is asked
(:class:`Call`) and the answer (:class:`Result`), with the checks and envelopes every
handler shares (allowed methods, a required body, ``ia::meta``, per-item errors)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from werkzeug.wrappers import Response

from intacct_connect.testing.emulator.catalogue.spec import ObjectSpec
from intacct_connect.testing.emulator.responses import APIError, json_response, rest_error_body
from intacct_connect.testing.emulator.store import Application, Company, Record, User

MAX_BATCH = 500
ENTITY_HEADER = "X-IA-API-Param-Entity"
TRANSACTION_HEADER = "X-IA-API-Param-Transaction"
#: The body of a call that sent none.
MISSING: Any = object()


@dataclass
class Context:
    """Who is calling: from a valid access token (and the entity header)."""

    company: Company
    user: User
    entity: str | None
    claims: dict[str, Any]
    app: Application


@dataclass
class Call:
    method: str
    path: str  # below /ia/api/v1, e.g. "/objects/accounts-payable/vendor/12"
    args: dict[str, str]
    body: Any  # parsed JSON, or MISSING
    raw: bytes
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names


@dataclass
class Result:
    status: int
    body: Any  # None for 204
    headers: dict[str, str] = field(default_factory=dict)


def error_result(error: APIError, shape: str) -> Result:
    return Result(error.status, rest_error_body(error, shape), dict(error.headers))


def to_response(result: Result) -> Response:
    if result.body is None:
        return Response(status=result.status, headers=result.headers)
    return json_response(result.body, result.status, result.headers)


def allow(call: Call, methods: tuple[str, ...]) -> None:
    """405 REST-1020 unless the call uses one of ``methods``."""
    if call.method not in methods:
        raise APIError(
            405,
            "methodNotAllowed",
            f"Method {call.method} is not supported for {call.path}",
            error_id="REST-1020",
            message_id="IA.METHOD_NOT_ALLOWED",
            placeholders={"METHOD": call.method},
            headers={"Allow": ", ".join(methods)},
        )


def require_body(call: Call) -> Any:
    """The call's JSON body, or 400 REST-1028."""
    if call.body is MISSING:
        raise APIError(
            400,
            "invalidRequest",
            f"A {call.method} request requires a payload",
            error_id="REST-1028",
            message_id="IA.REQUEST_REQUIRES_A_PAYLOAD",
            placeholders={"OPERATION": call.method},
        )
    return call.body


def meta(total: int, success: int, errors: int) -> dict[str, int]:
    return {"totalCount": total, "totalSuccess": success, "totalError": errors}


def ref(spec: ObjectSpec, record: Record) -> dict[str, Any]:
    """``{key, id, href}`` of a record, as lists and writes answer."""
    return {"key": record["key"], "id": record["id"], "href": spec.href(record["key"])}


def item_error(err: APIError) -> dict[str, Any]:
    """One failed item of a batch or composite answer."""
    return {"ia::error": err.error_body(), "ia::status": err.status}
