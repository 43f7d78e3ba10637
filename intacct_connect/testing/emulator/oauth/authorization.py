"""``/authorize``, sign-in and consent: the browser half of the authorization-code grant."""

from __future__ import annotations

import re
import secrets
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

from intacct_connect.testing.emulator.oauth.grants import PENDING_TTL, digest, find_company
from intacct_connect.testing.emulator.oauth.pages import (
    consent_page,
    error_page,
    error_redirect,
    redirect,
    signin_page,
)

if TYPE_CHECKING:
    from intacct_connect.testing.emulator.app import Emulator


def authorize(emu: Emulator, request: Request) -> Response:
    args = request.args
    for name in (
        "client_id",
        "redirect_uri",
        "response_type",
        "state",
        "scope",
        "code_challenge",
        "code_challenge_method",
    ):
        if len(args.getlist(name)) > 1:
            return error_page(f"The parameter {name} is repeated.")
    client_id = args.get("client_id", "")
    redirect_uri = args.get("redirect_uri", "")
    with emu.state.lock:
        app = emu.state.data["applications"].get(client_id)
        if app is None:
            return error_page("Unknown client_id: this application is not registered.")
        if not redirect_uri:
            return error_page("The redirect_uri parameter is required.")
        if redirect_uri not in app["redirectUris"]:
            return error_page(
                "The redirect_uri does not exactly match a redirect URI registered for "
                "this application."
            )
        pending: dict[str, Any] = {
            "id": secrets.token_urlsafe(24),
            "clientId": client_id,
            "redirectUri": redirect_uri,
            "state": args.get("state"),
            "scope": args.get("scope", ""),
            "createdAt": emu.state.now(),
        }
        response_type = args.get("response_type")
        if response_type != "code":
            return error_redirect(
                pending,
                "unsupported_response_type" if response_type else "invalid_request",
                "response_type must be 'code'",
            )
        challenge = args.get("code_challenge")
        method = args.get("code_challenge_method")
        if method is not None and challenge is None:
            return error_redirect(pending, "invalid_request", "code_challenge is missing")
        if challenge is not None:
            if (method or "plain") != "S256":
                return error_redirect(
                    pending, "invalid_request", "code_challenge_method must be S256"
                )
            if not re.fullmatch(r"[A-Za-z0-9_-]{43}", challenge):
                return error_redirect(pending, "invalid_request", "invalid code_challenge")
        pending["challenge"] = challenge
        _expire_pending(emu)
        emu.state.data["pending"][pending["id"]] = pending
        emu.state.dirty = True
        return signin_page(pending["id"], app["name"])


def _expire_pending(emu: Emulator) -> None:
    now = emu.state.now()
    data = emu.state.data
    for key in [k for k, v in data["pending"].items() if now - v["createdAt"] > PENDING_TTL]:
        del data["pending"][key]
    for key in [k for k, v in data["codes"].items() if now - v["createdAt"] > 3600]:
        del data["codes"][key]


def _pending(emu: Emulator, request: Request) -> dict[str, Any] | None:
    pending_id = request.form.get("request_id", "")
    pending: dict[str, Any] | None = emu.state.data["pending"].get(pending_id)
    if pending is None or emu.state.now() - pending["createdAt"] > PENDING_TTL:
        return None
    return pending


def signin(emu: Emulator, request: Request) -> Response:
    with emu.state.lock:
        pending = _pending(emu, request)
        if pending is None:
            return error_page("This sign-in request is unknown or has expired; start again.")
        app = emu.state.data["applications"][pending["clientId"]]
        company_id = request.form.get("company_id", "").strip()
        user_id = request.form.get("user_id", "").strip()
        password = request.form.get("password", "")
        company = find_company(emu, company_id) if company_id else None
        user = company["users"].get(user_id) if company else None
        if (
            company is None
            or not company["active"]
            or user is None
            or not secrets.compare_digest(user["password"].encode(), password.encode())
        ):
            return signin_page(
                pending["id"],
                app["name"],
                "Invalid company ID, user ID or password.",
                company_id,
                user_id,
            )
        if user.get("webServices") and not user.get("admin"):
            return signin_page(
                pending["id"],
                app["name"],
                "Web Services users cannot sign in to the UI.",
                company_id,
                user_id,
            )
        entity = request.form.get("entity", "").strip() or None
        if entity is not None and entity not in company["entities"]:
            return signin_page(
                pending["id"], app["name"], f"Unknown entity {entity}.", company_id, user_id
            )
        pending["company"] = company["id"]
        pending["user"] = user_id
        pending["entity"] = entity
        emu.state.dirty = True
        return consent_page(emu, pending)


def consent(emu: Emulator, request: Request) -> Response:
    with emu.state.lock:
        pending = _pending(emu, request)
        if pending is None or "company" not in pending:
            return error_page("This authorization request is unknown or has expired.")
        del emu.state.data["pending"][pending["id"]]
        emu.state.dirty = True
        if "approve" not in request.form:
            return error_redirect(pending, "access_denied", "The user denied the request")
        company = emu.state.data["companies"][pending["company"]]
        if company["multiEntity"] and "entity" in request.form:
            entity = request.form.get("entity", "").strip() or None
            if entity is not None and entity not in company["entities"]:
                return error_redirect(pending, "invalid_request", f"Unknown entity {entity}")
            pending["entity"] = entity
        app = emu.state.data["applications"][pending["clientId"]]
        user = company["users"][pending["user"]]
        if app["senderId"] not in company["senders"]:
            if not user["admin"]:
                return error_redirect(
                    pending,
                    "access_denied",
                    f"Sender ID {app['senderId']} is not authorized for company "
                    f"{company['id']}: a company administrator must approve the application "
                    "(or add the sender ID under Web Services authorizations).",
                )
            company["senders"].append(app["senderId"])
        code = secrets.token_urlsafe(32)
        emu.state.data["codes"][digest(code)] = {
            "clientId": pending["clientId"],
            "redirectUri": pending["redirectUri"],
            "challenge": pending.get("challenge"),
            "company": pending["company"],
            "user": pending["user"],
            "entity": pending.get("entity"),
            "scope": pending["scope"],
            "createdAt": emu.state.now(),
            "used": False,
            "grant": None,
        }
        params = {"code": code}
        if pending.get("state") is not None:
            params["state"] = pending["state"]
        return redirect(pending["redirectUri"], params)
