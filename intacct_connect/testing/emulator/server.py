"""Serve the emulator over real HTTP with werkzeug's threaded server, in a thread.

:class:`EmulatorServer` is also the handle the ``intacct_emulator`` pytest fixture returns:
URLs, ``connect_settings()``, the control methods, and ``complete_authorization()`` which
drives the sign-in and consent pages like a browser.
"""

from __future__ import annotations

import html
import logging
import re
import threading
from types import TracebackType
from typing import Any
from urllib.parse import urljoin

from werkzeug.serving import BaseWSGIServer, ThreadedWSGIServer, WSGIRequestHandler

import intacct_connect.testing.emulator.seed as seed
from intacct_connect.testing.emulator.app import Emulator

logger = logging.getLogger("intacct_connect.testing.emulator")

#: The test suite's REDIRECT_URI, registered for the demo application.
DEFAULT_REDIRECT_URI = "https://app.example.com/intacct/callback/"


class EmulatorError(Exception):
    """A helper of the handle could not do what was asked (e.g. sign-in failed)."""


class QuietRequestHandler(WSGIRequestHandler):
    """Logs requests at DEBUG on the emulator's logger, without query strings."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        path = getattr(self, "path", "").split("?", 1)[0]
        logger.debug("%s %s -> %s", getattr(self, "command", "-"), path, code)

    def log(self, type: str, message: str, *args: Any) -> None:
        logger.debug("emulator server %s: %s", type, message % args if args else message)


class _ThreadedServer(ThreadedWSGIServer):
    """werkzeug's threaded server with a deeper listen queue (concurrency floods)."""

    request_queue_size = 1024
    daemon_threads = True


class EmulatorServer:
    """Run an :class:`Emulator` on ``host``:``port`` (0 = a free port) in a thread.

    Usable as a context manager::

        with EmulatorServer() as server:
            print(server.base_url)
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        state_path: str | None = None,
        emulator: Emulator | None = None,
        save_interval: float = 0.5,
    ) -> None:
        self.host = host
        self.requested_port = port
        self.emulator = emulator or Emulator(state_path=state_path)
        self.save_interval = save_interval
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._saver: threading.Thread | None = None
        self._stopping = threading.Event()

    # --- lifecycle -------------------------------------------------------------------
    def start(self) -> EmulatorServer:
        if self._server is not None:
            return self
        try:
            self._server = _ThreadedServer(
                self.host, self.requested_port, self.emulator, handler=QuietRequestHandler
            )
        except SystemExit as err:  # werkzeug exits when the port is taken
            raise OSError(f"Cannot listen on {self.host}:{self.requested_port}") from err
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="intacct-emulator",
            daemon=True,
        )
        self._thread.start()
        if self.emulator.state.path:
            self._saver = threading.Thread(
                target=self._save_loop, name="intacct-emulator-saver", daemon=True
            )
            self._saver.start()
        return self

    def _save_loop(self) -> None:
        while not self._stopping.wait(self.save_interval):
            try:
                self.emulator.state.save()
            except OSError:
                logger.exception("Could not save the emulator state")

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._saver is not None:
            self._saver.join(timeout=5)
        self._server = None
        self._thread = None
        self._saver = None
        if self.emulator.state.path:
            self.emulator.state.save()

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- URLs ------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._server is None:
            raise EmulatorError("The emulator server is not running")
        return int(self._server.server_port)

    @property
    def root_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/ia/api/v1"

    @property
    def authorize_url(self) -> str:
        return f"{self.base_url}/oauth2/authorize"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/oauth2/token"

    @property
    def revoke_url(self) -> str:
        return f"{self.base_url}/oauth2/revoke"

    @property
    def control_url(self) -> str:
        return f"{self.root_url}/__emulator__"

    def connect_settings(
        self,
        *,
        redirect_uri: str = DEFAULT_REDIRECT_URI,
        sandbox: bool = False,
    ) -> dict[str, str]:
        """Keys to merge into ``INTACCT_CONNECT`` so a site talks to this emulator with the
        demo application (``sandbox=True``: the non-production application)."""
        return {
            "CLIENT_ID": seed.SANDBOX_CLIENT_ID if sandbox else seed.DEMO_CLIENT_ID,
            "CLIENT_SECRET": seed.SANDBOX_CLIENT_SECRET if sandbox else seed.DEMO_CLIENT_SECRET,
            "SENDER_ID": seed.DEMO_SENDER_ID,
            "API_BASE_URL": self.base_url,
            "AUTHORIZE_URL": self.authorize_url,
            "TOKEN_URL": self.token_url,
            "REVOKE_URL": self.revoke_url,
            "REDIRECT_URI": redirect_uri,
        }

    # --- browser helper ----------------------------------------------------------------
    def complete_authorization(
        self,
        authorize_url: str,
        company_id: str,
        user_id: str,
        password: str,
        entity: str | None = None,
        approve: bool = True,
    ) -> str:
        """Drive the sign-in and consent pages over HTTP like a browser; returns the
        redirect ``Location`` (with ``code`` and ``state``, or ``error``)."""
        import requests

        with requests.Session() as session:
            response = session.get(authorize_url, allow_redirects=False, timeout=10)
            if response.status_code in (301, 302, 303, 307):
                return str(response.headers["Location"])
            if response.status_code != 200:
                raise EmulatorError(
                    f"The authorize page answered {response.status_code}: "
                    f"{_page_error(response.text)}"
                )
            request_id = _hidden(response.text, "request_id")
            form = {
                "request_id": request_id,
                "company_id": company_id,
                "user_id": user_id,
                "password": password,
            }
            signin_url = urljoin(response.url, "/ia/api/v1/oauth2/signin")
            response = session.post(signin_url, data=form, allow_redirects=False, timeout=10)
            if response.status_code in (301, 302, 303, 307):
                return str(response.headers["Location"])
            if response.status_code != 200 or 'name="approve"' not in response.text:
                raise EmulatorError(f"Sign-in failed: {_page_error(response.text)}")
            consent = {"request_id": _hidden(response.text, "request_id")}
            if entity is not None:
                consent["entity"] = entity
            consent["approve" if approve else "deny"] = "1"
            consent_url = urljoin(response.url, "/ia/api/v1/oauth2/consent")
            response = session.post(consent_url, data=consent, allow_redirects=False, timeout=10)
            if response.status_code not in (301, 302, 303, 307):
                raise EmulatorError(f"Consent failed: {_page_error(response.text)}")
            return str(response.headers["Location"])

    # --- control methods (delegated to the emulator) -------------------------------------
    def reset(self) -> None:
        self.emulator.reset()

    def configure(self, **options: Any) -> dict[str, Any]:
        return self.emulator.configure(**options)

    def set_fault(
        self,
        kind: str,
        *,
        company: str | None = None,
        endpoint: str | None = None,
        count: int | None = None,
        **params: Any,
    ) -> dict[str, Any]:
        return self.emulator.set_fault(
            kind, company=company, endpoint=endpoint, count=count, **params
        )

    def clear_faults(self) -> None:
        self.emulator.clear_faults()

    def faults(self) -> list[dict[str, Any]]:
        return self.emulator.faults()

    def counters(self) -> dict[str, Any]:
        return self.emulator.counters()

    def token_requests(self, grant_type: str | None = None, company: str | None = None) -> int:
        return self.emulator.token_requests(grant_type, company)

    def api_calls(self, company: str | None = None) -> int:
        return self.emulator.api_calls(company)

    def max_concurrency(self, company: str) -> int:
        return self.emulator.max_concurrency(company)

    def unexpected_errors(self) -> int:
        return self.emulator.unexpected_errors()

    def advance_time(self, seconds: float) -> None:
        self.emulator.advance_time(seconds)

    def expire_tokens(self, company: str | None = None) -> int:
        return self.emulator.expire_tokens(company)

    def revoke_grants(self, company: str, user: str | None = None) -> int:
        return self.emulator.revoke_grants(company, user)

    def grants(self, company: str | None = None) -> list[dict[str, Any]]:
        return self.emulator.grants(company)

    def issue_tokens(
        self,
        company_id: str,
        user_id: str,
        entity: str | None = None,
        offline: bool = True,
        client_id: str | None = None,
    ) -> dict[str, Any]:
        return self.emulator.issue_tokens(company_id, user_id, entity, offline, client_id)

    def seed_company(self, company_id: str, **kwargs: Any) -> dict[str, Any]:
        return self.emulator.seed_company(company_id, **kwargs)

    def seed_user(
        self, company_id: str, user_id: str, password: str, **kwargs: Any
    ) -> dict[str, Any]:
        return self.emulator.seed_user(company_id, user_id, password, **kwargs)

    def seed_application(self, client_id: str, client_secret: str, **kwargs: Any) -> dict[str, Any]:
        return self.emulator.seed_application(client_id, client_secret, **kwargs)

    def add_redirect_uri(self, uri: str, client_id: str = seed.DEMO_CLIENT_ID) -> None:
        self.emulator.add_redirect_uri(uri, client_id)

    def redirect_uris(self, client_id: str = seed.DEMO_CLIENT_ID) -> list[str]:
        return self.emulator.redirect_uris(client_id)

    def authorize_sender(self, company: str, sender_id: str = seed.DEMO_SENDER_ID) -> None:
        self.emulator.authorize_sender(company, sender_id)

    def unauthorize_sender(self, company: str, sender_id: str = seed.DEMO_SENDER_ID) -> None:
        self.emulator.unauthorize_sender(company, sender_id)

    def authorize_client(
        self, company: str, user_id: str, client_id: str = seed.DEMO_CLIENT_ID
    ) -> None:
        self.emulator.authorize_client(company, user_id, client_id)

    def records(self, company: str, object: str) -> list[dict[str, Any]]:
        return self.emulator.records(company, object)

    def record_count(self, company: str, object: str) -> int:
        return self.emulator.record_count(company, object)

    def generate_records(self, company: str, object: str, count: int) -> int:
        return self.emulator.generate_records(company, object, count)


def _hidden(text: str, name: str) -> str:
    match = re.search(rf'name="{re.escape(name)}" value="([^"]*)"', text)
    if match is None:
        raise EmulatorError(f"No {name} field in the page: {_page_error(text)}")
    return html.unescape(match.group(1))


def _page_error(text: str) -> str:
    match = re.search(r'class="error">([^<]*)<', text)
    return html.unescape(match.group(1)) if match else text[:200]
