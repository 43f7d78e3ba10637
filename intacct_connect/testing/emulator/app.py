"""The emulator as a WSGI application: the URL map, and each endpoint's handler with the
gateway work around it (counters, concurrency, throttling, faults).

    from intacct_connect.testing.emulator import Emulator
    emu = Emulator()            # seeded, default configuration
    application = emu.wsgi_app  # any WSGI server can serve it

Every unexpected exception becomes a JSON ``500 GW-0001`` (never a traceback page) and is
counted (:meth:`Emulator.unexpected_errors`). The Python control methods come from
:class:`~.control_methods.ControlMethods`.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.routing import BaseConverter, Map, Rule
from werkzeug.wrappers import Request, Response

import intacct_connect.testing.emulator.control as control
import intacct_connect.testing.emulator.faults as faults
import intacct_connect.testing.emulator.throttle as throttle
from intacct_connect.testing.emulator.control_methods import ControlMethods
from intacct_connect.testing.emulator.oauth import authorization, discovery, introspection
from intacct_connect.testing.emulator.oauth.pages import error_page
from intacct_connect.testing.emulator.oauth.token_endpoint import (
    GatewayError,
    prepare_token_request,
    token,
)
from intacct_connect.testing.emulator.responses import gateway_error, json_response
from intacct_connect.testing.emulator.rest import auth, dispatch
from intacct_connect.testing.emulator.signing import Signer
from intacct_connect.testing.emulator.state import State

logger = logging.getLogger("intacct_connect.testing.emulator")

API_PREFIX = "/ia/api/v1"
OAUTH_PREFIX = "/ia/api/v1/oauth2/"
CONTROL_PREFIX = "/__emulator__/"
MAX_CONTENT_LENGTH = 32 * 1024 * 1024


class _Rest(BaseConverter):
    """The rest of the path, slashes included, possibly empty (``path`` needs one character)."""

    regex = r"[\s\S]*"
    part_isolating = False


_POST = ["POST"]
#: The emulator's URL map. A rule limited to some methods is followed by a rule for the same
#: URL without the limit, whose ``*.method`` endpoint answers the wrong-method error, so
#: matching never raises ``MethodNotAllowed``. Slashes are not merged, and a trailing slash
#: does not match a rule without one.
URLS = Map(
    [
        Rule("/", endpoint="index"),
        Rule("/ia/authorize", methods=["GET"], endpoint="authorize"),  # GET implies HEAD
        Rule("/ia/authorize", endpoint="authorize.method"),
        Rule(OAUTH_PREFIX + "authorize", methods=["GET"], endpoint="authorize"),
        Rule(OAUTH_PREFIX + "authorize", endpoint="authorize.method"),
        Rule(OAUTH_PREFIX + "signin", methods=_POST, endpoint="signin"),
        Rule(OAUTH_PREFIX + "consent", methods=_POST, endpoint="consent"),
        Rule(OAUTH_PREFIX + "token", methods=_POST, endpoint="token"),
        Rule(OAUTH_PREFIX + "token", endpoint="token.method"),
        Rule(OAUTH_PREFIX + "revoke", methods=_POST, endpoint="revoke"),
        Rule(OAUTH_PREFIX + "revoke", endpoint="post_only.method"),
        Rule(OAUTH_PREFIX + "introspect", methods=_POST, endpoint="introspect"),
        Rule(OAUTH_PREFIX + "introspect", endpoint="post_only.method"),
        # signin and consent with another method land here too.
        Rule(OAUTH_PREFIX + "<rest:subpath>", endpoint="oauth.unknown"),
        Rule(API_PREFIX + "/<rest:subpath>", endpoint="api"),
        Rule(CONTROL_PREFIX + "<rest:subpath>", endpoint="control"),
        Rule("/.well-known/openid-configuration", endpoint="openid_configuration"),
        Rule("/.well-known/jwks.json", endpoint="jwks"),
    ],
    converters={"rest": _Rest},
    merge_slashes=False,
)


class Emulator(ControlMethods):
    """A Sage Intacct emulator: OAuth 2.0 server, REST API, faults and control API."""

    def __init__(self, *, state_path: str | None = None, seeded: bool = True) -> None:
        self.state = State(state_path)
        self.seeded = seeded
        if not self.state.load():
            self.reset()
        with self.state.read() as store:
            pem = store.signing_key
        self.signer = Signer(pem)
        if pem is None:
            with self.state.transaction() as store:
                store.signing_key = self.signer.pem
        self.private_key = self.signer.private_key
        self.public_key = self.signer.public_key
        self.kid = self.signer.kid
        self.public_jwk = self.signer.public_jwk

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        return self.wsgi_app(environ, start_response)

    def wsgi_app(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        request.max_content_length = MAX_CONTENT_LENGTH
        request.max_form_memory_size = MAX_CONTENT_LENGTH
        try:
            response = self.dispatch(request, environ)
        except faults.DropConnection:
            raise
        except HTTPException as err:
            response = json_response(
                {"ia::error": {"code": "invalidRequest", "message": err.description or err.name}},
                err.code or 400,
            )
        except Exception as err:
            self.state.count_unexpected(f"{type(err).__name__}: {err}")
            logger.exception("Unexpected emulator error on %s %s", request.method, request.path)
            response = gateway_error(500, "GW-0001", "Unexpected emulator error.")
        return response(environ, start_response)

    def dispatch(self, request: Request, environ: dict[str, Any]) -> Response:
        try:
            endpoint, args = URLS.bind("emulator").match(request.path, request.method)
        except HTTPException:  # NotFound: the fallback rules rule out MethodNotAllowed
            endpoint, args = "not_found", {}
        state, signer, path = self.state, self.signer, request.path
        handlers: dict[str, Callable[[], Response]] = {
            "index": lambda: _index(request),
            "authorize": lambda: authorization.authorize(state, request),
            "authorize.method": lambda: error_page("Use GET for the authorization endpoint."),
            "signin": lambda: authorization.signin(state, request),
            "consent": lambda: authorization.consent(state, request),
            "token": lambda: self._token_endpoint(request, environ),
            "token.method": lambda: gateway_error(
                405, "GW-0033", "The token endpoint accepts POST only."
            ),
            "revoke": lambda: introspection.revoke(state, signer, request),
            "introspect": lambda: introspection.introspect(state, signer, request),
            "post_only.method": lambda: gateway_error(
                405, "GW-0033", "This endpoint accepts POST only."
            ),
            "oauth.unknown": lambda: gateway_error(
                404, "GW-0033", f"Unknown OAuth endpoint {path}."
            ),
            "api": lambda: self._api(request, environ, "/" + args["subpath"]),
            "control": lambda: control.dispatch(self, request, args["subpath"]),
            "openid_configuration": lambda: discovery.openid_configuration(request),
            "jwks": lambda: discovery.jwks(signer),
        }
        handler = handlers.get(endpoint)
        if handler is None:
            return json_response(
                {"ia::error": {"code": "notFound", "message": f"{path} was not found"}}, 404
            )
        return handler()

    def _token_endpoint(self, request: Request, environ: dict[str, Any]) -> Response:
        state = self.state
        try:
            prepared = prepare_token_request(state, request)
        except GatewayError as err:
            state.count_token_request("(malformed)")
            return gateway_error(err.status, err.code, err.description)
        grant_type, _params, company = prepared
        state.count_token_request(grant_type, company)
        fault = state.take_fault("token", company)
        if fault is not None and fault.kind != "token_lost":
            injected = faults.fault_response(fault, environ, int(state.config.retry_after))
            if injected is not None:
                return injected
        response = token(state, self.signer, request, prepared)
        if fault is not None and fault.kind == "token_lost":
            faults.drop_connection(environ)
        return response

    def _api(self, request: Request, environ: dict[str, Any], subpath: str) -> Response:
        state = self.state
        ctx = auth.authenticate(state, self.signer, request)
        if isinstance(ctx, Response):
            return ctx
        company = ctx.company.id
        state.count_api_call(company)
        with state.tracking_concurrency(company) as inflight:
            throttled, headers = throttle.check_throttle(state, company, inflight)
            if throttled is not None:
                return throttled
            fault = state.take_fault("api", company)
            if fault is not None:
                injected = faults.fault_response(fault, environ, int(state.config.retry_after))
                if injected is not None:
                    return injected
            response = dispatch.handle(state, ctx, request, subpath)
            for name, value in headers.items():
                response.headers[name] = value
            return response


def _index(request: Request) -> Response:
    root = request.host_url.rstrip("/")
    body = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Sage Intacct emulator"
        "</title></head><body><h1>Sage Intacct emulator</h1>"
        "<p>A local test server for intacct_connect; not Sage Intacct.</p><ul>"
        f"<li>REST API base URL: <code>{html.escape(root)}/ia/api/v1</code></li>"
        f"<li>Authorize: <code>{html.escape(root)}/ia/api/v1/oauth2/authorize</code></li>"
        f"<li>Token: <code>{html.escape(root)}/ia/api/v1/oauth2/token</code></li>"
        f"<li>Control API: <code>{html.escape(root)}/__emulator__/</code></li></ul>"
        "</body></html>"
    )
    return Response(body, mimetype="text/html")
