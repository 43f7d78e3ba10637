"""The served objects' field names, shapes, enums and create rules (``catalogue/registry.py``)
against Sage's documents.

The expected names below are copied from Sage's OpenAPI documents (schemas
``objects.<application>.<object>`` and ``<application>-<object>RequiredProperties`` in
spec/company-configuration.json, accounts-payable.json, accounts-receivable.json and
general-ledger.json of the public mirror lorenz-bus-service/node-intacct-rest-api at commit
1dcbea361b3a4951e419d749dbea3c75e1b3ecd6; page offsets in the session notes
``sage_fields.md``). Each test reads the emulator through real HTTP.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from intacct_connect.testing.emulator import EmulatorServer
from tests.testing.conftest import api

AUDIT = {
    "createdDateTime",
    "modifiedDateTime",
    "createdBy",
    "modifiedBy",
    "createdByUser",
    "modifiedByUser",
}


ENTITY_REF = {"key", "id", "name", "href"}


GL_ACCOUNT_REF = {"key", "id", "name", "href"}


# Top-level property names of each Sage schema (all of them, not only the emulated ones).
SAGE_FIELDS: dict[str, set[str]] = {
    "company-config/entity": {
        "key", "id", "href", "name", "startDate", "endDate", "federalId", "baseCurrency",
        "firstFiscalMonth", "firstTaxMonth", "weekStart", "contacts", "texts", "isRoot",
        "businessDays", "weekendDays", "taxId", "defaultCountryForAddresses", "businessId",
        "openBooksStartDate", "operatingCountry", "legalContact", "isPartialExempt",
        "isDefaultPartialExempt", "accountingType", "statutoryReportingPeriodDate", "customer",
        "vendor", "unrecoverableTaxAccount", "enableInterEntityRelationships",
        "interEntityPayableGLAccount", "interEntityReceivableGLAccount", "manager",
        "taxSolution", "isLimitedEntity", "enableEInvoicing", "electronicAddress", "branding",
        "status", "audit",
    },
    "accounts-payable/bill": {
        "key", "id", "href", "billNumber", "moduleName", "state", "recordType", "vendor", "term",
        "referenceNumber", "description", "dueInDays", "postingDate", "discountCutOffDate",
        "dueDate", "recommendedPaymentDate", "createdDate", "isOnHold", "isTaxInclusive",
        "paymentPriority", "totalBaseAmount", "totalBaseAmountDue", "totalTxnAmount",
        "totalTxnAmountDue", "isSystemGenerated", "purchasing", "purchasingDocument",
        "recurringSchedule", "contacts", "currency", "taxSolution", "invoiceType", "invoiceMode",
        "eInvoiceStatus", "importStatus", "importErrorMessage", "recipientEmail", "senderEmail",
        "anomalyCode", "documentSource", "billSummary", "sourceModule", "paymentInformation",
        "retainage", "billBackTemplate", "attachment", "customerRefund", "location", "lines",
        "entity", "webURL", "dispute", "refuse", "audit",
    },
    "accounts-receivable/customer": {
        "key", "id", "name", "href", "status", "customerType", "parent", "salesRepresentative",
        "taxId", "electronicAddress", "defaultRevenueGLAccount", "shippingMethod",
        "creditLimit", "isOnHold", "contacts", "contactList", "audit", "restrictions",
        "customerEmailTemplates", "discountPercent", "term", "advanceBillBy",
        "advanceBillByType", "totalDue", "lastInvoiceCreatedDate", "lastStatementGeneratedDate",
        "resaleNumber", "customerResaleNumber", "deliveryOptions", "overridePriceList",
        "customerMessage", "currency", "emailOptIn", "activationDate", "subscriptionEndDate",
        "territory", "enableOnlineACHPayment", "enableOnlineCardPayment", "isOneTimeUse",
        "disableRefund", "vendor", "accountGroup", "accountLabel", "attachment",
        "retainagePercentage", "notes", "priceList", "priceSchedule", "overrideOffsetGLAccount",
        "customerRestriction", "restrictedLocations", "restrictedDepartments", "entity",
        "customerAccountHealth", "printTemplates", "webURL",
    },
    "accounts-receivable/invoice": {
        # the invoice schema lists no ``href``; Sage's responses carry it on every record
        "href",
        "key", "id", "action", "recordType", "moduleKey", "invoiceNumber", "state", "dueInDays",
        "referenceNumber", "description", "documentId", "salesDocument", "discountCutOffDate",
        "invoiceDate", "dueDate", "currency", "totalBaseAmount", "totalBaseAmountDue",
        "totalTxnAmount", "totalTxnAmountDue", "dunningCount", "customerMessage",
        "recurringSchedule", "paymentInformation", "contacts", "isSystemGeneratedDocument",
        "billbackTemplate", "createAPBill", "attachment", "customer", "term", "taxSolution",
        "invoiceType", "invoiceMode", "eInvoiceStatus", "dispute", "refuse", "invoiceSummary",
        "downloadURL", "allowOnlinePayment", "providerPayment", "retainage", "projectContract",
        "projectContractBilling", "architect", "projectContractBillingInvoiceSummary", "lines",
        "entity", "webURL", "audit",
    },
    "general-ledger/account": {
        "key", "id", "name", "accountType", "normalBalance", "closingType", "closeToGLAccount",
        "alternativeGLAccount", "disallowDirectPosting", "enableGLMatching",
        "reconciliationSequence", "isGermanTaxAccount", "status", "requireDimensions",
        "category", "isTaxable", "taxCode", "mrcCode", "constructionCategory", "entity", "audit",
        "href",
    },
    "general-ledger/journal-entry": {
        "key", "id", "txnNumber", "glJournal", "description", "postingDate",
        "scheduledOperationKey", "automaticReversalDate", "reversedFromDate", "reversedBy",
        "moduleName", "referenceNumber", "entity", "webURL", "baseLocation", "state",
        "sequenceNumber", "txnSource", "invoiceMode", "eReportingType", "balance", "tax",
        "audit", "href", "accountAllocationRun", "accountAllocation", "txnTemplate",
        "attachment", "lines",
    },
}  # fmt: skip


# Fields every GET of the object must include (the ones the emulator promises).
KEY_FIELDS: dict[str, set[str]] = {
    "company-config/entity": {"key", "id", "href", "name", "federalId", "status", "audit"},
    "accounts-payable/bill": {
        "key", "id", "href", "vendor", "createdDate", "dueDate", "state", "currency",
        "totalTxnAmount", "totalTxnAmountDue", "lines", "entity", "audit",
    },
    "accounts-receivable/customer": {
        "key", "id", "name", "href", "status", "contacts", "term", "totalDue", "entity", "audit",
    },
    "accounts-receivable/invoice": {
        "key", "id", "href", "customer", "invoiceDate", "dueDate", "state", "currency",
        "totalTxnAmount", "totalTxnAmountDue", "lines", "entity", "audit",
    },
    "general-ledger/account": {
        "key", "id", "name", "accountType", "normalBalance", "closingType", "status", "href",
        "entity", "audit",
    },
    "general-ledger/journal-entry": {
        "key", "id", "href", "glJournal", "postingDate", "description", "state", "lines",
        "entity", "audit",
    },
}  # fmt: skip


# Sub-objects (groups and references) the emulator emits, with Sage's property names.
SAGE_SUBFIELDS: dict[str, dict[str, set[str]]] = {
    "company-config/entity": {"baseCurrency": {"key", "id", "href"}, "audit": AUDIT},
    "accounts-payable/bill": {
        "vendor": {"key", "id", "name", "href", "vendorDue", "form1099"},
        "term": {"key", "id", "href"},
        "currency": {"baseCurrency", "txnCurrency", "exchangeRate"},
        "entity": ENTITY_REF,
        "audit": AUDIT,
    },
    "accounts-receivable/customer": {
        "customerType": {"key", "id", "href"},
        "parent": {"key", "id", "name", "href"},
        "term": {"key", "id", "href"},
        "contacts": {"default", "primary", "billTo", "shipTo"},
        "entity": ENTITY_REF,
        "audit": AUDIT,
    },
    "accounts-receivable/invoice": {
        "customer": {
            "key", "id", "name", "emailOption", "customerDue", "deliveryOptions", "href",
        },
        "term": {"key", "id", "href"},
        "currency": {"baseCurrency", "txnCurrency", "exchangeRate"},
        "entity": ENTITY_REF,
        "audit": AUDIT,
    },
    "general-ledger/account": {"entity": ENTITY_REF, "audit": AUDIT},
    "general-ledger/journal-entry": {
        "glJournal": {"key", "id", "isAdjustment", "name", "href"},
        "entity": ENTITY_REF,
        "audit": AUDIT,
    },
}  # fmt: skip


# contact-ref (contacts.default of a customer) and its mailingAddress.
CONTACT_REF = {
    "key", "id", "href", "lastName", "firstName", "middleName", "prefix", "printAs", "email1",
    "email2", "phone1", "phone2", "mobile", "pager", "fax", "URL1", "URL2", "companyName",
    "mailingAddress", "showInContactList", "tax", "electronicInvoiceDetails",
}  # fmt: skip


MAILING_ADDRESS = {
    "addressLine1", "addressLine2", "addressLine3", "city", "state", "postCode", "country",
    "isoCountryCode",
}  # fmt: skip


# Line items: objects.accounts-payable.bill-line, objects.accounts-receivable.invoice-line,
# objects.general-ledger.journal-entry-line.
SAGE_LINE_FIELDS: dict[str, set[str]] = {
    "accounts-payable/bill": {
        "id", "key", "href", "lineNumber", "hasForm1099", "form1099", "createdDate",
        "billNumber", "vendor", "glAccount", "overrideOffsetGLAccount", "accountLabel",
        "billAmount", "baseAmount", "txnAmount", "totalTxnAmount", "memo", "allocation",
        "currency", "paymentInformation", "releaseToPay", "isSubTotal", "baseLocation",
        "retainage", "project", "fixedAsset", "amortizationTemplate", "amortizationStartDate",
        "amortizationEndDate", "purchasing", "taxEntries", "dimensions", "bill", "audit",
    },
    "accounts-receivable/invoice": {
        "key", "id", "glAccount", "overrideOffsetGLAccount", "baseAmount", "txnAmount", "memo",
        "currency", "paymentInformation", "allocation", "lineNumber", "isSubtotal",
        "baseLocation", "createdDate", "accountLabel", "isSummarized", "retainage",
        "projectContract", "projectContractLine", "taxEntries", "dimensions", "invoice", "audit",
    },
    "general-ledger/journal-entry": {
        "key", "id", "lineNumber", "txnType", "txnAmount", "entryDate", "documentId",
        "description", "numberOfUnits", "reconciliationGroup", "accountingPeriod", "isBillable",
        "isBilled", "baseAmount", "interEntityTxnType", "parent", "state", "audit", "currency",
        "glAccount", "allocation", "dimensions", "href", "journalEntry", "taxEntries",
    },
}  # fmt: skip


KEY_LINE_FIELDS: dict[str, set[str]] = {
    "accounts-payable/bill": {"key", "id", "lineNumber", "glAccount", "txnAmount"},
    "accounts-receivable/invoice": {"key", "id", "lineNumber", "glAccount", "txnAmount"},
    "general-ledger/journal-entry": {
        "key", "id", "lineNumber", "glAccount", "txnAmount", "txnType",
    },
}  # fmt: skip


# ``state`` enums (header), as documented.
SAGE_STATES: dict[str, list[str]] = {
    "accounts-payable/bill": [
        "reversed", "reversal", "analyzing", "partiallyApproved", "submitted", "declined",
        "noValue", "posted", "paid", "partiallyPaid", "selected", "draft",
    ],
    "accounts-receivable/invoice": [
        "reversed", "reversal", "draft", "noValue", "posted", "paid", "partiallyPaid", "selected",
    ],
    "general-ledger/journal-entry": [
        "draft", "submitted", "partiallyApproved", "approved", "posted", "declined",
        "reversalPending", "reversed",
    ],
}  # fmt: skip


SAGE_STATUS: dict[str, list[str | None]] = {
    "company-config/entity": ["active", "inactive"],  # status
    "accounts-receivable/customer": ["active", "activeNonPosting", "inactive"],  # dimension-status
    "general-ledger/account": ["active", "inactive"],  # status
    "accounts-payable/vendor": ["active", "activeNonPosting", "inactive"],  # dimension-status
}


OBJECTS = sorted(SAGE_FIELDS)


def get_json(emu: EmulatorServer, token: str, path: str) -> dict[str, Any]:
    response = api(emu, "GET", path, token)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def sample_keys(emu: EmulatorServer, token: str, obj: str) -> list[str]:
    """A few keys spread over the collection (first, middle and last page members)."""
    listing = get_json(emu, token, f"/objects/{obj}")
    total = listing["ia::meta"]["totalCount"]
    keys = [ref["key"] for ref in listing["ia::result"]]
    assert len(keys) >= 2
    return sorted({keys[0], keys[len(keys) // 2], keys[-1]}) if total else []


def error_details(response: requests.Response) -> list[dict[str, Any]]:
    body = response.json()
    assert body["ia::meta"] == {"totalCount": 1, "totalSuccess": 0, "totalError": 1}
    details: list[dict[str, Any]] = body["ia::error"]["details"]
    return details


@pytest.mark.parametrize("obj", OBJECTS)
def test_get_one_uses_sage_field_names(
    intacct_emulator: EmulatorServer, admin_token: str, obj: str
) -> None:
    for key in sample_keys(intacct_emulator, admin_token, obj):
        record = get_json(intacct_emulator, admin_token, f"/objects/{obj}/{key}")["ia::result"]
        names = set(record)
        assert names <= SAGE_FIELDS[obj], names - SAGE_FIELDS[obj]
        assert KEY_FIELDS[obj] <= names, KEY_FIELDS[obj] - names
        for group, allowed in SAGE_SUBFIELDS[obj].items():
            if isinstance(record.get(group), dict):
                assert set(record[group]) <= allowed, (group, set(record[group]) - allowed)
        for name, value in record.items():
            if isinstance(value, dict) and name not in ("audit", "contacts", "currency"):
                # references: {key, id, href} (+ name): both key and id, href built from key
                assert {"key", "id"} <= set(value), name
                if value["key"] is not None:
                    assert value["href"].endswith(f"/{value['key']}"), name
        if obj in SAGE_LINE_FIELDS:
            assert record["lines"], key
            for line in record["lines"]:
                assert set(line) <= SAGE_LINE_FIELDS[obj], set(line) - SAGE_LINE_FIELDS[obj]
                assert KEY_LINE_FIELDS[obj] <= set(line)
                assert set(line["glAccount"]) == GL_ACCOUNT_REF


def test_entity_has_no_entity_reference_and_sage_names(
    intacct_emulator: EmulatorServer, admin_token: str
) -> None:
    listing = get_json(intacct_emulator, admin_token, "/objects/company-config/entity")
    entities = [
        get_json(intacct_emulator, admin_token, ref["href"])["ia::result"]
        for ref in listing["ia::result"]
    ]
    assert {e["id"] for e in entities} == {"EAST", "WEST"}
    for entity in entities:
        assert "entity" not in entity
        assert not {"currency", "startOpenDate", "isPrivate"} & set(entity)
        assert entity["operatingCountry"] == "unitedStates"  # Sage's `country` enum style
        assert entity["baseCurrency"]["id"] == "USD"
        assert entity["status"] == "active"


def test_customer_contact_uses_contact_ref_names(
    intacct_emulator: EmulatorServer, admin_token: str
) -> None:
    for key in sample_keys(intacct_emulator, admin_token, "accounts-receivable/customer"):
        customer = get_json(
            intacct_emulator, admin_token, f"/objects/accounts-receivable/customer/{key}"
        )["ia::result"]
        default = customer["contacts"]["default"]
        assert set(default) <= CONTACT_REF
        assert set(default["mailingAddress"]) <= MAILING_ADDRESS


def test_line_numbers_have_sage_types(intacct_emulator: EmulatorServer, admin_token: str) -> None:
    bill = get_json(intacct_emulator, admin_token, "/objects/accounts-payable/bill/1")
    invoice = get_json(intacct_emulator, admin_token, "/objects/accounts-receivable/invoice/1")
    entry = get_json(intacct_emulator, admin_token, "/objects/general-ledger/journal-entry/1")
    # bill-line lineNumber is a string; invoice-line a number; journal-entry-line an integer
    assert bill["ia::result"]["lines"][0]["lineNumber"] == "1"
    assert invoice["ia::result"]["lines"][0]["lineNumber"] == 1
    assert [line["lineNumber"] for line in entry["ia::result"]["lines"]] == [1, 2]


@pytest.mark.parametrize("obj", sorted(SAGE_STATES))
def test_state_enums_are_sages(
    intacct_emulator: EmulatorServer, admin_token: str, obj: str
) -> None:
    model = get_json(intacct_emulator, admin_token, f"/services/core/model?name={obj}")
    assert model["ia::result"]["fields"]["state"]["enum"] == SAGE_STATES[obj]
    for key in sample_keys(intacct_emulator, admin_token, obj):
        record = get_json(intacct_emulator, admin_token, f"/objects/{obj}/{key}")["ia::result"]
        assert record["state"] in SAGE_STATES[obj]


@pytest.mark.parametrize("obj", sorted(SAGE_STATUS))
def test_status_enums_are_sages(
    intacct_emulator: EmulatorServer, admin_token: str, obj: str
) -> None:
    model = get_json(intacct_emulator, admin_token, f"/services/core/model?name={obj}")
    assert model["ia::result"]["fields"]["status"]["enum"] == SAGE_STATUS[obj]


@pytest.mark.parametrize(
    ("obj", "body", "targets"),
    [
        # company-config-entityRequiredProperties: id, name, federalId
        ("company-config/entity", {"taxId": "X"}, {"/id", "/name", "/federalId"}),
        # accounts-payable-billRequiredProperties
        (
            "accounts-payable/bill",
            {"billNumber": "X", "vendor": {"key": "4"}, "currency": {"baseCurrency": "USD"}},
            {"/createdDate", "/dueDate", "/vendor/id", "/currency/txnCurrency", "/lines"},
        ),
        # accounts-receivable-customerRequiredProperties: name
        ("accounts-receivable/customer", {"notes": "X"}, {"/name"}),
        # accounts-receivable-invoiceRequiredProperties
        (
            "accounts-receivable/invoice",
            {"invoiceNumber": "X", "lines": [{"glAccount": {"key": "14"}}]},
            {
                "/invoiceDate",
                "/dueDate",
                "/customer/id",
                "/lines/0/txnAmount",
                "/lines/0/glAccount/id",
            },
        ),
        # general-ledger-accountRequiredProperties: id, name
        ("general-ledger/account", {"category": "X"}, {"/id", "/name"}),
        # general-ledger-journal-entryRequiredProperties (lines: minItems 2)
        (
            "general-ledger/journal-entry",
            {"referenceNumber": "X", "lines": [{"memo": None}]},
            None,  # memo is not a journal-entry-line field: 400 before the rules run
        ),
        (
            "general-ledger/journal-entry",
            {"referenceNumber": "X", "lines": [{"description": "only one"}]},
            {
                "/glJournal",
                "/postingDate",
                "/description",
                "/lines",
                "/lines/0/txnAmount",
                "/lines/0/txnType",
                "/lines/0/glAccount",
            },
        ),
    ],
)
def test_required_on_create_follow_sage(
    intacct_emulator: EmulatorServer,
    admin_token: str,
    obj: str,
    body: dict[str, Any],
    targets: set[str] | None,
) -> None:
    before = intacct_emulator.record_count("DEMO-CO", obj)
    response = api(intacct_emulator, "POST", f"/objects/{obj}", admin_token, json=body)
    if targets is None:
        assert response.status_code == 400
        assert [d["target"] for d in error_details(response)] == ["/lines/0/memo"]
    else:
        assert response.status_code == 422
        assert response.json()["ia::error"]["code"] == "operationFailed"
        assert {d["target"] for d in error_details(response)} == targets
    assert intacct_emulator.record_count("DEMO-CO", obj) == before


def test_old_names_are_rejected(intacct_emulator: EmulatorServer, admin_token: str) -> None:
    """Names the emulator used to accept but Sage does not document are invalid fields."""
    cases = [
        ("general-ledger/journal-entry", {"journal": {"id": "GJ"}}, "/journal"),
        ("general-ledger/journal-entry", {"totalDebit": "1"}, "/totalDebit"),
        ("company-config/entity", {"startOpenDate": "2025-01-01"}, "/startOpenDate"),
        ("company-config/entity", {"isPrivate": True}, "/isPrivate"),
        ("company-config/entity", {"currency": "USD"}, "/currency"),
    ]
    for obj, body, target in cases:
        response = api(intacct_emulator, "POST", f"/objects/{obj}", admin_token, json=body)
        assert response.status_code == 400, (obj, body)
        assert [d["target"] for d in error_details(response)] == [target]
        assert error_details(response)[0]["errorId"] == "REST-1043"


def test_create_with_sage_names_round_trips(
    intacct_emulator: EmulatorServer, admin_token: str
) -> None:
    entry = {
        "glJournal": {"id": "GJ"},
        "postingDate": "2025-03-31",
        "description": "Accrual",
        "referenceNumber": "ACC-1",
        "lines": [
            {
                "glAccount": {"id": "6100"},
                "txnAmount": "100.00",
                "txnType": "debit",
                "description": "Rent",
            },
            {"glAccount": {"key": "9"}, "txnAmount": "100", "txnType": "credit"},
        ],
    }
    response = api(
        intacct_emulator, "POST", "/objects/general-ledger/journal-entry", admin_token, json=entry
    )
    assert response.status_code == 201, response.text
    record = get_json(intacct_emulator, admin_token, response.json()["ia::result"]["href"])
    created = record["ia::result"]
    assert set(created) <= SAGE_FIELDS["general-ledger/journal-entry"]
    assert created["lines"][0]["description"] == "Rent"
    assert created["lines"][1]["glAccount"]["id"] == "2100"  # key 9 resolved to its number
    invoice = {
        "customer": {"id": "CUST-00003"},
        "invoiceDate": "2025-04-01",
        "dueDate": "2025-05-01",
        "lines": [{"glAccount": {"id": "4000"}, "txnAmount": "25", "memo": "Consulting"}],
    }
    response = api(
        intacct_emulator, "POST", "/objects/accounts-receivable/invoice", admin_token, json=invoice
    )
    assert response.status_code == 201, response.text
    created = get_json(intacct_emulator, admin_token, response.json()["ia::result"]["href"])[
        "ia::result"
    ]
    assert set(created) <= SAGE_FIELDS["accounts-receivable/invoice"]
    assert created["state"] == "posted"  # Sage's documented default for an invoice
    assert created["customer"]["name"]
    assert created["totalTxnAmount"] == "25.00"
    entity = {"id": "NORTH", "name": "North", "federalId": "12-3456789"}
    response = api(
        intacct_emulator, "POST", "/objects/company-config/entity", admin_token, json=entity
    )
    assert response.status_code == 201, response.text
    created = get_json(intacct_emulator, admin_token, response.json()["ia::result"]["href"])[
        "ia::result"
    ]
    assert set(created) <= SAGE_FIELDS["company-config/entity"]
    assert "entity" not in created


def test_journal_entry_needs_two_lines_and_balance(
    intacct_emulator: EmulatorServer, admin_token: str
) -> None:
    path = "/objects/general-ledger/journal-entry"
    base = {"glJournal": {"id": "GJ"}, "postingDate": "2025-03-31", "description": "One line"}
    one = {**base, "lines": [{"glAccount": {"id": "6100"}, "txnAmount": "0", "txnType": "debit"}]}
    response = api(intacct_emulator, "POST", path, admin_token, json=one)
    assert response.status_code == 422
    assert [d["target"] for d in error_details(response)] == ["/lines"]
    unbalanced = {
        **base,
        "lines": [
            {"glAccount": {"id": "6100"}, "txnAmount": "10", "txnType": "debit"},
            {"glAccount": {"id": "1000"}, "txnAmount": "9", "txnType": "credit"},
        ],
    }
    response = api(intacct_emulator, "POST", path, admin_token, json=unbalanced)
    assert response.status_code == 422
    assert response.json()["ia::error"]["code"] == "operationFailed"
    assert "not balanced" in error_details(response)[0]["message"]


def test_query_uses_sage_names(intacct_emulator: EmulatorServer, admin_token: str) -> None:
    response = api(
        intacct_emulator,
        "POST",
        "/services/core/query",
        admin_token,
        json={
            "object": "general-ledger/journal-entry",
            "fields": ["key", "glJournal.id", "glJournal.name", "description", "state"],
            "size": 3,
        },
    )
    assert response.status_code == 200, response.text
    rows = response.json()["ia::result"]
    assert len(rows) == 3
    for row in rows:
        # the query service answers dotted names, as Sage's does
        assert (row["glJournal.id"], row["glJournal.name"]) == ("GJ", "General Journal")
        assert row["state"] in SAGE_STATES["general-ledger/journal-entry"]
    old = api(
        intacct_emulator,
        "POST",
        "/services/core/query",
        admin_token,
        json={"object": "general-ledger/journal-entry", "fields": ["journal.id"]},
    )
    assert old.status_code == 400
    entity_query = api(
        intacct_emulator,
        "POST",
        "/services/core/query",
        admin_token,
        json={"object": "company-config/entity", "fields": ["id", "entity.id"]},
    )
    assert entity_query.status_code == 400  # an entity has no entity reference
