"""A REST call from the HTTP request to its handler: the body parsed (JSON only),
``Idempotency-Key`` replay, then routing to ``/objects`` or a ``/services/core`` service.
Every :class:`~intacct_connect.testing.emulator.responses.APIError` becomes Intacct's error
envelope in the configured ``rest_error_shape``."""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request, Response

from intacct_connect.testing.emulator.query import engine
from intacct_connect.testing.emulator.responses import (
    APIError,
    detail,
    gateway_error,
    loads,
    not_found,
)
from intacct_connect.testing.emulator.rest import composite, idempotency, model, objects
from intacct_connect.testing.emulator.rest.calls import (
    MISSING,
    Call,
    Context,
    Result,
    allow,
    error_result,
    require_body,
    to_response,
)
from intacct_connect.testing.emulator.state import State


def parse_call(request: Request, subpath: str) -> Call | APIError | Response:
    raw = request.get_data(cache=True)
    body: Any = MISSING
    if request.method in ("POST", "PATCH", "PUT") and raw.strip():
        if request.mimetype != "application/json":
            return gateway_error(
                415 if request.mimetype else 400,
                "GW-0014",
                f"Content-Type {request.mimetype or '(none)'} is not supported; send "
                "application/json.",
            )
        try:
            body = loads(raw)
        except (ValueError, UnicodeDecodeError):
            return APIError(
                400,
                "invalidRequest",
                "The request payload is not valid JSON",
                error_id="REST-1064",
                message_id="IA.PAYLOAD_CONTAINS_ERRORS",
                details=[detail("invalidRequest", "Malformed JSON payload")],
            )
    headers = {k.lower(): v for k, v in request.headers.items()}
    return Call(
        method=request.method,
        path=subpath,
        args=request.args.to_dict(),
        body=body,
        raw=raw,
        headers=headers,
    )


def handle(state: State, ctx: Context, request: Request, subpath: str) -> Response:
    parsed = parse_call(request, subpath)
    shape = state.config.rest_error_shape
    if isinstance(parsed, Response):
        return parsed
    if isinstance(parsed, APIError):
        return to_response(error_result(parsed, shape))
    return to_response(execute(state, ctx, parsed))


def execute(state: State, ctx: Context, call: Call) -> Result:
    """Run one API call (also each sub-request of a composite)."""
    shape = state.config.rest_error_shape
    try:
        key = call.headers.get("idempotency-key")
        if (
            key is not None
            and call.method in ("POST", "PATCH")
            and not call.path.startswith(("/services/core/query", "/services/core/model"))
        ):
            return idempotency.replay(state, ctx, call, key, lambda: _route(state, ctx, call))
        return _route(state, ctx, call)
    except APIError as err:
        return error_result(err, shape)


def _route(state: State, ctx: Context, call: Call) -> Result:
    parts = [p for p in call.path.split("/") if p]
    if parts and parts[0] == "objects":
        return objects.objects(state, ctx, call, parts[1:])
    if parts[:2] == ["services", "core"]:
        service = "/".join(parts[2:])
        if service == "query":
            allow(call, ("POST",))
            body = require_body(call)
            with state.read() as store:
                return Result(200, engine.run(store, ctx.company, ctx.entity, body))
        if service == "model":
            allow(call, ("GET",))
            return Result(200, model.model(call.args))
        if service == "composite":
            allow(call, ("POST",))
            return composite.composite(ctx, call, lambda sub_ctx, sub: execute(state, sub_ctx, sub))
        if service == "session/id":
            allow(call, ("GET",))
            remaining = int(float(ctx.claims["exp"]) - state.now())
            return Result(
                200,
                {
                    "ia::result": {
                        "sessionId": ctx.claims["sessionId"],
                        "expiresIn": max(remaining, 0),
                    },
                    "ia::meta": {"totalCount": 1},
                },
            )
    raise not_found(call.path)
