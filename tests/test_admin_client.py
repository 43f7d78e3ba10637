"""Admin pieces of the API client (intacct_connect.admin.calls)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import AbstractBaseUser
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from intacct_connect.admin import calls as admin_calls
from intacct_connect.client import IntacctClient
from intacct_connect.exceptions import NotFoundError
from intacct_connect.models import ApiCallLog, Connection, Token
from intacct_connect.testing.emulator import EmulatorServer
from tests import factories

pytestmark = pytest.mark.django_db


def _calls(emulator: EmulatorServer) -> Connection:
    conn = factories.connection(emulator)
    client = IntacctClient(conn)
    client.get("accounts-payable/vendor", "1")
    with pytest.raises(NotFoundError):
        client.get("accounts-payable/vendor", "999999")
    ApiCallLog.objects.create(
        connection=conn,
        method="GET",
        path="/objects/old",
        status=200,
        created_at=timezone.now() - timedelta(days=3),
    )
    return conn


def test_usage_summary_counts_calls_and_errors(emulator: EmulatorServer) -> None:
    conn = _calls(emulator)
    html = admin_calls.api_usage_html(conn)
    assert "2 calls (1 error) in 24 h" in html
    assert "3 calls (1 error) in 30 days" in html
    assert f"?connection__id__exact={conn.pk}" in html
    assert admin_calls.api_usage_html(Connection()) == "—"


def test_call_log_admin_is_read_only_and_shows_no_secret(
    emulator: EmulatorServer, admin_user: AbstractBaseUser
) -> None:
    conn = _calls(emulator)
    secret = Token.objects.get(pk=conn.pk).access_token
    browser = Client()
    browser.force_login(admin_user)  # type: ignore[arg-type]  # stub wants the concrete User
    changelist = reverse("admin:intacct_connect_apicalllog_changelist")
    page = browser.get(changelist, {"connection__id__exact": conn.pk})
    assert page.status_code == 200
    text = page.content.decode()
    assert "/objects/accounts-payable/vendor/999999" in text
    assert secret not in text
    assert browser.get(reverse("admin:intacct_connect_apicalllog_add")).status_code == 403
    call = ApiCallLog.objects.filter(connection=conn).first()
    assert call is not None
    detail = browser.get(reverse("admin:intacct_connect_apicalllog_change", args=[call.pk]))
    assert detail.status_code == 200
    assert secret not in detail.content.decode()


def test_connection_change_page_shows_api_usage(
    emulator: EmulatorServer, admin_user: AbstractBaseUser
) -> None:
    conn = _calls(emulator)
    browser = Client()
    browser.force_login(admin_user)  # type: ignore[arg-type]  # stub wants the concrete User
    page = browser.get(reverse("admin:intacct_connect_connection_change", args=[conn.pk]))
    assert page.status_code == 200
    text = page.content.decode()
    assert "API usage" in text
    assert "2 calls (1 error) in 24 h" in text
    assert Token.objects.get(pk=conn.pk).access_token not in text


@pytest.mark.parametrize(
    ("calls", "errors", "text"),
    [(1, 0, "1 call (0 errors)"), (2, 1, "2 calls (1 error)"), (0, 0, "0 calls (0 errors)")],
)
def test_usage_plurals(calls: int, errors: int, text: str) -> None:
    assert admin_calls._calls_and_errors(calls, errors) == text
