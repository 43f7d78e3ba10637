"""IntacctClient through real HTTP against the emulator."""

from __future__ import annotations

import gc
import json
import threading
import time
import tracemalloc
import uuid
from collections.abc import Callable
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import time_machine
from django.core.cache import caches
from django.db import connection as db_connection
from django.utils import timezone

from intacct_connect import calllog, concurrency, signals
from intacct_connect import client as client_module
from intacct_connect.client import IntacctClient, prune_api_call_log, usage
from intacct_connect.exceptions import (
    AuthenticationError,
    ConflictError,
    IntacctAPIError,
    IntacctValidationError,
    MethodNotAllowedError,
    NeedsReauthorization,
    NotFoundError,
    PermissionDeniedError,
    RateLimited,
    ServerError,
    TransportError,
)
from intacct_connect.models import (
    ApiCallLog,
    ConcurrencySlot,
    ConnectionEvent,
    ConnectionStatus,
    EventKind,
    Token,
)
from intacct_connect.testing.emulator import EmulatorServer
from tests import factories
from tests.helpers import (
    FakeSleep,
    cache_config,
    count_statements,
    finish_emulator_requests,
    point_at_emulator,
    require_postgres,
)

pytestmark = pytest.mark.django_db

VENDOR = "accounts-payable/vendor"


def _new_vendor(**extra: Any) -> dict[str, Any]:
    return {"id": f"V-{uuid.uuid4().hex[:8]}", "name": "Acme Supplies", **extra}


def _vendors(emulator: EmulatorServer, name: str) -> list[dict[str, Any]]:
    return [r for r in emulator.records("DEMO-CO", VENDOR) if r["name"] == name]


# --- basics ----------------------------------------------------------------------------


def test_get_returns_the_record_and_logs_the_call(emulator: EmulatorServer) -> None:
    conn = factories.connection(emulator)
    client = IntacctClient(conn)
    vendor = client.get(VENDOR, "1")
    assert vendor["key"] == "1"
    assert vendor["id"] == "VEND-00001"
    assert "audit" in vendor
    only = client.get(VENDOR, "1", fields=["id", "name"])
    assert only == {"id": "VEND-00001", "name": vendor["name"]}
    with pytest.raises(NotFoundError):
        client.get(VENDOR, "999999", fields=["id"])
    log = ApiCallLog.objects.filter(connection=conn).order_by("pk")
    # Sage documents no field selection on GET /objects/...: the query service reads it.
    assert [(c.method, c.path, c.status, c.retries, c.error_code) for c in log] == [
        ("GET", "/objects/accounts-payable/vendor/1", 200, 0, ""),
        ("POST", "/services/core/query", 200, 0, ""),
        ("POST", "/services/core/query", 200, 0, ""),
    ]
    assert all(c.duration_ms >= 0 for c in log)


def test_crud_batches_composite_and_model(emulator: EmulatorServer) -> None:
    client = IntacctClient(factories.connection(emulator))
    ref = client.create(VENDOR, _new_vendor(name="Crud Vendor"))
    assert set(ref) >= {"key", "id", "href"}
    assert client.update(VENDOR, ref["key"], {"name": "Crud Vendor 2"})["key"] == ref["key"]
    assert client.get(VENDOR, ref["key"])["name"] == "Crud Vendor 2"
    many = client.create_many(VENDOR, [_new_vendor(name="Batch"), _new_vendor(name="Batch")])
    keys = [item["key"] for item in many]
    assert len(_vendors(emulator, "Batch")) == 2
    client.update_many(VENDOR, [{"key": k, "name": "Batch 2"} for k in keys])
    assert [v["name"] for v in client.get_many(VENDOR, keys)] == ["Batch 2", "Batch 2"]
    # Partial success (207) comes back per item, in request order.
    outcome = client.delete_many(VENDOR, keys)
    statuses = [item["ia::status"] for item in outcome] if outcome else [204, 204]
    remaining = {r["key"] for r in emulator.records("DEMO-CO", VENDOR)}
    for key, status in zip(keys, statuses, strict=True):
        assert (key in remaining) == (status != 204)
    deletable = client.create(VENDOR, _new_vendor(name="Deletable"))
    client.delete(VENDOR, deletable["key"])
    with pytest.raises(NotFoundError) as info:
        client.get(VENDOR, deletable["key"])
    assert info.value.status_code == 404
    assert info.value.support_id
    refs = client.list(VENDOR)
    assert len(refs) == 100
    assert set(refs[0]) == {"key", "id", "href"}
    results = client.composite(
        [
            {
                "method": "POST",
                "path": "/objects/accounts-payable/vendor",
                "body": _new_vendor(name="Composite"),
                "resultReference": "vendor",
            },
            {"method": "GET", "path": "/objects/accounts-payable/vendor/@{vendor.key}"},
        ]
    )
    assert [r["ia::status"] for r in results] == [201, 200]
    assert results[1]["ia::result"]["name"] == "Composite"
    model = client.model(VENDOR)
    assert "fields" in model


def test_composite_writes_each_carry_a_key_and_a_retry_replays_them(
    socket_emulator: EmulatorServer, settings: Any
) -> None:
    """The first composite's answer is lost (read timeout) after both writes ran; the
    retry replays each write by its own Idempotency-Key: two vendors, not four. Sub-request
    results are referenced 1-based, as in Sage's example."""
    emulator = socket_emulator
    point_at_emulator(settings, emulator, HTTP_TIMEOUT=(2.0, 0.3))
    client = IntacctClient(factories.connection(emulator))
    name = f"Composite {uuid.uuid4().hex[:6]}"
    emulator.set_fault("slow", company="DEMO-CO", count=1, seconds=0.8)
    threads = set(threading.enumerate())
    results = client.composite(
        [
            {"method": "POST", "path": f"/objects/{VENDOR}", "body": _new_vendor(name=name),
             "resultReference": "first"},
            {"method": "POST", "path": f"/objects/{VENDOR}", "body": _new_vendor(name=name)},
            {"method": "GET", "path": f"/objects/{VENDOR}/@{{first.1.key}}"},
        ]
    )  # fmt: skip
    finish_emulator_requests(threads)
    assert [r["ia::status"] for r in results] == [201, 201, 200]
    assert results[2]["ia::result"]["name"] == name
    assert len(_vendors(emulator, name)) == 2
    assert emulator.api_calls("DEMO-CO") == 2  # the lost one and its retry
    log = ApiCallLog.objects.get()
    assert (log.path, log.retries) == ("/services/core/composite", 1)


def test_a_composite_with_a_delete_is_never_retried(
    emulator: EmulatorServer, fake_sleep: FakeSleep
) -> None:
    client = IntacctClient(factories.connection(emulator))
    doomed = client.create(VENDOR, _new_vendor())
    emulator.set_fault("503", company="DEMO-CO", count=1)
    with pytest.raises(ServerError):
        client.composite(
            [
                {"method": "POST", "path": f"/objects/{VENDOR}", "body": _new_vendor()},
                {"method": "DELETE", "path": f"/objects/{VENDOR}/{doomed['key']}"},
            ]
        )
    assert fake_sleep.delays == []


def test_composite_keeps_a_key_the_caller_gave(emulator: EmulatorServer) -> None:
    client = IntacctClient(factories.connection(emulator))
    body = _new_vendor()
    sub = {"method": "POST", "path": f"/objects/{VENDOR}", "body": body,
           "headers": {"idempotency-key": "mine-1"}}  # fmt: skip
    first = client.composite([sub, {"method": "GET", "path": f"/objects/{VENDOR}/1"}])
    again = client.composite([sub, {"method": "GET", "path": f"/objects/{VENDOR}/1"}])
    assert first[0]["ia::result"]["key"] == again[0]["ia::result"]["key"]
    assert sub["headers"] == {"idempotency-key": "mine-1"}  # the caller's dict is not changed


def test_top_level_really_reaches_the_top_level(emulator: EmulatorServer) -> None:
    """A connection whose token defaults to entity EAST: no header reads EAST's bills,
    ``top_level()`` (an empty entity header) every bill, ``for_entity()`` one entity's."""
    conn = factories.connection(emulator, entity="EAST")
    client = IntacctClient(conn)
    bills = "accounts-payable/bill"

    def count(c: IntacctClient) -> int:
        return sum(1 for _ in c.query(bills, ["key"]))

    east, top = count(client), count(client.top_level())
    assert 0 < east < top
    assert count(IntacctClient(conn, entity_id="")) == top
    assert count(client.top_level().for_entity("EAST")) == east
    assert client.for_entity("EAST").retry_policy is client.retry_policy
    with pytest.raises(ValueError, match="top_level"):
        client.for_entity(" ")


def test_every_post_and_patch_carries_an_idempotency_key(emulator: EmulatorServer) -> None:
    client = IntacctClient(factories.connection(emulator))
    response = client.request("POST", f"/objects/{VENDOR}", _new_vendor())
    generated = response.headers["Idempotency-Key"]
    assert uuid.UUID(generated)
    given = client.request(
        "PATCH",
        f"/objects/{VENDOR}/{response.result['key']}",
        {"name": "Renamed"},
        idempotency_key="patch-vendor-1",
    )
    assert given.headers["Idempotency-Key"] == "patch-vendor-1"
    # The same key with another body is a conflict, never a silent second write.
    with pytest.raises(ConflictError) as info:
        client.update(VENDOR, response.result["key"], {"name": "Other"}, "patch-vendor-1")
    assert info.value.status_code == 409


def test_validation_error_carries_intacct_details(emulator: EmulatorServer) -> None:
    client = IntacctClient(factories.connection(emulator))
    with pytest.raises(IntacctValidationError) as info:
        client.create(VENDOR, {"id": "V-NONAME"})
    err = info.value
    assert err.status_code in (400, 422)
    assert err.details
    assert err.code
    assert str(err).startswith("POST /objects/accounts-payable/vendor:")
    assert ApiCallLog.objects.get().error_code
    assert emulator.api_calls("DEMO-CO") == 1  # 4xx is never retried
    with pytest.raises(MethodNotAllowedError):
        client.request("DELETE", f"/objects/{VENDOR}")


def test_nested_error_shape_is_parsed(emulator: EmulatorServer) -> None:
    emulator.configure(rest_error_shape="nested")
    client = IntacctClient(factories.connection(emulator))
    with pytest.raises(NotFoundError) as info:
        client.get(VENDOR, "999999")
    assert info.value.code == "notFound"
    assert info.value.error_id


def test_bad_arguments_raise_value_errors_before_any_request(emulator: EmulatorServer) -> None:
    client = IntacctClient(factories.connection(emulator))
    with pytest.raises(ValueError, match="object path"):
        client.get("../../oauth2/token", "1")
    with pytest.raises(ValueError, match="record key"):
        client.get(VENDOR, "1/2")
    with pytest.raises(ValueError, match="at most 500"):
        client.get_many(VENDOR, [str(i) for i in range(501)])
    with pytest.raises(ValueError, match="page_size"):
        list(client.query(VENDOR, ["id"], page_size=5000))
    with pytest.raises(ValueError, match="needs its 'key'"):
        client.update_many(VENDOR, [{"name": "x"}])
    assert emulator.api_calls() == 0


# --- entities --------------------------------------------------------------------------


def test_entity_header_scopes_reads_and_writes(emulator: EmulatorServer) -> None:
    conn = factories.connection(emulator)
    top = IntacctClient(conn)
    east = IntacctClient(conn, entity_id="EAST")
    west = IntacctClient(conn, entity_id="WEST")
    ref = east.create(VENDOR, _new_vendor(name="Eastern Vendor"))
    [record] = _vendors(emulator, "Eastern Vendor")
    assert record["entity"]["id"] == "EAST"
    assert east.get(VENDOR, ref["key"])["name"] == "Eastern Vendor"
    assert top.get(VENDOR, ref["key"])["name"] == "Eastern Vendor"
    with pytest.raises(NotFoundError):
        west.get(VENDOR, ref["key"])
    count_top = sum(1 for _ in top.query(VENDOR, ["key"]))
    count_east = sum(1 for _ in east.query(VENDOR, ["key"]))
    assert count_top == 251
    assert count_east == 200 + 25 + 1  # shared + its own
    # A connection with a default entity sends it; entity_id="" forces top level.
    conn.entity_id = "WEST"
    assert sum(1 for _ in IntacctClient(conn).query(VENDOR, ["key"])) == 225
    assert sum(1 for _ in IntacctClient(conn, entity_id="").query(VENDOR, ["key"])) == 251


# --- queries ---------------------------------------------------------------------------


def test_query_follows_every_page_with_filters(emulator: EmulatorServer) -> None:
    client = IntacctClient(factories.connection(emulator))
    rows = list(
        client.query(
            VENDOR,
            ["key", "id", "status"],
            filters=[{"$eq": {"status": "active"}}, {"$startsWith": {"id": "VEND-001"}}],
            filter_expression="1 and 2",
            order_by=[{"id": "desc"}],
            page_size=7,
        )
    )
    expected = sorted(
        (
            r["id"]
            for r in emulator.records("DEMO-CO", VENDOR)
            if r["status"] == "active" and r["id"].startswith("VEND-001")
        ),
        reverse=True,
    )
    assert [r["id"] for r in rows] == expected
    assert len(expected) > 7
    pages = ApiCallLog.objects.filter(path="/services/core/query").count()
    assert pages == -(-len(expected) // 7)


def test_query_pages_are_fetched_lazily(emulator: EmulatorServer) -> None:
    client = IntacctClient(factories.connection(emulator))
    rows = client.query(VENDOR, ["key"], page_size=100)
    assert emulator.api_calls() == 0
    first = [next(rows) for _ in range(100)]
    assert len(first) == 100
    assert emulator.api_calls() == 1
    assert len(list(rows)) == 150
    assert emulator.api_calls() == 3


class _LoopingQueryServer(BaseHTTPRequestHandler):
    """A broken server whose query answers always point ``next`` back at page one."""

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length))
        payload = {
            "ia::result": [{"id": f"row-{body['start']}"}],
            "ia::meta": {"totalCount": 9, "start": body["start"], "pageSize": 1, "next": 1},
        }
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


def test_a_next_that_does_not_advance_stops_the_query(
    emulator: EmulatorServer, settings: Any
) -> None:
    conn = factories.connection(emulator)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _LoopingQueryServer)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        point_at_emulator(
            settings, emulator, API_BASE_URL=f"http://127.0.0.1:{server.server_port}/ia/api/v1"
        )
        rows = IntacctClient(conn).query(VENDOR, ["id"], page_size=1)
        assert next(rows) == {"id": "row-1"}
        with pytest.raises(IntacctAPIError, match="does not advance"):
            next(rows)
    finally:
        server.shutdown()
        server.server_close()


# --- tokens during calls ---------------------------------------------------------------


def test_token_expiring_at_intacct_mid_query_is_refreshed_once(
    emulator: EmulatorServer,
) -> None:
    """Page 2 answers 401 GW-0040: one refresh, one replay, no row lost or repeated."""
    conn = factories.connection(emulator)
    client = IntacctClient(conn)
    rows = client.query(VENDOR, ["key"], page_size=100)
    keys = [next(rows)["key"] for _ in range(100)]
    assert emulator.expire_tokens("DEMO-CO") >= 1
    keys += [r["key"] for r in rows]
    assert len(keys) == len(set(keys)) == 250
    assert emulator.token_requests("refresh_token") == 1
    assert Token.objects.get(pk=conn.pk).version == 2
    log = list(ApiCallLog.objects.filter(connection=conn).order_by("pk"))
    assert [c.status for c in log] == [200, 200, 200]


def test_token_reaching_its_expiry_mid_query_is_refreshed_before_the_next_page(
    emulator: EmulatorServer,
) -> None:
    """The clock passes the stored expiry between pages: a proactive refresh, no 401."""
    conn = factories.connection(emulator)
    client = IntacctClient(conn)
    expires_at = Token.objects.get(pk=conn.pk).expires_at
    with time_machine.travel(timezone.now(), tick=True) as traveller:
        rows = client.query(VENDOR, ["key"], page_size=100)
        keys = [next(rows)["key"] for _ in range(100)]
        traveller.move_to(expires_at - timedelta(seconds=10))
        keys += [r["key"] for r in rows]
    assert len(set(keys)) == 250
    assert emulator.token_requests("refresh_token") == 1
    assert Token.objects.get(pk=conn.pk).version == 2


def test_expired_token_with_rest_1206_is_refreshed(emulator: EmulatorServer) -> None:
    emulator.configure(expired_token_error="rest1206")
    conn = factories.connection(emulator)
    emulator.expire_tokens("DEMO-CO")
    assert IntacctClient(conn).get(VENDOR, "1")["key"] == "1"
    assert emulator.token_requests("refresh_token") == 1


def test_second_rejection_after_the_refresh_raises_without_looping(
    emulator: EmulatorServer,
) -> None:
    conn = factories.connection(emulator, user="jane")
    # The user disappears from the company: every token of theirs is rejected (REST-2102),
    # while the refresh itself still succeeds.
    with emulator.emulator.state.transaction() as store:
        store.companies["DEMO-CO"].users.pop("jane")
    with pytest.raises(AuthenticationError) as info:
        IntacctClient(conn).get(VENDOR, "1")
    assert info.value.error_id == "REST-2102"
    assert info.value.status_code == 401
    assert emulator.token_requests("refresh_token") == 1
    call = ApiCallLog.objects.get()
    assert (call.status, call.error_code) == (401, "REST-2102")
    conn.refresh_from_db()
    assert conn.status == ConnectionStatus.ACTIVE


def test_revoked_grant_needs_reauthorization_with_one_signal(
    emulator: EmulatorServer, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    conn = factories.connection(emulator)
    sent: list[dict[str, Any]] = []
    signals.connection_needs_reauth.connect(
        lambda **kw: sent.append(kw), weak=False, dispatch_uid="client-revoked"
    )
    try:
        emulator.revoke_grants("DEMO-CO")
        client = IntacctClient(conn)
        with django_capture_on_commit_callbacks(execute=True):
            with pytest.raises(NeedsReauthorization):
                client.get(VENDOR, "1")
            with pytest.raises(NeedsReauthorization):
                client.get(VENDOR, "2")
    finally:
        signals.connection_needs_reauth.disconnect(dispatch_uid="client-revoked")
    assert len(sent) == 1
    conn.refresh_from_db()
    assert conn.status == ConnectionStatus.NEEDS_REAUTH
    assert emulator.token_requests("refresh_token") == 1
    first, second = ApiCallLog.objects.order_by("pk")
    assert first.status == 401
    # The second call never left: the client re-read the connection's status.
    assert (second.status, second.error_code) == (None, "invalid_grant")


def test_sender_id_not_authorised_is_a_permission_error(emulator: EmulatorServer) -> None:
    conn = factories.connection(emulator, company="SECOND-CO")
    with pytest.raises(PermissionDeniedError) as info:
        IntacctClient(conn).get(VENDOR, "1")
    assert info.value.code == "GW-0011"
    assert "sender ID" in str(info.value)
    assert emulator.token_requests() == 0


def test_an_inactive_company_is_a_permission_error_without_a_refresh(
    emulator: EmulatorServer,
) -> None:
    """The emulator answers 401 GW-0011 for an unknown or inactive company: the sender-ID
    explanation reaches the caller, and no token is refreshed for nothing."""
    conn = factories.connection(emulator)
    with emulator.state.transaction() as store:
        store.companies["DEMO-CO"].active = False
    with pytest.raises(PermissionDeniedError) as info:
        IntacctClient(conn).get(VENDOR, "1")
    assert (info.value.status_code, info.value.code) == (401, "GW-0011")
    assert "sender ID" in str(info.value)
    assert emulator.token_requests() == 0


# --- retries ---------------------------------------------------------------------------


def test_throttling_honours_retry_after(emulator: EmulatorServer, fake_sleep: FakeSleep) -> None:
    emulator.configure(retry_after=1)
    emulator.set_fault("429", company="DEMO-CO", count=1)
    conn = factories.connection(emulator)
    assert IntacctClient(conn).get(VENDOR, "1")["key"] == "1"
    # Retry-After: 1, plus at most RETRY_BACKOFF (0.01) of jitter.
    assert len(fake_sleep.delays) == 1
    assert 1.0 <= fake_sleep.delays[0] <= 1.01
    assert emulator.api_calls("DEMO-CO") == 2
    call = ApiCallLog.objects.get()
    assert call.retries == 1
    assert call.duration_ms >= 1000  # the injected clock counts the wait


def test_retry_after_beyond_the_cap_raises_rate_limited_at_once(
    emulator: EmulatorServer, settings: Any, fake_sleep: FakeSleep
) -> None:
    point_at_emulator(settings, emulator, RETRY_AFTER_MAX=0.5)
    emulator.configure(retry_after=30)
    emulator.set_fault("429", company="DEMO-CO")
    with pytest.raises(RateLimited) as info:
        IntacctClient(factories.connection(emulator)).get(VENDOR, "1")
    assert fake_sleep.delays == []
    assert info.value.retry_after == 30
    assert info.value.code == "GW-0010"
    assert emulator.api_calls("DEMO-CO") == 1


def test_server_errors_followed_by_success(emulator: EmulatorServer, fake_sleep: FakeSleep) -> None:
    emulator.set_fault("500", company="DEMO-CO", count=2)
    emulator.set_fault("503", company="DEMO-CO", count=1)
    conn = factories.connection(emulator)
    rows = list(IntacctClient(conn).query(VENDOR, ["key"], page_size=250))
    assert len(rows) == 250
    assert emulator.api_calls("DEMO-CO") == 4
    call = ApiCallLog.objects.get()
    assert (call.status, call.retries, call.error_code) == (200, 3, "")
    # Two 500s: full-jitter backoff under the caps of attempts 0 and 1 (0.01, 0.02);
    # the 503 carries Retry-After: 1.
    waits = sorted(fake_sleep.delays)
    assert len(waits) == 3
    assert all(0 <= w <= 0.02 for w in waits[:2])
    assert 1.0 <= waits[2] <= 1.01


def test_persistent_server_errors_raise_after_max_retries(
    emulator: EmulatorServer, settings: Any, fake_sleep: FakeSleep
) -> None:
    point_at_emulator(settings, emulator, MAX_RETRIES=2)
    emulator.set_fault("500", company="DEMO-CO")
    with pytest.raises(ServerError) as info:
        IntacctClient(factories.connection(emulator)).get(VENDOR, "1")
    assert info.value.code == "GW-0001"
    assert info.value.status_code == 500
    assert emulator.api_calls("DEMO-CO") == 3
    call = ApiCallLog.objects.get()
    assert (call.status, call.retries, call.error_code) == (500, 2, "GW-0001")
    assert len(fake_sleep.delays) == 2  # one wait before each retry, none after the last


def test_a_client_waits_with_its_own_sleep_and_clock(
    emulator: EmulatorServer, fake_sleep: FakeSleep
) -> None:
    """``sleep=`` and ``clock=`` replace the defaults for one client only."""
    slept: list[float] = []
    ticks = iter(range(0, 1000, 5))
    emulator.set_fault("503", company="DEMO-CO", count=1)
    client = IntacctClient(
        factories.connection(emulator), sleep=slept.append, clock=lambda: next(ticks)
    )
    assert client.get(VENDOR, "1")["key"] == "1"
    assert len(slept) == 1
    assert slept[0] >= 1.0  # Retry-After: 1
    assert ApiCallLog.objects.get().duration_ms == 5000  # one tick of the fake clock
    # The shared default (the fake_sleep fixture's) was not used, nor replaced.
    assert client_module.default_retry_policy.sleep is fake_sleep
    assert fake_sleep.delays == []


def test_delete_is_not_retried_after_a_server_error(emulator: EmulatorServer) -> None:
    emulator.set_fault("503", company="DEMO-CO", count=1)
    with pytest.raises(ServerError):
        IntacctClient(factories.connection(emulator)).delete(VENDOR, "1")
    assert emulator.api_calls("DEMO-CO") == 1
    assert emulator.record_count("DEMO-CO", VENDOR) == 250


def test_garbage_body_is_a_transport_error(emulator: EmulatorServer) -> None:
    emulator.set_fault("garbage", company="DEMO-CO", count=1)
    conn = factories.connection(emulator)
    with pytest.raises(TransportError, match="not JSON") as info:
        IntacctClient(conn).get(VENDOR, "1")
    assert info.value.status_code == 200
    assert ApiCallLog.objects.get().error_code == "unreadable_body"
    assert IntacctClient(conn).get(VENDOR, "1")["key"] == "1"


def test_dropped_connection_on_a_read_is_retried(
    emulator: EmulatorServer, fake_sleep: FakeSleep
) -> None:
    emulator.set_fault("drop", company="DEMO-CO", count=1)
    conn = factories.connection(emulator)
    assert IntacctClient(conn).get(VENDOR, "1")["key"] == "1"
    assert ApiCallLog.objects.get().retries == 1


def test_post_whose_answer_is_lost_is_retried_with_the_same_key(
    socket_emulator: EmulatorServer, settings: Any
) -> None:
    """The first POST is processed after the client gave up waiting (its answer is lost);
    the retry carries the same Idempotency-Key, so exactly one record exists. Customers
    are auto-numbered (no unique ID to reject a duplicate): only the key prevents one.
    Over a real socket: the read timeout fires while the emulator still works."""
    emulator = socket_emulator
    customer = "accounts-receivable/customer"
    point_at_emulator(settings, emulator, HTTP_TIMEOUT=(2.0, 0.3))
    emulator.set_fault("slow", company="DEMO-CO", count=1, seconds=0.8)
    conn = factories.connection(emulator)
    before = emulator.record_count("DEMO-CO", customer)
    threads = set(threading.enumerate())
    ref = IntacctClient(conn).create(customer, {"name": "Exactly Once Ltd"})
    finish_emulator_requests(threads)  # the slow first request too
    records = [r for r in emulator.records("DEMO-CO", customer) if r["name"] == "Exactly Once Ltd"]
    assert len(records) == 1
    assert records[0]["key"] == ref["key"]
    assert emulator.record_count("DEMO-CO", customer) == before + 1
    assert emulator.api_calls("DEMO-CO") == 2
    assert ApiCallLog.objects.get().retries == 1


def test_post_on_a_dropped_connection_is_retried_with_the_same_key(
    emulator: EmulatorServer, fake_sleep: FakeSleep
) -> None:
    """The emulator closes the socket without answering: the POST is sent again with the
    same Idempotency-Key (the emulator echoes it) and creates one record."""
    emulator.set_fault("drop", company="DEMO-CO", count=1)
    client = IntacctClient(factories.connection(emulator))
    response = client.request(
        "POST",
        "/objects/accounts-receivable/customer",
        {"name": "Dropped Once"},
        idempotency_key="dropped-once-1",
    )
    assert response.status_code == 201
    assert response.headers["Idempotency-Key"] == "dropped-once-1"
    names = [r["name"] for r in emulator.records("DEMO-CO", "accounts-receivable/customer")]
    assert names.count("Dropped Once") == 1
    assert ApiCallLog.objects.get().retries == 1


def test_transport_errors_never_leak_the_token(
    emulator: EmulatorServer,
    settings: Any,
    caplog: pytest.LogCaptureFixture,
    fake_sleep: FakeSleep,
) -> None:
    conn = factories.connection(emulator)
    secret = Token.objects.get(pk=conn.pk).access_token
    point_at_emulator(
        settings, emulator, API_BASE_URL="http://127.0.0.1:1/ia/api/v1", MAX_RETRIES=1
    )
    with caplog.at_level("DEBUG"), pytest.raises(TransportError) as info:
        IntacctClient(conn).get(VENDOR, "1")
    assert secret not in str(info.value)
    assert secret not in repr(info.value.__cause__)
    assert all(secret not in r.getMessage() for r in caplog.records)
    call = ApiCallLog.objects.get()
    assert call.status is None
    assert call.retries == 1
    assert call.error_code == "ConnectionError"


# --- concurrency cap -------------------------------------------------------------------


def _use_cache_slots(settings: Any, kind: str) -> None:
    """CONCURRENCY_BACKEND = 'cache' on a LocMemCache or on the real Redis at REDIS_URL."""
    settings.CACHES = {**settings.CACHES, "intacct_slots": cache_config(kind, "c")}
    settings.INTACCT_CONNECT = {
        **settings.INTACCT_CONNECT,
        "CONCURRENCY_BACKEND": "cache",
        "CONCURRENCY_CACHE": "intacct_slots",
    }


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("backend", ["database", pytest.param("redis", marks=pytest.mark.redis)])
def test_concurrency_cap_keeps_intacct_below_its_limit(
    emulator: EmulatorServer, settings: Any, backend: str
) -> None:
    """Six threads call one company slowly; Intacct's own limit (2) is never hit, with
    the slots in the database and in Redis.

    PostgreSQL only: SQLite's in-memory test database fails concurrent writers from
    threads at once ("database table is locked") instead of waiting."""
    require_postgres()
    if backend == "redis":
        _use_cache_slots(settings, "redis")
    emulator.configure(concurrency_limit=2)
    emulator.set_fault("slow", company="DEMO-CO", seconds=0.1)
    conn = factories.connection(emulator)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            with IntacctClient(conn.pk) as client:  # close(): log rows written, slots freed
                for _ in range(3):
                    client.get(VENDOR, "1")
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)
        finally:
            concurrency.close_private_connection()
            db_connection.close()

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert emulator.max_concurrency("DEMO-CO") == 2
    assert emulator.counters()["throttled"].get("DEMO-CO", 0) == 0
    assert ApiCallLog.objects.filter(status=200).count() == 18
    assert concurrency.busy_slots("DEMO-CO") == 0
    assert ConcurrencySlot.objects.filter(holder__gt="").count() == 0
    concurrency.close_private_connection()


def test_cache_backend_holds_the_slot_in_the_cache(emulator: EmulatorServer, settings: Any) -> None:
    """With the slots in the cache the client waits for a free one, gives up with
    RateLimited (the call is logged), and never touches the slot table."""
    _use_cache_slots(settings, "locmem")
    settings.INTACCT_CONNECT = {
        **settings.INTACCT_CONNECT,
        "COMPANY_CONCURRENCY": 1,
        "CONCURRENCY_SLOT_TTL": 1,
        "CONCURRENCY_SLOT_LINGER": 0,  # each call gives its slot back at once
    }
    conn = factories.connection(emulator)
    slot_rows = list(ConcurrencySlot.objects.values_list("company_id", "slot", "holder"))
    client = IntacctClient(conn)
    assert client.get(VENDOR, "1")["key"] == "1"
    assert concurrency.busy_slots("DEMO-CO") == 0
    # Another worker holds the only slot (for longer than this client waits).
    caches["intacct_slots"].set(concurrency.slot_key("DEMO-CO", 0), "other", timeout=60)
    with pytest.raises(RateLimited, match="concurrency slots"):
        client.get(VENDOR, "1")
    assert emulator.api_calls("DEMO-CO") == 1  # the second call never left
    concurrency.release("DEMO-CO", 0, "other")
    assert client.get(VENDOR, "1")["key"] == "1"
    assert [(c.status, c.error_code) for c in ApiCallLog.objects.order_by("pk")] == [
        (200, ""),
        (None, "RateLimited"),
        (200, ""),
    ]
    assert list(ConcurrencySlot.objects.values_list("company_id", "slot", "holder")) == (slot_rows)


def test_cache_backend_fails_closed_when_the_cache_is_down(
    emulator: EmulatorServer, settings: Any
) -> None:
    """The slot cache does not answer: the call is not sent without the cap; it raises
    the cache client's error and is logged."""
    import redis

    settings.CACHES = {
        **settings.CACHES,
        "intacct_slots": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
        },
    }
    settings.INTACCT_CONNECT = {
        **settings.INTACCT_CONNECT,
        "CONCURRENCY_BACKEND": "cache",
        "CONCURRENCY_CACHE": "intacct_slots",
    }
    client = IntacctClient(factories.connection(emulator))
    with pytest.raises(redis.ConnectionError):
        client.get(VENDOR, "1")
    assert emulator.api_calls("DEMO-CO") == 0
    call = ApiCallLog.objects.get()
    assert (call.status, call.error_code) == (None, "ConnectionError")


@pytest.mark.django_db(transaction=True)
def test_back_to_back_calls_make_no_database_round_trip(
    emulator: EmulatorServer, settings: Any
) -> None:
    """Autocommit mode (a Celery task, a command): a reused client's call with a fresh
    token runs no statement at all. Its slot stays parked for the next call and its log
    row waits for the batch; close() writes the rows and frees the slot."""
    conn = factories.connection(emulator)
    client = IntacctClient(conn)
    client.get(VENDOR, "1")  # token cached, slot claimed then parked
    assert concurrency.parked_slots("DEMO-CO") == 1
    assert count_statements(lambda: client.get(VENDOR, "2")) == 0
    assert emulator.api_calls("DEMO-CO") == 2
    assert calllog.pending() == 2
    assert not ApiCallLog.objects.exists()
    assert concurrency.busy_slots("DEMO-CO") == 1  # parked: still claimed for other processes
    client.close()
    assert calllog.pending() == 0
    assert concurrency.busy_slots("DEMO-CO") == 0
    assert [(c.path, c.status) for c in ApiCallLog.objects.order_by("pk")] == [
        (f"/objects/{VENDOR}/1", 200),
        (f"/objects/{VENDOR}/2", 200),
    ]
    concurrency.close_private_connection()


@pytest.mark.django_db(transaction=True)
def test_a_parked_slot_is_released_after_the_linger_time(
    emulator: EmulatorServer, settings: Any
) -> None:
    """Nobody takes the slot back: the background releaser frees it after
    CONCURRENCY_SLOT_LINGER seconds, so an idle process never blocks other workers."""
    point_at_emulator(settings, emulator, CONCURRENCY_SLOT_LINGER=0.05)
    conn = factories.connection(emulator)
    IntacctClient(conn).get(VENDOR, "1")
    assert concurrency.busy_slots("DEMO-CO") == 1
    deadline = time.monotonic() + 5
    while concurrency.busy_slots("DEMO-CO") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert concurrency.busy_slots("DEMO-CO") == 0
    assert concurrency.parked_slots() == 0
    concurrency.close_private_connection()


# --- health, usage, retention ----------------------------------------------------------


def test_health_check_records_the_outcome(emulator: EmulatorServer) -> None:
    good = factories.connection(emulator)
    result = IntacctClient(good).health_check()
    assert result.ok
    assert result.status_code == 200
    good.refresh_from_db()
    assert good.health_ok is True
    assert good.health_checked_at is not None
    bad = factories.connection(emulator, company="SECOND-CO")
    result = IntacctClient(bad).health_check()
    assert not result.ok
    assert result.error_code == "GW-0011"
    bad.refresh_from_db()
    assert bad.health_ok is False
    event = ConnectionEvent.objects.get(connection=bad, kind=EventKind.HEALTH_CHECK)
    assert event.error_code == "GW-0011"


def test_usage_counters_and_pruning(emulator: EmulatorServer) -> None:
    conn = factories.connection(emulator)
    client = IntacctClient(conn)
    client.get(VENDOR, "1")
    with pytest.raises(NotFoundError):
        client.get(VENDOR, "999999")
    figures = usage(conn)
    assert (figures.calls, figures.errors) == (2, 1)
    assert figures.last_call_at is not None
    old = timezone.now() - timedelta(days=31)
    ApiCallLog.objects.filter(path__endswith="/999999").update(created_at=old)
    assert usage(conn).calls == 1
    assert prune_api_call_log() == 1
    assert prune_api_call_log() == 0
    assert ApiCallLog.objects.count() == 1


def test_db_queries_per_call_with_a_fresh_token(emulator: EmulatorServer, settings: Any) -> None:
    """Inside a transaction (as here): one token read and one call-log write per call (the
    cap disabled, or slots in the cache, parked between calls); slots in the database add
    one claim and one release on SQLite. In autocommit mode a reused client runs none:
    see test_back_to_back_calls_make_no_database_round_trip."""
    conn = factories.connection(emulator)
    point_at_emulator(settings, emulator, COMPANY_CONCURRENCY=0)
    assert count_statements(lambda: IntacctClient(conn).get(VENDOR, "1")) == 2
    client = IntacctClient(conn)
    client.get(VENDOR, "1")
    assert count_statements(lambda: client.get(VENDOR, "2")) == 1  # the token stays cached
    point_at_emulator(settings, emulator, COMPANY_CONCURRENCY=2)  # slots in the database
    client.get(VENDOR, "1")  # the company's slot rows exist from now on
    if db_connection.vendor == "sqlite":  # slot statements inside the caller's transaction
        assert count_statements(lambda: IntacctClient(conn).get(VENDOR, "1")) == 4
        assert count_statements(lambda: client.get(VENDOR, "2")) == 3
    else:  # private autocommit connection: the slot stays parked between calls
        assert count_statements(lambda: IntacctClient(conn).get(VENDOR, "1")) == 2
        assert count_statements(lambda: client.get(VENDOR, "2")) == 1
    _use_cache_slots(settings, "locmem")  # cap on, slots in the cache
    assert count_statements(lambda: IntacctClient(conn).get(VENDOR, "1")) == 2
    assert count_statements(lambda: client.get(VENDOR, "2")) == 1
    concurrency.close_private_connection()


# --- memory ----------------------------------------------------------------------------


def _peak_while_iterating(client: IntacctClient, expected: int) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        seen = 0
        for _ in client.query(VENDOR, ["key", "id", "name"], page_size=1000):
            seen += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seen == expected
    return peak


@pytest.mark.slow
def test_iterating_100000_records_uses_constant_memory(socket_emulator: EmulatorServer) -> None:
    """Over a real socket: in process, the emulator's own page building would be traced
    along with the client."""
    emulator = socket_emulator
    conn = factories.connection(emulator)
    emulator.generate_records("DEMO-CO", VENDOR, 10_000 - 250)
    client = IntacctClient(conn)
    small = _peak_while_iterating(client, 10_000)
    emulator.generate_records("DEMO-CO", VENDOR, 90_000)
    large = _peak_while_iterating(client, 100_000)
    # The emulator runs in this process, so its own per-request memory is traced too; the
    # peak must not grow with the number of records (10x more records here).
    assert large < small * 1.5 + 256 * 1024, (small, large)
    assert ApiCallLog.objects.filter(path="/services/core/query").count() == 10 + 100


def test_request_escape_hatch_keeps_the_query_string_out_of_the_log(
    emulator: EmulatorServer,
) -> None:
    client = IntacctClient(factories.connection(emulator))
    response = client.request("GET", "services/core/model?name=accounts-payable/vendor")
    assert response.status_code == 200
    assert "fields" in response.result
    assert ApiCallLog.objects.get().path == "/services/core/model"
