"""PowerOffice Go API v2 client: post a day's voucher, look it up, read it back.

Plain `requests`, no Airflow. What it does about the API's habits (brief `apis.md` §3):

- Auth: an access token from `POST <token_url>` (client credentials: Basic
  base64(applicationKey:clientKey), form `grant_type=client_credentials`, header
  `Ocp-Apim-Subscription-Key`), fetched lazily and fetched again `refresh_margin` seconds before
  `expires_in` runs out (600 s in the spec), and once more when a call still gets 401. API calls
  send `Authorization: Bearer` and the subscription key. Key and token values never appear in
  exceptions, reprs or logs (`_Secret`, and every server text is redacted); errors name the
  credential instead: a gateway 401 about the subscription key names the subscription key, an
  `invalid_client` from the token endpoint the application key or client key (the API does not
  say which of the two).
- Lookups are cached per client: account number -> AccountId (`GET /GeneralLedgerAccounts?accountNos=`,
  one call for all numbers of a voucher) and VAT code -> VatId (`GET /VatCodes`, once).
  kassebro's standard codes ("3", "31", "33", "5", "6", ...) are SAF-T standard tax codes, which is
  what Go's `VatCodeDto.Code` holds for standard codes, so they map by equal Code; a line without
  VAT (None) goes out with the VatId of code "0" ("no VAT treatment"; VatId is required on a
  line), and "0" reads back as None.
- Post: `send_to_ledger=True` -> `POST /Vouchers/ManualJournals` with gross signed CurrencyAmount,
  VatId per line, `ExternalImportReference = voucher.external_ref`. Go refuses a second voucher
  with the same reference; the refusal's status is undocumented (400 or 409 with a text about the
  reference, INFERRED), so on such a refusal the client calls `find` and returns the voucher
  already there (no second voucher), and re-raises the refusal if find has nothing.
  `send_to_ledger=False` -> `POST /JournalEntryVouchers/ManualJournals` (one side per line:
  Debit* for positive amounts, Credit* for negative, CurrencyAmount = |gross|) plus
  `POST /JournalEntryVouchers/{id}/submitForApproval`. Drafts have no ExternalImportReference, so
  the reference is appended to the draft's Description as " [ref]" and `find` recognises it there.
- Exactly once: a POST is never retried (LedgerTransient says the outcome is unknown; call `find`).
  GETs are retried `get_retries` times on 5xx/transport errors.
- find(ref, date): `GET /AccountTransactions?fromDate=date&toDate=date` filtered on
  ExternalImportReference, then `GET /Vouchers/ManualJournals/{VoucherId}`; if none, the drafts
  this integration created (`GET /JournalEntryVouchers?isPosted=false`, then each draft).
- Errors: ProblemDetails 400/404/409/422 -> LedgerValidationError with Title, Detail and Errors;
  401/403 -> LedgerAuthError naming the credential or the missing privilege; 429 ->
  LedgerRateLimited(Retry-After, or the seconds in the gateway's message); 5xx, timeouts, dropped
  connections -> LedgerTransient.
- `calls` counts HTTP requests by "METHOD /path" (ids as {id}).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

import requests

from kassebro.ledgers.base import (
    LedgerAuthError,
    LedgerRateLimited,
    LedgerTransient,
    LedgerValidationError,
    PostedVoucher,
)
from kassebro.ledgers.tripletex import _Secret, encode_json
from kassebro.money import ore_to_decimal, parse_ore
from kassebro.voucher import Voucher

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
_ID_SEGMENT = re.compile(r"/(\d+|[0-9a-fA-F-]{36})(?=/|$)")
_DRAFT_REF = re.compile(r" \[([^\[\]]+)\]$")
_RETRY_IN = re.compile(r"(\d+(?:\.\d+)?)\s*second")


class PowerOfficeClient:
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
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        base = base_url.rstrip("/")
        self.base_url = base if base.lower().endswith("/v2") else base + "/v2"
        self.token_url = token_url
        self._application_key = _Secret(application_key)
        self._client_key = _Secret(client_key)
        self._subscription_key = _Secret(subscription_key)
        self._token: _Secret | None = None
        self._token_expires = 0.0
        self._http = session or requests.Session()
        self._owns_http = session is None
        self.timeout = timeout
        self.refresh_margin = refresh_margin
        self.get_retries = get_retries
        self.retry_backoff = retry_backoff
        self._clock = clock
        self.calls: Counter[str] = Counter()
        self._accounts: dict[str, int] = {}
        self._account_numbers: dict[int, str] = {}
        self._vat_ids: dict[str, int] | None = None

    # ---- housekeeping ------------------------------------------------------------------------

    def __repr__(self) -> str:
        return f"PowerOfficeClient(base_url={self.base_url!r})"

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> PowerOfficeClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def call_count(self) -> int:
        return sum(self.calls.values())

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
        approval = "" if APPROVAL_PRIVILEGE in valid else f" (no {APPROVAL_PRIVILEGE}: posting for approval is off)"
        return f"Connected to PowerOffice Go client {name!r}{approval}"

    def find(self, external_ref: str, date: dt.date | None) -> PostedVoucher | None:
        """The voucher carrying `external_ref` posted with date `date`, or a draft with it, or None."""
        if date is None:
            raise LedgerValidationError(SYSTEM, "find needs the voucher date (AccountTransactions is searched by date)")
        day = date.isoformat()
        rows = self._request("GET", "/AccountTransactions", params={"fromDate": day, "toDate": day}) or []
        ids = list(dict.fromkeys(r.get("VoucherId") for r in rows if r.get("ExternalImportReference") == external_ref))
        live = list(
            dict.fromkeys(
                r.get("VoucherId")
                for r in rows
                if r.get("ExternalImportReference") == external_ref and not r.get("IsReversed")
            )
        )
        if len(live) > 1:
            raise LedgerValidationError(
                SYSTEM,
                f"{len(live)} vouchers carry ExternalImportReference {external_ref!r} (ids {', '.join(live)}); "
                "resolve it in Go",
            )
        if live or ids:
            return self.get(str((live or ids)[0]))
        return self._find_draft(external_ref)

    def get(self, ledger_id: str) -> PostedVoucher:
        """Read a voucher back: a posted manual voucher, else a journal-entry draft."""
        try:
            data = self._request("GET", f"/Vouchers/ManualJournals/{ledger_id}")
        except LedgerValidationError as exc:
            if getattr(exc, "status", None) != 404:
                raise
            data = None
        if data:
            return self._posted(data)
        return self._posted_draft(self._request("GET", f"/JournalEntryVouchers/ManualJournals/{ledger_id}") or {})

    def post(self, voucher: Voucher, send_to_ledger: bool = True) -> PostedVoucher:
        """POST the voucher (never retried); a duplicate-reference refusal returns the existing one."""
        if not send_to_ledger:
            return self._post_for_approval(voucher)
        body = self.render(voucher)
        try:
            data = self._request("POST", "/Vouchers/ManualJournals", body=body)
        except LedgerValidationError as exc:
            if not _is_duplicate_refusal(exc):
                raise
            existing = self.find(voucher.external_ref, voucher.business_day)
            if existing is None:
                raise
            log.info("PowerOffice Go already holds %s as voucher %s", voucher.external_ref, existing.ledger_id)
            return existing
        return self._posted(data or {})

    # ---- more than the protocol --------------------------------------------------------------

    def render(self, voucher: Voucher) -> dict[str, Any]:
        """The POST /Vouchers/ManualJournals body, resolving every lookup first."""
        if not voucher.lines:
            raise LedgerValidationError(SYSTEM, f"voucher {voucher.external_ref} has no lines")
        accounts = self.resolve_accounts(line.account for line in voucher.lines)
        day = voucher.business_day.isoformat()
        lines = []
        for line in voucher.lines:
            entry: dict[str, Any] = {
                "AccountId": accounts[line.account],
                "PostingDate": day,
                "VatId": self.vat_id(line.vat_code),
                "CurrencyAmount": ore_to_decimal(line.amount),
            }
            if line.description:
                entry["Description"] = line.description
            if line.department or line.project:
                raise LedgerValidationError(SYSTEM, "departments and projects are not supported for PowerOffice Go yet")
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
            if "Description" in line:
                entry["Description"] = line["Description"]
            lines.append(entry)
        return {
            "CurrencyCode": "NOK",
            "VoucherDate": body["VoucherDate"],
            "Description": f"{voucher.description} [{voucher.external_ref}]",
            "ManualVoucherLines": lines,
        }

    def resolve_accounts(self, numbers: Iterable[str]) -> dict[str, int]:
        """Account number -> AccountId, one call for all numbers not cached."""
        wanted = list(dict.fromkeys(str(n).strip() for n in numbers))
        bad = [n for n in wanted if not n.isdigit()]
        if bad:
            raise LedgerValidationError(SYSTEM, f"not PowerOffice Go account numbers (digits only): {', '.join(bad)}")
        missing = [n for n in wanted if n not in self._accounts]
        if missing:
            rows = self._request("GET", "/GeneralLedgerAccounts", params={"accountNos": ",".join(missing)}) or []
            inactive = []
            for row in rows:
                number = str(row.get("AccountNo"))
                if row.get("IsActive") is False:
                    inactive.append(number)
                    continue
                self._accounts[number] = int(row["Id"])
                self._account_numbers[int(row["Id"])] = number
            unknown = [n for n in missing if n not in self._accounts]
            if unknown:
                raise LedgerValidationError(
                    SYSTEM,
                    f"accounts unknown or inactive in PowerOffice Go: {', '.join(unknown)}",
                )
        return {n: self._accounts[n] for n in wanted}

    def vat_id(self, code: str | None) -> int:
        """The VatId of a standard VAT code (None -> code "0"), from one cached /VatCodes call."""
        if self._vat_ids is None:
            rows = self._request("GET", "/VatCodes") or []
            self._vat_ids = {}
            for row in rows:
                if row.get("IsActive") is False or row.get("IsCustom"):
                    continue
                self._vat_ids.setdefault(str(row.get("Code")), int(row["Id"]))
        wanted = str(code).strip() if code else NO_VAT_CODE
        if wanted not in self._vat_ids:
            raise LedgerValidationError(SYSTEM, f"VAT code {wanted} unknown to PowerOffice Go")
        return self._vat_ids[wanted]

    def submit_for_approval(self, ledger_id: str, comment: str = "") -> dict[str, Any]:
        body = {"Comment": comment} if comment else {}
        return self._request("POST", f"/JournalEntryVouchers/{ledger_id}/submitForApproval", body=body) or {}

    def _post_for_approval(self, voucher: Voucher) -> PostedVoucher:
        existing = self._find_draft(voucher.external_ref)
        if existing is not None:
            return existing
        data = self._request("POST", "/JournalEntryVouchers/ManualJournals", body=self.render_draft(voucher)) or {}
        draft_id = str(data.get("Id"))
        self.submit_for_approval(draft_id, comment=f"kassebro {voucher.external_ref}")
        return self._posted_draft(data)

    def _find_draft(self, external_ref: str) -> PostedVoucher | None:
        try:
            items = self._request("GET", "/JournalEntryVouchers", params={"isPosted": "false"}) or []
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
                return self._posted_draft(draft)
        return None

    # ---- HTTP --------------------------------------------------------------------------------

    def _redact(self, text: str) -> str:
        for secret in (self._application_key, self._client_key, self._subscription_key, self._token):
            value = secret.reveal() if secret is not None else ""
            if value:
                text = text.replace(value, "***")
        return text

    def _fetch_token(self) -> None:
        raw = f"{self._application_key.reveal()}:{self._client_key.reveal()}".encode()
        headers = {
            "Authorization": "Basic " + base64.b64encode(raw).decode("ascii"),
            "Ocp-Apim-Subscription-Key": self._subscription_key.reveal(),
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
            "Accept": "application/json",
        }
        started = self._clock()
        response = self._send(
            "POST",
            self.token_url,
            "POST /OAuth/Token",
            headers=headers,
            data=b"grant_type=client_credentials",
            retry=True,
        )
        body = _json_or_none(response)
        if response.status_code == 200 and isinstance(body, dict) and body.get("access_token"):
            self._token = _Secret(str(body["access_token"]))
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
        self._raise_for(response, "POST", "/OAuth/Token")
        raise LedgerAuthError(SYSTEM, f"the token endpoint answered {response.status_code} without a token")

    def _bearer(self) -> str:
        if self._token is None or self._clock() >= self._token_expires - self.refresh_margin:
            self._fetch_token()
        assert self._token is not None
        return "Bearer " + self._token.reveal()

    def _request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None, body: Any = None) -> Any:
        """One API call: auth, a new token once on 401, GET retries, error mapping; parsed JSON or None."""
        key = f"{method} {_ID_SEGMENT.sub('/{id}', path)}"
        data = encode_json(body).encode("utf-8") if body is not None else None
        refreshed = False
        while True:
            headers = {
                "Accept": "application/json",
                "Authorization": self._bearer(),
                "Ocp-Apim-Subscription-Key": self._subscription_key.reveal(),
            }
            if data is not None:
                headers["Content-Type"] = "application/json; charset=utf-8"
            response = self._send(
                method, self.base_url + path, key, headers=headers, params=params, data=data, retry=method == "GET"
            )
            if response.status_code == 401 and not refreshed and not _is_subscription_error(response):
                refreshed = True
                self._token = None
                continue
            if 200 <= response.status_code < 300:
                return _json_or_none(response) if response.content else None
            self._raise_for(response, method, path)

    def _send(
        self,
        method: str,
        url: str,
        key: str,
        *,
        headers: Mapping[str, str],
        params: Mapping[str, Any] | None = None,
        data: bytes | None = None,
        retry: bool,
    ) -> requests.Response:
        """The HTTP exchange with transport/5xx retries for idempotent calls; a 5xx is returned last."""
        attempt = 0
        while True:
            self.calls[key] += 1
            try:
                response = self._http.request(
                    method, url, params=params, data=data, headers=dict(headers), timeout=self.timeout
                )
            except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema) as exc:
                raise LedgerValidationError(SYSTEM, f"bad URL: {self._redact(str(exc))}") from None
            except requests.RequestException as exc:
                reason = _transient_reason(exc)
                log.warning("PowerOffice Go %s: %s", key, reason)
                if retry and attempt < self.get_retries:
                    time.sleep(self.retry_backoff * (2**attempt))
                    attempt += 1
                    continue
                raise LedgerTransient(
                    SYSTEM, f"{key}: {reason}" + ("" if retry else "; the outcome is unknown, look it up first")
                ) from None
            if response.status_code >= 500 and retry and attempt < self.get_retries:
                time.sleep(self.retry_backoff * (2**attempt))
                attempt += 1
                continue
            return response

    def _raise_for(self, response: requests.Response, method: str, path: str) -> None:
        status = response.status_code
        body = _json_or_none(response)
        text = self._error_text(method, path, status, body, response)
        if status == 429:
            retry_after = _retry_after(response, body)
            raise LedgerRateLimited(SYSTEM, f"{text}; retry in {retry_after:g} s", retry_after=retry_after)
        if status >= 500:
            raise LedgerTransient(
                SYSTEM, text + ("" if method == "GET" else "; the outcome is unknown, look it up first")
            )
        if status == 401:
            if _is_subscription_error(response):
                culprit = "the subscription key (Ocp-Apim-Subscription-Key) was rejected"
            else:
                culprit = (
                    "the access token was refused after a fresh one was fetched; "
                    "check the application key and client key"
                )
            exc: Exception = LedgerAuthError(SYSTEM, f"{culprit} ({text})")
        elif status == 403:
            exc = LedgerAuthError(SYSTEM, f"the integration lacks a privilege for this call ({text})")
        else:
            exc = LedgerValidationError(SYSTEM, text)
        exc.status = status  # type: ignore[attr-defined]
        exc.problem = body if isinstance(body, dict) else {}  # type: ignore[attr-defined]
        raise exc

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

    def _vat_codes_by_id(self) -> dict[int, str]:
        if self._vat_ids is None:
            self.vat_id(None)
        assert self._vat_ids is not None
        return {vid: code for code, vid in self._vat_ids.items()}

    def _number(self, account_id: Any) -> str:
        number = self._account_numbers.get(int(account_id))
        if number is None:
            row = self._request("GET", f"/GeneralLedgerAccounts/{int(account_id)}") or {}
            number = str(row.get("AccountNo"))
            self._account_numbers[int(account_id)] = number
            self._accounts.setdefault(number, int(account_id))
        return number

    def _vat(self, vat_id: Any) -> str | None:
        code = self._vat_codes_by_id().get(int(vat_id)) if vat_id is not None else None
        return None if code in (None, NO_VAT_CODE) else code

    def _posted(self, data: Mapping[str, Any]) -> PostedVoucher:
        postings = tuple(
            (self._number(line["AccountId"]), parse_ore(str(line["CurrencyAmount"])), self._vat(line.get("VatId")))
            for line in data.get("VoucherLines") or []
        )
        return PostedVoucher(
            ledger_id=str(data.get("Id")),
            number=str(data.get("VoucherNo") or ""),
            external_ref=str(data.get("ExternalImportReference") or ""),
            date=dt.date.fromisoformat(str(data.get("VoucherDate"))[:10]),
            postings=postings,
            in_ledger=True,
        )

    def _posted_draft(self, data: Mapping[str, Any]) -> PostedVoucher:
        postings = []
        for line in data.get("ManualVoucherLines") or []:
            amount = parse_ore(str(line["CurrencyAmount"]))
            for side, sign in (("Debit", 1), ("Credit", -1)):
                if line.get(f"{side}AccountId") is not None:
                    postings.append(
                        (self._number(line[f"{side}AccountId"]), sign * amount, self._vat(line.get(f"{side}VatId")))
                    )
        match = _DRAFT_REF.search(str(data.get("Description") or ""))
        return PostedVoucher(
            ledger_id=str(data.get("Id")),
            number="",
            external_ref=match.group(1) if match else "",
            date=dt.date.fromisoformat(str(data.get("VoucherDate"))[:10]),
            postings=tuple(postings),
            in_ledger=False,
        )


def _field(body: Mapping[str, Any], name: str) -> Any:
    """A ProblemDetails field in PascalCase (schema) or camelCase (the spec's examples)."""
    if name in body:
        return body[name]
    return body.get(name[:1].lower() + name[1:])


def _json_or_none(response: requests.Response) -> Any:
    if not response.content:
        return None
    try:
        return json.loads(response.content.decode("utf-8"), parse_float=Decimal)
    except (UnicodeDecodeError, ValueError):
        return None


def _is_subscription_error(response: requests.Response) -> bool:
    body = _json_or_none(response)
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
    raw = response.headers.get("Retry-After")
    if raw:
        try:
            return max(0.0, float(raw))
        except ValueError:
            pass
    if isinstance(body, dict):
        match = _RETRY_IN.search(str(_field(body, "message") or ""))
        if match:
            return float(match.group(1))
    return 5.0


def _transient_reason(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.exceptions.Timeout):
        return "timed out"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return "connection failed or dropped without an answer"
    return f"transport error ({type(exc).__name__})"
