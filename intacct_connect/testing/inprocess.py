"""Call the emulator in-process: a ``requests`` transport adapter that hands each prepared
request to the emulator's WSGI app, so a test's HTTP calls need no socket.

Mount it on a session for the emulator's origin; requests picks the adapter with the
longest matching prefix, so every other URL still goes over the network::

    session.mount(server.root_url, EmulatorAdapter(server.emulator))

:func:`route_in_process` does this for the app's own sessions (the ones
:func:`intacct_connect.http.get_session` hands out, made by the adapter's
``get_requests_session()``); the ``intacct_emulator_in_process`` pytest fixture calls it.

What stays different from a socket, on purpose:

* a ``drop`` or ``token_lost`` fault raises the :class:`requests.ConnectionError` a closed
  socket raises (``ProtocolError("Connection aborted.", RemoteDisconnected(...))``), after
  the emulator did its work, as over a socket;
* a response slower than the read timeout raises :class:`requests.ReadTimeout`, but only
  once the emulator has answered: nothing interrupts the call. Tests of timeouts, of the
  emulator's throttling under real concurrency, and of other processes use the socket
  server (the ``intacct_emulator`` fixture alone).

Needs the ``testing`` extra (werkzeug), like the emulator.
"""

from __future__ import annotations

import io
import time
import typing
from collections.abc import Callable, Iterable, Mapping
from http.client import RemoteDisconnected
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3 import HTTPHeaderDict, HTTPResponse
from urllib3.exceptions import ProtocolError
from werkzeug.test import EnvironBuilder, run_wsgi_app

WSGIApp = Callable[[dict[str, Any], Any], Iterable[bytes]]


class EmulatorAdapter(HTTPAdapter):
    """A transport adapter that answers from a WSGI app (the emulator) in this process."""

    def __init__(self, app: WSGIApp) -> None:
        super().__init__(max_retries=0)
        self.app = app

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        body = request.body
        if isinstance(body, str):
            body = body.encode("utf-8")
        elif body is not None and not isinstance(body, bytes):
            body = b"".join(typing.cast(Iterable[bytes], body))
        builder = EnvironBuilder(
            path=request.path_url,
            base_url=_origin(request.url or ""),
            method=request.method or "GET",
            headers=list(request.headers.items()),
            data=body or b"",
        )
        environ = builder.get_environ()
        environ["REMOTE_ADDR"] = "127.0.0.1"
        started = time.monotonic()
        try:
            chunks, status, response_headers = run_wsgi_app(self.app, environ, buffered=True)
            content = b"".join(chunks)
        except ConnectionAbortedError as err:  # the emulator's DropConnection fault
            lost = RemoteDisconnected("Remote end closed connection without response")
            raise requests.ConnectionError(
                ProtocolError("Connection aborted.", lost), request=request
            ) from err
        read_timeout = timeout[1] if isinstance(timeout, tuple) else timeout
        if read_timeout is not None and time.monotonic() - started > read_timeout:
            raise requests.ReadTimeout(
                f"Read timed out. (read timeout={read_timeout})", request=request
            )
        code, _, reason = status.partition(" ")
        headers = HTTPHeaderDict()
        for name, value in response_headers.items():
            headers.add(name, value)
        raw = HTTPResponse(
            body=io.BytesIO(content),
            headers=headers,
            status=int(code),
            reason=reason,
            preload_content=False,
            decode_content=False,
            request_method=request.method,
            request_url=request.url,
        )
        return self.build_response(request, raw)


def _origin(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"


def route_in_process(root_url: str, app: WSGIApp) -> list[requests.Session]:
    """Mount an :class:`EmulatorAdapter` for ``root_url`` on this thread's app sessions
    (every purpose of :func:`intacct_connect.http.get_session`, made by the adapter's
    ``get_requests_session()`` as usual). Returns the sessions; undo with
    :func:`intacct_connect.http.forget_sessions`. Other threads keep using sockets."""
    from intacct_connect import adapter, http

    sessions = []
    for purpose in typing.get_args(http.Purpose):
        session = http.get_session(purpose, adapter.requests_session)
        session.mount(root_url, EmulatorAdapter(app))
        sessions.append(session)
    return sessions
