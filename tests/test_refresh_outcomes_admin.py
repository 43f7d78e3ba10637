"""What operators and tenants see of the refresh outcomes (issue 12): the *refresh in
doubt* status with what it means (admin change list and page, tenant page), the
permission-checked, confirmed "try the stored refresh token once" action, and the banner
while Intacct rejects the site's client credentials. Real HTTP against the emulator."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from intacct_connect import tokens
from intacct_connect.exceptions import ClientCredentialsRejected, RefreshInDoubt
from intacct_connect.models import Connection, ConnectionStatus, Token
from intacct_connect.testing.emulator import EmulatorServer
from tests import factories
from tests.helpers import point_at_emulator

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:intacct_connect_connection_changelist"
ACTION = "try_stored_refresh_token"


@pytest.fixture
def emulator(socket_emulator: EmulatorServer) -> EmulatorServer:
    """Real HTTP: a lost answer is a connection the emulator drops after processing."""
    return socket_emulator


def staff(django_user_model: Any, *codenames: str) -> Client:
    user = django_user_model.objects.create_user(
        f"staff-{'-'.join(codenames)}", password="pw", is_staff=True
    )
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="intacct_connect", codename__in=codenames)
    )
    client = Client()
    client.force_login(user)
    return client


def in_doubt(emulator: EmulatorServer, **kwargs: Any) -> Connection:
    conn = factories.connection(emulator, **kwargs)
    factories.expire_locally(conn)
    emulator.set_fault("token_lost", count=1)
    with pytest.raises(RefreshInDoubt):
        tokens.get_access_token(conn.pk)
    conn.refresh_from_db()
    assert conn.status == ConnectionStatus.REFRESH_IN_DOUBT
    return conn


def post_action(client: Client, *conns: Connection, confirm: bool) -> str:
    data: dict[str, Any] = {"action": ACTION, "_selected_action": [c.pk for c in conns]}
    if confirm:
        data["post"] = "yes"
    response = client.post(reverse(CHANGELIST), data, follow=True)
    assert response.status_code == 200
    return response.content.decode()


def test_the_permission_is_declared() -> None:
    perm = Permission.objects.get(codename="retry_refresh_connection")
    assert perm.name == "Can try a stored refresh token after a lost answer"


def test_the_change_list_and_page_say_what_refresh_in_doubt_means(
    emulator: EmulatorServer, admin_client: Client
) -> None:
    conn = in_doubt(emulator)
    listing = admin_client.get(reverse(CHANGELIST)).content.decode()
    assert "Refresh in doubt" in listing
    assert "Nothing is re-sent automatically" in listing
    page = admin_client.get(
        reverse("admin:intacct_connect_connection_change", args=[conn.pk])
    ).content.decode()
    assert "Refresh in doubt" in page
    assert "Intacct may already have replaced" in page
    button = reverse("admin:intacct_connect_connection_object_action", args=[conn.pk, ACTION])
    assert f'action="{button}"' in page
    assert emulator.token_requests("refresh_token") == 1


def test_without_the_permission_the_action_is_refused_and_nothing_is_sent(
    emulator: EmulatorServer, django_user_model: Any
) -> None:
    emulator.configure(refresh_grace_seconds=60)
    conn = in_doubt(emulator)
    client = staff(django_user_model, "view_connection", "change_connection")
    assert f'value="{ACTION}"' not in client.get(reverse(CHANGELIST)).content.decode()
    html = post_action(client, conn, confirm=True)
    assert "You do not have permission to run the action" in html
    url = reverse("admin:intacct_connect_connection_object_action", args=[conn.pk, ACTION])
    assert client.post(url, {"post": "yes"}).status_code == 403
    conn.refresh_from_db()
    assert conn.status == ConnectionStatus.REFRESH_IN_DOUBT
    assert emulator.token_requests("refresh_token") == 1


def test_the_action_confirms_then_ends_active_in_a_grace_period(
    emulator: EmulatorServer, django_user_model: Any
) -> None:
    emulator.configure(refresh_grace_seconds=60)
    conn = in_doubt(emulator)
    client = staff(django_user_model, "view_connection", "retry_refresh_connection")
    assert f'value="{ACTION}"' in client.get(reverse(CHANGELIST)).content.decode()
    page = post_action(client, conn, confirm=False)
    assert "sends its stored refresh token to Intacct once" in page
    assert 'name="post" value="yes"' in page
    assert emulator.token_requests("refresh_token") == 1  # nothing sent before confirming
    html = post_action(client, conn, confirm=True)
    assert "Active again: DEMO-CO" in html
    conn.refresh_from_db()
    assert conn.status == ConnectionStatus.ACTIVE
    assert Token.objects.get(pk=conn.pk).version == 2
    assert emulator.token_requests("refresh_token") == 2
    assert conn.events.filter(kind="refreshed", actor__isnull=False).count() == 1


def test_the_action_ends_needs_reauth_when_intacct_refuses_the_token(
    emulator: EmulatorServer, django_user_model: Any
) -> None:
    conn = in_doubt(emulator)  # reuse detection: the stored token was rotated away
    other = factories.connection(emulator, user="jane", tenant="tenant-2")
    client = staff(django_user_model, "view_connection", "retry_refresh_connection")
    html = post_action(client, conn, other, confirm=True)
    assert "needs re-authorisation: DEMO-CO" in html
    assert "Not in doubt, left unchanged: DEMO-CO" in html
    conn.refresh_from_db()
    other.refresh_from_db()
    assert (conn.status, other.status) == ("needs_reauth", "active")
    assert emulator.token_requests("refresh_token") == 2


def test_the_change_page_button_runs_it_for_one_connection(
    emulator: EmulatorServer, admin_client: Client
) -> None:
    emulator.configure(refresh_grace_seconds=60)
    conn = in_doubt(emulator)
    url = reverse("admin:intacct_connect_connection_object_action", args=[conn.pk, ACTION])
    confirmation = admin_client.post(url)
    assert confirmation.status_code == 200
    assert "Try the stored refresh token once" in confirmation.content.decode()
    done = admin_client.post(url, {"post": "yes"}, follow=True)
    assert "Active again" in done.content.decode()
    conn.refresh_from_db()
    assert conn.status == ConnectionStatus.ACTIVE


def test_the_admin_index_and_connection_pages_show_the_invalid_client_banner(
    emulator: EmulatorServer, admin_client: Client, settings: Any, django_user_model: Any
) -> None:
    conn = factories.connection(emulator)
    assert "invalid_client" not in admin_client.get(reverse(CHANGELIST)).content.decode()
    point_at_emulator(settings, emulator, CLIENT_SECRET="wrong-secret-for-the-banner")
    factories.expire_locally(conn)
    with pytest.raises(ClientCredentialsRejected):
        tokens.get_access_token(conn.pk)
    for url in (
        reverse("admin:index"),
        reverse(CHANGELIST),
        reverse("admin:intacct_connect_connection_change", args=[conn.pk]),
    ):
        html = admin_client.get(url).content.decode()
        assert (
            html.count("Intacct rejects this site&#x27;s client ID or secret (invalid_client") == 1
        )
        assert "token refreshes are paused site-wide" in html
        assert "wrong-secret-for-the-banner" not in html
    # Staff who may not view connections see the index without it.
    schedules_only = staff(django_user_model, "view_schedule")
    index = schedules_only.get(reverse("admin:index"))
    assert index.status_code == 200
    assert "invalid_client" not in index.content.decode()
    # Fixed credentials: the incident no longer applies and the banner goes.
    point_at_emulator(settings, emulator)
    assert "invalid_client" not in admin_client.get(reverse(CHANGELIST)).content.decode()
    assert "invalid_client" not in admin_client.get(reverse("admin:index")).content.decode()


def test_the_tenant_page_says_what_refresh_in_doubt_means(
    emulator: EmulatorServer, django_user_model: Any
) -> None:
    user = django_user_model.objects.create_user("tenant-user", password="pw")
    conn = in_doubt(emulator, tenant=f"user:{user.pk}")
    client = Client()
    client.force_login(user)
    html = client.get(reverse("intacct_connect:connections")).content.decode()
    assert f'id="connection-{conn.pk}"' in html
    assert "Refresh in doubt" in html
    assert "Intacct's answer was lost" in html
    assert "reconnect now to resume syncing" in html
    assert reverse("intacct_connect:reconnect", args=[conn.pk]) in html
