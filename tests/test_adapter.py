from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory

from intacct_connect.adapter import DefaultIntacctAdapter, get_adapter
from tests import factories

pytestmark = pytest.mark.django_db


def request_for(user: Any) -> Any:
    request = RequestFactory().get("/")
    request.user = user
    return request


def test_default_tenant_is_the_logged_in_user(django_user_model: Any) -> None:
    alice = django_user_model.objects.create_user("alice")
    adapter = DefaultIntacctAdapter()
    assert adapter.get_tenant_key(request_for(alice)) == f"user:{alice.pk}"
    assert adapter.get_tenant_key(request_for(AnonymousUser())) is None
    assert adapter.get_tenant_key(RequestFactory().get("/")) is None  # no auth middleware
    assert adapter.can_connect(request_for(alice))
    assert not adapter.can_connect(request_for(AnonymousUser()))


def test_default_permissions_follow_the_tenant(django_user_model: Any) -> None:
    alice = django_user_model.objects.create_user("alice")
    bob = django_user_model.objects.create_user("bob")
    mine = factories.connection(tenant=f"user:{alice.pk}")
    adapter = DefaultIntacctAdapter()
    for check in (adapter.can_view, adapter.can_reconnect, adapter.can_disconnect):
        assert check(request_for(alice), mine)
        assert not check(request_for(bob), mine)
        assert not check(request_for(AnonymousUser()), mine)


def test_connections_url() -> None:
    assert DefaultIntacctAdapter().get_connections_url(RequestFactory().get("/")) == "/intacct/"


class TeamAdapter(DefaultIntacctAdapter):
    def get_tenant_key(self, request: Any) -> str | None:
        return "team:1"


def test_get_adapter_uses_the_setting(settings: Any) -> None:
    assert type(get_adapter()) is DefaultIntacctAdapter
    settings.INTACCT_CONNECT = {
        **settings.INTACCT_CONNECT,
        "ADAPTER": "tests.test_adapter.TeamAdapter",
    }
    adapter = get_adapter()
    assert isinstance(adapter, TeamAdapter)
    assert adapter.get_tenant_key(RequestFactory().get("/")) == "team:1"


def test_get_adapter_bad_path(settings: Any) -> None:
    settings.INTACCT_CONNECT = {**settings.INTACCT_CONNECT, "ADAPTER": "tests.nowhere.Adapter"}
    with pytest.raises(ImproperlyConfigured, match="cannot be imported"):
        get_adapter()


class WelcomeAdapter(DefaultIntacctAdapter):
    def get_connect_redirect_url(self, request: Any, connection: Any) -> str:
        return f"/welcome/{connection.company_id}/"


def test_connect_redirect_url_hook(settings: Any, emulator: Any, django_user_model: Any) -> None:
    from urllib.parse import urlsplit

    from django.test import Client

    settings.INTACCT_CONNECT = {
        **settings.INTACCT_CONNECT,
        "ADAPTER": "tests.test_adapter.WelcomeAdapter",
    }
    client = Client()
    client.force_login(django_user_model.objects.create_user("alice"))
    start = client.post("/intacct/connect/")
    location = emulator.complete_authorization(start["Location"], "DEMO-CO", "admin", "admin")
    parts = urlsplit(location)
    response = client.get(f"{parts.path}?{parts.query}")
    assert response.status_code == 303
    assert response["Location"] == "/welcome/DEMO-CO/"
    assert DefaultIntacctAdapter().get_connect_redirect_url(RequestFactory().get("/"), None) == (  # type: ignore[arg-type]
        "/intacct/"
    )
