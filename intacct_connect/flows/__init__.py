"""The business logic of connecting, reconnecting and disconnecting Intacct companies.

Plain functions that take plain arguments (no ``HttpRequest``): the views, the admin
actions and the management commands all call these. See ``docs/connect_flow.rst``.
Every name is importable from ``intacct_connect.flows``; each concern has its module:

* :mod:`~intacct_connect.flows.connect`: the authorization-code flow (start, callback,
  supersede older grants, purge old authorization requests), with its security properties;
* :mod:`~intacct_connect.flows.client_credentials`: server-to-server connections;
* :mod:`~intacct_connect.flows.disconnect`: revoke at Intacct and disconnect;
* :mod:`~intacct_connect.flows.entities`: the default entity and the company name;
* :mod:`~intacct_connect.flows.key_rotation`: re-encrypting under the newest key;
* :mod:`~intacct_connect.flows.listing`: a tenant's connections, a connection's token;
* :mod:`~intacct_connect.flows.common`: helpers shared by the above and :func:`store_tokens`.

The rules about one connection's state (``mark_needs_reauth``, the client-credentials
username) live in :mod:`intacct_connect.connection_state` and are re-exported here.
"""

from __future__ import annotations

import logging

from intacct_connect.connection_state import (
    ClientCredentialsUser,
    UserLike,
    client_credentials_username,
    mark_needs_reauth,
    parse_username,
)
from intacct_connect.flows.client_credentials import (
    create_client_credentials_connection,
    reconnect_client_credentials,
)
from intacct_connect.flows.common import (
    MAX_ERROR_TEXT,
    clean_entity_id,
    current_environment,
    safe_next_url,
    sha256_hex,
    store_tokens,
)
from intacct_connect.flows.connect import (
    CallbackResult,
    StartedFlow,
    StateProblem,
    complete_callback,
    consume_flow,
    is_sender_id_problem,
    purge_flows,
    start_connect,
)
from intacct_connect.flows.disconnect import DisconnectResult, disconnect
from intacct_connect.flows.entities import (
    COMPANY_PREFERENCE,
    MAX_ENTITY_PAGES,
    EntityChoice,
    _company_name_of,
    company_entities,
    fill_company_name,
    set_default_entity,
)
from intacct_connect.flows.key_rotation import (
    RotationProgress,
    _rotate_token,
    rotate_keys,
    rows_under_old_keys,
)
from intacct_connect.flows.listing import connections_for_tenant, token_of

logger = logging.getLogger("intacct_connect.flows")

__all__ = [
    "COMPANY_PREFERENCE",
    "MAX_ENTITY_PAGES",
    "MAX_ERROR_TEXT",
    "CallbackResult",
    "ClientCredentialsUser",
    "DisconnectResult",
    "EntityChoice",
    "RotationProgress",
    "StartedFlow",
    "StateProblem",
    "UserLike",
    "_company_name_of",
    "_rotate_token",
    "clean_entity_id",
    "client_credentials_username",
    "company_entities",
    "complete_callback",
    "connections_for_tenant",
    "consume_flow",
    "create_client_credentials_connection",
    "current_environment",
    "disconnect",
    "fill_company_name",
    "is_sender_id_problem",
    "mark_needs_reauth",
    "parse_username",
    "purge_flows",
    "reconnect_client_credentials",
    "rotate_keys",
    "rows_under_old_keys",
    "safe_next_url",
    "set_default_entity",
    "sha256_hex",
    "start_connect",
    "store_tokens",
    "token_of",
]
