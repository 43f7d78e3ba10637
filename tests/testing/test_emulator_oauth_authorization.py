"""``/authorize``, sign-in and consent (``oauth/authorization.py``), through real HTTP."""

from __future__ import annotations

import re

import jwt
import pytest
import requests

from intacct_connect.testing.emulator import EmulatorError, EmulatorServer
from tests.testing.conftest import (
    REDIRECT_URI,
    authorize_url,
    exchange,
    get_code,
    pkce,
    query_of,
    token_request,
    vendor_status,
)


def open_sign_in(
    emu: EmulatorServer, session: requests.Session, challenge: str | None = None
) -> tuple[requests.Response, str]:
    """The sign-in page of a new authorize request, and its ``request_id``."""
    page = session.get(authorize_url(emu, challenge or pkce()[1]), timeout=5)
    request_id = re.search(r'name="request_id" value="([^"]+)"', page.text)
    assert request_id is not None
    return page, request_id.group(1)


def sign_in(
    emu: EmulatorServer,
    session: requests.Session,
    request_id: str,
    company: str,
    user: str,
    password: str,
    **extra: str,
) -> requests.Response:
    """Post the sign-in form; the answer is the consent page (or the sign-in page again)."""
    form = {"request_id": request_id, "company_id": company, "user_id": user, "password": password}
    return session.post(f"{emu.base_url}/oauth2/signin", data={**form, **extra}, timeout=5)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"client_id": "nobody.app.sage.com"}, "Unknown client_id"),
        ({"redirect_uri": "https://evil.example.com/cb/"}, "does not exactly match"),
        ({"redirect_uri": REDIRECT_URI + "extra/"}, "does not exactly match"),
        ({"redirect_uri": REDIRECT_URI.upper()}, "does not exactly match"),
        ({"redirect_uri": None}, "redirect_uri parameter is required"),
    ],
)
def test_authorize_rejects_unknown_client_or_redirect_with_an_error_page(
    intacct_emulator: EmulatorServer, overrides: dict[str, str | None], message: str
) -> None:
    response = requests.get(
        authorize_url(intacct_emulator, pkce()[1], **overrides), allow_redirects=False, timeout=5
    )
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert response.headers["Content-Type"].startswith("text/html")
    assert message in response.text


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"response_type": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),  # defaults to plain
        ({"code_challenge": "too-short"}, "invalid_request"),
    ],
)
def test_authorize_redirects_request_errors_with_state(
    intacct_emulator: EmulatorServer, overrides: dict[str, str | None], error: str
) -> None:
    response = requests.get(
        authorize_url(intacct_emulator, pkce()[1], **overrides), allow_redirects=False, timeout=5
    )
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(REDIRECT_URI)
    params = query_of(location)
    assert params["error"] == error
    assert params["state"] == "state-123"
    assert "code" not in params


def test_sign_in_and_consent_pages_have_the_documented_fields(
    intacct_emulator: EmulatorServer,
) -> None:
    session = requests.Session()
    page, request_id = open_sign_in(intacct_emulator, session)
    assert page.status_code == 200
    for name in ("company_id", "user_id", "password", "request_id"):
        assert f'name="{name}"' in page.text
    consent = sign_in(intacct_emulator, session, request_id, "DEMO-CO", "jane", "jane")
    assert consent.status_code == 200
    assert 'name="approve"' in consent.text
    assert 'name="deny"' in consent.text
    assert '<select name="entity">' in consent.text  # DEMO-CO is multi-entity
    assert 'value="EAST"' in consent.text
    assert 'value="WEST"' in consent.text
    assert "DEMO-SENDER" not in consent.text  # sender already authorized


def test_single_entity_company_has_no_entity_choice(intacct_emulator: EmulatorServer) -> None:
    session = requests.Session()
    _page, request_id = open_sign_in(intacct_emulator, session)
    consent = sign_in(intacct_emulator, session, request_id, "SECOND-CO", "admin", "admin")
    assert 'name="entity"' not in consent.text
    assert "DEMO-SENDER" in consent.text  # the admin is told approving authorizes the sender


def test_wrong_password_shows_the_sign_in_page_again(intacct_emulator: EmulatorServer) -> None:
    with pytest.raises(EmulatorError, match="Invalid company ID, user ID or password"):
        intacct_emulator.complete_authorization(
            authorize_url(intacct_emulator, pkce()[1]), "DEMO-CO", "admin", "wrong"
        )
    with pytest.raises(EmulatorError, match="Invalid company ID"):
        intacct_emulator.complete_authorization(
            authorize_url(intacct_emulator, pkce()[1]), "NO-SUCH-CO", "admin", "admin"
        )


def test_web_services_users_cannot_sign_in(intacct_emulator: EmulatorServer) -> None:
    intacct_emulator.seed_user("DEMO-CO", "ws_user", "pw", web_services=True)
    with pytest.raises(EmulatorError, match="Web Services users"):
        intacct_emulator.complete_authorization(
            authorize_url(intacct_emulator, pkce()[1]), "DEMO-CO", "ws_user", "pw"
        )


def test_unknown_request_id_is_an_error_page(intacct_emulator: EmulatorServer) -> None:
    response = requests.post(
        f"{intacct_emulator.base_url}/oauth2/signin",
        data={
            "request_id": "forged",
            "company_id": "DEMO-CO",
            "user_id": "admin",
            "password": "admin",
        },
        timeout=5,
    )
    assert response.status_code == 400
    response = requests.post(
        f"{intacct_emulator.base_url}/oauth2/consent",
        data={"request_id": "forged", "approve": "1"},
        allow_redirects=False,
        timeout=5,
    )
    assert response.status_code == 400


def test_deny_redirects_with_access_denied_and_state(intacct_emulator: EmulatorServer) -> None:
    location = intacct_emulator.complete_authorization(
        authorize_url(intacct_emulator, pkce()[1]), "DEMO-CO", "jane", "jane", approve=False
    )
    params = query_of(location)
    assert params["error"] == "access_denied"
    assert params["state"] == "state-123"
    assert "code" not in params


def test_alias_authorize_url_works(intacct_emulator: EmulatorServer) -> None:
    verifier, challenge = pkce()
    url = authorize_url(intacct_emulator, challenge).replace(
        "/ia/api/v1/oauth2/authorize", "/ia/authorize"
    )
    location = intacct_emulator.complete_authorization(url, "DEMO-CO", "admin", "admin")
    body = exchange(intacct_emulator, query_of(location)["code"], verifier)
    assert body["access_token"]


def test_top_level_consent_has_null_entity(intacct_emulator: EmulatorServer) -> None:
    code, verifier = get_code(intacct_emulator)
    claims = jwt.decode(
        exchange(intacct_emulator, code, verifier)["access_token"],
        options={"verify_signature": False},
    )
    assert claims["entityId"] is None


def test_entity_can_be_chosen_on_the_sign_in_form(intacct_emulator: EmulatorServer) -> None:
    verifier, challenge = pkce()
    session = requests.Session()
    page, request_id = open_sign_in(intacct_emulator, session, challenge)
    assert 'name="entity"' in page.text
    consent = sign_in(
        intacct_emulator, session, request_id, "demo-co", "admin", "admin", entity="WEST"
    )
    assert '<option value="WEST" selected>' in consent.text
    approved = session.post(
        f"{intacct_emulator.base_url}/oauth2/consent",
        data={"request_id": request_id, "approve": "1"},
        allow_redirects=False,
        timeout=5,
    )
    code = query_of(approved.headers["Location"])["code"]
    claims = jwt.decode(
        exchange(intacct_emulator, code, verifier)["access_token"],
        options={"verify_signature": False},
    )
    assert (claims["cnyId"], claims["entityId"]) == ("DEMO-CO", "WEST")
    # the request id is single use
    again = session.post(
        f"{intacct_emulator.base_url}/oauth2/consent",
        data={"request_id": request_id, "approve": "1"},
        allow_redirects=False,
        timeout=5,
    )
    assert again.status_code == 400


def test_plain_user_cannot_approve_an_unauthorized_sender(
    intacct_emulator: EmulatorServer,
) -> None:
    location = intacct_emulator.complete_authorization(
        authorize_url(intacct_emulator, pkce()[1]), "SECOND-CO", "bob", "bob"
    )
    params = query_of(location)
    assert params["error"] == "access_denied"
    assert "DEMO-SENDER" in params["error_description"]
    assert params["state"] == "state-123"


def test_sender_not_authorized_blocks_api_calls_until_an_admin_approves(
    intacct_emulator: EmulatorServer,
) -> None:
    intacct_emulator.authorize_client("SECOND-CO", "admin")
    body = token_request(
        intacct_emulator, grant_type="client_credentials", username="admin@SECOND-CO"
    ).json()
    blocked = vendor_status(intacct_emulator, body["access_token"])
    assert blocked.status_code == 403
    assert blocked.json()["ia::error"]["code"] == "GW-0011"
    assert "DEMO-SENDER" in blocked.json()["ia::error"]["details"]["description"]
    # the admin consents: that authorizes the sender ID
    code, verifier = get_code(intacct_emulator, company="SECOND-CO")
    tokens = exchange(intacct_emulator, code, verifier)
    assert vendor_status(intacct_emulator, tokens["access_token"]).status_code == 200
    assert vendor_status(intacct_emulator, body["access_token"]).status_code == 200
    # now bob may consent too
    code, verifier = get_code(intacct_emulator, company="SECOND-CO", user="bob")
    assert exchange(intacct_emulator, code, verifier)["access_token"]
