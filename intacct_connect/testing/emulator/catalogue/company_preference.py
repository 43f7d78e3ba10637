"""Company preferences: ``GET /objects/company-config/company-preference/setup``, a
company-wide singleton (not a collection), its fields and the record served."""

from __future__ import annotations

from typing import Any

from intacct_connect.testing.emulator.catalogue.spec import FieldSpec, f
from intacct_connect.testing.emulator.store import Company

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


def company_preference(company: Company) -> dict[str, Any]:
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
        "id": company.id,
        "name": company.name,
        "legalName": company.name,
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
