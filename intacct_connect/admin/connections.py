"""Admin screens: connections with health and actions, read-only token metadata, history.

No page ever shows a token value or its ciphertext: token columns are not editable, are
never listed in ``fields``/``readonly_fields``, and are deferred in every queryset.

Every action declares its permission (change connection, or the dedicated
``intacct_connect.disconnect_connection``); the destructive ones confirm first, and the
change page offers them as buttons. Deleting a connection revokes it at Intacct first and
deletes its history with it (history admins themselves never delete).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import model_ngettext, quote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.text import Truncator, capfirst
from django.utils.translation import gettext, ngettext, ngettext_lazy
from django.utils.translation import gettext_lazy as _

from intacct_connect import flows
from intacct_connect.admin.base import (
    ActionAdmin,
    ReadOnlyModelAdmin,
    TenantLabelChangeList,
    company_label,
    confirm_action,
    tenant_label_html,
    tenant_labels,
)
from intacct_connect.admin.calls import api_usage_field
from intacct_connect.admin.jobs import connection_runs_link
from intacct_connect.exceptions import IntacctConnectError
from intacct_connect.models import (
    Connection,
    ConnectionEvent,
    ConnectionStatus,
    Token,
)

if TYPE_CHECKING:
    from django.utils.functional import _StrPromise

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
        text = gettext("%(days)d d %(hours)d h") % {"days": hours // 24, "hours": hours % 24}
    elif hours:
        text = gettext("%(hours)d h %(minutes)02d min") % {"hours": hours, "minutes": minutes}
    else:
        text = gettext("%(minutes)d min") % {"minutes": minutes}
    return gettext("expired %(time)s ago") % {"time": text} if past else text


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


LAST_ERROR_CHARS = 60


@admin.register(Connection)
class ConnectionAdmin(ActionAdmin):
    list_display = (
        "status_badge",
        "company",
        "tenant",
        "health",
        "token_time_left",
        "last_error",
    )
    list_display_links = ("company",)
    list_filter = ("status", "environment", "grant_type")
    search_fields = ("company_id", "company_name", "tenant_key")
    list_select_related = ("token",)
    list_per_page = 100
    ordering = ("company_id", "pk")
    change_form_template = "intacct_connect/admin/connection_change_form.html"
    delete_confirmation_template = "intacct_connect/admin/connection_delete_confirmation.html"
    delete_selected_confirmation_template = (
        "intacct_connect/admin/connection_delete_selected_confirmation.html"
    )
    readonly_fields = (
        "tenant",
        "company_id",
        "entity_id",
        "environment",
        "intacct_user_id",
        "grant_type",
        "status_badge",
        "granted_scope",
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
                    "tenant",
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
                    "granted_scope",
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
    api_usage = api_usage_field

    @admin.display(description=_("job runs"))
    def job_runs(self, obj: Connection) -> SafeString:
        return connection_runs_link(obj)

    actions = (
        "refresh_tokens_now",
        "test_connection",
        "disconnect_and_revoke",
        "mark_needs_reauth",
    )
    object_actions = actions

    def get_queryset(self, request: HttpRequest) -> QuerySet[Connection]:
        return super().get_queryset(request).defer(*SECRET_COLUMNS)

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[TenantLabelChangeList]:
        return TenantLabelChangeList

    def has_disconnect_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """The dedicated ``intacct_connect.disconnect_connection`` permission."""
        opts = self.opts
        return bool(request.user.has_perm(f"{opts.app_label}.disconnect_{opts.model_name}"))

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

    @admin.display(description=_("company"), ordering="company_id")
    def company(self, obj: Connection) -> SafeString:
        if obj.company_name:
            return format_html(
                '{} <span class="intacct-company-name" style="color:var(--body-quiet-color)">'
                "· {}</span>",
                company_label(obj),
                obj.company_name,
            )
        return format_html("{}", company_label(obj))

    @admin.display(description=_("tenant"), ordering="tenant_key")
    def tenant(self, obj: Connection) -> SafeString:
        label = getattr(obj, "tenant_label", None)
        if label is None:  # the change page: one object, one lookup
            label = tenant_labels([obj.tenant_key]).get(obj.tenant_key)
            if label and label != obj.tenant_key:
                return format_html("{} ({})", label, obj.tenant_key)
        return tenant_label_html(obj.tenant_key, label)

    @admin.display(description=_("last error"), ordering="last_error_at")
    def last_error(self, obj: Connection) -> SafeString:
        text = ": ".join(filter(None, [obj.last_error_code, obj.last_error_message]))
        if not text:
            return format_html("{}", "—")
        return format_html(
            '<span title="{}">{}</span>', text, Truncator(text).chars(LAST_ERROR_CHARS)
        )

    @admin.display(description=_("granted scope"))
    def granted_scope(self, obj: Connection) -> str:
        token = flows.token_of(obj)
        return (token.scope or "—") if token is not None else "—"

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
        self, request: HttpRequest, ok: int, failures: list[str], success: _StrPromise
    ) -> None:
        """``success`` is an ``ngettext_lazy(singular, plural, "count")`` message."""
        if ok:
            self.message_user(request, success % {"count": ok}, messages.SUCCESS)
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

    @admin.action(description=_("Refresh tokens now"), permissions=["change"])
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
            ngettext_lazy(
                "%(count)d connection refreshed.", "%(count)d connections refreshed.", "count"
            ),
        )

    @admin.action(description=_("Test connection (one cheap API call)"), permissions=["change"])
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
                detail = " ".join(filter(None, [result.error_code, result.message]))
                detail = detail or gettext("failed")
                failures.append(f"{conn.company_id}: {detail[:200]}")
        self._report(
            request,
            ok,
            failures,
            ngettext_lazy(
                "%(count)d connection answered the test call.",
                "%(count)d connections answered the test call.",
                "count",
            ),
        )

    @admin.action(description=_("Disconnect and revoke at Intacct"), permissions=["disconnect"])
    def disconnect_and_revoke(
        self, request: HttpRequest, queryset: QuerySet[Connection]
    ) -> TemplateResponse | None:
        confirmation = confirm_action(
            self,
            request,
            queryset,
            action="disconnect_and_revoke",
            title=str(_("Disconnect and revoke at Intacct")),
            consequences=[
                str(
                    _(
                        "Each connection's grant is revoked at Intacct: every token of the same "
                        "Intacct user and company stops working."
                    )
                ),
                str(
                    _(
                        "Its tokens are deleted here and it is marked revoked, even if Intacct "
                        "cannot be reached; background jobs stop using it."
                    )
                ),
                str(_("A user of the tenant must connect again to use the company.")),
                str(_("Connections already revoked are left unchanged.")),
            ],
        )
        if confirmation is not None:
            return confirmation
        ok, failures = 0, []
        for conn in queryset.exclude(status=ConnectionStatus.REVOKED):
            result = flows.disconnect(conn, actor=request.user)
            if result.revoked_at_intacct:
                ok += 1
            else:
                failures.append(
                    gettext("%(company)s: disconnected locally; %(error)s")
                    % {"company": conn.company_id, "error": result.error}
                )
        self._report(
            request,
            ok,
            failures,
            ngettext_lazy(
                "%(count)d connection disconnected and revoked at Intacct.",
                "%(count)d connections disconnected and revoked at Intacct.",
                "count",
            ),
        )
        return None

    @admin.action(description=_("Mark as needing re-authorisation"), permissions=["change"])
    def mark_needs_reauth(
        self, request: HttpRequest, queryset: QuerySet[Connection]
    ) -> TemplateResponse | None:
        confirmation = confirm_action(
            self,
            request,
            queryset,
            action="mark_needs_reauth",
            title=str(_("Mark as needing re-authorisation")),
            consequences=[
                str(
                    _(
                        "Each active connection stops being used (API calls, token refreshes "
                        "and background jobs) until a user of its tenant reconnects it."
                    )
                ),
                str(_("The connection_needs_reauth signal is sent once per connection.")),
                str(_("Connections that are not active are left unchanged.")),
            ],
        )
        if confirmation is not None:
            return confirmation
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
            ngettext_lazy(
                "%(count)d connection marked as needing re-authorisation.",
                "%(count)d connections marked as needing re-authorisation.",
                "count",
            ),
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
        return None

    # --- deleting: revoke at Intacct first, history goes with the connection -------------

    def get_deleted_objects(
        self, objs: Any, request: HttpRequest
    ) -> tuple[list[Any], dict[str, int], set[str], list[Any]]:
        """What deleting ``objs`` deletes: each connection with counts of its cascaded rows.

        The cascaded rows (token, events, runs, calls, schedules, stored records…) are
        listed but need no permission of their own: delete permission on the connection
        is enough (their admins are read-only on purpose). Rows are counted per relation
        (one query each), never loaded."""
        connections = list(objs)
        pks = [c.pk for c in connections]
        per_connection: dict[Any, list[str]] = {pk: [] for pk in pks}
        model_count: dict[str, int] = {}
        protected: list[Any] = []
        if connections:
            model_count[str(Connection._meta.verbose_name_plural)] = len(connections)
        for rel in Connection._meta.get_fields(include_hidden=True):
            if not (rel.auto_created and not rel.concrete and (rel.one_to_many or rel.one_to_one)):
                continue
            on_delete = rel.on_delete  # type: ignore[union-attr]
            if on_delete not in (models.CASCADE, models.PROTECT, models.RESTRICT):
                continue  # SET_NULL and friends: the rows stay
            related: Any = rel.related_model
            fk = rel.field.name  # type: ignore[union-attr]
            rows = (
                related._base_manager.filter(**{f"{fk}__in": pks})
                .order_by()
                .values_list(fk)
                .annotate(n=Count("pk"))
            )
            total = 0
            for pk, n in rows:
                label = f"{n} {model_ngettext(related._meta, n)}"
                if on_delete is models.CASCADE:
                    per_connection[pk].append(label)
                else:
                    protected.append(label)
                total += n
            if total and on_delete is models.CASCADE:
                model_count[str(related._meta.verbose_name_plural)] = total
        deleted: list[Any] = []
        can_view = self.has_view_or_change_permission(request)
        for conn in connections:
            if can_view:
                url = reverse(
                    "admin:intacct_connect_connection_change",
                    args=[quote(conn.pk)],
                    current_app=self.admin_site.name,
                )
                deleted.append(
                    format_html(
                        '{}: <a href="{}">{}</a>', capfirst(self.opts.verbose_name), url, conn
                    )
                )
            else:
                deleted.append(format_html("{}: {}", capfirst(self.opts.verbose_name), conn))
            if per_connection[conn.pk]:
                deleted.append(per_connection[conn.pk])
        return deleted, model_count, set(), protected

    def _revoke_before_delete(self, request: HttpRequest, connections: list[Connection]) -> None:
        failures: list[str] = []
        for conn in connections:
            if conn.status == ConnectionStatus.REVOKED:
                continue
            try:
                result = flows.disconnect(conn, actor=request.user)
            except IntacctConnectError as err:
                failures.append(f"{company_label(conn)}: {_short_error(err)}")
                continue
            if not result.revoked_at_intacct:
                failures.append(f"{company_label(conn)}: {result.error[:200]}")
        if failures:
            self.message_user(
                request,
                ngettext(
                    "%(count)d connection was not revoked at Intacct before deletion: %(list)s",
                    "%(count)d connections were not revoked at Intacct before deletion: %(list)s",
                    len(failures),
                )
                % {"count": len(failures), "list": "; ".join(failures)},
                messages.WARNING,
            )

    def delete_model(self, request: HttpRequest, obj: Connection) -> None:
        self._revoke_before_delete(request, [obj])
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Connection]) -> None:
        self._revoke_before_delete(request, list(queryset.defer(*SECRET_COLUMNS)))
        super().delete_queryset(request, queryset)


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
