"""A local emulator of the Tripletex API v2, for the subset kassebro uses, with fault injection.

It serves the real paths under `/v2` with the real auth (session tokens from consumer + employee
token, Basic `0:<token>`), envelopes (`{"value"}` and paged lists), the `fields` filter, the
ApiError body with `x-tlx-request-id`, Norwegian validation messages, and the voucher rules that
bite in practice: rows from 1 (row 0 is the system's VAT row), postings summing to 0 per date,
known accounts, `vatLocked` accounts, at most two decimals. Where the real wording is known it is
copied (sources in the brief, `apis.md` §1); the others are marked "sandbox wording" below.

How vouchers read back (decided from the spec's Posting schema and the real API's behaviour):
each posting we were sent keeps its `row`, `amountGross`/`amountGrossCurrency` (gross, as sent)
and gets `amount`/`amountCurrency` = the net amount. For a vatType with a rate the system adds a
VAT posting with `row` 0, `systemGenerated: true`, on the VAT account of the type (3 -> 2700,
31 -> 2701, 33 -> 2702, 1 -> 2710, 11 -> 2711, 13 -> 2712) with amount = amountGross = the VAT,
VAT computed from gross and rounded half up per posting. `amount` sums to 0 over all postings;
`amountGross` sums to 0 over the rows we sent. A posting without vatType gets the account's
vatType when the account is vatLocked, else vatType "0".

Accounting firms (spec `tokenAuthScheme` and `info.description`: the Basic username is "0" or
blank for the employee's own company, any other value a client's company id, listed by
`GET /company/>withLoginAccess`, a `ListResponseClient`). The store holds several companies, each
with its own books and its own ids; a firm's employee (`Company.login_access`) may act for its
clients. INFERRED, as neither the spec nor the brief says:
- a Basic username naming a company the employee has no login access to gets 403 (code 9000,
  sandbox wording); a bad or expired session stays 401;
- `>withLoginAccess` lists the clients only, not the firm itself ("client customers" in the
  summary), whatever the Basic username; `customerCompanyId`, `type` and dates are null;
- `>whoAmI` as a client gives that company with the firm's employee, `employeeIsProxy: true`;
- `fields` on `POST /ledger/voucher` is ignored (the spec declares it for GETs and a few other
  operations, not this one), so the answer carries postings as references only.
The call log records each call's Basic username as `user` (a company id, never the token).

The webshop side (customers, orders, invoices, payment types) is in `tripletex_invoicing.py`, held
by the store as `store.invoicing`.

Run it: `python -m kassebro.sandbox.tripletex --port 8900 [--state FILE]`, or in-process with
`kassebro.sandbox.server.running(create_app())`. Admin API outside `/v2` under `/_sandbox`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from kassebro.sandbox.admin import ApiCall, SandboxApp, admin_router, log_entry
from kassebro.sandbox.amounts import Ore, from_ore, percent, round_half_up, to_ore, vat_in_gross
from kassebro.sandbox.common import Fault, Receive, Scope

DOC_LINK = "https://tripletex.no/v2-docs/"
NOK_CURRENCY_ID = 1
SECRET_QUERY_KEYS = {"consumerToken", "employeeToken", "token"}
RATE_LIMIT_HEADERS = ("X-Rate-Limit-Limit", "X-Rate-Limit-Remaining", "X-Rate-Limit-Reset")


# --------------------------------------------------------------------------------------------
# Master data
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Company:
    """The company (and the employee) an employee token logs into.

    `login_access`: ids of the client companies this employee may log in to by proxy (an
    accounting firm's accountant), listed by `/company/>withLoginAccess`.
    """

    id: int
    name: str
    organization_number: str
    employee_id: int
    employee_first_name: str = "Demo"
    employee_last_name: str = "Regnskap"
    login_access: tuple[int, ...] = ()
    ledger_access: bool = True
    """False: a firm's proxy is listed for the company but lacks its accounting role, so every call
    as the company is refused (INFERRED: the spec documents the 403, not this reason for it)."""


@dataclass(frozen=True)
class VatType:
    """A Tripletex VAT type: `number` is the standard code, `id` the company's own id."""

    id: int
    number: str
    name: str
    percentage: str
    direction: str  # OUTGOING, INCOMING or NONE (both)
    vat_account: int | None = None  # account number the generated VAT posting goes to


@dataclass(frozen=True)
class Account:
    """An account in the chart; `vat_type` is the default (and, if `vat_locked`, the only) code."""

    id: int
    number: int
    name: str
    vat_type: str = "0"
    vat_locked: bool = False
    ledger_type: str = "GENERAL"
    is_bank_account: bool = False
    requires_department: bool = False
    requires_project: bool = False
    is_inactive: bool = False


@dataclass(frozen=True)
class Department:
    id: int
    number: str
    name: str


@dataclass(frozen=True)
class Project:
    id: int
    number: str
    name: str
    is_closed: bool = False


# The demo's tokens (kassebro.demo.home, docker-compose); the short forms are accepted too.
DEMO_CONSUMER_TOKEN = "demo-consumer-token"
DEMO_EMPLOYEE_TOKEN = "demo-employee-token"
DEMO_CONSUMER_TOKENS = (DEMO_CONSUMER_TOKEN, "demo-consumer")
DEMO_EMPLOYEE_TOKENS = (DEMO_EMPLOYEE_TOKEN, "demo-employee")
DEMO_COMPANY = Company(id=10_874_521, name="Demo Kiosk AS", organization_number="999999999", employee_id=18_502_297)
# An accounting firm whose employee token reaches two clients: the kiosk above and a bakery
# without a token of its own.
DEMO_FIRM_EMPLOYEE_TOKEN = "demo-firm-employee-token"
DEMO_CLIENT_COMPANIES: tuple[Company, ...] = (
    Company(id=10_874_633, name="Demo Bakeri AS", organization_number="998877665", employee_id=18_502_340),
    # a client the firm is listed for but whose accounting it may not read: a read-back fails alone
    Company(
        id=10_874_702,
        name="Demo Frisør AS",
        organization_number="995544334",
        employee_id=18_502_355,
        ledger_access=False,
    ),
)
DEMO_FIRM = Company(
    id=10_870_015,
    name="Demo Regnskapsbyrå AS",
    organization_number="997766554",
    employee_id=18_502_301,
    employee_last_name="Regnskapsfører",
    login_access=(DEMO_COMPANY.id, *(c.id for c in DEMO_CLIENT_COMPANIES)),
)


def generated_vat(gross: Ore, vat: VatType) -> Ore:
    """The VAT Tripletex books on the system-generated row 0 for a posting of `gross` øre.

    Documented (TX-SPEC, `POST /ledger/voucher`): "Only the gross amounts will be used. Amounts
    should be rounded to 2 decimals."; on normal vouchers the VAT postings are generated from the
    posting's vatType (changelog), whose `percentage` is the rate. So the VAT is the part of
    amountGross at that rate, gross x p / (100 + p), and the posting's `amount` (net) is gross -
    VAT: a posting and its VAT row add up to the gross sent (a real read-back, NOVA: 28687.00
    gross at vatType 1 -> amount 22949.60 and a row-0 posting of 5737.40).

    INFERRED (neither the spec nor the brief says how Tripletex rounds): the VAT figure itself is
    rounded to the øre, half up (half an øre away from zero, so a credit mirrors a debit), once
    per posting. Only a vatType with a VAT account generates a row. At 25 % and 15 % the VAT in a
    whole-øre gross never ends in exactly half an øre (gross/5, 3 x gross/23), so the rule only
    shows at 12 %: 1000.02 -> VAT 107.145 -> 107.15, where rounding the net instead (892.875 ->
    892.88), rounding half to even or cutting off would all give 107.14.
    """
    if vat.vat_account is None:
        return 0
    return round_half_up(vat_in_gross(gross, percent(vat.percentage)))


def demo_employee_tokens() -> dict[str, Company]:
    """The default employee tokens: the kiosk's own ones first (the default company), the firm's."""
    return {**dict.fromkeys(DEMO_EMPLOYEE_TOKENS, DEMO_COMPANY), DEMO_FIRM_EMPLOYEE_TOKEN: DEMO_FIRM}


VAT_TYPES: tuple[VatType, ...] = (
    VatType(6000, "0", "Ingen avgiftsbehandling", "0", "NONE"),
    VatType(6001, "1", "Fradrag inngående avgift, høy sats", "25", "INCOMING", 2710),
    VatType(6002, "11", "Fradrag inngående avgift, middels sats", "15", "INCOMING", 2711),
    VatType(6003, "13", "Fradrag inngående avgift, lav sats", "12", "INCOMING", 2712),
    VatType(6004, "3", "Utgående avgift, høy sats", "25", "OUTGOING", 2700),
    VatType(6005, "31", "Utgående avgift, middels sats", "15", "OUTGOING", 2701),
    VatType(6006, "33", "Utgående avgift, lav sats", "12", "OUTGOING", 2702),
    VatType(6007, "5", "Ingen utgående avgift (innenfor mva-loven)", "0", "OUTGOING"),
    VatType(6008, "6", "Ingen utgående avgift (utenfor mva-loven)", "0", "OUTGOING"),
    VatType(6009, "7", "Ingen inngående avgift (utenfor mva-loven)", "0", "INCOMING"),
    VatType(6010, "52", "Utførsel av varer og tjenester", "0", "OUTGOING"),
)

_ACCOUNT_ID_BASE = 291_297_300


def _chart(rows: Iterable[tuple]) -> tuple[Account, ...]:
    return tuple(Account(_ACCOUNT_ID_BASE + i, number, name, *rest) for i, (number, name, *rest) in enumerate(rows))


# (number, name, vatType, vatLocked, ledgerType, isBankAccount): a realistic NS 4102 subset for
# a shop. Balance accounts are locked to "0"; revenue accounts per rate are locked to their rate
# so a posting with another vatType fails as in a real Tripletex company; 3010 is an unlocked
# high-rate revenue account.
CHART: tuple[Account, ...] = _chart(
    [
        (1500, "Kundefordringer", "0", True, "CUSTOMER"),
        (1570, "Andre kortsiktige fordringer", "0", True),
        (1580, "Fordring på kortinnløser", "0", True),
        (1900, "Kontanter", "0", True),
        (1910, "Vekselkasse", "0", True),
        (1920, "Bankinnskudd", "0", True, "GENERAL", True),
        (1940, "Bankinnskudd, oppgjørskonto", "0", True, "GENERAL", True),
        (1950, "Bankinnskudd for skattetrekk", "0", True, "GENERAL", True),
        (1941, "Kredittkortoppgjør", "0", True),
        (1945, "Vipps oppgjørskonto", "0", True),
        (1949, "Andre betalingsformidlere", "0", True),
        (2400, "Leverandørgjeld", "0", True, "VENDOR"),
        (2700, "Utgående merverdiavgift, høy sats", "0", True),
        (2701, "Utgående merverdiavgift, middels sats", "0", True),
        (2702, "Utgående merverdiavgift, lav sats", "0", True),
        (2710, "Inngående merverdiavgift, høy sats", "0", True),
        (2711, "Inngående merverdiavgift, middels sats", "0", True),
        (2712, "Inngående merverdiavgift, lav sats", "0", True),
        (2740, "Oppgjørskonto merverdiavgift", "0", True),
        (2900, "Forskudd fra kunder (gavekort)", "0", True),
        (2901, "Tilgodelapper (kreditnotaer)", "0", True),
        (2910, "Gjeld til ansatte (tips)", "0", True),
        (2990, "Annen kortsiktig gjeld (pant)", "0", True),
        (3000, "Salgsinntekt, avgiftspliktig, høy sats", "3", True),
        (3010, "Salgsinntekt, avgiftspliktig", "3", False),
        (3030, "Salgsinntekt, avgiftspliktig, middels sats", "31", True),
        (3040, "Salgsinntekt, avgiftspliktig, lav sats", "33", True),
        (3100, "Salgsinntekt, avgiftsfri", "5", True),
        (3200, "Salgsinntekt, utenfor avgiftsområdet", "6", True),
        (3600, "Leieinntekt fast eiendom", "0", False),
        (3900, "Annen driftsrelatert inntekt", "0", False),
        (4300, "Innkjøp av varer for videresalg", "1", False),
        (7320, "Rabatter og andre salgsfremmende kostnader", "0", False),
        (7770, "Bank- og kortgebyrer", "0", False),
        (7798, "Øreavrunding", "0", False),
        (7799, "Kassedifferanse", "0", False),
    ]
)

DEPARTMENTS: tuple[Department, ...] = (
    Department(70_001, "1", "Butikk Sentrum"),
    Department(70_002, "2", "Butikk Storsenter"),
    Department(70_003, "3", "Kafé"),
)
PROJECTS: tuple[Project, ...] = (
    Project(80_101, "100", "Sommersalg"),
    Project(80_102, "101", "Julemarked"),
    Project(80_103, "102", "Avsluttet kampanje", is_closed=True),
)


# --------------------------------------------------------------------------------------------
# Errors and JSON
# --------------------------------------------------------------------------------------------


class TripletexError(Exception):
    """An error answer with the real ApiError body."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str | None,
        *,
        developer_message: str | None = None,
        validation: list[dict[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message or str(status))
        self.status = status
        self.code = code
        self.message = message
        self.developer_message = developer_message
        self.validation = validation
        self.headers = dict(headers or {})

    def body(self, request_id: str) -> dict[str, Any]:
        return {
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "link": DOC_LINK,
            "developerMessage": self.developer_message,
            "validationMessages": self.validation,
            "requestId": request_id,
        }


def _vm(field_name: str, message: str, path: str | None = None) -> dict[str, Any]:
    return {"field": field_name, "message": message, "path": path, "rootId": None}


def validation_failed(messages: list[dict[str, Any]]) -> TripletexError:
    """422 / 18000 "Validering feilet.", as the real API answers every rule violation."""
    return TripletexError(422, 18000, "Validering feilet.", validation=messages)


def not_found() -> TripletexError:
    return TripletexError(404, 6000, "Objektet finnes ikke.")


def unauthorized(developer_message: str) -> TripletexError:
    return TripletexError(
        401,
        3000,
        "Unauthorized",
        developer_message=developer_message,
        headers={"WWW-Authenticate": 'Basic realm="Tripletex"'},
    )


def dumps(obj: Any) -> str:
    """JSON with Decimal written as a plain number, so amounts never pass through float."""
    if obj is None:
        return "null"
    if obj is True:
        return "true"
    if obj is False:
        return "false"
    if isinstance(obj, Decimal):
        return format(obj, "f")
    if isinstance(obj, int | float):
        return json.dumps(obj)
    if isinstance(obj, str):
        return json.dumps(obj, ensure_ascii=False)
    if isinstance(obj, Mapping):
        return "{" + ",".join(f"{json.dumps(str(k))}:{dumps(v)}" for k, v in obj.items()) + "}"
    if isinstance(obj, list | tuple):
        return "[" + ",".join(dumps(v) for v in obj) + "]"
    raise TypeError(f"cannot serialise {type(obj).__name__}")


class TxJSONResponse(JSONResponse):
    media_type = "application/json; charset=utf-8"

    def render(self, content: Any) -> bytes:
        return dumps(content).encode("utf-8")


# --------------------------------------------------------------------------------------------
# The `fields` filter
# --------------------------------------------------------------------------------------------

FieldTree = dict[str, "FieldTree | None"]
DEFAULT_FIELDS: FieldTree = {"*": None}


def parse_fields(text: str | None) -> FieldTree:
    """Parse `id,postings(row,account(id,number)),*` into a tree; empty means `*`."""
    text = (text or "").replace(" ", "")
    if not text:
        return dict(DEFAULT_FIELDS)
    pos = 0

    def level() -> FieldTree:
        nonlocal pos
        tree: FieldTree = {}
        name = ""
        while pos < len(text):
            ch = text[pos]
            pos += 1
            if ch == ",":
                if name:
                    tree.setdefault(name, None)
                name = ""
            elif ch == "(":
                tree[name] = level()
                name = ""
            elif ch == ")":
                break
            else:
                name += ch
        if name:
            tree.setdefault(name, None)
        return tree

    return level() or dict(DEFAULT_FIELDS)


def apply_fields(obj: Any, tree: FieldTree | None) -> Any:
    """Keep the fields asked for; nested objects not expanded become `{id, url}` as in the API."""
    if isinstance(obj, list):
        return [apply_fields(item, tree) for item in obj]
    if not isinstance(obj, dict):
        return obj
    tree = tree or DEFAULT_FIELDS
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if key not in tree and "*" not in tree:
            continue
        sub = tree.get(key)
        if sub is not None:
            out[key] = apply_fields(value, sub)
        else:
            out[key] = _reference(value)
    return out


def _reference(value: Any) -> Any:
    if isinstance(value, list):
        return [_reference(v) for v in value]
    if isinstance(value, dict) and "id" in value:
        return {k: value[k] for k in ("id", "url") if k in value}
    return value


# --------------------------------------------------------------------------------------------
# Rate limits
# --------------------------------------------------------------------------------------------


class RateLimiter:
    """Optional fixed-window limit on all authenticated calls, with the real headers."""

    def __init__(self, limit: int, period: float) -> None:
        self.limit = limit
        self.period = period
        self._lock = threading.Lock()
        self._window_start = time.monotonic()
        self._used = 0

    def hit(self) -> tuple[bool, dict[str, str]]:
        with self._lock:
            now = time.monotonic()
            if now - self._window_start >= self.period:
                self._window_start = now
                self._used = 0
            self._used += 1
            reset = max(0, int(self.period - (now - self._window_start) + 0.999))
            ok = self._used <= self.limit
            headers = {
                "X-Rate-Limit-Limit": str(self.limit),
                "X-Rate-Limit-Remaining": str(max(0, self.limit - self._used)),
                "X-Rate-Limit-Reset": str(reset),
            }
            return ok, headers


# --------------------------------------------------------------------------------------------
# The store
# --------------------------------------------------------------------------------------------


def _to_decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, Decimal | int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            return None
        return result if result.is_finite() else None
    return None


def _parse_date(value: Any) -> dt.date | None:
    if not isinstance(value, str):
        return None
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        return None


def _ref_id(value: Any) -> int | None | bool:
    """The id of a `{"id": ...}` reference; None when absent; False when malformed."""
    if value is None:
        return None
    if not isinstance(value, dict):
        return False
    raw = value.get("id")
    if raw is None:
        return None
    if isinstance(raw, bool):
        return False
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str | Decimal) and str(raw).strip().lstrip("-").isdigit():
        return int(str(raw).strip())
    return False


@dataclass
class Session:
    id: int
    company_id: int  # the employee's own company
    expiration: dt.date


@dataclass(frozen=True)
class Login:
    """Who a call is made as: the session (the employee) and the company it acts for."""

    session: Session
    company: Company


@dataclass
class StoredPosting:
    id: int
    row: int
    date: str
    description: str
    account_id: int
    vat_type_id: int
    amount: Ore  # net for rows with VAT, else = gross
    gross: Ore
    department_id: int | None = None
    project_id: int | None = None
    customer_id: int | None = None
    supplier_id: int | None = None
    invoice_number: str | None = None
    system_generated: bool = False


@dataclass
class StoredVoucher:
    id: int
    version: int
    date: str
    year: int
    description: str
    external_voucher_number: str | None
    vendor_invoice_number: str | None
    in_ledger: bool
    number: int
    temp_number: int
    postings: list[StoredPosting] = field(default_factory=list)
    reverse_voucher_id: int | None = None
    created: str = ""
    company_id: int = 0  # whose books it is in (0 only in state files from before companies)

    @property
    def number_as_string(self) -> str:
        return f"{self.number}-{self.year}" if self.in_ledger else ""


# Each further company's master data gets the default company's ids plus this times its index:
# Tripletex ids are unique across companies, so an id from one company's chart does not exist in
# another's, and a client that mixes companies up gets the 422 the real API gives.
COMPANY_ID_STRIDE = 10_000_000


@dataclass
class CompanyBooks:
    """One company's master data: its chart, departments and projects (VAT types are shared)."""

    company: Company
    accounts: dict[int, Account]
    departments: dict[int, Department]
    projects: dict[int, Project]

    def __post_init__(self) -> None:
        self.accounts_by_number = {a.number: a for a in self.accounts.values()}


class TripletexStore:
    """The companies' books: charts, VAT types, dimensions, sessions and vouchers. Thread-safe.

    Tests can use it directly (`app.state.store`) to look at what the API holds. The default
    company is the one the first employee token logs into; `accounts`, `departments`, `projects`
    and every method without `company_id` are about it. Every other company (an accounting firm,
    its clients) has the same chart with ids shifted by COMPANY_ID_STRIDE per company.
    """

    def __init__(
        self,
        *,
        consumer_tokens: Iterable[str] = DEMO_CONSUMER_TOKENS,
        employee_tokens: Mapping[str, Company] | None = None,
        accounts: Iterable[Account] | None = None,
        extra_accounts: Iterable[Account] = (),
        vat_types: Iterable[VatType] = VAT_TYPES,
        departments: Iterable[Department] = DEPARTMENTS,
        projects: Iterable[Project] = PROJECTS,
        client_companies: Iterable[Company] = DEMO_CLIENT_COMPANIES,
        state_path: str | os.PathLike[str] | None = None,
    ) -> None:
        self._lock = threading.RLock()
        self.consumer_tokens = frozenset(consumer_tokens)
        self.employee_tokens = dict(employee_tokens if employee_tokens is not None else demo_employee_tokens())
        if not self.employee_tokens:
            raise ValueError("at least one employee token is needed")
        self.companies: dict[int, Company] = {}
        for company in (*self.employee_tokens.values(), *client_companies):
            if self.companies.setdefault(company.id, company) != company:
                raise ValueError(f"company id {company.id} is given twice with different details")
        unknown = sorted({i for c in self.companies.values() for i in c.login_access} - set(self.companies))
        if unknown:
            raise ValueError(f"login_access names unknown companies: {unknown}")
        self.default_company_id = next(iter(self.employee_tokens.values())).id

        by_number = {a.number: a for a in (CHART if accounts is None else accounts)}
        for extra in extra_accounts:
            by_number[extra.number] = extra
        if len({a.id for a in by_number.values()}) != len(by_number):
            raise ValueError("account ids must be unique")
        self.vat_types: dict[int, VatType] = {v.id: v for v in vat_types}
        self.vat_by_number = {v.number: v for v in self.vat_types.values()}
        chart, deps, projs = tuple(by_number.values()), tuple(departments), tuple(projects)
        self._books: dict[int, CompanyBooks] = {}
        for index, company in enumerate(self.companies.values()):  # the default company first
            shift = index * COMPANY_ID_STRIDE
            self._books[company.id] = CompanyBooks(
                company,
                {a.id + shift: replace(a, id=a.id + shift) for a in chart},
                {d.id + shift: replace(d, id=d.id + shift) for d in deps},
                {p.id + shift: replace(p, id=p.id + shift) for p in projs},
            )
        # Ids are unique across companies, so rendering can find any of them without a company.
        self._all_accounts = {i: a for b in self._books.values() for i, a in b.accounts.items()}
        self._all_departments = {i: d for b in self._books.values() for i, d in b.departments.items()}
        self._all_projects = {i: p for b in self._books.values() for i, p in b.projects.items()}
        if len(self._all_accounts) != len(chart) * len(self._books):
            raise ValueError("account ids collide across companies; keep them below COMPANY_ID_STRIDE apart")
        default = self._books[self.default_company_id]
        self.accounts = default.accounts
        self.accounts_by_number = default.accounts_by_number
        self.departments = default.departments
        self.projects = default.projects
        self.state_path = Path(state_path) if state_path else None
        self._sessions: dict[str, Session] = {}
        self.generation = 0
        """Counts changes to the books (each passes `_save`); what is derived from them is kept against it."""
        self._reset_books()
        if self.state_path and self.state_path.exists():
            self._load()

    def books(self, company_id: int | None = None) -> CompanyBooks:
        """One company's master data (default: the default company)."""
        return self._books[self.default_company_id if company_id is None else company_id]

    def login(self, session: Session, user: str) -> Company:
        """The company a call acts for: Basic user "0" or blank is the employee's own company,
        any other id must be one the employee may log in to (403 otherwise, INFERRED)."""
        own = self.companies[session.company_id]
        user = user.strip()
        target = own.id if user in ("", "0") else int(user)
        if target != own.id and target not in own.login_access:
            raise TripletexError(403, 9000, "Du har ikke tilgang til dette firmaet.")  # sandbox wording
        if not self.companies[target].ledger_access:
            raise TripletexError(403, 9000, "Du har ikke tilgang til regnskapet i dette firmaet.")  # sandbox wording
        return self.companies[target]

    # ---- state -------------------------------------------------------------------------------

    def _reset_books(self) -> None:
        self.vouchers: dict[int, StoredVoucher] = {}
        self._next_voucher_id = 608_859_001
        self._next_posting_id = 3_845_006_001
        self._next_session_id = 41_000_001
        self._numbers: dict[tuple[int, int], int] = {}  # (company id, year) -> last number
        self._temp_numbers: dict[int, int] = {}  # company id -> last temp number
        self._used_accounts: set[int] = set()
        from kassebro.sandbox.tripletex_invoicing import Invoicing  # it imports this module

        self.invoicing = Invoicing(self)  # customers, orders, invoices: seeded again on reset

    def reset(self, *, sessions: bool = False) -> None:
        """Empty the books (sessions survive unless asked, so running clients keep working)."""
        with self._lock:
            self._reset_books()
            if sessions:
                self._sessions.clear()
            self._save()

    def _save(self) -> None:
        self.generation += 1  # every change passes here (never reset: a cache of an old generation stays stale)
        if not self.state_path:
            return
        data = {
            "vouchers": [asdict(v) for v in self.vouchers.values()],
            "next_voucher_id": self._next_voucher_id,
            "next_posting_id": self._next_posting_id,
            "next_session_id": self._next_session_id,
            "numbers": {f"{company}:{year}": n for (company, year), n in self._numbers.items()},
            "temp_numbers": {str(company): n for company, n in self._temp_numbers.items()},
            "sessions": {
                token: {**asdict(s), "expiration": s.expiration.isoformat()} for token, s in self._sessions.items()
            },
            "invoicing": self.invoicing.dump(),
        }
        tmp = self.state_path.with_suffix(self.state_path.suffix + ".tmp")
        tmp.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp, self.state_path)

    def _load(self) -> None:
        assert self.state_path is not None
        data = json.loads(self.state_path.read_text(encoding="utf-8"))
        default = self.default_company_id  # what a state file from before companies holds
        for raw in data.get("vouchers", []):
            postings = [StoredPosting(**p) for p in raw.pop("postings")]
            voucher = StoredVoucher(**raw, postings=postings)
            voucher.company_id = voucher.company_id or default
            self.vouchers[voucher.id] = voucher
            self._used_accounts.update(p.account_id for p in postings)
        self._next_voucher_id = data.get("next_voucher_id", self._next_voucher_id)
        self._next_posting_id = data.get("next_posting_id", self._next_posting_id)
        self._next_session_id = data.get("next_session_id", self._next_session_id)
        for key, n in data.get("numbers", {}).items():
            company, _, year = key.rpartition(":")
            self._numbers[(int(company or default), int(year))] = n
        self._temp_numbers = {int(k): v for k, v in data.get("temp_numbers", {}).items()}
        if "temp_number" in data:
            self._temp_numbers.setdefault(default, data["temp_number"])
        for token, raw in data.get("sessions", {}).items():
            raw["expiration"] = dt.date.fromisoformat(raw["expiration"])
            self._sessions[token] = Session(**raw)
        if "invoicing" in data:
            self.invoicing.load(data["invoicing"])

    # ---- sessions ----------------------------------------------------------------------------

    def create_session(self, consumer_token: Any, employee_token: Any, expiration_date: Any) -> tuple[str, Session]:
        """Check the two tokens like the real exchange and return a new session token."""
        messages: list[dict[str, Any]] = []
        for name, value in (
            ("consumerToken", consumer_token),
            ("employeeToken", employee_token),
            ("expirationDate", expiration_date),
        ):
            if not isinstance(value, str) or not value:
                messages.append(_vm(f"arg:{name}", "Kan ikke være null.", f"arg:{name}"))
        if messages:
            raise validation_failed(messages)
        if consumer_token not in self.consumer_tokens:
            # Real answer (tripletex-api2 #53): 422 on arg:consumerToken.
            raise validation_failed(
                [
                    _vm(
                        "arg:consumerToken",
                        "The consumer token is invalid or does not exist.",
                        "arg:consumerToken",
                    )
                ]
            )
        company = self.employee_tokens.get(employee_token)
        if company is None:
            # The real exchange answers 404/422 here, never 401 (apis.md, GRASP-TX).
            raise TripletexError(
                404,
                6000,
                "Objektet finnes ikke.",
                developer_message="The employee token is invalid, expired or does not exist.",
            )
        expiration = _parse_date(expiration_date)
        if expiration is None:
            raise validation_failed([_vm("arg:expirationDate", "Ugyldig dato.", "arg:expirationDate")])
        if expiration <= dt.date.today():
            raise validation_failed(
                [
                    _vm(
                        "arg:expirationDate",
                        "Utløpsdato må være etter dagens dato.",  # sandbox wording
                        "arg:expirationDate",
                    )
                ]
            )
        with self._lock:
            session = Session(self._next_session_id, company.id, expiration)
            self._next_session_id += 1
            payload = {"tokenId": session.id, "token": str(uuid.uuid4())}
            token = base64.b64encode(json.dumps(payload).encode()).decode().rstrip("=")
            self._sessions[token] = session
            self._save()
        return token, session

    def session(self, token: str) -> Session | None:
        with self._lock:
            session = self._sessions.get(token)
            if session is None or session.expiration < dt.date.today():
                return None
            return session

    def delete_session(self, token: str) -> bool:
        with self._lock:
            found = self._sessions.pop(token, None) is not None
            self._save()
            return found

    def expire_sessions(self) -> int:
        """Invalidate every session token (to test a client's re-login)."""
        with self._lock:
            count = len(self._sessions)
            self._sessions.clear()
            self._save()
            return count

    # ---- vouchers ----------------------------------------------------------------------------

    def create_voucher(self, body: Any, *, send_to_ledger: bool, company_id: int | None = None) -> StoredVoucher:
        """Validate a POST /ledger/voucher body like Tripletex and store it (VAT rows added)."""
        books = self.books(company_id)
        if not isinstance(body, dict):
            raise TripletexError(422, 22000, "Feil i JSON.", developer_message="Expected an object")
        messages: list[dict[str, Any]] = []
        date = _parse_date(body.get("date"))
        if body.get("date") is None:
            messages.append(_vm("date", "Kan ikke være null.", "date"))
        elif date is None:
            messages.append(_vm("date", "Ugyldig dato.", "date"))
        description = body.get("description") or ""
        if not isinstance(description, str):
            messages.append(_vm("description", "Ugyldig verdi.", "description"))
            description = ""
        external = body.get("externalVoucherNumber")
        if external is not None and not isinstance(external, str):
            messages.append(_vm("externalVoucherNumber", "Ugyldig verdi.", "externalVoucherNumber"))
            external = None
        if isinstance(external, str) and len(external) > 70:
            messages.append(
                _vm(
                    "externalVoucherNumber",
                    "Kan ikke være lengre enn 70 tegn.",  # sandbox wording
                    "externalVoucherNumber",
                )
            )
        vendor_invoice = body.get("vendorInvoiceNumber")
        raw_postings = body.get("postings")
        if not raw_postings:
            messages.append(_vm("postings", "Et bilag kan ikke registreres uten posteringer."))
            raise validation_failed(messages)
        if not isinstance(raw_postings, list) or not all(isinstance(p, dict) for p in raw_postings):
            raise TripletexError(422, 22000, "Feil i JSON.", developer_message="postings must be a list of objects")

        parsed: list[dict[str, Any]] = []
        for i, raw in enumerate(raw_postings):
            item = self._check_posting(i, raw, date, messages, books)
            if item is not None:
                parsed.append(item)
        if not messages:
            self._check_balance(parsed, messages)
        if messages:
            raise validation_failed(messages)
        assert date is not None

        with self._lock:
            voucher = StoredVoucher(
                id=self._next_voucher_id,
                version=0,
                date=date.isoformat(),
                year=date.year,
                description=description,
                external_voucher_number=external,
                vendor_invoice_number=vendor_invoice if isinstance(vendor_invoice, str) else None,
                in_ledger=False,
                number=0,
                temp_number=0,
                created=dt.datetime.now().isoformat(timespec="seconds"),
                company_id=books.company.id,
            )
            self._next_voucher_id += 1
            voucher.postings = self._book_postings(parsed, books)
            if send_to_ledger:
                self._assign_number(voucher)
            else:
                temp = self._temp_numbers.get(books.company.id, 0) + 1
                self._temp_numbers[books.company.id] = voucher.temp_number = temp
            self.vouchers[voucher.id] = voucher
            self._save()
            return voucher

    def _check_posting(
        self,
        i: int,
        raw: dict[str, Any],
        voucher_date: dt.date | None,
        messages: list[dict[str, Any]],
        books: CompanyBooks,
    ) -> dict[str, Any] | None:
        start = len(messages)
        path = f"postings[{i}]"
        row = raw.get("row")
        if row is None:
            messages.append(_vm("postings.row", "Kan ikke være null.", f"{path}.row"))
        elif isinstance(row, bool) or not isinstance(row, int):
            messages.append(_vm("postings.row", "Ugyldig verdi.", f"{path}.row"))
        elif row == 0:
            messages.append(
                _vm(
                    "postings.row",
                    "Posteringene på rad 0 (guiRow 0) er systemgenererte og kan ikke opprettes "
                    "eller endres på utsiden av Tripletex.",
                    f"{path}.row",
                )
            )
        elif row < 0:
            messages.append(_vm("postings.row", "Må være større enn eller lik 0.", f"{path}.row"))  # sandbox wording

        date = voucher_date
        if raw.get("date") is not None:
            date = _parse_date(raw.get("date"))
            if date is None:
                messages.append(_vm("postings.date", "Ugyldig dato.", f"{path}.date"))

        account: Account | None = None
        account_id = _ref_id(raw.get("account"))
        if account_id is None:
            messages.append(_vm("postings.account", "Kan ikke være null.", f"{path}.account"))
        elif account_id is False or account_id not in books.accounts:
            given = raw["account"].get("id") if isinstance(raw.get("account"), dict) else None
            messages.append(
                _vm(
                    "postings.account.id",
                    f"Kontoen med id {given} finnes ikke.",  # sandbox wording
                    f"{path}.account.id",
                )
            )
        else:
            account = books.accounts[int(account_id)]
            if account.is_inactive:
                messages.append(
                    _vm(
                        "postings.account.id",
                        f"Konto {account.number} er inaktiv.",  # sandbox wording
                        f"{path}.account.id",
                    )
                )

        gross = self._check_amount(raw, "amountGross", path, messages, required=True)
        gross_currency = self._check_amount(raw, "amountGrossCurrency", path, messages)
        currency_id = _ref_id(raw.get("currency"))
        if currency_id not in (None, NOK_CURRENCY_ID):
            messages.append(
                _vm(
                    "postings.currency.id",
                    "Sandkassen støtter bare NOK.",  # sandbox limitation
                    f"{path}.currency.id",
                )
            )
        if gross is not None and gross_currency is not None and gross != gross_currency:
            messages.append(
                _vm(
                    "postings.amountGrossCurrency",
                    "Beløp i valuta må være lik beløp for posteringer i NOK.",  # sandbox wording
                    f"{path}.amountGrossCurrency",
                )
            )

        vat: VatType | None = None
        vat_id = _ref_id(raw.get("vatType"))
        if vat_id is False or (vat_id is not None and vat_id not in self.vat_types):
            messages.append(_vm("postings.vatType.id", "Ugyldig mva-kode.", f"{path}.vatType.id"))  # sandbox wording
        elif vat_id is not None:
            vat = self.vat_types[int(vat_id)]
        if account is not None:
            locked = self.vat_by_number.get(account.vat_type)
            if vat is None:
                vat = locked if account.vat_locked else self.vat_by_number.get("0")
            elif (refusal := self.vat_lock_refusal(account, vat)) is not None:
                messages.append(_vm("postings.vatType.id", refusal, f"{path}.vatType.id"))

        dims: dict[str, int | None] = {}
        for key, registry, missing in (
            ("department", books.departments, "Avdelingen finnes ikke."),
            ("project", books.projects, "Prosjektet finnes ikke."),
            ("customer", self.invoicing.customer_ids(books.company.id), "Kunden finnes ikke."),
            ("supplier", None, ""),
        ):
            ref = _ref_id(raw.get(key))
            if ref is False or (registry is not None and ref is not None and ref not in registry):
                messages.append(_vm(f"postings.{key}.id", missing or "Ugyldig verdi.", f"{path}.{key}.id"))
                ref = None
            dims[key] = ref  # type: ignore[assignment]
        if account is not None:
            if account.ledger_type == "CUSTOMER" and dims["customer"] is None:
                messages.append(_vm("postings.customer.id", "Kunde mangler.", f"{path}.customer.id"))
            if account.ledger_type == "VENDOR" and dims["supplier"] is None:
                messages.append(_vm("postings.supplier.id", "Leverandør mangler.", f"{path}.supplier.id"))
            if account.requires_department and dims["department"] is None:
                messages.append(_vm("postings.department.id", "Avdeling mangler.", f"{path}.department.id"))
            if account.requires_project and dims["project"] is None:
                messages.append(_vm("postings.project.id", "Prosjekt mangler.", f"{path}.project.id"))

        text = raw.get("description") or ""
        if len(messages) > start or account is None or gross is None or date is None:
            return None
        assert vat is not None and isinstance(row, int)
        invoice_number = raw.get("invoiceNumber")
        return {
            "row": row,
            "date": date.isoformat(),
            "description": text if isinstance(text, str) else str(text),
            "account": account,
            "vat": vat,
            "gross": to_ore(gross),
            "department_id": dims["department"],
            "project_id": dims["project"],
            "customer_id": dims["customer"],
            "supplier_id": dims["supplier"],
            "invoice_number": invoice_number if isinstance(invoice_number, str) else None,
        }

    def vat_lock_refusal(self, account: Account, vat: VatType) -> str | None:
        """Why `vat` cannot go on `account` (vatLocked to another VAT type), or None: the rule of
        voucher postings, also used for products and order lines (`tripletex_invoicing.py`)."""
        locked = self.vat_by_number.get(account.vat_type)
        if account.vat_locked and locked is not None and vat.id != locked.id:
            return (
                f"Kontoen {account.number} {account.name} er låst til mva-kode "
                f"{locked.number}: {locked.name}."  # sandbox wording
            )
        return None

    @staticmethod
    def _check_amount(
        raw: dict[str, Any],
        key: str,
        path: str,
        messages: list[dict[str, Any]],
        *,
        required: bool = False,
    ) -> Decimal | None:
        if raw.get(key) is None:
            if required:
                messages.append(_vm(f"postings.{key}", "Kan ikke være null.", f"{path}.{key}"))
            return None
        value = _to_decimal(raw[key])
        if value is None:
            messages.append(_vm(f"postings.{key}", "Ugyldig tall.", f"{path}.{key}"))
            return None
        if value != value.quantize(Decimal("0.01")):
            messages.append(
                _vm(
                    f"postings.{key}",
                    "Beløpet kan ikke ha mer enn 2 desimaler.",  # sandbox wording
                    f"{path}.{key}",
                )
            )
            return None
        return value

    @staticmethod
    def _check_balance(parsed: list[dict[str, Any]], messages: list[dict[str, Any]]) -> None:
        by_date: dict[str, int] = {}
        by_row: dict[int, list[int]] = {}
        for p in parsed:
            by_date[p["date"]] = by_date.get(p["date"], 0) + p["gross"]
            by_row.setdefault(p["row"], []).append(p["gross"])
        for date, total in sorted(by_date.items()):
            if total != 0:
                # Real wording (tripletex-api2 #87).
                messages.append(_vm("postings", f"Summen av posteringene for {date} er ikke lik 0."))
        for row, amounts in sorted(by_row.items()):
            # Rows shared by several postings must balance among themselves (tripletex-api2 #15).
            if len(amounts) > 1 and sum(amounts) != 0:
                messages.append(
                    _vm("postings.row", f"Posteringene på rad {row} går ikke i balanse.")
                )  # sandbox wording

    def _book_postings(self, parsed: list[dict[str, Any]], books: CompanyBooks) -> list[StoredPosting]:
        postings: list[StoredPosting] = []
        for p in parsed:
            self._used_accounts.add(p["account"].id)
            vat: VatType = p["vat"]
            vat_amount = generated_vat(p["gross"], vat)
            postings.append(
                StoredPosting(
                    id=self._take_posting_id(),
                    row=p["row"],
                    date=p["date"],
                    description=p["description"],
                    account_id=p["account"].id,
                    vat_type_id=vat.id,
                    amount=p["gross"] - vat_amount,
                    gross=p["gross"],
                    department_id=p["department_id"],
                    project_id=p["project_id"],
                    customer_id=p["customer_id"],
                    supplier_id=p["supplier_id"],
                    invoice_number=p["invoice_number"],
                )
            )
            if vat_amount:
                vat_account = books.accounts_by_number[vat.vat_account]  # type: ignore[index]
                postings.append(
                    StoredPosting(
                        id=self._take_posting_id(),
                        row=0,
                        date=p["date"],
                        description=p["description"],
                        account_id=vat_account.id,
                        vat_type_id=vat.id,
                        amount=vat_amount,
                        gross=vat_amount,
                        system_generated=True,
                    )
                )
        return postings

    def _take_posting_id(self) -> int:
        pid = self._next_posting_id
        self._next_posting_id += 1
        return pid

    def _assign_number(self, voucher: StoredVoucher, number: int = 0) -> None:
        if number:
            voucher.number = number
        else:
            key = (voucher.company_id, voucher.year)
            self._numbers[key] = self._numbers.get(key, 0) + 1
            voucher.number = self._numbers[key]
        voucher.in_ledger = True

    def voucher(self, voucher_id: int, company_id: int | None = None) -> StoredVoucher:
        """One voucher of a company (another company's voucher is not found there)."""
        company_id = self.default_company_id if company_id is None else company_id
        with self._lock:
            voucher = self.vouchers.get(voucher_id)
            if voucher is None or voucher.company_id != company_id:
                raise not_found()
            return voucher

    def list_vouchers(self, company_id: int | None = None) -> list[StoredVoucher]:
        """A company's vouchers by id (default: the default company's)."""
        company_id = self.default_company_id if company_id is None else company_id
        with self._lock:
            return sorted((v for v in self.vouchers.values() if v.company_id == company_id), key=lambda v: v.id)

    def by_external_number(self, external: str, company_id: int | None = None) -> list[StoredVoucher]:
        return [v for v in self.list_vouchers(company_id) if v.external_voucher_number == external]

    def send_to_ledger(
        self, voucher_id: int, version: int | None, number: int, company_id: int | None = None
    ) -> StoredVoucher:
        with self._lock:
            voucher = self.voucher(voucher_id, company_id)
            if version is not None and version != voucher.version:
                raise TripletexError(409, 8000, "Objektet er endret av en annen bruker.")  # sandbox wording
            if voucher.in_ledger:
                raise validation_failed([_vm("id", "Bilaget er allerede bokført.")])
            self._assign_number(voucher, number)
            voucher.version += 1
            self._save()
            return voucher

    def reverse(self, voucher_id: int, date: dt.date, company_id: int | None = None) -> StoredVoucher:
        """Book the opposite voucher on `date` and link the two, like PUT /:reverse."""
        with self._lock:
            original = self.voucher(voucher_id, company_id)
            books = self.books(original.company_id)
            if not original.in_ledger:
                raise validation_failed([_vm("id", "Bilaget er ikke bokført.")])  # sandbox
            if original.reverse_voucher_id is not None:
                raise validation_failed([_vm("id", "Bilaget er allerede reversert.")])  # sandbox
            parsed = [
                {
                    "row": p.row,
                    "date": date.isoformat(),
                    "description": p.description,
                    "account": books.accounts[p.account_id],
                    "vat": self.vat_types[p.vat_type_id],
                    "gross": -p.gross,
                    "department_id": p.department_id,
                    "project_id": p.project_id,
                    "customer_id": p.customer_id,
                    "supplier_id": p.supplier_id,
                    "invoice_number": p.invoice_number,
                }
                for p in original.postings
                if p.row > 0
            ]
            reversal = StoredVoucher(
                id=self._next_voucher_id,
                version=0,
                date=date.isoformat(),
                year=date.year,
                description=f"Reversering av bilag {original.number_as_string}",
                external_voucher_number=None,
                vendor_invoice_number=None,
                in_ledger=False,
                number=0,
                temp_number=0,
                reverse_voucher_id=original.id,
                created=dt.datetime.now().isoformat(timespec="seconds"),
                company_id=original.company_id,
            )
            self._next_voucher_id += 1
            reversal.postings = self._book_postings(parsed, books)
            self._assign_number(reversal)
            original.reverse_voucher_id = reversal.id
            original.version += 1
            self.vouchers[reversal.id] = reversal
            self._save()
            return reversal

    def delete(self, voucher_id: int, company_id: int | None = None) -> None:
        with self._lock:
            self.voucher(voucher_id, company_id)
            del self.vouchers[voucher_id]
            self._save()

    # ---- rendering (full depth; the fields filter prunes) ------------------------------------

    def render_account(self, account: Account, base: str) -> dict[str, Any]:
        vat = self.vat_by_number.get(account.vat_type)
        kind = _account_type(account.number)
        return {
            "id": account.id,
            "version": 0,
            "url": f"{base}/ledger/account/{account.id}",
            "number": account.number,
            "numberPretty": str(account.number),
            "name": account.name,
            "description": "",
            "type": kind,
            "legalVatTypes": [self.render_vat(vat, base)] if account.vat_locked and vat else [],
            "ledgerType": account.ledger_type,
            "balanceGroup": "",
            "vatType": self.render_vat(vat, base) if vat else None,
            "vatLocked": account.vat_locked,
            "currency": _currency(base),
            "isCloseable": account.ledger_type in ("CUSTOMER", "VENDOR"),
            "isApplicableForSupplierInvoice": account.number >= 4000,
            "requireReconciliation": account.number < 3000,
            "isInactive": account.is_inactive,
            "isBankAccount": account.is_bank_account,
            "isInvoiceAccount": False,
            "bankAccountNumber": "",
            "saftCode": str(account.number),
            "groupingCode": "",
            "displayName": f"{account.number} {account.name}",
            "requiresDepartment": account.requires_department,
            "requiresProject": account.requires_project,
            "isPostingsExist": account.id in self._used_accounts,
        }

    @staticmethod
    def render_vat(vat: VatType, base: str) -> dict[str, Any]:
        return {
            "id": vat.id,
            "version": 0,
            "url": f"{base}/ledger/vatType/{vat.id}",
            "name": vat.name,
            "number": vat.number,
            "displayName": f"{vat.number} {vat.name}",
            "percentage": Decimal(vat.percentage).quantize(Decimal("0.01")),
            "deductionPercentage": Decimal("100.00"),
        }

    @staticmethod
    def render_department(dep: Department, base: str) -> dict[str, Any]:
        return {
            "id": dep.id,
            "version": 0,
            "url": f"{base}/department/{dep.id}",
            "name": dep.name,
            "departmentNumber": dep.number,
            "displayName": f"{dep.number} {dep.name}",
            "isInactive": False,
        }

    @staticmethod
    def render_project(project: Project, base: str) -> dict[str, Any]:
        return {
            "id": project.id,
            "version": 0,
            "url": f"{base}/project/{project.id}",
            "name": project.name,
            "number": project.number,
            "displayName": f"{project.number} {project.name}",
            "isClosed": project.is_closed,
            "isInternal": True,
            "isOffer": False,
            "isFixedPrice": False,
        }

    def render_posting(self, voucher: StoredVoucher, posting: StoredPosting, base: str) -> dict[str, Any]:
        account = self._all_accounts[posting.account_id]
        vat = self.vat_types[posting.vat_type_id]
        amount = from_ore(posting.amount)
        gross = from_ore(posting.gross)
        dep = self._all_departments.get(posting.department_id) if posting.department_id else None
        proj = self._all_projects.get(posting.project_id) if posting.project_id else None
        return {
            "id": posting.id,
            "version": 0,
            "url": f"{base}/ledger/posting/{posting.id}",
            "voucher": {
                "id": voucher.id,
                "url": f"{base}/ledger/voucher/{voucher.id}",
                "number": voucher.number,
                "year": voucher.year,
                "date": voucher.date,
                "externalVoucherNumber": voucher.external_voucher_number,
            },
            "date": posting.date,
            "description": posting.description,
            "account": self.render_account(account, base),
            "customer": {"id": posting.customer_id} if posting.customer_id else None,
            "supplier": {"id": posting.supplier_id} if posting.supplier_id else None,
            "employee": None,
            "project": self.render_project(proj, base) if proj else None,
            "product": None,
            "department": self.render_department(dep, base) if dep else None,
            "vatType": self.render_vat(vat, base),
            "amount": amount,
            "amountCurrency": amount,
            "amountGross": gross,
            "amountGrossCurrency": gross,
            "currency": _currency(base),
            "closeGroup": None,
            "invoiceNumber": posting.invoice_number,
            "termOfPayment": None,
            "row": posting.row,
            "type": None,
            "externalRef": None,
            "systemGenerated": posting.system_generated,
            "taxTransactionType": None,
            "matched": False,
            "isVatReadonly": posting.system_generated,
            "isAmountVatClosed": False,
        }

    @staticmethod
    def render_client(company: Company, base: str) -> dict[str, Any]:
        """A company as `/company/>withLoginAccess` lists it (schema Client)."""
        return {
            "id": company.id,
            "version": 0,
            "url": f"{base}/company/{company.id}",
            "name": company.name,
            "displayName": company.name,
            "startDate": None,
            "endDate": None,
            "organizationNumber": company.organization_number,
            "email": "",
            "phoneNumber": "",
            "phoneNumberMobile": "",
            "faxNumber": "",
            "address": None,
            "type": None,
            "currency": _currency(base),
            "accountantOrSimilar": bool(company.login_access),
            "companyMigration": "NONE",
            "invoiceShowDeliveryDate": False,
            "customerCompanyId": None,
        }

    def render_voucher(self, voucher: StoredVoucher, base: str) -> dict[str, Any]:
        reverse = voucher.reverse_voucher_id
        return {
            "id": voucher.id,
            "version": voucher.version,
            "url": f"{base}/ledger/voucher/{voucher.id}",
            "date": voucher.date,
            "number": voucher.number,
            "tempNumber": voucher.temp_number,
            "year": voucher.year,
            "description": voucher.description,
            "voucherType": None,
            "reverseVoucher": ({"id": reverse, "url": f"{base}/ledger/voucher/{reverse}"} if reverse else None),
            "postings": [self.render_posting(voucher, p, base) for p in voucher.postings],
            "document": None,
            "attachment": None,
            "externalVoucherNumber": voucher.external_voucher_number,
            "ediDocument": None,
            "supplierVoucherType": None,
            "wasAutoMatched": False,
            "vendorInvoiceNumber": voucher.vendor_invoice_number,
            "displayName": f"{voucher.number_as_string} {voucher.description}".strip(),
            "numberAsString": voucher.number_as_string,
        }


def _currency(base: str) -> dict[str, Any]:
    return {"id": NOK_CURRENCY_ID, "url": f"{base}/currency/{NOK_CURRENCY_ID}", "code": "NOK"}


def _account_type(number: int) -> str:
    if number < 2000:
        return "ASSETS"
    if number < 2100:
        return "EQUITY"
    if number < 3000:
        return "LIABILITIES"
    if number < 4000:
        return "OPERATING_REVENUES"
    if number < 8000:
        return "OPERATING_EXPENSES"
    if number < 8100:
        return "INVESTMENT_INCOME"
    if number < 8300:
        return "COST_OF_CAPITAL"
    return "ANNUAL_RESULT"


# --------------------------------------------------------------------------------------------
# HTTP helpers
# --------------------------------------------------------------------------------------------


def _base(request: Request) -> str:
    return f"{request.headers.get('host', 'localhost')}/v2"


def _request_id(request: Request) -> str:
    return getattr(request.state, "request_id", None) or str(uuid.uuid4())


def _int_param(request: Request, name: str, default: int | None = None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise validation_failed([_vm(name, "Ugyldig tall.", name)]) from None


def _bool_param(request: Request, name: str, default: bool | None = None) -> bool | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise validation_failed([_vm(name, "Ugyldig verdi.", name)])


def _date_param(request: Request, name: str, *, required: bool) -> dt.date | None:
    raw = request.query_params.get(name)
    if not raw:
        if required:
            raise validation_failed([_vm(name, "Kan ikke være null.", name)])
        return None
    value = _parse_date(raw)
    if value is None:
        raise validation_failed([_vm(name, "Ugyldig dato.", name)])
    return value


def _list_param(request: Request, name: str) -> list[str] | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    return [part.strip() for part in raw.split(",") if part.strip()]


def _single(request: Request, value: dict[str, Any], status: int = 200) -> TxJSONResponse:
    fields = parse_fields(request.query_params.get("fields"))
    return TxJSONResponse({"value": apply_fields(value, fields)}, status_code=status)


def _listing(
    request: Request, values: list[Any], render: Callable[[Any], dict[str, Any]] | None = None, **extra: Any
) -> TxJSONResponse:
    """One page of a list answer; with `render`, `values` are the matches and only the page's are
    rendered (a listing of n rows paged through costs O(n) renders, not O(n) a page)."""
    start = _int_param(request, "from", 0) or 0
    count = _int_param(request, "count", 1000)
    count = 1000 if count is None else count
    page = values[start : start + count]
    if render is not None:
        page = [render(value) for value in page]
    fields = parse_fields(request.query_params.get("fields"))
    rendered = [apply_fields(v, fields) for v in page]
    digest = hashlib.sha1(dumps(rendered).encode()).hexdigest()
    body = {
        "fullResultSize": len(values),
        "from": start,
        "count": len(rendered),
        "versionDigest": digest,
        **extra,
        "values": rendered,
    }
    return TxJSONResponse(body)


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw.decode("utf-8") or "null", parse_float=Decimal)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TripletexError(422, 22000, "Feil i JSON.", developer_message=f"Could not parse JSON: {exc}") from None


def _basic_user(scope: Scope) -> str | None:
    """The Basic username of a call (the company id acted for, "0" = own), never the password."""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, encoded = value.decode("latin-1").partition(" ")
            if scheme.lower() != "basic":
                return None
            try:
                decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return None
            user, sep, _ = decoded.partition(":")
            return user if sep and user.strip().isdigit() else None
    return None


def _redact_query(query: str) -> str:
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode([(k, "***" if k in SECRET_QUERY_KEYS else v) for k, v in pairs])


# --------------------------------------------------------------------------------------------
# The app
# --------------------------------------------------------------------------------------------


class TripletexSandbox(SandboxApp):
    """The Tripletex app behind the shared fault layer (`admin.SandboxApp`): calls under /v2 are
    logged with the Basic user and the query's tokens redacted, every answer carries
    `x-tlx-request-id`, and the optional rate limit answers 429 with the real headers."""

    json_response = TxJSONResponse

    async def open_call(self, scope: Scope, receive: Receive) -> ApiCall | None:
        if not scope["path"].startswith("/v2"):
            return None
        sub_path = scope["path"][3:] or "/"
        query = _redact_query(scope.get("query_string", b"").decode("latin-1"))
        entry = log_entry(scope, sub_path, query=query, user=_basic_user(scope))
        scope.setdefault("state", {})["request_id"] = entry["request_id"]
        # /token/session carries the tokens: its body is never logged, nor rate limited
        secret = sub_path.startswith("/token")
        return ApiCall(
            sub_path,
            entry,
            receive,
            log_body=not secret,
            headers={"x-tlx-request-id": entry["request_id"]},
            context={"secret": secret},
        )

    def admit(self, call: ApiCall) -> Response | None:
        limiter: RateLimiter | None = self.state.rate_limiter
        if limiter is None or call.context["secret"]:
            return None
        ok, headers = limiter.hit()
        call.headers.update(headers)
        return None if ok else _rate_limited(call.entry["request_id"])

    def fault_reply(self, fault: Fault, call: ApiCall) -> Response:
        request_id = call.entry["request_id"]
        if fault.kind == "429":
            for name in RATE_LIMIT_HEADERS:  # the fault's own rate headers replace the limiter's
                call.headers.pop(name, None)
            limiter: RateLimiter | None = self.state.rate_limiter
            headers = {
                "X-Rate-Limit-Limit": str(limiter.limit if limiter else 1000),
                "X-Rate-Limit-Remaining": "0",
                "X-Rate-Limit-Reset": str(int(fault.seconds)),
            }
            return _rate_limited(request_id, headers)
        return TxJSONResponse(TripletexError(500, 1000, None).body(request_id), status_code=500)

    def reset_books(self, options: dict[str, Any]) -> None:
        self.state.store.reset(sessions=bool(options.get("sessions", False)))

    def voucher_listing(self, request: Request) -> Any:
        """One company's vouchers (`?company_id=`, default: the default company)."""
        store: TripletexStore = self.state.store
        base = f"{request.headers.get('host', 'localhost')}/v2"
        raw = request.query_params.get("company_id")
        company_id = int(raw) if raw and raw.isdigit() else None
        if company_id is not None and company_id not in store.companies:
            return JSONResponse({"error": f"no company {company_id}"}, status_code=404)
        return {"vouchers": [store.render_voucher(v, base) for v in store.list_vouchers(company_id)]}


def _rate_limited(request_id: str, headers: Mapping[str, str] | None = None) -> Response:
    error = TripletexError(429, 0, "For mange forespørsler. Prøv igjen senere.")  # sandbox wording
    return TxJSONResponse(error.body(request_id), status_code=429, headers=dict(headers or {}))


def demo_connection(url: str) -> dict[str, Any]:
    """The Airflow connection (as `AIRFLOW_CONN_*` JSON holds it) to this sandbox at `url`."""
    return {
        "conn_type": "tripletex",
        "host": f"{url}/v2",
        "password": DEMO_EMPLOYEE_TOKEN,
        "extra": {"consumer_token": DEMO_CONSUMER_TOKEN, "company_id": 0},
    }


def create_app(
    *,
    consumer_tokens: Iterable[str] = DEMO_CONSUMER_TOKENS,
    employee_tokens: Mapping[str, Company] | None = None,
    accounts: Iterable[Account] | None = None,
    extra_accounts: Iterable[Account] = (),
    vat_types: Iterable[VatType] = VAT_TYPES,
    departments: Iterable[Department] = DEPARTMENTS,
    projects: Iterable[Project] = PROJECTS,
    client_companies: Iterable[Company] = DEMO_CLIENT_COMPANIES,
    state_path: str | os.PathLike[str] | None = None,
    rate_limit: tuple[int, float] | None = None,
) -> TripletexSandbox:
    """Build a Tripletex sandbox app.

    Args:
      consumer_tokens: accepted consumer tokens (default "demo-consumer-token", "demo-consumer").
      employee_tokens: employee token -> Company it logs into (default "demo-employee-token" and
        "demo-employee" -> DEMO_COMPANY, the default company; "demo-firm-employee-token" ->
        DEMO_FIRM, an accounting firm). A Company's `login_access` names the client companies
        its employee may log in to (Basic user = that company's id).
      client_companies: companies without an employee token of their own, reachable only through
        a firm's `login_access` (default DEMO_CLIENT_COMPANIES, "Demo Bakeri AS"). Every company
        has its own books: the seeded chart, departments and projects under its own ids.
      accounts: replaces the seeded chart (CHART); extra_accounts adds or overrides by number.
      state_path: JSON file the books are kept in across restarts (else memory only).
      rate_limit: (calls, seconds) fixed window on all calls; off by default.

    `app.state.store` (TripletexStore), `app.state.faults` (FaultInjector) and `app.state.calls`
    (CallLog) are there for in-process inspection.
    """
    store = TripletexStore(
        consumer_tokens=consumer_tokens,
        employee_tokens=employee_tokens,
        accounts=accounts,
        extra_accounts=extra_accounts,
        vat_types=vat_types,
        departments=departments,
        projects=projects,
        client_companies=client_companies,
        state_path=state_path,
    )
    app = TripletexSandbox(title="Tripletex sandbox (kassebro)")
    app.state.store = store
    app.state.rate_limiter = RateLimiter(*rate_limit) if rate_limit else None

    _install_error_handlers(app)
    app.include_router(_api_router(store))
    app.include_router(_admin_router(app))
    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(TripletexError)
    async def tripletex_error(request: Request, exc: TripletexError) -> Response:
        return TxJSONResponse(exc.body(_request_id(request)), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if not request.url.path.startswith("/v2"):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
        code = {404: 6000, 405: 4000}.get(exc.status_code, 1000)
        message = "Objektet finnes ikke." if exc.status_code == 404 else str(exc.detail)
        error = TripletexError(exc.status_code, code, message, developer_message=str(exc.detail))
        return TxJSONResponse(error.body(_request_id(request)), status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def request_invalid(request: Request, exc: RequestValidationError) -> Response:
        messages = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err.get("loc", ())[1:]) or "request"
            messages.append(_vm(loc, "Ugyldig verdi.", loc))
        error = validation_failed(messages)
        return TxJSONResponse(error.body(_request_id(request)), status_code=422)


def _api_router(store: TripletexStore) -> APIRouter:
    router = APIRouter(prefix="/v2", default_response_class=TxJSONResponse)

    def require_session(request: Request) -> Login:
        header = request.headers.get("authorization")
        if not header:
            raise unauthorized("No authorization header present.")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic" or not encoded:
            raise unauthorized("Authorization header must use the Basic scheme.")
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise unauthorized("Authorization header is not valid base64.") from None
        user, sep, token = decoded.partition(":")
        if not sep or not token:
            raise unauthorized("The expected format is base64encoded(<<companyId>>:<<sessionToken>>)")
        if user.strip() not in ("", "0") and not user.strip().isdigit():
            raise unauthorized(
                "Authorization header has invalid username. Should be a customer id or 0 for "
                "default. The expected format is base64encoded(<<companyId>>:<<sessionToken>>)"
            )
        session = store.session(token)
        if session is None:
            raise unauthorized("Invalid or expired token.")
        return Login(session, store.login(session, user))

    auth = Depends(require_session)

    # ---- sessions ----------------------------------------------------------------------------

    def session_value(token: str, session: Session, base: str) -> dict[str, Any]:
        return {
            "id": session.id,
            "version": 0,
            "url": f"{base}/token/session/{session.id}",
            "consumerToken": {"id": 1, "url": f"{base}/token/consumer/1"},
            "employeeToken": {"id": session.company_id, "url": f"{base}/token/employee/1"},
            "expirationDate": session.expiration.isoformat(),
            "token": token,
        }

    @router.put("/token/session/:create")
    async def session_create_put(request: Request) -> Response:
        q = request.query_params
        token, session = store.create_session(q.get("consumerToken"), q.get("employeeToken"), q.get("expirationDate"))
        return _single(request, session_value(token, session, _base(request)))

    @router.post("/token/session/:create")
    async def session_create_post(request: Request) -> Response:
        body = await _json_body(request)
        body = body if isinstance(body, dict) else {}
        token, session = store.create_session(
            body.get("consumerToken"), body.get("employeeToken"), body.get("expirationDate")
        )
        return _single(request, session_value(token, session, _base(request)), status=201)

    @router.get("/token/session/>whoAmI")
    async def who_am_i(request: Request, login: Login = auth) -> Response:
        company = login.company  # the one acted for; the employee is the session's (INFERRED)
        own = store.companies[login.session.company_id]
        base = _base(request)
        value = {
            "employeeId": own.employee_id,
            "actualEmployeeId": own.employee_id,
            "employee": {
                "id": own.employee_id,
                "url": f"{base}/employee/{own.employee_id}",
                "firstName": own.employee_first_name,
                "lastName": own.employee_last_name,
                "displayName": f"{own.employee_first_name} {own.employee_last_name}",
            },
            "companyId": company.id,
            "company": {
                "id": company.id,
                "url": f"{base}/company/{company.id}",
                "name": company.name,
                "displayName": company.name,
                "organizationNumber": company.organization_number,
            },
            "language": "no",
            "loggedInWithConnect": False,
            "employeeIsProxy": company.id != own.id,
        }
        return _single(request, value)

    @router.get("/company/>withLoginAccess")
    async def with_login_access(request: Request, login: Login = auth) -> Response:
        # The employee's clients (not the own company: the spec says "client customers").
        own = store.companies[login.session.company_id]
        values = [store.render_client(store.companies[i], _base(request)) for i in own.login_access]
        return _listing(request, values)

    @router.delete("/token/session/{token}", status_code=204)
    async def session_delete(token: str, login: Login = auth) -> Response:
        if not store.delete_session(token):
            raise not_found()
        return Response(status_code=204)

    # ---- lookups -----------------------------------------------------------------------------

    @router.get("/ledger/account")
    async def accounts(request: Request, login: Login = auth) -> Response:
        ids = _list_param(request, "id")
        numbers = _list_param(request, "number")
        is_bank = _bool_param(request, "isBankAccount")
        inactive = _bool_param(request, "isInactive")
        ledger_type = request.query_params.get("ledgerType")
        values = []
        for account in sorted(store.books(login.company.id).accounts.values(), key=lambda a: a.number):
            if ids is not None and str(account.id) not in ids:
                continue
            if numbers is not None and str(account.number) not in numbers:
                continue
            if is_bank is not None and account.is_bank_account != is_bank:
                continue
            if inactive is not None and account.is_inactive != inactive:
                continue
            if ledger_type and account.ledger_type != ledger_type:
                continue
            values.append(store.render_account(account, _base(request)))
        return _listing(request, values)

    @router.get("/ledger/account/{account_id}")
    async def account(request: Request, account_id: int, login: Login = auth) -> Response:
        found = store.books(login.company.id).accounts.get(account_id)
        if found is None:
            raise not_found()
        return _single(request, store.render_account(found, _base(request)))

    @router.get("/ledger/vatType")
    async def vat_types_list(request: Request, login: Login = auth) -> Response:
        ids = _list_param(request, "id")
        numbers = _list_param(request, "number")
        type_of_vat = request.query_params.get("typeOfVat")
        values = []
        for vat in sorted(store.vat_types.values(), key=lambda v: v.id):
            if ids is not None and str(vat.id) not in ids:
                continue
            if numbers is not None and vat.number not in numbers:
                continue
            if type_of_vat in ("OUTGOING", "INCOMING") and vat.direction not in (
                type_of_vat,
                "NONE",
            ):
                continue
            values.append(store.render_vat(vat, _base(request)))
        return _listing(request, values)

    @router.get("/ledger/vatType/{vat_id}")
    async def vat_type(request: Request, vat_id: int, login: Login = auth) -> Response:
        found = store.vat_types.get(vat_id)
        if found is None:
            raise not_found()
        return _single(request, store.render_vat(found, _base(request)))

    @router.get("/department")
    async def departments(request: Request, login: Login = auth) -> Response:
        ids = _list_param(request, "id")
        number = request.query_params.get("departmentNumber")
        name = request.query_params.get("name")
        values = [
            store.render_department(d, _base(request))
            for d in sorted(store.books(login.company.id).departments.values(), key=lambda d: d.id)
            if (ids is None or str(d.id) in ids)
            and (not number or number in d.number)  # "Containing", as in the spec
            and (not name or name.lower() in d.name.lower())
        ]
        return _listing(request, values)

    @router.get("/project")
    async def projects(request: Request, login: Login = auth) -> Response:
        ids = _list_param(request, "id")
        number = request.query_params.get("number")
        name = request.query_params.get("name")
        closed = _bool_param(request, "isClosed")
        values = [
            store.render_project(p, _base(request))
            for p in sorted(store.books(login.company.id).projects.values(), key=lambda p: p.id)
            if (ids is None or str(p.id) in ids)
            and (not number or p.number == number)  # "Equals", as in the spec
            and (not name or name.lower() in p.name.lower())
            and (closed is None or p.is_closed == closed)
        ]
        return _listing(request, values)

    # ---- vouchers ----------------------------------------------------------------------------

    @router.get("/ledger/voucher/>externalVoucherNumber")
    async def by_external(request: Request, login: Login = auth) -> Response:
        external = request.query_params.get("externalVoucherNumber")
        found = store.by_external_number(external, login.company.id) if external else []
        return _listing(request, [store.render_voucher(v, _base(request)) for v in found])

    @router.get("/ledger/voucher/>nonPosted")
    async def non_posted(request: Request, login: Login = auth) -> Response:
        date_from = _date_param(request, "dateFrom", required=False)
        date_to = _date_param(request, "dateTo", required=False)
        _bool_param(request, "includeNonApproved", False)
        values = [
            store.render_voucher(v, _base(request))
            for v in store.list_vouchers(login.company.id)
            if not v.in_ledger
            and (date_from is None or v.date >= date_from.isoformat())
            and (date_to is None or v.date < date_to.isoformat())
        ]
        return _listing(request, values)

    @router.get("/ledger/voucher")
    async def search_vouchers(request: Request, login: Login = auth) -> Response:
        date_from = _date_param(request, "dateFrom", required=True)
        date_to = _date_param(request, "dateTo", required=True)
        assert date_from is not None and date_to is not None
        ids = _list_param(request, "id")
        numbers = _list_param(request, "number")
        number_from = _int_param(request, "numberFrom")
        number_to = _int_param(request, "numberTo")
        values = []
        for v in store.list_vouchers(login.company.id):
            if not v.in_ledger or not (date_from.isoformat() <= v.date < date_to.isoformat()):
                continue
            if ids is not None and str(v.id) not in ids:
                continue
            if numbers is not None and str(v.number) not in numbers:
                continue
            if number_from is not None and v.number < number_from:
                continue
            if number_to is not None and v.number >= number_to:
                continue
            values.append(store.render_voucher(v, _base(request)))
        postings = sum(len(v["postings"]) for v in values)
        return _listing(request, values, totalNumberOfPostings=postings)

    @router.post("/ledger/voucher", status_code=201)
    async def post_voucher(request: Request, login: Login = auth) -> Response:
        send_to_ledger = _bool_param(request, "sendToLedger", True)
        body = await _json_body(request)
        voucher = store.create_voucher(body, send_to_ledger=bool(send_to_ledger), company_id=login.company.id)
        # The spec declares no `fields` for this operation, so the answer is the default
        # rendering (postings as references) whatever the query says (INFERRED, module doc).
        value = apply_fields(store.render_voucher(voucher, _base(request)), DEFAULT_FIELDS)
        return TxJSONResponse({"value": value}, status_code=201)

    @router.get("/ledger/voucher/{voucher_id}")
    async def get_voucher(request: Request, voucher_id: int, login: Login = auth) -> Response:
        return _single(request, store.render_voucher(store.voucher(voucher_id, login.company.id), _base(request)))

    @router.delete("/ledger/voucher/{voucher_id}", status_code=204)
    async def delete_voucher(voucher_id: int, login: Login = auth) -> Response:
        store.delete(voucher_id, login.company.id)
        return Response(status_code=204)

    @router.put("/ledger/voucher/{voucher_id}/:reverse")
    async def reverse_voucher(request: Request, voucher_id: int, login: Login = auth) -> Response:
        date = _date_param(request, "date", required=True)
        assert date is not None
        reversal = store.reverse(voucher_id, date, login.company.id)
        return _single(request, store.render_voucher(reversal, _base(request)))

    @router.put("/ledger/voucher/{voucher_id}/:sendToLedger")
    async def send_to_ledger(request: Request, voucher_id: int, login: Login = auth) -> Response:
        version = _int_param(request, "version")
        number = _int_param(request, "number", 0) or 0
        voucher = store.send_to_ledger(voucher_id, version, number, login.company.id)
        return _single(request, store.render_voucher(voucher, _base(request)))

    # ---- postings ----------------------------------------------------------------------------

    # The postings matching the last listing's filter, as long as the books are unchanged
    # (`store.generation`): paging through n postings filters them once, not once a page. Each
    # page is rendered when asked for, so what a posting shows is what it holds then.
    posting_matches: dict[tuple[Any, ...], list[tuple[StoredVoucher, StoredPosting]]] = {}

    @router.get("/ledger/posting")
    async def postings(request: Request, login: Login = auth) -> Response:
        date_from = _date_param(request, "dateFrom", required=True)
        date_to = _date_param(request, "dateTo", required=True)
        assert date_from is not None and date_to is not None
        account_id = _int_param(request, "accountId")
        department_id = _int_param(request, "departmentId")
        project_id = _int_param(request, "projectId")
        number_from = _int_param(request, "accountNumberFrom")
        number_to = _int_param(request, "accountNumberTo")
        first, end = date_from.isoformat(), date_to.isoformat()
        key = (store.generation, login.company.id, first, end, account_id, department_id, project_id)
        key += (number_from, number_to)
        base = _base(request)

        def render(match: tuple[StoredVoucher, StoredPosting]) -> dict[str, Any]:
            return store.render_posting(*match, base)

        if key in posting_matches:  # the next page of the same listing, books unchanged
            return _listing(request, posting_matches[key], render=render)
        matches: list[tuple[StoredVoucher, StoredPosting]] = []
        books = store.books(login.company.id)
        for v in store.list_vouchers(login.company.id):
            if not v.in_ledger:
                continue
            for p in v.postings:
                if not (first <= p.date < end):
                    continue
                number = books.accounts[p.account_id].number
                if account_id is not None and p.account_id != account_id:
                    continue
                if department_id is not None and p.department_id != department_id:
                    continue
                if project_id is not None and p.project_id != project_id:
                    continue
                if number_from is not None and number < number_from:
                    continue
                if number_to is not None and number > number_to:
                    continue
                matches.append((v, p))
        posting_matches.clear()
        posting_matches[key] = matches
        return _listing(request, matches, render=render)

    @router.get("/balanceSheet")
    async def balance_sheet(request: Request, login: Login = auth) -> Response:
        """Per account: balance at dateFrom, movement in [dateFrom, dateTo), balance at dateTo,
        computed from the postings the sandbox holds (net `amount`, VAT rows included).

        INFERRED (the spec names the fields only): balance-sheet accounts (1000-2999) carry their
        balance across years, result accounts (3000-8999) start each year at zero; accounts without
        movement or balance are left out unless includeActiveAccountsWithoutMovements=true.
        """
        date_from = _date_param(request, "dateFrom", required=True)
        date_to = _date_param(request, "dateTo", required=True)
        assert date_from is not None and date_to is not None
        number_from = _int_param(request, "accountNumberFrom")
        number_to = _int_param(request, "accountNumberTo")
        everything = request.query_params.get("includeActiveAccountsWithoutMovements", "").lower() == "true"
        books = store.books(login.company.id)
        year_start = dt.date(date_from.year, 1, 1).isoformat()
        opening: dict[int, int] = {}
        change: dict[int, int] = {}
        for v in store.list_vouchers(login.company.id):
            if not v.in_ledger:
                continue
            for p in v.postings:
                number = books.accounts[p.account_id].number
                if p.date < date_from.isoformat():
                    if number < 3000 or p.date >= year_start:
                        opening[p.account_id] = opening.get(p.account_id, 0) + p.amount
                elif p.date < date_to.isoformat():
                    change[p.account_id] = change.get(p.account_id, 0) + p.amount
        base = _base(request)
        values = []
        for account in sorted(books.accounts.values(), key=lambda a: a.number):
            if number_from is not None and account.number < number_from:
                continue
            if number_to is not None and account.number > number_to:
                continue
            seen = account.id in opening or account.id in change
            if not seen and not (everything and not account.is_inactive):
                continue
            balance_in, moved = opening.get(account.id, 0), change.get(account.id, 0)
            values.append(
                {
                    "account": store.render_account(account, base),
                    "balanceIn": from_ore(balance_in),
                    "balanceChange": from_ore(moved),
                    "balanceOut": from_ore(balance_in + moved),
                    "startDate": date_from.isoformat(),
                    "endDate": date_to.isoformat(),
                }
            )
        return _listing(request, values)

    from kassebro.sandbox.tripletex_invoicing import add_invoicing_routes  # it imports this module

    add_invoicing_routes(router, store, auth)
    return router


def _admin_router(app: TripletexSandbox) -> APIRouter:
    """The shared admin API plus Tripletex's own: `POST /_sandbox/expire_sessions`."""
    router = admin_router(app)
    store: TripletexStore = app.state.store

    @router.post("/expire_sessions")
    async def expire_sessions() -> Response:
        return JSONResponse({"expired": store.expire_sessions()})

    from kassebro.sandbox.tripletex_invoicing import add_invoicing_admin_routes  # it imports this module

    add_invoicing_admin_routes(router, store)
    return router


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """`python -m kassebro.sandbox.tripletex --port 8900 [--state FILE]`; SIGTERM stops it cleanly."""
    from kassebro.sandbox.server import sandbox_parser, serve_until_stopped

    parser = sandbox_parser("Run the Tripletex v2 sandbox.", 8900)
    parser.add_argument(
        "--consumer-token",
        action="append",
        help=f"accepted consumer token, repeatable (default {', '.join(DEMO_CONSUMER_TOKENS)})",
    )
    parser.add_argument(
        "--employee-token",
        action="append",
        help=f"accepted employee token for the demo company (default {', '.join(DEMO_EMPLOYEE_TOKENS)}, "
        f"and {DEMO_FIRM_EMPLOYEE_TOKEN} for the demo accounting firm)",
    )
    args = parser.parse_args(argv)
    app = create_app(
        consumer_tokens=args.consumer_token or DEMO_CONSUMER_TOKENS,
        employee_tokens=dict.fromkeys(args.employee_token, DEMO_COMPANY) if args.employee_token else None,
        state_path=args.state,
    )
    return serve_until_stopped(app, args, lambda url: f"Tripletex sandbox on {url}/v2 (admin: {url}/_sandbox/calls)")


if __name__ == "__main__":
    sys.exit(main())
