"""Admin screens for a connection's history and token metadata, all read-only: the inlines
on a connection's change page (its token's metadata, its events) and the token and event
changelists.

No token value or ciphertext is ever shown: the secret columns are deferred in every
queryset (:data:`SECRET_COLUMNS` for querysets of connections) and never listed in
``fields``. Imported by ``intacct_connect/admin/__init__.py`` and by
:mod:`~intacct_connect.admin.connections`, which shows the inlines.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.options import InlineModelAdmin
from django.contrib.admin.utils import quote
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _

from intacct_connect.admin.base import ReadOnlyModelAdmin, company_label
from intacct_connect.models import ConnectionEvent, Token

#: The token columns a queryset of connections defers (``.defer(*SECRET_COLUMNS)``).
SECRET_COLUMNS = ("token__access_token", "token__refresh_token")
#: The token columns the pages show: metadata, never a value.
TOKEN_METADATA = (
    "fingerprint",
    "token_type",
    "scope",
    "expires_at",
    "version",
    "last_refreshed_at",
    "refresh_count",
)


class ReadOnlyInline(InlineModelAdmin):  # type: ignore[type-arg]
    """An inline that shows rows only: none is added, changed or deleted from the page."""

    extra = 0
    max_num = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ConnectionEventInline(ReadOnlyInline, admin.TabularInline):  # type: ignore[type-arg]
    model = ConnectionEvent
    fields = ("created_at", "kind", "message", "error_code", "actor")
    readonly_fields = fields
    ordering = ("-created_at", "-pk")
    show_change_link = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[ConnectionEvent]:
        return super().get_queryset(request).select_related("actor")


class TokenInline(ReadOnlyInline, admin.StackedInline):  # type: ignore[type-arg]
    """Token metadata only: the values are never shown."""

    model = Token
    fields = (*TOKEN_METADATA, "has_refresh_token")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Token]:
        return super().get_queryset(request).defer("access_token")

    @admin.display(description=_("refresh token stored"), boolean=True)
    def has_refresh_token(self, obj: Token) -> bool:
        # Looks at the stored ciphertext's presence only; never decrypts or shows it.
        return bool(obj.__dict__.get("refresh_token"))


@admin.register(Token)
class TokenAdmin(ReadOnlyModelAdmin):
    """Read-only token metadata; values are never displayed."""

    list_display = (
        "company",
        "fingerprint",
        "version",
        "expires_at",
        "last_refreshed_at",
        "refresh_count",
    )
    list_select_related = ("connection",)
    fields = ("connection", *TOKEN_METADATA, "updated_at")
    readonly_fields = fields
    search_fields = ("connection__company_id", "fingerprint")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Token]:
        return super().get_queryset(request).defer("access_token", "refresh_token")

    @admin.display(description=_("connection"), ordering="connection__company_id")
    def company(self, obj: Token) -> str:
        return company_label(obj.connection)


@admin.register(ConnectionEvent)
class ConnectionEventAdmin(ReadOnlyModelAdmin):
    """Events name their connection by company (``COMPANY|ENTITY``), not by its current
    status, which may differ from the status when the event happened."""

    list_display = ("created_at", "kind", "company", "error_code", "short_message")
    list_display_links = ("created_at", "kind")
    list_filter = ("kind",)
    list_select_related = ("connection",)
    search_fields = ("connection__company_id", "error_code")
    fields = ("created_at", "kind", "company", "error_code", "message", "actor")
    readonly_fields = fields

    @admin.display(description=_("company"), ordering="connection__company_id")
    def company(self, obj: ConnectionEvent) -> SafeString:
        url = reverse(
            "admin:intacct_connect_connection_change",
            args=[quote(obj.connection_id)],
            current_app=self.admin_site.name,
        )
        return format_html('<a href="{}">{}</a>', url, company_label(obj.connection))

    @admin.display(description=_("message"))
    def short_message(self, obj: ConnectionEvent) -> SafeString:
        if not obj.message:
            return format_html("{}", "")
        return format_html(
            '<span title="{}">{}</span>', obj.message, Truncator(obj.message).chars(120)
        )
