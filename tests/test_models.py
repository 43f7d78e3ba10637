from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from intacct_connect.models import (
    Connection,
    ConnectionEvent,
    ConnectionStatus,
    EventKind,
    GrantType,
    OAuthFlow,
    Token,
)
from tests import factories

pytestmark = pytest.mark.django_db


def test_str_and_repr_never_show_tokens() -> None:
    tokens = factories.token_set()
    conn = factories.connection(tokens=tokens, entity="EAST")
    token = Token.objects.get(pk=conn.pk)
    _ = token.access_token, token.refresh_token  # decrypted in memory
    texts = [str(conn), repr(conn), str(token), repr(token), repr(tokens), str(tokens)]
    for text in texts:
        assert tokens.access_token not in text
        assert str(tokens.refresh_token) not in text
    assert "DEMO-CO|EAST" in str(conn)
    assert token.fingerprint in repr(token)


def test_one_authorization_code_connection_per_tenant_company_user() -> None:
    factories.connection(tenant="t1", company="ACME", user="alice")
    with pytest.raises(IntegrityError), transaction.atomic():
        Connection.objects.create(tenant_key="t1", company_id="ACME", intacct_user_id="alice")
    # Another tenant may connect the same company (a separate connection).
    factories.connection(tenant="t2", company="ACME", user="alice")
    # Another Intacct user of the same company is another grant.
    factories.connection(tenant="t1", company="ACME", user="bob")
    assert Connection.objects.count() == 3


def test_client_credentials_unique_per_entity() -> None:
    kwargs: dict[str, Any] = {
        "tenant": "t1",
        "company": "ACME",
        "user": "ws",
        "grant_type": GrantType.CLIENT_CREDENTIALS,
    }
    factories.connection(entity="EAST", **kwargs)
    factories.connection(entity="WEST", **kwargs)
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.connection(entity="EAST", **kwargs)


def test_for_tenant_and_active() -> None:
    a = factories.connection(tenant="t1", company="A")
    factories.connection(tenant="t2", company="B")
    factories.connection(tenant="t1", company="C", status=ConnectionStatus.REVOKED)
    assert list(Connection.objects.for_tenant("t1").active()) == [a]
    assert Connection.objects.for_tenant("t1").count() == 2


def test_is_usable_and_record_error() -> None:
    conn = factories.connection()
    assert conn.is_usable
    conn.record_error("x" * 150, "boom")
    assert len(conn.last_error_code) == 100
    assert conn.last_error_at is not None
    conn.status = ConnectionStatus.NEEDS_REAUTH
    assert not conn.is_usable


def test_token_expires_within() -> None:
    conn = factories.connection(tokens=factories.token_set(expires_in=600))
    token = Token.objects.get(pk=conn.pk)
    assert token.expires_within(900)
    assert not token.expires_within(300)
    assert token.expires_within(0, now=timezone.now() + timedelta(hours=1))


def test_events_newest_first_and_cascade() -> None:
    conn = factories.connection()
    first = ConnectionEvent.log(conn, EventKind.CONNECTED, "one")
    second = ConnectionEvent.log(conn, EventKind.REFRESHED, "two")
    assert list(conn.events.all()) == [second, first]
    assert "Connected" in str(first)
    conn.delete()
    assert not ConnectionEvent.objects.exists()
    assert not Token.objects.exists()


def test_oauth_flow_repr_hides_secrets() -> None:
    flow = OAuthFlow(
        state_hash="0" * 64,
        session_key_hash="1" * 64,
        tenant_key="t",
        redirect_uri="https://x/cb/",
        token_url="https://x/token",
        expires_at=timezone.now(),
    )
    flow.code_verifier = "verifier-secret-value"
    flow.save()
    assert "verifier-secret-value" not in repr(flow) + str(flow)
    raw = OAuthFlow.objects.filter(pk=flow.pk).values_list("code_verifier", flat=True).get()
    assert "verifier-secret-value" not in raw
    assert OAuthFlow.objects.get(pk=flow.pk).code_verifier == "verifier-secret-value"
