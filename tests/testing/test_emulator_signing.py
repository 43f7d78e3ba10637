"""The token-signing key (``signing.py``)."""

from __future__ import annotations

import time

import jwt

from intacct_connect.testing.emulator.signing import ISSUER, REQUIRED_CLAIMS, Signer


def claims(**overrides: object) -> dict[str, object]:
    now = int(time.time())
    values: dict[str, object] = {
        "iss": ISSUER,
        "iat": now,
        "exp": now + 60,
        "cnyId": "DEMO-CO",
        "userId": "admin",
        "sessionId": "s-1",
        "clientId": "demo-client.app.sage.com",
    }
    values.update(overrides)
    return values


def test_signs_and_decodes_its_own_tokens() -> None:
    signer = Signer()
    token = signer.sign(claims())
    assert jwt.get_unverified_header(token) == {"alg": "RS256", "kid": signer.kid, "typ": "JWT"}
    assert signer.decode(token) == claims() | {"iat": signer.decode(token)["iat"]}  # type: ignore[index]


def test_expiry_is_left_to_the_caller() -> None:
    signer = Signer()
    assert signer.decode(signer.sign(claims(exp=1))) is not None


def test_refuses_other_keys_issuers_and_missing_claims() -> None:
    signer = Signer()
    assert Signer().decode(signer.sign(claims())) is None
    assert signer.decode(signer.sign(claims(iss="https://elsewhere.example.com"))) is None
    for name in REQUIRED_CLAIMS:
        assert signer.decode(signer.sign(claims(**{name: ""}))) is None, name
    assert signer.decode("not-a-jwt") is None


def test_the_pem_round_trips_with_the_same_public_key() -> None:
    signer = Signer()
    again = Signer(signer.pem)
    assert again.kid == signer.kid
    assert again.public_jwk == signer.public_jwk
    assert "d" not in signer.public_jwk  # the JWKS carries the public half only
    assert again.decode(signer.sign(claims())) is not None
