"""The emulator as a WSGI application plus its Python control API.

    from intacct_connect.testing.emulator import Emulator
    emu = Emulator()            # seeded, default configuration
    application = emu.wsgi_app  # any WSGI server can serve it

Every unexpected exception becomes a JSON ``500 GW-0001`` (never a traceback page) and is
counted (:meth:`Emulator.unexpected_errors`).
"""

from __future__ import annotations

import copy
import html
import logging
import random
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug.exceptions import HTTPException
from werkzeug.routing import BaseConverter, Map, Rule
from werkzeug.wrappers import Request, Response

import intacct_connect.testing.emulator.control as control
import intacct_connect.testing.emulator.faults as faults
import intacct_connect.testing.emulator.oauth as oauth
import intacct_connect.testing.emulator.records as records
import intacct_connect.testing.emulator.rest as rest
import intacct_connect.testing.emulator.seed as seed
from intacct_connect.testing.emulator.objects import SPECS
from intacct_connect.testing.emulator.responses import gateway_error, json_response
from intacct_connect.testing.emulator.state import State, new_data

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


class Emulator:
    """A Sage Intacct emulator: OAuth 2.0 server, REST API, faults and control API."""

    def __init__(self, *, state_path: str | None = None, seeded: bool = True) -> None:
        self.state = State(state_path)
        self.seeded = seeded
        loaded = self.state.load()
        if not loaded:
            self._fresh_data()
        self._load_key()

    # --- setup ---------------------------------------------------------------------
    def _fresh_data(self) -> None:
        data = new_data()
        key = self.state.data.get("signingKey")
        if key:
            data["signingKey"] = key
        if self.seeded:
            seed.seed(data)
        self.state.reset(data)

    def _load_key(self) -> None:
        pem = self.state.data.get("signingKey")
        if pem:
            private_key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
        else:
            private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pem = private_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode("ascii")
            with self.state.lock:
                self.state.data["signingKey"] = pem
                self.state.dirty = True
        if not isinstance(private_key, rsa.RSAPrivateKey):
            raise ValueError("The state file's signing key is not an RSA private key")
        self.private_key = private_key
        self.public_key = private_key.public_key()
        jwk: dict[str, Any] = jwt.algorithms.RSAAlgorithm.to_jwk(self.public_key, as_dict=True)
        numbers = self.public_key.public_numbers()
        self.kid = f"emulator-{numbers.n % 10**12:012d}"
        self.public_jwk = {**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}

    # --- WSGI --------------------------------------------------------------------------
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
        path = request.path
        if endpoint == "authorize":
            return oauth.authorize(self, request)
        if endpoint == "authorize.method":
            return oauth.error_page("Use GET for the authorization endpoint.")
        if endpoint == "signin":
            return oauth.signin(self, request)
        if endpoint == "consent":
            return oauth.consent(self, request)
        if endpoint == "token":
            return self._token_endpoint(request, environ)
        if endpoint == "token.method":
            return gateway_error(405, "GW-0033", "The token endpoint accepts POST only.")
        if endpoint == "revoke":
            return oauth.revoke(self, request)
        if endpoint == "introspect":
            return oauth.introspect(self, request)
        if endpoint == "post_only.method":
            return gateway_error(405, "GW-0033", "This endpoint accepts POST only.")
        if endpoint == "oauth.unknown":
            return gateway_error(404, "GW-0033", f"Unknown OAuth endpoint {path}.")
        if endpoint == "api":
            return self._api(request, environ, "/" + args["subpath"])
        if endpoint == "control":
            return control.dispatch(self, request, args["subpath"])
        if endpoint == "openid_configuration":
            return oauth.openid_configuration(self, request)
        if endpoint == "jwks":
            return oauth.jwks(self, request)
        if endpoint == "index":
            return self._index(request)
        return json_response(
            {"ia::error": {"code": "notFound", "message": f"{path} was not found"}}, 404
        )

    def _index(self, request: Request) -> Response:
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

    def _token_endpoint(self, request: Request, environ: dict[str, Any]) -> Response:
        state = self.state
        try:
            prepared = oauth.prepare_token_request(self, request)
        except oauth.GatewayError as err:
            state.count("token_requests", "(malformed)")
            return gateway_error(err.status, err.code, err.description)
        grant_type, _params, company = prepared
        state.count("token_requests", grant_type)
        if company:
            state.count("token_requests_by_company", company, grant_type)
        fault = faults.take_fault(state, "token", company)
        if fault is not None and fault["kind"] != "token_lost":
            injected = faults.fault_response(fault, environ, int(state.config["retry_after"]))
            if injected is not None:
                return injected
        response = oauth.token(self, request, prepared)
        if fault is not None and fault["kind"] == "token_lost":
            faults.drop_connection(environ)
        return response

    def _api(self, request: Request, environ: dict[str, Any], subpath: str) -> Response:
        state = self.state
        ctx = rest.authenticate(self, request)
        if isinstance(ctx, Response):
            return ctx
        company = ctx.company["id"]
        state.count("api_calls", company)
        with state.tracking_concurrency(company) as inflight:
            throttled, headers = faults.check_throttle(state, company, inflight)
            if throttled is not None:
                return throttled
            fault = faults.take_fault(state, "api", company)
            if fault is not None:
                injected = faults.fault_response(fault, environ, int(state.config["retry_after"]))
                if injected is not None:
                    return injected
            response = rest.handle(self, ctx, request, subpath)
            for name, value in headers.items():
                response.headers[name] = value
            return response

    # --- Python control API --------------------------------------------------------------
    def reset(self) -> None:
        """Back to the seed data and default configuration (the signing key is kept)."""
        self._fresh_data()

    def configure(self, **options: Any) -> dict[str, Any]:
        """Change behaviour: ``refresh_mode``, ``access_token_ttl``, ``error_style``,
        ``rest_error_shape``, ``supersede_grants``, ``code_ttl``, ``concurrency_limit``,
        ``per_minute_limit``, ``retry_after``, ``expired_token_error``."""
        return self.state.configure(**options)

    def config(self) -> dict[str, Any]:
        with self.state.lock:
            return dict(self.state.config)

    def set_fault(
        self,
        kind: str,
        *,
        company: str | None = None,
        endpoint: str | None = None,
        count: int | None = None,
        **params: Any,
    ) -> dict[str, Any]:
        return faults.add_fault(
            self.state, kind, company=company, endpoint=endpoint, count=count, **params
        )

    def clear_faults(self) -> None:
        faults.clear_faults(self.state)

    def faults(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return [dict(f) for f in self.state.data["faults"]]

    def counters(self) -> dict[str, Any]:
        return self.state.counters()

    def token_requests(self, grant_type: str | None = None, company: str | None = None) -> int:
        counters = self.state.counters()
        if company is not None:
            per_grant: dict[str, int] = counters["token_requests_by_company"].get(company, {})
        else:
            per_grant = counters["token_requests"]
        if grant_type is not None:
            return int(per_grant.get(grant_type, 0))
        return sum(int(v) for k, v in per_grant.items() if k != "(malformed)")

    def api_calls(self, company: str | None = None) -> int:
        calls: dict[str, int] = self.state.counters()["api_calls"]
        if company is not None:
            return int(calls.get(company, 0))
        return sum(calls.values())

    def max_concurrency(self, company: str) -> int:
        return int(self.state.counters()["max_concurrency"].get(company, 0))

    def unexpected_errors(self) -> int:
        return int(self.state.counters()["unexpected_errors"])

    def last_unexpected_error(self) -> str | None:
        return self.state.last_error

    def advance_time(self, seconds: float) -> None:
        """Move the emulator's clock forward (token and code expiry use it)."""
        self.state.advance_time(seconds)

    def now(self) -> float:
        return self.state.now()

    def expire_tokens(self, company: str | None = None) -> int:
        """Make every current access token (of ``company``) answer 401 GW-0040. Refresh
        tokens stay valid. Returns how many access tokens were expired."""
        count = 0
        with self.state.lock:
            data = self.state.data
            for session in data["sessions"].values():
                grant = data["grants"].get(session["grant"])
                if grant and (company is None or grant["company"] == company):
                    if not session["expired"]:
                        count += 1
                    session["expired"] = True
            self.state.dirty = True
        return count

    def revoke_grants(self, company: str, user: str | None = None) -> int:
        """Revoke every grant of ``user`` (all users when None) in ``company``, as Intacct's
        revoke endpoint does: access tokens then answer REST-2102 and refresh tokens
        invalid_grant. Returns how many active grants were revoked."""
        with self.state.lock:
            return oauth.revoke_pool(self, company, user)

    def grants(self, company: str | None = None) -> list[dict[str, Any]]:
        with self.state.lock:
            return [
                dict(g)
                for g in self.state.data["grants"].values()
                if company is None or g["company"] == company
            ]

    def issue_tokens(
        self,
        company_id: str,
        user_id: str,
        entity: str | None = None,
        offline: bool = True,
        client_id: str | None = None,
    ) -> dict[str, Any]:
        """A token response for a new consent grant, minted without the browser."""
        return oauth.issue_tokens(
            self, company_id, user_id, entity=entity, offline=offline, client_id=client_id
        )

    def seed_company(
        self,
        company_id: str,
        *,
        name: str | None = None,
        type: str = "production",
        entities: dict[str, str] | list[str] | tuple[str, ...] = (),
        private_entities: list[str] | tuple[str, ...] = (),
        sender_authorized: bool = True,
        sender_id: str = seed.DEMO_SENDER_ID,
        users: dict[str, str] | None = None,
        admin_users: list[str] | tuple[str, ...] = ("admin",),
    ) -> dict[str, Any]:
        """Add (or replace) a company. ``users`` maps user IDs to passwords; those in
        ``admin_users`` are company administrators."""
        with self.state.lock:
            key = str(20000 + len(self.state.data["companies"]) + 1)
            company = seed.make_company(
                company_id,
                key=key,
                name=name,
                type_=type,
                entities=entities,
                private_entities=private_entities,
                sender_ids=[sender_id] if sender_authorized else [],
            )
            for user_id, password in (users or {"admin": "admin"}).items():
                seed.make_user(company, user_id, password, admin=user_id in admin_users)
            self.state.data["companies"][company_id] = company
            self.state.data["records"].pop(company_id, None)
            self.state.touch_records()
            return dict(company)

    def seed_user(
        self,
        company_id: str,
        user_id: str,
        password: str,
        *,
        admin: bool = False,
        web_services: bool = False,
    ) -> dict[str, Any]:
        with self.state.lock:
            company = self._company(company_id)
            return dict(
                seed.make_user(company, user_id, password, admin=admin, web_services=web_services)
            )

    def seed_application(
        self,
        client_id: str,
        client_secret: str,
        *,
        sender_id: str = seed.DEMO_SENDER_ID,
        redirect_uris: list[str] | tuple[str, ...] = seed.DEMO_REDIRECT_URIS,
        scope: str = "production",
        name: str | None = None,
    ) -> dict[str, Any]:
        app = seed.make_application(
            client_id,
            client_secret,
            sender_id=sender_id,
            redirect_uris=redirect_uris,
            scope=scope,
            name=name,
        )
        with self.state.lock:
            self.state.data["applications"][client_id] = app
            self.state.dirty = True
        return dict(app)

    def add_redirect_uri(self, uri: str, client_id: str = seed.DEMO_CLIENT_ID) -> None:
        """Register ``uri`` for the application ``client_id`` (idempotent)."""
        if not isinstance(uri, str) or not isinstance(client_id, str):
            raise ValueError("The redirect URI and the client ID must be strings")
        parts = urlsplit(uri)
        if not parts.scheme or not parts.netloc:
            raise ValueError(
                f"Redirect URI {uri!r} is not an absolute URL "
                "(e.g. http://localhost:8000/intacct/callback/)"
            )
        seed.check_redirect_uri(uri)
        with self.state.lock:
            app = self._application(client_id)
            if uri not in app["redirectUris"]:
                app["redirectUris"].append(uri)
            self.state.dirty = True

    def redirect_uris(self, client_id: str = seed.DEMO_CLIENT_ID) -> list[str]:
        """The redirect URIs registered for the application ``client_id``."""
        with self.state.lock:
            return list(self._application(client_id)["redirectUris"])

    def _application(self, client_id: str) -> dict[str, Any]:
        app: dict[str, Any] | None = self.state.data["applications"].get(client_id)
        if app is None:
            known = ", ".join(sorted(self.state.data["applications"])) or "none"
            raise ValueError(f"Unknown client {client_id!r} (known clients: {known})")
        return app

    def authorize_sender(self, company: str, sender_id: str = seed.DEMO_SENDER_ID) -> None:
        """Add ``sender_id`` to the company's Web Services authorizations."""
        with self.state.lock:
            target = self._company(company)
            if sender_id not in target["senders"]:
                target["senders"].append(sender_id)
            self.state.dirty = True

    def unauthorize_sender(self, company: str, sender_id: str = seed.DEMO_SENDER_ID) -> None:
        with self.state.lock:
            target = self._company(company)
            if sender_id in target["senders"]:
                target["senders"].remove(sender_id)
            self.state.dirty = True

    def authorize_client(
        self, company: str, user_id: str, client_id: str = seed.DEMO_CLIENT_ID
    ) -> None:
        """List ``client_id`` under the company's authorized client applications with the
        Web Services user ``user_id`` (needed for the client-credentials grant)."""
        with self.state.lock:
            target = self._company(company)
            if user_id not in target["users"]:
                raise ValueError(f"Unknown user {user_id!r} in {company}")
            users = target["authorizedClients"].setdefault(client_id, [])
            if user_id not in users:
                users.append(user_id)
            self.state.dirty = True

    def _company(self, company_id: str) -> dict[str, Any]:
        company: dict[str, Any] | None = self.state.data["companies"].get(company_id)
        if company is None:
            raise ValueError(f"Unknown company {company_id!r}")
        return company

    def _spec(self, object_path: str) -> Any:
        spec = SPECS.get(object_path)
        if spec is None:
            raise ValueError(f"Unknown object {object_path!r}; use one of {', '.join(SPECS)}")
        return spec

    def records(self, company: str, object: str) -> list[dict[str, Any]]:
        """Copies of every record of ``object`` in ``company`` (all entities)."""
        spec = self._spec(object)
        with self.state.lock:
            self._company(company)
            rows = records.collection(self.state, company, spec.path)["rows"]
            return [copy.deepcopy(records.full_record(spec, r)) for r in rows.values()]

    def record_count(self, company: str, object: str) -> int:
        spec = self._spec(object)
        with self.state.lock:
            self._company(company)
            return len(records.collection(self.state, company, spec.path)["rows"])

    def generate_records(
        self,
        company: str,
        object: str,
        count: int,
        *,
        seed_value: int = 0,
    ) -> int:
        """Append ``count`` generated records (deterministic); returns the new total."""
        spec = self._spec(object)
        if spec.generate is None:
            raise ValueError(f"{object} has no generator")
        if not isinstance(count, int) or isinstance(count, bool) or not 0 < count <= 1_000_000:
            raise ValueError("count must be an integer between 1 and 1,000,000")
        with self.state.lock:
            target = self._company(company)
            records.collection(self.state, company, spec.path)
            rng = random.Random(f"{company}:{spec.path}:generated:{seed_value}")  # noqa: S311
            records.insert_generated(self.state, target, spec, count, rng=rng)
            return len(records.collection(self.state, company, spec.path)["rows"])
