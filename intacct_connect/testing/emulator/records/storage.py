"""Record collections per company and object: lazy deterministic seeding, generated bulk
records, entity visibility, look-ups and the record as ``GET /objects/...`` serves it."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

from intacct_connect.testing.emulator.catalogue.registry import SEED_ORDER, SPECS
from intacct_connect.testing.emulator.catalogue.spec import ObjectSpec
from intacct_connect.testing.emulator.responses import APIError, not_found
from intacct_connect.testing.emulator.store import Collection, Company, Record, Store

SEED_DATETIME = "2025-01-02T09:00:00Z"
NULL_ENTITY: dict[str, Any] = {"key": None, "id": None, "name": None}


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


def entity_ref(company: Company, entity_id: str | None) -> dict[str, Any]:
    if not entity_id:
        return NULL_ENTITY
    entity = company.entities[entity_id]
    return {
        "key": entity.key,
        "id": entity_id,
        "name": entity.name,
        "href": f"/objects/company-config/entity/{entity.key}",
    }


def collection(store: Store, company_id: str, path: str) -> Collection:
    """The record collection of ``path`` in ``company_id``, seeded on first access."""
    per_company = store.records.get(company_id)
    if per_company is None:
        # Seed every object of the company at once, before any write, so seed data never
        # depends on what a test did first.
        per_company = store.records[company_id] = {}
        for seeded_path in SEED_ORDER:
            collection(store, company_id, seeded_path)
    coll = per_company.get(path)
    if coll is None:
        coll = per_company[path] = Collection()
        _seed_collection(store, company_id, path, coll)
    return coll


def _context(store: Store, company_id: str, path: str) -> dict[str, Any]:
    ctx: dict[str, Any] = {}
    if path in (
        "accounts-payable/bill",
        "accounts-receivable/invoice",
        "general-ledger/journal-entry",
    ):
        accounts = collection(store, company_id, "general-ledger/account").rows
        ctx["accounts"] = {r["id"]: {"key": k, "name": r["name"]} for k, r in accounts.items()}
    if path == "accounts-payable/bill":
        rows = collection(store, company_id, "accounts-payable/vendor").rows
        ctx["vendors"] = [{"key": k, "id": r["id"], "name": r["name"]} for k, r in rows.items()]
    if path == "accounts-receivable/invoice":
        rows = collection(store, company_id, "accounts-receivable/customer").rows
        ctx["customers"] = [{"key": k, "id": r["id"], "name": r["name"]} for k, r in rows.items()]
    return ctx


def _seed_collection(store: Store, company_id: str, path: str, coll: Collection) -> None:
    company = store.company(company_id)
    spec = SPECS[path]
    if company is None:
        return
    if path == "company-config/entity":
        for entity_id, entity in company.entities.items():
            # Field names from objects.company-config.entity; an entity has no ``entity``
            # reference of its own (whether it is private is emulator state, not a field).
            record = {
                "key": entity.key,
                "id": entity_id,
                "name": entity.name,
                "federalId": f"{10 + int(entity.key)}-0000000",
                "status": "active",
                "operatingCountry": "unitedStates",
                "baseCurrency": {
                    "key": "1",
                    "id": "USD",
                    "href": "/objects/company-config/txn-currency/1",
                },
                "audit": audit(SEED_DATETIME, "1", "admin"),
            }
            coll.rows[entity.key] = record
            coll.ids[entity_id] = entity.key
            coll.next_key = max(coll.next_key, int(entity.key) + 1)
        return
    if spec.generate is None or not spec.seed_count:
        return
    count = spec.seed_count if company.type == "production" else max(spec.seed_count // 5, 10)
    if path == "general-ledger/account":
        count = spec.seed_count
    rng = random.Random(f"{company_id}:{path}")  # noqa: S311 - deterministic test data
    insert_generated(store, company, spec, coll, count, rng=rng)


def insert_generated(
    store: Store,
    company: Company,
    spec: ObjectSpec,
    coll: Collection,
    count: int,
    *,
    rng: random.Random,
) -> None:
    """Append ``count`` generated records to ``coll`` (shared audit/entity sub-objects keep
    it cheap)."""
    if spec.generate is None:
        raise ValueError(f"{spec.path} has no generator")
    ctx = _context(store, company.id, spec.path)
    entities = list(company.entities) if company.multi_entity else []
    entity_refs = {e: entity_ref(company, e) for e in entities}
    shared_audit = audit(SEED_DATETIME, "1", "admin")
    transactional = spec.lines is not None
    rows = coll.rows
    ids = coll.ids
    next_key = coll.next_key
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
            finish_lines(spec, record)
        rows[key] = record
        if spec.unique_id:
            ids[record["id"]] = key
        next_key += 1
    coll.next_key = next_key
    store.touch_records()


def finish_lines(spec: ObjectSpec, record: Record) -> None:
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


def visible(
    record: Record,
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


def get_visible(
    store: Store, company: Company, spec: ObjectSpec, key: str, entity: str | None
) -> Record:
    """The record ``key`` as ``entity`` may see it, or 404 REST-1019."""
    record = collection(store, company.id, spec.path).rows.get(key)
    if record is None or not visible(record, entity, company.private_entities(), True):
        raise not_found_path(f"{spec.path}/{key}")
    return record


def not_found_path(path: str) -> APIError:
    """404 REST-1019 for ``/objects/<path>``."""
    return not_found(f"/objects/{path}")


def full_record(spec: ObjectSpec, record: Record) -> Record:
    """The record as ``GET /objects/...`` returns it."""
    out = {"key": record["key"], **record}
    out["href"] = spec.href(record["key"])
    return out
