"""Create, update and delete one record: defaults, numbering, audit stamps, the company's
entity list (creating an entity), and what may not change or go (IDs, vendors with bills,
entities)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from intacct_connect.testing.emulator.catalogue.spec import ObjectSpec
from intacct_connect.testing.emulator.records.rules import apply_rules, operation_failed
from intacct_connect.testing.emulator.records.storage import (
    audit,
    collection,
    entity_ref,
    finish_lines,
    get_visible,
)
from intacct_connect.testing.emulator.records.validation import validate_body
from intacct_connect.testing.emulator.responses import detail, payload_errors
from intacct_connect.testing.emulator.store import Company, Entity, Record, Store, User


def iso_now(store: Store) -> str:
    return dt.datetime.fromtimestamp(store.now(), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def create(
    store: Store,
    company: Company,
    spec: ObjectSpec,
    body: Any,
    *,
    entity: str | None,
    user: User,
) -> Record:
    cleaned = validate_body(spec, body)
    coll = collection(store, company.id, spec.path)
    key = str(coll.next_key)
    record: dict[str, Any] = dict(cleaned)
    if spec.id_is_key:
        record["id"] = key
    elif not record.get("id") and spec.id_prefix:
        record["id"] = f"{spec.id_prefix}-{int(key):05d}"
        while record["id"] in coll.ids:
            record["id"] += "X"
    if "status" in spec.fields and record.get("status") is None:
        record["status"] = "active"
    if spec.path == "accounts-payable/vendor":
        record["state"] = "a"
    if spec.lines is not None and not record.get("state"):
        # Sage's documented defaults: a bill starts as a draft, invoices and journal entries
        # post.
        record["state"] = "draft" if spec.path == "accounts-payable/bill" else "posted"
    apply_rules(store, company, spec, record, "create", None)
    if spec.path == "company-config/entity" and not company.multi_entity:
        raise operation_failed(
            "create", spec, [detail("BL01001973", f"{company.id} is not a multi-entity company")]
        )
    record["key"] = key
    if spec.has_entity:
        record["entity"] = entity_ref(company, entity)
    now = iso_now(store)
    record["audit"] = audit(now, user.key, user.id)
    if spec.path in ("accounts-payable/vendor", "accounts-receivable/customer"):
        record.setdefault("totalDue", "0.00")
    if spec.lines is not None:
        finish_lines(spec, record)
    coll.rows[key] = record
    coll.next_key += 1
    if spec.unique_id:
        coll.ids[record["id"]] = key
    if spec.path == "company-config/entity":
        company.entities[record["id"]] = Entity(id=record["id"], key=key, name=record["name"])
    store.touch_records()
    return record


def _merge(target: Record, patch: dict[str, Any]) -> None:
    for name, value in patch.items():
        if isinstance(value, dict) and isinstance(target.get(name), dict) and value:
            inner = dict(target[name])
            _merge(inner, value)
            target[name] = inner
        else:
            target[name] = value


def update(
    store: Store,
    company: Company,
    spec: ObjectSpec,
    key: str,
    body: Any,
    *,
    entity: str | None,
    user: User,
) -> Record:
    record = get_visible(store, company, spec, key, entity)
    cleaned = validate_body(spec, body)
    # ids are not updatable (except account numbers)
    if (
        (spec.id_is_key or (spec.unique_id and spec.path != "general-ledger/account"))
        and "id" in cleaned
        and cleaned["id"] != record["id"]
    ):
        raise payload_errors([detail("invalidRequest", "id cannot be changed", target="/id")])
    updated = dict(record)
    lines = cleaned.pop(spec.lines.name, None) if spec.lines else None
    _merge(updated, cleaned)
    if lines is not None and spec.lines is not None:
        updated[spec.lines.name] = lines
    apply_rules(store, company, spec, updated, "update", key)
    if spec.lines is not None:
        finish_lines(spec, updated)
    when = iso_now(store)
    updated["audit"] = {
        **record["audit"],
        "modifiedDateTime": when,
        "modifiedBy": user.key,
        "modifiedByUser": {
            "key": user.key,
            "id": user.id,
            "href": f"/objects/company-config/user/{user.key}",
        },
    }
    coll = collection(store, company.id, spec.path)
    if spec.unique_id and updated["id"] != record["id"]:
        coll.ids.pop(record["id"], None)
        coll.ids[updated["id"]] = key
    coll.rows[key] = updated
    store.touch_records()
    return updated


def delete(
    store: Store, company: Company, spec: ObjectSpec, key: str, *, entity: str | None
) -> None:
    record = get_visible(store, company, spec, key, entity)
    if spec.path == "accounts-payable/vendor":
        bills = collection(store, company.id, "accounts-payable/bill").rows.values()
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
    coll = collection(store, company.id, spec.path)
    del coll.rows[key]
    if spec.unique_id:
        coll.ids.pop(record["id"], None)
    store.touch_records()
