"""The objects the emulator serves (:data:`SPECS`, by ``application/object`` path), with
Sage's field names, and the order in which a company's records are seeded.

Field names follow Sage's OpenAPI documents; only a practical subset of each object's fields
is emulated (see ``docs/emulator.rst``).
"""

from __future__ import annotations

from intacct_connect.testing.emulator.catalogue.generators import (
    ACCOUNTS,
    gen_account,
    gen_bill,
    gen_customer,
    gen_invoice,
    gen_journal_entry,
    gen_vendor,
)
from intacct_connect.testing.emulator.catalogue.spec import LineSpec, ObjectSpec, RefSpec, f

STATUS = ("active", "activeNonPosting", "inactive")
ACTIVE_INACTIVE = ("active", "inactive")
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
