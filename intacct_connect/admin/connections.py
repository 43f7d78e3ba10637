"""The connections admin: the list with status and health, adding a client-credentials
connection, the actions, and deleting (revoked at Intacct first). The token and event
inlines and changelists are :mod:`~intacct_connect.admin.history`; what a delete cascades
to is counted by :mod:`~intacct_connect.admin.deletion`.

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
from django.core.exceptions import ImproperlyConfigured, PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.text import Truncator
from django.utils.translation import gettext, ngettext, ngettext_lazy
from django.utils.translation import gettext_lazy as _

from intacct_connect import flows, tokens
from intacct_connect.admin.base import (
    ActionAdmin,
    TenantLabelChangeList,
    company_label,
    confirm_action,
    tenant_label_html,
    tenant_labels,
)
from intacct_connect.admin.calls import api_usage_field
from intacct_connect.admin.deletion import cascade_summary
from intacct_connect.admin.history import SECRET_COLUMNS, ConnectionEventInline, TokenInline
from intacct_connect.admin.jobs import connection_runs_link
from intacct_connect.client import IntacctClient
from intacct_connect.exceptions import IntacctConnectError
from intacct_connect.incidents import credentials_incident, credentials_incident_message
from intacct_connect.models import (
    Connection,
    ConnectionStatus,
)

if TYPE_CHECKING:
    from django.utils.functional import _StrPromise

STATUS_COLOURS = {
    ConnectionStatus.ACTIVE: ("#1e7b34", "#d4f4dd"),
    ConnectionStatus.NEEDS_REAUTH: ("#8a4b00", "#fde2c8"),
    ConnectionStatus.ERROR: ("#8a1c1c", "#f9d6d6"),
    ConnectionStatus.SUPERSEDED: ("#555", "#e5e5e5"),
    ConnectionStatus.REVOKED: ("#555", "#e5e5e5"),
    ConnectionStatus.REFRESH_IN_DOUBT: ("#8a4b00", "#fde2c8"),
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

#: What a status means, as the badge's tooltip (and, for refresh in doubt, shown in full).
STATUS_MEANINGS: dict[str, _StrPromise] = {
    ConnectionStatus.ACTIVE: _("Working: tokens are refreshed as needed."),
    ConnectionStatus.NEEDS_REAUTH: _("Intacct no longer accepts its grant: a user must reconnect."),
    ConnectionStatus.SUPERSEDED: _("A newer authorisation of the same Intacct user replaced it."),
    ConnectionStatus.REVOKED: _("Disconnected: its tokens were revoked and deleted."),
    ConnectionStatus.ERROR: _("The last attempt failed."),
    ConnectionStatus.REFRESH_IN_DOUBT: _(
        "A token refresh was sent and its answer lost, so Intacct may already have replaced "
        "the refresh token. Nothing is re-sent automatically and the connection is not used: "
        "try the stored refresh token once (action), which ends active or needing "
        "re-authorisation, or a user reconnects it."
    ),
}


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
        "try_stored_refresh_token",
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

    def has_retry_refresh_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """The dedicated ``intacct_connect.retry_refresh_connection`` permission."""
        opts = self.opts
        return bool(request.user.has_perm(f"{opts.app_label}.retry_refresh_{opts.model_name}"))

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj: Connection) -> str:
        fg, bg = STATUS_COLOURS.get(obj.status, ("#333", "#eee"))  # type: ignore[call-overload]
        badge = format_html(
            '<span class="intacct-status intacct-status-{}" style="color:{};background:{};'
            'padding:1px 8px;border-radius:8px;white-space:nowrap" title="{}">{}</span>',
            obj.status,
            fg,
            bg,
            STATUS_MEANINGS.get(obj.status, ""),
            obj.get_status_display(),
        )
        if obj.status == ConnectionStatus.REFRESH_IN_DOUBT:
            return format_html(
                '{}<p class="intacct-status-meaning help">{}</p>',
                badge,
                STATUS_MEANINGS[obj.status],
            )
        return badge

    def _incident_banner(self, request: HttpRequest) -> None:
        incident = credentials_incident()
        if incident is not None:
            self.message_user(request, credentials_incident_message(incident), messages.ERROR)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if request.method == "GET":
            self._incident_banner(request)
        return super().changelist_view(request, extra_context)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        if request.method == "GET":
            self._incident_banner(request)
        return super().change_view(request, object_id, form_url, extra_context)

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

    @admin.action(
        description=_("Try the stored refresh token once (refresh in doubt)"),
        permissions=["retry_refresh"],
    )
    def try_stored_refresh_token(
        self, request: HttpRequest, queryset: QuerySet[Connection]
    ) -> TemplateResponse | None:
        confirmation = confirm_action(
            self,
            request,
            queryset,
            action="try_stored_refresh_token",
            title=str(_("Try the stored refresh token once")),
            consequences=[
                str(_("Each connection in doubt sends its stored refresh token to Intacct once.")),
                str(
                    _(
                        "If Intacct accepts it, the connection is active again. If Intacct "
                        "refuses it, or its answer is lost again, the connection needs "
                        "re-authorisation: a user of its tenant must reconnect it."
                    )
                ),
                str(
                    _(
                        "Intacct may have replaced the token when its last answer was lost; "
                        "with reuse detection, sending a replaced token revokes the grant."
                    )
                ),
                str(_("Connections that are not in doubt are left unchanged.")),
            ],
        )
        if confirmation is not None:
            return confirmation
        outcomes: dict[str, list[str]] = {}
        for conn in queryset.defer(*SECRET_COLUMNS):
            try:
                trial = tokens.try_stored_refresh_token(conn.pk, actor=request.user)
            except (IntacctConnectError, ImproperlyConfigured) as err:
                outcomes.setdefault("unchanged", []).append(
                    f"{company_label(conn)}: {_short_error(err)}"
                )
                continue
            label = company_label(conn)
            if trial.outcome == "unchanged":
                label = f"{label}: {trial.detail[:200]}"
            outcomes.setdefault(trial.outcome, []).append(label)
        texts = {
            "active": (messages.SUCCESS, gettext("Active again: %(list)s")),
            "needs_reauth": (
                messages.WARNING,
                gettext("Intacct refused the stored token; needs re-authorisation: %(list)s"),
            ),
            "unchanged": (
                messages.ERROR,
                gettext("Nothing was decided at Intacct; still in doubt: %(list)s"),
            ),
            "not_in_doubt": (messages.INFO, gettext("Not in doubt, left unchanged: %(list)s")),
        }
        for outcome, (level, text) in texts.items():
            if outcomes.get(outcome):
                self.message_user(request, text % {"list": "; ".join(outcomes[outcome])}, level)
        return None

    def get_deleted_objects(
        self, objs: Any, request: HttpRequest
    ) -> tuple[list[Any], dict[str, int], set[str], list[Any]]:
        """Each connection with counts of its cascaded rows; deleting needs delete
        permission on the connections only (see :mod:`intacct_connect.admin.deletion`)."""
        return cascade_summary(self, objs, request)

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
