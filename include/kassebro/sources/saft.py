"""Read SAF-T Cash Register files (Skatteetaten's XML standard) into a canonical `SalesDay`.

Every Norwegian POS must export this format, so it is kassebro's main source. The reader streams
(`lxml.etree.iterparse` on `cashtransaction` and `event`, clearing each element after use), so a
day of 200,000 lines never sits in memory as a tree. The parser never resolves entities, loads a
DTD or touches the network (no XXE); a file that declares entities is refused rather than read
with holes. It validates against the XSD shipped in `kassebro/data/saft/` while it streams, and
checks that it saw `</auditfile>` (lxml's iterparse with a schema ends silently on a truncated
file). Only the transactions that can belong to the asked day are read in detail.

**Memory is bounded by the asked day, not by the file** (a period export of 60 days and many
registers reads like one day): a transaction is dropped as soon as it cannot be the asked day's:
after it (provisional day later than the day), claimed by an earlier day's Z report (also when
that Z report comes later in the stream: it then prunes what was kept), or more than one day
before the asked day. For the last case only the first and last instant per register is noted;
if at the end the day's Z reports claim that span (a register that ran days without a Z report),
the files are read once more keeping them, with a warning. Z reports of other days keep their
time and business day only; listing days keeps one instant per register and day.

How SAF-T is read (choices the standard leaves open; see also `kassebro.core.frames` for the signs):

- **Business day.** A transaction belongs to the first Z report on the same register at or after
  its time; that Z report's business day is the local date of (Z time - `day_start_hour`). Without
  a later Z report: the local date of (transaction time - `day_start_hour`). Times are local wall
  clock in `tz` (xsd:time may carry an offset, which then wins); the hour is subtracted on the
  wall clock, so a 05:00 day start stays 05:00 across DST. A wall time that occurs twice (the
  last Sunday of October, 02:00-03:00) is read as its first occurrence (fold=0).
- **Signs.** `amntTp` D makes an amount negative whether the file writes it unsigned or already
  negative (Skatteetaten's 2021 example writes a return as `-16.40` with D), so gross, net, VAT
  and `transAmntIn` are `-abs(x)` for D and as written for C. Payments and rounding have no
  D/C flag and are read as written: a refund is a negative `paidAmnt`, and `roundingAmnt` is
  payments minus lines (the 2021 example: lines 295.40, cash 295.00, rounding -0.40).
- **Returns.** A line with `amntTp` D is `line_type` "return" (any transaction type, including
  11006 return transactions and 11013/11016 exchanges); other lines are "sale".
- **Tips.** SAF-T has no tip line type: a tip is a `raise` whose `raiseType` is a basic of type
  10 with predefined code 10001 (or the code 10001 itself), and the Z report sums tips in
  `reportTip`. A ctLine whose `lineType` or one of whose raises resolves to 10001 is a "tip" line
  (not revenue, no VAT). If the tip raises are smaller than the line amount, the line is a sale
  with a tip on top and is split into the sale (gross minus tip) and a tip line with line id
  `<lineID>-tip`. A transaction-level tip raise, when no line of the transaction carries one,
  becomes a synthetic tip line `tip-<n>` (the tip is inside the payments, so the receipt balances).
- **Z reports.** Only `reportType` "Z report" (X reports are not day totals). Skatteetaten's
  2016 example writes `reportCashSaleVat/cashSaleAmnt` gross, its 2021 example net of VAT; both
  write `totalCashSaleAmnt` gross. Each Z report is read as it is written, decided from its own
  figures by `decide_amounts`: the reading whose amounts sum to `totalCashSaleAmnt` (gross:
  cashSaleAmnt; net: cashSaleAmnt + vatAmnt); when the total decides nothing, the reading the
  VAT amounts fit (net: VAT = amount x rate; gross: VAT = what the amount holds); when neither
  does, "unknown", and validation holds the day back. `z_report_amounts="gross"|"net"` pins it
  for a POS whose reports cannot tell. The decision and its reason are in `z_reports`.
- **Grand totals** (`reportGrandTotalSales`, `...Return`, `...SalesNet`) are the register's
  running totals since it was put into service (the cash register regulations' grand total), not
  the day's, and are not read. `reportReturnAmnt` and `reportTip/tipAmnt` are the day's.
- **Discounts.** A line's `discount/dscAmnt` (summed if repeated) is `lines.discount`, signed like
  the line; `lineAmntIn` is read as the amount after it (the discount is information, never taken
  off again). A transaction-level `discount/dscAmnt` is a bill discount: `receipts.bill_discount`,
  positive when given (negative on a D transaction), and NOT in the lines' gross. The XSD does not
  document the amounts and the official examples hold no discount, so kassebro reads the
  transaction's own figures: `transAmntIn` is the amount after the bill discount and the lines
  are before it (transAmntIn = lines - discount), as the demo POS writes it. A POS that already
  spread the discount over its lines writes transAmntIn = lines; then bill_discount is 0, since
  nothing is left to take off. Either way a receipt balances as lines - bill_discount + rounding
  = payments. The Z report's per-VAT-code sales are after the discount (see validation's
  z_vat_totals for the split); its article-group totals are the lines'.
- **Project, cost centre, customer.** `ctLine/projID` -> `lines.project`, `ctLine/costID` ->
  `lines.cost_centre`, `cashtransaction/custSupID` -> `receipts.customer_id` ("" when absent).
- **Credit sales** (transType -> 11002) are receipts like any other, with `customer_id` set.
  They balance by a payment of the customer-account type (12006 "Kundekonto", which the mapping
  sends to the receivable); a credit sale without payments does not balance and fails validation.
- **Cash difference** (transType -> 11008, the count at closing): kept as a receipt with
  trans_code "11008", its `transAmntIn` as `amount` (D = short, negative) and its payments (the
  difference per payment type, e.g. CASH -50.00), but no lines: any ctLine it carries is ignored.
  It balances as amount = payments; the voucher books it against the cash difference account.
- **Z article groups**: `reportArtGroups/reportArtGroup` -> `z_art_groups` (artGroupID, artGroupAmnt).
- **Currency.** A payment in another currency with `exchRt` is converted to NOK øre (half up);
  without a rate it keeps the foreign amount and an empty `exchange_rate`, so validation flags it.
- **Codes.** `art_group_code`, `trans_code`, `payment_code` and `std_vat_code` come from the
  file's own master data (basics, vatCodeDetails); an id that already is a predefined code
  (e.g. paymentType "12001") maps to itself; otherwise "".
- **Voids and training** transactions are left out of lines, receipts and payments; their
  register, transID, nr and reason ("void" / "training") go to the `skipped` frame, so the
  number series check counts them as present.
- **Number series.** Every transaction's `nr` in the files read (of any day) is noted per
  register as runs of consecutive numbers and numbers seen twice (`numbers`), so a receipt
  missing at the edge of the day, or a number used twice, shows although the day alone looks
  complete. Memory grows with the gaps, not the transactions.
- **Master data and header.** The VAT codes (with their standard code) and basics each file
  declares go to `codes`; each file's `company/companyIdent` and `header/curCode` to `headers`.
- **Hostile input** is refused before parsing (`kassebro.sources.xml_safety`): bytes that are
  not UTF-8, another declared encoding, a DOCTYPE naming an external DTD or declaring entities.
  An amount whose øre do not fit comfortably in 64 bits (above `MAX_AMOUNT_ORE`) or a `nr` beyond
  63 bits is a bad value naming file, line and element; nothing ends in a traceback.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from sys import intern
from typing import Literal
from zoneinfo import ZoneInfo

from lxml import etree

from kassebro.core import saft_codes
from kassebro.core.errors import Issue, SourceError
from kassebro.core.frames import FRAME_COLUMNS, SalesDay, conform, empty_frame
from kassebro.core.gc_pause import paused
from kassebro.core.money import format_ore, parse_ore, vat_from_gross
from kassebro.sources.xml_safety import scan

__all__ = [
    "MAX_AMOUNT_ORE",
    "NAMESPACE",
    "decide_amounts",
    "list_business_days",
    "read_day",
    "schema",
    "validate_file",
]

MAX_AMOUNT_ORE = 10**12
"""The largest amount read (10,000,000,000.00): a million of them still sum inside 64 bits."""
_MAX_NR = 2**63 - 1
ZReportAmounts = Literal["auto", "gross", "net"]
Neighbours = Callable[[str, int, int], tuple[int | None, int | None]]

log = logging.getLogger(__name__)

NAMESPACE = "urn:StandardAuditFile-Taxation-CashRegister:NO"
_T = "{" + NAMESPACE + "}"
_TL = len(_T)

# Never resolve entities, load DTDs or fetch anything: SAF-T files come from outside.
_SAFE = {"resolve_entities": False, "no_network": True, "load_dtd": False, "huge_tree": False}

_CASHTRANSACTION = _T + "cashtransaction"
_EVENT = _T + "event"
_REGISTER_ID = _T + "registerID"
_CASHREGISTER = _T + "cashregister"
_VAT_CODE_DETAIL = _T + "vatCodeDetail"
_ARTICLE = _T + "article"
_BASIC = _T + "basic"
_CTLINE = _T + "ctLine"
_VAT = _T + "vat"
_RAISE = _T + "raise"
_PAYMENT = _T + "payment"
_ROUNDING = _T + "rounding"
_EVENT_REPORT = _T + "eventReport"
_AMNT_TP = _T + "amntTp"
_LINE_AMNT_IN = _T + "lineAmntIn"
_LINE_AMNT_EX = _T + "lineAmntEx"
_VAT_AMNT = _T + "vatAmnt"
_VAT_CODE = _T + "vatCode"
_VAT_PERC = _T + "vatPerc"
_ART_ID = _T + "artID"
_ART_GROUP_ID = _T + "artGroupID"
_LINE_DESCR = _T + "cashTransLineDescr"
_LINE_ID = _T + "lineID"
_LINE_TYPE = _T + "lineType"
_QNT = _T + "qnt"
_VOID = _T + "voidTransaction"
_TRAINING = _T + "trainingID"
_TRANS_DATE = _T + "transDate"
_TRANS_TIME = _T + "transTime"
_DISCOUNT = _T + "discount"
_DSC_AMNT = _T + "dscAmnt"
_COST_ID = _T + "costID"
_PROJ_ID = _T + "projID"
_CUST_SUP_ID = _T + "custSupID"
_AUDITFILE = _T + "auditfile"
_HEADER = _T + "header"
_COMPANY = _T + "company"
_COMPANY_IDENT = _T + "companyIdent"
_CUSTOMER_SUPPLIER = _T + "customerSupplier"
_STREET_ADDRESS = _T + "streetAddress"
_STREAM_TAGS = (
    _CUSTOMER_SUPPLIER,
    _AUDITFILE,
    _HEADER,
    _COMPANY_IDENT,
    _CASHTRANSACTION,
    _EVENT,
    _REGISTER_ID,
    _VAT_CODE_DETAIL,
    _ARTICLE,
    _BASIC,
)

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_ONE_DAY = dt.timedelta(days=1)

_US = dt.timedelta(microseconds=1)
# Row tuples are built in these column orders (the time stamp last, added when a day is
# assembled); conform() puts the columns in the frames' order.
_LATE_LINE_COLS = ("discount", "project", "cost_centre", "line_type_id", "timestamp")
_LINE_COLS = [
    *(c for c in FRAME_COLUMNS["lines"] if c not in _LATE_LINE_COLS),
    "discount",
    "project",
    "cost_centre",
    "line_type_id",
    "timestamp",
]
_RECEIPT_COLS = [*(c for c in FRAME_COLUMNS["receipts"] if c != "timestamp"), "timestamp"]
_PAYMENT_COLS = list(FRAME_COLUMNS["payments"])
_ZVAT_COLS = list(FRAME_COLUMNS["z_vat"])
_ZPAY_COLS = list(FRAME_COLUMNS["z_payments"])
_ZART_COLS = list(FRAME_COLUMNS["z_art_groups"])
_SKIPPED_COLS = list(FRAME_COLUMNS["skipped"])
_ZREPORT_COLS = list(FRAME_COLUMNS["z_reports"])
assert sorted(_LINE_COLS) == sorted(FRAME_COLUMNS["lines"])
assert sorted(_RECEIPT_COLS) == sorted(FRAME_COLUMNS["receipts"])


@functools.cache
def schema() -> etree.XMLSchema:
    """The SAF-T Cash Register XSD shipped with kassebro, parsed once."""
    with resources.as_file(saft_codes.schema_path()) as xsd:
        return etree.XMLSchema(etree.parse(str(xsd), etree.XMLParser(**_SAFE)))


def validate_file(path: Path | str) -> None:
    """Validate one file against the XSD; raise SourceError listing every error with its line.

    Loads the file as a tree (the only way libxml2 reports all errors), so use it to explain a
    failure or to check a file up front; `read_day` validates while streaming.
    """
    issues = _schema_issues(Path(path))
    if issues:
        raise SourceError(issues, headline=f"{path}: not a valid SAF-T Cash Register file")


def _schema_issues(path: Path) -> list[Issue]:
    if not path.is_file():
        return [Issue(str(path), "file_missing", "no such file")]
    unsafe = scan(path)
    if unsafe:
        return unsafe
    try:
        tree = etree.parse(str(path), etree.XMLParser(**_SAFE))
    except etree.XMLSyntaxError as exc:
        return [_syntax_issue(path, exc)]
    except OSError as exc:
        return [Issue(str(path), "file_unreadable", str(exc))]
    entities = _entity_issue(path, tree.docinfo)
    if entities is not None:
        return [entities]
    checker = schema()
    try:
        if checker.validate(tree):
            return []
    except etree.XMLSchemaValidateError as exc:
        return [Issue(str(path), "xsd", f"schema validation failed: {exc}")]
    return [
        Issue(f"{path}:{err.line}", "xsd", f"{_element_path(tree, err.path)}: {err.message.replace(_T, '')}")
        for err in checker.error_log
    ]


def _element_path(tree: etree._ElementTree, xpath: str | None) -> str:
    """'/*/*[2]/*[9]' (how libxml2 names elements of a default namespace) -> '/auditfile/company/...'."""
    try:
        found = tree.xpath(xpath) if xpath else []
    except etree.XPathError:
        found = []
    if not found or not isinstance(found[0], etree._Element):
        return _short_path(xpath)
    names = [etree.QName(e).localname for e in [*reversed(list(found[0].iterancestors())), found[0]]]
    return "/" + "/".join(names)


def _entity_issue(path: Path, docinfo: etree.DocInfo) -> Issue | None:
    """A DTD declaring entities (XXE, billion laughs) is refused: they are never expanded, so the
    text around them would silently go missing."""
    dtd = docinfo.internalDTD
    names = sorted(entity.name for entity in dtd.iterentities()) if dtd is not None else []
    if not names:
        return None
    return Issue(
        f"{path}:1",
        "xml_entities",
        f"the file declares XML entities {names}: refused (SAF-T has none; kassebro never expands them)",
    )


def _short_path(xpath: str | None) -> str:
    """'/n1:auditfile/n1:company/...' -> '/auditfile/company/...' (prefixes say nothing)."""
    if not xpath:
        return "?"
    return "/".join(part.split(":", 1)[-1] for part in xpath.split("/"))


def _syntax_issue(path: Path, exc: etree.XMLSyntaxError) -> Issue:
    line = exc.lineno or (exc.position[0] if exc.position else 0)
    return Issue(f"{path}:{line}", "xml_malformed", exc.msg or str(exc))


# ---------------------------------------------------------------------------------------------
# Parsed records


@dataclass
class _Master:
    """One file's master data: what the POS's own ids mean."""

    std_vat: dict[str, str] = field(default_factory=dict)  # vatCode -> standardVatCode
    art_group: dict[str, str] = field(default_factory=dict)  # artID -> artGroupID
    art_desc: dict[str, str] = field(default_factory=dict)  # artID -> artDesc
    basics: dict[str, dict[str, str]] = field(default_factory=dict)  # basicType -> basicID -> predefined
    any_basic: dict[str, str] = field(default_factory=dict)  # basicID -> predefined (any type)
    tip_ids: set[str] = field(default_factory=lambda: {saft_codes.TIP_CODE})  # ids meaning "tip"
    group_codes: dict[str, str] = field(default_factory=dict)  # memo of code("04", ...)
    company_ident: str = ""  # company/companyIdent
    currency: str = ""  # header/curCode

    def code(self, basic_type: str, ident: str, official: dict[str, str]) -> str:
        """Predefined code of a basic id, the id itself when it is an official code, else ""."""
        predefined = self.basics.get(basic_type, {}).get(ident)
        if predefined:
            return predefined
        return ident if ident in official else ""


class _Txn:
    __slots__ = (
        "path",
        "register_id",
        "trans_id",
        "instant",
        "fallback_day",
        "receipt",
        "lines",
        "payments",
        "skipped",
    )

    def __init__(self, path: str, register_id: str, trans_id: str, instant: int, fallback_day: dt.date) -> None:
        self.path = path
        self.register_id = register_id
        self.trans_id = trans_id
        self.instant = instant  # UTC epoch nanoseconds
        self.fallback_day = fallback_day
        self.receipt: tuple | None = None
        self.lines: list[tuple] = []
        self.payments: list[tuple] = []
        self.skipped: tuple | None = None  # (register_id, trans_id, nr, reason) of a void/training transaction


@dataclass
class _ZReport:
    path: str
    register_id: str
    report_id: str
    instant: int
    business_day: dt.date
    vat_rows: list[tuple]  # the rows are kept for the asked day's reports only: the rest is metadata
    payment_rows: list[tuple]
    art_group_rows: list[tuple]
    head: tuple | None = None  # the z_reports row (asked day only)


class _Series:
    """One register's transaction numbers: runs of consecutive numbers, and the numbers seen twice.

    Numbers mostly arrive in order, so this is one run per file; memory grows with gaps only.
    """

    __slots__ = ("dups", "ends", "starts")

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.dups: dict[int, int] = {}

    def add(self, nr: int) -> None:
        starts, ends = self.starts, self.ends
        if ends and ends[-1] + 1 == nr:  # the usual case: the next number
            ends[-1] = nr
            return
        i = bisect.bisect_right(starts, nr) - 1
        if i >= 0 and nr <= ends[i]:
            self.dups[nr] = self.dups.get(nr, 1) + 1
            return
        left = i >= 0 and ends[i] + 1 == nr
        right = i + 1 < len(starts) and starts[i + 1] - 1 == nr
        if left and right:
            ends[i] = ends[i + 1]
            del starts[i + 1], ends[i + 1]
        elif left:
            ends[i] = nr
        elif right:
            starts[i + 1] = nr
        else:
            starts.insert(i + 1, nr)
            ends.insert(i + 1, nr)

    def around(self, low: int, high: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """Runs overlapping [low, high] plus the nearest run on each side; duplicates inside that span."""
        first = max(bisect.bisect_right(self.starts, low) - 2, 0)
        last = min(bisect.bisect_right(self.starts, high) + 1, len(self.starts))
        runs = list(zip(self.starts[first:last], self.ends[first:last], strict=True))
        if not runs:
            return [], []
        span_low, span_high = runs[0][0], runs[-1][1]
        dups = sorted((nr, n) for nr, n in self.dups.items() if span_low <= nr <= span_high)
        return runs, dups


@dataclass
class _Pass:
    """State of one read over a set of files.

    Memory is bounded by the asked day, not by the file: a transaction is kept only while it can
    still belong to the asked day (see `_read_transaction`), Z reports of other days keep their
    time and business day only, and listing keeps one instant per register and day.
    """

    zone: ZoneInfo
    day_start: dt.timedelta
    day: dt.date | None  # None: list business days only (no line detail)
    z_amounts: str = "auto"  # how the asked day's Z reports' cashSaleAmnt is read (decide_amounts)
    wide: bool = False  # keep every transaction before the asked day (the rare second pass)
    issues: list[Issue] = field(default_factory=list)
    headers: list[tuple] = field(default_factory=list)  # (file, company_ident, currency)
    codes: set[tuple[str, str, str]] = field(default_factory=set)  # (kind, code, standard) declared
    customers: dict[str, tuple[str, ...]] = field(default_factory=dict)  # custSupID -> CUSTOMER_COLUMNS row
    numbers: dict[str, _Series] = field(default_factory=dict)  # register -> its number series
    txns: dict[str, list[_Txn]] = field(default_factory=dict)  # register -> candidate transactions
    # register -> [(instant, business day, sequence, report)], sorted by instant
    zreports: dict[str, list[tuple[int, dt.date, int, _ZReport]]] = field(default_factory=dict)
    # register -> [first, last] instant of transactions dropped for lying > 1 day before the asked day
    dropped: dict[str, list[int]] = field(default_factory=dict)
    # listing: register -> provisional business day -> latest instant
    seen: dict[str, dict[dt.date, int]] = field(default_factory=dict)
    # listing: register -> [first instant, last instant, lowest nr, highest nr] of its transactions
    spans: dict[str, list[int]] = field(default_factory=dict)


class _Bad(ValueError):
    """A value in the file that cannot be read; becomes an Issue."""

    rule = "bad_value"


class _OutOfRange(_Bad):
    """A number too large to be a real amount or transaction number (and to sum in 64 bits)."""

    rule = "number_out_of_range"


def _rule(exc: Exception) -> str:
    return getattr(exc, "rule", "bad_value")


# ---------------------------------------------------------------------------------------------
# Public API


def read_day(
    paths: Iterable[Path | str] | Path | str,
    vendor_id: str,
    business_day: dt.date,
    *,
    tz: str = "Europe/Oslo",
    day_start_hour: int = 0,
    validate_schema: bool = True,
    z_report_amounts: ZReportAmounts = "auto",
    neighbours: Neighbours | None = None,
) -> SalesDay:
    """Read one vendor's business day from SAF-T Cash Register files.

    `paths` are files or directories (every *.xml in a directory, sorted by name); all of them are
    read, because a Z report in one file can claim transactions in another. Raises SourceError
    listing every problem found (hostile or malformed XML, schema errors, unreadable values)
    with file:line. A day with no transactions and no Z report gives a SalesDay with empty frames.
    `z_report_amounts` pins how the Z reports' cashSaleAmnt is read ("auto": from each report's
    own figures, see `decide_amounts`). `neighbours(register, lowest, highest)` names the numbers
    just below and above the day's in files not read (the folder index), so a receipt missing at
    the edge of the day shows across daily files too.
    """
    if z_report_amounts not in ("auto", "gross", "net"):
        raise ValueError(f"z_report_amounts must be 'auto', 'gross' or 'net', not {z_report_amounts!r}")
    with paused():  # millions of small objects and no cycles: see kassebro.core.gc_pause
        return _read_day(
            paths, vendor_id, business_day, tz, day_start_hour, validate_schema, z_report_amounts, neighbours
        )


def _read_day(
    paths: Iterable[Path | str] | Path | str,
    vendor_id: str,
    business_day: dt.date,
    tz: str,
    day_start_hour: int,
    validate_schema: bool,
    z_report_amounts: str,
    neighbours: Neighbours | None,
) -> SalesDay:
    state = _Pass(ZoneInfo(tz), dt.timedelta(hours=day_start_hour), business_day, z_report_amounts)
    files = _expand(paths, state.issues)
    for path in files:
        _read_file(path, state, validate_schema)
    if state.issues:
        raise SourceError(state.issues, headline=f"{vendor_id} {business_day}: SAF-T files unreadable")
    if _dropped_may_belong(state):
        # A Z report of the day claims transactions more than a day older than it (a register
        # that ran days without a Z report): read again keeping them (valid: no schema check).
        log.warning(
            "%s %s: a Z report claims transactions more than a day before it; reading the files again",
            vendor_id,
            business_day,
        )
        state = _Pass(state.zone, state.day_start, business_day, z_report_amounts, wide=True)
        for path in files:
            _read_file(path, state, validate_schema=False)
        if state.issues:
            raise SourceError(state.issues, headline=f"{vendor_id} {business_day}: SAF-T files unreadable")
    return _assemble(state, vendor_id, business_day, files, neighbours)


def list_business_days(
    paths: Iterable[Path | str] | Path | str, tz: str = "Europe/Oslo", day_start_hour: int = 0
) -> list[dt.date]:
    """The business days the files hold sales or Z reports for, sorted (lines are not read)."""
    state = _Pass(ZoneInfo(tz), dt.timedelta(hours=day_start_hour), None)
    for path in _expand(paths, state.issues):
        _read_file(path, state, validate_schema=False)
    if state.issues:
        raise SourceError(state.issues, headline="SAF-T files unreadable")
    days = {z[1] for reports in state.zreports.values() for z in reports}
    # A transaction's day is its Z report's (already in `days`) or, after the register's last
    # Z report, its own provisional day.
    for register_id, latest in state.seen.items():
        reports = state.zreports.get(register_id)
        last_z = reports[-1][0] if reports else None
        days.update(day for day, instant in latest.items() if last_z is None or instant > last_z)
    return sorted(days)


def summarize(path: Path) -> dict[str, dict] | None:
    """What one file holds, per register, for the folder index (`kassebro.sources.file_index`):
    its Z reports' instants, its transactions' first and last instant and lowest and highest
    number. Times are the file's wall clock as nanoseconds since 1970 read as UTC (a time written
    with an offset is turned into UTC), so the summary does not depend on a vendor's zone or day
    start. None when the file cannot be read.
    """
    state = _Pass(ZoneInfo("UTC"), dt.timedelta(0), None)
    _read_file(path, state, validate_schema=False)
    if state.issues:
        return None
    registers: dict[str, dict] = {}
    for register_id, reports in state.zreports.items():
        registers.setdefault(register_id, {})["z"] = [instant for instant, *_rest in reports]
    for register_id, (first, last, low, high) in state.spans.items():
        registers.setdefault(register_id, {}).update(first=first, last=last, nr_min=low, nr_max=high)
    return registers


def decide_amounts(rows: list[tuple[int, int, int]], total: int | None, setting: str = "auto") -> tuple[str, str]:
    """How one Z report writes `cashSaleAmnt`: ("gross" | "net" | "unknown", the reason in words).

    `rows` are its reportCashSaleVat rows as (cashSaleAmnt, vatAmnt, rate in basis points), signed;
    `total` its totalCashSaleAmnt (gross in both official examples). Decided from the report's own
    figures, never from a default: first the total (which reading sums to it), then, when the
    total fits neither, the VAT amounts (net: VAT = amount x rate; gross: VAT = what the amount
    holds), within 1 øre per row or 1 % of the VAT. A pinned `setting` wins.
    """
    as_gross = sum(amount for amount, _vat, _rate in rows)
    as_net = sum(amount + vat for amount, vat, _rate in rows)
    if setting in ("gross", "net"):
        return setting, f"pinned by the vendor setting z_report_amounts: {setting}"
    if total is not None:
        if as_gross == total == as_net:
            return "gross", f"no VAT: cashSaleAmnt sum to totalCashSaleAmnt {format_ore(total)} either way"
        if as_gross == total:
            return "gross", f"cashSaleAmnt sum to totalCashSaleAmnt {format_ore(total)}"
        if as_net == total:
            return "net", f"cashSaleAmnt + vatAmnt sum to totalCashSaleAmnt {format_ore(total)}"
    off_gross = sum(abs(vat - vat_from_gross(amount, rate)) for amount, vat, rate in rows)
    off_net = sum(abs(vat - _vat_of_net(amount, rate)) for amount, vat, rate in rows)
    tolerance = max(len(rows), sum(abs(vat) for _a, vat, _r in rows) // 100)
    total_text = (
        f"totalCashSaleAmnt {format_ore(total)} equals neither the cashSaleAmnt ({format_ore(as_gross)}, gross) "
        f"nor cashSaleAmnt + vatAmnt ({format_ore(as_net)}, net)"
        if total is not None
        else "no totalCashSaleAmnt"
    )
    if off_gross <= tolerance < off_net:
        return "gross", f"{total_text}; the VAT amounts are what gross amounts hold"
    if off_net <= tolerance < off_gross:
        return "net", f"{total_text}; the VAT amounts are the rate times net amounts"
    return "unknown", f"{total_text}, and the VAT amounts fit neither reading: the Z report contradicts itself"


def _vat_of_net(amount: int, rate_bp: int) -> int:
    """VAT on a net amount, half up (away from zero)."""
    magnitude = (abs(amount) * rate_bp * 2 + 10000) // 20000
    return magnitude if amount >= 0 else -magnitude


def _dropped_may_belong(state: _Pass) -> bool:
    """Whether transactions dropped by the one-day window may fall in the asked day's Z period.

    The instants a day's Z reports claim form one interval per register: after the last earlier
    Z report, up to the day's last Z report (business days grow with time). Conservative: it
    compares the dropped transactions' first and last instant with that interval.
    """
    for register_id, (first, last) in state.dropped.items():
        reports = state.zreports.get(register_id, [])
        own = [z[0] for z in reports if z[1] == state.day]
        if not own:
            continue
        before = [z[0] for z in reports if z[0] < own[0]]
        if (not before or last > before[-1]) and first <= own[-1]:
            return True
    return False


# ---------------------------------------------------------------------------------------------
# Reading


def _expand(paths: Iterable[Path | str] | Path | str, issues: list[Issue]) -> list[Path]:
    items = [paths] if isinstance(paths, str | Path) else list(paths)
    files: list[Path] = []
    for item in map(Path, items):
        if item.is_dir():
            files.extend(sorted(p for p in item.iterdir() if p.suffix.lower() == ".xml" and p.is_file()))
        elif item.is_file():
            files.append(item)
        else:
            issues.append(Issue(str(item), "file_missing", "no such file or directory"))
    return files


def _read_file(path: Path, state: _Pass, validate_schema: bool) -> None:
    unsafe = scan(path)
    if unsafe:
        state.issues.extend(unsafe)
        return
    master = _Master()
    register_id = ""
    complete = False  # saw </auditfile>: with a schema, lxml's iterparse can end silently early
    file_issues: list[Issue] = []
    options = dict(_SAFE, schema=schema()) if validate_schema else _SAFE
    context = etree.iterparse(str(path), events=("end",), tag=_STREAM_TAGS, **options)
    try:
        for _event, elem in context:
            tag = elem.tag
            if tag == _CASHTRANSACTION:
                _read_transaction(elem, register_id, master, path, state, file_issues)
                _release(elem)
            elif tag == _EVENT:
                _read_event(elem, register_id, master, path, state, file_issues)
                _release(elem)
            elif tag == _REGISTER_ID:
                parent = elem.getparent()
                if parent is not None and parent.tag == _CASHREGISTER:
                    register_id = (elem.text or "").strip()
            elif tag == _BASIC:
                _read_basic(elem, master)
                elem.clear()
            elif tag == _ARTICLE:
                art = _children(elem)
                art_id = art.get("artID", "")
                master.art_group[art_id] = art.get("artGroupID", "")
                master.art_desc[art_id] = art.get("artDesc", "")
                elem.clear()
            elif tag == _CUSTOMER_SUPPLIER:
                _read_customer(elem, state)
                elem.clear()
            elif tag == _VAT_CODE_DETAIL:
                vat = _children(elem)
                master.std_vat[vat.get("vatCode", "")] = vat.get("standardVatCode", "")
                elem.clear()
            elif tag == _COMPANY_IDENT:
                parent = elem.getparent()
                if parent is not None and parent.tag == _COMPANY:
                    master.company_ident = (elem.text or "").strip()
            elif tag == _HEADER:
                master.currency = _children(elem).get("curCode", "")
            elif tag == _AUDITFILE:
                complete = True
    except etree.XMLSyntaxError as exc:
        # The stream stops at the first error and, for schema errors, knows no line: re-read the
        # file as a tree to report every error with its line.
        state.issues.extend(_schema_issues(path) or [_syntax_issue(path, exc)])
        return
    except OSError as exc:  # lxml reports some encoding and I/O errors as OSError
        state.issues.append(Issue(str(path), "file_unreadable", str(exc)))
        return
    root = context.root
    if root is not None:
        entities = _entity_issue(path, root.getroottree().docinfo)
        if entities is not None:
            state.issues.append(entities)
        if root.tag != _AUDITFILE:
            message = f"root element {root.tag!r} is not {_AUDITFILE}"
            state.issues.append(Issue(f"{path}:{root.sourceline}", "not_saft", message))
        elif not complete:
            incomplete = Issue(str(path), "xml_malformed", "the file ends before </auditfile> (truncated?)")
            state.issues.extend(_schema_issues(path) or [incomplete])
            return
    state.issues.extend(file_issues)
    state.headers.append((str(path), master.company_ident, master.currency))
    state.codes.update(("vat", code, standard) for code, standard in master.std_vat.items())
    for basic_type, declared in master.basics.items():
        state.codes.update((basic_type, basic_id, predefined) for basic_id, predefined in declared.items())


def _release(elem: etree._Element) -> None:
    """Free a processed element and the siblings before it (keeps memory flat on big files)."""
    elem.clear()
    parent = elem.getparent()
    if parent is not None:
        while elem.getprevious() is not None:
            del parent[0]


def _children(elem: etree._Element) -> dict[str, str]:
    """Simple child elements as local name -> stripped text (first occurrence wins)."""
    result: dict[str, str] = {}
    for child in elem:
        tag = child.tag
        if isinstance(tag, str) and tag.startswith(_T):
            result.setdefault(tag[_TL:], (child.text or "").strip())
    return result


def _read_customer(elem: etree._Element, state: _Pass) -> None:
    """A declared customer (suppliers are not needed): what the ledger's customer needs."""
    kids = _children(elem)
    cust_id = kids.get("custSupID", "")
    if not cust_id or kids.get("custSupType", "Customer") != "Customer":
        return
    street = next((child for child in elem if child.tag == _STREET_ADDRESS), None)
    address = _children(street) if street is not None else {}
    line = " ".join(part for part in (address.get("streetname", ""), address.get("number", "")) if part)
    state.customers[cust_id] = (
        cust_id,
        kids.get("custSupName", ""),
        "".join(ch for ch in kids.get("taxRegIdent", "") if ch.isdigit()),
        kids.get("eMail", ""),
        line,
        address.get("postalCode", ""),
        address.get("city", ""),
    )


def _read_basic(elem: etree._Element, master: _Master) -> None:
    basic = _children(elem)
    basic_type, basic_id = basic.get("basicType", ""), basic.get("basicID", "")
    predefined = basic.get("predefinedBasicID", "")
    master.basics.setdefault(basic_type, {})[basic_id] = predefined
    if predefined:
        master.any_basic.setdefault(basic_id, predefined)
    if predefined == saft_codes.TIP_CODE:
        master.tip_ids.add(basic_id)


def _ore(text: str | None, name: str) -> int:
    """Amount text in kroner -> øre. Fast path for plain 'd.dd'; money.parse_ore for the rest."""
    if text is None:
        raise _Bad(f"{name} is missing")
    if 3 < len(text) < 15 and text[-3] == "." and text[-2:].isdigit():
        whole = text[:-3]
        digits = whole[1:] if whole[:1] == "-" else whole
        if len(digits) <= 10 and digits.isdigit():  # at most 10 whole digits: inside MAX_AMOUNT_ORE
            return int(whole + text[-2:])
    value = text.strip()
    negative = value[:1] == "-"
    body = value[1:] if negative or value[:1] == "+" else value
    whole, _dot, frac = body.partition(".")
    plain = body.isascii() and (whole.isdigit() or (not whole and frac)) and (not frac or frac.isdigit())
    if plain and len(frac) <= 2 and len(whole) <= 10:
        ore = int(whole or "0") * 100 + int((frac + "00")[:2])
    else:
        try:
            ore = abs(parse_ore(value))
        except ValueError:
            raise _Bad(f"{name} {text!r} is not an amount") from None
    if ore > MAX_AMOUNT_ORE:
        raise _OutOfRange(f"{name} {_clip(value)} is out of range (at most {format_ore(MAX_AMOUNT_ORE)} is read)")
    return -ore if negative else ore


def _clip(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _number(text: str, name: str) -> int:
    """A whole number such as `nr`; 63 bits at most, so it fits the frames."""
    try:
        value = int(text)
    except ValueError:
        raise _Bad(f"{name} {_clip(text)!r} is not a number") from None
    if not 0 <= value <= _MAX_NR:
        raise _OutOfRange(f"{name} {_clip(text)} is out of range (0 to {_MAX_NR})")
    return value


def _signed(ore: int, amnt_tp: str) -> int:
    return -abs(ore) if amnt_tp == "D" else ore


def _amnt_tp(text: str | None) -> str:
    value = (text or "").strip()
    if value not in ("C", "D"):
        raise _Bad(f"amntTp {text!r} is neither C nor D")
    return value


def _moment(date_text: str | None, time_text: str | None, state: _Pass) -> tuple[int, dt.date]:
    """Local date and time (or time with offset) -> (UTC epoch ns, wall-clock business day)."""
    if not date_text or not time_text:
        raise _Bad("date or time is missing")
    try:
        day = dt.date.fromisoformat(date_text.strip()[:10])
        clock_text = time_text.strip()
        if clock_text.startswith("24:00:00"):  # xsd:time allows 24:00:00: the end of the day
            day, clock_text = day + dt.timedelta(days=1), "00:00:00" + clock_text[8:]
        clock = dt.time.fromisoformat(clock_text)
    except ValueError:
        raise _Bad(f"{date_text!r} {time_text!r} is not a date and time") from None
    if clock.tzinfo is not None:
        aware = dt.datetime.combine(day, clock)
        wall = aware.astimezone(state.zone).replace(tzinfo=None)
    else:
        wall = dt.datetime.combine(day, clock)
        aware = wall.replace(tzinfo=state.zone)
    return ((aware - _EPOCH) // _US) * 1000, (wall - state.day_start).date()


def _flag(text: str | None) -> bool:
    return (text or "").strip() in ("true", "1")


def _read_event(
    elem: etree._Element, register_id: str, master: _Master, path: Path, state: _Pass, issues: list[Issue]
) -> None:
    report = elem.find(_EVENT_REPORT)
    if report is None:
        return
    event = _children(elem)
    head = _children(report)
    report_type = head.get("reportType", "")
    event_code = master.code("13", event.get("eventType", ""), saft_codes.EVENT_CODES)
    if not (report_type == "Z report" or (not report_type and event_code == "13009")):
        return  # X reports are not day totals
    where = f"{path}:{report.sourceline}"
    try:
        if event.get("eventDate") and event.get("eventTime"):
            instant, business_day = _moment(event["eventDate"], event["eventTime"], state)
        else:
            instant, business_day = _moment(head.get("reportDate"), head.get("reportTime"), state)
        report_id = head.get("reportID", "")
        vat_rows: list[tuple] = []
        payment_rows: list[tuple] = []
        group_rows: list[tuple] = []
        z_head: tuple | None = None
        if business_day == state.day:  # another day's report (or listing): its time and day suffice
            written: list[tuple[str, int, int, int]] = []  # (vatCode, cashSaleAmnt, vatAmnt, rate)
            for row_elem in report.iterfind(f"{_T}reportCashSalesVat/{_T}reportCashSaleVat"):
                row = _children(row_elem)
                sign = row.get("vatAmntTp", "C")
                vat = _signed(_ore(row.get("vatAmnt"), "vatAmnt"), sign)
                amount = _signed(_ore(row.get("cashSaleAmnt"), "cashSaleAmnt"), sign)
                rate = _ore(row["vatPerc"], "vatPerc") if row.get("vatPerc") else 0
                written.append((row.get("vatCode", ""), amount, vat, rate))
            total_text = report.findtext(f"{_T}reportTotalCashSales/{_T}totalCashSaleAmnt")
            total = _ore(total_text, "totalCashSaleAmnt") if total_text and total_text.strip() else None
            amounts, basis = decide_amounts([(a, v, r) for _c, a, v, r in written], total, state.z_amounts)
            for code, amount, vat, rate in written:
                gross = amount + vat if amounts == "net" else amount
                vat_rows.append((register_id, report_id, code, master.std_vat.get(code, ""), rate, gross, vat, amount))
            tip_text = report.findtext(f"{_T}reportTip/{_T}tipAmnt")
            tips = _ore(tip_text, "tipAmnt") if tip_text is not None and tip_text.strip() else None
            return_text = head.get("reportReturnAmnt")
            returns = abs(_ore(return_text, "reportReturnAmnt")) if return_text else None
            z_head = (register_id, report_id, head.get("companyIdent", ""), total, amounts, basis, tips, returns)
            for row_elem in report.iterfind(f"{_T}reportPayments/{_T}reportPayment"):
                row = _children(row_elem)
                ptype = row.get("paymentType", "")
                amount = _ore(row.get("paymentAmnt"), "paymentAmnt")
                code = master.code("12", ptype, saft_codes.PAYMENT_CODES)
                payment_rows.append((register_id, report_id, ptype, code, amount))
            for row_elem in report.iterfind(f"{_T}reportArtGroups/{_T}reportArtGroup"):
                row = _children(row_elem)
                amount = _ore(row.get("artGroupAmnt"), "artGroupAmnt")
                group_rows.append((register_id, report_id, row.get("artGroupID", ""), amount))
    except (_Bad, ValueError) as exc:
        issues.append(Issue(where, _rule(exc), f"Z report: {exc}"))
        return
    zreport = _ZReport(
        str(path), register_id, report_id, instant, business_day, vat_rows, payment_rows, group_rows, z_head
    )
    reports = state.zreports.setdefault(register_id, [])
    bisect.insort(reports, (instant, business_day, len(reports), zreport))
    pending = state.txns.get(register_id)
    if pending and state.day is not None and business_day < state.day:
        # Transactions up to an earlier day's Z report are that day's: forget them now.
        pending[:] = [txn for txn in pending if txn.instant > instant]


def _first_z(state: _Pass, register_id: str, instant: int) -> tuple[int, dt.date, int, _ZReport] | None:
    reports = state.zreports.get(register_id)
    if not reports:
        return None
    index = bisect.bisect_left(reports, (instant,))
    return reports[index] if index < len(reports) else None


def _assigned_day(txn: _Txn, state: _Pass) -> dt.date:
    z = _first_z(state, txn.register_id, txn.instant)
    return z[1] if z is not None else txn.fallback_day


def _read_transaction(
    elem: etree._Element, register_id: str, master: _Master, path: Path, state: _Pass, issues: list[Issue]
) -> None:
    # One dict of the children (the XSD allows each simple one once), the repeated ones by tag.
    kids = {child.tag: child for child in elem}
    line_elems = list(elem.iterchildren(_CTLINE)) if _CTLINE in kids else []
    payment_elems = list(elem.iterchildren(_PAYMENT)) if _PAYMENT in kids else []
    raise_elems = list(elem.iterchildren(_RAISE)) if _RAISE in kids else []
    discount_elems = list(elem.iterchildren(_DISCOUNT)) if _DISCOUNT in kids else []
    skipped = "void" if _flag(_text(kids, _VOID)) else "training" if _flag(_text(kids, _TRAINING)) else ""
    head = {name: _text(kids, _T + name) for name in ("transID", "nr", "transType", "transAmntIn", "amntTp")}
    where = f"{path}:{elem.sourceline}"
    trans_id = head.get("transID", "")
    try:
        instant, fallback_day = _moment(_text(kids, _TRANS_DATE), _text(kids, _TRANS_TIME), state)
    except _Bad as exc:
        issues.append(Issue(where, _rule(exc), f"transaction {trans_id}: {exc}"))
        return
    day = state.day
    if day is None:  # listing: the latest instant per register and provisional day, and the spans
        latest = state.seen.setdefault(register_id, {})
        latest[fallback_day] = max(instant, latest.get(fallback_day, instant))
        nr_text = head.get("nr", "")
        nr = int(nr_text) if nr_text.isdigit() and len(nr_text) < 19 else None
        span = state.spans.get(register_id)
        if span is None:
            state.spans[register_id] = [instant, instant, nr, nr]
        else:
            span[0], span[1] = min(span[0], instant), max(span[1], instant)
            if nr is not None:
                span[2] = nr if span[2] is None else min(span[2], nr)
                span[3] = nr if span[3] is None else max(span[3], nr)
        return
    try:
        nr = _number(head.get("nr", ""), "nr")
    except _Bad as exc:
        issues.append(Issue(where, _rule(exc), f"transaction {trans_id}: {exc}"))
        return
    series = state.numbers.get(register_id)
    if series is None:
        series = state.numbers[register_id] = _Series()
    series.add(nr)  # every transaction of the file, of any day: the series around the day
    if fallback_day > day:
        return  # a Z report is never before its sales, so this cannot be the asked day
    known = _first_z(state, register_id, instant)
    if known is not None and known[1] < day:
        return  # the first Z report at or after it is at most this one: an earlier day
    if fallback_day < day - _ONE_DAY and not state.wide and (known is None or known[1] != day):
        # More than a day before the asked day and no Z report of the day claims it (yet):
        # drop it, noting when, so read_day can tell whether a later Z report claims it.
        span = state.dropped.setdefault(register_id, [instant, instant])
        span[0], span[1] = min(span[0], instant), max(span[1], instant)
        return
    txn = _Txn(str(path), register_id, trans_id, instant, fallback_day)
    state.txns.setdefault(register_id, []).append(txn)
    if skipped:
        txn.skipped = (register_id, trans_id, nr, skipped)
        return
    trans_type = head.get("transType", "")
    trans_code = master.code("11", trans_type, saft_codes.TRANSACTION_CODES)
    try:
        amnt_tp = _amnt_tp(head.get("amntTp"))
        rounding_elem = kids.get(_ROUNDING)
        rounding_text = rounding_elem.findtext(_T + "roundingAmnt") if rounding_elem is not None else None
        rounding = _ore(rounding_text, "roundingAmnt") if rounding_text and rounding_text.strip() else 0
        amount = _signed(_ore(head.get("transAmntIn"), "transAmntIn"), amnt_tp)
        discount = _signed(sum(abs(_ore(d.findtext(_DSC_AMNT), "dscAmnt")) for d in discount_elems), amnt_tp)
        customer = _text(kids, _CUST_SUP_ID)
        receipt = [register_id, trans_id, nr, trans_type, trans_code, amount, rounding, discount, customer]
    except _Bad as exc:
        issues.append(Issue(where, _rule(exc), f"transaction {trans_id}: {exc}"))
        receipt = None
    if trans_code == saft_codes.CASH_DIFFERENCE_CODE:
        line_elems = raise_elems = []  # the difference is the amount and its payments: no sales lines
    has_tip_line = False
    for line_elem in line_elems:
        try:
            has_tip_line |= _read_line(line_elem, txn, master)
        except (_Bad, ValueError) as exc:
            issues.append(Issue(f"{path}:{line_elem.sourceline}", _rule(exc), f"transaction {trans_id}: {exc}"))
    for raise_elem in raise_elems:
        if has_tip_line:
            break  # transaction-level raises then only repeat the lines' tips
        row = _children(raise_elem)
        if row.get("raiseType", "") in master.tip_ids:
            try:
                tip = _signed(_ore(row.get("raiseAmnt"), "raiseAmnt"), head.get("amntTp", "C"))
            except _Bad as exc:
                issues.append(Issue(f"{path}:{raise_elem.sourceline}", _rule(exc), str(exc)))
                continue
            line_id = f"tip-{len(txn.lines) + 1}"
            txn.lines.append(
                (register_id, trans_id, line_id, "tip", "", "", "", "Tip", "", tip, tip, 0, "", "", 0, 0, "", "", "")
            )
    if receipt is not None:
        if receipt[7] and receipt[5] == sum(line[9] for line in txn.lines):
            # transAmntIn equals the lines: this POS wrote its lines after the bill discount
            # (spread over them already), so nothing more is taken off them.
            receipt[7] = 0
        txn.receipt = tuple(receipt)
    for payment_elem in payment_elems:
        try:
            txn.payments.append(_read_payment(payment_elem, txn, master))
        except (_Bad, ValueError, InvalidOperation) as exc:
            issues.append(Issue(f"{path}:{payment_elem.sourceline}", _rule(exc), f"transaction {trans_id}: {exc}"))


def _text(kids: dict, tag: str) -> str:
    child = kids.get(tag)
    return (child.text or "").strip() if child is not None else ""


def _read_line(elem: etree._Element, txn: _Txn, master: _Master) -> bool:
    """Append the line (or its sale and tip parts) to txn.lines; True when it holds a tip.

    The hot loop of a big day: the children's texts are taken in one dict comprehension (the XSD
    allows each simple child once), elements only where they hold more (vat, raise, discount).
    """
    texts = {child.tag: child.text for child in elem}
    tip_texts: list[str | None] = []  # raiseAmnt texts of the tip raises
    discount_texts: list[str | None] = []
    if _RAISE in texts:
        for child in elem.iterfind(_RAISE):
            row = _children(child)
            if row.get("raiseType", "") in master.tip_ids:
                tip_texts.append(row.get("raiseAmnt"))
    if _DISCOUNT in texts:
        discount_texts = [child.findtext(_DSC_AMNT) for child in elem.iterfind(_DISCOUNT)]
    amnt_tp = _amnt_tp(texts.get(_AMNT_TP))
    gross = _ore(texts.get(_LINE_AMNT_IN), "lineAmntIn")
    net = _ore(texts.get(_LINE_AMNT_EX), "lineAmntEx")
    vat = rate = 0
    vat_code = std_vat_code = ""
    if _VAT in texts:
        vat_kids = {child.tag: child.text for child in elem.find(_VAT)}
        vat = _ore(vat_kids.get(_VAT_AMNT), "vatAmnt")
        vat_code = intern(_strip(vat_kids.get(_VAT_CODE)))
        std_vat_code = master.std_vat.get(vat_code, "")
        perc = vat_kids.get(_VAT_PERC)
        rate = _ore(perc, "vatPerc") if perc and perc.strip() else 0
    if amnt_tp == "D":
        gross, net, vat = -abs(gross), -abs(net), -abs(vat)
    # Repeated texts are interned: a 200,000-line day then holds each article's strings once.
    article_id = intern(_strip(texts.get(_ART_ID)))
    art_group_id = intern(_strip(texts.get(_ART_GROUP_ID)) or master.art_group.get(article_id, ""))
    art_group_code = master.group_codes.get(art_group_id)
    if art_group_code is None:
        art_group_code = master.code("04", art_group_id, saft_codes.ARTICLE_GROUP_CODES)
        master.group_codes[art_group_id] = art_group_code
    description = intern(_strip(texts.get(_LINE_DESCR)) or master.art_desc.get(article_id, ""))
    line_id = intern(_strip(texts.get(_LINE_ID)))
    line_type = "return" if amnt_tp == "D" else "sale"
    head = (txn.register_id, txn.trans_id, line_id)
    tip_line = None
    line_type_id = intern(_strip(texts.get(_LINE_TYPE)))
    if line_type_id in master.tip_ids:
        line_type = "tip"  # the line type itself says tip: the whole line
    elif tip_texts:
        tip = sum(_signed(_ore(text, "raiseAmnt"), amnt_tp) for text in tip_texts)
        if abs(tip) >= abs(gross):
            line_type = "tip"  # the raise is the whole line
        else:  # a sale with a tip on top: split off the tip
            gross, net = gross - tip, net - tip
            tip_line = (txn.register_id, txn.trans_id, f"{line_id}-tip", "tip", "", "", "", "Tip", "")
            tip_line += (tip, tip, 0, "", "", 0, 0, "", "", "")
    discount = _signed(sum(abs(_ore(text, "dscAmnt")) for text in discount_texts), amnt_tp) if discount_texts else 0
    txn.lines.append(
        (*head, line_type, art_group_id, art_group_code, article_id, description, intern(_strip(texts.get(_QNT))))
        + (gross, net, vat, vat_code, std_vat_code, rate)
        + (discount, intern(_strip(texts.get(_PROJ_ID))), intern(_strip(texts.get(_COST_ID))), line_type_id)
    )
    if tip_line is not None:
        txn.lines.append(tip_line)
    return line_type == "tip" or tip_line is not None


def _strip(text: str | None) -> str:
    return text.strip() if text else ""


def _read_payment(elem: etree._Element, txn: _Txn, master: _Master) -> tuple:
    fields = _children(elem)
    payment_type = fields.get("paymentType", "")
    paid_text = fields.get("paidAmnt")
    amount = _ore(paid_text, "paidAmnt")
    currency = fields.get("curCode") or "NOK"
    rate_text = fields.get("exchRt", "")
    if currency != "NOK":
        if rate_text:
            amount = parse_ore(Decimal(str(paid_text).strip()) * Decimal(rate_text))
    elif not rate_text:
        rate_text = "1"
    code = master.code("12", payment_type, saft_codes.PAYMENT_CODES)
    return (txn.register_id, txn.trans_id, payment_type, code, amount, currency, rate_text)


# ---------------------------------------------------------------------------------------------
# Frames


def _assemble(
    state: _Pass, vendor_id: str, day: dt.date, files: list[Path], neighbours: Neighbours | None = None
) -> SalesDay:
    import pandas as pd

    used: set[str] = set()
    lines: list[tuple] = []
    line_stamps: list[int] = []  # each line's transaction time, added as a column (no tuple copies)
    receipts: list[tuple] = []
    payments: list[tuple] = []
    skipped: list[tuple] = []
    for txns in state.txns.values():
        for txn in txns:
            if _assigned_day(txn, state) != day:
                continue
            if txn.skipped is not None:
                used.add(txn.path)
                skipped.append(txn.skipped)
                continue
            if txn.receipt is None:
                continue
            stamp = txn.instant
            used.add(txn.path)
            receipts.append((*txn.receipt, stamp))
            lines.extend(txn.lines)
            line_stamps.extend([stamp] * len(txn.lines))
            payments.extend(txn.payments)
    z_vat: list[tuple] = []
    z_payments: list[tuple] = []
    z_groups: list[tuple] = []
    z_heads: list[tuple] = []
    for reports in state.zreports.values():
        for _instant, business_day, _seq, report in reports:
            if business_day == day:
                used.add(report.path)
                z_vat.extend(report.vat_rows)
                z_payments.extend(report.payment_rows)
                z_groups.extend(report.art_group_rows)
                if report.head is not None:
                    z_heads.append(report.head)
    numbers = _number_rows(state, receipts, skipped, neighbours)

    def frame(name: str, rows: list[tuple], columns: list[str], stamps: list[int] | None = None) -> pd.DataFrame:
        if not rows:
            return empty_frame(name)
        df = pd.DataFrame(rows, columns=[c for c in columns if c != "timestamp"] if stamps is not None else columns)
        if stamps is not None:
            df["timestamp"] = stamps
        if "timestamp" in df.columns:
            df["timestamp"] = pd.to_datetime(df["timestamp"].astype("int64"), unit="ns", utc=True)
        return conform(name, df)

    return SalesDay(
        vendor_id=vendor_id,
        business_day=day,
        lines=frame("lines", lines, _LINE_COLS, line_stamps),
        receipts=frame("receipts", receipts, _RECEIPT_COLS),
        payments=frame("payments", payments, _PAYMENT_COLS),
        z_vat=frame("z_vat", z_vat, _ZVAT_COLS),
        z_payments=frame("z_payments", z_payments, _ZPAY_COLS),
        z_art_groups=frame("z_art_groups", z_groups, _ZART_COLS),
        skipped=frame("skipped", skipped, _SKIPPED_COLS),
        z_reports=frame("z_reports", z_heads, _ZREPORT_COLS),
        codes=frame("codes", sorted(state.codes), list(FRAME_COLUMNS["codes"])),
        headers=frame("headers", state.headers, list(FRAME_COLUMNS["headers"])),
        numbers=frame("numbers", numbers, list(FRAME_COLUMNS["numbers"])),
        customers=frame("customers", sorted(state.customers.values()), list(FRAME_COLUMNS["customers"]))
        if state.customers
        else None,
        source="; ".join(str(p) for p in files if str(p) in used),
    )


def _number_rows(
    state: _Pass, receipts: list[tuple], skipped: list[tuple], neighbours: Neighbours | None
) -> list[tuple]:
    """The number series around the day's numbers, per register: runs and duplicates."""
    span: dict[str, list[int]] = {}
    for register_id, nr in [(r[0], r[2]) for r in receipts] + [(k[0], k[2]) for k in skipped]:
        low_high = span.setdefault(register_id, [nr, nr])
        low_high[0], low_high[1] = min(low_high[0], nr), max(low_high[1], nr)
    rows: list[tuple] = []
    for register_id, (low, high) in sorted(span.items()):
        series = state.numbers.get(register_id)
        if series is None:
            continue
        if neighbours is not None:  # the numbers next to the day's in files not read
            for nr in neighbours(register_id, low, high):
                if nr is not None:
                    series.add(nr)
        runs, dups = series.around(low, high)
        rows.extend((register_id, "run", first, last, 1) for first, last in runs)
        rows.extend((register_id, "duplicate", nr, nr, count) for nr, count in dups)
    return rows
