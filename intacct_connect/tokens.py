"""Access tokens for API calls, and the one single-flight path that refreshes them.

Every caller that needs a token (the API client, tasks, views, host-site code) goes
through :func:`get_token` / :func:`get_access_token`:

* **Fast path** (no lock, one query): the stored access token is used while it is valid
  for more than ``TOKEN_REFRESH_SKEW`` seconds.
* **Refresh path** (:func:`refresh_connection`): one transaction holding row locks on the
  connection and its token, taken and read in one statement (``SELECT … FOR NO KEY UPDATE
  OF connection, token`` on PostgreSQL, bounded by a ``lock_timeout``, or ``NOWAIT`` for
  background refreshers): the token is read under the lock (PostgreSQL re-reads both
  locked rows if they changed while it waited), refreshed only if still needed, and the
  new token set persisted in the same transaction with its ``version`` bumped. Any number
  of threads and processes that find the same expired token therefore cause exactly one
  token request; the others wait on the lock and reuse its result.
* ``invalid_grant`` marks the connection ``needs_reauth`` (one event, one
  ``connection_needs_reauth`` signal) unless a re-read in a new transaction shows that
  another worker already rotated the token (the *loser rule*).
* ``invalid_client`` is this site's configuration error: it raises
  :class:`~intacct_connect.exceptions.IntacctConfigurationError` and leaves every
  tenant's connection untouched.
* A token request whose response was lost is never re-sent: the error is recorded on the
  connection and :class:`~intacct_connect.exceptions.TokenResponseLost` is raised.

SQLite has no row locks (``select_for_update`` is a no-op there), so the single-flight
guarantee holds across processes only on PostgreSQL; SQLite is for single-process
development and tests.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db import DatabaseError, OperationalError, connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from intacct_connect import crypto, oauth, signals
from intacct_connect.conf import app_settings
from intacct_connect.connection_state import (
    client_credentials_username,
    mark_needs_reauth,
    next_refresh_at,
)
from intacct_connect.crypto import get_keyring
from intacct_connect.exceptions import (
    IntacctConfigurationError,
    IntacctConnectError,
    InvalidClient,
    InvalidGrant,
    NeedsReauthorization,
    TokenRequestError,
    TokenResponseLost,
)
from intacct_connect.fields import EncryptedTextField
from intacct_connect.models import (
    Connection,
    ConnectionEvent,
    ConnectionStatus,
    EventKind,
    GrantType,
    Token,
)

logger = logging.getLogger(__name__)

#: How long a caller waits for another worker's refresh (PostgreSQL ``lock_timeout``).
#: Longer than one token request (``TOKEN_HTTP_TIMEOUT`` is 3 s + 10 s by default).
LOCK_TIMEOUT_SECONDS = 20


class RefreshLockTimeout(TokenRequestError):
    """Another worker held the connection's refresh lock for longer than the lock timeout."""

    default_message = "Timed out waiting for another worker's token refresh"


@dataclass
class _Attempt:
    """What the locked transaction saw, for the loser rule after it rolled back."""

    version: int | None = None
    refresh_fingerprint: str = ""


def _connection_id(conn: Connection | int) -> int:
    return conn if isinstance(conn, int) else int(conn.pk)


def _check_usable(conn: Connection) -> None:
    if conn.status != ConnectionStatus.ACTIVE:
        raise NeedsReauthorization(
            f"Connection {conn.pk} to company {conn.company_id} is "
            f"{conn.get_status_display().lower()}; a user must reconnect it",
            code=conn.last_error_code or None,
            connection_id=conn.pk,
        )


def _skew() -> timedelta:
    return timedelta(seconds=app_settings.TOKEN_REFRESH_SKEW)


def get_token(conn: Connection | int) -> Token:
    """The connection's :class:`~intacct_connect.models.Token`, fresh for at least
    ``TOKEN_REFRESH_SKEW`` seconds.

    Fast path: one query (token joined with its connection), no lock. Otherwise the
    token is refreshed through :func:`refresh_connection`.

    Raises :class:`~intacct_connect.exceptions.NeedsReauthorization` when the connection
    is not active or has no token.
    """
    connection_id = _connection_id(conn)
    try:
        token = Token.objects.select_related("connection").get(pk=connection_id)
    except Token.DoesNotExist:
        raise NeedsReauthorization(
            f"Connection {connection_id} has no stored token; a user must connect it",
            connection_id=connection_id,
        ) from None
    _check_usable(token.connection)
    if token.expires_at > timezone.now() + _skew():
        return token
    refreshed = refresh_connection(connection_id)
    if refreshed is None:  # pragma: no cover - wait=True never returns None
        raise RefreshLockTimeout(connection_id=connection_id)
    return refreshed


def get_access_token(conn: Connection | int) -> str:
    """The plaintext access token of a connection, refreshed first if needed."""
    return current_token(conn).value


@dataclass(frozen=True)
class AccessToken:
    """What an API call needs from a :class:`Token`: the value, its expiry and version."""

    connection_id: int
    value: str = field(repr=False)
    expires_at: datetime
    version: int

    @classmethod
    def of(cls, token: Token) -> AccessToken:
        return cls(int(token.pk), str(token.access_token), token.expires_at, int(token.version))


def _aware(value: datetime | str) -> datetime:
    if isinstance(value, str):  # SQLite without declared-type conversion
        parsed = parse_datetime(value)
        if parsed is None:  # pragma: no cover - the column always holds a datetime
            raise ValueError(f"Unreadable expiry {value!r}")
        value = parsed
    return value if timezone.is_aware(value) else timezone.make_aware(value, UTC)


_ACCESS_TOKEN_FIELD: EncryptedTextField = Token._meta.get_field("access_token")


@functools.cache
def _current_token_sql(vendor: str) -> str:
    quote = connection.ops.quote_name
    token_pk = quote(str(Token._meta.pk.column))
    conn_pk = quote(str(Connection._meta.pk.column))
    return (
        f"SELECT t.{quote('access_token')}, t.{quote('expires_at')}, t.{quote('version')}, "  # noqa: S608
        f"c.{quote('status')} FROM {quote(Token._meta.db_table)} t "
        f"INNER JOIN {quote(Connection._meta.db_table)} c ON c.{conn_pk} = t.{token_pk} "
        f"WHERE t.{token_pk} = %s"
    )


def current_token(conn: Connection | int) -> AccessToken:
    """Like :func:`get_token`, for the API client's hot path: the fast path is one small
    SQL statement (token columns joined with the connection's status), without building
    model instances. Refreshes through :func:`refresh_connection` when needed."""
    connection_id = _connection_id(conn)
    with connection.cursor() as cursor:
        cursor.execute(_current_token_sql(connection.vendor), [connection_id])
        row = cursor.fetchone()
    if row is None or row[3] != ConnectionStatus.ACTIVE:
        return AccessToken.of(get_token(connection_id))  # raises NeedsReauthorization
    ciphertext, expires_at, version, _status = row
    expires_at = _aware(expires_at)
    if expires_at <= timezone.now() + _skew():
        return AccessToken.of(get_token(connection_id))
    value = get_keyring().decrypt(
        ciphertext,
        _ACCESS_TOKEN_FIELD.associated_data_for(connection_id),
    )
    return AccessToken(connection_id, value, expires_at, int(version))


def refresh_connection(
    connection_id: int,
    *,
    force: bool = False,
    wait: bool = True,
    seen_version: int | None = None,
) -> Token | None:
    """Refresh a connection's tokens through the single-flight path and return the token.

    :param force: refresh even though the stored token is not near expiry (used after
        Intacct rejected the token). With ``seen_version`` (the ``Token.version`` the
        caller used), a forced refresh is skipped when the version has changed since:
        another worker already refreshed, and its token is returned.
    :param wait: wait for a refresh running in another worker (the API path). With
        ``wait=False`` (background refreshers) the function returns ``None`` at once when
        another worker holds the lock (PostgreSQL only).

    Raises :class:`~intacct_connect.exceptions.InvalidGrant` (the connection is now
    ``needs_reauth``), :class:`~intacct_connect.exceptions.NeedsReauthorization` (it
    already was), :class:`~intacct_connect.exceptions.IntacctConfigurationError`
    (``invalid_client``: this site's credentials), :class:`TokenResponseLost`,
    :class:`~intacct_connect.exceptions.TokenRequestError` or :class:`RefreshLockTimeout`.
    """
    attempt = _Attempt()
    try:
        return _locked_refresh(connection_id, force, wait, seen_version, attempt)
    except InvalidGrant as err:
        return resolve_invalid_grant(
            connection_id,
            used_version=attempt.version,
            used_fingerprint=attempt.refresh_fingerprint,
            error=err,
        )
    except InvalidClient as err:
        logger.error(
            "Intacct rejected this site's client credentials (invalid_client) while "
            "refreshing connection %s; no connection was changed",
            connection_id,
        )
        raise IntacctConfigurationError(
            "Intacct rejected INTACCT_CONNECT['CLIENT_ID'] / ['CLIENT_SECRET'] "
            f"(invalid_client, {err.error_id or err.code or 'no code'}). Check the client "
            "credentials and the client scope (production / non-production) in Sage's "
            "application registry. Connections were left untouched."
        ) from err
    except (RefreshLockTimeout, NeedsReauthorization):
        raise
    except IntacctConnectError as err:
        _record_failure(connection_id, err)
        raise


def _set_lock_timeout(wait: bool = True) -> None:
    """Bound the transaction's lock waits (PostgreSQL). Not needed with ``wait=False``: the
    only lock taken is the ``NOWAIT`` one on the connection and token rows, which then
    leaves nothing in the transaction to wait for."""
    if wait and connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_SECONDS}s'")


def _lock_connection(connection_id: int, wait: bool) -> Connection | None:
    qs = Connection.objects.locked(nowait=not wait, no_key=True)
    try:
        return qs.get(pk=connection_id)
    except Connection.DoesNotExist:
        raise NeedsReauthorization(
            f"Connection {connection_id} does not exist", connection_id=connection_id
        ) from None
    except OperationalError as err:
        if not wait:
            return None  # someone else is refreshing it right now
        raise RefreshLockTimeout(
            f"Connection {connection_id}'s token is being refreshed by another worker that "
            f"held the lock for more than {LOCK_TIMEOUT_SECONDS} s",
            connection_id=connection_id,
        ) from err


def _lock_for_refresh(connection_id: int, wait: bool) -> tuple[Connection, Token | None] | None:
    """Lock the connection row and (re-)read its token under the lock.

    One statement when the token exists: the token joined with its connection,
    ``SELECT … FOR NO KEY UPDATE OF connection, token`` on PostgreSQL (connection first,
    the order every writer of a token follows, so no deadlock). Both rows are locked, so
    PostgreSQL re-reads the newest committed version of both if another worker changed
    them while this one waited: the token read is never older than the lock. Without a
    token, the connection is locked alone and the token re-read after it."""
    qs = Token.objects.select_related("connection").locked(
        nowait=not wait, no_key=True, of=("connection", "self")
    )
    try:
        token = qs.get(pk=connection_id)
    except Token.DoesNotExist:
        conn = _lock_connection(connection_id, wait)
        if conn is None:
            return None
        return conn, Token.objects.filter(pk=connection_id).first()  # re-read under the lock
    except OperationalError as err:
        if not wait:
            return None  # someone else is refreshing it right now
        raise RefreshLockTimeout(
            f"Connection {connection_id}'s token is being refreshed by another worker that "
            f"held the lock for more than {LOCK_TIMEOUT_SECONDS} s",
            connection_id=connection_id,
        ) from err
    return token.connection, token


def _locked_refresh(
    connection_id: int,
    force: bool,
    wait: bool,
    seen_version: int | None,
    attempt: _Attempt,
) -> Token | None:
    with transaction.atomic():
        _set_lock_timeout(wait)
        locked = _lock_for_refresh(connection_id, wait)
        if locked is None:
            return None
        conn, token = locked
        _check_usable(conn)
        if token is not None:
            attempt.version = token.version
            if force and seen_version is not None and token.version != seen_version:
                return token  # another worker refreshed since the caller's read
            if not force and token.expires_at > timezone.now() + _skew():
                return token  # another worker refreshed while we waited for the lock
        tokens = _request_tokens(conn, token, attempt)
        return _store(conn, token, tokens)


def _request_tokens(conn: Connection, token: Token | None, attempt: _Attempt) -> oauth.TokenSet:
    if conn.grant_type == GrantType.CLIENT_CREDENTIALS:
        return oauth.client_credentials(client_credentials_username(conn))
    refresh_token = str(token.refresh_token) if token is not None else ""
    if not refresh_token:
        raise InvalidGrant(
            "The connection has no refresh token (offline_access was not granted)",
            code="invalid_grant",
            connection_id=conn.pk,
        )
    attempt.refresh_fingerprint = crypto.fingerprint(refresh_token)
    return oauth.refresh(refresh_token)


def _store(conn: Connection, token: Token | None, tokens: oauth.TokenSet) -> Token:
    now = timezone.now()
    if token is None:
        token = Token(connection=conn, version=0)
    token.access_token = tokens.access_token
    if tokens.refresh_token:  # RFC 6749 §6: keep the old one when none is returned
        token.refresh_token = tokens.refresh_token
    token.token_type = tokens.token_type or "Bearer"
    if tokens.scope:
        token.scope = tokens.scope[:255]
    token.expires_at = tokens.expires_at
    token.version += 1
    token.last_refreshed_at = now
    token.refresh_count += 1
    token.fingerprint = crypto.fingerprint(tokens.access_token)
    token.save()
    conn.next_refresh_at = next_refresh_at(tokens.expires_at, now=now)
    conn.refresh_failures = 0
    conn.save(update_fields=["next_refresh_at", "refresh_failures", "updated_at"])
    ConnectionEvent.log(
        conn,
        EventKind.REFRESHED,
        f"Access token refreshed (version {token.version}, fingerprint {token.fingerprint}).",
    )
    version = token.version
    signals.send_on_commit(signals.token_refreshed, connection=conn, token_version=version)
    logger.info(
        "Refreshed the token of connection %s (company %s, version %s)",
        conn.pk,
        conn.company_id,
        version,
    )
    return token


def resolve_invalid_grant(
    connection_id: int,
    *,
    used_version: int | None,
    used_fingerprint: str = "",
    error: InvalidGrant,
) -> Token:
    """Apply the loser rule after a refresh made with the token at ``used_version`` (whose
    refresh token had the fingerprint ``used_fingerprint``) failed with ``invalid_grant``.

    In a new transaction the connection and token are re-read: if another worker rotated
    the token meanwhile, its token is returned and nothing is marked. Otherwise the
    connection is marked ``needs_reauth`` (one event, one ``connection_needs_reauth``
    signal after commit) and ``error`` is raised.
    """
    err = error
    with transaction.atomic():
        _set_lock_timeout()
        conn = _lock_connection(connection_id, wait=True)
        assert conn is not None  # noqa: S101 - wait=True never returns None
        token = Token.objects.filter(pk=connection_id).first()
        rotated = token is not None and (
            token.version != used_version
            or (
                used_fingerprint
                and token.refresh_token
                and crypto.fingerprint(str(token.refresh_token)) != used_fingerprint
            )
        )
        if rotated and token is not None and conn.status == ConnectionStatus.ACTIVE:
            logger.info(
                "invalid_grant for connection %s, but another worker rotated its token "
                "meanwhile; using the new token",
                connection_id,
            )
            return token
        mark_needs_reauth(
            conn,
            reason="invalid_grant",
            error_code=(err.error_id or err.code or "invalid_grant")[:100],
            message=(
                "Intacct no longer accepts the refresh token (invalid_grant); "
                "a user must reconnect the company."
            ),
        )
        logger.warning(
            "Connection %s (company %s) needs re-authorisation: invalid_grant",
            connection_id,
            conn.company_id,
        )
    err.connection_id = connection_id
    raise err


def _record_failure(connection_id: int, err: IntacctConnectError) -> None:
    """Record a failed refresh (transient, lost response, garbage) without changing status."""
    lost = isinstance(err, TokenResponseLost)
    code = err.error_id or err.code or ("response_lost" if lost else type(err).__name__)
    try:
        with transaction.atomic():
            conn = Connection.objects.filter(pk=connection_id).first()
            if conn is None:
                return
            conn.record_error(code, str(err))
            conn.refresh_failures += 1
            conn.save(
                update_fields=[
                    "last_error_code",
                    "last_error_message",
                    "last_error_at",
                    "refresh_failures",
                    "updated_at",
                ]
            )
            message = (
                "The token request was sent but its response was lost; it was not re-sent. "
                "If Intacct rotated the refresh token, the next refresh will fail with "
                "invalid_grant and the connection will need to be reconnected."
                if lost
                else f"Token refresh failed: {err.message}"
            )
            ConnectionEvent.log(conn, EventKind.REFRESH_FAILED, message, error_code=code[:100])
    except DatabaseError:  # pragma: no cover - never hide the original error
        logger.exception("Could not record the refresh failure of connection %s", connection_id)
    logger.warning("Token refresh of connection %s failed: %s", connection_id, code)
