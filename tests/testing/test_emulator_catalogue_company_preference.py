"""The company preferences singleton (``catalogue/company_preference.py``), served at
``/objects/company-config/company-preference/setup``."""

from __future__ import annotations

from typing import Any

import pytest

from intacct_connect.testing.emulator import EmulatorServer, seed
from intacct_connect.testing.emulator.catalogue import company_preference, registry
from tests.testing.conftest import api, error_of

PREFERENCE = "/objects/company-config/company-preference"


def test_company_preference_carries_the_company_id_and_name(
    intacct_emulator: EmulatorServer, admin_token: str
) -> None:
    response = api(intacct_emulator, "GET", f"{PREFERENCE}/setup", admin_token)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"ia::result", "ia::meta"}
    assert body["ia::meta"] == {"totalCount": 1}
    result = body["ia::result"]
    # Inside ia::result, as Sage's schema has it (its example shows them beside it).
    assert (result["key"], result["id"], result["name"]) == ("setup", "DEMO-CO", "Demo Company")
    assert result["accounting"]["baseCurrency"] == "USD"
    assert not {"href", "audit", "entity"} & set(result)
    sandbox = intacct_emulator.issue_tokens("DEMO-SANDBOX", "admin")["access_token"]
    other = api(intacct_emulator, "GET", f"{PREFERENCE}/setup", sandbox).json()["ia::result"]
    assert (other["id"], other["name"]) == ("DEMO-SANDBOX", "Demo Company (sandbox)")


def test_company_preference_is_company_wide_at_every_entity(
    intacct_emulator: EmulatorServer, admin_token: str
) -> None:
    top = api(intacct_emulator, "GET", f"{PREFERENCE}/setup", admin_token).json()
    for entity in ("", "EAST"):
        at = api(intacct_emulator, "GET", f"{PREFERENCE}/setup", admin_token, entity=entity)
        assert at.status_code == 200
        assert at.json() == top
    east = intacct_emulator.issue_tokens("DEMO-CO", "jane", entity="EAST")["access_token"]
    assert api(intacct_emulator, "GET", f"{PREFERENCE}/setup", east).json() == top
    bad = api(intacct_emulator, "GET", f"{PREFERENCE}/setup", admin_token, entity="NOPE")
    assert bad.status_code == 400
    assert error_of(bad)["errorId"] == "REST-1071"


def test_company_preference_fields_projection(
    intacct_emulator: EmulatorServer, admin_token: str
) -> None:
    response = api(
        intacct_emulator,
        "GET",
        f"{PREFERENCE}/setup?fields=name,accounting.baseCurrency",
        admin_token,
    )
    assert response.json()["ia::result"] == {
        "name": "Demo Company",
        "accounting": {"baseCurrency": "USD"},
    }
    bad = api(intacct_emulator, "GET", f"{PREFERENCE}/setup?fields=href", admin_token)
    assert bad.status_code == 400
    assert error_of(bad)["details"][0]["errorId"] == "REST-1043"


@pytest.mark.parametrize("path", [f"{PREFERENCE}/1", f"{PREFERENCE}/SETUP", PREFERENCE])
def test_company_preference_other_keys_are_404(
    intacct_emulator: EmulatorServer, admin_token: str, path: str
) -> None:
    response = api(intacct_emulator, "GET", path, admin_token)
    assert response.status_code == 404
    error = error_of(response)
    assert (error["code"], error["errorId"]) == ("notFound", "REST-1019")


@pytest.mark.parametrize("method", ["PATCH", "POST", "DELETE", "PUT"])
def test_company_preference_writes_are_405(
    intacct_emulator: EmulatorServer, admin_token: str, method: str
) -> None:
    # Sage documents PATCH (update-company-config-company-preference); it is not emulated.
    body = {"userSessionSettings": {"sessionTimeoutMinutes": 10}}
    response = api(intacct_emulator, method, f"{PREFERENCE}/setup", admin_token, json=body)
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET"
    error = error_of(response)
    assert (error["code"], error["errorId"]) == ("methodNotAllowed", "REST-1020")
    assert intacct_emulator.unexpected_errors() == 0


def test_company_preference_model(intacct_emulator: EmulatorServer, admin_token: str) -> None:
    path = "/services/core/model?name=company-config/company-preference"
    model = api(intacct_emulator, "GET", path, admin_token).json()["ia::result"]
    assert model["fields"]["name"]["type"] == "string"
    assert model["fields"]["key"]["readOnly"] is True
    assert model["groups"]["accounting"]["fields"]["firstFiscalMonth"]["enum"][0] == "january"
    assert "audit" not in model["groups"]
    assert model["refs"] == {}
    assert model["httpMethods"] == "GET"
    listing = api(intacct_emulator, "GET", "/services/core/model", admin_token).json()
    names = {item["apiObject"] for item in listing["ia::result"]}
    assert "objects/company-config/company-preference" in names


def test_company_preference_record_uses_only_its_declared_fields() -> None:
    company = seed.make_company("ACME", key="7", name="Acme Books")
    record = company_preference.company_preference(company)
    assert (record["key"], record["id"], record["name"]) == ("setup", "ACME", "Acme Books")

    def leaves(node: dict[str, Any], prefix: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in node.items():
            if isinstance(value, dict):
                out.update(leaves(value, f"{prefix}{name}."))
            else:
                out[f"{prefix}{name}"] = value
        return out

    for path, value in leaves(record).items():
        spec = company_preference.COMPANY_PREFERENCE_FIELDS[path]  # no invented field
        assert value is not None, path  # the schema's strings are not nullable
        if spec.enum:
            assert value in spec.enum, path
    assert "company-config/company-preference" not in registry.SPECS  # not a collection
