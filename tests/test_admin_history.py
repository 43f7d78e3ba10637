"""intacct_connect.admin.history: token metadata and connection events, read-only, never a
token value."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse

import intacct_connect.admin  # noqa: F401  (registers the ModelAdmins)
from intacct_connect.admin.history import (
    SECRET_COLUMNS,
    ConnectionEventAdmin,
    TokenAdmin,
    TokenInline,
)
from intacct_connect.models import Connection, ConnectionEvent, EventKind, Token
from tests import factories

pytestmark = pytest.mark.django_db


def test_the_token_and_event_admins_are_registered_here() -> None:
    assert isinstance(admin.site.get_model_admin(Token), TokenAdmin)
    assert isinstance(admin.site.get_model_admin(ConnectionEvent), ConnectionEventAdmin)


def test_secret_columns_defer_every_token_value() -> None:
    conn = factories.connection()
    row = Connection.objects.defer(*SECRET_COLUMNS).select_related("token").get(pk=conn.pk)
    assert {"access_token", "refresh_token"} <= row.token.get_deferred_fields()


def test_token_pages_show_metadata_never_a_value(admin_client: Client) -> None:
    conn = factories.connection(company="HIST-CO")
    token = Token.objects.get(connection=conn)
    access, refresh = token.access_token, token.refresh_token
    listing = admin_client.get(reverse("admin:intacct_connect_token_changelist"))
    detail = admin_client.get(reverse("admin:intacct_connect_token_change", args=[conn.pk]))
    connection_page = admin_client.get(
        reverse("admin:intacct_connect_connection_change", args=[conn.pk])
    )
    for page in (listing, detail, connection_page):
        html = page.content.decode()
        assert page.status_code == 200
        assert token.fingerprint in html
        assert access not in html
        assert refresh not in html
    assert "HIST-CO" in listing.content.decode()


def test_the_inline_says_whether_a_refresh_token_is_stored() -> None:
    conn = factories.connection()
    inline = TokenInline(Connection, admin.site)
    token = Token.objects.get(connection=conn)
    assert inline.has_refresh_token(token) is True
    Token.objects.filter(pk=token.pk).update(refresh_token="")
    assert inline.has_refresh_token(Token.objects.get(pk=token.pk)) is False


def test_events_link_their_connection_and_truncate_long_messages(admin_client: Client) -> None:
    conn = factories.connection(company="EV-CO")
    ConnectionEvent.log(conn, EventKind.HEALTH_CHECK, "x" * 300)
    html = admin_client.get(
        reverse("admin:intacct_connect_connectionevent_changelist")
    ).content.decode()
    change_url = reverse("admin:intacct_connect_connection_change", args=[conn.pk])
    assert f'href="{change_url}"' in html
    assert "EV-CO" in html
    assert "x" * 119 + "…" in html
    assert f'title="{"x" * 300}"' in html
