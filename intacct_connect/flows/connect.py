"""The authorization-code flow: start, consume the ``state``, complete the callback,
supersede older grants of the same Intacct user, purge old authorization requests.

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

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from intacct_connect import oauth, signals
from intacct_connect.conf import app_settings
from intacct_connect.connection_state import (
    UserLike,
    actor_of,
    mark_authorised,
    next_refresh_at,
    user_id_of,
)
from intacct_connect.exceptions import (
    AuthorizationDenied,
    OAuthStateError,
    TokenRequestError,
    TooManyConnectAttempts,
)
from intacct_connect.flows.common import (
    _clean_text,
    clean_entity_id,
    current_environment,
    sha256_hex,
    store_tokens,
)
from intacct_connect.models import (
    AWAITING_ACTION,
    Connection,
    ConnectionEvent,
    ConnectionStatus,
    EventKind,
    GrantType,
    OAuthFlow,
)


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
    Raises :class:`~intacct_connect.exceptions.TooManyConnectAttempts` when the user has
    started ``CONNECT_RATE_LIMIT`` requests within ``STATE_TTL`` (nothing is written).
    """
    if not session_key:
        raise ValueError("start_connect() needs a saved session (session_key is empty).")
    if not tenant_key:
        raise ValueError("start_connect() needs a tenant key.")
    if reconnect is not None and reconnect.tenant_key != tenant_key:
        raise ValueError("A connection can only be reconnected by its own tenant.")
    now = timezone.now()
    user_id = user_id_of(user)
    _check_connect_rate(user_id, sha256_hex(session_key), now)
    request = oauth.start_authorization()
    flow = OAuthFlow(
        state_hash=sha256_hex(request.state),
        session_key_hash=sha256_hex(session_key),
        user_id=user_id,
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


def _check_connect_rate(user_id: Any, session_key_hash: str, now: datetime) -> None:
    """At most ``CONNECT_RATE_LIMIT`` authorization requests per user (signed out: per
    browser session) within ``STATE_TTL``: together with :func:`purge_flows` this keeps
    the table bounded, whoever clicks Connect how often. Counted, not locked: two clicks
    in the same instant may both pass, which a limit of this kind tolerates."""
    limit = app_settings.CONNECT_RATE_LIMIT
    if limit <= 0:
        return
    window = timedelta(seconds=app_settings.STATE_TTL)
    mine = OAuthFlow.objects.filter(created_at__gt=now - window)
    mine = (
        mine.filter(user_id=user_id)
        if user_id is not None
        else mine.filter(user__isnull=True, session_key_hash=session_key_hash)
    )
    recent = list(mine.order_by("-created_at").values_list("created_at", flat=True)[:limit])
    if len(recent) < limit:
        return
    retry_after = max(1, math.ceil((recent[-1] + window - now).total_seconds()))
    raise TooManyConnectAttempts(
        f"{limit} connection attempts were started in the last "
        f"{app_settings.STATE_TTL} seconds; try again in {retry_after} seconds.",
        code="too_many_attempts",
        status_code=429,
        retry_after=retry_after,
    )


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
        mark_authorised(target, environment=current_environment(), actor=actor)
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
            status__in=(ConnectionStatus.ACTIVE, ConnectionStatus.ERROR, *AWAITING_ACTION),
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


def purge_flows(*, now: Any = None) -> int:
    """Delete expired or consumed authorization requests; returns how many."""
    now = now or timezone.now()
    deleted, _ = OAuthFlow.objects.filter(
        Q(expires_at__lte=now) | Q(consumed_at__isnull=False)
    ).delete()
    return deleted
