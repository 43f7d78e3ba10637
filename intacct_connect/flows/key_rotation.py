"""Key rotation: re-encrypt every stored token and PKCE verifier under the newest key."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Q

from intacct_connect import crypto
from intacct_connect.flows.connect import purge_flows
from intacct_connect.models import OAuthFlow, OAuthFlowQuerySet, Token, TokenQuerySet


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
