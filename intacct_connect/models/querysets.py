"""Querysets of the app's models; :class:`LockingQuerySet` holds the one row-lock rule."""

from __future__ import annotations

from typing import TYPE_CHECKING, Self, TypeVar

from django.db import connection as db_connection
from django.db import models

from intacct_connect.models.choices import ConnectionStatus

if TYPE_CHECKING:  # named in the querysets' type parameters (strings: no import cycle)
    from intacct_connect.models.connections import (  # noqa: F401
        Connection,
        OAuthFlow,
        Token,
    )
    from intacct_connect.models.incidents import SiteIncident  # noqa: F401
    from intacct_connect.models.jobs import JobRun, Schedule  # noqa: F401


_M = TypeVar("_M", bound=models.Model)


class LockingQuerySet(models.QuerySet[_M]):
    """A queryset that can lock its rows: the one row-lock rule of the app."""

    def locked(
        self,
        *,
        skip_locked: bool = False,
        nowait: bool = False,
        no_key: bool = False,
        of: tuple[str, ...] = ("self",),
    ) -> Self:
        """These rows, locked by the transaction that reads them, as far as the database can.

        ``SELECT … FOR [NO KEY] UPDATE [OF …] [SKIP LOCKED | NOWAIT]``; each option is used
        only where the database supports it. ``of`` names the rows to lock (default: the
        model's own rows, not those of ``select_related`` tables). ``skip_locked`` on a
        database without it returns the rows unlocked, as does SQLite, which has no row
        locks: its writing transactions are serialised instead.
        """
        features = db_connection.features
        if not features.has_select_for_update:
            return self
        if skip_locked and not features.has_select_for_update_skip_locked:
            return self
        return self.select_for_update(
            skip_locked=skip_locked,
            nowait=nowait and features.has_select_for_update_nowait,
            no_key=no_key and features.has_select_for_no_key_update,
            of=of if features.has_select_for_update_of else (),
        )


class TokenQuerySet(LockingQuerySet["Token"]):
    pass


class OAuthFlowQuerySet(LockingQuerySet["OAuthFlow"]):
    pass


class ScheduleQuerySet(LockingQuerySet["Schedule"]):
    pass


class JobRunQuerySet(LockingQuerySet["JobRun"]):
    pass


class ConnectionQuerySet(LockingQuerySet["Connection"]):
    def for_tenant(self, tenant_key: str) -> ConnectionQuerySet:
        """Only the tenant's connections: every tenant-facing query path starts here."""
        return self.filter(tenant_key=tenant_key)

    def active(self) -> ConnectionQuerySet:
        return self.filter(status=ConnectionStatus.ACTIVE)


class SiteIncidentQuerySet(LockingQuerySet["SiteIncident"]):
    def open(self) -> SiteIncidentQuerySet:
        return self.filter(resolved_at__isnull=True)
