"""The test-control API under ``/__emulator__/`` (JSON; emulator-only, not Intacct).

Every endpoint maps onto a control method of
:class:`~intacct_connect.testing.emulator.Emulator` (:mod:`.control_methods`); errors answer
``400 {"error": "..."}``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from werkzeug.wrappers import Request, Response

from intacct_connect.testing.emulator.control_methods import ControlMethods
from intacct_connect.testing.emulator.responses import json_response
from intacct_connect.testing.emulator.seed import DEMO_CLIENT_ID


class ControlError(Exception):
    pass


def _body(request: Request) -> dict[str, Any]:
    raw = request.get_data(cache=True)
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise ControlError("The body must be a JSON object") from err
    if not isinstance(value, dict):
        raise ControlError("The body must be a JSON object")
    return value


def _call(function: Callable[..., Any], body: dict[str, Any], *names: str) -> Any:
    positional = []
    for name in names:
        if name not in body:
            raise ControlError(f"{name} is required")
        positional.append(body.pop(name))
    return function(*positional, **body)


def _reset(emu: ControlMethods, body: dict[str, Any]) -> dict[str, Any]:
    emu.reset()
    return {"reset": True}


def _clear_faults(emu: ControlMethods, body: dict[str, Any]) -> dict[str, Any]:
    emu.clear_faults()
    return {"faults": []}


def _advance(emu: ControlMethods, body: dict[str, Any]) -> dict[str, Any]:
    try:
        seconds = float(body.get("advance", 0))
    except (TypeError, ValueError) as err:
        raise ControlError("advance must be a number of seconds") from err
    emu.advance_time(seconds)
    return {"now": emu.now()}


def _client_id(body: dict[str, Any]) -> str:
    client_id = body.get("client_id")
    if client_id is None:
        return DEMO_CLIENT_ID
    if not isinstance(client_id, str) or not client_id:
        raise ControlError("client_id must be a non-empty string")
    return client_id


def _list_redirect_uris(emu: ControlMethods, body: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(body) - {"client_id"})
    if unknown:
        raise ControlError(f"Unknown parameter(s) {', '.join(unknown)}: expected client_id")
    client_id = _client_id(body)
    return {"client_id": client_id, "redirect_uris": emu.redirect_uris(client_id)}


def _add_redirect_uri(emu: ControlMethods, body: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(body) - {"uri", "client_id"})
    if unknown:
        raise ControlError(f"Unknown field(s) {', '.join(unknown)}: expected uri, client_id")
    uri = body.get("uri")
    if uri is None:
        raise ControlError("uri is required")
    if not isinstance(uri, str):
        raise ControlError("uri must be a string (an absolute URL)")
    client_id = _client_id(body)
    emu.add_redirect_uri(uri, client_id)
    return {"client_id": client_id, "redirect_uris": emu.redirect_uris(client_id)}


ROUTES: dict[tuple[str, str], Callable[[ControlMethods, dict[str, Any]], Any]] = {
    ("POST", "reset"): _reset,
    ("GET", "config"): lambda emu, body: emu.config(),
    ("POST", "config"): lambda emu, body: emu.configure(**body),
    ("GET", "faults"): lambda emu, body: {"faults": emu.faults()},
    ("POST", "faults"): lambda emu, body: _call(emu.set_fault, body, "kind"),
    ("DELETE", "faults"): _clear_faults,
    ("GET", "counters"): lambda emu, body: emu.counters(),
    ("POST", "time"): _advance,
    ("GET", "time"): lambda emu, body: {"now": emu.now()},
    ("POST", "expire-tokens"): lambda emu, body: {
        "expired": emu.expire_tokens(body.get("company"))
    },
    ("POST", "revoke"): lambda emu, body: {"revoked": _call(emu.revoke_grants, body, "company")},
    ("POST", "tokens"): lambda emu, body: _call(emu.issue_tokens, body, "company_id", "user_id"),
    ("POST", "companies"): lambda emu, body: _call(emu.seed_company, body, "company_id"),
    ("POST", "users"): lambda emu, body: _call(
        emu.seed_user, body, "company_id", "user_id", "password"
    ),
    ("POST", "applications"): lambda emu, body: _call(
        emu.seed_application, body, "client_id", "client_secret"
    ),
    ("GET", "redirect-uris"): _list_redirect_uris,
    ("POST", "redirect-uris"): _add_redirect_uri,
    ("POST", "authorize-sender"): lambda emu, body: (
        _call(emu.authorize_sender, body, "company") or {"authorized": True}
    ),
    ("POST", "authorize-client"): lambda emu, body: (
        _call(emu.authorize_client, body, "company", "user_id") or {"authorized": True}
    ),
    ("POST", "generate"): lambda emu, body: {
        "total": _call(emu.generate_records, body, "company", "object", "count")
    },
    ("GET", "grants"): lambda emu, body: {"grants": emu.grants(body.get("company"))},
}


def dispatch(emu: ControlMethods, request: Request, subpath: str) -> Response:
    name = subpath.strip("/")
    try:
        if name.startswith("records/"):
            parts = name.split("/")
            if len(parts) != 4 or request.method != "GET":
                raise ControlError("Use GET /__emulator__/records/<company>/<app>/<object>")
            company, object_path = parts[1], f"{parts[2]}/{parts[3]}"
            rows = emu.records(company, object_path)
            limit = request.args.get("limit", type=int)
            return json_response(
                {"count": len(rows), "records": rows[:limit] if limit is not None else rows}
            )
        route = ROUTES.get((request.method, name))
        if route is None:
            known = sorted({path for _, path in ROUTES} | {"records/<company>/<app>/<object>"})
            return json_response(
                {"error": f"Unknown control endpoint {request.method} {name}", "endpoints": known},
                404,
            )
        body = _body(request) if request.method != "GET" else dict(request.args.items())
        result = route(emu, body)
        return json_response(result if result is not None else {"ok": True})
    except (ControlError, ValueError, TypeError) as err:
        return json_response({"error": str(err)}, 400)
