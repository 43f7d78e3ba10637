from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection as db_connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from intacct_connect.admin import describe_delta
from intacct_connect.models import Connection, ConnectionStatus, EventKind, Token
from tests import factories

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:intacct_connect_connection_changelist"


@pytest.fixture
def staff(admin_user: AbstractBaseUser) -> Client:
    client = Client()
    client.force_login(admin_user)  # type: ignore[arg-type]  # stub wants the concrete User
    return client


def raw_ciphertexts() -> list[str]:
    values: list[str] = []
    for access, refresh in Token.objects.values_list("access_token", "refresh_token"):
        values.append(access)
        if refresh:
            values.append(refresh)
    return values


def assert_no_token_material(html: str, *sets: Any) -> None:
    for ts in sets:
        assert ts.access_token not in html
        if ts.refresh_token:
            assert ts.refresh_token not in html
    for ct in raw_ciphertexts():
        assert ct not in html
        assert ct.split(":")[2][:24] not in html
    assert "v1:" not in html


def test_changelist_shows_status_and_time_left_never_tokens(staff: Client) -> None:
    ts = factories.token_set(company="ACME")
    factories.connection(company="ACME", tokens=ts)
    factories.connection(company="BETA", status=ConnectionStatus.NEEDS_REAUTH)
    response = staff.get(reverse(CHANGELIST))
    html = response.content.decode()
    assert response.status_code == 200
    assert "intacct-status-active" in html
    assert "intacct-status-needs_reauth" in html
    assert "5 h 59 min" in html or "6 h 00 min" in html
    assert_no_token_material(html, ts)


def test_change_page_history_and_delete_pages_never_show_tokens(staff: Client) -> None:
    ts = factories.token_set()
    conn = factories.connection(tokens=ts)
    pages = [
        reverse("admin:intacct_connect_connection_change", args=[conn.pk]),
        reverse("admin:intacct_connect_connection_history", args=[conn.pk]),
        reverse("admin:intacct_connect_connection_delete", args=[conn.pk]),
        reverse("admin:intacct_connect_token_changelist"),
        reverse("admin:intacct_connect_token_change", args=[conn.pk]),
        reverse("admin:intacct_connect_connectionevent_changelist"),
    ]
    for url in pages:
        response = staff.get(url)
        assert response.status_code == 200, url
        assert_no_token_material(response.content.decode(), ts)
    change = staff.get(pages[0]).content.decode()
    token = Token.objects.get(pk=conn.pk)
    assert token.fingerprint in change


def test_changelist_query_count_constant(staff: Client) -> None:
    def count() -> int:
        with CaptureQueriesContext(db_connection) as ctx:
            assert staff.get(reverse(CHANGELIST)).status_code == 200
        return len(ctx.captured_queries)

    factories.connection(company="C0")
    few = count()
    for i in range(1, 25):
        factories.connection(company=f"C{i}", user=f"u{i}")
    factories.connection(company="NOTOKEN", user="x").token.delete()
    assert count() == few


def test_filters_and_search(staff: Client) -> None:
    factories.connection(company="ALPHA")
    factories.connection(company="BRAVO", status=ConnectionStatus.REVOKED)
    url = reverse(CHANGELIST)
    assert "BRAVO" not in staff.get(url, {"status__exact": "active"}).content.decode()
    assert "ALPHA" not in staff.get(url, {"q": "BRAV"}).content.decode()
    for params in (
        {"environment__exact": "production"},
        {"grant_type__exact": "client_credentials"},
    ):
        assert staff.get(url, params).status_code == 200


def test_token_admin_is_read_only(staff: Client) -> None:
    conn = factories.connection()
    assert staff.get(reverse("admin:intacct_connect_token_add")).status_code == 403
    response = staff.post(reverse("admin:intacct_connect_token_change", args=[conn.pk]), {})
    assert response.status_code == 403
    assert (
        staff.get(reverse("admin:intacct_connect_token_delete", args=[conn.pk])).status_code == 403
    )


def test_connection_change_form_cannot_touch_identity_or_status(staff: Client) -> None:
    conn = factories.connection(company="ACME")
    url = reverse("admin:intacct_connect_connection_change", args=[conn.pk])
    response = staff.post(
        url,
        {
            "company_name": "Acme Corp",
            "company_id": "EVIL",
            "status": "active",
            "tenant_key": "someone-else",
            "token-TOTAL_FORMS": "0",
            "token-INITIAL_FORMS": "1",
            "events-TOTAL_FORMS": "0",
            "events-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    conn.refresh_from_db()
    assert (conn.company_name, conn.company_id, conn.tenant_key) == (
        "Acme Corp",
        "ACME",
        factories.TENANT,
    )


def _action(staff: Client, action: str, *conns: Connection) -> str:
    response = staff.post(
        reverse(CHANGELIST),
        # post=yes: past the confirmation page of the destructive actions
        {"action": action, "_selected_action": [c.pk for c in conns], "post": "yes"},
        follow=True,
    )
    assert response.status_code == 200
    return response.content.decode()


def test_action_mark_needs_reauth(staff: Client, admin_user: AbstractBaseUser) -> None:
    a = factories.connection(company="A")
    b = factories.connection(company="B", status=ConnectionStatus.REVOKED)
    html = _action(staff, "mark_needs_reauth", a, b)
    assert "1 connection marked as needing re-authorisation." in html
    assert "1 connection was not active" in html
    a.refresh_from_db()
    assert a.status == ConnectionStatus.NEEDS_REAUTH
    assert a.events.get(kind=EventKind.NEEDS_REAUTH).actor == admin_user


def test_action_disconnect_reports_local_only_when_intacct_unreachable(staff: Client) -> None:
    a = factories.connection(company="A")
    html = _action(staff, "disconnect_and_revoke", a)
    assert "1 connection failed" in html
    assert "disconnected locally" in html
    a.refresh_from_db()
    assert a.status == ConnectionStatus.REVOKED
    assert not Token.objects.filter(pk=a.pk).exists()


def test_add_view_is_client_credentials_form(staff: Client) -> None:
    url = reverse("admin:intacct_connect_connection_add")
    page = staff.get(url)
    assert page.status_code == 200
    assert 'name="username"' in page.content.decode()
    response = staff.post(url, {"tenant_key": "team:1", "username": "not-a-username"})
    assert response.status_code == 200
    assert "user@company" in response.content.decode()
    assert not Connection.objects.exists()


def test_add_view_requires_permission(client: Client, django_user_model: Any) -> None:
    user = django_user_model.objects.create_user("staff", password="pw", is_staff=True)
    client.force_login(user)
    assert client.get(reverse("admin:intacct_connect_connection_add")).status_code == 403


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (3600 * 5 + 65, "5 h 01 min"),
        (240, "4 min"),
        (-180, "expired 3 min ago"),
        (3 * 86400, "3 d 0 h"),
    ],
)
def test_describe_delta(seconds: int, text: str) -> None:
    from datetime import timedelta

    assert describe_delta(timedelta(seconds=seconds)) == text


# --- actions against the emulator ------------------------------------------------------------


def test_action_refresh_tokens_now(
    staff: Client, live_connection: Connection, emulator: Any
) -> None:
    before = Token.objects.get(pk=live_connection.pk).version
    html = _action(staff, "refresh_tokens_now", live_connection)
    assert "1 connection refreshed." in html
    assert Token.objects.get(pk=live_connection.pk).version == before + 1
    assert emulator.token_requests("client_credentials") == 2


def test_action_test_connection(staff: Client, live_connection: Connection, emulator: Any) -> None:
    html = _action(staff, "test_connection", live_connection)
    assert "1 connection answered the test call." in html
    live_connection.refresh_from_db()
    assert live_connection.health_ok is True
    emulator.unauthorize_sender("DEMO-CO")
    html = _action(staff, "test_connection", live_connection)
    assert "1 connection failed" in html
    assert "GW-0011" in html
    live_connection.refresh_from_db()
    assert live_connection.health_ok is False


def test_action_disconnect_and_revoke(staff: Client, live_connection: Connection) -> None:
    html = _action(staff, "disconnect_and_revoke", live_connection)
    assert "1 connection disconnected and revoked at Intacct." in html
    live_connection.refresh_from_db()
    assert live_connection.status == ConnectionStatus.REVOKED


def test_add_client_credentials_connection_from_admin(
    staff: Client, emulator: Any, admin_user: AbstractBaseUser
) -> None:
    url = reverse("admin:intacct_connect_connection_add")
    response = staff.post(url, {"tenant_key": "team:7", "username": "admin@DEMO-CO|WEST"})
    conn = Connection.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse(
        "admin:intacct_connect_connection_change", args=[conn.pk]
    )
    assert (conn.tenant_key, conn.company_id, conn.entity_id, conn.grant_type) == (
        "team:7",
        "DEMO-CO",
        "WEST",
        "client_credentials",
    )
    assert conn.connected_by == admin_user
    refused = staff.post(url, {"tenant_key": "team:7", "username": "jane@DEMO-CO"})
    assert refused.status_code == 200
    assert "Intacct refused the credentials" in refused.content.decode()
    assert Connection.objects.count() == 1
