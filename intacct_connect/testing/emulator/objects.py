"""The objects the emulator serves, with Sage's field names, and deterministic generators.

Each :class:`ObjectSpec` lists the object's fields (dotted paths for groups such as
``billPayment.defaultDateOptions``), its references to other objects (``{key, id, href}``),
its owned line list, what create requires, and a generator for seed and bulk data. Field
names follow Sage's OpenAPI documents; only a practical subset of each object's fields is
emulated (see ``docs/emulator.rst``).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

STATUS = ("active", "activeNonPosting", "inactive")
ACTIVE_INACTIVE = ("active", "inactive")


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


# --- deterministic data ----------------------------------------------------------------
WORDS_A = (
    "Acme",
    "Blue",
    "Cedar",
    "Delta",
    "Echo",
    "Falcon",
    "Granite",
    "Harbor",
    "Iron",
    "Juniper",
    "Kestrel",
    "Lumen",
    "Maple",
    "Nimbus",
    "Orion",
    "Pioneer",
    "Quarry",
    "Redwood",
    "Summit",
    "Tidal",
    "Union",
    "Vertex",
    "Willow",
    "Zenith",
)
WORDS_B = (
    "Supplies",
    "Logistics",
    "Partners",
    "Systems",
    "Foods",
    "Electric",
    "Design",
    "Labs",
    "Freight",
    "Media",
    "Works",
    "Services",
    "Holdings",
    "Traders",
    "Consulting",
    "Paper",
)
SUFFIX = ("Inc", "LLC", "Ltd", "Co", "Group", "Corp")
CITIES = (
    ("San Jose", "California", "95110"),
    ("Austin", "Texas", "73301"),
    ("Boston", "Massachusetts", "02108"),
    ("Denver", "Colorado", "80202"),
    ("Seattle", "Washington", "98101"),
    ("Chicago", "Illinois", "60601"),
)
TERMS = (("Net 30", "3"), ("Net 60", "4"), ("Net 15", "2"), ("Due on receipt", "1"))

ACCOUNTS = (
    ("1000", "Cash", "balanceSheet", "debit", "Cash and Cash Equivalents"),
    ("1010", "Petty Cash", "balanceSheet", "debit", "Cash and Cash Equivalents"),
    ("1100", "Accounts Receivable", "balanceSheet", "debit", "Accounts Receivable"),
    ("1200", "Inventory", "balanceSheet", "debit", "Inventory"),
    ("1300", "Prepaid Expenses", "balanceSheet", "debit", "Other Current Assets"),
    ("1500", "Equipment", "balanceSheet", "debit", "Fixed Assets"),
    ("1510", "Accumulated Depreciation", "balanceSheet", "credit", "Fixed Assets"),
    ("2000", "Accounts Payable", "balanceSheet", "credit", "Accounts Payable"),
    ("2100", "Accrued Liabilities", "balanceSheet", "credit", "Other Current Liabilities"),
    ("2200", "Sales Tax Payable", "balanceSheet", "credit", "Other Current Liabilities"),
    ("2500", "Long-term Debt", "balanceSheet", "credit", "Long Term Liabilities"),
    ("3000", "Common Stock", "balanceSheet", "credit", "Equity"),
    ("3100", "Retained Earnings", "balanceSheet", "credit", "Retained Earnings"),
    ("4000", "Sales Revenue", "incomeStatement", "credit", "Revenue"),
    ("4100", "Service Revenue", "incomeStatement", "credit", "Revenue"),
    ("4900", "Other Income", "incomeStatement", "credit", "Other Income"),
    ("5000", "Cost of Goods Sold", "incomeStatement", "debit", "Cost of Sales"),
    ("6000", "Salaries and Wages", "incomeStatement", "debit", "Expenses"),
    ("6100", "Rent Expense", "incomeStatement", "debit", "Expenses"),
    ("6200", "Utilities", "incomeStatement", "debit", "Expenses"),
    ("6300", "Office Supplies", "incomeStatement", "debit", "Expenses"),
    ("6400", "Travel", "incomeStatement", "debit", "Expenses"),
    ("6500", "Professional Fees", "incomeStatement", "debit", "Expenses"),
    ("6600", "Insurance", "incomeStatement", "debit", "Expenses"),
    ("6700", "Depreciation Expense", "incomeStatement", "debit", "Expenses"),
    ("6800", "Bank Charges", "incomeStatement", "debit", "Expenses"),
    ("6900", "Marketing", "incomeStatement", "debit", "Expenses"),
    ("7000", "Interest Expense", "incomeStatement", "debit", "Other Expenses"),
)
EXPENSE_ACCOUNTS = ("5000", "6000", "6100", "6200", "6300", "6400", "6500", "6600", "6900")
REVENUE_ACCOUNTS = ("4000", "4100", "4900")


def company_name(rng: random.Random) -> str:
    return f"{rng.choice(WORDS_A)} {rng.choice(WORDS_B)} {rng.choice(SUFFIX)}"


def money(rng: random.Random, low: int, high: int) -> str:
    return f"{rng.randint(low, high)}.{rng.randint(0, 99):02d}"


def day(rng: random.Random, base_ordinal: int, spread: int) -> str:
    import datetime as _dt

    return _dt.date.fromordinal(base_ordinal + rng.randint(0, spread)).isoformat()


BASE_DAY = 739252  # 2025-01-01 (date.toordinal)


def ref(path: str, key: str | None, id_: str | None, name: str | None = None) -> dict[str, Any]:
    value: dict[str, Any] = {"key": key, "id": id_}
    if name is not None:
        value["name"] = name
    if key is not None:
        value["href"] = f"/objects/{path}/{key}"
    return value


def gen_vendor(rng: random.Random, n: int, ctx: dict[str, Any]) -> dict[str, Any]:
    name = company_name(rng)
    city, state, post = rng.choice(CITIES)
    term_name, term_key = rng.choice(TERMS)
    return {
        "id": f"VEND-{n:05d}",
        "name": name,
        "status": "active" if rng.random() < 0.9 else "inactive",
        "state": "a",
        "taxId": f"{rng.randint(10, 99)}-{rng.randint(1000000, 9999999)}",
        "creditLimit": rng.choice((0, 5000, 10000, 25000, 40000, 100000)),
        "totalDue": money(rng, 0, 50000),
        "isOnHold": rng.random() < 0.05,
        "doNotPay": False,
        "billingType": rng.choice(("openItem", "balanceForward")),
        "paymentPriority": rng.choice(("normal", "normal", "high", "low", "urgent")),
        "currency": "USD",
        "vendorAccountNumber": str(rng.randint(100000, 999999)),
        "term": ref("accounts-payable/term", term_key, term_name),
        "contacts": {
            "default": {
                "companyName": name,
                "email1": f"ap{n}@example.com",
                "phone1": f"1408555{rng.randint(1000, 9999)}",
                "mailingAddress": {
                    "addressLine1": f"{rng.randint(1, 999)} Main Street",
                    "city": city,
                    "state": state,
                    "postCode": post,
                    "country": "United States",
                },
            }
        },
    }


def gen_customer(rng: random.Random, n: int, ctx: dict[str, Any]) -> dict[str, Any]:
    name = company_name(rng)
    city, state, post = rng.choice(CITIES)
    term_name, term_key = rng.choice(TERMS)
    return {
        "id": f"CUST-{n:05d}",
        "name": name,
        "status": "active" if rng.random() < 0.9 else "inactive",
        "creditLimit": rng.choice((0, 10000, 50000, 100000)),
        "totalDue": money(rng, 0, 80000),
        "isOnHold": rng.random() < 0.03,
        "currency": "USD",
        "term": ref("accounts-receivable/term", term_key, term_name),
        "contacts": {
            "default": {
                "companyName": name,
                "email1": f"ar{n}@example.com",
                "phone1": f"1512555{rng.randint(1000, 9999)}",
                "mailingAddress": {
                    "addressLine1": f"{rng.randint(1, 999)} Market Street",
                    "city": city,
                    "state": state,
                    "postCode": post,
                    "country": "United States",
                },
            }
        },
    }


def gen_account(rng: random.Random, n: int, ctx: dict[str, Any]) -> dict[str, Any]:
    if n <= len(ACCOUNTS):
        number, name, kind, normal, category = ACCOUNTS[n - 1]
    else:
        number = str(8000 + n)
        name, kind, normal, category = (
            f"Expense account {n}",
            "incomeStatement",
            "debit",
            "Expenses",
        )
    return {
        "id": number,
        "name": name,
        "accountType": kind,
        "normalBalance": normal,
        "closingType": "closingAccount" if kind == "incomeStatement" else "nonClosingAccount",
        "category": category,
        "status": "active",
        "isTaxable": False,
    }


def _account_ref(ctx: dict[str, Any], number: str) -> dict[str, Any]:
    accounts: dict[str, dict[str, Any]] = ctx.get("accounts", {})
    account = accounts.get(number)
    if account is None:
        return {"id": number}
    return ref("general-ledger/account", account["key"], number, account.get("name"))


def _party_ref(ctx: dict[str, Any], kind: str, rng: random.Random) -> dict[str, Any]:
    parties: list[dict[str, Any]] = ctx.get(kind, [])
    path = "accounts-payable/vendor" if kind == "vendors" else "accounts-receivable/customer"
    if not parties:
        return {"id": None, "key": None}
    party = parties[rng.randrange(len(parties))]
    return ref(path, party["key"], party["id"], party["name"])


def _lines(
    rng: random.Random, ctx: dict[str, Any], accounts: tuple[str, ...], count: int
) -> list[dict[str, Any]]:
    return [
        {
            "glAccount": _account_ref(ctx, rng.choice(accounts)),
            "txnAmount": money(rng, 10, 5000),
            "memo": f"Line {i + 1}",
        }
        for i in range(count)
    ]


def gen_bill(rng: random.Random, n: int, ctx: dict[str, Any]) -> dict[str, Any]:
    created = day(rng, BASE_DAY, 600)
    return {
        "billNumber": f"BILL-{n:05d}",
        "vendor": _party_ref(ctx, "vendors", rng),
        "referenceNumber": f"PO-{rng.randint(1000, 9999)}",
        "description": "Vendor bill",
        "createdDate": created,
        "postingDate": created,
        "dueDate": created,
        "state": rng.choice(("posted", "posted", "paid", "partiallyPaid", "draft")),
        "currency": {"baseCurrency": "USD", "txnCurrency": "USD"},
        "lines": _lines(rng, ctx, EXPENSE_ACCOUNTS, rng.randint(1, 3)),
    }


def gen_invoice(rng: random.Random, n: int, ctx: dict[str, Any]) -> dict[str, Any]:
    created = day(rng, BASE_DAY, 600)
    return {
        "invoiceNumber": f"INV-{n:05d}",
        "customer": _party_ref(ctx, "customers", rng),
        "referenceNumber": f"SO-{rng.randint(1000, 9999)}",
        "description": "Customer invoice",
        "invoiceDate": created,
        "dueDate": created,
        "state": rng.choice(("posted", "posted", "paid", "partiallyPaid", "draft")),
        "currency": {"baseCurrency": "USD", "txnCurrency": "USD"},
        "lines": _lines(rng, ctx, REVENUE_ACCOUNTS, rng.randint(1, 3)),
    }


def gen_journal_entry(rng: random.Random, n: int, ctx: dict[str, Any]) -> dict[str, Any]:
    amount = money(rng, 10, 20000)
    debit, credit = rng.choice((("6100", "1000"), ("1100", "4000"), ("6000", "2100")))
    return {
        "glJournal": ref("general-ledger/journal", "1", "GJ", "General Journal"),
        "postingDate": day(rng, BASE_DAY, 600),
        "description": f"Journal entry {n}",
        "referenceNumber": f"JE-{n:05d}",
        "state": "posted",
        "lines": [
            {
                "glAccount": _account_ref(ctx, debit),
                "txnAmount": amount,
                "txnType": "debit",
                "description": "Debit",
            },
            {
                "glAccount": _account_ref(ctx, credit),
                "txnAmount": amount,
                "txnType": "credit",
                "description": "Credit",
            },
        ],
    }


LINE_COMMON = {
    "key": f(ro=True),
    "id": f(ro=True),
    "lineNumber": f("integer", ro=True),
    "txnAmount": f("decimal", required=True),
}
CONTACT_FIELDS = {
    "contacts.default.companyName": f(),
    "contacts.default.firstName": f(),
    "contacts.default.lastName": f(),
    "contacts.default.printAs": f(),
    "contacts.default.email1": f(),
    "contacts.default.email2": f(),
    "contacts.default.phone1": f(),
    "contacts.default.phone2": f(),
    "contacts.default.mailingAddress.addressLine1": f(),
    "contacts.default.mailingAddress.addressLine2": f(),
    "contacts.default.mailingAddress.city": f(),
    "contacts.default.mailingAddress.state": f(),
    "contacts.default.mailingAddress.postCode": f(),
    "contacts.default.mailingAddress.country": f(),
}
# ``state`` enums as Sage documents them (objects.accounts-payable.bill,
# objects.accounts-receivable.invoice, objects.general-ledger.journal-entry).
BILL_STATES = (
    "reversed",
    "reversal",
    "analyzing",
    "partiallyApproved",
    "submitted",
    "declined",
    "noValue",
    "posted",
    "paid",
    "partiallyPaid",
    "selected",
    "draft",
)
INVOICE_STATES = (
    "reversed",
    "reversal",
    "draft",
    "noValue",
    "posted",
    "paid",
    "partiallyPaid",
    "selected",
)
JOURNAL_ENTRY_STATES = (
    "draft",
    "submitted",
    "partiallyApproved",
    "approved",
    "posted",
    "declined",
    "reversalPending",
    "reversed",
)

SPECS: dict[str, ObjectSpec] = {}


def register(spec: ObjectSpec) -> ObjectSpec:
    SPECS[spec.path] = spec
    return spec


register(
    ObjectSpec(
        path="company-config/entity",
        label="Entity",
        fields={
            "key": f(ro=True),
            "id": f(required=True),
            "name": f(required=True),
            "federalId": f(required=True),
            "status": f(enum=ACTIVE_INACTIVE),
            "taxId": f(),
            "operatingCountry": f(),
            "startDate": f("date"),
            "endDate": f("date"),
            "openBooksStartDate": f("date"),
        },
        refs={"baseCurrency": RefSpec("company-config/txn-currency")},
        http_methods="OPTIONS,GET,POST,PATCH,DELETE",
        has_entity=False,
    )
)
register(
    ObjectSpec(
        path="accounts-payable/vendor",
        label="Vendor",
        fields={
            "key": f(ro=True),
            "id": f(required=True),
            "name": f(required=True),
            "status": f(enum=STATUS),
            "isOneTimeUse": f("boolean"),
            "taxId": f(),
            "creditLimit": f("number"),
            "totalDue": f("decimal", ro=True),
            "isOnHold": f("boolean"),
            "doNotPay": f("boolean"),
            "billingType": f(enum=("openItem", "balanceForward")),
            "paymentPriority": f(enum=("urgent", "high", "normal", "low")),
            "currency": f(),
            "vendorAccountNumber": f(),
            "notes": f(),
            "preferredPaymentMethod": f(enum=("printedCheck", "chargeCard", "EFT", "cash", "ACH")),
            "billPayment.defaultDateOptions": f(
                enum=("none", "dueDate", "billDate", "discountDate")
            ),
            "billPayment.offsetTypePlusMinus": f(enum=("+", "-")),
            "billPayment.dueNumberOfDays": f("integer"),
            "billPayment.billNumberOfDays": f("integer"),
            "lastBillCreatedDate": f("date", ro=True),
            "lastPaymentMadeDate": f("date", ro=True),
            "state": f(enum=("s", "a", "r"), ro=True),
            "defaultLeadTime": f("integer"),
            "alwaysCreateBill": f("boolean"),
            "retainagePercentage": f("number"),
            "discountPercent": f("number"),
            "isIndividualPerson": f("boolean"),
            "mergePaymentRequests": f("boolean"),
            "sendPaymentNotification": f("boolean"),
            "displayTermDiscountOnCheckStub": f("boolean"),
            "displayVendorAccountOnCheckStub": f("boolean"),
            "filePaymentService": f(enum=("ach", "bankFile", "none")),
            "vendorRestriction": f(enum=("unrestricted", "rootOnly", "restricted")),
            "form1099.is1099Eligible": f("boolean"),
            "form1099.nameOn1099": f(),
            "form1099.type": f(),
            "form1099.box": f(),
            "ach.enablePayments": f("boolean"),
            "ach.routingNumber": f(),
            "ach.accountNumber": f(),
            "ach.accountType": f(enum=("checkingAccount", "savingsAccount")),
            "ach.remittanceType": f(enum=("businessCTX", "personalPPD", "businessCCD")),
            **CONTACT_FIELDS,
            **{
                f"contacts.{role}.{part}": f()
                for role in ("primary", "payTo", "returnTo", "recipient1099")
                for part in ("key", "id")
            },
        },
        refs={
            "term": RefSpec("accounts-payable/term"),
            "vendorType": RefSpec("accounts-payable/vendor-type"),
            "parent": RefSpec("accounts-payable/vendor", named=True),
            "accountGroup": RefSpec("purchasing/vendor-gl-group"),
            "priceList": RefSpec("purchasing/price-list"),
            "priceSchedule": RefSpec("purchasing/price-schedule"),
            "defaultExpenseGLAccount": RefSpec("general-ledger/account", named=True),
            "overrideOffsetGLAccount": RefSpec("general-ledger/account", named=True),
        },
        id_prefix="VEND",
        generate=gen_vendor,
        seed_count=250,
    )
)
register(
    ObjectSpec(
        path="accounts-receivable/customer",
        label="Customer",
        fields={
            "key": f(ro=True),
            "id": f(),
            "name": f(required=True),
            "status": f(enum=STATUS),
            "creditLimit": f("number"),
            "totalDue": f("decimal", ro=True),
            "isOnHold": f("boolean"),
            "currency": f(),
            "notes": f(),
            **CONTACT_FIELDS,
        },
        refs={
            "term": RefSpec("accounts-receivable/term"),
            "customerType": RefSpec("accounts-receivable/customer-type"),
            "parent": RefSpec("accounts-receivable/customer", named=True),
        },
        id_prefix="CUST",
        generate=gen_customer,
        seed_count=200,
    )
)
register(
    ObjectSpec(
        path="general-ledger/account",
        label="Account",
        fields={
            "key": f(ro=True),
            "id": f(required=True),
            "name": f(required=True),
            "accountType": f(enum=("balanceSheet", "incomeStatement")),
            "normalBalance": f(enum=("debit", "credit")),
            "closingType": f(enum=("nonClosingAccount", "closingAccount", "closedToAccount")),
            "category": f(),
            "status": f(enum=ACTIVE_INACTIVE),
            "isTaxable": f("boolean"),
        },
        generate=gen_account,
        seed_count=len(ACCOUNTS),
    )
)
BILL_LINE = LineSpec(
    "lines",
    "accounts-payable/bill-line",
    # Sage types a bill line's lineNumber as a string (objects.accounts-payable.bill-line).
    fields={**LINE_COMMON, "lineNumber": f(ro=True), "memo": f()},
    refs={"glAccount": RefSpec("general-ledger/account", named=True, required=True)},
)
register(
    ObjectSpec(
        path="accounts-payable/bill",
        label="Bill",
        fields={
            "key": f(ro=True),
            "id": f(ro=True),
            "billNumber": f(),
            "referenceNumber": f(),
            "description": f(),
            "createdDate": f("date", required=True),
            "postingDate": f("date"),
            "dueDate": f("date", required=True),
            "state": f(enum=BILL_STATES),
            "totalTxnAmount": f("decimal", ro=True),
            "totalTxnAmountDue": f("decimal", ro=True),
            "currency.baseCurrency": f(),
            "currency.txnCurrency": f(required=True),
        },
        refs={
            "vendor": RefSpec("accounts-payable/vendor", named=True, required=True, require_id=True)
        },
        lines=BILL_LINE,
        id_is_key=True,
        unique_id=False,
        generate=gen_bill,
        seed_count=300,
    )
)
INVOICE_LINE = LineSpec(
    "lines",
    "accounts-receivable/invoice-line",
    fields={**LINE_COMMON, "memo": f()},
    refs={
        "glAccount": RefSpec("general-ledger/account", named=True, required=True, require_id=True)
    },
)
register(
    ObjectSpec(
        path="accounts-receivable/invoice",
        label="Invoice",
        fields={
            "key": f(ro=True),
            "id": f(ro=True),
            "invoiceNumber": f(),
            "referenceNumber": f(),
            "description": f(),
            "invoiceDate": f("date", required=True),
            "dueDate": f("date", required=True),
            "state": f(enum=INVOICE_STATES),
            "totalTxnAmount": f("decimal", ro=True),
            "totalTxnAmountDue": f("decimal", ro=True),
            "currency.baseCurrency": f(),
            "currency.txnCurrency": f(),
        },
        refs={
            "customer": RefSpec(
                "accounts-receivable/customer", named=True, required=True, require_id=True
            )
        },
        lines=INVOICE_LINE,
        id_is_key=True,
        unique_id=False,
        generate=gen_invoice,
        seed_count=300,
    )
)
JE_LINE = LineSpec(
    "lines",
    "general-ledger/journal-entry-line",
    fields={
        **LINE_COMMON,
        "txnType": f(enum=("debit", "credit"), required=True),
        "description": f(),
    },
    refs={"glAccount": RefSpec("general-ledger/account", named=True, required=True)},
    min_lines=2,  # Sage: "At least two line items are required per journal entry"
)
register(
    ObjectSpec(
        path="general-ledger/journal-entry",
        label="Journal entry",
        fields={
            "key": f(ro=True),
            "id": f(ro=True),
            "postingDate": f("date", required=True),
            "description": f(required=True),
            "referenceNumber": f(),
            "state": f(enum=JOURNAL_ENTRY_STATES),
        },
        refs={"glJournal": RefSpec("general-ledger/journal", named=True, required=True)},
        lines=JE_LINE,
        id_is_key=True,
        unique_id=False,
        generate=gen_journal_entry,
        seed_count=150,
    )
)

#: Seeding order: generators of later objects reference earlier ones.
SEED_ORDER = (
    "company-config/entity",
    "general-ledger/account",
    "accounts-payable/vendor",
    "accounts-receivable/customer",
    "accounts-payable/bill",
    "accounts-receivable/invoice",
    "general-ledger/journal-entry",
)


def get_spec(path: str) -> ObjectSpec | None:
    return SPECS.get(path)


# --- company preferences (a singleton, not a collection) --------------------------------
#: ``GET /objects/company-config/company-preference/setup`` (Company Configuration OpenAPI,
#: operation ``get-company-config-company-preference``; schema
#: ``objects.company-config.company-preference``). The key "must be set to ``setup``"; there
#: is no collection URL. Sage also lists ``PATCH`` (``update-company-config-company-
#: preference``); the emulator serves only ``GET`` and answers other methods 405 REST-1020.
#: Field names and defaults are the schema's; only a practical subset is emulated (no
#: security settings such as ``singleSignOn`` or ``passwordSettings``). The schema has no
#: ``href``, ``audit`` or ``entity``.
COMPANY_PREFERENCE_PATH = "company-config/company-preference"
COMPANY_PREFERENCE_KEY = "setup"
COMPANY_PREFERENCE_METHODS = "GET"
MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
SEPARATORS = ("comma", "period", "underscore", "space", "companyDefault")
_ADDRESS = ("addressLine1", "addressLine2", "addressLine3", "city", "stateOrRegion", "postCode")
COMPANY_PREFERENCE_FIELDS: dict[str, FieldSpec] = {
    "key": f(ro=True),
    "id": f(ro=True),
    "contractCustomerId": f(ro=True),
    "name": f(),
    "legalName": f(),
    "useISOCountryCodes": f("boolean", ro=True),
    "taxId": f(),
    "operatingCountry": f(),
    **{f"legalAddress.{name}": f() for name in (*_ADDRESS, "country")},
    **{f"companyAddress.{name}": f() for name in (*_ADDRESS, "country")},
    "companyStructure": f(enum=("flat", "hierarchical")),
    "permissionType": f(enum=("userBased", "roleBased")),
    "disableScheduledJobs": f("boolean"),
    "scheduledJobsExecutionOffsetHours": f("integer"),
    "dateTimeSettings.timeZone": f(),
    "dateTimeSettings.dateFormat": f(),
    "dateTimeSettings.timeFormat": f(enum=("HH24:MI:SS", "HH12:MI:SS AM/PM")),
    "decimalsSeparator": f(enum=SEPARATORS),
    "thousandsSeparator": f(enum=SEPARATORS),
    "useUTF8ForPDF": f("boolean"),
    "branding.entityColor": f(),
    "branding.marketingText": f(),
    "branding.messageText": f(),
    "accounting.accountingPeriods": f(enum=("standard", "custom"), ro=True),
    "accounting.firstFiscalMonth": f(enum=MONTHS),
    "accounting.weekBeginsOn": f(
        enum=(
            "sunday",
            "monday",
            "tuesday",
            "wednesday",
            "thursday",
            "friday",
            "saturday",
            "firstDayOfTheYear",
        )
    ),
    "accounting.reportingMethod": f(enum=("accrualBasis", "cashBasis"), ro=True),
    "accounting.firstTaxMonth": f(enum=MONTHS),
    "accounting.baseCurrency": f(ro=True),
    "accounting.primaryAccountNumberLength": f("integer", ro=True),
    "accounting.accountFieldSeparator": f(
        enum=("period", "tilde", "comma", "colon", "underscore", "dash"), ro=True
    ),
    "accounting.subAccountNumberLength": f("integer", ro=True),
    "accounting.enableCustomCurrency": f("boolean"),
    "locale": f(),
    "defaultCountryForAddresses": f(),
    "accountingPractice": f(enum=("netAsset", "traditional")),
    "workdays": f(),
    "weekends": f(),
}
