"""Xledger GraphQL client: import a day's voucher as GL import items, look it up, read it back.

Plain `requests`, no Airflow. What it does about the API's habits (brief `apis.md` §4):

- Auth: every call is `POST /graphql {"query", "variables"}` with `Authorization: token <token>`.
  The token never appears in exceptions, reprs or logs; auth errors name "the Xledger API token".
- Errors inside HTTP 200: a body with `errors` is an error whatever the status. Codes
  `BAD_REQUEST.INSUFFICIENT_CREDITS`, `BAD_REQUEST.BURST_RATE_LIMIT_REACHED` and
  `BAD_REQUEST.CONCURRENCY_LIMIT_REACHED` (or HTTP 429) -> LedgerRateLimited (Retry-After, else 1 s;
  INSUFFICIENT_CREDITS 3600 s, INFERRED: credits do not come back within seconds); "api token" in the
  message or UNAUTHENTICATED/FORBIDDEN (or HTTP 401/403) -> LedgerAuthError; "timed out", 5xx,
  timeouts and dropped connections -> LedgerTransient; anything else -> LedgerValidationError with
  Xledger's messages. Queries are retried (transient: `get_retries` times; rate limits waited out
  up to `max_rate_wait`); the import mutation never is.
- Lookups, kept in a `LookupCache` shared by the clients of a run (a client whose post is
  refused clears it; an account or tax rule missing from it is looked up once more): account
  codes (`accounts`, Relay paging), object kinds (`objectKinds`) and tax rule codes
  (`objectValues` of the object kind named TAX_RULE, INFERRED query). The token never goes in it.
- Tax rules are configured per company, so the standard VAT codes map to tax rule codes through
  `tax_rules` (default DEFAULT_TAX_RULES: 3->"2", 31->"21", 33->"22" as one public integration maps
  them, 5->"5", 6->"6"; code "0" or None -> no taxRule). Unmapped or unknown codes are refused
  before sending.
- Post: `addGLImportItems` with one node per voucher line: `trRegNumber` (the day as yyyymmdd, as in
  the official example), `postedDate`, `transactionSource{code:"GL"}`, `account{code}`, `amount`
  (kroner string, 2 decimals, signed, debit positive, gross), `taxRule{code}`, `text`,
  `extIdentifier`, department -> `glObject1{code}` (`department_object`), project -> `project{code}`.
  At most 500 nodes a call: a voucher of up to 500 lines is one call with extIdentifier = the
  external ref on every line; a longer one is split over calls, every line's extIdentifier being
  "<external_ref>#<line>/<lines>" (1-based over the whole voucher; kassebro's convention).
- Exactly once: Xledger was not found to refuse a repeated extIdentifier, so `post` looks the
  reference up first: a complete, equal import is returned as is (no second import), a different
  one is refused, and a split import cut short is completed with the missing lines only. When this
  client's own `find` saw the reference absent moments before (the pipeline's duplicate check),
  `post` does not ask again. After a transient error the caller calls `find`. `find` raises
  LedgerTransient on a split import cut short.
- `send_to_ledger: false` is refused by the config check (the registry says `approval=False`):
  Xledger imports are staged and approved in Xledger's own workflow, the API has no approval
  call (apis.md), so `post` always imports.
- Read-back (`glImportItems` by extIdentifier): postings aggregated per (account, VAT code) in
  first-seen order, signed øre; tax rule codes are mapped back to the standard codes.
  ledger_id is the smallest import item dbId, number the trRegNumber. With
  `read_back_after_post=False`, `post` returns the voucher as sent with the dbIds the mutation
  answered, without reading the import back.
- `list_vouchers(from, to)`: `glImportItems(filter:{postedDate_gte, postedDate_lt})` (INFERRED
  filter names in the documented `<field>_gte` style), all pages, grouped into vouchers by
  extIdentifier (split suffix removed) or, without one, by trRegNumber + postedDate. Imports are
  staged and the API shows no approval state, so `include_non_posted` changes nothing.
- `reverse(dbId, date)`: no reversal mutation was found (apis.md), so it imports a counter voucher,
  every item of the original negated, with extIdentifier `<original ref>:reversal`, after looking
  that up in the same query that reads the original: a retry after a lost answer returns the
  reversal instead of importing it twice. Never retried itself. `find(original ref)` still finds
  the original only (the reversal's extIdentifier is another reference).
- Read-back of the books (`ReadBack`): `postings(from, to)` reads the GL transactions,
  `transactions(filter:{postedDate_gte, postedDate_lt})` (GRASP-XL lists the query and its fields:
  `dbId text amount taxAmount accountDbId taxRule{dbId} header{dbId transactionNumber postedDate
  text}`; the filter names are INFERRED in the style of glImportItems', `extIdentifier` on a
  transaction is INFERRED from glImportItems and journalEntries). `amount` is read as the net and
  `amount + taxAmount` as the gross (INFERRED); the account and the tax rule come as dbIds and are
  translated through the `accounts` and tax rule (`objectValues`) lookups, the tax rule code to the
  standard code through `tax_rules`. `balances` are computed from the transactions (below),
  `accounts()` is the `accounts` query, `vat_codes()` the tax rules mapped in `tax_rules`.
- `calls` counts requests by operation ("query accounts", "mutation addGLImportItems").
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import threading
import time
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import requests

from kassebro.booking.voucher import Voucher
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
    balances_from_postings,
)
from kassebro.ledgers.cache import LookupCache
from kassebro.ledgers.http import HttpClient, LedgerHttp, json_or_none, retry_after
from kassebro.ledgers.registry import ConnectionParts

log = logging.getLogger(__name__)

SYSTEM = "Xledger"
PRODUCTION_URL = "https://www.xledger.net/graphql"
DEMO_URL = "https://demo.xledger.net/graphql"
MAX_ITEMS_PER_CALL = 500
PAGE_SIZE = 500
MAX_RATE_LIMIT_WAITS = 3
DEFAULT_RETRY_AFTER = 1.0
CREDITS_RETRY_AFTER = 3600.0
TEXT_MAX = 200  # INFERRED limit, kept short on purpose
TAX_RULE_KIND = "TAX_RULE"
ABSENT_TRUST_SECONDS = 60.0  # how long find()'s "not there" spares post() its own look-up
DEFAULT_TAX_RULES: dict[str, str] = {"3": "2", "31": "21", "33": "22", "5": "5", "6": "6"}
RATE_CODES = {
    "BAD_REQUEST.INSUFFICIENT_CREDITS",
    "BAD_REQUEST.BURST_RATE_LIMIT_REACHED",
    "BAD_REQUEST.CONCURRENCY_LIMIT_REACHED",
}
AUTH_CODES = {"UNAUTHENTICATED", "FORBIDDEN", "UNAUTHORIZED"}
SPLIT_SUFFIX = re.compile(r"^(?P<base>.+)#(?P<line>\d+)/(?P<lines>\d+)$")

Q_TYPENAME = "query { __typename }"
Q_ACCOUNTS = """query Accounts($first: Int, $after: String) {
  accounts(first: $first, after: $after, ownerSet: LOWER) {
    edges { cursor node { dbId code description } } pageInfo { hasNextPage }
  }
}"""
Q_OBJECT_KINDS = """query ObjectKinds($first: Int, $after: String) {
  objectKinds(first: $first, after: $after) { edges { cursor node { dbId name } } pageInfo { hasNextPage } }
}"""
Q_OBJECT_VALUES = """query ObjectValues($first: Int, $after: String, $kind: Int) {
  objectValues(first: $first, after: $after, filter: {objectKindDbId: $kind}) {
    edges { cursor node { dbId code description } } pageInfo { hasNextPage }
  }
}"""
_ITEM_FIELDS = "dbId trRegNumber postedDate amount text extIdentifier account { code } taxRule { code }"


def _items_query(filter_fields: str, variables: str = "", fields: str = _ITEM_FIELDS) -> str:
    """A `glImportItems` query paged Relay-style, with this filter and selection."""
    return (
        f"query GLImportItems($first: Int, $after: String{variables}) {{\n"
        f"  glImportItems(first: $first, after: $after, filter: {{{filter_fields}}}) {{\n"
        f"    edges {{ cursor node {{ {fields} }} }} pageInfo {{ hasNextPage }}\n"
        "  }\n}"
    )


_TRANSACTION_FIELDS = (
    "dbId text amount taxAmount accountDbId extIdentifier taxRule { dbId } "
    "header { dbId transactionNumber postedDate text }"
)


def _transactions_query(date_from: dt.date | None, date_to: dt.date) -> str:
    """A `transactions` query for postedDate in [date_from, date_to) (no lower bound for None),
    paged Relay-style; the dates go in as string literals, as in `list_vouchers`."""
    bounds = f"postedDate_lt: {json.dumps(date_to.isoformat())}"
    if date_from is not None:
        bounds = f"postedDate_gte: {json.dumps(date_from.isoformat())}, {bounds}"
    return (
        "query Transactions($first: Int, $after: String) {\n"
        f"  transactions(first: $first, after: $after, filter: {{{bounds}}}) {{\n"
        f"    edges {{ cursor node {{ {_TRANSACTION_FIELDS} }} }} pageInfo {{ hasNextPage }}\n"
        "  }\n}"
    )


Q_ITEMS_BY_REF = _items_query("extIdentifier_startsWith: $ref", ", $ref: String")
Q_ITEM_BY_ID = _items_query("dbId: $dbId", ", $dbId: Int")
M_ADD_ITEMS = """mutation AddGLImportItems($inputs: [AddGLImportItemsInput!]!) {
  addGLImportItems(inputs: $inputs) { edges { node { dbId } } }
}"""
_OPERATION = re.compile(r"^\s*(query|mutation)\b[^{]*\{\s*(\w+)")


class XledgerClient(HttpClient):
    """A Ledger for one Xledger entity (the API token decides which).

    Args:
      base_url: "https://www.xledger.net/graphql", the demo, or a sandbox "http://127.0.0.1:8904"
        ("/graphql" is added when missing).
      token: the GraphQL API token (Administration -> Access Control -> GraphQL -> API tokens).
      tax_rules: standard VAT code -> the company's tax rule code (default DEFAULT_TAX_RULES).
      department_object: the node field a line's department goes to (default "glObject1").
      session, timeout, get_retries, retry_backoff, max_rate_wait: as in FikenClient.
      cache: the run's lookups (one per connection, `cache.cache_path`); None makes an in-memory
        one for this client.
      read_back_after_post: after importing, query the import items back to return the voucher
        as Xledger holds it (one call more per voucher).
    """

    system = SYSTEM

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        tax_rules: Mapping[str, str] | None = None,
        department_object: str = "glObject1",
        session: requests.Session | None = None,
        timeout: float = 30.0,
        get_retries: int = 2,
        retry_backoff: float = 0.5,
        max_rate_wait: float = 10.0,
        cache: LookupCache | None = None,
        read_back_after_post: bool = True,
    ) -> None:
        base = base_url.rstrip("/")
        self.url = base if base.endswith("/graphql") else base + "/graphql"
        self._token = token
        self.tax_rules = dict(DEFAULT_TAX_RULES if tax_rules is None else tax_rules)
        self.department_object = department_object
        self._http = LedgerHttp(
            SYSTEM,
            session=session,
            timeout=timeout,
            get_retries=get_retries,
            retry_backoff=retry_backoff,
            max_rate_wait=max_rate_wait,
            secrets=lambda: (self._token,),
        )
        self.cache = cache if cache is not None else LookupCache()
        self.read_back_after_post = read_back_after_post
        self.page_size = PAGE_SIZE  # `first` of every paged query
        self._lock = threading.RLock()
        self._fetched: set[str] = set()  # cache tables this client read from Xledger itself
        self._absent: dict[str, float] = {}  # external_ref -> when find() last saw it absent
        self._tax_rule_nodes: list[dict[str, Any]] = []  # the tax rules as last read (vat_codes)

    # ---- housekeeping ------------------------------------------------------------------------

    @classmethod
    def from_connection(cls, parts: ConnectionParts, **_: Any) -> XledgerClient:
        """The client an Airflow connection describes: host = the GraphQL URL, password = API token."""
        return cls(
            parts.base_url,
            parts.password,
            session=parts.session,
            timeout=parts.timeout,
            cache=parts.cache(None),
            read_back_after_post=False,
        )

    def __repr__(self) -> str:
        return f"XledgerClient(url={self.url!r})"

    # ---- the Ledger protocol -----------------------------------------------------------------

    def test_connection(self) -> str:
        """`query { __typename }`: proves the token works without reading any data."""
        data = self.graphql(Q_TYPENAME)
        return f"Connected to Xledger ({data.get('__typename', '?')})"

    def find(self, external_ref: str, date: dt.date | None = None) -> PostedVoucher | None:
        """The import of `external_ref` (any date: the reference is unique), or None."""
        items = self._items(external_ref)
        if not items:
            self._absent[external_ref] = time.monotonic()
            return None
        self._absent.pop(external_ref, None)
        missing = _missing_lines(items)
        if missing:
            raise LedgerTransient(
                SYSTEM,
                f"{external_ref} is imported only in part ({len(missing)} line(s) missing); "
                "post() the voucher again to complete it",
            )
        return self._posted(external_ref, items)

    def get(self, ledger_id: str) -> PostedVoucher:
        """Read an import back by the dbId of one of its items."""
        raw = str(ledger_id).strip()
        if not raw.isdigit():
            raise LedgerValidationError(SYSTEM, f"not an Xledger dbId: {ledger_id!r}")
        nodes = self._all_pages(Q_ITEM_BY_ID, "glImportItems", {"dbId": int(raw)})
        if not nodes:
            raise LedgerValidationError(SYSTEM, f"no GL import item with dbId {raw}")
        ext = str(nodes[0].get("extIdentifier") or "")
        base = _split(ext)[0]
        if not base:
            raise LedgerValidationError(SYSTEM, f"GL import item {raw} has no extIdentifier")
        found = self.find(base)
        assert found is not None
        return found

    def post(self, voucher: Voucher, send_to_ledger: bool = True) -> PostedVoucher:
        """Import the voucher (at most 500 lines a call), after looking its reference up.

        An existing complete import equal to the voucher is returned without importing again; a
        different one raises LedgerValidationError; a split import cut short gets its missing lines.
        Any refusal clears the lookup cache, so the retry reads a chart that may have changed.
        """
        try:
            return self._post(voucher)
        except LedgerValidationError:
            self.cache.clear()
            raise

    def _post(self, voucher: Voucher) -> PostedVoucher:
        nodes = self.render(voucher)
        seen_absent = self._absent.pop(voucher.external_ref, None)
        if seen_absent is not None and time.monotonic() - seen_absent <= ABSENT_TRUST_SECONDS:
            existing: list[dict[str, Any]] = []  # the caller's find() just asked: no second look-up
        else:
            existing = self._items(voucher.external_ref)
        if existing:
            missing = _missing_lines(existing)
            if not missing:
                posted = self._posted(voucher.external_ref, existing)
                if sorted(posted.postings) != sorted(_expected(voucher)):
                    raise LedgerValidationError(
                        SYSTEM,
                        f"{voucher.external_ref} is already imported (dbId {posted.ledger_id}) with other postings; "
                        "resolve it in Xledger or post a new version",
                    )
                log.info("Xledger: %s already imported, not importing again", voucher.external_ref)
                return posted
            by_line = {_split(n["extIdentifier"])[1]: n for n in nodes}
            totals = {_split(str(i.get("extIdentifier") or ""))[2] for i in existing}
            matches = all(
                (by_line.get(_split(str(i.get("extIdentifier")))[1]) or {}).get("account", {}).get("code")
                == (i.get("account") or {}).get("code")
                and ore(by_line[_split(str(i.get("extIdentifier")))[1]]["amount"]) == ore(i.get("amount"))
                for i in existing
            )
            if len(nodes) <= MAX_ITEMS_PER_CALL or totals != {len(nodes)} or not matches:
                raise LedgerValidationError(
                    SYSTEM, f"{voucher.external_ref} is imported in part and does not match this voucher"
                )
            nodes = [n for n in nodes if _split(n["extIdentifier"])[1] in missing]
        db_ids = [int(i["dbId"]) for i in existing if str(i.get("dbId") or "").isdigit()]
        db_ids += self._import(nodes, "look it up with find() first")
        if not self.read_back_after_post and len(db_ids) == len(existing) + len(nodes):
            return PostedVoucher(
                ledger_id=str(min(db_ids)),
                number=voucher.business_day.strftime("%Y%m%d"),
                external_ref=voucher.external_ref,
                date=voucher.business_day,
                postings=tuple(_expected(voucher)),
                in_ledger=True,
            )
        try:
            found = self.find(voucher.external_ref)
        except LedgerTransient as exc:
            raise LedgerTransient(
                SYSTEM,
                f"imported, but reading it back failed ({str(exc).removeprefix(SYSTEM + ': ')}); "
                "look it up with find()",
            ) from None
        if found is None:
            raise LedgerTransient(SYSTEM, f"imported {voucher.external_ref}, but find() does not see it yet")
        return found

    def _import(self, nodes: list[dict[str, Any]], then: str) -> list[int]:
        """`addGLImportItems` in calls of at most 500 nodes, never retried; the dbIds answered.

        A transient error says how many calls were done and what to do `then` (the outcome of the
        failed call is unknown).
        """
        chunks = [nodes[i : i + MAX_ITEMS_PER_CALL] for i in range(0, len(nodes), MAX_ITEMS_PER_CALL)]
        db_ids: list[int] = []
        for number, chunk in enumerate(chunks, start=1):
            try:
                data = self.graphql(M_ADD_ITEMS, {"inputs": [{"node": node} for node in chunk]})
            except LedgerTransient as exc:
                done = f"{number - 1} of {len(chunks)} calls done; " if len(chunks) > 1 else ""
                raise LedgerTransient(SYSTEM, f"{str(exc).removeprefix(SYSTEM + ': ')} ({done}{then})") from None
            edges = (data.get("addGLImportItems") or {}).get("edges") or []
            nodes_back = [e.get("node") or {} for e in edges if isinstance(e, dict)]
            db_ids += [int(n["dbId"]) for n in nodes_back if str(n.get("dbId")).isdigit()]
        return db_ids

    def list_vouchers(
        self, date_from: dt.date, date_to: dt.date, *, include_non_posted: bool = False
    ) -> list[PostedVoucher]:
        """The import items posted date_from <= postedDate < date_to, as vouchers, all pages.

        Items are grouped by extIdentifier (the split suffix `#n/N` removed) and, for items without
        one (imported by others), by trRegNumber and postedDate, which the lines of a voucher share
        (apis.md). A split import cut short is listed as it stands (a warning is logged): the list
        says what Xledger holds. `include_non_posted` changes nothing: every import is staged and
        approved in Xledger's own workflow, and the API shows no approval state (apis.md), so the
        list has every import whatever its state, each with in_ledger=True as `find` has it.
        """
        if date_to <= date_from:
            return []
        # The dates go in as string literals: the filter's scalar type is not documented (XL-SAMPLES
        # declares DateTimeString for modifiedAt_gte), and a literal is coerced to it either way.
        query = _items_query(
            f"postedDate_gte: {json.dumps(date_from.isoformat())}, postedDate_lt: {json.dumps(date_to.isoformat())}"
        )
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for item in self._all_pages(query, "glImportItems", {}):
            ext = _split(str(item.get("extIdentifier") or ""))[0]
            posted = str(item.get("postedDate") or "")[:10]
            key = ("ref", ext, posted) if ext else ("reg", str(item.get("trRegNumber") or ""), posted)
            groups.setdefault(key, []).append(item)
        vouchers = []
        for (kind, ext, _), items in groups.items():
            ref = ext if kind == "ref" else ""
            missing = _missing_lines(items) if ref else set()
            if missing:
                log.warning("Xledger: %s is imported only in part (%d line(s) missing)", ref, len(missing))
            vouchers.append(self._posted(ref, items))
        return sorted(vouchers, key=lambda v: (v.date, int(v.ledger_id)))

    def reverse(self, ledger_id: str, date: dt.date) -> PostedVoucher:
        """Import a counter voucher dated `date`: every item of the original negated (never retried).

        Xledger has no reversal the API documents, so the counter voucher is an import with
        extIdentifier `<original ref>:reversal`, the original's items one by one with amount
        negated and account, tax rule code, text ("Reversering: ..."), department object and
        project kept. It is looked up first (in the same query that reads the original): a complete
        one is returned as it is, a split one cut short is completed, so calling `reverse` again
        after a lost answer never reverses twice. A voucher without an extIdentifier (imported by
        others) cannot be looked up that way and is refused.
        """
        raw = str(ledger_id).strip()
        if not raw.isdigit():
            raise LedgerValidationError(SYSTEM, f"not an Xledger dbId: {ledger_id!r}")
        found = self._all_pages(Q_ITEM_BY_ID, "glImportItems", {"dbId": int(raw)})
        if not found:
            raise LedgerValidationError(SYSTEM, f"no GL import item with dbId {raw}")
        ref = _split(str(found[0].get("extIdentifier") or ""))[0]
        if not ref:
            raise LedgerValidationError(
                SYSTEM, f"GL import item {raw} has no extIdentifier: its voucher cannot be reversed exactly once"
            )
        reversal_ref = f"{ref}:reversal"
        fields = f"{_ITEM_FIELDS} {self.department_object} {{ code }} project {{ code }}"
        query = _items_query("extIdentifier_startsWith: $ref", ", $ref: String", fields)
        items = self._all_pages(query, "glImportItems", {"ref": ref})  # the reversal's ref starts with it
        original = [i for i in items if _split(str(i.get("extIdentifier") or ""))[0] == ref]
        existing = [i for i in items if _split(str(i.get("extIdentifier") or ""))[0] == reversal_ref]
        if _missing_lines(original):
            raise LedgerTransient(SYSTEM, f"{ref} is imported only in part; complete it before reversing it")
        nodes = self._reversal_nodes(original, reversal_ref, date)
        if existing:
            missing = _missing_lines(existing)
            if not missing:
                reversal = self._posted(reversal_ref, existing)
                if reversal.date != date:
                    log.warning("Xledger: %s was reversed on %s already, not on %s", ref, reversal.date, date)
                log.info("Xledger: %s already reversed (dbId %s), not importing again", ref, reversal.ledger_id)
                return reversal
            totals = {_split(str(i.get("extIdentifier") or ""))[2] for i in existing}
            by_line = {_split(n["extIdentifier"])[1]: n for n in nodes}
            matches = all(
                (sent := by_line.get(_split(str(i.get("extIdentifier")))[1])) is not None
                and sent["account"]["code"] == (i.get("account") or {}).get("code")
                and ore(sent["amount"]) == ore(i.get("amount"))
                for i in existing
            )
            if totals != {len(nodes)} or len(nodes) <= MAX_ITEMS_PER_CALL or not matches:
                raise LedgerValidationError(
                    SYSTEM, f"{reversal_ref} is imported in part and does not match {ref}; resolve it in Xledger"
                )
            nodes = [n for n in nodes if _split(n["extIdentifier"])[1] in missing]
        db_ids = self._import(nodes, "call reverse() again: it looks the reversal up first")
        if not self.read_back_after_post and len(db_ids) == len(nodes):
            sent = [{**node, "dbId": db_id} for node, db_id in zip(nodes, db_ids, strict=True)]
            return self._posted(reversal_ref, existing + sent)
        try:
            reversal = self.find(reversal_ref)
        except LedgerTransient as exc:
            raise LedgerTransient(
                SYSTEM,
                f"reversal imported, but reading it back failed ({str(exc).removeprefix(SYSTEM + ': ')}); "
                "call reverse() again to get it",
            ) from None
        if reversal is None:
            raise LedgerTransient(SYSTEM, f"imported {reversal_ref}, but find() does not see it yet")
        return reversal

    def _reversal_nodes(self, original: list[dict[str, Any]], reversal_ref: str, date: dt.date) -> list[dict[str, Any]]:
        """The original's items negated, dated `date`, in the original's line order."""
        items = sorted(original, key=lambda n: (_split(str(n.get("extIdentifier")))[1] or 0, int(n.get("dbId") or 0)))
        split = len(items) > MAX_ITEMS_PER_CALL
        nodes = []
        for number, item in enumerate(items, start=1):
            account = (item.get("account") or {}).get("code")
            if account is None or item.get("amount") is None:
                raise LedgerTransient(SYSTEM, f"GL import item {item.get('dbId')}: incomplete")
            text = " ".join(f"Reversering: {item.get('text') or ''}".split())
            node: dict[str, Any] = {
                "trRegNumber": int(date.strftime("%Y%m%d")),
                "postedDate": date.isoformat(),
                "transactionSource": {"code": "GL"},
                "account": {"code": str(account)},
                "amount": kroner(-ore(item["amount"])),
                "text": text[:TEXT_MAX],
                "extIdentifier": f"{reversal_ref}#{number}/{len(items)}" if split else reversal_ref,
            }
            for name in ("taxRule", self.department_object, "project"):
                code = (item.get(name) or {}).get("code")
                if code not in (None, ""):
                    node[name] = {"code": str(code)}
            nodes.append(node)
        return nodes

    # ---- read-back -------------------------------------------------------------------------

    def postings(
        self, date_from: dt.date, date_to: dt.date, *, accounts: tuple[int, int] | None = None
    ) -> list[LedgerPosting]:
        """Every GL transaction dated date_from <= postedDate < date_to (`transactions`, all
        pages), ours and others', Xledger's VAT transactions included, optionally for an account
        number range (applied here: no account filter of `transactions` is documented)."""
        if date_to <= date_from:
            return []
        return self._transactions(date_from, date_to, accounts)

    def balances(
        self, date_from: dt.date, date_to: dt.date, *, accounts: tuple[int, int] | None = None
    ) -> list[AccountBalance]:
        """Each account's opening, movement and closing for date_from <= date < date_to, summed
        from the GL transactions (one `transactions` query without a lower bound, all pages).

        DOCUMENTED: Xledger's `accountBalances` (GRASP-XL) gives an amount per account and
        accounting period, not per day, so it cannot answer a range of days; the balances are
        computed from the transactions instead. The opening of a result account (3000-8999) is the
        sum of its transactions in the calendar year of date_from before date_from (INFERRED: the
        fiscal year is the calendar year and result accounts start it at zero); of any other
        account, of all its transactions before date_from. Accounts with neither an opening nor a
        movement are left out.
        """
        if date_to <= date_from:
            return []
        names = {str(n.get("code")): str(n.get("description") or "") for n in self._chart()}
        return balances_from_postings(self._transactions(None, date_to, accounts), date_from, names)

    def accounts(self) -> list[LedgerAccount]:
        """The chart: `accounts(ownerSet: LOWER)`, all pages (the account lookup's query).

        DOCUMENTED: the account fields known (OMNI-XL `types.go`, GRASP-XL) carry no tax rule and no
        inactive flag, so every account is reported active, without a VAT code or lock.
        """
        return [
            LedgerAccount(number=str(n.get("code")), name=str(n.get("description") or ""))
            for n in self._chart()
            if n.get("code") not in (None, "")
        ]

    def vat_codes(self) -> list[LedgerVatCode]:
        """The company's tax rules (`objectValues` of the kind TAX_RULE) that `tax_rules` maps to a
        standard code, as that code; the rule's description is its name.

        DOCUMENTED: a tax rule carries code and description, no rate, so the rate is the standard
        code's (kassebro's SAF-T list). Rules no standard code maps to are left out: their standard
        code is unknown.
        """
        self.tax_rule_codes(refresh=True)
        rules = self._tax_rule_nodes
        to_standard = {code: std for std, code in self.tax_rules.items()}
        standards = standard_vat_codes()
        found = []
        for rule in rules:
            code = str(rule.get("code") or "")
            std = to_standard.get(code)
            if std is None:
                continue
            known = standards.get(std)
            rate_bp = known.rate_bp if known and known.rate_bp is not None else 0
            found.append(LedgerVatCode(std, code, str(rule.get("description") or ""), Decimal(rate_bp) / 100))
        return found

    def _transactions(
        self, date_from: dt.date | None, date_to: dt.date, accounts: tuple[int, int] | None
    ) -> list[LedgerPosting]:
        nodes = self._all_pages(_transactions_query(date_from, date_to), "transactions", {})
        codes = self._codes_by_db_id("accounts", {str(n.get("accountDbId")) for n in nodes})
        rules = self._codes_by_db_id(
            "tax_rules", {str((n.get("taxRule") or {}).get("dbId")) for n in nodes if n.get("taxRule")}
        )
        found = []
        for node in nodes:
            account = codes[str(node.get("accountDbId"))]
            if accounts and not (account.isdigit() and accounts[0] <= int(account) <= accounts[1]):
                continue
            header = node.get("header") or {}
            if node.get("amount") is None or not header.get("postedDate"):
                raise LedgerTransient(SYSTEM, f"GL transaction {node.get('dbId')}: incomplete")
            amount = ore(node["amount"])
            rule = node.get("taxRule")
            found.append(
                LedgerPosting(
                    voucher_id=str(header.get("dbId") or ""),
                    voucher_number=str(header.get("transactionNumber") or ""),
                    date=dt.date.fromisoformat(str(header["postedDate"])[:10]),
                    account=account,
                    amount=amount,
                    gross=amount + ore(node.get("taxAmount") or 0),
                    vat_code=self._standard_vat(rules[str(rule.get("dbId"))]) if rule else None,
                    description=str(node.get("text") or header.get("text") or ""),
                    external_ref=_split(str(node.get("extIdentifier") or ""))[0],
                )
            )
        return found

    def _codes_by_db_id(self, table: str, wanted: set[str]) -> dict[str, str]:
        """dbId -> code for the accounts or tax rules a read names, from the lookup cache (read
        again once when one is missing); a dbId Xledger does not list raises."""
        if not wanted:
            return {}
        load = self.account_codes if table == "accounts" else self.tax_rule_codes
        load()
        codes = {str(db_id): code for code, db_id in self.cache.table(table).items()}
        if wanted - set(codes) and table not in self._fetched:
            load(refresh=True)
            codes = {str(db_id): code for code, db_id in self.cache.table(table).items()}
        unknown = sorted(wanted - set(codes))
        if unknown:
            what = "accounts" if table == "accounts" else "tax rules"
            raise LedgerValidationError(
                SYSTEM, f"transactions name {what} Xledger does not list: dbId {', '.join(unknown)}"
            )
        return codes

    def _standard_vat(self, rule: Any) -> str | None:
        """The standard VAT code of a tax rule code, through `tax_rules` (the mapping `render`
        posts with); an unmapped rule is reported by its own code, None or "0" as no VAT."""
        if rule in (None, "", "0"):
            return None
        to_standard = {code: std for std, code in self.tax_rules.items()}
        return to_standard.get(str(rule), str(rule))

    # ---- more than the protocol --------------------------------------------------------------

    def account_codes(self, *, refresh: bool = False) -> set[str]:
        """All account codes of the entity (cached; `refresh` reads them again)."""
        codes = self.cache.table("accounts")
        if refresh or not codes:
            codes = {str(n.get("code")): n.get("dbId") for n in self._chart()}
        return set(codes)

    def _chart(self) -> list[dict[str, Any]]:
        """Every account node (`accounts`, all pages); the codes and dbIds go in the lookup cache."""
        nodes = self._all_pages(Q_ACCOUNTS, "accounts", {})
        self.cache.put("accounts", {str(n.get("code")): n.get("dbId") for n in nodes})
        self._fetched.add("accounts")
        return nodes

    def tax_rule_codes(self, *, refresh: bool = False) -> set[str]:
        """The entity's tax rule codes: objectValues of the kind TAX_RULE (cached; `refresh` reads them again)."""
        codes = self.cache.table("tax_rules")
        if refresh or not codes:
            kind = self.cache.get("object_kinds", TAX_RULE_KIND)
            if kind is None:
                kinds = self._all_pages(Q_OBJECT_KINDS, "objectKinds", {})
                self.cache.put("object_kinds", {str(k["name"]): k.get("dbId") for k in kinds if k.get("name")})
                kind = next((k.get("dbId") for k in kinds if k.get("name") == TAX_RULE_KIND), None)
            if kind is None:
                raise LedgerValidationError(SYSTEM, f"no object kind named {TAX_RULE_KIND}: cannot read tax rules")
            values = self._all_pages(Q_OBJECT_VALUES, "objectValues", {"kind": kind})
            self._tax_rule_nodes = values
            codes = {str(v.get("code")): v.get("dbId") for v in values}
            self.cache.put("tax_rules", codes)
            self._fetched.add("tax_rules")
        return set(codes)

    def render(self, voucher: Voucher, *, check: bool = True) -> list[dict[str, Any]]:
        """The `addGLImportItems` nodes of a voucher, one per line (see the module docstring)."""
        ref = voucher.external_ref
        if not ref or "#" in ref:
            raise LedgerValidationError(SYSTEM, f"external reference {ref!r} cannot be an extIdentifier")
        if not voucher.lines:
            raise LedgerValidationError(SYSTEM, f"voucher {ref} has no lines")
        problems = []
        for line in voucher.lines:
            if line.vat_code not in (None, "0") and line.vat_code not in self.tax_rules:
                problems.append(f"VAT code {line.vat_code!r} on account {line.account} has no Xledger tax rule mapped")
        if check and not problems:
            accounts = {line.account for line in voucher.lines}
            missing = accounts - self.account_codes()
            if missing and "accounts" not in self._fetched:  # the cached chart may predate a new account
                missing = accounts - self.account_codes(refresh=True)
            if missing:
                problems.append(f"accounts not in the Xledger chart: {', '.join(sorted(missing))}")
            rules = {self.tax_rules[v] for v in (line.vat_code for line in voucher.lines) if v not in (None, "0")}
            unknown = rules - self.tax_rule_codes()
            if unknown and "tax_rules" not in self._fetched:
                unknown = rules - self.tax_rule_codes(refresh=True)
            if unknown:
                problems.append(f"tax rules not configured in the Xledger company: {', '.join(sorted(unknown))}")
        if problems:
            raise LedgerValidationError(SYSTEM, "; ".join(dict.fromkeys(problems)))
        split = len(voucher.lines) > MAX_ITEMS_PER_CALL
        day = voucher.business_day
        nodes = []
        for number, line in enumerate(voucher.lines, start=1):
            text = " ".join((line.description or voucher.description).split()) or "Dagsoppgjør"
            node: dict[str, Any] = {
                "trRegNumber": int(day.strftime("%Y%m%d")),
                "postedDate": day.isoformat(),
                "transactionSource": {"code": "GL"},
                "account": {"code": line.account},
                "amount": kroner(line.amount),
                "text": text[:TEXT_MAX],
                "extIdentifier": f"{ref}#{number}/{len(voucher.lines)}" if split else ref,
            }
            if line.vat_code not in (None, "0"):
                node["taxRule"] = {"code": self.tax_rules[line.vat_code]}
            if line.department:
                node[self.department_object] = {"code": line.department}
            if line.project:
                node["project"] = {"code": line.project}
            nodes.append(node)
        return nodes

    def graphql(self, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """One GraphQL call: its `data`, or the mapped error. Queries retry, mutations never."""
        with self._lock:
            return self._graphql_locked(query, dict(variables or {}))

    # ---- HTTP --------------------------------------------------------------------------------

    def _redact(self, text: str) -> str:
        return self._http.redact(text)

    def _graphql_locked(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        match = _OPERATION.match(query)
        op, field = (match.group(1), match.group(2)) if match else ("query", "?")
        key = f"{op} {field}"
        body = json.dumps({"query": query, "variables": variables}, ensure_ascii=False).encode("utf-8")
        headers = {
            "Accept": "application/json",
            "Content-Type": "application/json",
            "Authorization": "token " + self._token,
        }
        response = self._http.send(
            "POST",
            self.url,
            key,
            headers=headers,
            data=body,
            idempotent=op == "query",  # mutations are never sent twice
            judge=lambda response: self._judge(key, response),
        )
        return json_or_none(response)["data"]

    def _judge(self, key: str, response: requests.Response) -> LedgerError | None:
        """Xledger's error kinds, from the HTTP status and the GraphQL `errors` of a 200: credits
        and burst limits are rate limits, token errors auth, timeouts transient, the rest refused."""
        payload = json_or_none(response)
        errors = payload.get("errors") if isinstance(payload, dict) else None
        status = response.status_code
        messages = [self._redact(str(e.get("message") or "")) for e in errors or [] if isinstance(e, dict)]
        codes = {str((e.get("extensions") or {}).get("code") or "") for e in errors or [] if isinstance(e, dict)}
        text = "; ".join(m for m in messages if m) or f"HTTP {status}"
        if status == 429 or codes & RATE_CODES:
            wait = _retry_after(response, credits="BAD_REQUEST.INSUFFICIENT_CREDITS" in codes)
            return LedgerRateLimited(SYSTEM, f"{key}: {text}; retry in {wait:g} s", retry_after=wait)
        if status in (401, 403) or codes & AUTH_CODES or "api token" in text.lower():
            return LedgerAuthError(
                SYSTEM,
                f"{key}: the Xledger API token was rejected ({text}); check the token and its scopes "
                "(Administration -> Access Control -> GraphQL -> API tokens)",
            )
        if status >= 500 or "timed out" in text.lower():
            return LedgerTransient(SYSTEM, f"{key}: {text}")
        if errors:
            return LedgerValidationError(SYSTEM, f"{key}: {text}")
        if not 200 <= status < 300 or not isinstance(payload, dict) or not isinstance(payload.get("data"), dict):
            return LedgerValidationError(SYSTEM, f"{key}: unexpected answer (HTTP {status})")
        return None

    def _all_pages(self, query: str, field: str, variables: Mapping[str, Any]) -> list[dict[str, Any]]:
        nodes: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            data = self.graphql(query, {**variables, "first": self.page_size, "after": after})
            conn = data.get(field) or {}
            edges = conn.get("edges") or []
            nodes.extend(e["node"] for e in edges if isinstance(e, dict) and isinstance(e.get("node"), dict))
            if not (conn.get("pageInfo") or {}).get("hasNextPage") or not edges:
                return nodes
            after = edges[-1].get("cursor")

    def _items(self, external_ref: str) -> list[dict[str, Any]]:
        """The import items whose extIdentifier is the reference or a split line of it."""
        nodes = self._all_pages(Q_ITEMS_BY_REF, "glImportItems", {"ref": external_ref})
        return [n for n in nodes if _split(str(n.get("extIdentifier") or ""))[0] == external_ref]

    # ---- parsing -----------------------------------------------------------------------------

    def _posted(self, external_ref: str, items: list[dict[str, Any]]) -> PostedVoucher:
        totals: dict[tuple[str, str | None], int] = {}
        items = sorted(items, key=lambda n: (_split(str(n.get("extIdentifier")))[1] or 0, int(n.get("dbId") or 0)))
        for item in items:
            account = (item.get("account") or {}).get("code")
            if account is None or item.get("amount") is None:
                raise LedgerTransient(SYSTEM, f"GL import item {item.get('dbId')}: incomplete")
            vat = self._standard_vat((item.get("taxRule") or {}).get("code"))
            key = (str(account), vat)
            totals[key] = totals.get(key, 0) + ore(item["amount"])
        return PostedVoucher(
            ledger_id=str(min(int(i["dbId"]) for i in items)),
            number=str(items[0].get("trRegNumber") or ""),
            external_ref=external_ref,
            date=dt.date.fromisoformat(str(items[0].get("postedDate"))[:10]),
            postings=tuple((account, amount, vat) for (account, vat), amount in totals.items() if amount != 0),
            in_ledger=True,
        )


def kroner(amount: int) -> str:
    """Signed øre -> Xledger's amount string: 125000 -> "1250.00", -5 -> "-0.05"."""
    sign = "-" if amount < 0 else ""
    return f"{sign}{abs(amount) // 100}.{abs(amount) % 100:02d}"


def ore(amount: Any) -> int:
    """Xledger's amount (string or number, kroner) -> signed øre; refuses fractions of an øre."""
    try:
        value = Decimal(str(amount)) * 100
    except InvalidOperation:
        raise LedgerTransient(SYSTEM, f"unexpected amount {amount!r}") from None
    if value != value.to_integral_value():
        raise LedgerTransient(SYSTEM, f"amount {amount!r} has fractions of an øre")
    return int(value)


def _expected(voucher: Voucher) -> list[tuple[str, int, str | None]]:
    totals: dict[tuple[str, str | None], int] = {}
    for line in voucher.lines:
        key = (line.account, None if line.vat_code in (None, "0") else line.vat_code)
        totals[key] = totals.get(key, 0) + line.amount
    return [(account, amount, vat) for (account, vat), amount in totals.items() if amount != 0]


def _split(ext: str) -> tuple[str, int | None, int | None]:
    match = SPLIT_SUFFIX.match(ext)
    if match:
        return match.group("base"), int(match.group("line")), int(match.group("lines"))
    return ext, None, None


def _missing_lines(items: list[dict[str, Any]]) -> set[int]:
    """The line numbers a split import lacks (empty for an unsplit or complete one)."""
    parts = [_split(str(i.get("extIdentifier") or "")) for i in items]
    totals = {lines for _, _, lines in parts if lines}
    if not totals:
        return set()
    return set(range(1, max(totals) + 1)) - {line for _, line, _ in parts if line}


def _retry_after(response: requests.Response, *, credits: bool = False) -> float:
    return retry_after(response, CREDITS_RETRY_AFTER if credits else DEFAULT_RETRY_AFTER)
