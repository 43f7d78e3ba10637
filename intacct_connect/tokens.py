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
  **outcome written in the same transaction, before the lock is released** — the new token
  set (``version`` bumped) or the failure. A caller that waited for the lock reads that
  outcome and answers from it without a token request of its own. Any number of threads
  and processes that find the same expired token therefore cause exactly one token
  request per token version, whatever its result:

  ====================================  ==============================================
  the one request's outcome             what it raises, and what every waiter raises
  ====================================  ==============================================
  tokens                                (the new token is returned to all)
  ``invalid_grant``                     ``GrantRejected`` (the connection is now
                                        ``needs_reauth``, one signal); waiters
                                        ``NeedsReauthorization``
  ``invalid_client``                    ``ClientCredentialsRejected`` (a site-wide
                                        incident; no connection changes)
  the answer was lost                   ``RefreshInDoubt`` (the connection is now
                                        ``refresh_in_doubt``; never re-sent)
  any other failure (5xx, garbage,      the error itself; waiters ``RefreshBackoff``
  nothing could be sent)                until the short back-off ends (``retry_after``)
  ====================================  ==============================================

  (classes of :mod:`intacct_connect.exceptions`; ``docs/errors.rst`` has the full table.)

* ``invalid_grant`` met with the token read under the lock is authoritative: every writer
  of new tokens (refresh, connect and reconnect flows) locks the connection row first (key
  rotation only re-encrypts the same values), so no other worker can have rotated the
  token meanwhile. (A re-read under the lock
  still applies the *loser rule* on databases without row locks.)
* ``invalid_client`` is this site's configuration error: one site-wide incident is opened
  (one ERROR log line, one ``client_credentials_rejected`` signal), and token requests fail
  fast with back-off probes until one succeeds (:mod:`intacct_connect.connection_state`).
* A refresh request whose answer was lost is never re-sent automatically: the connection
  is ``refresh_in_doubt`` until :func:`try_stored_refresh_token` (an operator's admin
  action) ends it ``active`` or ``needs_reauth``, or a user reconnects it. A
  client-credentials connection has no refresh token at stake: its lost answer counts as
  a transient failure.

SQLite has no row locks (``select_for_update`` is a no-op there), so the single-flight
guarantee holds across processes only on PostgreSQL; SQLite is for single-process
development and tests.

This module is one concept, the refresh path under the connection's lock (its outcomes,
the token journal's adoption and the operator's one trial of a stored refresh token all
run inside that lock), which is why it is longer than the others.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db import OperationalError, connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from intacct_connect import crypto, oauth, signals, token_journal
from intacct_connect.conf import app_settings
from intacct_connect.connection_state import (
    REFRESH_IN_DOUBT_MEANING,
    UserLike,
    actor_of,
    client_credentials_username,
    mark_needs_reauth,
    mark_refresh_in_doubt,
    next_refresh_at,
)
from intacct_connect.crypto import get_keyring
from intacct_connect.exceptions import (
    GrantRejected,
    InvalidClient,
    InvalidGrant,
    NeedsReauthorization,
    RefreshBackoff,
    RefreshInDoubt,
    TokenRequestError,
    TokenResponseLost,
)
from intacct_connect.fields import EncryptedTextField
from intacct_connect.incidents import (
    claim_credentials_probe,
    record_credentials_rejected,
    resolve_credentials_incident,
)
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
#: The short back-off after a transient refresh failure (seconds): 2, 4, 8, … up to 60,
#: doubling with ``Connection.refresh_failures``. Callers meanwhile get
#: :class:`~intacct_connect.exceptions.RefreshBackoff` without a token request.
REFRESH_RETRY_BACKOFF_BASE = 2.0
REFRESH_RETRY_BACKOFF_MAX = 60.0


class RefreshLockTimeout(TokenRequestError):
    """Another worker held the connection's refresh lock for longer than the lock timeout."""

    default_message = "Timed out waiting for another worker's token refresh"


@dataclass
class _Attempt:
    """What the locked transaction saw and sent: the token version and the fingerprint of
    the refresh token used (for the loser rule)."""

    version: int | None = None
    refresh_fingerprint: str = ""


def _connection_id(conn: Connection | int) -> int:
    return conn if isinstance(conn, int) else int(conn.pk)


def _check_usable(conn: Connection) -> None:
    if conn.status == ConnectionStatus.REFRESH_IN_DOUBT:
        raise RefreshInDoubt(
            f"Connection {conn.pk} to company {conn.company_id}: {REFRESH_IN_DOUBT_MEANING}",
            code=conn.last_error_code or None,
            connection_id=conn.pk,
        )
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

    Raises :class:`~intacct_connect.exceptions.NeedsReauthorization` (or a subclass) when
    the connection is not active or has no token, and what :func:`refresh_connection`
    raises when a refresh was needed.
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

    Raises (see the module docstring's table): :class:`~intacct_connect.exceptions.GrantRejected`
    (``invalid_grant``: the connection is now ``needs_reauth``),
    :class:`~intacct_connect.exceptions.NeedsReauthorization` (it already was, or it is
    not active: :class:`~intacct_connect.exceptions.RefreshInDoubt` for
    ``refresh_in_doubt``), :class:`~intacct_connect.exceptions.RefreshInDoubt` (this
    request's answer was lost), :class:`~intacct_connect.exceptions.ClientCredentialsRejected`
    (``invalid_client``, an :class:`~intacct_connect.exceptions.IntacctConfigurationError`),
    :class:`~intacct_connect.exceptions.TokenRequestError` (a transient failure),
    :class:`~intacct_connect.exceptions.RefreshBackoff` (within its back-off) or
    :class:`RefreshLockTimeout`.
    """
    return _locked_refresh(connection_id, force, wait, seen_version, _Attempt())


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
    """The locked transaction: decide, send at most one token request, write its outcome.

    A failure's outcome is written before the transaction commits and releases the lock,
    and only then raised, so that a waiter reads it under the lock (the ``raise`` happens
    outside ``atomic``, which would otherwise roll the outcome back)."""
    failure: Exception | None = None
    with transaction.atomic():
        _set_lock_timeout(wait)
        locked = _lock_for_refresh(connection_id, wait)
        if locked is None:
            return None
        conn, token = locked
        adopted = _adopt_journaled(conn, token)
        if adopted is not None:
            return adopted  # an earlier answer whose commit failed: not sent again
        _check_usable(conn)  # needs_reauth / refresh_in_doubt written by an earlier attempt
        now = timezone.now()
        if token is not None:
            attempt.version = token.version
            if force and seen_version is not None and token.version != seen_version:
                return token  # another worker refreshed since the caller's read
            if not force and token.expires_at > now + _skew():
                return token  # another worker refreshed while we waited for the lock
        _check_backoff(conn, now)  # a transient failure moments ago: retryable, not re-sent
        incident = claim_credentials_probe(now)  # raises while invalid_client pauses requests
        try:
            tokens = _request_tokens(conn, token, attempt)
        except TokenRequestError as err:
            outcome = _record_outcome(conn, token, attempt, err)
            if isinstance(outcome, Token):
                return outcome  # the loser rule: another worker's rotation
            failure = outcome
        else:
            stored = _store_durably(conn, token, tokens)
            resolve_credentials_incident(incident)
            return stored
    assert failure is not None  # noqa: S101 - every path above returns or sets it
    raise failure


def _check_backoff(conn: Connection, now: datetime) -> None:
    retry_at = conn.refresh_retry_at
    if retry_at is None or retry_at <= now:
        return
    wait = (retry_at - now).total_seconds()
    raise RefreshBackoff(
        f"Connection {conn.pk}'s token refresh failed moments ago "
        f"({conn.last_error_code or 'transient error'}); not retried for {wait:.1f} s",
        code=conn.last_error_code or None,
        connection_id=conn.pk,
        retry_after=wait,
    )


def _record_outcome(
    conn: Connection, token: Token | None, attempt: _Attempt, err: TokenRequestError
) -> Exception | Token:
    """Write the outcome of a failed token request (the caller holds the lock, in the
    transaction that will commit it). Returns the exception to raise after commit, or the
    token another worker rotated meanwhile (the loser rule)."""
    err.connection_id = conn.pk
    if isinstance(err, InvalidGrant):
        rotated = _rotated_since(conn.pk, attempt)
        if rotated is not None:
            return rotated
        return _grant_rejected(conn, err)
    if isinstance(err, InvalidClient):
        rejected = record_credentials_rejected(err, connection=conn)
        rejected.__cause__ = err
        return rejected
    if isinstance(err, TokenResponseLost) and conn.grant_type != GrantType.CLIENT_CREDENTIALS:
        code = err.code or "response_lost"
        mark_refresh_in_doubt(conn, error_code=code, detail=err.message)
        logger.warning(
            "Connection %s (company %s) is refresh_in_doubt: the refresh request was sent "
            "and its answer lost; it will not be re-sent automatically",
            conn.pk,
            conn.company_id,
        )
        in_doubt = RefreshInDoubt(
            f"Connection {conn.pk} to company {conn.company_id}: {REFRESH_IN_DOUBT_MEANING}",
            code=code,
            connection_id=conn.pk,
        )
        in_doubt.__cause__ = err
        return in_doubt
    _record_transient(conn, err)
    return err


def _rotated_since(connection_id: int, attempt: _Attempt) -> Token | None:
    """The loser rule, under the lock: the stored token if it is no longer the one the
    request was made with (only possible without row locks), else None."""
    token = Token.objects.filter(pk=connection_id).first()
    if token is None:
        return None
    changed = token.version != attempt.version or bool(
        attempt.refresh_fingerprint
        and token.refresh_token
        and crypto.fingerprint(str(token.refresh_token)) != attempt.refresh_fingerprint
    )
    if not changed:
        return None
    logger.info(
        "invalid_grant for connection %s, but its token was rotated meanwhile; using the new token",
        connection_id,
    )
    return token


def _grant_rejected(
    conn: Connection, err: InvalidGrant, *, actor: UserLike = None, message: str = ""
) -> GrantRejected:
    """Mark ``conn`` needs_reauth for ``invalid_grant`` (one event, one signal after commit)
    and return the error to raise."""
    mark_needs_reauth(
        conn,
        reason="invalid_grant",
        error_code=(err.error_id or err.code or "invalid_grant")[:100],
        message=message
        or (
            "Intacct no longer accepts the refresh token (invalid_grant); "
            "a user must reconnect the company."
        ),
        actor=actor,
    )
    logger.warning(
        "Connection %s (company %s) needs re-authorisation: invalid_grant",
        conn.pk,
        conn.company_id,
    )
    rejected = GrantRejected(
        f"Intacct no longer accepts connection {conn.pk}'s grant (invalid_grant"
        f"{': ' + err.message if err.message != InvalidGrant.default_message else ''}); "
        "a user must reconnect the company",
        status_code=err.status_code,
        code=err.code or "invalid_grant",
        error_id=err.error_id,
        support_id=err.support_id,
        connection_id=conn.pk,
    )
    rejected.__cause__ = err
    return rejected


def _record_transient(conn: Connection, err: TokenRequestError) -> None:
    """A transient failure (nothing decided at Intacct): count it, record it, and start the
    short back-off during which callers get :class:`RefreshBackoff` without a request."""
    lost = isinstance(err, TokenResponseLost)
    code = err.error_id or err.code or ("response_lost" if lost else type(err).__name__)
    conn.refresh_failures += 1
    delay = min(
        REFRESH_RETRY_BACKOFF_BASE * 2 ** (conn.refresh_failures - 1), REFRESH_RETRY_BACKOFF_MAX
    )
    conn.refresh_retry_at = timezone.now() + timedelta(seconds=delay)
    conn.record_error(code, str(err))
    conn.save(
        update_fields=[
            "last_error_code",
            "last_error_message",
            "last_error_at",
            "refresh_failures",
            "refresh_retry_at",
            "updated_at",
        ]
    )
    message = (
        "The client-credentials token request was sent but its answer was lost; the next "
        "attempt asks for a new token (no refresh token is at stake)."
        if lost
        else f"Token refresh failed: {err.message}"
    )
    ConnectionEvent.log(conn, EventKind.REFRESH_FAILED, message, error_code=code[:100])
    logger.warning(
        "Token refresh of connection %s failed: %s; callers back off for %.0f s",
        conn.pk,
        code,
        delay,
    )


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


def _store_durably(conn: Connection, token: Token | None, tokens: oauth.TokenSet) -> Token:
    """Store a token response that just arrived: written ahead to the token journal
    (durable outside this transaction), stored, and the journal entry deleted in this
    transaction (:mod:`intacct_connect.token_journal`)."""
    written = token_journal.write_ahead(
        conn.pk, base_version=token.version if token is not None else 0, tokens=tokens
    )
    stored = _store(conn, token, tokens)
    token_journal.clear(written)
    return stored


def _adopt_journaled(conn: Connection, token: Token | None) -> Token | None:
    """Under the lock: store the journaled answer that replaced the stored token version
    and whose transaction never committed, if there is one (the stored refresh token is
    then dead at Intacct: sending it would fail or, with reuse detection, revoke the
    grant). A connection the answer came too late for (needs_reauth, revoked,
    superseded) is left as it is."""
    if token is None or conn.status not in (
        ConnectionStatus.ACTIVE,
        ConnectionStatus.REFRESH_IN_DOUBT,
    ):
        return None
    journaled = token_journal.adopt(conn.pk, token.version)
    if journaled is None:
        return None
    if conn.status != ConnectionStatus.ACTIVE:
        conn.status = ConnectionStatus.ACTIVE
        conn.save(update_fields=["status", "updated_at"])
    stored = _store(conn, token, journaled)
    ConnectionEvent.log(
        conn,
        EventKind.REFRESHED,
        "Adopted a token response whose database commit had failed (token journal); no "
        "token request was sent.",
    )
    return stored


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
    conn.refresh_retry_at = None
    conn.save(
        update_fields=["next_refresh_at", "refresh_failures", "refresh_retry_at", "updated_at"]
    )
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
    """For code that sends refresh requests itself (outside :func:`refresh_connection`):
    apply the outcome of a refresh made with the token at ``used_version`` (whose refresh
    token had the fingerprint ``used_fingerprint``) that failed with ``invalid_grant``.

    Under the connection's lock, the token is re-read: if another worker rotated it
    meanwhile, its token is returned and nothing is marked (the *loser rule*). Otherwise
    the connection is marked ``needs_reauth`` (one event, one ``connection_needs_reauth``
    signal after commit) and :class:`~intacct_connect.exceptions.GrantRejected` is raised.
    """
    attempt = _Attempt(version=used_version, refresh_fingerprint=used_fingerprint)
    error.connection_id = connection_id
    with transaction.atomic():
        _set_lock_timeout()
        conn = _lock_connection(connection_id, wait=True)
        assert conn is not None  # noqa: S101 - wait=True never returns None
        rotated = _rotated_since(connection_id, attempt)
        if rotated is not None and conn.status == ConnectionStatus.ACTIVE:
            return rotated
        rejected = _grant_rejected(conn, error)
    raise rejected


@dataclass(frozen=True)
class StoredTokenTrial:
    """What :func:`try_stored_refresh_token` did. ``outcome``: ``active`` (Intacct accepted
    the stored refresh token), ``needs_reauth`` (it refused it, or the answer was lost
    again), ``unchanged`` (nothing was decided at Intacct: the connection stays in doubt,
    ``detail`` says why) or ``not_in_doubt`` (the connection was not ``refresh_in_doubt``;
    ``detail`` is its status)."""

    connection_id: int
    outcome: str
    detail: str = ""


def try_stored_refresh_token(connection_id: int, *, actor: UserLike = None) -> StoredTokenTrial:
    """Send a ``refresh_in_doubt`` connection's stored refresh token once (an operator's
    decision: it may have been rotated away by the request whose answer was lost; some
    authorization servers accept it for a grace period).

    Under the connection's lock, like every refresh. Intacct answers tokens → stored, the
    connection is ``active`` again; ``invalid_grant``, or the answer is lost again →
    ``needs_reauth`` (a user must reconnect). A failure that decided nothing at Intacct
    (nothing could be sent, a 5xx, ``invalid_client``) leaves the connection in doubt for
    another trial. Raises :class:`~intacct_connect.exceptions.ClientCredentialsRejected`
    while an ``invalid_client`` incident pauses token requests.
    """
    with transaction.atomic():
        _set_lock_timeout()
        locked = _lock_for_refresh(connection_id, wait=True)
        assert locked is not None  # noqa: S101 - wait=True never returns None
        conn, token = locked
        adopted = _adopt_journaled(conn, token)
        if adopted is not None:
            return StoredTokenTrial(conn.pk, "active", f"adopted version {adopted.version}")
        if conn.status != ConnectionStatus.REFRESH_IN_DOUBT:
            return StoredTokenTrial(conn.pk, "not_in_doubt", str(conn.status))
        refresh_token = str(token.refresh_token) if token is not None else ""
        if token is None or not refresh_token:
            _grant_rejected(
                conn,
                InvalidGrant("no stored refresh token", code="invalid_grant"),
                actor=actor,
                message="No refresh token is stored; a user must reconnect the company.",
            )
            return StoredTokenTrial(conn.pk, "needs_reauth", "no stored refresh token")
        incident = claim_credentials_probe()
        try:
            issued = oauth.refresh(refresh_token)
        except InvalidGrant as err:
            _grant_rejected(
                conn,
                err,
                actor=actor,
                message=(
                    "An operator tried the stored refresh token after a lost answer; Intacct "
                    "refused it (invalid_grant). A user must reconnect the company."
                ),
            )
            return StoredTokenTrial(conn.pk, "needs_reauth", err.error_id or err.code or "")
        except TokenResponseLost as err:
            mark_needs_reauth(
                conn,
                reason="refresh_lost",
                error_code=err.code or "response_lost",
                message=(
                    "An operator tried the stored refresh token after a lost answer, and this "
                    "answer was lost too; a user must reconnect the company."
                ),
                actor=actor,
            )
            return StoredTokenTrial(conn.pk, "needs_reauth", "response_lost")
        except InvalidClient as err:
            rejected = record_credentials_rejected(err, connection=conn)
            return StoredTokenTrial(conn.pk, "unchanged", str(rejected))
        except TokenRequestError as err:
            code = err.error_id or err.code or type(err).__name__
            ConnectionEvent.log(
                conn,
                EventKind.REFRESH_FAILED,
                "An operator tried the stored refresh token; nothing was decided at Intacct "
                f"({err.message}). The connection stays in doubt.",
                error_code=code[:100],
                actor=actor_of(actor),
            )
            return StoredTokenTrial(conn.pk, "unchanged", str(err))
        conn.status = ConnectionStatus.ACTIVE
        conn.record_error("", "")
        conn.last_error_at = None
        conn.save(
            update_fields=[
                "status",
                "last_error_code",
                "last_error_message",
                "last_error_at",
                "updated_at",
            ]
        )
        stored = _store_durably(conn, token, issued)
        ConnectionEvent.log(
            conn,
            EventKind.REFRESHED,
            "An operator tried the stored refresh token after a lost answer; Intacct accepted "
            "it and the connection is active again.",
            actor=actor_of(actor),
        )
        resolve_credentials_incident(incident)
        logger.warning(
            "Connection %s (company %s) left refresh_in_doubt: the stored refresh token was "
            "accepted (version %s)",
            conn.pk,
            conn.company_id,
            stored.version,
        )
    return StoredTokenTrial(conn.pk, "active", f"version {stored.version}")
