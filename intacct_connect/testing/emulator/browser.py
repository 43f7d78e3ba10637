"""Drive the authorize flow's sign-in and consent pages over HTTP like a browser, for
tests (:meth:`EmulatorServer.complete_authorization`)."""

from __future__ import annotations

import html
import re
from urllib.parse import urljoin

import requests


class EmulatorError(Exception):
    """A helper of the handle could not do what was asked (e.g. sign-in failed)."""


REDIRECTS = (301, 302, 303, 307)


def complete_authorization(
    authorize_url: str,
    company_id: str,
    user_id: str,
    password: str,
    entity: str | None = None,
    approve: bool = True,
) -> str:
    """The redirect ``Location`` (with ``code`` and ``state``, or ``error``) after signing
    in and approving (or denying) on the pages of ``authorize_url``."""
    with requests.Session() as session:
        response = session.get(authorize_url, allow_redirects=False, timeout=10)
        if response.status_code in REDIRECTS:
            return str(response.headers["Location"])
        if response.status_code != 200:
            raise EmulatorError(
                f"The authorize page answered {response.status_code}: {_page_error(response.text)}"
            )
        request_id = _hidden(response.text, "request_id")
        form = {
            "request_id": request_id,
            "company_id": company_id,
            "user_id": user_id,
            "password": password,
        }
        signin_url = urljoin(response.url, "/ia/api/v1/oauth2/signin")
        response = session.post(signin_url, data=form, allow_redirects=False, timeout=10)
        if response.status_code in REDIRECTS:
            return str(response.headers["Location"])
        if response.status_code != 200 or 'name="approve"' not in response.text:
            raise EmulatorError(f"Sign-in failed: {_page_error(response.text)}")
        consent = {"request_id": _hidden(response.text, "request_id")}
        if entity is not None:
            consent["entity"] = entity
        consent["approve" if approve else "deny"] = "1"
        consent_url = urljoin(response.url, "/ia/api/v1/oauth2/consent")
        response = session.post(consent_url, data=consent, allow_redirects=False, timeout=10)
        if response.status_code not in REDIRECTS:
            raise EmulatorError(f"Consent failed: {_page_error(response.text)}")
        return str(response.headers["Location"])


def _hidden(text: str, name: str) -> str:
    match = re.search(rf'name="{re.escape(name)}" value="([^"]*)"', text)
    if match is None:
        raise EmulatorError(f"No {name} field in the page: {_page_error(text)}")
    return html.unescape(match.group(1))


def _page_error(text: str) -> str:
    match = re.search(r'class="error">([^<]*)<', text)
    return html.unescape(match.group(1)) if match else text[:200]
