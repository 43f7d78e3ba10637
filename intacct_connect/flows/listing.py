"""Listing helpers: a tenant's connections with their token metadata."""

from __future__ import annotations

from django.db.models import QuerySet

from intacct_connect.models import Connection, Token


def connections_for_tenant(tenant_key: str) -> QuerySet[Connection]:
    """The tenant's connections with their token metadata (one query; no token values)."""
    return (
        Connection.objects.for_tenant(tenant_key)
        .select_related("token")
        .defer("token__access_token", "token__refresh_token")
        .order_by("company_id", "entity_id", "pk")
    )


def token_of(connection: Connection) -> Token | None:
    """The connection's token row (metadata), or None when it has none."""
    try:
        return connection.token
    except Token.DoesNotExist:
        return None
