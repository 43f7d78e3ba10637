"""The emulated REST API under ``/ia/api/v1``: bearer-token checks, entity selection,
``/objects`` CRUD and batch forms, ``/services/core/{query,model,composite,session/id}``
and ``Idempotency-Key`` replay."""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from werkzeug.wrappers import Request, Response

import intacct_connect.testing.emulator.query as query
import intacct_connect.testing.emulator.records as records
from intacct_connect.testing.emulator.oauth.introspection import decode_access_token
from intacct_connect.testing.emulator.objects import (
    COMPANY_PREFERENCE_FIELDS,
    COMPANY_PREFERENCE_KEY,
    COMPANY_PREFERENCE_METHODS,
    COMPANY_PREFERENCE_PATH,
    SPECS,
    FieldSpec,
    ObjectSpec,
)
from intacct_connect.testing.emulator.responses import (
    APIError,
    detail,
    gateway_error,
    json_response,
    loads,
    token_invalid_response,
)

if TYPE_CHECKING:
    from intacct_connect.testing.emulator.app import Emulator

MAX_BATCH = 500
IDEMPOTENCY_TTL = 48 * 3600
ENTITY_HEADER = "X-IA-API-Param-Entity"
TRANSACTION_HEADER = "X-IA-API-Param-Transaction"
COMPOSITE_PATH = re.compile(r"^/(objects|services)/[a-z_][a-z_0-9.\-:]+(.*)?$")
REFERENCE = re.compile(r"@\{([^}]+)\}")
MISSING: Any = object()


@dataclass
class Context:
    """Who is calling: from a valid access token."""

    company: dict[str, Any]
    user: dict[str, Any]
    entity: str | None
    claims: dict[str, Any]
    app: dict[str, Any]


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
    meta = {"totalCount": 1, "totalSuccess": 0, "totalError": 1}
    if shape == "nested":
        body: Any = {"ia::result": {"ia::error": error.error_body()}, "ia::meta": meta}
    else:
        body = {"ia::error": error.error_body(), "ia::meta": meta}
    return Result(error.status, body, dict(error.headers))


def to_response(result: Result) -> Response:
    if result.body is None:
        return Response(status=result.status, headers=result.headers)
    return json_response(result.body, result.status, result.headers)


# --- authentication ---------------------------------------------------------------------
def authenticate(emu: Emulator, request: Request) -> Context | Response:
    """The caller's context, or the gateway's error response."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return gateway_error(
            401, "GW-0034", "The Authorization header must be 'Bearer <access token>'."
        )
    state = emu.state
    claims = decode_access_token(emu, value.strip())
    if claims is None:
        return gateway_error(401, "GW-0031", "The access token cannot be decoded or verified.")
    with state.lock:
        session = state.data["sessions"].get(claims["sessionId"])
        grant = state.data["grants"].get(session["grant"]) if session else None
        if session is None or grant is None or grant["status"] != "active":
            return token_invalid_response()
        if session["expired"] or float(claims["exp"]) <= state.now():
            if state.config["expired_token_error"] == "rest1206":  # noqa: S105
                return json_response(
                    {
                        "ia::error": {
                            "code": "invalidRequest",
                            "message": "The token is not valid",
                            "errorId": "REST-1206",
                            "supportId": "expired",
                        },
                        "ia::meta": {"totalCount": 1, "totalSuccess": 0, "totalError": 1},
                    },
                    400,
                )
            return gateway_error(401, "GW-0040", "The access token has expired.")
        company = state.data["companies"].get(claims["cnyId"])
        app = state.data["applications"].get(claims["clientId"])
        if company is None or app is None or not company["active"]:
            return gateway_error(401, "GW-0011", "The company or client is unknown or inactive.")
        if app["senderId"] not in company["senders"]:
            return gateway_error(
                403,
                "GW-0011",
                f"Sender ID {app['senderId']} is not authorized for company {company['id']}: "
                "a company administrator must approve the application (Company > Setup > "
                "Company > Security > Web Services authorizations).",
            )
        user = company["users"].get(claims["userId"])
        if user is None:
            return token_invalid_response()
        entity = session["entity"]
        if ENTITY_HEADER in request.headers:
            requested = request.headers[ENTITY_HEADER].strip()
            entity = requested or None
            if entity is not None and entity not in company["entities"]:
                error = APIError(
                    400,
                    "invalidRequest",
                    f"{entity} is not a valid entity for this company",
                    error_id="REST-1071",
                    placeholders={"ENTITY": entity},
                )
                return to_response(error_result(error, state.config["rest_error_shape"]))
        return Context(company=company, user=user, entity=entity, claims=claims, app=app)


# --- HTTP entry ---------------------------------------------------------------------------
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


def handle(emu: Emulator, ctx: Context, request: Request, subpath: str) -> Response:
    parsed = parse_call(request, subpath)
    shape = emu.state.config["rest_error_shape"]
    if isinstance(parsed, Response):
        return parsed
    if isinstance(parsed, APIError):
        return to_response(error_result(parsed, shape))
    return to_response(execute(emu, ctx, parsed))


def execute(emu: Emulator, ctx: Context, call: Call) -> Result:
    """Run one API call (also used for composite sub-requests)."""
    shape = emu.state.config["rest_error_shape"]
    try:
        key = call.headers.get("idempotency-key")
        if (
            key is not None
            and call.method in ("POST", "PATCH")
            and not call.path.startswith(("/services/core/query", "/services/core/model"))
        ):
            return _idempotent(emu, ctx, call, key)
        return _route(emu, ctx, call)
    except APIError as err:
        return error_result(err, shape)


def _idempotent(emu: Emulator, ctx: Context, call: Call, key: str) -> Result:
    state = emu.state
    if not key or len(key) > 256:
        raise APIError(400, "invalidRequest", "Idempotency-Key must be 1 to 256 characters")
    fingerprint = hashlib.sha256(
        call.method.encode() + b" " + call.path.encode() + b"\n" + call.raw
    ).hexdigest()
    cache_key = f"{ctx.company['id']}|{ctx.app['clientId']}|{key}"
    with state.lock:
        cache = state.data["idempotency"]
        entry = cache.get(cache_key)
        now = state.now()
        if entry is not None and now - entry["createdAt"] > IDEMPOTENCY_TTL:
            entry = None
        if entry is not None:
            if entry["fingerprint"] != fingerprint:
                raise APIError(
                    409,
                    "conflict",
                    "The Idempotency-Key was already used with a different request",
                    error_id="REST-1180",
                    message_id="IA.IDEMPOTENCY_KEY_REUSED",
                )
            if entry["status"] is None:
                raise APIError(
                    409,
                    "conflict",
                    "A request with this Idempotency-Key is still being processed",
                    error_id="REST-1181",
                )
            return Result(
                entry["status"],
                copy.deepcopy(entry["body"]),
                {"Idempotency-Key": key, "x-ia-idempotency-cached-date": entry["date"]},
            )
        cache[cache_key] = {
            "fingerprint": fingerprint,
            "status": None,
            "body": None,
            "createdAt": now,
            "date": "",
        }
    try:
        result = _route(emu, ctx, call)
    except APIError as err:
        result = error_result(err, state.config["rest_error_shape"])
    except BaseException:
        with state.lock:
            state.data["idempotency"].pop(cache_key, None)
        raise
    with state.lock:
        state.data["idempotency"][cache_key] = {
            "fingerprint": fingerprint,
            "status": result.status,
            "body": copy.deepcopy(result.body),
            "createdAt": state.now(),
            "date": dt.datetime.fromtimestamp(state.now(), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        state.dirty = True
    result.headers["Idempotency-Key"] = key
    return result


def _route(emu: Emulator, ctx: Context, call: Call) -> Result:
    parts = [p for p in call.path.split("/") if p]
    if parts and parts[0] == "objects":
        return _objects(emu, ctx, call, parts[1:])
    if parts[:2] == ["services", "core"]:
        service = "/".join(parts[2:])
        if service == "query":
            _allow(call, ("POST",))
            body = _require_body(call)
            with emu.state.lock:
                return Result(200, query.run(emu.state, ctx.company, ctx.entity, body))
        if service == "model":
            _allow(call, ("GET",))
            return Result(200, model(call.args))
        if service == "composite":
            _allow(call, ("POST",))
            return composite(emu, ctx, call)
        if service == "session/id":
            _allow(call, ("GET",))
            remaining = int(float(ctx.claims["exp"]) - emu.state.now())
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
    raise _not_found(call.path)


def _not_found(path: str) -> APIError:
    return APIError(
        404,
        "notFound",
        f"Requested resource {path} was not found",
        error_id="REST-1019",
        message_id="IA.REQUESTED_RESOURCE_NOT_FOUND",
        placeholders={"RESOURCE": path},
    )


def _allow(call: Call, methods: tuple[str, ...]) -> None:
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


def _require_body(call: Call) -> Any:
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


def _meta(total: int, success: int, errors: int) -> dict[str, int]:
    return {"totalCount": total, "totalSuccess": success, "totalError": errors}


def _ref(spec: ObjectSpec, record: dict[str, Any]) -> dict[str, Any]:
    return {"key": record["key"], "id": record["id"], "href": spec.href(record["key"])}


def _objects(emu: Emulator, ctx: Context, call: Call, parts: list[str]) -> Result:
    if len(parts) < 2:
        raise _not_found(call.path)
    if f"{parts[0]}/{parts[1]}" == COMPANY_PREFERENCE_PATH:
        return _company_preference(emu, ctx, call, parts)
    spec = SPECS.get(f"{parts[0]}/{parts[1]}")
    if spec is None or len(parts) > 3:
        raise _not_found(call.path)
    state = emu.state
    company = ctx.company
    if len(parts) == 2:  # collection
        _allow(call, ("GET", "POST", "PATCH"))
        if call.method == "GET":
            with state.lock:
                rows = records.collection(state, company["id"], spec.path)["rows"]
                private = records.private_entities(company)
                visible = [r for r in rows.values() if records.visible(r, ctx.entity, private)]
            page = [_ref(spec, r) for r in visible[:100]]
            return Result(
                200,
                {
                    "ia::result": page,
                    "ia::meta": {
                        "totalCount": len(visible),
                        "start": 1,
                        "pageSize": 100,
                        "next": 101 if len(visible) > 100 else None,
                        "previous": None,
                    },
                },
            )
        body = _require_body(call)
        if call.method == "POST" and isinstance(body, dict):
            with state.lock:
                record = records.create(
                    state, company, spec, body, entity=ctx.entity, user=ctx.user
                )
                state.count("transactions", company["id"])
            return Result(201, {"ia::result": _ref(spec, record), "ia::meta": _meta(1, 1, 0)})
        if not isinstance(body, list):
            raise APIError(
                400,
                "invalidRequest",
                "The payload must be an object or an array of objects",
                error_id="REST-1064",
                message_id="IA.PAYLOAD_CONTAINS_ERRORS",
            )
        return _batch_write(emu, ctx, call, spec, body)
    keys = parts[2].split(",")
    _allow(call, ("GET", "PATCH", "DELETE"))
    if any(not k for k in keys) or len(keys) > MAX_BATCH:
        raise APIError(400, "invalidRequest", f"Give 1 to {MAX_BATCH} comma-separated keys")
    if call.method == "GET":
        return _get(emu, ctx, spec, keys, call.args.get("fields"))
    if call.method == "DELETE":
        return _delete(emu, ctx, call, spec, keys)
    if len(keys) > 1:
        raise APIError(
            400, "invalidRequest", "PATCH several records with an array body on the collection URL"
        )
    body = _require_body(call)
    with state.lock:
        record = records.update(
            state, company, spec, keys[0], body, entity=ctx.entity, user=ctx.user
        )
        state.count("transactions", company["id"])
    return Result(200, {"ia::result": _ref(spec, record), "ia::meta": _meta(1, 1, 0)})


def _company_preference(emu: Emulator, ctx: Context, call: Call, parts: list[str]) -> Result:
    """``GET /objects/company-config/company-preference/setup``: a company-wide singleton
    (see ``objects.COMPANY_PREFERENCE_PATH``). The entity header is validated as for every
    call but changes nothing, as for ``company-config/entity``."""
    if len(parts) != 3:  # Sage documents no collection URL for this object
        raise _not_found(call.path)
    # Sage also documents PATCH (update-company-config-company-preference): not emulated.
    _allow(call, ("GET",))
    if parts[2] != COMPANY_PREFERENCE_KEY:  # "This value must be set to `setup`"
        raise records.not_found_path(f"{COMPANY_PREFERENCE_PATH}/{parts[2]}")
    paths = _checked_fields(_groups_of(COMPANY_PREFERENCE_FIELDS), call.args.get("fields"))
    with emu.state.lock:
        record = records.company_preference(ctx.company)
    # The operation's schema gives ``ia::meta`` as ``metadata-pages``; ``totalCount`` is the
    # one member common to it and to the ``metadata`` of every other single-record GET.
    return Result(200, {"ia::result": _project(record, paths), "ia::meta": {"totalCount": 1}})


def _groups_of(fields: dict[str, FieldSpec]) -> set[str]:
    """Every field path and every group above one (``accounting`` for
    ``accounting.baseCurrency``)."""
    out = set(fields)
    for name in fields:
        parts = name.split(".")
        out.update(".".join(parts[:i]) for i in range(1, len(parts)))
    return out


def _projection(spec: ObjectSpec, fields_param: str | None) -> list[list[str]] | None:
    """``?fields=id,name,vendor.id`` of a GET: validated field paths, or None for all."""
    if fields_param is None:
        return None
    allowed = set(spec.query_paths) | set(spec.groups) | set(spec.refs)
    if spec.lines is not None:
        allowed.add(spec.lines.name)
    return _checked_fields(allowed, fields_param)


def _checked_fields(allowed: set[str], fields_param: str | None) -> list[list[str]] | None:
    if fields_param is None:
        return None
    names = [name.strip() for name in fields_param.split(",")]
    if not all(names):
        raise APIError(
            400,
            "invalidRequest",
            "fields must be a comma-separated list of fields",
            error_id="REST-1064",
        )
    for name in names:
        if name not in allowed:
            raise query.invalid_field(name)
    return [name.split(".") for name in names]


def _project(record: dict[str, Any], paths: list[list[str]] | None) -> dict[str, Any]:
    if paths is None:
        return copy.deepcopy(record)
    out: dict[str, Any] = {}
    for parts in paths:
        value: Any = record
        for part in parts:
            value = value.get(part) if isinstance(value, dict) else None
        target = out
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = copy.deepcopy(value)
    return out


def _get(
    emu: Emulator, ctx: Context, spec: ObjectSpec, keys: list[str], fields: str | None = None
) -> Result:
    state = emu.state
    shape = state.config["rest_error_shape"]
    paths = _projection(spec, fields)
    with state.lock:
        if len(keys) == 1:
            record = records.get_visible(state, ctx.company, spec, keys[0], ctx.entity)
            return Result(
                200,
                {
                    "ia::result": _project(records.full_record(spec, record), paths),
                    "ia::meta": _meta(1, 1, 0),
                },
            )
        results: list[Any] = []
        errors = 0
        for key in keys:
            try:
                record = records.get_visible(state, ctx.company, spec, key, ctx.entity)
                results.append(_project(records.full_record(spec, record), paths))
            except APIError as err:
                errors += 1
                item = error_result(err, shape).body
                results.append(
                    {
                        "ia::error": item.get("ia::error") or item["ia::result"]["ia::error"],
                        "ia::status": err.status,
                    }
                )
    status = 207 if errors else 200
    return Result(
        status, {"ia::result": results, "ia::meta": _meta(len(keys), len(keys) - errors, errors)}
    )


def _item_error(err: APIError) -> dict[str, Any]:
    return {"ia::error": err.error_body(), "ia::status": err.status}


UNPROCESSED = {
    "code": "unprocessed",
    "message": "Operation skipped due to atomic transaction failure",
}


def _snapshot(state: Any, company: dict[str, Any], spec: ObjectSpec) -> tuple[Any, ...]:
    coll = records.collection(state, company["id"], spec.path)
    return (
        coll,
        dict(coll["rows"]),
        dict(coll["ids"]),
        coll["nextKey"],
        copy.deepcopy(company["entities"]),
    )


def _restore(state: Any, company: dict[str, Any], saved: tuple[Any, ...]) -> None:
    coll, rows, ids, next_key, entities = saved
    coll["rows"] = rows
    coll["ids"] = ids
    coll["nextKey"] = next_key
    company["entities"] = entities
    state.touch_records()


def _atomic(call: Call) -> bool:
    return call.headers.get(TRANSACTION_HEADER.lower(), "").strip().lower() == "true"


def _batch_write(
    emu: Emulator, ctx: Context, call: Call, spec: ObjectSpec, body: list[Any]
) -> Result:
    if not body:
        raise APIError(400, "invalidRequest", "The payload array is empty", error_id="REST-1064")
    if len(body) > MAX_BATCH:
        raise APIError(
            400,
            "invalidRequest",
            f"A batch request can hold at most {MAX_BATCH} records",
            error_id="REST-1064",
            placeholders={"MAX": MAX_BATCH},
        )
    state = emu.state
    atomic = _atomic(call)
    results: list[Any] = []
    failure: APIError | None = None
    success_status = 201 if call.method == "POST" else 200
    with state.lock:
        saved = _snapshot(state, ctx.company, spec) if atomic else None
        for item in body:
            if failure is not None and atomic:
                results.append({"ia::error": dict(UNPROCESSED), "ia::status": 422})
                continue
            try:
                if call.method == "POST":
                    record = records.create(
                        state, ctx.company, spec, item, entity=ctx.entity, user=ctx.user
                    )
                else:
                    if not isinstance(item, dict) or not isinstance(item.get("key"), str):
                        raise APIError(
                            400,
                            "invalidRequest",
                            "Each item of a batch PATCH needs its key",
                            error_id="REST-1064",
                        )
                    patch = {k: v for k, v in item.items() if k != "key"}
                    record = records.update(
                        state,
                        ctx.company,
                        spec,
                        item["key"],
                        patch,
                        entity=ctx.entity,
                        user=ctx.user,
                    )
                results.append({**_ref(spec, record), "ia::status": success_status})
            except APIError as err:
                failure = failure or err
                results.append(_item_error(err))
        if atomic and failure is not None and saved is not None:
            _restore(state, ctx.company, saved)
            results = [
                r if "ia::error" in r else {"ia::error": dict(UNPROCESSED), "ia::status": 422}
                for r in results
            ]
        elif failure is None or not atomic:
            state.count(
                "transactions",
                ctx.company["id"],
                amount=sum(1 for r in results if "ia::error" not in r),
            )
    errors = sum(1 for r in results if "ia::error" in r)
    meta = _meta(len(body), len(body) - errors, errors)
    if atomic and failure is not None:
        return Result(failure.status, {"ia::result": results, "ia::meta": meta})
    status = 207 if errors else success_status
    return Result(status, {"ia::result": results, "ia::meta": meta})


def _delete(emu: Emulator, ctx: Context, call: Call, spec: ObjectSpec, keys: list[str]) -> Result:
    state = emu.state
    atomic = _atomic(call)
    with state.lock:
        if len(keys) == 1:
            records.delete(state, ctx.company, spec, keys[0], entity=ctx.entity)
            state.count("transactions", ctx.company["id"])
            return Result(204, None)
        saved = _snapshot(state, ctx.company, spec) if atomic else None
        results: list[Any] = []
        failure: APIError | None = None
        for key in keys:
            if failure is not None and atomic:
                results.append({"ia::error": dict(UNPROCESSED), "ia::status": 422})
                continue
            try:
                records.delete(state, ctx.company, spec, key, entity=ctx.entity)
                results.append({"ia::status": 204})
            except APIError as err:
                failure = failure or err
                results.append(_item_error(err))
        if atomic and failure is not None and saved is not None:
            _restore(state, ctx.company, saved)
            results = [
                r if "ia::error" in r else {"ia::error": dict(UNPROCESSED), "ia::status": 422}
                for r in results
            ]
    errors = sum(1 for r in results if "ia::error" in r)
    if failure is None:
        state.count("transactions", ctx.company["id"], amount=len(keys))
        return Result(204, None)
    meta = _meta(len(keys), len(keys) - errors, errors)
    return Result(failure.status if atomic else 207, {"ia::result": results, "ia::meta": meta})


# --- model --------------------------------------------------------------------------------
def _field_model(spec_field: Any) -> dict[str, Any]:
    kind = spec_field.type
    out: dict[str, Any] = {
        "type": {"decimal": "string", "date": "string", "datetime": "string"}.get(kind, kind),
        "readOnly": spec_field.read_only,
        "writeOnly": False,
        # Sage: "The required field is always set to false" in models.
        "required": False,
        "nullable": spec_field.nullable,
        "mutable": not spec_field.read_only,
    }
    if kind == "decimal":
        out["format"] = "decimal-precision-2"
    if spec_field.fmt:
        out["format"] = spec_field.fmt
    if spec_field.enum:
        out["enum"] = list(spec_field.enum)
    return out


def _ref_model(target: str, named: bool) -> dict[str, Any]:
    fields = {
        "key": {
            "type": "string",
            "readOnly": False,
            "writeOnly": False,
            "required": False,
            "nullable": True,
            "mutable": True,
        },
        "id": {
            "type": "string",
            "readOnly": False,
            "writeOnly": False,
            "required": False,
            "nullable": True,
            "mutable": True,
        },
    }
    if named:
        fields["name"] = {
            "type": "string",
            "readOnly": True,
            "writeOnly": False,
            "required": False,
            "nullable": True,
            "mutable": False,
        }
    return {"apiObject": target, "fields": fields}


def object_model(spec: ObjectSpec) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    groups: dict[str, Any] = {}
    for name, spec_field in spec.fields.items():
        head, _, rest = name.partition(".")
        if not rest:
            fields[name] = _field_model(spec_field)
        elif head != "entity":
            groups.setdefault(head, {"fields": {}})["fields"][rest] = _field_model(spec_field)
    refs = {name: _ref_model(ref.target, ref.named) for name, ref in spec.refs.items()}
    if spec.has_entity:
        refs["entity"] = _ref_model("company-config/entity", True)
    lists: Any = []
    if spec.lines is not None:
        lines = spec.lines
        lists = {
            lines.name: {
                "apiObject": lines.object,
                "fields": {n: _field_model(f) for n, f in lines.fields.items()},
                "refs": {n: _ref_model(r.target, r.named) for n, r in lines.refs.items()},
            }
        }
    return {
        "fields": fields,
        "groups": groups,
        "refs": refs,
        "lists": lists,
        "httpMethods": spec.http_methods,
        "idempotenceSupported": True,
    }


def company_preference_model() -> dict[str, Any]:
    fields: dict[str, Any] = {}
    groups: dict[str, Any] = {}
    for name, spec_field in COMPANY_PREFERENCE_FIELDS.items():
        head, _, rest = name.partition(".")
        if rest:
            groups.setdefault(head, {"fields": {}})["fields"][rest] = _field_model(spec_field)
        else:
            fields[name] = _field_model(spec_field)
    return {
        "fields": fields,
        "groups": groups,
        "refs": {},
        "lists": {},  # an object in Sage's object-model schema
        "httpMethods": COMPANY_PREFERENCE_METHODS,
        "idempotenceSupported": False,
    }


def model(args: dict[str, str]) -> dict[str, Any]:
    name = args.get("name", "")
    if name.startswith("objects/"):
        name = name[len("objects/") :]
    if name == COMPANY_PREFERENCE_PATH:
        return {"ia::result": company_preference_model(), "ia::meta": _meta(1, 1, 0)}
    if name:
        spec = SPECS.get(name)
        if spec is None:
            return {"ia::result": [], "ia::meta": {"totalCount": 0}}
        return {"ia::result": object_model(spec), "ia::meta": _meta(1, 1, 0)}
    kind = args.get("type", "")
    items: list[dict[str, Any]] = []
    if kind in ("", "object", "rootObject"):
        items = [
            {
                "apiObject": f"objects/{spec.path}",
                "type": "rootObject",
                "httpMethods": spec.http_methods,
                "href": f"/services/core/model?name=objects/{spec.path}&version=v1",
            }
            for spec in SPECS.values()
        ]
        items.append(
            {
                "apiObject": f"objects/{COMPANY_PREFERENCE_PATH}",
                "type": "rootObject",
                "httpMethods": COMPANY_PREFERENCE_METHODS,
                "href": f"/services/core/model?name=objects/{COMPANY_PREFERENCE_PATH}&version=v1",
            }
        )
    if kind in ("", "service"):
        items += [
            {
                "apiObject": f"services/core/{name}",
                "type": "service",
                "httpMethods": methods,
                "href": f"/services/core/model?name=services/core/{name}&version=v1",
            }
            for name, methods in (
                ("query", "POST"),
                ("model", "GET"),
                ("composite", "POST"),
                ("session/id", "GET"),
            )
        ]
    return {"ia::result": items, "ia::meta": {"totalCount": len(items)}}


# --- composite --------------------------------------------------------------------------
def _lookup(results: dict[str, Any], expression: str) -> Any:
    parts = expression.split(".")
    if parts[0] not in results:
        raise KeyError(expression)
    value = results[parts[0]]
    for part in parts[1:]:
        if isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
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


def composite(emu: Emulator, ctx: Context, call: Call) -> Result:
    body = _require_body(call)
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
            raise APIError(
                400,
                "invalidRequest",
                "Payload contains errors",
                error_id="REST-1064",
                message_id="IA.PAYLOAD_CONTAINS_ERRORS",
                details=[
                    detail("invalidRequest", f"Sub-request {index}: {p}", target=f"/{index}")
                    for p in problems
                ],
            )
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
            output.append(_item_error(error))
            continue
        headers = {k.lower(): str(v) for k, v in (item.get("headers") or {}).items()}
        path_only, _, query_string = str(path).partition("?")
        args = dict(parse_qsl(query_string, keep_blank_values=True))
        sub_ctx = ctx
        if ENTITY_HEADER.lower() in headers:
            entity = headers[ENTITY_HEADER.lower()].strip() or None
            if entity is not None and entity not in ctx.company["entities"]:
                failed = True
                output.append(
                    _item_error(
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
            result = execute(emu, sub_ctx, sub_call)
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
        {"ia::result": output, "ia::meta": _meta(len(body), len(body) - errors, errors)},
    )
