"""The catalogue's types (``catalogue/spec.py``): what an :class:`ObjectSpec` derives from its
fields and references."""

from __future__ import annotations

from intacct_connect.testing.emulator.catalogue.spec import (
    AUDIT_FIELDS,
    ENTITY_FIELDS,
    ObjectSpec,
    RefSpec,
    f,
)


def spec(**kwargs: object) -> ObjectSpec:
    return ObjectSpec(
        path="accounts-payable/widget",
        fields={"id": f(required=True), "billPayment.dueNumberOfDays": f("integer")},
        refs={"term": RefSpec("accounts-payable/term", named=True)},
        **kwargs,  # type: ignore[arg-type]
    )


def test_every_record_gets_audit_and_entity_fields() -> None:
    widget = spec()
    assert set(AUDIT_FIELDS) | set(ENTITY_FIELDS) <= set(widget.fields)
    assert all(widget.fields[name].read_only for name in AUDIT_FIELDS)
    assert not set(ENTITY_FIELDS) & set(spec(has_entity=False).fields)


def test_groups_and_query_paths() -> None:
    widget = spec()
    assert {"billPayment", "audit", "audit.createdByUser", "entity"} <= widget.groups
    paths = widget.query_paths
    assert paths["billPayment.dueNumberOfDays"] == "integer"
    assert {"term.key", "term.id", "term.href", "term.name", "href"} <= set(paths)


def test_names_and_href() -> None:
    widget = spec()
    assert (widget.application, widget.name) == ("accounts-payable", "widget")
    assert widget.href("7") == "/objects/accounts-payable/widget/7"


def test_field_helper() -> None:
    assert f("date").fmt == "date"
    assert f("datetime").fmt == "date-time"
    required = f(required=True)
    assert (required.required, required.nullable) == (True, False)
    assert f(ro=True).read_only
