"""One exception tree for everything intacct_connect raises.

Catch :class:`IntacctConnectError` to handle any failure talking to Intacct.
:class:`IntacctConfigurationError` deliberately sits *outside* that tree (it subclasses
Django's ``ImproperlyConfigured``): a broken configuration must never be swallowed by a
handler written for a transient API failure (django-anymail's rule).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured, SuspiciousOperation


class IntacctConnectError(Exception):
    """Base of every runtime error intacct_connect raises.

    Attributes describe Intacct's answer when there was one: ``status_code`` (HTTP),
    ``code`` (Intacct's code, e.g. ``GW-0010``, ``tokenInvalid``, ``invalid_grant``),
    ``error_id`` (e.g. ``REST-2102``), ``message``, ``support_id``, ``details`` and
    ``connection_id``. None of them ever holds a token or a secret.
    """

    default_message = "Sage Intacct request failed"

    def __init__(
        self,
        message: str | None = None,
        *,
        status_code: int | None = None,
        code: str | None = None,
        error_id: str | None = None,
        support_id: str | None = None,
        details: Any = None,
        connection_id: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.status_code = status_code
        self.code = code
        self.error_id = error_id
        self.support_id = support_id
        self.details = details
        self.connection_id = connection_id
        self.retry_after = retry_after
        super().__init__(self.message)

    def __str__(self) -> str:
        parts = [self.message]
        facts = []
        if self.status_code is not None:
            facts.append(f"HTTP {self.status_code}")
        if self.code:
            facts.append(f"code {self.code}")
        if self.error_id:
            facts.append(f"error {self.error_id}")
        if self.support_id:
            facts.append(f"support ID {self.support_id}")
        if self.connection_id is not None:
            facts.append(f"connection {self.connection_id}")
        if facts:
            parts.append(f"({', '.join(facts)})")
        if self.details:
            parts.append(f"details: {self.details}")
        return " ".join(parts)


class DecryptionError(IntacctConnectError):
    """A stored token could not be decrypted (wrong key, tampering, or a misplaced value)."""

    default_message = "Stored token could not be decrypted"


class OAuthError(IntacctConnectError):
    """The OAuth flow or the token endpoint failed."""

    default_message = "Sage Intacct OAuth request failed"


class OAuthStateError(OAuthError, SuspiciousOperation):
    """The callback's ``state`` is missing, unknown, expired, replayed or not this user's."""

    default_message = "The authorization request is missing, expired or not yours"


class AuthorizationDenied(OAuthError):
    """The Intacct user denied the consent, or Intacct refused the authorization."""

    default_message = "The authorization was denied"


class TooManyConnectAttempts(OAuthError):
    """One user (or, signed out, one browser session) started ``CONNECT_RATE_LIMIT``
    authorization requests within ``STATE_TTL`` seconds; ``retry_after`` says in how many
    seconds the next one is allowed."""

    default_message = "Too many connection attempts; try again later"


class TokenRequestError(OAuthError):
    """The token endpoint answered with an error or an unusable response."""

    default_message = "The Intacct token endpoint refused the request"


class InvalidGrant(TokenRequestError):
    """``invalid_grant``: the code or refresh token is invalid, expired, superseded or revoked."""

    default_message = "The grant is no longer valid; the company must be reconnected"


class InvalidClient(TokenRequestError):
    """``invalid_client``: this site's client ID or secret is wrong. Tenants are not at fault."""

    default_message = "Intacct rejected this site's client ID or client secret"


class TokenResponseLost(TokenRequestError):
    """A token request was sent but its response never arrived; it is never re-sent silently."""

    default_message = "The token endpoint's response was lost after the request was sent"


class RefreshBackoff(TokenRequestError):
    """A refresh of this connection failed moments ago (a transient error) and its short
    back-off has not elapsed: nothing was sent. Retryable; ``retry_after`` says when."""

    default_message = "The connection's last token refresh failed; retry shortly"


class IntacctAPIError(IntacctConnectError):
    """The REST API answered with an error, or could not be reached."""


class TransportError(IntacctAPIError):
    """No usable HTTP answer: connection refused or reset, timeout, or a body that is not JSON."""

    default_message = "Sage Intacct could not be reached or sent an unreadable answer"


class CompanyUnavailable(TransportError):
    """The company's circuit breaker is open (:mod:`intacct_connect.circuit`): its last
    requests all timed out or met gateway errors, so nothing was sent. Retryable;
    ``retry_after`` says when the breaker lets a request through again."""

    default_message = "Sage Intacct does not answer for this company; nothing was sent"


class AuthenticationError(IntacctAPIError):
    """401, or a token Intacct no longer accepts (GW-0040, REST-1206, REST-2102)."""

    default_message = "Sage Intacct did not accept the access token"


class NeedsReauthorization(AuthenticationError):
    """The connection cannot be used until a user reconnects it (needs_reauth, revoked, …).

    Every path that finds a connection unusable raises this class or a subclass:
    :class:`GrantRejected` (the refresh met ``invalid_grant``) and :class:`RefreshInDoubt`
    (the refresh's answer was lost)."""

    default_message = "The connection must be reconnected by a user"


class GrantRejected(NeedsReauthorization, InvalidGrant):
    """A refresh of the connection met ``invalid_grant``: the connection is now
    ``needs_reauth``. Both a :class:`NeedsReauthorization` and an :class:`InvalidGrant`."""

    default_message = "Intacct no longer accepts the connection's grant; a user must reconnect it"


class RefreshInDoubt(NeedsReauthorization, TokenResponseLost):
    """The connection's last refresh request was sent and its answer lost: Intacct may have
    rotated the refresh token, so it is never re-sent automatically. The connection is
    ``refresh_in_doubt`` until an operator tries the stored refresh token once (admin
    action) or a user reconnects. Both a :class:`NeedsReauthorization` and a
    :class:`TokenResponseLost`."""

    default_message = (
        "The connection's last token refresh was sent but its answer was lost; "
        "it is not re-sent automatically"
    )


class PermissionDeniedError(IntacctAPIError):
    """403: the Intacct user lacks the permission, or the sender ID is not authorised."""

    default_message = "The Intacct user is not permitted to do this"


class NotFoundError(IntacctAPIError):
    """404: the object or record does not exist."""

    default_message = "Not found in Sage Intacct"


class MethodNotAllowedError(IntacctAPIError):
    """405: the object does not support this operation."""

    default_message = "The operation is not supported for this object"


class ConflictError(IntacctAPIError):
    """409: an idempotency key reused with a different body, or a unique key clash."""

    default_message = "The request conflicts with an earlier one"


class IntacctValidationError(IntacctAPIError):
    """400 or 422: the request or the business rules rejected the data (see ``details``)."""

    default_message = "Sage Intacct rejected the data"


class RateLimited(IntacctAPIError):
    """429 (GW-0010): the company's rate or concurrency limit; see ``retry_after``."""

    default_message = "Sage Intacct rate limit exceeded"


class ServerError(IntacctAPIError):
    """5xx: Intacct failed; quote ``support_id`` to Sage support if it persists."""

    default_message = "Sage Intacct failed to process the request"


class IntacctConfigurationError(ImproperlyConfigured):
    """The site's INTACCT_CONNECT settings are missing or wrong."""


class ClientCredentialsRejected(IntacctConfigurationError):
    """Intacct rejected this site's client ID or secret (``invalid_client``). No tenant is at
    fault and no connection changes; token requests fail fast with this error while the
    site-wide incident is open (see :func:`intacct_connect.incidents.credentials_incident`),
    except one probe per back-off period. ``__cause__`` is the :class:`InvalidClient` with
    Intacct's codes when this caller's own request was refused."""
