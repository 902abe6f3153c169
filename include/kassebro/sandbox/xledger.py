"""A local emulator of the Xledger GraphQL API, for the few operations kassebro sends, with faults.

One endpoint, `POST /graphql` with `{"query", "variables"}` and `Authorization: token <token>`
(brief `apis.md` §4). No general GraphQL engine: the document's single top-level field and its
arguments (literals or `$variables`) are parsed; selection sets are NOT applied, every node is
answered whole (a client may ask for less and gets more).

Operations served:
- `query { __typename }` (the connection test) -> `{"data": {"__typename": "Query"}}`.
- `accounts(first, after, ownerSet)` -> Relay `edges{cursor node{dbId code description}}`, `pageInfo`.
- `objectKinds(first, after)` -> `{dbId name}`; the tax rules are the kind named "TAX_RULE".
- `objectValues(first, after, filter:{objectKindDbId})` -> `{dbId code description}`.
- `glImportItems(first, after, filter:{dbId, extIdentifier, extIdentifier_startsWith, postedDate_gte,
  postedDate_gt, postedDate_lte, postedDate_lt})`, in dbId order; the given fields must all match, and
  a filter field not in this list is refused (GRAPHQL_VALIDATION_FAILED), as GraphQL refuses an
  undefined input field.
- `addGLImportItems(inputs:[{node:{...}}])` -> `{edges:[{node:{dbId}}]}`.
- `transactions(first, after, filter:{postedDate_gte, postedDate_gt, postedDate_lte, postedDate_lt})`:
  the GL transactions the imported items became, in dbId order, with the fields GRASP-XL's
  `transactions` dataset lists: `dbId text amount taxAmount accountDbId taxRule{dbId code}
  header{dbId transactionNumber postedDate text fiscalYear} period{fiscalYear fiscalPeriod}`, plus
  `extIdentifier` (INFERRED, below). Every balance the sandbox could report is the sum of these.

What it enforces (apis.md §4):
- `Authorization: token <token>`; at most 500 nodes per `addGLImportItems` call; node fields from
  GRASP-XL's metadata list (others are refused); `account{code}` must exist; `taxRule{code}` must be
  a configured tax rule; `amount` a signed decimal string; `transactionSource{code:"GL"}`;
  `postedDate` yyyy-MM-dd; `trRegNumber` an integer.
- Errors arrive with HTTP 200 as `{"data": null, "errors": [{message, path, extensions:{code}}]}`,
  with the codes `INVALID_VALUE`, `BAD_REQUEST.INSUFFICIENT_CREDITS`, `BAD_REQUEST.BURST_RATE_LIMIT_REACHED`.
  Optional credit budget (`credits`) and burst limit (`burst_per_second`) per sandbox.

INFERRED (not documented; the real service may prove them wrong):
- Auth errors: a missing or malformed header answers 200 with "bad format for api token" (the
  message GRASP-XL reacts to); a well-formed unknown token answers HTTP 401 with an `errors` body.
- A mutation with any error stores nothing (all-or-nothing per call).
- Balance: the lines sharing an extIdentifier must sum to 0 within the call. kassebro's split
  convention for vouchers over 500 lines, `<ref>#<line>/<lines>` (line 1-based over the whole
  voucher), is understood: such a group may span calls and must balance once all its lines are in;
  a line number given twice is refused. This is kassebro's convention, not Xledger's.
- Duplicates: apis.md found no server-side duplicate check on extIdentifier, so by default a second
  import with the same extIdentifier is accepted (`reject_duplicates=True` refuses it with
  INVALID_VALUE). Clients must look up before posting either way.
- The fault "429" answers HTTP 429 with `Retry-After` and a BURST_RATE_LIMIT_REACHED error body.
- Tax rule codes are per company; the demo company has 0 (none), 2 (25 %), 21 (15 %), 22 (12 %),
  5 (exempt) and 6 (outside the VAT act): 2/21/22 as one public integration maps them.
- Imported items are readable at once through `glImportItems` (the real import is staged).
- The `glImportItems` filter fields. Only the `<field>_gte` naming style is documented
  (XL-SAMPLES `projects(filter:{modifiedAt_gte:$since})`); `extIdentifier`, `extIdentifier_startsWith`,
  `dbId` and the `postedDate_gte/_gt/_lte/_lt` range (dates as "yyyy-MM-dd" strings) follow that
  style but are not documented for glImportItems.
- No reversal: apis.md found no mutation to reverse or delete an import, so a reversal is an
  import like any other (kassebro imports a counter voucher).
- INFERRED, the GL transactions (`transactions`; GRASP-XL lists the query and its fields, not what
  an import becomes): every imported item is posted at once as one transaction on its account; a
  taxed item's transaction carries the net (`amount`) and the VAT in it (`taxAmount`), and the VAT
  is a transaction of its own on the tax rule's VAT account (`TAX_RULE_VAT`: 2 -> 2700 at 25 %,
  21 -> 2701 at 15 %, 22 -> 2702 at 12 %; the other rules book no VAT) with `taxAmount` 0 and no
  tax rule. The VAT is taken out of the gross per item, rounded half up (`item_vat`). The items
  sharing an extIdentifier (split suffix removed) and a postedDate, or without one a trRegNumber
  and a postedDate, share a header, numbered 1, 2, ... per calendar year in import order
  (`transactionNumber`). A transaction carries its item's `extIdentifier`: GRASP-XL lists that
  field on `glImportItems` and `journalEntries`, not on `transactions`. The filter takes the
  postedDate range in the style of `glImportItems` (undocumented for `transactions`), and refuses
  any other field. Tax rules' and accounts' dbIds are those `objectValues` and `accounts` answer.

Run it: `python -m kassebro.sandbox.xledger --port 8904 [--state FILE]`, or in-process with
`kassebro.sandbox.server.running(create_app())`. Admin API under `/_sandbox` (faults, calls,
vouchers, reset, limits). Fault paths are the top-level field: `/addGLImportItems`, `/glImportItems`.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import operator
import os
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from kassebro.sandbox.admin import ApiCall, SandboxApp, admin_router, log_entry
from kassebro.sandbox.amounts import Ore, from_ore, percent, round_half_up, to_ore, vat_in_gross
from kassebro.sandbox.common import Fault, Receive, Scope, read_body
from kassebro.sandbox.tripletex import CHART

GRAPHQL_PATH = "/graphql"
MAX_IMPORT_ITEMS = 500
MAX_FIRST = 10000
RETRY_AFTER_SECONDS = 1
DEMO_TOKEN = "demo-xledger-token"
TAX_RULE_KIND = "TAX_RULE"
TAX_RULE_KIND_DB_ID = 7
OBJECT_KINDS = {1: "GL_OBJECT_1", 2: "GL_OBJECT_2", TAX_RULE_KIND_DB_ID: TAX_RULE_KIND}
TAX_RULES: dict[str, str] = {
    "0": "Ingen mva",
    "2": "Utgående mva, høy sats 25 %",
    "21": "Utgående mva, middels sats 15 %",
    "22": "Utgående mva, lav sats 12 %",
    "5": "Fritatt for mva (innenfor mva-loven)",
    "6": "Utenfor mva-loven",
}
ACCOUNTS: dict[str, str] = {str(a.number): a.name for a in CHART}
# INFERRED (the API documents no rate or VAT account on a tax rule, and rules are per company):
# tax rule code -> (rate in percent, the VAT account its VAT is booked on) of the demo company.
# Rules not listed book no VAT.
TAX_RULE_VAT: dict[str, tuple[str, str]] = {"2": ("25", "2700"), "21": ("15", "2701"), "22": ("12", "2702")}
NODE_FIELDS = {
    "trRegNumber",
    "postedDate",
    "transactionSource",
    "account",
    "amount",
    "invoiceAmount",
    "taxRule",
    "text",
    "invoiceNumber",
    "invoiceDate",
    "dueDate",
    "currency",
    "glObject1",
    "glObject2",
    "glObject3",
    "glObject4",
    "glObject5",
    "project",
    "xgl",
    "subledger",
    "extIdentifier",
    "extOrderNumber",
    "jobLevel",
    "periodStart",
    "workflow",
    "importDefinition",
}
AMOUNT = re.compile(r"^-?\d{1,13}(\.\d{1,2})?$")
SPLIT_SUFFIX = re.compile(r"^(?P<base>.+)#(?P<line>\d+)/(?P<lines>\d+)$")
POSTED_DATE_FILTERS: dict[str, Callable[[dt.date, dt.date], bool]] = {
    "postedDate_gte": operator.ge,
    "postedDate_gt": operator.gt,
    "postedDate_lte": operator.le,
    "postedDate_lt": operator.lt,
}
ITEM_FILTERS = {"dbId", "extIdentifier", "extIdentifier_startsWith", *POSTED_DATE_FILTERS}
TRANSACTION_FILTERS = set(POSTED_DATE_FILTERS)
ACCOUNT_DB_ID_BASE = 100_000
TAX_RULE_DB_ID_BASE = 700_000
HEADER_DB_ID_BASE = 8_000_001

CODE_INVALID = "INVALID_VALUE"
CODE_CREDITS = "BAD_REQUEST.INSUFFICIENT_CREDITS"
CODE_BURST = "BAD_REQUEST.BURST_RATE_LIMIT_REACHED"


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class GraphQLError(Exception):
    """One or more GraphQL errors; answered with `status` (200 unless auth/fault)."""

    def __init__(
        self, messages: list[str] | str, code: str = CODE_INVALID, *, path: str | None = None, status: int = 200
    ) -> None:
        self.messages = [messages] if isinstance(messages, str) else list(messages)
        super().__init__("; ".join(self.messages))
        self.code = code
        self.path = path
        self.status = status

    def body(self) -> dict[str, Any]:
        errors = []
        for message in self.messages:
            error: dict[str, Any] = {"message": message, "extensions": {"code": self.code}}
            if self.path:
                error["path"] = [self.path]
            errors.append(error)
        return {"data": None, "errors": errors}

    def response(self, headers: Mapping[str, str] | None = None) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=dict(headers or {}))


# --------------------------------------------------------------------------------------------
# A minimal GraphQL reader: the single top-level field and its arguments
# --------------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r'\s*(?:(?P<comment>#[^\n]*)|(?P<string>"(?:[^"\\]|\\.)*")|(?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)'
    r"|(?P<name>[_A-Za-z][_0-9A-Za-z]*)|(?P<punct>\.\.\.|[{}()\[\]:!$,=@|&]))"
)


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if not match:
            raise GraphQLError(
                f"Syntax Error: unexpected character {text[pos:].lstrip()[:1]!r}.", "GRAPHQL_PARSE_FAILED"
            )
        pos = match.end()
        kind = match.lastgroup or ""
        if kind == "comment" or match.group(0).strip() == ",":
            continue
        out.append((kind, match.group(kind)))
    return out


class _Reader:
    def __init__(self, text: str, variables: Mapping[str, Any]) -> None:
        self.toks = _tokens(text)
        self.i = 0
        self.variables = variables

    def peek(self) -> str | None:
        return self.toks[self.i][1] if self.i < len(self.toks) else None

    def take(self, expected: str | None = None) -> str:
        if self.i >= len(self.toks):
            raise GraphQLError("Syntax Error: unexpected end of document.", "GRAPHQL_PARSE_FAILED")
        value = self.toks[self.i][1]
        if expected is not None and value != expected:
            raise GraphQLError(f"Syntax Error: expected {expected!r}, found {value!r}.", "GRAPHQL_PARSE_FAILED")
        self.i += 1
        return value

    def skip_balanced(self, open_: str, close: str) -> None:
        depth = 0
        while True:
            value = self.take()
            depth += value == open_
            depth -= value == close
            if depth == 0:
                return

    def operation(self) -> tuple[str, str, dict[str, Any]]:
        """(operation type, top-level field, arguments)."""
        op = "query"
        if self.peek() in ("query", "mutation", "subscription"):
            op = self.take()
            if self.peek() not in ("(", "{"):
                self.take()  # operation name
            if self.peek() == "(":
                self.skip_balanced("(", ")")
        self.take("{")
        field = self.take()
        if self.peek() == ":":  # alias
            self.take()
            field = self.take()
        args: dict[str, Any] = {}
        if self.peek() == "(":
            self.take()
            while self.peek() != ")":
                name = self.take()
                self.take(":")
                args[name] = self.value()
            self.take(")")
        if self.peek() == "{":
            self.skip_balanced("{", "}")
        if self.peek() != "}":
            raise GraphQLError("The sandbox answers one top-level field per document.", "GRAPHQL_PARSE_FAILED")
        return op, field, args

    def value(self) -> Any:
        kind, token = self.toks[self.i] if self.i < len(self.toks) else ("", "")
        if token == "$":
            self.take()
            return self.variables.get(self.take())
        if token == "[":
            self.take()
            items = []
            while self.peek() != "]":
                items.append(self.value())
            self.take("]")
            return items
        if token == "{":
            self.take()
            obj = {}
            while self.peek() != "}":
                name = self.take()
                self.take(":")
                obj[name] = self.value()
            self.take("}")
            return obj
        self.take()
        if kind == "string":
            return json.loads(token)
        if kind == "number":
            return float(token) if any(c in token for c in ".eE") else int(token)
        return {"true": True, "false": False, "null": None}.get(token, token)  # enums as strings


def parse_operation(query: str, variables: Mapping[str, Any] | None = None) -> tuple[str, str, dict[str, Any]]:
    """`(operation, field, args)` of a one-field GraphQL document; raises GraphQLError."""
    return _Reader(query, variables or {}).operation()


# --------------------------------------------------------------------------------------------
# The books
# --------------------------------------------------------------------------------------------


def _group(ext: str) -> tuple[str, int | None, int | None]:
    match = SPLIT_SUFFIX.match(ext)
    if match:
        return match.group("base"), int(match.group("line")), int(match.group("lines"))
    return ext, None, None


def item_vat(gross: Ore, rate: str | None) -> Ore:
    """The VAT in an imported item of `gross` øre whose tax rule has `rate` percent (None: no VAT).

    INFERRED (Xledger documents neither how an import's tax rule is applied nor a rounding rule):
    the item's amount is gross, as in the official example where the lines' amounts balance; the
    VAT is taken out of it, gross x rate / (100 + rate), and rounded to the øre half up (half an øre
    away from zero) per item. At 12 % the rule shows: 1000.02 -> 107.145 -> 107.15, net 892.87.
    """
    if rate is None:
        return 0
    return round_half_up(vat_in_gross(gross, percent(rate)))


def _money(amount: Ore) -> str:
    """Øre as Xledger's amount string with two decimals ("-892.87", "0.00")."""
    return f"{from_ore(amount):.2f}"


class XledgerStore:
    """Tokens, chart, tax rules and imported GL items; thread-safe; optionally kept in a JSON file."""

    def __init__(
        self,
        *,
        tokens: Iterable[str] = (DEMO_TOKEN,),
        accounts: Mapping[str, str] | None = None,
        tax_rules: Mapping[str, str] | None = None,
        tax_rule_vat: Mapping[str, tuple[str, str]] | None = None,
        reject_duplicates: bool = False,
        credits: int | None = None,
        burst_per_second: int | None = None,
        state_path: str | None = None,
    ) -> None:
        self._lock = threading.RLock()
        self.tokens = set(tokens)
        self.accounts = dict(ACCOUNTS if accounts is None else accounts)
        self.tax_rules = dict(TAX_RULES if tax_rules is None else tax_rules)
        self.tax_rule_vat = dict(TAX_RULE_VAT if tax_rule_vat is None else tax_rule_vat)
        self.reject_duplicates = reject_duplicates
        self.credits = credits
        self.burst_per_second = burst_per_second
        self._recent: deque[float] = deque()
        self.state_path = state_path
        self.items: list[dict[str, Any]] = []
        self._next_id = 5_000_001
        self._load()

    def _save(self) -> None:
        if not self.state_path:
            return
        path = Path(self.state_path)
        tmp = path.with_suffix(path.suffix + ".tmp")
        data = {"next_id": self._next_id, "items": self.items}
        tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp, path)

    def _load(self) -> None:
        if self.state_path and Path(self.state_path).exists():
            data = json.loads(Path(self.state_path).read_text(encoding="utf-8"))
            self._next_id = int(data.get("next_id", self._next_id))
            self.items = list(data.get("items") or [])

    def reset(self) -> None:
        with self._lock:
            self.items.clear()
            self._next_id = 5_000_001
            self._recent.clear()
            self._save()

    # ---- auth and limits ---------------------------------------------------------------------

    def authenticate(self, authorization: str) -> None:
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "token" or not token.strip() or " " in token.strip():
            raise GraphQLError("bad format for api token", "UNAUTHENTICATED")
        if token.strip() not in self.tokens:
            raise GraphQLError("Invalid api token", "UNAUTHENTICATED", status=401)

    def spend(self) -> None:
        """One request against the credit budget and the burst limit (if set)."""
        with self._lock:
            if self.burst_per_second is not None:
                now = time.monotonic()
                while self._recent and now - self._recent[0] >= 1.0:
                    self._recent.popleft()
                if len(self._recent) >= self.burst_per_second:
                    raise GraphQLError("Burst rate limit reached. Please wait and try again.", CODE_BURST)
                self._recent.append(now)
            if self.credits is not None:
                if self.credits <= 0:
                    raise GraphQLError("Insufficient credits to execute this request.", CODE_CREDITS)
                self.credits -= 1

    # ---- import ------------------------------------------------------------------------------

    def add(self, inputs: Any) -> list[dict[str, Any]]:
        """Validate and store `addGLImportItems` inputs, all or nothing."""
        where = "addGLImportItems"
        if not isinstance(inputs, list) or not inputs:
            raise GraphQLError("inputs: at least one item is required.", path=where)
        if len(inputs) > MAX_IMPORT_ITEMS:
            raise GraphQLError(
                f"inputs: at most {MAX_IMPORT_ITEMS} items can be added in one call, got {len(inputs)}.", path=where
            )
        problems: list[str] = []
        nodes: list[dict[str, Any]] = []
        for i, wrapper in enumerate(inputs):
            node = wrapper.get("node") if isinstance(wrapper, dict) else None
            if not isinstance(node, dict):
                problems.append(f"inputs[{i}]: expected {{node: {{...}}}}.")
                continue
            nodes.append(self._check_node(node, f"inputs[{i}].node", problems))
        with self._lock:
            if not problems:
                self._check_groups(nodes, problems)
            if problems:
                raise GraphQLError(list(dict.fromkeys(problems)), path=where)
            created = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            for node in nodes:
                node["dbId"] = self._next_id
                node["createdAt"] = created
                self._next_id += 1
                self.items.append(node)
            self._save()
            return [dict(node) for node in nodes]

    def _check_node(self, node: dict[str, Any], where: str, problems: list[str]) -> dict[str, Any]:
        for name in sorted(set(node) - NODE_FIELDS):
            problems.append(f'{where}: Field "{name}" is not defined by type "GLImportItemInput".')

        def code_of(name: str) -> str | None:
            ref = node.get(name)
            if ref is None:
                return None
            if not isinstance(ref, dict) or not isinstance(ref.get("code"), str):
                problems.append(f"{where}.{name}: expected {{code: String}}.")
                return None
            return ref["code"]

        account = code_of("account")
        if account is None:
            problems.append(f"{where}.account: required.")
        elif account not in self.accounts:
            problems.append(f"{where}.account: Account with code '{account}' does not exist.")
        tax_rule = code_of("taxRule")
        if tax_rule is not None and tax_rule not in self.tax_rules:
            problems.append(f"{where}.taxRule: Tax rule with code '{tax_rule}' does not exist.")
        source = code_of("transactionSource")
        if source != "GL":
            problems.append(f'{where}.transactionSource: must be {{code: "GL"}}, got {source!r}.')
        amount = node.get("amount")
        if not isinstance(amount, str) or not AMOUNT.match(amount):
            problems.append(f'{where}.amount: {amount!r} is not a decimal string like "-101.00".')
        posted = node.get("postedDate")
        try:
            dt.date.fromisoformat(posted) if isinstance(posted, str) and len(posted) == 10 else 1 / 0
        except (ValueError, ZeroDivisionError):
            problems.append(f"{where}.postedDate: required, format yyyy-MM-dd, got {posted!r}.")
        reg = node.get("trRegNumber")
        if reg is not None and (isinstance(reg, bool) or not isinstance(reg, int)):
            problems.append(f"{where}.trRegNumber: must be an integer.")
        ext = node.get("extIdentifier")
        if ext is not None and (not isinstance(ext, str) or not ext.strip()):
            problems.append(f"{where}.extIdentifier: must be a non-empty string.")
        for name in ("glObject1", "glObject2", "glObject3", "glObject4", "glObject5", "project"):
            code_of(name)
        return {k: v for k, v in node.items() if k in NODE_FIELDS}

    def _check_groups(self, nodes: list[dict[str, Any]], problems: list[str]) -> None:
        """Balance per extIdentifier group (split groups once complete) and duplicates."""
        groups: dict[str, list[dict[str, Any]]] = {}
        for node in nodes:
            ext = node.get("extIdentifier")
            key = _group(ext)[0] if ext else f"(trRegNumber {node.get('trRegNumber')})"
            groups.setdefault(key, []).append(node)
        for base, members in groups.items():
            stored = [
                item for item in self.items if item.get("extIdentifier") and _group(item["extIdentifier"])[0] == base
            ]
            split = [_group(m.get("extIdentifier") or "") for m in members]
            if any(line is not None for _, line, _ in split):
                if any(line is None for _, line, _ in split):
                    problems.append(f"extIdentifier {base}: split lines (#n/N) and unsplit lines mixed.")
                    continue
                totals = {lines for _, _, lines in split} | {_group(s["extIdentifier"])[2] for s in stored}
                if len(totals) != 1 or None in totals:
                    problems.append(f"extIdentifier {base}: inconsistent line counts {sorted(map(str, totals))}.")
                    continue
                total = totals.pop() or 0
                seen = [_group(s["extIdentifier"])[1] for s in stored]
                numbers = [line for _, line, _ in split]
                for number in numbers:
                    if not 1 <= (number or 0) <= total:
                        problems.append(f"extIdentifier {base}: line {number} outside 1..{total}.")
                repeated = sorted({n for n in numbers if numbers.count(n) > 1 or n in seen})
                if repeated:
                    problems.append(f"extIdentifier {base}: line(s) {repeated} already imported.")
                if len(set(numbers) | set(seen)) == total:
                    amount = sum(Decimal(m["amount"]) for m in [*members, *stored])
                    if amount != 0:
                        problems.append(f"extIdentifier {base}: the lines do not balance, they sum to {amount}.")
                continue
            amount = sum(Decimal(m["amount"]) for m in members)
            if amount != 0:
                problems.append(f"{base}: the lines do not balance, they sum to {amount}.")
            if stored and self.reject_duplicates:
                problems.append(f"extIdentifier {base}: already imported (dbId {stored[0]['dbId']}).")

    def find_items(self, flt: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The items matching a `glImportItems` filter (all given fields must match), in dbId order."""
        if not isinstance(flt, Mapping):
            raise GraphQLError("filter: expected an input object.", "GRAPHQL_VALIDATION_FAILED")
        unknown = sorted(set(flt) - ITEM_FILTERS)
        if unknown:
            raise GraphQLError(
                [f'Field "{name}" is not defined by type "GLImportItemFilter".' for name in unknown],
                "GRAPHQL_VALIDATION_FAILED",
            )
        bounds = _date_bounds(flt)
        with self._lock:
            items = list(self.items)
        for compare, bound in bounds:
            items = [i for i in items if compare(dt.date.fromisoformat(str(i.get("postedDate"))[:10]), bound)]
        if flt.get("dbId") is not None:
            items = [i for i in items if str(i["dbId"]) == str(flt["dbId"])]
        if flt.get("extIdentifier") is not None:
            items = [i for i in items if i.get("extIdentifier") == flt["extIdentifier"]]
        if flt.get("extIdentifier_startsWith") is not None:
            items = [i for i in items if str(i.get("extIdentifier") or "").startswith(flt["extIdentifier_startsWith"])]
        return [render_item(i) for i in items]

    def account_nodes(self) -> list[dict[str, Any]]:
        """The chart as `accounts` answers it, in code order; the dbIds are those transactions name."""
        return [
            {"dbId": ACCOUNT_DB_ID_BASE + i, "code": code, "description": name}
            for i, (code, name) in enumerate(sorted(self.accounts.items()))
        ]

    def tax_rule_nodes(self) -> list[dict[str, Any]]:
        """The tax rules as `objectValues` answers them; the dbIds are those transactions name."""
        return [
            {"dbId": TAX_RULE_DB_ID_BASE + i, "code": code, "description": name}
            for i, (code, name) in enumerate(self.tax_rules.items())
        ]

    def transactions(self, flt: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The GL transactions the imported items became (see the module docstring), in dbId order,
        those whose header's postedDate matches the filter."""
        if not isinstance(flt, Mapping):
            raise GraphQLError("filter: expected an input object.", "GRAPHQL_VALIDATION_FAILED")
        unknown = sorted(set(flt) - TRANSACTION_FILTERS)
        if unknown:
            raise GraphQLError(
                [f'Field "{name}" is not defined by type "TransactionFilter".' for name in unknown],
                "GRAPHQL_VALIDATION_FAILED",
            )
        bounds = _date_bounds(flt)
        with self._lock:
            items = list(self.items)
        account_ids = {node["code"]: node["dbId"] for node in self.account_nodes()}
        rule_ids = {node["code"]: node["dbId"] for node in self.tax_rule_nodes()}
        headers: dict[tuple[str, str], dict[str, Any]] = {}
        numbers: dict[int, int] = {}  # calendar year -> the last transactionNumber given
        found = []
        for item in items:
            posted = str(item.get("postedDate"))[:10]
            day = dt.date.fromisoformat(posted)
            ext = str(item.get("extIdentifier") or "")
            key = (_group(ext)[0] if ext else f"trRegNumber {item.get('trRegNumber')}", posted)
            header = headers.get(key)
            if header is None:  # numbered over every item, so a filter does not renumber them
                numbers[day.year] = numbers.get(day.year, 0) + 1
                header = {
                    "dbId": HEADER_DB_ID_BASE + len(headers),
                    "transactionNumber": numbers[day.year],
                    "postedDate": posted,
                    "text": item.get("text"),
                    "fiscalYear": day.year,
                }
                headers[key] = header
            if not all(compare(day, bound) for compare, bound in bounds):
                continue
            gross = to_ore(Decimal(str(item["amount"])))
            rule = (item.get("taxRule") or {}).get("code")
            rate, vat_account = self.tax_rule_vat.get(rule, (None, None)) if rule else (None, None)
            vat = item_vat(gross, rate)
            shared = {
                "text": item.get("text"),
                "extIdentifier": item.get("extIdentifier"),
                "header": header,
                "period": {"fiscalYear": day.year, "fiscalPeriod": day.month},
            }
            found.append(
                {
                    **shared,
                    "dbId": int(item["dbId"]) * 10,
                    "amount": _money(gross - vat),
                    "taxAmount": _money(vat),
                    "accountDbId": account_ids[item["account"]["code"]],
                    "taxRule": {"dbId": rule_ids.get(rule), "code": rule} if rule else None,
                }
            )
            if vat:
                if vat_account not in account_ids:
                    raise GraphQLError(f"Tax rule {rule}: VAT account {vat_account} is not in the chart.")
                found.append(
                    {
                        **shared,
                        "dbId": int(item["dbId"]) * 10 + 1,
                        "amount": _money(vat),
                        "taxAmount": _money(0),
                        "accountDbId": account_ids[vat_account],
                        "taxRule": None,
                    }
                )
        return found


def _date_bounds(flt: Mapping[str, Any]) -> list[tuple[Callable[[dt.date, dt.date], bool], dt.date]]:
    """The postedDate comparisons of a filter (`postedDate_gte: "2026-03-01"` ...)."""
    bounds = []
    for name, compare in POSTED_DATE_FILTERS.items():
        raw = flt.get(name)
        if raw is None:
            continue
        try:
            if not isinstance(raw, str) or len(raw) != 10:
                raise ValueError
            bounds.append((compare, dt.date.fromisoformat(raw)))
        except ValueError:
            raise GraphQLError(f"filter.{name}: format yyyy-MM-dd, got {raw!r}.") from None
    return bounds


def render_item(item: Mapping[str, Any]) -> dict[str, Any]:
    node = {name: item.get(name) for name in sorted(NODE_FIELDS) if name in item}
    node.setdefault("taxRule", None)
    node["dbId"] = item["dbId"]
    node["createdAt"] = item.get("createdAt")
    return node


def _paged(values: list[dict[str, Any]], args: Mapping[str, Any]) -> dict[str, Any]:
    first = args.get("first", 100)
    if not isinstance(first, int) or not 0 < first <= MAX_FIRST:
        raise GraphQLError(f"first: must be between 1 and {MAX_FIRST}.")
    after = args.get("after")
    try:
        start = int(after) + 1 if after not in (None, "") else 0
    except (TypeError, ValueError):
        raise GraphQLError(f"after: invalid cursor {after!r}.") from None
    page = values[start : start + first]
    edges = [{"cursor": str(start + i), "node": node} for i, node in enumerate(page)]
    return {
        "edges": edges,
        "pageInfo": {"hasNextPage": start + first < len(values), "endCursor": edges[-1]["cursor"] if edges else None},
    }


def execute(store: XledgerStore, query: str, variables: Mapping[str, Any]) -> dict[str, Any]:
    """The `data` of one operation; raises GraphQLError."""
    op, field, args = parse_operation(query, variables)
    if op == "mutation":
        if field != "addGLImportItems":
            raise GraphQLError(f'Cannot query field "{field}" on type "Mutation".', "GRAPHQL_VALIDATION_FAILED")
        created = store.add(args.get("inputs"))
        return {field: {"edges": [{"node": node} for node in created]}}
    if field == "__typename":
        return {"__typename": "Query"}
    if field == "accounts":
        return {field: _paged(store.account_nodes(), args)}
    if field == "objectKinds":
        return {field: _paged([{"dbId": k, "name": v} for k, v in sorted(OBJECT_KINDS.items())], args)}
    if field == "objectValues":
        kind = (args.get("filter") or {}).get("objectKindDbId")
        values = store.tax_rule_nodes() if kind == TAX_RULE_KIND_DB_ID else []
        return {field: _paged(values, args)}
    if field == "glImportItems":
        return {field: _paged(store.find_items(args.get("filter") or {}), args)}
    if field == "transactions":
        return {field: _paged(store.transactions(args.get("filter") or {}), args)}
    raise GraphQLError(f'Cannot query field "{field}" on type "Query".', "GRAPHQL_VALIDATION_FAILED")


# --------------------------------------------------------------------------------------------
# The app
# --------------------------------------------------------------------------------------------


def _field_of(raw: bytes) -> str:
    try:
        body = json.loads(raw.decode("utf-8"))
        return parse_operation(str(body.get("query") or ""), body.get("variables") or {})[1]
    except Exception:  # noqa: BLE001 - only names the call for the log and fault matching
        return "?"


class XledgerSandbox(SandboxApp):
    """The Xledger app behind the shared fault layer (`admin.SandboxApp`): every call is a POST to
    /graphql, so its log path and fault path are its top-level field ("/addGLImportItems"), read
    from the body before anything else; the body is always logged."""

    log_decimals = False

    async def open_call(self, scope: Scope, receive: Receive) -> ApiCall | None:
        if scope.get("path") != GRAPHQL_PATH:
            return None
        raw, receive = await read_body(receive)
        path = "/" + _field_of(raw)
        entry = log_entry(scope, path)
        try:
            entry["body"] = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            entry["body"] = raw.decode("utf-8", "replace")
        return ApiCall(path, entry, receive, log_body=False)  # logged above, whole

    def fault_reply(self, fault: Fault, call: ApiCall) -> Response:
        if fault.kind == "429":
            seconds = str(max(0, math.ceil(fault.seconds)))
            error = GraphQLError("Burst rate limit reached. Please wait and try again.", CODE_BURST, status=429)
            return error.response({"Retry-After": seconds})
        return GraphQLError("Internal server error", "INTERNAL_SERVER_ERROR", status=500).response()

    def fault_path(self, path: str) -> str:
        return path.removeprefix(GRAPHQL_PATH) or "*"

    def reset_books(self, options: dict[str, Any]) -> None:
        store: XledgerStore = self.state.store
        store.reset()
        store.credits = None
        store.burst_per_second = None

    def voucher_listing(self, request: Request) -> Any:
        """The imported items grouped per extIdentifier (split suffix removed)."""
        groups: dict[str, list[dict[str, Any]]] = {}
        for item in self.state.store.find_items({}):
            groups.setdefault(_group(item.get("extIdentifier") or "")[0], []).append(item)
        return {"vouchers": [{"extIdentifier": ext, "items": items} for ext, items in groups.items()]}


def demo_connection(url: str) -> dict[str, Any]:
    """The Airflow connection (as `AIRFLOW_CONN_*` JSON holds it) to this sandbox at `url`."""
    return {"conn_type": "xledger", "host": f"{url}{GRAPHQL_PATH}", "password": DEMO_TOKEN, "extra": {}}


def create_app(
    *,
    tokens: Iterable[str] = (DEMO_TOKEN,),
    accounts: Mapping[str, str] | None = None,
    tax_rules: Mapping[str, str] | None = None,
    tax_rule_vat: Mapping[str, tuple[str, str]] | None = None,
    reject_duplicates: bool = False,
    credits: int | None = None,
    burst_per_second: int | None = None,
    state_path: str | os.PathLike[str] | None = None,
) -> XledgerSandbox:
    """Build an Xledger sandbox app.

    Args:
      tokens: API tokens accepted (default "demo-xledger-token").
      accounts: code -> description (default the Tripletex sandbox's NS 4102 shop chart).
      tax_rules: code -> description (default TAX_RULES).
      tax_rule_vat: tax rule code -> (rate in percent, VAT account) (default TAX_RULE_VAT, INFERRED).
      reject_duplicates: refuse a second import of an extIdentifier (real Xledger: not found to).
      credits: requests left before INSUFFICIENT_CREDITS (None = unlimited).
      burst_per_second: requests per second before BURST_RATE_LIMIT_REACHED (None = unlimited).
      state_path: JSON file the imported items are kept in across restarts.

    `app.state.store`, `app.state.faults` and `app.state.calls` are there for in-process inspection.
    """
    store = XledgerStore(
        tokens=tokens,
        accounts=accounts,
        tax_rules=tax_rules,
        tax_rule_vat=tax_rule_vat,
        reject_duplicates=reject_duplicates,
        credits=credits,
        burst_per_second=burst_per_second,
        state_path=os.fspath(state_path) if state_path else None,
    )
    app = XledgerSandbox(title="Xledger sandbox (kassebro)")
    app.state.store = store

    @app.post(GRAPHQL_PATH)
    async def graphql(request: Request) -> Response:
        try:
            store.authenticate(request.headers.get("authorization", ""))
            try:
                body = json.loads(await request.body())
            except (UnicodeDecodeError, json.JSONDecodeError):
                raise GraphQLError("Request body is not valid JSON.", "BAD_REQUEST") from None
            if not isinstance(body, dict) or not isinstance(body.get("query"), str):
                raise GraphQLError('Expected a JSON object with "query".', "BAD_REQUEST")
            store.spend()
            variables = body.get("variables") or {}
            return JSONResponse({"data": execute(store, body["query"], variables)})
        except GraphQLError as exc:
            return exc.response()

    app.include_router(_admin_router(app))
    return app


def _admin_router(app: XledgerSandbox) -> APIRouter:
    """The shared admin API plus Xledger's own: `POST /_sandbox/limits` (credits, burst rate)."""
    router = admin_router(app)
    store: XledgerStore = app.state.store

    @router.post("/limits")
    async def limits(request: Request) -> Response:
        body = await request.json()
        if "credits" in body:
            store.credits = None if body["credits"] is None else int(body["credits"])
        if "burst_per_second" in body:
            store.burst_per_second = None if body["burst_per_second"] is None else int(body["burst_per_second"])
        return JSONResponse({"credits": store.credits, "burst_per_second": store.burst_per_second})

    return router


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """`python -m kassebro.sandbox.xledger --port 8904 [--state FILE]`; SIGTERM stops it cleanly."""
    from kassebro.sandbox.server import sandbox_parser, serve_until_stopped

    parser = sandbox_parser(
        "Run the Xledger GraphQL sandbox.", 8904, "JSON file to keep the imported items in across restarts"
    )
    parser.add_argument("--token", action="append", help=f"accepted API token (default {DEMO_TOKEN})")
    parser.add_argument("--reject-duplicates", action="store_true", help="refuse a repeated extIdentifier")
    args = parser.parse_args(argv)
    app = create_app(
        tokens=args.token or (DEMO_TOKEN,), reject_duplicates=args.reject_duplicates, state_path=args.state
    )
    return serve_until_stopped(app, args, lambda url: f"Xledger sandbox on {url}{GRAPHQL_PATH} (admin: /_sandbox)")


if __name__ == "__main__":
    sys.exit(main())
