"""The types of the object catalogue: :class:`ObjectSpec` (an object's fields as dotted
paths, its references, its owned line list, what create requires, how seed data is made),
:class:`FieldSpec`, :class:`RefSpec` and :class:`LineSpec`, and the read-only ``audit`` and
``entity`` fields every record carries."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FieldSpec:
    type: str  # string, integer, number, decimal (string-typed), boolean, date, datetime
    enum: tuple[str, ...] | None = None
    read_only: bool = False
    required: bool = False
    nullable: bool = True
    fmt: str | None = None


def f(
    type_: str = "string",
    *,
    enum: tuple[str, ...] | None = None,
    ro: bool = False,
    required: bool = False,
) -> FieldSpec:
    fmt = {"date": "date", "datetime": "date-time"}.get(type_)
    return FieldSpec(type_, enum, ro, required, not required, fmt)


AUDIT_FIELDS = {
    "audit.createdDateTime": f("datetime", ro=True),
    "audit.modifiedDateTime": f("datetime", ro=True),
    "audit.createdBy": f(ro=True),
    "audit.modifiedBy": f(ro=True),
    "audit.createdByUser.key": f(ro=True),
    "audit.createdByUser.id": f(ro=True),
    "audit.createdByUser.href": f(ro=True),
    "audit.modifiedByUser.key": f(ro=True),
    "audit.modifiedByUser.id": f(ro=True),
    "audit.modifiedByUser.href": f(ro=True),
}
ENTITY_FIELDS = {
    "entity.key": f(ro=True),
    "entity.id": f(ro=True),
    "entity.name": f(ro=True),
    "entity.href": f(ro=True),
}


@dataclass(frozen=True)
class RefSpec:
    target: str  # application/object of the referenced record
    named: bool = False  # the reference carries a read-only ``name``
    required: bool = False
    require_id: bool = False  # create needs ``<ref>.id`` (Sage's RequiredProperties), not a key


@dataclass
class LineSpec:
    name: str  # the list field, e.g. "lines"
    object: str  # the owned object's path, e.g. "accounts-payable/bill-line"
    fields: dict[str, FieldSpec]
    refs: dict[str, RefSpec]
    min_lines: int = 1


@dataclass
class ObjectSpec:
    path: str
    fields: dict[str, FieldSpec]
    refs: dict[str, RefSpec] = field(default_factory=dict)
    lines: LineSpec | None = None
    id_prefix: str | None = None  # auto-numbered ids ("VEND-00001") when create omits id
    id_is_key: bool = False  # transactions: id is the record key
    unique_id: bool = True
    label: str = ""
    generate: Callable[[random.Random, int, dict[str, Any]], dict[str, Any]] | None = None
    seed_count: int = 0
    http_methods: str = "OPTIONS,GET,POST,PATCH,DELETE"
    has_entity: bool = True  # records carry the read-only ``entity`` reference (entity-ref)

    def __post_init__(self) -> None:
        self.fields = {**self.fields, **AUDIT_FIELDS, **(ENTITY_FIELDS if self.has_entity else {})}
        groups: set[str] = set()
        for name in self.fields:
            parts = name.split(".")
            for i in range(1, len(parts)):
                groups.add(".".join(parts[:i]))
        self.groups = frozenset(groups)
        paths: dict[str, str] = {name: spec.type for name, spec in self.fields.items()}
        for name, ref in self.refs.items():
            paths[f"{name}.key"] = "string"
            paths[f"{name}.id"] = "string"
            paths[f"{name}.href"] = "string"
            if ref.named:
                paths[f"{name}.name"] = "string"
        paths["href"] = "string"
        self.query_paths = paths

    @property
    def application(self) -> str:
        return self.path.split("/")[0]

    @property
    def name(self) -> str:
        return self.path.split("/")[1]

    def href(self, key: str) -> str:
        return f"/objects/{self.path}/{key}"
