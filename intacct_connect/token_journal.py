"""The token journal: every token response is written ahead of the transaction that stores
it, so a token set Intacct has issued survives the database failing before that commit.

With refresh-token rotation the old refresh token is dead at Intacct the moment a refresh
answers; if the transaction storing the answer then fails (connection killed, deadlock,
statement timeout), losing the new tokens would lose the customer's connection. So the
refresh path (:mod:`intacct_connect.tokens`), holding the connection's row lock:

1. :func:`write_ahead` — inserts the response, encrypted like :class:`Token`, as a
   :class:`TokenJournalEntry` through a private autocommit connection
   (:mod:`intacct_connect.private_db`), committed durably (``synchronous_commit`` on)
   before the main transaction goes on;
2. stores the tokens in the main transaction as usual, and :func:`clear` deletes the
   entry in that same transaction (committed together, or the entry stays);
3. :func:`adopt` — the next refresh of the connection (under the same lock, before it
   decides anything) finds an entry whose ``base_version`` is the stored token version:
   a response that was never committed. It returns the journaled token set, which the
   caller stores instead of sending a token request (the stored refresh token is the dead
   one).

The guarantee needs PostgreSQL; on other databases (SQLite, single-process development)
the entry is written in the caller's transaction and only the bookkeeping is exercised.
A journal write that fails is logged and the refresh goes on: the main commit then still
stores the tokens, while refusing to store them would lose them for certain.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from django.utils import timezone

from intacct_connect import oauth, private_db
from intacct_connect.crypto import get_keyring
from intacct_connect.fields import EncryptedTextField
from intacct_connect.models import TokenJournalEntry

logger = logging.getLogger(__name__)

_ACCESS: EncryptedTextField = TokenJournalEntry._meta.get_field("access_token")
_REFRESH: EncryptedTextField = TokenJournalEntry._meta.get_field("refresh_token")


@dataclass(frozen=True)
class Written:
    """A journal entry this process wrote (its id; ``None`` when the write failed)."""

    entry_id: uuid.UUID | None


def write_ahead(connection_id: int, *, base_version: int, tokens: oauth.TokenSet) -> Written:
    """Write ``tokens`` (the answer replacing token version ``base_version``) durably,
    outside the caller's transaction. Never raises."""
    entry_id = uuid.uuid4()
    ring = get_keyring()
    try:
        row = {
            "id": entry_id,
            "connection_id": connection_id,
            "base_version": base_version,
            "access_token": ring.encrypt(
                tokens.access_token, _ACCESS.associated_data_for(entry_id)
            ),
            "refresh_token": (
                ring.encrypt(tokens.refresh_token, _REFRESH.associated_data_for(entry_id))
                if tokens.refresh_token
                else ""
            ),
            "token_type": (tokens.token_type or "Bearer")[:20],
            "scope": (tokens.scope or "")[:255],
            "expires_at": tokens.expires_at,
            "created_at": timezone.now(),
        }
        with private_db.durable() as cursor:
            db = cursor.db
            if db.vendor != "postgresql":  # the caller's own connection and transaction
                entry = TokenJournalEntry(**row)
                entry.access_token = tokens.access_token  # the field encrypts on save
                entry.refresh_token = tokens.refresh_token or ""
                entry.save(force_insert=True)
            else:
                quote = db.ops.quote_name
                columns = ", ".join(quote(name) for name in row)
                cursor.execute(
                    f"INSERT INTO {quote(TokenJournalEntry._meta.db_table)} ({columns}) "  # noqa: S608 - names from the model
                    f"VALUES ({', '.join(['%s'] * len(row))})",
                    list(row.values()),
                )
    except Exception:
        logger.exception(
            "Could not write the token journal entry of connection %s; storing the tokens "
            "without it",
            connection_id,
        )
        return Written(None)
    return Written(entry_id)


def clear(written: Written) -> None:
    """Delete the entry in the caller's transaction, the one storing its tokens: if that
    transaction commits, the entry is gone with it; if it fails, the entry stays for
    :func:`adopt`."""
    if written.entry_id is not None:
        TokenJournalEntry.objects.filter(pk=written.entry_id).delete()


def adopt(connection_id: int, stored_version: int) -> oauth.TokenSet | None:
    """Under the connection's lock: the journaled token set that replaced
    ``stored_version`` and was never committed, if any (the newest such entry). One
    ``SELECT`` when the journal holds nothing for the connection (the normal case);
    otherwise the connection's entries are deleted (older ones were committed; the adopted
    one is being stored by the caller, in the same transaction)."""
    entries = list(
        TokenJournalEntry.objects.filter(
            connection_id=connection_id, base_version__lte=stored_version
        ).order_by("-created_at")
    )
    if not entries:
        return None
    TokenJournalEntry.objects.filter(pk__in=[e.pk for e in entries]).delete()
    entry = next((e for e in entries if e.base_version == stored_version), None)
    if entry is None:
        return None
    logger.warning(
        "Connection %s: adopted a token response received at %s whose transaction did not "
        "commit (token version %s)",
        connection_id,
        entry.created_at.isoformat(),
        stored_version,
    )
    return oauth.TokenSet(
        access_token=str(entry.access_token),
        refresh_token=str(entry.refresh_token) or None,
        token_type=entry.token_type,
        expires_in=max(0, int((entry.expires_at - timezone.now()).total_seconds())),
        expires_at=entry.expires_at,
        scope=entry.scope,
        claims=oauth.decode_claims(str(entry.access_token)),
    )
