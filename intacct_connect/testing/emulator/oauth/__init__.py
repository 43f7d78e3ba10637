"""The emulated OAuth 2.0 authorization server, one module per endpoint family:

* :mod:`.grants`: grant and token bookkeeping (create, mint, supersede, revoke);
* :mod:`.pages`: the HTML of the sign-in and consent pages;
* :mod:`.authorization`: ``/authorize``, sign-in and consent;
* :mod:`.token_endpoint`: ``/token``, one function per grant type;
* :mod:`.introspection`: ``/revoke`` and ``/introspect``;
* :mod:`.discovery`: the openid-configuration and JWKS documents.

Handlers take the :class:`~intacct_connect.testing.emulator.state.State` and, where tokens
are signed or read, the :class:`~intacct_connect.testing.emulator.signing.Signer`; never the
``Emulator``. This package only documents its modules; import them directly.
"""
