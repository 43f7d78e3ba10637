"""intacct_connect.testing.inprocess: the in-process transport to the emulator, and the
``intacct_emulator_in_process`` fixture of the pytest plugin."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ProtocolError

from intacct_connect import adapter, flows, http
from intacct_connect.client import IntacctClient
from intacct_connect.testing.emulator import EmulatorServer
from intacct_connect.testing.inprocess import EmulatorAdapter, route_in_process

VENDORS = "/objects/accounts-payable/vendor"


# The example of docs/testing.rst ("Without a socket"), as a site would write it.
@pytest.mark.django_db
def test_vendor_list_in_process(
    intacct_connect_settings: EmulatorServer, intacct_emulator_in_process: EmulatorServer
) -> None:
    connection = flows.create_client_credentials_connection(
        tenant_key="team:1", username="admin@DEMO-CO"
    )
    with IntacctClient(connection) as client:
        assert len(client.list("accounts-payable/vendor")) == 100
    assert intacct_emulator_in_process.api_calls("DEMO-CO") == 1
    assert intacct_emulator_in_process.token_requests("client_credentials") == 1


def _request_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.endswith("(process_request_thread)")}


@pytest.fixture
def token(intacct_emulator: EmulatorServer) -> str:
    return str(intacct_emulator.issue_tokens("DEMO-CO", "admin")["access_token"])


@pytest.fixture
def in_process(intacct_emulator: EmulatorServer) -> requests.Session:
    session = requests.Session()
    session.mount(intacct_emulator.root_url, EmulatorAdapter(intacct_emulator.emulator))
    return session


def test_answers_as_over_the_socket(
    intacct_emulator: EmulatorServer, in_process: requests.Session, token: str
) -> None:
    """Status, headers, body and the response's URL and request are what the socket
    gives, and no socket is used."""
    url = f"{intacct_emulator.base_url}{VENDORS}/1"
    auth = {"Authorization": f"Bearer {token}"}
    before = _request_threads()
    local = in_process.get(url, headers=auth, timeout=5)
    assert _request_threads() - before == set()
    remote = requests.get(url, headers=auth, timeout=5)
    assert (local.status_code, local.reason) == (remote.status_code, remote.reason) == (200, "OK")
    assert local.json() == remote.json()
    assert local.headers["Content-Type"] == remote.headers["Content-Type"]
    assert local.url == url
    assert local.request.headers["Authorization"] == auth["Authorization"]
    missing = f"{intacct_emulator.base_url}{VENDORS}/999999"
    local, remote = in_process.get(missing, headers=auth), requests.get(missing, headers=auth)
    assert local.status_code == remote.status_code == 404
    assert local.json().keys() == remote.json().keys()


def test_posts_a_body_and_reads_repeated_headers(
    intacct_emulator: EmulatorServer, in_process: requests.Session, token: str
) -> None:
    response = in_process.post(
        f"{intacct_emulator.base_url}/objects/accounts-receivable/customer",
        json={"name": "In Process Ltd"},
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "in-process-1"},
    )
    assert response.status_code == 201
    assert response.headers["Idempotency-Key"] == "in-process-1"
    names = [r["name"] for r in intacct_emulator.records("DEMO-CO", "accounts-receivable/customer")]
    assert names.count("In Process Ltd") == 1
    form = in_process.post(intacct_emulator.token_url, data={"grant_type": "nonsense"})
    assert form.status_code == 400


def test_a_dropped_connection_raises_what_a_closed_socket_raises(
    intacct_emulator: EmulatorServer, in_process: requests.Session, token: str
) -> None:
    """The emulator did its work and closed the connection: requests' ConnectionError
    wrapping urllib3's "Connection aborted." ProtocolError, never "nothing was sent"."""
    intacct_emulator.set_fault("drop", company="DEMO-CO", count=1)
    with pytest.raises(requests.ConnectionError) as info:
        in_process.get(
            f"{intacct_emulator.base_url}{VENDORS}/1", headers={"Authorization": f"Bearer {token}"}
        )
    assert isinstance(info.value.args[0], ProtocolError)
    assert info.value.args[0].args[0] == "Connection aborted."
    assert not http.never_sent(info.value)
    assert intacct_emulator.api_calls("DEMO-CO") == 1


def test_an_answer_slower_than_the_read_timeout_is_a_read_timeout(
    intacct_emulator: EmulatorServer, in_process: requests.Session, token: str
) -> None:
    intacct_emulator.set_fault("slow", company="DEMO-CO", count=1, seconds=0.05)
    url = f"{intacct_emulator.base_url}{VENDORS}/1"
    auth = {"Authorization": f"Bearer {token}"}
    with pytest.raises(requests.ReadTimeout):
        in_process.get(url, headers=auth, timeout=(1.0, 0.01))
    assert in_process.get(url, headers=auth, timeout=(1.0, 0.01)).status_code == 200


@pytest.mark.django_db
def test_only_this_threads_app_sessions_for_the_emulators_origin(
    intacct_emulator: EmulatorServer, settings: Any
) -> None:
    http.forget_sessions()
    try:
        sessions = route_in_process(intacct_emulator.root_url, intacct_emulator.emulator)
        assert sessions == [
            http.get_session("token", adapter.requests_session),
            http.get_session("api", adapter.requests_session),
        ]
        for session in sessions:
            assert isinstance(session.get_adapter(intacct_emulator.token_url), EmulatorAdapter)
            assert not isinstance(session.get_adapter("https://api.intacct.com/"), EmulatorAdapter)
            assert isinstance(session.get_adapter("https://api.intacct.com/"), HTTPAdapter)
            assert session.trust_env is False  # still the session the adapter built
        other: list[requests.Session] = []
        thread = threading.Thread(
            target=lambda: other.append(http.get_session("api", adapter.requests_session))
        )
        thread.start()
        thread.join()
        assert not isinstance(other[0].get_adapter(intacct_emulator.base_url), EmulatorAdapter)
    finally:
        http.forget_sessions()
    fresh = http.get_session("api", adapter.requests_session)
    assert not isinstance(fresh.get_adapter(intacct_emulator.base_url), EmulatorAdapter)
    http.forget_sessions()
