"""Tripletex API v2 client: post a day's voucher, look it up, read it back.

Plain `requests`, no Airflow, so it runs in tests, the CLI and tasks alike. What it does about
the API's habits:

- Auth: a session token is created lazily from the consumer token (the integration's) and the
  employee token (the customer's), valid until tomorrow, and created again once when a call gets
  401. A rejected exchange says which of the two tokens is the likely culprit. Token values never
  appear in exceptions, reprs or logs (`_Secret`, and every server text is redacted).
- Lookups (account ids, VAT type ids, departments, projects) are cached per client, accounts in
  one call for all numbers of a voucher.
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
- `calls` counts HTTP requests by "METHOD /path" (ids as {id}), for calls-per-voucher reports.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import re
import time
from collections import Counter
from collections.abc import Iterable, Mapping
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
from kassebro.money import ore_to_decimal, parse_ore
from kassebro.voucher import Voucher

log = logging.getLogger(__name__)

SYSTEM = "Tripletex"
MAX_RATE_LIMIT_WAITS = 3
EXTERNAL_VOUCHER_NUMBER_MAX = 70
VOUCHER_FIELDS = (
    "id,version,date,number,numberAsString,tempNumber,year,description,externalVoucherNumber,"
    "reverseVoucher(id),postings(id,row,date,description,amountGross,amountGrossCurrency,"
    "account(id,number),vatType(id,number),department(id,departmentNumber),project(id,number))"
)
_ACCOUNT_FIELDS = "id,number,name,vatType(id,number),vatLocked,isInactive"
_ID_SEGMENT = re.compile(r"/\d+(?=/|$)")


class _Secret:
    """A credential that prints as *** (reprs, tracebacks' locals, logging of the client)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "'***'"

    __str__ = __repr__


def encode_json(obj: Any) -> str:
    """JSON with Decimal written as a plain number (stdlib json would need a float)."""
    if obj is None:
        return "null"
    if obj is True:
        return "true"
    if obj is False:
        return "false"
    if isinstance(obj, Decimal):
        return format(obj, "f")
    if isinstance(obj, int | str):
        return json.dumps(obj, ensure_ascii=False)
    if isinstance(obj, Mapping):
        return "{" + ",".join(f"{json.dumps(str(k))}:{encode_json(v)}" for k, v in obj.items()) + "}"
    if isinstance(obj, list | tuple):
        return "[" + ",".join(encode_json(v) for v in obj) + "]"
    raise TypeError(f"cannot encode {type(obj).__name__} (floats are not allowed for money)")


class TripletexClient:
    """A Ledger for one Tripletex company.

    Args:
      base_url: API root, e.g. "https://tripletex.no/v2", "https://api-test.tripletex.tech/v2" or
        a sandbox "http://127.0.0.1:8900" ("/v2" is added when missing).
      consumer_token, employee_token: the integration's and the customer's tokens.
      company_id: 0 for the employee's own company, else an accountant client's company id.
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
    ) -> None:
        base = base_url.rstrip("/")
        self.base_url = base if base.endswith("/v2") else base + "/v2"
        self._consumer_token = _Secret(consumer_token)
        self._employee_token = _Secret(employee_token)
        self._session_token: _Secret | None = None
        self.company_id = int(company_id)
        self._http = session or requests.Session()
        self._owns_http = session is None
        self.timeout = timeout
        self.max_rate_wait = max_rate_wait
        self.get_retries = get_retries
        self.retry_backoff = retry_backoff
        self.read_back_after_post = read_back_after_post
        self.calls: Counter[str] = Counter()
        self._accounts: dict[str, dict[str, Any]] = {}
        self._account_numbers: dict[int, str] = {}
        self._vat_types: dict[str, int] = {}
        self._departments: dict[str, int] = {}
        self._projects: dict[str, int] = {}

    # ---- housekeeping ------------------------------------------------------------------------

    def __repr__(self) -> str:
        return f"TripletexClient(base_url={self.base_url!r}, company_id={self.company_id})"

    def close(self) -> None:
        """Close the HTTP session if this client made it."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> TripletexClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def call_count(self) -> int:
        """All HTTP requests made so far (retries included)."""
        return sum(self.calls.values())

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
        """POST the voucher (never retried on a transient error: call `find` first then)."""
        body = self.render(voucher)
        data = self._request(
            "POST",
            "/ledger/voucher",
            params={"sendToLedger": "true" if send_to_ledger else "false"},
            body=body,
            retry_transient=False,
        )
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
        vat_numbers = {vid: code for code, vid in self._vat_types.items()}
        sent = [
            {
                "row": p["row"],
                "account": {"id": p["account"]["id"], "number": self._account_numbers[p["account"]["id"]]},
                "amountGross": p["amountGross"],
                "vatType": {"number": vat_numbers[p["vatType"]["id"]]} if "vatType" in p else None,
            }
            for p in body["postings"]
        ]
        return self._posted({**value, "postings": sent})

    # ---- more than the protocol --------------------------------------------------------------

    def reverse(self, ledger_id: str, date: dt.date) -> PostedVoucher:
        """Reverse a voucher on `date`; returns the reversing voucher (not retried)."""
        data = self._request(
            "PUT",
            f"/ledger/voucher/{self._voucher_id(ledger_id)}/:reverse",
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
        accounts = self.resolve_accounts(line.account for line in voucher.lines)
        vat_ids = self.resolve_vat_types(line.vat_code for line in voucher.lines if line.vat_code)
        self._check_vat_locks(voucher)
        day = voucher.business_day.isoformat()
        postings = []
        for row, line in enumerate(voucher.lines, start=1):
            amount = ore_to_decimal(line.amount)
            posting: dict[str, Any] = {
                "row": row,
                "date": day,
                "description": line.description,
                "account": {"id": accounts[line.account]},
                "amountGross": amount,
                "amountGrossCurrency": amount,
            }
            if line.vat_code:
                posting["vatType"] = {"id": vat_ids[line.vat_code]}
            if line.department:
                posting["department"] = {"id": self.department_id(line.department)}
            if line.project:
                posting["project"] = {"id": self.project_id(line.project)}
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
        wanted = list(dict.fromkeys(str(n).strip() for n in numbers))
        bad = [n for n in wanted if not n.isdigit()]
        if bad:
            raise LedgerValidationError(
                SYSTEM,
                "not Tripletex account numbers (digits only; 'XXXX:YYYYY' is Fiken's "
                f"sub-account syntax): {', '.join(bad)}",
            )
        missing = [n for n in wanted if n not in self._accounts]
        if missing:
            data = self._request(
                "GET",
                "/ledger/account",
                params={"number": ",".join(missing), "fields": _ACCOUNT_FIELDS, "count": 1000},
            )
            for value in (data or {}).get("values") or []:
                number = str(value.get("number"))
                self._accounts[number] = value
                self._account_numbers[int(value["id"])] = number
            unknown = [n for n in missing if n not in self._accounts]
            if unknown:
                raise LedgerValidationError(
                    SYSTEM, f"accounts not in the Tripletex chart of accounts: {', '.join(unknown)}"
                )
        inactive = [n for n in wanted if self._accounts[n].get("isInactive")]
        if inactive:
            raise LedgerValidationError(SYSTEM, f"accounts inactive in Tripletex: {', '.join(inactive)}")
        return {n: int(self._accounts[n]["id"]) for n in wanted}

    def account_id(self, number: str) -> int:
        """The Tripletex id of account `number` (cached)."""
        return self.resolve_accounts([number])[str(number).strip()]

    def resolve_vat_types(self, codes: Iterable[str]) -> dict[str, int]:
        """Standard VAT code -> Tripletex vatType id, in one call for all codes not cached."""
        wanted = list(dict.fromkeys(str(c).strip() for c in codes))
        missing = [c for c in wanted if c not in self._vat_types]
        if missing:
            data = self._request(
                "GET",
                "/ledger/vatType",
                params={"number": ",".join(missing), "fields": "id,number,percentage"},
            )
            for value in (data or {}).get("values") or []:
                self._vat_types.setdefault(str(value.get("number")), int(value["id"]))
            unknown = [c for c in missing if c not in self._vat_types]
            if unknown:
                raise LedgerValidationError(SYSTEM, f"VAT codes unknown to Tripletex: {', '.join(unknown)}")
        return {c: self._vat_types[c] for c in wanted}

    def vat_type_id(self, code: str) -> int:
        """The Tripletex vatType id of a standard VAT code such as "3" (cached)."""
        return self.resolve_vat_types([code])[str(code).strip()]

    def department_id(self, number: str) -> int:
        """The id of the department with this departmentNumber (cached)."""
        number = str(number).strip()
        if number not in self._departments:
            data = self._request(
                "GET",
                "/department",
                params={"departmentNumber": number, "fields": "id,departmentNumber,name"},
            )
            # The filter is "containing": pick the exact number.
            exact = [v for v in (data or {}).get("values") or [] if str(v.get("departmentNumber")) == number]
            if not exact:
                raise LedgerValidationError(SYSTEM, f"department {number} not found in Tripletex")
            self._departments[number] = int(exact[0]["id"])
        return self._departments[number]

    def project_id(self, number: str) -> int:
        """The id of the project with this number (cached)."""
        number = str(number).strip()
        if number not in self._projects:
            data = self._request("GET", "/project", params={"number": number, "fields": "id,number,name,isClosed"})
            exact = [v for v in (data or {}).get("values") or [] if str(v.get("number")) == number]
            if not exact:
                raise LedgerValidationError(SYSTEM, f"project {number} not found in Tripletex")
            self._projects[number] = int(exact[0]["id"])
        return self._projects[number]

    def _check_vat_locks(self, voucher: Voucher) -> None:
        problems = []
        for line in voucher.lines:
            info = self._accounts.get(line.account) or {}
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

    # ---- HTTP --------------------------------------------------------------------------------

    def _redact(self, text: str) -> str:
        for secret in (self._consumer_token, self._employee_token, self._session_token):
            value = secret.reveal() if secret is not None else ""
            if value:
                text = text.replace(value, "***")
        return text

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
        self._session_token = _Secret(str(token))
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
    ) -> Any:
        """One API call with auth, retries and error mapping; returns the parsed JSON or None."""
        if retry_transient is None:
            retry_transient = method == "GET" or not auth
        key = f"{method} {_ID_SEGMENT.sub('/{id}', path)}"
        url = self.base_url + path
        data = encode_json(body).encode("utf-8") if body is not None else None
        attempt = rate_waits = 0
        reauthenticated = False
        while True:
            headers = {"Accept": "application/json"}
            if data is not None:
                headers["Content-Type"] = "application/json; charset=utf-8"
            if auth:
                headers["Authorization"] = self._authorization()
            self.calls[key] += 1
            try:
                response = self._http.request(
                    method, url, params=params, data=data, headers=headers, timeout=self.timeout
                )
            except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema) as exc:
                raise LedgerValidationError(SYSTEM, f"bad base URL {self.base_url!r}: {exc}") from None
            except requests.RequestException as exc:
                reason = _transient_reason(exc)
                log.warning("Tripletex %s %s: %s", method, path, reason)
                if retry_transient and attempt < self.get_retries:
                    self._backoff(attempt)
                    attempt += 1
                    continue
                raise LedgerTransient(
                    SYSTEM,
                    f"{method} {path}: {reason}"
                    + ("" if retry_transient else "; the outcome is unknown, look it up first"),
                ) from None

            status = response.status_code
            request_id = response.headers.get("x-tlx-request-id", "")
            log.debug("Tripletex %s %s -> %s (request id %s)", method, path, status, request_id)
            if 200 <= status < 300:
                return _parse_json(response) if response.content else None
            if status == 401 and auth and not reauthenticated:
                reauthenticated = True
                self._session_token = None
                continue
            if status == 429:
                reset = _reset_seconds(response)
                if reset <= self.max_rate_wait and rate_waits < MAX_RATE_LIMIT_WAITS:
                    log.info("Tripletex rate limit hit; waiting %.1f s", reset)
                    rate_waits += 1
                    time.sleep(reset)
                    continue
                raise LedgerRateLimited(
                    SYSTEM,
                    f"{method} {path}: rate limited, retry in {reset:g} s (request id {request_id})",
                    retry_after=reset,
                )
            error = self._error_text(method, path, response)
            if status >= 500:
                if retry_transient and attempt < self.get_retries:
                    self._backoff(attempt)
                    attempt += 1
                    continue
                raise LedgerTransient(
                    SYSTEM,
                    error + ("" if retry_transient else "; the outcome is unknown, look it up first"),
                )
            exc_type = LedgerAuthError if status in (401, 403) else LedgerValidationError
            exc = exc_type(SYSTEM, error)
            exc.status = status  # type: ignore[attr-defined]
            exc.fields = _error_fields(response)  # type: ignore[attr-defined]
            raise exc

    def _authorization(self) -> str:
        if self._session_token is None:
            self._create_session()
        assert self._session_token is not None
        raw = f"{self.company_id}:{self._session_token.reveal()}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")

    def _backoff(self, attempt: int) -> None:
        time.sleep(self.retry_backoff * (2**attempt))

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

    def _all_pages(self, path: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        values: list[dict[str, Any]] = []
        start = 0
        while True:
            data = (
                self._request("GET", path, params={**params, "from": start, "count": 1000, "fields": VOUCHER_FIELDS})
                or {}
            )
            page = data.get("values") or []
            values.extend(page)
            start += len(page)
            if not page or start >= int(data.get("fullResultSize") or 0):
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
        raw_postings = [p for p in value.get("postings") or [] if isinstance(p, dict)]
        for p in sorted(raw_postings, key=lambda p: (p.get("row") or 0, p.get("id") or 0)):
            row = p.get("row")
            if not isinstance(row, int) or row < 1:
                continue
            account = p.get("account") or {}
            number = account.get("number")
            if number is None:
                number = self._account_numbers.get(int(account.get("id") or 0))
            if number is None or p.get("amountGross") is None:
                raise LedgerTransient(SYSTEM, f"voucher {value.get('id')}: posting {p.get('id')} incomplete")
            vat = (p.get("vatType") or {}).get("number")
            vat_code = None if vat in (None, "", "0") else str(vat)
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


def _has_full_postings(value: Mapping[str, Any]) -> bool:
    postings = value.get("postings")
    return bool(postings) and all(
        isinstance(p, dict) and "row" in p and "amountGross" in p and "number" in (p.get("account") or {})
        for p in postings
    )


def _reset_seconds(response: requests.Response) -> float:
    for header in ("X-Rate-Limit-Reset", "Retry-After"):
        raw = response.headers.get(header)
        if raw:
            try:
                return max(0.0, float(raw))
            except ValueError:
                continue
    return 5.0


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


def _transient_reason(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.exceptions.Timeout):
        return "timed out"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return "connection failed or dropped without an answer"
    return f"transport error ({type(exc).__name__})"
