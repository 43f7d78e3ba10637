"""Record storage per company and object: lazy deterministic seeding, validation of write
bodies against the object specs, business rules, create/update/delete, entity visibility.

Call every function here with the state lock held.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, TypeGuard

from intacct_connect.testing.emulator.objects import (
    COMPANY_PREFERENCE_KEY,
    SEED_ORDER,
    SPECS,
    FieldSpec,
    LineSpec,
    ObjectSpec,
    RefSpec,
)
from intacct_connect.testing.emulator.responses import APIError, detail

if TYPE_CHECKING:
    from intacct_connect.testing.emulator.state import State

SEED_DATETIME = "2025-01-02T09:00:00Z"
NULL_ENTITY: dict[str, Any] = {"key": None, "id": None, "name": None}


def iso_now(state: State) -> str:
    return dt.datetime.fromtimestamp(state.now(), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def audit(when: str, user_key: str, user_id: str) -> dict[str, Any]:
    user_ref = {"key": user_key, "id": user_id, "href": f"/objects/company-config/user/{user_key}"}
    return {
        "createdDateTime": when,
        "modifiedDateTime": when,
        "createdBy": user_key,
        "modifiedBy": user_key,
        "createdByUser": user_ref,
        "modifiedByUser": dict(user_ref),
    }


def entity_ref(company: dict[str, Any], entity_id: str | None) -> dict[str, Any]:
    if not entity_id:
        return NULL_ENTITY
    entity = company["entities"][entity_id]
    return {
        "key": entity["key"],
        "id": entity_id,
        "name": entity["name"],
        "href": f"/objects/company-config/entity/{entity['key']}",
    }


# --- collections and seeding ---------------------------------------------------------
def collection(state: State, company_id: str, path: str) -> dict[str, Any]:
    """The record collection of ``path`` in ``company_id``, seeded on first access."""
    per_company = state.data["records"].get(company_id)
    if per_company is None:
        # Seed every object of the company at once, before any write, so seed data never
        # depends on what a test did first.
        per_company = state.data["records"][company_id] = {}
        for seeded_path in SEED_ORDER:
            collection(state, company_id, seeded_path)
    coll: dict[str, Any] | None = per_company.get(path)
    if coll is None:
        coll = {"nextKey": 1, "rows": {}, "ids": {}}
        per_company[path] = coll
        _seed_collection(state, company_id, path, coll)
    return coll


def _context(state: State, company_id: str, path: str) -> dict[str, Any]:
    ctx: dict[str, Any] = {}
    if path in (
        "accounts-payable/bill",
        "accounts-receivable/invoice",
        "general-ledger/journal-entry",
    ):
        accounts = collection(state, company_id, "general-ledger/account")["rows"]
        ctx["accounts"] = {r["id"]: {"key": k, "name": r["name"]} for k, r in accounts.items()}
    if path == "accounts-payable/bill":
        rows = collection(state, company_id, "accounts-payable/vendor")["rows"]
        ctx["vendors"] = [{"key": k, "id": r["id"], "name": r["name"]} for k, r in rows.items()]
    if path == "accounts-receivable/invoice":
        rows = collection(state, company_id, "accounts-receivable/customer")["rows"]
        ctx["customers"] = [{"key": k, "id": r["id"], "name": r["name"]} for k, r in rows.items()]
    return ctx


def _seed_collection(state: State, company_id: str, path: str, coll: dict[str, Any]) -> None:
    company = state.data["companies"].get(company_id)
    spec = SPECS[path]
    if company is None:
        return
    if path == "company-config/entity":
        for entity_id, entity in company["entities"].items():
            # Field names from objects.company-config.entity; an entity has no ``entity``
            # reference of its own (whether it is private is emulator state, not a field).
            record = {
                "key": entity["key"],
                "id": entity_id,
                "name": entity["name"],
                "federalId": f"{10 + int(entity['key'])}-0000000",
                "status": "active",
                "operatingCountry": "unitedStates",
                "baseCurrency": {
                    "key": "1",
                    "id": "USD",
                    "href": "/objects/company-config/txn-currency/1",
                },
                "audit": audit(SEED_DATETIME, "1", "admin"),
            }
            coll["rows"][entity["key"]] = record
            coll["ids"][entity_id] = entity["key"]
            coll["nextKey"] = max(coll["nextKey"], int(entity["key"]) + 1)
        return
    if spec.generate is None or not spec.seed_count:
        return
    count = spec.seed_count if company["type"] == "production" else max(spec.seed_count // 5, 10)
    if path == "general-ledger/account":
        count = spec.seed_count
    rng = random.Random(f"{company_id}:{path}")  # noqa: S311 - deterministic test data
    insert_generated(state, company, spec, count, rng=rng)


def insert_generated(
    state: State,
    company: dict[str, Any],
    spec: ObjectSpec,
    count: int,
    *,
    rng: random.Random | None = None,
) -> None:
    """Append ``count`` generated records (shared audit/entity sub-objects keep it cheap)."""
    coll = state.data["records"].setdefault(company["id"], {}).get(spec.path)
    if coll is None:
        coll = collection(state, company["id"], spec.path)
    if spec.generate is None:
        raise ValueError(f"{spec.path} has no generator")
    rng = rng or random.Random(f"{company['id']}:{spec.path}:{coll['nextKey']}")  # noqa: S311
    ctx = _context(state, company["id"], spec.path)
    entities = list(company["entities"]) if company["multiEntity"] else []
    entity_refs = {e: entity_ref(company, e) for e in entities}
    shared_audit = audit(SEED_DATETIME, "1", "admin")
    transactional = spec.lines is not None
    rows = coll["rows"]
    ids = coll["ids"]
    next_key = coll["nextKey"]
    generate = spec.generate
    for _ in range(count):
        key = str(next_key)
        record = generate(rng, next_key, ctx)
        record["key"] = key
        if spec.id_is_key:
            record["id"] = key
        elif record["id"] in ids:
            record["id"] = f"{record['id']}-{key}"
        if spec.has_entity:
            if entities and (transactional or next_key % 5 == 0):
                record["entity"] = entity_refs[entities[next_key % len(entities)]]
            else:
                record["entity"] = NULL_ENTITY
        record["audit"] = shared_audit
        if spec.lines is not None:
            _finish_lines(spec, record)
        rows[key] = record
        if spec.unique_id:
            ids[record["id"]] = key
        next_key += 1
    coll["nextKey"] = next_key
    state.touch_records()


def _finish_lines(spec: ObjectSpec, record: dict[str, Any]) -> None:
    """Number the lines and compute the header totals (bills and invoices; Sage documents no
    totals on a journal entry)."""
    if spec.lines is None:
        return
    string_numbers = spec.lines.fields["lineNumber"].type == "string"
    total = Decimal(0)
    for index, line in enumerate(record.get("lines") or []):
        line["lineNumber"] = str(index + 1) if string_numbers else index + 1
        line["key"] = f"{record['key']}-{index + 1}"
        line["id"] = line["key"]
        total += Decimal(str(line.get("txnAmount") or "0"))
    if "totalTxnAmount" in spec.fields:
        record["totalTxnAmount"] = f"{total:.2f}"
        due = Decimal(0) if record.get("state") == "paid" else total
        record["totalTxnAmountDue"] = f"{due:.2f}"


# --- visibility ------------------------------------------------------------------------
def visible(
    record: dict[str, Any],
    entity: str | None,
    private: frozenset[str],
    include_private: bool = False,
) -> bool:
    """Top level sees shared records and every non-private entity's records; an entity
    sees shared (top-level) records and its own."""
    owner = (record.get("entity") or NULL_ENTITY)["id"]
    if owner is None:
        return True
    if entity is None:
        return include_private or owner not in private
    return bool(owner == entity)


def private_entities(company: dict[str, Any]) -> frozenset[str]:
    return frozenset(e for e, info in company["entities"].items() if info.get("private"))


# --- validation --------------------------------------------------------------------------
def _type_error(path: str, spec: FieldSpec, value: Any) -> str | None:
    if value is None:
        return None if spec.nullable else f"{path} cannot be null"
    kind = spec.type
    if spec.enum is not None:
        if value not in spec.enum:
            return f"{value!r} is not a valid value for {path}; use one of {', '.join(spec.enum)}"
        return None
    if kind == "string" and not isinstance(value, str):
        return f"{path} must be a string"
    if kind == "boolean" and not isinstance(value, bool):
        return f"{path} must be a boolean"
    if kind == "integer" and (isinstance(value, bool) or not isinstance(value, int)):
        return f"{path} must be an integer"
    if kind in ("number", "decimal"):
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            return f"{path} must be a number"
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            return f"{path} must be a number"
        if not number.is_finite():
            return f"{path} must be a finite number"
    if kind == "date":
        if not isinstance(value, str):
            return f"{path} must be a date (YYYY-MM-DD)"
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            return f"{value!r} is not a valid date for {path} (YYYY-MM-DD)"
        if len(value) != 10:
            return f"{value!r} is not a valid date for {path} (YYYY-MM-DD)"
    return None


def _coerce(spec: FieldSpec, value: Any) -> Any:
    if value is None:
        return None
    if spec.type == "decimal":
        number = Decimal(str(value))
        if isinstance(value, str) and number.as_tuple().exponent < -2:  # type: ignore[operator]
            return value.strip()
        return f"{number:.2f}"
    if spec.type == "number" and isinstance(value, str):
        number = Decimal(value)
        return int(number) if number == number.to_integral_value() else float(number)
    return value


def invalid_field(path: str) -> dict[str, Any]:
    return detail(
        "invalidRequest",
        f"/{path.replace('.', '/')} is not a valid field",
        error_id="REST-1043",
        target=f"/{path.replace('.', '/')}",
        message_id="IA.NOT_A_VALID_FIELD",
        placeholders={"FIELD": f"/{path.replace('.', '/')}"},
    )


def _check_ref(path: str, value: Any, errors: list[dict[str, Any]]) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        errors.append(
            detail("invalidRequest", f"{path} must be an object with key or id", target=f"/{path}")
        )
        return None
    out: dict[str, Any] = {}
    for sub, item in value.items():
        if sub in ("href", "name"):
            continue
        if sub not in ("key", "id"):
            errors.append(invalid_field(f"{path}.{sub}"))
            continue
        if item is not None and not isinstance(item, str):
            errors.append(
                detail("invalidRequest", f"{path}.{sub} must be a string", target=f"/{path}/{sub}")
            )
            continue
        if item == "":
            errors.append(
                detail("invalidRequest", f"{path}.{sub} cannot be blank", target=f"/{path}/{sub}")
            )
            continue
        out[sub] = item
    return out


def _walk(
    fields: dict[str, FieldSpec],
    refs: dict[str, RefSpec],
    groups: frozenset[str],
    lines: LineSpec | None,
    body: dict[str, Any],
    prefix: str,
    errors: list[dict[str, Any]],
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in body.items():
        path = f"{prefix}{name}"
        if path in fields:
            field_spec = fields[path]
            if field_spec.read_only:
                continue
            problem = _type_error(path, field_spec, value)
            if problem:
                errors.append(
                    detail("invalidRequest", problem, target=f"/{path.replace('.', '/')}")
                )
                continue
            out[name] = _coerce(field_spec, value)
        elif not prefix and name in refs:
            checked = _check_ref(path, value, errors)
            if checked is not None or value is None:
                out[name] = checked
        elif path in groups:
            if path in ("audit", "entity"):
                continue
            if not isinstance(value, dict):
                errors.append(
                    detail(
                        "invalidRequest",
                        f"{path} must be an object",
                        target=f"/{path.replace('.', '/')}",
                    )
                )
                continue
            out[name] = _walk(fields, refs, groups, None, value, f"{path}.", errors)
        elif lines is not None and not prefix and name == lines.name:
            if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                errors.append(
                    detail(
                        "invalidRequest", f"{name} must be an array of objects", target=f"/{name}"
                    )
                )
                continue
            out_lines = []
            for index, line in enumerate(value):
                line_errors: list[dict[str, Any]] = []
                out_lines.append(
                    _walk(lines.fields, lines.refs, frozenset(), None, line, "", line_errors)
                )
                for item in line_errors:
                    item["target"] = f"/{name}/{index}{item.get('target', '')}"
                    errors.append(item)
            out[name] = out_lines
        elif name in ("key", "href", "webURL", "ia::operation"):
            continue
        else:
            errors.append(invalid_field(path))
    return out


def validate_body(spec: ObjectSpec, body: Any) -> dict[str, Any]:
    """The writable part of ``body``; raises 400 ``invalidRequest`` REST-1064 with details."""
    if not isinstance(body, dict):
        raise APIError(
            400,
            "invalidRequest",
            "The request payload must be a JSON object",
            error_id="REST-1064",
            message_id="IA.PAYLOAD_CONTAINS_ERRORS",
        )
    errors: list[dict[str, Any]] = []
    cleaned = _walk(spec.fields, spec.refs, spec.groups, spec.lines, body, "", errors)
    if errors:
        raise APIError(
            400,
            "invalidRequest",
            "Payload contains errors",
            error_id="REST-1064",
            message_id="IA.PAYLOAD_CONTAINS_ERRORS",
            details=errors,
        )
    return cleaned


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
    state: State,
    company: dict[str, Any],
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
    coll = collection(state, company["id"], ref_spec.target)
    key = value.get("key")
    if key is None and value.get("id") is not None:
        key = coll["ids"].get(value["id"])
        if key is None and target.id_is_key:
            key = value["id"]
    record = coll["rows"].get(key) if key is not None else None
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


def _dotted(record: dict[str, Any], path: str) -> Any:
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


def _apply_rules(
    state: State,
    company: dict[str, Any],
    spec: ObjectSpec,
    record: dict[str, Any],
    operation: str,
    own_key: str | None,
) -> None:
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
        record[name] = _resolve_ref(state, company, ref_spec, value, name, errors)
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
                    state, company, rspec, value, f"{spec.lines.name}.{index}.{rname}", errors
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
        coll = collection(state, company["id"], spec.path)
        existing = coll["ids"].get(record["id"])
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


# --- writes ---------------------------------------------------------------------------
def create(
    state: State,
    company: dict[str, Any],
    spec: ObjectSpec,
    body: Any,
    *,
    entity: str | None,
    user: dict[str, Any],
) -> dict[str, Any]:
    cleaned = validate_body(spec, body)
    coll = collection(state, company["id"], spec.path)
    key = str(coll["nextKey"])
    record: dict[str, Any] = dict(cleaned)
    if spec.id_is_key:
        record["id"] = key
    elif not record.get("id") and spec.id_prefix:
        record["id"] = f"{spec.id_prefix}-{int(key):05d}"
        while record["id"] in coll["ids"]:
            record["id"] += "X"
    if "status" in spec.fields and record.get("status") is None:
        record["status"] = "active"
    if spec.path == "accounts-payable/vendor":
        record["state"] = "a"
    if spec.lines is not None and not record.get("state"):
        # Sage's documented defaults: a bill starts as a draft, invoices and journal entries
        # post.
        record["state"] = "draft" if spec.path == "accounts-payable/bill" else "posted"
    _apply_rules(state, company, spec, record, "create", None)
    if spec.path == "company-config/entity" and not company["multiEntity"]:
        raise operation_failed(
            "create", spec, [detail("BL01001973", f"{company['id']} is not a multi-entity company")]
        )
    record["key"] = key
    if spec.has_entity:
        record["entity"] = entity_ref(company, entity)
    now = iso_now(state)
    record["audit"] = audit(now, user["key"], user["id"])
    if spec.path in ("accounts-payable/vendor", "accounts-receivable/customer"):
        record.setdefault("totalDue", "0.00")
    if spec.lines is not None:
        _finish_lines(spec, record)
    coll["rows"][key] = record
    coll["nextKey"] += 1
    if spec.unique_id:
        coll["ids"][record["id"]] = key
    if spec.path == "company-config/entity":
        company["entities"][record["id"]] = {
            "id": record["id"],
            "key": key,
            "name": record["name"],
            "private": False,
        }
    state.touch_records()
    return record


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    for name, value in patch.items():
        if isinstance(value, dict) and isinstance(target.get(name), dict) and value:
            inner = dict(target[name])
            _merge(inner, value)
            target[name] = inner
        else:
            target[name] = value


def update(
    state: State,
    company: dict[str, Any],
    spec: ObjectSpec,
    key: str,
    body: Any,
    *,
    entity: str | None,
    user: dict[str, Any],
) -> dict[str, Any]:
    record = get_visible(state, company, spec, key, entity)
    cleaned = validate_body(spec, body)
    # ids are not updatable (except account numbers)
    if (
        (spec.id_is_key or (spec.unique_id and spec.path != "general-ledger/account"))
        and "id" in cleaned
        and cleaned["id"] != record["id"]
    ):
        raise APIError(
            400,
            "invalidRequest",
            "Payload contains errors",
            error_id="REST-1064",
            message_id="IA.PAYLOAD_CONTAINS_ERRORS",
            details=[detail("invalidRequest", "id cannot be changed", target="/id")],
        )
    updated = dict(record)
    lines = cleaned.pop(spec.lines.name, None) if spec.lines else None
    _merge(updated, cleaned)
    if lines is not None and spec.lines is not None:
        updated[spec.lines.name] = lines
    _apply_rules(state, company, spec, updated, "update", key)
    if spec.lines is not None:
        _finish_lines(spec, updated)
    when = iso_now(state)
    updated["audit"] = {
        **record["audit"],
        "modifiedDateTime": when,
        "modifiedBy": user["key"],
        "modifiedByUser": {
            "key": user["key"],
            "id": user["id"],
            "href": f"/objects/company-config/user/{user['key']}",
        },
    }
    coll = collection(state, company["id"], spec.path)
    if spec.unique_id and updated["id"] != record["id"]:
        coll["ids"].pop(record["id"], None)
        coll["ids"][updated["id"]] = key
    coll["rows"][key] = updated
    state.touch_records()
    return updated


def delete(
    state: State, company: dict[str, Any], spec: ObjectSpec, key: str, *, entity: str | None
) -> None:
    record = get_visible(state, company, spec, key, entity)
    if spec.path == "accounts-payable/vendor":
        bills = collection(state, company["id"], "accounts-payable/bill")["rows"].values()
        if any(b["vendor"].get("key") == key for b in bills):
            raise operation_failed(
                "delete",
                spec,
                [
                    detail(
                        "BL01001973",
                        f"Vendor {record['id']} has transactions and cannot be "
                        "deleted; make it inactive instead",
                    )
                ],
            )
    if spec.path == "company-config/entity":
        raise operation_failed(
            "delete", spec, [detail("BL01001973", "Entities cannot be deleted in the emulator")]
        )
    coll = collection(state, company["id"], spec.path)
    del coll["rows"][key]
    if spec.unique_id:
        coll["ids"].pop(record["id"], None)
    state.touch_records()


def get_visible(
    state: State, company: dict[str, Any], spec: ObjectSpec, key: str, entity: str | None
) -> dict[str, Any]:
    coll = collection(state, company["id"], spec.path)
    record: dict[str, Any] | None = coll["rows"].get(key)
    if record is None or not visible(record, entity, private_entities(company), True):
        raise not_found(spec, key)
    return record


def not_found(spec: ObjectSpec, key: str) -> APIError:
    return not_found_path(f"{spec.path}/{key}")


def not_found_path(path: str) -> APIError:
    """404 REST-1019 for ``/objects/<path>``."""
    return APIError(
        404,
        "notFound",
        f"Requested resource /objects/{path} was not found",
        error_id="REST-1019",
        message_id="IA.REQUESTED_RESOURCE_NOT_FOUND",
        placeholders={"RESOURCE": f"/objects/{path}"},
    )


def full_record(spec: ObjectSpec, record: dict[str, Any]) -> dict[str, Any]:
    """The record as ``GET /objects/...`` returns it."""
    out = {"key": record["key"], **record}
    out["href"] = spec.href(record["key"])
    return out


def all_paths() -> tuple[str, ...]:
    return tuple(SEED_ORDER)


def company_preference(company: dict[str, Any]) -> dict[str, Any]:
    """The company's preferences as ``GET /objects/company-config/company-preference/setup``
    returns them inside ``ia::result``: the schema's (``objects.company-config.company-
    preference``) field names and defaults, with the company's own ``id`` and ``name``.

    Sage's published example of this operation puts ``id``, ``name``, ``contractCustomerId``
    and ``branding`` *beside* ``ia::result`` (at the top level of the body); its schema puts
    them inside ``ia::result``, which is where every other object has them. The emulator
    follows the schema. Company-wide: the same answer at the top level and in every entity.
    Fields the emulator has no value for (``contractCustomerId``, ``taxId``, address lines,
    ``branding``...) are left out: the schema types them as non-nullable strings.
    """
    return {
        "key": COMPANY_PREFERENCE_KEY,
        "id": company["id"],
        "name": company["name"],
        "legalName": company.get("legalName") or company["name"],
        "useISOCountryCodes": True,
        "operatingCountry": "unitedStates",
        "legalAddress": {"country": "unitedStates"},
        "companyAddress": {"country": "unitedStates"},
        "companyStructure": "flat",
        "permissionType": "roleBased",
        "disableScheduledJobs": False,
        "scheduledJobsExecutionOffsetHours": 0,
        "dateTimeSettings": {
            "timeZone": "GMT (Greenwich Mean Time) Dublin, Edinburgh, London",
            "dateFormat": "MM/DD/YYYY",
            "timeFormat": "HH24:MI:SS",
        },
        "decimalsSeparator": "period",
        "thousandsSeparator": "comma",
        "useUTF8ForPDF": True,
        "accounting": {
            "accountingPeriods": "standard",
            "firstFiscalMonth": "january",
            "weekBeginsOn": "sunday",
            "reportingMethod": "accrualBasis",
            "firstTaxMonth": "january",
            "baseCurrency": "USD",
            "primaryAccountNumberLength": 4,
            "accountFieldSeparator": "period",
            "subAccountNumberLength": 2,
            "enableCustomCurrency": False,
        },
        "locale": "en_US.UTF-8",
        "defaultCountryForAddresses": "unitedStates",
        "accountingPractice": "netAsset",
        "workdays": "MONDAY,TUESDAY,WEDNESDAY,THURSDAY,FRIDAY",
        "weekends": "SUNDAY,SATURDAY",
    }
