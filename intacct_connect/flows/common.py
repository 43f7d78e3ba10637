"""Helpers shared by the flows: text cleaning, the next-URL and entity-ID checks, the
environment new connections record, and :func:`store_tokens` (the one token write)."""

from __future__ import annotations

import hashlib
import unicodedata
from urllib.parse import unquote, urlsplit

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.debug import sensitive_variables

from intacct_connect import crypto, oauth
from intacct_connect.conf import app_settings
from intacct_connect.models import Connection, Environment, Token

#: Most characters kept from an Intacct error description shown to a user or stored.
MAX_ERROR_TEXT = 500


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
