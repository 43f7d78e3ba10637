"""Signals sent by intacct_connect, always **after the transaction commits**.

Connect receivers with ``@receiver(connection_created)`` etc. Every signal is sent with
``sender=Connection`` (the model class) and keyword arguments only. No argument ever
holds a token or a secret. A receiver that raises is logged and does not break the
flow that sent the signal (signals are sent with ``send_robust``).
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.dispatch import Signal

logger = logging.getLogger(__name__)

#: A new connection was created by the connect flow, the admin or a command.
#: Arguments: ``connection`` (:class:`~intacct_connect.models.Connection`),
#: ``actor`` (the Django user who connected it, or None).
connection_created = Signal()

#: An existing connection was authorised again (same primary key, new tokens).
#: Arguments: ``connection``, ``actor`` (Django user or None).
connection_reconnected = Signal()

#: The connection's tokens were refreshed.
#: Arguments: ``connection``, ``token_version`` (int, the new Token.version).
token_refreshed = Signal()

#: The connection can no longer be used until someone reconnects it.
#: Arguments: ``connection``, ``reason`` (str: ``invalid_grant``, ``admin``, …),
#: ``error_code`` (str, Intacct's or OAuth's error code, may be empty),
#: ``actor`` (Django user or None).
connection_needs_reauth = Signal()

#: Another connection (usually another tenant's) authorised the same Intacct user and
#: company, so Intacct superseded this connection's grant.
#: Arguments: ``connection`` (the superseded one), ``superseded_by`` (the new one).
connection_superseded = Signal()

#: The connection was disconnected: tokens revoked at Intacct (when possible) and
#: deleted locally. Arguments: ``connection``, ``actor`` (Django user or None),
#: ``revoked_at_intacct`` (bool: False when Intacct could not be told).
connection_revoked = Signal()

#: A refresh request of the connection was sent and its answer lost; the connection is now
#: ``refresh_in_doubt`` and unusable until an operator tries its stored refresh token once
#: or a user reconnects it. Arguments: ``connection``, ``error_code`` (str).
refresh_in_doubt = Signal()

#: Intacct rejected this site's client ID or secret (``invalid_client``): a site-wide
#: incident was opened (sent once per incident, not per connection or per attempt).
#: Arguments: ``connection`` (the connection whose token request was refused, or None),
#: ``error_code`` (str, e.g. ``invalid_client``), ``error_id`` (str, e.g. ``REST-1216``,
#: may be empty), ``incident`` (:class:`~intacct_connect.models.SiteIncident`).
client_credentials_rejected = Signal()


#: An Intacct company's circuit breaker opened (:mod:`intacct_connect.circuit`): calls to it
#: fail fast for ``open_seconds``. Arguments: ``company_id`` (str), ``open_seconds``
#: (float), ``trips`` (int: 0 the first time, then one more per failed probe). Sent at
#: once (no transaction is involved), in the process whose request tripped it.
company_circuit_opened = Signal()

#: An Intacct company's circuit breaker closed: a request got an answer again.
#: Arguments: ``company_id`` (str).
company_circuit_closed = Signal()


def send_now(signal: Signal, **kwargs: Any) -> None:
    """Send ``signal`` with ``sender=Connection`` now; a failing receiver is logged."""
    from intacct_connect.models import Connection

    for receiver, result in signal.send_robust(sender=Connection, **kwargs):
        if isinstance(result, Exception):
            logger.error(
                "intacct_connect signal receiver %r failed: %s",
                receiver,
                type(result).__name__,
                exc_info=(type(result), result, result.__traceback__),
            )


def send_on_commit(signal: Signal, **kwargs: Any) -> None:
    """Send ``signal`` with ``sender=Connection`` once the current transaction commits."""
    transaction.on_commit(lambda: send_now(signal, **kwargs))
