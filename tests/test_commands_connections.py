"""Tests of intacct_list_connections, intacct_create_connection and intacct_rotate_keys."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from intacct_connect import crypto
from intacct_connect.management.commands.intacct_rotate_keys import render_bar
from intacct_connect.models import Connection, ConnectionStatus, Token
from tests import factories
from tests.settings import INTACCT_CONNECT, TEST_OLD_TOKEN_KEY, TEST_TOKEN_KEY

pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_list_connections_table_and_filters() -> None:
    ts = factories.token_set(company="ACME")
    factories.connection(tenant="t1", company="ACME", tokens=ts)
    factories.connection(tenant="t2", company="BETA", status=ConnectionStatus.NEEDS_REAUTH)
    out, _ = run("intacct_list_connections")
    assert "ACME" in out
    assert "BETA" in out
    assert "needs_reauth" in out
    assert "2 connection(s)." in out
    assert ts.access_token not in out
    assert "v1:" not in out
    out, _ = run("intacct_list_connections", "--tenant", "t2")
    assert "ACME" not in out
    assert "BETA" in out
    out, _ = run("intacct_list_connections", "--status", "active", "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["company"] for r in rows] == ["ACME"]
    assert rows[0]["fingerprint"] == Token.objects.get(pk=rows[0]["id"]).fingerprint
    out, _ = run("intacct_list_connections", "--company", "NOPE")
    assert out.strip() == "No connections."


@pytest.mark.parametrize("username", ["nouser", "ws@", "ws@ACME|"])
def test_create_connection_rejects_bad_username(username: str) -> None:
    with pytest.raises(CommandError, match="user@company"):
        run("intacct_create_connection", "--tenant", "t1", "--username", username)


def test_create_connection_requires_arguments() -> None:
    with pytest.raises(CommandError):
        run("intacct_create_connection", "--tenant", "t1")


def test_create_connection_reports_intacct_failure() -> None:
    # The test settings point at a dead port.
    with pytest.raises(CommandError, match="refused"):
        run("intacct_create_connection", "--tenant", "t1", "--username", "ws@ACME")


def test_rotate_keys_command_with_progress_bar() -> None:
    with override_settings(INTACCT_CONNECT={**INTACCT_CONNECT, "TOKEN_KEYS": [TEST_OLD_TOKEN_KEY]}):
        for i in range(5):
            factories.connection(company=f"C{i}")
    with pytest.raises(CommandError, match="5 row"):
        run("intacct_rotate_keys", "--check")
    out, err = run("intacct_rotate_keys", "--batch-size", "2")
    assert "Re-encrypted 5 row(s)" in out
    assert "[##############################] 5/5" in err
    out, _ = run("intacct_rotate_keys", "--check")
    assert out.startswith("0 row(s)")
    new_id = crypto.key_id(crypto.parse_key(TEST_TOKEN_KEY))
    assert {a.split(":")[1] for a in Token.objects.values_list("access_token", flat=True)} == {
        new_id
    }
    # The old key can now be removed: everything decrypts with the new key alone.
    with override_settings(INTACCT_CONNECT={**INTACCT_CONNECT, "TOKEN_KEYS": [TEST_TOKEN_KEY]}):
        assert all(t.access_token and t.refresh_token for t in Token.objects.all())


def test_rotate_keys_unknown_key_is_a_clear_error() -> None:
    with override_settings(
        INTACCT_CONNECT={**INTACCT_CONNECT, "TOKEN_KEYS": [crypto.generate_key()]}
    ):
        factories.connection()
    with pytest.raises(CommandError, match="Keep every key"):
        run("intacct_rotate_keys", "--no-progress")


def test_rotate_keys_bad_batch_size() -> None:
    with pytest.raises(CommandError, match="batch-size"):
        run("intacct_rotate_keys", "--batch-size", "0")


def test_render_bar() -> None:
    assert render_bar(0, 0) == "[" + "." * 30 + "] 0/1"
    assert render_bar(5, 10, width=10) == "[#####.....] 5/10"


def test_create_connection_with_the_emulator(emulator: Any) -> None:
    out, _ = run(
        "intacct_create_connection", "--tenant", "team:1", "--username", "admin@DEMO-CO|EAST"
    )
    conn = Connection.objects.get()
    assert f"Connection {conn.pk}: company DEMO-CO|EAST as admin for tenant team:1" in out
    assert emulator.token_requests("client_credentials") == 1
    # Running it again renews the same connection.
    run("intacct_create_connection", "--tenant", "team:1", "--username", "admin@DEMO-CO|EAST")
    assert Connection.objects.count() == 1
    assert Token.objects.get().version == 2
