"""The emulator's behaviour switches: one frozen :class:`Config`, its defaults and the
validation of a change (:meth:`Emulator.configure`).

A change never edits a :class:`Config` in place: :meth:`Config.updated` returns a new one, so
a request that read ``state.config`` once sees one consistent set of switches.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: The allowed values of the switches that take one of a few words.
CHOICES: dict[str, tuple[str, ...]] = {
    "refresh_mode": ("none", "rotate", "reuse_detection"),
    "error_style": ("rfc", "intacct"),
    "rest_error_shape": ("top", "nested"),
    "expired_token_error": ("gw0040", "rest1206"),
}
POSITIVE_NUMBERS = ("access_token_ttl", "code_ttl", "retry_after")
LIMITS = ("concurrency_limit", "per_minute_limit")


@dataclass(frozen=True)
class Config:
    """Defaults of :meth:`Emulator.configure`. ``None`` disables a limit."""

    #: "none" (no rotation: the same refresh token is returned), "rotate" (a new refresh token
    #: each time, the old one dies) or "reuse_detection" (rotate; presenting a used refresh
    #: token revokes the whole grant, RFC 9700 section 4.14.2).
    refresh_mode: str = "reuse_detection"
    #: Seconds during which a rotated-away refresh token is still accepted (a new token set
    #: is issued, nothing is revoked), as some authorization servers allow; 0: never.
    refresh_grace_seconds: float = 0
    access_token_ttl: float = 21600
    #: Token-endpoint OAuth errors: "rfc" ({"error", "error_description"}) or "intacct"
    #: ({"ia::error": {...}}). Gateway errors (GW-00xx) always use the ia::error shape.
    error_style: str = "rfc"
    #: REST errors: "top" ({"ia::error": ..., "ia::meta": ...}) or "nested"
    #: ({"ia::result": {"ia::error": ...}, "ia::meta": ...}) as in Sage's OpenAPI documents.
    rest_error_shape: str = "top"
    #: A new consent by the same Intacct user for the same company supersedes earlier grants.
    supersede_grants: bool = True
    code_ttl: float = 600
    concurrency_limit: int | None = None
    per_minute_limit: int | None = None
    retry_after: float = 1
    #: An expired token answers 401 GW-0040 ("gw0040") or 400 REST-1206 ("rest1206").
    expired_token_error: str = "gw0040"  # noqa: S105 - not a password

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Config:
        """A state file's ``config`` object; missing switches take their defaults."""
        names = {item.name for item in dataclasses.fields(cls)}
        return cls(**{name: value for name, value in data.items() if name in names})

    def updated(self, **options: Any) -> Config:
        """A copy with ``options`` changed; raises ValueError naming a bad option."""
        names = {item.name for item in dataclasses.fields(self)}
        unknown = sorted(set(options) - names)
        if unknown:
            raise ValueError(f"Unknown emulator option(s): {', '.join(unknown)}")
        for name, allowed in CHOICES.items():
            if name in options and options[name] not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}")
        for name in POSITIVE_NUMBERS:
            if name in options and (
                not isinstance(options[name], int | float)
                or isinstance(options[name], bool)
                or options[name] <= 0
            ):
                raise ValueError(f"{name} must be a positive number")
        grace = options.get("refresh_grace_seconds", 0)
        if not isinstance(grace, int | float) or isinstance(grace, bool) or grace < 0:
            raise ValueError("refresh_grace_seconds must be a number >= 0")
        for name in LIMITS:
            value = options.get(name)
            if (
                name in options
                and value is not None
                and (not isinstance(value, int) or isinstance(value, bool) or value < 1)
            ):
                raise ValueError(f"{name} must be a positive integer or None")
        return dataclasses.replace(self, **options)


#: The switches and their defaults, as :meth:`Emulator.config` returns them.
DEFAULT_CONFIG: dict[str, Any] = Config().to_json()
