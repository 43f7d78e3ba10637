"""Who calls the REST API: the bearer token checked against its session, grant, company,
application and user (the gateway's ``GW-00xx`` and ``REST-2102`` answers), then the
``X-IA-API-Param-Entity`` header, giving the call's :class:`~.calls.Context`."""

from __future__ import annotations

from werkzeug.wrappers import Request, Response

from intacct_connect.testing.emulator.responses import (
    APIError,
    gateway_error,
    json_response,
    token_invalid_response,
)
from intacct_connect.testing.emulator.rest.calls import (
    ENTITY_HEADER,
    Context,
    error_result,
    to_response,
)
from intacct_connect.testing.emulator.signing import Signer
from intacct_connect.testing.emulator.state import State

#: REST-1206, the answer to an expired token when ``expired_token_error="rest1206"``.
EXPIRED_REST1206 = {
    "ia::error": {
        "code": "invalidRequest",
        "message": "The token is not valid",
        "errorId": "REST-1206",
        "supportId": "expired",
    },
    "ia::meta": {"totalCount": 1, "totalSuccess": 0, "totalError": 1},
}


def authenticate(state: State, signer: Signer, request: Request) -> Context | Response:
    """The caller's context, or the gateway's error response."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return gateway_error(
            401, "GW-0034", "The Authorization header must be 'Bearer <access token>'."
        )
    claims = signer.decode(value.strip())
    if claims is None:
        return gateway_error(401, "GW-0031", "The access token cannot be decoded or verified.")
    config = state.config
    with state.read() as store:
        session = store.session(claims["sessionId"])
        grant = store.grant_of_session(session)
        if session is None or grant is None or not grant.active:
            return token_invalid_response()
        if session.expired or float(claims["exp"]) <= store.now():
            if config.expired_token_error == "rest1206":  # noqa: S105
                return json_response(EXPIRED_REST1206, 400)
            return gateway_error(401, "GW-0040", "The access token has expired.")
        company = store.company(claims["cnyId"])
        app = store.application(claims["clientId"])
        if company is None or app is None or not company.active:
            return gateway_error(401, "GW-0011", "The company or client is unknown or inactive.")
        if app.sender_id not in company.senders:
            return gateway_error(
                403,
                "GW-0011",
                f"Sender ID {app.sender_id} is not authorized for company {company.id}: "
                "a company administrator must approve the application (Company > Setup > "
                "Company > Security > Web Services authorizations).",
            )
        user = company.users.get(claims["userId"])
        if user is None:
            return token_invalid_response()
        entity = session.entity
        if ENTITY_HEADER in request.headers:
            requested = request.headers[ENTITY_HEADER].strip()
            entity = requested or None
            if entity is not None and entity not in company.entities:
                error = APIError(
                    400,
                    "invalidRequest",
                    f"{entity} is not a valid entity for this company",
                    error_id="REST-1071",
                    placeholders={"ENTITY": entity},
                )
                return to_response(error_result(error, config.rest_error_shape))
        return Context(company=company, user=user, entity=entity, claims=claims, app=app)
