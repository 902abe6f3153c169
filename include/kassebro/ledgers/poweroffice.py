"""PowerOffice Go API v2 client: post a day's voucher, look it up, read it back.

Plain `requests`, no Airflow. What it does about the API's habits (brief `apis.md` §3):

- Auth: an access token from `POST <token_url>` (client credentials: Basic
  base64(applicationKey:clientKey), form `grant_type=client_credentials`, header
  `Ocp-Apim-Subscription-Key`), fetched lazily and fetched again `refresh_margin` seconds before
  `expires_in` runs out (600 s in the spec), and once more when a call still gets 401. API calls
  send `Authorization: Bearer` and the subscription key. Key and token values never appear in
  exceptions, reprs or logs (`Secret`, and every server text is redacted); errors name the
  credential instead: a gateway 401 about the subscription key names the subscription key, an
  `invalid_client` from the token endpoint the application key or client key (the API does not
  say which of the two).
- Lookups live in a `LookupCache` (pass a file-backed one to share it across the tasks of a run;
  tables hold ids and codes only): account number -> AccountId (`GET /GeneralLedgerAccounts?
  accountNos=`, one call for the numbers of a voucher not yet cached), VAT code -> VatId
  (`GET /VatCodes`, whole table), department code -> DepartmentId (`GET /Departments?codes=`),
  project code -> ProjectId (`GET /Projects?projectCodes=`; a subproject's code is "10.2").
  Reading back maps ids the other way from the same tables; an id not in them costs one call for
  the whole table (`GET /GeneralLedgerAccounts`, `/VatCodes`, `/Departments`, `/Projects`).
  kassebro's standard codes ("3", "31", "33", "5", "6", ...) are SAF-T standard tax codes, which is
  what Go's `VatCodeDto.Code` holds for standard codes, so they map by equal Code; a line without
  VAT (None) goes out with the VatId of code "0" ("no VAT treatment"; VatId is required on a
  line), and "0" reads back as None. Unknown or inactive accounts, departments and projects are a
  LedgerValidationError naming the number or code. When `post` gets any other refusal than a
  duplicate it clears the cache: a stale id is then looked up afresh on the next try.
- Post: `send_to_ledger=True` -> `POST /Vouchers/ManualJournals` with gross signed CurrencyAmount,
  VatId, DepartmentId and ProjectId per line, `ExternalImportReference = voucher.external_ref`.
  Go refuses a second voucher with the same reference; the refusal's status is undocumented (400
  or 409 with a text about the reference, INFERRED), so on such a refusal the client calls `find`
  and returns the voucher already there (no second voucher), and re-raises the refusal if find
  has nothing. The result is parsed from the 201 answer (a ManualVoucherDto with its lines; a GET
  only if the answer has no lines), or with `read_back_after_post=False` built from what was sent
  plus the answer's Id and VoucherNo. `send_to_ledger=False` ->
  `POST /JournalEntryVouchers/ManualJournals` (one side per line: Debit* for positive amounts,
  Credit* for negative, CurrencyAmount = |gross|, DepartmentId/ProjectId on the line) plus
  `POST /JournalEntryVouchers/{id}/submitForApproval`. Drafts have no ExternalImportReference, so
  the reference is appended to the draft's Description as " [ref]" and `find` recognises it there
  (and in AccountTransactions' VoucherDescription once an approver has posted the draft).
- Exactly once: a POST is never retried (LedgerTransient says the outcome is unknown; call `find`).
  GETs are retried `get_retries` times on 5xx/transport errors.
- Lists are read whole, page by page (`_list`), wherever the client needs every row: the
  AccountTransactions of `find`, `list_vouchers` and `reverse`, the JournalEntryVouchers drafts,
  and the lookups. The spec pages every list endpoint with the query parameter `resourceParameter`
  (schema ResourceParameters), spread into the query as `PageNumber` ("The desired page to
  return") and `PageSize` ("5000 by default. Not allowed to be larger than MaxPageSize", which is
  "20 000 by default"); the answer is a bare array with no paging header or total. So the client
  sends `PageSize=page_size` (5000) on every list call and reads the next page while a page is
  full: a list that fits on one page, as a shop's day does, is one call as before. The spec does
  not say whether PageNumber counts from 0 or 1, so the first call leaves it out and the next ones
  ask 1, 2, ... dropping rows already read (by Id); with pages counted from 1, which a third-party
  PowerOffice connector documents, a list of more than one page costs one repeated page.
  The duplicate check is not narrowed further: `accountNos` would miss a voucher posted before the
  vendor's account mapping changed (and `find` is not told the accounts), and `voucherTypes=
  ManualJournal` rests on the VoucherType Go gives vouchers from POST /Vouchers/ManualJournals and
  from approved drafts, which the spec does not state; a wrong guess there is a second posting.
- find(ref, date): the spec has no voucher search by ExternalImportReference and no endpoint
  that lists posted vouchers and drafts together, so: `GET /AccountTransactions?fromDate=date&
  toDate=date`, every page, filtered here on ExternalImportReference (or " [ref]" in
  VoucherDescription); a hit is read with `get`. With `search_drafts` (default) and no hit, the
  drafts awaiting approval too (`GET /JournalEntryVouchers?isPosted=false`, then each draft this
  integration made: the list items carry no description). A client that only posts straight to
  the ledger can pass `search_drafts=False` and save that call.
- get(id): `GET /Vouchers/ManualJournals/{id}`, on 404 `GET /JournalEntryVouchers/ManualJournals/{id}`
  (a draft keeps its Id when it is posted, so a posted voucher is tried first). `read_lines(id)`
  gives the lines with their department and project codes (PostedVoucher has no room for them).
- list_vouchers(from, to): Go has no voucher list; `GET /AccountTransactions?fromDate&toDate`
  (toDate = to - 1 day, inclusive), every page, grouped by VoucherId is every posted voucher of
  the range, one call per page and none per voucher, each line read gross as `get` reads it;
  with `include_non_posted` the manual journal drafts not yet posted too (`GET
  /JournalEntryVouchers?isPosted=false` and each draft).
- reverse(id, date): Go's own `POST /Vouchers/Reverse/{id}` (role YearEndVoucher_Full) when `date`
  is the voucher's date and it has an ExternalImportReference (made through POST /Vouchers), the
  reversal then read from AccountTransactions by its ReversedVoucherId; else (or without the role)
  a counter ManualJournal referenced "<ref>:reversal". Never retried;
  calling it again after a lost answer finds the reversal (IsReversed, or the duplicate reference).
- Errors: ProblemDetails 400/404/409/422 -> LedgerValidationError with Title, Detail and Errors;
  401/403 -> LedgerAuthError naming the credential or the missing privilege; 429 ->
  LedgerRateLimited(Retry-After, or the seconds in the gateway's message); 5xx, timeouts, dropped
  connections -> LedgerTransient.
- Chart read-back (the mapping check, year-end): `accounts()` is `GET /GeneralLedgerAccounts`
  (IsActive, VatCode, IsVatCodeLocked), `vat_codes()` is `GET /VatCodes` (a custom "C..." code
  read as the standard code of its BaseVatCodeId); both every page, both filling the lookup cache.
- `calls` counts HTTP requests by "METHOD /path" (ids as {id}).

INFERRED (not in the spec): that Go's reversal is dated as the original (the call takes no date) and
booked before the answer; how Go's generated VAT transactions look (a rated VAT code without a
VatAmount, see `_gross_postings`; a reading that does not add up falls back to `get`); the duplicate
refusal's status and text (above); that a posted draft keeps a ManualJournal voucher readable at
`GET /Vouchers/ManualJournals/{draft id}` with the draft's Description; that inactive departments
and projects are refused on vouchers (the spec only says the GUI disables them); that
`codes`/`projectCodes` match whole codes; that a page past the end of a list is empty (204) and that
Go cuts pages from one stable order, with rows only added, never removed, between two calls (a draft
deleted in Go while its list is read would break that; the spec describes `OrderBy` without its
format, so none is sent; a row pushed onto the next page by one added meanwhile is read twice and
dropped as a repeat, but a list reordered between calls could hide a row between pages).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import requests

from kassebro.booking.voucher import Voucher, VoucherLine
from kassebro.core.money import ore_to_decimal, parse_ore
from kassebro.ledgers.base import (
    AccountBalance,
    LedgerAccount,
    LedgerAuthError,
    LedgerError,
    LedgerPosting,
    LedgerRateLimited,
    LedgerTransient,
    LedgerValidationError,
    LedgerVatCode,
    PostedVoucher,
    voucher_customers,
)
from kassebro.ledgers.cache import LookupCache
from kassebro.ledgers.http import HttpClient, LedgerHttp, Secret, encode_json, json_or_none, retry_after
from kassebro.ledgers.registry import ConnectionParts

log = logging.getLogger(__name__)

SYSTEM = "PowerOffice Go"
NO_VAT_CODE = "0"
# Privileges the posting path needs: any one of each group (from the spec's "Auth roles").
REQUIRED_PRIVILEGES: tuple[tuple[str, ...], ...] = (
    ("GeneralLedgerAccount", "GeneralLedgerAccount_Full"),
    ("CommonServices", "CommonServices_Full"),
    ("ManualVoucher_Full",),
    ("AccountTransaction", "AccountTransaction_Full"),
)
APPROVAL_PRIVILEGE = "JournalEntryVoucher_Full"
REVERSAL_PRIVILEGE = "YearEndVoucher_Full"  # POST /Vouchers/Reverse/{id}
# Needed only when lines carry a department or a project.
DIMENSION_PRIVILEGES: dict[str, tuple[str, ...]] = {
    "department": ("Department", "Department_Full"),
    "project": ("Project", "Project_Full"),
}
# LookupCache tables (JSON: string keys).
ACCOUNTS = "accounts"  # account number -> AccountId, active accounts only
ACCOUNT_NUMBERS = "account_numbers"  # AccountId -> account number, any account
VAT_IDS = "vat_ids"  # standard VAT code -> VatId, active standard codes only
VAT_CODES = "vat_codes"  # VatId -> code, every code
DEPARTMENTS = "departments"  # department code -> DepartmentId, active only
PROJECTS = "projects"  # project code -> ProjectId, active only
DEPARTMENT_CODES = "department_codes"  # DepartmentId -> code
PROJECT_CODES = "project_codes"  # ProjectId -> code
CUSTOMERS = "customers"  # "<vendor>:<POS customer id>" -> the Go customer's SubledgerAccountId
CUSTOMER_ACCOUNT = "1500"
"""The general ledger account of Go's customer subledger (INFERRED: Kundefordringer, NS 4102)."""
_ID_SEGMENT = re.compile(r"/(\d+|[0-9a-fA-F-]{36})(?=/|$)")
_DRAFT_REF = re.compile(r" \[([^\[\]]+)\]$")
_RETRY_IN = re.compile(r"(\d+(?:\.\d+)?)\s*second")


@dataclass(frozen=True)
class _Dimension:
    """How one kind of dimension is looked up: list endpoint, its code filter, cache tables."""

    kind: str
    path: str
    param: str
    ids: str
    codes: str


DEFAULT_PAGE_SIZE = 5000  # ResourceParameters.PageSize: "5000 by default"
MAX_PAGE_SIZE = 20_000  # ResourceParameters.MaxPageSize: "20 000 by default"

_DEPARTMENT = _Dimension("department", "/Departments", "codes", DEPARTMENTS, DEPARTMENT_CODES)
_PROJECT = _Dimension("project", "/Projects", "projectCodes", PROJECTS, PROJECT_CODES)


class PowerOfficeClient(HttpClient):
    """A Ledger for one PowerOffice Go client.

    Args:
      base_url: API root, e.g. "https://goapi.poweroffice.net/v2" (demo ".../demo/v2") or a
        sandbox "http://127.0.0.1:8910" ("/v2" is added when missing).
      token_url: e.g. "https://goapi.poweroffice.net/OAuth/Token" (demo ".../Demo/OAuth/Token").
      application_key, client_key, subscription_key: the integration's, the customer's and the
        developer portal's keys.
      session: a requests.Session to use (else one is made and closed by `close`).
      timeout: seconds per HTTP request.
      refresh_margin: fetch a new token when less than this many seconds of it remain.
      get_retries, retry_backoff: transient retries of GETs and token requests.
      clock: monotonic seconds, for token expiry (tests pass a fake one).
      cache: where lookups are kept; share a file-backed one between the clients of a run (one
        per connection: ids differ between Go clients). None: a fresh in-memory cache.
      read_back_after_post: True: `post` returns the voucher as Go answered it; False: as sent,
        with the answer's Id and VoucherNo (no parsing of the answer's lines, never a GET).
      search_drafts: whether `find` also looks among drafts awaiting approval (one more call).
        Posting for approval always checks the drafts first, whatever this says.
      page_size: the PageSize asked of list endpoints (the spec's default 5000; at most its
        MaxPageSize 20000). A list shorter than this is one call.
    """

    system = SYSTEM

    def __init__(
        self,
        base_url: str,
        token_url: str,
        *,
        application_key: str,
        client_key: str,
        subscription_key: str,
        session: requests.Session | None = None,
        timeout: float = 30.0,
        refresh_margin: float = 60.0,
        get_retries: int = 2,
        retry_backoff: float = 0.5,
        max_rate_wait: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        cache: LookupCache | None = None,
        read_back_after_post: bool = True,
        search_drafts: bool = True,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE} (the spec's MaxPageSize), not {page_size}")
        base = base_url.rstrip("/")
        self.base_url = base if base.lower().endswith("/v2") else base + "/v2"
        self.token_url = token_url
        self._application_key = Secret(application_key)
        self._client_key = Secret(client_key)
        self._subscription_key = Secret(subscription_key)
        self._token: Secret | None = None
        self._token_expires = 0.0
        self._http = LedgerHttp(
            SYSTEM,
            session=session,
            timeout=timeout,
            get_retries=get_retries,
            retry_backoff=retry_backoff,
            max_rate_wait=max_rate_wait,
            secrets=lambda: (self._application_key, self._client_key, self._subscription_key, self._token),
        )
        self.refresh_margin = refresh_margin
        self._clock = clock
        self.cache = cache if cache is not None else LookupCache()
        self.read_back_after_post = read_back_after_post
        self.search_drafts = search_drafts
        self.page_size = page_size

    # ---- housekeeping ------------------------------------------------------------------------

    @classmethod
    def from_connection(cls, parts: ConnectionParts, *, careful: bool = True, **_: Any) -> PowerOfficeClient:
        """The client an Airflow connection describes: password = the customer's client key,
        extras `application_key`, `subscription_key`, `token_url`. `careful=False` skips the
        draft search no earlier attempt can have written to (`pipeline.careful_lookup`)."""
        root = parts.base_url.rstrip("/").removesuffix("/v2")
        return cls(
            parts.base_url,
            str(parts.extras.get("token_url") or "") or parts.token_url or f"{root}/OAuth/Token",
            application_key=str(parts.extras.get("application_key") or ""),
            client_key=parts.password,
            subscription_key=str(parts.extras.get("subscription_key") or ""),
            session=parts.session,
            timeout=parts.timeout,
            cache=parts.cache(None),
            read_back_after_post=False,
            search_drafts=careful,
        )

    def __repr__(self) -> str:
        return f"PowerOfficeClient(base_url={self.base_url!r})"

    # ---- the Ledger protocol -----------------------------------------------------------------

    def test_connection(self) -> str:
        """Ask ClientIntegrationInformation; raise LedgerAuthError naming missing privileges."""
        info = self._request("GET", "/ClientIntegrationInformation") or {}
        valid = set(info.get("ValidPrivileges") or [])
        missing = [" or ".join(group) for group in REQUIRED_PRIVILEGES if not valid.intersection(group)]
        name = info.get("ClientName") or info.get("ClientId") or "?"
        if missing:
            raise LedgerAuthError(
                SYSTEM,
                f"connected to client {name!r}, but the integration lacks the privileges {'; '.join(missing)} "
                "(grant them to the integration in Go)",
            )
        notes = [] if APPROVAL_PRIVILEGE in valid else [f"no {APPROVAL_PRIVILEGE}: posting for approval is off"]
        if REVERSAL_PRIVILEGE not in valid:
            notes.append(f"no {REVERSAL_PRIVILEGE}: reverse books a counter-voucher instead of Go's own reversal")
        notes += [
            f"no {' or '.join(group)}: lines with a {kind} cannot be posted"
            for kind, group in DIMENSION_PRIVILEGES.items()
            if not valid.intersection(group)
        ]
        return f"Connected to PowerOffice Go client {name!r}" + (f" ({'; '.join(notes)})" if notes else "")

    def find(self, external_ref: str, date: dt.date | None) -> PostedVoucher | None:
        """The voucher carrying `external_ref` posted with date `date`, or a draft with it, or None."""
        if date is None:
            raise LedgerValidationError(SYSTEM, "find needs the voucher date (AccountTransactions is searched by date)")
        posted = self._find_posted(external_ref, date)
        if posted is not None or not self.search_drafts:
            return posted
        found = self._find_draft(external_ref)
        return found[0] if found else None

    def get(self, ledger_id: str) -> PostedVoucher:
        """Read a voucher back: a posted manual voucher, else a journal-entry draft."""
        data, in_ledger = self._read(ledger_id)
        return self._posted(data) if in_ledger else self._posted_draft(data)

    def list_vouchers(
        self, date_from: dt.date, date_to: dt.date, *, include_non_posted: bool = False
    ) -> list[PostedVoucher]:
        """Every posted voucher dated date_from <= date < date_to, of any type and whoever made it.

        Go has no voucher list, so this is `GET /AccountTransactions` for the posting dates
        date_from .. date_to - 1 day (inclusive there), every page, grouped by VoucherId, one call
        per page of the range; a voucher is kept when its VoucherDate is in the range. Postings are
        read as `get` reads a voucher's lines (see `_gross_postings`). `include_non_posted` adds the
        journal entry drafts not yet posted (`GET /JournalEntryVouchers?isPosted=false`, then each
        manual journal draft: the list has no dates), in_ledger False.
        """
        if date_to <= date_from:
            return []
        params = {"fromDate": date_from.isoformat(), "toDate": (date_to - dt.timedelta(days=1)).isoformat()}
        rows = self._list("/AccountTransactions", params)
        out = [
            self._from_transactions(group)
            for group in _by_voucher(rows).values()
            if date_from <= _voucher_date(group[0]) < date_to
        ]
        if include_non_posted:
            out += self._drafts_between(date_from, date_to)
        return out

    def reverse(self, ledger_id: str, date: dt.date) -> PostedVoucher:
        """Reverse a posted voucher on `date`; returns the reversing voucher. Never retried.

        Go's own reversal, `POST /Vouchers/Reverse/{id}` (role YearEndVoucher_Full), takes no date
        and only takes vouchers the integration made through POST /Vouchers (kassebro always sets
        an ExternalImportReference there; an approved draft has none). So it is used when `date`
        is the voucher's own date (INFERRED: Go dates the reversal as the original) and the voucher
        has a reference; the reversal is then read from that day's AccountTransactions by its
        ReversedVoucherId. Otherwise, or without the privilege (403), a counter ManualJournal on
        `date`, every line negated with its VAT code, department and project, with
        ExternalImportReference "<ref>:reversal" (the draft's " [ref]" for an approved draft,
        "poweroffice-<id>:reversal" for a voucher with neither).

        Safe after a lost answer: a voucher Go shows IsReversed returns its reversal, and Go
        refuses a second counter-voucher with the same reference, which `post` turns into the one
        already there; so calling again never reverses twice. A draft is not in the ledger and is
        refused (delete it in Go instead).
        """
        data, in_ledger = self._read(ledger_id)
        if not in_ledger:
            raise LedgerValidationError(
                SYSTEM, f"voucher {ledger_id} is a draft awaiting approval, not in the ledger: delete it instead"
            )
        voucher_id = str(data.get("Id"))
        day = _voucher_date(data)
        if data.get("IsReversed"):
            found = self._find_reversal(voucher_id, day)
            if found is None:
                raise LedgerTransient(
                    SYSTEM,
                    f"voucher {voucher_id} is reversed in Go, but its reversal is not among the account "
                    f"transactions of {day} (yet); try again later",
                )
            return found
        if date == day and data.get("ExternalImportReference"):
            try:
                return self._go_reverse(voucher_id, day)
            except LedgerAuthError as exc:
                if getattr(exc, "status", None) != 403:
                    raise
                log.info("no %s: reversing voucher %s with a counter-voucher", REVERSAL_PRIVILEGE, voucher_id)
        return self._counter_voucher(data, date)

    def post(self, voucher: Voucher, send_to_ledger: bool = True) -> PostedVoucher:
        """POST the voucher (never retried); a duplicate-reference refusal returns the existing one.

        Any other refusal clears the lookup cache before it is raised, so an id that has gone
        stale in Go (a department or account deleted and made again) is looked up on the next try.
        """
        try:
            if not send_to_ledger:
                return self._post_for_approval(voucher)
            return self._post_manual(voucher)
        except LedgerValidationError as exc:
            if not _is_duplicate_refusal(exc):
                self.cache.clear()
            raise

    # ---- more than the protocol --------------------------------------------------------------

    def read_lines(self, ledger_id: str) -> tuple[VoucherLine, ...]:
        """The voucher's lines as Go holds them, with department and project codes.

        PostedVoucher's postings carry no dimensions, so this is the way to check them; a draft's
        line with both sides gives two lines.
        """
        data, in_ledger = self._read(ledger_id)
        return self._lines_of(data, in_ledger)

    def _lines_of(self, data: Mapping[str, Any], in_ledger: bool) -> tuple[VoucherLine, ...]:
        raw = self._raw_lines(data, in_ledger)
        departments = self._codes_for(_DEPARTMENT, [r[4] for r in raw])
        projects = self._codes_for(_PROJECT, [r[5] for r in raw])
        numbers = self._account_numbers([r[0] for r in raw])
        vats = self._vat_codes([r[2] for r in raw])
        return tuple(
            VoucherLine(
                numbers[account_id],
                amount,
                _vat_out(vats.get(vat_id)),
                description,
                departments.get(department_id),
                projects.get(project_id),
            )
            for account_id, amount, vat_id, description, department_id, project_id in raw
        )

    # ---- read-back -------------------------------------------------------------------------

    def postings(
        self, date_from: dt.date, date_to: dt.date, *, accounts: tuple[int, int] | None = None
    ) -> list[LedgerPosting]:
        """Every posting dated date_from <= date < date_to (`GET /AccountTransactions`, whose
        toDate is inclusive), VAT transactions included, optionally for an account number range."""
        params: dict[str, Any] = {
            "fromDate": date_from.isoformat(),
            "toDate": (date_to - dt.timedelta(days=1)).isoformat(),
        }
        if accounts:
            params["accountNos"] = f"{accounts[0]}-{accounts[1]}"
        found = []
        for row in self._list("/AccountTransactions", params):
            amount = parse_ore(str(row.get("Amount")))
            vat_code = str(row.get("VatCode") or "")
            found.append(
                LedgerPosting(
                    voucher_id=str(row.get("VoucherId")),
                    voucher_number=str(row.get("VoucherNo") or ""),
                    date=dt.date.fromisoformat(str(row.get("PostingDate"))[:10]),
                    account=str(row.get("AccountNo")),
                    amount=amount,
                    gross=amount + parse_ore(str(row.get("VatAmount") or 0)),
                    vat_code=None if vat_code in ("", NO_VAT_CODE) else vat_code,
                    description=str(row.get("Description") or ""),
                    external_ref=str(row.get("ExternalImportReference") or ""),
                )
            )
        return found

    def balances(
        self, date_from: dt.date, date_to: dt.date, *, accounts: tuple[int, int] | None = None
    ) -> list[AccountBalance]:
        """Each account's closing balance at the period's last day (`GET /TrialBalance`, that day
        included), its movement summed from the period's postings, and its opening as closing less
        movement: Go reports a balance at a date, not a period (so a period across New Year is not
        split into the result accounts' two years; INFERRED that Go's result accounts restart)."""
        params: dict[str, Any] = {"date": (date_to - dt.timedelta(days=1)).isoformat()}
        if accounts:
            params["accountNos"] = f"{accounts[0]}-{accounts[1]}"
        movement: dict[str, int] = {}
        for posting in self.postings(date_from, date_to, accounts=accounts):
            movement[posting.account] = movement.get(posting.account, 0) + posting.amount
        found = []
        for row in self._list("/TrialBalance", params):
            account = str(row.get("AccountNo"))
            closing = parse_ore(str(row.get("Balance") or 0))
            moved = movement.get(account, 0)
            if closing or moved:
                found.append(
                    AccountBalance(account, str(row.get("AccountName") or ""), closing - moved, moved, closing)
                )
        return found

    def accounts(self) -> list[LedgerAccount]:
        """The chart of accounts, inactive accounts included (`GET /GeneralLedgerAccounts`, every
        page): IsActive, the account's VatCode and IsVatCodeLocked ("only VatCode can be used on
        transactions on this account", the spec). The lookup cache is filled on the way.

        A custom ("C...") VatCode on an account is read as the standard code it is based on
        (`VatCodeDto.BaseVatCodeId`, one `GET /VatCodes` when an account carries one).
        INFERRED: the list without a filter holds inactive accounts too (the spec has no isActive
        filter on it and describes IsActive as hiding the account in the GUI only).
        """
        rows = self._list("/GeneralLedgerAccounts")
        self._remember_accounts(rows)
        standard: dict[str, str] | None = None
        found = []
        for row in rows:
            code = str(row.get("VatCode") or "").strip()
            if code and not code.isdigit():  # a custom or compensation code: its standard base
                if standard is None:
                    standard = {v.own_id: v.code for v in self.vat_codes(active_only=False)}
                code = standard.get(str(row.get("VatCodeId"))) or code
            found.append(
                LedgerAccount(
                    number=str(row.get("AccountNo")),
                    name=str(row.get("Name") or ""),
                    active=row.get("IsActive") is not False,
                    vat_code=None if code in ("", NO_VAT_CODE) else code,
                    vat_locked=bool(row.get("IsVatCodeLocked")),
                )
            )
        return found

    def vat_codes(self, *, active_only: bool = True) -> list[LedgerVatCode]:
        """The client's VAT codes (`GET /VatCodes`, every page), the active ones unless asked: Go's
        standard codes are SAF-T codes (Code), a custom one ("C...") stands for the standard code of
        its `BaseVatCodeId`, and one with neither (a compensation "K..." code) is left out. `own_id`
        is the VatId a voucher line takes; Rate (0..1) becomes a percentage. The lookup cache's VAT
        tables are filled on the way."""
        rows = self._list("/VatCodes")
        self._cache_vat_codes(rows)
        by_id = {str(row.get("Id")): row for row in rows}
        found = []
        for row in rows:
            if active_only and row.get("IsActive") is False:
                continue
            code = str(row.get("Code") or "")
            if row.get("IsCustom") or not code.isdigit():  # its standard base, else its own if standard
                base = by_id.get(str(row.get("BaseVatCodeId")))
                code = str(base.get("Code") or "") if base else code
            if not code.isdigit():
                continue
            found.append(
                LedgerVatCode(
                    code=code,
                    own_id=str(row.get("Id")),
                    name=str(row.get("Name") or row.get("Description") or ""),
                    rate=Decimal(str(row.get("Rate") or 0)) * 100,
                )
            )
        return found

    def render(self, voucher: Voucher) -> dict[str, Any]:
        """The POST /Vouchers/ManualJournals body, resolving every lookup first."""
        if not voucher.lines:
            raise LedgerValidationError(SYSTEM, f"voucher {voucher.external_ref} has no lines")
        accounts = self.resolve_accounts(line.account for line in voucher.lines if not line.customer)
        subledgers = self._customer_subledgers(voucher)
        departments = self.resolve_departments(line.department for line in voucher.lines if line.department)
        projects = self.resolve_projects(line.project for line in voucher.lines if line.project)
        day = voucher.business_day.isoformat()
        lines = []
        for line in voucher.lines:
            account_id = subledgers[line.customer] if line.customer else accounts[line.account.strip()]
            entry: dict[str, Any] = {
                "AccountId": account_id,
                "PostingDate": day,
                "VatId": self.vat_id(line.vat_code),
                "CurrencyAmount": ore_to_decimal(line.amount),
            }
            if line.description:
                entry["Description"] = line.description
            if line.department:
                entry["DepartmentId"] = departments[line.department.strip()]
            if line.project:
                entry["ProjectId"] = projects[line.project.strip()]
            lines.append(entry)
        return {
            "CurrencyCode": "NOK",
            "VoucherDate": day,
            "Description": voucher.description,
            "ExternalImportReference": voucher.external_ref,
            "VoucherLines": lines,
        }

    def render_draft(self, voucher: Voucher) -> dict[str, Any]:
        """The POST /JournalEntryVouchers/ManualJournals body (one side per line, |gross|)."""
        body = self.render(voucher)
        lines = []
        for line in body["VoucherLines"]:
            side = "Debit" if line["CurrencyAmount"] > 0 else "Credit"
            entry = {
                f"{side}AccountId": line["AccountId"],
                f"{side}VatId": line["VatId"],
                "CurrencyAmount": abs(line["CurrencyAmount"]),
                "PostingDate": line["PostingDate"],
            }
            for key in ("Description", "DepartmentId", "ProjectId"):
                if key in line:
                    entry[key] = line[key]
            lines.append(entry)
        return {
            "CurrencyCode": "NOK",
            "VoucherDate": body["VoucherDate"],
            "Description": f"{voucher.description} [{voucher.external_ref}]",
            "ManualVoucherLines": lines,
        }

    def _customer_subledgers(self, voucher: Voucher) -> dict[str, int]:
        """The subledger account of each POS customer on the voucher's lines (credit sales on the
        customer ledger): the Go customer carrying our key as `ExternalImportReference`
        ("<vendor>:<POS customer id>", a filter of `GET /Customers`), else a new customer with it;
        cached. A line's AccountId is then the customer's `SubledgerAccountId`, which the spec says
        a voucher line may name.

        INFERRED: a customer's subledger lives on 1500 (read back as 1500); Go numbers a customer
        made without `Number`. Customers made in Go by hand are not matched by organisation number
        (`GET /Customers` has no such filter): such a POS customer gets a customer of its own.
        """
        customers, _start = voucher_customers(voucher)
        found: dict[str, int] = {}
        for key, who in customers.items():
            ref = f"{voucher.vendor_id}:{key}"[:100]
            cached = self.cache.get(CUSTOMERS, ref)
            if cached is None:
                rows = self._list("/Customers", {"externalImportReference": ref})
                row = next((r for r in rows if r.get("ExternalImportReference") == ref), None)
                if row is None:
                    row = self._create_customer(ref, who)
                cached = int(row["SubledgerAccountId"])
                self.cache.put(CUSTOMERS, {ref: cached})
            self.cache.put(ACCOUNT_NUMBERS, {str(cached): CUSTOMER_ACCOUNT})  # read back as 1500
            found[key] = int(cached)
        return found

    def _create_customer(self, ref: str, who: Any) -> dict[str, Any]:
        """POST /Customers (never resent: a lost answer is found by `ExternalImportReference`)."""
        # A POS declares a customer by name only: Go's person needs first and last name apart, so the
        # customer is made as an organisation (IsPerson false) unless the POS says no more.
        body: dict[str, Any] = {"Name": who.name, "IsPerson": False, "ExternalImportReference": ref}
        if who.org_number:
            body["OrganizationNumber"] = who.org_number
        if who.email:
            body["EmailAddress"] = who.email
        if who.address1 or who.city:
            body["MailAddress"] = {
                "AddressLine1": who.address1,
                "ZipCode": who.postcode,
                "City": who.city,
                "CountryCode": "NO",
            }
        created = self._request("POST", "/Customers", body=body)
        if not isinstance(created, dict) or created.get("SubledgerAccountId") is None:
            raise LedgerTransient(SYSTEM, f"created a customer for {who.name!r}, but the answer has no subledger")
        return created

    def resolve_accounts(self, numbers: Iterable[str]) -> dict[str, int]:
        """Account number -> AccountId, one call for all numbers not cached."""
        wanted = list(dict.fromkeys(str(n).strip() for n in numbers))
        bad = [n for n in wanted if not n.isdigit()]
        if bad:
            raise LedgerValidationError(SYSTEM, f"not PowerOffice Go account numbers (digits only): {', '.join(bad)}")
        known = {n: int(i) for n in wanted if (i := self.cache.get(ACCOUNTS, n)) is not None}
        missing = [n for n in wanted if n not in known]
        if missing:
            rows = self._list("/GeneralLedgerAccounts", {"accountNos": ",".join(missing)})
            known.update(self._remember_accounts(rows))
            unknown = [n for n in missing if n not in known]
            if unknown:
                raise LedgerValidationError(
                    SYSTEM,
                    f"accounts unknown or inactive in PowerOffice Go: {', '.join(unknown)}",
                )
        return {n: known[n] for n in wanted}

    def vat_id(self, code: str | None) -> int:
        """The VatId of a standard VAT code (None -> code "0"), from the cached /VatCodes table."""
        wanted = str(code).strip() if code else NO_VAT_CODE
        vat_id = self.cache.get(VAT_IDS, wanted)
        if vat_id is None:  # not cached, or Go has the code since the table was cached
            vat_id = self._load_vat_codes().get(wanted)
        if vat_id is None:
            raise LedgerValidationError(SYSTEM, f"VAT code {wanted} unknown to PowerOffice Go")
        return int(vat_id)

    def resolve_departments(self, codes: Iterable[str]) -> dict[str, int]:
        """Department code -> DepartmentId, one `GET /Departments?codes=` for the codes not cached."""
        return self._resolve(_DEPARTMENT, codes)

    def resolve_projects(self, codes: Iterable[str]) -> dict[str, int]:
        """Project code ("10", subproject "10.2") -> ProjectId, one `GET /Projects?projectCodes=`."""
        return self._resolve(_PROJECT, codes)

    def submit_for_approval(self, ledger_id: str, comment: str = "") -> dict[str, Any]:
        body = {"Comment": comment} if comment else {}
        return self._request("POST", f"/JournalEntryVouchers/{ledger_id}/submitForApproval", body=body) or {}

    # ---- posting -----------------------------------------------------------------------------

    def _post_manual(self, voucher: Voucher) -> PostedVoucher:
        body = self.render(voucher)
        try:
            data = self._request("POST", "/Vouchers/ManualJournals", body=body) or {}
        except LedgerValidationError as exc:
            if not _is_duplicate_refusal(exc):
                raise
            existing = self.find(voucher.external_ref, voucher.business_day)
            if existing is None:
                raise
            log.info("PowerOffice Go already holds %s as voucher %s", voucher.external_ref, existing.ledger_id)
            return existing
        voucher_id = _answer_id(data, "POST /Vouchers/ManualJournals")
        if not self.read_back_after_post:
            return _as_sent(voucher, voucher_id, str(data.get("VoucherNo") or ""), in_ledger=True)
        return self._posted(data) if data.get("VoucherLines") else self.get(voucher_id)

    def _post_for_approval(self, voucher: Voucher) -> PostedVoucher:
        """Drafts have no server-side duplicate check, so look first: posted by an approver, or a draft."""
        posted = self._find_posted(voucher.external_ref, voucher.business_day)
        if posted is not None:
            return posted
        found = self._find_draft(voucher.external_ref)
        if found is not None:
            existing, in_approval = found
            if not in_approval:  # made by a run whose submit failed: finish it
                self.submit_for_approval(existing.ledger_id, comment=f"kassebro {voucher.external_ref}")
            return existing
        data = self._request("POST", "/JournalEntryVouchers/ManualJournals", body=self.render_draft(voucher)) or {}
        draft_id = _answer_id(data, "POST /JournalEntryVouchers/ManualJournals")
        self.submit_for_approval(draft_id, comment=f"kassebro {voucher.external_ref}")
        if not self.read_back_after_post:
            return _as_sent(voucher, draft_id, "", in_ledger=False)
        if not data.get("ManualVoucherLines"):
            return self.get(draft_id)
        return self._posted_draft(data)

    def _find_posted(self, external_ref: str, date: dt.date) -> PostedVoucher | None:
        """The posted voucher of the reference: the day's AccountTransactions (every page), then `get`."""
        day = date.isoformat()
        rows = self._list("/AccountTransactions", {"fromDate": day, "toDate": day})
        mine = [r for r in rows if _carries(r, external_ref)]
        ids = list(dict.fromkeys(str(r.get("VoucherId")) for r in mine))
        live = list(dict.fromkeys(str(r.get("VoucherId")) for r in mine if not r.get("IsReversed")))
        if len(live) > 1:
            raise LedgerValidationError(
                SYSTEM,
                f"{len(live)} vouchers carry ExternalImportReference {external_ref!r} (ids {', '.join(live)}); "
                "resolve it in Go",
            )
        return self.get((live or ids)[0]) if ids else None

    def _find_draft(self, external_ref: str) -> tuple[PostedVoucher, bool] | None:
        """This integration's unposted draft carrying the reference, and whether it is in approval."""
        try:
            items = self._list("/JournalEntryVouchers", {"isPosted": "false"})
        except LedgerAuthError as exc:
            if getattr(exc, "status", None) == 403:
                return None  # without the privilege this integration cannot have made drafts
            raise
        for item in items:
            if item.get("IsCreatedByCurrentIntegration") is False or item.get("VoucherType") != "ManualJournal":
                continue
            draft = self._request("GET", f"/JournalEntryVouchers/ManualJournals/{item.get('Id')}") or {}
            match = _DRAFT_REF.search(str(draft.get("Description") or ""))
            if match and match.group(1) == external_ref:
                return self._posted_draft(draft), bool(item.get("InApprovalWorkflow"))
        return None

    # ---- listing and reversing ----------------------------------------------------------------

    def _from_transactions(self, rows: list[Mapping[str, Any]]) -> PostedVoucher:
        """A posted voucher from its account transactions (any VoucherType).

        When Go's generated VAT transactions cannot be told apart (see `_gross_postings`), a
        ManualJournal is read with `get`, and any other type is given as its transactions stand,
        net amounts and VAT rows included.
        """
        first = rows[0]
        postings = _gross_postings(rows)
        if postings is None:
            if first.get("VoucherType") == "ManualJournal":
                return self.get(str(first.get("VoucherId")))
            postings = tuple(
                (str(r.get("AccountNo")), parse_ore(str(r.get("Amount") or 0)), _vat_out(_code(r))) for r in rows
            )
        return PostedVoucher(
            ledger_id=str(first.get("VoucherId")),
            number=str(first.get("VoucherNo") or ""),
            external_ref=str(first.get("ExternalImportReference") or _draft_ref(first.get("VoucherDescription"))),
            date=_voucher_date(first),
            postings=postings,
            in_ledger=True,
        )

    def _drafts_between(self, date_from: dt.date, date_to: dt.date) -> list[PostedVoucher]:
        """The manual journal drafts not yet posted, dated date_from <= date < date_to."""
        try:
            items = self._list("/JournalEntryVouchers", {"isPosted": "false"})
        except LedgerAuthError as exc:
            if getattr(exc, "status", None) == 403:
                return []  # without the privilege this integration sees no drafts
            raise
        out = []
        for item in items:
            if item.get("VoucherType") != "ManualJournal":
                continue  # the draft kinds kassebro makes and reads
            draft = self._request("GET", f"/JournalEntryVouchers/ManualJournals/{item.get('Id')}") or {}
            if draft and date_from <= _voucher_date(draft) < date_to:
                out.append(self._posted_draft(draft))
        return out

    def _find_reversal(self, voucher_id: str, day: dt.date) -> PostedVoucher | None:
        """Go's reversal of a voucher: the transactions of `day` whose ReversedVoucherId names it."""
        params = {"fromDate": day.isoformat(), "toDate": day.isoformat()}
        rows = self._list("/AccountTransactions", params)
        mine = [r for r in rows if str(r.get("ReversedVoucherId") or "").lower() == voucher_id.lower()]
        groups = list(_by_voucher(mine).values())
        return self._from_transactions(groups[0]) if groups else None

    def _go_reverse(self, voucher_id: str, day: dt.date) -> PostedVoucher:
        try:
            self._request("POST", f"/Vouchers/Reverse/{voucher_id}")
        except LedgerTransient as exc:
            raise LedgerTransient(SYSTEM, _again(exc, "Go marks the original IsReversed")) from None
        found = self._find_reversal(voucher_id, day)
        if found is None:  # the spec also answers 202 Accepted: booked later
            raise LedgerTransient(
                SYSTEM,
                f"Go accepted the reversal of voucher {voucher_id}, but it is not among the account transactions "
                f"of {day} yet; call reverse again to read it",
            )
        return found

    def _counter_voucher(self, data: Mapping[str, Any], date: dt.date) -> PostedVoucher:
        """A ManualJournal on `date` negating every line, referenced "<ref>:reversal"."""
        ref = str(data.get("ExternalImportReference") or _draft_ref(data.get("Description")))
        ref = ref or f"poweroffice-{data.get('Id')}"
        voucher = Voucher(
            vendor_id="",
            business_day=date,
            external_ref=f"{ref}:reversal",
            description=f"Reversering av bilag {data.get('VoucherNo') or data.get('Id')}",
            lines=tuple(replace(line, amount=-line.amount) for line in self._lines_of(data, True)),
        )
        try:
            return self.post(voucher)
        except LedgerTransient as exc:
            raise LedgerTransient(SYSTEM, _again(exc, "Go refuses the reference twice")) from None

    def _read(self, ledger_id: str) -> tuple[dict[str, Any], bool]:
        """The voucher's JSON and whether it is posted (ManualVoucherDto) or a draft."""
        try:
            data = self._request("GET", f"/Vouchers/ManualJournals/{ledger_id}")
        except LedgerValidationError as exc:
            if getattr(exc, "status", None) != 404:
                raise
            data = None
        if data:
            return data, True
        return self._request("GET", f"/JournalEntryVouchers/ManualJournals/{ledger_id}") or {}, False

    # ---- lookups -----------------------------------------------------------------------------

    def _remember_accounts(self, rows: Iterable[Mapping[str, Any]]) -> dict[str, int]:
        """Cache GeneralLedgerAccountDto rows both ways; return number -> id of the active ones."""
        active = {str(r.get("AccountNo")): int(r["Id"]) for r in rows if r.get("IsActive") is not False}
        self.cache.put(ACCOUNTS, active)
        self.cache.put(ACCOUNT_NUMBERS, {str(int(r["Id"])): str(r.get("AccountNo")) for r in rows})
        return active

    def _load_vat_codes(self) -> dict[str, int]:
        """One `GET /VatCodes`: cache code -> id (active standard codes) and id -> code (all)."""
        return self._cache_vat_codes(self._list("/VatCodes"))

    def _cache_vat_codes(self, rows: list[dict[str, Any]]) -> dict[str, int]:
        """Cache VatCodeDto rows: code -> id (active standard codes) and id -> code (all)."""
        ids: dict[str, int] = {}
        for row in rows:
            if row.get("IsActive") is False or row.get("IsCustom"):
                continue
            ids.setdefault(str(row.get("Code")), int(row["Id"]))
        self.cache.put(VAT_IDS, ids)
        self.cache.put(VAT_CODES, {str(int(row["Id"])): str(row.get("Code")) for row in rows})
        return ids

    def _resolve(self, dim: _Dimension, codes: Iterable[str]) -> dict[str, int]:
        wanted = list(dict.fromkeys(str(c).strip() for c in codes))
        commas = [c for c in wanted if "," in c]
        if commas:  # the list filters split on commas
            raise LedgerValidationError(SYSTEM, f"{dim.kind} codes cannot contain a comma: {'; '.join(commas)}")
        known = {c: int(i) for c in wanted if (i := self.cache.get(dim.ids, c)) is not None}
        missing = [c for c in wanted if c not in known]
        if missing:
            rows = self._list(dim.path, {dim.param: ",".join(missing)})
            exact = [r for r in rows if str(r.get("Code")) in missing]  # the filter is not trusted to be exact
            inactive = sorted({str(r.get("Code")) for r in exact if r.get("IsActive") is False})
            found = {str(r.get("Code")): int(r["Id"]) for r in exact if r.get("IsActive") is not False}
            self.cache.put(dim.ids, found)
            self.cache.put(dim.codes, {str(int(r["Id"])): str(r.get("Code")) for r in exact})
            known.update(found)
            unknown = [c for c in missing if c not in found and c not in inactive]
            problems = []
            if unknown:
                problems.append(f"{dim.kind} {', '.join(unknown)} not found")
            if inactive:
                problems.append(f"{dim.kind} {', '.join(inactive)} inactive")
            if problems:
                raise LedgerValidationError(
                    SYSTEM, f"{' and '.join(problems)} in PowerOffice Go (check the {dim.kind} codes in the config)"
                )
        return {c: known[c] for c in wanted}

    def _account_numbers(self, account_ids: Iterable[Any]) -> dict[Any, str]:
        """AccountId -> number from the cache; one `GET /GeneralLedgerAccounts` (the chart) if any is missing."""
        wanted = [i for i in dict.fromkeys(account_ids) if i is not None]
        found = {i: self.cache.get(ACCOUNT_NUMBERS, str(int(i))) for i in wanted}
        if any(number is None for number in found.values()):
            self._remember_accounts(self._list("/GeneralLedgerAccounts"))
            found = {i: self.cache.get(ACCOUNT_NUMBERS, str(int(i))) for i in wanted}
        if any(number is None for number in found.values()):  # customers' subledger accounts
            subledgers = {
                str(int(r["SubledgerAccountId"])) for r in self._list("/Customers") if r.get("SubledgerAccountId")
            }
            self.cache.put(ACCOUNT_NUMBERS, dict.fromkeys(subledgers, CUSTOMER_ACCOUNT))
            found = {i: self.cache.get(ACCOUNT_NUMBERS, str(int(i))) for i in wanted}
        strays = [str(i) for i, number in found.items() if number is None]
        if strays:
            raise LedgerValidationError(
                SYSTEM,
                f"the voucher has lines on AccountIds {', '.join(strays)}, which are not general ledger accounts",
            )
        return {i: str(number) for i, number in found.items()}

    def _vat_codes(self, vat_ids: Iterable[Any]) -> dict[Any, str | None]:
        """VatId -> code from the cache; one `GET /VatCodes` if any is missing (then None if unknown)."""
        wanted = [i for i in dict.fromkeys(vat_ids) if i is not None]
        found = {i: self.cache.get(VAT_CODES, str(int(i))) for i in wanted}
        if any(code is None for code in found.values()):
            self._load_vat_codes()
            found = {i: self.cache.get(VAT_CODES, str(int(i))) for i in wanted}
        return found

    def _codes_for(self, dim: _Dimension, dim_ids: Iterable[Any]) -> dict[Any, str]:
        """DepartmentId/ProjectId -> code from the cache; one list call for the whole table if needed."""
        wanted = [i for i in dict.fromkeys(dim_ids) if i is not None and i != -1]
        found = {i: self.cache.get(dim.codes, str(int(i))) for i in wanted}
        if any(code is None for code in found.values()):
            rows = self._list(dim.path)
            self.cache.put(dim.ids, {str(r.get("Code")): int(r["Id"]) for r in rows if r.get("IsActive") is not False})
            self.cache.put(dim.codes, {str(int(r["Id"])): str(r.get("Code")) for r in rows})
            found = {i: self.cache.get(dim.codes, str(int(i))) for i in wanted}
        strays = [str(i) for i, code in found.items() if code is None]
        if strays:
            raise LedgerValidationError(SYSTEM, f"{dim.kind} ids {', '.join(strays)} on the voucher are unknown")
        return {i: str(code) for i, code in found.items()}

    # ---- HTTP --------------------------------------------------------------------------------

    def _list(self, path: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Every row of a list endpoint, page by page; one call when the list fits on a page.

        The spec pages lists with `resourceParameter` (PageNumber, PageSize) and answers a bare
        array, so a page of fewer than PageSize rows (or 204) is the last. PageSize is always sent,
        so that size is known. The spec gives no base for PageNumber, so the first call leaves it
        out (the first page, whatever the base) and the next ones ask 1, 2, ...: pages counting
        from 1 repeat the first page once, pages counting from 0 do not, and rows already read are
        dropped by Id either way (which also drops a row pushed onto the next page by one added
        meanwhile). A full page from page 2 on with nothing new means Go is not paging as the spec
        says: that is an error, not a list that may lack rows.
        """
        base = {**(params or {}), "PageSize": self.page_size}
        rows: list[dict[str, Any]] = list(self._request("GET", path, params=base) or [])
        seen = {_row_key(row) for row in rows}
        number = 1
        page = rows
        while len(page) >= self.page_size:
            page = self._request("GET", path, params={**base, "PageNumber": number}) or []
            fresh = [row for row in page if _row_key(row) not in seen]
            if number > 1 and len(page) >= self.page_size and not fresh:
                raise LedgerTransient(
                    SYSTEM,
                    f"GET {path}: page {number} repeats rows already read, so the whole list cannot be read; "
                    "nothing was decided from it",
                )
            seen.update(_row_key(row) for row in fresh)
            rows += fresh
            number += 1
        return rows

    def _redact(self, text: str) -> str:
        return self._http.redact(text)

    def _fetch_token(self) -> None:
        raw = f"{self._application_key.reveal()}:{self._client_key.reveal()}".encode()
        headers = {
            "Authorization": "Basic " + base64.b64encode(raw).decode("ascii"),
            "Ocp-Apim-Subscription-Key": self._subscription_key.reveal(),
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
            "Accept": "application/json",
        }
        started = self._clock()
        response = self._http.send(
            "POST",
            self.token_url,
            "POST /OAuth/Token",
            headers=headers,
            data=b"grant_type=client_credentials",
            idempotent=True,  # a second token is harmless
        )
        body = json_or_none(response, parse_float=Decimal)
        if response.status_code == 200 and isinstance(body, dict) and body.get("access_token"):
            self._token = Secret(str(body["access_token"]))
            self._token_expires = started + float(body.get("expires_in") or 600)
            log.info("PowerOffice Go access token fetched (expires in %s s)", body.get("expires_in"))
            return
        if response.status_code in (400, 401) and isinstance(body, dict) and body.get("error"):
            raise LedgerAuthError(
                SYSTEM,
                "the application key or the client key was rejected by the token endpoint "
                f"({self._redact(str(body.get('error')))}: {self._redact(str(body.get('error_description') or ''))}); "
                "check both belong to this environment (demo and production keys differ)",
            )
        error = self._judge(response, "POST", "/OAuth/Token")
        if error is not None:
            raise error
        raise LedgerAuthError(SYSTEM, f"the token endpoint answered {response.status_code} without a token")

    def _bearer(self) -> str:
        if self._token is None or self._clock() >= self._token_expires - self.refresh_margin:
            self._fetch_token()
        assert self._token is not None
        return "Bearer " + self._token.reveal()

    def _request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None, body: Any = None) -> Any:
        """One API call: auth, a new token once on 401, GET retries, error mapping; parsed JSON or None."""
        data = encode_json(body).encode("utf-8") if body is not None else None

        def headers() -> dict[str, str]:
            sent = {
                "Accept": "application/json",
                "Authorization": self._bearer(),
                "Ocp-Apim-Subscription-Key": self._subscription_key.reveal(),
            }
            if data is not None:
                sent["Content-Type"] = "application/json; charset=utf-8"
            return sent

        response = self._http.send(
            method,
            self.base_url + path,
            f"{method} {_ID_SEGMENT.sub('/{id}', path)}",
            headers=headers,
            params=params,
            data=data,
            idempotent=method == "GET",
            judge=lambda response: self._judge(response, method, path),
            reauthenticate=self._renew_token,
        )
        return json_or_none(response, parse_float=Decimal) if response.content else None

    def _renew_token(self, response: requests.Response) -> bool:
        """A 401 about the subscription key is not cured by a new token."""
        if _is_subscription_error(response):
            return False
        self._token = None
        return True

    def _judge(self, response: requests.Response, method: str, path: str) -> LedgerError | None:
        """PowerOffice Go's error kinds: 429 (Retry-After or "retry in N seconds"), 5xx transient,
        401 (which key) and 403 (a missing privilege) auth, anything else refused."""
        status = response.status_code
        if 200 <= status < 300:
            return None
        body = json_or_none(response, parse_float=Decimal)
        text = self._error_text(method, path, status, body, response)
        if status == 429:
            wait = _retry_after(response, body)
            return LedgerRateLimited(SYSTEM, f"{text}; retry in {wait:g} s", retry_after=wait)
        if status >= 500:
            return LedgerTransient(SYSTEM, text)
        if status == 401:
            if _is_subscription_error(response):
                culprit = "the subscription key (Ocp-Apim-Subscription-Key) was rejected"
            else:
                culprit = (
                    "the access token was refused after a fresh one was fetched; "
                    "check the application key and client key"
                )
            exc: LedgerError = LedgerAuthError(SYSTEM, f"{culprit} ({text})")
        elif status == 403:
            exc = LedgerAuthError(SYSTEM, f"the integration lacks a privilege for this call ({text})")
        else:
            exc = LedgerValidationError(SYSTEM, text)
        exc.status = status  # type: ignore[attr-defined]
        exc.problem = body if isinstance(body, dict) else {}  # type: ignore[attr-defined]
        return exc

    def _error_text(self, method: str, path: str, status: int, body: Any, response: requests.Response) -> str:
        parts = [f"{method} {path}: {status}"]
        if isinstance(body, dict):
            title = _field(body, "Title") or _field(body, "message") or _field(body, "error")
            detail = _field(body, "Detail") or _field(body, "error_description")
            parts += [str(p) for p in (title, detail) if p]
            errors = _field(body, "Errors")
            if isinstance(errors, dict):
                parts.append(
                    "; ".join(f"{k}: {' '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in errors.items())
                )
        elif response.text:
            parts.append(response.text[:200])
        return self._redact(" ".join(parts))

    # ---- parsing -----------------------------------------------------------------------------

    @staticmethod
    def _raw_lines(data: Mapping[str, Any], in_ledger: bool) -> list[tuple[Any, int, Any, str, Any, Any]]:
        """(AccountId, signed gross øre, VatId, description, DepartmentId, ProjectId) per posting.

        A draft line without its own DepartmentId/ProjectId inherits the header's; -1 means none.
        """
        out: list[tuple[Any, int, Any, str, Any, Any]] = []
        if in_ledger:
            for line in data.get("VoucherLines") or []:
                out.append(
                    (
                        line.get("AccountId"),
                        parse_ore(str(line["CurrencyAmount"])),
                        line.get("VatId"),
                        line.get("Description") or "",
                        line.get("DepartmentId"),
                        line.get("ProjectId"),
                    )
                )
        else:
            for line in data.get("ManualVoucherLines") or []:
                amount = parse_ore(str(line["CurrencyAmount"]))
                dims = [
                    line.get(key) if line.get(key) is not None else data.get(key)
                    for key in ("DepartmentId", "ProjectId")
                ]
                department, project = (None if d == -1 else d for d in dims)
                for side, sign in (("Debit", 1), ("Credit", -1)):
                    if line.get(f"{side}AccountId") is not None:
                        out.append(
                            (
                                line[f"{side}AccountId"],
                                sign * amount,
                                line.get(f"{side}VatId"),
                                line.get("Description") or "",
                                department,
                                project,
                            )
                        )
        if any(account_id is None for account_id, *_ in out):
            raise LedgerValidationError(SYSTEM, f"voucher {data.get('Id')} has a line without an account")
        return out

    def _postings(self, data: Mapping[str, Any], in_ledger: bool) -> tuple[tuple[str, int, str | None], ...]:
        raw = self._raw_lines(data, in_ledger)
        numbers = self._account_numbers(r[0] for r in raw)
        vats = self._vat_codes(r[2] for r in raw)
        return tuple(
            (numbers[account_id], amount, _vat_out(vats.get(vat_id))) for account_id, amount, vat_id, *_ in raw
        )

    def _posted(self, data: Mapping[str, Any]) -> PostedVoucher:
        return PostedVoucher(
            ledger_id=str(data.get("Id")),
            number=str(data.get("VoucherNo") or ""),
            external_ref=str(data.get("ExternalImportReference") or _draft_ref(data.get("Description"))),
            date=dt.date.fromisoformat(str(data.get("VoucherDate"))[:10]),
            postings=self._postings(data, True),
            in_ledger=True,
        )

    def _posted_draft(self, data: Mapping[str, Any]) -> PostedVoucher:
        return PostedVoucher(
            ledger_id=str(data.get("Id")),
            number="",
            external_ref=_draft_ref(data.get("Description")),
            date=dt.date.fromisoformat(str(data.get("VoucherDate"))[:10]),
            postings=self._postings(data, False),
            in_ledger=False,
        )


def _by_voucher(rows: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Account transactions grouped by VoucherId, in the order Go lists them."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(str(row.get("VoucherId")), []).append(row)
    return groups


def _row_key(row: Mapping[str, Any]) -> str:
    """What tells a list row from another: its Id, else the whole row."""
    row_id = row.get("Id")
    return f"id:{row_id}" if row_id is not None else "row:" + json.dumps(row, sort_keys=True, default=str)


def _voucher_date(data: Mapping[str, Any]) -> dt.date:
    return dt.date.fromisoformat(str(data.get("VoucherDate"))[:10])


def _code(row: Mapping[str, Any]) -> str | None:
    code = row.get("VatCode")
    return None if code is None else str(code)


def _gross_postings(rows: list[Mapping[str, Any]]) -> tuple[tuple[str, int, str | None], ...] | None:
    """A voucher's postings as `get` reads its lines (account, signed gross øre, VAT code), or None.

    Go lists a taxed line as a transaction of Amount net plus VatAmount, and the VAT it
    generated as more transactions on the VAT accounts. INFERRED (the spec does not describe
    them): a generated VAT transaction is one whose VAT code has a rate but that carries no
    VatAmount. Those are left out and every other transaction is read gross, Amount + VatAmount.
    The reading is trusted only when the left-out amounts are exactly the VatAmounts and the
    gross postings balance; else None (a taxed line too small to carry VAT, or Go marks its VAT
    rows otherwise).
    """
    vat = [parse_ore(str(r.get("VatAmount") or 0)) for r in rows]
    rated = [Decimal(str(r.get("VatRate") or 0)) > 0 for r in rows]
    generated = [i for i in range(len(rows)) if vat[i] == 0 and rated[i]] if any(vat) else []
    if sum(parse_ore(str(rows[i].get("Amount") or 0)) for i in generated) != sum(vat):
        return None
    postings = tuple(
        (str(r.get("AccountNo")), parse_ore(str(r.get("Amount") or 0)) + vat[i], _vat_out(_code(r)))
        for i, r in enumerate(rows)
        if i not in generated
    )
    return postings if sum(amount for _, amount, _ in postings) == 0 else None


def _again(exc: LedgerTransient, why: str) -> str:
    """A transient error of `reverse`, saying that calling it again is safe and why."""
    return f"{str(exc).removeprefix(SYSTEM + ': ')}; call reverse again, it will not reverse twice ({why})"


def _carries(row: Mapping[str, Any], external_ref: str) -> bool:
    """An account transaction of our voucher: by ExternalImportReference, or a posted draft's " [ref]"."""
    return (
        row.get("ExternalImportReference") == external_ref or _draft_ref(row.get("VoucherDescription")) == external_ref
    )


def _draft_ref(description: Any) -> str:
    match = _DRAFT_REF.search(str(description or ""))
    return match.group(1) if match else ""


def _vat_out(code: str | None) -> str | None:
    return None if code in (None, "", NO_VAT_CODE) else code


def _answer_id(data: Mapping[str, Any], what: str) -> str:
    """The Id of a created voucher; without one the outcome is unknown to us."""
    if not data.get("Id"):
        raise LedgerTransient(SYSTEM, f"{what} answered without an Id; the outcome is unknown, look it up first")
    return str(data["Id"])


def _as_sent(voucher: Voucher, ledger_id: str, number: str, *, in_ledger: bool) -> PostedVoucher:
    """The PostedVoucher a read-back would give, built from what was sent (no call)."""
    return PostedVoucher(
        ledger_id=ledger_id,
        number=number,
        external_ref=voucher.external_ref,
        date=voucher.business_day,
        postings=tuple(
            (line.account.strip(), line.amount, _vat_out((line.vat_code or "").strip())) for line in voucher.lines
        ),
        in_ledger=in_ledger,
    )


def _field(body: Mapping[str, Any], name: str) -> Any:
    """A ProblemDetails field in PascalCase (schema) or camelCase (the spec's examples)."""
    if name in body:
        return body[name]
    return body.get(name[:1].lower() + name[1:])


def _is_subscription_error(response: requests.Response) -> bool:
    body = json_or_none(response, parse_float=Decimal)
    return isinstance(body, dict) and "subscription key" in str(_field(body, "message") or "").lower()


def _is_duplicate_refusal(exc: LedgerValidationError) -> bool:
    status = getattr(exc, "status", None)
    text = str(exc).lower()
    return (
        status in (400, 409)
        and "externalimportreference" in text.replace(" ", "")
        and ("duplicate" in text or "already" in text or status == 409)
    )


def _retry_after(response: requests.Response, body: Any) -> float:
    """Retry-After, else the "retry in N seconds" of the message, else 5 s."""
    if isinstance(body, dict) and not response.headers.get("Retry-After"):
        match = _RETRY_IN.search(str(_field(body, "message") or ""))
        if match:
            return float(match.group(1))
    return retry_after(response, 5.0)
