"""The ``intacct_request`` management command (intacct_connect/management/commands)."""

from __future__ import annotations

import json
import os
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from intacct_connect.models import ApiCallLog, Token
from intacct_connect.testing.emulator import EmulatorServer
from tests import factories
from tests.warm_python import run_python

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> tuple[str, dict[str, object] | None]:
    out = StringIO()
    call_command("intacct_request", *args, stdout=out)
    status, _, body = out.getvalue().partition("\n")
    return status, json.loads(body) if body.strip() else None


def test_get_prints_status_and_json(emulator: EmulatorServer) -> None:
    conn = factories.connection(emulator)
    status, body = _run(str(conn.pk), "GET", "/objects/accounts-payable/vendor/1")
    assert status == "HTTP 200"
    assert body is not None
    assert body["ia::result"]["id"] == "VEND-00001"  # type: ignore[index]
    assert ApiCallLog.objects.get().path == "/objects/accounts-payable/vendor/1"
    token = Token.objects.get(pk=conn.pk)
    out = StringIO()
    call_command(
        "intacct_request", str(conn.pk), "get", "/objects/accounts-payable/vendor", stdout=out
    )
    assert token.access_token not in out.getvalue()


def test_query_and_post(emulator: EmulatorServer) -> None:
    conn = factories.connection(emulator)
    query = {"object": "accounts-payable/vendor", "fields": ["id"], "size": 3}
    status, body = _run(str(conn.pk), "--query", json.dumps(query))
    assert status == "HTTP 200"
    assert body is not None
    assert len(body["ia::result"]) == 3  # type: ignore[arg-type]
    assert body["ia::meta"]["next"] == 4  # type: ignore[index]
    status, body = _run(
        str(conn.pk),
        "POST",
        "/objects/accounts-payable/vendor",
        "--data",
        json.dumps({"id": "CMD-1", "name": "From the shell"}),
        "--idempotency-key",
        "cmd-test-1",
    )
    assert status == "HTTP 201"
    assert [r["id"] for r in emulator.records("DEMO-CO", "accounts-payable/vendor")].count(
        "CMD-1"
    ) == 1


def test_entity_option_scopes_the_request(emulator: EmulatorServer) -> None:
    conn = factories.connection(emulator)
    query = json.dumps({"object": "accounts-payable/vendor", "fields": ["id"], "size": 1})
    _, top = _run(str(conn.pk), "--query", query)
    _, east = _run(str(conn.pk), "--query", query, "--entity", "EAST")
    assert top is not None
    assert east is not None
    assert top["ia::meta"]["totalCount"] == 250  # type: ignore[index]
    assert east["ia::meta"]["totalCount"] == 225  # type: ignore[index]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["abc", "GET", "/objects/x/y"], "must be an integer"),
        (["999", "GET", "/objects/x/y"], "no Intacct connection with id 999"),
        (["{pk}"], "Give a METHOD and a PATH"),
        (["{pk}", "GET"], "Give a METHOD and a PATH"),
        (["{pk}", "PUT", "/objects/x/y"], "must be one of GET, POST, PATCH, DELETE"),
        (["{pk}", "GET", "https://evil.example/x"], "must be relative to API_BASE_URL"),
        (["{pk}", "GET", "/objects/../oauth2/token"], "must be relative to API_BASE_URL"),
        (["{pk}", "--query", "{not json"], "--query is not valid JSON"),
        (["{pk}", "--query", "[1, 2]"], '--query must be a JSON object with at least "object"'),
        (["{pk}", "GET", "/objects/x/y", "--query", "{}"], "either --query or a METHOD"),
        (["{pk}", "GET", "/objects/x/y", "--data", "{}"], "--data is only for POST and PATCH"),
        (["{pk}", "POST", "/objects/x/y", "--data", "nope"], "--data is not valid JSON"),
    ],
)
def test_bad_input_is_a_precise_command_error(
    emulator: EmulatorServer, args: list[str], message: str
) -> None:
    conn = factories.connection(emulator)
    with pytest.raises(CommandError, match=message.replace("(", r"\(")):
        call_command("intacct_request", *[a.replace("{pk}", str(conn.pk)) for a in args])
    assert emulator.api_calls() == 0


def test_api_errors_are_reported_as_command_errors(emulator: EmulatorServer) -> None:
    conn = factories.connection(emulator)
    with pytest.raises(CommandError, match="The request failed: GET /objects/accounts-payable"):
        call_command("intacct_request", str(conn.pk), "GET", "/objects/accounts-payable/vendor/0")
    second = factories.connection(emulator, company="SECOND-CO")
    with pytest.raises(CommandError, match="sender ID"):
        call_command("intacct_request", str(second.pk), "GET", "/objects/accounts-payable/vendor")


def test_bad_input_exits_non_zero_without_a_traceback() -> None:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    result = run_python(
        ["-m", "django", "intacct_request", "seven", "GET", "/objects/x/y"], cwd=ROOT, env=env
    )
    assert result.returncode == 1
    assert "CommandError: The connection id must be an integer, not 'seven'." in result.stderr
    assert "Traceback" not in result.stderr
