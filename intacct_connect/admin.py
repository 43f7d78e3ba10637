"""Admin screens: connections with health and actions, read-only token metadata, history.

No page ever shows a token value or its ciphertext: token columns are not editable, are
never listed in ``fields``/``readonly_fields``, and are deferred in every queryset.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from intacct_connect import admin_client, flows
from intacct_connect.admin_base import ReadOnlyModelAdmin
from intacct_connect.exceptions import IntacctConnectError
from intacct_connect.models import (
    Connection,
    ConnectionEvent,
    ConnectionStatus,
    Token,
)

SECRET_COLUMNS = ("token__access_token", "token__refresh_token")

STATUS_COLOURS = {
    ConnectionStatus.ACTIVE: ("#1e7b34", "#d4f4dd"),
    ConnectionStatus.NEEDS_REAUTH: ("#8a4b00", "#fde2c8"),
    ConnectionStatus.ERROR: ("#8a1c1c", "#f9d6d6"),
    ConnectionStatus.SUPERSEDED: ("#555", "#e5e5e5"),
    ConnectionStatus.REVOKED: ("#555", "#e5e5e5"),
}


def describe_delta(delta: timedelta) -> str:
    """'2 h 05 min', '4 min', or 'expired 3 min ago'."""
    seconds = int(delta.total_seconds())
    past = seconds < 0
    seconds = abs(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes = rest // 60
    if hours >= 48:
        text = f"{hours // 24} d {hours % 24} h"
    elif hours:
        text = f"{hours} h {minutes:02d} min"
    else:
        text = f"{minutes} min"
    return f"expired {text} ago" if past else text


def _short_error(err: Exception) -> str:
    return str(err)[:200]


class ConnectionEventInline(admin.TabularInline):  # type: ignore[type-arg]
    model = ConnectionEvent
    fields = ("created_at", "kind", "message", "error_code", "actor")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    ordering = ("-created_at", "-pk")
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[ConnectionEvent]:
        return super().get_queryset(request).select_related("actor")


class TokenInline(admin.StackedInline):  # type: ignore[type-arg]
    """Token metadata only: the values are never shown."""

    model = Token
    fields = (
        "fingerprint",
        "token_type",
        "scope",
        "expires_at",
        "version",
        "last_refreshed_at",
        "refresh_count",
        "has_refresh_token",
    )
    readonly_fields = fields
    can_delete = False
    extra = 0
    max_num = 0

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Token]:
        return super().get_queryset(request).defer("access_token")

    @admin.display(description=_("refresh token stored"), boolean=True)
    def has_refresh_token(self, obj: Token) -> bool:
        # Looks at the stored ciphertext's presence only; never decrypts or shows it.
        return bool(obj.__dict__.get("refresh_token"))


class ClientCredentialsForm(forms.Form):
    tenant_key = forms.CharField(
        label=_("Tenant key"),
        max_length=255,
        help_text=_("The tenant that owns the connection, as the site's adapter names it."),
    )
    username = forms.CharField(
        label=_("Web Services user"),
        max_length=310,
        help_text=_("user@company, or user@company|entity for an entity-level connection."),
    )

    def clean_username(self) -> str:
        value = str(self.cleaned_data["username"])
        flows.parse_username(value)
        return value


@admin.register(Connection)
class ConnectionAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = (
        "company_id",
        "company_name",
        "entity_id",
        "tenant_key",
        "status_badge",
        "environment",
        "grant_type",
        "token_time_left",
        "health",
        "updated_at",
    )
    list_display_links = ("company_id",)
    list_filter = ("status", "environment", "grant_type")
    search_fields = ("company_id", "company_name")
    list_select_related = ("token",)
    list_per_page = 100
    ordering = ("company_id", "pk")
    readonly_fields = (
        "tenant_key",
        "company_id",
        "entity_id",
        "environment",
        "intacct_user_id",
        "grant_type",
        "status_badge",
        "last_error_code",
        "last_error_message",
        "last_error_at",
        "connected_by",
        "token_time_left",
        "next_refresh_at",
        "refresh_failures",
        "health",
        "health_checked_at",
        "api_usage",
        "job_runs",
        "created_at",
        "updated_at",
    )
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "company_id",
                    "company_name",
                    "entity_id",
                    "environment",
                    "tenant_key",
                    "intacct_user_id",
                    "grant_type",
                    "connected_by",
                )
            },
        ),
        (
            _("Status"),
            {
                "fields": (
                    "status_badge",
                    "token_time_left",
                    "next_refresh_at",
                    "refresh_failures",
                    "last_error_code",
                    "last_error_message",
                    "last_error_at",
                    "health",
                    "health_checked_at",
                    "api_usage",
                    "job_runs",
                    "created_at",
                    "updated_at",
                )
            },
        ),
    )
    inlines = (TokenInline, ConnectionEventInline)
    api_usage = admin_client.api_usage_field

    @admin.display(description=_("job runs"))
    def job_runs(self, obj: Connection) -> SafeString:
        from intacct_connect.admin_jobs import connection_runs_link

        return connection_runs_link(obj)

    actions = (
        "refresh_tokens_now",
        "test_connection",
        "disconnect_and_revoke",
        "mark_needs_reauth",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Connection]:
        return super().get_queryset(request).defer(*SECRET_COLUMNS)

    # --- columns --------------------------------------------------------------------

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj: Connection) -> str:
        fg, bg = STATUS_COLOURS.get(obj.status, ("#333", "#eee"))  # type: ignore[call-overload]
        return format_html(
            '<span class="intacct-status intacct-status-{}" style="color:{};background:{};'
            'padding:1px 8px;border-radius:8px;white-space:nowrap">{}</span>',
            obj.status,
            fg,
            bg,
            obj.get_status_display(),
        )

    @admin.display(description=_("access token"))
    def token_time_left(self, obj: Connection) -> str:
        token = flows.token_of(obj)
        if token is None:
            return "—"
        return describe_delta(token.expires_at - timezone.now())

    @admin.display(description=_("healthy"), boolean=True)
    def health(self, obj: Connection) -> bool | None:
        return obj.health_ok

    # --- adding: client credentials, no browser ---------------------------------------

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """Adding a connection here means client credentials (server-to-server)."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = ClientCredentialsForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                conn = flows.create_client_credentials_connection(
                    tenant_key=form.cleaned_data["tenant_key"],
                    username=form.cleaned_data["username"],
                    actor=request.user,
                )
            except ValidationError as err:
                form.add_error(None, err)
            except IntacctConnectError as err:
                form.add_error(
                    None,
                    _("Intacct refused the credentials: %(error)s") % {"error": _short_error(err)},
                )
            else:
                self.log_addition(request, conn, [{"added": {}}])
                self.message_user(
                    request, _("Connected %(conn)s.") % {"conn": conn}, messages.SUCCESS
                )
                return HttpResponseRedirect(
                    reverse("admin:intacct_connect_connection_change", args=[conn.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "title": _("Add a client-credentials connection"),
            "opts": self.opts,
            "form": form,
            "has_view_permission": self.has_view_permission(request),
            **(extra_context or {}),
        }
        return TemplateResponse(
            request, "intacct_connect/admin/add_client_credentials.html", context
        )

    # --- actions (the same functions the views and commands use) -------------------------

    def _report(
        self, request: HttpRequest, ok: int, failures: list[str], singular: str, plural: str
    ) -> None:
        if ok:
            self.message_user(
                request, ngettext(singular, plural, ok) % {"count": ok}, messages.SUCCESS
            )
        if failures:
            self.message_user(
                request,
                ngettext(
                    "%(count)d connection failed: %(list)s",
                    "%(count)d connections failed: %(list)s",
                    len(failures),
                )
                % {"count": len(failures), "list": "; ".join(failures)},
                messages.ERROR,
            )

    @admin.action(description=_("Refresh tokens now"))
    def refresh_tokens_now(self, request: HttpRequest, queryset: QuerySet[Connection]) -> None:
        from intacct_connect import tokens

        ok, failures = 0, []
        for conn in queryset.defer(*SECRET_COLUMNS):
            try:
                tokens.refresh_connection(conn.pk, force=True)
            except IntacctConnectError as err:
                failures.append(f"{conn.company_id}: {_short_error(err)}")
            else:
                ok += 1
        self._report(
            request,
            ok,
            failures,
            "%(count)d connection refreshed.",
            "%(count)d connections refreshed.",
        )

    @admin.action(description=_("Test connection (one cheap API call)"))
    def test_connection(self, request: HttpRequest, queryset: QuerySet[Connection]) -> None:
        from intacct_connect.client import IntacctClient

        ok, failures = 0, []
        for conn in queryset:
            try:
                result = IntacctClient(conn).health_check()
            except IntacctConnectError as err:
                failures.append(f"{conn.company_id}: {_short_error(err)}")
                continue
            if result.ok:
                ok += 1
            else:
                detail = " ".join(filter(None, [result.error_code, result.message])) or "failed"
                failures.append(f"{conn.company_id}: {detail[:200]}")
        self._report(
            request,
            ok,
            failures,
            "%(count)d connection answered the test call.",
            "%(count)d connections answered the test call.",
        )

    @admin.action(description=_("Disconnect and revoke at Intacct"))
    def disconnect_and_revoke(self, request: HttpRequest, queryset: QuerySet[Connection]) -> None:
        ok, failures = 0, []
        for conn in queryset.exclude(status=ConnectionStatus.REVOKED):
            result = flows.disconnect(conn, actor=request.user)
            if result.revoked_at_intacct:
                ok += 1
            else:
                failures.append(f"{conn.company_id}: disconnected locally; {result.error}")
        self._report(
            request,
            ok,
            failures,
            "%(count)d connection disconnected and revoked at Intacct.",
            "%(count)d connections disconnected and revoked at Intacct.",
        )

    @admin.action(description=_("Mark as needing re-authorisation"))
    def mark_needs_reauth(self, request: HttpRequest, queryset: QuerySet[Connection]) -> None:
        changed = 0
        for conn in queryset:
            changed += flows.mark_needs_reauth(
                conn.pk,
                reason="admin",
                message="Marked as needing re-authorisation by an administrator.",
                actor=request.user,
            )
        skipped = queryset.count() - changed
        self._report(
            request,
            changed,
            [],
            "%(count)d connection marked as needing re-authorisation.",
            "%(count)d connections marked as needing re-authorisation.",
        )
        if skipped:
            self.message_user(
                request,
                ngettext(
                    "%(count)d connection was not active and was left unchanged.",
                    "%(count)d connections were not active and were left unchanged.",
                    skipped,
                )
                % {"count": skipped},
                messages.WARNING,
            )


@admin.register(Token)
class TokenAdmin(ReadOnlyModelAdmin):
    """Read-only token metadata; values are never displayed."""

    list_display = (
        "connection",
        "fingerprint",
        "version",
        "expires_at",
        "last_refreshed_at",
        "refresh_count",
    )
    list_select_related = ("connection",)
    fields = (
        "connection",
        "fingerprint",
        "token_type",
        "scope",
        "expires_at",
        "version",
        "last_refreshed_at",
        "refresh_count",
        "updated_at",
    )
    readonly_fields = fields
    search_fields = ("connection__company_id", "fingerprint")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Token]:
        return super().get_queryset(request).defer("access_token", "refresh_token")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ConnectionEvent)
class ConnectionEventAdmin(ReadOnlyModelAdmin):
    list_display = ("created_at", "connection", "kind", "error_code", "message")
    list_filter = ("kind",)
    list_select_related = ("connection",)
    search_fields = ("connection__company_id", "error_code")
    fields = ("created_at", "connection", "kind", "error_code", "message", "actor")
    readonly_fields = fields


from intacct_connect import admin_jobs  # noqa: E402,F401
