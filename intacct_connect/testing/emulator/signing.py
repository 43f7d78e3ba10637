"""The key that signs access tokens: :class:`Signer` signs claims as RS256 JWTs and decodes
the tokens it signed; its public half is the JWKS document's one key."""

from __future__ import annotations

from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ISSUER = "https://api.intacct.com"
#: Claims a token must carry (non-empty) to be one of this emulator's.
REQUIRED_CLAIMS = ("exp", "iat", "iss", "cnyId", "userId", "sessionId", "clientId")


class Signer:
    """An RSA key from a PEM (the state file's ``signingKey``), or a new one when None."""

    def __init__(self, pem: str | None = None) -> None:
        if pem:
            private_key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
        else:
            private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pem = private_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode("ascii")
        if not isinstance(private_key, rsa.RSAPrivateKey):
            raise ValueError("The state file's signing key is not an RSA private key")
        self.pem = pem
        self.private_key = private_key
        self.public_key = private_key.public_key()
        jwk: dict[str, Any] = jwt.algorithms.RSAAlgorithm.to_jwk(self.public_key, as_dict=True)
        numbers = self.public_key.public_numbers()
        self.kid = f"emulator-{numbers.n % 10**12:012d}"
        self.public_jwk = {**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self.private_key, algorithm="RS256", headers={"kid": self.kid})

    def decode(self, value: str) -> dict[str, Any] | None:
        """Claims of a token this key signed, or None. Expiry is not checked here: callers
        check ``exp`` against the emulator's clock."""
        try:
            claims: dict[str, Any] = jwt.decode(
                value,
                self.public_key,
                algorithms=["RS256"],
                options={
                    "verify_exp": False,
                    "verify_aud": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
                issuer=ISSUER,
            )
        except (jwt.PyJWTError, ValueError, TypeError):
            return None
        if any(claims.get(name) in (None, "") for name in REQUIRED_CLAIMS):
            return None
        return claims
