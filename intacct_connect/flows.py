"""The business logic of connecting, reconnecting and disconnecting Intacct companies.

Plain functions that take plain arguments (no ``HttpRequest``): the views, the admin
actions and the management commands all call these. See ``docs/connect_flow.rst``.

Security properties (``docs/security.rst``):

* ``state`` is 256 random bits; only its SHA-256 is stored, with the PKCE verifier
  (encrypted), the session (hashed), the user and the tenant that started the flow.
* The callback consumes a flow with one conditional ``UPDATE … WHERE consumed_at IS NULL
  AND <bindings match> AND expires_at > now``: exactly one of two concurrent callbacks
  wins, on every database. Nothing is sent to the token endpoint before that succeeds.
* The redirect URI and token URL are the configured ones, recorded in the flow and
  checked again at the callback; the request's Host never plays a part.
* Token writes happen in a transaction with the connection row locked, and signals
  are sent after the commit.
"""

from __future__ import annotations

import hashlib
import logging
import time
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import unquote, urlsplit

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.debug import sensitive_variables

from intacct_connect import crypto, oauth, signals
from intacct_connect.client import IntacctClient
from intacct_connect.conf import app_settings

# Re-exported, so the public names stay flows.<name>: their home is connection_state.
from intacct_connect.connection_state import ClientCredentialsUser as ClientCredentialsUser
from intacct_connect.connection_state import UserLike, actor_of, next_refresh_at, user_id_of
from intacct_connect.connection_state import (
    client_credentials_username as client_credentials_username,
)
from intacct_connect.connection_state import mark_needs_reauth as mark_needs_reauth
from intacct_connect.connection_state import parse_username as parse_username
from intacct_connect.exceptions import (
    AuthorizationDenied,
    IntacctConnectError,
    OAuthStateError,
    TokenRequestError,
)
from intacct_connect.models import (
    Connection,
    ConnectionEvent,
    ConnectionStatus,
    Environment,
    EventKind,
    GrantType,
    OAuthFlow,
    OAuthFlowQuerySet,
    Token,
    TokenQuerySet,
)

logger = logging.getLogger(__name__)

#: Most characters kept from an Intacct error description shown to a user or stored.
MAX_ERROR_TEXT = 500


# --- small helpers -----------------------------------------------------------------------


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def current_environment() -> str:
    """The environment new connections record, from ``CLIENT_SCOPE``."""
    if app_settings.CLIENT_SCOPE == "non-production":
        return Environment.SANDBOX
    return Environment.PRODUCTION


def _clean_text(value: str, limit: int = MAX_ERROR_TEXT) -> str:
    """Printable text only, bounded: for error descriptions that came from a URL."""
    cleaned = "".join(ch for ch in value if unicodedata.category(ch)[0] != "C")
    return cleaned[:limit]


def safe_next_url(candidate: str | None, *, host: str, secure: bool) -> str:
    """``candidate`` if it is a same-site relative path, else ``""``.

    Stricter than Django's ``url_has_allowed_host_and_scheme`` alone: only a path
    starting with a single ``/`` survives (no scheme, no host, no backslash, no
    whitespace or control characters that browsers strip or reinterpret), also after
    percent-decoding.
    """
    if not candidate or len(candidate) > 2000:
        return ""
    # Check the value, its percent-decoded and its NFKC form: an intermediary that decodes
    # or normalises must not turn "/%2F%2Fevil.com" or "/" + FULLWIDTH SOLIDUS + "evil.com"
    # into "//evil.com".
    decoded = unquote(candidate)
    for form in (candidate, decoded, unicodedata.normalize("NFKC", decoded)):
        if any(ch.isspace() or ch == "\\" or unicodedata.category(ch)[0] == "C" for ch in form):
            return ""
        if not form.startswith("/") or form.startswith("//"):
            return ""
    if not url_has_allowed_host_and_scheme(candidate, allowed_hosts={host}, require_https=secure):
        return ""
    parts = urlsplit(candidate)
    if parts.scheme or parts.netloc:
        return ""
    return candidate


def clean_entity_id(value: str | None) -> str:
    """Validate an optional entity ID typed by a user (raises ``ValidationError``)."""
    value = (value or "").strip()
    if len(value) > 100:
        raise ValidationError("The entity ID is too long (100 characters at most).")
    if any(unicodedata.category(ch)[0] == "C" for ch in value):
        raise ValidationError("The entity ID contains control characters.")
    return value


# --- starting the authorization-code flow ----------------------------------------------


@dataclass(frozen=True)
class StartedFlow:
    """Where to send the browser."""

    authorize_url: str = field(repr=False)
    flow_id: Any


@sensitive_variables("session_key", "request")
def start_connect(
    *,
    session_key: str,
    user: UserLike,
    tenant_key: str,
    next_url: str = "",
    entity_id: str = "",
    reconnect: Connection | None = None,
) -> StartedFlow:
    """Create a pending authorization request and return the Intacct authorize URL.

    ``next_url`` must already have been checked with :func:`safe_next_url`;
    ``reconnect`` is the connection being re-authorised (kept: same primary key).
    """
    if not session_key:
        raise ValueError("start_connect() needs a saved session (session_key is empty).")
    if not tenant_key:
        raise ValueError("start_connect() needs a tenant key.")
    if reconnect is not None and reconnect.tenant_key != tenant_key:
        raise ValueError("A connection can only be reconnected by its own tenant.")
    request = oauth.start_authorization()
    now = timezone.now()
    flow = OAuthFlow(
        state_hash=sha256_hex(request.state),
        session_key_hash=sha256_hex(session_key),
        user_id=user_id_of(user),
        tenant_key=tenant_key,
        redirect_uri=app_settings.REDIRECT_URI,
        token_url=app_settings.TOKEN_URL,
        entity_id=clean_entity_id(entity_id),
        next_url=next_url,
        reconnect=reconnect,
        created_at=now,
        expires_at=now + timedelta(seconds=app_settings.STATE_TTL),
    )
    flow.code_verifier = request.code_verifier
    flow.save(force_insert=True)
    return StartedFlow(authorize_url=request.url, flow_id=flow.pk)


# --- the callback ------------------------------------------------------------------------


class StateProblem:
    """Why a callback's ``state`` was refused (the ``code`` of the OAuthStateError)."""

    MISSING = "state_missing"
    UNKNOWN = "state_unknown"
    EXPIRED = "state_expired"
    REPLAYED = "state_replayed"
    FOREIGN = "state_foreign"
    MISMATCH = "redirect_mismatch"
    NO_CODE = "code_missing"


_STATE_MESSAGES = {
    StateProblem.MISSING: "The response from Intacct carried no authorization request.",
    StateProblem.UNKNOWN: "This authorization request is unknown.",
    StateProblem.EXPIRED: "This authorization request has expired.",
    StateProblem.REPLAYED: "This authorization request was already used.",
    StateProblem.FOREIGN: "This authorization request was started in another browser session, "
    "by another user or for another account.",
    StateProblem.MISMATCH: "This authorization request was started with a different "
    "configuration of the Intacct application.",
    StateProblem.NO_CODE: "The response from Intacct carried no authorization code.",
}


def _state_error(problem: str) -> OAuthStateError:
    return OAuthStateError(_STATE_MESSAGES[problem], code=problem)


@sensitive_variables("state", "session_key")
def consume_flow(
    *, state: str, session_key: str | None, user: UserLike, tenant_key: str | None
) -> OAuthFlow:
    """Atomically consume the flow named by ``state`` if it belongs to this caller.

    One conditional UPDATE checks every binding and marks the flow consumed, so two
    concurrent callbacks cannot both win (SQLite and PostgreSQL alike). On failure the
    flow is left untouched (a foreign request cannot burn a victim's flow) and an
    :class:`OAuthStateError` with a precise ``code`` is raised.
    """
    if not state:
        raise _state_error(StateProblem.MISSING)
    if len(state) > 200:
        raise _state_error(StateProblem.UNKNOWN)
    state_hash = sha256_hex(state)
    now = timezone.now()
    session_hash = sha256_hex(session_key) if session_key else ""
    user_id = user_id_of(user)
    bound = Q(
        state_hash=state_hash,
        consumed_at__isnull=True,
        expires_at__gt=now,
        session_key_hash=session_hash,
        tenant_key=tenant_key or "",
    )
    bound &= Q(user__isnull=True) if user_id is None else Q(user_id=user_id)
    won = OAuthFlow.objects.filter(bound).update(consumed_at=now)
    flow = OAuthFlow.objects.filter(state_hash=state_hash).first()
    if won == 1 and flow is not None:
        return flow
    # Lost: say why (the flow row itself is unchanged).
    if flow is None:
        raise _state_error(StateProblem.UNKNOWN)
    if flow.consumed_at is not None:
        raise _state_error(StateProblem.REPLAYED)
    if (
        not session_hash
        or flow.session_key_hash != session_hash
        or flow.user_id != user_id
        or flow.tenant_key != (tenant_key or "")
    ):
        raise _state_error(StateProblem.FOREIGN)
    if flow.expires_at <= now:
        raise _state_error(StateProblem.EXPIRED)
    raise _state_error(StateProblem.REPLAYED)


def is_sender_id_problem(code: str | None, description: str | None = None) -> bool:
    """Whether an Intacct error means the site's Web Services sender ID is not authorised
    for the company (Sage: add it on the Company Security tab, or consent as an admin)."""
    text = f"{code or ''} {description or ''}".lower()
    return "sender" in text or (code or "").upper() == "GW-0011"


@dataclass(frozen=True)
class CallbackResult:
    connection: Connection
    created: bool
    next_url: str
    superseded: tuple[int, ...] = ()


@sensitive_variables("code", "verifier", "token_set", "params", "state", "session_key")
def complete_callback(
    params: Mapping[str, str],
    *,
    session_key: str | None,
    user: UserLike,
    tenant_key: str | None,
) -> CallbackResult:
    """Finish the authorization-code flow from the callback's query parameters.

    Raises :class:`OAuthStateError` (state problems, checked before any token call),
    :class:`AuthorizationDenied` (``error=`` from Intacct, ``code`` holds the OAuth
    error) and :class:`TokenRequestError` subclasses (the token endpoint failed).
    """
    state = params.get("state") or ""
    error = params.get("error") or ""
    try:
        flow = consume_flow(state=state, session_key=session_key, user=user, tenant_key=tenant_key)
    except OAuthStateError:
        if error:  # a refusal that cannot be tied to a request of this user: still a refusal
            raise _denied(error, params.get("error_description") or "") from None
        raise
    if error:
        raise _denied(error, params.get("error_description") or "")
    if flow.redirect_uri != app_settings.REDIRECT_URI or flow.token_url != app_settings.TOKEN_URL:
        raise _state_error(StateProblem.MISMATCH)
    code = params.get("code") or ""
    if not code:
        raise _state_error(StateProblem.NO_CODE)
    verifier = flow.code_verifier
    token_set = oauth.exchange_code(code, verifier)
    if not token_set.company_id or not token_set.user_id:
        raise TokenRequestError(
            "The access token does not name the Intacct company and user (claims cnyId, userId)."
        )
    try:
        return _save_authorization(flow, token_set, actor=actor_of(user))
    except IntegrityError:
        # A concurrent callback of another flow created the same connection first:
        # this one now finds it and updates it in place.
        return _save_authorization(flow, token_set, actor=actor_of(user))


def _denied(error: str, description: str) -> AuthorizationDenied:
    return AuthorizationDenied(
        _clean_text(description) or None, code=_clean_text(error, 100) or "access_denied"
    )


@sensitive_variables("token_set")
def _save_authorization(
    flow: OAuthFlow, token_set: oauth.TokenSet, *, actor: UserLike
) -> CallbackResult:
    company_id = token_set.company_id
    user_id = token_set.user_id
    with transaction.atomic():
        target: Connection | None = None
        same = (
            Connection.objects.filter(
                tenant_key=flow.tenant_key,
                company_id=company_id,
                intacct_user_id=user_id,
                grant_type=GrantType.AUTHORIZATION_CODE,
            )
            .locked(no_key=True)
            .first()
        )
        if same is not None:
            target = same
        elif flow.reconnect_id is not None:
            reconnect = Connection.objects.filter(pk=flow.reconnect_id).locked(no_key=True).first()
            if reconnect is not None and reconnect.company_id == company_id:
                target = reconnect  # same company, other Intacct user: keep the identity
        created = target is None
        if target is None:
            target = Connection(
                tenant_key=flow.tenant_key,
                company_id=company_id,
                grant_type=GrantType.AUTHORIZATION_CODE,
            )
        target.intacct_user_id = user_id
        target.entity_id = flow.entity_id or token_set.entity_id or target.entity_id
        target.environment = current_environment()
        target.status = ConnectionStatus.ACTIVE
        target.last_error_code = ""
        target.last_error_message = ""
        target.last_error_at = None
        target.refresh_failures = 0
        if user_id_of(actor) is not None:
            target.connected_by = actor  # type: ignore[assignment]
        name = token_set.claims.get("cnyName") or token_set.claims.get("companyName")
        if isinstance(name, str) and name:
            target.company_name = name[:200]
        target.next_refresh_at = next_refresh_at(token_set.expires_at)
        target.save()
        store_tokens(target, token_set)
        kind = EventKind.CONNECTED if created else EventKind.RECONNECTED
        ConnectionEvent.log(
            target,
            kind,
            f"Authorised by Intacct user {user_id} of company {company_id}.",
            actor=actor_of(actor),
        )
        superseded = _supersede_others(target)
        signal = signals.connection_created if created else signals.connection_reconnected
        signals.send_on_commit(signal, connection=target, actor=actor_of(actor))
    return CallbackResult(
        connection=target, created=created, next_url=flow.next_url, superseded=superseded
    )


def _supersede_others(connection: Connection) -> tuple[int, ...]:
    """Intacct keeps one grant per (Intacct user, company): mark the older ones superseded."""
    others = list(
        Connection.objects.filter(
            company_id=connection.company_id,
            intacct_user_id=connection.intacct_user_id,
            grant_type=GrantType.AUTHORIZATION_CODE,
            environment=connection.environment,
            status__in=(
                ConnectionStatus.ACTIVE,
                ConnectionStatus.NEEDS_REAUTH,
                ConnectionStatus.ERROR,
            ),
        )
        .exclude(pk=connection.pk)
        .locked(no_key=True)
    )
    for other in others:
        other.status = ConnectionStatus.SUPERSEDED
        other.record_error(
            "superseded",
            f"Intacct user {connection.intacct_user_id} authorised this company again for "
            "another connection; Intacct keeps only the newest grant.",
        )
        other.next_refresh_at = None
        other.save(
            update_fields=[
                "status",
                "last_error_code",
                "last_error_message",
                "last_error_at",
                "next_refresh_at",
                "updated_at",
            ]
        )
        ConnectionEvent.log(
            other,
            EventKind.SUPERSEDED,
            f"Superseded by connection {connection.pk}: the same Intacct user authorised "
            "the company again.",
            error_code="superseded",
        )
        signals.send_on_commit(
            signals.connection_superseded, connection=other, superseded_by=connection
        )
    return tuple(o.pk for o in others)


@sensitive_variables("token_set")
def store_tokens(connection: Connection, token_set: oauth.TokenSet) -> Token:
    """Write a fresh token set for ``connection`` (caller holds the transaction and lock).

    Bumps ``Token.version`` so a refresh that started from the previous tokens cannot
    overwrite these (fencing).
    """
    token = Token.objects.filter(pk=connection.pk).first()
    if token is None:
        token = Token(connection=connection, version=1)
    else:
        token.version += 1
    token.access_token = token_set.access_token
    token.refresh_token = token_set.refresh_token or ""
    token.token_type = token_set.token_type or "Bearer"
    token.scope = token_set.scope[:255]
    token.expires_at = token_set.expires_at
    token.last_refreshed_at = timezone.now()
    token.fingerprint = crypto.fingerprint(token_set.access_token)
    token.save()
    return token


# --- client credentials ------------------------------------------------------------------


@sensitive_variables("token_set")
def create_client_credentials_connection(
    *, tenant_key: str, username: str, actor: UserLike = None
) -> Connection:
    """Connect a company server-to-server (no browser) as a Web Services user.

    Creates the connection, or updates the tenant's existing one for the same user,
    company and entity in place. Raises ``ValidationError`` for a malformed username
    and the :class:`TokenRequestError` family when Intacct refuses.
    """
    if not tenant_key or not tenant_key.strip():
        raise ValidationError("A tenant key is required.")
    tenant_key = tenant_key.strip()
    if len(tenant_key) > 255:
        raise ValidationError("The tenant key is limited to 255 characters.")
    who = parse_username(username)
    token_set = oauth.client_credentials(who.username)
    company_id = token_set.company_id or who.company_id
    user_id = token_set.user_id or who.user_id
    if company_id.lower() != who.company_id.lower():
        raise TokenRequestError(
            f"Intacct issued a token for company {company_id}, not {who.company_id}."
        )
    with transaction.atomic():
        existing = (
            Connection.objects.filter(
                tenant_key=tenant_key,
                company_id=company_id,
                intacct_user_id=user_id,
                entity_id=who.entity_id,
                grant_type=GrantType.CLIENT_CREDENTIALS,
            )
            .locked(no_key=True)
            .first()
        )
        created = existing is None
        conn = existing or Connection(
            tenant_key=tenant_key,
            company_id=company_id,
            intacct_user_id=user_id,
            entity_id=who.entity_id,
            grant_type=GrantType.CLIENT_CREDENTIALS,
        )
        conn.environment = current_environment()
        conn.status = ConnectionStatus.ACTIVE
        conn.last_error_code = ""
        conn.last_error_message = ""
        conn.last_error_at = None
        conn.refresh_failures = 0
        if user_id_of(actor) is not None:
            conn.connected_by = actor  # type: ignore[assignment]
        conn.next_refresh_at = next_refresh_at(token_set.expires_at)
        conn.save()
        store_tokens(conn, token_set)
        ConnectionEvent.log(
            conn,
            EventKind.CONNECTED if created else EventKind.RECONNECTED,
            f"Client-credentials token issued for Web Services user {user_id}.",
            actor=actor_of(actor),
        )
        signal = signals.connection_created if created else signals.connection_reconnected
        signals.send_on_commit(signal, connection=conn, actor=actor_of(actor))
    return conn


def reconnect_client_credentials(connection: Connection, *, actor: UserLike = None) -> Connection:
    """Obtain a new client-credentials token for an existing connection (same pk)."""
    if connection.grant_type != GrantType.CLIENT_CREDENTIALS:
        raise ValueError("Only client-credentials connections reconnect without a browser.")
    return create_client_credentials_connection(
        tenant_key=connection.tenant_key,
        username=client_credentials_username(connection),
        actor=actor,
    )


# --- disconnect, needs re-auth -------------------------------------------------------------


@dataclass(frozen=True)
class DisconnectResult:
    connection: Connection
    revoked_at_intacct: bool
    error: str = ""


@sensitive_variables("secret")
def disconnect(connection: Connection | int, *, actor: UserLike = None) -> DisconnectResult:
    """Revoke the connection's grant at Intacct, then delete its tokens and mark it revoked.

    Local state is cleaned even when Intacct cannot be reached or refuses; the failure
    is recorded as an event and returned. Intacct revokes every token of the same
    Intacct user and company (the whole grant).
    """
    pk = connection.pk if isinstance(connection, Connection) else connection
    conn = Connection.objects.get(pk=pk)
    secret = ""
    try:
        token = Token.objects.filter(pk=pk).first()
        if token is not None:
            secret = token.refresh_token or token.access_token
    except IntacctConnectError as err:  # undecryptable: nothing can be revoked remotely
        error = f"The stored token could not be decrypted ({type(err).__name__})."
    else:
        error = "" if secret else "No token was stored, so there was nothing to revoke."
    revoked = False
    error_code = ""
    if secret and conn.status != ConnectionStatus.SUPERSEDED:
        try:
            oauth.revoke(secret)
            revoked = True
        except IntacctConnectError as err:
            error = _clean_text(str(err))
            error_code = (err.code or err.error_id or type(err).__name__)[:100]
    elif secret:
        # A superseded grant is dead already; revoking its token would revoke the
        # newer grant of the same Intacct user and company (Intacct revokes the pool).
        error = "Not revoked at Intacct: the grant had already been superseded."
    secret = ""
    with transaction.atomic():
        conn = Connection.objects.filter(pk=pk).locked(no_key=True).get()
        Token.objects.filter(pk=pk).delete()
        OAuthFlow.objects.filter(reconnect=conn, consumed_at__isnull=True).delete()
        conn.status = ConnectionStatus.REVOKED
        conn.next_refresh_at = None
        if revoked:
            conn.last_error_code = ""
            conn.last_error_message = ""
            conn.last_error_at = None
        elif error_code:
            conn.record_error(error_code, error)
        conn.save()
        if revoked:
            ConnectionEvent.log(
                conn, EventKind.REVOKED, "Grant revoked at Intacct.", actor=actor_of(actor)
            )
        ConnectionEvent.log(
            conn,
            EventKind.DISCONNECTED,
            "Disconnected; tokens deleted." + ("" if revoked else f" {error}".rstrip()),
            error_code=error_code,
            actor=actor_of(actor),
        )
        signals.send_on_commit(
            signals.connection_revoked,
            connection=conn,
            actor=actor_of(actor),
            revoked_at_intacct=revoked,
        )
    return DisconnectResult(connection=conn, revoked_at_intacct=revoked, error=error)


# --- listing -------------------------------------------------------------------------------


def connections_for_tenant(tenant_key: str) -> QuerySet[Connection]:
    """The tenant's connections with their token metadata (one query; no token values)."""
    return (
        Connection.objects.for_tenant(tenant_key)
        .select_related("token")
        .defer("token__access_token", "token__refresh_token")
        .order_by("company_id", "entity_id", "pk")
    )


# --- the default entity and the company name (read from Intacct) -------------------------

#: Most entities read for the "Default entity" choice (pages of 1000 rows).
MAX_ENTITY_PAGES = 5
#: Sage's documented company preferences object: ``GET /objects/company-config/
#: company-preference/setup`` (spec/company-configuration.json, operation
#: ``get-company-config-company-preference``) carries the company's ``id`` and ``name``.
COMPANY_PREFERENCE = ("company-config/company-preference", "setup")


@dataclass(frozen=True)
class EntityChoice:
    """One entity of a multi-entity company, as Intacct lists it."""

    entity_id: str
    name: str

    @property
    def label(self) -> str:
        return f"{self.entity_id} ({self.name})" if self.name else self.entity_id


def company_entities(connection: Connection) -> list[EntityChoice]:
    """The company's active entities, read from Intacct at the top level (sorted by ID).

    Raises the :class:`~intacct_connect.exceptions.IntacctConnectError` family when
    Intacct cannot be reached or refuses. An empty list means a single-entity company.
    """
    with IntacctClient(connection, entity_id="") as client:
        rows = list(
            client.query(
                "company-config/entity",
                ["id", "name", "status"],
                order_by=[{"id": "asc"}],
                max_pages=MAX_ENTITY_PAGES,
            )
        )
    choices: dict[str, EntityChoice] = {}
    for row in rows:
        entity_id = str(row.get("id") or "").strip()
        if not entity_id or str(row.get("status") or "active").lower() != "active":
            continue
        choices.setdefault(
            entity_id, EntityChoice(entity_id, _clean_text(str(row.get("name") or ""), 200))
        )
    return list(choices.values())


def set_default_entity(
    connection: Connection | int,
    entity_id: str,
    *,
    actor: UserLike = None,
    choices: list[EntityChoice] | None = None,
) -> Connection:
    """Make ``entity_id`` (blank: top level) the connection's default entity.

    The choice is checked against the entities Intacct lists (``choices``, or read with
    :func:`company_entities`) before anything is written; an unknown, malformed or hostile
    value raises ``ValidationError`` and changes nothing. Client-credentials connections
    keep the entity of their Web Services username (``ValueError``). The write is one
    update of the locked row, so no half-written state is possible.
    """
    pk = connection.pk if isinstance(connection, Connection) else connection
    conn = connection if isinstance(connection, Connection) else Connection.objects.get(pk=pk)
    if conn.grant_type == GrantType.CLIENT_CREDENTIALS:
        raise ValueError(
            "A client-credentials connection's entity is part of its Web Services username."
        )
    entity_id = clean_entity_id(entity_id)
    if entity_id:
        known = company_entities(conn) if choices is None else choices
        if entity_id not in {choice.entity_id for choice in known}:
            raise ValidationError(
                "%(entity)s is not an active entity of company %(company)s.",
                params={"entity": entity_id[:100], "company": conn.company_id},
                code="unknown_entity",
            )
    with transaction.atomic():
        locked = Connection.objects.filter(pk=pk).locked(no_key=True).get()
        if locked.entity_id != entity_id:
            locked.entity_id = entity_id
            locked.save(update_fields=["entity_id", "updated_at"])
            logger.info(
                "Connection %s: default entity set to %s by user %s.",
                pk,
                entity_id or "top level",
                user_id_of(actor),
            )
    if isinstance(connection, Connection):
        connection.entity_id = entity_id
    return locked


def fill_company_name(connection: Connection) -> str:
    """Read the company's name from Intacct and store it; returns the name ("" if unknown).

    Best effort, for right after a connect: any failure is logged (its type only, no
    secret) and leaves the connection as it was. Real Intacct does not put the name in its
    tokens, so this is where ``company_name`` comes from.
    """
    try:
        with IntacctClient(connection, entity_id="") as client:
            data = client.request(
                "GET", f"/objects/{COMPANY_PREFERENCE[0]}/{COMPANY_PREFERENCE[1]}"
            ).data
    except Exception as err:  # connecting must never fail because of this
        logger.warning(
            "Could not read the company name of connection %s from Intacct (%s).",
            connection.pk,
            type(err).__name__,
        )
        return connection.company_name
    name = _company_name_of(data)
    if name and name != connection.company_name:
        connection.company_name = name
        Connection.objects.filter(pk=connection.pk).update(
            company_name=name, updated_at=timezone.now()
        )
    return connection.company_name


def _company_name_of(data: Any) -> str:
    """``name`` of the company preferences answer (inside ``ia::result``, or beside it as in
    Sage's published example)."""
    if not isinstance(data, dict):
        return ""
    result = data.get("ia::result")
    for source in (result, data):
        if isinstance(source, list) and source:
            source = source[0]
        if isinstance(source, dict) and isinstance(source.get("name"), str):
            name = _clean_text(source["name"], 200).strip()
            if name:
                return name
    return ""


def purge_flows(*, now: Any = None) -> int:
    """Delete expired or consumed authorization requests; returns how many."""
    now = now or timezone.now()
    deleted, _ = OAuthFlow.objects.filter(
        Q(expires_at__lte=now) | Q(consumed_at__isnull=False)
    ).delete()
    return deleted


# --- key rotation --------------------------------------------------------------------------


@dataclass
class RotationProgress:
    total: int
    done: int = 0
    conflicts: int = 0
    flows_purged: int = 0
    rounds: int = 0


def _old_key_q(field_name: str, primary_prefix: str, *, optional: bool) -> Q:
    under_old = ~Q(**{f"{field_name}__startswith": primary_prefix})
    if optional:
        under_old &= ~Q(**{field_name: ""})
    return under_old


def rows_under_old_keys() -> tuple[TokenQuerySet, OAuthFlowQuerySet]:
    """Token and flow rows holding ciphertext not encrypted with the newest key."""
    prefix = f"{crypto.PREFIX}:{crypto.get_keyring().primary_id}:"
    tokens = Token.objects.filter(
        _old_key_q("access_token", prefix, optional=False)
        | _old_key_q("refresh_token", prefix, optional=True)
    )
    flows = OAuthFlow.objects.filter(_old_key_q("code_verifier", prefix, optional=False))
    return tokens, flows


def _rewrap(model_instance: Any, field_name: str, ring: crypto.Keyring) -> tuple[str, str] | None:
    """(old ciphertext, new ciphertext) for one field, or None if already current/empty."""
    model_field = model_instance._meta.get_field(field_name)
    old = model_instance.__dict__.get(field_name)
    if not old or not ring.needs_rotation(old):
        return None
    aad = model_field.associated_data(model_instance)
    return str(old), ring.encrypt(ring.decrypt(old, aad), aad)


def _claim(qs: TokenQuerySet | OAuthFlowQuerySet, batch_size: int) -> list[Any]:
    return list(qs.locked(skip_locked=True, no_key=True).order_by("pk")[:batch_size])


def rotate_keys(
    *,
    batch_size: int = 500,
    on_progress: Callable[[RotationProgress], None] | None = None,
    max_idle_seconds: float = 60.0,
) -> RotationProgress:
    """Re-encrypt every stored token and PKCE verifier under the newest key.

    Safe while the site runs and refreshes tokens:

    * each batch is claimed with ``SELECT … FOR NO KEY UPDATE SKIP LOCKED`` on PostgreSQL
      (rows locked by a refresh are skipped and retried in a later round);
    * each row is written with a compare-and-swap on its old ciphertext and ``version``,
      so a token refreshed in between is never overwritten (the new one is already under
      the newest key); the plaintext, ``version`` and ``updated_at`` do not change;
    * it loops until no row under an old key remains (or nothing progresses for
      ``max_idle_seconds``, when it raises ``TimeoutError``).
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    ring = crypto.get_keyring()
    progress = RotationProgress(total=0)
    progress.flows_purged = purge_flows()
    tokens, flows = rows_under_old_keys()
    progress.total = tokens.count() + flows.count()
    if on_progress:
        on_progress(progress)
    idle_since: float | None = None
    while True:
        tokens, flows = rows_under_old_keys()
        if not tokens.exists() and not flows.exists():
            break
        progress.rounds += 1
        changed = 0
        with transaction.atomic():
            for token in _claim(tokens, batch_size):
                changed += _rotate_token(token, ring, progress)
        with transaction.atomic():
            for flow in _claim(flows, batch_size):
                changed += _rotate_flow(flow, ring, progress)
        if on_progress:
            on_progress(progress)
        if changed:
            idle_since = None
            continue
        idle_since = idle_since or time.monotonic()
        if time.monotonic() - idle_since > max_idle_seconds:
            raise TimeoutError(
                "Some rows stayed locked or kept changing for "
                f"{max_idle_seconds:.0f} s; run the command again."
            )
        time.sleep(0.05)
    return progress


def _rotate_token(token: Token, ring: crypto.Keyring, progress: RotationProgress) -> int:
    updates: dict[str, str] = {}
    match: dict[str, Any] = {"pk": token.pk, "version": token.version}
    for name in ("access_token", "refresh_token"):
        current = token.__dict__.get(name) or ""
        match[name] = str(current)
        rewrapped = _rewrap(token, name, ring)
        if rewrapped is not None:
            updates[name] = rewrapped[1]
    if not updates:
        return 0
    written = Token.objects.filter(**match).update(**updates)
    if written:
        progress.done += 1
    else:
        progress.conflicts += 1  # refreshed meanwhile: already under the newest key
    return 1


def _rotate_flow(flow: OAuthFlow, ring: crypto.Keyring, progress: RotationProgress) -> int:
    rewrapped = _rewrap(flow, "code_verifier", ring)
    if rewrapped is None:
        return 0
    written = OAuthFlow.objects.filter(pk=flow.pk, code_verifier=rewrapped[0]).update(
        code_verifier=rewrapped[1]
    )
    if written:
        progress.done += 1
    else:
        progress.conflicts += 1
    return 1


def token_of(connection: Connection) -> Token | None:
    """The connection's token row (metadata), or None when it has none."""
    try:
        return connection.token
    except Token.DoesNotExist:
        return None
