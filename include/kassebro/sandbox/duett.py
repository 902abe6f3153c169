"""A local emulator of the Duett Økonomi Open API, for the subset kassebro uses, with fault injection.

What is documented by Duett (brief `apis.md` §5, `docs/duett.md`) and followed here:

- Auth: two headers, `X-Api-Integration-Key` (per integration) and `X-Api-Client-Key` (per customer
  activation). Paths carry the version: `GET /system/v2/integration` (answers `activeModules`),
  `GET /Register/v2/AccountIntervals`.
- Filters `filter[field][OP]=value` (EQ, NEQ, GT, GTE, LT, LTE, IN, NIN, LIKE, BETWEEN) on lists.
- Errors are ProblemDetails `{type, title, status, detail, instance}` (camelCase, `Model/ProblemDetails.cs`),
  validation errors add ASP.NET's `errors` map (additional property).
- A voucher number is unique per year: a second voucher with the same number and year is refused.
  Vouchers (periods) can be locked.

INFERRED (Duett does not publish the voucher endpoint; see `docs/duett.md`):

- `GET /Register/v2/Account` (account register, `accountNumber`, `name`, `vatCode`, `show`) and
  `GET /Register/v2/VatCode` (`code`, `standardTaxCode`, `name`, `rate`): the register follows the
  AccountIntervals path convention.
- `POST /Voucher/v2` with `{voucherNumber, voucherDate, text, lines: [{accountNumber, accountType,
  amountGross, vatCode, text}]}` (line fields named as in Duett's voucher report), 201 with the stored
  voucher (`id`, `voucherYear`, `rowVersion`, lines with `lineNumber`, `amountNetto`).
  `GET /Voucher/v2/{id}`, `GET /Voucher/v2?filter[voucherYear][EQ]=YYYY&...` (the year filter is
  required, as in the voucher report), any other filter on the voucher's fields (`voucherDate`
  GTE/LT for a date range) ANDed to it, every match in one JSON array in the order registered:
  paging is not documented, so none is served.
- No reversal endpoint (none documented): a reversal is a voucher like any other.
- The voucher report (DUETT-DOC voucher-report documents its filters and fields, not its path):
  `GET /VoucherReport/v2?filter[voucherYear][EQ]=YYYY[&ledgerFilter[EQ]=...][&categoryFilter[EQ]=...]`
  (the year filter is required, as documented), any `filter[field][OP]` on a row's fields ANDed to
  it, one JSON array in the order registered (no paging documented, none served). One row per line
  of the general ledger: `id`, `voucherId`, `voucherNumber`, `voucherYear`, `voucherDate`,
  `accountingPeriod`, `accountNumber`, `accountName`, `accountType`, `amountGross`, `amountNetto`,
  `vatCode`, `lineNumber`, `ledgerState` ("blank"), `lockVoucher`, `description` (the voucher's
  text) and `text` (the line's). Documented: id, accountingPeriod, accountNumber, accountName,
  accountType, amountGross, amountNetto, description, ledgerState, lineNumber, lockVoucher; the
  voucher's id, number, year and date, the line's VAT code and text on a row are INFERRED (the page
  excerpt stops before them). INFERRED: the VAT of a taxed line (`line_vat`) is a row of its own
  after the voucher's lines, on the VAT code's account (`DuettVatCode.account`: 3 -> 2700, 31 ->
  2701, 33 -> 2702, 1 -> 2710, 11 -> 2711, 13 -> 2712), amountGross = amountNetto = the VAT,
  vatCode null: Duett keeps the VAT in the general ledger on the VAT account, so the rows of a
  voucher sum to 0 net as they do gross. Only `account` lines exist here, so `ledgerFilter`
  `generalLedger` and `ledger` give every row, `customerLedger` and `supplierLedger` none;
  `categoryFilter` (`voucher`, `budgett`, `both`) is checked, and there are no budget rows.
- Refusals: 400 ValidationProblemDetails for unknown account or VAT code, no lines, a 0 amount,
  unbalanced lines, a voucher dated in a locked period (`locked_until`); a duplicate voucher number in
  the same year answers `duplicate_status` (400 by default, 409 selectable) with `errors.voucherNumber`.
- Wrong or missing keys: 401 ProblemDetails whose detail names the header (not its value).

Run it: `python -m kassebro.sandbox.duett --port 8930 [--state FILE]`, or in-process with
`kassebro.sandbox.server.running(create_app())`. Admin API under `/_sandbox` (faults, calls,
vouchers, reset, lock) with the fault kinds of the Tripletex sandbox (429, 500, delay,
save_then_drop); fault paths are API paths as sent ("/Voucher/v2").
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from kassebro.sandbox.admin import ApiCall, SandboxApp, admin_router, log_entry
from kassebro.sandbox.amounts import Ore, from_ore, parse_amount, percent, round_half_up, vat_in_gross
from kassebro.sandbox.common import Fault, Receive, Scope
from kassebro.sandbox.tripletex import CHART, dumps

INTEGRATION_HEADER = "X-Api-Integration-Key"
CLIENT_HEADER = "X-Api-Client-Key"
DEMO_INTEGRATION_KEY = "demo-integration-key"
DEMO_CLIENT_KEY = "demo-client-key"
DEMO_CLIENT_NAME = "Demo Kiosk AS"
DEMO_CLIENT_NUMBER = 4711
ACTIVE_MODULES = ("Regnskap", "Faktura", "Kunde", "Leverandør")
VOUCHER_PATH = "/Voucher/v2"
REPORT_PATH = "/VoucherReport/v2"  # INFERRED: the voucher report's path is not documented
LEDGER_FILTERS = ("ledger", "generalLedger", "customerLedger", "supplierLedger")  # DUETT-DOC voucher-report
CATEGORY_FILTERS = ("voucher", "budgett", "both")  # DUETT-DOC voucher-report, spelled as documented
_API_PREFIXES = ("/system/", "/Register/", "/Voucher/", "/VoucherReport/")
PROBLEM_MEDIA = "application/problem+json; charset=utf-8"


@dataclass(frozen=True)
class DuettVatCode:
    """A VAT code in Duett's register; `standard_code` is the SAF-T standard tax code it reports as."""

    code: str
    standard_code: str
    name: str
    rate: str  # percent, "25"
    account: str | None = None  # INFERRED: the VAT account the code's VAT is booked on (NS 4102)


@dataclass(frozen=True)
class DuettAccount:
    number: str
    name: str
    vat_code: str | None = None
    show: bool = True  # Duett's soft delete: show=false is a deleted account


VAT_CODES: tuple[DuettVatCode, ...] = (
    DuettVatCode("0", "0", "Ingen mva-behandling", "0"),
    DuettVatCode("1", "1", "Inngående mva, høy sats", "25", "2710"),
    DuettVatCode("11", "11", "Inngående mva, middels sats", "15", "2711"),
    DuettVatCode("13", "13", "Inngående mva, lav sats", "12", "2712"),
    DuettVatCode("3", "3", "Utgående mva, høy sats", "25", "2700"),
    DuettVatCode("31", "31", "Utgående mva, middels sats", "15", "2701"),
    DuettVatCode("33", "33", "Utgående mva, lav sats", "12", "2702"),
    DuettVatCode("5", "5", "Innenlands omsetning fritatt for mva", "0"),
    DuettVatCode("6", "6", "Omsetning utenfor mva-loven", "0"),
)


def line_vat(gross: Ore, vat: DuettVatCode | None) -> Ore:
    """The VAT in a voucher line of `gross` øre with VAT code `vat`: its amountNetto is gross - VAT.

    Documented (DUETT-DOC voucher-report): a voucher line reports both `amountGross` and
    `amountNetto`; Bilagskontroll "creates crossings and tax lines automatically" (DUETT-DOC
    voucher). So the line is written gross and the net is what is left once the VAT at the line's
    VAT code is taken out: gross x rate / (100 + rate), the rate in percent as the VAT register
    (INFERRED, see the module docstring) gives it.

    INFERRED (Duett publishes neither the voucher endpoint nor a rounding rule): the VAT is
    rounded to the øre, half up (half an øre away from zero), per line. At 25 % and 15 % the VAT in
    a whole-øre gross never ends in exactly half an øre, so the rule shows at 12 %: 1000.02 ->
    107.145 -> 107.15, amountNetto 892.87 (rounding the net, half to even, or cutting off: 892.88).
    """
    if vat is None:
        return 0
    return round_half_up(vat_in_gross(gross, percent(vat.rate)))


ACCOUNTS: tuple[DuettAccount, ...] = tuple(
    DuettAccount(str(a.number), a.name, a.vat_type if a.vat_type != "0" else None, not a.is_inactive) for a in CHART
)

ACCOUNT_INTERVALS = (
    {"accountType": "account", "fromAccount": 1000, "toAccount": 9999},
    {"accountType": "customer", "fromAccount": 10000, "toAccount": 49999},
    {"accountType": "supplier", "fromAccount": 50000, "toAccount": 99999},
)


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class DuettError(Exception):
    """An error answer as ProblemDetails (camelCase, `errors` for validation)."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        errors: Mapping[str, list[str]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = dict(errors or {})
        self.headers = dict(headers or {})

    def body(self, instance: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": "https://tools.ietf.org/html/rfc7231#section-6.5.1"
            if self.status == 400
            else f"https://httpstatuses.io/{self.status}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "instance": instance,
        }
        if self.errors:
            body["errors"] = self.errors
        return body


def validation(detail: str, errors: Mapping[str, list[str]] | None = None, status: int = 400) -> DuettError:
    return DuettError(status, "One or more validation errors occurred.", detail, errors=errors)


class DuettJSONResponse(JSONResponse):
    media_type = "application/json; charset=utf-8"

    def render(self, content: Any) -> bytes:
        return dumps(content).encode("utf-8")


def _problem(error: DuettError, instance: str) -> Response:
    return Response(
        dumps(error.body(instance)), status_code=error.status, headers=error.headers, media_type=PROBLEM_MEDIA
    )


# --------------------------------------------------------------------------------------------
# Filters (filter[field][OP]=value)
# --------------------------------------------------------------------------------------------


def parse_filters(query: Iterable[tuple[str, str]]) -> list[tuple[str, str, str]]:
    """`filter[voucherYear][EQ]=2026` -> [("voucherYear", "EQ", "2026")]; bad ops -> 400."""
    out = []
    for key, value in query:
        if not key.startswith("filter["):
            continue
        parts = key[len("filter[") :].rstrip("]").split("][")
        if len(parts) != 2 or parts[1].upper() not in FILTER_OPS:
            raise validation(
                f"Invalid filter {key!r}.", {key: [f"Expected filter[field][OP] with OP in {FILTER_OPS}."]}
            )
        out.append((parts[0], parts[1].upper(), value))
    return out


FILTER_OPS = ("EQ", "NEQ", "GT", "GTE", "LT", "LTE", "IN", "NIN", "LIKE", "BETWEEN")


def _cmp_key(value: Any) -> Any:
    if isinstance(value, int | Decimal):
        return Decimal(value)
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return str(value)


def matches(row: Mapping[str, Any], filters: list[tuple[str, str, str]]) -> bool:
    for name, op, raw in filters:
        have = row.get(name)
        if op == "LIKE":
            if raw.strip("%").lower() not in str(have or "").lower():
                return False
            continue
        if op in ("IN", "NIN"):
            inside = any(_cmp_key(have) == _cmp_key(v.strip()) for v in raw.split(","))
            if inside != (op == "IN"):
                return False
            continue
        if have is None:
            if op != "NEQ":
                return False
            continue
        if op == "BETWEEN":
            low, _, high = raw.partition(",")
            if not (_cmp_key(low) <= _cmp_key(have) <= _cmp_key(high)):
                return False
            continue
        a, b = _cmp_key(have), _cmp_key(raw)
        try:
            ok = {
                "EQ": a == b,
                "NEQ": a != b,
                "GT": a > b,
                "GTE": a >= b,
                "LT": a < b,
                "LTE": a <= b,
            }[op]
        except TypeError:
            ok = str(have) == raw if op == "EQ" else False
        if not ok:
            return False
    return True


# --------------------------------------------------------------------------------------------
# The store
# --------------------------------------------------------------------------------------------


class DuettStore:
    """One Duett client's books; thread-safe, optionally kept in a JSON file."""

    def __init__(
        self,
        *,
        accounts: Iterable[DuettAccount],
        vat_codes: Iterable[DuettVatCode],
        locked_until: dt.date | None,
        duplicate_status: int,
        state_path: str | os.PathLike[str] | None,
    ) -> None:
        self.accounts = {a.number: a for a in accounts}
        self.vat_codes = {v.code: v for v in vat_codes}
        self.locked_until = locked_until
        self.duplicate_status = duplicate_status
        self.state_path = Path(state_path) if state_path else None
        self.lock = threading.RLock()
        self.vouchers: dict[str, dict[str, Any]] = {}
        if self.state_path and self.state_path.exists():
            state = json.loads(self.state_path.read_text(encoding="utf-8"))
            self.vouchers = state.get("vouchers", {})

    def reset(self) -> None:
        with self.lock:
            self.vouchers = {}
            self._save()

    def _save(self) -> None:
        if not self.state_path:
            return
        tmp = self.state_path.with_suffix(self.state_path.suffix + ".tmp")
        tmp.write_text(dumps({"vouchers": self.vouchers}), encoding="utf-8")
        tmp.replace(self.state_path)

    def render_account(self, a: DuettAccount) -> dict[str, Any]:
        return {
            "accountNumber": a.number,
            "accountType": "account",
            "name": a.name,
            "vatCode": a.vat_code,
            "show": a.show,
        }

    @staticmethod
    def render_vat(v: DuettVatCode) -> dict[str, Any]:
        return {
            "code": v.code,
            "standardTaxCode": v.standard_code,
            "name": v.name,
            "rate": Decimal(v.rate),
            "show": True,
        }

    def create_voucher(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise validation("The request body must be a JSON object.")
        errors: dict[str, list[str]] = {}
        number = body.get("voucherNumber")
        if isinstance(number, bool) or not isinstance(number, int) or number <= 0:
            errors["voucherNumber"] = ["The voucherNumber field is required and must be a positive integer."]
        try:
            date = dt.date.fromisoformat(str(body.get("voucherDate"))[:10])
        except ValueError:
            date = None
            errors["voucherDate"] = ["The voucherDate field is required (yyyy-MM-dd)."]
        lines = body.get("lines")
        if not isinstance(lines, list) or not lines:
            errors.setdefault("lines", []).append("The voucher must have at least one line.")
            lines = []
        total = 0
        stored = []
        for i, line in enumerate(lines):
            where = f"lines[{i}]"
            if not isinstance(line, dict):
                errors.setdefault(where, []).append("A line must be an object.")
                continue
            account_type = line.get("accountType") or "account"
            number_text = str(line.get("accountNumber") or "")
            account = self.accounts.get(number_text)
            if account_type != "account":
                errors.setdefault(where + ".accountType", []).append(
                    f"Account type {account_type!r} is not supported by this sandbox (only 'account')."
                )
            elif account is None or not account.show:
                errors.setdefault(where + ".accountNumber", []).append(f"Account {number_text or '(none)'} not found.")
            vat_code = line.get("vatCode")
            vat = self.vat_codes.get(str(vat_code)) if vat_code not in (None, "") else None
            if vat_code not in (None, "") and vat is None:
                errors.setdefault(where + ".vatCode", []).append(f"Vat code {vat_code} not found.")
            amount = parse_amount(line.get("amountGross"), where + ".amountGross", errors)
            if amount == 0:
                errors.setdefault(where + ".amountGross", []).append("The amount cannot be 0.")
            total += amount or 0
            net = None
            if amount is not None:
                net = amount - line_vat(amount, vat)
            stored.append(
                {
                    "lineNumber": i + 1,
                    "accountNumber": number_text,
                    "accountType": account_type,
                    "amountGross": amount,
                    "amountNetto": net,
                    "vatCode": vat.code if vat else None,
                    "text": line.get("text"),
                }
            )
        if not errors and total != 0:
            errors["lines"] = [f"The voucher does not balance: the lines sum to {from_ore(total)}."]
        if date is not None and self.locked_until is not None and date <= self.locked_until:
            errors.setdefault("voucherDate", []).append(
                f"The period is locked until {self.locked_until.isoformat()}; vouchers dated {date.isoformat()} "
                "cannot be registered."
            )
        if errors:
            raise validation("The voucher was not registered.", errors)
        assert date is not None
        with self.lock:
            existing = next(
                (v for v in self.vouchers.values() if v["voucherNumber"] == number and v["voucherYear"] == date.year),
                None,
            )
            if existing is not None:
                message = f"Voucher number {number} already exists in {date.year}."
                raise validation(
                    f"Duplicate voucher number: {message}", {"voucherNumber": [message]}, status=self.duplicate_status
                )
            voucher = {
                "id": str(uuid.uuid4()),
                "voucherNumber": number,
                "voucherYear": date.year,
                "voucherDate": date.isoformat(),
                "accountingPeriod": date.month,
                "text": body.get("text"),
                "voucherType": body.get("voucherType"),
                "ledgerState": "posted",
                "rowVersion": 1,
                "show": True,
                "created": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
                "lines": stored,
            }
            self.vouchers[voucher["id"]] = voucher
            self._save()
        return voucher

    def report_rows(self) -> list[dict[str, Any]]:
        """The voucher report of the general ledger (see the module docstring), every voucher's
        lines and then its generated VAT rows, in the order registered; amounts in kroner."""
        with self.lock:
            vouchers = [v for v in self.vouchers.values() if v.get("show", True)]
        rows = []
        for voucher in vouchers:
            date = dt.date.fromisoformat(voucher["voucherDate"])
            locked = self.locked_until is not None and date <= self.locked_until
            shared = {
                "voucherId": voucher["id"],
                "voucherNumber": voucher["voucherNumber"],
                "voucherYear": voucher["voucherYear"],
                "voucherDate": voucher["voucherDate"],
                "accountingPeriod": voucher["accountingPeriod"],
                "accountType": "account",
                "ledgerState": "blank",
                "lockVoucher": locked,
                "description": voucher.get("text"),
            }
            lines = list(voucher["lines"])
            generated = []
            for line in lines:
                vat = self.vat_codes.get(str(line.get("vatCode"))) if line.get("vatCode") is not None else None
                amount = line["amountGross"] - line["amountNetto"]
                if amount and vat is not None and vat.account:
                    generated.append((vat.account, amount, vat.name))
            for number, (account, amount, name) in enumerate(generated, start=len(lines) + 1):
                lines.append(
                    {
                        "lineNumber": number,
                        "accountNumber": account,
                        "amountGross": amount,
                        "amountNetto": amount,
                        "vatCode": None,
                        "text": name,
                    }
                )
            for line in lines:
                account = self.accounts.get(str(line["accountNumber"]))
                rows.append(
                    {
                        **shared,
                        "id": f"{voucher['id']}:{line['lineNumber']}",
                        "lineNumber": line["lineNumber"],
                        "accountNumber": line["accountNumber"],
                        "accountName": account.name if account else None,
                        "amountGross": from_ore(line["amountGross"]),
                        "amountNetto": from_ore(line["amountNetto"]),
                        "vatCode": line.get("vatCode"),
                        "text": line.get("text"),
                    }
                )
        return rows

    @staticmethod
    def render_voucher(v: Mapping[str, Any]) -> dict[str, Any]:
        lines = [
            {
                **line,
                "amountGross": from_ore(line["amountGross"]),
                "amountNetto": from_ore(line["amountNetto"]),
            }
            for line in v["lines"]
        ]
        return {**v, "lines": lines}


# --------------------------------------------------------------------------------------------
# The app
# --------------------------------------------------------------------------------------------


class DuettSandbox(SandboxApp):
    """The Duett app behind the shared fault layer (`admin.SandboxApp`); fault paths and logged
    paths are the API paths as sent ("/Voucher/v2")."""

    json_response = DuettJSONResponse

    async def open_call(self, scope: Scope, receive: Receive) -> ApiCall | None:
        path = scope["path"]
        return ApiCall(path, log_entry(scope, path), receive) if path.startswith(_API_PREFIXES) else None

    def fault_reply(self, fault: Fault, call: ApiCall) -> Response:
        if fault.kind == "429":
            seconds = max(1, int(fault.seconds))
            detail = f"Rate limit exceeded. Try again in {seconds} seconds."
            error = DuettError(429, "Too Many Requests", detail, headers={"Retry-After": str(seconds)})
        else:
            error = DuettError(500, "An unexpected error occurred.")
        return _problem(error, call.path)

    def reset_books(self, options: dict[str, Any]) -> None:
        self.state.store.reset()

    def voucher_listing(self, request: Request) -> Any:
        store: DuettStore = self.state.store
        with store.lock:
            return {"vouchers": [store.render_voucher(v) for v in store.vouchers.values()]}


def demo_connection(url: str) -> dict[str, Any]:
    """The Airflow connection (as `AIRFLOW_CONN_*` JSON holds it) to this sandbox at `url`."""
    return {
        "conn_type": "duett",
        "host": url,
        "password": DEMO_CLIENT_KEY,
        "extra": {"integration_key": DEMO_INTEGRATION_KEY},
    }


def create_app(
    *,
    integration_keys: Iterable[str] = (DEMO_INTEGRATION_KEY,),
    client_keys: Iterable[str] = (DEMO_CLIENT_KEY,),
    client_name: str = DEMO_CLIENT_NAME,
    active_modules: Iterable[str] = ACTIVE_MODULES,
    accounts: Iterable[DuettAccount] = ACCOUNTS,
    vat_codes: Iterable[DuettVatCode] = VAT_CODES,
    locked_until: dt.date | None = None,
    duplicate_status: int = 400,
    state_path: str | os.PathLike[str] | None = None,
) -> DuettSandbox:
    """Build a Duett sandbox app for one client.

    Args:
      integration_keys, client_keys: accepted `X-Api-Integration-Key` / `X-Api-Client-Key` values.
      active_modules: what `GET /system/v2/integration` lists ("Bilagsbehandling" = voucher control on).
      locked_until: vouchers dated on or before this day are refused (period lock); also settable
        with `PUT /_sandbox/lock {"locked_until": "YYYY-MM-DD" | null}`.
      duplicate_status: the status of a duplicate-voucher-number refusal (400 or 409; not documented).
      state_path: JSON file the books are kept in across restarts (else memory only).

    `app.state.store`, `app.state.faults` and `app.state.calls` are there for in-process inspection.
    """
    store = DuettStore(
        accounts=accounts,
        vat_codes=vat_codes,
        locked_until=locked_until,
        duplicate_status=duplicate_status,
        state_path=state_path,
    )
    app = DuettSandbox(title="Duett Økonomi sandbox (kassebro)")
    app.state.store = store
    integration_set, client_set = set(integration_keys), set(client_keys)
    modules = list(active_modules)

    @app.exception_handler(DuettError)
    async def duett_error(request: Request, exc: DuettError) -> Response:
        return _problem(exc, request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return _problem(DuettError(exc.status_code, str(exc.detail)), request.url.path)

    def authenticated(request: Request) -> None:
        for header, accepted in ((INTEGRATION_HEADER, integration_set), (CLIENT_HEADER, client_set)):
            value = request.headers.get(header)
            if not value or value not in accepted:
                state = "missing" if not value else "not valid"
                raise DuettError(401, "Unauthorized", f"The {header} header is {state}.")

    api = APIRouter(dependencies=[Depends(authenticated)], default_response_class=DuettJSONResponse)

    async def json_body(request: Request) -> Any:
        try:
            return json.loads((await request.body()).decode("utf-8") or "null", parse_float=Decimal)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise validation(f"The request body is not valid JSON: {exc}") from None

    @api.get("/system/v2/integration")
    async def integration() -> Response:
        return DuettJSONResponse(
            {
                "integrationName": "kassebro",
                "clientNumber": DEMO_CLIENT_NUMBER,
                "clientName": client_name,
                "activeModules": modules,
            }
        )

    @api.get("/Register/v2/AccountIntervals")
    async def intervals(request: Request) -> Response:
        filters = parse_filters(request.query_params.multi_items())
        return DuettJSONResponse([i for i in ACCOUNT_INTERVALS if matches(i, filters)])

    @api.get("/Register/v2/Account")
    async def account_register(request: Request) -> Response:
        filters = parse_filters(request.query_params.multi_items())
        rows = [store.render_account(a) for a in sorted(store.accounts.values(), key=lambda a: a.number)]
        return DuettJSONResponse([r for r in rows if matches(r, filters)])

    @api.get("/Register/v2/VatCode")
    async def vat_register(request: Request) -> Response:
        filters = parse_filters(request.query_params.multi_items())
        rows = [store.render_vat(v) for v in store.vat_codes.values()]
        return DuettJSONResponse([r for r in rows if matches(r, filters)])

    @api.post(VOUCHER_PATH, status_code=201)
    async def post_voucher(request: Request) -> Response:
        voucher = store.create_voucher(await json_body(request))
        return DuettJSONResponse(store.render_voucher(voucher), status_code=201)

    @api.get(VOUCHER_PATH)
    async def list_vouchers(request: Request) -> Response:
        filters = parse_filters(request.query_params.multi_items())
        if not any(name == "voucherYear" and op == "EQ" for name, op, _ in filters):
            raise validation(
                "filter[voucherYear][EQ] is required.", {"filter[voucherYear][EQ]": ["The voucher year is required."]}
            )
        with store.lock:
            rows = [store.render_voucher(v) for v in store.vouchers.values()]
        return DuettJSONResponse([r for r in rows if matches(r, filters)])

    @api.get(REPORT_PATH)
    async def voucher_report(request: Request) -> Response:
        query = request.query_params
        filters = parse_filters(query.multi_items())
        if not any(name == "voucherYear" and op == "EQ" for name, op, _ in filters):
            raise validation(
                "filter[voucherYear][EQ] is required.", {"filter[voucherYear][EQ]": ["The voucher year is required."]}
            )
        ledger = query.get("ledgerFilter[EQ]", "ledger")
        category = query.get("categoryFilter[EQ]", "voucher")
        if ledger not in LEDGER_FILTERS:
            raise validation(
                f"Invalid ledgerFilter {ledger!r}.", {"ledgerFilter[EQ]": [f"Expected one of {LEDGER_FILTERS}."]}
            )
        if category not in CATEGORY_FILTERS:
            raise validation(
                f"Invalid categoryFilter {category!r}.",
                {"categoryFilter[EQ]": [f"Expected one of {CATEGORY_FILTERS}."]},
            )
        rows = store.report_rows() if ledger in ("ledger", "generalLedger") and category != "budgett" else []
        return DuettJSONResponse([r for r in rows if matches(r, filters)])

    @api.get(VOUCHER_PATH + "/{voucher_id}")
    async def get_voucher(voucher_id: str) -> Response:
        found = store.vouchers.get(voucher_id)
        if found is None:
            raise DuettError(404, "Not Found", f"Voucher with id {voucher_id} not found.")
        return DuettJSONResponse(store.render_voucher(found))

    app.include_router(api)
    app.include_router(_admin_router(app, store))
    return app


def _admin_router(app: DuettSandbox, store: DuettStore) -> APIRouter:
    """The shared admin API plus Duett's own: `PUT /_sandbox/lock` (the period lock)."""
    router = admin_router(app)

    @router.put("/lock")
    async def set_lock(request: Request) -> Response:
        body = await request.json()
        raw = body.get("locked_until")
        try:
            store.locked_until = dt.date.fromisoformat(raw) if raw else None
        except (TypeError, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"locked_until": raw or None})

    return router


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """`python -m kassebro.sandbox.duett --port 8930 [--state FILE]`; SIGTERM stops it cleanly."""
    from kassebro.sandbox.server import sandbox_parser, serve_until_stopped

    parser = sandbox_parser("Run the Duett Økonomi sandbox.", 8930)
    parser.add_argument("--integration-key", action="append", help=f"accepted (default {DEMO_INTEGRATION_KEY})")
    parser.add_argument("--client-key", action="append", help=f"accepted (default {DEMO_CLIENT_KEY})")
    parser.add_argument("--locked-until", help="period lock: refuse vouchers dated on or before YYYY-MM-DD")
    args = parser.parse_args(argv)
    app = create_app(
        integration_keys=args.integration_key or (DEMO_INTEGRATION_KEY,),
        client_keys=args.client_key or (DEMO_CLIENT_KEY,),
        locked_until=dt.date.fromisoformat(args.locked_until) if args.locked_until else None,
        state_path=args.state,
    )
    return serve_until_stopped(app, args, lambda url: f"Duett sandbox on {url}")


if __name__ == "__main__":
    sys.exit(main())
