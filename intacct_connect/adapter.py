"""The adapter: how a site tells intacct_connect who its tenants are and who may do what.

Subclass :class:`DefaultIntacctAdapter`, override what differs, and name the subclass in
``INTACCT_CONNECT["ADAPTER"]``. The default treats each logged-in user as a tenant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.http import HttpRequest
from django.urls import reverse

from intacct_connect.conf import app_settings

if TYPE_CHECKING:
    from intacct_connect.models import Connection


class DefaultIntacctAdapter:
    """Tenant = the logged-in user; every logged-in user may manage their own connections."""

    def get_tenant_key(self, request: HttpRequest) -> str | None:
        """A stable string naming the request's tenant, or None when there is none."""
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        return f"user:{user.pk}"

    def can_connect(self, request: HttpRequest) -> bool:
        return self.get_tenant_key(request) is not None

    def can_view(self, request: HttpRequest, connection: Connection) -> bool:
        return connection.tenant_key == self.get_tenant_key(request)

    def can_reconnect(self, request: HttpRequest, connection: Connection) -> bool:
        return self.can_view(request, connection)

    def can_disconnect(self, request: HttpRequest, connection: Connection) -> bool:
        return self.can_view(request, connection)

    def get_connections_url(self, request: HttpRequest) -> str:
        """The tenant's connections page: the error pages' "back" link, and where
        disconnect and failed flows return."""
        return reverse("intacct_connect:connections")

    def get_connect_redirect_url(self, request: HttpRequest, connection: Connection) -> str:
        """Where a successful connect or reconnect returns when no safe ``next`` was given.

        Must be a same-site path or URL; the default is :meth:`get_connections_url`."""
        return self.get_connections_url(request)


def get_adapter() -> DefaultIntacctAdapter:
    adapter_class = app_settings.ADAPTER
    return adapter_class()  # type: ignore[no-any-return]
