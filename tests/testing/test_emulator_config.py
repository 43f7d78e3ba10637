"""The behaviour switches (``config.py``): defaults, validation of a change, and the state
file's ``config`` object."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from intacct_connect.testing.emulator.config import DEFAULT_CONFIG, Config


def test_defaults_are_the_documented_ones() -> None:
    assert DEFAULT_CONFIG == Config().to_json()
    assert (
        DEFAULT_CONFIG.items()
        >= {
            "refresh_mode": "reuse_detection",
            "access_token_ttl": 21600,
            "error_style": "rfc",
            "rest_error_shape": "top",
            "supersede_grants": True,
            "code_ttl": 600,
            "concurrency_limit": None,
            "per_minute_limit": None,
            "retry_after": 1,
            "expired_token_error": "gw0040",
        }.items()
    )


def test_a_change_is_a_new_config() -> None:
    config = Config()
    changed = config.updated(refresh_mode="rotate", per_minute_limit=10)
    assert (changed.refresh_mode, changed.per_minute_limit) == ("rotate", 10)
    assert config.refresh_mode == "reuse_detection"  # unchanged: requests read it unlocked
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.refresh_mode = "none"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"nope": 1}, "Unknown emulator option(s): nope"),
        ({"refresh_mode": "sometimes"}, "refresh_mode must be one of"),
        ({"error_style": "xml"}, "error_style must be one of"),
        ({"access_token_ttl": 0}, "access_token_ttl must be a positive number"),
        ({"retry_after": True}, "retry_after must be a positive number"),
        ({"concurrency_limit": "2"}, "concurrency_limit must be a positive integer or None"),
        ({"per_minute_limit": 0}, "per_minute_limit must be a positive integer or None"),
    ],
)
def test_bad_changes_name_the_option(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Config().updated(**options)


def test_state_file_config_keeps_known_switches_and_defaults_the_rest() -> None:
    config = Config.from_json({"code_ttl": 30, "unknown": "dropped"})
    assert config == Config(code_ttl=30)
    assert Config.from_json(config.to_json()) == config
