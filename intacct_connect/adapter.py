"""The adapter: how a site tells intacct_connect who its tenants are and who may do what.

Subclass :class:`DefaultIntacctAdapter`, override what differs, and name the subclass in
``INTACCT_CONNECT["ADAPTER"]``. The default treats each logged-in user as a tenant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse

from intacct_connect import http
from intacct_connect.conf import app_settings

if TYPE_CHECKING:
    from collections.abc import Iterable

    import requests

    from intacct_connect.models import Connection


class DefaultIntacctAdapter:
    """Tenant = the logged-in user; every logged-in user may manage their own connections."""

    def get_tenant_key(self, request: HttpRequest) -> str | None:
        """A stable string naming the request's tenant, or None when there is none."""
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        return f"user:{user.pk}"

    def get_tenant_labels(self, tenant_keys: Iterable[str]) -> dict[str, str]:
        """Human labels of tenant keys, for the admin's lists and pages (one call per page).

        The default labels ``user:<pk>`` keys with the user's full name or username (one
        query for all of them); a key it cannot label is missing or maps to itself."""
        from django.contrib.auth import get_user_model
        from django.core.exceptions import ValidationError

        keys = set(tenant_keys)
        user_model = get_user_model()
        pk_field = user_model._meta.pk
        by_pk: dict[object, str] = {}
        for key in keys:
            prefix, _, raw = key.partition(":")
            if prefix != "user" or not raw or pk_field is None:
                continue
            try:
                by_pk[pk_field.to_python(raw)] = key
            except ValidationError:
                continue
        labels = {key: key for key in keys}
        if by_pk:
            for user in user_model._default_manager.filter(pk__in=list(by_pk)):
                full_name = getattr(user, "get_full_name", lambda: "")()
                labels[by_pk[user.pk]] = str(full_name).strip() or user.get_username()
        return labels

    def can_connect(self, request: HttpRequest) -> bool:
        return self.get_tenant_key(request) is not None

    def can_view(self, request: HttpRequest, connection: Connection) -> bool:
        return connection.tenant_key == self.get_tenant_key(request)

    def can_reconnect(self, request: HttpRequest, connection: Connection) -> bool:
        return self.can_view(request, connection)

    def can_disconnect(self, request: HttpRequest, connection: Connection) -> bool:
        return self.can_view(request, connection)

    def can_change_entity(self, request: HttpRequest, connection: Connection) -> bool:
        """The "Default entity" page of a connection (default: as :meth:`can_reconnect`)."""
        return self.can_reconnect(request, connection)

    def get_logout_url(self, request: HttpRequest) -> str | None:
        """Where the tenant pages' *Sign out* button posts; None hides it.

        The default is the site's ``logout`` URL (Django's ``LogoutView``, POST only) when
        the URLconf has one."""
        try:
            return reverse("logout")
        except NoReverseMatch:
            return None

    def get_connections_url(self, request: HttpRequest) -> str:
        """The tenant's connections page: the error pages' "back" link, and where
        disconnect and failed flows return."""
        return reverse("intacct_connect:connections")

    def get_connect_redirect_url(self, request: HttpRequest, connection: Connection) -> str:
        """Where a successful connect or reconnect returns when no safe ``next`` was given.

        Must be a same-site path or URL; the default is :meth:`get_connections_url`."""
        return self.get_connections_url(request)

    def get_requests_session(self, purpose: str) -> requests.Session:
        """The ``requests.Session`` for ``purpose``: ``"token"`` (token endpoint and revoke)
        or ``"api"`` (the REST API client). Called once per thread and purpose.

        Override to add proxies, client certificates, a CA bundle or tracing to every
        outbound call; start from ``super().get_requests_session(purpose)`` to keep the
        pooling and ``trust_env = False`` (the environment's proxies are still passed with
        every request, read once per origin)."""
        return http.build_session()


def requests_session(purpose: str) -> requests.Session:
    """The adapter's session for ``purpose``: the factory :func:`intacct_connect.http.get_session`
    calls once per thread and purpose."""
    return get_adapter().get_requests_session(purpose)


def get_adapter() -> DefaultIntacctAdapter:
    adapter_class = app_settings.ADAPTER
    return adapter_class()
