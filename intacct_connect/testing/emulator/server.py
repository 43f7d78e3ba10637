"""Serve the emulator over real HTTP with werkzeug's threaded server, in a thread.

:class:`EmulatorServer` is also the handle the ``intacct_emulator`` pytest fixture returns:
URLs, ``connect_settings()``, the control methods, and ``complete_authorization()`` which
drives the sign-in and consent pages like a browser.
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType
from typing import Any

from werkzeug.serving import BaseWSGIServer, ThreadedWSGIServer, WSGIRequestHandler

import intacct_connect.testing.emulator.browser as browser
import intacct_connect.testing.emulator.seed as seed
from intacct_connect.testing.emulator.app import Emulator
from intacct_connect.testing.emulator.browser import EmulatorError
from intacct_connect.testing.emulator.control_methods import ControlMethods

__all__ = ["DEFAULT_REDIRECT_URI", "EmulatorError", "EmulatorServer"]

logger = logging.getLogger("intacct_connect.testing.emulator")

#: The test suite's REDIRECT_URI, registered for the demo application.
DEFAULT_REDIRECT_URI = "https://app.example.com/intacct/callback/"


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


class EmulatorServer(ControlMethods):
    """Run an :class:`Emulator` on ``host``:``port`` (0 = a free port) in a thread. The
    handle has the emulator's control methods, working on the same state.

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
        self.state = self.emulator.state
        self.signer = self.emulator.signer
        self.seeded = self.emulator.seeded
        self.save_interval = save_interval
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._saver: threading.Thread | None = None
        self._stopping = threading.Event()

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
        redirect ``Location`` (with ``code`` and ``state``, or ``error``). Uses no server
        state (callable unbound)."""
        return browser.complete_authorization(
            authorize_url, company_id, user_id, password, entity, approve
        )
