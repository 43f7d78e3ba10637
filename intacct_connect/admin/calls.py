"""Admin pieces for the API client: the call log, and usage figures per connection.

The connections admin (``intacct_connect/admin/connections.py``) wires them in:

* importing this module registers :class:`ApiCallLogAdmin` (read-only, filterable);
* add ``"api_usage"`` to the connection admin's ``readonly_fields`` (or ``fields``) and
  define ``api_usage = calls.api_usage_field`` on the class: it shows calls and
  errors over 24 hours and 30 days, the last call, and links to that connection's calls.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import admin
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from intacct_connect.admin.base import ReadOnlyModelAdmin, company_label
from intacct_connect.calllog import usage
from intacct_connect.models import ApiCallLog, Connection


@admin.register(ApiCallLog)
class ApiCallLogAdmin(ReadOnlyModelAdmin):
    """Read-only list of API calls; the log holds no bodies and no secrets."""

    list_display = (
        "created_at",
        "company",
        "method",
        "path",
        "status",
        "error_code",
        "duration_ms",
        "retries",
    )
    list_filter = ("method", "status", "error_code")
    search_fields = ("path", "error_code", "request_id", "connection__company_id")
    list_select_related = ("connection",)
    raw_id_fields = ("connection",)
    date_hierarchy = "created_at"
    readonly_fields = (
        "connection",
        "method",
        "path",
        "status",
        "error_code",
        "duration_ms",
        "retries",
        "request_id",
        "created_at",
    )

    @admin.display(description=_("connection"), ordering="connection__company_id")
    def company(self, obj: ApiCallLog) -> str:
        return company_label(obj.connection)


def _calls_and_errors(calls: int, errors: int) -> str:
    """'1 call (0 errors)', '2 calls (1 error)'."""
    return gettext("%(calls)s (%(errors)s)") % {
        "calls": ngettext("%(calls)d call", "%(calls)d calls", calls) % {"calls": calls},
        "errors": ngettext("%(errors)d error", "%(errors)d errors", errors) % {"errors": errors},
    }


def api_usage_html(connection: Connection) -> SafeString:
    """Calls / errors in the last 24 hours and 30 days, with a link to the call log."""
    if connection.pk is None:
        return format_html("{}", "—")
    now = timezone.now()
    day = usage(connection, since=now - timedelta(days=1))
    month = usage(connection, since=now - timedelta(days=30))
    url = (
        reverse("admin:intacct_connect_apicalllog_changelist")
        + f"?connection__id__exact={connection.pk}"
    )
    last = f"{month.last_call_at:%Y-%m-%d %H:%M:%S}" if month.last_call_at else gettext("never")
    return format_html(
        gettext(
            '{day} in 24 h · {month} in 30 days · last call {last} · <a href="{url}">see calls</a>'
        ),
        day=_calls_and_errors(day.calls, day.errors),
        month=_calls_and_errors(month.calls, month.errors),
        last=last,
        url=url,
    )


@admin.display(description=_("API usage"))
def api_usage_field(model_admin: Any, obj: Connection) -> SafeString:
    """A ``readonly_fields`` entry for the connection admin (see the module docstring)."""
    return api_usage_html(obj)
