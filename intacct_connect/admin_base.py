"""Compatibility module: the shared admin building blocks now live in
:mod:`intacct_connect.admin.base`."""

from intacct_connect.admin.base import (
    CONFIRMATION_TEMPLATE,
    ActionAdmin,
    ReadOnlyModelAdmin,
    TenantLabelChangeList,
    action_parts,
    company_label,
    confirm_action,
    posted_action_name,
    tenant_label_html,
    tenant_labels,
)

__all__ = [
    "CONFIRMATION_TEMPLATE",
    "ActionAdmin",
    "ReadOnlyModelAdmin",
    "TenantLabelChangeList",
    "action_parts",
    "company_label",
    "confirm_action",
    "posted_action_name",
    "tenant_label_html",
    "tenant_labels",
]
