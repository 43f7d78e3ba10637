"""End to end through real HTTP: a live Django server, a browser-like ``requests.Session``
and the Intacct emulator (issue 4's verification)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection as db_connection

from intacct_connect.models import Connection, ConnectionStatus, Token

pytestmark = pytest.mark.django_db(transaction=True)

CSRF_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


class Browser:
    """A cookie-keeping HTTP client that fills Django forms like a browser."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = requests.Session()

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        url = path if path.startswith("http") else self.base + path
        return self.http.get(url, allow_redirects=False, timeout=10, **kwargs)

    def post_form(
        self, page: str, action: str, data: dict[str, str] | None = None
    ) -> requests.Response:
        """Load ``page``, take its CSRF token, and POST ``data`` to ``action``."""
        html = self.get(page).text
        match = CSRF_RE.search(html)
        assert match, f"no CSRF token on {page}"
        form = {"csrfmiddlewaretoken": match.group(1), **(data or {})}
        return self.http.post(
            self.base + action,
            data=form,
            allow_redirects=False,
            timeout=10,
            headers={"Referer": self.base + page},
        )

    def login(self, username: str, password: str) -> None:
        response = self.post_form(
            "/admin/login/",
            "/admin/login/",
            {"username": username, "password": password, "next": "/intacct/"},
        )
        assert response.status_code == 302, response.text[:500]


def make_user(django_user_model: Any, name: str, **extra: Any) -> AbstractBaseUser:
    # Tenant users sign in through Django's own login form (the admin's, in the test site).
    user: AbstractBaseUser = django_user_model.objects.create_user(
        name, password=f"{name}-pw", is_staff=True, **extra
    )
    return user


@pytest.fixture
def site(live_server: Any, intacct_emulator: Any, settings: Any) -> Any:
    """The live server, registered at the emulator as this application's redirect URI."""
    redirect_uri = f"{live_server.url}/intacct/callback/"
    intacct_emulator.add_redirect_uri(redirect_uri)
    settings.INTACCT_CONNECT = {
        **settings.INTACCT_CONNECT,
        **intacct_emulator.connect_settings(redirect_uri=redirect_uri),
    }
    return live_server


def test_connect_approve_disconnect_end_to_end(
    site: Any, intacct_emulator: Any, django_user_model: Any
) -> None:
    emu = intacct_emulator
    make_user(django_user_model, "alice")
    make_user(django_user_model, "bob")
    django_user_model.objects.create_superuser("root", password="root-pw")

    # 1. Alice signs in and presses "Connect" (POST with CSRF).
    alice = Browser(site.url)
    alice.login("alice", "alice-pw")
    response = alice.post_form("/intacct/", "/intacct/connect/", {"entity": ""})
    assert response.status_code == 303
    authorize_url = response.headers["Location"]
    assert authorize_url.startswith(emu.authorize_url + "?")
    query = parse_qs(urlsplit(authorize_url).query)
    assert query["redirect_uri"] == [f"{site.url}/intacct/callback/"]
    assert query["code_challenge_method"] == ["S256"]

    # 2. At Intacct (the emulator): sign in and approve.
    location = emu.complete_authorization(authorize_url, "DEMO-CO", "admin", "admin")
    assert location.startswith(f"{site.url}/intacct/callback/?")
    callback_query = parse_qs(urlsplit(location).query)
    code, state = callback_query["code"][0], callback_query["state"][0]

    # 3. Back to the site: a clean 303 with no-store and no-referrer.
    response = alice.get(location)
    assert response.status_code == 303
    assert response.headers["Location"] == "/intacct/"
    assert "no-store" in response.headers["Cache-Control"]
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert code not in response.headers["Location"]
    assert state not in response.headers["Location"]
    page = alice.get("/intacct/").text
    assert "DEMO-CO" in page
    assert "Active" in page
    assert emu.token_requests("authorization_code") == 1

    # 4. An active connection whose token columns are only ciphertext.
    conn = Connection.objects.get()
    assert conn.status == ConnectionStatus.ACTIVE
    assert conn.company_id == "DEMO-CO"
    token = Token.objects.get(pk=conn.pk)
    access, refresh = token.access_token, str(token.refresh_token)
    assert access
    assert refresh
    with db_connection.cursor() as cursor:
        cursor.execute("SELECT * FROM intacct_connect_token")
        dump = repr(cursor.fetchall())
        cursor.execute("SELECT * FROM intacct_connect_oauthflow")
        dump += repr(cursor.fetchall())
    for secret in (access, refresh, code, state, access.split(".")[1]):
        assert secret not in dump
    assert dump.count("v1:") >= 3  # two tokens and the verifier, encrypted
    assert access not in page
    assert refresh not in page

    # 5. The admin pages show no token (neither value nor ciphertext).
    admin = Browser(site.url)
    admin.login("root", "root-pw")
    ciphertexts = list(Token.objects.values_list("access_token", "refresh_token").get())
    for path in (
        "/admin/intacct_connect/connection/",
        f"/admin/intacct_connect/connection/{conn.pk}/change/",
        f"/admin/intacct_connect/token/{conn.pk}/change/",
    ):
        response = admin.get(path)
        assert response.status_code == 200, path
        for secret in (access, refresh, *ciphertexts):
            assert secret not in response.text
        assert "v1:" not in response.text

    # 6. Another tenant sees none of it: its page lists nothing and the actions are 404.
    bob = Browser(site.url)
    bob.login("bob", "bob-pw")
    assert "DEMO-CO" not in bob.get("/intacct/").text
    for action in ("disconnect", "reconnect"):
        response = bob.post_form("/intacct/", f"/intacct/{conn.pk}/{action}/")
        assert response.status_code == 404
    assert Connection.objects.get().status == ConnectionStatus.ACTIVE

    # 7. Alice disconnects: revoked at Intacct, whose API then rejects the token.
    api = f"{emu.base_url}/objects/company-config/entity"
    bearer = {"Authorization": f"Bearer {access}"}
    assert requests.get(api, headers=bearer, timeout=10).status_code == 200
    response = alice.post_form("/intacct/", f"/intacct/{conn.pk}/disconnect/")
    assert response.status_code == 303
    rejected = requests.get(api, headers=bearer, timeout=10)
    assert rejected.status_code == 401
    assert "REST-2102" in rejected.text
    conn.refresh_from_db()
    assert conn.status == ConnectionStatus.REVOKED
    assert not Token.objects.exists()
    assert emu.unexpected_errors() == 0


def test_tenant_pages_end_to_end(site: Any, intacct_emulator: Any, django_user_model: Any) -> None:
    """Issue 10 over real HTTP: header, stylesheet, company name read from Intacct, the
    default entity chosen from Intacct's list, disconnect with its confirmation, and the
    empty state with the history afterwards."""
    emu = intacct_emulator
    make_user(django_user_model, "alice", first_name="Alice", last_name="Archer")
    alice = Browser(site.url)
    alice.login("alice", "alice-pw")

    page = alice.get("/intacct/").text
    assert re.search(r"Signed in as\s*<strong>Alice Archer</strong>", page)
    assert "No company is connected. Connect one to" in page
    assert 'name="entity"' not in page
    css = re.search(r'<link rel="stylesheet" href="([^"]+)"', page)
    assert css
    sheet = alice.get(css.group(1))
    assert sheet.status_code == 200
    assert "text/css" in sheet.headers["Content-Type"]
    assert ".intacct-table" in sheet.text

    # Connect: the company name comes from Intacct's company preferences.
    response = alice.post_form("/intacct/", "/intacct/connect/")
    location = emu.complete_authorization(response.headers["Location"], "DEMO-CO", "admin", "admin")
    assert alice.get(location).status_code == 303
    conn = Connection.objects.get()
    assert conn.company_name == "Demo Company"
    page = alice.get("/intacct/").text
    assert "Connected Demo Company." in page
    assert "Top level" in page

    # The default entity, chosen from the entities Intacct lists.
    entity_page = f"/intacct/{conn.pk}/entity/"
    assert f'href="{entity_page}"' in page
    html = alice.get(entity_page).text
    assert re.findall(r'<option value="([^"]*)"', html) == ["", "EAST", "WEST"]
    refused = alice.post_form(entity_page, entity_page, {"entity": "NORTH"})
    assert refused.status_code == 400
    assert "not an active entity" in refused.text
    conn.refresh_from_db()
    assert conn.entity_id == ""
    response = alice.post_form(entity_page, entity_page, {"entity": "EAST"})
    assert response.status_code == 303
    conn.refresh_from_db()
    assert conn.entity_id == "EAST"

    # Disconnect: the list links to a confirmation page whose form does it.
    confirm = f"/intacct/{conn.pk}/disconnect/"
    assert f'href="{confirm}"' in alice.get("/intacct/").text
    html = alice.get(confirm).text
    assert "revoke this site's access at Intacct" in html
    assert Connection.objects.get().status == ConnectionStatus.ACTIVE
    response = alice.post_form(confirm, confirm)
    assert response.status_code == 303
    conn.refresh_from_db()
    assert conn.status == ConnectionStatus.REVOKED
    assert emu.grants("DEMO-CO")[0]["status"] == "revoked"

    page = alice.get("/intacct/").text
    assert "Disconnected DEMO-CO." in page
    assert "No company is connected. Connect one to" in page
    history = page.partition('<details class="intacct-history">')[2]
    assert f'id="connection-{conn.pk}"' in history
    assert emu.unexpected_errors() == 0
