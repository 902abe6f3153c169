"""A local emulator of the Fiken API v2, for the subset kassebro uses, with fault injection.

Serves the real paths under `/api/v2` (and the OAuth token endpoint at `/oauth/token`, which on
the real service lives on another host, fiken.no), with Bearer auth from OAuth2 access tokens.

What it enforces, from the official spec (vendored as `tests/contracts/specs/fiken/openapi.yaml`,
brief §2):
- OAuth2 token endpoint: Basic client_id:secret, form `grant_type=authorization_code|refresh_token`,
  answer `{access_token, refresh_token, token_type: "bearer", expires_in}`, errors
  `{"error": "invalid_grant", "error_description": ...}` with 400. Bearer token on every API call.
- `POST /companies/{slug}/generalJournalEntries`: 201, empty body, `Location` header; amounts
  integer øre; accounts "dddd" or "dddd:ddddd"; VAT codes from the spec's table; description
  (with the "Fri postering registrert via API: " flag added) at most 200 characters; journal
  entry description, date and lines required; `open`.
- Paging (`page`, `pageSize` <= 100, `Fiken-Api-*` headers) and the date filters
  (`date`, `dateLe`, `dateLt`, `dateGe`, `dateGt`) on journalEntries.
- One transaction per generalJournalEntries request, holding its journal entries
  (`GET /companies/{slug}/transactions/{transactionId}`, the spec's `transaction` schema).
- `PATCH /companies/{slug}/transactions/{transactionId}/delete?description=` (description
  required): "The transaction is not deleted, but a reverse transaction is created and the
  'deleted' property is set to true"; 200 with the transaction. Its journal entries then carry
  `offsetTransactionId`, "the id of the balancing transaction"; both stay in journalEntries.
- One request at a time per company: a request arriving while another for the same company is
  in progress gets 429 (the spec: "Sending multiple requests concurrently may result in a 429").
- `GET /companies/{slug}/accountBalances?date=` (date required, `fromAccount`/`toAccount` integer
  account numbers "excluding subaccount", paged): the spec's `accountBalance` `{code, name,
  balance}`, "closing balances for a given date", balance integer øre, computed from the journal
  entries the sandbox holds up to and including that date (see `FikenStore.balances`).
- `GET /companies/{slug}/accounts` (`fromAccount`/`toAccount`): the spec's `account` `{code, name}`.
- Contacts, the spec's `contact`: `GET /companies/{slug}/contacts` (paged; filters `name`, `email`,
  `organizationNumber`, `customerNumber`, `supplierNumber`, `memberNumberString`, `phoneNumber`,
  `customer`, `supplier` (both true: contacts that are both), `inactive` (false: the active ones,
  true: the inactive ones), `group`, `createdDate*`/`lastModified*` (yyyy-MM-dd, the `date*`
  comparisons), `sortBy` (its enum, default "createdDate asc")); `POST .../contacts` (body
  `contact`: `name` required, 1-200 characters, `email`/`organizationNumber` at most 200,
  `phoneNumber` at most 20, `address` with `country` required and the spec's fields
  `streetAddress`, `streetAddressLine2`, `city`, `postCode`; 201, empty body, `Location` the
  full URL of the new contact); `GET .../contacts/{contactId}` (404 when the company has none
  such). A customer's `customerAccountCode` is "1500:XXXXX", a supplier's `supplierAccountCode`
  "2400:XXXXX" (the spec's formats). `phoneNumber` and `memberNumberString` are write-only in
  the spec: kept and filtered on, never rendered.

INFERRED (not in the spec; marked so the real service can prove them wrong):
- A used refresh token is rotated: the answer carries a new one and the old one stops working
  (the spec says only "a possibly updated refresh token"). Access tokens expire after
  `expires_in` seconds; the admin API can expire them at once.
- API error bodies: the spec gives no 4xx schema; the sandbox answers
  `{"error": <short>, "error_description": <detail>}` like the OAuth errors, the only documented
  Fiken error shape. 429 answers carry `Retry-After: 1`.
- Lines must name both debitAccount and creditAccount (a debit/credit pair), amount > 0,
  and no unknown fields (spec: 400 for "unexpected fields"). Accounts must exist in the company's
  chart; bank accounts (1920) and reskontro (1500) only as sub-accounts, as `/accounts` lists them:
  a 1500:NNNNN account is an active customer contact's, so one of no contact is refused like any
  unknown account (400). POS payment accounts are sub-accounts of 1901, one per payment type
  (config/ledgers/fiken.yaml). 2400 stays a plain account beside the suppliers' 2400:NNNNN.
- A debit side with a VAT code that has a rate takes `amount` as net: Fiken adds the VAT (rounded
  half up, see `vat_added`), debits net + VAT (the VAT on the VAT account, below) and credits
  net + VAT (the
  spec: "the amount is net for debitAccount lines"; a public connector's test against a live
  Fiken demo company, jonasbarsten/fiken-mcp, booked 1250 kr net + 312.50 kr VAT this way). The credit side is gross,
  as the spec says; that one live test suggests the credit side may be net too: NOT verified.
- Read model: each request line reads back as two lines `{account, vatCode, amount}`: the debit
  side with +amount, the credit side with -amount (debit positive), the VAT code the side was
  given ("0" when none), the amount as booked, VAT included, on both sides (so a debit side
  with VAT reads back net + VAT, not the net sent). Real Fiken may show the net and the VAT on a
  line of its own instead (one third-party note of a real Fiken sale transaction shows 3000 with
  vatCode "3" net and the VAT on 2701 without a code): not verified; kassebro's read-back would
  then count the VAT twice.
- `Location` is the full URL of `/companies/{slug}/journalEntries/{journalEntryId}`.
- Deleting a transaction: the reverse transaction has one journal entry per original entry, dated
  as the original (the endpoint takes no date), every line's amount negated, its description and
  the entries' the `description` given (without the API flag); a second delete of the same
  transaction is 400; an `open` entry's transaction is deleted the same way (the spec says open
  entries "can be deleted without creating a counter transaction", but not through which call).
  The PATCH answers with the original transaction, `deleted: true`.
- The read model has no `open` field (the spec's journalEntry has none); open entries are listed
  like the others.
- A company with `hasApiAccess: false` answers 403 to its company paths.
- Where the VAT goes (the spec names no VAT account): each side with a VAT code that has a rate
  is booked net on its account and the VAT on the code's VAT account (`VAT_ACCOUNTS`, NS 4102's
  2700/2701/2702 out, 2710/2711/2712 in, as the chart has them; one third-party note of a real
  Fiken transaction shows a high-rate sale's VAT on 2701). A debit side's VAT is the VAT Fiken
  added (`vat_added`); a credit side's is the VAT in its gross (`vat_in_credit`, rounded half up).
  Codes with a rate but no VAT account here (12/32 raw fish, 14, 15, 21, 22, 86-92) keep the whole
  amount on the account: not modelled. The read model (journalEntries) does not show the split:
  see "Read model" above; `accountBalances` does.
- `accountBalances`: every account of the chart is listed, a zero balance too; balances are
  signed debit positive like the read model's lines; result accounts (3000-8999) count from
  1 January of the date's year, balance accounts from the start (Fiken's own year-end closing,
  which books the result to equity, is not modelled); a deleted transaction and its reverse
  transaction both count (they cancel out).
- Contacts:
  - Numbering: a customer gets `customerNumber` max(the company's customer numbers, 10000) + 1,
    so 10001 upwards per company; a supplier `supplierNumber` from 20001 the same way (the spec's
    examples show 51248 and "1500:20001"/"2400:20001": its numbers are not shown to be these).
    `contactId`s are one series over all companies from 3000001.
  - The sub-accounts: an active contact's `customerAccountCode` and `supplierAccountCode` are in
    its company's chart (`/accounts`, `accountBalances`, accepted on journal entry lines), named
    as the contact. An inactive contact's are not in the chart and refused on lines (as an
    unknown account); `accountBalances` still lists one of them while it has a balance.
  - Listing filters: strings exact (case-sensitive), except `name`: contained in the name,
    case-insensitive (the spec says "equal"); `customer`/`supplier`/`inactive` `false` select the
    contacts that are not (the spec documents `true`, and `inactive=false`); without `inactive`
    active and inactive contacts are listed; `group` matches nothing (the sandbox keeps no
    groups); several filters at once all apply; a filter value of the wrong type is 400.
  - POST validation: an `organizationNumber` must be 9 digits (the spec: "Brreg organization
    number", maxLength 200; no MOD11 check); an `email` must look like a@b.c; the spec's read-only
    fields (`contactId`, `customerNumber`, `customerAccountCode`, ...) are ignored in a body;
    its writable fields the sandbox does not keep (`bankAccountNumber`, `contactPerson`,
    `currency`, `language`, `daysUntilInvoicingDueDate`, `discount`, `groups`, the deprecated
    `memberNumber`) are refused with 400 "not modelled by the sandbox"; no uniqueness check
    (two contacts may share an organizationNumber, e-mail or memberNumberString).
  - The rendered contact has `contactId`, `createdDate`, `lastModifiedDate`, `name`, `customer`,
    `supplier`, `inactive` always; `email`, `organizationNumber`, `customerNumber`,
    `customerAccountCode`, `supplierNumber`, `supplierAccountCode`, `address` only when set.
    `createdDate`/`lastModifiedDate` are the day it was created (a seeded one's: the company's
    accounting start date).
  - Seeded, in every company, at start and after `/_sandbox/reset` (`SEED_CONTACTS`): the active
    customer "Nordlys Catering AS" (customer 10001, 1500:10001, organizationNumber 915000001,
    post@nordlys-catering.no) and the inactive customer "Gammel Kunde AS" (customer 10002,
    1500:10002, organizationNumber 987000001); a new customer contact gets 10003 first. A state
    file of before contacts keeps the seeded ones.
- `accounts`: paged only when both `page` and `pageSize` are given (the spec lists both
  parameters and the paging headers for it, while its overview table says "Pagination? No" and
  "both query parameters need to be set to enable pagination"); otherwise the whole chart.

Run it: `python -m kassebro.sandbox.fiken --port 8901 [--state FILE]`, or in-process with
`kassebro.sandbox.server.running(create_app())`. Admin API outside `/api/v2` under `/_sandbox`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import math
import os
import re
import secrets
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from kassebro.sandbox.admin import ApiCall, SandboxApp, admin_router, log_entry
from kassebro.sandbox.amounts import Ore, percent, round_half_up, vat_in_gross, vat_on_net
from kassebro.sandbox.common import Fault, Receive, Scope
from kassebro.sandbox.tripletex import CHART

API_PREFIX = "/api/v2"
API_FLAG = "Fri postering registrert via API: "
DESCRIPTION_MAX = 200
PAGE_SIZE_DEFAULT = 25
PAGE_SIZE_MAX = 100
ACCESS_TOKEN_SECONDS = 86157
RETRY_AFTER_SECONDS = 1
ACCOUNT_CODE = re.compile(r"^\d{4}(:\d{5})?$")
# Fiken's VAT codes (spec `info.description`, "VAT Code": "codes are used at the transaction level
# while types are used for sales and purchases"), each with the VAT type the spec's table maps it to.
VAT_CODE_TYPES: dict[int, str] = {
    0: "NONE",
    7: "NONE",
    1: "HIGH",
    3: "HIGH",
    11: "MEDIUM",
    31: "MEDIUM",
    12: "RAW_FISH",
    32: "RAW_FISH",
    13: "LOW",
    33: "LOW",
    52: "EXEMPT_IMPORT_EXPORT",
    5: "EXEMPT",
    6: "OUTSIDE",
    51: "EXEMPT_REVERSE",
    14: "HIGH_DIRECT",
    21: "HIGH_BASIS",
    15: "MEDIUM_DIRECT",
    22: "MEDIUM_BASIS",
    23: "NONE_IMPORT_BASIS",
    86: "HIGH_FOREIGN_SERVICE_DEDUCTIBLE",
    87: "HIGH_FOREIGN_SERVICE_NONDEDUCTIBLE",
    88: "LOW_FOREIGN_SERVICE_DEDUCTIBLE",
    89: "LOW_FOREIGN_SERVICE_NONDEDUCTIBLE",
    91: "HIGH_PURCHASE_OF_EMISSIONSTRADING_OR_GOLD_DEDUCTIBLE",
    92: "HIGH_PURCHASE_OF_EMISSIONSTRADING_OR_GOLD_NONDEDUCTIBLE",
}
VAT_CODES = frozenset(VAT_CODE_TYPES)  # accepted on journal entry lines
# The rate class a VAT type names (its name or its prefix, HIGH_DIRECT is HIGH) -> the Norwegian
# rate of that class in percent (the spec names the classes, not the rates: "Høy", "Middels",
# "Råfisk", "Lav" sats). Every other type (NONE, EXEMPT..., OUTSIDE) carries no VAT.
RATE_CLASSES: dict[str, str] = {"HIGH": "25", "MEDIUM": "15", "RAW_FISH": "11.11", "LOW": "12"}
# INFERRED: the account each code's VAT is booked on (NS 4102, the chart below); module docstring.
VAT_ACCOUNTS: dict[int, str] = {3: "2700", 31: "2701", 33: "2702", 1: "2710", 11: "2711", 13: "2712"}
RESULT_ACCOUNTS = (3000, 8999)  # INFERRED: start each year at zero in accountBalances
LINE_FIELDS = {"amount", "debitAccount", "debitVatCode", "creditAccount", "creditVatCode"}
ENTRY_FIELDS = {"description", "date", "lines"}
BODY_FIELDS = {"description", "open", "journalEntries"}

DEMO_CLIENT_ID = "demo-client-id"
DEMO_CLIENT_SECRET = "demo-client-secret"
DEMO_REFRESH_TOKEN = "demo-refresh-token"
DEMO_AUTH_CODE = "demo-auth-code"


@dataclass(frozen=True)
class Company:
    name: str
    slug: str
    organization_number: str
    has_api_access: bool = True
    test_company: bool = True
    vat_type: str = "bi-monthly"
    accounting_start_date: str = "2025-01-01"

    def render(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "slug": self.slug,
            "organizationNumber": self.organization_number,
            "vatType": self.vat_type,
            "email": f"post@{self.slug}.example",
            "creationDate": self.accounting_start_date,
            "hasApiAccess": self.has_api_access,
            "testCompany": self.test_company,
            "accountingStartDate": self.accounting_start_date,
        }


@dataclass(frozen=True)
class BankAccount:
    bank_account_id: int
    name: str
    account_code: str
    bank_account_number: str
    type: str = "normal"

    def render(self) -> dict[str, Any]:
        return {
            "bankAccountId": self.bank_account_id,
            "name": self.name,
            "accountCode": self.account_code,
            "bankAccountNumber": self.bank_account_number,
            "type": self.type,
            "inactive": False,
        }


DEMO_COMPANY = Company("Demo Kiosk AS", "demo-kiosk-as", "999999999")
NO_API_COMPANY = Company("Uten API AS", "uten-api-as", "999999998", has_api_access=False)
BANK_ACCOUNTS: tuple[BankAccount, ...] = (
    BankAccount(2_747_001, "Driftskonto", "1920:10001", "15035646830"),
    BankAccount(2_747_002, "Kortoppgjør", "1920:10002", "15035646849"),
)
# A POS books every payment through 1901 in Fiken (the seeds); one sub-account per payment type,
# as config/ledgers/fiken.yaml maps them (the numbers are ours: INFERRED).
CASH_REGISTER_ACCOUNTS: dict[str, str] = {
    "1901:10001": "Kasse: kontanter",
    "1901:10002": "Kasse: bankkort",
    "1901:10003": "Kasse: kredittkort",
    "1901:10004": "Kasse: bank og sjekk",
    "1901:10005": "Kasse: gavekort innløst",
    "1901:10006": "Kasse: kundekonto",
    "1901:10007": "Kasse: stempelkort",
    "1901:10008": "Kasse: pant utbetalt",
    "1901:10010": "Kasse: tilgodelapp innløst",
    "1901:10011": "Kasse: Vipps",
    "1901:10099": "Kasse: andre betalingsmåter",
}
# The Tripletex sandbox's NS 4102 shop chart; 1920 and 1500 only as sub-accounts (INFERRED): the
# bank accounts', and each active customer contact's (`FikenStore.chart`).
BASE_ACCOUNTS: dict[str, str] = {
    **{str(a.number): a.name for a in CHART if a.number not in (1500, 1920)},
    **{b.account_code: b.name for b in BANK_ACCOUNTS},
    **CASH_REGISTER_ACCOUNTS,
}

# ---- contacts (the spec's `contact`) ----
CUSTOMER_ACCOUNT = "1500"  # customerAccountCode "1500:XXXXX" (the spec's format)
SUPPLIER_ACCOUNT = "2400"  # supplierAccountCode "2400:XXXXX" (the spec's format)
CUSTOMER_NUMBER_START = 10001  # INFERRED: a company's first customerNumber
SUPPLIER_NUMBER_START = 20001  # INFERRED: a company's first supplierNumber
CONTACT_ID_START = 3_000_001  # INFERRED: contactIds, one series over all companies
CONTACT_NAME_MAX = 200  # the spec's contact.name maxLength (minLength 1)
CONTACT_TEXT_MAX = 200  # the spec's contact.email and organizationNumber maxLength
PHONE_NUMBER_MAX = 20  # the spec's contact.phoneNumber maxLength
ORGANIZATION_NUMBER = re.compile(r"^\d{9}$")  # INFERRED: a Brreg number is 9 digits
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")  # INFERRED: Fiken checks the e-mail's form
# The contact fields the sandbox keeps (POST body); the spec's read-only ones are ignored in a body,
# its other writable ones are refused as not modelled (INFERRED, module docstring).
CONTACT_FIELDS = {
    "name",
    "email",
    "organizationNumber",
    "customer",
    "supplier",
    "memberNumberString",
    "phoneNumber",
    "address",
    "inactive",
}
CONTACT_READ_ONLY = {
    "contactId",
    "createdDate",
    "lastModifiedDate",
    "customerNumber",
    "customerAccountCode",
    "supplierNumber",
    "supplierAccountCode",
    "notes",
    "documents",
}
CONTACT_NOT_MODELLED = {
    "memberNumber",
    "bankAccountNumber",
    "contactPerson",
    "currency",
    "language",
    "daysUntilInvoicingDueDate",
    "discount",
    "groups",
}
ADDRESS_FIELDS = {"streetAddress", "streetAddressLine2", "city", "postCode", "country"}
CONTACT_SORTS = ("createdDate asc", "createdDate desc", "lastModified asc", "lastModified desc")
# Every company's contacts at start and after a reset, in this order (numbered as created: Nordlys
# Catering AS customer 10001, Gammel Kunde AS customer 10002).
SEED_CONTACTS: tuple[dict[str, Any], ...] = (
    {
        "name": "Nordlys Catering AS",
        "organizationNumber": "915000001",
        "email": "post@nordlys-catering.no",
        "customer": True,
    },
    {"name": "Gammel Kunde AS", "organizationNumber": "987000001", "customer": True, "inactive": True},
)
# A demo company's chart as seeded: the base chart and its active seeded customers' accounts.
ACCOUNTS: dict[str, str] = {
    **BASE_ACCOUNTS,
    **{
        f"{CUSTOMER_ACCOUNT}:{CUSTOMER_NUMBER_START + i}": c["name"]
        for i, c in enumerate(c for c in SEED_CONTACTS if c.get("customer"))
        if not c.get("inactive")
    },
}


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class FikenError(Exception):
    """An API error: status plus the (inferred) `{error, error_description}` body."""

    def __init__(self, status: int, error: str, description: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description
        self.headers = dict(headers or {})

    def response(self) -> JSONResponse:
        body = {"error": self.error, "error_description": self.description}
        return JSONResponse(body, status_code=self.status, headers=self.headers)


def bad_request(description: str) -> FikenError:
    return FikenError(400, "bad_request", description)


# --------------------------------------------------------------------------------------------
# The books
# --------------------------------------------------------------------------------------------


@dataclass
class StoredEntry:
    journal_entry_id: int
    transaction_id: int
    journal_entry_number: int
    company: str
    description: str
    date: str
    lines: list[dict[str, Any]]
    open: bool
    created_date: str
    transaction_description: str = ""
    deleted: bool = False  # the transaction's "deleted" flag (PATCH .../transactions/{id}/delete)
    offset_transaction_id: int | None = None  # the balancing transaction, once deleted
    last_modified_date: str = ""
    # per line, the part of its amount that is VAT, booked on VAT_ACCOUNTS[vatCode] (not rendered:
    # the read model gives the lines as booked, VAT included); empty in state files of before
    line_vat: list[int] = field(default_factory=list)

    def split(self) -> list[tuple[str, Ore]]:
        """(account, øre) as the books hold this entry: each line's net, and its VAT on the VAT account."""
        vats = self.line_vat if len(self.line_vat) == len(self.lines) else [None] * len(self.lines)
        booked: list[tuple[str, Ore]] = []
        for line, vat in zip(self.lines, vats, strict=True):
            code = int(line.get("vatCode") or 0)
            if vat is None:  # a state file of before: the VAT in the booked amount
                vat = vat_in_credit(line["amount"], code) if code in VAT_ACCOUNTS else 0
            booked.append((line["account"], line["amount"] - vat))
            if vat:
                booked.append((VAT_ACCOUNTS[code], vat))
        return booked

    def render(self) -> dict[str, Any]:
        modified = self.last_modified_date or self.created_date
        entry = {
            "journalEntryId": self.journal_entry_id,
            "createdDate": self.created_date,
            "lastModifiedDate": modified,
            "transactionId": self.transaction_id,
            "journalEntryNumber": self.journal_entry_number,
            "description": self.description,
            "date": self.date,
            "lines": [dict(line, lastModifiedDate=self.created_date) for line in self.lines],
            "attachments": [],
        }
        if self.offset_transaction_id is not None:
            entry["offsetTransactionId"] = self.offset_transaction_id
        return entry


def render_transaction(entries: list[StoredEntry]) -> dict[str, Any]:
    """The spec's `transaction`: the entries booked together, and whether it was deleted."""
    first = entries[0]
    return {
        "transactionId": first.transaction_id,
        "createdDate": first.created_date,
        "lastModifiedDate": first.last_modified_date or first.created_date,
        "deleted": first.deleted,
        "description": first.transaction_description,
        "type": "General Journal Entry",
        "entries": [e.render() for e in entries],
    }


@dataclass
class StoredContact:
    """A contact of one company (the spec's `contact`, the fields the sandbox keeps)."""

    contact_id: int
    company: str
    name: str
    created_date: str
    email: str | None = None
    organization_number: str | None = None
    customer: bool = False
    supplier: bool = False
    customer_number: int | None = None
    supplier_number: int | None = None
    member_number_string: str | None = None  # write-only in the spec: a filter, never rendered
    phone_number: str | None = None  # write-only in the spec: a filter, never rendered
    address: dict[str, str] | None = None
    inactive: bool = False
    last_modified_date: str = ""

    @property
    def customer_account_code(self) -> str | None:
        return f"{CUSTOMER_ACCOUNT}:{self.customer_number}" if self.customer_number is not None else None

    @property
    def supplier_account_code(self) -> str | None:
        return f"{SUPPLIER_ACCOUNT}:{self.supplier_number}" if self.supplier_number is not None else None

    def account_codes(self) -> list[str]:
        """Its reskontro sub-accounts: the customer's 1500:NNNNN, the supplier's 2400:NNNNN."""
        return [code for code in (self.customer_account_code, self.supplier_account_code) if code]

    def render(self) -> dict[str, Any]:
        contact: dict[str, Any] = {
            "contactId": self.contact_id,
            "createdDate": self.created_date,
            "lastModifiedDate": self.last_modified_date or self.created_date,
            "name": self.name,
        }
        optional = {
            "email": self.email,
            "organizationNumber": self.organization_number,
            "customerNumber": self.customer_number,
            "customerAccountCode": self.customer_account_code,
            "supplierNumber": self.supplier_number,
            "supplierAccountCode": self.supplier_account_code,
        }
        contact.update({key: value for key, value in optional.items() if value is not None})
        contact.update(customer=self.customer, supplier=self.supplier, inactive=self.inactive)
        if self.address is not None:
            contact["address"] = dict(self.address)
        return contact


@dataclass
class Token:
    company_slugs: tuple[str, ...]
    expires_at: float


@dataclass
class FikenStore:
    """Companies, tokens, contacts and journal entries; thread-safe; optionally kept in a JSON file.

    `accounts` is the chart every company shares; a company's chart adds its contacts'
    sub-accounts (`chart`)."""

    clients: dict[str, str] = field(default_factory=lambda: {DEMO_CLIENT_ID: DEMO_CLIENT_SECRET})
    companies: tuple[Company, ...] = (DEMO_COMPANY, NO_API_COMPANY)
    accounts: dict[str, str] = field(default_factory=lambda: dict(BASE_ACCOUNTS))
    bank_accounts: tuple[BankAccount, ...] = BANK_ACCOUNTS
    refresh_tokens: set[str] = field(default_factory=lambda: {DEMO_REFRESH_TOKEN})
    auth_codes: set[str] = field(default_factory=lambda: {DEMO_AUTH_CODE})
    state_path: str | None = None
    access_token_seconds: float = ACCESS_TOKEN_SECONDS

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._initial_refresh_tokens = set(self.refresh_tokens)
        self._initial_auth_codes = set(self.auth_codes)
        self.access_tokens: dict[str, Token] = {}
        self.entries: list[StoredEntry] = []
        self._next_id = 1
        self.contacts: list[StoredContact] = []
        self._next_contact_id = CONTACT_ID_START
        self._seed_contacts()
        self._load()

    # ---- persistence -------------------------------------------------------------------------

    def _save(self) -> None:
        if not self.state_path:
            return
        data = {
            "refresh_tokens": sorted(self.refresh_tokens),
            "next_id": self._next_id,
            "entries": [asdict(e) for e in self.entries],
            "next_contact_id": self._next_contact_id,
            "contacts": [asdict(c) for c in self.contacts],
        }
        path = Path(self.state_path)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp, path)

    def _load(self) -> None:
        if not self.state_path or not Path(self.state_path).exists():
            return
        data = json.loads(Path(self.state_path).read_text(encoding="utf-8"))
        self.refresh_tokens = set(data.get("refresh_tokens") or self.refresh_tokens)
        self._next_id = int(data.get("next_id", 1))
        self.entries = [StoredEntry(**e) for e in data.get("entries") or []]
        if "contacts" in data:  # a state file of before contacts keeps the seeded ones
            self.contacts = [StoredContact(**c) for c in data["contacts"]]
            self._next_contact_id = int(data.get("next_contact_id", CONTACT_ID_START))

    def reset(self, *, tokens: bool = False) -> None:
        with self._lock:
            self.entries.clear()
            self._next_id = 1
            self._seed_contacts()
            if tokens:
                self.refresh_tokens = set(self._initial_refresh_tokens)
                self.auth_codes = set(self._initial_auth_codes)
                self.access_tokens.clear()
            self._save()

    # ---- OAuth -------------------------------------------------------------------------------

    def check_client(self, authorization: str) -> bool:
        if not authorization.lower().startswith("basic "):
            return False
        try:
            raw = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        client_id, _, secret = raw.partition(":")
        expected = self.clients.get(client_id)
        return expected is not None and secrets.compare_digest(expected, secret)

    def grant(self, form: Mapping[str, str]) -> dict[str, Any]:
        """Exchange a code or refresh token; the refresh token used is rotated (INFERRED)."""
        grant_type = form.get("grant_type", "")
        with self._lock:
            if grant_type == "authorization_code":
                code = form.get("code", "")
                if code not in self.auth_codes:
                    raise FikenError(400, "invalid_grant", "The authorization code is invalid or expired.")
                self.auth_codes.discard(code)
            elif grant_type == "refresh_token":
                old = form.get("refresh_token", "")
                if old not in self.refresh_tokens:
                    raise FikenError(400, "invalid_grant", "The refresh token is invalid or expired.")
                self.refresh_tokens.discard(old)
            else:
                raise FikenError(400, "unsupported_grant_type", f"Unsupported grant type: {grant_type or '(none)'}")
            access = secrets.token_urlsafe(32)
            refresh = secrets.token_urlsafe(32)
            self.refresh_tokens.add(refresh)
            slugs = tuple(c.slug for c in self.companies)
            self.access_tokens[access] = Token(slugs, time.time() + self.access_token_seconds)
            self._save()
        return {
            "access_token": access,
            "refresh_token": refresh,
            "token_type": "bearer",
            "expires_in": int(self.access_token_seconds),
        }

    def authenticate(self, authorization: str) -> Token:
        if not authorization.lower().startswith("bearer "):
            raise FikenError(401, "unauthorized", "Missing bearer token.")
        token = self.access_tokens.get(authorization[7:].strip())
        if token is None or token.expires_at <= time.time():
            raise FikenError(401, "unauthorized", "The access token is invalid or expired.")
        return token

    def expire_access_tokens(self) -> int:
        with self._lock:
            count = len(self.access_tokens)
            self.access_tokens.clear()
            return count

    def company(self, slug: str, token: Token) -> Company:
        for company in self.companies:
            if company.slug == slug and slug in token.company_slugs:
                if not company.has_api_access:
                    raise FikenError(403, "forbidden", f"Company {slug} does not have access to the API module.")
                return company
        raise FikenError(404, "not_found", f"Company {slug} not found.")

    # ---- contacts and the chart ----------------------------------------------------------------

    def _seed_contacts(self) -> None:
        """Every company's contacts back to `SEED_CONTACTS`, created on its accounting start date."""
        with self._lock:
            self.contacts = []
            self._next_contact_id = CONTACT_ID_START
            for company in self.companies:
                for seed in SEED_CONTACTS:
                    self._add_contact(company.slug, _parse_contact(seed), company.accounting_start_date)

    def _add_contact(self, slug: str, fields: dict[str, Any], day: str) -> StoredContact:
        """Number a parsed contact (customer and supplier numbers per company) and keep it."""
        with self._lock:
            own = [c for c in self.contacts if c.company == slug]
            contact = StoredContact(
                contact_id=self._next_contact_id, company=slug, created_date=day, last_modified_date=day, **fields
            )
            if contact.customer:
                taken = [c.customer_number for c in own if c.customer_number is not None]
                contact.customer_number = max(taken, default=CUSTOMER_NUMBER_START - 1) + 1
            if contact.supplier:
                taken = [c.supplier_number for c in own if c.supplier_number is not None]
                contact.supplier_number = max(taken, default=SUPPLIER_NUMBER_START - 1) + 1
            self._next_contact_id += 1
            self.contacts.append(contact)
            return contact

    def create_contact(self, slug: str, body: Any) -> StoredContact:
        """POST .../contacts: validate the `contact` body and keep it, numbered."""
        fields = _parse_contact(body)
        with self._lock:
            contact = self._add_contact(slug, fields, dt.date.today().isoformat())
            self._save()
            return contact

    def contact(self, slug: str, contact_id: int) -> StoredContact:
        with self._lock:
            for c in self.contacts:
                if c.company == slug and c.contact_id == contact_id:
                    return c
        raise FikenError(404, "not_found", f"Contact {contact_id} not found.")

    def list_contacts(self, slug: str) -> list[StoredContact]:
        with self._lock:
            return [c for c in self.contacts if c.company == slug]

    def chart(self, slug: str, *, inactive: bool = False) -> dict[str, str]:
        """A company's chart, code -> name: the shared accounts and its active contacts' sub-accounts
        (1500:NNNNN, 2400:NNNNN) named as the contact; with `inactive` the inactive contacts' too."""
        with self._lock:
            chart = dict(self.accounts)
            for contact in self.contacts:
                if contact.company == slug and (inactive or not contact.inactive):
                    chart.update(dict.fromkeys(contact.account_codes(), contact.name))
        return chart

    # ---- journal entries ---------------------------------------------------------------------

    def create(self, slug: str, body: Any) -> StoredEntry:
        """Validate a generalJournalEntryRequest and book its journal entries."""
        if not isinstance(body, dict):
            raise bad_request("Request body must be a JSON object.")
        _no_unknown(body, BODY_FIELDS, "")
        top_description = body.get("description")
        if top_description is not None:
            _check_description(top_description, "description")
        is_open = body.get("open", False)
        if not isinstance(is_open, bool):
            raise bad_request("open: must be a boolean.")
        entries = body.get("journalEntries")
        if not isinstance(entries, list) or not entries:
            raise bad_request("journalEntries: required, at least one journal entry.")
        chart = self.chart(slug)
        parsed = []
        for i, entry in enumerate(entries):
            where = f"journalEntries[{i}]"
            if not isinstance(entry, dict):
                raise bad_request(f"{where}: must be an object.")
            _no_unknown(entry, ENTRY_FIELDS, where)
            if "description" not in entry:
                raise bad_request(f"{where}.description: required.")
            description = _check_description(entry["description"], f"{where}.description")
            date = entry.get("date")
            try:
                day = dt.date.fromisoformat(date) if isinstance(date, str) and len(date) == 10 else None
            except ValueError:
                day = None
            if day is None:
                raise bad_request(f"{where}.date: required, format yyyy-MM-dd.")
            lines = entry.get("lines")
            if not isinstance(lines, list) or not lines:
                raise bad_request(f"{where}.lines: required, at least one line.")
            parsed.append(
                (
                    description,
                    day.isoformat(),
                    [side for j, line in enumerate(lines) for side in _book_line(chart, line, f"{where}.lines[{j}]")],
                )
            )
        with self._lock:
            created = dt.date.today().isoformat()
            transaction_id = 700_000_000 + self._next_id  # one transaction for the request's entries
            first = None
            for description, day, lines in parsed:
                entry_id = self._next_id
                self._next_id += 1
                number = 1 + sum(1 for e in self.entries if e.company == slug)
                stored = StoredEntry(
                    journal_entry_id=entry_id,
                    transaction_id=transaction_id,
                    journal_entry_number=number,
                    company=slug,
                    description=API_FLAG + description,
                    date=day,
                    lines=[side for side, _ in lines],
                    open=is_open,
                    created_date=created,
                    transaction_description=API_FLAG + (top_description or description),
                    line_vat=[vat for _, vat in lines],
                )
                self.entries.append(stored)
                first = first or stored
            self._save()
        assert first is not None
        return first

    def entry(self, slug: str, entry_id: int) -> StoredEntry:
        with self._lock:
            for e in self.entries:
                if e.company == slug and e.journal_entry_id == entry_id:
                    return e
        raise FikenError(404, "not_found", f"Journal entry {entry_id} not found.")

    def list_entries(self, slug: str) -> list[StoredEntry]:
        with self._lock:
            return [e for e in self.entries if e.company == slug]

    def balances(self, slug: str, day: dt.date) -> dict[str, Ore]:
        """Account code -> balance in øre at the end of `day`: the sum of what the company's journal
        entries dated up to and including `day` booked on it (each line's net, its VAT on the VAT
        account, `StoredEntry.split`), result accounts from 1 January of `day`'s year (INFERRED)."""
        year_start = dt.date(day.year, 1, 1).isoformat()
        totals: dict[str, Ore] = {}
        for entry in self.list_entries(slug):
            if entry.date > day.isoformat():
                continue
            for account, amount in entry.split():
                if entry.date < year_start and _is_result(account):
                    continue
                totals[account] = totals.get(account, 0) + amount
        return totals

    def transaction(self, slug: str, transaction_id: int) -> list[StoredEntry]:
        """The journal entries of one transaction (404 when it has none)."""
        with self._lock:
            entries = [e for e in self.entries if e.company == slug and e.transaction_id == transaction_id]
        if not entries:
            raise FikenError(404, "not_found", f"Transaction {transaction_id} not found.")
        return entries

    def delete_transaction(self, slug: str, transaction_id: int, description: str | None) -> list[StoredEntry]:
        """PATCH .../transactions/{id}/delete: flag it deleted and book the reverse transaction.

        What is the spec's and what is INFERRED: the module docstring.
        """
        if description is None or not description.strip():
            raise bad_request("description: required, a description for deleting the transaction.")
        with self._lock:
            entries = self.transaction(slug, transaction_id)
            if entries[0].deleted:
                raise bad_request(f"Transaction {transaction_id} is already deleted.")
            today = dt.date.today().isoformat()
            offset = 700_000_000 + self._next_id
            for original in entries:
                entry_id = self._next_id
                self._next_id += 1
                self.entries.append(
                    StoredEntry(
                        journal_entry_id=entry_id,
                        transaction_id=offset,
                        journal_entry_number=1 + sum(1 for e in self.entries if e.company == slug),
                        company=slug,
                        description=description,
                        date=original.date,
                        lines=[dict(line, amount=-line["amount"]) for line in original.lines],
                        open=False,
                        created_date=today,
                        transaction_description=description,
                        line_vat=[-vat for vat in original.line_vat],
                    )
                )
                original.deleted = True
                original.offset_transaction_id = offset
                original.last_modified_date = today
            self._save()
            return entries


def _book_line(chart: Mapping[str, str], line: Any, where: str) -> list[tuple[dict[str, Any], Ore]]:
    """The two sides of a request line as booked on the company's `chart`, each with the part of it
    that is VAT."""
    if not isinstance(line, dict):
        raise bad_request(f"{where}: must be an object.")
    _no_unknown(line, LINE_FIELDS, where)
    amount = line.get("amount")
    if amount is None:
        raise bad_request(f"{where}.amount: required.")
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise bad_request(f"{where}.amount: must be an integer number of øre.")
    if amount <= 0:
        raise bad_request(f"{where}.amount: must be greater than 0.")
    booked: list[tuple[dict[str, Any], Ore]] = []
    net = amount
    debit_taxed = vat_rate(line.get("debitVatCode")) != 0
    if debit_taxed and line.get("creditVatCode") not in (None, 0):
        raise bad_request(f"{where}: a line with VAT on both sides is not modelled by the sandbox.")
    if debit_taxed:  # the debit amount is net: Fiken adds the VAT, and the credit side pays net + VAT
        amount += vat_added(amount, line.get("debitVatCode"))
    for side, sign in (("debit", 1), ("credit", -1)):
        account = line.get(f"{side}Account")
        if account is None:
            raise bad_request(f"{where}.{side}Account: required.")
        if not isinstance(account, str) or not ACCOUNT_CODE.match(account):
            raise bad_request(f"{where}.{side}Account: invalid account {account!r}, expected 'dddd' or 'dddd:ddddd'.")
        if account not in chart:
            raise bad_request(f"{where}.{side}Account: account {account} does not exist.")
        vat = line.get(f"{side}VatCode")
        if vat is not None and (isinstance(vat, bool) or not isinstance(vat, int) or vat not in VAT_CODES):
            raise bad_request(f"{where}.{side}VatCode: invalid VAT code {vat!r}.")
        side_vat = 0
        if vat in VAT_ACCOUNTS and side == "debit":
            side_vat = vat_added(net, vat)
        elif vat in VAT_ACCOUNTS:
            side_vat = vat_in_credit(-amount, vat)
        booked.append(
            ({"amount": sign * amount, "account": account, "vatCode": str(vat if vat is not None else 0)}, side_vat)
        )
    if line["debitAccount"] == line["creditAccount"]:
        raise bad_request(f"{where}: debitAccount and creditAccount are the same account.")
    return booked


def vat_rate(code: Any) -> Fraction:
    """The VAT rate of a Fiken VAT code: its type's rate class (0 when none, or not a code)."""
    vat_type = VAT_CODE_TYPES.get(code) if isinstance(code, int) and not isinstance(code, bool) else None
    for rate_class, rate in RATE_CLASSES.items():
        if vat_type is not None and (vat_type == rate_class or vat_type.startswith(rate_class + "_")):
            return percent(rate)
    return Fraction(0)


def vat_added(net: Ore, code: Any) -> Ore:
    """The VAT Fiken adds to a debit side's net `amount` (øre) booked with `debitVatCode` `code`.

    Documented (FK-SPEC, `journalEntryLine.amount`): "This will be the net amount (excluding VAT)
    for debitAccount lines and gross amount (including VAT) for creditAccount lines. The reason
    for this difference is due to the way Fiken calculates VAT based on the debitVatCode and
    creditVatCode"; amounts are integer øre. The rate is that of the code's VAT type in the spec's
    VAT code table (1/3 HIGH, 11/31 MEDIUM, 12/32 RAW_FISH, 13/33 LOW, ...): 25, 15, 11.11, 12 %.
    So the VAT is net x rate, on top of the net.

    INFERRED: the VAT is rounded to the øre half up, per line (one live test against a Fiken demo
    company, jonasbarsten/fiken-mcp, booked 1250.00 net + 312.50 VAT: the rule, not the rounding).
    On a net amount half an øre does occur: 99.90 at 15 % -> 14.985 -> 14.99 (rounding half to
    even or cutting off would give 14.98). The import and reverse-charge codes (14, 15, 21-23,
    86-89, 91, 92) get their class's rate like the others; how Fiken really books them (VAT only,
    basis only, computed and deducted) is not modelled.
    """
    return round_half_up(vat_on_net(net, vat_rate(code)))


def vat_in_credit(gross: Ore, code: Any) -> Ore:
    """The VAT in a credit side's gross `amount` (øre, signed) booked with `creditVatCode` `code`.

    Documented (FK-SPEC, `journalEntryLine.amount`): the amount is the "gross amount (including
    VAT) for creditAccount lines", and Fiken "calculates VAT based on the debitVatCode and
    creditVatCode"; the rate is that of the code's VAT type (see `vat_added`). So the VAT is the
    part of the gross at that rate: gross x rate / (1 + rate).

    INFERRED: rounded to the øre half up (half an øre away from zero, so a reversal mirrors), per
    line, as the sandbox rounds the VAT Fiken adds to a net debit. Half an øre occurs at 12 %:
    1000.02 -> 107.145 -> 107.15, 0.14 -> 0.015 -> 0.02 (half to even or cutting off: 107.14, 0.01).
    """
    return round_half_up(vat_in_gross(gross, vat_rate(code)))


def _no_unknown(obj: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        prefix = f"{where}: " if where else ""
        raise bad_request(f"{prefix}unexpected field(s): {', '.join(unknown)}.")


def _check_description(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise bad_request(f"{where}: required, a non-empty string.")
    if len(API_FLAG) + len(value) > DESCRIPTION_MAX:
        raise bad_request(
            f"{where}: too long ({len(API_FLAG) + len(value)} > {DESCRIPTION_MAX} characters "
            f"including the flag {API_FLAG!r})."
        )
    return value


def _parse_contact(body: Any) -> dict[str, Any]:
    """A POSTed `contact` as `StoredContact` fields (400 when it does not validate).

    The spec: `name` required, 1-200 characters; `email` and `organizationNumber` at most 200,
    `phoneNumber` at most 20; `customer`, `supplier`, `inactive` booleans; `address` with its
    `country` required; 400 for unexpected fields. INFERRED (module docstring): the read-only
    fields are ignored, the writable ones the sandbox does not keep are refused, an
    organizationNumber is 9 digits, an e-mail has the form a@b.c."""
    if not isinstance(body, dict):
        raise bad_request("Request body must be a JSON object.")
    _no_unknown(body, CONTACT_FIELDS | CONTACT_READ_ONLY | CONTACT_NOT_MODELLED, "")
    unmodelled = sorted(set(body) & CONTACT_NOT_MODELLED)
    if unmodelled:
        raise bad_request(f"{', '.join(unmodelled)}: not modelled by the sandbox.")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise bad_request("name: required, a non-empty string.")
    if len(name) > CONTACT_NAME_MAX:
        raise bad_request(f"name: too long ({len(name)} > {CONTACT_NAME_MAX} characters).")
    fields: dict[str, Any] = {"name": name}
    for key, attr, limit in (
        ("email", "email", CONTACT_TEXT_MAX),
        ("organizationNumber", "organization_number", CONTACT_TEXT_MAX),
        ("memberNumberString", "member_number_string", None),
        ("phoneNumber", "phone_number", PHONE_NUMBER_MAX),
    ):
        value = body.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise bad_request(f"{key}: must be a string.")
        if limit is not None and len(value) > limit:
            raise bad_request(f"{key}: too long ({len(value)} > {limit} characters).")
        fields[attr] = value
    if "email" in fields and not EMAIL.match(fields["email"]):
        raise bad_request(f"email: {fields['email']!r} is not a valid e-mail address.")
    if "organization_number" in fields and not ORGANIZATION_NUMBER.match(fields["organization_number"]):
        raise bad_request(f"organizationNumber: {fields['organization_number']!r} is not 9 digits.")
    for key in ("customer", "supplier", "inactive"):
        value = body.get(key, False)
        if not isinstance(value, bool):
            raise bad_request(f"{key}: must be a boolean.")
        fields[key] = value
    address = body.get("address")
    if address is not None:
        if not isinstance(address, dict):
            raise bad_request("address: must be an object.")
        _no_unknown(address, ADDRESS_FIELDS, "address")
        if not isinstance(address.get("country"), str) or not address["country"].strip():
            raise bad_request("address.country: required, a non-empty string.")
        for key, value in address.items():
            if not isinstance(value, str):
                raise bad_request(f"address.{key}: must be a string.")
        fields["address"] = dict(address)
    return fields


def _contact_filter(request: Request) -> Callable[[StoredContact], bool]:
    """The `GET .../contacts` filters, all of them given at once (AND). Strings exact, but `name`
    contains, case-insensitive (INFERRED); the booleans select what they name, `false` the others;
    without `inactive` both active and inactive contacts (INFERRED)."""
    params = request.query_params
    tests: list[Callable[[StoredContact], bool]] = []
    for key, attr in (
        ("email", "email"),
        ("organizationNumber", "organization_number"),
        ("memberNumberString", "member_number_string"),
        ("phoneNumber", "phone_number"),
    ):
        if key in params:
            wanted = params[key]
            tests.append(lambda c, attr=attr, wanted=wanted: getattr(c, attr) == wanted)
    if "name" in params:
        part = params["name"].casefold()
        tests.append(lambda c: part in c.name.casefold())
    for key, attr in (("customerNumber", "customer_number"), ("supplierNumber", "supplier_number")):
        if key in params:
            raw = params[key].strip()
            if not raw.lstrip("-").isdigit():
                raise bad_request(f"{key}: must be an integer.")
            tests.append(lambda c, attr=attr, number=int(raw): getattr(c, attr) == number)
    for key in ("customer", "supplier", "inactive"):
        if key in params:
            raw = params[key].strip().lower()
            if raw not in ("true", "false"):
                raise bad_request(f"{key}: must be true or false.")
            tests.append(lambda c, key=key, flag=raw == "true": getattr(c, key) is flag)
    if "group" in params:  # the sandbox keeps no groups: no contact is in one
        tests.append(lambda c: False)
    for prefix, attr in (("createdDate", "created_date"), ("lastModified", "last_modified_date")):
        for suffix in ("", "Le", "Lt", "Ge", "Gt"):
            raw = params.get(prefix + suffix)
            if raw is None:
                continue
            try:
                day = dt.date.fromisoformat(raw) if len(raw) == 10 else None
            except ValueError:
                day = None
            if day is None:
                raise bad_request(f"{prefix + suffix}: format yyyy-MM-dd.")
            compare = _COMPARE["date" + suffix]
            tests.append(
                lambda c, attr=attr, day=day, compare=compare: compare(dt.date.fromisoformat(getattr(c, attr)), day)
            )
    return lambda contact: all(test(contact) for test in tests)


def _contact_order(request: Request, contacts: list[StoredContact]) -> list[StoredContact]:
    """`sortBy` (the spec's enum, default "createdDate asc"), then by contactId."""
    sort_by = request.query_params.get("sortBy", CONTACT_SORTS[0])
    if sort_by not in CONTACT_SORTS:
        raise bad_request(f"sortBy: one of {', '.join(CONTACT_SORTS)}.")
    field_name, direction = sort_by.split()

    def key(c: StoredContact) -> tuple[str, int]:
        day = c.created_date if field_name == "createdDate" else c.last_modified_date or c.created_date
        return day, c.contact_id

    return sorted(contacts, key=key, reverse=direction == "desc")


# --------------------------------------------------------------------------------------------
# The app
# --------------------------------------------------------------------------------------------


def _company_key(sub_path: str) -> str:
    """The concurrency key of a call: the company slug, else the user."""
    parts = sub_path.split("/")
    if len(parts) > 2 and parts[1] == "companies" and parts[2]:
        return parts[2]
    return "(user)"


class FikenSandbox(SandboxApp):
    """The Fiken app behind the shared fault layer (`admin.SandboxApp`): calls under /api/v2 are
    faulted and logged; the token endpoint is logged only (never faulted, its body never logged);
    one request at a time per company, a second one meanwhile gets 429."""

    log_decimals = False

    async def open_call(self, scope: Scope, receive: Receive) -> ApiCall | None:
        path = scope["path"]
        if path.startswith(API_PREFIX):
            sub_path = path[len(API_PREFIX) :] or "/"
            return ApiCall(sub_path, log_entry(scope, sub_path), receive)
        if path.startswith("/oauth"):
            return ApiCall(path, log_entry(scope, path), receive, log_body=False, faultable=False)
        return None

    def admit(self, call: ApiCall) -> Response | None:
        if not call.faultable:  # the token endpoint is not a company's
            return None
        key = _company_key(call.path)
        with self.state.locks_guard:
            lock = self.state.locks.setdefault(key, threading.Lock())
        if not lock.acquire(blocking=False):
            call.entry["fault"] = "concurrent"
            message = "Only one concurrent request per company is allowed."
            return FikenError(429, "too_many_requests", message, {"Retry-After": str(RETRY_AFTER_SECONDS)}).response()
        call.context["lock"] = lock
        return None

    def finish(self, call: ApiCall) -> None:
        lock = call.context.pop("lock", None)
        if lock is not None:
            lock.release()

    def fault_reply(self, fault: Fault, call: ApiCall) -> Response:
        if fault.kind == "429":
            seconds = str(max(0, math.ceil(fault.seconds)))
            return FikenError(429, "too_many_requests", "Too many requests.", {"Retry-After": seconds}).response()
        return FikenError(500, "internal_error", "Internal server error.").response()

    def fault_path(self, path: str) -> str:
        return path.removeprefix(API_PREFIX) or "/"

    def reset_books(self, options: dict[str, Any]) -> None:
        self.state.store.reset(tokens=bool(options.get("tokens", False)))

    def voucher_listing(self, request: Request) -> Any:
        entries: list[StoredEntry] = self.state.store.entries
        return {"vouchers": [dict(e.render(), company=e.company, open=e.open, deleted=e.deleted) for e in entries]}


def demo_connection(url: str) -> dict[str, Any]:
    """The Airflow connection (as `AIRFLOW_CONN_*` JSON holds it) to this sandbox at `url`."""
    return {
        "conn_type": "fiken",
        "host": f"{url}{API_PREFIX}",
        "login": DEMO_CLIENT_ID,
        "password": DEMO_CLIENT_SECRET,
        "extra": {"refresh_token": DEMO_REFRESH_TOKEN, "token_url": f"{url}/oauth/token"},
    }


def create_app(
    *,
    clients: Mapping[str, str] | None = None,
    refresh_tokens: Iterable[str] = (DEMO_REFRESH_TOKEN,),
    companies: Iterable[Company] = (DEMO_COMPANY, NO_API_COMPANY),
    extra_accounts: Mapping[str, str] | None = None,
    state_path: str | os.PathLike[str] | None = None,
    access_token_seconds: float = ACCESS_TOKEN_SECONDS,
) -> FikenSandbox:
    """Build a Fiken sandbox app.

    Args:
      clients: client_id -> client_secret accepted at /oauth/token (default the demo app).
      refresh_tokens: refresh tokens valid at start (default "demo-refresh-token"); each is
        rotated on use. The authorization code "demo-auth-code" works once.
      companies: the companies every token can access (default Demo Kiosk AS, and "Uten API AS"
        without the API module).
      extra_accounts: code -> name added to every company's chart (which also holds each company's
        active contacts' sub-accounts, `FikenStore.chart`).
      state_path: JSON file the books, the contacts and the refresh tokens are kept in across
        restarts.

    Every company starts with the contacts of `SEED_CONTACTS` (again after `/_sandbox/reset`).

    `app.state.store` (FikenStore), `app.state.faults` (FaultInjector) and `app.state.calls`
    (CallLog) are there for in-process inspection.
    """
    store = FikenStore(
        clients=dict(clients or {DEMO_CLIENT_ID: DEMO_CLIENT_SECRET}),
        companies=tuple(companies),
        accounts={**BASE_ACCOUNTS, **(extra_accounts or {})},
        refresh_tokens=set(refresh_tokens),
        state_path=os.fspath(state_path) if state_path else None,
        access_token_seconds=access_token_seconds,
    )
    app = FikenSandbox(title="Fiken sandbox (kassebro)")
    app.state.store = store
    app.state.locks = {}
    app.state.locks_guard = threading.Lock()

    @app.exception_handler(FikenError)
    async def fiken_error(request: Request, exc: FikenError) -> Response:
        return exc.response()

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return FikenError(exc.status_code, "error", str(exc.detail)).response()

    app.include_router(_oauth_router(store))
    app.include_router(_api_router(store))
    app.include_router(_admin_router(app))
    return app


def _oauth_router(store: FikenStore) -> APIRouter:
    router = APIRouter(prefix="/oauth")

    @router.post("/token")
    async def token(request: Request) -> Response:
        if not store.check_client(request.headers.get("authorization", "")):
            return JSONResponse(
                {"error": "invalid_client", "error_description": "Client authentication failed."},
                status_code=401,
                headers={"WWW-Authenticate": 'Basic realm="fiken"'},
            )
        raw = (await request.body()).decode("utf-8", "replace")
        form = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
        try:
            return JSONResponse(store.grant(form), headers={"Cache-Control": "no-store"})
        except FikenError as exc:
            return exc.response()

    return router


async def _json_body(request: Request) -> Any:
    """A POSTed JSON body: 415 unless application/json, 400 when it does not parse."""
    if "application/json" not in request.headers.get("content-type", ""):
        raise FikenError(415, "unsupported_media_type", "We accept application/json only.")
    try:
        return json.loads(await request.body())
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise bad_request("Request body is not valid JSON.") from None


def _page(request: Request, values: list[dict[str, Any]]) -> JSONResponse:
    """Fiken paging: page (0-based) and pageSize (default 25, max 100) with Fiken-Api-* headers."""
    try:
        page = int(request.query_params.get("page", 0))
        size = int(request.query_params.get("pageSize", PAGE_SIZE_DEFAULT))
    except ValueError:
        raise bad_request("page and pageSize must be integers.") from None
    if page < 0 or not 1 <= size <= PAGE_SIZE_MAX:
        raise bad_request(f"page must be >= 0 and pageSize between 1 and {PAGE_SIZE_MAX}.")
    headers = {
        "Fiken-Api-Page": str(page),
        "Fiken-Api-Page-Size": str(size),
        "Fiken-Api-Page-Count": str(max(1, math.ceil(len(values) / size))),
        "Fiken-Api-Result-Count": str(len(values)),
    }
    return JSONResponse(values[page * size : (page + 1) * size], headers=headers)


def _date_filter(request: Request) -> list[tuple[str, dt.date]]:
    filters = []
    for name in ("date", "dateLe", "dateLt", "dateGe", "dateGt"):
        raw = request.query_params.get(name)
        if raw is None:
            continue
        try:
            filters.append((name, dt.date.fromisoformat(raw)))
        except ValueError:
            raise bad_request(f"{name}: format yyyy-MM-dd.") from None
    return filters


def _account_range(request: Request) -> Callable[[str], bool]:
    """The `fromAccount`/`toAccount` filter: integer account numbers "excluding subaccount", so an
    account "1500:10001" is in it by its number 1500."""
    bounds = []
    for name in ("fromAccount", "toAccount"):
        raw = request.query_params.get(name)
        if raw is not None and not raw.strip().isdigit():
            raise bad_request(f"{name}: must be an integer account number.")
        bounds.append(int(raw) if raw is not None else None)
    low, high = bounds
    return lambda code: (low is None or int(code[:4]) >= low) and (high is None or int(code[:4]) <= high)


def _is_result(account: str) -> bool:
    """A result account (3000-8999 by its 4-digit number): starts each year at zero (INFERRED)."""
    return RESULT_ACCOUNTS[0] <= int(account[:4]) <= RESULT_ACCOUNTS[1]


_COMPARE = {
    "date": lambda a, b: a == b,
    "dateLe": lambda a, b: a <= b,
    "dateLt": lambda a, b: a < b,
    "dateGe": lambda a, b: a >= b,
    "dateGt": lambda a, b: a > b,
}


def _api_router(store: FikenStore) -> APIRouter:
    router = APIRouter(prefix=API_PREFIX)

    def auth(request: Request) -> Token:
        return store.authenticate(request.headers.get("authorization", ""))

    def company(request: Request, slug: str) -> Company:
        return store.company(slug, auth(request))

    @router.get("/user")
    async def user(request: Request) -> Response:
        auth(request)
        return JSONResponse({"name": "Demo Bruker", "email": "demo@kassebro.example"})

    @router.get("/companies")
    async def companies(request: Request) -> Response:
        token = auth(request)
        values = sorted((c.render() for c in store.companies if c.slug in token.company_slugs), key=lambda c: c["name"])
        return _page(request, values)

    @router.get("/companies/{slug}")
    async def get_company(request: Request, slug: str) -> Response:
        return JSONResponse(company(request, slug).render())

    @router.get("/companies/{slug}/accounts")
    async def accounts(request: Request, slug: str) -> Response:
        company(request, slug)
        wanted = _account_range(request)
        values = [{"code": code, "name": name} for code, name in sorted(store.chart(slug).items()) if wanted(code)]
        if "page" in request.query_params and "pageSize" in request.query_params:
            return _page(request, values)  # INFERRED: paged only when asked (module docstring)
        return JSONResponse(values)

    @router.get("/companies/{slug}/accountBalances")
    async def account_balances(request: Request, slug: str) -> Response:
        """The chart's accounts with their closing balance at `date` (that day included)."""
        company(request, slug)
        raw = request.query_params.get("date")
        try:
            day = dt.date.fromisoformat(raw) if raw and len(raw) == 10 else None
        except ValueError:
            day = None
        if day is None:
            raise bad_request("date: required, format yyyy-MM-dd.")
        wanted = _account_range(request)
        totals = store.balances(slug, day)
        chart = store.chart(slug)
        names = store.chart(slug, inactive=True)  # an account booked on before it left the chart
        chart.update({code: names.get(code, code) for code, total in totals.items() if total and code not in chart})
        values = [
            {"code": code, "name": name, "balance": totals.get(code, 0)}
            for code, name in sorted(chart.items())
            if wanted(code)
        ]
        return _page(request, values)

    @router.get("/companies/{slug}/bankAccounts")
    async def bank_accounts(request: Request, slug: str) -> Response:
        company(request, slug)
        return _page(request, [b.render() for b in store.bank_accounts])

    @router.get("/companies/{slug}/contacts")
    async def contacts(request: Request, slug: str) -> Response:
        company(request, slug)
        wanted = _contact_filter(request)
        found = _contact_order(request, [c for c in store.list_contacts(slug) if wanted(c)])
        return _page(request, [c.render() for c in found])

    @router.post("/companies/{slug}/contacts")
    async def create_contact(request: Request, slug: str) -> Response:
        company(request, slug)
        contact = store.create_contact(slug, await _json_body(request))
        location = f"{str(request.base_url).rstrip('/')}{API_PREFIX}/companies/{slug}/contacts/{contact.contact_id}"
        return Response(status_code=201, headers={"Location": location})

    @router.get("/companies/{slug}/contacts/{contact_id}")
    async def get_contact(request: Request, slug: str, contact_id: str) -> Response:
        company(request, slug)
        if not contact_id.isdigit():
            raise FikenError(404, "not_found", f"Contact {contact_id} not found.")
        return JSONResponse(store.contact(slug, int(contact_id)).render())

    @router.post("/companies/{slug}/generalJournalEntries")
    async def create(request: Request, slug: str) -> Response:
        company(request, slug)
        stored = store.create(slug, await _json_body(request))
        location = (
            f"{str(request.base_url).rstrip('/')}{API_PREFIX}/companies/{slug}/journalEntries/{stored.journal_entry_id}"
        )
        return Response(status_code=201, headers={"Location": location})

    @router.get("/companies/{slug}/journalEntries")
    async def journal_entries(request: Request, slug: str) -> Response:
        company(request, slug)
        filters = _date_filter(request)
        values = [
            e.render()
            for e in store.list_entries(slug)
            if all(_COMPARE[name](dt.date.fromisoformat(e.date), day) for name, day in filters)
        ]
        return _page(request, values)

    @router.get("/companies/{slug}/journalEntries/{entry_id}")
    async def journal_entry(request: Request, slug: str, entry_id: str) -> Response:
        company(request, slug)
        if not entry_id.isdigit():
            raise FikenError(404, "not_found", f"Journal entry {entry_id} not found.")
        return JSONResponse(store.entry(slug, int(entry_id)).render())

    @router.get("/companies/{slug}/transactions/{transaction_id}")
    async def transaction(request: Request, slug: str, transaction_id: str) -> Response:
        company(request, slug)
        if not transaction_id.isdigit():
            raise FikenError(404, "not_found", f"Transaction {transaction_id} not found.")
        return JSONResponse(render_transaction(store.transaction(slug, int(transaction_id))))

    @router.patch("/companies/{slug}/transactions/{transaction_id}/delete")
    async def delete_transaction(request: Request, slug: str, transaction_id: str) -> Response:
        company(request, slug)
        if not transaction_id.isdigit():
            raise FikenError(404, "not_found", f"Transaction {transaction_id} not found.")
        description = request.query_params.get("description")
        return JSONResponse(render_transaction(store.delete_transaction(slug, int(transaction_id), description)))

    return router


def _admin_router(app: FikenSandbox) -> APIRouter:
    """The shared admin API plus Fiken's own: `POST /_sandbox/expire_tokens`."""
    router = admin_router(app)
    store: FikenStore = app.state.store

    @router.post("/expire_tokens")
    async def expire_tokens() -> Response:
        return JSONResponse({"expired": store.expire_access_tokens()})

    return router


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """`python -m kassebro.sandbox.fiken --port 8901 [--state FILE]`; SIGTERM stops it cleanly."""
    from kassebro.sandbox.server import sandbox_parser, serve_until_stopped

    parser = sandbox_parser(
        "Run the Fiken v2 sandbox.", 8901, "JSON file to keep the books, contacts and refresh tokens in across restarts"
    )
    parser.add_argument("--client-id", default=DEMO_CLIENT_ID)
    parser.add_argument("--client-secret", default=DEMO_CLIENT_SECRET)
    parser.add_argument(
        "--refresh-token", action="append", help=f"valid refresh token at start (default {DEMO_REFRESH_TOKEN})"
    )
    args = parser.parse_args(argv)
    app = create_app(
        clients={args.client_id: args.client_secret},
        refresh_tokens=args.refresh_token or (DEMO_REFRESH_TOKEN,),
        state_path=args.state,
    )
    return serve_until_stopped(
        app, args, lambda url: f"Fiken sandbox on {url}{API_PREFIX} (token: {url}/oauth/token, admin: /_sandbox)"
    )


if __name__ == "__main__":
    sys.exit(main())
