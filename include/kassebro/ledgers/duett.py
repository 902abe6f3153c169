"""Duett Økonomi Open API client: post a day's voucher, look it up, read it back.

Plain `requests`, no Airflow. What it does about the API (brief `apis.md` §5, `docs/duett.md`):

- Auth: headers `X-Api-Integration-Key` (the integration's, from the partner agreement) and
  `X-Api-Client-Key` (the customer's activation). Values never appear in exceptions, reprs or logs;
  a 401/403 names the header the server complains about (or both when it does not say).
- `test_connection()`: `GET /system/v2/integration`; returns a sentence naming the client and
  whether "Bilagsbehandling" (automatic voucher control) is among `activeModules`.
- Lookups, kept in a `LookupCache` shared by the clients of a run (a client whose post is refused
  clears it): the account register (`GET /Register/v2/Account?filter[accountNumber][IN]=`, one call
  for the numbers of a voucher not cached yet) and the VAT register (`GET /Register/v2/VatCode`,
  read again once when a code is missing from the cache), mapped by `standardTaxCode` (falling back
  to `code`) so kassebro's standard codes "3", "31", "33", "5", "6" find Duett's codes. A line
  without VAT goes out with `vatCode: null`. Both register paths are INFERRED from the documented
  `/Register/v2/AccountIntervals`. The keys never go in the cache.
- Post (INFERRED endpoint): `POST /Voucher/v2` with `{voucherNumber, voucherDate, text, lines:
  [{accountNumber, accountType:"account", amountGross, vatCode, text}]}`, amounts gross and signed
  (debit positive). `text` is the voucher's description followed by " [external_ref]".
- Voucher number: Duett keeps number + year unique and refuses a duplicate (documented). kassebro
  sends its own deterministic number (`voucher_number`): `series_start + slot * 1000 + day of year`,
  where the slot is the vendor's (from `vendor_slots`, else a stable SHA-256 hash of the vendor id and
  version modulo the series' slots). A retry sends the same number, so a voucher that was saved but
  whose answer was lost is refused the second time; the client then calls `find` and returns the
  voucher already there (no second voucher). If the number is held by a voucher with another
  reference (a slot collision), that is a LedgerValidationError telling to set `vendor_slots`.
- Exactly once: a POST is never retried (LedgerTransient says the outcome is unknown). GETs are
  retried `get_retries` times on 5xx/transport errors.
- find(ref, date): `GET /Voucher/v2?filter[voucherYear][EQ]=Y&filter[voucherNumber][EQ]=N`, checked
  against the reference in the text; else `filter[voucherDate][EQ]=date&filter[text][LIKE]=ref`.
  So a voucher that is not there costs two GETs. Why both: the first is exact (an EQ on a
  documented field) and finds the voucher under kassebro's own number; the second catches the
  reference under another number (the series or a vendor's slot changed, Duett renumbered it)
  but rests on an INFERRED LIKE; each covers a case the other misses.
- Read-back: the POST answer is the stored voucher, so `post` parses it (a GET by id only when
  the answer lacks the lines); with `read_back_after_post=False` it returns the voucher as sent
  with the answer's id and number.
- list_vouchers(from, to): `GET /Voucher/v2?filter[voucherYear][EQ]=Y&filter[voucherDate][GTE]=from
  &filter[voucherDate][LT]=to`, once per calendar year of the range (the year filter is required).
  No paging is documented or served: an answer that is not a JSON array raises rather than lose
  vouchers. `include_non_posted` changes nothing (no drafts; Duett documents no draft state).
- reverse(id, date): Duett documents no reversal, so `GET /Voucher/v2/{id}` and a counter voucher
  (every line negated, text ending " [<ref>:reversal]") numbered the original day's number + 500 in
  the vendor's slot. A second call after a lost answer is refused as a duplicate number, and the
  reversal already there is returned (as `post` does).
- Read-back of the books (`ReadBack`): `postings(from, to)` reads Duett's voucher report of the
  general ledger, `GET /VoucherReport/v2?filter[voucherYear][EQ]=Y&ledgerFilter[EQ]=generalLedger
  &filter[voucherDate][GTE]=from&filter[voucherDate][LT]=to`, once per calendar year of the range
  (the year filter is required, documented). The filters and the row fields `accountNumber`,
  `accountName`, `amountGross`, `amountNetto`, `description`, `lineNumber` are documented; the
  path, the voucherDate filter and the rows' `voucherId`, `voucherNumber`, `voucherDate`, `vatCode`
  and `text` are INFERRED (the documentation excerpt stops before them), and so is that the VAT
  Duett books shows as rows of its own on the VAT account. `amountNetto` is the net, `amountGross`
  the gross; the external reference is the " [ref]" at the end of the voucher's description. No
  paging is documented: an answer that is not a JSON array raises. `balances` are computed from
  the report (Duett documents no balance endpoint), `accounts()` is the account register and
  `vat_codes()` the VAT register the post path reads.
- Errors: ProblemDetails 400/404/409/422 -> LedgerValidationError with title, detail and errors;
  401/403 -> LedgerAuthError; 429 -> LedgerRateLimited(Retry-After); 5xx, timeouts, dropped
  connections -> LedgerTransient.
- `calls` counts HTTP requests by "METHOD /path" (ids as {id}).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

import requests

from kassebro.booking.voucher import Voucher
from kassebro.core.errors import ConfigError, Issue
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
    balances_from_postings,
    in_account_range,
    is_result_account,
)
from kassebro.ledgers.cache import LookupCache
from kassebro.ledgers.http import HttpClient, LedgerHttp, Secret, encode_json, json_or_none, retry_after
from kassebro.ledgers.registry import ConnectionParts

log = logging.getLogger(__name__)

SYSTEM = "Duett"
INTEGRATION_HEADER = "X-Api-Integration-Key"
CLIENT_HEADER = "X-Api-Client-Key"
VOUCHER_PATH = "/Voucher/v2"
REPORT_PATH = "/VoucherReport/v2"  # INFERRED: the voucher report's path is not documented
ACCOUNT_PATH = "/Register/v2/Account"
VAT_CODE_PATH = "/Register/v2/VatCode"
DEFAULT_SERIES_START = 90_000_000
DEFAULT_SERIES_SIZE = 10_000_000
_DAYS_PER_SLOT = 1000  # days of the year 1..366, their reversals 501..866; the rest is unused
_REVERSAL_OFFSET = 500  # a reversal's number: its day's + 500 (366 + 500 < 1000)


def connection_numbering(extras: Mapping[str, Any], conn_id: str = "") -> dict[str, Any]:
    """`series_start`, `series_size` and `vendor_slots` from a connection's extras, checked here so
    a wrong value fails every post at once with the field named, not some posts with a collision.

    `vendor_slots` is a JSON object (the form's text field) or a mapping (an extra set as JSON):
    vendor id (or "vendor:vN") -> slot. Two vendors given the same slot are refused: that is the
    collision the field exists to rule out.
    """
    source = f"connection {conn_id or '?'}"
    issues: list[Issue] = []
    numbering: dict[str, Any] = {}
    for field, default in (("series_start", DEFAULT_SERIES_START), ("series_size", DEFAULT_SERIES_SIZE)):
        value = extras.get(field)
        if value in (None, ""):
            continue
        try:
            numbering[field] = _whole(value)
        except ValueError:
            issues.append(Issue(source, field, f"{field} must be a whole number (default {default}), not {value!r}"))
    start = numbering.get("series_start", DEFAULT_SERIES_START)
    size = numbering.get("series_size", DEFAULT_SERIES_SIZE)
    if start <= 0 or size < _DAYS_PER_SLOT or size % _DAYS_PER_SLOT:
        issues.append(
            Issue(
                source,
                "series_size",
                f"series_start must be positive and series_size a positive multiple of {_DAYS_PER_SLOT}: "
                f"{start} and {size}",
            )
        )
    slots = _vendor_slots(extras.get("vendor_slots"), size // _DAYS_PER_SLOT, source, issues)
    if slots:
        numbering["vendor_slots"] = slots
    if issues:
        raise ConfigError(issues, f"The Duett connection {conn_id or '?'} has a voucher numbering that cannot work:")
    return numbering


def _whole(value: Any) -> int:
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(value)
    return int(str(value).strip()) if not isinstance(value, int | float) else int(value)


def _vendor_slots(value: Any, slots: int, source: str, issues: list[Issue]) -> dict[str, int]:
    if value in (None, "", {}):
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            issues.append(Issue(source, "vendor_slots", f"vendor_slots is not JSON ({exc.msg}): {value[:80]!r}"))
            return {}
    if not isinstance(value, Mapping):
        issues.append(
            Issue(source, "vendor_slots", f'vendor_slots must be an object like {{"shop12": 0}}, not {value!r}')
        )
        return {}
    result: dict[str, int] = {}
    for vendor, slot in value.items():
        try:
            number = _whole(slot)
        except ValueError:
            issues.append(Issue(source, "vendor_slots", f"the slot of {vendor!r} must be a whole number, not {slot!r}"))
            continue
        if not 0 <= number < slots:
            issues.append(Issue(source, "vendor_slots", f"the slot of {vendor!r} is {number}, outside 0..{slots - 1}"))
            continue
        result[str(vendor)] = number
    shared: dict[int, list[str]] = {}
    for vendor, number in result.items():
        shared.setdefault(number, []).append(vendor)
    for number, vendors in sorted(shared.items()):
        if len(vendors) > 1:
            issues.append(
                Issue(
                    source,
                    "vendor_slots",
                    f"{', '.join(repr(v) for v in vendors)} share slot {number}: give each its own",
                )
            )
    return result


_REF = re.compile(
    r"^kassebro:(?P<vendor>.+):(?P<day>\d{4}-\d{2}-\d{2})(?::v(?P<version>\d+))?(?P<reversal>:reversal)?$"
)
_TEXT_REF = re.compile(r" \[([^\[\]]+)\]$")
_ID_SEGMENT = re.compile(r"/([0-9a-fA-F-]{36}|\d+)(?=/|$)")


class DuettClient(HttpClient):
    """A Ledger for one Duett client.

    Args:
      base_url: API root, e.g. "https://api.duett.no" or a sandbox "http://127.0.0.1:8930".
      integration_key, client_key: the `X-Api-Integration-Key` and `X-Api-Client-Key` values.
      series_start, series_size: the voucher number range kassebro uses (agree it with the
        accountant so it does not overlap Duett's own series); must be a multiple of 1000 in size.
      vendor_slots: vendor id (or "vendor:vN" for a re-post version) -> slot number, to rule out
        hash collisions between vendors; others get a hashed slot.
      voucher_type: sent as `voucherType` when set (agree it with the accountant, DUETT-DOC).
      session, timeout, get_retries, retry_backoff: HTTP options.
      cache: the run's lookups (one per connection, `cache.cache_path`); None makes an in-memory
        one for this client.
      read_back_after_post: return the voucher as Duett's answer (or, lacking lines, a GET) holds
        it; False returns it as sent, with the answer's id and number.
    """

    system = SYSTEM

    def __init__(
        self,
        base_url: str = "https://api.duett.no",
        *,
        integration_key: str,
        client_key: str,
        series_start: int = DEFAULT_SERIES_START,
        series_size: int = DEFAULT_SERIES_SIZE,
        vendor_slots: Mapping[str, int] | None = None,
        voucher_type: str | None = None,
        session: requests.Session | None = None,
        timeout: float = 30.0,
        get_retries: int = 2,
        retry_backoff: float = 0.5,
        max_rate_wait: float = 0.0,
        cache: LookupCache | None = None,
        read_back_after_post: bool = True,
    ) -> None:
        if series_start <= 0 or series_size < _DAYS_PER_SLOT or series_size % _DAYS_PER_SLOT:
            raise ValueError(f"series_size must be a positive multiple of {_DAYS_PER_SLOT}, series_start positive")
        self.base_url = base_url.rstrip("/")
        self._integration_key = Secret(integration_key)
        self._client_key = Secret(client_key)
        self.series_start = series_start
        self.series_size = series_size
        self.vendor_slots = dict(vendor_slots or {})
        bad = [k for k, v in self.vendor_slots.items() if not 0 <= v < self.slots]
        if bad:
            raise ValueError(f"vendor_slots out of range 0..{self.slots - 1}: {', '.join(bad)}")
        self.voucher_type = voucher_type
        self._http = LedgerHttp(
            SYSTEM,
            session=session,
            timeout=timeout,
            get_retries=get_retries,
            retry_backoff=retry_backoff,
            max_rate_wait=max_rate_wait,
            secrets=lambda: (self._integration_key, self._client_key),
        )
        self.cache = cache if cache is not None else LookupCache()
        self.read_back_after_post = read_back_after_post
        self._vat_fetched = False  # this client read the VAT register itself

    # ---- housekeeping ------------------------------------------------------------------------

    @classmethod
    def from_connection(cls, parts: ConnectionParts, **_: Any) -> DuettClient:
        """The client an Airflow connection describes: password = client key, extras
        `integration_key` and the numbering (`series_start`, `series_size`, `vendor_slots`).
        A numbering that cannot work is a ConfigError naming the connection and the field."""
        numbering = connection_numbering(parts.extras, parts.conn_id)
        return cls(
            parts.base_url,
            integration_key=str(parts.extras.get("integration_key") or ""),
            client_key=parts.password,
            session=parts.session,
            timeout=parts.timeout,
            cache=parts.cache(None),
            read_back_after_post=False,
            **numbering,
        )

    def __repr__(self) -> str:
        return f"DuettClient(base_url={self.base_url!r})"

    @property
    def slots(self) -> int:
        return self.series_size // _DAYS_PER_SLOT

    # ---- the Ledger protocol -----------------------------------------------------------------

    def test_connection(self) -> str:
        info = self._request("GET", "/system/v2/integration") or {}
        name = info.get("clientName") or info.get("name") or info.get("clientNumber") or "?"
        modules = [str(m) for m in info.get("activeModules") or []]
        control = (
            " (Bilagsbehandling is on: Duett adds crossings and tax lines itself)"
            if any(m.lower() == "bilagsbehandling" for m in modules)
            else ""
        )
        return f"Connected to Duett client {name!r}{control}"

    def find(self, external_ref: str, date: dt.date | None) -> PostedVoucher | None:
        """The voucher carrying `external_ref` dated `date`, or None."""
        if date is None:
            raise LedgerValidationError(SYSTEM, "find needs the voucher date (Duett lists vouchers per year)")
        number = self.voucher_number(external_ref, date)
        rows = self._list(date.year, {"filter[voucherNumber][EQ]": str(number)})
        for row in rows:
            if _text_ref(row) == external_ref:
                return self._posted(row)
        rows = self._list(
            date.year, {"filter[voucherDate][EQ]": date.isoformat(), "filter[text][LIKE]": f"[{external_ref}]"}
        )
        hits = [r for r in rows if _text_ref(r) == external_ref and r.get("show", True) is not False]
        if len(hits) > 1:
            numbers = ", ".join(str(r.get("voucherNumber")) for r in hits)
            raise LedgerValidationError(
                SYSTEM, f"{len(hits)} vouchers carry {external_ref!r} (numbers {numbers}); resolve it in Duett"
            )
        return self._posted(hits[0]) if hits else None

    def get(self, ledger_id: str) -> PostedVoucher:
        return self._posted(self._request("GET", f"{VOUCHER_PATH}/{ledger_id}") or {})

    def post(self, voucher: Voucher, send_to_ledger: bool = True) -> PostedVoucher:
        """POST the voucher (never retried); a duplicate-number refusal returns the existing one.

        Any other refusal clears the lookup cache, so the retry reads registers that may have changed.
        """
        try:
            return self._post(voucher, send_to_ledger)
        except LedgerValidationError:
            self.cache.clear()
            raise

    def _post(self, voucher: Voucher, send_to_ledger: bool) -> PostedVoucher:
        if not send_to_ledger:
            raise LedgerValidationError(SYSTEM, "posting for approval is not supported for Duett")
        body = self.render(voucher)
        sent = tuple(
            (line.account, line.amount, None if line.vat_code in (None, "", "0") else line.vat_code)
            for line in voucher.lines
        )
        return self._create(
            body,
            voucher.external_ref,
            voucher.business_day,
            sent,
            f"give vendor {voucher.vendor_id!r} its own slot (vendor_slots) or another series",
        )

    def _create(
        self,
        body: Mapping[str, Any],
        external_ref: str,
        date: dt.date,
        sent: tuple[tuple[str, int, str | None], ...],
        remedy: str,
    ) -> PostedVoucher:
        """POST a voucher body (never retried); a duplicate-number refusal returns the voucher there.

        Duett refuses a number taken in the year, and kassebro's numbers are deterministic, so a
        refusal after a lost answer means "already there": `find` returns it. A number taken by a
        voucher with another reference is a LedgerValidationError ending with `remedy`.
        """
        try:
            data = self._request("POST", VOUCHER_PATH, body=body)
        except LedgerValidationError as exc:
            if not _is_duplicate_refusal(exc):
                raise
            existing = self.find(external_ref, date)
            if existing is None:
                raise LedgerValidationError(
                    SYSTEM,
                    f"voucher number {body['voucherNumber']} in {date.year} is taken by another voucher, "
                    f"not {external_ref!r}; {remedy}",
                ) from exc
            log.info("Duett already holds %s as voucher %s", external_ref, existing.number)
            return existing
        answer = data if isinstance(data, Mapping) else {}
        if answer.get("id") and not self.read_back_after_post:
            return PostedVoucher(
                ledger_id=str(answer["id"]),
                number=str(answer.get("voucherNumber") or body["voucherNumber"]),
                external_ref=external_ref,
                date=date,
                postings=sent,
                in_ledger=True,
            )
        if isinstance(answer.get("lines"), list) and answer["lines"]:
            return self._posted(answer)
        try:
            if answer.get("id"):
                return self.get(str(answer["id"]))
            found = self.find(external_ref, date)
        except LedgerTransient as exc:
            raise LedgerTransient(
                SYSTEM,
                f"posted, but reading it back failed ({str(exc).removeprefix(SYSTEM + ': ')}); look it up with find()",
            ) from None
        if found is None:
            raise LedgerTransient(SYSTEM, "posted, but the answer has no id and find() does not see it yet")
        return found

    def list_vouchers(
        self, date_from: dt.date, date_to: dt.date, *, include_non_posted: bool = False
    ) -> list[PostedVoucher]:
        """Vouchers dated date_from <= voucherDate < date_to, one GET per calendar year in the range.

        Duett requires `filter[voucherYear][EQ]` on voucher lists, so a range over New Year is
        asked year by year, each with `filter[voucherDate][GTE]`/`[LT]`. Soft-deleted vouchers
        (`show: false`) are left out. `include_non_posted` changes nothing: kassebro posts no
        drafts to Duett (`post` refuses approval) and Duett documents no draft state for the list.
        """
        if date_to <= date_from:
            return []
        last = date_to - dt.timedelta(days=1)
        rows: list[dict[str, Any]] = []
        for year in range(date_from.year, last.year + 1):
            rows += self._list(
                year,
                {"filter[voucherDate][GTE]": date_from.isoformat(), "filter[voucherDate][LT]": date_to.isoformat()},
            )
        return [self._posted(row) for row in rows if row.get("show", True) is not False]

    def reverse(self, ledger_id: str, date: dt.date) -> PostedVoucher:
        """POST a counter voucher dated `date`, every line of the original negated (never retried).

        Duett documents no reversal, so this is a voucher like any other: text `Reversering: <the
        original's text> [<original ref>:reversal]`, lines with account, account type, VAT code
        and text kept and amountGross negated, numbered `voucher_number(<ref>:reversal)` (the
        original's number + 500, see `voucher_number`). Calling it again after a lost answer sends
        the same number, Duett refuses it as a duplicate, and the reversal already there is
        returned: never two reversals. A voucher without kassebro's reference in its text (booked
        by others) or with carriers is refused: neither can be reversed exactly once here.
        """
        original = self._request("GET", f"{VOUCHER_PATH}/{ledger_id}")
        if not isinstance(original, Mapping):
            raise LedgerValidationError(SYSTEM, f"GET {VOUCHER_PATH}/{ledger_id}: expected a voucher object")
        ref = _text_ref(original)
        if not ref:
            raise LedgerValidationError(
                SYSTEM,
                f"voucher {original.get('voucherNumber') or ledger_id} carries no kassebro reference in its text: "
                "it cannot be reversed exactly once",
            )
        reversal_ref = f"{ref}:reversal"
        lines = []
        sent = []
        rows = [line for line in original.get("lines") or [] if isinstance(line, dict)]
        for line in sorted(rows, key=lambda line: line.get("lineNumber") or 0):
            if line.get("accountNumber") is None or line.get("amountGross") is None:
                raise LedgerTransient(SYSTEM, f"{ref}: line {line.get('lineNumber')} incomplete in the answer")
            if line.get("carriers"):
                raise LedgerValidationError(SYSTEM, f"{ref}: lines with carriers cannot be reversed by kassebro yet")
            amount = -parse_ore(str(line["amountGross"]))
            entry: dict[str, Any] = {
                "accountNumber": str(line["accountNumber"]),
                "accountType": line.get("accountType") or "account",
                "amountGross": ore_to_decimal(amount),
                "vatCode": line.get("vatCode"),
                "text": " ".join(f"Reversering: {line.get('text') or ''}".split()),
            }
            lines.append(entry)
            sent.append((entry["accountNumber"], amount, self._standard(line.get("vatCode"))))
        if not lines:
            raise LedgerValidationError(SYSTEM, f"{ref}: the voucher has no lines to reverse")
        description = _TEXT_REF.sub("", str(original.get("text") or "")).strip()
        body: dict[str, Any] = {
            "voucherNumber": self.voucher_number(reversal_ref, date),
            "voucherDate": date.isoformat(),
            "text": f"Reversering: {description} [{reversal_ref}]" if description else f"Reversering [{reversal_ref}]",
            "lines": lines,
        }
        voucher_type = original.get("voucherType") or self.voucher_type
        if voucher_type:
            body["voucherType"] = voucher_type
        return self._create(body, reversal_ref, date, tuple(sent), "set vendor_slots or another series")

    # ---- read-back -------------------------------------------------------------------------

    def postings(
        self, date_from: dt.date, date_to: dt.date, *, accounts: tuple[int, int] | None = None
    ) -> list[LedgerPosting]:
        """Every general-ledger line dated date_from <= voucherDate < date_to, ours and others',
        the VAT lines Duett books included: the voucher report, one GET per calendar year of the
        range (its year filter is required), optionally for an account number range (applied here:
        the report's account filter on a range is not documented)."""
        if date_to <= date_from:
            return []
        dates = {"filter[voucherDate][GTE]": date_from.isoformat(), "filter[voucherDate][LT]": date_to.isoformat()}
        rows = []
        for year in range(date_from.year, (date_to - dt.timedelta(days=1)).year + 1):
            rows += self._report(year, dates)
        return [p for p in map(self._ledger_posting, rows) if in_account_range(p.account, accounts)]

    def balances(
        self, date_from: dt.date, date_to: dt.date, *, accounts: tuple[int, int] | None = None
    ) -> list[AccountBalance]:
        """Each account's opening, movement and closing for date_from <= date < date_to, summed
        from the voucher report of the general ledger.

        DOCUMENTED: Duett documents no balance endpoint (only the voucher report), so the balances
        are computed from its lines. The movement is the period's lines; the opening of a result
        account (3000-8999) is its lines of date_from's year before date_from (INFERRED: the fiscal
        year is the calendar year, the report's required year filter); of any other account, its
        lines of every earlier year too, read year by year back to the first year whose report is
        empty (INFERRED: a company's years in Duett have no gap). One GET per year read. Not
        handled: incoming-balance vouchers (voucher type 0, DUETT-DOC voucher-types) that a
        year-end closing may book would count on top of the years they carry over (the sandbox
        books none). Accounts with neither an opening nor a movement are left out; names are the
        report's `accountName`.
        """
        if date_to <= date_from:
            return []
        rows = []
        for year in range(date_from.year, (date_to - dt.timedelta(days=1)).year + 1):
            rows += self._report(year, {"filter[voucherDate][LT]": date_to.isoformat()})
        year = date_from.year - 1
        while earlier := self._report(year, {}):
            if any(str(r.get("voucherDate"))[:4] != str(year) for r in earlier):  # else this would never end
                raise LedgerValidationError(SYSTEM, f"GET {REPORT_PATH}: lines outside {year} for voucherYear {year}")
            rows += [r for r in earlier if not is_result_account(str(r.get("accountNumber")))]
            year -= 1
        names = {str(r.get("accountNumber")): str(r.get("accountName") or "") for r in rows}
        postings = [p for p in map(self._ledger_posting, rows) if in_account_range(p.account, accounts)]
        return balances_from_postings(postings, date_from, names)

    def accounts(self) -> list[LedgerAccount]:
        """The account register (`GET /Register/v2/Account`, the post path's lookup, INFERRED path),
        deleted accounts (`show: false`, Duett's soft delete) included as inactive; the account's
        `vatCode` as a standard code. INFERRED: Duett documents no VAT lock on an account."""
        rows = self._request("GET", ACCOUNT_PATH) or []
        if not isinstance(rows, list):
            raise LedgerValidationError(SYSTEM, f"GET {ACCOUNT_PATH}: expected a JSON array, got {type(rows).__name__}")
        return [
            LedgerAccount(
                number=str(row["accountNumber"]),
                name=str(row.get("name") or ""),
                active=row.get("show", True) is not False,
                vat_code=self._standard(row.get("vatCode")),
            )
            for row in rows
            if isinstance(row, dict)
            and row.get("accountNumber") not in (None, "")
            and (row.get("accountType") or "account") == "account"
        ]

    def vat_codes(self) -> list[LedgerVatCode]:
        """The VAT register (`GET /Register/v2/VatCode`, INFERRED path) without deleted codes, each
        as its standard code by the post path's own mapping (`standardTaxCode`, else `code`); the
        lookup cache is refreshed on the way."""
        return [
            LedgerVatCode(
                code=str(row.get("standardTaxCode") or row["code"]),
                own_id=str(row["code"]),
                name=str(row.get("name") or ""),
                rate=Decimal(str(row.get("rate") or 0)),
            )
            for row in self._load_vat_codes()
        ]

    def _report(self, year: int, params: Mapping[str, str]) -> list[dict[str, Any]]:
        """The general ledger's voucher report rows of one year; anything but a JSON array (a paged
        envelope, say: paging is not documented) raises, so no line is missed silently."""
        query = {"filter[voucherYear][EQ]": str(year), "ledgerFilter[EQ]": "generalLedger", **params}
        rows = self._request("GET", REPORT_PATH, params=query)
        if rows is None:
            return []
        if not isinstance(rows, list):
            raise LedgerValidationError(
                SYSTEM, f"GET {REPORT_PATH}: expected a JSON array of report lines, got {type(rows).__name__}"
            )
        return [r for r in rows if isinstance(r, dict)]

    def _ledger_posting(self, row: Mapping[str, Any]) -> LedgerPosting:
        if row.get("accountNumber") is None or row.get("amountGross") is None or row.get("amountNetto") is None:
            raise LedgerTransient(SYSTEM, f"voucher report line {row.get('id')}: incomplete")
        match = _TEXT_REF.search(str(row.get("description") or ""))
        return LedgerPosting(
            voucher_id=str(row.get("voucherId") or ""),
            voucher_number=str(row.get("voucherNumber") or ""),
            date=dt.date.fromisoformat(str(row.get("voucherDate"))[:10]),
            account=str(row["accountNumber"]),
            amount=parse_ore(str(row["amountNetto"])),
            gross=parse_ore(str(row["amountGross"])),
            vat_code=self._standard(row.get("vatCode")),
            description=str(row.get("text") or row.get("description") or ""),
            external_ref=match.group(1) if match else "",
        )

    # ---- more than the protocol --------------------------------------------------------------

    def voucher_number(self, external_ref: str, date: dt.date) -> int:
        """The deterministic voucher number of a reference dated `date` (see the module doc).

        The reversal of a day (`kassebro:<vendor>:<day>[:vN]:reversal`) takes the day's own number
        + 500 (in the year of the date it is reversed on), whatever that date: the upper half of the
        vendor's slot is unused by days (1..366), so a reversal stays among the vendor's own numbers,
        and a retry on another date of the same year still meets the first reversal's number.
        """
        match = _REF.match(external_ref)
        key, day, offset = external_ref, date, 0
        if match:
            version = int(match.group("version") or 1)
            key = match.group("vendor") + (f":v{version}" if version > 1 else "")
            if match.group("reversal"):
                try:
                    day, offset = dt.date.fromisoformat(match.group("day")), _REVERSAL_OFFSET
                except ValueError:
                    key = external_ref  # not a real day: hashed like any other reference
        slot = self.vendor_slots.get(key)
        if slot is None:
            slot = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") % self.slots
        return self.series_start + slot * _DAYS_PER_SLOT + offset + day.timetuple().tm_yday

    def render(self, voucher: Voucher) -> dict[str, Any]:
        """The POST /Voucher/v2 body, resolving every lookup first."""
        if not voucher.lines:
            raise LedgerValidationError(SYSTEM, f"voucher {voucher.external_ref} has no lines")
        self.resolve_accounts(line.account for line in voucher.lines)
        lines = []
        for line in voucher.lines:
            if line.department or line.project:
                raise LedgerValidationError(
                    SYSTEM, "departments and projects (carriers) are not supported for Duett yet"
                )
            entry: dict[str, Any] = {
                "accountNumber": line.account,
                "accountType": "account",
                "amountGross": ore_to_decimal(line.amount),
                "vatCode": self.vat_code(line.vat_code),
            }
            if line.description:
                entry["text"] = line.description
            lines.append(entry)
        body: dict[str, Any] = {
            "voucherNumber": self.voucher_number(voucher.external_ref, voucher.business_day),
            "voucherDate": voucher.business_day.isoformat(),
            "text": f"{voucher.description} [{voucher.external_ref}]",
            "lines": lines,
        }
        if self.voucher_type:
            body["voucherType"] = self.voucher_type
        return body

    def resolve_accounts(self, numbers: Iterable[str]) -> set[str]:
        """Check the account numbers exist (one call for those not cached); return them."""
        wanted = list(dict.fromkeys(str(n).strip() for n in numbers))
        bad = [n for n in wanted if not n.isdigit()]
        if bad:
            raise LedgerValidationError(SYSTEM, f"not Duett account numbers (digits only): {', '.join(bad)}")
        cached = self.cache.table("accounts")
        missing = [n for n in wanted if n not in cached]
        if missing:
            rows = self._request("GET", ACCOUNT_PATH, params={"filter[accountNumber][IN]": ",".join(missing)})
            found = {
                str(row.get("accountNumber")): str(row.get("name") or "")
                for row in rows or []
                if isinstance(row, dict) and row.get("show", True) is not False
            }
            self.cache.put("accounts", found)
            unknown = [n for n in missing if n not in found]
            if unknown:
                raise LedgerValidationError(SYSTEM, f"accounts unknown or deleted in Duett: {', '.join(unknown)}")
        return set(wanted)

    def vat_code(self, standard_code: str | None) -> str | None:
        """Duett's VAT code for a standard code (None -> None, "0" -> Duett's "no VAT" code)."""
        if standard_code is None or not str(standard_code).strip():
            return None
        wanted = str(standard_code).strip()
        code = self._vat_lookup("vat_codes", wanted)
        if code is None:
            raise LedgerValidationError(SYSTEM, f"VAT code {wanted} unknown to Duett")
        return str(code)

    def _vat_lookup(self, table: str, key: str) -> str | None:
        """A VAT register mapping from the cache, reading the register when it is not cached or lacks the key."""
        value = self.cache.get(table, key)
        if value is None and (not self._vat_fetched or not self.cache.table(table)):  # missing, or cleared since
            self._load_vat_codes()
            value = self.cache.get(table, key)
        return None if value is None else str(value)

    def _load_vat_codes(self) -> list[dict[str, Any]]:
        """Read the VAT register, cache both mappings and return its rows (deleted ones left out)."""
        rows = self._request("GET", VAT_CODE_PATH) or []
        codes: dict[str, str] = {}  # standard code -> Duett code (the first listed wins)
        standards: dict[str, str] = {}  # Duett code -> standard code
        kept = []
        for row in rows:
            if not isinstance(row, dict) or row.get("show", True) is False or row.get("code") is None:
                continue
            code = str(row["code"])
            standard = str(row.get("standardTaxCode") or code)
            codes.setdefault(standard, code)
            standards[code] = standard
            kept.append(row)
        self.cache.put("vat_codes", codes)
        self.cache.put("vat_standard", standards)
        self._vat_fetched = True
        return kept

    # ---- HTTP --------------------------------------------------------------------------------

    def _list(self, year: int, params: Mapping[str, str]) -> list[dict[str, Any]]:
        """`GET /Voucher/v2` for one year. Anything but a JSON array (a paged envelope, say: paging is
        not documented) raises, so a voucher can never be missed silently (and posted twice)."""
        rows = self._request("GET", VOUCHER_PATH, params={"filter[voucherYear][EQ]": str(year), **params})
        if rows is None:
            return []
        if not isinstance(rows, list):
            raise LedgerValidationError(
                SYSTEM, f"GET {VOUCHER_PATH}: expected a JSON array of vouchers, got {type(rows).__name__}"
            )
        return [r for r in rows if isinstance(r, dict)]

    def _redact(self, text: str) -> str:
        return self._http.redact(text)

    def _request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None, body: Any = None) -> Any:
        data = encode_json(body).encode("utf-8") if body is not None else None
        headers = {
            "Accept": "application/json",
            INTEGRATION_HEADER: self._integration_key.reveal(),
            CLIENT_HEADER: self._client_key.reveal(),
        }
        if data is not None:
            headers["Content-Type"] = "application/json; charset=utf-8"
        response = self._http.send(
            method,
            self.base_url + path,
            f"{method} {_ID_SEGMENT.sub('/{id}', path)}",
            headers=headers,
            params=params,
            data=data,
            idempotent=method == "GET",
            judge=lambda response: self._judge(response, method, path),
        )
        return json_or_none(response, parse_float=Decimal)

    def _judge(self, response: requests.Response, method: str, path: str) -> LedgerError | None:
        """Duett's error kinds: 429 (Retry-After), 5xx transient, 401/403 naming the key header
        the problem body names, anything else refused (a problem+json body is kept)."""
        status = response.status_code
        if 200 <= status < 300:
            return None
        body = json_or_none(response, parse_float=Decimal)
        problem = body if isinstance(body, dict) else {}
        text = self._error_text(method, path, status, problem, response)
        if status == 429:
            wait = retry_after(response, 5.0)
            return LedgerRateLimited(SYSTEM, f"{text}; retry in {wait:g} s", retry_after=wait)
        if status >= 500:
            return LedgerTransient(SYSTEM, text)
        if status in (401, 403):
            said = f"{problem.get('title') or ''} {problem.get('detail') or ''}".lower()
            named = [h for h in (INTEGRATION_HEADER, CLIENT_HEADER) if h.lower() in said]
            if not named:
                named = [
                    h for h, word in ((INTEGRATION_HEADER, "integration"), (CLIENT_HEADER, "client")) if word in said
                ]
            which = " and ".join(named) if named else f"{INTEGRATION_HEADER} or {CLIENT_HEADER}"
            verb = "was refused" if status == 401 else "lacks rights for this call"
            exc: LedgerError = LedgerAuthError(SYSTEM, f"the {which} {verb} ({text})")
        else:
            exc = LedgerValidationError(SYSTEM, text)
        exc.status = status  # type: ignore[attr-defined]
        exc.problem = problem  # type: ignore[attr-defined]
        return exc

    def _error_text(
        self, method: str, path: str, status: int, problem: Mapping[str, Any], response: requests.Response
    ) -> str:
        parts = [f"{method} {path}: {status}"]
        if problem:
            parts += [str(p) for p in (problem.get("title"), problem.get("detail")) if p]
            errors = problem.get("errors")
            if isinstance(errors, dict):
                parts.append(
                    "; ".join(f"{k}: {' '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in errors.items())
                )
        elif response.text:
            parts.append(response.text[:200])
        return self._redact(" ".join(parts))

    # ---- parsing -----------------------------------------------------------------------------

    def _standard(self, code: Any) -> str | None:
        if code in (None, ""):
            return None
        standard = self._vat_lookup("vat_standard", str(code)) or str(code)
        return None if standard == "0" else standard

    def _posted(self, data: Mapping[str, Any]) -> PostedVoucher:
        postings = tuple(
            (str(line["accountNumber"]), parse_ore(str(line["amountGross"])), self._standard(line.get("vatCode")))
            for line in sorted(data.get("lines") or [], key=lambda line: line.get("lineNumber") or 0)
        )
        return PostedVoucher(
            ledger_id=str(data.get("id")),
            number=str(data.get("voucherNumber") or ""),
            external_ref=_text_ref(data) or "",
            date=dt.date.fromisoformat(str(data.get("voucherDate"))[:10]),
            postings=postings,
            in_ledger=True,
        )


def _text_ref(row: Mapping[str, Any]) -> str | None:
    match = _TEXT_REF.search(str(row.get("text") or ""))
    return match.group(1) if match else None


def _is_duplicate_refusal(exc: LedgerValidationError) -> bool:
    status = getattr(exc, "status", None)
    problem = getattr(exc, "problem", {}) or {}
    errors = problem.get("errors") if isinstance(problem.get("errors"), dict) else {}
    text = str(exc).lower()
    about_number = "vouchernumber" in text.replace(" ", "") or "voucher number" in text or "voucherNumber" in errors
    return status in (400, 409, 422) and about_number and (status == 409 or "duplicate" in text or "already" in text)
