"""Seed data: the demo application(s) and companies every fresh emulator starts with.

Documented in ``docs/testing.rst`` ("Seed data"); the demo project and the tests rely on it.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from intacct_connect.testing.emulator.store import Application, Company, Entity, Store, User

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})

DEMO_CLIENT_ID = "demo-client.app.sage.com"
DEMO_CLIENT_SECRET = "demo-secret"  # noqa: S105 - public demo credentials
DEMO_SENDER_ID = "DEMO-SENDER"
SANDBOX_CLIENT_ID = "demo-sandbox-client.app.sage.com"
SANDBOX_CLIENT_SECRET = "demo-sandbox-secret"  # noqa: S105
DEMO_REDIRECT_URIS = (
    "http://localhost:8000/intacct/callback/",
    "http://127.0.0.1:8000/intacct/callback/",
    # The test suite's REDIRECT_URI (tests/settings.py).
    "https://app.example.com/intacct/callback/",
)


def check_redirect_uri(uri: str) -> None:
    """Registered redirect URIs are full https URLs; plain http only for loopback hosts
    (a deviation from Intacct, which refuses every http URL)."""
    parts = urlsplit(uri)
    if parts.fragment:
        raise ValueError(f"Redirect URI {uri!r} must not have a fragment")
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS:
        return
    raise ValueError(
        f"Redirect URI {uri!r} is not allowed: use https (plain http only for loopback hosts)"
    )


def make_application(
    client_id: str,
    client_secret: str,
    *,
    sender_id: str = DEMO_SENDER_ID,
    redirect_uris: tuple[str, ...] | list[str] = DEMO_REDIRECT_URIS,
    scope: str = "production",
    name: str | None = None,
) -> Application:
    if not client_id or not client_secret:
        raise ValueError("client_id and client_secret are required")
    if scope not in ("production", "non-production"):
        raise ValueError("scope must be 'production' or 'non-production'")
    uris = list(redirect_uris)
    for uri in uris:
        check_redirect_uri(uri)
    return Application(
        client_id=client_id,
        client_secret=client_secret,
        sender_id=sender_id,
        redirect_uris=uris,
        scope=scope,
        name=name or client_id.split(".")[0],
    )


def make_company(
    company_id: str,
    *,
    key: str,
    name: str | None = None,
    type_: str = "production",
    entities: dict[str, str] | list[str] | tuple[str, ...] = (),
    private_entities: tuple[str, ...] | list[str] = (),
    sender_ids: tuple[str, ...] | list[str] = (),
) -> Company:
    if type_ not in ("production", "non-production"):
        raise ValueError("type must be 'production' or 'non-production'")
    if not company_id:
        raise ValueError("company_id is required")
    names = dict(entities) if isinstance(entities, dict) else {e: e.title() for e in entities}
    return Company(
        id=company_id,
        key=key,
        name=name or company_id.title(),
        type=type_,
        multi_entity=bool(names),
        entities={
            entity_id: Entity(
                id=entity_id,
                key=str(index + 1),
                name=entity_name,
                private=entity_id in private_entities,
            )
            for index, (entity_id, entity_name) in enumerate(names.items())
        },
        senders=list(sender_ids),
    )


def make_user(
    company: Company,
    user_id: str,
    password: str,
    *,
    admin: bool = False,
    web_services: bool = False,
    name: str | None = None,
) -> User:
    """Add (or replace) a user of ``company``; each gets the company's next user key."""
    if not user_id or not password:
        raise ValueError("user_id and password are required")
    key = str(company.next_user_key)
    company.next_user_key += 1
    user = User(
        id=user_id,
        key=key,
        password=password,
        admin=admin,
        web_services=web_services,
        name=name or user_id.title(),
    )
    company.users[user_id] = user
    return user


def seed(store: Store) -> None:
    """Fill an empty store with the documented seed data."""
    apps = store.applications
    apps[DEMO_CLIENT_ID] = make_application(
        DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, scope="production", name="Demo application"
    )
    apps[SANDBOX_CLIENT_ID] = make_application(
        SANDBOX_CLIENT_ID,
        SANDBOX_CLIENT_SECRET,
        scope="non-production",
        name="Demo application (sandbox keys)",
    )
    companies = store.companies

    demo = make_company(
        "DEMO-CO",
        key="10001",
        name="Demo Company",
        entities={"EAST": "East Region", "WEST": "West Region"},
        sender_ids=[DEMO_SENDER_ID],
    )
    make_user(demo, "admin", "admin", admin=True, name="Demo Admin")
    make_user(demo, "jane", "jane", name="Jane Doe")
    demo.authorized_clients[DEMO_CLIENT_ID] = ["admin"]
    companies["DEMO-CO"] = demo

    second = make_company("SECOND-CO", key="10002", name="Second Company")
    make_user(second, "admin", "admin", admin=True, name="Second Admin")
    make_user(second, "bob", "bob", name="Bob Smith")
    companies["SECOND-CO"] = second

    sandbox = make_company(
        "DEMO-SANDBOX",
        key="10003",
        name="Demo Company (sandbox)",
        type_="non-production",
        sender_ids=[DEMO_SENDER_ID],
    )
    make_user(sandbox, "admin", "admin", admin=True, name="Sandbox Admin")
    sandbox.authorized_clients[SANDBOX_CLIENT_ID] = ["admin"]
    companies["DEMO-SANDBOX"] = sandbox
