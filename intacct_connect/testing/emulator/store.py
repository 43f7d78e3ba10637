"""The emulator's data as typed objects: applications, companies (entities, users), the OAuth
bookkeeping (pending sign-ins, codes, grants, refresh tokens, sessions), record collections,
idempotency entries, faults and counters, under one :class:`Store`.

Only :class:`~intacct_connect.testing.emulator.state.State` hands a :class:`Store` out, with
its lock held (``state.transaction()`` / ``state.read()``); nothing here locks. Each object
maps to the camelCase JSON object of the state file (``to_json`` / ``from_json``), so the file
keeps its format. Records themselves stay JSON objects (:data:`Record`): they are what the API
serves.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self, TypeVar

from intacct_connect.testing.emulator.config import Config

#: A record as ``GET /objects/...`` serves it (Sage's field names).
Record = dict[str, Any]
STATE_VERSION = 1


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


class JsonObject:
    """A dataclass stored as a JSON object whose member names are its fields in camelCase
    (``client_id`` is ``clientId``)."""

    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]

    def to_json(self) -> dict[str, Any]:
        return {_camel(item.name): getattr(self, item.name) for item in dataclasses.fields(self)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        """Members missing from ``data`` take the field's default."""
        values = {}
        for item in dataclasses.fields(cls):
            name = _camel(item.name)
            if name in data:
                values[item.name] = data[name]
        return cls(**values)


J = TypeVar("J", bound=JsonObject)


@dataclass
class Application(JsonObject):
    client_id: str
    client_secret: str
    sender_id: str
    redirect_uris: list[str]
    scope: str  # "production" or "non-production"
    name: str


@dataclass
class Entity(JsonObject):
    id: str
    key: str
    name: str
    private: bool = False


@dataclass
class User(JsonObject):
    id: str
    key: str
    password: str
    admin: bool = False
    web_services: bool = False
    name: str = ""


@dataclass
class Company(JsonObject):
    id: str
    key: str
    name: str
    type: str = "production"  # or "non-production"
    active: bool = True
    multi_entity: bool = False
    entities: dict[str, Entity] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    senders: list[str] = field(default_factory=list)  # Web Services authorizations
    authorized_clients: dict[str, list[str]] = field(default_factory=dict)  # client -> users
    next_user_key: int = 1

    def to_json(self) -> dict[str, Any]:
        out = super().to_json()
        out["entities"] = {name: entity.to_json() for name, entity in self.entities.items()}
        out["users"] = {name: user.to_json() for name, user in self.users.items()}
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        company = super().from_json(data)
        company.entities = {k: Entity.from_json(v) for k, v in data.get("entities", {}).items()}
        company.users = {k: User.from_json(v) for k, v in data.get("users", {}).items()}
        return company

    def private_entities(self) -> frozenset[str]:
        return frozenset(name for name, entity in self.entities.items() if entity.private)


@dataclass
class PendingRequest(JsonObject):
    """An authorize request waiting for sign-in (then consent); ``company`` is set once the
    user has signed in."""

    id: str
    client_id: str
    redirect_uri: str
    state: str | None
    scope: str
    created_at: float
    challenge: str | None = None
    company: str | None = None
    user: str | None = None
    entity: str | None = None


@dataclass
class AuthorizationCode(JsonObject):
    client_id: str
    redirect_uri: str
    challenge: str | None
    company: str
    user: str
    entity: str | None
    scope: str
    created_at: float
    used: bool = False
    grant: str | None = None  # the grant the code was exchanged for


@dataclass
class Grant(JsonObject):
    id: str
    kind: str  # "authorization_code" or "client_credentials"
    client_id: str
    company: str
    user: str
    entity: str | None
    scope: str
    offline: bool
    created_at: float
    status: str = "active"  # or "superseded", "revoked"

    @property
    def active(self) -> bool:
        return self.status == "active"


@dataclass
class RefreshToken(JsonObject):
    grant: str
    used: bool = False
    created_at: float = 0
    used_at: float = 0  # when it was rotated away (for refresh_grace_seconds)


@dataclass
class Session(JsonObject):
    """An access token's API session (the token's ``sessionId``)."""

    grant: str
    entity: str | None
    exp: float
    expired: bool = False


@dataclass
class Collection(JsonObject):
    """The records of one object in one company, by key; ``ids`` maps unique IDs to keys."""

    next_key: int = 1
    rows: dict[str, Record] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)


@dataclass
class IdempotencyEntry(JsonObject):
    """The answer to a request with an ``Idempotency-Key``; ``status`` is None while the
    first request is still running."""

    fingerprint: str
    status: int | None = None
    body: Any = None
    created_at: float = 0
    date: str = ""


@dataclass
class Fault(JsonObject):
    """A switched-on fault (see :mod:`~intacct_connect.testing.emulator.faults`)."""

    id: str
    kind: str
    company: str | None
    endpoint: str | None  # "api", "token" or None for both
    remaining: int | None  # None: until cleared
    params: dict[str, Any]

    def matches(self, endpoint: str, company: str | None, kinds: tuple[str, ...] | None) -> bool:
        return (
            self.endpoint in (None, endpoint)
            and (self.company is None or self.company == company)
            and (kinds is None or self.kind in kinds)
        )


def _bump(counts: dict[str, int], key: str, amount: int = 1) -> None:
    counts[key] = int(counts.get(key, 0)) + amount


@dataclass
class Counters:
    """What the emulator saw; stored and reported with these snake_case names."""

    token_requests: dict[str, int] = field(default_factory=dict)  # grant_type -> count
    token_requests_by_company: dict[str, dict[str, int]] = field(default_factory=dict)
    api_calls: dict[str, int] = field(default_factory=dict)  # company -> count
    #: company -> highest number of simultaneous API calls
    max_concurrency: dict[str, int] = field(default_factory=dict)
    throttled: dict[str, int] = field(default_factory=dict)  # company -> 429 answers
    faults_injected: int = 0
    unexpected_errors: int = 0
    #: company -> records written + queries (usage, never blocking)
    transactions: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Counters:
        names = {item.name for item in dataclasses.fields(cls)}
        return cls(**{name: value for name, value in data.items() if name in names})

    def token_request(self, grant_type: str, company: str | None = None) -> None:
        _bump(self.token_requests, grant_type)
        if company:
            _bump(self.token_requests_by_company.setdefault(company, {}), grant_type)

    def api_call(self, company: str) -> None:
        _bump(self.api_calls, company)

    def concurrency(self, company: str, current: int) -> None:
        if current > int(self.max_concurrency.get(company, 0)):
            self.max_concurrency[company] = current

    def throttle(self, company: str) -> None:
        _bump(self.throttled, company)

    def add_transactions(self, company: str, amount: int = 1) -> None:
        _bump(self.transactions, company, amount)


def _objects(kind: type[J], data: Mapping[str, Any]) -> dict[str, J]:
    return {key: kind.from_json(value) for key, value in data.items()}


def _json(objects: Mapping[str, JsonObject]) -> dict[str, Any]:
    return {key: value.to_json() for key, value in objects.items()}


@dataclass
class Store:
    """Everything that survives a restart, plus the records' change counter and query cache
    (which do not)."""

    config: Config = field(default_factory=Config)
    clock_offset: float = 0.0
    applications: dict[str, Application] = field(default_factory=dict)
    companies: dict[str, Company] = field(default_factory=dict)
    pending: dict[str, PendingRequest] = field(default_factory=dict)
    codes: dict[str, AuthorizationCode] = field(default_factory=dict)  # by digest
    grants: dict[str, Grant] = field(default_factory=dict)
    refresh_tokens: dict[str, RefreshToken] = field(default_factory=dict)  # by digest
    sessions: dict[str, Session] = field(default_factory=dict)
    records: dict[str, dict[str, Collection]] = field(default_factory=dict)  # company, path
    idempotency: dict[str, IdempotencyEntry] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    counters: Counters = field(default_factory=Counters)
    sequence: int = 1000
    signing_key: str | None = None  # PEM
    #: Not saved: bumped on every record write (query caches key on it), the cache itself,
    #: and whether anything changed since the last save.
    records_version: int = 0
    query_cache: dict[Any, list[str]] = field(default_factory=dict)
    changed: bool = False

    # the clock and the change marks
    def now(self) -> float:
        """Emulator time: wall-clock time plus the offset of ``advance_time``."""
        return time.time() + float(self.clock_offset)

    def touch_records(self) -> None:
        """Note that records changed (invalidates query caches)."""
        self.records_version += 1
        self.query_cache.clear()
        self.changed = True

    # look-ups
    def application(self, client_id: str) -> Application | None:
        return self.applications.get(client_id)

    def company(self, company_id: str) -> Company | None:
        return self.companies.get(company_id)

    def find_company(self, company_id: str) -> Company | None:
        """The company, its ID matched case-insensitively (as Intacct's sign-in does)."""
        company = self.companies.get(company_id)
        if company is None:
            lowered = company_id.lower()
            for candidate in self.companies.values():
                if candidate.id.lower() == lowered:
                    return candidate
        return company

    def pending_request(self, pending_id: str) -> PendingRequest | None:
        return self.pending.get(pending_id)

    def code(self, digest: str) -> AuthorizationCode | None:
        return self.codes.get(digest)

    def grant(self, grant_id: str | None) -> Grant | None:
        return self.grants.get(grant_id) if grant_id is not None else None

    def refresh_token(self, digest: str) -> RefreshToken | None:
        return self.refresh_tokens.get(digest)

    def session(self, session_id: str) -> Session | None:
        return self.sessions.get(session_id)

    def grant_of_session(self, session: Session | None) -> Grant | None:
        return self.grants.get(session.grant) if session is not None else None

    def grants_of(self, company: str | None = None, user: str | None = None) -> Iterator[Grant]:
        """The grants of ``company`` (every company when None) and ``user`` (every user)."""
        for grant in self.grants.values():
            if (company is None or grant.company == company) and (
                user is None or grant.user == user
            ):
                yield grant

    def sessions_of(self, company: str | None = None) -> Iterator[Session]:
        """The API sessions whose grant is of ``company`` (of any company when None)."""
        for session in self.sessions.values():
            grant = self.grants.get(session.grant)
            if grant is not None and (company is None or grant.company == company):
                yield session

    # the state file
    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "version": STATE_VERSION,
            "config": self.config.to_json(),
            "clock_offset": self.clock_offset,
            "applications": _json(self.applications),
            "companies": _json(self.companies),
            "pending": _json(self.pending),
            "codes": _json(self.codes),
            "grants": _json(self.grants),
            "refresh_tokens": _json(self.refresh_tokens),
            "sessions": _json(self.sessions),
            "records": {
                company: _json(collections) for company, collections in self.records.items()
            },
            "idempotency": _json(self.idempotency),
            "faults": [fault.to_json() for fault in self.faults],
            "counters": self.counters.to_json(),
            "sequence": self.sequence,
        }
        if self.signing_key:
            data["signingKey"] = self.signing_key
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Store:
        """A state file's content; raises ValueError when it is not one."""
        if not isinstance(data, Mapping) or data.get("version") != STATE_VERSION:
            raise ValueError("not an emulator state file")
        return cls(
            config=Config.from_json(data.get("config", {})),
            clock_offset=float(data.get("clock_offset", 0.0)),
            applications=_objects(Application, data.get("applications", {})),
            companies=_objects(Company, data.get("companies", {})),
            pending=_objects(PendingRequest, data.get("pending", {})),
            codes=_objects(AuthorizationCode, data.get("codes", {})),
            grants=_objects(Grant, data.get("grants", {})),
            refresh_tokens=_objects(RefreshToken, data.get("refresh_tokens", {})),
            sessions=_objects(Session, data.get("sessions", {})),
            records={
                company: _objects(Collection, collections)
                for company, collections in data.get("records", {}).items()
            },
            idempotency=_objects(IdempotencyEntry, data.get("idempotency", {})),
            faults=[Fault.from_json(item) for item in data.get("faults", [])],
            counters=Counters.from_json(data.get("counters", {})),
            sequence=int(data.get("sequence", 1000)),
            signing_key=data.get("signingKey"),
        )


def public(item: JsonObject) -> dict[str, Any]:
    """A copy of ``item``'s JSON object, safe to hand to a caller of the control API."""
    return copy.deepcopy(item.to_json())
