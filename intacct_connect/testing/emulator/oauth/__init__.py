"""The emulated OAuth 2.0 authorization server, one module per endpoint family:

* :mod:`.grants`: grant and token bookkeeping (create, mint, supersede, revoke);
* :mod:`.pages`: the HTML of the sign-in and consent pages;
* :mod:`.authorization`: ``/authorize``, sign-in and consent;
* :mod:`.token_endpoint`: ``/token``, one function per grant type;
* :mod:`.introspection`: ``/revoke``, ``/introspect`` and access-token decoding;
* :mod:`.discovery`: the openid-configuration and JWKS documents.

This package only re-exports their names; the modules import each other, never it.
"""

from __future__ import annotations

from intacct_connect.testing.emulator.oauth.authorization import authorize, consent, signin
from intacct_connect.testing.emulator.oauth.discovery import jwks, openid_configuration
from intacct_connect.testing.emulator.oauth.grants import (
    ISSUER,
    PENDING_TTL,
    PKCE_RE,
    SUPPORTED_GRANTS,
    create_grant,
    digest,
    find_company,
    issue_tokens,
    mint_tokens,
    revoke_pool,
    s256,
    supersede,
)
from intacct_connect.testing.emulator.oauth.introspection import (
    REQUIRED_CLAIMS,
    decode_access_token,
    introspect,
    revoke,
)
from intacct_connect.testing.emulator.oauth.pages import (
    FAVICON,
    PAGE,
    consent_page,
    error_page,
    error_redirect,
    esc,
    page,
    redirect,
    signin_page,
)
from intacct_connect.testing.emulator.oauth.token_endpoint import (
    GatewayError,
    authenticate_client,
    check_scope,
    client_credentials_of,
    handle_token,
    parse_token_body,
    prepare_token_request,
    single,
    token,
    token_company_hint,
)

__all__ = [
    "FAVICON",
    "ISSUER",
    "PAGE",
    "PENDING_TTL",
    "PKCE_RE",
    "REQUIRED_CLAIMS",
    "SUPPORTED_GRANTS",
    "GatewayError",
    "authenticate_client",
    "authorize",
    "check_scope",
    "client_credentials_of",
    "consent",
    "consent_page",
    "create_grant",
    "decode_access_token",
    "digest",
    "error_page",
    "error_redirect",
    "esc",
    "find_company",
    "handle_token",
    "introspect",
    "issue_tokens",
    "jwks",
    "mint_tokens",
    "openid_configuration",
    "page",
    "parse_token_body",
    "prepare_token_request",
    "redirect",
    "revoke",
    "revoke_pool",
    "s256",
    "signin",
    "signin_page",
    "single",
    "supersede",
    "token",
    "token_company_hint",
]
