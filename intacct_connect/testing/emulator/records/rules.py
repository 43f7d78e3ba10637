"""Business rules of a write, run on the record it would store: required fields and
references (resolved to ``{key, id, name?, href}``), line counts, balanced journal entries,
unique IDs. All problems of a record are reported at once (422 REST-1150)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, TypeGuard

from intacct_connect.testing.emulator.catalogue.registry import SPECS
from intacct_connect.testing.emulator.catalogue.spec import ObjectSpec, RefSpec
from intacct_connect.testing.emulator.records.storage import collection
from intacct_connect.testing.emulator.responses import APIError, detail
from intacct_connect.testing.emulator.store import Company, Record, Store


def operation_failed(operation: str, spec: ObjectSpec, details: list[dict[str, Any]]) -> APIError:
    return APIError(
        422,
        "operationFailed",
        f"{operation.capitalize()} request for {spec.label or spec.name} failed",
        error_id="REST-1150",
        message_id="IA.OPERATION_FAILED",
        placeholders={"OPERATION": operation, "OBJECT": spec.path},
        details=details,
    )


def _resolve_ref(
    store: Store,
    company: Company,
    ref_spec: RefSpec,
    value: dict[str, Any],
    path: str,
    errors: list[dict[str, Any]],
) -> dict[str, Any]:
    target = SPECS.get(ref_spec.target)
    if target is None:  # not an emulated object: keep what was given
        result = {k: v for k, v in value.items() if k in ("key", "id")}
        if result.get("key"):
            result["href"] = f"/objects/{ref_spec.target}/{result['key']}"
        return result
    coll = collection(store, company.id, ref_spec.target)
    key = value.get("key")
    if key is None and value.get("id") is not None:
        key = coll.ids.get(value["id"])
        if key is None and target.id_is_key:
            key = value["id"]
    record = coll.rows.get(key) if key is not None else None
    if record is None or (value.get("id") is not None and record["id"] != value["id"]):
        errors.append(
            detail(
                "BL01001973",
                f"{target.label or target.name} {value.get('id') or value.get('key')} "
                f"does not exist",
                target=f"/{path.replace('.', '/')}",
            )
        )
        return value
    result = {"key": record["key"], "id": record["id"]}
    if ref_spec.named:
        result["name"] = record.get("name")
    result["href"] = target.href(record["key"])
    return result


def missing(path: str, *, field: str | None = None) -> dict[str, Any]:
    """A required-field detail; ``path`` is dotted (``lines.0.glAccount.id``)."""
    name = field or path
    return detail(
        "invalidRequest",
        f"Required field {name} is missing",
        target="/" + path.replace(".", "/"),
        message_id="IA.REQUIRED_FIELD_MISSING",
        placeholders={"FIELD": name},
    )


def _dotted(record: Record, path: str) -> Any:
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _ref_given(value: Any, ref_spec: RefSpec) -> TypeGuard[dict[str, Any]]:
    """Whether a reference names its target the way create requires: Sage's RequiredProperties
    ask for ``id`` on some references (bill ``vendor.id``, invoice ``customer.id``, invoice
    line ``glAccount.id``); elsewhere ``key`` or ``id`` will do."""
    if not isinstance(value, dict):
        return False
    if ref_spec.require_id:
        return bool(value.get("id"))
    return bool(value.get("key") or value.get("id"))


def apply_rules(
    store: Store,
    company: Company,
    spec: ObjectSpec,
    record: Record,
    operation: str,
    own_key: str | None,
) -> None:
    """Resolve ``record``'s references in place; raise 422 REST-1150 listing every rule it
    breaks. ``own_key`` is the record's key on update (its own ID is no duplicate)."""
    errors: list[dict[str, Any]] = []
    for name, field_spec in spec.fields.items():
        if field_spec.required and _dotted(record, name) in (None, ""):
            errors.append(missing(name))
    for name, ref_spec in spec.refs.items():
        value = record.get(name)
        if not _ref_given(value, ref_spec):
            if ref_spec.required:
                errors.append(missing(f"{name}.id" if ref_spec.require_id else name))
            continue
        record[name] = _resolve_ref(store, company, ref_spec, value, name, errors)
    if spec.lines is not None:
        lines = record.get(spec.lines.name) or []
        if len(lines) < spec.lines.min_lines:
            wanted = {1: "one line is", 2: "two lines are"}[spec.lines.min_lines]
            errors.append(
                detail(
                    "invalidRequest",
                    f"At least {wanted} required in {spec.lines.name}",
                    target=f"/{spec.lines.name}",
                )
            )
        for index, line in enumerate(lines):
            prefix = f"{spec.lines.name}.{index}."
            for fname, fspec in spec.lines.fields.items():
                if fspec.required and line.get(fname) in (None, ""):
                    errors.append(missing(prefix + fname, field=fname))
            for rname, rspec in spec.lines.refs.items():
                value = line.get(rname)
                if not _ref_given(value, rspec):
                    if rspec.required:
                        sub = f"{rname}.id" if rspec.require_id else rname
                        errors.append(missing(prefix + sub, field=sub))
                    continue
                line[rname] = _resolve_ref(
                    store, company, rspec, value, f"{spec.lines.name}.{index}.{rname}", errors
                )
        if spec.path == "general-ledger/journal-entry" and not errors:
            debit = sum(
                (
                    Decimal(str(line["txnAmount"]))
                    for line in lines
                    if line.get("txnType") == "debit"
                ),
                Decimal(0),
            )
            credit = sum(
                (
                    Decimal(str(line["txnAmount"]))
                    for line in lines
                    if line.get("txnType") == "credit"
                ),
                Decimal(0),
            )
            if debit != credit:
                errors.append(
                    detail(
                        "BL03000018",
                        f"The journal entry is not balanced: debits {debit:.2f} and credits "
                        f"{credit:.2f} must be equal",
                        target="/lines",
                    )
                )
    if spec.unique_id and record.get("id"):
        coll = collection(store, company.id, spec.path)
        existing = coll.ids.get(record["id"])
        if existing is not None and existing != own_key:
            errors.append(
                detail(
                    "BL01001973",
                    f"Another {spec.label or spec.name} with the given value(s) "
                    f"{record['id']} already exists",
                    target="/id",
                )
            )
    if (
        spec.path == "general-ledger/journal-entry"
        and operation == "create"
        and record.get("state") not in (None, "draft", "posted")
    ):
        errors.append(
            detail("invalidRequest", "state must be draft or posted on create", target="/state")
        )
    if errors:
        raise operation_failed(operation, spec, errors)
