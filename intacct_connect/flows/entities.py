"""Read from Intacct after a connect: the default entity choice and the company name."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from intacct_connect.client import IntacctClient
from intacct_connect.connection_state import UserLike, user_id_of
from intacct_connect.flows.common import _clean_text, clean_entity_id
from intacct_connect.models import Connection, GrantType

# The package's logger, as before the split into modules.
logger = logging.getLogger("intacct_connect.flows")


#: Most entities read for the "Default entity" choice (pages of 1000 rows).
MAX_ENTITY_PAGES = 5
#: Sage's documented company preferences object: ``GET /objects/company-config/
#: company-preference/setup`` (spec/company-configuration.json, operation
#: ``get-company-config-company-preference``) carries the company's ``id`` and ``name``.
COMPANY_PREFERENCE = ("company-config/company-preference", "setup")


@dataclass(frozen=True)
class EntityChoice:
    """One entity of a multi-entity company, as Intacct lists it."""

    entity_id: str
    name: str

    @property
    def label(self) -> str:
        return f"{self.entity_id} ({self.name})" if self.name else self.entity_id


def company_entities(connection: Connection) -> list[EntityChoice]:
    """The company's active entities, read from Intacct at the top level (sorted by ID).

    Raises the :class:`~intacct_connect.exceptions.IntacctConnectError` family when
    Intacct cannot be reached or refuses. An empty list means a single-entity company.
    """
    with IntacctClient(connection, entity_id="") as client:
        rows = list(
            client.query(
                "company-config/entity",
                ["id", "name", "status"],
                order_by=[{"id": "asc"}],
                max_pages=MAX_ENTITY_PAGES,
            )
        )
    choices: dict[str, EntityChoice] = {}
    for row in rows:
        entity_id = str(row.get("id") or "").strip()
        if not entity_id or str(row.get("status") or "active").lower() != "active":
            continue
        choices.setdefault(
            entity_id, EntityChoice(entity_id, _clean_text(str(row.get("name") or ""), 200))
        )
    return list(choices.values())


def set_default_entity(
    connection: Connection | int,
    entity_id: str,
    *,
    actor: UserLike = None,
    choices: list[EntityChoice] | None = None,
) -> Connection:
    """Make ``entity_id`` (blank: top level) the connection's default entity.

    The choice is checked against the entities Intacct lists (``choices``, or read with
    :func:`company_entities`) before anything is written; an unknown, malformed or hostile
    value raises ``ValidationError`` and changes nothing. Client-credentials connections
    keep the entity of their Web Services username (``ValueError``). The write is one
    update of the locked row, so no half-written state is possible.
    """
    pk = connection.pk if isinstance(connection, Connection) else connection
    conn = connection if isinstance(connection, Connection) else Connection.objects.get(pk=pk)
    if conn.grant_type == GrantType.CLIENT_CREDENTIALS:
        raise ValueError(
            "A client-credentials connection's entity is part of its Web Services username."
        )
    entity_id = clean_entity_id(entity_id)
    if entity_id:
        known = company_entities(conn) if choices is None else choices
        if entity_id not in {choice.entity_id for choice in known}:
            raise ValidationError(
                "%(entity)s is not an active entity of company %(company)s.",
                params={"entity": entity_id[:100], "company": conn.company_id},
                code="unknown_entity",
            )
    with transaction.atomic():
        locked = Connection.objects.filter(pk=pk).locked(no_key=True).get()
        if locked.entity_id != entity_id:
            locked.entity_id = entity_id
            locked.save(update_fields=["entity_id", "updated_at"])
            logger.info(
                "Connection %s: default entity set to %s by user %s.",
                pk,
                entity_id or "top level",
                user_id_of(actor),
            )
    if isinstance(connection, Connection):
        connection.entity_id = entity_id
    return locked


def fill_company_name(connection: Connection) -> str:
    """Read the company's name from Intacct and store it; returns the name ("" if unknown).

    Best effort, for right after a connect: any failure is logged (its type only, no
    secret) and leaves the connection as it was. Real Intacct does not put the name in its
    tokens, so this is where ``company_name`` comes from.
    """
    try:
        with IntacctClient(connection, entity_id="") as client:
            data = client.request(
                "GET", f"/objects/{COMPANY_PREFERENCE[0]}/{COMPANY_PREFERENCE[1]}"
            ).data
    except Exception as err:  # connecting must never fail because of this
        logger.warning(
            "Could not read the company name of connection %s from Intacct (%s).",
            connection.pk,
            type(err).__name__,
        )
        return connection.company_name
    name = _company_name_of(data)
    if name and name != connection.company_name:
        connection.company_name = name
        Connection.objects.filter(pk=connection.pk).update(
            company_name=name, updated_at=timezone.now()
        )
    return connection.company_name


def _company_name_of(data: Any) -> str:
    """``name`` of the company preferences answer (inside ``ia::result``, or beside it as in
    Sage's published example)."""
    if not isinstance(data, dict):
        return ""
    result = data.get("ia::result")
    for source in (result, data):
        if isinstance(source, list) and source:
            source = source[0]
        if isinstance(source, dict) and isinstance(source.get("name"), str):
            name = _clean_text(source["name"], 200).strip()
            if name:
                return name
    return ""
