"""A local emulator of the PowerOffice Go API v2, for the subset kassebro uses, with fault injection.

Paths, field names (PascalCase) and status codes follow the merged official per-service v2 specs
(vendored as `tests/contracts/specs/poweroffice/derived/openapi-merged-stianwe.yaml`) and the token
spec (`auth-demo.openapi.json` beside it); see the brief `apis.md` §3. Served like the real thing:

- `POST /OAuth/Token`: client credentials, `Authorization: Basic base64(applicationKey:clientKey)`,
  form `grant_type=client_credentials`, header `Ocp-Apim-Subscription-Key`. Answers
  `{access_token, token_type:"bearer", expires_in}` (600 s as in the spec example), 400
  `{"error":"invalid_client",...}` with the spec's wording for unknown keys.
- `/v2/...`: `Authorization: Bearer <token>` plus `Ocp-Apim-Subscription-Key`. A missing or wrong
  subscription key gets the API gateway's 401 `{"statusCode":401,"message":"Access denied due to
  ... subscription key..."}` (Azure API Management's standard wording: INFERRED, PowerOffice runs
  behind APIM as the header name shows); a missing, unknown or expired bearer token gets 401
  ProblemDetails (INFERRED: the spec gives 401 without a body); a missing privilege 403
  ProblemDetails naming the roles the spec lists for the endpoint.
- `GET /ClientIntegrationInformation`, `GET /GeneralLedgerAccounts?accountNos=`, `GET /VatCodes`,
  `GET /Departments?codes=&isActive=` (DepartmentDto; roles Department/Department_Full),
  `GET /Customers`, `GET /Customers/{id}`, `POST /Customers` (below),
  `GET /Projects?projectCodes=&includeSubProjects=&excludeArchivedProject=` (ProjectDto; roles
  Project/Project_Full; a subproject's Code is "10.2" with ParentProjectCode "10", as the spec
  says), `GET /AccountTransactions?fromDate&toDate[&accountNos&voucherNos&vatCodes&departmentCodes
  &projectCodes]` ("-1" = without, as the spec says; empty list -> 204, as the spec says),
  `POST /Vouchers/ManualJournals` (201 ManualVoucherDto),
  `GET /Vouchers/ManualJournals/{id}`, `POST /JournalEntryVouchers/ManualJournals`,
  `GET /JournalEntryVouchers/ManualJournals/{id}`, `GET /JournalEntryVouchers`,
  `POST /JournalEntryVouchers/{id}/submitForApproval`, `POST /Vouchers/Reverse/{id}` (role
  YearEndVoucher_Full, no body, 200 without a body).

Paging, from the spec: every list endpoint served here (`GET /AccountTransactions`,
`/JournalEntryVouchers`, `/GeneralLedgerAccounts`, `/VatCodes`, `/Departments`, `/Projects`,
`/Customers`, `/TrialBalance`) takes
the query parameter `resourceParameter` (schema `ResourceParameters`), an object, so spread into
the query as OpenAPI's default form/explode style does: `PageNumber` ("The desired page to
return", example 2), `PageSize` ("The amount of objects to return in a Page (5000 by default). Not
allowed to be larger than MaxPageSize") and the read-only `MaxPageSize` ("20 000 by default"). The
200 answer is the bare JSON array of the page (no answer in the spec declares a header, and there
is no total), an empty one is 204. `create_app(page_size=, max_page_size=)` sets the default and
the maximum (5000 and 20000, as the spec says) so tests can use tiny pages.

INFERRED about paging: pages count from 1 and a missing PageNumber is the first page (the spec
gives no base or default; Profitbase's PowerOffice Go v2 connector documents "Start page ...
Defaults to 1"); a page past the end is an empty list, so 204; so a page of fewer than PageSize
rows is the last. Rows are paged in a stable order (accounts by number, VAT codes, departments and
projects by Id, AccountTransactions by voucher number then line, JournalEntryVouchers as created),
each page cut afresh from the list as it is at that call. A PageSize above MaxPageSize, or a
PageSize or PageNumber below 1 or not a whole number, is 400 ProblemDetails titled "Invalid
resourceParameter" (the spec's title for a bad resourceParameter; it does not say whether the API
refuses or caps, and lists no 400 for `GET /JournalEntryVouchers`). `OrderBy`, `Fields` and
`UseDatabaseValidation` are not emulated (ignored: every field, the order above).

Reversal (`POST /Vouchers/Reverse/{id}`), from the spec: only for vouchers the integration made
with the POST /Vouchers endpoints (not an approved draft, not a reversal); Go books "a new
reversal voucher that nullify the original transactions", the original gets `IsReversed` and its
ExternalImportReference may be used again; the reversal's AccountTransactions have VoucherType
"ReversalVoucher" and ReversedVoucherId/ReversedVoucherNo naming the original. The spec has no
GET for a reversal voucher (it is not a ManualJournal: 404 there). INFERRED: the reversal is booked
before the 200 answer (the spec also lists 202 Accepted), dated as the original (the call takes no
date), every line negated with its VAT code and dimensions, Description "Reversering av bilag
<no>", no ExternalImportReference; a second reversal, or of a voucher not made through POST
/Vouchers, is 400 ProblemDetails.

Voucher rules enforced on `POST /Vouchers/ManualJournals` (all 400 ProblemDetails with an
`Errors` map, ASP.NET's ValidationProblemDetails shape): CurrencyCode (NOK only here) and
VoucherDate required; at least one line; per line AccountId known and active, VatId known, a
VAT-locked account only with its own VatId, DepartmentId and ProjectId (optional) the Id of a
department/project, PostingDate present, CurrencyAmount not 0 (the spec: "must be a positive or
negative number not 0") with at most two decimals; the lines sum to 0 (INFERRED, the spec does not
say it, a journal must balance). `ExternalImportReference`: "only one
instance of the reference can exist on the client" (spec). The refusal's status and body are not
documented: this sandbox answers **400** ProblemDetails, Title "Duplicate external import
reference", Detail naming the reference and the existing voucher id (INFERRED: the endpoint's
spec lists only 400/404 as ProblemDetails answers, no 409).

Draft path (INFERRED from the schemas): a journal-entry line carries one side, DebitAccountId +
DebitVatId or CreditAccountId + CreditVatId, with a positive gross CurrencyAmount (both sides on a
line are allowed, then it balances itself); debits must equal credits. A line without its own
DepartmentId/ProjectId inherits the header's and -1 means none (both from the spec). submitForApproval
answers `{VoucherId, InApprovalWorkflow: true, IsPosted: false}`; a second submit gives 409
ProblemDetails (listed in the spec). Drafts have no ExternalImportReference. `POST
/_sandbox/approve/{id}` plays the approver: the draft becomes a ManualJournal voucher with the same
Id (the spec: the Id "will persist when/if the voucher is posted") and IsPosted true in the list.

Customers (`GET /Customers?externalImportReference=&customerNos=&externalNos=`, `GET
/Customers/{id}`, `POST /Customers`; CustomerDto/CustomerPostDto; roles Customer/Customer_Full, POST
Customer_Full, as the spec says). A customer's `Number` "will also represent the customer ledger
account" and it has a `SubledgerAccountId`, "the identifier of the subledger account associated
with the customer"; a voucher line's `AccountId` is "the id of the general ledger account or the
subledger account to post the amount" (both paths: ManualVoucher AccountId, journal-entry
Debit/CreditAccountId), and an AccountTransaction on a customer subledger account carries
`CustomerAccountNo` ("will also represent the Customer number") and `ContactId` (the customer's
Id, "the id of the contact entity if the transaction is related to a ... customerAccountNo").
`customerNos`/`externalNos` take "10000-11000, 12000, 13000-" (ranges, an open end), as the spec
says; a duplicate ExternalImportReference is 400 "Customer validation error(s)" with the spec's
example wording. INFERRED about customers: the customers' subledger is booked on GL account 1500
Kundefordringer (AccountTransactions and TrialBalance show 1500; the line as sent keeps the
subledger id, as ManualVoucherDto lines are the lines as sent); a line on the subledger is checked
as a line on 1500 (active, VAT-locked to code "0"); posting on 1500 directly is not refused; a
POST without Number gets one above the highest number in use, at least 10000 (Go's "next available
number" in the client's customer series, whose range the sandbox does not model: any whole number
from 1 is accepted); a taken Number is 400 ProblemDetails "Customer validation error(s)"; customer
Ids count from 8100001 and SubledgerAccountIds from 6150001, skipping any GL account's id, so they
never equal one; IsActive is true and IsArchived false on creation; a company needs Name, a person
(IsPerson true) FirstName and LastName, its Name then "FirstName LastName" if not given;
MailAddress, when sent, needs ZipCode and City (the post schema's required) and CountryCode
defaults to "NO" (the spec); a customer sent without one still shows a MailAddress object with
null fields and CountryCode "NO" (the schema does not allow null there), the address Id being the
customer's Id + 50000000; rows are ordered by
Number; `externalImportReference` matches the whole reference, case-sensitively; `contactGroupIds`
and the timestamp filters are not emulated (ignored); a customer's fields are not validated beyond
the above; the CustomerDto fields served are a subset. Seeded: one customer, Number 10000 "Nordlys
Catering AS", OrganizationNumber "915000001", no ExternalImportReference; customers are kept in
the state file, and reset clears them and seeds it again.

Seeded master data: the NS 4102 shop chart, the standard VAT codes, departments "1", "2", "3" (the
demo vendors' configs) and projects "10", "10.2" (a subproject of "10") and "20"; `create_app`
takes others, custom VAT codes among them (`VatCode.base_id`: IsCustom and BaseVatCodeId, as the
spec describes them).

INFERRED besides the above: error texts and the Errors keys ("VoucherLines[0].DepartmentId");
inactive departments/projects refused on lines (the spec only says inactive ones are disabled in
the GUI); -1 on a ManualVoucher line is refused (documented only for journal-entry lines); the
generated VAT transaction carries no department/project; `codes`/`projectCodes` match whole codes;
an approved draft's voucher has one signed line per side and no ExternalImportReference; the
ProjectDto fields served are a subset (no invented ones: the schema test checks).

Read-back: ManualVoucherDto lines are the lines as sent (gross CurrencyAmount, VatId,
DepartmentId, ProjectId). AccountTransactions have Amount = net, VatAmount, DepartmentId/Code and
ProjectId/Code, and one generated VAT transaction per taxed line on the rate's VAT account
(2700/2701/2702, 2710/2711/2712), VAT rounded half up per line (`line_vat`).

Run it: `python -m kassebro.sandbox.poweroffice --port 8910 [--state FILE]`, or in-process with
`kassebro.sandbox.server.running(create_app())`. Admin API under `/_sandbox` (faults, calls,
vouchers, reset, privileges, approve), the same fault kinds as the Tripletex sandbox. A call is
in `app.state.calls` before its answer (or dropped connection) reaches the client, so a test can
assert the exact sequence right after the calls.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from kassebro.sandbox.admin import ApiCall, SandboxApp, admin_router, log_entry
from kassebro.sandbox.amounts import Ore, fraction, from_ore, parse_amount, round_half_up, to_ore, vat_in_gross
from kassebro.sandbox.common import Fault, Receive, Scope
from kassebro.sandbox.tripletex import CHART, dumps

API_PREFIX = "/v2"
TOKEN_PATH = "/OAuth/Token"
TOKEN_LIFETIME = 600
DEFAULT_PAGE_SIZE = 5000  # ResourceParameters.PageSize: "5000 by default"
MAX_PAGE_SIZE = 20_000  # ResourceParameters.MaxPageSize: "20 000 by default"
DEMO_APPLICATION_KEY = "demo-application-key"
DEMO_CLIENT_KEY = "demo-client-key"
DEMO_SUBSCRIPTION_KEY = "demo-subscription-key"
DEMO_CLIENT_NAME = "Demo Kiosk AS"
DEMO_CLIENT_ID = "4b1d7e7a-5a8e-4f0a-9d3c-2f6a1c0e9b11"

# What a kassebro integration gets by default; drop one with `privileges=` to test the check.
DEFAULT_PRIVILEGES = (
    "GeneralLedgerAccount",
    "CommonServices",
    "ManualVoucher_Full",
    "AccountTransaction",
    "JournalEntryVoucher_Full",
    "Department",
    "Project",
    "YearEndVoucher_Full",  # POST /Vouchers/Reverse/{id} (the spec's auth role)
    "TrialBalance",  # GET /TrialBalance: read-back
    "Customer_Full",  # /Customers (GET also with Customer)
)

INVALID_CLIENT = (
    "Client integration not found. Please ensure the provided keys are matching the desired environment."  # PO-AUTH
)
APIM_MISSING_KEY = (
    "Access denied due to missing subscription key. "
    "Make sure to include subscription key when making requests to an API."
)
APIM_INVALID_KEY = (
    "Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription."
)


# --------------------------------------------------------------------------------------------
# Master data
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VatCode:
    """A VAT code on the client: `code` is the SAF-T standard code, `id` Go's own id. A custom code
    ("C3", the spec: custom codes have "a prefix with the letter 'C'" and are "based on the SAF-T
    codes") names the standard code's id it is based on in `base_id` (`BaseVatCodeId`)."""

    id: int
    code: str
    name: str
    rate: str  # "0.25"
    vat_account: int | None = None
    base_id: int | None = None


@dataclass(frozen=True)
class GlAccount:
    id: int
    account_no: int
    name: str
    vat_code: str = "0"
    vat_locked: bool = False
    is_active: bool = True


VAT_CODES: tuple[VatCode, ...] = (
    VatCode(3_200_000, "0", "Ingen mva-behandling", "0"),
    VatCode(3_200_001, "1", "Fradrag for inngående mva, alminnelig sats", "0.25", 2710),
    VatCode(3_200_011, "11", "Fradrag for inngående mva, redusert sats, middels", "0.15", 2711),
    VatCode(3_200_013, "13", "Fradrag for inngående mva, redusert sats, lav", "0.12", 2712),
    VatCode(3_200_003, "3", "Utgående mva, alminnelig sats", "0.25", 2700),
    VatCode(3_200_031, "31", "Utgående mva, redusert sats, middels", "0.15", 2701),
    VatCode(3_200_033, "33", "Utgående mva, redusert sats, lav", "0.12", 2702),
    VatCode(3_200_005, "5", "Omsetning fritatt for mva (nullsats)", "0"),
    VatCode(3_200_006, "6", "Omsetning utenfor merverdiavgiftsloven", "0"),
    VatCode(3_200_052, "52", "Utførsel av varer og tjenester", "0"),
)


def line_vat(gross: Ore, vat: VatCode) -> Ore:
    """The VAT Go books for a voucher line of `gross` øre with `vat` (AccountTransactions'
    VatAmount; the line's own transaction gets Amount = gross - VAT).

    Documented (PO-SPEC, `ManualVoucherLineDto.CurrencyAmount`): "Gross amounts should be
    provided, along with the relevant vat code."; a VAT code's `Rate` and a transaction's `VatRate`
    are fractions of one ("VatRate": 0.12 in the spec's example). So the VAT is the part of the
    gross at that rate: gross x rate / (1 + rate).

    INFERRED (the spec gives no rounding rule; it only says account balances may hold decimals
    that VAT returns do not, the difference going to the client's rounding account): the VAT is
    rounded to the øre, half up (half an øre away from zero), per line. Only a code with a VAT
    account books VAT. At 25 % and 15 % the VAT in a whole-øre gross never ends in exactly half an
    øre, so the rule shows at 12 %: 1000.02 -> 107.145 -> 107.15 (rounding the net, half to even,
    or cutting off: 107.14).
    """
    if vat.vat_account is None:
        return 0
    return round_half_up(vat_in_gross(gross, fraction(vat.rate)))


@dataclass(frozen=True)
class Department:
    """A department (`DepartmentDto`): `code` is what vouchers and reports name it by."""

    id: int
    code: str
    name: str
    is_active: bool = True


@dataclass(frozen=True)
class Project:
    """A project (`ProjectDto`); a subproject's code is "<main code>.<own code>" as the spec says."""

    id: int
    code: str
    name: str
    parent_code: str | None = None
    is_active: bool = True
    status: str = "Active"


# Codes "1", "2", "3" are the departments of the demo vendors' configs.
DEPARTMENTS: tuple[Department, ...] = (
    Department(7_100_001, "1", "Kafé"),
    Department(7_100_002, "2", "Bar"),
    Department(7_100_003, "3", "Butikk"),
)
PROJECTS: tuple[Project, ...] = (
    Project(7_200_010, "10", "Sommersesong"),
    Project(7_200_012, "10.2", "Sommersesong: festival", parent_code="10"),
    Project(7_200_020, "20", "Julemarked"),
)

# The Tripletex sandbox's NS 4102 shop chart, with PowerOffice-like ids.
ACCOUNTS: tuple[GlAccount, ...] = tuple(
    GlAccount(5_550_000 + a.number, a.number, a.name, a.vat_type, a.vat_locked, not a.is_inactive) for a in CHART
)


CUSTOMER_LEDGER_ACCOUNT_NO = 1500  # Kundefordringer: the customers' subledger (INFERRED)
if not any(a.account_no == CUSTOMER_LEDGER_ACCOUNT_NO for a in ACCOUNTS):
    ACCOUNTS += (
        GlAccount(5_550_000 + CUSTOMER_LEDGER_ACCOUNT_NO, CUSTOMER_LEDGER_ACCOUNT_NO, "Kundefordringer", "0", True),
    )

FIRST_CUSTOMER_NO = 10_000  # INFERRED: the customer number series starts at 10000
FIRST_CUSTOMER_ID = 8_100_001
FIRST_SUBLEDGER_ACCOUNT_ID = 6_150_001
SEEDED_AT = "2026-01-01T00:00:00+00:00"

# One customer per client (the store seeds it; reset seeds it again).
SEED_CUSTOMERS: tuple[dict[str, Any], ...] = (
    {
        "Number": 10_000,
        "Name": "Nordlys Catering AS",
        "OrganizationNumber": "915000001",
        "ExternalImportReference": None,
    },
)

# The CustomerPostDto fields the sandbox keeps and shows again (others are ignored).
CUSTOMER_TEXT_FIELDS = (
    "Name",
    "LegalName",
    "FirstName",
    "LastName",
    "OrganizationNumber",
    "EmailAddress",
    "InvoiceEmailAddress",
    "PhoneNumber",
    "WebsiteUrl",
    "CurrencyCode",
    "ExternalImportReference",
)
ADDRESS_FIELDS = ("AddressLine1", "AddressLine2", "ZipCode", "City", "CountryCode", "ExternalCode")


def _whole(value: Any) -> int | None:
    """An int from JSON (not a bool), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def number_filter_matches(number: int | None, raw: str | None) -> bool:
    """The spec's number filter "10000-11000, 12000, 13000-" (ranges inclusive, an open upper end);
    None or whitespace: no filter. A row without a number matches only no filter."""
    if raw is None or not raw.strip():
        return True
    if number is None:
        return False
    for part in (p.strip() for p in raw.split(",")):
        low, dash, high = part.partition("-")
        low, high = low.strip(), high.strip()
        if not dash and low.isdigit() and int(low) == number:
            return True
        upper_ok = not high or (high.isdigit() and number <= int(high))
        if dash and low.isdigit() and int(low) <= number and upper_ok:
            return True
    return False


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class PowerOfficeError(Exception):
    """An error answer: ProblemDetails by default, or a raw body (gateway, OAuth)."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        errors: Mapping[str, list[str]] | None = None,
        raw: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = dict(errors or {})
        self.raw = raw
        self.headers = dict(headers or {})

    def body(self, instance: str) -> Any:
        if self.raw is not None:
            return self.raw
        body: dict[str, Any] = {
            "Type": f"https://httpstatuses.io/{self.status}",
            "Title": self.title,
            "Status": self.status,
            "Detail": self.detail,
            "Instance": instance,
        }
        if self.errors:
            body["Errors"] = self.errors
        return body

    @property
    def media_type(self) -> str:
        return "application/json; charset=utf-8" if self.raw is not None else "application/problem+json; charset=utf-8"


def bad_request(detail: str, errors: Mapping[str, list[str]] | None = None) -> PowerOfficeError:
    return PowerOfficeError(400, "One or more validation errors occurred.", detail, errors=errors)


def customer_error(detail: str, errors: Mapping[str, list[str]] | None = None) -> PowerOfficeError:
    return PowerOfficeError(400, "Customer validation error(s)", detail, errors=errors)  # the spec's title


def not_found(what: str) -> PowerOfficeError:
    return PowerOfficeError(404, "Object(s) not found", f"{what} not found.")  # the spec's example title


class PoJSONResponse(JSONResponse):
    media_type = "application/json; charset=utf-8"

    def render(self, content: Any) -> bytes:
        return dumps(content).encode("utf-8")


# --------------------------------------------------------------------------------------------
# The store
# --------------------------------------------------------------------------------------------


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def _date(value: Any, field: str, errors: dict[str, list[str]]) -> str | None:
    try:
        return dt.date.fromisoformat(str(value)[:10]).isoformat() if value else None
    except ValueError:
        errors.setdefault(field, []).append("The value is not a valid date.")
        return None


class PowerOfficeStore:
    """One client's books, tokens and integration settings; thread-safe, optionally on disk."""

    def __init__(
        self,
        *,
        application_keys: Iterable[str],
        client_keys: Iterable[str],
        subscription_keys: Iterable[str],
        privileges: Iterable[str],
        accounts: Iterable[GlAccount],
        vat_codes: Iterable[VatCode],
        departments: Iterable[Department] = DEPARTMENTS,
        projects: Iterable[Project] = PROJECTS,
        token_lifetime: int,
        clock: Callable[[], float],
        state_path: str | os.PathLike[str] | None,
        page_size: int = DEFAULT_PAGE_SIZE,
        max_page_size: int = MAX_PAGE_SIZE,
    ) -> None:
        if not 1 <= page_size <= max_page_size:
            raise ValueError(f"page_size must be 1..max_page_size ({max_page_size}), not {page_size}")
        self.application_keys = set(application_keys)
        self.client_keys = set(client_keys)
        self.subscription_keys = set(subscription_keys)
        self.privileges = list(privileges)
        self.accounts = {a.id: a for a in accounts}
        self.vat_codes = {v.id: v for v in vat_codes}
        self.departments = {d.id: d for d in departments}
        self.projects = {p.id: p for p in projects}
        self.token_lifetime = token_lifetime
        self.page_size = page_size
        self.max_page_size = max_page_size
        self.clock = clock
        self.state_path = Path(state_path) if state_path else None
        self.lock = threading.RLock()
        self.tokens: dict[str, float] = {}
        self.token_count = 0
        self._reset_books()
        if self.state_path and self.state_path.exists():
            self._load()

    def _reset_books(self) -> None:
        self.vouchers: dict[str, dict[str, Any]] = {}
        self.drafts: dict[str, dict[str, Any]] = {}
        self.next_voucher_no = 10_001
        self.next_line_id = 900_000_001
        self._seed_customers()

    def _seed_customers(self) -> None:
        self.customers: dict[int, dict[str, Any]] = {}
        self.next_customer_id = FIRST_CUSTOMER_ID
        self.next_subledger_id = FIRST_SUBLEDGER_ACCOUNT_ID
        for seed in SEED_CUSTOMERS:
            self._add_customer(dict(seed), SEEDED_AT)

    def reset(self) -> None:
        with self.lock:
            self._reset_books()
            self.tokens.clear()
            self._save()

    def _save(self) -> None:
        if not self.state_path:
            return
        state = {
            "vouchers": self.vouchers,
            "drafts": self.drafts,
            "next_voucher_no": self.next_voucher_no,
            "next_line_id": self.next_line_id,
            "customers": list(self.customers.values()),
            "next_customer_id": self.next_customer_id,
            "next_subledger_id": self.next_subledger_id,
        }
        tmp = self.state_path.with_suffix(self.state_path.suffix + ".tmp")
        tmp.write_text(dumps(state), encoding="utf-8")
        tmp.replace(self.state_path)

    def _load(self) -> None:
        assert self.state_path is not None
        state = json.loads(self.state_path.read_text(encoding="utf-8"), parse_float=Decimal)
        self.vouchers = state.get("vouchers", {})
        self.drafts = state.get("drafts", {})
        self.next_voucher_no = int(state.get("next_voucher_no", 10_001))
        self.next_line_id = int(state.get("next_line_id", 900_000_001))
        if "customers" in state:  # else (an older state file) the seeded customers stay
            self.customers = {int(c["Id"]): c for c in state["customers"]}
            self.next_customer_id = int(state.get("next_customer_id", FIRST_CUSTOMER_ID))
            self.next_subledger_id = int(state.get("next_subledger_id", FIRST_SUBLEDGER_ACCOUNT_ID))

    # ---- auth --------------------------------------------------------------------------------

    def issue_token(self, authorization: str | None, grant_type: str | None) -> dict[str, Any]:
        if grant_type != "client_credentials":
            raise PowerOfficeError(
                400,
                "unsupported_grant_type",
                raw={"error": "unsupported_grant_type", "error_description": "Only client_credentials is supported."},
            )
        keys = None
        if authorization and authorization.lower().startswith("basic "):
            try:
                keys = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                keys = None
        app_key, _, client_key = (keys or "").partition(":")
        if app_key not in self.application_keys or client_key not in self.client_keys:
            raise PowerOfficeError(
                400, "invalid_client", raw={"error": "invalid_client", "error_description": INVALID_CLIENT}
            )
        token = base64.urlsafe_b64encode(os.urandom(36)).decode("ascii")
        with self.lock:
            self.tokens[token] = self.clock() + self.token_lifetime
            self.token_count += 1
        return {"access_token": token, "token_type": "bearer", "expires_in": self.token_lifetime}

    def check_subscription_key(self, key: str | None) -> None:
        if not key:
            raise PowerOfficeError(401, "Unauthorized", raw={"statusCode": 401, "message": APIM_MISSING_KEY})
        if key not in self.subscription_keys:
            raise PowerOfficeError(401, "Unauthorized", raw={"statusCode": 401, "message": APIM_INVALID_KEY})

    def check_bearer(self, authorization: str | None) -> None:
        if not authorization or not authorization.lower().startswith("bearer "):
            raise PowerOfficeError(401, "Unauthorized", "Access token is missing.")
        expires = self.tokens.get(authorization[7:].strip())
        if expires is None:
            raise PowerOfficeError(401, "Unauthorized", "Access token is invalid.")
        if self.clock() >= expires:
            raise PowerOfficeError(401, "Unauthorized", "Access token has expired.")

    def require(self, *roles: str) -> None:
        if not any(r in self.privileges for r in roles):
            raise PowerOfficeError(
                403,
                "Forbidden",
                f"The integration does not have the required privilege for this endpoint ({' or '.join(roles)}).",
            )

    # ---- lookups -----------------------------------------------------------------------------

    def customer_by_subledger(self, account_id: Any) -> dict[str, Any] | None:
        account_id = _whole(account_id)
        if account_id is None:
            return None
        return next((c for c in self.customers.values() if c["SubledgerAccountId"] == account_id), None)

    def ledger_account(self, account_id: Any) -> GlAccount | None:
        """The GL account a line's AccountId books on: the account itself, or for a customer's
        SubledgerAccountId the customer ledger account 1500 (INFERRED); None when unknown."""
        found = self.accounts.get(account_id) if _whole(account_id) is not None else None
        if found is None and self.customer_by_subledger(account_id) is not None:
            found = next((a for a in self.accounts.values() if a.account_no == CUSTOMER_LEDGER_ACCOUNT_NO), None)
        return found

    # ---- customers ---------------------------------------------------------------------------

    def _add_customer(self, fields: dict[str, Any], now: str) -> dict[str, Any]:
        """Give a checked customer its Id, SubledgerAccountId and Number (the caller holds the lock)."""
        while self.next_subledger_id in self.accounts:  # never a GL account's id
            self.next_subledger_id += 1
        if fields.get("Number") is None:
            fields["Number"] = max([FIRST_CUSTOMER_NO - 1, *(c["Number"] for c in self.customers.values())]) + 1
        address = fields.get("MailAddress") or {}
        customer = {
            **{k: fields.get(k) for k in CUSTOMER_TEXT_FIELDS},
            "Id": self.next_customer_id,
            "Number": fields["Number"],
            "SubledgerAccountId": self.next_subledger_id,
            "IsPerson": bool(fields.get("IsPerson")),
            "ExternalNumber": fields.get("ExternalNumber"),
            "IsActive": True,
            "IsArchived": False,
            "MailAddress": {
                **{k: address.get(k) for k in ADDRESS_FIELDS},
                "CountryCode": address.get("CountryCode") or "NO",  # "Defaults to "NO" if not set." (spec)
                "Id": self.next_customer_id + 50_000_000,
                "LastChangedDateTimeOffset": now,
            },
            "ContactCreatedDateTimeOffset": now,
            "CustomerCreatedDateTimeOffset": now,
            "LastChangedDateTimeOffset": now,
        }
        self.next_customer_id += 1
        self.next_subledger_id += 1
        self.customers[customer["Id"]] = customer
        return customer

    def create_customer(self, body: Any) -> dict[str, Any]:
        """POST /Customers: check a CustomerPostDto and keep the customer (rules: module docstring)."""
        if not isinstance(body, dict):
            raise customer_error("The request body must be a JSON object.")
        errors: dict[str, list[str]] = {}
        fields: dict[str, Any] = {}
        for key in CUSTOMER_TEXT_FIELDS:
            value = body.get(key)
            if value is not None and not isinstance(value, str):
                errors.setdefault(key, []).append(f"The {key} field must be a string.")
            fields[key] = value.strip() or None if isinstance(value, str) else None
        is_person = body.get("IsPerson")
        if is_person is not None and not isinstance(is_person, bool):
            errors.setdefault("IsPerson", []).append("The IsPerson field must be true or false.")
        fields["IsPerson"] = is_person is True
        if fields["IsPerson"]:
            for key in ("FirstName", "LastName"):
                if not fields[key]:
                    errors.setdefault(key, []).append(f"The {key} field is required when IsPerson is true.")
            if not fields["Name"] and fields["FirstName"] and fields["LastName"]:
                fields["Name"] = f"{fields['FirstName']} {fields['LastName']}"
        elif not fields["Name"]:
            errors.setdefault("Name", []).append("The Name field is required.")
        for key in ("Number", "ExternalNumber"):
            value = body.get(key)
            if value is not None and (_whole(value) is None or value < 1):
                errors.setdefault(key, []).append(f"The {key} field must be a whole number from 1.")
                value = None
            fields[key] = value
        address = body.get("MailAddress")
        if address is not None:
            if not isinstance(address, dict):
                errors.setdefault("MailAddress", []).append("The MailAddress field must be an object.")
            else:
                for key in ("ZipCode", "City"):
                    if not address.get(key):
                        errors.setdefault("MailAddress." + key, []).append(f"The {key} field is required.")
                fields["MailAddress"] = {k: address.get(k) for k in ADDRESS_FIELDS}
        if errors:
            raise customer_error("The customer was not created.", errors)
        with self.lock:
            number, ref = fields["Number"], fields["ExternalImportReference"]
            taken = next((c for c in self.customers.values() if c["Number"] == number), None)
            if number is not None and taken is not None:
                raise customer_error(f"Customer number {number} is already in use (customer Id = {taken['Id']}).")
            used = next((c for c in self.customers.values() if ref and c["ExternalImportReference"] == ref), None)
            if used is not None:
                raise customer_error(  # the spec's example wording
                    f"ExternalImportReference is already in use. '{ref}' is used on (contact) Id = {used['Id']}."
                )
            customer = self._add_customer(fields, _now())
            self._save()
        return customer

    @staticmethod
    def render_customer(c: dict[str, Any]) -> dict[str, Any]:
        return {**c, "MailAddress": dict(c["MailAddress"])}

    def vat_by_code(self, code: str) -> VatCode | None:
        return next((v for v in self.vat_codes.values() if v.code == code), None)

    def render_account(self, a: GlAccount) -> dict[str, Any]:
        vat = self.vat_by_code(a.vat_code)
        return {
            "Id": a.id,
            "AccountNo": a.account_no,
            "Name": a.name,
            "CurrencyCode": "NOK",
            "DepartmentId": None,
            "IsActive": a.is_active,
            "IsDepartmentRequired": False,
            "IsProjectRequired": False,
            "IsVatCodeLocked": a.vat_locked,
            "LastChangedDateTimeOffset": "2026-01-01T00:00:00+00:00",
            "VatCode": a.vat_code,
            "VatCodeId": vat.id if vat else None,
        }

    @staticmethod
    def render_vat(v: VatCode) -> dict[str, Any]:
        return {
            "Id": v.id,
            "Code": v.code,
            "Name": v.name,
            "Description": v.name,
            "IsActive": True,
            "IsCustom": v.base_id is not None,
            "BaseVatCodeId": v.base_id,
            "Rate": Decimal(v.rate),
            "ValidFrom": "2000-01-01",
            "ValidTo": None,
        }

    @staticmethod
    def render_department(d: Department) -> dict[str, Any]:
        return {
            "Id": d.id,
            "Code": d.code,
            "Name": d.name,
            "IsActive": d.is_active,
            "ManagerEmployeeId": None,
            "ManagerEmployeeNo": None,
            "CreatedFromImportJournalId": None,
            "CreatedDateTimeOffset": "2026-01-01T00:00:00+00:00",
            "LastChangedDateTimeOffset": "2026-01-01T00:00:00+00:00",
        }

    def render_project(self, p: Project) -> dict[str, Any]:
        parent = next((q for q in self.projects.values() if q.code == p.parent_code), None)
        return {
            "Id": p.id,
            "Code": p.code,
            "Name": p.name,
            "IsActive": p.is_active,
            "ProjectStatus": p.status,
            "ParentProjectId": parent.id if parent else None,
            "ParentProjectCode": p.parent_code,
            "DepartmentId": None,
            "DepartmentCode": None,
            "CustomerId": None,
            "CustomerNo": None,
            "IsInternal": True,
            "StartDate": None,
            "EndDate": None,
            "CreatedDateTimeOffset": "2026-01-01T00:00:00+00:00",
            "LastChangedDateTimeOffset": "2026-01-01T00:00:00+00:00",
        }

    # ---- vouchers ----------------------------------------------------------------------------

    def _check_header(self, body: Any, errors: dict[str, list[str]]) -> str | None:
        if not isinstance(body, dict):
            raise bad_request("The request body must be a JSON object.")
        if body.get("CurrencyCode") != "NOK":
            errors.setdefault("CurrencyCode", []).append(
                "The CurrencyCode field is required." if not body.get("CurrencyCode") else "Only NOK is supported."
            )
        date = _date(body.get("VoucherDate"), "VoucherDate", errors)
        if date is None and "VoucherDate" not in errors:
            errors["VoucherDate"] = ["The VoucherDate field is required."]
        return date

    def _check_side(self, account_id: Any, vat_id: Any, where: str, errors: dict[str, list[str]]) -> None:
        account = self.ledger_account(account_id)
        vat = self.vat_codes.get(vat_id) if isinstance(vat_id, int) else None
        if account is None:
            errors.setdefault(where + "AccountId", []).append(
                f"General ledger account with id = {account_id} not found."
            )
        elif not account.is_active:
            errors.setdefault(where + "AccountId", []).append(f"Account {account.account_no} is not active.")
        if vat is None:
            errors.setdefault(where + "VatId", []).append(f"Vat code with id = {vat_id} not found.")
        if account is not None and vat is not None and account.vat_locked and vat.code != account.vat_code:
            errors.setdefault(where + "VatId", []).append(
                f"Account {account.account_no} is locked to vat code {account.vat_code}; "
                f"vat code {vat.code} is not allowed."
            )

    def _check_dimension(self, kind: str, value: Any, field: str, errors: dict[str, list[str]]) -> int | None:
        """A line's DepartmentId/ProjectId: None, or the id of an active department/project."""
        if value is None:
            return None
        table: Mapping[int, Department | Project] = self.departments if kind == "Department" else self.projects
        found = table.get(value) if isinstance(value, int) and not isinstance(value, bool) else None
        if found is None:
            errors.setdefault(field, []).append(f"{kind} with id = {value} not found.")
        elif not found.is_active:
            errors.setdefault(field, []).append(f"{kind} {found.code} is not active.")
        return value if found is not None else None

    def _draft_dimension(
        self, kind: str, line: Mapping[str, Any], header: int | None, field: str, errors: dict[str, list[str]]
    ) -> int | None:
        """Journal-entry lines inherit the header's id when they set none; -1 means none (spec)."""
        value = line.get(kind + "Id")
        if value is None:
            return header
        if value == -1:
            return None
        return self._check_dimension(kind, value, field, errors)

    def create_voucher(self, body: Any) -> dict[str, Any]:
        errors: dict[str, list[str]] = {}
        date = self._check_header(body, errors)
        lines = body.get("VoucherLines") or []
        if not isinstance(lines, list) or not lines:
            errors.setdefault("VoucherLines", []).append("The voucher must have at least one line.")
            lines = []
        total = 0
        stored_lines = []
        for i, line in enumerate(lines):
            where = f"VoucherLines[{i}]."
            if not isinstance(line, dict):
                errors.setdefault(where[:-1], []).append("A line must be an object.")
                continue
            self._check_side(line.get("AccountId"), line.get("VatId"), where, errors)
            self._check_dimension("Department", line.get("DepartmentId"), where + "DepartmentId", errors)
            self._check_dimension("Project", line.get("ProjectId"), where + "ProjectId", errors)
            posting_date = _date(line.get("PostingDate"), where + "PostingDate", errors)
            if posting_date is None and where + "PostingDate" not in errors:
                errors[where + "PostingDate"] = ["The PostingDate field is required."]
            amount = parse_amount(line.get("CurrencyAmount", 0), where + "CurrencyAmount", errors)
            if amount == 0:
                errors.setdefault(where + "CurrencyAmount", []).append(
                    "The amount must be a positive or negative number not 0."
                )
            if amount:
                total += amount
            stored_lines.append(
                {
                    "AccountId": line.get("AccountId"),
                    "VatId": line.get("VatId"),
                    "CurrencyAmount": amount,
                    "CurrencyCode": line.get("CurrencyCode") or "NOK",
                    "PostingDate": posting_date,
                    "Description": line.get("Description"),
                    "DepartmentId": line.get("DepartmentId"),
                    "ProjectId": line.get("ProjectId"),
                    "ExternalLineReference": line.get("ExternalLineReference"),
                }
            )
        if not errors and total != 0:
            errors["VoucherLines"] = [f"The voucher does not balance: the lines sum to {from_ore(total)}."]
        if errors:
            raise bad_request("The voucher was not posted.", errors)
        ref = body.get("ExternalImportReference")
        with self.lock:
            if ref:
                existing = next(  # a reversed voucher's reference may be used again (spec)
                    (v for v in self.vouchers.values() if v["ExternalImportReference"] == ref and not v["IsReversed"]),
                    None,
                )
                if existing is not None:
                    raise PowerOfficeError(
                        400,
                        "Duplicate external import reference",
                        f"A voucher with ExternalImportReference '{ref}' already exists on the client "
                        f"(voucher id {existing['Id']}).",
                    )
            voucher = self._book(str(uuid.uuid4()), date, body, ref, stored_lines)
            self._save()
        return voucher

    def _book(
        self,
        voucher_id: str,
        date: str | None,
        body: Mapping[str, Any],
        ref: str | None,
        lines: list[dict[str, Any]],
        *,
        voucher_type: str = "ManualJournal",
        reversible: bool = True,
    ) -> dict[str, Any]:
        """Give the voucher its number and line ids and keep it (the caller holds the lock).

        `_type` is its VoucherType; `_reversible` whether POST /Vouchers/Reverse takes it (only
        vouchers "the integration created using the POST /voucher endpoints", the spec says).
        """
        now = _now()
        for stored in lines:
            stored["Id"] = self.next_line_id
            stored["CreatedDateTimeOffset"] = now
            self.next_line_id += 1
        voucher = {
            "Id": voucher_id,
            "VoucherNo": self.next_voucher_no,
            "VoucherDate": date,
            "CurrencyCode": "NOK",
            "Description": body.get("Description"),
            "ExternalImportReference": ref,
            "ImportedVoucherNo": body.get("ImportedVoucherNo"),
            "SaftBatchId": body.get("SaftBatchId"),
            "SaftSourceId": body.get("SaftSourceId"),
            "IsReversed": False,
            "CreatedDateTimeOffset": now,
            "VoucherLines": lines,
            "_type": voucher_type,
            "_reversible": reversible,
        }
        self.next_voucher_no += 1
        self.vouchers[voucher_id] = voucher
        return voucher

    def render_voucher(self, v: dict[str, Any]) -> dict[str, Any]:
        lines = [{**line, "CurrencyAmount": from_ore(line["CurrencyAmount"])} for line in v["VoucherLines"]]
        return {**{k: value for k, value in v.items() if not k.startswith("_")}, "VoucherLines": lines}

    def manual_voucher(self, voucher_id: str) -> dict[str, Any]:
        """A posted ManualJournal voucher (a reversal voucher is another type: 404 here)."""
        found = self.vouchers.get(voucher_id)
        if found is None or found.get("_type", "ManualJournal") != "ManualJournal":
            raise not_found(f"Manual voucher with id = {voucher_id}")
        return found

    def reverse_voucher(self, voucher_id: str) -> dict[str, Any]:
        """POST /Vouchers/Reverse/{id}: book the reversal voucher that nullifies the original.

        What is the spec's and what is INFERRED: the module docstring, "Reversal".
        """
        with self.lock:
            original = self.vouchers.get(voucher_id)
            if original is None:
                raise not_found(f"Voucher with id = {voucher_id}")
            if original["IsReversed"]:
                raise PowerOfficeError(
                    400, "Voucher already reversed", f"Voucher {original['VoucherNo']} is already reversed."
                )
            if not original.get("_reversible", True):
                raise PowerOfficeError(
                    400,
                    "Voucher cannot be reversed",
                    f"Voucher {original['VoucherNo']} was not created by the integration using the POST /Vouchers "
                    "endpoints.",
                )
            lines = [
                {**line, "CurrencyAmount": -line["CurrencyAmount"], "ExternalLineReference": None}
                for line in original["VoucherLines"]
            ]
            header = {"Description": f"Reversering av bilag {original['VoucherNo']}"}
            reversal = self._book(
                str(uuid.uuid4()),
                original["VoucherDate"],
                header,
                None,
                lines,
                voucher_type="ReversalVoucher",
                reversible=False,
            )
            reversal["_reversed_voucher_id"] = original["Id"]
            reversal["_reversed_voucher_no"] = original["VoucherNo"]
            original["IsReversed"] = True
            self._save()
        return reversal

    def create_draft(self, body: Any) -> dict[str, Any]:
        errors: dict[str, list[str]] = {}
        date = self._check_header(body, errors)
        header_department = self._check_dimension("Department", body.get("DepartmentId"), "DepartmentId", errors)
        header_project = self._check_dimension("Project", body.get("ProjectId"), "ProjectId", errors)
        lines = body.get("ManualVoucherLines") or []
        if not isinstance(lines, list) or not lines:
            errors.setdefault("ManualVoucherLines", []).append("The voucher must have at least one line.")
            lines = []
        balance = 0
        stored_lines = []
        for i, line in enumerate(lines):
            where = f"ManualVoucherLines[{i}]."
            if not isinstance(line, dict):
                continue
            sides = [s for s in ("Debit", "Credit") if line.get(s + "AccountId") is not None]
            if not sides:
                errors.setdefault(where[:-1], []).append("A line needs a DebitAccountId or a CreditAccountId.")
            for side in sides:
                self._check_side(line.get(side + "AccountId"), line.get(side + "VatId"), where + side, errors)
            amount = parse_amount(line.get("CurrencyAmount", 0), where + "CurrencyAmount", errors)
            if amount is not None and amount <= 0:
                errors.setdefault(where + "CurrencyAmount", []).append("The amount must be a positive number.")
            if amount and len(sides) == 1:
                balance += amount if sides[0] == "Debit" else -amount
            stored = {k: line.get(k) for k in ("DebitAccountId", "DebitVatId", "CreditAccountId", "CreditVatId")}
            stored.update(
                CurrencyAmount=amount,
                CurrencyCode="NOK",
                PostingDate=_date(line.get("PostingDate"), where + "PostingDate", errors) or date,
                Description=line.get("Description"),
                DepartmentId=self._draft_dimension(
                    "Department", line, header_department, where + "DepartmentId", errors
                ),
                ProjectId=self._draft_dimension("Project", line, header_project, where + "ProjectId", errors),
            )
            stored_lines.append(stored)
        if not errors and balance != 0:
            errors["ManualVoucherLines"] = [f"Debit and credit differ by {from_ore(balance)}."]
        if errors:
            raise bad_request("The journal entry voucher was not created.", errors)
        with self.lock:
            now = _now()
            for stored in stored_lines:
                stored["Id"] = self.next_line_id
                stored["CreatedDateTimeOffset"] = stored["LastChangedDateTimeOffset"] = now
                self.next_line_id += 1
            draft = {
                "Id": str(uuid.uuid4()),
                "VoucherDate": date,
                "CurrencyCode": "NOK",
                "Description": body.get("Description"),
                "DepartmentId": header_department,
                "ProjectId": header_project,
                "ManualVoucherLines": stored_lines,
                "Pages": [],
                "_created": now,
                "_in_approval": False,
                "_posted": False,
            }
            self.drafts[draft["Id"]] = draft
            self._save()
        return draft

    @staticmethod
    def render_draft(d: dict[str, Any]) -> dict[str, Any]:
        lines = [{**line, "CurrencyAmount": from_ore(line["CurrencyAmount"])} for line in d["ManualVoucherLines"]]
        return {**{k: v for k, v in d.items() if not k.startswith("_")}, "ManualVoucherLines": lines}

    def submit_for_approval(self, draft_id: str) -> dict[str, Any]:
        with self.lock:
            draft = self.drafts.get(draft_id)
            if draft is None:
                raise not_found(f"Journal entry voucher with id = {draft_id}")
            if draft["_in_approval"]:
                raise PowerOfficeError(409, "Conflict", "The voucher is already in the approval workflow.")
            if draft.get("_posted"):
                raise PowerOfficeError(409, "Conflict", "The voucher is already posted.")
            draft["_in_approval"] = True
            self._save()
        return {"VoucherId": draft_id, "InApprovalWorkflow": True, "IsPosted": False}

    def approve(self, draft_id: str) -> dict[str, Any]:
        """What an approver does in Go: post a draft awaiting approval as a ManualJournal voucher.

        The posted voucher keeps the draft's Id (the spec: the Id "will persist when/if the voucher
        is posted"); one signed gross line per side and no ExternalImportReference (INFERRED).
        """
        with self.lock:
            draft = self.drafts.get(draft_id)
            if draft is None:
                raise not_found(f"Journal entry voucher with id = {draft_id}")
            if not draft["_in_approval"] or draft.get("_posted"):
                raise PowerOfficeError(409, "Conflict", "The voucher is not awaiting approval.")
            lines = []
            for line in draft["ManualVoucherLines"]:
                for side, sign in (("Debit", 1), ("Credit", -1)):
                    if line.get(side + "AccountId") is None:
                        continue
                    lines.append(
                        {
                            "AccountId": line[side + "AccountId"],
                            "VatId": line.get(side + "VatId"),
                            "CurrencyAmount": sign * line["CurrencyAmount"],
                            "CurrencyCode": "NOK",
                            "PostingDate": line["PostingDate"],
                            "Description": line.get("Description"),
                            "DepartmentId": line.get("DepartmentId"),
                            "ProjectId": line.get("ProjectId"),
                            "ExternalLineReference": None,
                        }
                    )
            voucher = self._book(draft_id, draft["VoucherDate"], draft, None, lines, reversible=False)
            draft["_posted"] = True
            draft["_in_approval"] = False
            self._save()
        return voucher

    def account_transactions(self, date_from: str, date_to: str) -> list[dict[str, Any]]:
        out = []
        with self.lock:
            vouchers = sorted(self.vouchers.values(), key=lambda v: v["VoucherNo"])
        for v in vouchers:
            for line in v["VoucherLines"]:
                if not (date_from <= line["PostingDate"] <= date_to):
                    continue
                account = self.ledger_account(line["AccountId"])
                assert account is not None  # checked when the voucher was booked
                customer = self.customer_by_subledger(line["AccountId"])
                vat = self.vat_codes[line["VatId"]]
                gross = line["CurrencyAmount"]
                tax = line_vat(gross, vat)
                department = self.departments.get(line.get("DepartmentId"))  # type: ignore[arg-type]
                project = self.projects.get(line.get("ProjectId"))  # type: ignore[arg-type]
                row = self._transaction(v, line, account, vat, gross - tax, tax, line["Id"])
                row.update(
                    DepartmentId=department.id if department else None,
                    DepartmentCode=department.code if department else None,
                    ProjectId=project.id if project else None,
                    ProjectCode=project.code if project else None,
                    CustomerAccountNo=customer["Number"] if customer else None,
                    ContactId=customer["Id"] if customer else None,
                )
                out.append(row)
                if tax:  # the generated VAT transaction carries no dimensions (INFERRED)
                    vat_account = next(a for a in self.accounts.values() if a.account_no == vat.vat_account)
                    out.append(self._transaction(v, line, vat_account, vat, tax, 0, line["Id"] + 500_000_000))
        return out

    @staticmethod
    def _transaction(
        v: dict[str, Any], line: dict[str, Any], account: GlAccount, vat: VatCode, amount: Ore, tax: Ore, tx_id: int
    ) -> dict[str, Any]:
        return {
            "DepartmentId": None,
            "DepartmentCode": None,
            "ProjectId": None,
            "ProjectCode": None,
            "CustomerAccountNo": None,
            "ContactId": None,
            "Id": tx_id,
            "AccountId": account.id,
            "AccountNo": account.account_no,
            "Amount": from_ore(amount),
            "CurrencyAmount": from_ore(amount),
            "CurrencyCode": "NOK",
            "VatAmount": from_ore(tax),
            "VatCode": vat.code,
            "VatId": vat.id,
            "VatRate": Decimal(vat.rate),
            "Description": line.get("Description"),
            "PostingDate": line["PostingDate"],
            "VoucherDate": v["VoucherDate"],
            "VoucherDescription": v.get("Description"),
            "VoucherId": v["Id"],
            "VoucherNo": v["VoucherNo"],
            "VoucherType": v.get("_type", "ManualJournal"),
            "ExternalImportReference": v.get("ExternalImportReference"),
            "ImportedVoucherNo": v.get("ImportedVoucherNo"),
            "IsReversed": v.get("IsReversed", False),
            "ReversedVoucherId": v.get("_reversed_voucher_id"),
            "ReversedVoucherNo": v.get("_reversed_voucher_no"),
            "CreatedDateTimeOffset": line["CreatedDateTimeOffset"],
            "LastChangedDateTimeOffset": line["CreatedDateTimeOffset"],
        }


# --------------------------------------------------------------------------------------------
# The app
# --------------------------------------------------------------------------------------------


class PowerOfficeSandbox(SandboxApp):
    """The PowerOffice app behind the shared fault layer (`admin.SandboxApp`). Faults match paths
    under /v2 without the prefix ("/Vouchers/ManualJournals"); the token endpoint is faulted as
    "/OAuth/Token" and its body never logged."""

    json_response = PoJSONResponse

    async def open_call(self, scope: Scope, receive: Receive) -> ApiCall | None:
        path = scope["path"]
        if path == TOKEN_PATH:
            return ApiCall(path, log_entry(scope, path), receive, log_body=False)
        if path.startswith(API_PREFIX + "/"):
            sub_path = path.removeprefix(API_PREFIX)
            return ApiCall(sub_path, log_entry(scope, sub_path), receive)
        return None

    def fault_reply(self, fault: Fault, call: ApiCall) -> Response:
        if fault.kind == "429":  # the API gateway's answer (PO-AUTH)
            seconds = max(1, int(fault.seconds))
            body = {"statusCode": "429", "message": f"Rate limit is exceeded. Try again in {seconds} seconds."}
            return PoJSONResponse(body, status_code=429, headers={"Retry-After": str(seconds)})
        error = PowerOfficeError(500, "An unexpected error occurred.")
        return Response(dumps(error.body(call.path)), status_code=500, media_type=error.media_type)

    def reset_books(self, options: dict[str, Any]) -> None:
        self.state.store.reset()

    def voucher_listing(self, request: Request) -> Any:
        store: PowerOfficeStore = self.state.store
        return {
            "vouchers": [
                {**store.render_voucher(v), "VoucherType": v.get("_type", "ManualJournal")}
                for v in store.vouchers.values()
            ],
            "drafts": [
                {**store.render_draft(d), "InApprovalWorkflow": d["_in_approval"]} for d in store.drafts.values()
            ],
        }


def demo_connection(url: str) -> dict[str, Any]:
    """The Airflow connection (as `AIRFLOW_CONN_*` JSON holds it) to this sandbox at `url`."""
    return {
        "conn_type": "poweroffice",
        "host": f"{url}{API_PREFIX}",
        "password": DEMO_CLIENT_KEY,
        "extra": {
            "application_key": DEMO_APPLICATION_KEY,
            "subscription_key": DEMO_SUBSCRIPTION_KEY,
            "token_url": f"{url}{TOKEN_PATH}",
        },
    }


def create_app(
    *,
    application_keys: Iterable[str] = (DEMO_APPLICATION_KEY,),
    client_keys: Iterable[str] = (DEMO_CLIENT_KEY,),
    subscription_keys: Iterable[str] = (DEMO_SUBSCRIPTION_KEY,),
    privileges: Iterable[str] = DEFAULT_PRIVILEGES,
    accounts: Iterable[GlAccount] = ACCOUNTS,
    vat_codes: Iterable[VatCode] = VAT_CODES,
    departments: Iterable[Department] = DEPARTMENTS,
    projects: Iterable[Project] = PROJECTS,
    client_name: str = DEMO_CLIENT_NAME,
    token_lifetime: int = TOKEN_LIFETIME,
    clock: Callable[[], float] = time.monotonic,
    state_path: str | os.PathLike[str] | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
    max_page_size: int = MAX_PAGE_SIZE,
) -> PowerOfficeSandbox:
    """Build a PowerOffice Go v2 sandbox app for one client.

    Args:
      application_keys, client_keys, subscription_keys: accepted keys (demo defaults).
      privileges: the integration's ValidPrivileges; endpoints check them (403 when missing).
      token_lifetime: expires_in of issued tokens, seconds; `clock` decides expiry (tests pass a
        fake one).
      state_path: JSON file the books are kept in across restarts (else memory only).
      page_size, max_page_size: a list's PageSize when the request gives none, and its
        MaxPageSize (the spec's 5000 and 20000); tests pass tiny ones to get many pages.

    `app.state.store` (PowerOfficeStore), `app.state.faults` (FaultInjector) and
    `app.state.calls` (CallLog) are there for in-process inspection.
    """
    store = PowerOfficeStore(
        application_keys=application_keys,
        client_keys=client_keys,
        subscription_keys=subscription_keys,
        privileges=privileges,
        accounts=accounts,
        vat_codes=vat_codes,
        departments=departments,
        projects=projects,
        token_lifetime=token_lifetime,
        clock=clock,
        state_path=state_path,
        page_size=page_size,
        max_page_size=max_page_size,
    )
    app = PowerOfficeSandbox(title="PowerOffice Go v2 sandbox (kassebro)")
    app.state.store = store
    app.state.client_name = client_name

    @app.exception_handler(PowerOfficeError)
    async def po_error(request: Request, exc: PowerOfficeError) -> Response:
        return Response(
            dumps(exc.body(request.url.path)),
            status_code=exc.status,
            headers=exc.headers,
            media_type=exc.media_type,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        error = PowerOfficeError(exc.status_code, str(exc.detail), None)
        return Response(dumps(error.body(request.url.path)), status_code=exc.status_code, media_type=error.media_type)

    @app.post(TOKEN_PATH)
    async def token(request: Request) -> Response:
        store.check_subscription_key(request.headers.get("Ocp-Apim-Subscription-Key"))
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        answer = store.issue_token(request.headers.get("Authorization"), form.get("grant_type"))
        return PoJSONResponse(answer)

    app.include_router(_api_router(app, store))
    app.include_router(_admin_router(app, store))
    return app


def _api_router(app: PowerOfficeSandbox, store: PowerOfficeStore) -> APIRouter:
    def authenticated(request: Request) -> None:
        store.check_subscription_key(request.headers.get("Ocp-Apim-Subscription-Key"))
        store.check_bearer(request.headers.get("Authorization"))

    router = APIRouter(prefix=API_PREFIX, dependencies=[Depends(authenticated)], default_response_class=PoJSONResponse)

    def listing(values: list[dict[str, Any]]) -> Response:
        return PoJSONResponse(values) if values else Response(status_code=204)

    def page_param(request: Request, name: str, default: int) -> int:
        raw = request.query_params.get(name)
        if raw is None or not raw.strip():
            return default
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if value < 1:
            raise PowerOfficeError(
                400, "Invalid resourceParameter", f"{name} in resourceParameter must be a whole number from 1."
            )
        return value

    def paged(request: Request, values: list[dict[str, Any]]) -> Response:
        """One page of a list: resourceParameter's PageNumber (from 1) and PageSize; 204 when empty."""
        number = page_param(request, "PageNumber", 1)
        size = page_param(request, "PageSize", store.page_size)
        if size > store.max_page_size:
            raise PowerOfficeError(
                400,
                "Invalid resourceParameter",
                f"PageSize in resourceParameter ({size}) is larger than MaxPageSize ({store.max_page_size}).",
            )
        start = (number - 1) * size
        return listing(values[start : start + size])

    async def json_body(request: Request) -> Any:
        try:
            return json.loads((await request.body()).decode("utf-8") or "null", parse_float=Decimal)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise bad_request(f"The request body is not valid JSON: {exc}") from None

    def date_param(request: Request, name: str) -> str:
        errors: dict[str, list[str]] = {}
        value = _date(request.query_params.get(name), name, errors)
        if value is None:
            raise bad_request(f"The {name} parameter is required.", errors or {name: ["The value is required."]})
        return value

    def list_param(request: Request, name: str) -> list[str] | None:
        raw = request.query_params.get(name)
        return [p.strip() for p in raw.split(",") if p.strip()] if raw and raw.strip() else None

    def number_matches(number: int, filters: list[str] | None) -> bool:
        if filters is None:
            return True
        for f in filters:
            low, dash, high = f.partition("-")
            if dash and low.isdigit() and high.isdigit() and int(low) <= number <= int(high):
                return True
            if f.isdigit() and int(f) == number:
                return True
        return False

    @router.get("/ClientIntegrationInformation")
    async def client_info() -> Response:
        invalid = [p for p in DEFAULT_PRIVILEGES if p not in store.privileges]
        return PoJSONResponse(
            {
                "ClientId": DEMO_CLIENT_ID,
                "ClientName": app.state.client_name,
                "ValidPrivileges": list(store.privileges),
                "InvalidPrivileges": invalid,
                "ActiveClientSubscriptions": ["Go"],
            }
        )

    @router.get("/GeneralLedgerAccounts")
    async def accounts(request: Request) -> Response:
        store.require("GeneralLedgerAccount", "GeneralLedgerAccount_Full")
        numbers = list_param(request, "accountNos")
        values = [
            store.render_account(a)
            for a in sorted(store.accounts.values(), key=lambda a: a.account_no)
            if number_matches(a.account_no, numbers)
        ]
        return paged(request, values)

    @router.get("/GeneralLedgerAccounts/{account_id}")
    async def account(account_id: int) -> Response:
        store.require("GeneralLedgerAccount", "GeneralLedgerAccount_Full")
        found = store.accounts.get(account_id)
        if found is None:
            raise not_found(f"General ledger account with id = {account_id}")
        return PoJSONResponse(store.render_account(found))

    @router.get("/VatCodes")
    async def vat_codes(request: Request) -> Response:
        store.require("CommonServices", "CommonServices_Full")
        return paged(request, [store.render_vat(v) for v in sorted(store.vat_codes.values(), key=lambda v: v.id)])

    @router.get("/Departments")
    async def departments(request: Request) -> Response:
        store.require("Department", "Department_Full")
        codes = list_param(request, "codes")
        active = request.query_params.get("isActive")
        values = [
            store.render_department(d)
            for d in sorted(store.departments.values(), key=lambda d: d.id)
            if (codes is None or d.code in codes) and (active is None or (active.lower() == "true") == d.is_active)
        ]
        return paged(request, values)

    @router.get("/Projects")
    async def projects(request: Request) -> Response:
        store.require("Project", "Project_Full")
        codes = list_param(request, "projectCodes")
        with_subs = (request.query_params.get("includeSubProjects") or "").lower() == "true"
        no_archived = (request.query_params.get("excludeArchivedProject") or "").lower() == "true"

        def wanted(p: Project) -> bool:
            if no_archived and p.status == "Archived":
                return False
            if codes is None or p.code in codes:
                return True
            return with_subs and any(p.code.startswith(code + ".") for code in codes)

        values = [store.render_project(p) for p in sorted(store.projects.values(), key=lambda p: p.id) if wanted(p)]
        return paged(request, values)

    @router.get("/Customers")
    async def customers(request: Request) -> Response:
        store.require("Customer", "Customer_Full")
        ref = request.query_params.get("externalImportReference")
        ref = ref if ref and ref.strip() else None
        numbers = request.query_params.get("customerNos")
        external = request.query_params.get("externalNos")
        with store.lock:
            rows = sorted(store.customers.values(), key=lambda c: c["Number"])
        values = [
            store.render_customer(c)
            for c in rows
            if (ref is None or c["ExternalImportReference"] == ref)
            and number_filter_matches(c["Number"], numbers)
            and number_filter_matches(c["ExternalNumber"], external)
        ]
        return paged(request, values)

    @router.get("/Customers/{customer_id}")
    async def customer(customer_id: int) -> Response:
        store.require("Customer", "Customer_Full")
        found = store.customers.get(customer_id)
        if found is None:
            raise not_found(f"Customer with id = {customer_id}")  # the spec's example
        return PoJSONResponse(store.render_customer(found))

    @router.post("/Customers", status_code=201)
    async def post_customer(request: Request) -> Response:
        store.require("Customer_Full")
        created = store.create_customer(await json_body(request))
        return PoJSONResponse(store.render_customer(created), status_code=201)

    @router.get("/AccountTransactions")
    async def transactions(request: Request) -> Response:
        store.require("AccountTransaction", "AccountTransaction_Full")
        date_from, date_to = date_param(request, "fromDate"), date_param(request, "toDate")
        numbers = list_param(request, "accountNos")
        voucher_nos = list_param(request, "voucherNos")
        vat = list_param(request, "vatCodes")
        departments = list_param(request, "departmentCodes")
        projects = list_param(request, "projectCodes")

        def code_matches(code: str | None, filters: list[str] | None) -> bool:
            return filters is None or (code if code is not None else "-1") in filters  # -1: without (spec)

        values = [
            t
            for t in store.account_transactions(date_from, date_to)
            if number_matches(t["AccountNo"], numbers)
            and number_matches(t["VoucherNo"], voucher_nos)
            and (vat is None or t["VatCode"] in vat)
            and code_matches(t["DepartmentCode"], departments)
            and code_matches(t["ProjectCode"], projects)
        ]
        return paged(request, values)

    @router.get("/TrialBalance")
    async def trial_balance(request: Request) -> Response:
        """Each account's balance at `date`, that day's transactions included (the spec), summed
        from the AccountTransactions the sandbox holds (net Amount, VAT transactions included).

        INFERRED (the spec says "balance for the Date provided" only): result accounts (3000-8999)
        count from 1 January of the date's year, balance accounts from the start.
        """
        store.require("TrialBalance", "TrialBalance_Full")
        date = date_param(request, "date")
        numbers = list_param(request, "accountNos")
        hide_zero = request.query_params.get("hideAccountsWithZeroBalance", "").lower() == "true"
        year_start = date[:4] + "-01-01"
        totals: dict[int, int] = {}
        for t in store.account_transactions("0001-01-01", date):
            if t["AccountNo"] >= 3000 and t["PostingDate"] < year_start:
                continue
            totals[t["AccountId"]] = totals.get(t["AccountId"], 0) + to_ore(t["Amount"])
        values = [
            {
                "AccountId": a.id,
                "AccountName": a.name,
                "AccountNo": a.account_no,
                "AgricultureDepartment": None,
                "Balance": from_ore(totals.get(a.id, 0)),
            }
            for a in sorted(store.accounts.values(), key=lambda a: a.account_no)
            if number_matches(a.account_no, numbers) and (totals.get(a.id) or not hide_zero)
        ]
        return paged(request, values)

    @router.post("/Vouchers/ManualJournals", status_code=201)
    async def post_manual(request: Request) -> Response:
        store.require("ManualVoucher_Full")
        voucher = store.create_voucher(await json_body(request))
        return PoJSONResponse(store.render_voucher(voucher), status_code=201)

    @router.get("/Vouchers/ManualJournals/{voucher_id}")
    async def get_manual(voucher_id: str) -> Response:
        store.require("ManualVoucher_Full")
        return PoJSONResponse(store.render_voucher(store.manual_voucher(voucher_id)))

    @router.post("/Vouchers/Reverse/{voucher_id}")
    async def reverse(voucher_id: str) -> Response:
        store.require("YearEndVoucher_Full")
        store.reverse_voucher(voucher_id)
        return Response(status_code=200)  # the spec's 200 has no body

    @router.post("/JournalEntryVouchers/ManualJournals", status_code=201)
    async def post_draft(request: Request) -> Response:
        store.require("JournalEntryVoucher_Full")
        draft = store.create_draft(await json_body(request))
        return PoJSONResponse(store.render_draft(draft), status_code=201)

    @router.get("/JournalEntryVouchers/ManualJournals/{draft_id}")
    async def get_draft(draft_id: str) -> Response:
        store.require("JournalEntryVoucher", "JournalEntryVoucher_Full")
        found = store.drafts.get(draft_id)
        if found is None:
            raise not_found(f"Journal entry voucher with id = {draft_id}")
        return PoJSONResponse(store.render_draft(found))

    @router.get("/JournalEntryVouchers")
    async def list_drafts(request: Request) -> Response:
        store.require("JournalEntryVoucher", "JournalEntryVoucher_Full")
        in_approval = request.query_params.get("inApprovalWorkflow")
        is_posted = request.query_params.get("isPosted")
        values = []
        for d in store.drafts.values():
            posted = bool(d.get("_posted"))
            if in_approval is not None and (in_approval.lower() == "true") != d["_in_approval"]:
                continue
            if is_posted is not None and (is_posted.lower() == "true") != posted:
                continue
            values.append(
                {
                    "Id": d["Id"],
                    "CreatedDateTimeOffset": d["_created"],
                    "LastChangedDateTimeOffset": d["_created"],
                    "InApprovalWorkflow": d["_in_approval"],
                    "IsCreatedByCurrentIntegration": True,
                    "IsPosted": posted,
                    "OriginatedFromEhf": False,
                    "VoucherType": "ManualJournal",
                }
            )
        return paged(request, values)

    @router.post("/JournalEntryVouchers/{draft_id}/submitForApproval")
    async def submit(request: Request, draft_id: str) -> Response:
        store.require("JournalEntryVoucher_Full")
        await json_body(request)
        return PoJSONResponse(store.submit_for_approval(draft_id))

    return router


def _admin_router(app: PowerOfficeSandbox, store: PowerOfficeStore) -> APIRouter:
    """The shared admin API plus PowerOffice's own: `POST /_sandbox/approve/{id}` (the approver)
    and `PUT /_sandbox/privileges`."""
    router = admin_router(app)

    @router.post("/approve/{draft_id}")
    async def approve(draft_id: str) -> Response:
        return PoJSONResponse(store.render_voucher(store.approve(draft_id)))

    @router.put("/privileges")
    async def set_privileges(request: Request) -> Response:
        body = await request.json()
        store.privileges = [str(p) for p in body.get("privileges", [])]
        return JSONResponse({"privileges": store.privileges})

    return router


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """`python -m kassebro.sandbox.poweroffice --port 8910 [--state FILE]`; SIGTERM stops it cleanly."""
    from kassebro.sandbox.server import sandbox_parser, serve_until_stopped

    parser = sandbox_parser("Run the PowerOffice Go v2 sandbox.", 8910)
    parser.add_argument("--application-key", action="append", help=f"accepted (default {DEMO_APPLICATION_KEY})")
    parser.add_argument("--client-key", action="append", help=f"accepted (default {DEMO_CLIENT_KEY})")
    parser.add_argument("--subscription-key", action="append", help=f"accepted (default {DEMO_SUBSCRIPTION_KEY})")
    args = parser.parse_args(argv)
    app = create_app(
        application_keys=args.application_key or (DEMO_APPLICATION_KEY,),
        client_keys=args.client_key or (DEMO_CLIENT_KEY,),
        subscription_keys=args.subscription_key or (DEMO_SUBSCRIPTION_KEY,),
        state_path=args.state,
    )
    return serve_until_stopped(app, args, lambda url: f"PowerOffice Go sandbox on {url}/v2 (token: {url}{TOKEN_PATH})")


if __name__ == "__main__":
    sys.exit(main())
