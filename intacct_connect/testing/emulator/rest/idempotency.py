"""``Idempotency-Key`` on POST and PATCH: the first answer of a key is kept 48 hours and
replayed (with ``x-ia-idempotency-cached-date``) to a repeat of the same request; the key
with another request is 409 REST-1180, and while the first still runs 409 REST-1181."""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
from collections.abc import Callable

from intacct_connect.testing.emulator.responses import APIError
from intacct_connect.testing.emulator.rest.calls import Call, Context, Result, error_result
from intacct_connect.testing.emulator.state import State
from intacct_connect.testing.emulator.store import IdempotencyEntry

IDEMPOTENCY_TTL = 48 * 3600


def replay(state: State, ctx: Context, call: Call, key: str, run: Callable[[], Result]) -> Result:
    """The kept answer to ``key``, or ``run()``'s, kept for the next time."""
    if not key or len(key) > 256:
        raise APIError(400, "invalidRequest", "Idempotency-Key must be 1 to 256 characters")
    fingerprint = hashlib.sha256(
        call.method.encode() + b" " + call.path.encode() + b"\n" + call.raw
    ).hexdigest()
    cache_key = f"{ctx.company.id}|{ctx.app.client_id}|{key}"
    with state.transaction() as store:
        entry = store.idempotency.get(cache_key)
        now = store.now()
        if entry is not None and now - entry.created_at > IDEMPOTENCY_TTL:
            entry = None
        if entry is not None:
            if entry.fingerprint != fingerprint:
                raise APIError(
                    409,
                    "conflict",
                    "The Idempotency-Key was already used with a different request",
                    error_id="REST-1180",
                    message_id="IA.IDEMPOTENCY_KEY_REUSED",
                )
            if entry.status is None:
                raise APIError(
                    409,
                    "conflict",
                    "A request with this Idempotency-Key is still being processed",
                    error_id="REST-1181",
                )
            return Result(
                entry.status,
                copy.deepcopy(entry.body),
                {"Idempotency-Key": key, "x-ia-idempotency-cached-date": entry.date},
            )
        store.idempotency[cache_key] = IdempotencyEntry(fingerprint, created_at=now)
    try:
        result = run()
    except APIError as err:
        result = error_result(err, state.config.rest_error_shape)
    except BaseException:
        with state.transaction() as store:
            store.idempotency.pop(cache_key, None)
        raise
    with state.transaction() as store:
        now = store.now()
        store.idempotency[cache_key] = IdempotencyEntry(
            fingerprint,
            status=result.status,
            body=copy.deepcopy(result.body),
            created_at=now,
            date=dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
    result.headers["Idempotency-Key"] = key
    return result
