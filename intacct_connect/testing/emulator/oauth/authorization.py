"""``/authorize``, sign-in and consent: the browser half of the authorization-code grant.

Each handler is one ``state.transaction()``: the pending request it reads is the one it
updates.
"""

from __future__ import annotations

import re
import secrets

from werkzeug.wrappers import Request, Response

from intacct_connect.testing.emulator.oauth.grants import PENDING_TTL, digest
from intacct_connect.testing.emulator.oauth.pages import (
    consent_page,
    error_page,
    error_redirect,
    redirect,
    signin_page,
)
from intacct_connect.testing.emulator.state import State
from intacct_connect.testing.emulator.store import AuthorizationCode, PendingRequest, Store

#: How long an unused authorization code is kept (it expires sooner: ``code_ttl``).
CODE_RETENTION = 3600
REPEATABLE_NOT = (
    "client_id",
    "redirect_uri",
    "response_type",
    "state",
    "scope",
    "code_challenge",
    "code_challenge_method",
)


def authorize(state: State, request: Request) -> Response:
    args = request.args
    for name in REPEATABLE_NOT:
        if len(args.getlist(name)) > 1:
            return error_page(f"The parameter {name} is repeated.")
    client_id = args.get("client_id", "")
    redirect_uri = args.get("redirect_uri", "")
    with state.transaction() as store:
        app = store.application(client_id)
        if app is None:
            return error_page("Unknown client_id: this application is not registered.")
        if not redirect_uri:
            return error_page("The redirect_uri parameter is required.")
        if redirect_uri not in app.redirect_uris:
            return error_page(
                "The redirect_uri does not exactly match a redirect URI registered for "
                "this application."
            )
        pending = PendingRequest(
            id=secrets.token_urlsafe(24),
            client_id=client_id,
            redirect_uri=redirect_uri,
            state=args.get("state"),
            scope=args.get("scope", ""),
            created_at=store.now(),
        )
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
        pending.challenge = challenge
        _expire_pending(store)
        store.pending[pending.id] = pending
        return signin_page(pending.id, app.name)


def _expire_pending(store: Store) -> None:
    now = store.now()
    for key in [k for k, v in store.pending.items() if now - v.created_at > PENDING_TTL]:
        del store.pending[key]
    for key in [k for k, v in store.codes.items() if now - v.created_at > CODE_RETENTION]:
        del store.codes[key]


def _pending(store: Store, request: Request) -> PendingRequest | None:
    pending = store.pending_request(request.form.get("request_id", ""))
    if pending is None or store.now() - pending.created_at > PENDING_TTL:
        return None
    return pending


def signin(state: State, request: Request) -> Response:
    with state.transaction() as store:
        pending = _pending(store, request)
        if pending is None:
            return error_page("This sign-in request is unknown or has expired; start again.")
        app = store.applications[pending.client_id]
        company_id = request.form.get("company_id", "").strip()
        user_id = request.form.get("user_id", "").strip()
        password = request.form.get("password", "")
        company = store.find_company(company_id) if company_id else None
        user = company.users.get(user_id) if company else None
        if (
            company is None
            or not company.active
            or user is None
            or not secrets.compare_digest(user.password.encode(), password.encode())
        ):
            return signin_page(
                pending.id,
                app.name,
                "Invalid company ID, user ID or password.",
                company_id,
                user_id,
            )
        if user.web_services and not user.admin:
            return signin_page(
                pending.id,
                app.name,
                "Web Services users cannot sign in to the UI.",
                company_id,
                user_id,
            )
        entity = request.form.get("entity", "").strip() or None
        if entity is not None and entity not in company.entities:
            return signin_page(
                pending.id, app.name, f"Unknown entity {entity}.", company_id, user_id
            )
        pending.company = company.id
        pending.user = user_id
        pending.entity = entity
        return consent_page(app, company, user, pending)


def consent(state: State, request: Request) -> Response:
    with state.transaction() as store:
        pending = _pending(store, request)
        if pending is None or pending.company is None or pending.user is None:
            return error_page("This authorization request is unknown or has expired.")
        del store.pending[pending.id]
        if "approve" not in request.form:
            return error_redirect(pending, "access_denied", "The user denied the request")
        company = store.companies[pending.company]
        if company.multi_entity and "entity" in request.form:
            entity = request.form.get("entity", "").strip() or None
            if entity is not None and entity not in company.entities:
                return error_redirect(pending, "invalid_request", f"Unknown entity {entity}")
            pending.entity = entity
        app = store.applications[pending.client_id]
        user = company.users[pending.user]
        if app.sender_id not in company.senders:
            if not user.admin:
                return error_redirect(
                    pending,
                    "access_denied",
                    f"Sender ID {app.sender_id} is not authorized for company "
                    f"{company.id}: a company administrator must approve the application "
                    "(or add the sender ID under Web Services authorizations).",
                )
            company.senders.append(app.sender_id)
        code = secrets.token_urlsafe(32)
        store.codes[digest(code)] = AuthorizationCode(
            client_id=pending.client_id,
            redirect_uri=pending.redirect_uri,
            challenge=pending.challenge,
            company=pending.company,
            user=pending.user,
            entity=pending.entity,
            scope=pending.scope,
            created_at=store.now(),
        )
        params = {"code": code}
        if pending.state is not None:
            params["state"] = pending.state
        return redirect(pending.redirect_uri, params)
