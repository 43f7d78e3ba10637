"""intacct_connect.http: the one session factory, the adapter hook, proxies, never_sent."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from urllib3.exceptions import MaxRetryError, NewConnectionError

from intacct_connect import adapter, client, http, oauth
from intacct_connect.adapter import DefaultIntacctAdapter
from intacct_connect.client import IntacctClient
from intacct_connect.conf import app_settings
from intacct_connect.testing.emulator import EmulatorServer
from tests import factories

#: (purpose, method, url) of every request made through a TracingAdapter session.
TRACE: list[tuple[str, str, str]] = []


class TracingAdapter(DefaultIntacctAdapter):
    """A host adapter that adds a header and traces every outbound request."""

    def get_requests_session(self, purpose: str) -> requests.Session:
        session = super().get_requests_session(purpose)
        session.headers["X-Trace-Purpose"] = purpose

        def trace(response: requests.Response, *args: Any, **kwargs: Any) -> None:
            TRACE.append((purpose, response.request.method or "", response.request.url or ""))

        session.hooks["response"].append(trace)
        return session


@pytest.fixture(autouse=True)
def _fresh_sessions() -> Iterator[None]:
    http.forget_sessions()
    TRACE.clear()
    yield
    http.forget_sessions()


def test_one_session_per_thread_and_purpose() -> None:
    api, token = (
        http.get_session("api", adapter.requests_session),
        http.get_session("token", adapter.requests_session),
    )
    assert api is not token
    assert http.get_session("api", adapter.requests_session) is api
    assert client.default_session() is api
    other: list[requests.Session] = []
    thread = threading.Thread(
        target=lambda: other.append(http.get_session("api", adapter.requests_session))
    )
    thread.start()
    thread.join()
    assert other[0] is not api


def test_the_default_session_is_pooled_without_retries_or_the_environment() -> None:
    session = DefaultIntacctAdapter().get_requests_session("api")
    assert session.trust_env is False
    mounted = session.get_adapter("https://api.intacct.com/")
    assert isinstance(mounted, requests.adapters.HTTPAdapter)
    assert mounted.max_retries.total == 0


def test_public_names_stay_where_they_were() -> None:
    assert client.build_session is http.build_session
    assert oauth.proxies_for is http.proxies_for


@pytest.mark.django_db
def test_the_adapters_session_carries_token_and_api_calls(
    emulator: EmulatorServer, settings: Any
) -> None:
    """One hook reaches both the token endpoint and the REST API."""
    settings.INTACCT_CONNECT = {
        **settings.INTACCT_CONNECT,
        "ADAPTER": "tests.test_http.TracingAdapter",
    }
    http.forget_sessions()
    oauth.client_credentials("admin@DEMO-CO")
    conn = factories.connection(emulator)
    assert IntacctClient(conn).get("accounts-payable/vendor", "1")["key"] == "1"
    assert ("token", "POST", app_settings.TOKEN_URL) in TRACE
    assert ("api", "GET", f"{app_settings.API_BASE_URL}/objects/accounts-payable/vendor/1") in (
        TRACE
    )
    assert http.get_session("api", adapter.requests_session).headers["X-Trace-Purpose"] == "api"


def test_proxies_are_read_once_per_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    http._proxies_for_origin.cache_clear()
    try:
        monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
        assert http.proxies_for("https://api.example/a?b=1") == {
            "https": "http://proxy.example:3128"
        }
        monkeypatch.setenv("HTTPS_PROXY", "http://other.example:3128")
        # Same origin: the environment is not read again.
        assert http.proxies_for("https://api.example/c")["https"] == "http://proxy.example:3128"
        assert http.proxies_for("https://new.example/")["https"] == "http://other.example:3128"
    finally:
        http._proxies_for_origin.cache_clear()


def test_never_sent_is_true_only_when_no_connection_was_made() -> None:
    refused = NewConnectionError(None, "Connection refused")  # type: ignore[arg-type]
    wrapped = requests.ConnectionError(MaxRetryError(None, "/", refused))  # type: ignore[arg-type]
    assert http.never_sent(wrapped)
    assert http.never_sent(requests.ConnectionError(refused))
    assert not http.never_sent(requests.ConnectionError("Connection reset by peer"))
    assert not http.never_sent(requests.ReadTimeout())
