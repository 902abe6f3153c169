"""Tripletex API v2 client: post a day's voucher, look it up, read it back.

Plain `requests`, no Airflow, so it runs in tests, the CLI and tasks alike. What it does about
the API's habits:

- Auth: a session token is created lazily from the consumer token (the integration's) and the
  employee token (the customer's), valid until tomorrow, and created again once when a call gets
  401. A rejected exchange says which of the two tokens is the likely culprit. Token values never
  appear in exceptions, reprs or logs (`Secret`, and every server text is redacted).
- Accounting firms: with `client_org_number` the client asks `GET /company/>withLoginAccess`
  (Basic user 0) which companies the firm's employee may log in to, and acts for the one with
  that organisation number (its id as the Basic user) from then on.
- Lookups (account info, VAT type ids, departments, projects, the client company's id) live in a
  LookupCache, in memory or a file shared by the tasks of a run, accounts in one call for all
  numbers of a voucher. A refused post clears it: the chart may have changed.
- Calls per voucher: session (once per client) + `find` + POST, and one GET to read it back when
  `read_back_after_post`: the spec declares no `fields` for POST /ledger/voucher, so its answer
  has postings as references only, and none is sent. With a warm cache nothing else is called.
- Exactly once: `post` never retries a POST after a transient error (the outcome is unknown);
  it raises LedgerTransient and the caller calls `find(external_ref)` before posting again.
  GETs are retried a few times with a short backoff. 429 is waited out when the reset is short
  (at most 3 times), else LedgerRateLimited(retry_after).
- Money: amounts go out as JSON numbers with exactly two decimals rendered from øre, and come
  back parsed as Decimal, never float.
- Read-back: PostedVoucher.postings are the rows we sent (row >= 1, gross amountGross, vatType
  number), without the VAT rows Tripletex generates on row 0, so they compare with the Voucher.
  VAT code "0" ("no VAT treatment", also what Tripletex puts on a posting sent without vatType)
  reads back as None.
- Chart read-back (the mapping check, year-end): `accounts()` is `GET /ledger/account`, every page,
  inactive accounts included, with vatType and vatLocked; `vat_codes()` is `GET /ledger/vatType`.
  Both fill the lookup cache as they go.
- `calls` counts HTTP requests by "METHOD /path" (ids as {id}), for calls-per-voucher reports.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

import requests

from kassebro.booking.voucher import Voucher
from kassebro.core.money import ore_to_decimal, parse_ore
from kassebro.ledgers.base import (
    AccountBalance,
    FirmClient,
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
from kassebro.ledgers.http import IN_TASK_RATE_WAIT, HttpClient, LedgerHttp, Secret, encode_json, retry_after
from kassebro.ledgers.registry import ConnectionParts

log = logging.getLogger(__name__)

SYSTEM = "Tripletex"
EXTERNAL_VOUCHER_NUMBER_MAX = 70
VOUCHER_FIELDS = (
    "id,version,date,number,numberAsString,tempNumber,year,description,externalVoucherNumber,"
    "reverseVoucher(id),postings(id,row,date,description,amountGross,amountGrossCurrency,"
    "account(id,number),vatType(id,number),department(id,departmentNumber),project(id,number))"
)
_ACCOUNT_FIELDS = "id,number,name,vatType(id,number),vatLocked,isInactive"
_CLIENT_FIELDS = "id,name,organizationNumber"
_LISTED_CLIENTS_MAX = 20  # in the error naming the companies a firm's token reaches
_ID_SEGMENT = re.compile(r"/\d+(?=/|$)")


class TripletexClient(HttpClient):
    """A Ledger for one Tripletex company.

    Args:
      base_url: API root, e.g. "https://tripletex.no/v2", "https://api-test.tripletex.tech/v2" or
        a sandbox "http://127.0.0.1:8900" ("/v2" is added when missing).
      consumer_token, employee_token: the integration's and the customer's tokens.
      company_id: 0 for the employee's own company, else an accountant client's company id.
      client_org_number: for an accounting firm's tokens, the client company's organisation
        number (spaces allowed); its company id is looked up once (`/company/>withLoginAccess`).
        Not together with a non-zero company_id.
      cache: where lookups are kept (default: a fresh in-memory LookupCache). Give a file-backed
        one per connection and company to share them between the clients of a run.
      session: a requests.Session to use (else one is made and closed by `close`).
      timeout: seconds per HTTP request.
      max_rate_wait: the longest 429 reset (seconds) waited out in-client.
      get_retries, retry_backoff: transient retries of GETs (and the session exchange), with
        backoff retry_backoff * 2**attempt seconds.
      read_back_after_post: after POST, GET the voucher to return it as the ledger holds it (one
        call more per voucher, unless the POST answer already carries the postings).
    """

    system = SYSTEM

    def __init__(
        self,
        base_url: str,
        consumer_token: str,
        employee_token: str,
        *,
        company_id: int = 0,
        session: requests.Session | None = None,
        timeout: float = 30.0,
        max_rate_wait: float = 60.0,
        get_retries: int = 2,
        retry_backoff: float = 0.5,
        read_back_after_post: bool = True,
        client_org_number: str | None = None,
        cache: LookupCache | None = None,
    ) -> None:
        base = base_url.rstrip("/")
        self.base_url = base if base.endswith("/v2") else base + "/v2"
        self._consumer_token = Secret(consumer_token)
        self._employee_token = Secret(employee_token)
        self._session_token: Secret | None = None
        self.company_id = int(company_id)
        self.client_org_number = _org_digits(client_org_number) if client_org_number is not None else None
        if self.client_org_number is not None and not self.client_org_number:
            raise ValueError(f"not an organisation number: {client_org_number!r}")
        if self.client_org_number and self.company_id:
            raise ValueError("give company_id or client_org_number, not both")
        self.cache = cache if cache is not None else LookupCache()
        self._http = LedgerHttp(
            SYSTEM,
            session=session,
            timeout=timeout,
            get_retries=get_retries,
            retry_backoff=retry_backoff,
            max_rate_wait=max_rate_wait,
            wait_on_writes=True,  # a 429 is refused before anything is done
            secrets=lambda: (self._consumer_token, self._employee_token, self._session_token),
        )
        self.read_back_after_post = read_back_after_post
        self.page_size = 1000  # the API's default `count`

    # ---- housekeeping ------------------------------------------------------------------------

    @classmethod
    def from_connection(
        cls, parts: ConnectionParts, *, company: str | None = None, client_org_number: str | None = None, **_: Any
    ) -> TripletexClient:
        """The client an Airflow connection describes: password = employee token, extras
        `consumer_token` and `company_id`; with `client_org_number`, an accounting firm's post
        for that client company."""
        org = "".join(ch for ch in client_org_number if ch.isdigit()) if client_org_number else None
        company_id = 0 if org else int(parts.extras.get("company_id") or 0)
        return cls(
            parts.base_url,
            str(parts.extras.get("consumer_token") or ""),
            parts.password,
            company_id=company_id,
            client_org_number=org,
            session=parts.session,
            timeout=parts.timeout,
            max_rate_wait=IN_TASK_RATE_WAIT,
            cache=parts.cache(org or str(company_id or "") or None),
            read_back_after_post=False,
        )

    def __repr__(self) -> str:
        org = f", client_org_number={self.client_org_number!r}" if self.client_org_number else ""
        return f"TripletexClient(base_url={self.base_url!r}, company_id={self.company_id}{org})"

    # ---- the Ledger protocol -----------------------------------------------------------------

    def test_connection(self) -> str:
        """Create a session and ask who we are; "Connection ok" when both work."""
        self._request("GET", "/token/session/>whoAmI", params={"fields": "employeeId,companyId"})
        return "Connection ok"

    def find(self, external_ref: str, date: dt.date | None = None) -> PostedVoucher | None:
        """The voucher carrying `external_ref` as externalVoucherNumber, posted or not, or None.

        Reversed vouchers still count as found (never post twice on a guess). More than one live
        voucher with the reference means the books already hold a duplicate: that raises, for a
        person to sort out.
        """
        data = self._request(
            "GET",
            "/ledger/voucher/>externalVoucherNumber",
            params={"externalVoucherNumber": external_ref, "fields": VOUCHER_FIELDS},
        )
        found = [v for v in (data or {}).get("values") or [] if v.get("externalVoucherNumber") == external_ref]
        if not found:
            return None
        live = [v for v in found if not v.get("reverseVoucher")]
        if len(live) > 1:
            ids = ", ".join(str(v.get("id")) for v in live)
            raise LedgerValidationError(
                SYSTEM,
                f"{len(live)} vouchers carry externalVoucherNumber {external_ref!r} (ids {ids}); "
                "the day is posted more than once, resolve it in Tripletex",
            )
        # All reversed: report the original (the lowest id), not a reversal that copied the ref.
        chosen = live[0] if live else min(found, key=lambda v: v.get("id") or 0)
        posted = self._posted(chosen)
        if date is not None and posted.date != date:
            log.warning(
                "Tripletex voucher %s with reference %s is dated %s, expected %s",
                posted.ledger_id,
                external_ref,
                posted.date,
                date,
            )
        return posted

    def get(self, ledger_id: str) -> PostedVoucher:
        """Read one voucher back by Tripletex's id."""
        data = self._request("GET", f"/ledger/voucher/{self._voucher_id(ledger_id)}", params={"fields": VOUCHER_FIELDS})
        return self._posted(self._value(data))

    def post(self, voucher: Voucher, send_to_ledger: bool = True) -> PostedVoucher:
        """POST the voucher (never retried on a transient error: call `find` first then).

        A refusal (LedgerValidationError, before sending or from Tripletex) clears the lookup
        cache, so a retry reads a chart that changed in Tripletex afresh.
        """
        try:
            body = self.render(voucher)
            data = self._request(
                "POST",
                "/ledger/voucher",
                params={"sendToLedger": "true" if send_to_ledger else "false"},
                body=body,
                retry_transient=False,
            )
        except LedgerValidationError:
            self.cache.clear()
            raise
        value = self._value(data)
        if _has_full_postings(value):
            return self._posted(value)
        if self.read_back_after_post:
            try:
                return self.get(str(value["id"]))
            except LedgerTransient as exc:
                raise LedgerTransient(
                    SYSTEM,
                    f"posted as voucher {value['id']}, but reading it back failed "
                    f"({str(exc).removeprefix(SYSTEM + ': ')}); look it up with find()",
                ) from None
        # Without a read-back, the voucher is what we sent: render() made posting row n from line n.
        sent = [
            {
                "row": p["row"],
                "account": {"id": p["account"]["id"], "number": str(line.account).strip()},
                "amountGross": p["amountGross"],
                "vatType": {"number": str(line.vat_code).strip()} if line.vat_code else None,
            }
            for p, line in zip(body["postings"], voucher.lines, strict=True)
        ]
        return self._posted({**value, "postings": sent})

    # ---- more than the protocol --------------------------------------------------------------

    def reverse(self, ledger_id: str, date: dt.date) -> PostedVoucher:
        """Reverse a voucher on `date` with Tripletex's own `:reverse`; returns the reversing voucher.

        Not retried on a transient error; called again after a lost answer, it finds the
        reversal through the original's `reverseVoucher` link instead of reversing twice.
        """
        voucher_id = self._voucher_id(ledger_id)
        current = self._value(
            self._request("GET", f"/ledger/voucher/{voucher_id}", params={"fields": "id,reverseVoucher(id)"})
        )
        done = (current.get("reverseVoucher") or {}).get("id")
        if done:
            return self.get(str(done))
        data = self._request(
            "PUT",
            f"/ledger/voucher/{voucher_id}/:reverse",
            params={"date": date.isoformat()},
            retry_transient=False,
        )
        return self.get(str(self._value(data)["id"]))

    def send_to_ledger(self, ledger_id: str) -> PostedVoucher:
        """Post a voucher left for approval (`send_to_ledger=False`) with a system number."""
        current = self._value(
            self._request("GET", f"/ledger/voucher/{self._voucher_id(ledger_id)}", params={"fields": "id,version"})
        )
        self._request(
            "PUT",
            f"/ledger/voucher/{current['id']}/:sendToLedger",
            params={"version": current.get("version", 0), "number": 0},
            retry_transient=False,
        )
        return self.get(str(current["id"]))

    def delete(self, ledger_id: str) -> None:
        """Delete a voucher (Tripletex allows it for vouchers in open periods)."""
        self._request("DELETE", f"/ledger/voucher/{self._voucher_id(ledger_id)}", retry_transient=False)

    def list_vouchers(
        self, date_from: dt.date, date_to: dt.date, *, include_non_posted: bool = False
    ) -> list[PostedVoucher]:
        """Vouchers dated date_from <= date < date_to (exclusive, as in Tripletex), all pages."""
        params = {"dateFrom": date_from.isoformat(), "dateTo": date_to.isoformat()}
        values = self._all_pages("/ledger/voucher", params)
        if include_non_posted:
            values += self._all_pages("/ledger/voucher/>nonPosted", {**params, "includeNonApproved": "true"})
        return [self._posted(v) for v in values]

    # ---- read-back -------------------------------------------------------------------------

    def balances(
        self, date_from: dt.date, date_to: dt.date, *, accounts: tuple[int, int] | None = None
    ) -> list[AccountBalance]:
        """Each account's opening, movement and closing for date_from <= date < date_to
        (`GET /balanceSheet`, dateTo exclusive), optionally for an account number range."""
        params: dict[str, Any] = {"dateFrom": date_from.isoformat(), "dateTo": date_to.isoformat()}
        if accounts:
            params.update(accountNumberFrom=accounts[0], accountNumberTo=accounts[1])
        fields = "account(number,name),balanceIn,balanceChange,balanceOut"
        return [
            AccountBalance(
                account=str((row.get("account") or {}).get("number")),
                name=str((row.get("account") or {}).get("name") or ""),
                opening=parse_ore(str(row.get("balanceIn") or 0)),
                movement=parse_ore(str(row.get("balanceChange") or 0)),
                closing=parse_ore(str(row.get("balanceOut") or 0)),
            )
            for row in self._all_pages("/balanceSheet", params, fields)
        ]

    def postings(
        self, date_from: dt.date, date_to: dt.date, *, accounts: tuple[int, int] | None = None
    ) -> list[LedgerPosting]:
        """Every posting dated date_from <= date < date_to (`GET /ledger/posting`, paged until a
        short page), ours and others', VAT rows included, optionally for an account number range."""
        params: dict[str, Any] = {"dateFrom": date_from.isoformat(), "dateTo": date_to.isoformat()}
        if accounts:
            params.update(accountNumberFrom=accounts[0], accountNumberTo=accounts[1])
        fields = (
            "voucher(id,number,year,externalVoucherNumber),date,description,account(number),vatType(number),"
            "amount,amountGross,row,systemGenerated"
        )
        found = []
        for row in self._all_pages("/ledger/posting", params, fields):
            voucher = row.get("voucher") or {}
            number = voucher.get("number")
            found.append(
                LedgerPosting(
                    voucher_id=str(voucher.get("id")),
                    voucher_number=f"{number}-{voucher.get('year')}" if number else "",
                    date=dt.date.fromisoformat(str(row.get("date"))[:10]),
                    account=str((row.get("account") or {}).get("number")),
                    amount=parse_ore(str(row.get("amount"))),
                    gross=parse_ore(str(row.get("amountGross"))),
                    vat_code=_standard_code((row.get("vatType") or {}).get("number")),
                    description=str(row.get("description") or ""),
                    external_ref=str(voucher.get("externalVoucherNumber") or ""),
                    system_generated=bool(row.get("systemGenerated")),
                )
            )
        return found

    def accounts(self) -> list[LedgerAccount]:
        """The chart of accounts, inactive accounts included (`GET /ledger/account`, all pages),
        with each account's VAT type and lock; the lookup cache is filled on the way, so the posts
        that follow resolve their accounts without a call.

        INFERRED: without the `isInactive` filter ("Equals" in the spec) the list holds active and
        inactive accounts alike.
        """
        values = self._all_pages("/ledger/account", {}, _ACCOUNT_FIELDS)
        infos = {str(v.get("number")): _account_info(v) for v in values if v.get("id") is not None}
        self.cache.put("accounts", infos)
        return [
            LedgerAccount(
                number=str(v.get("number")),
                name=str(v.get("name") or ""),
                active=not v.get("isInactive"),
                vat_code=_standard_code((v.get("vatType") or {}).get("number")),
                vat_locked=bool(v.get("vatLocked")),
            )
            for v in values
        ]

    def vat_codes(self) -> list[LedgerVatCode]:
        """Every VAT type of the company (`GET /ledger/vatType`, all pages). A Tripletex vatType's
        `number` is the standard code, as `resolve_vat_types` uses it; its id is what a posting takes.
        The code -> id table of the lookup cache is filled on the way."""
        values = self._all_pages("/ledger/vatType", {}, "id,number,name,percentage")
        ids: dict[str, int] = {}
        for value in values:
            ids.setdefault(str(value.get("number")), int(value["id"]))
        self.cache.put("vat_types", ids)
        return [
            LedgerVatCode(
                code=str(v.get("number")),
                own_id=str(v.get("id")),
                name=str(v.get("name") or ""),
                rate=Decimal(str(v.get("percentage") or 0)),
            )
            for v in values
        ]

    def render(self, voucher: Voucher) -> dict[str, Any]:
        """The POST /ledger/voucher body for a voucher, resolving every lookup first.

        Raises LedgerValidationError before anything is sent when an account, VAT code,
        department or project is unknown, or a line's VAT code fights a vatLocked account.
        """
        if not voucher.lines:
            raise LedgerValidationError(SYSTEM, f"voucher {voucher.external_ref} has no lines")
        if len(voucher.external_ref) > EXTERNAL_VOUCHER_NUMBER_MAX:
            raise LedgerValidationError(
                SYSTEM,
                f"external reference {voucher.external_ref!r} is longer than "
                f"{EXTERNAL_VOUCHER_NUMBER_MAX} characters (externalVoucherNumber)",
            )
        infos = self._account_infos(line.account for line in voucher.lines)
        accounts = {number: int(info["id"]) for number, info in infos.items()}
        vat_ids = self.resolve_vat_types(line.vat_code for line in voucher.lines if line.vat_code)
        self._check_vat_locks(voucher, infos)
        customers = self._customer_ids(voucher)
        day = voucher.business_day.isoformat()
        postings = []
        for row, line in enumerate(voucher.lines, start=1):
            amount = ore_to_decimal(line.amount)
            posting: dict[str, Any] = {
                "row": row,
                "date": day,
                "description": line.description,
                "account": {"id": accounts[str(line.account).strip()]},
                "amountGross": amount,
                "amountGrossCurrency": amount,
            }
            if line.vat_code:
                posting["vatType"] = {"id": vat_ids[line.vat_code]}
            if line.department:
                posting["department"] = {"id": self.department_id(line.department)}
            if line.project:
                posting["project"] = {"id": self.project_id(line.project)}
            if line.customer:
                posting["customer"] = {"id": customers[line.customer]}
            postings.append(posting)
        return {
            "date": day,
            "description": voucher.description,
            "externalVoucherNumber": voucher.external_ref,
            "postings": postings,
        }

    # ---- lookups -----------------------------------------------------------------------------

    def resolve_accounts(self, numbers: Iterable[str]) -> dict[str, int]:
        """Account number -> Tripletex account id, in one call for all numbers not cached."""
        return {number: int(info["id"]) for number, info in self._account_infos(numbers).items()}

    def _account_infos(self, numbers: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Account number -> {id, number, vatType, vatLocked, isInactive}, from the cache or one GET."""
        wanted = list(dict.fromkeys(str(n).strip() for n in numbers))
        bad = [n for n in wanted if not n.isdigit()]
        if bad:
            raise LedgerValidationError(
                SYSTEM,
                "not Tripletex account numbers (digits only; 'XXXX:YYYYY' is Fiken's "
                f"sub-account syntax): {', '.join(bad)}",
            )
        infos: dict[str, dict[str, Any] | None] = {n: self.cache.get("accounts", n) for n in wanted}
        missing = [n for n, info in infos.items() if info is None]
        if missing:
            data = self._request(
                "GET",
                "/ledger/account",
                params={"number": ",".join(missing), "fields": _ACCOUNT_FIELDS, "count": 1000},
            )
            fetched = {str(v.get("number")): _account_info(v) for v in (data or {}).get("values") or []}
            self.cache.put("accounts", fetched)
            infos.update({n: fetched.get(n) for n in missing})
            unknown = [n for n in missing if infos[n] is None]
            if unknown:
                raise LedgerValidationError(
                    SYSTEM, f"accounts not in the Tripletex chart of accounts: {', '.join(unknown)}"
                )
        found = {n: info for n, info in infos.items() if info is not None}
        inactive = [n for n in wanted if found[n].get("isInactive")]
        if inactive:
            raise LedgerValidationError(SYSTEM, f"accounts inactive in Tripletex: {', '.join(inactive)}")
        return found

    def account_id(self, number: str) -> int:
        """The Tripletex id of account `number` (cached)."""
        return self.resolve_accounts([number])[str(number).strip()]

    def resolve_vat_types(self, codes: Iterable[str]) -> dict[str, int]:
        """Standard VAT code -> Tripletex vatType id, in one call for all codes not cached."""
        wanted = list(dict.fromkeys(str(c).strip() for c in codes))
        ids: dict[str, int | None] = {c: self.cache.get("vat_types", c) for c in wanted}
        missing = [c for c, vid in ids.items() if vid is None]
        if missing:
            data = self._request(
                "GET",
                "/ledger/vatType",
                params={"number": ",".join(missing), "fields": "id,number,percentage"},
            )
            fetched: dict[str, int] = {}
            for value in (data or {}).get("values") or []:
                fetched.setdefault(str(value.get("number")), int(value["id"]))
            self.cache.put("vat_types", fetched)
            ids.update({c: fetched.get(c) for c in missing})
            unknown = [c for c in missing if ids[c] is None]
            if unknown:
                raise LedgerValidationError(SYSTEM, f"VAT codes unknown to Tripletex: {', '.join(unknown)}")
        return {c: int(vid) for c, vid in ids.items() if vid is not None}

    def vat_type_id(self, code: str) -> int:
        """The Tripletex vatType id of a standard VAT code such as "3" (cached)."""
        return self.resolve_vat_types([code])[str(code).strip()]

    def department_id(self, number: str) -> int:
        """The id of the department with this departmentNumber (cached)."""
        number = str(number).strip()
        cached = self.cache.get("departments", number)
        if cached is not None:
            return int(cached)
        data = self._request(
            "GET",
            "/department",
            params={"departmentNumber": number, "fields": "id,departmentNumber,name"},
        )
        # The filter is "containing": pick the exact number.
        exact = [v for v in (data or {}).get("values") or [] if str(v.get("departmentNumber")) == number]
        if not exact:
            raise LedgerValidationError(SYSTEM, f"department {number} not found in Tripletex")
        self.cache.put("departments", {number: int(exact[0]["id"])})
        return int(exact[0]["id"])

    def project_id(self, number: str) -> int:
        """The id of the project with this number (cached)."""
        number = str(number).strip()
        cached = self.cache.get("projects", number)
        if cached is not None:
            return int(cached)
        data = self._request("GET", "/project", params={"number": number, "fields": "id,number,name,isClosed"})
        exact = [v for v in (data or {}).get("values") or [] if str(v.get("number")) == number]
        if not exact:
            raise LedgerValidationError(SYSTEM, f"project {number} not found in Tripletex")
        self.cache.put("projects", {number: int(exact[0]["id"])})
        return int(exact[0]["id"])

    def _customer_ids(self, voucher: Voucher) -> dict[str, int]:
        """The Tripletex customer of each POS customer on the voucher's lines (credit sales on the
        customer account): cached per vendor and POS customer id, else found by organisation number,
        e-mail or name, else created from the mapping's `customer_number_start` (the voucher's meta
        says who each customer is, as the POS declares them)."""
        customers, start = voucher_customers(voucher)
        if not customers:
            return {}
        from kassebro.ledgers.tripletex_invoicing import TripletexInvoicing

        ids: dict[str, int] = {}
        for key, who in customers.items():
            cache_key = f"{voucher.vendor_id}:{key}"
            cached = self.cache.get("pos_customers", cache_key)
            if cached is None:
                cached = TripletexInvoicing(self).find_or_create(who, start).id
                self.cache.put("pos_customers", {cache_key: cached})
            ids[key] = int(cached)
        return ids

    def _check_vat_locks(self, voucher: Voucher, infos: Mapping[str, Mapping[str, Any]]) -> None:
        problems = []
        for line in voucher.lines:
            info = infos.get(str(line.account).strip()) or {}
            if not info.get("vatLocked"):
                continue
            locked = str((info.get("vatType") or {}).get("number") or "0")
            given = line.vat_code or "0"
            if given != locked:
                problems.append(
                    f"account {line.account} is locked to VAT code {locked}, the line has {line.vat_code or 'none'}"
                )
        if problems:
            raise LedgerValidationError(SYSTEM, "; ".join(dict.fromkeys(problems)))

    def _account_numbers(self) -> dict[int, str]:
        """Account id -> number, for postings that name the account by id only."""
        return {int(info["id"]): number for number, info in self.cache.table("accounts").items()}

    # ---- the client company of an accounting firm --------------------------------------------

    def _target_company(self) -> int:
        """The Basic user: company_id, or the id of client_org_number's company (looked up once)."""
        if self.company_id or self.client_org_number is None:
            return self.company_id
        cached = self.cache.get("company", self.client_org_number)
        if cached is None:
            cached = self._client_company_id(self.client_org_number)
            self.cache.put("company", {self.client_org_number: cached})
        self.company_id = int(cached)
        return self.company_id

    def firm_clients(self) -> list[FirmClient]:
        """The client companies an accounting firm's employee token may log in to
        (`GET /company/>withLoginAccess`), for a read-back of every client."""
        listed = self._all_pages("/company/>withLoginAccess", {}, fields=_CLIENT_FIELDS, own_company=True)
        return [
            FirmClient(
                ledger_id=str(c["id"]),
                org_number=_org_digits(c.get("organizationNumber")),
                name=str(c.get("name") or ""),
            )
            for c in listed
            if isinstance(c.get("id"), int)
        ]

    def _client_company_id(self, org_number: str) -> int:
        """The id of the company with this organisation number among those the firm may log in to."""
        listed = self._all_pages("/company/>withLoginAccess", {}, fields=_CLIENT_FIELDS, own_company=True)
        clients = [c for c in listed if isinstance(c.get("id"), int)]
        ids = sorted({int(c["id"]) for c in clients if _org_digits(c.get("organizationNumber")) == org_number})
        if len(ids) == 1:
            return ids[0]
        if ids:
            raise LedgerAuthError(
                SYSTEM,
                f"organisation number {org_number} matches several companies the employee token may log "
                f"in to (ids {', '.join(map(str, ids))}); set company_id to the right one",
            )
        reached = [f"{_org_digits(c.get('organizationNumber')) or '?'} ({c.get('name') or '?'})" for c in clients]
        listing = ", ".join(reached[:_LISTED_CLIENTS_MAX]) or "no client companies at all"
        if len(reached) > _LISTED_CLIENTS_MAX:
            listing += f" and {len(reached) - _LISTED_CLIENTS_MAX} more"
        raise LedgerAuthError(
            SYSTEM,
            f"the accounting firm's employee token has no login access to organisation number "
            f"{org_number} (GET /company/>withLoginAccess); it reaches {listing}",
        )

    # ---- HTTP --------------------------------------------------------------------------------

    def _redact(self, text: str) -> str:
        return self._http.redact(text)

    def _create_session(self) -> None:
        expiration = (dt.date.today() + dt.timedelta(days=1)).isoformat()
        body = {
            "consumerToken": self._consumer_token.reveal(),
            "employeeToken": self._employee_token.reveal(),
            "expirationDate": expiration,
        }
        try:
            data = self._request("POST", "/token/session/:create", body=body, auth=False)
        except (LedgerValidationError, LedgerAuthError) as exc:
            raise self._session_error(exc) from None
        token = (self._value(data) or {}).get("token")
        if not token:
            raise LedgerAuthError(SYSTEM, "session token missing in the answer to :create")
        self._session_token = Secret(str(token))
        log.info("Tripletex session created (valid until %s)", expiration)

    def _session_error(self, exc: LedgerValidationError | LedgerAuthError) -> LedgerAuthError:
        """Say which token is the likely culprit; the server's text is already redacted."""
        detail = str(exc).removeprefix(f"{SYSTEM}: ")
        status = getattr(exc, "status", None)
        fields = " ".join(getattr(exc, "fields", ()))
        if "consumerToken" in fields:
            culprit = (
                "the consumer token (the integration's) was rejected: check it belongs to this "
                "environment (production and test have separate tokens)"
            )
        elif "employeeToken" in fields or status == 404:
            culprit = (
                "the employee token was rejected: it is wrong, revoked or expired, or was made "
                "for another consumer token (the customer's admin makes it under API access)"
            )
        else:
            culprit = "the consumer or employee token was rejected"
        return LedgerAuthError(SYSTEM, f"could not create a session: {culprit} ({detail})")

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        auth: bool = True,
        retry_transient: bool | None = None,
        own_company: bool = False,
    ) -> Any:
        """One API call with auth and Tripletex's error kinds; returns the parsed JSON or None.

        `own_company` makes the call as Basic user 0 (the employee's own company), as the
        lookup of an accounting firm's clients must be.
        """
        data = encode_json(body).encode("utf-8") if body is not None else None

        def headers() -> dict[str, str]:
            sent = {"Accept": "application/json"}
            if data is not None:
                sent["Content-Type"] = "application/json; charset=utf-8"
            if auth:
                sent["Authorization"] = self._authorization(own_company=own_company)
            return sent

        response = self._http.send(
            method,
            self.base_url + path,
            f"{method} {_ID_SEGMENT.sub('/{id}', path)}",
            headers=headers,
            params=params,
            data=data,
            idempotent=(method == "GET" or not auth) if retry_transient is None else retry_transient,
            judge=lambda response: self._judge(method, path, response),
            reauthenticate=self._renew_session if auth else None,
        )
        return _parse_json(response) if response.content else None

    def _renew_session(self, response: requests.Response) -> bool:
        self._session_token = None
        return True

    def _judge(self, method: str, path: str, response: requests.Response) -> LedgerError | None:
        """Tripletex's error kinds: 429 with X-Rate-Limit-Reset, 5xx transient, 401/403 auth, else refused."""
        status = response.status_code
        request_id = response.headers.get("x-tlx-request-id", "")
        log.debug("Tripletex %s %s -> %s (request id %s)", method, path, status, request_id)
        if 200 <= status < 300:
            return None
        if status == 429:
            reset = retry_after(response, 5.0, ("X-Rate-Limit-Reset", "Retry-After"))
            return LedgerRateLimited(
                SYSTEM,
                f"{method} {path}: rate limited, retry in {reset:g} s (request id {request_id})",
                retry_after=reset,
            )
        error = self._error_text(method, path, response)
        if status >= 500:
            return LedgerTransient(SYSTEM, error)
        exc = (LedgerAuthError if status in (401, 403) else LedgerValidationError)(SYSTEM, error)
        exc.status = status  # type: ignore[attr-defined]
        exc.fields = _error_fields(response)  # type: ignore[attr-defined]
        return exc

    def _authorization(self, *, own_company: bool = False) -> str:
        if self._session_token is None:
            self._create_session()
        user = 0 if own_company else self._target_company()
        assert self._session_token is not None
        raw = f"{user}:{self._session_token.reveal()}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")

    def _error_text(self, method: str, path: str, response: requests.Response) -> str:
        """ "POST /ledger/voucher: 422 Validering feilet. postings.row: ... (request id ...)"."""
        request_id = response.headers.get("x-tlx-request-id", "")
        try:
            body = _parse_json(response)
        except ValueError:
            body = None
        parts = [f"{method} {path}: {response.status_code}"]
        if isinstance(body, dict):
            request_id = body.get("requestId") or request_id
            if body.get("message"):
                parts.append(str(body["message"]))
            details = [
                f"{m.get('field') or m.get('path') or '?'}: {m.get('message')}"
                for m in body.get("validationMessages") or []
                if isinstance(m, dict)
            ]
            if details:
                parts.append("; ".join(details))
            elif body.get("developerMessage"):
                parts.append(str(body["developerMessage"]))
        elif response.text:
            parts.append(response.text[:200])
        if request_id:
            parts.append(f"(request id {request_id})")
        return self._redact(" ".join(parts))

    def _all_pages(
        self, path: str, params: Mapping[str, Any], fields: str = VOUCHER_FIELDS, *, own_company: bool = False
    ) -> list[dict[str, Any]]:
        """Every page, until a short one: apis.md §8 says `fullResultSize` is not exact."""
        values: list[dict[str, Any]] = []
        start = 0
        while True:
            query = {**params, "from": start, "count": self.page_size, "fields": fields}
            data = self._request("GET", path, params=query, own_company=own_company) or {}
            page = data.get("values") or []
            values.extend(page)
            start += len(page)
            if len(page) < self.page_size:
                return values

    # ---- parsing -----------------------------------------------------------------------------

    @staticmethod
    def _value(data: Any) -> dict[str, Any]:
        if not isinstance(data, dict) or not isinstance(data.get("value"), dict):
            raise LedgerTransient(SYSTEM, "unexpected answer: no 'value' object")
        return data["value"]

    @staticmethod
    def _voucher_id(ledger_id: str | int) -> int:
        try:
            return int(str(ledger_id).strip())
        except ValueError:
            raise LedgerValidationError(SYSTEM, f"not a Tripletex voucher id: {ledger_id!r}") from None

    def _posted(self, value: Mapping[str, Any]) -> PostedVoucher:
        """A voucher as PostedVoucher: user rows only (row >= 1), gross, in row order."""
        postings = []
        numbers_by_id: dict[int, str] | None = None
        raw_postings = [p for p in value.get("postings") or [] if isinstance(p, dict)]
        for p in sorted(raw_postings, key=lambda p: (p.get("row") or 0, p.get("id") or 0)):
            row = p.get("row")
            if not isinstance(row, int) or row < 1:
                continue
            account = p.get("account") or {}
            number = account.get("number")
            if number is None:
                numbers_by_id = self._account_numbers() if numbers_by_id is None else numbers_by_id
                number = numbers_by_id.get(int(account.get("id") or 0))
            if number is None or p.get("amountGross") is None:
                raise LedgerTransient(SYSTEM, f"voucher {value.get('id')}: posting {p.get('id')} incomplete")
            vat_code = _standard_code((p.get("vatType") or {}).get("number"))
            postings.append((str(number), parse_ore(str(p["amountGross"])), vat_code))
        number = int(value.get("number") or 0)
        return PostedVoucher(
            ledger_id=str(value.get("id")),
            number=str(value.get("numberAsString") or (number if number else "")),
            external_ref=str(value.get("externalVoucherNumber") or ""),
            date=dt.date.fromisoformat(str(value.get("date"))[:10]),
            postings=tuple(postings),
            in_ledger=number > 0,
        )


def _parse_json(response: requests.Response) -> Any:
    return json.loads(response.content.decode("utf-8"), parse_float=Decimal)


def _standard_code(vat_number: Any) -> str | None:
    """A Tripletex vatType `number` as kassebro's standard VAT code: the number itself, and None
    for "0" ("no VAT treatment", also what Tripletex puts on a posting sent without vatType)."""
    return None if vat_number in (None, "", "0") else str(vat_number)


def _org_digits(value: Any) -> str:
    """An organisation number as digits only ("999 999 999" and "999999999" are the same)."""
    return "".join(ch for ch in str(value or "") if ch.isdigit())


def _account_info(value: Mapping[str, Any]) -> dict[str, Any]:
    """What the cache keeps of an account (JSON-serialisable): id, number, VAT lock, inactive."""
    vat = value.get("vatType") or {}
    return {
        "id": int(value["id"]),
        "number": str(value.get("number")),
        "vatType": {"id": vat.get("id"), "number": str(vat.get("number"))} if vat.get("number") is not None else None,
        "vatLocked": bool(value.get("vatLocked")),
        "isInactive": bool(value.get("isInactive")),
    }


def _has_full_postings(value: Mapping[str, Any]) -> bool:
    postings = value.get("postings")
    return bool(postings) and all(
        isinstance(p, dict) and "row" in p and "amountGross" in p and "number" in (p.get("account") or {})
        for p in postings
    )


def _error_fields(response: requests.Response) -> tuple[str, ...]:
    try:
        body = _parse_json(response)
    except ValueError:
        return ()
    if not isinstance(body, dict):
        return ()
    return tuple(
        str(m.get("field") or m.get("path") or "") for m in body.get("validationMessages") or [] if isinstance(m, dict)
    )
