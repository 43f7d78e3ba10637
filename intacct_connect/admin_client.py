"""Compatibility module: the API call log's admin pieces now live in
:mod:`intacct_connect.admin.calls`."""

from intacct_connect.admin.calls import ApiCallLogAdmin, api_usage_field, api_usage_html

__all__ = ["ApiCallLogAdmin", "api_usage_field", "api_usage_html"]
