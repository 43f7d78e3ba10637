"""The emulator's Python control API: the methods of
:class:`~intacct_connect.testing.emulator.Emulator` that tests (and the ``/__emulator__/``
HTTP control API) call to configure it, switch faults, move the clock, mint or expire tokens,
seed companies, users and applications, and read or generate records.

Each method is one operation on the state (one ``state.transaction()`` or ``state.read()``,
or one of the state's own single-step methods) and returns plain JSON-able copies.
"""

from __future__ import annotations

import copy
import random
from typing import Any
from urllib.parse import urlsplit

import intacct_connect.testing.emulator.faults as faults
import intacct_connect.testing.emulator.seed as seed
from intacct_connect.testing.emulator.catalogue.registry import SPECS
from intacct_connect.testing.emulator.catalogue.spec import ObjectSpec
from intacct_connect.testing.emulator.oauth.grants import create_grant, mint_tokens, revoke_pool
from intacct_connect.testing.emulator.records.storage import (
    collection,
    full_record,
    insert_generated,
)
from intacct_connect.testing.emulator.signing import Signer
from intacct_connect.testing.emulator.state import State
from intacct_connect.testing.emulator.store import Application, Company, Store, public


def _spec(object_path: str) -> ObjectSpec:
    spec = SPECS.get(object_path)
    if spec is None:
        raise ValueError(f"Unknown object {object_path!r}; use one of {', '.join(SPECS)}")
    return spec


def _company(store: Store, company_id: str) -> Company:
    company = store.company(company_id)
    if company is None:
        raise ValueError(f"Unknown company {company_id!r}")
    return company


def _application(store: Store, client_id: str) -> Application:
    app = store.application(client_id)
    if app is None:
        known = ", ".join(sorted(store.applications)) or "none"
        raise ValueError(f"Unknown client {client_id!r} (known clients: {known})")
    return app


class ControlMethods:
    """The control methods; :class:`~intacct_connect.testing.emulator.Emulator` has them."""

    state: State
    signer: Signer
    seeded: bool

    def reset(self) -> None:
        """Back to the seed data and default configuration (the signing key is kept)."""
        with self.state.read() as store:
            fresh = Store(signing_key=store.signing_key)
        if self.seeded:
            seed.seed(fresh)
        self.state.reset(fresh)

    def configure(self, **options: Any) -> dict[str, Any]:
        """Change behaviour: ``refresh_mode``, ``access_token_ttl``, ``error_style``,
        ``rest_error_shape``, ``supersede_grants``, ``code_ttl``, ``concurrency_limit``,
        ``per_minute_limit``, ``retry_after``, ``expired_token_error``."""
        return self.state.configure(**options)

    def config(self) -> dict[str, Any]:
        return self.state.config.to_json()

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
        self.state.clear_faults()

    def faults(self) -> list[dict[str, Any]]:
        return self.state.faults()

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
        with self.state.transaction() as store:
            for session in store.sessions_of(company):
                if not session.expired:
                    count += 1
                session.expired = True
        return count

    def revoke_grants(self, company: str, user: str | None = None) -> int:
        """Revoke every grant of ``user`` (all users when None) in ``company``, as Intacct's
        revoke endpoint does: access tokens then answer REST-2102 and refresh tokens
        invalid_grant. Returns how many active grants were revoked."""
        with self.state.transaction() as store:
            return revoke_pool(store, company, user)

    def grants(self, company: str | None = None) -> list[dict[str, Any]]:
        with self.state.read() as store:
            return [public(grant) for grant in store.grants_of(company)]

    def issue_tokens(
        self,
        company_id: str,
        user_id: str,
        entity: str | None = None,
        offline: bool = True,
        client_id: str | None = None,
    ) -> dict[str, Any]:
        """A token response for a new consent grant, minted without the browser."""
        with self.state.transaction() as store:
            company = store.find_company(company_id)
            if company is None:
                raise ValueError(f"Unknown company {company_id!r}")
            if user_id not in company.users:
                raise ValueError(f"Unknown user {user_id!r} in {company.id}")
            if entity and entity not in company.entities:
                raise ValueError(f"Unknown entity {entity!r} in {company.id}")
            client = client_id or seed.DEMO_CLIENT_ID
            if store.application(client) is None:
                raise ValueError(f"Unknown client {client!r}")
            grant = create_grant(
                store,
                kind="authorization_code",
                client_id=client,
                company=company.id,
                user=user_id,
                entity=entity or None,
                scope="offline_access" if offline else "",
            )
            return mint_tokens(store, self.signer, grant)

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
        with self.state.transaction() as store:
            company = seed.make_company(
                company_id,
                key=str(20000 + len(store.companies) + 1),
                name=name,
                type_=type,
                entities=entities,
                private_entities=private_entities,
                sender_ids=[sender_id] if sender_authorized else [],
            )
            for user_id, password in (users or {"admin": "admin"}).items():
                seed.make_user(company, user_id, password, admin=user_id in admin_users)
            store.companies[company_id] = company
            store.records.pop(company_id, None)
            store.touch_records()
            return public(company)

    def seed_user(
        self,
        company_id: str,
        user_id: str,
        password: str,
        *,
        admin: bool = False,
        web_services: bool = False,
    ) -> dict[str, Any]:
        with self.state.transaction() as store:
            company = _company(store, company_id)
            return public(
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
        with self.state.transaction() as store:
            store.applications[client_id] = app
        return public(app)

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
        with self.state.transaction() as store:
            app = _application(store, client_id)
            if uri not in app.redirect_uris:
                app.redirect_uris.append(uri)

    def redirect_uris(self, client_id: str = seed.DEMO_CLIENT_ID) -> list[str]:
        """The redirect URIs registered for the application ``client_id``."""
        with self.state.read() as store:
            return list(_application(store, client_id).redirect_uris)

    def authorize_sender(self, company: str, sender_id: str = seed.DEMO_SENDER_ID) -> None:
        """Add ``sender_id`` to the company's Web Services authorizations."""
        with self.state.transaction() as store:
            target = _company(store, company)
            if sender_id not in target.senders:
                target.senders.append(sender_id)

    def unauthorize_sender(self, company: str, sender_id: str = seed.DEMO_SENDER_ID) -> None:
        with self.state.transaction() as store:
            target = _company(store, company)
            if sender_id in target.senders:
                target.senders.remove(sender_id)

    def authorize_client(
        self, company: str, user_id: str, client_id: str = seed.DEMO_CLIENT_ID
    ) -> None:
        """List ``client_id`` under the company's authorized client applications with the
        Web Services user ``user_id`` (needed for the client-credentials grant)."""
        with self.state.transaction() as store:
            target = _company(store, company)
            if user_id not in target.users:
                raise ValueError(f"Unknown user {user_id!r} in {company}")
            users = target.authorized_clients.setdefault(client_id, [])
            if user_id not in users:
                users.append(user_id)

    def records(self, company: str, object: str) -> list[dict[str, Any]]:
        """Copies of every record of ``object`` in ``company`` (all entities)."""
        spec = _spec(object)
        with self.state.read() as store:
            _company(store, company)
            rows = collection(store, company, spec.path).rows
            return [copy.deepcopy(full_record(spec, r)) for r in rows.values()]

    def record_count(self, company: str, object: str) -> int:
        spec = _spec(object)
        with self.state.read() as store:
            _company(store, company)
            return len(collection(store, company, spec.path).rows)

    def generate_records(
        self,
        company: str,
        object: str,
        count: int,
        *,
        seed_value: int = 0,
    ) -> int:
        """Append ``count`` generated records (deterministic); returns the new total."""
        spec = _spec(object)
        if spec.generate is None:
            raise ValueError(f"{object} has no generator")
        if not isinstance(count, int) or isinstance(count, bool) or not 0 < count <= 1_000_000:
            raise ValueError("count must be an integer between 1 and 1,000,000")
        with self.state.transaction() as store:
            target = _company(store, company)
            coll = collection(store, company, spec.path)
            rng = random.Random(f"{company}:{spec.path}:generated:{seed_value}")  # noqa: S311
            insert_generated(store, target, spec, coll, count, rng=rng)
            return len(coll.rows)
