"""Disconnecting: revoke the grant at Intacct, delete the tokens, mark the connection revoked.

(Marking a connection as needing re-authorisation is
:func:`intacct_connect.connection_state.mark_needs_reauth`.)
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.views.decorators.debug import sensitive_variables

from intacct_connect import oauth, signals
from intacct_connect.connection_state import UserLike, actor_of
from intacct_connect.exceptions import IntacctConnectError
from intacct_connect.flows.common import _clean_text
from intacct_connect.models import (
    Connection,
    ConnectionEvent,
    ConnectionStatus,
    EventKind,
    OAuthFlow,
    Token,
)


@dataclass(frozen=True)
class DisconnectResult:
    connection: Connection
    revoked_at_intacct: bool
    error: str = ""


@sensitive_variables("secret")
def disconnect(connection: Connection | int, *, actor: UserLike = None) -> DisconnectResult:
    """Revoke the connection's grant at Intacct, then delete its tokens and mark it revoked.

    Local state is cleaned even when Intacct cannot be reached or refuses; the failure
    is recorded as an event and returned. Intacct revokes every token of the same
    Intacct user and company (the whole grant).
    """
    pk = connection.pk if isinstance(connection, Connection) else connection
    conn = Connection.objects.get(pk=pk)
    secret = ""
    try:
        token = Token.objects.filter(pk=pk).first()
        if token is not None:
            secret = token.refresh_token or token.access_token
    except IntacctConnectError as err:  # undecryptable: nothing can be revoked remotely
        error = f"The stored token could not be decrypted ({type(err).__name__})."
    else:
        error = "" if secret else "No token was stored, so there was nothing to revoke."
    revoked = False
    error_code = ""
    if secret and conn.status != ConnectionStatus.SUPERSEDED:
        try:
            oauth.revoke(secret)
            revoked = True
        except IntacctConnectError as err:
            error = _clean_text(str(err))
            error_code = (err.code or err.error_id or type(err).__name__)[:100]
    elif secret:
        # A superseded grant is dead already; revoking its token would revoke the
        # newer grant of the same Intacct user and company (Intacct revokes the pool).
        error = "Not revoked at Intacct: the grant had already been superseded."
    secret = ""
    with transaction.atomic():
        conn = Connection.objects.filter(pk=pk).locked(no_key=True).get()
        Token.objects.filter(pk=pk).delete()
        OAuthFlow.objects.filter(reconnect=conn, consumed_at__isnull=True).delete()
        conn.status = ConnectionStatus.REVOKED
        conn.next_refresh_at = None
        if revoked:
            conn.last_error_code = ""
            conn.last_error_message = ""
            conn.last_error_at = None
        elif error_code:
            conn.record_error(error_code, error)
        conn.save()
        if revoked:
            ConnectionEvent.log(
                conn, EventKind.REVOKED, "Grant revoked at Intacct.", actor=actor_of(actor)
            )
        ConnectionEvent.log(
            conn,
            EventKind.DISCONNECTED,
            "Disconnected; tokens deleted." + ("" if revoked else f" {error}".rstrip()),
            error_code=error_code,
            actor=actor_of(actor),
        )
        signals.send_on_commit(
            signals.connection_revoked,
            connection=conn,
            actor=actor_of(actor),
            revoked_at_intacct=revoked,
        )
    return DisconnectResult(connection=conn, revoked_at_intacct=revoked, error=error)
