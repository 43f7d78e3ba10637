from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import connection as db_connection
from django.test import override_settings
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from intacct_connect import crypto, flows, oauth
from intacct_connect.exceptions import IntacctConnectError, OAuthStateError, TokenRequestError
from intacct_connect.models import (
    Connection,
    ConnectionEvent,
    ConnectionStatus,
    EventKind,
    OAuthFlow,
    Token,
)
from tests import factories
from tests.helpers import require_postgres
from tests.settings import INTACCT_CONNECT, TEST_OLD_TOKEN_KEY, TEST_TOKEN_KEY

HOST = "app.example.com"

#: Open-redirect payloads (bar item 12): none may survive safe_next_url().
OPEN_REDIRECTS = [
    "//evil.com",
    "///evil.com",
    "////evil.com",
    "/\\evil.com",
    "\\/evil.com",
    "\\\\evil.com",
    "/\\/evil.com",
    "https:evil.com",
    "http:evil.com",
    "https://evil.com",
    "http://evil.com/",
    "HTTPS://evil.com",
    "//evil.com/%2F..",
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    "javascript://%0aalert(1)",
    "jav\tascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "%2F%2Fevil.com",
    "%2f%2fevil.com",
    "/%2F%2Fevil.com",
    "%5C%5Cevil.com",
    "/%5Cevil.com",
    "/\t/evil.com",
    "/\n/evil.com",
    "/\r/evil.com",
    " //evil.com",
    "\x00//evil.com",
    "\x01/evil.com",
    "/ /evil.com",
    "//evil.com@app.example.com",
    "https://app.example.com@evil.com",
    "//app.example.com.evil.com",
    "https://app.example.com.evil.com/",
    "ftp://evil.com",
    "//\u3002evil.com",
    "/\uff0fevil.com",
    "\uff0f\uff0fevil.com",
    "/%EF%BC%8Fevil.com",
    "//\uff45\uff56\uff49\uff4c.com",
    "/%09/evil.com",
    "/%0d%0a/evil.com",
    "%09//evil.com",
    "//evil%E3%80%82com",
    "https:/evil.com",
    "https:\\\\evil.com",
    "http:/\\evil.com",
    "@evil.com",
    "evil.com",
    "../evil.com",
    ".//evil.com",
    "?next=//evil.com",
    "#//evil.com",
    "",
    "https://app.example.com/dashboard/",  # same host but absolute: only relative paths survive
]


@pytest.mark.parametrize("payload", OPEN_REDIRECTS)
def test_open_redirect_corpus_rejected(payload: str) -> None:
    assert flows.safe_next_url(payload, host=HOST, secure=True) == ""


@pytest.mark.parametrize("good", ["/", "/dashboard/", "/a/b?x=1&y=%2F%2F", "/intacct/#done"])
def test_same_site_paths_survive(good: str) -> None:
    assert flows.safe_next_url(good, host=HOST, secure=True) == good


def _browser_target_is_same_origin(url: str) -> bool:
    """What a browser would make of a Location header value, approximately: strip
    tab/newline, treat backslashes as slashes, then require a path-only URL."""
    cleaned = url.replace("\t", "").replace("\n", "").replace("\r", "").replace("\\", "/")
    cleaned = cleaned.lstrip("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e\x0f ")
    parts = urlsplit(cleaned)
    return cleaned.startswith("/") and not cleaned.startswith("//") and not parts.netloc


NEXT_CANDIDATES = st.one_of(
    st.text(max_size=60),
    st.text(alphabet="/\\:.@%?#evilcomhtps2F5C\t\n ", max_size=30),
    st.builds(
        lambda a, b: a + b,
        st.sampled_from(["/", "//", "/\\", "\\", "https:", "javascript:", "%2F", ""]),
        st.text(max_size=30),
    ),
)


def _check_next(candidate: str) -> None:
    result = flows.safe_next_url(candidate, host=HOST, secure=True)
    assert result in ("", candidate)
    if result:
        assert _browser_target_is_same_origin(result)
        assert not urlsplit(result).scheme


@hsettings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(NEXT_CANDIDATES)
def test_hypothesis_next_is_empty_or_same_site_path(candidate: str) -> None:
    _check_next(candidate)


@pytest.mark.slow
@hsettings(max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(NEXT_CANDIDATES)
def test_hypothesis_next_ten_thousand(candidate: str) -> None:
    """Bar item 12's figure: 10,000 generated strings."""
    _check_next(candidate)


def test_entity_id_validation() -> None:
    assert flows.clean_entity_id("  EAST ") == "EAST"
    assert flows.clean_entity_id(None) == ""
    with pytest.raises(ValidationError):
        flows.clean_entity_id("x" * 101)
    with pytest.raises(ValidationError):
        flows.clean_entity_id("EA\x00ST")


@pytest.mark.parametrize(
    ("username", "expected"),
    [
        ("ws@ACME", ("ws", "ACME", "")),
        (" ws@ACME|US East ", ("ws", "ACME", "US East")),
        ("Admin@MyCompany|Central Region", ("Admin", "MyCompany", "Central Region")),
    ],
)
def test_parse_username(username: str, expected: tuple[str, str, str]) -> None:
    who = flows.parse_username(username)
    assert (who.user_id, who.company_id, who.entity_id) == expected
    assert flows.parse_username(who.username) == who


@pytest.mark.parametrize(
    "bad", ["", "ws", "@ACME", "ws@", "ws@ACME|", "ws@A@B", "ws@ACME|E|F", "ws@AC\nME", "|x"]
)
def test_parse_username_rejects(bad: str) -> None:
    with pytest.raises(ValidationError):
        flows.parse_username(bad)


# --- start_connect / consume_flow -------------------------------------------------------


def start(
    user: Any, *, session: str = "session-1", tenant: str = "user:1", **kw: Any
) -> tuple[str, OAuthFlow]:
    started = flows.start_connect(session_key=session, user=user, tenant_key=tenant, **kw)
    state = parse_qs(urlsplit(started.authorize_url).query)["state"][0]
    return state, OAuthFlow.objects.get(pk=started.flow_id)


@pytest.fixture
def alice(django_user_model: Any) -> AbstractBaseUser:
    return django_user_model.objects.create_user("alice", password="pw")  # type: ignore[no-any-return]


@pytest.fixture
def bob(django_user_model: Any) -> AbstractBaseUser:
    return django_user_model.objects.create_user("bob", password="pw")  # type: ignore[no-any-return]


@pytest.mark.django_db
def test_start_connect_stores_only_hashes_and_ciphertext(alice: AbstractBaseUser) -> None:
    started = flows.start_connect(
        session_key="sess-key",
        user=alice,
        tenant_key="user:1",
        next_url="/after/",
        entity_id="EAST",
    )
    query = parse_qs(urlsplit(started.authorize_url).query)
    state = query["state"][0]
    assert len(state) >= 43  # 32 random bytes
    assert query["code_challenge_method"] == ["S256"]
    assert query["redirect_uri"] == [INTACCT_CONNECT["REDIRECT_URI"]]
    assert query["scope"] == ["offline_access"]
    flow = OAuthFlow.objects.get(pk=started.flow_id)
    assert flow.state_hash == hashlib.sha256(state.encode()).hexdigest()
    assert flow.session_key_hash == hashlib.sha256(b"sess-key").hexdigest()
    assert (flow.user_id, flow.tenant_key, flow.entity_id, flow.next_url) == (
        alice.pk,
        "user:1",
        "EAST",
        "/after/",
    )
    assert oauth.code_challenge(flow.code_verifier) == query["code_challenge"][0]
    assert 43 <= len(flow.code_verifier) <= 128
    raw = OAuthFlow.objects.filter(pk=flow.pk).values().get()
    dump = repr(raw)
    assert state not in dump
    assert flow.code_verifier not in dump
    assert "sess-key" not in dump
    assert flow.expires_at - flow.created_at == timedelta(seconds=600)


@pytest.mark.django_db
def test_start_connect_requires_session_and_own_tenant(alice: AbstractBaseUser) -> None:
    with pytest.raises(ValueError, match="session"):
        flows.start_connect(session_key="", user=alice, tenant_key="user:1")
    other = factories.connection(tenant="user:2")
    with pytest.raises(ValueError, match="own tenant"):
        flows.start_connect(session_key="s", user=alice, tenant_key="user:1", reconnect=other)


@pytest.mark.django_db
def test_consume_once(alice: AbstractBaseUser) -> None:
    state, flow = start(alice)
    got = flows.consume_flow(state=state, session_key="session-1", user=alice, tenant_key="user:1")
    assert got.pk == flow.pk
    assert got.consumed_at is not None
    with pytest.raises(OAuthStateError) as err:
        flows.consume_flow(state=state, session_key="session-1", user=alice, tenant_key="user:1")
    assert err.value.code == "state_replayed"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("state_kind", "session", "user_kind", "tenant", "problem"),
    [
        ("none", "session-1", "alice", "user:1", "state_missing"),
        ("unknown", "session-1", "alice", "user:1", "state_unknown"),
        ("huge", "session-1", "alice", "user:1", "state_unknown"),
        ("good", "session-2", "alice", "user:1", "state_foreign"),
        ("good", None, "alice", "user:1", "state_foreign"),
        ("good", "session-1", "bob", "user:1", "state_foreign"),
        ("good", "session-1", "anon", "user:1", "state_foreign"),
        ("good", "session-1", "alice", "user:2", "state_foreign"),
        ("good", "session-1", "alice", None, "state_foreign"),
    ],
)
def test_consume_refuses_and_leaves_flow_unconsumed(
    alice: AbstractBaseUser,
    bob: AbstractBaseUser,
    state_kind: str,
    session: str | None,
    user_kind: str,
    tenant: str | None,
    problem: str,
) -> None:
    state, flow = start(alice)
    given_state = {"none": "", "unknown": "x" * 43, "huge": "x" * 5000, "good": state}[state_kind]
    user = {"alice": alice, "bob": bob, "anon": None}[user_kind]
    with pytest.raises(OAuthStateError) as err:
        flows.consume_flow(state=given_state, session_key=session, user=user, tenant_key=tenant)
    assert err.value.code == problem
    flow.refresh_from_db()
    assert flow.consumed_at is None  # a foreign request cannot burn the owner's flow
    # ...so the owner can still finish.
    flows.consume_flow(state=state, session_key="session-1", user=alice, tenant_key="user:1")


@pytest.mark.django_db
def test_consume_expired_after_ttl(alice: AbstractBaseUser) -> None:
    state, _ = start(alice)
    with time_machine.travel(timezone.now() + timedelta(minutes=11)):
        with pytest.raises(OAuthStateError) as err:
            flows.consume_flow(
                state=state, session_key="session-1", user=alice, tenant_key="user:1"
            )
    assert err.value.code == "state_expired"


@pytest.mark.django_db
def test_callback_with_mismatched_configuration_refused(alice: AbstractBaseUser) -> None:
    state, _ = start(alice)
    other = {**INTACCT_CONNECT, "REDIRECT_URI": "https://other.example.com/intacct/callback/"}
    with override_settings(INTACCT_CONNECT=other), pytest.raises(OAuthStateError) as err:
        flows.complete_callback(
            {"state": state, "code": "c"}, session_key="session-1", user=alice, tenant_key="user:1"
        )
    assert err.value.code == "redirect_mismatch"


@pytest.mark.django_db
def test_callback_without_code_refused(alice: AbstractBaseUser) -> None:
    state, _ = start(alice)
    with pytest.raises(OAuthStateError) as err:
        flows.complete_callback(
            {"state": state}, session_key="session-1", user=alice, tenant_key="user:1"
        )
    assert err.value.code == "code_missing"


def test_sender_id_detection() -> None:
    assert flows.is_sender_id_problem("GW-0011")
    assert flows.is_sender_id_problem("unauthorized_client", "Sender ID is not authorized")
    assert not flows.is_sender_id_problem("access_denied", "The user denied access")


# --- mark_needs_reauth, disconnect without Intacct, listing --------------------------------


@pytest.mark.django_db(transaction=True)
def test_mark_needs_reauth_once_per_incident(alice: AbstractBaseUser) -> None:
    from intacct_connect.signals import connection_needs_reauth

    seen: list[dict[str, Any]] = []

    def receiver(**kwargs: Any) -> None:
        seen.append(kwargs)

    connection_needs_reauth.connect(receiver)
    try:
        conn = factories.connection()
        assert flows.mark_needs_reauth(conn, reason="invalid_grant", error_code="invalid_grant")
        assert not flows.mark_needs_reauth(conn.pk, reason="invalid_grant")
    finally:
        connection_needs_reauth.disconnect(receiver)
    conn.refresh_from_db()
    assert conn.status == ConnectionStatus.NEEDS_REAUTH
    assert conn.last_error_code == "invalid_grant"
    assert len(seen) == 1
    assert seen[0]["connection"].pk == conn.pk
    assert seen[0]["reason"] == "invalid_grant"
    assert conn.events.filter(kind=EventKind.NEEDS_REAUTH).count() == 1


@pytest.mark.django_db
def test_disconnect_cleans_up_when_intacct_unreachable(alice: AbstractBaseUser) -> None:
    # tests/settings.py points the API at a dead port: the revocation cannot be sent.
    conn = factories.connection()
    result = flows.disconnect(conn, actor=alice)
    assert not result.revoked_at_intacct
    assert result.error
    conn.refresh_from_db()
    assert conn.status == ConnectionStatus.REVOKED
    assert not Token.objects.filter(pk=conn.pk).exists()
    event = conn.events.get(kind=EventKind.DISCONNECTED)
    assert event.error_code
    assert event.actor == alice
    assert not conn.events.filter(kind=EventKind.REVOKED).exists()


@pytest.mark.django_db
def test_disconnect_superseded_does_not_revoke_the_newer_grant() -> None:
    conn = factories.connection(status=ConnectionStatus.SUPERSEDED)
    result = flows.disconnect(conn)
    assert not result.revoked_at_intacct
    assert "superseded" in result.error
    assert not Token.objects.filter(pk=conn.pk).exists()


@pytest.mark.django_db
def test_disconnect_undecryptable_tokens_still_cleans_up() -> None:
    conn = factories.connection()
    from intacct_connect.crypto import generate_key

    with override_settings(INTACCT_CONNECT={**INTACCT_CONNECT, "TOKEN_KEYS": [generate_key()]}):
        result = flows.disconnect(conn)
    assert not result.revoked_at_intacct
    assert "decrypted" in result.error
    assert not Token.objects.filter(pk=conn.pk).exists()


@pytest.mark.django_db
def test_connections_for_tenant_one_query(django_assert_num_queries: Any) -> None:
    for i in range(5):
        factories.connection(tenant="t1", company=f"C{i}")
    factories.connection(tenant="t2", company="OTHER")
    with django_assert_num_queries(1):
        rows = [(c.company_id, flows.token_of(c)) for c in flows.connections_for_tenant("t1")]
    assert [r[0] for r in rows] == [f"C{i}" for i in range(5)]
    assert all(t is not None for _, t in rows)


@pytest.mark.django_db
def test_purge_flows(alice: AbstractBaseUser) -> None:
    state, _ = start(alice)
    start(alice)
    flows.consume_flow(state=state, session_key="session-1", user=alice, tenant_key="user:1")
    assert flows.purge_flows() == 1
    assert flows.purge_flows(now=timezone.now() + timedelta(hours=1)) == 1
    assert not OAuthFlow.objects.exists()


# --- key rotation --------------------------------------------------------------------------

OLD_ONLY = {**INTACCT_CONNECT, "TOKEN_KEYS": [TEST_OLD_TOKEN_KEY]}


def _key_ids() -> set[str]:
    ids = set()
    for access, refresh in Token.objects.values_list("access_token", "refresh_token"):
        ids.add(access.split(":")[1])
        if refresh:
            ids.add(refresh.split(":")[1])
    for (verifier,) in OAuthFlow.objects.values_list("code_verifier"):
        ids.add(verifier.split(":")[1])
    return ids


@pytest.mark.django_db
def test_rotate_keys_reencrypts_everything_without_changing_values(alice: AbstractBaseUser) -> None:
    new_id = crypto.key_id(crypto.parse_key(TEST_TOKEN_KEY))
    old_id = crypto.key_id(crypto.parse_key(TEST_OLD_TOKEN_KEY))
    with override_settings(INTACCT_CONNECT=OLD_ONLY):
        sets = {}
        for i in range(7):
            ts = factories.token_set(company=f"C{i}", refresh=None if i == 3 else "auto")
            sets[factories.connection(company=f"C{i}", tokens=ts).pk] = ts
        _, flow = start(alice)
        verifier = flow.code_verifier
    before = {t.pk: (t.version, t.updated_at) for t in Token.objects.all()}
    assert _key_ids() == {old_id}
    seen: list[int] = []
    result = flows.rotate_keys(batch_size=3, on_progress=lambda p: seen.append(p.done))
    assert result.total == 8
    assert result.done == 8
    assert result.conflicts == 0
    assert seen[-1] == 8
    assert result.rounds >= 3
    assert _key_ids() == {new_id}
    with override_settings(INTACCT_CONNECT={**INTACCT_CONNECT, "TOKEN_KEYS": [TEST_TOKEN_KEY]}):
        for pk, ts in sets.items():
            token = Token.objects.get(pk=pk)
            assert token.access_token == ts.access_token
            assert token.refresh_token == (ts.refresh_token or "")
            assert (token.version, token.updated_at) == before[pk]  # nothing a refresh relies on
        assert OAuthFlow.objects.get(pk=flow.pk).code_verifier == verifier
    assert flows.rotate_keys().total == 0


@pytest.mark.django_db
def test_rotate_keys_never_overwrites_a_concurrent_refresh() -> None:
    """A token rewritten between the rotation's read and its write is left alone."""
    with override_settings(INTACCT_CONNECT=OLD_ONLY):
        conn = factories.connection()
    newer = factories.token_set()
    ring = crypto.get_keyring()
    token = Token.objects.get(pk=conn.pk)  # what the rotation read
    # A refresh lands meanwhile (new tokens, newest key, version bumped).
    flows.store_tokens(conn, newer)
    progress = flows.RotationProgress(total=1)
    assert flows._rotate_token(token, ring, progress) == 1
    assert progress.conflicts == 1
    assert progress.done == 0
    stored = Token.objects.get(pk=conn.pk)
    assert stored.access_token == newer.access_token
    assert stored.refresh_token == newer.refresh_token


@pytest.mark.django_db
def test_rotate_keys_batch_size_validated() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        flows.rotate_keys(batch_size=0)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_rotate_keys_skips_rows_locked_by_a_refresh() -> None:
    require_postgres()
    import threading

    from django.db import connections, transaction

    with override_settings(INTACCT_CONNECT=OLD_ONLY):
        locked = factories.connection(company="LOCKED")
        free = factories.connection(company="FREE")
    holding = threading.Event()
    release = threading.Event()
    newer = factories.token_set(company="LOCKED")

    def refresher() -> None:
        try:
            with transaction.atomic():
                conn = Connection.objects.select_for_update().get(pk=locked.pk)
                Token.objects.select_for_update().get(pk=locked.pk)
                holding.set()
                release.wait(10)
                flows.store_tokens(conn, newer)
        finally:
            connections.close_all()

    thread = threading.Thread(target=refresher)
    thread.start()
    assert holding.wait(10)
    rounds: list[int] = []

    def progress(p: flows.RotationProgress) -> None:
        rounds.append(p.rounds)
        if p.rounds == 2:
            release.set()  # the refresh commits while the rotation is still looping

    result = flows.rotate_keys(on_progress=progress)
    thread.join(10)
    assert result.done >= 1
    assert Token.objects.get(pk=locked.pk).access_token == newer.access_token
    assert Token.objects.get(pk=free.pk).access_token
    assert _key_ids() == {crypto.key_id(crypto.parse_key(TEST_TOKEN_KEY))}
    assert db_connection.vendor == "postgresql"


@pytest.mark.django_db
def test_events_recorded_never_hold_tokens() -> None:
    ts = factories.token_set()
    conn = factories.connection(tokens=ts)
    flows.mark_needs_reauth(conn, reason="admin")
    flows.disconnect(conn)
    for event in ConnectionEvent.objects.all():
        assert ts.access_token not in event.message
        assert str(ts.refresh_token) not in event.message


@sensitive_variables()
def _failing_callback(params: dict[str, str], user: AbstractBaseUser) -> Any:
    """Run a callback whose token request fails; returns the exception info. (Its own
    locals are hidden, so the report below shows only what the library exposes.)"""
    import sys

    try:
        flows.complete_callback(params, session_key="session-1", user=user, tenant_key="user:1")
    except IntacctConnectError:
        return sys.exc_info()
    pytest.fail("the dead token endpoint should have failed")


@pytest.mark.django_db
def test_exception_report_hides_code_verifier_and_secret(alice: AbstractBaseUser) -> None:
    """A token-endpoint failure's Django error report shows none of the secrets (T9)."""
    import secrets

    from django.test import RequestFactory
    from django.views.debug import ExceptionReporter

    state, flow = start(alice)
    params = {"state": state, "code": secrets.token_urlsafe(20)}
    exc_info = _failing_callback(params, alice)
    assert exc_info[0] is TokenRequestError
    reporter = ExceptionReporter(RequestFactory().get("/intacct/callback/"), *exc_info)
    texts = (reporter.get_traceback_text(), reporter.get_traceback_html())
    for secret in (
        params["code"],
        flow.code_verifier,
        str(INTACCT_CONNECT["CLIENT_SECRET"]),
        state,
    ):
        for text in texts:
            assert secret not in text


# --- against the emulator ---------------------------------------------------------------------


def run_flow(
    emu: Any,
    user: AbstractBaseUser,
    *,
    tenant: str,
    session: str = "session-1",
    company: str = "DEMO-CO",
    login: tuple[str, str] = ("admin", "admin"),
    reconnect: Connection | None = None,
) -> flows.CallbackResult:
    started = flows.start_connect(
        session_key=session, user=user, tenant_key=tenant, reconnect=reconnect
    )
    location = emu.complete_authorization(started.authorize_url, company, *login)
    params = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    return flows.complete_callback(params, session_key=session, user=user, tenant_key=tenant)


@pytest.fixture
def signal_log() -> Any:
    from intacct_connect import signals

    calls: list[tuple[str, dict[str, Any]]] = []
    names = [
        "connection_created",
        "connection_reconnected",
        "connection_superseded",
        "connection_revoked",
        "connection_needs_reauth",
    ]

    def make(name: str) -> Any:
        def receiver(sender: Any, **kwargs: Any) -> None:
            kwargs.pop("signal", None)
            calls.append((name, kwargs))

        return receiver

    receivers = {name: make(name) for name in names}
    for name, receiver in receivers.items():
        getattr(signals, name).connect(receiver)
    yield calls
    for name, receiver in receivers.items():
        getattr(signals, name).disconnect(receiver)


@pytest.mark.django_db(transaction=True)
def test_same_user_in_two_tenants_supersedes_the_older(
    emulator: Any, alice: AbstractBaseUser, bob: AbstractBaseUser, signal_log: Any
) -> None:
    emu = emulator
    first = run_flow(emu, alice, tenant="user:a").connection
    second = run_flow(emu, bob, tenant="user:b", session="session-2").connection
    assert first.pk != second.pk
    first.refresh_from_db()
    assert first.status == ConnectionStatus.SUPERSEDED
    assert first.last_error_code == "superseded"
    assert first.events.filter(kind=EventKind.SUPERSEDED).count() == 1
    assert Connection.objects.get(pk=second.pk).status == ConnectionStatus.ACTIVE
    # What Intacct did: the first grant is superseded too; no orphaned active row here.
    assert sorted(g["status"] for g in emu.grants("DEMO-CO")) == ["active", "superseded"]
    assert [name for name, _ in signal_log] == [
        "connection_created",
        "connection_superseded",
        "connection_created",
    ]
    superseded = signal_log[1][1]
    assert superseded["connection"].pk == first.pk
    assert superseded["superseded_by"].pk == second.pk


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "status", [ConnectionStatus.REFRESH_IN_DOUBT, ConnectionStatus.NEEDS_REAUTH]
)
def test_a_new_grant_supersedes_a_connection_awaiting_action(
    emulator: Any, alice: AbstractBaseUser, bob: AbstractBaseUser, status: str
) -> None:
    """A connection in doubt (or needing re-authorisation) in another tenant is superseded
    by the same Intacct user's new grant: it never comes back from a one-time retry."""
    first = run_flow(emulator, alice, tenant="user:a").connection
    Connection.objects.filter(pk=first.pk).update(status=status)
    run_flow(emulator, bob, tenant="user:b", session="session-2")
    first.refresh_from_db()
    assert first.status == ConnectionStatus.SUPERSEDED
    assert first.events.filter(kind=EventKind.SUPERSEDED).count() == 1


@pytest.mark.django_db
def test_two_tenants_same_company_other_users_stay_separate(
    emulator: Any, alice: AbstractBaseUser, bob: AbstractBaseUser
) -> None:
    emu = emulator
    a = run_flow(emu, alice, tenant="user:a").connection
    b = run_flow(emu, bob, tenant="user:b", session="s2", login=("jane", "jane")).connection
    assert a.pk != b.pk
    assert set(Connection.objects.values_list("status", flat=True)) == {ConnectionStatus.ACTIVE}
    assert Token.objects.get(pk=a.pk).access_token != Token.objects.get(pk=b.pk).access_token
    assert list(flows.connections_for_tenant("user:a")) == [a]


@pytest.mark.django_db(transaction=True)
def test_reauthorising_updates_in_place(
    emulator: Any, alice: AbstractBaseUser, signal_log: Any
) -> None:
    emu = emulator
    first = run_flow(emu, alice, tenant="user:a")
    second = run_flow(emu, alice, tenant="user:a")  # a new "connect", not a reconnect
    assert first.created
    assert not second.created
    assert first.connection.pk == second.connection.pk
    assert Connection.objects.count() == 1
    assert Token.objects.get().version == 2
    assert [name for name, _ in signal_log] == ["connection_created", "connection_reconnected"]


@pytest.mark.django_db
def test_reconnect_as_another_user_keeps_identity(emulator: Any, alice: AbstractBaseUser) -> None:
    emu = emulator
    conn = run_flow(emu, alice, tenant="user:a").connection
    again = run_flow(emu, alice, tenant="user:a", login=("jane", "jane"), reconnect=conn)
    assert again.connection.pk == conn.pk
    assert not again.created
    conn.refresh_from_db()
    assert conn.intacct_user_id == "jane"


@pytest.mark.django_db(transaction=True)
def test_concurrent_callbacks_exchange_once(emulator: Any, alice: AbstractBaseUser) -> None:
    import threading
    import time

    from django.db import OperationalError, connections

    emu = emulator
    started = flows.start_connect(session_key="s", user=alice, tenant_key="user:a")
    location = emu.complete_authorization(started.authorize_url, "DEMO-CO", "admin", "admin")
    params = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def attempt() -> None:
        # The test database is SQLite's shared-cache in-memory database, which answers
        # "table is locked" at once where a file database (or PostgreSQL) waits for the
        # other writer: wait and try again, as those would.
        for _ in range(200):
            try:
                flows.complete_callback(params, session_key="s", user=alice, tenant_key="user:a")
                return
            except OperationalError as err:
                if db_connection.vendor != "sqlite" or "locked" not in str(err):
                    raise
                time.sleep(0.01)

    def callback() -> None:
        try:
            barrier.wait(5)
            attempt()
            outcomes.append("ok")
        except OAuthStateError as err:
            outcomes.append(str(err.code))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=callback) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert sorted(outcomes) == ["ok", "state_replayed"]
    assert emu.token_requests("authorization_code") == 1
    assert Connection.objects.count() == 1


@pytest.mark.django_db
def test_client_credentials_connection(emulator: Any, signal_log: Any) -> None:
    emu = emulator
    conn = flows.create_client_credentials_connection(
        tenant_key="team:1", username="admin@DEMO-CO|EAST"
    )
    assert (conn.company_id, conn.intacct_user_id, conn.entity_id) == ("DEMO-CO", "admin", "EAST")
    assert conn.grant_type == "client_credentials"
    assert conn.status == ConnectionStatus.ACTIVE
    token = Token.objects.get(pk=conn.pk)
    assert token.access_token
    assert token.refresh_token == ""
    assert emu.token_requests("client_credentials") == 1
    assert flows.client_credentials_username(conn) == "admin@DEMO-CO|EAST"
    again = flows.reconnect_client_credentials(conn)
    assert again.pk == conn.pk
    assert Token.objects.get(pk=conn.pk).version == 2
    top = flows.create_client_credentials_connection(tenant_key="team:1", username="admin@DEMO-CO")
    assert top.pk != conn.pk
    assert top.entity_id == ""


@pytest.mark.django_db
def test_client_credentials_refused(emulator: Any) -> None:
    from intacct_connect.exceptions import TokenRequestError as TRE

    with pytest.raises(TRE):
        flows.create_client_credentials_connection(tenant_key="t", username="jane@DEMO-CO")
    with pytest.raises(ValidationError):
        flows.create_client_credentials_connection(tenant_key=" ", username="admin@DEMO-CO")
    assert not Connection.objects.exists()


@pytest.mark.django_db
def test_disconnect_revokes_the_grant(emulator: Any, alice: AbstractBaseUser) -> None:
    emu = emulator
    conn = run_flow(emu, alice, tenant="user:a").connection
    result = flows.disconnect(conn.pk, actor=alice)
    assert result.revoked_at_intacct
    assert result.error == ""
    assert [g["status"] for g in emu.grants("DEMO-CO")] == ["revoked"]
    conn.refresh_from_db()
    assert conn.status == ConnectionStatus.REVOKED


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_rotation_while_tokens_refresh_loses_nothing(emulator: Any) -> None:
    """Bar item 15 (scaled down): rotate thousands of rows while real refreshes run;
    no refresh token is lost or overwritten (the emulator detects reuse), and afterwards
    everything decrypts with the new key alone."""
    require_postgres()
    import threading

    from django.conf import settings as django_settings
    from django.db import connections

    from intacct_connect import tokens as token_module

    emu = emulator
    current = dict(django_settings.INTACCT_CONNECT)
    real: list[int] = []
    with override_settings(INTACCT_CONNECT={**current, "TOKEN_KEYS": [TEST_OLD_TOKEN_KEY]}):
        conns = Connection.objects.bulk_create(
            Connection(tenant_key=f"t{i}", company_id="FILL", intacct_user_id=f"f{i}")
            for i in range(3000)
        )
        Token.objects.bulk_create(
            Token(
                connection=c,
                access_token=f"access-{c.pk}",
                refresh_token=f"refresh-{c.pk}",
                expires_at=timezone.now() + timedelta(hours=6),
            )
            for c in conns
        )
        for i in range(30):
            emu.seed_user("DEMO-CO", f"u{i}", "pw")
            body = emu.issue_tokens("DEMO-CO", f"u{i}")
            claims = oauth.decode_claims(body["access_token"])
            ts = oauth.TokenSet(
                access_token=body["access_token"],
                refresh_token=body["refresh_token"],
                token_type="Bearer",
                expires_in=body["expires_in"],
                expires_at=timezone.now() + timedelta(seconds=body["expires_in"]),
                scope="offline_access",
                claims=claims,
            )
            real.append(
                factories.connection(tenant="real", company="DEMO-CO", user=f"u{i}", tokens=ts).pk
            )
    errors: list[BaseException] = []
    refreshed = [0]
    done = threading.Event()

    def refresher(pks: list[int]) -> None:
        try:
            while not done.is_set():
                for pk in pks:
                    token_module.refresh_connection(pk, force=True)
                    refreshed[0] += 1
        except BaseException as err:  # reported below
            errors.append(err)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=refresher, args=(real[i::3],)) for i in range(3)]
    for t in threads:
        t.start()
    result = flows.rotate_keys(batch_size=250)
    done.set()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert refreshed[0] >= 30
    assert result.total == 3030
    assert result.done >= 3000  # the real rows may have been rewritten by refreshes first
    assert flows.rows_under_old_keys()[0].count() == 0
    with override_settings(INTACCT_CONNECT={**current, "TOKEN_KEYS": [TEST_TOKEN_KEY]}):
        assert sum(1 for t in Token.objects.all() if t.access_token and t.refresh_token) == 3030
        for pk in real:  # the stored refresh token is the last one issued: it still works
            token_module.refresh_connection(pk, force=True)
    assert set(Connection.objects.filter(pk__in=real).values_list("status", flat=True)) == {
        ConnectionStatus.ACTIVE
    }
    assert emu.unexpected_errors() == 0


# --- default entity and company name (issue 10) -------------------------------------------


@pytest.fixture
def emu_conn(emulator: Any, db: None) -> Connection:
    return factories.connection(emulator, entity="EAST")


@pytest.mark.django_db
def test_company_entities_reads_the_active_entities_at_top_level(
    emu_conn: Connection, intacct_emulator: Any
) -> None:
    choices = flows.company_entities(emu_conn)
    assert [(c.entity_id, c.name) for c in choices] == [
        ("EAST", "East Region"),
        ("WEST", "West Region"),
    ]
    assert choices[0].label == "EAST (East Region)"
    # Read at the top level even though the connection's default entity is EAST.
    assert emu_conn.entity_id == "EAST"


@pytest.mark.django_db
def test_company_entities_skips_inactive_entities(emu_conn: Connection) -> None:
    from intacct_connect.client import IntacctClient

    with IntacctClient(emu_conn, entity_id="") as client:
        client.update("company-config/entity", "2", {"status": "inactive"})
    assert [c.entity_id for c in flows.company_entities(emu_conn)] == ["EAST"]


@pytest.mark.django_db
def test_company_entities_raises_when_intacct_fails(
    emu_conn: Connection, intacct_emulator: Any
) -> None:
    intacct_emulator.set_fault("500", endpoint="api")
    with pytest.raises(IntacctConnectError):
        flows.company_entities(emu_conn)


CHOICES = [flows.EntityChoice("EAST", "East"), flows.EntityChoice("WEST", "West")]


@pytest.mark.django_db
def test_set_default_entity_saves_a_listed_entity_or_top_level() -> None:
    conn = factories.connection(entity="EAST")
    before = conn.updated_at
    flows.set_default_entity(conn, "WEST", choices=CHOICES)
    assert conn.entity_id == "WEST"
    conn.refresh_from_db()
    assert conn.entity_id == "WEST"
    assert conn.updated_at >= before
    flows.set_default_entity(conn.pk, "", choices=[])  # top level needs no list
    conn.refresh_from_db()
    assert conn.entity_id == ""


@pytest.mark.django_db
@pytest.mark.parametrize(
    "value", ["NORTH", "east", "E" * 101, "EAST\x00", "EAST\u200b", "<b>EAST</b>", "EAST|WEST"]
)
def test_set_default_entity_refuses_anything_not_listed_and_writes_nothing(value: str) -> None:
    conn = factories.connection(entity="EAST")
    before = Connection.objects.filter(pk=conn.pk).values().get()
    with pytest.raises(ValidationError):
        flows.set_default_entity(conn, value, choices=CHOICES)
    assert Connection.objects.filter(pk=conn.pk).values().get() == before
    assert conn.entity_id == "EAST"


@pytest.mark.django_db
def test_set_default_entity_reads_the_list_when_not_given(emu_conn: Connection) -> None:
    flows.set_default_entity(emu_conn, "WEST")
    emu_conn.refresh_from_db()
    assert emu_conn.entity_id == "WEST"
    with pytest.raises(ValidationError, match="not an active entity of company DEMO-CO"):
        flows.set_default_entity(emu_conn, "NORTH")


@pytest.mark.django_db
def test_set_default_entity_refuses_client_credentials_connections() -> None:
    conn = factories.connection(entity="EAST", grant_type="client_credentials")
    with pytest.raises(ValueError, match="Web Services username"):
        flows.set_default_entity(conn, "WEST", choices=CHOICES)
    conn.refresh_from_db()
    assert conn.entity_id == "EAST"


@pytest.mark.parametrize(
    ("body", "name"),
    [
        ({"ia::result": {"id": "ACME", "name": "Acme Inc."}}, "Acme Inc."),
        ({"ia::result": [{"id": "ACME", "name": "Acme Inc."}]}, "Acme Inc."),
        # Sage's published example puts id and name beside ia::result.
        ({"ia::result": {"accounting": None}, "id": "ACME", "name": "Acme Inc."}, "Acme Inc."),
        ({"ia::result": {"name": "Acme\x00 Inc.\n"}}, "Acme Inc."),
        ({"ia::result": {"name": ""}}, ""),
        ({"ia::result": {"name": 42}}, ""),
        ([], ""),
        (None, ""),
    ],
)
def test_company_name_of_the_preferences_answer(body: Any, name: str) -> None:
    assert flows._company_name_of(body) == name


@pytest.mark.django_db
def test_fill_company_name_stores_the_name(emu_conn: Connection) -> None:
    assert emu_conn.company_name == ""
    assert flows.fill_company_name(emu_conn) == "Demo Company"
    emu_conn.refresh_from_db()
    assert emu_conn.company_name == "Demo Company"


@pytest.mark.django_db
def test_fill_company_name_keeps_the_old_name_on_failure(
    emu_conn: Connection, intacct_emulator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    Connection.objects.filter(pk=emu_conn.pk).update(company_name="Known Name")
    emu_conn.refresh_from_db()
    intacct_emulator.set_fault("drop", endpoint="api")
    with caplog.at_level("WARNING", logger="intacct_connect.flows"):
        assert flows.fill_company_name(emu_conn) == "Known Name"
    emu_conn.refresh_from_db()
    assert emu_conn.company_name == "Known Name"
    assert any("TransportError" in r.getMessage() for r in caplog.records)
