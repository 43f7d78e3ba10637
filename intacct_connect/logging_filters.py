"""Keep tokens and secrets out of log records, even with every logger at DEBUG.

requests-oauthlib and oauthlib log request bodies, response bodies and whole token
dicts at DEBUG; requests-oauthlib's own ``DebugModeTokenFilter`` masks only
``Bearer`` headers. :func:`install` attaches :class:`RedactingFilter` to those
libraries' loggers when the app starts: their DEBUG records are dropped and every other
record has token-like values masked. Our own code never logs a token in the first place.
"""

from __future__ import annotations

import logging
import re

#: Loggers of third-party libraries that may log token material.
GUARDED_LOGGERS = (
    "requests_oauthlib",
    "requests_oauthlib.oauth2_session",
    "requests_oauthlib.oauth2_auth",
    "oauthlib",
    "oauthlib.oauth2",
    "oauthlib.oauth2.rfc6749.clients.base",
    "oauthlib.oauth2.rfc6749.parameters",
    "oauthlib.oauth2.rfc6749.clients.web_application",
    "urllib3.connectionpool",
)

_PATTERNS = (
    # Authorization: Bearer xyz / Basic xyz
    re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"),
    # key=value in query strings and form bodies
    re.compile(
        r"(?i)\b(access_token|refresh_token|id_token|client_secret|code_verifier|code|"
        r"password|token)=([^&\s'\"]+)"
    ),
    # "key": "value" in JSON and reprs of dicts
    re.compile(
        r"(?i)(['\"](?:access_token|refresh_token|id_token|client_secret|code_verifier|"
        r"code|password|token)['\"]\s*:\s*)(['\"])([^'\"]*)\2"
    ),
)
MASK = "[redacted]"


def redact(text: str) -> str:
    """Mask token-like values in ``text``."""
    text = _PATTERNS[0].sub(lambda m: f"{m.group(1)} {MASK}", text)
    text = _PATTERNS[1].sub(lambda m: f"{m.group(1)}={MASK}", text)
    return _PATTERNS[2].sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}{m.group(2)}", text)


class RedactingFilter(logging.Filter):
    """Drops third-party DEBUG records and masks token-like values in the rest."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno <= logging.DEBUG:
            return False
        try:
            message = record.getMessage()
        except Exception:  # a broken record: drop it rather than risk its args
            return False
        record.msg = redact(message)
        record.args = None
        return True


_FILTER = RedactingFilter()


def install() -> None:
    """Attach the filter to every guarded logger (idempotent)."""
    for name in GUARDED_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
