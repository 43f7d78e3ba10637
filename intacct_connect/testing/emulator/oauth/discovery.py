"""Discovery documents: ``/.well-known/openid-configuration`` (as captured from
``https://api.intacct.com``, with the emulator's own endpoint URLs) and the JWKS."""

from __future__ import annotations

from werkzeug.wrappers import Request, Response

from intacct_connect.testing.emulator.responses import json_response
from intacct_connect.testing.emulator.signing import ISSUER, Signer


def openid_configuration(request: Request) -> Response:
    root = request.host_url.rstrip("/")
    return json_response(
        {
            "issuer": ISSUER,
            "authorization_endpoint": f"{root}/ia/authorize",
            "token_endpoint": f"{root}/ia/api/v1/oauth2/token",
            "jwks_uri": f"{root}/.well-known/jwks.json",
            "scopes_supported": ["openid", "offline_access", "sage/ai-agents", "token-exchange"],
            "response_types_supported": ["code", "token", "id_token"],
            "subject_types_supported": ["public"],
            "grant_types_supported": [
                "authorization_code",
                "client_credentials",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ],
            "token_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
                "private_key_jwt",
            ],
            "token_endpoint_auth_signing_alg_values_supported": ["RS256"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "claims_supported": [
                "aud",
                "exp",
                "iat",
                "iss",
                "sub",
                "agentId",
                "clientId",
                "cnyId",
                "cnyKey",
                "userId",
                "userKey",
                "entityId",
                "sessionId",
                "oid",
                "aiEnabled",
            ],
            "request_uri_parameter_supported": False,
            "request_parameter_supported": False,
        }
    )


def jwks(signer: Signer) -> Response:
    return json_response({"keys": [signer.public_jwk]})
