from __future__ import annotations

import logging

import pytest

from intacct_connect import logging_filters
from intacct_connect.logging_filters import MASK, RedactingFilter, redact


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Authorization: Bearer eyJabc.def.ghi", "eyJabc.def.ghi"),
        ("Basic ZGVtbzpzZWNyZXQ=", "ZGVtbzpzZWNyZXQ="),
        ("grant_type=refresh_token&refresh_token=rt-123&client_secret=s3c", "rt-123"),
        ("grant_type=refresh_token&refresh_token=rt-123&client_secret=s3c", "s3c"),
        ("code=abc123&code_verifier=verif-xyz", "abc123"),
        ("code=abc123&code_verifier=verif-xyz", "verif-xyz"),
        ('{"access_token": "at-999", "token_type": "Bearer"}', "at-999"),
        ("{'refresh_token': 'rt-888'}", "rt-888"),
        ("password=hunter2", "hunter2"),
    ],
)
def test_redact(text: str, secret: str) -> None:
    result = redact(text)
    assert secret not in result
    assert MASK in result


def test_redact_keeps_harmless_text() -> None:
    assert redact("GET /objects/vendor 200") == "GET /objects/vendor 200"


def test_filter_drops_debug_and_masks_the_rest(caplog: pytest.LogCaptureFixture) -> None:
    logging_filters.install()
    logger = logging.getLogger("requests_oauthlib.oauth2_session")
    with caplog.at_level(logging.DEBUG):
        logger.debug("Token: %s", {"access_token": "at-debug-secret"})
        logger.warning("Request body: %s", "refresh_token=rt-warning-secret&x=1")
    text = caplog.text
    assert "at-debug-secret" not in text
    assert "rt-warning-secret" not in text
    assert "Request body: refresh_token=[redacted]&x=1" in text


def test_install_is_idempotent() -> None:
    logging_filters.install()
    logging_filters.install()
    for name in logging_filters.GUARDED_LOGGERS:
        filters = [f for f in logging.getLogger(name).filters if isinstance(f, RedactingFilter)]
        assert len(filters) == 1


def test_broken_record_is_dropped() -> None:
    record = logging.LogRecord("oauthlib", logging.ERROR, __file__, 1, "%s %s", ("one",), None)
    assert RedactingFilter().filter(record) is False
