from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import transaction

from intacct_connect import signals
from intacct_connect.models import Connection
from tests import factories

ALL = [
    signals.connection_created,
    signals.connection_reconnected,
    signals.token_refreshed,
    signals.connection_needs_reauth,
    signals.connection_superseded,
    signals.connection_revoked,
]


@pytest.fixture
def received() -> Iterator[list[dict[str, Any]]]:
    calls: list[dict[str, Any]] = []

    def receiver(signal: Any, sender: Any, **kwargs: Any) -> None:
        calls.append({"signal": signal, "sender": sender, **kwargs})

    for sig in ALL:
        sig.connect(receiver, dispatch_uid="test_signals")
    yield calls
    for sig in ALL:
        sig.disconnect(dispatch_uid="test_signals")


@pytest.mark.django_db(transaction=True)
def test_sent_only_after_commit(received: list[dict[str, Any]]) -> None:
    conn = factories.connection()
    with transaction.atomic():
        signals.send_on_commit(signals.token_refreshed, connection=conn, token_version=2)
        assert received == []
    assert len(received) == 1
    call = received[0]
    assert call["signal"] is signals.token_refreshed
    assert call["sender"] is Connection
    assert call["connection"] == conn
    assert call["token_version"] == 2


@pytest.mark.django_db(transaction=True)
def test_not_sent_when_rolled_back(received: list[dict[str, Any]]) -> None:
    conn = factories.connection()

    def rolled_back() -> None:
        with transaction.atomic():
            signals.send_on_commit(signals.connection_revoked, connection=conn)
            raise RuntimeError("rollback")

    with pytest.raises(RuntimeError):
        rolled_back()
    assert received == []


@pytest.mark.django_db(transaction=True)
def test_failing_receiver_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    conn = factories.connection()

    def broken(**kwargs: Any) -> None:
        raise ValueError("receiver bug")

    signals.connection_created.connect(broken, dispatch_uid="broken")
    try:
        with caplog.at_level(logging.ERROR, logger="intacct_connect.signals"):
            signals.send_on_commit(signals.connection_created, connection=conn, actor=None)
    finally:
        signals.connection_created.disconnect(dispatch_uid="broken")
    assert "receiver" in caplog.text
    assert "ValueError" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_flows_send_documented_arguments(received: list[dict[str, Any]]) -> None:
    from intacct_connect import flows

    conn = factories.connection()
    flows.mark_needs_reauth(conn, reason="admin", error_code="x")
    flows.disconnect(conn)
    kinds = [c["signal"] for c in received]
    assert kinds == [signals.connection_needs_reauth, signals.connection_revoked]
    assert set(received[0]) >= {"connection", "reason", "error_code", "actor"}
    assert received[1]["revoked_at_intacct"] is False
