from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.contrib.auth.models import AbstractBaseUser
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from intacct_connect.models import Connection, ConnectionStatus, EventKind, OAuthFlow, Token
from tests import factories
from tests.settings import INTACCT_CONNECT
from tests.test_flows import OPEN_REDIRECTS

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def emu(emulator: Any) -> Any:
    """Every test here runs against the emulator: bad input must never reach its token
    endpoint (``emu.token_requests()`` stays 0)."""
    return emulator


CONNECT = "/intacct/connect/"
CALLBACK = "/intacct/callback/"
LIST = "/intacct/"


@pytest.fixture
def alice(django_user_model: Any) -> AbstractBaseUser:
    return django_user_model.objects.create_user("alice", password="pw")  # type: ignore[no-any-return]


@pytest.fixture
def bob(django_user_model: Any) -> AbstractBaseUser:
    return django_user_model.objects.create_user("bob", password="pw")  # type: ignore[no-any-return]


def logged_in(user: AbstractBaseUser, *, csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=csrf)
    client.force_login(user)  # type: ignore[arg-type]  # stub wants the concrete User
    return client


def tenant(user: AbstractBaseUser) -> str:
    return f"user:{user.pk}"


def start_flow(client: Client, **data: str) -> tuple[str, dict[str, list[str]]]:
    """POST connect; returns (state, authorize query)."""
    response = client.post(CONNECT, data)
    assert response.status_code == 303
    query = parse_qs(urlsplit(response["Location"]).query)
    return query["state"][0], query


def assert_clean_error(response: Any, status: int, *secrets: str, emu: Any = None) -> None:
    assert response.status_code == status
    if emu is not None:
        assert emu.token_requests() == 0
    assert "no-store" in response["Cache-Control"]
    assert response["Referrer-Policy"] == "no-referrer"
    body = response.content.decode()
    assert "Traceback" not in body
    for secret in secrets:
        assert secret not in body
    assert not re.search(r"(src|href)=\"https?://", body)  # no external assets or links


# --- connect ------------------------------------------------------------------------------


def test_connect_requires_post(alice: AbstractBaseUser) -> None:
    assert logged_in(alice).get(CONNECT).status_code == 405


def test_connect_requires_csrf(alice: AbstractBaseUser) -> None:
    client = logged_in(alice, csrf=True)
    assert client.post(CONNECT).status_code == 403
    assert not OAuthFlow.objects.exists()


def test_connect_with_csrf_token_redirects_to_intacct(alice: AbstractBaseUser, emu: Any) -> None:
    client = logged_in(alice, csrf=True)
    page = client.get(LIST)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())
    assert token
    response = client.post(CONNECT, {"csrfmiddlewaretoken": token.group(1), "entity": "EAST"})
    assert response.status_code == 303
    location = urlsplit(response["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == emu.authorize_url
    query = parse_qs(location.query)
    assert query["redirect_uri"] == [INTACCT_CONNECT["REDIRECT_URI"]]
    assert query["code_challenge_method"] == ["S256"]
    assert query["response_type"] == ["code"]
    assert "no-store" in response["Cache-Control"]
    flow = OAuthFlow.objects.get()
    assert flow.entity_id == "EAST"
    assert flow.tenant_key == tenant(alice)


def test_connect_anonymous_goes_to_login() -> None:
    response = Client().post(CONNECT)
    assert response.status_code == 302
    assert "/login/" in response["Location"]
    assert not OAuthFlow.objects.exists()


def test_connect_creates_session_when_missing(alice: AbstractBaseUser, settings: Any) -> None:
    # A custom adapter may allow tenants without a login session; the flow still needs one.
    settings.INTACCT_CONNECT = {
        **settings.INTACCT_CONNECT,
        "ADAPTER": "tests.test_views.AnonymousTenantAdapter",
    }
    client = Client()
    response = client.post(CONNECT)
    assert response.status_code == 303
    assert client.cookies.get("sessionid")
    flow = OAuthFlow.objects.get()
    import hashlib

    assert (
        flow.session_key_hash
        == hashlib.sha256(client.cookies["sessionid"].value.encode()).hexdigest()
    )


class AnonymousTenantAdapter:
    def get_tenant_key(self, request: Any) -> str:
        return "kiosk"

    def can_connect(self, request: Any) -> bool:
        return True

    def can_view(self, request: Any, connection: Any) -> bool:
        return True

    def get_connections_url(self, request: Any) -> str:
        return reverse("intacct_connect:connections")


def test_connect_refused_by_adapter(alice: AbstractBaseUser, settings: Any) -> None:
    settings.INTACCT_CONNECT = {
        **settings.INTACCT_CONNECT,
        "ADAPTER": "tests.test_views.ReadOnlyAdapter",
    }
    assert logged_in(alice).post(CONNECT).status_code == 403


class ReadOnlyAdapter(AnonymousTenantAdapter):
    def get_tenant_key(self, request: Any) -> str:
        return f"user:{request.user.pk}"

    def can_connect(self, request: Any) -> bool:
        return False

    def can_reconnect(self, request: Any, connection: Any) -> bool:
        return False

    def can_disconnect(self, request: Any, connection: Any) -> bool:
        return False


def test_entity_too_long_is_400(alice: AbstractBaseUser) -> None:
    response = logged_in(alice).post(CONNECT, {"entity": "E" * 101})
    assert response.status_code == 400
    assert not OAuthFlow.objects.exists()


FORGED_HOSTS = [
    "evil.com",
    "evil.com:443",
    "app.example.com.evil.com",
    "evil.com:80",
    "127.0.0.1:8000",
    "localhost",
    "[::1]",
    "xn--evil-9na.com",
    "attacker.example",
    "app.example.com:444",
]


@pytest.mark.parametrize("host", FORGED_HOSTS)
@pytest.mark.parametrize("header", ["HTTP_HOST", "HTTP_X_FORWARDED_HOST"])
def test_forged_host_never_changes_redirect_uri(
    alice: AbstractBaseUser, settings: Any, header: str, host: str
) -> None:
    settings.ALLOWED_HOSTS = ["*"]
    settings.USE_X_FORWARDED_HOST = True
    extra: dict[str, Any] = {header: host}
    response = logged_in(alice).post(CONNECT, **extra)
    assert response.status_code == 303
    query = parse_qs(urlsplit(response["Location"]).query)
    assert query["redirect_uri"] == [INTACCT_CONNECT["REDIRECT_URI"]]
    assert host not in response["Location"]
    assert OAuthFlow.objects.get().redirect_uri == INTACCT_CONNECT["REDIRECT_URI"]


@pytest.mark.parametrize("payload", OPEN_REDIRECTS)
def test_open_redirect_next_is_dropped_at_start(alice: AbstractBaseUser, payload: str) -> None:
    response = logged_in(alice).post(CONNECT, {"next": payload})
    assert response.status_code == 303
    assert OAuthFlow.objects.get().next_url == ""


def test_safe_next_is_kept(alice: AbstractBaseUser) -> None:
    logged_in(alice).post(CONNECT + "?next=/dashboard/")
    assert OAuthFlow.objects.get().next_url == "/dashboard/"


# --- tenant page, reconnect, disconnect -----------------------------------------------------


def test_list_shows_only_own_connections_without_tokens(
    alice: AbstractBaseUser, bob: AbstractBaseUser
) -> None:
    mine = factories.token_set(company="MINE")
    factories.connection(tenant=tenant(alice), company="MINE", tokens=mine)
    factories.connection(tenant=tenant(bob), company="THEIRS")
    response = logged_in(alice).get(LIST)
    body = response.content.decode()
    assert response.status_code == 200
    assert "MINE" in body
    assert "THEIRS" not in body
    assert mine.access_token not in body
    assert str(mine.refresh_token) not in body
    assert "v1:" not in body  # no ciphertext either
    assert reverse("intacct_connect:connect") in body
    assert "DEMO-SENDER" in body


def test_list_anonymous_redirects_to_login() -> None:
    response = Client().get(LIST)
    assert response.status_code == 302
    assert "/login/" in response["Location"]


@pytest.mark.parametrize("action", ["reconnect", "disconnect"])
def test_other_tenants_connection_is_404(
    alice: AbstractBaseUser, bob: AbstractBaseUser, action: str
) -> None:
    theirs = factories.connection(tenant=tenant(bob))
    url = reverse(f"intacct_connect:{action}", args=[theirs.pk])
    assert logged_in(alice).post(url).status_code == 404
    assert Client().post(url).status_code == 404
    assert (
        logged_in(alice).post(reverse(f"intacct_connect:{action}", args=[99999])).status_code == 404
    )
    theirs.refresh_from_db()
    assert theirs.status == ConnectionStatus.ACTIVE
    assert Token.objects.filter(pk=theirs.pk).exists()
    assert not OAuthFlow.objects.exists()


def test_reconnect_requires_post(alice: AbstractBaseUser) -> None:
    mine = factories.connection(tenant=tenant(alice))
    assert (
        logged_in(alice).get(reverse("intacct_connect:reconnect", args=[mine.pk])).status_code
        == 405
    )
    assert not OAuthFlow.objects.exists()


@pytest.mark.parametrize("method", ["put", "delete", "patch"])
def test_disconnect_refuses_other_methods(alice: AbstractBaseUser, method: str) -> None:
    mine = factories.connection(tenant=tenant(alice))
    url = reverse("intacct_connect:disconnect", args=[mine.pk])
    assert getattr(logged_in(alice), method)(url).status_code == 405
    mine.refresh_from_db()
    assert mine.status == ConnectionStatus.ACTIVE


@pytest.mark.parametrize("action", ["reconnect", "disconnect"])
def test_actions_refused_by_adapter_are_403(
    alice: AbstractBaseUser, settings: Any, action: str
) -> None:
    settings.INTACCT_CONNECT = {
        **settings.INTACCT_CONNECT,
        "ADAPTER": "tests.test_views.ReadOnlyAdapter",
    }
    mine = factories.connection(tenant=tenant(alice))
    assert (
        logged_in(alice).post(reverse(f"intacct_connect:{action}", args=[mine.pk])).status_code
        == 403
    )


def test_reconnect_starts_flow_bound_to_connection(alice: AbstractBaseUser) -> None:
    mine = factories.connection(tenant=tenant(alice), entity="EAST")
    response = logged_in(alice).post(reverse("intacct_connect:reconnect", args=[mine.pk]))
    assert response.status_code == 303
    flow = OAuthFlow.objects.get()
    assert flow.reconnect_id == mine.pk
    assert flow.entity_id == "EAST"


# --- callback: bad input never reaches the token endpoint -----------------------------------


def test_callback_without_state_is_400(alice: AbstractBaseUser, emu: Any) -> None:
    response = logged_in(alice).get(CALLBACK, {"code": "some-code"})
    assert_clean_error(response, 400, "some-code", emu=emu)


def test_callback_unknown_state_is_400(alice: AbstractBaseUser, emu: Any) -> None:
    logged_in(alice).post(CONNECT)
    response = logged_in(alice).get(CALLBACK, {"code": "c0de", "state": "unknown-state-value"})
    assert_clean_error(response, 400, "c0de", "unknown-state-value", emu=emu)


def test_callback_expired_state_is_400(alice: AbstractBaseUser, emu: Any) -> None:
    client = logged_in(alice)
    state, _ = start_flow(client)
    with time_machine.travel(timezone.now() + timedelta(minutes=11)):
        response = client.get(CALLBACK, {"code": "c0de", "state": state})
    assert_clean_error(response, 400, state, "c0de", emu=emu)
    assert OAuthFlow.objects.get().consumed_at is None


def test_callback_other_session_same_user_is_400(alice: AbstractBaseUser, emu: Any) -> None:
    state, _ = start_flow(logged_in(alice))
    response = logged_in(alice).get(CALLBACK, {"code": "c0de", "state": state})  # new session
    assert_clean_error(response, 400, state, emu=emu)


def test_callback_other_user_is_400(
    alice: AbstractBaseUser, bob: AbstractBaseUser, emu: Any
) -> None:
    state, _ = start_flow(logged_in(alice))
    response = logged_in(bob).get(CALLBACK, {"code": "c0de", "state": state})
    assert_clean_error(response, 400, state, emu=emu)


def test_callback_anonymous_is_400(alice: AbstractBaseUser, emu: Any) -> None:
    state, _ = start_flow(logged_in(alice))
    assert_clean_error(Client().get(CALLBACK, {"code": "c", "state": state}), 400, state, emu=emu)


def test_callback_other_tenant_same_session_is_400(
    alice: AbstractBaseUser, settings: Any, emu: Any
) -> None:
    client = logged_in(alice)
    state, _ = start_flow(client)
    settings.INTACCT_CONNECT = {
        **settings.INTACCT_CONNECT,
        "ADAPTER": "tests.test_views.OtherTenantAdapter",
    }
    assert_clean_error(client.get(CALLBACK, {"code": "c", "state": state}), 400, state, emu=emu)


class OtherTenantAdapter(ReadOnlyAdapter):
    def get_tenant_key(self, request: Any) -> str:
        return "team:elsewhere"


def test_callback_error_param_is_friendly(alice: AbstractBaseUser, emu: Any) -> None:
    client = logged_in(alice)
    state, _ = start_flow(client)
    response = client.get(
        CALLBACK,
        {"error": "access_denied", "error_description": "<b>user said no</b>", "state": state},
    )
    assert_clean_error(response, 403, state, "<b>user said no</b>", emu=emu)
    assert "not authorised" in response.content.decode()
    assert OAuthFlow.objects.get().consumed_at is not None  # cannot be used afterwards
    again = client.get(CALLBACK, {"code": "c", "state": state})
    assert_clean_error(again, 400, state, emu=emu)


def test_callback_error_without_valid_state(alice: AbstractBaseUser, emu: Any) -> None:
    response = logged_in(alice).get(CALLBACK, {"error": "server_error", "state": "zzz"})
    assert_clean_error(response, 403, "zzz", emu=emu)


def test_callback_sender_id_error_shows_quickstart_advice(
    alice: AbstractBaseUser, emu: Any
) -> None:
    client = logged_in(alice)
    state, _ = start_flow(client)
    response = client.get(
        CALLBACK,
        {
            "error": "access_denied",
            "error_description": "Sender ID DEMO-SENDER is not authorized for company ACME",
            "state": state,
        },
    )
    assert_clean_error(response, 403, state, emu=emu)
    body = response.content.decode()
    assert "DEMO-SENDER" in body
    assert "Company Security tab" in body
    assert "admin user" in body


def test_callback_reflects_no_markup_from_error_code(alice: AbstractBaseUser, emu: Any) -> None:
    response = logged_in(alice).get(CALLBACK, {"error": "<script>alert(1)</script>"})
    assert_clean_error(response, 403, emu=emu)
    assert "<script>alert(1)" not in response.content.decode()
    assert "alert(1)" not in response.content.decode()


# --- callback: the real flow against the emulator --------------------------------------------


def authorize(
    client: Client,
    emu: Any,
    *,
    company: str = "DEMO-CO",
    user: str = "admin",
    password: str = "admin",
    approve: bool = True,
    url: str = CONNECT,
    **data: str,
) -> str:
    """POST connect (or reconnect), sign in and consent at the emulator; returns the
    callback path with its query, as the browser would request it."""
    response = client.post(url, data)
    assert response.status_code == 303
    location = emu.complete_authorization(
        response["Location"], company, user, password, approve=approve
    )
    parts = urlsplit(location)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == INTACCT_CONNECT["REDIRECT_URI"]
    return f"{parts.path}?{parts.query}"


def test_full_connect_creates_active_connection(alice: AbstractBaseUser, emu: Any) -> None:
    client = logged_in(alice)
    callback = authorize(client, emu, entity="EAST", next="/dashboard/")
    response = client.get(callback)
    assert response.status_code == 303
    assert response["Location"] == "/dashboard/"
    assert "no-store" in response["Cache-Control"]
    assert response["Referrer-Policy"] == "no-referrer"
    assert emu.token_requests("authorization_code") == 1
    conn = Connection.objects.get()
    assert (conn.tenant_key, conn.company_id, conn.intacct_user_id) == (
        tenant(alice),
        "DEMO-CO",
        "admin",
    )
    assert conn.status == ConnectionStatus.ACTIVE
    assert conn.entity_id == "EAST"
    assert conn.connected_by == alice
    assert conn.environment == "production"
    assert conn.next_refresh_at is not None
    token = Token.objects.get(pk=conn.pk)
    assert token.access_token.count(".") == 2
    assert token.refresh_token
    assert token.version == 1
    assert token.fingerprint
    assert conn.events.filter(kind=EventKind.CONNECTED).count() == 1
    page = client.get(LIST).content.decode()
    assert "Connected Demo Company." in page
    assert "DEMO-CO" in page
    assert token.access_token not in page


def test_callback_replayed_is_400_and_exchanges_once(alice: AbstractBaseUser, emu: Any) -> None:
    client = logged_in(alice)
    callback = authorize(client, emu)
    assert client.get(callback).status_code == 303
    again = client.get(callback)
    assert again.status_code == 400
    assert emu.token_requests() == 1
    assert Connection.objects.count() == 1


def test_callback_code_from_another_flow_is_refused(alice: AbstractBaseUser, emu: Any) -> None:
    """A code injected with the victim's fresh state is exchanged with the victim's
    verifier: PKCE makes Intacct refuse it, and nothing is stored."""
    victim = logged_in(alice)
    attacker_callback = authorize(logged_in(alice), emu, user="jane", password="jane")
    attacker_code = parse_qs(urlsplit(attacker_callback).query)["code"][0]
    state, _ = start_flow(victim)
    response = victim.get(CALLBACK, {"code": attacker_code, "state": state})
    assert response.status_code == 502
    assert emu.token_requests("authorization_code") == 1
    assert not Connection.objects.exists()


def test_denied_at_intacct_is_friendly(alice: AbstractBaseUser, emu: Any) -> None:
    client = logged_in(alice)
    callback = authorize(client, emu, approve=False)
    response = client.get(callback)
    assert_clean_error(response, 403, emu=emu)
    assert "not authorised" in response.content.decode()
    assert not Connection.objects.exists()


def test_sender_id_not_authorised_page(alice: AbstractBaseUser, emu: Any) -> None:
    client = logged_in(alice)
    callback = authorize(client, emu, company="SECOND-CO", user="bob", password="bob")
    response = client.get(callback)
    assert_clean_error(response, 403, emu=emu)
    body = response.content.decode()
    assert "DEMO-SENDER" in body
    assert "Company Security tab" in body
    assert "admin user" in body


def test_sender_id_authorised_by_admin_consent(alice: AbstractBaseUser, emu: Any) -> None:
    client = logged_in(alice)
    callback = authorize(client, emu, company="SECOND-CO", user="admin", password="admin")
    assert client.get(callback).status_code == 303
    assert Connection.objects.get().company_id == "SECOND-CO"


@pytest.mark.parametrize("fault", ["500", "503", "garbage", "drop", "token_lost"])
def test_token_endpoint_failure_is_friendly_502(
    alice: AbstractBaseUser, emu: Any, fault: str
) -> None:
    client = logged_in(alice)
    callback = authorize(client, emu)
    emu.set_fault(fault, endpoint="token")
    response = client.get(callback)
    assert response.status_code == 502
    body = response.content.decode()
    assert "try again" in body
    assert "Traceback" not in body
    assert "no-store" in response["Cache-Control"]
    assert not Connection.objects.exists()
    assert OAuthFlow.objects.get().consumed_at is not None


def test_expired_code_is_friendly_502(alice: AbstractBaseUser, emu: Any) -> None:
    client = logged_in(alice)
    callback = authorize(client, emu)
    emu.advance_time(601)
    response = client.get(callback)
    assert response.status_code == 502
    assert not Connection.objects.exists()


def test_state_expired_after_sign_in_never_exchanges(alice: AbstractBaseUser, emu: Any) -> None:
    client = logged_in(alice)
    callback = authorize(client, emu)
    with time_machine.travel(timezone.now() + timedelta(minutes=11)):
        response = client.get(callback)
    assert_clean_error(response, 400, emu=emu)


def test_forged_hosts_do_not_break_the_exchange(
    alice: AbstractBaseUser, emu: Any, settings: Any
) -> None:
    """Start behind forged Host/X-Forwarded-Host: Intacct still sees the configured URI in the
    authorize and token requests (the emulator refuses any other)."""
    settings.ALLOWED_HOSTS = ["*"]
    settings.USE_X_FORWARDED_HOST = True
    client = logged_in(alice)
    response = client.post(CONNECT, HTTP_HOST="evil.com", HTTP_X_FORWARDED_HOST="evil2.com")
    location = emu.complete_authorization(response["Location"], "DEMO-CO", "admin", "admin")
    assert location.startswith(str(INTACCT_CONNECT["REDIRECT_URI"]) + "?")
    parts = urlsplit(location)
    final = client.get(f"{parts.path}?{parts.query}", HTTP_HOST="evil.com")
    assert final.status_code == 303
    assert Connection.objects.get().status == ConnectionStatus.ACTIVE


def test_reconnect_keeps_identity(alice: AbstractBaseUser, emu: Any) -> None:
    client = logged_in(alice)
    client.get(authorize(client, emu))
    conn = Connection.objects.get()
    first_fp = Token.objects.get(pk=conn.pk).fingerprint
    flows_mark = conn.events.count()
    client.get(authorize(client, emu, url=reverse("intacct_connect:reconnect", args=[conn.pk])))
    again = Connection.objects.get()
    assert again.pk == conn.pk
    token = Token.objects.get(pk=conn.pk)
    assert token.version == 2
    assert token.fingerprint != first_fp
    assert again.events.count() == flows_mark + 1
    assert again.events.first().kind == EventKind.RECONNECTED  # type: ignore[union-attr]
    # Intacct superseded the first grant; our single row holds the newest one.
    statuses = sorted(g["status"] for g in emu.grants("DEMO-CO"))
    assert statuses == ["active", "superseded"]


def test_reconnect_after_needs_reauth_reactivates(alice: AbstractBaseUser, emu: Any) -> None:
    from intacct_connect import flows

    client = logged_in(alice)
    client.get(authorize(client, emu))
    conn = Connection.objects.get()
    flows.mark_needs_reauth(conn, reason="invalid_grant", error_code="invalid_grant")
    client.get(authorize(client, emu, url=reverse("intacct_connect:reconnect", args=[conn.pk])))
    conn.refresh_from_db()
    assert conn.status == ConnectionStatus.ACTIVE
    assert conn.last_error_code == ""


def test_disconnect_revokes_at_intacct(alice: AbstractBaseUser, emu: Any) -> None:
    import requests

    client = logged_in(alice)
    client.get(authorize(client, emu))
    conn = Connection.objects.get()
    access = Token.objects.get(pk=conn.pk).access_token
    api = f"{emu.base_url}/objects/company-config/entity"
    assert (
        requests.get(api, headers={"Authorization": f"Bearer {access}"}, timeout=5).status_code
        == 200
    )
    response = client.post(reverse("intacct_connect:disconnect", args=[conn.pk]))
    assert response.status_code == 303
    conn.refresh_from_db()
    assert conn.status == ConnectionStatus.REVOKED
    assert not Token.objects.filter(pk=conn.pk).exists()
    assert [g["status"] for g in emu.grants("DEMO-CO")] == ["revoked"]
    assert (
        requests.get(api, headers={"Authorization": f"Bearer {access}"}, timeout=5).status_code
        == 401
    )
    assert {e.kind for e in conn.events.all()} >= {EventKind.REVOKED, EventKind.DISCONNECTED}
    assert "Disconnected DEMO-CO." in client.get(LIST).content.decode()


def test_connect_logs_no_secrets_at_debug(
    alice: AbstractBaseUser, emu: Any, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    client = logged_in(alice)
    with caplog.at_level(logging.DEBUG):
        callback = authorize(client, emu)
        client.get(callback)
        conn = Connection.objects.get()
        token = Token.objects.get(pk=conn.pk)
        client.post(reverse("intacct_connect:disconnect", args=[conn.pk]))
    query = parse_qs(urlsplit(callback).query)
    flow = OAuthFlow.objects.get()
    secrets = [
        token.access_token,
        str(token.refresh_token),
        query["code"][0],
        query["state"][0],
        flow.code_verifier,
        INTACCT_CONNECT["CLIENT_SECRET"],
    ]
    records = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert records  # something was logged at DEBUG
    from urllib.parse import quote

    for secret in secrets:
        assert secret not in records
        assert quote(secret, safe="") not in records


@pytest.fixture
def alice_client(alice: AbstractBaseUser) -> Client:
    """Alice signed in once for all the examples of a hypothesis test."""
    return logged_in(alice)


@hsettings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    next_value=st.text(
        alphabet=st.characters(blacklist_categories=("Cs",)),  # type: ignore[arg-type]
        max_size=40,
    )
)
def test_hypothesis_next_through_the_view(alice_client: Client, next_value: str) -> None:
    OAuthFlow.objects.all().delete()
    response = alice_client.post(CONNECT, {"next": next_value.replace("\x00", "")})
    assert response.status_code == 303
    stored = OAuthFlow.objects.get().next_url
    assert stored in ("", next_value.replace("\x00", ""))
    if stored:
        assert stored.startswith("/")
        assert not stored.startswith("//")
        assert "\\" not in stored
        assert not urlsplit(stored).netloc


# --- tenant pages (issue 10): restylable layout, header, statuses, history -----------------


def test_pages_link_the_stylesheet_and_carry_no_inline_style(alice: AbstractBaseUser) -> None:
    factories.connection(tenant=tenant(alice), company="MINE")
    body = logged_in(alice).get(LIST).content.decode()
    assert '<link rel="stylesheet" href="/static/intacct_connect/connections.css">' in body
    assert "<style" not in body
    assert "style=" not in body
    assert "<script" not in body
    assert 'rel="icon" href="data:image/svg+xml,' in body  # no /favicon.ico request
    classes = re.findall(r'class="([^"]+)"', body)
    assert classes
    assert all(name.startswith("intacct-") for value in classes for name in value.split())


def test_stylesheet_is_a_static_file() -> None:
    from django.contrib.staticfiles import finders

    path = finders.find("intacct_connect/connections.css")
    assert path
    with open(path, encoding="utf-8") as css:
        text = css.read()
    assert "@media (max-width: 600px)" in text
    assert ".intacct-table" in text


def test_a_site_template_can_override_the_blocks(
    alice: AbstractBaseUser, settings: Any, tmp_path: Any
) -> None:
    (tmp_path / "intacct_connect").mkdir()
    (tmp_path / "intacct_connect" / "base.html").write_text(
        "<html><body class='site'>SITE LAYOUT {% block content %}{% endblock %}</body></html>"
    )
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [str(tmp_path)]}]
    factories.connection(tenant=tenant(alice), company="MINE")
    body = logged_in(alice).get(LIST).content.decode()
    assert "SITE LAYOUT" in body
    assert "MINE" in body
    assert "connections.css" not in body


def test_header_names_the_user_and_hides_sign_out_without_a_logout_url(
    alice: AbstractBaseUser,
) -> None:
    alice.first_name, alice.last_name = "Alice", "Archer"  # type: ignore[attr-defined]
    alice.save()
    body = logged_in(alice).get(LIST).content.decode()
    assert re.search(r"Signed in as\s*<strong>Alice Archer</strong>", body)
    assert "Sign out" not in body  # tests/urls.py has no 'logout' URL


def test_header_sign_out_posts_to_the_logout_url(alice: AbstractBaseUser, settings: Any) -> None:
    settings.ROOT_URLCONF = "tests.test_views_logout_urls"
    client = logged_in(alice, csrf=True)
    body = client.get(LIST).content.decode()
    form = re.search(r'<form[^>]*method="post" action="/accounts/logout/">(.*?)</form>', body, re.S)
    assert form, body
    assert "Sign out" in form.group(1)
    assert 'name="csrfmiddlewaretoken"' in form.group(1)
    assert re.search(r"Signed in as\s*<strong>alice</strong>", body)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.group(1))
    assert token
    response = client.post("/accounts/logout/", {"csrfmiddlewaretoken": token.group(1)})
    assert response.status_code in (200, 302)
    assert client.get(LIST).status_code == 302  # signed out: back to the login page


def test_adapter_logout_url_is_none_without_the_url() -> None:
    from django.test import RequestFactory

    from intacct_connect.adapter import DefaultIntacctAdapter

    assert DefaultIntacctAdapter().get_logout_url(RequestFactory().get("/")) is None


STATUS_TEXT = {
    "active": "Working: this site can sync with Intacct.",
    "needs_reauth": (
        "Intacct stopped accepting this connection's sign-in. Reconnect to resume syncing."
    ),
    "error": "The last attempt to reach Intacct failed.",
    "superseded": "Intacct keeps only the newest sign-in.",
    "revoked": "Disconnected: its tokens were deleted and nothing syncs.",
}


@pytest.mark.parametrize("status", sorted(STATUS_TEXT))
def test_status_badge_explains_and_gives_the_next_step(
    alice: AbstractBaseUser, status: str
) -> None:
    conn = factories.connection(tenant=tenant(alice), company="MINE", status=status)
    body = logged_in(alice).get(LIST).content.decode()
    assert f'intacct-status intacct-status-{status}"' in body
    assert STATUS_TEXT[status] in body
    for other, text in STATUS_TEXT.items():
        if other != status:
            assert text not in body
    reconnect = reverse("intacct_connect:reconnect", args=[conn.pk])
    assert (f'action="{reconnect}"' in body) == (status != "revoked")


def test_times_carry_their_time_zone(alice: AbstractBaseUser, settings: Any) -> None:
    conn = factories.connection(tenant=tenant(alice), company="MINE")
    Token.objects.filter(pk=conn.pk).update(expires_at=datetime(2026, 12, 2, 14, 5, tzinfo=UTC))
    assert "2026-12-02 14:05 UTC" in logged_in(alice).get(LIST).content.decode()
    settings.TIME_ZONE = "Europe/Paris"
    assert "2026-12-02 15:05 CET" in logged_in(alice).get(LIST).content.decode()


def test_spelling_is_british_throughout(alice: AbstractBaseUser) -> None:
    for status in STATUS_TEXT:
        factories.connection(tenant=tenant(alice), company=f"C-{status}", status=status)
    body = logged_in(alice).get(LIST).content.decode()
    assert "authoris" in body
    assert not re.search(r"authoriz(e|ed|ation)\b", body, re.I)


def test_revoked_and_superseded_go_into_a_collapsed_history(alice: AbstractBaseUser) -> None:
    live = factories.connection(tenant=tenant(alice), company="LIVE")
    gone = factories.connection(tenant=tenant(alice), company="GONE", status="revoked")
    old = factories.connection(tenant=tenant(alice), company="OLD", status="superseded")
    body = logged_in(alice).get(LIST).content.decode()
    table, _, rest = body.partition('<details class="intacct-history">')
    assert rest, "no history"
    history = rest.partition("</details>")[0]
    assert f'id="connection-{live.pk}"' in table
    assert f'id="connection-{gone.pk}"' in history
    assert f'id="connection-{old.pk}"' in history
    assert "<details open" not in body  # collapsed
    assert "Past connections (2)" in history
    # A superseded connection can still be reconnected from the history; a revoked one
    # is connected again with the Connect button.
    assert reverse("intacct_connect:reconnect", args=[old.pk]) in history
    assert reverse("intacct_connect:reconnect", args=[gone.pk]) not in history


def test_empty_state_after_disconnect(alice: AbstractBaseUser) -> None:
    conn = factories.connection(tenant=tenant(alice), company="MINE")
    client = logged_in(alice)
    assert "No company is connected" not in client.get(LIST).content.decode()
    client.post(reverse("intacct_connect:disconnect", args=[conn.pk]))
    body = client.get(LIST).content.decode()
    assert "No company is connected. Connect one to" in body
    assert f'action="{CONNECT}"' in body
    assert "Connect Sage Intacct" in body
    assert "<table" not in body
    assert "Past connection (1)" in body


def test_empty_state_without_permission_to_connect(alice: AbstractBaseUser, settings: Any) -> None:
    settings.INTACCT_CONNECT = {
        **settings.INTACCT_CONNECT,
        "ADAPTER": "tests.test_views.ReadOnlyAdapter",
    }
    body = logged_in(alice).get(LIST).content.decode()
    assert "No company is connected." in body
    assert "Connect one" not in body
    assert f'action="{CONNECT}"' not in body


def test_connect_form_has_no_entity_field_but_a_posted_entity_still_counts(
    alice: AbstractBaseUser,
) -> None:
    client = logged_in(alice)
    body = client.get(LIST).content.decode()
    assert 'name="entity"' not in body
    start_flow(client, entity="WEST")
    assert OAuthFlow.objects.get().entity_id == "WEST"


# --- disconnect asks first -----------------------------------------------------------------


def test_disconnect_get_shows_a_confirmation_and_changes_nothing(
    alice: AbstractBaseUser, emu: Any
) -> None:
    conn = factories.connection(tenant=tenant(alice), company="MINE")
    client = logged_in(alice)
    url = reverse("intacct_connect:disconnect", args=[conn.pk])
    listing = client.get(LIST).content.decode()
    assert f'href="{url}"' in listing  # the list's Disconnect is a link to the confirmation
    assert f'<form class="intacct-inline" method="post" action="{url}"' not in listing
    response = client.get(url)
    assert response.status_code == 200
    body = response.content.decode()
    assert "Disconnect MINE?" in body
    assert "revoke this site's access at Intacct" in body
    assert "delete the tokens" in body
    assert "stop all syncing" in body
    assert re.search(rf'<form method="post" action="{url}"', body)
    assert 'name="csrfmiddlewaretoken"' in body
    assert f'href="{LIST}"' in body  # Cancel
    conn.refresh_from_db()
    assert conn.status == ConnectionStatus.ACTIVE
    assert Token.objects.filter(pk=conn.pk).exists()
    assert not conn.events.exists()


def test_disconnect_confirmation_of_a_superseded_connection_says_nothing_is_revoked(
    alice: AbstractBaseUser,
) -> None:
    conn = factories.connection(tenant=tenant(alice), company="MINE", status="superseded")
    body = logged_in(alice).get(reverse("intacct_connect:disconnect", args=[conn.pk]))
    text = body.content.decode()
    assert "not revoke anything at Intacct" in text
    assert "revoke this site's access" not in text


def test_disconnect_confirmation_is_tenant_scoped_and_permission_checked(
    alice: AbstractBaseUser, bob: AbstractBaseUser, settings: Any
) -> None:
    theirs = factories.connection(tenant=tenant(bob), company="THEIRS")
    url = reverse("intacct_connect:disconnect", args=[theirs.pk])
    assert logged_in(alice).get(url).status_code == 404
    assert Client().get(url).status_code == 404
    settings.INTACCT_CONNECT = {
        **settings.INTACCT_CONNECT,
        "ADAPTER": "tests.test_views.ReadOnlyAdapter",
    }
    mine = factories.connection(tenant=tenant(alice), company="MINE")
    assert (
        logged_in(alice).get(reverse("intacct_connect:disconnect", args=[mine.pk])).status_code
        == 403
    )


def test_disconnect_confirmation_requires_csrf(alice: AbstractBaseUser) -> None:
    conn = factories.connection(tenant=tenant(alice), company="MINE")
    client = logged_in(alice, csrf=True)
    url = reverse("intacct_connect:disconnect", args=[conn.pk])
    assert client.get(url).status_code == 200
    assert client.post(url).status_code == 403
    conn.refresh_from_db()
    assert conn.status == ConnectionStatus.ACTIVE


# --- the default entity, chosen from Intacct's list ----------------------------------------


def connected(client: Client, emu: Any, **data: Any) -> Connection:
    assert client.get(authorize(client, emu, **data)).status_code == 303
    return Connection.objects.get()


def entity_url(conn: Connection) -> str:
    return reverse("intacct_connect:entity", args=[conn.pk])


def test_entity_page_lists_intacct_entities_with_top_level_first(
    alice: AbstractBaseUser, emu: Any
) -> None:
    client = logged_in(alice)
    conn = connected(client, emu)
    assert f'href="{entity_url(conn)}"' in client.get(LIST).content.decode()
    response = client.get(entity_url(conn))
    assert response.status_code == 200
    body = response.content.decode()
    options = re.findall(r'<option value="([^"]*)"', body)
    assert options == ["", "EAST", "WEST"]
    assert "EAST (East Region)" in body
    assert re.search(r'<option value=""\s+selected>Top level</option>', body)


def test_entity_choice_is_saved(alice: AbstractBaseUser, emu: Any) -> None:
    client = logged_in(alice)
    conn = connected(client, emu)
    response = client.post(entity_url(conn), {"entity": "WEST"})
    assert response.status_code == 303
    assert response["Location"] == LIST
    conn.refresh_from_db()
    assert conn.entity_id == "WEST"
    page = client.get(LIST).content.decode()
    assert "now works with WEST by default" in page
    assert re.search(
        r'<option value="WEST"\s+selected>', client.get(entity_url(conn)).content.decode()
    )
    # Back to the top level.
    assert client.post(entity_url(conn), {"entity": ""}).status_code == 303
    conn.refresh_from_db()
    assert conn.entity_id == ""


@pytest.mark.parametrize(
    "value",
    ["NORTH", "east", "E" * 101, "EAST\x00", "<script>alert(1)</script>", "EAST,WEST", " ../WEST"],
)
def test_unknown_or_hostile_entity_is_400_and_changes_nothing(
    alice: AbstractBaseUser, emu: Any, value: str
) -> None:
    client = logged_in(alice)
    conn = connected(client, emu, entity="EAST")
    before = Connection.objects.filter(pk=conn.pk).values().get()
    response = client.post(entity_url(conn), {"entity": value})
    assert response.status_code == 400
    body = response.content.decode()
    assert "Nothing was changed." in body
    assert 'class="intacct-error"' in body
    assert "<script>alert(1)" not in body
    assert Connection.objects.filter(pk=conn.pk).values().get() == before


def test_entity_page_when_intacct_fails_says_so(alice: AbstractBaseUser, emu: Any) -> None:
    client = logged_in(alice)
    conn = connected(client, emu, entity="EAST")
    emu.set_fault("500", endpoint="api")
    response = client.get(entity_url(conn))
    assert response.status_code == 502
    body = response.content.decode()
    assert "could not be read from Intacct" in body
    assert "<select" not in body
    response = client.post(entity_url(conn), {"entity": "WEST"})
    assert response.status_code == 502
    conn.refresh_from_db()
    assert conn.entity_id == "EAST"
    assert "Traceback" not in response.content.decode()


def test_entity_page_of_an_inactive_connection(alice: AbstractBaseUser, emu: Any) -> None:
    client = logged_in(alice)
    conn = connected(client, emu)
    from intacct_connect import flows

    flows.mark_needs_reauth(conn, reason="test")
    calls = emu.api_calls()
    response = client.post(entity_url(conn), {"entity": "WEST"})
    assert response.status_code == 409
    assert "Reconnect it first" in response.content.decode()
    assert emu.api_calls() == calls
    conn.refresh_from_db()
    assert conn.entity_id == ""
    assert f'href="{entity_url(conn)}"' not in client.get(LIST).content.decode()


def test_entity_page_is_tenant_scoped_and_permission_checked(
    alice: AbstractBaseUser, bob: AbstractBaseUser, settings: Any
) -> None:
    theirs = factories.connection(tenant=tenant(bob), company="THEIRS")
    assert logged_in(alice).get(entity_url(theirs)).status_code == 404
    assert logged_in(alice).post(entity_url(theirs), {"entity": ""}).status_code == 404
    robot = factories.connection(
        tenant=tenant(alice), company="ROBOT", grant_type="client_credentials"
    )
    assert logged_in(alice).get(entity_url(robot)).status_code == 403
    assert f'href="{entity_url(robot)}"' not in logged_in(alice).get(LIST).content.decode()
    settings.INTACCT_CONNECT = {
        **settings.INTACCT_CONNECT,
        "ADAPTER": "tests.test_views.ReadOnlyAdapter",
    }
    mine = factories.connection(tenant=tenant(alice), company="MINE")
    assert logged_in(alice).post(entity_url(mine), {"entity": ""}).status_code == 403


# --- the company name, read from Intacct after connecting ----------------------------------


def test_company_name_is_filled_from_intacct(alice: AbstractBaseUser, emu: Any) -> None:
    # The emulator serves GET /objects/company-config/company-preference/setup.
    client = logged_in(alice)
    conn = connected(client, emu)
    assert conn.company_name == "Demo Company"
    page = client.get(LIST).content.decode()
    assert "Connected Demo Company." in page
    assert '<span class="intacct-company-name">Demo Company</span>' in page


def test_company_name_failure_never_breaks_connecting(
    alice: AbstractBaseUser, emu: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # Every REST call fails (the token endpoint still works): logged, connected anyway.
    client = logged_in(alice)
    emu.set_fault("drop", endpoint="api")
    with caplog.at_level("WARNING", logger="intacct_connect.flows"):
        conn = connected(client, emu)
    assert conn.status == ConnectionStatus.ACTIVE
    assert conn.company_name == ""
    warning = [r for r in caplog.records if "company name" in r.getMessage()]
    assert len(warning) == 1
    assert "TransportError" in warning[0].getMessage()
    access = Token.objects.get(pk=conn.pk).access_token
    assert all(access not in r.getMessage() for r in caplog.records)
