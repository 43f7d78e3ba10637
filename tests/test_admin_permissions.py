"""Connections admin: each action's permission, confirmation pages, change-page buttons and
deleting a connection (revoked at Intacct first, history deleted with it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import AbstractBaseUser, Permission
from django.test import Client, RequestFactory
from django.urls import reverse

from intacct_connect.models import (
    ApiCallLog,
    Connection,
    ConnectionEvent,
    ConnectionStatus,
    EventKind,
    JobRun,
    Schedule,
    StoredRecord,
    Token,
    Watermark,
)
from tests import factories

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:intacct_connect_connection_changelist"
ACTIONS = ("refresh_tokens_now", "test_connection", "disconnect_and_revoke", "mark_needs_reauth")


def staff_client(django_user_model: Any, *codenames: str) -> Client:
    """A logged-in staff user holding exactly ``codenames`` (intacct_connect permissions)."""
    user = django_user_model.objects.create_user(
        f"staff-{'-'.join(codenames) or 'none'}", password="pw", is_staff=True
    )
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="intacct_connect", codename__in=codenames)
    )
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def viewer(django_user_model: Any) -> Client:
    return staff_client(django_user_model, "view_connection")


def post_action(client: Client, action: str, *conns: Connection, confirm: bool = True) -> str:
    data: dict[str, Any] = {"action": action, "_selected_action": [c.pk for c in conns]}
    if confirm:
        data["post"] = "yes"
    response = client.post(reverse(CHANGELIST), data, follow=True)
    assert response.status_code == 200
    return response.content.decode()


def connection_state(conn: Connection) -> tuple[Any, ...]:
    conn.refresh_from_db()
    token = Token.objects.filter(pk=conn.pk).first()
    return (conn.status, conn.health_checked_at, token.version if token else None)


def test_the_dedicated_permissions_exist() -> None:
    names = dict(
        Permission.objects.filter(
            codename__in=("disconnect_connection", "rerun_jobrun")
        ).values_list("codename", "name")
    )
    assert names == {
        "disconnect_connection": "Can disconnect and revoke connections",
        "rerun_jobrun": "Can run jobs again",
    }


# --- a view-only user is neither offered nor allowed any action ----------------------------


def test_view_only_user_is_offered_no_action(viewer: Client) -> None:
    conn = factories.connection()
    listing = viewer.get(reverse(CHANGELIST)).content.decode()
    change = viewer.get(
        reverse("admin:intacct_connect_connection_change", args=[conn.pk])
    ).content.decode()
    for name in ACTIONS:
        assert f'value="{name}"' not in listing
        assert f'value="{name}"' not in change
    assert 'class="intacct-object-action"' not in change
    assert "/actions/" not in change


@pytest.mark.parametrize("action", ACTIONS)
def test_view_only_user_posting_an_action_changes_nothing(
    viewer: Client, live_connection: Connection, emulator: Any, action: str
) -> None:
    before = connection_state(live_connection)
    calls = emulator.api_calls()
    html = post_action(viewer, action, live_connection)
    assert "You do not have permission to run the action" in html
    assert connection_state(live_connection) == before
    assert emulator.api_calls() == calls
    assert emulator.token_requests("client_credentials") == 1
    assert not ConnectionEvent.objects.filter(
        connection=live_connection, actor__isnull=False
    ).exists()
    # the per-object URL of the change page refuses too
    url = reverse(
        "admin:intacct_connect_connection_object_action", args=[live_connection.pk, action]
    )
    assert viewer.post(url, {"post": "yes"}).status_code == 403
    assert connection_state(live_connection) == before


# --- exactly the needed permission is enough --------------------------------------------------


def test_change_permission_runs_refresh(
    django_user_model: Any, live_connection: Connection, emulator: Any
) -> None:
    client = staff_client(django_user_model, "change_connection")
    before = Token.objects.get(pk=live_connection.pk).version
    assert "1 connection refreshed." in post_action(
        client, "refresh_tokens_now", live_connection, confirm=False
    )
    assert Token.objects.get(pk=live_connection.pk).version == before + 1


def test_change_permission_runs_test_connection(
    django_user_model: Any, live_connection: Connection
) -> None:
    client = staff_client(django_user_model, "change_connection")
    html = post_action(client, "test_connection", live_connection, confirm=False)
    assert "1 connection answered the test call." in html
    live_connection.refresh_from_db()
    assert live_connection.health_ok is True


def test_change_permission_marks_needs_reauth(django_user_model: Any) -> None:
    client = staff_client(django_user_model, "change_connection")
    conn = factories.connection()
    assert "1 connection marked as needing re-authorisation." in post_action(
        client, "mark_needs_reauth", conn
    )
    conn.refresh_from_db()
    assert conn.status == ConnectionStatus.NEEDS_REAUTH


def test_change_permission_is_not_enough_to_disconnect(
    django_user_model: Any, live_connection: Connection
) -> None:
    client = staff_client(django_user_model, "change_connection")
    assert 'value="disconnect_and_revoke"' not in client.get(reverse(CHANGELIST)).content.decode()
    html = post_action(client, "disconnect_and_revoke", live_connection)
    assert "You do not have permission" in html
    live_connection.refresh_from_db()
    assert live_connection.status == ConnectionStatus.ACTIVE


def test_disconnect_permission_disconnects(
    django_user_model: Any, live_connection: Connection
) -> None:
    client = staff_client(django_user_model, "view_connection", "disconnect_connection")
    listing = client.get(reverse(CHANGELIST)).content.decode()
    assert 'value="disconnect_and_revoke"' in listing
    assert 'value="mark_needs_reauth"' not in listing
    html = post_action(client, "disconnect_and_revoke", live_connection)
    assert "1 connection disconnected and revoked at Intacct." in html
    live_connection.refresh_from_db()
    assert live_connection.status == ConnectionStatus.REVOKED


# --- confirmation pages -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "says"),
    [
        ("disconnect_and_revoke", "grant is revoked at Intacct"),
        ("mark_needs_reauth", "until a user of its tenant reconnects it"),
    ],
)
def test_destructive_actions_confirm_first(admin_client: Client, action: str, says: str) -> None:
    a = factories.connection(company="AAA-CO")
    b = factories.connection(company="BBB-CO", user="bob")
    response = admin_client.post(
        reverse(CHANGELIST) + "?status__exact=active",
        {"action": action, "_selected_action": [a.pk, b.pk], "index": "0"},
    )
    assert response.status_code == 200
    assert response.templates[0].name == "intacct_connect/admin/action_confirmation.html"
    html = response.content.decode()
    assert says in html
    assert "AAA-CO" in html
    assert "BBB-CO" in html
    assert "following 2 Intacct connections" in html
    assert reverse("admin:intacct_connect_connection_change", args=[a.pk]) in html
    for conn in (a, b):
        assert f'name="_selected_action" value="{conn.pk}"' in html
    assert f'name="action" value="{action}"' in html
    assert 'name="post" value="yes"' in html
    assert "Yes, I\u2019m sure" in html
    assert "No, take me back" in html
    assert f'href="{reverse(CHANGELIST)}?status__exact=active"' in html
    assert 'class="breadcrumbs"' in html
    assert {c.status for c in Connection.objects.all()} == {ConnectionStatus.ACTIVE}
    assert Token.objects.count() == 2
    # "Yes, I'm sure" re-posts the form without "index"
    confirmed = admin_client.post(
        reverse(CHANGELIST) + "?status__exact=active",
        {"action": action, "_selected_action": [a.pk, b.pk], "post": "yes"},
        follow=True,
    )
    assert confirmed.status_code == 200
    assert ConnectionStatus.ACTIVE not in {c.status for c in Connection.objects.all()}


# --- change-page buttons -------------------------------------------------------------------


def object_action_url(conn: Connection, name: str) -> str:
    return reverse("admin:intacct_connect_connection_object_action", args=[conn.pk, name])


def test_change_page_buttons_follow_permissions(django_user_model: Any) -> None:
    conn = factories.connection()
    change_url = reverse("admin:intacct_connect_connection_change", args=[conn.pk])
    changer = staff_client(django_user_model, "change_connection").get(change_url)
    html = changer.content.decode()
    for name in ("refresh_tokens_now", "test_connection", "mark_needs_reauth"):
        assert f'action="{object_action_url(conn, name)}"' in html
    assert object_action_url(conn, "disconnect_and_revoke") not in html
    assert "csrfmiddlewaretoken" in html
    disconnecter = staff_client(django_user_model, "view_connection", "disconnect_connection")
    html = disconnecter.get(change_url).content.decode()
    assert f'action="{object_action_url(conn, "disconnect_and_revoke")}"' in html
    assert object_action_url(conn, "refresh_tokens_now") not in html


def test_change_page_button_runs_the_action_and_returns(
    admin_client: Client, live_connection: Connection
) -> None:
    before = Token.objects.get(pk=live_connection.pk).version
    response = admin_client.post(object_action_url(live_connection, "refresh_tokens_now"))
    change_url = reverse("admin:intacct_connect_connection_change", args=[live_connection.pk])
    assert response.status_code == 302
    assert response["Location"] == change_url
    assert Token.objects.get(pk=live_connection.pk).version == before + 1
    page = admin_client.get(change_url).content.decode()
    assert "1 connection refreshed." in page


def test_change_page_disconnect_button_confirms(
    admin_client: Client, live_connection: Connection
) -> None:
    url = object_action_url(live_connection, "disconnect_and_revoke")
    change_url = reverse("admin:intacct_connect_connection_change", args=[live_connection.pk])
    page = admin_client.post(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert f'href="{change_url}"' in html  # "No, take me back"
    assert "Yes, I\u2019m sure" in html
    live_connection.refresh_from_db()
    assert live_connection.status == ConnectionStatus.ACTIVE
    done = admin_client.post(
        url, {"action": "disconnect_and_revoke", "post": "yes", "_selected_action": "x"}
    )
    assert done.status_code == 302
    assert done["Location"] == change_url
    live_connection.refresh_from_db()
    assert live_connection.status == ConnectionStatus.REVOKED
    assert "disconnected and revoked at Intacct" in admin_client.get(change_url).content.decode()


def test_object_action_url_refuses_bad_requests(admin_client: Client) -> None:
    conn = factories.connection()
    assert admin_client.post(object_action_url(conn, "delete_selected")).status_code == 404
    assert admin_client.post(object_action_url(conn, "no_such_action")).status_code == 404
    assert admin_client.get(object_action_url(conn, "mark_needs_reauth")).status_code == 405
    missing = reverse(
        "admin:intacct_connect_connection_object_action", args=[conn.pk + 99, "mark_needs_reauth"]
    )
    assert admin_client.post(missing, {"post": "yes"}).status_code == 404
    conn.refresh_from_db()
    assert conn.status == ConnectionStatus.ACTIVE


# --- deleting a connection ----------------------------------------------------------------


def with_history(conn: Connection) -> None:
    ConnectionEvent.log(conn, EventKind.HEALTH_CHECK, "ok")
    run = JobRun.objects.create(job="count_job", connection=conn)
    ApiCallLog.objects.create(connection=conn, method="GET", path="/x", status=200)
    Schedule.objects.create(name="nightly", job="count_job", connection=conn, interval_seconds=300)
    StoredRecord.objects.create(connection=conn, object="o", key="1", run=run)
    Watermark.objects.create(connection=conn, name="w", value="v")


def test_delete_page_lists_cascaded_rows_without_demanding_their_permissions(
    django_user_model: Any,
) -> None:
    conn = factories.connection(company="DEL-CO")
    with_history(conn)
    client = staff_client(django_user_model, "view_connection", "delete_connection")
    url = reverse("admin:intacct_connect_connection_delete", args=[conn.pk])
    page = client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert "permission to delete" not in html
    for text in (
        "1 token",
        "1 connection event",
        "1 job run",
        "1 API call",
        "1 job schedule",
        "1 stored record",
        "1 watermark",
        "revoked at Intacct",
        "Yes, I\u2019m sure",
    ):
        assert text in html, text


def test_delete_revokes_at_intacct_then_deletes_everything(
    django_user_model: Any, live_connection: Connection, emulator: Any
) -> None:
    with_history(live_connection)
    assert {g["status"] for g in emulator.grants("DEMO-CO")} == {"active"}
    client = staff_client(django_user_model, "view_connection", "delete_connection")
    url = reverse("admin:intacct_connect_connection_delete", args=[live_connection.pk])
    response = client.post(url, {"post": "yes"}, follow=True)
    assert response.status_code == 200
    html = response.content.decode()
    assert "was deleted successfully" in html
    assert "not revoked at Intacct" not in html
    assert not Connection.objects.exists()
    for model in (Token, ConnectionEvent, JobRun, ApiCallLog, Schedule, StoredRecord, Watermark):
        assert not model.objects.exists(), model
    assert {g["status"] for g in emulator.grants("DEMO-CO")} == {"revoked"}


def test_delete_selected_warns_when_intacct_cannot_revoke(admin_client: Client) -> None:
    # no emulator configured: the revoke fails, the connections are deleted anyway
    a = factories.connection(company="A")
    b = factories.connection(company="B", status=ConnectionStatus.REVOKED)
    page = admin_client.post(
        reverse(CHANGELIST), {"action": "delete_selected", "_selected_action": [a.pk, b.pk]}
    )
    assert page.status_code == 200
    assert "permission to delete" not in page.content.decode()
    assert "revoked at Intacct" in page.content.decode()
    response = admin_client.post(
        reverse(CHANGELIST),
        {"action": "delete_selected", "_selected_action": [a.pk, b.pk], "post": "yes"},
        follow=True,
    )
    html = response.content.decode()
    assert "Successfully deleted 2 Intacct connections." in html
    assert "1 connection was not revoked at Intacct before deletion: A:" in html
    assert not Connection.objects.exists()


def test_view_only_user_cannot_delete(viewer: Client) -> None:
    conn = factories.connection()
    url = reverse("admin:intacct_connect_connection_delete", args=[conn.pk])
    assert viewer.get(url).status_code == 403
    assert viewer.post(url, {"post": "yes"}).status_code == 403
    assert Connection.objects.filter(pk=conn.pk).exists()


HISTORY = ("token", "connectionevent", "jobrun", "apicalllog", "storedrecord", "watermark")


@pytest.mark.parametrize("model_name", HISTORY)
def test_history_screens_never_delete(
    admin_client: Client, admin_user: AbstractBaseUser, model_name: str
) -> None:
    from django.apps import apps

    model = apps.get_model("intacct_connect", model_name)
    model_admin = admin.site.get_model_admin(model)
    request = RequestFactory().get("/")
    request.user = admin_user  # type: ignore[assignment]  # stub wants the concrete User
    assert not model_admin.has_delete_permission(request)
    assert "delete_selected" not in model_admin.get_actions(request)
    listing = admin_client.get(reverse(f"admin:intacct_connect_{model_name}_changelist"))
    assert listing.status_code == 200
    assert 'value="delete_selected"' not in listing.content.decode()


def test_every_history_delete_url_is_refused(admin_client: Client) -> None:
    conn = factories.connection()
    with_history(conn)
    rows: dict[str, Callable[[], Any]] = {
        "token": lambda: conn.pk,
        "connectionevent": lambda: ConnectionEvent.objects.get().pk,
        "jobrun": lambda: JobRun.objects.get().pk,
        "apicalllog": lambda: ApiCallLog.objects.get().pk,
        "storedrecord": lambda: StoredRecord.objects.get().pk,
        "watermark": lambda: Watermark.objects.get().pk,
    }
    for name, pk in rows.items():
        url = reverse(f"admin:intacct_connect_{name}_delete", args=[pk()])
        assert admin_client.post(url, {"post": "yes"}).status_code == 403, name
    assert ConnectionEvent.objects.exists()
    assert Token.objects.exists()
