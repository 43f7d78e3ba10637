"""Pure OAuth 2.0 functions for Intacct's authorization server.

No request, session or database access happens here: callers (``flows``, ``tokens``)
store what these functions return. OAuth messages are built and validated with
oauthlib (the engine of requests-oauthlib) and sent through the ``"token"`` session of
:mod:`intacct_connect.http` so that timeouts, error mapping and logging are ours:

* every token request has the ``TOKEN_HTTP_TIMEOUT`` timeout, goes out on a **new
  connection** (never on a pooled keep-alive socket the server may be closing) and is
  **never re-sent** automatically once it may have reached the server (a lost response
  raises :class:`~intacct_connect.exceptions.TokenResponseLost`). It is retried once, on
  a new connection, only when it certainly did not reach the server: the connection was
  never established, or the request was not handed to the socket in full (its body is
  tracked: a server cannot act on a request it did not receive whole);
* error bodies in the RFC 6749 shape (``{"error": …}``) and in Intacct's shapes
  (``{"ia::error": …}``, nested under ``ia::result``) map onto the exception tree;
* tokens never appear in reprs, logs or exception messages.

Plain ``http://`` endpoints are accepted only for loopback hosts (the emulator);
everything else must be ``https://``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables
from oauthlib.oauth2 import BackendApplicationClient, WebApplicationClient
from oauthlib.oauth2.rfc6749.errors import OAuth2Error

from intacct_connect import adapter, http
from intacct_connect.conf import app_settings
from intacct_connect.exceptions import (
    IntacctConfigurationError,
    InvalidClient,
    InvalidGrant,
    TokenRequestError,
    TokenResponseLost,
)

#: Kept for callers that imported it from here; it lives in :mod:`intacct_connect.http`.
proxies_for = http.proxies_for

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
#: RFC 7636 §4.1 allows 43-128 characters; we use the maximum entropy we can carry.
VERIFIER_LENGTH = 96


@dataclass(frozen=True)
class AuthorizationRequest:
    """Where to send the browser, and the secrets to keep server-side until the callback."""

    url: str = field(repr=False)
    state: str = field(repr=False)
    code_verifier: str = field(repr=False)


@dataclass(frozen=True)
class TokenSet:
    """A token response. ``claims`` are read from the access token without verifying it
    (we are the token's audience, not its validator; Intacct verifies it on every call)."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    token_type: str
    expires_in: int
    expires_at: datetime
    scope: str
    claims: dict[str, Any] = field(repr=False)

    @property
    def company_id(self) -> str:
        return str(self.claims.get("cnyId") or "")

    @property
    def user_id(self) -> str:
        return str(self.claims.get("userId") or "")

    @property
    def entity_id(self) -> str:
        return str(self.claims.get("entityId") or "")


def check_endpoint(url: str, setting: str) -> None:
    """Refuse non-https endpoints, except on loopback hosts (local emulator)."""
    parts = urlsplit(url)
    if parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS):
        return
    raise IntacctConfigurationError(
        f"INTACCT_CONNECT[{setting!r}] must be an https URL (plain http is accepted only for "
        f"loopback hosts such as the local emulator), not {url!r}."
    )


def decode_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, unverified. Returns {} when the token is not a JWT."""
    try:
        payload = token.split(".")[1]
        payload += "=" * (-len(payload) % 4)
        claims = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
    except (IndexError, ValueError, binascii.Error, UnicodeError):
        return {}
    return claims if isinstance(claims, dict) else {}


def _client_secret() -> str:
    return app_settings.CLIENT_SECRET


def start_authorization(*, scope: str | None = None) -> AuthorizationRequest:
    """Build the authorize URL with a fresh ``state`` and a PKCE S256 challenge.

    The entity is chosen by the user on Intacct's sign-in page (or per API call with
    ``X-IA-API-Param-Entity``), so it is not an authorize parameter."""
    check_endpoint(app_settings.AUTHORIZE_URL, "AUTHORIZE_URL")
    state = secrets.token_urlsafe(32)
    client = WebApplicationClient(app_settings.CLIENT_ID)
    verifier = client.create_code_verifier(VERIFIER_LENGTH)
    params = {
        "response_type": "code",
        "client_id": app_settings.CLIENT_ID,
        "redirect_uri": app_settings.REDIRECT_URI,
        "scope": scope if scope is not None else app_settings.SCOPE,
        "state": state,
        "code_challenge": client.create_code_challenge(verifier, "S256"),
        "code_challenge_method": "S256",
    }
    separator = "&" if urlsplit(app_settings.AUTHORIZE_URL).query else "?"
    url = f"{app_settings.AUTHORIZE_URL}{separator}{urlencode(params)}"
    return AuthorizationRequest(url=url, state=state, code_verifier=verifier)


@sensitive_variables("code", "code_verifier", "body")
def exchange_code(code: str, code_verifier: str) -> TokenSet:
    """Exchange an authorization code (with its PKCE verifier) for tokens."""
    client = WebApplicationClient(app_settings.CLIENT_ID)
    body = client.prepare_request_body(
        code=code,
        redirect_uri=app_settings.REDIRECT_URI,
        include_client_id=True,
        client_secret=_client_secret(),
        code_verifier=code_verifier,
    )
    return _token_request(client, body)


@sensitive_variables("refresh_token", "body")
def refresh(refresh_token: str, *, entity_id: str = "") -> TokenSet:
    """Use a refresh token. Keeps nothing: the caller stores the new token set (and keeps
    its old refresh token if the response carries none, RFC 6749 §6)."""
    client = WebApplicationClient(app_settings.CLIENT_ID)
    extra: dict[str, str] = {"entity_id": entity_id} if entity_id else {}
    body = client.prepare_refresh_body(
        refresh_token=refresh_token,
        client_id=app_settings.CLIENT_ID,
        client_secret=_client_secret(),
        **extra,
    )
    return _token_request(client, body)


@sensitive_variables("body")
def client_credentials(username: str) -> TokenSet:
    """Server-to-server token for a Web Services user: ``user@company`` or
    ``user@company|entity``."""
    client = BackendApplicationClient(app_settings.CLIENT_ID)
    body = client.prepare_request_body(
        include_client_id=True, client_secret=_client_secret(), username=username
    )
    return _token_request(client, body)


@sensitive_variables("token", "data")
def revoke(token: str) -> None:
    """Revoke a token at Intacct; Intacct revokes every token of that user and company."""
    url = app_settings.REVOKE_URL
    check_endpoint(url, "REVOKE_URL")
    data = {
        "client_id": app_settings.CLIENT_ID,
        "client_secret": _client_secret(),
        "token": token,
    }
    response = _post(url, data)
    if response.status_code != 200:
        raise _error_from_response(response)


class _TrackedBody(io.BytesIO):
    """A request body that knows whether it was handed to the socket in full.

    ``requests`` passes a file-like body to urllib3, which reads it block by block and
    sends each block before reading the next: a read that finds the end therefore happens
    only after every byte was written to the socket. Until then the server has not
    received the whole request, so it cannot have acted on it (the refresh token is
    neither used nor rotated): sending it again, on a new connection, is safe."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.fully_written = False

    def read(self, size: int | None = -1, /) -> bytes:
        chunk = super().read(size)
        if not chunk:
            self.fully_written = True
        return chunk

    def __iter__(self) -> Iterator[bytes]:  # transports that iterate the body, in blocks
        while chunk := self.read(16384):
            yield chunk


def _encode(data: dict[str, str] | str) -> bytes:
    return (urlencode(data) if isinstance(data, dict) else data).encode("utf-8")


@sensitive_variables("data", "encoded", "body")
def _post(url: str, data: dict[str, str] | str) -> requests.Response:
    """POST form data on a new connection; send it again (once, on another new connection)
    only when it certainly did not reach the server.

    A new connection each time: a pooled keep-alive socket may be closed by the server at
    the moment the request goes out, and then the lost answer could not be told from a
    request that was processed. ``Connection: close`` asks the server to close it after
    answering, and the session's idle connections are dropped before each attempt.

    Transport errors are re-raised ``from None``: the frames of requests and urllib3 hold
    the request body (code, verifier, refresh token, client secret) in their local
    variables, and a chained cause would put them in Django's error reports."""
    headers = {
        "Accept": "application/json",
        "Content-Type": "application/x-www-form-urlencoded",
        "User-Agent": app_settings.USER_AGENT,
        "Connection": "close",
    }
    encoded = _encode(data)
    for attempt in (1, 2):
        session = http.get_session("token", adapter.requests_session)
        session.close()  # drop idle pooled connections: this request opens its own
        body = _TrackedBody(encoded)
        try:
            return session.post(
                url,
                data=body,
                headers=headers,
                timeout=app_settings.TOKEN_HTTP_TIMEOUT,
                proxies=http.proxies_for(url),
                allow_redirects=False,  # never replay the body to another URL
            )
        except requests.ConnectTimeout:
            if attempt == 2:
                raise TokenRequestError(
                    "Could not connect to the Intacct token endpoint (timeout); nothing was sent."
                ) from None
        except (requests.ConnectionError, requests.Timeout) as err:
            never_connected = http.never_sent(err)
            if not never_connected and body.fully_written:
                # Sent in full: the server may have processed it (read timeout, reset or
                # close before any byte of the answer).
                if isinstance(err, requests.Timeout):
                    raise TokenResponseLost(
                        "The token endpoint did not answer in time after the request was sent"
                    ) from None
                raise TokenResponseLost(
                    f"The connection failed after the request was sent ({type(err).__name__})"
                ) from None
            if attempt == 2:
                raise TokenRequestError(
                    "Could not connect to the Intacct token endpoint; nothing was sent "
                    f"({type(err).__name__})."
                    if never_connected
                    else "The connection to the Intacct token endpoint failed before the "
                    "request was sent in full, twice; nothing was processed "
                    f"({type(err).__name__})."
                ) from None
        except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError):
            # The answer started to arrive: the request was processed, its tokens are lost.
            raise TokenResponseLost(
                "The token endpoint's answer broke off after the request was processed"
            ) from None
        except requests.RequestException as err:
            if body.fully_written:
                raise TokenResponseLost(
                    f"The token request failed after it was sent ({type(err).__name__})"
                ) from None
            raise TokenRequestError(f"Token request failed: {type(err).__name__}") from None
    raise AssertionError("unreachable")  # pragma: no cover


@sensitive_variables("body", "payload", "token", "response")
def _token_request(client: WebApplicationClient | BackendApplicationClient, body: str) -> TokenSet:
    url = app_settings.TOKEN_URL
    check_endpoint(url, "TOKEN_URL")
    response = _post(url, body)
    if response.status_code != 200:
        raise _error_from_response(response)
    try:
        payload = response.json()
    except ValueError as err:
        raise TokenRequestError(
            "The token endpoint answered 200 with a body that is not JSON",
            status_code=response.status_code,
        ) from err
    if not isinstance(payload, dict) or not payload.get("access_token"):
        raise TokenRequestError(
            "The token endpoint answered 200 without an access token",
            status_code=response.status_code,
        )
    try:
        token = client.parse_request_body_response(json.dumps(payload))
    except (OAuth2Error, Warning, ValueError) as err:
        raise TokenRequestError(
            f"The token response is not valid: {type(err).__name__}",
            status_code=response.status_code,
        ) from err
    return _token_set(token)


@sensitive_variables("token", "access_token", "refresh_token", "claims")
def _token_set(token: dict[str, Any]) -> TokenSet:
    try:
        expires_in = int(token.get("expires_in") or 0)
    except (TypeError, ValueError) as err:
        raise TokenRequestError("The token response has an invalid expires_in") from err
    access_token = str(token["access_token"])
    claims = decode_claims(access_token)
    if expires_in <= 0:
        # Fall back on the JWT's own expiry, else assume Intacct's documented 6 hours.
        exp = claims.get("exp")
        expires_in = int(exp - timezone.now().timestamp()) if isinstance(exp, int | float) else 0
        if expires_in <= 0:
            expires_in = 21600
    scope = token.get("scope") or ""
    if isinstance(scope, list):
        scope = " ".join(scope)
    refresh_token = token.get("refresh_token")
    return TokenSet(
        access_token=access_token,
        refresh_token=str(refresh_token) if refresh_token else None,
        token_type=str(token.get("token_type") or "Bearer"),
        expires_in=expires_in,
        expires_at=timezone.now() + timedelta(seconds=expires_in),
        scope=str(scope),
        claims=claims,
    )


def _error_from_response(response: requests.Response) -> TokenRequestError:
    """Map a token/revoke endpoint error onto the exception tree."""
    try:
        payload: Any = response.json()
    except ValueError:
        payload = None
    status = response.status_code
    code = description = error_id = support_id = None
    if isinstance(payload, dict):
        ia_error = payload.get("ia::error")
        if ia_error is None and isinstance(payload.get("ia::result"), dict):
            ia_error = payload["ia::result"].get("ia::error")
        error = payload.get("error")
        if isinstance(ia_error, dict):
            code = ia_error.get("code")
            description = ia_error.get("message")
            error_id = ia_error.get("errorId")
            support_id = ia_error.get("supportId")
        elif isinstance(error, dict):  # Intacct's bare {"error": {...}} shape
            code = error.get("code")
            description = error.get("message")
            error_id = error.get("errorId")
            support_id = error.get("supportId")
        elif isinstance(error, str):
            code = error
            description = payload.get("error_description")
    kwargs: dict[str, Any] = {
        "status_code": status,
        "code": str(code) if code else None,
        "error_id": str(error_id) if error_id else None,
        "support_id": str(support_id) if support_id else None,
    }
    text = str(description) if description else None
    if code == "invalid_grant":
        return InvalidGrant(text, **kwargs)
    if code in ("invalid_client", "unauthorized_client") or error_id == "REST-1216":
        return InvalidClient(text, **kwargs)
    if payload is None:
        return TokenRequestError(
            f"The token endpoint answered HTTP {status} with a body that is not JSON", **kwargs
        )
    return TokenRequestError(text, **kwargs)


def code_challenge(verifier: str) -> str:
    """The S256 challenge of a verifier (RFC 7636 §4.2), for tests and checks."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
