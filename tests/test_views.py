from __future__ import annotations

import re
from datetime import timedelta
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
from tests.helpers import make_connection, token_set
from tests.settings import INTACCT_CONNECT
from tests.test_flows import OPEN_REDIRECTS

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def emu(intacct_connect_settings: Any) -> Any:
    """Every test here runs against the emulator: bad input must never reach its token
    endpoint (``emu.token_requests()`` stays 0)."""
    return intacct_connect_settings


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
    client.force_login(user)
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
    response = logged_in(alice).post(CONNECT, **{header: host})
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
    mine = token_set(company="MINE")
    make_connection(tenant=tenant(alice), company="MINE", tokens=mine)
    make_connection(tenant=tenant(bob), company="THEIRS")
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
    theirs = make_connection(tenant=tenant(bob))
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


@pytest.mark.parametrize("action", ["reconnect", "disconnect"])
def test_actions_require_post(alice: AbstractBaseUser, action: str) -> None:
    mine = make_connection(tenant=tenant(alice))
    assert (
        logged_in(alice).get(reverse(f"intacct_connect:{action}", args=[mine.pk])).status_code
        == 405
    )


@pytest.mark.parametrize("action", ["reconnect", "disconnect"])
def test_actions_refused_by_adapter_are_403(
    alice: AbstractBaseUser, settings: Any, action: str
) -> None:
    settings.INTACCT_CONNECT = {
        **settings.INTACCT_CONNECT,
        "ADAPTER": "tests.test_views.ReadOnlyAdapter",
    }
    mine = make_connection(tenant=tenant(alice))
    assert (
        logged_in(alice).post(reverse(f"intacct_connect:{action}", args=[mine.pk])).status_code
        == 403
    )


def test_reconnect_starts_flow_bound_to_connection(alice: AbstractBaseUser) -> None:
    mine = make_connection(tenant=tenant(alice), entity="EAST")
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
    assert "Connected DEMO-CO." in page
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
    assert location.startswith(INTACCT_CONNECT["REDIRECT_URI"] + "?")
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


@hsettings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(next_value=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40))
def test_hypothesis_next_through_the_view(alice: AbstractBaseUser, next_value: str) -> None:
    OAuthFlow.objects.all().delete()
    response = logged_in(alice).post(CONNECT, {"next": next_value.replace("\x00", "")})
    assert response.status_code == 303
    stored = OAuthFlow.objects.get().next_url
    assert stored in ("", next_value.replace("\x00", ""))
    if stored:
        assert stored.startswith("/")
        assert not stored.startswith("//")
        assert "\\" not in stored
        assert not urlsplit(stored).netloc
