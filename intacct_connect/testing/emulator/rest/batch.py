"""The batch forms of ``/objects``: an array body POSTed (create) or PATCHed (update, each
item with its ``key``) to a collection, and DELETE of comma-separated keys. Each item
succeeds or fails on its own (207), unless ``X-IA-API-Param-Transaction: true`` makes the
batch atomic: the first failure rolls every item back and the rest are ``unprocessed``."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from intacct_connect.testing.emulator.catalogue.spec import ObjectSpec
from intacct_connect.testing.emulator.records import writes
from intacct_connect.testing.emulator.records.storage import collection
from intacct_connect.testing.emulator.responses import APIError
from intacct_connect.testing.emulator.rest.calls import (
    MAX_BATCH,
    TRANSACTION_HEADER,
    Call,
    Context,
    Result,
    item_error,
    meta,
    ref,
)
from intacct_connect.testing.emulator.state import State
from intacct_connect.testing.emulator.store import Collection, Entity, Record, Store

UNPROCESSED = {
    "code": "unprocessed",
    "message": "Operation skipped due to atomic transaction failure",
}
#: What an atomic batch restores on failure: the collection's rows, ids and next key, and
#: the company's entities (creating an entity adds one).
Saved = tuple[Collection, dict[str, Record], dict[str, str], int, dict[str, Entity]]


def _unprocessed() -> dict[str, Any]:
    return {"ia::error": dict(UNPROCESSED), "ia::status": 422}


def _atomic(call: Call) -> bool:
    return call.headers.get(TRANSACTION_HEADER.lower(), "").strip().lower() == "true"


def _each(
    store: Store,
    ctx: Context,
    spec: ObjectSpec,
    atomic: bool,
    items: list[Any],
    action: Callable[[Any], dict[str, Any]],
) -> tuple[list[dict[str, Any]], APIError | None]:
    """Each item's answer, and the first failure (None when every item succeeded)."""
    saved: Saved | None = None
    if atomic:
        coll = collection(store, ctx.company.id, spec.path)
        entities = copy.deepcopy(ctx.company.entities)
        saved = (coll, dict(coll.rows), dict(coll.ids), coll.next_key, entities)
    results: list[dict[str, Any]] = []
    failure: APIError | None = None
    for item in items:
        if failure is not None and atomic:
            results.append(_unprocessed())
            continue
        try:
            results.append(action(item))
        except APIError as err:
            failure = failure or err
            results.append(item_error(err))
    if failure is not None and saved is not None:
        coll, rows, ids, next_key, entities = saved
        coll.rows, coll.ids, coll.next_key = rows, ids, next_key
        ctx.company.entities = entities
        store.touch_records()
        results = [r if "ia::error" in r else _unprocessed() for r in results]
    return results, failure


def write_many(state: State, ctx: Context, call: Call, spec: ObjectSpec, body: list[Any]) -> Result:
    """POST (create) or PATCH (update) each item of ``body``."""
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
    atomic = _atomic(call)
    success_status = 201 if call.method == "POST" else 200

    with state.transaction() as store:

        def write(item: Any) -> dict[str, Any]:
            if call.method == "POST":
                record = writes.create(
                    store, ctx.company, spec, item, entity=ctx.entity, user=ctx.user
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
                record = writes.update(
                    store, ctx.company, spec, item["key"], patch, entity=ctx.entity, user=ctx.user
                )
            return {**ref(spec, record), "ia::status": success_status}

        results, failure = _each(store, ctx, spec, atomic, body, write)
        if failure is None or not atomic:
            written = sum(1 for r in results if "ia::error" not in r)
            store.counters.add_transactions(ctx.company.id, written)
    errors = sum(1 for r in results if "ia::error" in r)
    answer = {"ia::result": results, "ia::meta": meta(len(body), len(body) - errors, errors)}
    if atomic and failure is not None:
        return Result(failure.status, answer)
    return Result(207 if errors else success_status, answer)


def delete_many(
    state: State, ctx: Context, call: Call, spec: ObjectSpec, keys: list[str]
) -> Result:
    """DELETE several comma-separated keys."""
    atomic = _atomic(call)

    with state.transaction() as store:

        def delete(key: str) -> dict[str, Any]:
            writes.delete(store, ctx.company, spec, key, entity=ctx.entity)
            return {"ia::status": 204}

        results, failure = _each(store, ctx, spec, atomic, keys, delete)
        if failure is None:
            store.counters.add_transactions(ctx.company.id, len(keys))
            return Result(204, None)
    errors = sum(1 for r in results if "ia::error" in r)
    answer = {"ia::result": results, "ia::meta": meta(len(keys), len(keys) - errors, errors)}
    return Result(failure.status if atomic else 207, answer)
