"""The one HTTP layer: the ``requests`` sessions of the token endpoint calls
(:mod:`intacct_connect.oauth`) and of the API client (:mod:`intacct_connect.client`).

* :func:`get_session` hands out one session per thread and *purpose* (``"token"`` or
  ``"api"``), made once by the factory its caller passes: the adapter's
  :meth:`~intacct_connect.adapter.DefaultIntacctAdapter.get_requests_session` (through
  :func:`intacct_connect.adapter.requests_session`), so a site adds proxies, client
  certificates, a CA bundle or tracing in one place. This module imports nothing of the app;
* :func:`build_session` is the default: pooled, no transport retries (the callers decide
  what may be re-sent) and ``trust_env = False``;
* :func:`proxies_for` reads the environment's proxies once per origin; every request
  passes them;
* :func:`never_sent` tells a connection that was never established (safe to send again)
  from one that may have delivered the request.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Literal
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError

#: What a session is for: the token endpoint (and revoke) or the REST API.
Purpose = Literal["token", "api"]

_local = threading.local()


def build_session(pool_maxsize: int = 10) -> requests.Session:
    """A pooled ``requests.Session`` without transport retries (the callers retry)."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_maxsize, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    # The environment's proxies are read once per origin and passed with every request
    # (proxies_for); never .netrc credentials.
    session.trust_env = False
    return session


def get_session(purpose: Purpose, make: Callable[[str], requests.Session]) -> requests.Session:
    """This thread's session for ``purpose``, made by ``make(purpose)`` on first use."""
    sessions: dict[str, requests.Session] | None = getattr(_local, "sessions", None)
    if sessions is None:
        sessions = _local.sessions = {}
    session = sessions.get(purpose)
    if session is None:
        session = sessions[purpose] = make(purpose)
    return session


def forget_sessions() -> None:
    """Close and drop this thread's sessions; the next :func:`get_session` asks the adapter
    again (for tests, and after changing the adapter at run time)."""
    sessions: dict[str, requests.Session] = getattr(_local, "sessions", None) or {}
    _local.sessions = {}
    for session in sessions.values():
        session.close()


@functools.lru_cache(maxsize=64)
def _proxies_for_origin(scheme: str, netloc: str) -> dict[str, str]:
    return dict(requests.utils.get_environ_proxies(f"{scheme}://{netloc}/"))


def proxies_for(url: str) -> dict[str, str]:
    """The proxies the environment (``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY``,
    ``NO_PROXY``) sets for ``url``'s origin, read once per origin and process.

    The sessions of this app have ``trust_env = False``: requests would otherwise re-read
    the whole environment on every request (a large share of a loopback call's CPU), and
    take credentials from ``~/.netrc``. Proxies still work: every request passes these."""
    parts = urlsplit(url)
    return _proxies_for_origin(parts.scheme, parts.netloc)


def never_sent(err: requests.RequestException) -> bool:
    """True when the connection was never established, so the request cannot have reached
    the server (a connect timeout counts too: see the callers)."""
    reason = err.args[0] if err.args else None
    reason = getattr(reason, "reason", reason)
    return isinstance(reason, NewConnectionError)
