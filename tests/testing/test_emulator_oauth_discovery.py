"""The discovery documents (``oauth/discovery.py``)."""

from __future__ import annotations

import requests

from intacct_connect.testing.emulator import EmulatorServer


def test_discovery_documents(intacct_emulator: EmulatorServer) -> None:
    config = requests.get(
        f"{intacct_emulator.root_url}/.well-known/openid-configuration", timeout=5
    ).json()
    assert config["issuer"] == "https://api.intacct.com"
    assert config["authorization_endpoint"] == f"{intacct_emulator.root_url}/ia/authorize"
    assert config["token_endpoint"] == intacct_emulator.token_url
    assert "cnyId" in config["claims_supported"]
    keys = requests.get(config["jwks_uri"], timeout=5).json()["keys"]
    assert keys[0]["kty"] == "RSA"
    assert keys[0]["alg"] == "RS256"
    assert keys[0]["kid"]
    assert "d" not in keys[0]  # public key only
