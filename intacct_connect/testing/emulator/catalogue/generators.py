"""Deterministic seed and bulk data: one generator per object, each a function of a seeded
``random.Random``, the record's number and the records it may reference (``ctx``)."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

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
    return dt.date.fromordinal(base_ordinal + rng.randint(0, spread)).isoformat()


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
