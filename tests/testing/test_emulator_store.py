"""The typed data (``store.py``): look-ups, and the state file's JSON objects (camelCase
members, the same format as before the data was typed)."""

from __future__ import annotations

from intacct_connect.testing.emulator import seed
from intacct_connect.testing.emulator.store import (
    Fault,
    Grant,
    Session,
    Store,
    public,
)


def seeded() -> Store:
    store = Store()
    seed.seed(store)
    return store


def grant(grant_id: str, company: str, user: str, status: str = "active") -> Grant:
    return Grant(
        id=grant_id,
        kind="authorization_code",
        client_id=seed.DEMO_CLIENT_ID,
        company=company,
        user=user,
        entity=None,
        scope="offline_access",
        offline=True,
        created_at=0,
        status=status,
    )


def test_the_state_file_members_are_camel_case() -> None:
    data = seeded().to_json()
    assert data["version"] == 1
    assert set(data["applications"][seed.DEMO_CLIENT_ID]) == {
        "clientId",
        "clientSecret",
        "senderId",
        "redirectUris",
        "scope",
        "name",
    }
    demo = data["companies"]["DEMO-CO"]
    assert demo["multiEntity"] is True
    assert demo["authorizedClients"] == {seed.DEMO_CLIENT_ID: ["admin"]}
    assert demo["entities"]["EAST"] == {
        "id": "EAST",
        "key": "1",
        "name": "East Region",
        "private": False,
    }
    assert demo["users"]["jane"]["webServices"] is False
    assert "signingKey" not in data  # none yet
    assert set(data["counters"]) >= {"token_requests", "api_calls", "unexpected_errors"}


def test_json_round_trip() -> None:
    store = seeded()
    store.grants["g1"] = grant("g1", "DEMO-CO", "admin")
    store.sessions["s1"] = Session(grant="g1", entity="EAST", exp=10)
    store.faults.append(Fault("f1", "500", None, "api", 2, {}))
    store.signing_key = "PEM"
    data = store.to_json()
    again = Store.from_json(data)
    assert again.to_json() == data
    assert again.grant_of_session(again.session("s1")) == store.grants["g1"]


def test_missing_members_take_their_defaults() -> None:
    store = Store.from_json(
        {"version": 1, "companies": {"X": {"id": "X", "key": "1", "name": "X"}}}
    )
    company = store.companies["X"]
    assert (company.type, company.active, company.users, company.next_user_key) == (
        "production",
        True,
        {},
        1,
    )
    assert store.config.refresh_mode == "reuse_detection"


def test_look_ups() -> None:
    store = seeded()
    assert store.find_company("demo-co") is store.companies["DEMO-CO"]
    assert store.find_company("nope") is None
    store.grants["g1"] = grant("g1", "DEMO-CO", "admin")
    store.grants["g2"] = grant("g2", "DEMO-CO", "jane", status="revoked")
    store.grants["g3"] = grant("g3", "SECOND-CO", "admin")
    assert [g.id for g in store.grants_of("DEMO-CO")] == ["g1", "g2"]
    assert [g.id for g in store.grants_of("DEMO-CO", "jane")] == ["g2"]
    store.sessions["s1"] = Session(grant="g1", entity=None, exp=1)
    store.sessions["s3"] = Session(grant="g3", entity=None, exp=1)
    store.sessions["orphan"] = Session(grant="gone", entity=None, exp=1)
    assert list(store.sessions_of("SECOND-CO")) == [store.sessions["s3"]]
    assert len(list(store.sessions_of())) == 2
    assert store.grant(None) is None
    assert not store.grants["g2"].active


def test_public_copies_are_detached() -> None:
    store = seeded()
    copy = public(store.companies["DEMO-CO"])
    copy["senders"].append("OTHER")
    copy["users"]["admin"]["admin"] = False
    assert store.companies["DEMO-CO"].senders == [seed.DEMO_SENDER_ID]
    assert store.companies["DEMO-CO"].users["admin"].admin is True
