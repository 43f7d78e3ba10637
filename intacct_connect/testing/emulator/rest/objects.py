"""``/objects/<application>/<object>[/<keys>]``: list (100 references a page), get (one key
or several, with ``?fields=``), create, update and delete one record; arrays and several keys
go to :mod:`.batch`. Also the company preferences, a company-wide singleton served at
``/objects/company-config/company-preference/setup``."""

from __future__ import annotations

import copy
from typing import Any

from intacct_connect.testing.emulator.catalogue.company_preference import (
    COMPANY_PREFERENCE_FIELDS,
    COMPANY_PREFERENCE_KEY,
    COMPANY_PREFERENCE_PATH,
    company_preference,
)
from intacct_connect.testing.emulator.catalogue.registry import SPECS
from intacct_connect.testing.emulator.catalogue.spec import FieldSpec, ObjectSpec
from intacct_connect.testing.emulator.query.fields import invalid_field
from intacct_connect.testing.emulator.records import writes
from intacct_connect.testing.emulator.records.storage import (
    collection,
    full_record,
    get_visible,
    not_found_path,
    visible,
)
from intacct_connect.testing.emulator.responses import APIError, not_found
from intacct_connect.testing.emulator.rest import batch
from intacct_connect.testing.emulator.rest.calls import (
    MAX_BATCH,
    Call,
    Context,
    Result,
    allow,
    item_error,
    meta,
    ref,
    require_body,
)
from intacct_connect.testing.emulator.state import State

PAGE_SIZE = 100


def objects(state: State, ctx: Context, call: Call, parts: list[str]) -> Result:
    """``parts``: the path below ``/objects``, split at slashes."""
    if len(parts) < 2:
        raise not_found(call.path)
    path = f"{parts[0]}/{parts[1]}"
    if path == COMPANY_PREFERENCE_PATH:
        return _company_preference(ctx, call, parts)
    spec = SPECS.get(path)
    if spec is None or len(parts) > 3:
        raise not_found(call.path)
    if len(parts) == 2:
        return _collection(state, ctx, call, spec)
    return _records(state, ctx, call, spec, parts[2].split(","))


def _collection(state: State, ctx: Context, call: Call, spec: ObjectSpec) -> Result:
    allow(call, ("GET", "POST", "PATCH"))
    if call.method == "GET":
        return _list(state, ctx, spec)
    body = require_body(call)
    if call.method == "POST" and isinstance(body, dict):
        with state.transaction() as store:
            record = writes.create(store, ctx.company, spec, body, entity=ctx.entity, user=ctx.user)
            store.counters.add_transactions(ctx.company.id)
        return Result(201, {"ia::result": ref(spec, record), "ia::meta": meta(1, 1, 0)})
    if not isinstance(body, list):
        raise APIError(
            400,
            "invalidRequest",
            "The payload must be an object or an array of objects",
            error_id="REST-1064",
            message_id="IA.PAYLOAD_CONTAINS_ERRORS",
        )
    return batch.write_many(state, ctx, call, spec, body)


def _list(state: State, ctx: Context, spec: ObjectSpec) -> Result:
    with state.read() as store:
        rows = collection(store, ctx.company.id, spec.path).rows
        private = ctx.company.private_entities()
        found = [r for r in rows.values() if visible(r, ctx.entity, private)]
    page = [ref(spec, r) for r in found[:PAGE_SIZE]]
    return Result(
        200,
        {
            "ia::result": page,
            "ia::meta": {
                "totalCount": len(found),
                "start": 1,
                "pageSize": PAGE_SIZE,
                "next": PAGE_SIZE + 1 if len(found) > PAGE_SIZE else None,
                "previous": None,
            },
        },
    )


def _records(state: State, ctx: Context, call: Call, spec: ObjectSpec, keys: list[str]) -> Result:
    allow(call, ("GET", "PATCH", "DELETE"))
    if any(not k for k in keys) or len(keys) > MAX_BATCH:
        raise APIError(400, "invalidRequest", f"Give 1 to {MAX_BATCH} comma-separated keys")
    if call.method == "GET":
        return _get(state, ctx, spec, keys, call.args.get("fields"))
    if call.method == "DELETE":
        if len(keys) > 1:
            return batch.delete_many(state, ctx, call, spec, keys)
        with state.transaction() as store:
            writes.delete(store, ctx.company, spec, keys[0], entity=ctx.entity)
            store.counters.add_transactions(ctx.company.id)
        return Result(204, None)
    if len(keys) > 1:
        raise APIError(
            400, "invalidRequest", "PATCH several records with an array body on the collection URL"
        )
    body = require_body(call)
    with state.transaction() as store:
        record = writes.update(
            store, ctx.company, spec, keys[0], body, entity=ctx.entity, user=ctx.user
        )
        store.counters.add_transactions(ctx.company.id)
    return Result(200, {"ia::result": ref(spec, record), "ia::meta": meta(1, 1, 0)})


def _get(
    state: State, ctx: Context, spec: ObjectSpec, keys: list[str], fields: str | None = None
) -> Result:
    paths = _projection(spec, fields)
    with state.read() as store:
        if len(keys) == 1:
            record = get_visible(store, ctx.company, spec, keys[0], ctx.entity)
            return Result(
                200,
                {
                    "ia::result": _project(full_record(spec, record), paths),
                    "ia::meta": meta(1, 1, 0),
                },
            )
        results: list[Any] = []
        errors = 0
        for key in keys:
            try:
                record = get_visible(store, ctx.company, spec, key, ctx.entity)
                results.append(_project(full_record(spec, record), paths))
            except APIError as err:
                errors += 1
                results.append(item_error(err))
    status = 207 if errors else 200
    return Result(
        status, {"ia::result": results, "ia::meta": meta(len(keys), len(keys) - errors, errors)}
    )


def _company_preference(ctx: Context, call: Call, parts: list[str]) -> Result:
    """``GET /objects/company-config/company-preference/setup``. The entity header is
    validated as for every call but changes nothing, as for ``company-config/entity``."""
    if len(parts) != 3:  # Sage documents no collection URL for this object
        raise not_found(call.path)
    # Sage also documents PATCH (update-company-config-company-preference): not emulated.
    allow(call, ("GET",))
    if parts[2] != COMPANY_PREFERENCE_KEY:  # "This value must be set to `setup`"
        raise not_found_path(f"{COMPANY_PREFERENCE_PATH}/{parts[2]}")
    paths = _checked_fields(_groups_of(COMPANY_PREFERENCE_FIELDS), call.args.get("fields"))
    record = company_preference(ctx.company)
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
            raise invalid_field(name)
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
