"""The HTML of the authorize flow (sign-in, consent, error pages) and its redirects."""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import urlencode, urlsplit

from werkzeug.wrappers import Response

from intacct_connect.testing.emulator.store import Application, Company, PendingRequest, User

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} - Sage Intacct (emulator)</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="{favicon}">
<style>body{{font-family:sans-serif;max-width:32em;margin:3em auto}}label{{display:block;
margin:.6em 0}}.error{{color:#b00}}.note{{background:#ffd;padding:.5em}}</style></head>
<body><p><strong>Sage Intacct emulator</strong> (local test server, not Sage Intacct)</p>
<h1>{title}</h1>{body}</body></html>"""


# An inline icon: browsers then never ask for /favicon.ico (a 404 in their console).
FAVICON = (
    "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E"
    "%3Crect width='16' height='16' rx='3' fill='%2300a65a'/%3E%3C/svg%3E"
)


def page(title: str, body: str, status: int = 200) -> Response:
    text = PAGE.format(title=html.escape(title), body=body, favicon=FAVICON)
    return Response(
        text,
        status=status,
        mimetype="text/html",
        headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"},
    )


def error_page(message: str) -> Response:
    return page("Authorization error", f'<p class="error">{html.escape(message)}</p>', 400)


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def signin_page(
    pending_id: str, app_name: str, error: str = "", company_id: str = "", user_id: str = ""
) -> Response:
    body = f"""<p>Sign in to Sage Intacct to connect <strong>{esc(app_name)}</strong>.</p>
{f'<p class="error">{esc(error)}</p>' if error else ""}
<form method="post" action="/ia/api/v1/oauth2/signin">
<input type="hidden" name="request_id" value="{esc(pending_id)}">
<label>Company ID <input name="company_id" value="{esc(company_id)}" required></label>
<label>User ID <input name="user_id" value="{esc(user_id)}" required></label>
<label>Password <input name="password" type="password" required></label>
<label>Entity (optional; multi-entity companies, also offered on the next page)
<input name="entity" value=""></label>
<button type="submit" name="sign_in" value="1">Sign in</button>
</form>"""
    return page("Sign in", body, 200)


def consent_page(
    app: Application, company: Company, user: User, pending: PendingRequest, error: str = ""
) -> Response:
    notes = []
    if app.sender_id not in company.senders:
        if user.admin:
            notes.append(
                f"Sender ID <strong>{esc(app.sender_id)}</strong> is not yet authorized for "
                f"{esc(company.id)}; approving as a company administrator authorizes it."
            )
        else:
            notes.append(
                f"Sender ID <strong>{esc(app.sender_id)}</strong> is not authorized for "
                f"{esc(company.id)}; only a company administrator can approve it."
            )
    entity_field = ""
    if company.multi_entity:
        chosen = pending.entity or ""
        options = ['<option value="">Top level</option>'] + [
            f'<option value="{esc(e)}"{" selected" if e == chosen else ""}>'
            f"{esc(e)} - {esc(info.name)}</option>"
            for e, info in company.entities.items()
        ]
        entity_field = f'<label>Entity <select name="entity">{"".join(options)}</select></label>'
    scope = pending.scope or "(none)"
    body = f"""{f'<p class="error">{esc(error)}</p>' if error else ""}
<p><strong>{esc(app.name)}</strong> ({esc(app.client_id)}) asks to access company
<strong>{esc(company.id)}</strong> as <strong>{esc(user.id)}</strong>
with the same permissions as you. Scope: {esc(scope)}.</p>
{"".join(f'<p class="note">{n}</p>' for n in notes)}
<form method="post" action="/ia/api/v1/oauth2/consent">
<input type="hidden" name="request_id" value="{esc(pending.id)}">
{entity_field}
<button type="submit" name="approve" value="1">Accept</button>
<button type="submit" name="deny" value="1">Deny</button>
</form>"""
    return page("Authorize application", body, 200)


def redirect(uri: str, params: dict[str, str]) -> Response:
    separator = "&" if urlsplit(uri).query else "?"
    location = f"{uri}{separator}{urlencode(params)}"
    return Response("", status=302, headers={"Location": location, "Cache-Control": "no-store"})


def error_redirect(pending: PendingRequest, error: str, description: str = "") -> Response:
    params = {"error": error}
    if description:
        params["error_description"] = description
    if pending.state is not None:
        params["state"] = pending.state
    return redirect(pending.redirect_uri, params)
