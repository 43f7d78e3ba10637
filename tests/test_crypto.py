from __future__ import annotations

import base64
import subprocess
import sys

import pytest
from django.test import override_settings

from intacct_connect import crypto
from intacct_connect.exceptions import DecryptionError, IntacctConfigurationError
from tests.settings import INTACCT_CONNECT, TEST_OLD_TOKEN_KEY, TEST_TOKEN_KEY

AAD = "intacct_connect.token:1:access_token"


def ring(*keys: str) -> crypto.Keyring:
    return crypto.Keyring.from_strings(keys)


def test_round_trip_and_format() -> None:
    r = ring(TEST_TOKEN_KEY)
    ct = r.encrypt("secret-value", AAD)
    assert ct.startswith(f"v1:{r.primary_id}:")
    assert "secret-value" not in ct
    assert r.decrypt(ct, AAD) == "secret-value"


def test_each_encryption_uses_a_fresh_nonce() -> None:
    r = ring(TEST_TOKEN_KEY)
    assert r.encrypt("x", AAD) != r.encrypt("x", AAD)


def test_wrong_key_raises_never_returns_ciphertext() -> None:
    ct = ring(TEST_TOKEN_KEY).encrypt("secret-value", AAD)
    with pytest.raises(DecryptionError, match="not in TOKEN_KEYS"):
        ring(crypto.generate_key()).decrypt(ct, AAD)


def test_same_key_id_but_forged_body_raises() -> None:
    r = ring(TEST_TOKEN_KEY)
    ct = r.encrypt("secret-value", AAD)
    prefix, kid, body = ct.split(":")
    raw = bytearray(base64.urlsafe_b64decode(body))
    raw[-1] ^= 1
    forged = f"{prefix}:{kid}:{base64.urlsafe_b64encode(bytes(raw)).decode()}"
    with pytest.raises(DecryptionError, match="failed authentication"):
        r.decrypt(forged, AAD)


def test_value_bound_to_its_place() -> None:
    r = ring(TEST_TOKEN_KEY)
    ct = r.encrypt("secret-value", AAD)
    with pytest.raises(DecryptionError):
        r.decrypt(ct, "intacct_connect.token:2:access_token")
    with pytest.raises(DecryptionError):
        r.decrypt(ct, "intacct_connect.token:1:refresh_token")


@pytest.mark.parametrize("bad", ["", "plain text", "v2:abc:def", "v1:only-two", "v1:a:b:c"])
def test_not_our_format_raises(bad: str) -> None:
    with pytest.raises(DecryptionError):
        ring(TEST_TOKEN_KEY).decrypt(bad, AAD)


def test_old_key_decrypts_and_needs_rotation() -> None:
    old = ring(TEST_OLD_TOKEN_KEY)
    both = ring(TEST_TOKEN_KEY, TEST_OLD_TOKEN_KEY)
    ct = old.encrypt("v", AAD)
    assert both.decrypt(ct, AAD) == "v"
    assert both.needs_rotation(ct)
    assert not both.needs_rotation(both.encrypt("v", AAD))


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("", "empty"),
        ("not base64 !!", "base64"),
        (base64.urlsafe_b64encode(b"short").decode(), "5 bytes"),
    ],
)
def test_parse_key_rejects(key: str, reason: str) -> None:
    with pytest.raises(crypto.KeyFormatError, match=reason):
        crypto.parse_key(key)


def test_generate_key_is_valid_and_random() -> None:
    a, b = crypto.generate_key(), crypto.generate_key()
    assert a != b
    assert len(crypto.parse_key(a)) == 32


def test_repr_shows_key_ids_only() -> None:
    r = ring(TEST_TOKEN_KEY, TEST_OLD_TOKEN_KEY)
    text = repr(r)
    assert TEST_TOKEN_KEY not in text
    assert TEST_OLD_TOKEN_KEY not in text
    assert r.primary_id in text


def test_fingerprint_is_short_and_stable() -> None:
    assert crypto.fingerprint("abc") == crypto.fingerprint("abc")
    assert len(crypto.fingerprint("abc")) == 12
    assert "abc" not in crypto.fingerprint("abc")


def test_get_keyring_follows_settings() -> None:
    first = crypto.get_keyring()
    assert first.primary_id == crypto.key_id(crypto.parse_key(TEST_TOKEN_KEY))
    with override_settings(INTACCT_CONNECT={**INTACCT_CONNECT, "TOKEN_KEYS": [TEST_OLD_TOKEN_KEY]}):
        assert crypto.get_keyring().primary_id == crypto.key_id(
            crypto.parse_key(TEST_OLD_TOKEN_KEY)
        )
    assert crypto.get_keyring().primary_id == first.primary_id


@pytest.mark.parametrize("keys", [[], ["garbage"]])
def test_get_keyring_unusable_keys_is_configuration_error(keys: list[str]) -> None:
    with (
        override_settings(INTACCT_CONNECT={**INTACCT_CONNECT, "TOKEN_KEYS": keys}),
        pytest.raises(IntacctConfigurationError, match="TOKEN_KEYS"),
    ):
        crypto.get_keyring()


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "intacct_connect.crypto", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_cli_prints_one_new_key() -> None:
    result = run_cli()
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    assert len(crypto.parse_key(lines[0])) == 32
    assert run_cli().stdout != result.stdout


def test_cli_help_prints_usage_not_a_key(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: python -m intacct_connect.crypto")
    assert "TOKEN_KEYS" in result.stdout
    with pytest.raises(SystemExit) as exit_info:  # the same in-process, via main()
        crypto.main(["-h"])
    assert exit_info.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_cli_rejects_unknown_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_cli("--count", "2")
    assert result.returncode == 2
    assert "unrecognized arguments: --count 2" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert crypto.main([]) == 0
    assert len(crypto.parse_key(capsys.readouterr().out.strip())) == 32
