"""Authenticated encryption of tokens at rest (AES-256-GCM from ``cryptography``).

Ciphertext format: ``v1:<key id>:<urlsafe-base64(nonce || ciphertext+tag)>``.

* Keys come from ``INTACCT_CONNECT["TOKEN_KEYS"]`` (newest first); the first key
  encrypts, every key can decrypt, so keys rotate without downtime.
* Each value is bound to its place (``associated data``: model, row, field), so a
  ciphertext copied from one connection's row to another's fails to decrypt.
* Decryption never returns ciphertext: a wrong key, a tampered value or a misplaced
  value raises :class:`~intacct_connect.exceptions.DecryptionError`.

Run ``python -m intacct_connect.crypto`` to print a new key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from intacct_connect.exceptions import DecryptionError

PREFIX = "v1"
NONCE_BYTES = 12


class KeyFormatError(ValueError):
    """A configured key is not 32 bytes of URL-safe base64."""


def generate_key() -> str:
    """Return a new random key in the format ``TOKEN_KEYS`` expects."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode("ascii")


def parse_key(key: str) -> bytes:
    """Decode one configured key, raising :class:`KeyFormatError` with the reason."""
    if not isinstance(key, str) or not key.strip():
        raise KeyFormatError("the key is empty")
    try:
        raw = base64.urlsafe_b64decode(key.strip().encode("ascii"))
    except (binascii.Error, ValueError, UnicodeEncodeError) as err:
        raise KeyFormatError("the key is not URL-safe base64") from err
    if len(raw) != 32:
        raise KeyFormatError(f"the key decodes to {len(raw)} bytes; 32 are required")
    return raw


def key_id(raw: bytes) -> str:
    """A short, non-secret identifier of a key (first 8 hex digits of its SHA-256)."""
    return hashlib.sha256(b"intacct-connect-key-id:" + raw).hexdigest()[:8]


def fingerprint(secret: str) -> str:
    """A short, non-secret fingerprint of a token, for support conversations."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True)
class Keyring:
    """Keys newest first; encrypts with the first, decrypts with whichever matches."""

    keys: tuple[bytes, ...]
    _by_id: dict[str, AESGCM] = field(default_factory=dict, repr=False, compare=False)

    def __repr__(self) -> str:  # never show key material
        return f"Keyring(key_ids={[key_id(k) for k in self.keys]})"

    @classmethod
    def from_strings(cls, keys: Sequence[str]) -> Keyring:
        if not keys:
            raise KeyFormatError("no keys are configured")
        raw = tuple(parse_key(k) for k in keys)
        ring = cls(raw)
        for k in raw:
            ring._by_id.setdefault(key_id(k), AESGCM(k))
        return ring

    @property
    def primary_id(self) -> str:
        return key_id(self.keys[0])

    def encrypt(self, plaintext: str, associated_data: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        aead = self._by_id[self.primary_id]
        sealed = aead.encrypt(nonce, plaintext.encode("utf-8"), associated_data.encode("utf-8"))
        body = base64.urlsafe_b64encode(nonce + sealed).decode("ascii")
        return f"{PREFIX}:{self.primary_id}:{body}"

    def key_id_of(self, ciphertext: str) -> str:
        parts = ciphertext.split(":")
        if len(parts) != 3 or parts[0] != PREFIX:
            raise DecryptionError("the stored value is not in intacct_connect's ciphertext format")
        return parts[1]

    def decrypt(self, ciphertext: str, associated_data: str) -> str:
        kid = self.key_id_of(ciphertext)
        aead = self._by_id.get(kid)
        if aead is None:
            raise DecryptionError(
                f"the value was encrypted with key {kid}, which is not in TOKEN_KEYS "
                f"(configured: {', '.join(self._by_id)})"
            )
        try:
            blob = base64.urlsafe_b64decode(ciphertext.split(":", 2)[2].encode("ascii"))
            plain = aead.decrypt(
                blob[:NONCE_BYTES], blob[NONCE_BYTES:], associated_data.encode("utf-8")
            )
        except (InvalidTag, binascii.Error, ValueError) as err:
            raise DecryptionError(
                "the value failed authentication: it was tampered with, or it belongs to "
                "another row or field"
            ) from err
        return plain.decode("utf-8")

    def needs_rotation(self, ciphertext: str) -> bool:
        return self.key_id_of(ciphertext) != self.primary_id


_cache: dict[tuple[str, ...], Keyring] = {}


def get_keyring() -> Keyring:
    """The keyring for the current ``TOKEN_KEYS`` (cached per key list)."""
    from intacct_connect.conf import app_settings
    from intacct_connect.exceptions import IntacctConfigurationError

    keys = app_settings.TOKEN_KEYS
    ring = _cache.get(keys)
    if ring is None:
        try:
            ring = Keyring.from_strings(keys)
        except KeyFormatError as err:
            raise IntacctConfigurationError(
                f"INTACCT_CONNECT['TOKEN_KEYS'] is not usable: {err}. "
                "Generate a key with `python -m intacct_connect.crypto`."
            ) from err
        _cache.clear()
        _cache[keys] = ring
    return ring


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m intacct_connect.crypto``: print one new key (``--help``: usage)."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m intacct_connect.crypto",
        description=(
            "Print a new token encryption key (32 random bytes, URL-safe base64) for "
            "INTACCT_CONNECT['TOKEN_KEYS']. Put it first in the list; keep the old keys "
            "after it until every token is re-encrypted (manage.py intacct_rotate_keys)."
        ),
    )
    parser.parse_args(argv)
    print(generate_key())  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
