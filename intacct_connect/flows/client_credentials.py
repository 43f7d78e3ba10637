"""Server-to-server connections as a Web Services user (the client-credentials grant)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.views.decorators.debug import sensitive_variables

from intacct_connect import oauth, signals
from intacct_connect.connection_state import (
    UserLike,
    actor_of,
    client_credentials_username,
    mark_authorised,
    next_refresh_at,
    parse_username,
)
from intacct_connect.exceptions import TokenRequestError
from intacct_connect.flows.common import current_environment, store_tokens
from intacct_connect.models import (
    Connection,
    ConnectionEvent,
    EventKind,
    GrantType,
)


@sensitive_variables("token_set")
def create_client_credentials_connection(
    *, tenant_key: str, username: str, actor: UserLike = None
) -> Connection:
    """Connect a company server-to-server (no browser) as a Web Services user.

    Creates the connection, or updates the tenant's existing one for the same user,
    company and entity in place. Raises ``ValidationError`` for a malformed username
    and the :class:`TokenRequestError` family when Intacct refuses.
    """
    if not tenant_key or not tenant_key.strip():
        raise ValidationError("A tenant key is required.")
    tenant_key = tenant_key.strip()
    if len(tenant_key) > 255:
        raise ValidationError("The tenant key is limited to 255 characters.")
    who = parse_username(username)
    token_set = oauth.client_credentials(who.username)
    company_id = token_set.company_id or who.company_id
    user_id = token_set.user_id or who.user_id
    if company_id.lower() != who.company_id.lower():
        raise TokenRequestError(
            f"Intacct issued a token for company {company_id}, not {who.company_id}."
        )
    with transaction.atomic():
        existing = (
            Connection.objects.filter(
                tenant_key=tenant_key,
                company_id=company_id,
                intacct_user_id=user_id,
                entity_id=who.entity_id,
                grant_type=GrantType.CLIENT_CREDENTIALS,
            )
            .locked(no_key=True)
            .first()
        )
        created = existing is None
        conn = existing or Connection(
            tenant_key=tenant_key,
            company_id=company_id,
            intacct_user_id=user_id,
            entity_id=who.entity_id,
            grant_type=GrantType.CLIENT_CREDENTIALS,
        )
        mark_authorised(conn, environment=current_environment(), actor=actor)
        conn.next_refresh_at = next_refresh_at(token_set.expires_at)
        conn.save()
        store_tokens(conn, token_set)
        ConnectionEvent.log(
            conn,
            EventKind.CONNECTED if created else EventKind.RECONNECTED,
            f"Client-credentials token issued for Web Services user {user_id}.",
            actor=actor_of(actor),
        )
        signal = signals.connection_created if created else signals.connection_reconnected
        signals.send_on_commit(signal, connection=conn, actor=actor_of(actor))
    return conn


def reconnect_client_credentials(connection: Connection, *, actor: UserLike = None) -> Connection:
    """Obtain a new client-credentials token for an existing connection (same pk)."""
    if connection.grant_type != GrantType.CLIENT_CREDENTIALS:
        raise ValueError("Only client-credentials connections reconnect without a browser.")
    return create_client_credentials_connection(
        tenant_key=connection.tenant_key,
        username=client_credentials_username(connection),
        actor=actor,
    )
