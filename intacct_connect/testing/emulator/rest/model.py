"""``GET /services/core/model``: the list of objects and services (``?type=``), or one
object's model (``?name=objects/<application>/<object>``): its fields, groups, references
and line lists as Sage's object-model schema shows them."""

from __future__ import annotations

from typing import Any

from intacct_connect.testing.emulator.catalogue.company_preference import (
    COMPANY_PREFERENCE_FIELDS,
    COMPANY_PREFERENCE_METHODS,
    COMPANY_PREFERENCE_PATH,
)
from intacct_connect.testing.emulator.catalogue.registry import SPECS
from intacct_connect.testing.emulator.catalogue.spec import FieldSpec, ObjectSpec
from intacct_connect.testing.emulator.rest.calls import meta

SERVICES = (("query", "POST"), ("model", "GET"), ("composite", "POST"), ("session/id", "GET"))


def _field_model(spec_field: FieldSpec) -> dict[str, Any]:
    kind = spec_field.type
    out: dict[str, Any] = {
        "type": {"decimal": "string", "date": "string", "datetime": "string"}.get(kind, kind),
        "readOnly": spec_field.read_only,
        "writeOnly": False,
        # Sage: "The required field is always set to false" in models.
        "required": False,
        "nullable": spec_field.nullable,
        "mutable": not spec_field.read_only,
    }
    if kind == "decimal":
        out["format"] = "decimal-precision-2"
    if spec_field.fmt:
        out["format"] = spec_field.fmt
    if spec_field.enum:
        out["enum"] = list(spec_field.enum)
    return out


def _string_model(read_only: bool) -> dict[str, Any]:
    return {
        "type": "string",
        "readOnly": read_only,
        "writeOnly": False,
        "required": False,
        "nullable": True,
        "mutable": not read_only,
    }


def _ref_model(target: str, named: bool) -> dict[str, Any]:
    fields = {"key": _string_model(False), "id": _string_model(False)}
    if named:
        fields["name"] = _string_model(True)
    return {"apiObject": target, "fields": fields}


def _fields_and_groups(fields: dict[str, FieldSpec]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Plain fields, and dotted ones by group (``billPayment.dueNumberOfDays``); the
    ``entity.*`` fields are the ``entity`` reference's."""
    plain: dict[str, Any] = {}
    groups: dict[str, Any] = {}
    for name, spec_field in fields.items():
        head, _, rest = name.partition(".")
        if not rest:
            plain[name] = _field_model(spec_field)
        elif head != "entity":
            groups.setdefault(head, {"fields": {}})["fields"][rest] = _field_model(spec_field)
    return plain, groups


def object_model(spec: ObjectSpec) -> dict[str, Any]:
    fields, groups = _fields_and_groups(spec.fields)
    refs = {name: _ref_model(ref.target, ref.named) for name, ref in spec.refs.items()}
    if spec.has_entity:
        refs["entity"] = _ref_model("company-config/entity", True)
    lists: Any = []
    if spec.lines is not None:
        lines = spec.lines
        lists = {
            lines.name: {
                "apiObject": lines.object,
                "fields": {n: _field_model(f) for n, f in lines.fields.items()},
                "refs": {n: _ref_model(r.target, r.named) for n, r in lines.refs.items()},
            }
        }
    return {
        "fields": fields,
        "groups": groups,
        "refs": refs,
        "lists": lists,
        "httpMethods": spec.http_methods,
        "idempotenceSupported": True,
    }


def company_preference_model() -> dict[str, Any]:
    fields, groups = _fields_and_groups(COMPANY_PREFERENCE_FIELDS)
    return {
        "fields": fields,
        "groups": groups,
        "refs": {},
        "lists": {},  # an object in Sage's object-model schema
        "httpMethods": COMPANY_PREFERENCE_METHODS,
        "idempotenceSupported": False,
    }


def _root_object(path: str, methods: str) -> dict[str, Any]:
    return {
        "apiObject": f"objects/{path}",
        "type": "rootObject",
        "httpMethods": methods,
        "href": f"/services/core/model?name=objects/{path}&version=v1",
    }


def model(args: dict[str, str]) -> dict[str, Any]:
    name = args.get("name", "")
    if name.startswith("objects/"):
        name = name[len("objects/") :]
    if name == COMPANY_PREFERENCE_PATH:
        return {"ia::result": company_preference_model(), "ia::meta": meta(1, 1, 0)}
    if name:
        spec = SPECS.get(name)
        if spec is None:
            return {"ia::result": [], "ia::meta": {"totalCount": 0}}
        return {"ia::result": object_model(spec), "ia::meta": meta(1, 1, 0)}
    kind = args.get("type", "")
    items: list[dict[str, Any]] = []
    if kind in ("", "object", "rootObject"):
        items = [_root_object(spec.path, spec.http_methods) for spec in SPECS.values()]
        items.append(_root_object(COMPANY_PREFERENCE_PATH, COMPANY_PREFERENCE_METHODS))
    if kind in ("", "service"):
        items += [
            {
                "apiObject": f"services/core/{service}",
                "type": "service",
                "httpMethods": methods,
                "href": f"/services/core/model?name=services/core/{service}&version=v1",
            }
            for service, methods in SERVICES
        ]
    return {"ia::result": items, "ia::meta": {"totalCount": len(items)}}
