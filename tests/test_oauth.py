"""intacct_connect.oauth against the live emulator, over real HTTP."""

from __future__ import annotations

import json
import logging
import socket
import struct
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from intacct_connect import http, oauth
from intacct_connect.conf import app_settings
from intacct_connect.exceptions import (
    IntacctConfigurationError,
    InvalidClient,
    InvalidGrant,
    TokenRequestError,
    TokenResponseLost,
)
from intacct_connect.testing.emulator import EmulatorServer


@pytest.fixture
def emu(intacct_connect_settings: EmulatorServer) -> EmulatorServer:
    return intacct_connect_settings


def authorize(
    emu: EmulatorServer,
    *,
    company: str = "DEMO-CO",
    user: str = "admin",
    password: str = "admin",
    entity: str | None = None,
) -> tuple[oauth.AuthorizationRequest, str]:
    """Start a flow and approve it at the emulator; returns (request, code)."""
    request = oauth.start_authorization()
    location = emu.complete_authorization(
        request.url, company_id=company, user_id=user, password=password, entity=entity
    )
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == [request.state]
    return request, query["code"][0]


def test_authorize_url_uses_pkce_s256_and_exact_redirect_uri(
    emu: EmulatorServer, settings: Any
) -> None:
    request = oauth.start_authorization()
    query = parse_qs(urlsplit(request.url).query)
    assert request.url.startswith(emu.authorize_url + "?")
    assert query["response_type"] == ["code"]
    assert query["client_id"] == [app_settings.CLIENT_ID]
    assert query["redirect_uri"] == [app_settings.REDIRECT_URI]
    assert query["scope"] == ["offline_access"]
    assert query["code_challenge_method"] == ["S256"]
    assert query["code_challenge"] == [oauth.code_challenge(request.code_verifier)]
    assert 43 <= len(request.code_verifier) <= 128
    assert len(request.state) >= 43  # 32 random bytes
    assert "plain" not in request.url
    assert request.state not in repr(request)
    assert request.code_verifier not in repr(request)


def test_each_authorization_is_unique(emu: EmulatorServer) -> None:
    a, b = oauth.start_authorization(), oauth.start_authorization()
    assert a.state != b.state
    assert a.code_verifier != b.code_verifier


def test_exchange_code_returns_tokens_and_claims(emu: EmulatorServer) -> None:
    request, code = authorize(emu, entity="EAST")
    tokens = oauth.exchange_code(code, request.code_verifier)
    assert tokens.company_id == "DEMO-CO"
    assert tokens.user_id == "admin"
    assert tokens.entity_id == "EAST"
    assert tokens.refresh_token
    assert tokens.token_type.lower() == "bearer"
    assert 21000 < tokens.expires_in <= 21600
    assert tokens.access_token not in repr(tokens)
    assert tokens.refresh_token not in repr(tokens)
    assert emu.token_requests("authorization_code") == 1


def test_code_is_single_use(emu: EmulatorServer) -> None:
    request, code = authorize(emu)
    oauth.exchange_code(code, request.code_verifier)
    with pytest.raises(InvalidGrant) as info:
        oauth.exchange_code(code, request.code_verifier)
    assert info.value.status_code == 400
    assert info.value.code == "invalid_grant"


def test_wrong_verifier_is_invalid_grant(emu: EmulatorServer) -> None:
    _request, code = authorize(emu)
    with pytest.raises(InvalidGrant):
        oauth.exchange_code(code, oauth.start_authorization().code_verifier)


def test_expired_code_is_invalid_grant(emu: EmulatorServer) -> None:
    request, code = authorize(emu)
    emu.advance_time(601)
    with pytest.raises(InvalidGrant):
        oauth.exchange_code(code, request.code_verifier)


def test_refresh_rotates_and_reuse_revokes_the_grant(emu: EmulatorServer) -> None:
    request, code = authorize(emu)
    first = oauth.exchange_code(code, request.code_verifier)
    second = oauth.refresh(first.refresh_token or "")
    assert second.refresh_token
    assert second.refresh_token != first.refresh_token
    assert second.access_token != first.access_token
    # Presenting the used refresh token again looks like theft: the whole grant dies.
    with pytest.raises(InvalidGrant):
        oauth.refresh(first.refresh_token or "")
    with pytest.raises(InvalidGrant):
        oauth.refresh(second.refresh_token)
    assert emu.token_requests("refresh_token") == 3


def test_refresh_without_rotation_returns_no_new_refresh_token_or_the_same(
    emu: EmulatorServer,
) -> None:
    emu.configure(refresh_mode="none")
    request, code = authorize(emu)
    first = oauth.exchange_code(code, request.code_verifier)
    second = oauth.refresh(first.refresh_token or "")
    assert second.refresh_token in (None, first.refresh_token)
    oauth.refresh(first.refresh_token or "")  # still valid


def test_client_credentials_entity_token(emu: EmulatorServer) -> None:
    tokens = oauth.client_credentials("admin@DEMO-CO|EAST")
    assert tokens.company_id == "DEMO-CO"
    assert tokens.entity_id == "EAST"
    assert tokens.refresh_token is None
    assert emu.token_requests("client_credentials") == 1


def test_wrong_client_secret_is_invalid_client(emu: EmulatorServer, settings: Any) -> None:
    settings.INTACCT_CONNECT = {**settings.INTACCT_CONNECT, "CLIENT_SECRET": "wrong"}
    with pytest.raises(InvalidClient) as info:
        oauth.client_credentials("admin@DEMO-CO")
    assert "wrong" not in str(info.value)


def test_revoke_kills_the_grant(emu: EmulatorServer) -> None:
    request, code = authorize(emu)
    tokens = oauth.exchange_code(code, request.code_verifier)
    oauth.revoke(tokens.refresh_token or "")
    with pytest.raises(InvalidGrant):
        oauth.refresh(tokens.refresh_token or "")


@pytest.mark.parametrize("kind", ["500", "503"])
def test_server_errors_are_token_request_errors(emu: EmulatorServer, kind: str) -> None:
    emu.set_fault(kind, endpoint="token", count=1)
    with pytest.raises(TokenRequestError) as info:
        oauth.client_credentials("admin@DEMO-CO")
    assert not isinstance(info.value, TokenResponseLost)
    assert info.value.status_code == int(kind)


def test_garbage_body_is_a_clear_error(emu: EmulatorServer) -> None:
    emu.set_fault("garbage", endpoint="token", count=1)
    with pytest.raises(TokenRequestError, match="not JSON"):
        oauth.client_credentials("admin@DEMO-CO")


def test_lost_response_is_never_resent(emu: EmulatorServer) -> None:
    request, code = authorize(emu)
    first = oauth.exchange_code(code, request.code_verifier)
    emu.set_fault("token_lost", endpoint="token", count=1)
    before = emu.token_requests("refresh_token")
    with pytest.raises(TokenResponseLost):
        oauth.refresh(first.refresh_token or "")
    assert emu.token_requests("refresh_token") == before + 1  # exactly one request reached it


def test_dropped_connection_is_lost_response(emu: EmulatorServer) -> None:
    emu.set_fault("drop", endpoint="token", count=1)
    with pytest.raises(TokenResponseLost):
        oauth.client_credentials("admin@DEMO-CO")
    assert emu.token_requests("client_credentials") <= 1


def test_slow_token_endpoint_times_out_as_lost_response(emu: EmulatorServer, settings: Any) -> None:
    settings.INTACCT_CONNECT = {**settings.INTACCT_CONNECT, "TOKEN_HTTP_TIMEOUT": (1.0, 0.3)}
    emu.set_fault("slow", endpoint="token", count=1, seconds=1.5)
    with pytest.raises(TokenResponseLost, match="did not answer in time"):
        oauth.client_credentials("admin@DEMO-CO")


def test_unreachable_token_endpoint_says_nothing_was_sent(settings: Any) -> None:
    settings.INTACCT_CONNECT = {
        **settings.INTACCT_CONNECT,
        "TOKEN_URL": "http://127.0.0.1:9/ia/api/v1/oauth2/token",
    }
    with pytest.raises(TokenRequestError, match="nothing was sent"):
        oauth.client_credentials("admin@DEMO-CO")


@pytest.mark.parametrize(
    "url",
    ["http://api.intacct.com/ia/api/v1/oauth2/token", "ftp://127.0.0.1/token", "//x/token"],
)
def test_plain_http_refused_except_loopback(settings: Any, url: str) -> None:
    settings.INTACCT_CONNECT = {**settings.INTACCT_CONNECT, "TOKEN_URL": url}
    with pytest.raises(IntacctConfigurationError, match="TOKEN_URL"):
        oauth.client_credentials("admin@DEMO-CO")


def test_intacct_style_errors_are_mapped(emu: EmulatorServer) -> None:
    emu.configure(error_style="intacct")
    request, code = authorize(emu)
    oauth.exchange_code(code, request.code_verifier)
    with pytest.raises(TokenRequestError) as info:
        oauth.exchange_code(code, request.code_verifier)
    assert info.value.status_code == 400
    assert info.value.code


def test_decode_claims_tolerates_garbage() -> None:
    assert oauth.decode_claims("not-a-jwt") == {}
    assert oauth.decode_claims("a.!!!.c") == {}
    assert oauth.decode_claims("a.bnVsbA.c") == {}  # "null"


def test_nothing_secret_is_logged_even_at_debug(
    emu: EmulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    request, code = authorize(emu)
    tokens = oauth.exchange_code(code, request.code_verifier)
    refreshed = oauth.refresh(tokens.refresh_token or "")
    oauth.revoke(refreshed.access_token)
    secrets = [
        code,
        request.code_verifier,
        tokens.access_token,
        tokens.refresh_token,
        refreshed.access_token,
        refreshed.refresh_token,
        app_settings.CLIENT_SECRET,
    ]
    text = "\n".join(r.getMessage() for r in caplog.records)
    for secret in secrets:
        assert secret
        assert secret not in text
        assert requests.utils.quote(secret, safe="") not in text  # type: ignore[attr-defined]


# --- outbound proxies ----------------------------------------------------------------------


class _ForwardingProxy:
    """A real HTTP forward proxy on loopback: records each request line it receives and
    forwards the request to its absolute-form target."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        seen: list[str] = []
        self.seen = seen
        direct = requests.Session()
        direct.trust_env = False  # never through itself

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                seen.append(f"{self.command} {self.path}")
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in ("host", "proxy-connection", "connection")
                }
                upstream = direct.request(
                    self.command, self.path, data=body or None, headers=headers, timeout=10
                )
                self.send_response(upstream.status_code)
                self.send_header("Content-Type", upstream.headers.get("Content-Type", ""))
                self.send_header("Content-Length", str(len(upstream.content)))
                self.end_headers()
                self.wfile.write(upstream.content)

            do_GET = do_POST = _forward

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.01,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[_ForwardingProxy]:
    server = _ForwardingProxy()
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    http._proxies_for_origin.cache_clear()
    yield server
    server.close()
    http._proxies_for_origin.cache_clear()


@pytest.mark.django_db
def test_token_and_api_requests_go_through_the_environments_proxy(
    emu: EmulatorServer, proxy: _ForwardingProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTP_PROXY is honoured by the token endpoint calls and the API client alike (read
    once per origin: the sessions do not re-read the environment on every request)."""
    from intacct_connect.client import IntacctClient
    from tests import factories

    request, code = authorize(emu)  # the test's browser stand-in goes direct
    conn = factories.connection(emu, user="jane")  # another grant: not superseded by admin's
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    oauth.exchange_code(code, request.code_verifier)
    assert IntacctClient(conn).get("accounts-payable/vendor", "1")["key"] == "1"
    assert f"POST {app_settings.TOKEN_URL}" in proxy.seen
    assert f"GET {app_settings.API_BASE_URL}/objects/accounts-payable/vendor/1" in proxy.seen


@pytest.mark.django_db
def test_no_proxy_bypasses_the_proxy(
    emu: EmulatorServer, proxy: _ForwardingProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    request, code = authorize(emu)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    oauth.exchange_code(code, request.code_verifier)
    assert proxy.seen == []
    assert oauth.proxies_for(app_settings.TOKEN_URL) == {}


# --- what "sent" means: a real socket server ------------------------------------------------

TOKEN_BODY = json.dumps(
    {"access_token": "aaa.bbb.ccc", "token_type": "Bearer", "expires_in": 3600}
).encode()


class _RawTokenServer:
    """A real TCP server speaking just enough HTTP/1.1 to answer token requests, with a
    per-connection ``behaviour``:

    * ``"keepalive"``: answers the first request of a connection and keeps it open; a
      second request on the same connection is read in full and the socket closed without
      an answer (a server closing an idle keep-alive connection as the request arrives:
      from the client's side, indistinguishable from a request processed and then lost);
    * ``"reset_first"``: the first connection reads the request line and headers only, then
      resets (RST) without reading the body; later connections answer normally;
    * ``"drop"``: reads the whole request, then closes without an answer.

    Counts ``connections``, ``answered`` and ``unanswered`` complete requests, and
    ``partial`` (requests whose body it never received)."""

    def __init__(self, behaviour: str) -> None:
        self.behaviour = behaviour
        self.connections = self.answered = self.unanswered = self.partial = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # inherited
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/ia/api/v1/oauth2/token"
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                number = self.connections
            threading.Thread(target=self._handle, args=(conn, number), daemon=True).start()

    @staticmethod
    def _read_head(conn: socket.socket, buffer: bytes) -> tuple[bytes, bytes] | None:
        while b"\r\n\r\n" not in buffer:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            buffer += chunk
        head, _, rest = buffer.partition(b"\r\n\r\n")
        return head, rest

    def _handle(self, conn: socket.socket, number: int) -> None:
        buffer = b""
        served = 0
        try:
            while True:
                parsed = self._read_head(conn, buffer)
                if parsed is None:
                    return
                head, rest = parsed
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                if self.behaviour == "reset_first" and number == 1:
                    with self.lock:
                        self.partial += 1
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return  # close() now sends RST: the body was never read
                while len(rest) < length:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    rest += chunk
                buffer = rest[length:]
                if self.behaviour == "drop" or (self.behaviour == "keepalive" and served):
                    with self.lock:
                        self.unanswered += 1
                    return
                with self.lock:  # counted before the client can see the answer
                    self.answered += 1
                served += 1
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(TOKEN_BODY)}\r\n\r\n".encode()
                    + TOKEN_BODY
                )
        finally:
            conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def raw_server(request: pytest.FixtureRequest, settings: Any) -> Iterator[_RawTokenServer]:
    server = _RawTokenServer(request.param)
    settings.INTACCT_CONNECT = {**settings.INTACCT_CONNECT, "TOKEN_URL": server.url}
    http.forget_sessions()
    yield server
    http.forget_sessions()
    server.close()


@pytest.mark.parametrize("raw_server", ["keepalive"], indirect=True)
def test_a_token_request_never_rides_a_kept_alive_connection(raw_server: _RawTokenServer) -> None:
    """The server keeps connections alive and drops a second request on one (as a server
    closing an idle connection does): every token request opens its own connection, so
    none of them meets that, and none is mistaken for a lost answer."""
    for _ in range(3):
        assert oauth.refresh("rt-123").access_token == "aaa.bbb.ccc"
    assert (raw_server.connections, raw_server.answered, raw_server.unanswered) == (3, 3, 0)
    # For contrast: a pooled session reuses the connection, and the second request meets
    # exactly the failure a lost answer produces, after the server read it in full.
    session = requests.Session()
    session.post(raw_server.url, data=b"grant_type=x", timeout=5)
    with pytest.raises(requests.ConnectionError):
        session.post(raw_server.url, data=b"grant_type=x", timeout=5)
    assert (raw_server.connections, raw_server.unanswered) == (4, 1)


@pytest.mark.parametrize("raw_server", ["reset_first"], indirect=True)
def test_a_request_not_delivered_in_full_is_sent_again_once_on_a_new_connection(
    raw_server: _RawTokenServer,
) -> None:
    """The connection is reset while the body is still being sent (the server read only the
    headers): the server cannot have acted on it, so it is sent again, once."""
    body = {"grant_type": "refresh_token", "padding": "x" * 8_000_000}  # outlasts the buffers
    response = oauth._post(raw_server.url, body)
    assert response.status_code == 200
    assert (raw_server.connections, raw_server.partial, raw_server.answered) == (2, 1, 1)


@pytest.mark.parametrize("raw_server", ["drop"], indirect=True)
def test_a_request_sent_in_full_whose_answer_is_lost_is_never_sent_again(
    raw_server: _RawTokenServer,
) -> None:
    with pytest.raises(TokenResponseLost, match="after the request was sent"):
        oauth.refresh("rt-123")
    assert (raw_server.connections, raw_server.unanswered, raw_server.answered) == (1, 1, 0)


def test_a_lost_answer_on_a_reused_connection_looks_like_a_stale_socket(
    emu: EmulatorServer,
) -> None:
    """Why "RemoteDisconnected on a reused connection" does not prove the request was not
    processed: the emulator processes the refresh (rotating the token) and then drops the
    connection; a pooled session sees the very same error a stale keep-alive socket gives."""
    issued = emu.issue_tokens("DEMO-CO", "admin")
    session = requests.Session()
    body = {
        "grant_type": "client_credentials",
        "client_id": app_settings.CLIENT_ID,
        "client_secret": app_settings.CLIENT_SECRET,
        "username": "admin@DEMO-CO",
    }
    assert session.post(app_settings.TOKEN_URL, data=body, timeout=5).status_code == 200
    emu.set_fault("token_lost", count=1)
    refresh = {
        "grant_type": "refresh_token",
        "client_id": app_settings.CLIENT_ID,
        "client_secret": app_settings.CLIENT_SECRET,
        "refresh_token": issued["refresh_token"],
    }
    with pytest.raises(requests.ConnectionError) as info:
        session.post(app_settings.TOKEN_URL, data=refresh, timeout=5)
    assert "Connection aborted" in str(info.value) or "RemoteDisconnected" in repr(info.value)
    # It was processed: the refresh token is used, and presenting it again revokes the grant.
    with pytest.raises(InvalidGrant):
        oauth.refresh(issued["refresh_token"])
