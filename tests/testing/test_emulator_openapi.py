"""Responses of the emulator validate against Sage's OpenAPI documents.

The documents are Sage's material and are not shipped with the package: they are read from
``../shared/reference/intacct-openapi`` (next to the repository) when present, and these
tests are skipped with a message when they are absent.

OpenAPI 3.0 schemas are converted to JSON Schema (``nullable``), and object schemas are made
strict (``additionalProperties: false``) so that a field name the emulator invented fails.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest
import requests

from intacct_connect.testing.emulator import EmulatorServer
from tests.testing.conftest import api

REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "intacct-openapi"
if not (REFERENCE / "common-resources.json").exists():
    _why = (
        f"Sage's OpenAPI reference documents are not available at {REFERENCE} "
        "(they are not shipped with the package)"
    )
    if os.environ.get("INTACCT_REQUIRE_OPENAPI"):  # CI: the documents must be there
        raise RuntimeError(f"INTACCT_REQUIRE_OPENAPI is set but {_why}")
    pytest.skip(_why, allow_module_level=True)

jsonschema = pytest.importorskip("jsonschema")

COMMON = json.loads((REFERENCE / "common-resources.json").read_text())
VENDOR_DOC = json.loads((REFERENCE / "accounts-payable-vendor.schema.json").read_text())
VENDOR_EXAMPLES = json.loads((REFERENCE / "accounts-payable-vendor.examples.json").read_text())


ALL_SCHEMAS: dict[str, Any] = {
    **COMMON["components"]["schemas"],
    **VENDOR_DOC["components"]["schemas"],
}


def merge_all_of(node: dict[str, Any]) -> dict[str, Any]:
    """Fold ``allOf`` object members into one object schema, so strictness sees every
    property of the composition."""
    merged: dict[str, Any] = {k: v for k, v in node.items() if k != "allOf"}
    merged.setdefault("type", "object")
    properties = dict(merged.get("properties", {}))
    for member in node["allOf"]:
        if "$ref" in member:
            member = ALL_SCHEMAS[member["$ref"].rsplit("/", 1)[1]]
        if "allOf" in member:
            member = merge_all_of(member)
        properties.update(member.get("properties", {}))
    merged["properties"] = properties
    return merged


def convert(node: Any, strict: bool) -> Any:
    """OpenAPI 3.0 schema -> JSON Schema draft 7."""
    if isinstance(node, list):
        return [convert(item, strict) for item in node]
    if not isinstance(node, dict):
        return node
    if "allOf" in node:
        node = merge_all_of(node)
    out = {k: convert(v, strict) for k, v in node.items() if k not in ("example", "examples")}
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
            if "enum" in out and None not in out["enum"]:
                out["enum"] = [*out["enum"], None]
        elif "$ref" in out:
            out = {"anyOf": [{"$ref": out.pop("$ref")}, {"type": "null"}], **out}
    if out.get("type") == "string" and isinstance(node.get("example"), dict):
        out["type"] = "object"  # Sage's error schema types placeholders as string, shows {}
    if strict and out.get("type") == "object" and "properties" in out:
        out.setdefault("additionalProperties", False)
    return out


def validator(document: dict[str, Any], name: str, *, strict: bool = False) -> Any:
    schemas = {k: convert(v, strict) for k, v in document["components"]["schemas"].items()}
    schemas.update(
        {
            k: convert(v, False)
            for k, v in COMMON["components"]["schemas"].items()
            if k not in schemas
        }
    )
    root = {"$ref": f"#/components/schemas/{name}", "components": {"schemas": schemas}}
    return jsonschema.Draft7Validator(root)


def inline_validator(schema: dict[str, Any], *, strict: bool = False) -> Any:
    schemas = {k: convert(v, strict) for k, v in COMMON["components"]["schemas"].items()}
    root = {**convert(copy.deepcopy(schema), strict), "components": {"schemas": schemas}}
    return jsonschema.Draft7Validator(root)


def check(validator_: Any, instance: Any) -> None:
    errors = sorted(validator_.iter_errors(instance), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors[:10])


def response_schema(path: str, method: str, status: str) -> dict[str, Any]:
    schema: dict[str, Any] = COMMON["paths"][path][method]["responses"][status]["content"][
        "application/json"
    ]["schema"]
    return schema


def test_vendor_get_matches_the_vendor_schema(
    intacct_emulator: EmulatorServer, admin_token: str
) -> None:
    vendor_schema = validator(VENDOR_DOC, "objects.accounts-payable.vendor", strict=True)
    meta_schema = validator(COMMON, "metadata", strict=True)
    for key in ("1", "5", "10", "120"):  # shared and entity vendors
        body = api(
            intacct_emulator, "GET", f"/objects/accounts-payable/vendor/{key}", admin_token
        ).json()
        check(vendor_schema, body["ia::result"])
        check(meta_schema, body["ia::meta"])


def test_vendor_created_from_sages_example_matches(
    intacct_emulator: EmulatorServer, admin_token: str
) -> None:
    endpoint = VENDOR_EXAMPLES["endpoints"]["POST /objects/accounts-payable/vendor"]
    example = endpoint["requestExamples"]["Create a vendor"]["value"]
    response = api(
        intacct_emulator, "POST", "/objects/accounts-payable/vendor", admin_token, json=example
    )
    assert response.status_code == 201, response.text
    reference = validator(COMMON, "object-reference", strict=True)
    check(reference, response.json()["ia::result"])
    check(validator(COMMON, "metadata", strict=True), response.json()["ia::meta"])
    record = api(
        intacct_emulator, "GET", response.json()["ia::result"]["href"], admin_token
    ).json()["ia::result"]
    check(validator(VENDOR_DOC, "objects.accounts-payable.vendor", strict=True), record)
    for name, value in example.items():
        assert record[name] == value
    patched = api(
        intacct_emulator,
        "PATCH",
        response.json()["ia::result"]["href"],
        admin_token,
        json={"notes": "patched"},
    )
    check(reference, patched.json()["ia::result"])


def test_vendor_list_matches(intacct_emulator: EmulatorServer, admin_token: str) -> None:
    body = api(intacct_emulator, "GET", "/objects/accounts-payable/vendor", admin_token).json()
    reference = validator(COMMON, "object-reference", strict=True)
    for item in body["ia::result"]:
        check(reference, item)
    check(validator(COMMON, "metadata-pages", strict=True), body["ia::meta"])
    example = VENDOR_EXAMPLES["endpoints"]["GET /objects/accounts-payable/vendor"][
        "responseExamples"
    ]["200"]["List vendors"]["value"]
    assert set(body) == set(example)
    assert set(body["ia::result"][0]) == set(example["ia::result"][0])


def test_query_request_and_response_match(
    intacct_emulator: EmulatorServer, admin_token: str
) -> None:
    example = COMMON["paths"]["/services/core/query"]["post"]["requestBody"]["content"][
        "application/json"
    ]["examples"]["Query vendor"]["value"]
    check(validator(COMMON, "core-query"), example)
    response = api(intacct_emulator, "POST", "/services/core/query", admin_token, json=example)
    assert response.status_code == 200, response.text
    schema = inline_validator(response_schema("/services/core/query", "post", "200"))
    check(schema, response.json())
    check(validator(COMMON, "metadata-pages", strict=True), response.json()["ia::meta"])
    rows = response.json()["ia::result"]
    assert rows
    assert set(rows[0]) == {"id", "name", "status", "href"}
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)


def test_model_matches(intacct_emulator: EmulatorServer, admin_token: str) -> None:
    object_alternative = COMMON["components"]["schemas"]["object-model"]["oneOf"][2]
    assert object_alternative["title"] == "object"
    body = api(
        intacct_emulator,
        "GET",
        "/services/core/model?name=general-ledger/journal-entry",
        admin_token,
    ).json()
    check(inline_validator(object_alternative, strict=True), body["ia::result"])
    check(validator(COMMON, "metadata"), body["ia::meta"])
    vendor = api(
        intacct_emulator, "GET", "/services/core/model?name=accounts-payable/vendor", admin_token
    ).json()["ia::result"]
    # like Sage's own department example, an object without lists has "lists": []
    assert vendor["lists"] == []
    listing = api(intacct_emulator, "GET", "/services/core/model", admin_token).json()
    resource_alternative = COMMON["components"]["schemas"]["object-model"]["oneOf"][0]
    check(inline_validator(resource_alternative, strict=True), listing["ia::result"])
    example = COMMON["paths"]["/services/core/model"]["get"]["responses"]["200"]["content"][
        "application/json"
    ]["examples"]["Model for department"]["value"]["ia::result"]
    sample = next(iter(vendor["fields"].values()))
    assert set(sample) >= set(next(iter(example["fields"].values())))


def test_composite_matches(intacct_emulator: EmulatorServer, admin_token: str) -> None:
    request = [
        {
            "method": "POST",
            "path": "/objects/accounts-payable/vendor",
            "body": {"id": "OAS-1", "name": "OpenAPI"},
            "resultReference": "v",
        },
        {"method": "GET", "path": "/objects/accounts-payable/vendor/@{v.key}"},
        {"method": "GET", "path": "/objects/accounts-payable/vendor/999999"},
    ]
    check(validator(COMMON, "core-composite-request"), request)
    response = api(
        intacct_emulator, "POST", "/services/core/composite", admin_token, json=request[:2]
    )
    assert response.status_code == 200
    check(
        inline_validator(response_schema("/services/core/composite", "post", "200")),
        response.json(),
    )
    response = api(
        intacct_emulator,
        "POST",
        "/services/core/composite",
        admin_token,
        json=[request[2], request[0]],
    )
    assert response.status_code == 207
    check(
        inline_validator(response_schema("/services/core/composite", "post", "207")),
        response.json(),
    )


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/objects/accounts-payable/vendor", None),
        ("POST", "/objects/accounts-payable/vendor", {"id": "X", "name": "X", "bogus": 1}),
        ("POST", "/objects/accounts-payable/vendor", {"id": "VEND-00001", "name": "dup"}),
        ("GET", "/objects/accounts-payable/vendor/999999", None),
        ("POST", "/services/core/query", {"object": "nope/nope"}),
    ],
)
def test_errors_match_the_error_response_schema(
    intacct_emulator: EmulatorServer,
    admin_token: str,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    kwargs: dict[str, Any] = {"json": body} if body is not None else {}
    top = api(intacct_emulator, method, path, admin_token, **kwargs)
    assert top.status_code >= 400
    # Sage's error-response schema puts ia::meta inside ia::result while its own example
    # (and the error-handling guide) have it at the top level, as the emulator does.
    error_schema = validator(COMMON, "error-response", strict=True)
    meta_schema = validator(COMMON, "metadata", strict=True)
    # top-level shape (default): the same error object, not nested under ia::result
    check(error_schema, {"ia::result": {"ia::error": top.json()["ia::error"]}})
    check(meta_schema, top.json()["ia::meta"])
    assert set(top.json()) == {"ia::error", "ia::meta"}
    intacct_emulator.configure(rest_error_shape="nested")
    nested = api(intacct_emulator, method, path, admin_token, **kwargs)
    assert set(nested.json()) == {"ia::result", "ia::meta"}
    check(error_schema, {"ia::result": nested.json()["ia::result"]})
    check(meta_schema, nested.json()["ia::meta"])
    assert nested.status_code == top.status_code


def test_sages_400_example_has_our_shape(
    intacct_emulator: EmulatorServer, admin_token: str
) -> None:
    example = COMMON["components"]["responses"]["400error"]["content"]["application/json"][
        "examples"
    ]["Response example"]["value"]
    intacct_emulator.configure(rest_error_shape="nested")
    response = api(intacct_emulator, "POST", "/objects/accounts-payable/vendor", admin_token)
    ours = response.json()
    assert set(ours) == set(example)
    mine, theirs = ours["ia::result"]["ia::error"], example["ia::result"]["ia::error"]
    assert {k: v for k, v in mine.items() if k != "supportId"} == {
        k: v for k, v in theirs.items() if k != "supportId"
    }
    assert ours["ia::meta"] == example["ia::meta"]


def test_reference_directory_is_not_shipped() -> None:
    package = Path(__file__).resolve().parents[2] / "intacct_connect"
    names = {p.name for p in package.rglob("*.json")}
    assert not names & {"common-resources.json", "accounts-payable-vendor.schema.json"}
    assert requests  # the module's HTTP client is importable alongside jsonschema


def test_strict_validation_catches_invented_fields() -> None:
    vendor_schema = validator(VENDOR_DOC, "objects.accounts-payable.vendor", strict=True)
    check(vendor_schema, {"id": "V1", "contacts": {"default": {"email1": "a@b.c"}}})
    with pytest.raises(AssertionError, match="inventedField"):
        check(vendor_schema, {"id": "V1", "inventedField": 1})
    with pytest.raises(AssertionError, match="emailAddress"):
        check(vendor_schema, {"contacts": {"default": {"emailAddress": "a@b.c"}}})
    with pytest.raises(AssertionError):
        check(vendor_schema, {"status": "enabled"})


@pytest.mark.parametrize("example", ["Update a single value", "Update multiple values"])
def test_sages_vendor_update_examples_are_accepted(
    intacct_emulator: EmulatorServer, admin_token: str, example: str
) -> None:
    endpoint = VENDOR_EXAMPLES["endpoints"]["PATCH /objects/accounts-payable/vendor/{key}"]
    body = endpoint["requestExamples"][example]["value"]
    response = api(
        intacct_emulator, "PATCH", "/objects/accounts-payable/vendor/4", admin_token, json=body
    )
    assert response.status_code == 200, response.text
    check(validator(COMMON, "object-reference", strict=True), response.json()["ia::result"])
    record = api(intacct_emulator, "GET", "/objects/accounts-payable/vendor/4", admin_token).json()[
        "ia::result"
    ]
    check(validator(VENDOR_DOC, "objects.accounts-payable.vendor", strict=True), record)
    for name, value in body.items():
        if isinstance(value, dict):
            assert {k: record[name][k] for k in value} == value
        else:
            assert record[name] == value


#: Sage's Company Configuration document (spec/company-configuration.json of the public
#: mirror, about 1 MB) is not among the reference copies today; the schema check below runs
#: when it is put next to the others.
COMPANY_CONFIGURATION = REFERENCE / "company-configuration.json"


def test_company_preference_matches(intacct_emulator: EmulatorServer, admin_token: str) -> None:
    path = "/objects/company-config/company-preference/setup"
    body = api(intacct_emulator, "GET", path, admin_token).json()
    # The operation's schema: ia::result an object, ia::meta metadata-pages.
    check(validator(COMMON, "metadata-pages", strict=True), body["ia::meta"])
    check(validator(COMMON, "metadata", strict=True), body["ia::meta"])
    model = api(
        intacct_emulator,
        "GET",
        "/services/core/model?name=company-config/company-preference",
        admin_token,
    ).json()
    object_alternative = COMMON["components"]["schemas"]["object-model"]["oneOf"][2]
    check(inline_validator(object_alternative, strict=True), model["ia::result"])
    if not COMPANY_CONFIGURATION.exists():
        pytest.skip(f"{COMPANY_CONFIGURATION} is not available: schema of ia::result unchecked")
    document = json.loads(COMPANY_CONFIGURATION.read_text())
    operation = document["paths"]["/objects/company-config/company-preference/{key}"]["get"]
    assert operation["operationId"] == "get-company-config-company-preference"
    name = "objects.company-config.company-preference"
    check(validator(document, name, strict=True), body["ia::result"])
