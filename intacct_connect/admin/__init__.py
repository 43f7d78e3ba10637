"""The app's admin screens, one module per concern.

Django's admin autodiscovery imports this package, which imports every submodule so each
registers its ``ModelAdmin`` classes:

* :mod:`~intacct_connect.admin.base`: shared building blocks (actions with permissions and
  confirmation, read-only history admins, tenant labels);
* :mod:`~intacct_connect.admin.connections`: connections, with their actions;
* :mod:`~intacct_connect.admin.history`: token metadata and connection events (read-only);
* :mod:`~intacct_connect.admin.deletion`: what deleting a connection cascades to;
* :mod:`~intacct_connect.admin.jobs`: schedules, runs, stored records and watermarks;
* :mod:`~intacct_connect.admin.calls`: the API call log and usage figures per connection.
"""

from __future__ import annotations

from intacct_connect.admin import base, calls, connections, deletion, history, jobs
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
    STATUS_COLOURS,
    ClientCredentialsForm,
    ConnectionAdmin,
    describe_delta,
)
from intacct_connect.admin.history import (
    SECRET_COLUMNS,
    ConnectionEventAdmin,
    ConnectionEventInline,
    TokenAdmin,
    TokenInline,
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
    "deletion",
    "describe_delta",
    "history",
    "jobs",
    "tenant_label_html",
    "tenant_labels",
]
