"""Fiken API v2 client: post a day's voucher as a general journal entry, look it up, read it back.

Plain `requests`, no Airflow. What it does about the API's habits (brief `apis.md` §2):

- Auth: OAuth2. An access token is fetched lazily with the refresh token (Basic client id +
  secret at the token endpoint), renewed shortly before `expires_in` runs out and once when a
  call gets 401. When Fiken answers with a new refresh token (it may rotate them), the client
  switches to it and calls `token_store(new_refresh_token)` so the caller can save it: the old one
  may no longer work. Token values never appear in exceptions, reprs or logs.
- One request at a time: Fiken allows a single concurrent request per user/company and answers
  429 otherwise. The client serialises its own calls with a lock, and with `company_lock` (from a
  connection: `request_lock.one_at_a_time`) those of every process and host posting to the
  company; a 429 on a GET is waited out
  (Retry-After, else 1 s, at most 3 times), a 429 on a POST raises LedgerRateLimited.
- Exactly once: Fiken has no external-id field and no idempotency, so the reference goes into the
  description as "<description> [<external_ref>]" and `find` reads the journal entries of the
  day and matches it. A POST is never retried; after a transient error the caller calls `find`.
- Rendering (see `render` and `pair_lines`): each Fiken line is a debit/credit pair with one
  positive amount, so the voucher's debit and credit postings are matched greedily into pairs.
  Every account gets exactly its voucher amount and VAT code; a line can be split over several
  pairs. A VAT-coded debit (a return, a day of net refunds) is sent NET: the spec says a
  debitAccount amount is net, and Fiken adds the VAT and books net + VAT on the pair's credit
  side, so that side must be an account without a VAT code.
- Lookups (the chart's account codes, the company) live in a `LookupCache` shared by the clients
  of a run; a client whose post is refused clears it. Tokens are never put in it.
- Read-back: PostedVoucher.postings are aggregated per (account, VAT code) in first-seen order,
  signed gross øre, debit positive; VAT code "0" reads back as None. With
  `read_back_after_post=False`, `post` returns the voucher as sent, with the journalEntryId from
  the `Location` header and no voucher number (Fiken's answer has none).
- list_vouchers: `GET /journalEntries?dateGe&dateLt`, all pages; Fiken has no drafts awaiting
  approval, so `include_non_posted` changes nothing (see the method).
- reverse: Fiken's own reversal, `PATCH /transactions/{id}/delete?description=` (a reverse
  transaction, linked as the entry's offsetTransactionId), when `date` is the entry's date and
  its transaction holds it alone; else a counter entry on `date` referenced "<ref>:reversal".
  Never retried; calling it again after a lost answer finds the reversal (see the method).
- Reading the books (`ReadBack`): `postings` reads `GET /journalEntries?dateGe&dateLt` (all pages)
  and splits every VAT-coded line into its net and a VAT row on the code's VAT account
  (`VAT_ACCOUNTS`, see `split_vat`); `balances` reads `GET /accountBalances?date=` (a closing
  balance at a date, all pages) the day before the period and its last day, result accounts
  starting each year at zero (see the method); `accounts` is `GET /accounts`; `vat_codes` is
  Fiken's documented list (no endpoint), the codes of `VAT_CODES`.
- `calls` counts HTTP requests by "METHOD /path" (ids as {id}).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import replace
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import urlsplit

import requests

from kassebro.booking.voucher import Voucher, VoucherLine
from kassebro.core.money import Ore, vat_from_gross
from kassebro.core.saft_codes import standard_vat_codes
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
    in_account_range,
    is_result_account,
    voucher_customers,
)
from kassebro.ledgers.cache import LookupCache
from kassebro.ledgers.http import IN_TASK_RATE_WAIT, HttpClient, LedgerHttp, Secret, json_or_none, retry_after
from kassebro.ledgers.registry import ConnectionParts
from kassebro.ledgers.request_lock import one_at_a_time

log = logging.getLogger(__name__)

SYSTEM = "Fiken"
API_FLAG = "Fri postering registrert via API: "
DESCRIPTION_MAX = 200  # including API_FLAG, which Fiken adds
MAX_RATE_LIMIT_WAITS = 3
DEFAULT_RETRY_AFTER = 1.0
TOKEN_MARGIN_SECONDS = 60.0
PAGE_SIZE = 100
PRODUCTION_API = "https://api.fiken.no/api/v2"
PRODUCTION_TOKEN_URL = "https://fiken.no/oauth/token"
# Standard (SAF-T) tax codes kassebro uses -> Fiken VAT codes. Fiken's codes are the Sticos
# codes, numerically the same as the standard ones: 3 HIGH, 31 MEDIUM, 33 LOW, 5 EXEMPT,
# 6 OUTSIDE, 0 NONE; purchase codes 1, 11, 13 for completeness.
VAT_CODES: dict[str, int] = {"0": 0, "3": 3, "31": 31, "33": 33, "5": 5, "6": 6, "1": 1, "11": 11, "13": 13}
# Fiken's own name (its VAT type, spec `info.description`, "VAT Code") of each code above, for
# `vat_codes`: Fiken's VAT codes are a fixed documented list and the API has no endpoint for them.
VAT_TYPE_NAMES: dict[int, str] = {
    0: "NONE (Ingen)",
    3: "HIGH (Høy, salg)",
    31: "MEDIUM (Middels, salg)",
    33: "LOW (Lav, salg)",
    5: "EXEMPT (Fritatt)",
    6: "OUTSIDE (Utenfor)",
    1: "HIGH (Høy, kjøp)",
    11: "MEDIUM (Middels, kjøp)",
    13: "LOW (Lav, kjøp)",
}
# The account Fiken books a line's VAT on, per standard code with a rate in VAT_CODES. INFERRED:
# the spec names no VAT account; these are NS 4102's (Fiken's chart is NS 4102, hjelp.fiken.no),
# as the sandbox's chart has them. One third-party note of a real Fiken transaction shows a
# high-rate sale's VAT on 2701: verify on a Fiken test company before production.
VAT_ACCOUNTS: dict[str, str] = {"3": "2700", "31": "2701", "33": "2702", "1": "2710", "11": "2711", "13": "2712"}
_FROM_FIKEN: dict[str, str] = {str(fiken): code for code, fiken in VAT_CODES.items()}  # read lines -> standard
ACCOUNT_CODE = re.compile(r"^\d{4}(:\d{5})?$")
CUSTOMER_ACCOUNT = "1500"
"""Kundefordringer: in Fiken only as each customer contact's sub-account `1500:NNNNN`."""
_LOCATION_ID = re.compile(r"/journalEntries/(\d+)/?$")
_ID_SEGMENT = re.compile(r"/\d+(?=/|$)")
_SLUG_SEGMENT = re.compile(r"^/companies/[^/]+")


class FikenClient(HttpClient):
    """A Ledger for one Fiken company.

    Args:
      base_url: API root, "https://api.fiken.no/api/v2" or a sandbox "http://127.0.0.1:8901"
        ("/api/v2" is added when missing).
      company_slug: the company's slug (GET /companies lists them).
      client_id, client_secret: the OAuth2 app's credentials.
      refresh_token: the user's refresh token for this app.
      token_store: called with a new refresh token whenever Fiken issues one; save it, the old
        one may be invalid from now on.
      token_url: the OAuth2 token endpoint (default fiken.no's for the production API, else
        "<host>/oauth/token" of base_url, as the sandbox serves it).
      session, timeout, get_retries, retry_backoff, max_rate_wait: as in TripletexClient.
      cache: the run's lookups (one per connection and company, `cache.cache_path`); None makes
        an in-memory one for this client.
      read_back_after_post: after the POST, GET the journal entry the `Location` header names,
        to return it as Fiken holds it (one call more per voucher).
      company_lock: makes the context each request runs in, one at a time for the company across
        processes and hosts (`request_lock.one_at_a_time`); None: only this client's threads.
      token_lock, token_source: a refresh token is spent when used and Fiken hands out the next
        one, so clients of one grant in several processes must rotate it one at a time, each from
        the newest: a refresh runs inside `token_lock()` and first reads `token_source()` (the
        newest kept, None: the one it holds).
    """

    system = SYSTEM

    def __init__(
        self,
        base_url: str,
        company_slug: str,
        *,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        token_store: Callable[[str], None] | None = None,
        token_url: str | None = None,
        session: requests.Session | None = None,
        timeout: float = 30.0,
        get_retries: int = 2,
        retry_backoff: float = 0.5,
        max_rate_wait: float = 10.0,
        cache: LookupCache | None = None,
        read_back_after_post: bool = True,
        company_lock: Callable[[], AbstractContextManager[Any]] | None = None,
        token_lock: Callable[[], AbstractContextManager[Any]] | None = None,
        token_source: Callable[[], str | None] | None = None,
    ) -> None:
        base = base_url.rstrip("/")
        self.base_url = base if base.endswith("/api/v2") else base + "/api/v2"
        if token_url is None:
            parts = urlsplit(self.base_url)
            token_url = (
                PRODUCTION_TOKEN_URL
                if parts.hostname == "api.fiken.no"
                else f"{parts.scheme}://{parts.netloc}/oauth/token"
            )
        self.token_url = token_url
        self.company_slug = company_slug
        self._client_id = Secret(client_id)
        self._client_secret = Secret(client_secret)
        self._refresh_token = Secret(refresh_token)
        self._access_token: Secret | None = None
        self._access_expires = 0.0
        self.token_store = token_store
        self._http = LedgerHttp(
            SYSTEM,
            session=session,
            timeout=timeout,
            get_retries=get_retries,
            retry_backoff=retry_backoff,
            max_rate_wait=max_rate_wait,
            secrets=lambda: (self._client_id, self._client_secret, self._refresh_token, self._access_token),
        )
        self.cache = cache if cache is not None else LookupCache()
        self.read_back_after_post = read_back_after_post
        self._lock = threading.RLock()
        self.company_lock = company_lock
        self.token_lock = token_lock
        self.token_source = token_source
        self._fetched: set[str] = set()  # cache tables this client read from Fiken itself

    # ---- housekeeping ------------------------------------------------------------------------

    @classmethod
    def from_connection(cls, parts: ConnectionParts, *, company: str | None = None, **_: Any) -> FikenClient:
        """The client an Airflow connection describes: login/password = the OAuth app, extra
        `refresh_token` (the newest rotation, which the hook keeps), the company = the vendor's."""
        slug = company or str(parts.extras.get("company_slug") or "")
        return cls(
            parts.base_url,
            slug,
            client_id=parts.login,
            client_secret=parts.password,
            refresh_token=str(parts.extras.get("refresh_token") or ""),
            token_store=parts.keep,
            token_url=str(parts.extras.get("token_url") or "") or parts.token_url,
            session=parts.session,
            timeout=parts.timeout,
            max_rate_wait=min(IN_TASK_RATE_WAIT, 10.0),
            cache=parts.cache(slug),
            read_back_after_post=False,
            company_lock=functools.partial(one_at_a_time, SYSTEM, f"fiken:{slug}") if slug else None,
            token_lock=functools.partial(one_at_a_time, SYSTEM, f"fiken-token:{parts.grant}") if parts.grant else None,
            token_source=parts.newest,
        )

    def __repr__(self) -> str:
        return f"FikenClient(base_url={self.base_url!r}, company_slug={self.company_slug!r})"

    @property
    def company_path(self) -> str:
        return f"/companies/{self.company_slug}"

    # ---- the Ledger protocol -----------------------------------------------------------------

    def test_connection(self) -> str:
        """Read the company from Fiken (never from the cache: this proves the credentials); refuses a
        company without the API module. Without a company (the Airflow UI's Test button knows no
        vendor) it lists the companies the token reaches."""
        if not self.company_slug:
            companies = self._all_pages("/companies", {})
            if not companies:
                raise LedgerAuthError(SYSTEM, "the token reaches no company")
            names = ", ".join(f"{c.get('name')} ({c.get('slug')})" for c in companies)
            return f"Connected to Fiken; companies: {names}"
        company = self.company(refresh=True)
        if company.get("hasApiAccess") is False:
            raise LedgerAuthError(
                SYSTEM, f"company {self.company_slug!r} does not have the API module active (hasApiAccess false)"
            )
        return f"Connected to Fiken as {company.get('name')}"

    def find(self, external_ref: str, date: dt.date) -> PostedVoucher | None:
        """The journal entry of `date` whose description ends with "[external_ref]", or None.

        Fiken can only filter by date, so the date is required. More than one match means the
        day is in the books twice: that raises, for a person to sort out.
        """
        tag = _ref_tag(external_ref)
        entries = self._all_pages(f"{self.company_path}/journalEntries", {"date": date.isoformat()})
        found = [e for e in entries if str(e.get("description") or "").rstrip().endswith(tag)]
        if not found:
            return None
        if len(found) > 1:
            ids = ", ".join(str(e.get("journalEntryId")) for e in found)
            raise LedgerValidationError(
                SYSTEM,
                f"{len(found)} journal entries on {date} carry {tag} (ids {ids}); "
                "the day is posted more than once, resolve it in Fiken",
            )
        return self._posted(found[0])

    def get(self, ledger_id: str) -> PostedVoucher:
        """Read one journal entry back by its journalEntryId."""
        return self._posted(self._entry(ledger_id))

    def list_vouchers(
        self, date_from: dt.date, date_to: dt.date, *, include_non_posted: bool = False
    ) -> list[PostedVoucher]:
        """Every journal entry dated date_from <= date < date_to (`dateGe`/`dateLt`), all pages.

        Ours carry their reference, others' have external_ref "" (no "[ref]" at the end of the
        description). `include_non_posted` changes nothing: Fiken has no journal entries awaiting
        approval. An `open` entry (`post(send_to_ledger=False)`) is booked like any other, only
        deletable without a counter entry, and the read model does not even say which entries are
        open; so every entry is listed, in_ledger True. A deleted transaction's entries stay
        listed next to the entries of its balancing transaction, as Fiken keeps both: both are
        marked `cancelled`, and the balancing entries carry the deleted one's reference (they are
        linked by its `offsetTransactionId`; the person's delete text is their description).
        """
        entries = self._entries(date_from, date_to)
        cancelled = _cancelled_by(entries)
        found = []
        for entry in entries:
            posted = self._posted(entry)
            ref = cancelled.get(entry.get("transactionId"))
            if entry.get("offsetTransactionId") or ref is not None:
                posted = replace(posted, external_ref=posted.external_ref or ref or "", cancelled=True)
            found.append(posted)
        return found

    def _entries(self, date_from: dt.date, date_to: dt.date) -> list[dict[str, Any]]:
        """The journal entries dated date_from <= date < date_to (`dateGe`/`dateLt`: the spec has both
        filters, so the end stays exclusive as kassebro has it), all pages."""
        if date_to <= date_from:
            return []
        params = {"dateGe": date_from.isoformat(), "dateLt": date_to.isoformat()}
        return self._all_pages(f"{self.company_path}/journalEntries", params)

    def reverse(self, ledger_id: str, date: dt.date) -> PostedVoucher:
        """Reverse a journal entry on `date`; returns the reversing entry. Never retried.

        Fiken's own reversal is `PATCH /transactions/{id}/delete`: it flags the transaction
        deleted, books a reverse transaction and links it as the entry's offsetTransactionId. It
        takes no date and reverses the whole transaction, so it is used when `date` is the
        entry's own date (the reverse transaction is then dated as the original: INFERRED, the
        spec does not say) and the transaction holds this entry alone. Otherwise a counter
        general journal entry on `date`, every posting negated, referenced "<ref>:reversal"
        ("fiken-<id>:reversal" for an entry without our reference), looked up with `find` first.

        Safe after a lost answer: an entry whose transaction is already deleted returns its
        balancing entry, and a counter entry is found by its reference, so calling again never
        reverses twice.
        """
        entry = self._entry(ledger_id)
        original = self._posted(entry)
        if entry.get("offsetTransactionId"):
            return self._balancing_entry(entry["offsetTransactionId"], original)
        ref = f"{original.external_ref or f'fiken-{original.ledger_id}'}:reversal"
        _ref_tag(ref)
        if date == original.date and entry.get("transactionId") is not None:
            transaction = self._request("GET", f"{self.company_path}/transactions/{int(entry['transactionId'])}") or {}
            if len(transaction.get("entries") or []) == 1:
                return self._cancel(entry, original, ref)
        return self._counter_entry(original, ref, date)

    def post(self, voucher: Voucher, send_to_ledger: bool = True) -> PostedVoucher:
        """POST the voucher as one general journal entry (never retried), then read it back if asked.

        `send_to_ledger=False` posts it `open`: booked, but deletable without a counter entry.
        A refusal clears the lookup cache, so the retry reads a chart that may have changed.
        """
        try:
            return self._post(voucher, send_to_ledger)
        except LedgerValidationError:
            self.cache.clear()
            raise

    def _post(self, voucher: Voucher, send_to_ledger: bool) -> PostedVoucher:
        body = self.render(voucher, open_entry=not send_to_ledger)
        response = self._request("POST", f"{self.company_path}/generalJournalEntries", body=body, raw=True)
        location = response.headers.get("Location", "")
        entry_id = _LOCATION_ID.search(urlsplit(location).path)
        if not self.read_back_after_post and entry_id:
            return _as_sent(voucher, entry_id.group(1))
        try:
            data = self._request("GET", location) if location else None
        except LedgerTransient as exc:
            raise LedgerTransient(
                SYSTEM,
                f"posted ({location}), but reading it back failed "
                f"({str(exc).removeprefix(SYSTEM + ': ')}); look it up with find()",
            ) from None
        if data is None:
            found = self.find(voucher.external_ref, voucher.business_day)
            if found is None:
                raise LedgerTransient(SYSTEM, "posted, but no Location header and find() does not see it yet")
            return found
        if isinstance(data, dict) and isinstance(data.get("entries"), list) and data["entries"]:
            data = data["entries"][0]  # a Location pointing at the transaction
        return self._posted(data)

    def _entry(self, ledger_id: str) -> dict[str, Any]:
        entry_id = str(ledger_id).strip()
        if not entry_id.isdigit():
            raise LedgerValidationError(SYSTEM, f"not a Fiken journalEntryId: {ledger_id!r}")
        entry = self._request("GET", f"{self.company_path}/journalEntries/{entry_id}")
        if not isinstance(entry, dict):
            raise LedgerTransient(SYSTEM, f"journal entry {entry_id}: unexpected answer")
        return entry

    def _cancel(self, entry: Mapping[str, Any], original: PostedVoucher, ref: str) -> PostedVoucher:
        """Fiken's own reversal: delete the entry's transaction, return the balancing entry."""
        description = f"Reversering av bilag {original.number or original.ledger_id} [{ref}]"
        path = f"{self.company_path}/transactions/{int(entry['transactionId'])}/delete"
        try:
            answer = self._request("PATCH", path, params={"description": description}) or {}
        except LedgerTransient as exc:
            raise LedgerTransient(SYSTEM, _again(exc, "Fiken links the reversal to the entry")) from None
        offsets = [
            e.get("offsetTransactionId")
            for e in answer.get("entries") or []
            if isinstance(e, dict) and str(e.get("journalEntryId")) == original.ledger_id
        ]
        offset = offsets[0] if offsets else None
        if not offset:  # an answer without the link: the entry has it
            offset = self._entry(original.ledger_id).get("offsetTransactionId")
        if not offset:
            raise LedgerTransient(
                SYSTEM,
                f"deleted the transaction of journal entry {original.ledger_id}, but Fiken names no balancing "
                "transaction (offsetTransactionId); look at the entry in Fiken",
            )
        return self._balancing_entry(offset, original)

    def _balancing_entry(self, offset: Any, original: PostedVoucher) -> PostedVoucher:
        """The entry of the balancing transaction that reverses `original` (the one entry, or the one negating it)."""
        transaction = self._request("GET", f"{self.company_path}/transactions/{int(offset)}") or {}
        entries = [self._posted(e) for e in transaction.get("entries") or [] if isinstance(e, dict)]
        negated = {(account, vat): -amount for account, amount, vat in original.postings}
        matching = [e for e in entries if {(a, v): amount for a, amount, v in e.postings} == negated]
        if matching or len(entries) == 1:
            return (matching or entries)[0]
        raise LedgerValidationError(
            SYSTEM,
            f"journal entry {original.ledger_id} is reversed by transaction {offset}, but none of its "
            f"{len(entries)} entries is the reversal of it; look at it in Fiken",
        )

    def _counter_entry(self, original: PostedVoucher, ref: str, date: dt.date) -> PostedVoucher:
        """A counter general journal entry on `date`: the original's postings negated, found first by `ref`."""
        found = self.find(ref, date)
        if found is not None:
            return found
        lines = tuple(VoucherLine(account, -amount, vat) for account, amount, vat in original.postings)
        if not lines:
            raise LedgerValidationError(SYSTEM, f"journal entry {original.ledger_id} has no postings to reverse")
        voucher = Voucher(
            vendor_id="",
            business_day=date,
            external_ref=ref,
            description=f"Reversering av bilag {original.number or original.ledger_id}",
            lines=lines,
        )
        try:
            return self.post(voucher)
        except LedgerTransient as exc:
            raise LedgerTransient(SYSTEM, _again(exc, f"find() sees the counter entry by [{ref}]")) from None

    # ---- read-back ---------------------------------------------------------------------------

    def postings(
        self, date_from: dt.date, date_to: dt.date, *, accounts: tuple[int, int] | None = None
    ) -> list[LedgerPosting]:
        """Every posting dated date_from <= date < date_to, whoever booked it: each line of the
        journal entries (`GET /journalEntries?dateGe&dateLt`, all pages), split into its net and
        the VAT Fiken books on the code's VAT account (`split_vat`; the VAT row is
        `system_generated`, without a VAT code). `accounts` keeps the postings whose 4-digit
        account number is in the range (sub-accounts included): Fiken cannot filter journal
        entries by account, so the whole period is read and filtered here.

        A deleted transaction's entries are listed with those of its reverse transaction, as
        Fiken keeps both: they cancel out, as they do in `balances`. The reverse transaction's
        postings carry the deleted entry's reference, so the pair is seen as one day's.
        """
        entries = self._entries(date_from, date_to)
        cancelled = _cancelled_by(entries)
        found = []
        for entry in entries:
            ref = cancelled.get(entry.get("transactionId"))
            for p in self._entry_postings(entry):
                if in_account_range(p.account, accounts):
                    found.append(replace(p, external_ref=p.external_ref or ref) if ref else p)
        return found

    def balances(
        self, date_from: dt.date, date_to: dt.date, *, accounts: tuple[int, int] | None = None
    ) -> list[AccountBalance]:
        """Each account's opening, movement and closing for date_from <= date < date_to, from
        `GET /accountBalances?date=` (the closing balance at a date, that day's postings
        included; all pages; `fromAccount`/`toAccount` when `accounts` is given).

        opening = the balance the day before date_from, closing = the balance on date_to - 1 day,
        movement = closing - opening. Result accounts (3000-8999) start each year at zero in
        Fiken's balances (INFERRED, as the sandbox and the other systems' sandboxes have it), so
        for them the opening is 0 when date_from is 1 January, and a period across New Year adds
        up each year's part (the balance on 31 December, one call per year end crossed): their
        closing is then opening + movement, the period's own sum, not the new year's balance.
        Accounts with neither balance nor movement are left out.
        """
        if date_to <= date_from:
            return []
        first, last = date_from - dt.timedelta(days=1), date_to - dt.timedelta(days=1)
        days = {first, last} | {dt.date(year, 12, 31) for year in range(date_from.year, last.year)}
        at = {day: self._balances_at(day, accounts) for day in sorted(days)}
        names: dict[str, str] = {}
        for rows in at.values():
            names.update({code: name for code, (name, _) in rows.items()})

        def balance(code: str, day: dt.date) -> Ore:
            return at[day].get(code, ("", 0))[1]

        found = []
        for code in sorted(names):
            if is_result_account(code):
                opening = balance(code, first) if first.year == date_from.year else 0
                movement, start = 0, opening
                for year in range(date_from.year, last.year + 1):
                    end = last if year == last.year else dt.date(year, 12, 31)
                    movement += balance(code, end) - start
                    start = 0
            else:
                opening = balance(code, first)
                movement = balance(code, last) - opening
            if opening or movement:
                found.append(AccountBalance(code, names[code], opening, movement, opening + movement))
        return found

    def accounts(self) -> list[LedgerAccount]:
        """The chart of accounts of the current year (`GET /accounts`, all pages). Fiken's account
        has a code and a name only: every account is active, with no VAT code and no lock. Also
        refreshes the cached chart `render` checks accounts against."""
        return [LedgerAccount(code, name) for code, name in self._chart().items()]

    def vat_codes(self) -> list[LedgerVatCode]:
        """The VAT codes kassebro books with in Fiken, as standard codes (`VAT_CODES`).

        Fiken has no endpoint for its VAT codes: they are a fixed, documented list (spec
        `info.description`, "VAT Code": codes 0/7, 1/3, 11/31, 12/32, 13/33, 5, 6, 51, 52 and the
        purchase-only ones), based on Sticos's and numbered as the standard codes. The rate is the
        standard code's current rate.
        """
        found = []
        for code, fiken_code in VAT_CODES.items():
            standard = standard_vat_codes().get(code)
            rate_bp = (standard.rate_bp or 0) if standard is not None else 0
            found.append(LedgerVatCode(code, str(fiken_code), VAT_TYPE_NAMES[fiken_code], Decimal(rate_bp) / 100))
        return found

    def _balances_at(self, day: dt.date, accounts: tuple[int, int] | None) -> dict[str, tuple[str, Ore]]:
        """Account code -> (name, balance in øre) on `day`, that day included, all pages."""
        params: dict[str, Any] = {"date": day.isoformat()}
        if accounts:
            params.update(fromAccount=accounts[0], toAccount=accounts[1])
        found: dict[str, tuple[str, Ore]] = {}
        for row in self._all_pages(f"{self.company_path}/accountBalances", params):
            balance = row.get("balance")
            if row.get("code") is None or isinstance(balance, bool) or not isinstance(balance, int):
                raise LedgerTransient(SYSTEM, f"accountBalances on {day}: unexpected row (no code or no øre balance)")
            found[str(row["code"])] = (str(row.get("name") or ""), balance)
        return found

    def _entry_postings(self, entry: Any) -> list[LedgerPosting]:
        """A journal entry's lines as LedgerPostings: each line's net, then its VAT row if any."""
        if not isinstance(entry, dict) or "journalEntryId" not in entry:
            raise LedgerTransient(SYSTEM, "unexpected answer: not a journal entry")
        entry_id = str(entry["journalEntryId"])
        description = str(entry.get("description") or "")
        common = {
            "voucher_id": entry_id,
            "voucher_number": str(entry.get("journalEntryNumber") or ""),
            "date": dt.date.fromisoformat(str(entry.get("date"))[:10]),
            "description": description,
            "external_ref": _description_ref(description),
        }
        found = []
        for line in entry.get("lines") or []:
            amount = line.get("amount") if isinstance(line, dict) else None
            if amount is None or isinstance(amount, bool) or not isinstance(amount, int) or line.get("account") is None:
                raise LedgerTransient(SYSTEM, f"journal entry {entry_id}: incomplete line")
            account = str(line["account"])
            code = _standard_code(line.get("vatCode"))
            vat, vat_account = split_vat(amount, code)
            if vat and vat_account is None:
                raise LedgerValidationError(
                    SYSTEM,
                    f"journal entry {entry_id}, account {account}: kassebro does not know the account Fiken books "
                    f"the VAT of code {code} on, so it cannot split the line into net and VAT (it knows "
                    f"{', '.join(VAT_ACCOUNTS)})",
                )
            found.append(LedgerPosting(account=account, amount=amount - vat, gross=amount, vat_code=code, **common))
            if vat and vat_account is not None:
                found.append(
                    LedgerPosting(
                        account=vat_account, amount=vat, gross=vat, vat_code=None, system_generated=True, **common
                    )
                )
        return found

    def _chart(self) -> dict[str, str]:
        """Account code -> name, the current year's chart, read page by page (the spec gives
        `/accounts` page and pageSize, though its overview table calls it not paginated; a server
        that does not page answers with everything on one page), and cached."""
        values = self._all_pages(f"{self.company_path}/accounts", {})
        chart = {str(v["code"]): str(v.get("name") or "") for v in values if v.get("code") is not None}
        self.cache.put("accounts", chart)
        self._fetched.add("accounts")
        return chart

    # ---- more than the protocol --------------------------------------------------------------

    def company(self, *, refresh: bool = False) -> dict[str, Any]:
        """GET /companies/{slug} (cached; `refresh` reads it again)."""
        company = None if refresh else self.cache.get("company", self.company_slug)
        if not isinstance(company, dict):
            company = self._request("GET", self.company_path) or {}
            self.cache.put("company", {self.company_slug: company})
        return dict(company)

    def account_codes(self, *, refresh: bool = False) -> set[str]:
        """All account codes of the company's chart for the current year (cached; `refresh` reads it again)."""
        codes = self.cache.table("accounts")
        if refresh or not codes:
            codes = self._chart()
        return set(codes)

    @staticmethod
    def description(voucher: Voucher) -> str:
        """ "<description> [<external_ref>]", the description shortened to fit with Fiken's flag."""
        tag = _ref_tag(voucher.external_ref)
        room = DESCRIPTION_MAX - len(API_FLAG) - len(tag) - 1
        if room < 1:
            raise LedgerValidationError(
                SYSTEM, f"external reference {voucher.external_ref!r} is too long for Fiken's description"
            )
        text = " ".join(voucher.description.split()) or "Dagsoppgjør"
        if len(text) > room:
            text = text[: room - 1].rstrip() + "…"
        return f"{text} {tag}"

    def render(self, voucher: Voucher, *, open_entry: bool = False, check_accounts: bool = True) -> dict[str, Any]:
        """The generalJournalEntryRequest for a voucher: one journal entry of debit/credit pairs (see `pair_lines`)."""
        if not voucher.lines:
            raise LedgerValidationError(SYSTEM, f"voucher {voucher.external_ref} has no lines")
        voucher = self._on_contacts(voucher)
        problems = []
        for line in voucher.lines:
            if not ACCOUNT_CODE.match(line.account):
                problems.append(f"account {line.account!r} is not a Fiken account code (dddd or dddd:ddddd)")
            if line.vat_code is not None and line.vat_code not in VAT_CODES:
                problems.append(f"VAT code {line.vat_code!r} on account {line.account} has no Fiken VAT code")
            if line.department or line.project:
                problems.append(
                    f"line on account {line.account} has a department/project: Fiken journal entries cannot"
                )
        if problems:
            raise LedgerValidationError(SYSTEM, "; ".join(dict.fromkeys(problems)))
        if check_accounts:
            wanted = {line.account for line in voucher.lines}
            missing = wanted - self.account_codes()
            if missing and "accounts" not in self._fetched:  # the cached chart may predate a new account
                missing = wanted - self.account_codes(refresh=True)
            if missing:
                raise LedgerValidationError(SYSTEM, f"accounts not in the Fiken chart: {', '.join(sorted(missing))}")
        lines = pair_lines(voucher)
        description = self.description(voucher)
        return {
            "description": description,
            "open": open_entry,
            "journalEntries": [{"description": description, "date": voucher.business_day.isoformat(), "lines": lines}],
        }

    # ---- customers (credit sales on the customer ledger) --------------------------------------

    def _on_contacts(self, voucher: Voucher) -> Voucher:
        """The voucher with each line that names a POS customer moved to that customer's own
        reskontro account (`1500:NNNNN`, the Fiken contact's `customerAccountCode`)."""
        customers, _start = voucher_customers(voucher)
        if not customers:
            return voucher
        codes = {key: self.contact_account(voucher.vendor_id, key, who) for key, who in customers.items()}
        lines = tuple(
            dataclasses.replace(line, account=codes[line.customer], customer=None) if line.customer else line
            for line in voucher.lines
        )
        return dataclasses.replace(voucher, lines=lines)

    def contact_account(self, vendor_id: str, key: str, customer: Any) -> str:
        """The customer account of the Fiken contact for a POS customer: the contact carrying our
        key in `memberNumberString` ("<vendor>:<POS customer id>", Fiken's field for connecting a
        contact to one's own data), else one with the organisation number, then the e-mail (an
        inactive match only is refused), else a new customer contact with our key. Cached.

        INFERRED: `memberNumberString` (write-only in the spec, a filter on `GET /contacts`) takes
        any string and filters exactly; Fiken numbers a new customer contact and gives it
        `customerAccountCode` "1500:NNNNN", which journal entries may then use.
        """
        member = f"{vendor_id}:{key}"[:200]
        cached = self.cache.get("contacts", member)
        if cached:
            return str(cached)
        path = f"{self.company_path}/contacts"
        found = self._all_pages(path, {"memberNumberString": member, "customer": "true"})
        if not found and customer.org_number:
            found = self._all_pages(path, {"organizationNumber": customer.org_number, "customer": "true"})
        if not found and customer.email:
            found = self._all_pages(path, {"email": customer.email, "customer": "true"})
        active = [c for c in found if not c.get("inactive") and c.get("customerAccountCode")]
        if found and not active:
            names = ", ".join(str(c.get("name")) for c in found)
            raise LedgerValidationError(
                SYSTEM,
                f"the customer {customer.name!r} matches only inactive Fiken contacts ({names}); "
                "activate one in Fiken (or change the customer in the POS), then try again",
            )
        contact = active[0] if active else self._create_contact(path, member, customer)
        code = str(contact.get("customerAccountCode") or "")
        if not ACCOUNT_CODE.match(code):
            raise LedgerTransient(SYSTEM, f"contact {contact.get('contactId')} has no customer account yet")
        self.cache.put("contacts", {member: code})
        self.cache.put("accounts", {code: str(contact.get("name") or "")})  # a new sub-account of the chart
        return code

    def _create_contact(self, path: str, member: str, customer: Any) -> dict[str, Any]:
        """POST a customer contact (never resent: a lost answer is found by `memberNumberString`)."""
        body: dict[str, Any] = {"name": customer.name, "customer": True, "memberNumberString": member}
        if customer.org_number:
            body["organizationNumber"] = customer.org_number
        if customer.email:
            body["email"] = customer.email
        if customer.address1 or customer.city:
            body["address"] = {
                "streetAddress": customer.address1,
                "postCode": customer.postcode,
                "city": customer.city,
                "country": "Norge",
            }
        response = self._request("POST", path, body=body, raw=True)
        location = response.headers.get("Location", "")
        if location:
            contact = self._request("GET", location)
            if isinstance(contact, dict):
                return contact
        found = self._all_pages(path, {"memberNumberString": member, "customer": "true"})
        if not found:
            raise LedgerTransient(SYSTEM, f"created a contact for {customer.name!r}, but cannot read it back yet")
        return found[0]

    # ---- HTTP --------------------------------------------------------------------------------

    def _redact(self, text: str) -> str:
        return self._http.redact(text)

    def _refresh(self) -> None:
        """Get an access token with the newest refresh token; store a rotated refresh token."""
        with self.token_lock() if self.token_lock else contextlib.nullcontext():
            newest = self.token_source() if self.token_source is not None else None
            if newest:
                self._refresh_token = Secret(newest)
            self._exchange_refresh_token()

    def _exchange_refresh_token(self) -> None:
        response = self._http.send(
            "POST",
            self.token_url,
            "POST /oauth/token",
            headers={"Accept": "application/json"},
            data={"grant_type": "refresh_token", "refresh_token": self._refresh_token.reveal()},
            auth=(self._client_id.reveal(), self._client_secret.reveal()),
            idempotent=False,  # a refresh token may be spent by a request whose answer is lost
        )
        body = json_or_none(response)
        error = str((body or {}).get("error") or "") if isinstance(body, dict) else ""
        detail = self._redact(str((body or {}).get("error_description") or "")) if isinstance(body, dict) else ""
        if response.status_code >= 500:
            raise LedgerTransient(SYSTEM, f"token refresh: {response.status_code}")
        if response.status_code == 429:
            wait = retry_after(response, DEFAULT_RETRY_AFTER)
            raise LedgerRateLimited(SYSTEM, "token refresh: rate limited", retry_after=wait)
        if response.status_code == 401 or error == "invalid_client":
            raise LedgerAuthError(
                SYSTEM,
                f"the OAuth client id/secret were rejected ({error or response.status_code}): check the app's "
                "credentials in Fiken (Rediger konto -> API)",
            )
        if response.status_code != 200 or error:
            raise LedgerAuthError(
                SYSTEM,
                f"the refresh token was rejected ({error or response.status_code}: {detail or 'no detail'}): it is "
                "expired, revoked or already used; authorize the app again to get a new one",
            )
        access = str((body or {}).get("access_token") or "")
        if not access:
            raise LedgerAuthError(SYSTEM, "token refresh answered without an access token")
        self._access_token = Secret(access)
        expires_in = float((body or {}).get("expires_in") or 3600)
        self._access_expires = time.monotonic() + max(0.0, expires_in - TOKEN_MARGIN_SECONDS)
        new_refresh = str((body or {}).get("refresh_token") or "")
        if new_refresh and new_refresh != self._refresh_token.reveal():
            self._refresh_token = Secret(new_refresh)
            log.info("Fiken issued a new refresh token")
            if self.token_store is not None:
                self.token_store(new_refresh)

    def _authorization(self) -> str:
        if self._access_token is None or time.monotonic() >= self._access_expires:
            self._refresh()
        assert self._access_token is not None
        return "Bearer " + self._access_token.reveal()

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        raw: bool = False,
    ) -> Any:
        """One API call, serialised per client, with auth, GET retries and error mapping."""
        with self._lock, self.company_lock() if self.company_lock else contextlib.nullcontext():
            return self._request_locked(method, path, params=params, body=body, raw=raw)

    def _request_locked(self, method: str, path: str, *, params: Mapping[str, Any] | None, body: Any, raw: bool) -> Any:
        url = path if path.startswith(("http://", "https://")) else self.base_url + path
        sub_path = urlsplit(url).path.removeprefix(urlsplit(self.base_url).path)
        data = json.dumps(body, ensure_ascii=False).encode("utf-8") if body is not None else None

        def headers() -> dict[str, str]:
            sent = {"Accept": "application/json", "Authorization": self._authorization()}
            if data is not None:
                sent["Content-Type"] = "application/json"
            return sent

        response = self._http.send(
            method,
            url,
            f"{method} {_ID_SEGMENT.sub('/{id}', _SLUG_SEGMENT.sub('/companies/{slug}', sub_path))}",
            headers=headers,
            params=params,
            data=data,
            idempotent=method == "GET",
            judge=lambda response: self._judge(method, sub_path, response),
            reauthenticate=self._renew_access,
        )
        if raw:
            return response
        return json_or_none(response) if response.content else None

    def _renew_access(self, response: requests.Response) -> bool:
        self._access_token = None
        return True

    def _judge(self, method: str, sub_path: str, response: requests.Response) -> LedgerError | None:
        """Fiken's error kinds: 429 = another request of this company is running (Retry-After),
        5xx transient, 401/403 auth (with what to check), anything else refused."""
        status = response.status_code
        if 200 <= status < 300:
            return None
        if status == 429:
            wait = retry_after(response, DEFAULT_RETRY_AFTER)
            return LedgerRateLimited(
                SYSTEM,
                f"{method} {sub_path}: 429, Fiken allows one request at a time; retry in {wait:g} s",
                retry_after=wait,
            )
        error = self._error_text(method, sub_path, response)
        if status >= 500:
            return LedgerTransient(SYSTEM, error)
        if status == 401:
            return LedgerAuthError(SYSTEM, f"{error}: a fresh access token was rejected too")
        if status == 403:
            return LedgerAuthError(
                SYSTEM,
                f"{error}: no access to company {self.company_slug!r}; the API module may not be active "
                "(hasApiAccess) or the user has not given the app access to this company",
            )
        return LedgerValidationError(SYSTEM, error)

    def _error_text(self, method: str, path: str, response: requests.Response) -> str:
        """ "POST /companies/x/generalJournalEntries: 400 <Fiken's message>" (redacted)."""
        body = json_or_none(response)
        parts = [f"{method} {path}: {response.status_code}"]
        if isinstance(body, dict):
            for name in ("error_description", "message", "error"):
                if body.get(name):
                    parts.append(str(body[name]))
                    break
        elif response.text:
            parts.append(response.text[:200])
        return self._redact(" ".join(parts))

    def _all_pages(self, path: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        values: list[dict[str, Any]] = []
        page = 0
        while True:
            response = self._request("GET", path, params={**params, "page": page, "pageSize": PAGE_SIZE}, raw=True)
            batch = json_or_none(response) or []
            values.extend(v for v in batch if isinstance(v, dict))
            try:
                page_count = int(response.headers.get("Fiken-Api-Page-Count", "1"))
            except ValueError:
                page_count = 1
            page += 1
            if not batch or page >= page_count:
                return values

    # ---- parsing -----------------------------------------------------------------------------

    def _posted(self, entry: Any) -> PostedVoucher:
        if not isinstance(entry, dict) or "journalEntryId" not in entry:
            raise LedgerTransient(SYSTEM, "unexpected answer: not a journal entry")
        totals: dict[tuple[str, str | None], int] = {}
        for line in entry.get("lines") or []:
            if not isinstance(line, dict) or line.get("account") is None or line.get("amount") is None:
                raise LedgerTransient(SYSTEM, f"journal entry {entry.get('journalEntryId')}: incomplete line")
            vat = line.get("vatCode")
            vat_code = None if vat in (None, "", "0", 0) else str(vat)
            key = (_main_if_customer(str(line["account"])), vat_code)
            totals[key] = totals.get(key, 0) + int(line["amount"])
        return PostedVoucher(
            ledger_id=str(entry["journalEntryId"]),
            number=str(entry.get("journalEntryNumber") or ""),
            external_ref=_description_ref(str(entry.get("description") or "")),
            date=dt.date.fromisoformat(str(entry.get("date"))[:10]),
            postings=tuple((account, amount, vat) for (account, vat), amount in totals.items() if amount != 0),
            in_ledger=True,  # open entries are booked too, only deletable
        )


def _cancelled_by(entries: list[dict[str, Any]]) -> dict[Any, str]:
    """transactionId of each balancing (reverse) transaction -> the reference of the entry it
    cancels, from the deleted entries' `offsetTransactionId`."""
    return {
        e["offsetTransactionId"]: _description_ref(str(e.get("description") or ""))
        for e in entries
        if isinstance(e, dict) and e.get("offsetTransactionId")
    }


def pair_lines(voucher: Voucher) -> list[dict[str, Any]]:
    """Match the voucher's debits and credits into Fiken's one-amount debit/credit lines.

    Why two passes: the spec says a line's amount is NET on a debitAccount line (Fiken adds the
    debitVatCode's VAT) and gross on a creditAccount line. A debit with a VAT code that carries
    VAT (a return, a day of net refunds) is therefore paired first, and only with credits
    without a VAT code, which Fiken books at net + VAT = the voucher's gross; its amount is sent
    net (see `net_parts`). Every other debit is then paired greedily, in voucher order, with
    what is left of the credits, at gross, each pair taking min(what is left on either side).

    When the credits without a VAT code are too small to carry those debits (refunds at one rate,
    sales at another, all paid by card), the shortfall is routed through the largest line
    without a VAT code: its account is booked the shortfall on both sides, credited in the first
    pass and debited in the second, so its balance is unchanged. A voucher with no line without
    a VAT code at all cannot be booked this way and is refused.

    >>> # debit 1920:10001 1250, credit 3000 (3) -1000, credit 3030 (31) -250
    >>> # -> [{1000, debit 1920:10001, credit 3000 vat 3}, {250, debit 1920:10001, credit 3030 vat 31}]
    >>> # debit 3000 (3) 250 (a net refund), credit 1920:10001 -250
    >>> # -> [{200, debit 3000 vat 3, credit 1920:10001}]  (Fiken: 3000 +200, VAT +50, 1920:10001 -250)
    """
    vat_debits = [[line, line.amount] for line in voucher.lines if line.amount > 0 and _rate_bp(line.vat_code)]
    debits = [[line, line.amount] for line in voucher.lines if line.amount > 0 and not _rate_bp(line.vat_code)]
    credits = [[line, -line.amount] for line in voucher.lines if line.amount < 0]
    carried = sum(amount for line, amount in credits if line.vat_code is None)
    shortfall = sum(amount for _, amount in vat_debits) - carried
    if shortfall > 0:
        plain = [entry for entry in debits + credits if entry[0].vat_code is None]
        if not plain:
            raise LedgerValidationError(
                SYSTEM,
                f"voucher {voucher.external_ref}: a VAT-coded debit needs an account without a VAT code to "
                "carry its gross in Fiken, and the voucher has none",
            )
        through = max(plain, key=lambda entry: entry[1])
        through[1] += shortfall
        other_side = debits if any(entry is through for entry in credits) else credits
        other_side.append([through[0], shortfall])
    out: list[dict[str, Any]] = []
    carriers = [c for c in credits if c[0].vat_code is None]
    for debit, credit, amount in _greedy(vat_debits, carriers):
        code = VAT_CODES[str(debit.vat_code)]
        for net in net_parts(amount, _rate_bp(debit.vat_code)):
            out.append(
                {"amount": net, "debitAccount": debit.account, "debitVatCode": code, "creditAccount": credit.account}
            )
    for debit, credit, amount in _greedy(debits, [c for c in credits if c[1] > 0]):
        row: dict[str, Any] = {"amount": amount, "debitAccount": debit.account, "creditAccount": credit.account}
        if debit.vat_code is not None:
            row["debitVatCode"] = VAT_CODES[debit.vat_code]
        if credit.vat_code is not None:
            row["creditVatCode"] = VAT_CODES[credit.vat_code]
        out.append(row)
    return out


def _greedy(debits: list[list[Any]], credits: list[list[Any]]) -> list[tuple[VoucherLine, VoucherLine, Ore]]:
    """Pairs (debit, credit, amount), consuming the [line, amount left] entries in place."""
    pairs = []
    i = j = 0
    while i < len(debits) and j < len(credits):
        debit, credit = debits[i], credits[j]
        amount = min(debit[1], credit[1])
        if amount > 0:
            pairs.append((debit[0], credit[0], amount))
        debit[1] -= amount
        credit[1] -= amount
        if debit[1] == 0:
            i += 1
        if credit[1] == 0:
            j += 1
    return pairs


def net_parts(gross: Ore, rate_bp: int) -> list[Ore]:
    """Net amounts whose net + VAT (VAT on net, rounded half up) add up to exactly `gross`.

    Why: Fiken is given the net of a VAT-coded debit and computes the VAT itself (INFERRED: half
    up, as kassebro rounds). Most gross amounts have such a net; at a few øre amounts net + VAT
    jumps by 2, and then `gross - 1` is booked with one net and the last øre as a line of 1 øre
    net, which carries no VAT at rates under 50 %.
    """
    if rate_bp == 0 or gross <= 1:
        return [gross]
    guess = gross - vat_from_gross(gross, rate_bp)
    for net in (guess, guess - 1, guess + 1):
        if net > 0 and net + _vat_on_net(net, rate_bp) == gross:
            return [net]
    return [*net_parts(gross - 1, rate_bp), 1]


def _vat_on_net(net: Ore, rate_bp: int) -> Ore:
    return int((Decimal(net) * rate_bp / 10_000).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _rate_bp(vat_code: str | None) -> int:
    """The rate of a VAT code in basis points; 0 for none, code 0 and the codes without VAT."""
    if vat_code is None or vat_code not in VAT_CODES:
        return 0
    code = standard_vat_codes().get(vat_code)
    return (code.rate_bp or 0) if code is not None else 0


def _main_if_customer(account: str) -> str:
    """A customer's reskontro account (`1500:NNNNN`) read back as 1500, as the voucher books it (the
    customer rides on the line), so a day compares with what was sent; other sub-accounts (the POS's
    `1901:NNNNN`) are booked as such and stay."""
    return CUSTOMER_ACCOUNT if account.startswith(CUSTOMER_ACCOUNT + ":") else account


def _as_sent(voucher: Voucher, entry_id: str) -> PostedVoucher:
    """The PostedVoucher of a voucher Fiken accepted, without reading it back (no number: the answer has none)."""
    totals: dict[tuple[str, str | None], int] = {}
    for line in voucher.lines:
        key = (line.account, None if line.vat_code in (None, "0") else line.vat_code)
        totals[key] = totals.get(key, 0) + line.amount
    return PostedVoucher(
        ledger_id=entry_id,
        number="",
        external_ref=voucher.external_ref,
        date=voucher.business_day,
        postings=tuple((account, amount, vat) for (account, vat), amount in totals.items() if amount != 0),
        in_ledger=True,
    )


def split_vat(amount: Ore, code: str | None) -> tuple[Ore, str | None]:
    """The VAT in one journal entry line of `amount` øre (signed, debit positive) with standard VAT
    code `code`, and the account Fiken books it on: (0, None) for a line without VAT.

    Fiken's read model gives each side of a line at the amount the account is booked with,
    VAT included, with the side's VAT code (the sandbox's read model; INFERRED, see
    `kassebro.sandbox.fiken`). What Fiken did with the VAT follows from the spec
    (`journalEntryLine.amount`: "net amount (excluding VAT) for debitAccount lines and gross amount
    (including VAT) for creditAccount lines"): on a credit side it took the VAT out of the gross,
    on a debit side it added VAT on the net sent (see `net_parts`). One rule gives both exactly:
    the VAT in the gross at the code's rate, rounded to the øre (half up, away from zero). For a
    credit side that is the rule itself (the rounding INFERRED, as kassebro rounds). For a debit
    side booked as g = n + v, v = round(n x r) = n x r + e with |e| <= 1/2, the VAT in g is
    g x r / (1 + r) = v - e / (1 + r), less than half an øre from v, so it rounds back to v. A
    reversal's negated lines get the negated VAT, as rounding half away from zero mirrors.
    """
    rate = _any_rate_bp(code)
    if not rate:
        return 0, None
    return vat_from_gross(amount, rate), VAT_ACCOUNTS.get(str(code))


def _any_rate_bp(code: str | None) -> int:
    """The current rate of any standard VAT code in basis points (0 for none or no rate)."""
    standard = standard_vat_codes().get(code) if code is not None else None
    return (standard.rate_bp or 0) if standard is not None else 0


def _standard_code(fiken_code: Any) -> str | None:
    """A read line's Fiken VAT code ("3", "0", None) as the standard code, None for none. Fiken's
    codes are numbered as the standard ones (`VAT_CODES`), so a code kassebro does not post with
    keeps its number."""
    text = "" if fiken_code is None else str(fiken_code).strip()
    code = _FROM_FIKEN.get(text, text)
    return None if code in ("", "0") else code


def _description_ref(description: str) -> str:
    """Our reference at the end of a journal entry's description, "[kassebro:...]"; "" if none."""
    match = re.search(r"\[([^\[\]]+)\]\s*$", description)
    return match.group(1) if match else ""


def _again(exc: LedgerTransient, why: str) -> str:
    """A transient error of `reverse`, saying that calling it again is safe and why."""
    return f"{str(exc).removeprefix(SYSTEM + ': ')}; call reverse again, it will not reverse twice ({why})"


def _ref_tag(external_ref: str) -> str:
    if not external_ref or "[" in external_ref or "]" in external_ref:
        raise LedgerValidationError(SYSTEM, f"external reference {external_ref!r} cannot go in a description")
    return f"[{external_ref}]"
