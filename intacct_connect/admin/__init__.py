"""The app's admin screens, one module per concern.

Django's admin autodiscovery imports this package, which imports every submodule so each
registers its ``ModelAdmin`` classes:

* :mod:`~intacct_connect.admin.base`: shared building blocks (actions with permissions and
  confirmation, read-only history admins, tenant labels);
* :mod:`~intacct_connect.admin.connections`: connections, tokens and connection events;
* :mod:`~intacct_connect.admin.jobs`: schedules, runs, stored records and watermarks;
* :mod:`~intacct_connect.admin.calls`: the API call log and usage figures per connection.
"""

from __future__ import annotations

from intacct_connect.admin import base, calls, connections, jobs
from intacct_connect.admin.base import (
    ActionAdmin,
    ReadOnlyModelAdmin,
    TenantLabelChangeList,
    company_label,
    confirm_action,
    tenant_label_html,
    tenant_labels,
)
from intacct_connect.admin.connections import (
    LAST_ERROR_CHARS,
    SECRET_COLUMNS,
    STATUS_COLOURS,
    ClientCredentialsForm,
    ConnectionAdmin,
    ConnectionEventAdmin,
    ConnectionEventInline,
    TokenAdmin,
    TokenInline,
    describe_delta,
)

__all__ = [
    "LAST_ERROR_CHARS",
    "SECRET_COLUMNS",
    "STATUS_COLOURS",
    "ActionAdmin",
    "ClientCredentialsForm",
    "ConnectionAdmin",
    "ConnectionEventAdmin",
    "ConnectionEventInline",
    "ReadOnlyModelAdmin",
    "TenantLabelChangeList",
    "TokenAdmin",
    "TokenInline",
    "base",
    "calls",
    "company_label",
    "confirm_action",
    "connections",
    "describe_delta",
    "jobs",
    "tenant_label_html",
    "tenant_labels",
]
